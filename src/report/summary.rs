//! `summary.csv`: one row per variant and epoch choice (`at` = last or best), with the runs behind it
//! (`basis`: done, partial when only unfinished runs have numbers, none when no run has) and every
//! metric's mean and sample standard deviation (empty for one run), at full precision for programs.

use std::path::{Path, PathBuf};

use anyhow::Result;

use super::Report;
use super::aggregate::{At, metric_columns};
use crate::atomic::write_atomic;

pub const SUMMARY_FILE: &str = "summary.csv";

pub fn write(report: &Report, out: &Path) -> Result<PathBuf> {
    let mut csv = csv::Writer::from_writer(Vec::new());
    let mut header: Vec<String> = [
        "sweep",
        "variant",
        "group",
        "at",
        "basis",
        "n",
        "seeds",
        "epochs",
        "runs_done",
        "runs_unfinished",
        "runs_failed",
    ]
    .map(String::from)
    .to_vec();
    for m in metric_columns() {
        header.push(format!("{m}_mean"));
        header.push(format!("{m}_std"));
    }
    csv.write_record(&header)?;
    for v in &report.variants {
        let set = &report.sets[v.set];
        for at in [At::Last, At::Best] {
            let used: Vec<_> = v.used.iter().map(|&i| &set.runs[i]).filter(|r| at.row(r).is_some()).collect();
            let join =
                |f: &dyn Fn(&super::load::RunResult) -> String| used.iter().map(|r| f(r)).collect::<Vec<_>>().join(" ");
            let mut row = vec![
                text_cell(&set.index.sweep),
                text_cell(&v.name),
                v.group.clone(),
                at.name().to_string(),
                match (v.used.is_empty(), v.partial) {
                    (true, _) => "none",
                    (false, true) => "partial",
                    (false, false) => "done",
                }
                .to_string(),
                used.len().to_string(),
                join(&|r| r.planned.seed.to_string()),
                join(&|r| at.row(r).map_or(String::new(), |row| row.epoch.to_string())),
                v.done.to_string(),
                v.unfinished.to_string(),
                v.failed.to_string(),
            ];
            for m in metric_columns() {
                let stat = v.stat(at, m);
                let cell = |x: Option<f64>| x.filter(|x| x.is_finite()).map_or(String::new(), |x| x.to_string());
                row.push(cell(stat.map(|s| s.mean)));
                row.push(cell(stat.map(|s| s.std)));
            }
            csv.write_record(&row)?;
        }
    }
    let path = out.join(SUMMARY_FILE);
    write_atomic(&path, &csv.into_inner().map_err(|e| e.into_error())?)?;
    Ok(path)
}

/// A cell of text from a spec or a results file (a name): one that a spreadsheet would run as a
/// formula (it begins with `=`, `+`, `-`, `@`, a tab or a carriage return) gets a leading `'`, as
/// OWASP advises against CSV injection. Numbers are written as numbers, negative ones included.
fn text_cell(text: &str) -> String {
    if text.starts_with(['=', '+', '-', '@', '\t', '\r']) { format!("'{text}") } else { text.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_a_spreadsheet_would_run_are_quoted() {
        assert_eq!(text_cell("=HYPERLINK(\"http://evil\")"), "'=HYPERLINK(\"http://evil\")");
        for formula in ["+1", "-1+2", "@SUM(A1)", "\tx", "\rx"] {
            assert!(text_cell(formula).starts_with('\''), "{formula}");
        }
        assert_eq!(text_cell("l2,lr=0.1"), "l2,lr=0.1");
    }
}
