//! Asynchronous successive halving (ASHA; Li et al., "A System for Massively Parallel Hyperparameter
//! Tuning", MLSys 2020). Rungs at `min_epochs * reduction^k` epochs below the full training; a trial
//! goes past rung `k` only when it ranks in the top `floor(n / reduction)` of the `n` trials of its
//! variant that have reached that rung. Promotion is asynchronous: a trial that reaches a rung early,
//! among few, waits there (stopped) and is promoted when enough worse ones arrive. Once every trial
//! that could reach a rung has reached it (the rung and those below it are complete), at least its
//! best goes on, so that a finite search always trains some trial in full. A trial that trained past a rung was promoted
//! there and stays so. Ties go to the earlier trial.

use super::{Curve, Stopper, better};
use crate::spec::early_stop::StopRule;
use crate::store::decision::Decision;

pub struct Asha;

impl Stopper for Asha {
    fn decide(&self, rule: &StopRule, curves: &[Curve]) -> Vec<Decision> {
        let longest = curves.iter().map(|c| c.epochs).max().unwrap_or(0);
        let mut decisions: Vec<Option<Decision>> = vec![None; curves.len()];
        // The trials still in the race at each rung: all of them at the first.
        let mut alive: Vec<usize> = (0..curves.len()).collect();
        // Whether the rungs so far are complete: no trial can still join this one.
        let mut complete = true;
        for (k, rung) in rule.rungs(longest).into_iter().enumerate() {
            // Trials whose training ends at or before this rung are not ranked here.
            let candidates: Vec<usize> = alive.iter().copied().filter(|&i| curves[i].epochs > rung).collect();
            let mut reached: Vec<(usize, f64)> =
                candidates.iter().filter_map(|&i| curves[i].at(rung).map(|v| (i, v))).collect();
            reached.sort_by(|a, b| {
                let order = if better(rule, a.1, b.1) {
                    std::cmp::Ordering::Less
                } else if better(rule, b.1, a.1) {
                    std::cmp::Ordering::Greater
                } else {
                    std::cmp::Ordering::Equal
                };
                order.then(a.0.cmp(&b.0))
            });
            let n = reached.len();
            complete &= n == candidates.len();
            let top = if complete { (n / rule.reduction as usize).max(1) } else { n / rule.reduction as usize };
            let mut next = Vec::new();
            for &i in &candidates {
                let rank = reached.iter().position(|&(j, _)| j == i);
                let epoch = rung;
                decisions[i] = match rank {
                    None => Some(Decision {
                        epochs: Some(epoch),
                        reason: format!("asha: trains to rung {k} (epoch {epoch}), then waits for the others"),
                    }),
                    Some(r) if r < top || curves[i].done() > rung => {
                        next.push(i);
                        None
                    }
                    Some(r) => Some(Decision {
                        epochs: Some(epoch),
                        reason: format!(
                            "asha: {} at rung {k} (epoch {epoch}): {} of {n}{}, top {top} go on",
                            if complete { "stopped" } else { "waits" },
                            r + 1,
                            if complete { "" } else { " so far" },
                        ),
                    }),
                };
            }
            alive = next;
        }
        decisions
            .into_iter()
            .map(|d| d.unwrap_or_else(|| Decision { epochs: None, reason: "asha: promoted past every rung".into() }))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Metric;
    use crate::spec::early_stop::StopMethod;

    fn rule() -> StopRule {
        StopRule {
            method: StopMethod::Asha,
            metric: Metric::Psnr,
            higher_is_better: true,
            min_epochs: 1,
            reduction: 3,
            min_runs: 3,
        }
    }

    fn curve(values: &[f64]) -> Curve {
        Curve { values: values.to_vec(), epochs: 9 }
    }

    /// What each trial may train to (`None`: all 9 epochs).
    fn limits(curves: &[Curve]) -> Vec<Option<u64>> {
        Asha.decide(&rule(), curves).into_iter().map(|d| d.epochs).collect()
    }

    #[test]
    fn a_worked_example_of_nine_trials_and_rungs_at_epochs_1_and_3() {
        // 9 epochs, reduction 3: rungs at epochs 1 and 3.
        // Step 1: trials 0 and 1 reached epoch 1 (PSNR 20 and 22), the others have not started.
        // floor(2/3) = 0 promoted, the rung is incomplete: both wait at epoch 1, the others train to it.
        let mut c: Vec<Curve> = vec![curve(&[20.0]), curve(&[22.0])];
        c.extend((2..9).map(|_| curve(&[])));
        assert_eq!(limits(&c), vec![Some(1); 9]);
        // Step 2: trial 2 reaches epoch 1 with 21. floor(3/3) = 1: the best, trial 1 (22), goes on to
        // rung 1 (epoch 3); trials 0 (20) and 2 (21) stay stopped at epoch 1.
        c[2] = curve(&[21.0]);
        assert_eq!(limits(&c)[..3], [Some(1), Some(3), Some(1)]);
        // Step 3: trials 3..8 reach epoch 1 with 25, 19, 18, 23, 17, 16; trial 1 reached epoch 3 with
        // 24. All 9 at rung 0: floor(9/3) = 3 go on: 25 (trial 3), 23 (trial 6) and 22 (trial 1). Trial 1
        // is at rung 1 among 1 of its 3 candidates: incomplete, floor(1/3) = 0, it waits at epoch 3.
        c[1] = curve(&[22.0, 23.0, 24.0]);
        for (i, v) in [(3, 25.0), (4, 19.0), (5, 18.0), (6, 23.0), (7, 17.0), (8, 16.0)] {
            c[i] = curve(&[v]);
        }
        let expected = vec![Some(1), Some(3), Some(1), Some(3), Some(1), Some(1), Some(3), Some(1), Some(1)];
        assert_eq!(limits(&c), expected);
        // Step 4: trials 3 and 6 reach epoch 3 with 26 and 23.5: rung 1 is complete, floor(3/3) = 1:
        // trial 3 (26) trains all 9 epochs, trials 1 (24) and 6 (23.5) stop at epoch 3.
        c[3] = curve(&[25.0, 25.5, 26.0]);
        c[6] = curve(&[23.0, 23.2, 23.5]);
        let d = Asha.decide(&rule(), &c);
        assert_eq!(d[3].epochs, None);
        assert_eq!((d[1].epochs, d[6].epochs), (Some(3), Some(3)));
        assert_eq!(d[6].reason, "asha: stopped at rung 1 (epoch 3): 3 of 3, top 1 go on");
        assert_eq!(d[0].reason, "asha: stopped at rung 0 (epoch 1): 5 of 9, top 3 go on");
        // 9 + 2 * 3 + 6 = 21 epochs of 81 in all: 1 epoch for six trials, 3 for two, 9 for one.
        let limit = |d: &Decision| d.epochs.unwrap_or(9);
        assert_eq!(d.iter().map(limit).sum::<u64>(), 21);
    }

    #[test]
    fn lower_is_better_and_ties_go_to_the_earlier_trial() {
        let lower = StopRule { higher_is_better: false, metric: Metric::ValLoss, ..rule() };
        let c = vec![curve(&[0.5]), curve(&[0.4]), curve(&[0.4])];
        let d: Vec<Option<u64>> = Asha.decide(&lower, &c).into_iter().map(|d| d.epochs).collect();
        assert_eq!(d, [Some(1), Some(3), Some(1)]);
    }
}
