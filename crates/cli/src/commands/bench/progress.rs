//! [`Progress`]: one line on stderr that counts up while a phase runs
//! (redrawn in place on a terminal; a start and an end line otherwise, so
//! that logs stay readable).

use std::io::{IsTerminal as _, Write as _};
use std::time::Instant;

#[derive(Debug)]
pub struct Progress {
    label: String,
    total: u64,
    done: u64,
    started: Instant,
    redraw: bool,
    drawn_at: Option<Instant>,
}

impl Progress {
    pub fn new(label: impl Into<String>, total: u64) -> Self {
        let progress = Self {
            label: label.into(),
            total,
            done: 0,
            started: Instant::now(),
            redraw: std::io::stderr().is_terminal(),
            drawn_at: None,
        };
        if !progress.redraw {
            eprintln!("==> {} ({})", progress.label, progress.total);
        }
        progress
    }

    /// Sets how much is done and redraws at most every 100 ms.
    pub fn set(&mut self, done: u64) {
        self.done = done.min(self.total);
        if !self.redraw {
            return;
        }
        if self
            .drawn_at
            .is_some_and(|at| at.elapsed().as_millis() < 100)
            && self.done < self.total
        {
            return;
        }
        self.drawn_at = Some(Instant::now());
        let width = 30;
        let filled = (self.done * width as u64)
            .checked_div(self.total)
            .map_or(width, |filled| filled as usize);
        let mut err = std::io::stderr().lock();
        let _ = write!(
            err,
            "\r==> {} [{}{}] {}/{} {:.1}s ",
            self.label,
            "#".repeat(filled),
            " ".repeat(width - filled),
            self.done,
            self.total,
            self.started.elapsed().as_secs_f64()
        );
        let _ = err.flush();
    }

    pub fn inc(&mut self) {
        self.set(self.done + 1);
    }

    pub fn finish(mut self) {
        self.set(self.total);
        if self.redraw {
            eprintln!();
        } else {
            eprintln!(
                "==> {} done in {:.1}s",
                self.label,
                self.started.elapsed().as_secs_f64()
            );
        }
    }
}
