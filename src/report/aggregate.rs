//! Aggregation: the runs of a variant (one per seed, sharing the group id) summarised as mean, sample
//! standard deviation and n of every metric, at each run's last epoch and at its best epoch.
//!
//! Which runs count: a variant's finished runs; if none has finished yet, its unfinished runs with at
//! least one epoch, and the variant is marked partial. Failed runs never count (their numbers are
//! those of a diverged model) but are listed with their reason.

use super::load::{RunResult, RunState, SweepResults};
use crate::metrics::AccuracyCurve;
use crate::store::metrics_file::{COLUMNS, MetricsRow};

/// Which epoch of each run the numbers come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum At {
    Last,
    Best,
}

impl At {
    pub fn name(self) -> &'static str {
        match self {
            At::Last => "last",
            At::Best => "best",
        }
    }

    /// The epoch choice that is not this one.
    pub fn other(self) -> At {
        match self {
            At::Last => At::Best,
            At::Best => At::Last,
        }
    }

    /// The row of `run` at this epoch.
    pub fn row(self, run: &RunResult) -> Option<&MetricsRow> {
        match self {
            At::Last => run.rows.last(),
            At::Best => run.rows.iter().find(|r| Some(r.epoch) == run.best_epoch),
        }
    }

    /// The run's accuracy curve at this epoch, if the file is of the same epoch as the row.
    pub fn curve(self, run: &RunResult) -> Option<&AccuracyCurve> {
        let file = match self {
            At::Last => run.curve_last.as_ref(),
            At::Best => run.curve_best.as_ref(),
        }?;
        (Some(file.epoch) == self.row(run).map(|r| r.epoch)).then_some(&file.curve)
    }
}

/// The metrics columns aggregated: every column of `metrics.csv` but the epoch.
pub fn metric_columns() -> &'static [&'static str] {
    &COLUMNS[1..]
}

/// Mean, sample standard deviation (n - 1; NaN for one value) and count of the finite values.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Stat {
    pub mean: f64,
    pub std: f64,
    pub n: usize,
}

impl Stat {
    pub fn of(values: impl IntoIterator<Item = f64>) -> Option<Stat> {
        let values: Vec<f64> = values.into_iter().filter(|v| v.is_finite()).collect();
        let n = values.len();
        if n == 0 {
            return None;
        }
        let mean = values.iter().sum::<f64>() / n as f64;
        let std = if n > 1 {
            (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt()
        } else {
            f64::NAN
        };
        Some(Stat { mean, std, n })
    }
}

/// A variant's accuracy curves over its seeds, in percent per threshold.
#[derive(Clone, Debug)]
pub struct AccuracyStats {
    pub raw: Vec<Stat>,
    pub rebalanced: Option<Vec<Stat>>,
}

/// One variant of one sweep.
#[derive(Clone, Debug)]
pub struct Variant {
    /// Index of its sweep among the report's.
    pub set: usize,
    pub name: String,
    /// The name, prefixed with the sweep's label when several sweeps are compared.
    pub label: String,
    pub group: String,
    /// Its runs (indices into the sweep's runs), in plan order.
    pub runs: Vec<usize>,
    /// The runs its statistics use.
    pub used: Vec<usize>,
    /// Whether the used runs are unfinished ones (no run of the variant is done).
    pub partial: bool,
    pub done: usize,
    pub unfinished: usize,
    pub failed: usize,
    /// `(last, best)` statistics, one per [`metric_columns`] entry.
    last: Vec<Option<Stat>>,
    best: Vec<Option<Stat>>,
}

impl Variant {
    pub fn stat(&self, at: At, metric: &str) -> Option<Stat> {
        let i = metric_columns().iter().position(|c| *c == metric)?;
        match at {
            At::Last => self.last[i],
            At::Best => self.best[i],
        }
    }

    /// The used runs' epochs at `at`, e.g. "3" or "2-3".
    pub fn epochs(&self, set: &SweepResults, at: At) -> String {
        let epochs: Vec<u64> = self.used.iter().filter_map(|&i| at.row(&set.runs[i]).map(|r| r.epoch)).collect();
        match (epochs.iter().min(), epochs.iter().max()) {
            (Some(a), Some(b)) if a == b => a.to_string(),
            (Some(a), Some(b)) => format!("{a}-{b}"),
            _ => "-".into(),
        }
    }

    /// Per epoch, the statistic of `metric` over the used runs that reached it: the learning curve.
    pub fn learning_curve(&self, set: &SweepResults, metric: &str) -> Vec<(u64, Stat)> {
        let last = self.used.iter().filter_map(|&i| set.runs[i].rows.last().map(|r| r.epoch)).max().unwrap_or(0);
        (1..=last)
            .filter_map(|epoch| {
                let values = self
                    .used
                    .iter()
                    .filter_map(|&i| set.runs[i].rows.iter().find(|r| r.epoch == epoch).and_then(|r| r.get(metric)));
                Stat::of(values).map(|s| (epoch, s))
            })
            .collect()
    }

    /// Per threshold, the statistic of the accuracy curve over the used runs that have one at `at`
    /// (raw, and rebalanced when every such run has it).
    pub fn accuracy_curve(&self, set: &SweepResults, at: At) -> Option<AccuracyStats> {
        let curves: Vec<&AccuracyCurve> = self.used.iter().filter_map(|&i| at.curve(&set.runs[i])).collect();
        let len = curves.iter().map(|c| c.raw.len()).min()?;
        let mean = |pick: &dyn Fn(&AccuracyCurve) -> Option<&Vec<f64>>| -> Option<Vec<Stat>> {
            let series: Option<Vec<&Vec<f64>>> = curves.iter().map(|c| pick(c)).collect();
            let series = series?;
            (0..len).map(|t| Stat::of(series.iter().filter_map(|s| s.get(t).map(|v| 100.0 * v)))).collect()
        };
        let raw = mean(&|c| Some(&c.raw))?;
        Some(AccuracyStats { raw, rebalanced: mean(&|c| c.rebalanced.as_ref()) })
    }
}

/// The variants of `set` (index `set_index`), in plan order. A search's variants are compared at
/// their tuned settings: each is the trial that stands for it (`super::search`), under its name.
pub fn variants(set: &SweepResults, set_index: usize, label_prefix: Option<&str>) -> Vec<Variant> {
    let searched = set.runs.iter().any(|r| r.planned.trial.is_some());
    let chosen = super::search::chosen_groups(set);
    let mut groups: Vec<(String, String, Vec<usize>)> = Vec::new();
    for (i, run) in set.runs.iter().enumerate() {
        let name = match chosen.get(&run.planned.group) {
            Some(name) => name.clone(),
            None if searched => continue,
            None => run.planned.variant.clone(),
        };
        match groups.iter_mut().find(|(g, _, _)| *g == run.planned.group) {
            Some((_, _, runs)) => runs.push(i),
            None => groups.push((run.planned.group.clone(), name, vec![i])),
        }
    }
    groups
        .into_iter()
        .map(|(group, name, runs)| {
            let state = |i: &usize| &set.runs[*i].state;
            let done: Vec<usize> = runs.iter().copied().filter(|i| *state(i) == RunState::Done).collect();
            let unfinished: Vec<usize> = runs
                .iter()
                .copied()
                .filter(|i| {
                    matches!(state(i), RunState::Partial(_) | RunState::Stopped) && !set.runs[*i].rows.is_empty()
                })
                .collect();
            let failed = runs.iter().filter(|i| matches!(state(i), RunState::Failed(_))).count();
            let partial = done.is_empty() && !unfinished.is_empty();
            let used = if partial { unfinished.clone() } else { done.clone() };
            let stats = |at: At| -> Vec<Option<Stat>> {
                metric_columns()
                    .iter()
                    .map(|m| Stat::of(used.iter().filter_map(|&i| at.row(&set.runs[i]).and_then(|r| r.get(m)))))
                    .collect()
            };
            Variant {
                set: set_index,
                label: label_prefix.map_or(name.clone(), |p| format!("{p}/{name}")),
                name,
                group,
                done: done.len(),
                unfinished: runs
                    .iter()
                    .filter(|i| matches!(state(i), RunState::Partial(_) | RunState::Stopped))
                    .count(),
                failed,
                partial,
                last: stats(At::Last),
                best: stats(At::Best),
                used,
                runs,
            }
        })
        .collect()
}

/// Sorts variants best first by `metric` at `at`; variants without a value go last, in plan order.
pub fn rank(variants: &mut [Variant], metric: &str, higher_is_better: bool, at: At) {
    variants.sort_by(|a, b| {
        let key = |v: &Variant| v.stat(at, metric).map(|s| s.mean);
        match (key(a), key(b)) {
            (Some(x), Some(y)) if higher_is_better => y.total_cmp(&x),
            (Some(x), Some(y)) => x.total_cmp(&y),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => std::cmp::Ordering::Equal,
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_is_mean_and_sample_std_of_finite_values() {
        let s = Stat::of([1.0, 2.0, 3.0, f64::NAN]).unwrap();
        assert_eq!((s.mean, s.n), (2.0, 3));
        assert!((s.std - 1.0).abs() < 1e-12);
        let one = Stat::of([5.0]).unwrap();
        assert!(one.std.is_nan() && one.n == 1);
        assert!(Stat::of([]).is_none());
    }
}
