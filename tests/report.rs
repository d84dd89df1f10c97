//! `sweep report` on results generated here: tiny real runs on synthetic data, some finished, one
//! interrupted, one never started, two diverged. The numbers in summary.csv are recomputed from the
//! runs' own metrics files; the page is loaded in a headless Chromium (skipped with a message when
//! there is none, unless SWEEP_REQUIRE_CHROMIUM=1), which also writes a screenshot to look at.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use burn::tensor::Device;
use common::TINY;
use sweep::spec::{Spec, plan};
use sweep::store::plan::materialise;
use sweep::store::status::{RunStatus, State};

const SPEC_A: &str = r#"
[sweep]
name = "cmp-a"
description = "two objectives, an interrupted variant and a diverging one"
seeds = [0, 1]
metric = "psnr"

[base]
epochs = 2
TINY

[[variant]]
name = "l2"
loss = "l2"

[[variant]]
name = "classification"
task = "classification"

[[variant]]
name = "l1"
loss = "l1"

[[variant]]
name = "diverges"
lr = 1e30
activation = "linear"

[reference]
citation = "A. Author, Made-up numbers for a test, 2024, table 1"
[reference.variants]
l2 = { psnr = 24.0, colorfulness = 10.0 }
classification = { psnr = 23.0, colorfulness = 20.0 }

[[reference.claim]]
says = "classification is more colourful than L2 (sec. 3)"
metric = "colorfulness"
above = "classification"
below = "l2"

[[reference.claim]]
says = "raw AuC exceeds rebalanced AuC"
metric = "auc"
above = "l2"
below = "l2"
below_metric = "auc_rebal"
"#;

const SPEC_B: &str = r#"
[sweep]
name = "cmp-b"
seeds = [0]
metric = "psnr"

[base]
epochs = 1
TINY

[[variant]]
name = "l2"
loss = "l2"

[[variant]]
name = "classification"
task = "classification"
"#;

struct Fixture {
    root: PathBuf,
    a: PathBuf,
    b: PathBuf,
    /// The report of sweep A alone.
    report: PathBuf,
    stdout: String,
}

/// Trains both sweeps once for all tests of this file and reports on A.
fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("report-tests");
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        let a = train(&root, "a.toml", SPEC_A);
        let b = train(&root, "b.toml", SPEC_B);
        let report = root.join("report-a");
        let out = sweep(&["report", a.to_str().unwrap(), "-o", report.to_str().unwrap()]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        Fixture { root, a, b, report, stdout: String::from_utf8_lossy(&out.stdout).into_owned() }
    })
}

/// Writes the spec, materialises its runs and trains them in this process; in sweep A the l1 variant
/// is left interrupted after its first epoch (seed 0) and never started (seed 1).
fn train(root: &Path, file: &str, text: &str) -> PathBuf {
    let path = root.join(file);
    std::fs::write(&path, text.replace("TINY", TINY)).unwrap();
    let plan = plan(&Spec::from_file(&path).unwrap_or_else(|e| panic!("{e}")), &[]).unwrap();
    let dir = materialise(&plan, &path, &root.join("results")).unwrap();
    let device = Device::flex();
    for run in &plan.runs {
        let run_dir = dir.join(&run.id);
        if run.variant == "l1" && run.seed == 1 {
            continue;
        }
        let result = sweep::train::exec(&run_dir, &device, true);
        assert_eq!(result.is_err(), run.variant == "diverges", "{} seed {}: {result:?}", run.variant, run.seed);
        if run.variant == "l1" {
            // Interrupted after epoch 1: one metrics row, status interrupted.
            let metrics = std::fs::read_to_string(run_dir.join("metrics.csv")).unwrap();
            let kept: Vec<&str> = metrics.lines().take(2).collect();
            std::fs::write(run_dir.join("metrics.csv"), kept.join("\n") + "\n").unwrap();
            std::fs::write(run_dir.join("checkpoints/best/epoch"), "1").unwrap();
            let mut status = RunStatus::read(&run_dir).unwrap().unwrap();
            status.state = State::Interrupted;
            status.epochs_done = 1;
            status.write(&run_dir).unwrap();
        }
    }
    dir
}

fn sweep(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_sweep")).args(args).output().unwrap()
}

/// A run's metrics rows as column -> values, read with the csv crate rather than sweep's reader.
fn metrics(run: &Path) -> Vec<BTreeMap<String, f64>> {
    let mut reader = csv::Reader::from_path(run.join("metrics.csv")).unwrap();
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            header.iter().zip(r.iter()).filter_map(|(h, v)| v.parse::<f64>().ok().map(|v| (h.clone(), v))).collect()
        })
        .collect()
}

fn mean_std(values: &[f64]) -> (f64, Option<f64>) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let std = (values.len() > 1).then(|| (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt());
    (mean, std)
}

#[test]
fn summary_numbers_are_the_metrics_files_recomputed() {
    let f = fixture();
    let plan: serde_json::Value = serde_json::from_slice(&std::fs::read(f.a.join("plan.json")).unwrap()).unwrap();
    let mut reader = csv::Reader::from_path(f.report.join("summary.csv")).unwrap();
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    let rows: Vec<BTreeMap<String, String>> =
        reader.records().map(|r| header.iter().cloned().zip(r.unwrap().iter().map(String::from)).collect()).collect();
    // Four variants (the diverged one without numbers), each at its last and its best epoch.
    assert_eq!(rows.len(), 8, "{rows:?}");
    let mut checked = 0;
    for row in &rows {
        let variant = &row["variant"];
        let runs: Vec<PathBuf> = plan["runs"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["variant"] == variant.as_str())
            .map(|r| f.a.join(r["id"].as_str().unwrap()))
            .collect();
        // The runs the numbers must come from: the finished ones, else the unfinished ones with rows.
        let state = |run: &Path| -> String {
            let v: serde_json::Value =
                serde_json::from_slice(&std::fs::read(run.join("status.json")).unwrap()).unwrap();
            v["state"].as_str().unwrap().to_string()
        };
        let done: Vec<&PathBuf> = runs.iter().filter(|r| state(r) == "done").collect();
        let used: Vec<&PathBuf> = if done.is_empty() {
            runs.iter().filter(|r| state(r) == "interrupted" && !metrics(r).is_empty()).collect()
        } else {
            done
        };
        let basis = match variant.as_str() {
            "l1" => "partial",
            "diverges" => "none",
            _ => "done",
        };
        assert_eq!(row["basis"], basis, "{variant}");
        assert_eq!(row["n"], used.len().to_string(), "{variant}");
        if used.is_empty() {
            // The diverged variant: listed, without numbers.
            assert_eq!(
                (variant.as_str(), row["runs_failed"].as_str(), row["psnr_mean"].as_str()),
                ("diverges", "2", "")
            );
            continue;
        }
        let picked: Vec<BTreeMap<String, f64>> = used
            .iter()
            .map(|run| {
                let rows = metrics(run);
                if row["at"] == "last" {
                    rows.last().unwrap().clone()
                } else {
                    let best: f64 =
                        std::fs::read_to_string(run.join("checkpoints/best/epoch")).unwrap().trim().parse().unwrap();
                    rows.into_iter().find(|r| r["epoch"] == best).unwrap()
                }
            })
            .collect();
        let epochs: Vec<String> = picked.iter().map(|r| r["epoch"].to_string()).collect();
        assert_eq!(row["epochs"], epochs.join(" "), "{variant} {}", row["at"]);
        for metric in
            ["train_loss", "val_loss", "psnr", "ab_rmse", "auc", "auc_rebal", "colorfulness", "colorfulness_gt"]
        {
            let values: Vec<f64> = picked.iter().map(|r| r[metric]).collect();
            let (mean, std) = mean_std(&values);
            let got: f64 = row[&format!("{metric}_mean")].parse().unwrap();
            assert!((got - mean).abs() <= 1e-9 * mean.abs().max(1.0), "{variant} {metric}: {got} vs {mean}");
            match std {
                Some(std) => {
                    let got: f64 = row[&format!("{metric}_std")].parse().unwrap();
                    assert!((got - std).abs() <= 1e-9 * std.max(1.0), "{variant} {metric} std: {got} vs {std}");
                }
                None => assert_eq!(row[&format!("{metric}_std")], "", "one run has no spread"),
            }
            checked += 1;
        }
    }
    assert_eq!(checked, 6 * 8);
}

#[test]
fn published_claims_are_judged_on_the_measured_means() {
    let f = fixture();
    let plan: serde_json::Value = serde_json::from_slice(&std::fs::read(f.a.join("plan.json")).unwrap()).unwrap();
    // Both variants have two finished seeds: the last epoch's value of each.
    let last = |variant: &str, metric: &str| -> Vec<f64> {
        plan["runs"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["variant"] == variant)
            .map(|r| metrics(&f.a.join(r["id"].as_str().unwrap())).last().unwrap()[metric])
            .collect()
    };
    let md = std::fs::read_to_string(f.report.join("report.md")).unwrap();
    for (says, above, below) in [
        (
            "classification is more colourful than L2 (sec. 3)",
            last("classification", "colorfulness"),
            last("l2", "colorfulness"),
        ),
        ("raw AuC exceeds rebalanced AuC", last("l2", "auc"), last("l2", "auc_rebal")),
    ] {
        let ((a, sa), (b, sb)) = (mean_std(&above), mean_std(&below));
        let noise = (sa.unwrap().powi(2) / 2.0 + sb.unwrap().powi(2) / 2.0).sqrt();
        let word = if (a - b).abs() <= noise {
            "is within noise"
        } else if a > b {
            "holds"
        } else {
            "is reversed"
        };
        let line = md.lines().find(|l| l.contains(says)).unwrap_or_else(|| panic!("no claim line in\n{md}"));
        assert!(line.contains(&format!("\" {word}: ")), "expected `{word}` (means {a} vs {b}, noise {noise}): {line}");
    }
    assert!(f.stdout.contains("claim \"raw AuC exceeds rebalanced AuC\""), "{}", f.stdout);
}

#[test]
fn the_report_says_which_runs_are_partial_and_why_runs_failed() {
    let f = fixture();
    let out = &f.stdout;
    assert!(out.contains("sweep \"cmp-a\"") && out.contains("8 runs: 4 done, 2 unfinished, 2 failed"), "{out}");
    assert!(out.contains("ranked by psnr (higher is better)") && out.contains("last epoch"), "{out}");
    assert!(out.contains("best") && out.contains("partial: 0 done, 2 unfinished"), "{out}");
    assert!(out.contains("partial (interrupted)") && out.contains("partial (pending)"), "{out}");
    assert!(out.contains("failed: the training loss became"), "{out}");
    assert!(out.contains("published references of cmp-a") && out.contains("psnr: the published ordering"), "{out}");
    let md = std::fs::read_to_string(f.report.join("report.md")).unwrap();
    assert!(md.contains("| # | variant | psnr | n |"), "{md}");
    assert!(md.contains("failed: the training loss became") && md.contains("partial (interrupted)"), "{md}");
    assert!(md.contains("Made-up numbers for a test") && md.contains("## Every metric at the best epoch"), "{md}");
    for figure in ["learning_curves", "final_metrics", "psnr_colorfulness", "ab_accuracy"] {
        let png = image::open(f.report.join(format!("{figure}.png"))).unwrap_or_else(|e| panic!("{figure}: {e}"));
        assert!(png.width() > 600 && png.height() > 200, "{figure}");
        let svg = std::fs::read_to_string(f.report.join(format!("{figure}.svg"))).unwrap();
        assert!(svg.starts_with("<svg") && svg.contains("<text"), "{figure}.svg has no text");
        assert!(md.contains(&format!("({figure}.png)")), "report.md does not show {figure}");
    }
    assert!(svg_text(&f.report.join("learning_curves.svg")).contains("classification"));
    let sheet = image::open(f.report.join("comparison_sheet.png")).unwrap();
    // Gray input, three variants with samples (the diverged ones wrote none), ground truth.
    assert!(sheet.height() >= 5 * 32, "{}", sheet.height());
    let html = std::fs::read_to_string(f.report.join("index.html")).unwrap();
    assert!(
        !html.contains("src=\"http") && !html.contains("src=\"file") && !html.contains("<link"),
        "not self-contained"
    );
    assert_eq!(html.matches("<img ").count(), html.matches("src=\"data:image/png;base64,").count());
    assert!(
        html.contains("name = &quot;cmp-a&quot;") && html.contains(env!("CARGO_PKG_VERSION")),
        "spec text and version"
    );
}

fn svg_text(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap()
}

#[test]
fn two_sweeps_compare_on_one_page() {
    let f = fixture();
    let out_dir = f.root.join("report-ab");
    let out = sweep(&[
        "report",
        f.a.to_str().unwrap(),
        f.b.to_str().unwrap(),
        "-o",
        out_dir.to_str().unwrap(),
        "--epoch",
        "best",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("sweeps \"cmp-a\" vs \"cmp-b\"") && stdout.contains("cmp-b/l2"), "{stdout}");
    assert!(stdout.contains("best epoch"), "{stdout}");
    let md = std::fs::read_to_string(out_dir.join("report.md")).unwrap();
    assert!(md.contains("## Across sweeps") && md.contains("| psnr (cmp-a) | psnr (cmp-b) |"), "{md}");
    assert!(out_dir.join("comparison_sheet_1.png").is_file() && out_dir.join("comparison_sheet_2.png").is_file());
    let summary = std::fs::read_to_string(out_dir.join("summary.csv")).unwrap();
    assert!(summary.lines().any(|l| l.starts_with("cmp-b,l2,")), "{summary}");
}

#[test]
fn bad_targets_fail_with_what_to_fix() {
    let f = fixture();
    let out = sweep(&["report", f.root.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("plan.json not found"), "{err}");
    let spec = f.root.join("a.toml");
    let out = sweep(&["report", spec.to_str().unwrap(), "--results", f.root.join("nowhere").to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("has no results") && err.contains("sweep run"), "{err}");

    // A sweep whose runs have no epoch yet, with damaged files: an error, not a panic.
    let fresh = f.root.join("fresh");
    let path = f.root.join("c.toml");
    std::fs::write(&path, SPEC_B.replace("cmp-b", "cmp-c").replace("TINY", TINY)).unwrap();
    let plan = plan(&Spec::from_file(&path).unwrap(), &[]).unwrap();
    let dir = materialise(&plan, &path, &fresh).unwrap();
    std::fs::write(dir.join(&plan.runs[0].id).join("status.json"), "{ torn").unwrap();
    std::fs::write(dir.join(&plan.runs[1].id).join("metrics.csv"), "epoch,train_loss\n1,0.").unwrap();
    let out = sweep(&["report", dir.to_str().unwrap(), "-o", f.root.join("report-c").to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("nothing to report") && !err.contains("panicked"), "{err}");
}

#[test]
fn damaged_files_are_reported_not_fatal() {
    let f = fixture();
    // A copy of sweep A with a torn curve and an unreadable status.
    let copy = f.root.join("damaged").join("cmp-a");
    copy_dir(&f.a, &copy);
    let plan: serde_json::Value = serde_json::from_slice(&std::fs::read(copy.join("plan.json")).unwrap()).unwrap();
    let ids: Vec<&str> = plan["runs"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap()).collect();
    std::fs::write(copy.join(ids[0]).join("curve.csv"), "epoch,threshold,fraction,fraction_rebal\n2,0,0.").unwrap();
    std::fs::write(copy.join(ids[1]).join("status.json"), "not json").unwrap();
    let out_dir = f.root.join("report-damaged");
    let out = sweep(&["report", copy.to_str().unwrap(), "-o", out_dir.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("curve.csv is not a valid curve file"), "{stdout}");
    assert!(stdout.contains("missing:") && stdout.contains("status.json is not a valid status file"), "{stdout}");
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// Chromium under one of its usual names, if installed.
fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    ["chromium", "chromium-browser", "google-chrome", "google-chrome-stable"]
        .iter()
        .flat_map(|name| std::env::split_paths(&path).map(move |dir| dir.join(name)))
        .find(|p| p.is_file())
}

fn headless(browser: &Path, profile: &Path, extra: &[&str], page: &Path) -> std::process::Output {
    Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .arg(format!("file://{}", page.display()))
        .output()
        .unwrap()
}

#[test]
fn the_page_loads_in_a_headless_browser_without_errors() {
    let Some(browser) = chromium() else {
        let required = std::env::var("SWEEP_REQUIRE_CHROMIUM").is_ok_and(|v| v == "1");
        assert!(!required, "SWEEP_REQUIRE_CHROMIUM=1 but no chromium on PATH (apt-get install chromium)");
        eprintln!(
            "SKIPPED the_page_loads_in_a_headless_browser_without_errors: no chromium on PATH (apt-get install chromium)"
        );
        return;
    };
    let f = fixture();
    let page = f.report.join("index.html");
    let profile = tempfile::tempdir().unwrap();
    // The DOM after the load event: the page's own script counts images that failed to decode.
    let dom = headless(&browser, profile.path(), &["--dump-dom"], &page);
    let html = String::from_utf8_lossy(&dom.stdout);
    let log = String::from_utf8_lossy(&dom.stderr);
    assert!(dom.status.success(), "{log}");
    assert!(html.contains("data-broken-images=\"0\""), "images failed to load:\n{log}");
    let images: usize = html.split("data-images=\"").nth(1).and_then(|s| s.split('"').next()?.parse().ok()).unwrap();
    assert!(images >= 6, "{images} images");
    // Console messages (script errors included) appear in the log as CONSOLE lines; the page makes none.
    let console: Vec<&str> = log.lines().filter(|l| l.contains("CONSOLE")).collect();
    assert!(console.is_empty(), "console messages:\n{}", console.join("\n"));

    let screenshot = f.root.join("screenshot.png");
    let _ = std::fs::remove_file(&screenshot);
    let shot = headless(
        &browser,
        profile.path(),
        &[&format!("--screenshot={}", screenshot.display()), "--window-size=1400,2000", "--hide-scrollbars"],
        &page,
    );
    assert!(shot.status.success(), "{}", String::from_utf8_lossy(&shot.stderr));
    let image = image::open(&screenshot).unwrap().to_rgb8();
    assert_eq!(image.dimensions(), (1400, 2000));
    // Not a blank page: a good share of the pixels are not white.
    let inked = image.pixels().filter(|p| p.0.iter().any(|&c| c < 200)).count();
    assert!(inked > 20_000, "the screenshot looks blank ({inked} dark pixels)");
    eprintln!("screenshot of the report: {}", screenshot.display());
}
