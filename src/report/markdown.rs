//! `report.md`: the report as Markdown that pastes into a paper draft or an issue: pipe tables, the
//! verdicts on published references, and the figures linked beside it. It links only the files of
//! its own folder, so a variant's own sample sheet (in the results) is left out; folded detail is
//! shown in full under its summary.
//!
//! Every text of the document (names, descriptions, citations, notes, reasons: anything a spec or a
//! results file says) goes through one of three functions, so that none of it is read as Markdown or
//! HTML: [`escape`] for inline text, [`code`] for code spans, and [`block_start`] where a text begins
//! a line. Links are the document's, which makes them only of http(s) addresses.

use anyhow::Result;

use super::document::{Block, Detail, Provenance, Span};
use super::tables::Grid;
use super::{Figure, Renderer};

pub const MARKDOWN_FILE: &str = "report.md";

pub struct Markdown;

impl Renderer for Markdown {
    fn detail(&self) -> Detail {
        Detail::Full
    }

    fn render(&self, doc: &[Block]) -> Result<String> {
        let mut md = String::new();
        let mut in_list = false;
        for block in doc {
            let bullet = matches!(block, Block::Meta(_) | Block::Provenance(_));
            if in_list && !bullet {
                md.push('\n');
            }
            in_list = bullet;
            md.push_str(&render_block(block));
        }
        Ok(md)
    }
}

fn render_block(block: &Block) -> String {
    match block {
        Block::Title(title) => format!("# Report: {}\n\n", escape(title)),
        Block::Meta(spans) => format!("- {}\n", block_start(spans_md(spans))),
        Block::Provenance(p) => format!("- {}\n", provenance(p)),
        Block::Contents(_) => String::new(),
        Block::Notes(notes) => {
            let items: String = notes.iter().map(|n| format!("- {}\n", block_start(escape(n)))).collect();
            format!("## Notes\n\n{items}\n")
        }
        Block::Section { title, .. } => format!("## {}\n\n", escape(title)),
        Block::Subsection(spans) => format!("### {}\n\n", spans_md(spans)),
        Block::Paragraph(spans) => format!("{}\n\n", block_start(spans_md(spans))),
        Block::Lines(lines) => {
            let items: String = lines
                .iter()
                .map(|l| {
                    let indent = if l.starts_with("  ") { "  " } else { "" };
                    format!("{indent}- {}\n", block_start(escape(l)))
                })
                .collect();
            format!("{items}\n")
        }
        Block::List(items) => {
            format!("{}\n", items.iter().map(|i| format!("- {}\n", block_start(escape(i)))).collect::<String>())
        }
        Block::Table(grid) => format!("{}\n", table(grid)),
        Block::Folded { summary, body } => {
            let body: String = body.iter().map(render_block).collect();
            if body.is_empty() { body } else { format!("{}\n\n{body}", block_start(escape(summary))) }
        }
        Block::Figure(f) => figure(f),
        Block::Image { .. } => String::new(),
        Block::Code { text, language } => {
            // A fence longer than any run of backticks in the text.
            let fence = "`".repeat(longest_backtick_run(text).max(2) + 1);
            format!("{fence}{language}\n{}\n{fence}\n\n", text.trim_start_matches('\n').trim_end())
        }
    }
}

fn provenance(p: &Provenance) -> String {
    let sources: Vec<String> = p.sources.iter().map(|s| code(s)).collect();
    format!("made {} by sweep {} from {}", escape(&p.created), p.version, sources.join(", "))
}

fn figure(f: &Figure) -> String {
    let title = escape(&f.title);
    format!("### {title}\n\n![{title}]({}.png)\n\n{}\n\n", f.stem, block_start(escape(&f.caption)))
}

fn spans_md(spans: &[Span]) -> String {
    spans
        .iter()
        .map(|s| match s {
            Span::Text(t) => escape(t),
            Span::Code(t) => code(t),
            Span::Strong(t) => format!("**{}**", escape(t)),
            // The document makes links only of http(s) addresses without spaces or brackets.
            Span::Link { text, url } => format!("{} <{url}>", escape(text)),
        })
        .collect()
}

/// A pipe table; the highlighted row in bold.
fn table(grid: &Grid) -> String {
    let row = |cells: &[String], bold: bool| {
        let cells: Vec<String> = cells
            .iter()
            .map(|c| {
                let c = escape(c);
                if bold && !c.is_empty() { format!("**{c}**") } else { c }
            })
            .collect();
        format!("| {} |\n", cells.join(" | "))
    };
    let mut out = row(&grid.header, false);
    let rule: Vec<&str> = grid.numeric.iter().map(|&n| if n { "---:" } else { "---" }).collect();
    out.push_str(&format!("| {} |\n", rule.join(" | ")));
    for (i, cells) in grid.rows.iter().enumerate() {
        out.push_str(&row(cells, grid.highlight == Some(i)));
    }
    out
}

/// Inline text as Markdown shows it literally: every ASCII punctuation character Markdown gives a
/// meaning to (emphasis, code, links, images, raw HTML and entities, table borders, strikethrough)
/// backslash-escaped, `_` only where it could open or close emphasis (not inside a word, so that
/// `auc_rebal` stays readable), line breaks as spaces and control characters as U+FFFD.
fn escape(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let word = |i: Option<usize>| i.and_then(|i| chars.get(i)).is_some_and(|c| c.is_alphanumeric());
    let mut out = String::with_capacity(text.len());
    for (i, &c) in chars.iter().enumerate() {
        match c {
            '\n' | '\r' | '\t' => out.push(' '),
            c if crate::terminal::is_unsafe(c) => out.push('\u{fffd}'),
            '\\' | '`' | '*' | '[' | ']' | '<' | '>' | '&' | '|' | '~' => {
                out.push('\\');
                out.push(c);
            }
            '_' if !(word(i.checked_sub(1)) && word(Some(i + 1))) => out.push_str("\\_"),
            c => out.push(c),
        }
    }
    out
}

/// Escaped inline text that begins a line: a leading `#`, `+`, `-` or `=` followed by a space (or
/// repeated: `---`), or `1.` followed by one, would make it a heading, a list item or a rule, and
/// leading spaces a code block.
fn block_start(escaped: String) -> String {
    let text = escaped.trim_start();
    let mut chars = text.chars();
    let first = chars.next();
    let next = chars.next();
    let ends_marker = |c: Option<char>| c.is_none_or(char::is_whitespace);
    let marker_end = match first {
        Some(c @ ('#' | '+' | '-' | '=')) if ends_marker(next) || next == Some(c) => Some(0),
        Some(c) if c.is_ascii_digit() => {
            let digits = text.chars().take_while(char::is_ascii_digit).count();
            let mut after = text[digits..].chars();
            (matches!(after.next(), Some('.' | ')')) && ends_marker(after.next())).then_some(digits)
        }
        _ => None,
    };
    match marker_end {
        Some(at) => format!("{}\\{}", &text[..at], &text[at..]),
        None => text.to_string(),
    }
}

/// A code span of `text` (line breaks as spaces): its fence is longer than any run of backticks in
/// it, and padded with spaces where the text begins or ends with one.
fn code(text: &str) -> String {
    if text.is_empty() {
        return String::new();
    }
    let text: String = text.chars().map(|c| if crate::terminal::is_unsafe(c) { ' ' } else { c }).collect();
    let fence = "`".repeat(longest_backtick_run(&text) + 1);
    let pad = if text.starts_with('`') || text.ends_with('`') || text.starts_with(' ') { " " } else { "" };
    format!("{fence}{pad}{text}{pad}{fence}")
}

fn longest_backtick_run(text: &str) -> usize {
    text.split(|c| c != '`').map(str::len).max().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_text_stays_text() {
        assert_eq!(escape("<script>alert(1)</script>"), "\\<script\\>alert(1)\\</script\\>");
        assert_eq!(
            escape("[x](javascript:alert(1)) ![i](http://e/p.png)"),
            "\\[x\\](javascript:alert(1)) !\\[i\\](http://e/p.png)"
        );
        assert_eq!(escape("a | b *c* `d` ~~e~~ &amp; \\"), "a \\| b \\*c\\* \\`d\\` \\~\\~e\\~\\~ \\&amp; \\\\");
        assert_eq!(escape("auc_rebal _em_ x_"), "auc_rebal \\_em\\_ x\\_");
        assert_eq!(escape("two\nlines\x1b[31m"), "two lines\u{fffd}\\[31m");
    }

    #[test]
    fn a_line_cannot_become_a_heading_a_list_or_a_code_block() {
        assert_eq!(block_start(escape("# not a heading")), "\\# not a heading");
        assert_eq!(block_start(escape("- item")), "\\- item");
        assert_eq!(block_start(escape("1. first")), "1\\. first");
        assert_eq!(block_start(escape("2024 was a year")), "2024 was a year");
        assert_eq!(block_start(escape("0.100 higher")), "0.100 higher");
        assert_eq!(block_start(escape("-0.5 lower")), "-0.5 lower");
        assert_eq!(block_start(escape("---")), "\\---");
        assert_eq!(block_start(escape("#hashtag")), "#hashtag");
        assert_eq!(block_start(escape("      indented")), "indented");
        assert_eq!(block_start("**label**: text".into()), "**label**: text");
    }

    #[test]
    fn code_spans_hold_backticks() {
        assert_eq!(code("a.toml"), "`a.toml`");
        assert_eq!(code("a`b"), "``a`b``");
        assert_eq!(code("`x`"), "`` `x` ``");
        assert_eq!(code("two\nlines"), "`two lines`");
    }
}
