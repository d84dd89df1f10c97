//! `report.md`: the report's tables as Markdown pipe tables that paste into a paper draft or an
//! issue, the verdicts on published references, and the figures linked beside it.

use std::path::{Path, PathBuf};

use anyhow::Result;

use super::tables::{self, Grid};
use super::{Figure, Report, reference};
use crate::atomic::write_atomic;

pub const MARKDOWN_FILE: &str = "report.md";

pub fn write(report: &Report, out: &Path, figures: &[Figure]) -> Result<PathBuf> {
    let path = out.join(MARKDOWN_FILE);
    write_atomic(&path, render(report, figures).as_bytes())?;
    Ok(path)
}

fn render(report: &Report, figures: &[Figure]) -> String {
    let mut md = format!("# Report: {}\n\n", report.title());
    for (set, label) in report.sets.iter().zip(&report.labels) {
        if !set.index.description.is_empty() {
            md.push_str(&format!("- **{label}**: {}\n", set.index.description));
        }
    }
    md.push_str(&format!(
        "- made {} by sweep {} from {}\n- {}\n- {}\n\n",
        report.created,
        env!("CARGO_PKG_VERSION"),
        report.sets.iter().map(|s| format!("`{}`", s.dir.display())).collect::<Vec<_>>().join(", "),
        tables::run_counts(report),
        report.basis()
    ));

    md.push_str("## Ranking\n\n");
    md.push_str(&table(&tables::ranked(report, false)));
    md.push('\n');
    for line in tables::summary_lines(report) {
        md.push_str(&format!("{}- {}\n", if line.starts_with("  ") { "  " } else { "" }, line.trim_start()));
    }
    md.push('\n');

    if !report.notes.is_empty() {
        md.push_str("## Notes\n\n");
        for note in &report.notes {
            md.push_str(&format!("- {}\n", escape(note)));
        }
        md.push('\n');
    }
    if !tables::all_done(report) {
        md.push_str("## Runs\n\nNot every run is done: partial runs count only for variants without a finished run, failed runs never.\n\n");
        md.push_str(&table(&tables::runs(report)));
        md.push('\n');
    }
    for at in [report.at, report.at.other()] {
        md.push_str(&format!("## Every metric at the {} epoch\n\n", at.name()));
        md.push_str(&table(&tables::metrics(report, at)));
        md.push('\n');
    }
    for (set, comparison) in reference::for_report(report) {
        md.push_str(&format!("## Published references ({})\n\n", report.labels[set]));
        let source = match &comparison.url {
            Some(url) => format!("{} <{url}>", comparison.citation),
            None => comparison.citation.clone(),
        };
        md.push_str(&format!("Source: {}\n\n", escape(&source)));
        md.push_str(&table(&comparison.table));
        md.push('\n');
        for v in &comparison.verdicts {
            md.push_str(&format!("- {}\n", escape(&v.line)));
        }
        md.push('\n');
        if !comparison.claims.is_empty() {
            md.push_str("Published claims:\n\n");
            for c in &comparison.claims {
                md.push_str(&format!("- {}\n", escape(&c.line)));
            }
            md.push('\n');
        }
        let pairs = reference::pairs_table(&comparison.verdicts);
        if !pairs.rows.is_empty() {
            md.push_str(&table(&pairs));
            md.push('\n');
        }
    }
    if let Some(grid) = tables::evaluations(report) {
        md.push_str("## Evaluations on other data sets\n\n`sweep eval` results of trained runs, each beside the run's last training epoch.\n\n");
        md.push_str(&table(&grid));
        md.push('\n');
    }
    if let Some(grid) = tables::across_sweeps(report) {
        md.push_str("## Across sweeps\n\n");
        md.push_str(&table(&grid));
        md.push('\n');
    }
    if !figures.is_empty() {
        md.push_str("## Figures\n\n");
        for f in figures {
            md.push_str(&format!("### {}\n\n![{}]({}.png)\n\n{}\n\n", f.title, f.title, f.stem, escape(&f.caption)));
        }
    }
    md
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
