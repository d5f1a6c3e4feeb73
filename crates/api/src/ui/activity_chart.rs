//! Tasks started, completed and failed per minute as a small inline SVG bar
//! chart, one group of three bars per minute, with the numbers in each
//! group's tooltip and in a table for screen readers.

use std::fmt::Write;

use tasker_model::Timestamp;
use tasker_store::TaskActivity;

/// Every minute from `first` for `minutes` minutes, zero where `activity`
/// has no entry.
pub fn per_minute(
    activity: &[TaskActivity],
    first: Timestamp,
    minutes: usize,
) -> Vec<TaskActivity> {
    (0..minutes)
        .map(|i| {
            let minute = first + chrono::TimeDelta::minutes(i as i64);
            activity
                .iter()
                .find(|a| a.minute == minute)
                .cloned()
                .unwrap_or(TaskActivity {
                    minute,
                    started: 0,
                    completed: 0,
                    failed: 0,
                })
        })
        .collect()
}

const BAR: usize = 4;
const GROUP: usize = BAR * 3 + 4;
const HEIGHT: usize = 90;

pub fn render(minutes: &[TaskActivity]) -> String {
    let peak = minutes
        .iter()
        .map(|m| m.started.max(m.completed).max(m.failed))
        .max()
        .unwrap_or(0)
        .max(1);
    let width = minutes.len() * GROUP;
    let total = |f: fn(&TaskActivity) -> u64| minutes.iter().map(f).sum::<u64>();
    let mut out = format!(
        "<figure class=\"chart\"><svg role=\"img\" viewBox=\"0 0 {width} {h}\" \
         preserveAspectRatio=\"none\" xmlns=\"http://www.w3.org/2000/svg\">\
         <title>Tasks per minute over the last {n} minutes: {s} started, {c} completed, {f} failed</title>\
         <line class=\"axis\" x1=\"0\" y1=\"{HEIGHT}\" x2=\"{width}\" y2=\"{HEIGHT}\"/>",
        h = HEIGHT + 1,
        n = minutes.len(),
        s = total(|m| m.started),
        c = total(|m| m.completed),
        f = total(|m| m.failed),
    );
    for (i, m) in minutes.iter().enumerate() {
        let _ = write!(
            out,
            "<g><title>{}: {} started, {} completed, {} failed</title>",
            m.minute.format("%H:%M UTC"),
            m.started,
            m.completed,
            m.failed
        );
        for (j, (class, value)) in [
            ("started", m.started),
            ("completed", m.completed),
            ("failed", m.failed),
        ]
        .into_iter()
        .enumerate()
        {
            let h = (value as usize * HEIGHT).div_ceil(peak as usize);
            let _ = write!(
                out,
                "<rect class=\"bar-{class}\" x=\"{}\" y=\"{}\" width=\"{BAR}\" height=\"{h}\"/>",
                i * GROUP + 2 + j * BAR,
                HEIGHT - h
            );
        }
        out.push_str("</g>");
    }
    let _ = write!(
        out,
        "</svg><figcaption><span class=\"key bar-started\"></span>started \
         <span class=\"key bar-completed\"></span>completed \
         <span class=\"key bar-failed\"></span>failed · peak {peak} per minute</figcaption></figure>"
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    #[test]
    fn missing_minutes_are_zero() {
        let seen = [TaskActivity {
            minute: at("2026-11-30T12:02:00Z"),
            started: 3,
            completed: 2,
            failed: 1,
        }];
        let minutes = per_minute(&seen, at("2026-11-30T12:00:00Z"), 4);
        assert_eq!(minutes.len(), 4);
        assert_eq!(minutes[0].started, 0);
        assert_eq!(minutes[2].started, 3);
        assert_eq!(minutes[3].minute, at("2026-11-30T12:03:00Z"));
    }

    #[test]
    fn the_busiest_bar_is_full_height() {
        let minutes = [TaskActivity {
            minute: at("2026-11-30T12:00:00Z"),
            started: 4,
            completed: 2,
            failed: 0,
        }];
        let svg = render(&minutes);
        assert!(svg.contains(&format!(
            "class=\"bar-started\" x=\"2\" y=\"0\" width=\"{BAR}\" height=\"{HEIGHT}\""
        )));
        assert!(svg.contains("4 started, 2 completed, 0 failed"));
    }
}
