//! The experiment library (issue 6): every spec in experiments/ trains end to end at tiny size
//! through the real binary, with the `--set` overrides its comment tells a user to try, and the
//! zhang2016 spec's report carries its published numbers and the semantic test's columns.
//!
//! `SWEEP_TEST_DEVICE` trains them on another device, to check that every op of every spec runs
//! on a GPU backend: `SWEEP_TEST_DEVICE=wgpu cargo test --release --features wgpu --test
//! experiments` (on a machine without a GPU, over Mesa's software Vulkan; see bench/README.md).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{assert_complete, text};
use sweep::spec::{Spec, plan};
use sweep::store::plan::SweepIndex;

fn specs() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments");
    let mut specs: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    specs.sort();
    specs
}

/// Overrides that shrink `spec` to seconds: synthetic data, 16 images, one epoch, one seed, narrow
/// nets; the backbone, pretraining and judge keys only where some run uses them (a `--set` that
/// applies to no run is an error).
fn tiny_overrides(spec: &Path) -> Vec<String> {
    let parsed = Spec::from_file(spec).unwrap_or_else(|e| panic!("{e}"));
    let mut sets: Vec<String> = [
        "dataset=synthetic",
        "train_images=16",
        "val_images=8",
        "batch_size=8",
        "epochs=1",
        "local.widths=[4,8,8]",
        "head.widths=[4,4]",
        "sweep.seeds=[0]",
    ]
    .map(String::from)
    .to_vec();
    let runs = plan(&parsed, &sets).unwrap_or_else(|e| panic!("{}: {e}", spec.display())).runs;
    let any = |key: &str, holds: &dyn Fn(&str) -> bool| runs.iter().any(|r| r.config.str(key).is_some_and(holds));
    if any("backbone.arch", &|v| v != "none") {
        sets.push("backbone.width=0.0625".into());
    }
    if any("backbone.pretrain", &|v| v == "classification") {
        sets.push("backbone.pretrain_epochs=1".into());
    }
    if any("judge.arch", &|v| v != "none") {
        sets.extend(["judge.width=0.0625".into(), "judge.epochs=1".into()]);
    }
    if parsed.search.is_some() {
        sets.push("search.trials=2".into());
    }
    sets
}

#[test]
fn every_experiment_trains_at_tiny_size() {
    let tmp = tempfile::tempdir().unwrap();
    let results = tmp.path().join("results");
    let specs = specs();
    assert!(specs.len() >= 13, "expected the 13 specs of the library, found {}", specs.len());
    for spec in &specs {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_sweep"));
        cmd.arg("run").arg(spec).arg("--results").arg(&results);
        if let Ok(device) = std::env::var("SWEEP_TEST_DEVICE") {
            cmd.arg("--device").arg(device);
        }
        for set in tiny_overrides(spec) {
            cmd.arg("--set").arg(set);
        }
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "{}: {}", spec.display(), text(&out));
        let name = Spec::from_file(spec).unwrap().meta.name;
        let dir = results.join(&name);
        let index = SweepIndex::read(&dir).unwrap();
        assert!(!index.runs.is_empty());
        for run in &index.runs {
            assert_complete(&dir.join(&run.id));
        }
    }

    // The semantic test's columns and the published numbers reach zhang2016's report.
    let zhang = Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments/zhang2016.toml");
    let out_dir = tmp.path().join("report");
    let out = Command::new(env!("CARGO_BIN_EXE_sweep"))
        .arg("report")
        .arg(&zhang)
        .arg("--results")
        .arg(&results)
        .arg("--output")
        .arg(&out_dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let md = std::fs::read_to_string(out_dir.join("report.md")).unwrap();
    for needle in ["top1_colorized", "top1_gray", "top1_color", "89.5", "67.3", "56", "52.7", "68.3"] {
        assert!(md.contains(needle), "report.md lacks {needle}:\n{md}");
    }
}
