//! The report's tables as grids of text cells, built once and rendered by each output (terminal,
//! Markdown, HTML), so that the numbers agree everywhere: the ranked table, the state of every run,
//! every metric, and matching variants across sweeps. Also the number formatting they share.

use super::aggregate::{At, Stat, Variant, metric_columns};
use super::load::RunState;
use super::{Report, direction};
use crate::metrics::{Metric, Metrics};

/// A table of text cells; `numeric` columns align right, `highlight` marks the best row.
#[derive(Clone, Debug, Default)]
pub struct Grid {
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
    pub numeric: Vec<bool>,
    pub highlight: Option<usize>,
}

impl Grid {
    fn new(columns: &[(&str, bool)]) -> Grid {
        Grid {
            header: columns.iter().map(|c| c.0.to_string()).collect(),
            numeric: columns.iter().map(|c| c.1).collect(),
            ..Grid::default()
        }
    }
}

/// Decimals that show a value to the precision its spread supports: two significant digits of the
/// standard deviation, or four significant digits of the value when there is no spread.
fn decimals(value: f64, std: f64) -> usize {
    let digits = |x: f64, significant: i32| (significant - 1 - x.abs().log10().floor() as i32).clamp(0, 6) as usize;
    // A spread of rounding noise (identical values: the same judge on the same images) is no spread.
    if std.is_finite() && std > 1e-9 * value.abs() {
        digits(std, 2)
    } else if value != 0.0 && value.is_finite() {
        digits(value, 4)
    } else {
        1
    }
}

/// `mean ± std` (or the mean alone for one run), `-` for no value.
pub fn format_stat(stat: Option<Stat>) -> String {
    match stat {
        Some(s) if s.n > 1 && s.std.is_finite() => {
            let d = decimals(s.mean, s.std);
            format!("{:.d$} ± {:.d$}", s.mean, s.std)
        }
        Some(s) => format!("{:.*}", decimals(s.mean, f64::NAN), s.mean),
        None => "-".into(),
    }
}

/// The metrics shown beside the primary one: the measured ones, in the schema's order.
pub fn secondary_metrics(report: &Report) -> Vec<&'static str> {
    report.measured_metrics().into_iter().filter(|m| *m != report.metric && *m != "train_loss").collect()
}

/// The runs behind a variant's numbers: "2 done", "1 done, 1 failed", "partial: 0 of 2 done".
pub fn runs_cell(v: &Variant) -> String {
    let mut parts = vec![format!("{} done", v.done)];
    if v.unfinished > 0 {
        parts.push(format!("{} unfinished", v.unfinished));
    }
    if v.failed > 0 {
        parts.push(format!("{} failed", v.failed));
    }
    let text = parts.join(", ");
    if v.partial { format!("partial: {text}") } else { text }
}

/// The ranked table: rank, variant, the primary metric with n and the gap to the best, the other
/// metrics, the epochs used and the runs. `compact` drops the spread of the other metrics (terminal).
pub fn ranked(report: &Report, compact: bool) -> Grid {
    let at = report.at;
    let metric = report.metric.as_str();
    let others = secondary_metrics(report);
    let mut columns: Vec<(&str, bool)> =
        vec![("#", true), ("variant", false), (metric, true), ("n", true), ("vs best", true)];
    columns.extend(others.iter().map(|m| (*m, true)));
    columns.extend([("epoch", true), ("runs", false)]);
    let mut grid = Grid::new(&columns);
    let best = report.variants.first().and_then(|v| v.stat(at, metric));
    // Means without their spread share one precision per column: the median of what each row's
    // spread supports.
    let column_decimals: Vec<usize> = others
        .iter()
        .map(|m| {
            let mut d: Vec<usize> =
                report.variants.iter().filter_map(|v| v.stat(at, m)).map(|s| decimals(s.mean, s.std)).collect();
            d.sort_unstable();
            d.get(d.len() / 2).copied().unwrap_or(2)
        })
        .collect();
    for (rank, v) in report.variants.iter().enumerate() {
        let stat = v.stat(at, metric);
        let gap = match (rank, stat, best) {
            (0, Some(_), _) => "best".to_string(),
            (_, Some(s), Some(b)) => {
                let d = decimals(s.mean, s.std.max(b.std));
                format!("{:+.d$}", s.mean - b.mean)
            }
            _ => "-".into(),
        };
        let mut row = vec![(rank + 1).to_string(), v.label.clone(), format_stat(stat), n_cell(stat), gap];
        row.extend(others.iter().zip(&column_decimals).map(|(m, d)| {
            let stat = v.stat(at, m);
            if compact { stat.map_or("-".into(), |s| format!("{:.*}", d, s.mean)) } else { format_stat(stat) }
        }));
        row.push(v.epochs(&report.sets[v.set], at));
        row.push(runs_cell(v));
        grid.rows.push(row);
    }
    grid.highlight = best.map(|_| 0);
    grid
}

fn n_cell(stat: Option<Stat>) -> String {
    stat.map_or("0".into(), |s| s.n.to_string())
}

/// hyperfine-style lines under the ranked table: the best variant and how far ahead it is of each
/// other one (difference of means +/- the two standard deviations combined).
pub fn summary_lines(report: &Report) -> Vec<String> {
    let at = report.at;
    let metric = report.metric.as_str();
    let Some((best, rest)) = report.variants.split_first() else { return Vec::new() };
    let Some(b) = best.stat(at, metric) else { return Vec::new() };
    let mut lines = vec![format!(
        "{} is best by {metric} ({}): {} (n = {})",
        best.label,
        direction(report.higher_is_better),
        format_stat(Some(b)),
        b.n
    )];
    for v in rest {
        let Some(s) = v.stat(at, metric) else { continue };
        let diff = (b.mean - s.mean).abs();
        let spread = (b.std.max(0.0).powi(2) * f64::from(b.n > 1) + s.std.max(0.0).powi(2) * f64::from(s.n > 1)).sqrt();
        let stat = Stat { mean: diff, std: if b.n > 1 && s.n > 1 { spread } else { f64::NAN }, n: b.n.min(s.n) };
        let word = if b.mean >= s.mean { "higher" } else { "lower" };
        lines.push(format!("  {} {word} than {}", format_stat(Some(stat)), v.label));
    }
    lines
}

/// Every run: its state (done, partial, failed with the reason), epochs, best epoch and primary metric.
pub fn runs(report: &Report) -> Grid {
    let several = report.sets.len() > 1;
    let metric = report.metric.as_str();
    let last_header = format!("{metric} (last)");
    let mut columns: Vec<(&str, bool)> = Vec::new();
    if several {
        columns.push(("sweep", false));
    }
    columns.extend([
        ("run id", false),
        ("variant", false),
        ("seed", true),
        ("state", false),
        ("epochs", true),
        ("best epoch", true),
        (last_header.as_str(), true),
    ]);
    let mut grid = Grid::new(&columns);
    for (set, label) in report.sets.iter().zip(&report.labels) {
        for run in &set.runs {
            let mut row = Vec::new();
            if several {
                row.push(label.clone());
            }
            let planned = run.epochs.map_or("?".into(), |e| e.to_string());
            row.extend([
                run.planned.id.clone(),
                run.planned.variant.clone(),
                run.planned.seed.to_string(),
                run.state.describe(),
                format!("{}/{planned}", run.rows.len()),
                run.best_epoch.map_or("-".into(), |e| e.to_string()),
                format_stat(Stat::of(run.rows.last().and_then(|r| r.get(metric)))),
            ]);
            grid.rows.push(row);
        }
    }
    grid
}

/// "6 runs: 5 done, 1 unfinished, 0 failed".
pub fn run_counts(report: &Report) -> String {
    let runs: Vec<&RunState> = report.sets.iter().flat_map(|s| s.runs.iter().map(|r| &r.state)).collect();
    let count = |f: &dyn Fn(&RunState) -> bool| runs.iter().filter(|s| f(s)).count();
    format!(
        "{} runs: {} done, {} unfinished, {} failed{}{}",
        runs.len(),
        count(&|s| *s == RunState::Done),
        count(&|s| matches!(s, RunState::Partial(_))),
        count(&|s| matches!(s, RunState::Failed(_))),
        match count(&|s| *s == RunState::Stopped) {
            0 => String::new(),
            n => format!(", {n} stopped early"),
        },
        match count(&|s| matches!(s, RunState::Missing(_))) {
            0 => String::new(),
            n => format!(", {n} without a status"),
        }
    )
}

/// For a report made while runs still train: when it was made and how many runs are not finished
/// (failed runs count as finished: they train no more).
pub fn partial_note(report: &Report) -> Option<String> {
    let runs: Vec<&RunState> = report.sets.iter().flat_map(|s| s.runs.iter().map(|r| &r.state)).collect();
    let open = runs.iter().filter(|s| matches!(s, RunState::Partial(_) | RunState::Missing(_))).count();
    (open > 0).then(|| {
        format!(
            "Partial report, made {} while {open} of {} runs were not finished: its numbers will change \
             (`sweep report --watch` rewrites it as epochs finish).",
            report.created,
            runs.len()
        )
    })
}

/// Whether every run is done or stopped early (the runs table is then only worth a line).
pub fn all_done(report: &Report) -> bool {
    report.sets.iter().all(|s| s.runs.iter().all(|r| matches!(r.state, RunState::Done | RunState::Stopped)))
}

/// Every metric column of every variant at `at`, mean ± std with n, in the report's ranking.
pub fn metrics(report: &Report, at: At) -> Grid {
    let mut columns: Vec<(&str, bool)> = vec![("variant", false), ("n", true)];
    columns.extend(metric_columns().iter().map(|m| (*m, true)));
    let mut grid = Grid::new(&columns);
    for v in &report.variants {
        let mut row = vec![v.label.clone(), n_cell(v.stat(at, &report.metric))];
        row.extend(metric_columns().iter().map(|m| format_stat(v.stat(at, m))));
        grid.rows.push(row);
    }
    // The rows are in the report's ranking, which is only this table's at the report's epoch.
    grid.highlight = (at == report.at).then_some(0);
    grid
}

/// Variants of the same name in several sweeps: the primary metric in each and the difference of
/// each later sweep from the first that has the variant. `None` for a single sweep or no shared names.
pub fn across_sweeps(report: &Report) -> Option<Grid> {
    if report.sets.len() < 2 {
        return None;
    }
    let mut names: Vec<&str> = Vec::new();
    for v in &report.variants {
        let sets = report.variants.iter().filter(|w| w.name == v.name).count();
        if sets > 1 && !names.contains(&v.name.as_str()) {
            names.push(&v.name);
        }
    }
    if names.is_empty() {
        return None;
    }
    let headers: Vec<String> = report.labels.iter().map(|l| format!("{} ({l})", report.metric)).collect();
    let mut columns: Vec<(&str, bool)> = vec![("variant", false)];
    columns.extend(headers.iter().map(|h| (h.as_str(), true)));
    columns.push(("difference", true));
    let mut grid = Grid::new(&columns);
    for name in names {
        let stats: Vec<Option<Stat>> = (0..report.sets.len())
            .map(|set| {
                report
                    .variants
                    .iter()
                    .find(|v| v.set == set && v.name == name)
                    .and_then(|v| v.stat(report.at, &report.metric))
            })
            .collect();
        let present: Vec<Stat> = stats.iter().flatten().copied().collect();
        let diff = match present.as_slice() {
            [first, .., last] => {
                let d = decimals(last.mean, first.std.max(last.std));
                format!("{:+.d$}", last.mean - first.mean)
            }
            _ => "-".into(),
        };
        let mut row = vec![name.to_string()];
        row.extend(stats.iter().map(|s| format_stat(*s)));
        row.push(diff);
        grid.rows.push(row);
    }
    Some(grid)
}

/// Evaluations of trained runs on other data sets (`sweep eval`), each beside the run's own last
/// training epoch; `None` when no run has one.
pub fn evaluations(report: &Report) -> Option<Grid> {
    let metrics: Vec<Metric> = Metrics::held().collect();
    let mut columns: Vec<(String, bool)> =
        vec![("variant".into(), false), ("seed".into(), true), ("evaluated on".into(), false), ("images".into(), true)];
    for m in &metrics {
        columns.push((format!("{m} (eval)"), true));
        columns.push((format!("{m} (training)"), true));
    }
    let refs: Vec<(&str, bool)> = columns.iter().map(|(c, n)| (c.as_str(), *n)).collect();
    let mut grid = Grid::new(&refs);
    for set in &report.sets {
        for run in &set.runs {
            let trained = run.rows.last();
            for e in &run.evals {
                let on = match &e.data_dir {
                    Some(dir) => format!("{} ({dir})", e.dataset),
                    None => e.dataset.clone(),
                };
                let mut row = vec![run.planned.variant.clone(), run.planned.seed.to_string(), on, e.images.to_string()];
                for &m in &metrics {
                    row.push(e.metrics.value(m).map_or("-".into(), |v| format!("{v:.2}")));
                    row.push(trained.and_then(|r| r.get(m.name())).map_or("-".into(), |v| format!("{v:.2}")));
                }
                grid.rows.push(row);
            }
        }
    }
    (!grid.rows.is_empty()).then_some(grid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_show_the_precision_their_spread_supports() {
        assert_eq!(format_stat(Some(Stat { mean: 15.4567, std: 0.1734, n: 2 })), "15.46 ± 0.17");
        assert_eq!(format_stat(Some(Stat { mean: 10.33, std: 2.58, n: 3 })), "10.3 ± 2.6");
        assert_eq!(format_stat(Some(Stat { mean: 91.234, std: f64::NAN, n: 1 })), "91.23");
        assert_eq!(format_stat(Some(Stat { mean: 0.5, std: 0.0, n: 2 })), "0.5000 ± 0.0000");
        assert_eq!(format_stat(None), "-");
    }
}
