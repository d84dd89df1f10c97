//! Plain-text tables for the terminal: aligned columns, a rule under the header, optional
//! right-aligned numeric columns and one highlighted row (bold green on a colour terminal). Shared by
//! `plan`, `keys`, `status` and `report`. Cells hold names and reasons from specs and results
//! files, so each is shown through [`crate::terminal::line`] (control characters escaped).

/// A table of text cells.
#[derive(Default)]
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
    right: Vec<bool>,
    highlight: Option<usize>,
}

impl Table {
    pub fn new<S: Into<String>>(header: impl IntoIterator<Item = S>) -> Self {
        let header: Vec<String> = header.into_iter().map(cell).collect();
        let right = vec![false; header.len()];
        Table { header, rows: Vec::new(), right, highlight: None }
    }

    /// Right-aligns column `index` (numbers).
    pub fn align_right(mut self, index: usize) -> Self {
        if let Some(r) = self.right.get_mut(index) {
            *r = true;
        }
        self
    }

    pub fn row<S: Into<String>>(&mut self, cells: impl IntoIterator<Item = S>) {
        self.rows.push(cells.into_iter().map(cell).collect());
    }

    /// Highlights row `index` (0 is the first row after the header).
    pub fn highlight(&mut self, index: usize) {
        self.highlight = Some(index);
    }

    pub fn render(&self) -> String {
        self.render_styled(false)
    }

    /// Renders with ANSI styling of the highlighted row when `ansi` (widths are computed on the plain
    /// text, so the columns stay aligned).
    pub fn render_styled(&self, ansi: bool) -> String {
        let cols = self.header.len();
        let width = |c: usize| {
            std::iter::once(&self.header)
                .chain(&self.rows)
                .map(|r| r.get(c).map_or(0, |s| s.chars().count()))
                .max()
                .unwrap_or(0)
        };
        let widths: Vec<usize> = (0..cols).map(width).collect();
        let line = |cells: &[String]| {
            let mut out = String::new();
            for (c, w) in widths.iter().enumerate() {
                let cell = cells.get(c).map_or("", String::as_str);
                let pad = w - cell.chars().count();
                if c > 0 {
                    out.push_str("  ");
                }
                if self.right[c] {
                    out.push_str(&" ".repeat(pad));
                    out.push_str(cell);
                } else {
                    out.push_str(cell);
                    if c + 1 < cols {
                        out.push_str(&" ".repeat(pad));
                    }
                }
            }
            out.trim_end().to_string()
        };
        let mut out = line(&self.header);
        out.push('\n');
        let total: usize = widths.iter().sum::<usize>() + 2 * cols.saturating_sub(1);
        out.push_str(&"-".repeat(total));
        out.push('\n');
        for (i, row) in self.rows.iter().enumerate() {
            if ansi && self.highlight == Some(i) {
                out.push_str(&format!("\x1b[1;32m{}\x1b[0m", line(row)));
            } else {
                out.push_str(&line(row));
            }
            out.push('\n');
        }
        out
    }
}

/// A cell's text as the terminal shows it.
fn cell<S: Into<String>>(text: S) -> String {
    crate::terminal::line(&text.into()).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_align_and_numbers_right_align() {
        let mut t = Table::new(["name", "n"]).align_right(1);
        t.row(["a", "10"]);
        t.row(["long name", "7"]);
        assert_eq!(t.render(), "name        n\n-------------\na          10\nlong name   7\n");
        t.highlight(1);
        assert_eq!(t.render(), "name        n\n-------------\na          10\nlong name   7\n");
        assert!(t.render_styled(true).ends_with("\x1b[1;32mlong name   7\x1b[0m\n"));
    }

    #[test]
    fn cells_cannot_send_control_characters_to_the_terminal() {
        let mut t = Table::new(["name\x1b[2J"]);
        t.row(["a\x1b[31mred\nline"]);
        let out = t.render_styled(true);
        assert!(!out.contains('\x1b'), "{out:?}");
        assert_eq!(out.lines().count(), 3, "{out:?}");
        assert!(out.contains("a\\u{1b}[31mred\\u{a}line"), "{out:?}");
    }
}
