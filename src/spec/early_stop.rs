//! `[early_stop]`: which trials of a search the orchestrator stops before their last epoch.
//!
//! ```toml
//! [early_stop]
//! method = "asha"     # or "median"
//! metric = "psnr"     # default: the sweep's primary metric
//! min_epochs = 1      # asha: the first rung; median: no run is stopped before it
//! reduction = 3       # asha: rungs at min_epochs * reduction^k, the top 1/reduction go on
//! min_runs = 3        # median: the other runs an epoch needs before it stops anyone
//! ```
//!
//! What is read here is the rule; the decisions are the orchestrator's (`crate::runner::early_stop`),
//! made from the runs' metrics files.

use toml::Value;
use toml::de::DeValue;

use super::error::did_you_mean;
use super::parse::{Reader, metric_help};
use super::schema;
use super::value::{Origin, show};
use crate::metrics::Metric;
use crate::named::{Named, named_enum};

named_enum! {
    /// `[early_stop] method`.
    pub enum StopMethod {
        /// Asynchronous successive halving (Li et al. 2020).
        Asha = "asha",
        /// Stop a run worse than the median of the other runs at the same epoch (Golovin et al. 2017).
        Median = "median",
    }
}

/// A spec's `[early_stop]` table.
#[derive(Clone, Debug)]
pub struct EarlyStop {
    pub method: StopMethod,
    /// `None`: the sweep's primary metric.
    pub metric: Option<Metric>,
    pub metric_origin: Origin,
    pub min_epochs: u64,
    pub reduction: u64,
    pub min_runs: usize,
    pub origin: Origin,
}

/// The early-stopping rule of a plan, its metric resolved: what the orchestrator applies.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StopRule {
    pub method: StopMethod,
    pub metric: Metric,
    pub higher_is_better: bool,
    pub min_epochs: u64,
    pub reduction: u64,
    pub min_runs: usize,
}

impl StopRule {
    /// ASHA's rungs below `epochs`: `min_epochs * reduction^k`.
    pub fn rungs(&self, epochs: u64) -> Vec<u64> {
        std::iter::successors(Some(self.min_epochs.max(1)), |&r| r.checked_mul(self.reduction.max(2)))
            .take_while(|&r| r < epochs)
            .collect()
    }
}

const KEYS: &[&str] = &["method", "metric", "min_epochs", "reduction", "min_runs"];

/// Sets one `[early_stop]` key (from the spec or from `--set early_stop.KEY=VALUE`).
pub fn apply_early_stop_key(stop: &mut EarlyStop, key: &str, value: &Value) -> Result<(), (String, Option<String>)> {
    let invalid = |help: String| Err((format!("[early_stop] {key} = {} is not valid", show(value)), Some(help)));
    let count = |min: i64| value.as_integer().filter(|&i| i >= min).and_then(|i| u64::try_from(i).ok());
    match key {
        "method" => match value.as_str().and_then(StopMethod::parse) {
            Some(m) => stop.method = m,
            None => return invalid(format!("give one of {}", schema::quoted_list(&StopMethod::NAMES))),
        },
        "metric" => match value.as_str().and_then(Metric::parse) {
            Some(m) => stop.metric = Some(m),
            None => {
                let help = metric_help(value.as_str().unwrap_or(""), "valid metrics:", '"');
                return Err((format!("[early_stop] metric = {} is not a known metric", show(value)), Some(help)));
            }
        },
        "min_epochs" => match count(1) {
            Some(n) => stop.min_epochs = n,
            None => return invalid("give an integer >= 1, e.g. min_epochs = 1".into()),
        },
        "reduction" => match count(2) {
            Some(n) => stop.reduction = n,
            None => return invalid("give an integer >= 2, e.g. reduction = 3 (the top third goes on)".into()),
        },
        "min_runs" => match count(1) {
            Some(n) => stop.min_runs = n as usize,
            None => return invalid("give an integer >= 1, e.g. min_runs = 3".into()),
        },
        _ => {
            let help = did_you_mean(key, KEYS.iter().copied())
                .map(|s| format!("did you mean `{s}`?"))
                .unwrap_or_else(|| format!("[early_stop] takes {}", schema::quoted_list(KEYS)));
            return Err((format!("unknown key `{key}` in [early_stop]"), Some(help)));
        }
    }
    Ok(())
}

/// Reads `[early_stop]`; problems go to `r`.
pub(super) fn read(r: &mut Reader, v: &toml::Spanned<DeValue>) -> Option<EarlyStop> {
    let Some(t) = v.get_ref().as_table() else {
        r.error("`early_stop` must be a table: [early_stop]".into(), v.span(), None);
        return None;
    };
    let mut stop = EarlyStop {
        method: StopMethod::Asha,
        metric: None,
        metric_origin: r.origin(v.span()),
        min_epochs: 1,
        reduction: 3,
        min_runs: 3,
        origin: r.origin(v.span()),
    };
    if !t.iter().any(|(k, _)| k.get_ref() == "method") {
        let help = format!("add method = one of {}", schema::quoted_list(&StopMethod::NAMES));
        r.error("[early_stop] has no method".into(), v.span(), Some(help));
    }
    for (k, v) in t.iter() {
        let key = k.get_ref().as_ref();
        let Some(value) = r.value(v, &format!("[early_stop] {key}")) else { continue };
        if key == "metric" {
            stop.metric_origin = r.origin(v.span());
        }
        if let Err((msg, help)) = apply_early_stop_key(&mut stop, key, &value) {
            let span = if KEYS.contains(&key) { v.span() } else { k.span() };
            r.error(msg, span, help);
        }
    }
    Some(stop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rungs_grow_by_the_reduction_below_the_epochs() {
        let rule = StopRule {
            method: StopMethod::Asha,
            metric: Metric::Psnr,
            higher_is_better: true,
            min_epochs: 1,
            reduction: 3,
            min_runs: 3,
        };
        assert_eq!(rule.rungs(10), [1, 3, 9]);
        assert_eq!(rule.rungs(9), [1, 3]);
        assert_eq!(StopRule { min_epochs: 2, reduction: 2, ..rule }.rungs(16), [2, 4, 8]);
        assert!(rule.rungs(1).is_empty());
    }
}
