//! `[search] then = "seeds"`: once every trial of a variant has ended (trained in full or stopped
//! early), its best trial, which then trains with every seed of `[sweep] seeds`. Chosen from the
//! files alone (the primary metric after the last epoch of the trials trained in full; ties to the
//! earlier trial), so a `sweep run` after a kill chooses the same.

use std::collections::BTreeMap;
use std::path::Path;

use crate::store::metrics_file::MetricsFile;
use crate::store::plan::SweepIndex;
use crate::store::status::{RunStatus, State};

/// The best trial of each variant whose search has ended with some trial trained in full, as
/// indices into `index.runs`, in plan order.
pub fn best_trials(dir: &Path, index: &SweepIndex) -> Vec<usize> {
    let mut variants: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, run) in index.runs.iter().enumerate() {
        if let Some(trial) = run.trial.as_ref().filter(|_| !run.tuned) {
            variants.entry(&trial.variant).or_default().push(i);
        }
    }
    let mut best = Vec::new();
    for runs in variants.values() {
        let mut scored = Vec::new();
        let mut ended = true;
        for &i in runs {
            let run_dir = dir.join(&index.runs[i].id);
            let status = RunStatus::observe(&run_dir).ok().flatten();
            match status.as_ref().map(|s| s.state) {
                Some(State::Done) => {
                    let rows = MetricsFile::rows_noting(&run_dir, &index.runs[i].id, &mut Vec::new());
                    let epochs = status.map_or(0, |s| s.epochs_done);
                    if let Some(v) = rows.iter().find(|r| r.epoch == epochs).and_then(|r| r.get(&index.metric)) {
                        scored.push((i, v));
                    }
                }
                Some(State::Stopped | State::Failed) => {}
                Some(State::Pending | State::Running | State::Interrupted) | None => ended = false,
            }
        }
        let better = |a: f64, b: f64| if index.higher_is_better { a > b } else { a < b };
        let top = scored.into_iter().reduce(|a, b| if better(b.1, a.1) { b } else { a });
        if let (true, Some((i, _))) = (ended, top) {
            best.push(i);
        }
    }
    best.sort_unstable();
    best
}
