//! `sweep report`: builds the report of one or more sweeps, writes it under `reports/`, and prints
//! its summary (the report's document at [`Detail::Summary`], rendered for a terminal: the ranked
//! table with the best highlighted, how far ahead the best is, which runs are unfinished or failed,
//! the verdicts on published numbers) and what was written.

use std::io::{IsTerminal, Write};
use std::path::Path;

use anyhow::bail;

use super::status_cmd::SweepView;
use super::table::Table;
use super::{CmdResult, EpochChoice, ReportArgs};
use crate::report::aggregate::At;
use crate::report::document::{Block, Detail, Span};
use crate::report::summary::SUMMARY_FILE;
use crate::report::tables::Grid;
use crate::report::{Format, Renderer, Report, Target};
use crate::store::plan::PLAN_FILE;
use crate::terminal::line;

pub fn report(args: ReportArgs) -> CmdResult {
    let targets = args.targets.iter().map(|t| target(t, &args.results)).collect::<anyhow::Result<Vec<_>>>()?;
    let at = match args.epoch {
        EpochChoice::Last => At::Last,
        EpochChoice::Best => At::Best,
    };
    if args.watch {
        return watch(&args, &targets, at);
    }
    write_and_summarise(&args, &targets, at)
}

/// Writes the report and prints its terminal summary and what was written.
fn write_and_summarise(args: &ReportArgs, targets: &[Target], at: At) -> CmdResult {
    let report = Report::build(targets, at)?;
    let out = args.output.clone().unwrap_or_else(|| report.default_output());
    let files = report.write(&out)?;
    let ansi = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    print!("{}", report.render(&Terminal { ansi }, &[])?);
    let pngs = files.iter().filter(|f| f.extension().is_some_and(|e| e == "png")).count();
    let names: Vec<&str> = std::iter::once(SUMMARY_FILE).chain(Format::ALL.map(Format::file_name)).collect();
    println!(
        "\nwrote {} files to {}: {} and {pngs} PNG images (plots also as SVG)",
        files.len(),
        line(&out.display().to_string()),
        names.join(", ")
    );
    Ok(())
}

/// `--watch`: the report rewritten (marked partial) each time an epoch finishes in one of the
/// sweeps, until every run is done or failed; then the final report and its summary.
fn watch(args: &ReportArgs, targets: &[Target], at: At) -> CmdResult {
    let every = std::time::Duration::from_secs_f64(args.interval);
    let mut last = String::new();
    loop {
        let views = targets.iter().map(|t| SweepView::read(&t.dir)).collect::<anyhow::Result<Vec<_>>>()?;
        if views.iter().all(SweepView::is_finished) {
            return write_and_summarise(args, targets, at);
        }
        // The status tables change when an epoch is recorded (its metric, time and ETA).
        let progress: String = views.iter().map(SweepView::table).collect();
        let trained = views.iter().flat_map(|v| &v.runs).any(|r| r.epochs_done.unwrap_or(0) > 0);
        if progress != last && trained {
            let report = Report::build(targets, at)?;
            let out = args.output.clone().unwrap_or_else(|| report.default_output());
            report.write(&out)?;
            let (finished, total) = views.iter().fold((0, 0), |(f, t), v| (f + v.finished, t + v.total));
            println!(
                "{}: wrote a partial report to {} ({finished} of {total} runs finished)",
                report.created,
                line(&out.display().to_string())
            );
            std::io::stdout().flush()?;
        }
        last = progress;
        std::thread::sleep(every);
    }
}

/// The terminal's summary of a report: headings as `heading:` lines, tables aligned (the best row
/// highlighted on a colour terminal), lists indented; every text through [`line`], so that names,
/// descriptions and reasons from specs and results files cannot send control characters.
struct Terminal {
    ansi: bool,
}

impl Renderer for Terminal {
    fn detail(&self) -> Detail {
        Detail::Summary
    }

    fn render(&self, doc: &[Block]) -> anyhow::Result<String> {
        Ok(doc.iter().map(|b| self.block(b)).collect())
    }
}

impl Terminal {
    fn block(&self, block: &Block) -> String {
        match block {
            Block::Title(text) => format!("{}\n", line(text)),
            Block::Meta(spans) | Block::Paragraph(spans) => format!("{}\n", plain(spans)),
            Block::Subsection(spans) => format!("{}:\n", plain(spans)),
            Block::Notes(notes) => notes.iter().map(|n| format!("\nnote: {}\n", line(n))).collect(),
            Block::Section { title, .. } => format!("\n{}:\n", line(&lower_first(title))),
            Block::Lines(lines) => lines.iter().map(|l| format!("{}\n", line(l))).collect(),
            Block::List(items) => items.iter().map(|i| format!("  {}\n", line(i))).collect(),
            // The table escapes its cells itself.
            Block::Table(grid) => format!("{}\n", terminal_table(grid).render_styled(self.ansi)),
            Block::Folded { summary, body } => {
                format!("{}\n{}", line(summary), body.iter().map(|b| self.block(b)).collect::<String>())
            }
            // A terminal shows no pictures, no verbatim files and no provenance.
            Block::Provenance(_) | Block::Contents(_) | Block::Figure(_) | Block::Image { .. } | Block::Code { .. } => {
                String::new()
            }
        }
    }
}

/// Spans as one line of plain text, control characters escaped.
fn plain(spans: &[Span]) -> String {
    spans
        .iter()
        .map(|s| match s {
            Span::Text(t) | Span::Code(t) | Span::Strong(t) => line(t).into_owned(),
            Span::Link { text, url } => format!("{} ({})", line(text), line(url)),
        })
        .collect()
}

/// `Published references of a` -> `published references of a`: the terminal's headings read as lines.
fn lower_first(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map_or(String::new(), |c| c.to_lowercase().chain(chars).collect())
}

/// A spec (its sweep's folder under `results`) or a sweep's results folder.
fn target(path: &Path, results: &Path) -> anyhow::Result<Target> {
    let dir = super::run_cmd::resolve_sweep_dir(Some(path), results)?;
    super::run_cmd::not_a_results_root(&dir, "report")?;
    let spec = (!path.is_dir()).then(|| path.to_path_buf());
    if spec.is_some() && !dir.join(PLAN_FILE).is_file() {
        bail!(
            "{} has no results in {}: train it first (`sweep run {}`), or give --results DIR or the sweep's results folder",
            path.display(),
            dir.display(),
            path.display()
        );
    }
    Ok(Target { dir, spec })
}

fn terminal_table(grid: &Grid) -> Table {
    let mut table = Table::new(grid.header.iter().map(String::as_str));
    for (i, numeric) in grid.numeric.iter().enumerate() {
        if *numeric {
            table = table.align_right(i);
        }
    }
    for row in &grid.rows {
        table.row(row.iter().map(String::as_str));
    }
    if let Some(i) = grid.highlight {
        table.highlight(i);
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_terminal_summary_escapes_control_characters_from_specs_and_results() {
        let evil = "a\x1b[2J\x1b]0;title\x07\u{202e}b";
        let doc = [
            Block::Title(evil.into()),
            Block::Meta(vec![Span::Strong(evil.into()), Span::Text(evil.into())]),
            Block::Notes(vec![evil.into()]),
            Block::List(vec![evil.into()]),
            Block::Lines(vec![evil.into()]),
            Block::Table(Grid {
                header: vec!["variant".into()],
                numeric: vec![false],
                rows: vec![vec![evil.into()]],
                ..Grid::default()
            }),
        ];
        let out = Terminal { ansi: false }.render(&doc).unwrap();
        assert!(!out.contains('\x1b') && !out.contains('\u{202e}') && !out.contains('\x07'), "{out:?}");
        assert!(out.contains("a\\u{1b}[2J"), "{out:?}");
    }
}
