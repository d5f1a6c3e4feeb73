//! [`Table`]: rows in aligned columns, the way `kubectl get` prints them.

use std::fmt;

/// A text table: upper-case headers, columns padded to their widest cell,
/// two spaces between columns, no trailing spaces.
#[derive(Debug, Clone)]
pub struct Table {
    headers: Vec<&'static str>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(headers: &[&'static str]) -> Self {
        Self {
            headers: headers.to_vec(),
            rows: Vec::new(),
        }
    }

    /// Adds a row; it must have one cell per header.
    pub fn row(&mut self, cells: Vec<String>) {
        assert_eq!(cells.len(), self.headers.len(), "one cell per column");
        self.rows.push(cells);
    }
}

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let headers = self.headers.iter().map(|h| h.to_uppercase()).collect();
        for row in std::iter::once(&headers).chain(&self.rows) {
            let mut line = String::new();
            for (i, (cell, width)) in row.iter().zip(&widths).enumerate() {
                if i > 0 {
                    line.push_str("  ");
                }
                line.push_str(cell);
                if i + 1 < row.len() {
                    line.extend(std::iter::repeat_n(' ', width - cell.chars().count()));
                }
            }
            writeln!(f, "{}", line.trim_end())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_align_on_the_widest_cell() {
        let mut table = Table::new(&["name", "state"]);
        table.row(vec!["a".into(), "running".into()]);
        table.row(vec!["longer_name".into(), "complete".into()]);
        assert_eq!(
            table.to_string(),
            "NAME         STATE\n\
             a            running\n\
             longer_name  complete\n"
        );
    }

    #[test]
    fn empty_cells_leave_no_trailing_spaces() {
        let mut table = Table::new(&["a", "b"]);
        table.row(vec!["x".into(), String::new()]);
        assert!(table.to_string().lines().all(|l| !l.ends_with(' ')));
    }

    #[test]
    fn widths_count_characters_not_bytes() {
        let mut table = Table::new(&["step", "state"]);
        table.row(vec!["prüfen".into(), "ready".into()]);
        table.row(vec!["ship".into(), "pending".into()]);
        let text = table.to_string();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[1].find("ready"), Some("prüfen  ".len()));
        assert_eq!(lines[2], "ship    pending");
    }
}
