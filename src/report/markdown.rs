//! `report.md`: the report as Markdown that pastes into a paper draft or an issue: pipe tables, the
//! verdicts on published references, and the figures linked beside it. It links only the files of
//! its own folder, so a variant's own sample sheet (in the results) is left out; folded detail is
//! shown in full under its summary.

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
        Block::Meta(spans) => format!("- {}\n", spans_md(spans)),
        Block::Provenance(p) => format!("- {}\n", provenance(p)),
        Block::Contents(_) => String::new(),
        Block::Notes(notes) => {
            let items: String = notes.iter().map(|n| format!("- {}\n", escape(n))).collect();
            format!("## Notes\n\n{items}\n")
        }
        Block::Section { title, .. } => format!("## {}\n\n", escape(title)),
        Block::Subsection(spans) => format!("### {}\n\n", spans_md(spans)),
        Block::Paragraph(spans) => format!("{}\n\n", spans_md(spans)),
        Block::Lines(lines) => {
            let items: String = lines
                .iter()
                .map(|l| format!("{}- {}\n", if l.starts_with("  ") { "  " } else { "" }, escape(l.trim_start())))
                .collect();
            format!("{items}\n")
        }
        Block::List(items) => format!("{}\n", items.iter().map(|i| format!("- {}\n", escape(i))).collect::<String>()),
        Block::Table(grid) => format!("{}\n", table(grid)),
        Block::Folded { summary, body } => {
            let body: String = body.iter().map(render_block).collect();
            if body.is_empty() { body } else { format!("{}\n\n{body}", escape(summary)) }
        }
        Block::Figure(f) => figure(f),
        Block::Image { .. } => String::new(),
        Block::Code { text, language } => {
            // A fence longer than any run of backticks in the text.
            let longest = text.split(|c| c != '`').map(str::len).max().unwrap_or(0);
            let fence = "`".repeat(longest.max(2) + 1);
            format!("{fence}{language}\n{}\n{fence}\n\n", text.trim_start_matches('\n').trim_end())
        }
    }
}

fn provenance(p: &Provenance) -> String {
    let sources: Vec<String> = p.sources.iter().map(|s| format!("`{s}`")).collect();
    format!("made {} by sweep {} from {}", p.created, p.version, sources.join(", "))
}

fn figure(f: &Figure) -> String {
    format!("### {}\n\n![{}]({}.png)\n\n{}\n\n", f.title, f.title, f.stem, escape(&f.caption))
}

fn spans_md(spans: &[Span]) -> String {
    spans
        .iter()
        .map(|s| match s {
            Span::Text(t) => escape(t),
            Span::Code(t) => format!("`{t}`"),
            Span::Strong(t) => format!("**{}**", escape(t)),
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

/// Escapes what Markdown would read as a cell border or emphasis (underscores inside words are safe).
fn escape(text: &str) -> String {
    text.replace('|', "\\|").replace('*', "\\*").replace('\n', " ")
}
