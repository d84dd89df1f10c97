//! Figures of the local executor (issue 4, section 3), measured through the real binary:
//!
//! - orchestration overhead: 8 short runs on 2 slots take at most 1.05x the sum of the runs' own
//!   training times (`seconds` in status.json) divided by 2;
//! - re-running a finished sweep of 8 runs takes under a second and trains nothing;
//! - kill -9 of the orchestrator at 10 random moments, each followed by a re-run: the final results
//!   equal an uninterrupted sweep's (same run ids, all done, complete metrics files without duplicate
//!   rows, equal numbers), and no completed epoch is trained twice.
//!
//! Ignored by default (they take minutes); run them on an otherwise idle machine with
//! `cargo test --release --test runner_bench -- --ignored --nocapture --test-threads 1`.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use common::{Sweep, assert_complete, text};
use sweep::store::metrics_file::MetricsFile;
use sweep::store::status::State;

/// Eight short runs of a few seconds each on one core (release build).
fn eight_short_runs(name: &str) -> Sweep {
    Sweep::raw(
        name,
        &format!(
            "[sweep]\nname = \"{name}\"\nseeds = [0, 1, 2, 3, 4, 5, 6, 7]\n[base]\ndataset = \"synthetic\"\n\
             image_size = 32\ntrain_images = 1024\nval_images = 64\nbatch_size = 32\nlocal.widths = [8, 16, 16]\n\
             head.widths = [8, 8]\nepochs = {EPOCHS}\n"
        ),
    )
}

const EPOCHS: u64 = 3;

#[test]
#[ignore = "benchmark: minutes of training"]
fn orchestration_overhead_and_rerun_time() {
    let s = eight_short_runs("overhead");
    let start = Instant::now();
    let out = s.run(&["--jobs", "2"]);
    let wall = start.elapsed().as_secs_f64();
    assert!(out.status.success(), "{}", text(&out));
    s.run_dirs().iter().for_each(|d| assert_complete(d));
    let statuses = s.statuses();
    // A run's own time: its wall time in status.json (set-up, epochs, checkpoints), which leaves the
    // orchestrator's part (starting processes, noticing their end, idle slots) as the overhead.
    let own: f64 = statuses.iter().map(|s| s.seconds).sum();
    let ratio = wall / (own / 2.0);
    let epochs_only: f64 = s
        .run_dirs()
        .iter()
        .flat_map(|d| MetricsFile::open(d).unwrap().rows().iter().map(|r| r.seconds).collect::<Vec<_>>())
        .sum();
    println!(
        "orchestration overhead: 8 runs on 2 slots took {wall:.2} s; the runs' own times (status.json seconds) sum \
         to {own:.2} s (ideal {:.2} s on 2 slots): ratio {ratio:.3} (target <= 1.05). Against the epochs' \
         training+validation time alone (metrics.csv, {epochs_only:.2} s): ratio {:.3}",
        own / 2.0,
        wall / (epochs_only / 2.0)
    );

    let mut times = Vec::new();
    for _ in 0..5 {
        let start = Instant::now();
        let out = s.run(&["--jobs", "2"]);
        times.push(start.elapsed().as_secs_f64());
        assert!(out.status.success(), "{}", text(&out));
        assert!(text(&out).contains("0 trained, 8 already done"), "{}", text(&out));
    }
    assert_eq!(s.statuses(), statuses, "a re-run of a finished sweep trains nothing and changes nothing");
    times.sort_by(f64::total_cmp);
    println!(
        "re-run of the finished 8-run sweep: median {:.3} s, slowest {:.3} s of 5 (target < 1 s); 0 runs trained",
        times[2], times[4]
    );
    assert!(ratio <= 1.05, "orchestration overhead ratio {ratio:.3} > 1.05");
    assert!(times[4] < 1.0, "re-run took {:.3} s", times[4]);
}

/// Everything but the timing columns, per run id.
fn numbers(sweep_dir: &Path) -> BTreeMap<String, Vec<Vec<f64>>> {
    let columns = ["epoch", "train_loss", "val_loss", "psnr", "ab_rmse", "auc", "auc_rebal", "colorfulness", "lr"];
    let mut all = BTreeMap::new();
    for entry in std::fs::read_dir(sweep_dir).unwrap() {
        let path = entry.unwrap().path();
        if path.join("status.json").is_file() {
            let rows = MetricsFile::open(&path).unwrap();
            let values = rows.rows().iter().map(|r| columns.iter().map(|c| r.get(c).unwrap()).collect()).collect();
            all.insert(path.file_name().unwrap().to_string_lossy().to_string(), values);
        }
    }
    all
}

/// A small deterministic generator for the kill times (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[test]
#[ignore = "benchmark: minutes of training"]
fn kill_9_at_random_moments_then_rerun_gives_the_uninterrupted_results() {
    let reference = eight_short_runs("kill9");
    let start = Instant::now();
    let out = reference.run(&["--jobs", "2"]);
    let uninterrupted = start.elapsed();
    assert!(out.status.success(), "{}", text(&out));

    let killed = eight_short_runs("kill9");
    let seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64 | 1;
    let mut rng = Rng(seed);
    // Ten kills spread over about the length of an uninterrupted sweep.
    let span = uninterrupted.as_secs_f64() / 5.0;
    let mut hits = 0;
    for i in 0..10 {
        let delay = Duration::from_secs_f64(0.05 + rng.next() * span);
        let mut orchestrator = killed.start(&["--jobs", "2"], &format!("kill{i}"));
        std::thread::sleep(delay);
        let running = orchestrator.try_wait().unwrap().is_none();
        unsafe { libc::kill(orchestrator.id() as i32, libc::SIGKILL) };
        orchestrator.wait().unwrap();
        hits += usize::from(running);
        let done = killed.statuses().iter().filter(|s| s.state == State::Done).count();
        println!(
            "kill {}: after {:.2} s{}; {done}/8 runs done",
            i + 1,
            delay.as_secs_f64(),
            if running { "" } else { " (the sweep had ended)" }
        );
    }
    let out = killed.run(&["--jobs", "2"]);
    assert!(out.status.success(), "{}", text(&out));

    killed.run_dirs().iter().for_each(|d| assert_complete(d));
    let ids = |s: &Sweep| s.run_dirs().iter().map(|d| d.file_name().unwrap().to_owned()).collect::<Vec<_>>();
    assert_eq!(ids(&killed), ids(&reference), "same run ids");
    assert_eq!(numbers(&killed.dir), numbers(&reference.dir), "metrics numbers equal the uninterrupted sweep's");
    let mut retrained = 0;
    for dir in killed.run_dirs() {
        let log = std::fs::read_to_string(dir.join("log.txt")).unwrap();
        for epoch in 1..=EPOCHS {
            let n = log.lines().filter(|l| l.starts_with(&format!("epoch {epoch:>3} "))).count();
            assert!(n >= 1, "{}: epoch {epoch} never logged", dir.display());
            retrained += n - 1;
        }
    }
    println!(
        "kill -9 test (seed {seed}): {hits} of 10 kills hit a running sweep; final results equal the uninterrupted \
         sweep's (8 same run ids, all done, {EPOCHS} rows per metrics file, no duplicate rows, equal numbers); \
         completed epochs trained again: {retrained}"
    );
    assert_eq!(retrained, 0, "a completed epoch was trained again");
}
