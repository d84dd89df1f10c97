//! Training on tiny synthetic data: every value of every axis of the schema trains, a run resumes
//! from its last checkpoint without duplicate rows and with the numbers of an uninterrupted run, the
//! same seed gives the same numbers, and a diverging run fails with its reason in status.json.

mod common;

use std::path::{Path, PathBuf};

use burn::tensor::Device;
use common::{TINY, numbers};
use sweep::spec::{Spec, plan};
use sweep::store::metrics_file::MetricsFile;
use sweep::store::plan::materialise;
use sweep::store::status::{RunStatus, State};
use sweep::train::{Outcome, exec};

fn sweep(dir: &Path, name: &str, body: &str) -> Vec<PathBuf> {
    let epochs = if body.contains("epochs =") { "" } else { "epochs = 1\n" };
    let text = format!("[sweep]\nname = \"{name}\"\n[base]\n{TINY}{epochs}\n{body}");
    let spec = Spec::from_str(Path::new("test.toml"), text).unwrap_or_else(|e| panic!("{e}"));
    let plan = plan(&spec, &[]).unwrap_or_else(|e| panic!("{e}"));
    let sweep_dir = materialise(&plan, Path::new("test.toml"), dir).unwrap();
    plan.runs.iter().map(|r| sweep_dir.join(&r.id)).collect()
}

fn train_all(runs: &[PathBuf]) {
    let device = Device::flex();
    for run in runs {
        let outcome = exec(run, &device, true).unwrap_or_else(|e| panic!("{}: {e:#}", run.display()));
        assert_eq!(outcome, Outcome::Done);
        let status = RunStatus::read(run).unwrap().unwrap();
        assert_eq!(status.state, State::Done, "{}", status.variant);
        let rows = MetricsFile::open(run).unwrap();
        assert_eq!(rows.rows().len() as u64, status.epochs, "{}", status.variant);
        let last = rows.rows().last().unwrap();
        for column in
            ["train_loss", "val_loss", "psnr", "ab_rmse", "auc", "auc_rebal", "colorfulness", "colorfulness_gt"]
        {
            let v = last.get(column).unwrap();
            assert!(v.is_finite(), "{}: {column} = {v}", status.variant);
        }
        assert!(run.join("samples.png").is_file());
        assert!(run.join("curve.csv").is_file() && run.join("curve_best.csv").is_file());
        assert!(run.join("checkpoints/best/model.bpk").is_file());
    }
}

#[test]
fn every_task_loss_color_space_and_activation_trains() {
    let dir = tempfile::tempdir().unwrap();
    let runs = sweep(
        dir.path(),
        "axes",
        r#"
[grid]
color_space = ["lab", "yuv", "hsv"]

[[variant]]
name = "l2-tanh"
loss = "l2"

[[variant]]
name = "l1-sigmoid"
loss = "l1"
activation = "sigmoid"

[[variant]]
name = "huber-linear"
loss = "huber"
huber_delta = 0.2
activation = "linear"

[[variant]]
name = "ce-soft-rebalanced"
task = "classification"
rebalance = true
soft_k = 3

[[variant]]
name = "ce-hard"
task = "classification"
soft_encoding = false
temperature = 1.0
bin_size = 20.0
"#,
    );
    assert_eq!(runs.len(), 15);
    train_all(&runs);
}

#[test]
fn every_backbone_feature_pretraining_optimizer_and_schedule_trains() {
    let dir = tempfile::tempdir().unwrap();
    let runs = sweep(
        dir.path(),
        "models",
        r#"
backbone.width = 0.0625
fusion_dim = 8
epochs = 2

[[variant]]
name = "vgg16-fusion-adamw-cosine"
backbone.arch = "vgg16"
features = "fusion"
optimizer = "adamw"
weight_decay = 0.01
lr_schedule = "cosine"

[[variant]]
name = "resnet18-hypercolumn-sgd-step"
backbone.arch = "resnet18"
features = "hypercolumn"
optimizer = "sgd"
lr = 0.01
lr_schedule = "step"
lr_step_epochs = 1

[[variant]]
name = "vgg16-pretrained-frozen"
backbone.arch = "vgg16"
backbone.pretrain = "classification"
backbone.pretrain_epochs = 1

[[variant]]
name = "vgg16-pretrained-finetuned"
backbone.arch = "vgg16"
backbone.pretrain = "classification"
backbone.pretrain_epochs = 1
backbone.freeze = false

[[variant]]
name = "local-three-pools"
local.widths = [4, 8, 8, 8]
local.pool_after = [1, 2, 3]
"#,
    );
    train_all(&runs);
    // The two pretrained variants share one pretraining, whose top-1 lands in their metrics.
    let pretrained: Vec<_> = std::fs::read_dir(dir.path().join(".pretrain")).unwrap().collect();
    assert_eq!(pretrained.len(), 1);
    for run in &runs[2..4] {
        let rows = MetricsFile::open(run).unwrap();
        let top1 = rows.rows()[0].get("pretrain_top1").unwrap();
        assert!((0.0..=100.0).contains(&top1));
    }
    let lrs: Vec<f64> = MetricsFile::open(&runs[1]).unwrap().rows().iter().map(|r| r.lr).collect();
    assert_eq!(lrs, vec![0.01, 0.001], "step schedule: lr times 0.1 after each epoch");
}

#[test]
fn a_run_resumes_after_its_last_checkpoint_with_identical_numbers() {
    let body = "epochs = 3\ntask = \"classification\"\nrebalance = true\n";
    let a = tempfile::tempdir().unwrap();
    let straight = sweep(a.path(), "resume", body);
    train_all(&straight);

    let b = tempfile::tempdir().unwrap();
    let interrupted = sweep(b.path(), "resume", body);
    train_all(&interrupted);
    let run = &interrupted[0];
    // Simulate a crash after epoch 1 had been checkpointed and epoch 2 had written its metrics row
    // but not yet published its checkpoint: epoch 2 and 3 are gone, a torn row is left behind.
    let checkpoints = run.join("checkpoints");
    std::fs::remove_dir_all(checkpoints.join("epoch-0003")).unwrap();
    let metrics = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    let kept: Vec<&str> = metrics.lines().take(3).collect();
    std::fs::write(run.join("metrics.csv"), format!("{}\n3,0.1,", kept.join("\n"))).unwrap();
    // Re-create epoch 1's checkpoint from a fresh one-epoch run of the same config.
    let c = tempfile::tempdir().unwrap();
    let one = sweep(c.path(), "resume", &body.replace("epochs = 3", "epochs = 1"));
    train_all(&one);
    std::fs::rename(one[0].join("checkpoints/epoch-0001"), checkpoints.join("epoch-0001")).unwrap();
    let mut status = RunStatus::read(run).unwrap().unwrap();
    status.state = State::Interrupted;
    status.write(run).unwrap();

    let outcome = exec(run, &Device::flex(), true).unwrap();
    assert_eq!(outcome, Outcome::Done);
    let rows = numbers(run);
    assert_eq!(rows.iter().map(|r| r[0]).collect::<Vec<_>>(), vec![1.0, 2.0, 3.0], "no duplicate or missing epoch");
    assert_eq!(rows, numbers(&straight[0]), "resumed run must match the uninterrupted one");
}

#[test]
fn the_same_seed_gives_the_same_numbers_and_another_seed_does_not() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let first = sweep(a.path(), "seed", "epochs = 2\n");
    let second = sweep(b.path(), "seed", "epochs = 2\n");
    train_all(&first);
    train_all(&second);
    assert_eq!(numbers(&first[0]), numbers(&second[0]));
    let c = tempfile::tempdir().unwrap();
    let text = format!("[sweep]\nname = \"seed\"\nseeds = [1]\n[base]\n{TINY}\nepochs = 2\n");
    let spec = Spec::from_str(Path::new("t.toml"), text).unwrap();
    let p = plan(&spec, &[]).unwrap();
    let other = materialise(&p, Path::new("t.toml"), c.path()).unwrap().join(&p.runs[0].id);
    train_all(std::slice::from_ref(&other));
    assert_ne!(numbers(&first[0]), numbers(&other));
}

#[test]
fn a_diverging_run_fails_with_its_reason() {
    let dir = tempfile::tempdir().unwrap();
    let runs = sweep(dir.path(), "nan", "lr = 1e30\nactivation = \"linear\"\nepochs = 2\n");
    let err = exec(&runs[0], &Device::flex(), true).unwrap_err().to_string();
    assert!(err.contains("loss became"), "{err}");
    let status = RunStatus::read(&runs[0]).unwrap().unwrap();
    assert_eq!(status.state, State::Failed);
    assert!(status.reason.unwrap().contains("loss became"));
}

#[test]
fn the_semantic_judge_is_trained_once_and_scores_colorized_gray_and_true_colour_images() {
    let dir = tempfile::tempdir().unwrap();
    let runs = sweep(
        dir.path(),
        "judge",
        r#"
judge.arch = "vgg16"
judge.width = 0.0625
judge.epochs = 2
[grid]
color_space = ["lab", "yuv"]
task = ["regression", "classification"]
"#,
    );
    train_all(&runs);
    // One judge for the four runs: it depends on the data, not on the colorizer.
    let judges: Vec<PathBuf> =
        std::fs::read_dir(dir.path().join(".judge")).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(judges.len(), 1);
    let judge_top1: f64 = std::fs::read_to_string(judges[0].join("top1")).unwrap().trim().parse().unwrap();
    assert_eq!(std::fs::read_to_string(judges[0].join("metrics.csv")).unwrap().lines().count(), 3);
    let mut gray = Vec::new();
    for run in &runs {
        let config = std::fs::read_to_string(run.join("config.toml")).unwrap();
        let row = MetricsFile::open(run).unwrap().rows()[0].clone();
        let s = row.semantic.expect("a judged run has the semantic columns");
        for v in [s.colorized, s.gray, s.color] {
            // 8 validation images: top-1 is a multiple of 12.5 %.
            assert!((0.0..=100.0).contains(&v) && (v / 12.5).fract() == 0.0, "{v}");
        }
        if config.contains("color_space = \"lab\"") {
            // The true-colour images are the ones the judge was validated on, decoded the same way.
            assert_eq!(s.color, judge_top1);
            gray.push(s.gray);
        }
    }
    // The gray images are the Lab luma with zero chroma whatever the colorizer's task.
    assert_eq!(gray.len(), 2);
    assert_eq!(gray[0], gray[1]);
}
