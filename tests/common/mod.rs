//! Helpers shared by the test crates that drive `sweep run` through the real binary: tiny sweeps in
//! temporary folders, their status files, waiting on them, and what a complete run looks like.
// Each test crate uses a part of these.
#![allow(dead_code)]

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

use sweep::store::metrics_file::MetricsFile;
use sweep::store::plan::SweepIndex;
use sweep::store::status::{RunStatus, State};

/// One epoch of this takes well under a second in the test profile.
pub const TINY: &str = r#"
dataset = "synthetic"
image_size = 32
train_images = 16
val_images = 8
batch_size = 8
local.widths = [4, 8, 8]
head.widths = [4, 4]
"#;

/// A variant whose loss diverges at once: the run fails with its reason.
pub const DIVERGES: &str = "lr = 1e30\nactivation = \"linear\"\n";

pub struct Sweep {
    pub tmp: tempfile::TempDir,
    pub spec: PathBuf,
    pub results: PathBuf,
    /// `results/<name>`.
    pub dir: PathBuf,
}

impl Sweep {
    /// A spec named `name` with `[sweep]` lines `sweep`, TINY plus `base` in `[base]`, then `rest`.
    pub fn new(name: &str, sweep: &str, base: &str, rest: &str) -> Sweep {
        Sweep::raw(name, &format!("[sweep]\nname = \"{name}\"\n{sweep}\n[base]\n{TINY}{base}\n{rest}"))
    }

    /// A spec with the text `spec`, whose `[sweep]` is named `name`.
    pub fn raw(name: &str, spec_text: &str) -> Sweep {
        let tmp = tempfile::tempdir().unwrap();
        let spec = tmp.path().join(format!("{name}.toml"));
        std::fs::write(&spec, spec_text).unwrap();
        let results = tmp.path().join("results");
        let dir = results.join(name);
        Sweep { tmp, spec, results, dir }
    }

    pub fn command(&self, extra: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_sweep"));
        cmd.arg("run").arg(&self.spec).arg("--results").arg(&self.results).args(extra);
        cmd
    }

    pub fn run(&self, extra: &[&str]) -> Output {
        self.command(extra).output().unwrap()
    }

    /// Starts `sweep run` in its own process group (like a shell job), output into files.
    pub fn start(&self, extra: &[&str], tag: &str) -> Child {
        let out = std::fs::File::create(self.tmp.path().join(format!("{tag}.out"))).unwrap();
        let err = std::fs::File::create(self.tmp.path().join(format!("{tag}.err"))).unwrap();
        self.command(extra).process_group(0).stdout(out).stderr(err).spawn().unwrap()
    }

    pub fn output_of(&self, tag: &str) -> String {
        let read =
            |ext: &str| std::fs::read_to_string(self.tmp.path().join(format!("{tag}.{ext}"))).unwrap_or_default();
        format!("{}{}", read("out"), read("err"))
    }

    pub fn run_dirs(&self) -> Vec<PathBuf> {
        SweepIndex::read(&self.dir).unwrap().runs.iter().map(|r| self.dir.join(&r.id)).collect()
    }

    pub fn statuses(&self) -> Vec<RunStatus> {
        self.run_dirs().iter().map(|d| RunStatus::read(d).unwrap().unwrap()).collect()
    }

    /// Polls the status files until `ready` holds for them (or panics after two minutes).
    pub fn wait_for(&self, what: &str, ready: impl Fn(&[RunStatus]) -> bool) {
        let start = Instant::now();
        loop {
            if self.dir.join("plan.json").is_file() {
                let statuses: Option<Vec<RunStatus>> =
                    self.run_dirs().iter().map(|d| RunStatus::read(d).ok().flatten()).collect();
                if statuses.is_some_and(|s| ready(&s)) {
                    return;
                }
            }
            assert!(start.elapsed() < Duration::from_secs(120), "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

pub fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// Waits for `sweep run` to end (or panics after `limit`).
pub fn wait_exit(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(start.elapsed() < limit, "sweep run did not end within {limit:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A finished run: done, one metrics row per epoch, epochs 1..=n once each.
pub fn assert_complete(run_dir: &Path) {
    let status = RunStatus::read(run_dir).unwrap().unwrap();
    assert_eq!(status.state, State::Done, "{}: {:?}", run_dir.display(), status.reason);
    assert_eq!(status.epochs_done, status.epochs);
    let epochs: Vec<u64> = MetricsFile::open(run_dir).unwrap().rows().iter().map(|r| r.epoch).collect();
    assert_eq!(epochs, (1..=status.epochs).collect::<Vec<_>>(), "{}", run_dir.display());
    let csv = std::fs::read_to_string(run_dir.join("metrics.csv")).unwrap();
    assert_eq!(csv.lines().count() as u64, status.epochs + 1, "no duplicate or torn rows:\n{csv}");
}

pub fn resumed(run_dir: &Path) -> bool {
    std::fs::read_to_string(run_dir.join("log.txt")).unwrap_or_default().contains("resuming after epoch")
}

/// TensorBoard's own reader (its `EventMultiplexer`, as `tensorboard --logdir` loads runs) run on
/// `logdir`: `{run: {"scalars": {tag: [[step, value], ...]}, "images": {tag: [[step, width, height,
/// png bytes], ...]}}}`, run names relative to `logdir`. Needs `tensorboard` importable by
/// `$SWEEP_PYTHON` (default `python3`); without it `None`, after a message naming `test`, unless
/// `SWEEP_REQUIRE_TENSORBOARD=1` (as in CI) makes that a failure.
pub fn tensorboard_read(logdir: &Path, test: &str) -> Option<serde_json::Value> {
    const READER: &str = r#"
import json, sys
from tensorboard.backend.event_processing import event_multiplexer
m = event_multiplexer.EventMultiplexer(size_guidance={"scalars": 0, "images": 0}, purge_orphaned_data=False)
m.AddRunsFromDirectory(sys.argv[1])
m.Reload()
out = {}
for run, tags in m.Runs().items():
    out[run] = {
        "scalars": {t: [[e.step, e.value] for e in m.Scalars(run, t)] for t in tags["scalars"]},
        "images": {t: [[e.step, e.width, e.height, len(e.encoded_image_string)] for e in m.Images(run, t)]
                   for t in tags["images"]},
    }
print(json.dumps(out))
"#;
    let python = std::env::var("SWEEP_PYTHON").unwrap_or_else(|_| "python3".into());
    let importable =
        Command::new(&python).args(["-c", "import tensorboard"]).output().is_ok_and(|o| o.status.success());
    if !importable {
        let required = std::env::var("SWEEP_REQUIRE_TENSORBOARD").is_ok_and(|v| v == "1");
        assert!(
            !required,
            "SWEEP_REQUIRE_TENSORBOARD=1 but {python} cannot import tensorboard (pip install tensorboard)"
        );
        eprintln!("SKIPPED {test}: {python} cannot import tensorboard (pip install tensorboard, or set SWEEP_PYTHON)");
        return None;
    }
    let out = Command::new(&python).args(["-c", READER]).arg(logdir).output().unwrap();
    assert!(out.status.success(), "TensorBoard's reader failed on {}: {}", logdir.display(), text(&out));
    Some(serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out))))
}

/// Every scalar of a run's TensorBoard view (`board`, one run of [`tensorboard_read`]) is its
/// `metrics.csv` column, epoch by epoch, once.
pub fn assert_matches_metrics(board: &serde_json::Value, run_dir: &Path) {
    let rows = MetricsFile::open(run_dir).unwrap().rows().to_vec();
    for column in sweep::store::metrics_file::COLUMNS.iter().filter(|c| **c != "epoch") {
        let want: Vec<(u64, f64)> = rows.iter().filter_map(|r| r.get(column).map(|v| (r.epoch, v))).collect();
        let got: Vec<(u64, f64)> = board["scalars"][column]
            .as_array()
            .map(|a| a.iter().map(|p| (p[0].as_u64().unwrap(), p[1].as_f64().unwrap())).collect())
            .unwrap_or_default();
        assert_eq!(got.len(), want.len(), "{column}: {got:?} against metrics.csv's {want:?}");
        for ((gs, gv), (ws, wv)) in got.iter().zip(&want) {
            // metrics.csv keeps 6 decimals; TensorBoard's simple_value is an f32.
            assert!(gs == ws && (gv - wv).abs() <= 2e-6 * wv.abs().max(1.0), "{column}: {got:?} vs {want:?}");
        }
    }
}

/// Every number of a run's metrics rows but the timing columns: what a resumed run must repeat.
pub fn numbers(run: &Path) -> Vec<Vec<f64>> {
    MetricsFile::open(run)
        .unwrap()
        .rows()
        .iter()
        .map(|r| {
            ["epoch", "train_loss", "val_loss", "psnr", "ab_rmse", "auc", "auc_rebal", "colorfulness"]
                .iter()
                .map(|c| r.get(c).unwrap())
                .collect()
        })
        .collect()
}
