//! Early stopping of a search's trials, decided by the orchestrator from the runs' files: each
//! trial's metric per checkpointed epoch (`metrics.csv`, up to the epochs its checkpoints hold), with
//! the other trials of its variant. A [`Stopper`] turns those curves into how far each run may train,
//! one file per method (`asha`, `median`), registered by one arm of [`stopper`]; the decisions go to
//! each run's `decision.json` (`crate::store::decision`), which the trainer reads before each epoch.
//!
//! Decisions are a function of the files alone, so they hold whoever runs the loop (the local
//! executor with any number of slots, the Slurm follower) and whenever: a `sweep run` after a kill -9
//! derives the same ones from the same files. A stopped run whose decision later lets it go on (ASHA
//! promotes it) is queued again and resumes from its checkpoint.

pub mod asha;
pub mod median;

use std::collections::BTreeMap;

use anyhow::Result;

use super::Sweep;
use crate::spec::early_stop::{StopMethod, StopRule};
use crate::store::decision::Decision;
use crate::store::metrics_file::MetricsFile;
use crate::store::status::{RunStatus, State};

/// One trial's metric after each checkpointed epoch (`values[e - 1]` after epoch `e`), and the
/// epochs it trains in full.
#[derive(Clone, Debug, PartialEq)]
pub struct Curve {
    pub values: Vec<f64>,
    pub epochs: u64,
}

impl Curve {
    /// Epochs with a value.
    pub fn done(&self) -> u64 {
        self.values.len() as u64
    }

    /// The value after epoch `epoch`, if it has one.
    pub fn at(&self, epoch: u64) -> Option<f64> {
        epoch.checked_sub(1).and_then(|i| self.values.get(i as usize)).copied()
    }
}

/// How one way of stopping early decides.
pub trait Stopper {
    /// For the trials of one variant, in plan order: how far each may train.
    fn decide(&self, rule: &StopRule, curves: &[Curve]) -> Vec<Decision>;
}

/// The implementation of `method`: one arm per file.
pub fn stopper(method: StopMethod) -> &'static dyn Stopper {
    match method {
        StopMethod::Asha => &asha::Asha,
        StopMethod::Median => &median::Median,
    }
}

/// Whether `a` is better than `b` under `rule`.
pub fn better(rule: &StopRule, a: f64, b: f64) -> bool {
    if rule.higher_is_better { a > b } else { a < b }
}

/// Decides for every trial of the sweep (see the module doc) and writes each run's decision file.
/// Returns the stopped runs whose decision now lets them go on, in plan order.
pub fn decide(sweep: &Sweep, rule: &StopRule) -> Result<Vec<usize>> {
    let mut variants: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, run) in sweep.index.runs.iter().enumerate() {
        if let Some(trial) = run.trial.as_ref().filter(|_| !run.tuned) {
            variants.entry(&trial.variant).or_default().push(i);
        }
    }
    let mut promoted = Vec::new();
    for runs in variants.values() {
        let mut statuses = Vec::new();
        let mut curves = Vec::new();
        for &run in runs {
            let dir = sweep.run_dir(run);
            let status = RunStatus::observe(&dir).ok().flatten();
            // A failed trial reaches no further rung: it does not hold the others back.
            let (epochs, done) = match &status {
                Some(s) if s.state == State::Failed => (s.epochs_done, s.epochs_done),
                Some(s) => (s.epochs, s.epochs_done),
                None => (0, 0),
            };
            let rows = MetricsFile::rows_noting(&dir, &sweep.index.runs[run].id, &mut Vec::new());
            let values: Vec<f64> = (1..=done)
                .map_while(|e| rows.iter().find(|r| r.epoch == e).and_then(|r| r.get(rule.metric.name())))
                .collect();
            curves.push(Curve { values, epochs });
            statuses.push(status);
        }
        for ((&run, decision), (status, curve)) in
            runs.iter().zip(stopper(rule.method).decide(rule, &curves)).zip(statuses.iter().zip(&curves))
        {
            decision.write(&sweep.run_dir(run))?;
            let stopped = status.as_ref().is_some_and(|s| s.state == State::Stopped);
            if stopped && !decision.stops_at(curve.done()) {
                promoted.push(run);
            }
        }
    }
    promoted.sort_unstable();
    Ok(promoted)
}
