//! The median stopping rule (Golovin et al., "Google Vizier", KDD 2017; Optuna's MedianPruner): a
//! trial whose metric after its latest epoch is worse than the median of the other trials of its
//! variant after the same epoch stops there, from `min_epochs` on and once `min_runs` other trials
//! have that epoch. Only the latest epoch counts: a stopped trial that the others' later results put
//! back above the median goes on. The trainer asks before each epoch, so a decision made while a
//! trial trains takes effect at the next epoch.

use super::{Curve, Stopper, better};
use crate::spec::early_stop::StopRule;
use crate::store::decision::Decision;

pub struct Median;

impl Stopper for Median {
    fn decide(&self, rule: &StopRule, curves: &[Curve]) -> Vec<Decision> {
        (0..curves.len()).map(|i| decide_one(rule, curves, i)).collect()
    }
}

fn decide_one(rule: &StopRule, curves: &[Curve], i: usize) -> Decision {
    let go_on = Decision { epochs: None, reason: "median: not below the median".into() };
    let epoch = curves[i].done();
    let Some(value) = curves[i].at(epoch).filter(|_| epoch >= rule.min_epochs && epoch < curves[i].epochs) else {
        return go_on;
    };
    let mut others: Vec<f64> =
        curves.iter().enumerate().filter(|&(j, _)| j != i).filter_map(|(_, c)| c.at(epoch)).collect();
    if others.len() < rule.min_runs {
        return go_on;
    }
    others.sort_by(f64::total_cmp);
    let n = others.len();
    let median = if n % 2 == 1 { others[n / 2] } else { (others[n / 2 - 1] + others[n / 2]) / 2.0 };
    if !better(rule, median, value) {
        return go_on;
    }
    Decision {
        epochs: Some(epoch),
        reason: format!(
            "median: stopped at epoch {epoch}: {} {value:.4} is worse than the median {median:.4} of the {n} other trials there",
            rule.metric
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Metric;
    use crate::spec::early_stop::StopMethod;

    #[test]
    fn a_trial_below_the_median_of_the_others_at_its_epoch_stops_there() {
        let rule = StopRule {
            method: StopMethod::Median,
            metric: Metric::Psnr,
            higher_is_better: true,
            min_epochs: 2,
            reduction: 3,
            min_runs: 3,
        };
        let c = |v: &[f64]| Curve { values: v.to_vec(), epochs: 5 };
        // At epoch 2 the others of trial 3 have 20, 21, 23 (median 21): 20.5 stops; trial 0 (20) is
        // compared with 21, 23, 20.5 (median 21): stops too; trial 2 (23) goes on.
        let curves = vec![c(&[18.0, 20.0]), c(&[19.0, 21.0]), c(&[22.0, 23.0]), c(&[18.0, 20.5]), c(&[10.0])];
        let d: Vec<Option<u64>> = Median.decide(&rule, &curves).into_iter().map(|d| d.epochs).collect();
        // Trial 1 (21) against 20, 23, 20.5 (median 20.5): goes on. Trial 4 is at epoch 1 < min_epochs.
        assert_eq!(d, [Some(2), None, None, Some(2), None]);
        // Fewer than min_runs others at the epoch: nobody stops.
        assert!(Median.decide(&rule, &curves[..3]).iter().all(|d| d.epochs.is_none()));
    }
}
