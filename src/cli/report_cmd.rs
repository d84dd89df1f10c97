//! `sweep report`: builds the report of one or more sweeps, writes it under `reports/`, and prints
//! the ranked table (best highlighted), how far ahead the best is, which runs are unfinished or
//! failed, the verdicts on published numbers, and what was written.

use std::io::IsTerminal;
use std::path::Path;

use anyhow::bail;

use super::table::Table;
use super::{CmdResult, EpochChoice, ReportArgs};
use crate::report::aggregate::At;
use crate::report::load::RunState;
use crate::report::tables::{self, Grid};
use crate::report::{Report, Target, reference};
use crate::store::plan::PLAN_FILE;

pub fn report(args: ReportArgs) -> CmdResult {
    let targets = args.targets.iter().map(|t| target(t, &args.results)).collect::<anyhow::Result<Vec<_>>>()?;
    let at = match args.epoch {
        EpochChoice::Last => At::Last,
        EpochChoice::Best => At::Best,
    };
    let report = Report::build(&targets, at)?;
    let out = args.output.clone().unwrap_or_else(|| report.default_output());
    let files = report.write(&out)?;

    let ansi = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    println!("{}", report.title());
    for set in &report.sets {
        if !set.index.description.is_empty() {
            println!("{}", set.index.description);
        }
    }
    println!("{}\n{}\n", tables::run_counts(&report), report.basis());
    print!("{}", terminal_table(&tables::ranked(&report, true)).render_styled(ansi));
    println!();
    for line in tables::summary_lines(&report) {
        println!("{line}");
    }
    let unfinished: Vec<String> = report
        .sets
        .iter()
        .flat_map(|s| &s.runs)
        .filter(|r| r.state != RunState::Done)
        .map(|r| format!("  {} {} seed {}: {}", r.planned.id, r.planned.variant, r.planned.seed, r.state.describe()))
        .collect();
    if !unfinished.is_empty() {
        println!("\nruns not done (partial runs count only for variants without a finished run):");
        for line in unfinished {
            println!("{line}");
        }
    }
    for (set, comparison) in reference::for_report(&report) {
        println!("\npublished references of {} ({}):", report.labels[set], comparison.citation);
        for v in &comparison.verdicts {
            println!("  {}", v.line);
        }
        for c in &comparison.claims {
            println!("  claim {}", c.line);
        }
    }
    if let Some(grid) = tables::evaluations(&report) {
        println!("\nevaluations on other data sets (sweep eval), beside each run's last training epoch:");
        print!("{}", terminal_table(&grid).render_styled(ansi));
    }
    for note in &report.notes {
        println!("\nnote: {note}");
    }
    let pngs = files.iter().filter(|f| f.extension().is_some_and(|e| e == "png")).count();
    println!(
        "\nwrote {} files to {}: summary.csv, report.md, index.html and {pngs} PNG images (plots also as SVG)",
        files.len(),
        out.display()
    );
    Ok(())
}

/// A spec (its sweep's folder under `results`) or a sweep's results folder.
fn target(path: &Path, results: &Path) -> anyhow::Result<Target> {
    let dir = super::run_cmd::resolve_sweep_dir(Some(path), results)?;
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
