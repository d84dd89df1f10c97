//! A search's trials in the report: which trial stands for each searched variant in the comparison
//! (the one trained with every seed, `then = "seeds"`, else the best trial trained in full), and each
//! variant's trials as a table and a plot: the metric against every searched key, the best trial
//! marked, the trials early stopping stopped shown apart at the epoch they reached.

use std::collections::BTreeMap;

/// The file names of the search plots begin with it (`search_0.png`).
pub const FIGURE_PREFIX: &str = "search_";

use super::load::{RunState, SweepResults};
use super::tables::Grid;

/// One trial as the report shows it.
#[derive(Clone, Debug)]
pub struct TrialPoint {
    /// Index into the sweep's runs.
    pub run: usize,
    pub index: u64,
    /// `(key, value)` as sampled.
    pub sampled: Vec<(String, String)>,
    /// Epochs trained, and of how many.
    pub epochs: u64,
    pub planned: Option<u64>,
    /// Stopped early (its value is of its last epoch).
    pub stopped: bool,
    /// The primary metric after its last epoch.
    pub value: Option<f64>,
}

/// A searched variant of one sweep: its trials in order and the run that stands for it.
#[derive(Clone, Debug)]
pub struct Searched {
    pub name: String,
    pub trials: Vec<TrialPoint>,
    /// The chosen trial's group: what the comparison shows of the variant.
    pub chosen: Option<String>,
}

/// The searched variants of `set`, in plan order; none for a sweep without a search.
pub fn searched(set: &SweepResults) -> Vec<Searched> {
    let mut out: Vec<Searched> = Vec::new();
    for (i, run) in set.runs.iter().enumerate() {
        let Some(trial) = run.planned.trial.as_ref().filter(|_| !run.planned.tuned) else { continue };
        let point = TrialPoint {
            run: i,
            index: trial.index,
            sampled: trial.sampled.clone(),
            epochs: run.rows.last().map_or(0, |r| r.epoch),
            planned: run.epochs,
            stopped: run.state == RunState::Stopped,
            value: run.rows.last().and_then(|r| r.get(&set.index.metric)),
        };
        match out.iter_mut().find(|s| s.name == trial.variant) {
            Some(s) => s.trials.push(point),
            None => out.push(Searched { name: trial.variant.clone(), trials: vec![point], chosen: None }),
        }
    }
    for s in &mut out {
        s.chosen = chosen(set, &s.trials);
    }
    out
}

/// The group that stands for a variant: the one with tuned runs, else the best trial trained in
/// full (ties to the earlier trial).
fn chosen(set: &SweepResults, trials: &[TrialPoint]) -> Option<String> {
    let group = |t: &TrialPoint| set.runs[t.run].planned.group.clone();
    if let Some(t) = trials.iter().find(|t| set.runs.iter().any(|r| r.planned.tuned && r.planned.group == group(t))) {
        return Some(group(t));
    }
    // While no trial is trained in full (a search under way), the best so far.
    let better = |a: f64, b: f64| if set.index.higher_is_better { a > b } else { a < b };
    let best = |done: bool| {
        trials
            .iter()
            .filter(|t| !done || set.runs[t.run].state == RunState::Done)
            .filter_map(|t| t.value.map(|v| (t, v)))
            .reduce(|a, b| if better(b.1, a.1) { b } else { a })
            .map(|(t, _)| group(t))
    };
    best(true).or_else(|| best(false))
}

/// Group id -> the variant name it stands for, over every searched variant of `set`.
pub fn chosen_groups(set: &SweepResults) -> BTreeMap<String, String> {
    searched(set).into_iter().filter_map(|s| s.chosen.map(|g| (g, s.name))).collect()
}

/// The trials of `s` as a table: number, sampled values, epochs, the metric, which is best or stopped.
pub fn table(set: &SweepResults, s: &Searched) -> Grid {
    let keys: Vec<&str> =
        s.trials.first().map(|t| t.sampled.iter().map(|(k, _)| k.as_str()).collect()).unwrap_or_default();
    let mut grid = Grid {
        header: ["trial"].into_iter().chain(keys.iter().copied()).map(String::from).collect(),
        numeric: vec![true; keys.len() + 1],
        ..Grid::default()
    };
    grid.header.extend(["epochs".into(), set.index.metric.clone(), "".into()]);
    grid.numeric.extend([true, true, false]);
    for (row, t) in s.trials.iter().enumerate() {
        let group = &set.runs[t.run].planned.group;
        let best = s.chosen.as_ref() == Some(group);
        if best {
            grid.highlight = Some(row);
        }
        let note = match (best, t.stopped) {
            (true, _) => "best".to_string(),
            (false, true) => "stopped early".to_string(),
            (false, false) => String::new(),
        };
        let mut cells = vec![format!("#{}", t.index)];
        cells.extend(t.sampled.iter().map(|(_, v)| v.clone()));
        cells.push(t.planned.map_or(t.epochs.to_string(), |p| format!("{}/{p}", t.epochs)));
        cells.push(t.value.map_or("-".into(), |v| format!("{v:.3}")));
        cells.push(note);
        grid.rows.push(cells);
    }
    grid
}
