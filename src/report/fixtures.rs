//! Reports made in memory, for the report module's tests.

use std::path::PathBuf;

use super::Report;
use super::aggregate::At;
use super::load::{RunResult, RunState, SweepResults};
use crate::metrics::{AccuracyCurve, Metrics};
use crate::store::curve_file::CurveFile;
use crate::store::metrics_file::MetricsRow;
use crate::store::plan::{PlannedRun, SweepIndex};

/// A report of `n` variants x 2 seeds x 3 epochs made in memory, with accuracy curves.
pub fn fake_report(n: usize) -> Report {
    let mut runs = Vec::new();
    for v in 0..n {
        for seed in 0..2u64 {
            let x = v as f64 + seed as f64 * 0.3;
            let rows: Vec<MetricsRow> = (1..=3)
                .map(|epoch| MetricsRow {
                    epoch,
                    train_loss: 1.0 / (epoch as f64 + x),
                    val_loss: 1.2 / (epoch as f64 + x),
                    metrics: Metrics {
                        psnr: 20.0 + x * 0.1,
                        ab_rmse: 10.0 + x,
                        auc: 80.0 + x * 0.2,
                        auc_rebal: 60.0 + x * 0.3,
                        colorfulness: 10.0 + x,
                        colorfulness_gt: 40.0,
                    },
                    images_per_s: 100.0,
                    seconds: 1.0,
                    lr: 0.001,
                    pretrain_top1: None,
                    semantic: None,
                })
                .collect();
            let curve = AccuracyCurve {
                raw: (0..=150).map(|t| (t as f64 / (150.0 - x)).min(1.0)).collect(),
                rebalanced: Some((0..=150).map(|t| (t as f64 / 150.0).powf(1.0 + x / 30.0)).collect()),
            };
            runs.push(RunResult {
                planned: PlannedRun {
                    id: format!("run{v}-{seed}"),
                    group: format!("group{v}"),
                    variant: format!("a rather long variant name number {v}"),
                    seed,
                    changed: Vec::new(),
                    trial: None,
                    tuned: false,
                },
                dir: PathBuf::new(),
                state: RunState::Done,
                epochs: Some(3),
                rows,
                best_epoch: Some(3),
                curve_last: Some(CurveFile { epoch: 3, curve: curve.clone() }),
                curve_best: Some(CurveFile { epoch: 3, curve }),
                samples: None,
                evals: Vec::new(),
            });
        }
    }
    let index = SweepIndex {
        sweep: "fake".into(),
        description: String::new(),
        spec: String::new(),
        metric: "psnr".into(),
        higher_is_better: true,
        max_retries: 0,
        runs: runs.iter().map(|r| r.planned.clone()).collect(),
        searched: Vec::new(),
    };
    let set = SweepResults { dir: PathBuf::new(), index, spec: None, runs, notes: Vec::new() };
    let mut variants = crate::report::aggregate::variants(&set, 0, None);
    crate::report::aggregate::rank(&mut variants, "psnr", true, At::Last);
    Report {
        sets: vec![set],
        labels: vec!["fake".into()],
        variants,
        metric: "psnr".into(),
        higher_is_better: true,
        at: At::Last,
        notes: Vec::new(),
        created: String::new(),
    }
}
