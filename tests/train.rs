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
    resumes_with_identical_numbers("epochs = 3\ntask = \"classification\"\nrebalance = true\n");
}

#[test]
fn an_augmented_run_resumes_with_identical_numbers_and_validation_is_never_augmented() {
    let body = "epochs = 3\naugment.flip = true\naugment.crop = \"resized\"\naugment.scale = [0.25, 1.0]\n";
    let (_tmp, straight) = resumes_with_identical_numbers(body);
    // Augmentation changes training, not the validation images: the same ground truth (its
    // colorfulness, and the gray and truth columns of samples.png), other predictions.
    let dir = tempfile::tempdir().unwrap();
    let plain = sweep(dir.path(), "resume", "epochs = 3\n");
    train_all(&plain);
    let (a, b) = (MetricsFile::open(&straight).unwrap(), MetricsFile::open(&plain[0]).unwrap());
    for (x, y) in a.rows().iter().zip(b.rows()) {
        assert_eq!(x.get("colorfulness_gt"), y.get("colorfulness_gt"), "epoch {}", x.epoch);
        assert_ne!(x.train_loss, y.train_loss, "epoch {}: augmentation changed nothing", x.epoch);
    }
    let sheet = |run: &Path| image::open(run.join("samples.png")).unwrap().to_rgb8();
    let (a, b) = (sheet(&straight), sheet(&plain[0]));
    // Columns of 96-pixel tiles with 2-pixel gaps: gray, predicted, truth.
    let column = |img: &image::RgbImage, c: u32| -> Vec<u8> {
        (0..img.height()).flat_map(|y| (0..96).flat_map(move |x| img.get_pixel(2 + c * 98 + x, y).0)).collect()
    };
    assert_eq!(column(&a, 0), column(&b, 0), "gray inputs of validation");
    assert_eq!(column(&a, 2), column(&b, 2), "ground truth of validation");
    assert_ne!(column(&a, 1), column(&b, 1), "predictions");
}

/// Trains `body` straight through and again with a crash after epoch 1; both must give the same numbers.
/// Returns the run trained straight through (in its temporary folder).
fn resumes_with_identical_numbers(body: &str) -> (tempfile::TempDir, PathBuf) {
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
    // TensorBoard's view of the resumed run: this attempt's event file alone, every epoch once.
    let variant = RunStatus::read(run).unwrap().unwrap().variant;
    let board = sweep::store::layout::tensorboard_dir(run.parent().unwrap(), &variant, 0);
    assert_eq!(std::fs::read_dir(&board).unwrap().count(), 1, "{}", board.display());
    if let Some(read) = common::tensorboard_read(&board, "resumes_with_identical_numbers") {
        common::assert_matches_metrics(&read["."], run);
    }
    (a, straight[0].clone())
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

#[test]
fn a_photo_folder_trains_with_augmentation_and_one_cached_file_list_for_all_runs() {
    let dir = tempfile::tempdir().unwrap();
    let photos = dir.path().join("data");
    for i in 0..24u8 {
        let class = ["warm", "cool"][i as usize % 2];
        let img = image::RgbImage::from_fn(48, 40, |x, y| {
            let v = (x * 5 + y * 3) as u8;
            if class == "warm" { image::Rgb([200, v, 40]) } else { image::Rgb([40, v, 200 - i]) }
        });
        std::fs::create_dir_all(photos.join(class)).unwrap();
        img.save(photos.join(class).join(format!("{i}.png"))).unwrap();
    }
    // Folders copied in a while ago: their file list is settled and worth caching.
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(600);
    for d in [photos.clone(), photos.join("warm"), photos.join("cool")] {
        std::fs::File::open(&d).unwrap().set_modified(old).unwrap();
    }
    let base = TINY.replace("dataset = \"synthetic\"", &format!("dataset = \"folder\"\ndata_dir = {:?}", photos));
    let text = format!(
        "[sweep]\nname = \"photos\"\nseeds = [0, 1]\n[base]\n{base}epochs = 1\naugment.flip = true\n\
         augment.crop = \"resized\"\n"
    );
    let spec = Spec::from_str(Path::new("photos.toml"), text).unwrap_or_else(|e| panic!("{e}"));
    let plan = plan(&spec, &[]).unwrap_or_else(|e| panic!("{e}"));
    let sweep_dir = materialise(&plan, Path::new("photos.toml"), dir.path()).unwrap();
    let runs: Vec<PathBuf> = plan.runs.iter().map(|r| sweep_dir.join(&r.id)).collect();
    train_all(&runs);
    let lists: Vec<PathBuf> = std::fs::read_dir(sweep::store::layout::file_lists_dir(dir.path()))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(lists.len(), 1, "both runs share one file list: {lists:?}");
    let text = std::fs::read_to_string(&lists[0]).unwrap();
    assert_eq!(text.lines().filter(|l| l.starts_with("f ")).count(), 24, "{text}");
}
