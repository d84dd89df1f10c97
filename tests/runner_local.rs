//! The local executor through the real binary (`sweep run`) on tiny synthetic sweeps: done runs are
//! skipped (a finished sweep re-runs in under a second), `--jobs 2` trains two at once, so does
//! `--per-device` on each device of `--devices`, a device this build lacks fails up front, a failing run
//! leaves the others alone, `--fail-fast`, `max_retries`, `--retry-failed`, a crashed child is
//! retried and resumes, a second `sweep run` of the same sweep is refused and a stale lock taken over,
//! Ctrl-C records runs as interrupted and the next run resumes them, and after `kill -9` of the
//! orchestrator the next run finishes the sweep with complete metrics files and no duplicate rows.
//! `sweep exec` of a run another process trains exits busy (75) and leaves it alone. `sweep status
//! --watch --json` and `sweep report --watch` follow a sweep that another process trains. The memory
//! of a run and of each packed device is printed before the runs start, and CPU runs beyond the
//! machine's memory are refused up front.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{DIVERGES, Sweep, assert_complete, resumed, text, wait_exit};
use sweep::runner::memory::human;
use sweep::spec::{Spec, plan};
use sweep::store::lock::RunLock;
use sweep::store::plan::materialise;
use sweep::store::protocol::ExecExit;
use sweep::store::status::{RunStatus, State};

const MINUTE: Duration = Duration::from_secs(60);

#[test]
fn done_runs_are_skipped_and_a_finished_sweep_reruns_in_under_a_second() {
    let s = Sweep::new("rerun", "seeds = [0, 1, 2, 3, 4, 5, 6, 7]", "epochs = 1", "");
    let out = s.run(&["--jobs", "2"]);
    assert!(out.status.success(), "{}", text(&out));
    s.run_dirs().iter().for_each(|d| assert_complete(d));
    let before = s.statuses();

    // The best of three, so that a machine busy with other tests does not decide the figure.
    let mut took = Duration::MAX;
    for _ in 0..3 {
        let start = Instant::now();
        let out = s.run(&["--jobs", "2"]);
        took = took.min(start.elapsed());
        assert!(out.status.success(), "{}", text(&out));
        assert!(text(&out).contains("0 trained, 8 already done"), "{}", text(&out));
    }
    assert!(took < Duration::from_secs(1), "re-running a finished sweep took {took:?}");
    assert_eq!(s.statuses(), before, "a finished sweep re-run must not touch its runs");

    let status = Command::new(env!("CARGO_BIN_EXE_sweep")).arg("status").arg(&s.dir).output().unwrap();
    assert!(status.status.success());
    assert_eq!(String::from_utf8_lossy(&status.stdout).matches(" done ").count(), 8, "{}", text(&status));
}

/// The `start` and `done` events of `sweep run`'s plain lines (stdout not a terminal), in order.
fn start_and_done_events(stdout: &str) -> Vec<&str> {
    stdout
        .lines()
        .filter_map(|l| l.split_once("] ")?.1.split_whitespace().next().filter(|w| ["start", "done"].contains(w)))
        .collect()
}

#[test]
fn jobs_2_trains_two_runs_at_once() {
    let s = Sweep::new("jobs", "seeds = [0, 1, 2, 3]", "epochs = 3", "");
    let out = s.run(&["--jobs", "2"]);
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    // Plain lines (stdout is not a terminal): two starts before the first run ends.
    let events = start_and_done_events(&stdout);
    assert_eq!(&events[..2], ["start", "start"], "{stdout}");
    assert_eq!(events.iter().filter(|e| **e == "done").count(), 4, "{stdout}");
    assert!(stdout.contains("on 2 slots"), "{stdout}");
    s.run_dirs().iter().for_each(|d| assert_complete(d));
}

#[test]
fn per_device_packs_runs_on_each_device_of_devices_and_prints_their_memory() {
    // Two CPU "devices" with two slots each: four runs at once, as --per-device 4 would on one GPU.
    let s = Sweep::new("packed", "seeds = [0, 1, 2, 3]", "epochs = 2", "");
    let out = s.run(&["--devices", "cpu,cpu", "--per-device", "2"]);
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let events = start_and_done_events(&stdout);
    assert_eq!(&events[..4], ["start"; 4], "{stdout}");
    assert!(stdout.contains("on 4 slots"), "{stdout}");
    s.run_dirs().iter().for_each(|d| assert_complete(d));

    // Before the first start, once: the memory of a run (the library's estimate of its config, as
    // printed) and of the runs at once on the machine (the two CPU "devices" are one: four runs).
    let per_run = sweep::train::memory::run_memory(&s.run_dirs()[0]).unwrap().bytes.total();
    let each = human(per_run);
    let line = format!("memory per run: ~{each} (a batch of 8 at 32x32: parameters, gradients and optimizer state");
    assert_eq!(stdout.matches(&line).count(), 1, "{stdout}");
    assert!(stdout.contains(&format!("cpu: 4 runs x ~{each} = ~{}", human(4 * per_run))), "{stdout}");
    let first_start = stdout.lines().position(|l| l.contains("] start")).expect("a start line");
    assert!(stdout.lines().position(|l| l.contains("memory per run")).unwrap() < first_start, "{stdout}");
}

#[test]
fn a_device_this_build_lacks_fails_up_front_with_one_error() {
    if cfg!(feature = "cuda") {
        return;
    }
    let s = Sweep::new("nocuda", "seeds = [0, 1, 2]", "epochs = 1", "");
    let out = s.run(&["--devices", "cuda:0,cuda:1", "--per-device", "2"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.matches("no cuda support").count(), 1, "{stderr}");
    assert!(stderr.contains("--devices: device `cuda:0`") && stderr.contains("--features cuda"), "{stderr}");
    assert!(!s.dir.exists(), "nothing may be created before the devices are checked");
}

#[test]
fn cpu_runs_beyond_the_machine_memory_are_refused_before_any_starts() {
    let s = Sweep::new("memrefuse", "seeds = [0, 1]", "epochs = 1", "");
    let out = s.run(&["--jobs", "2", "--set", "image_size=4096", "--set", "batch_size=256"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        stderr.contains("2 run(s) at once would need about") && stderr.contains("a batch of 256 at 4096x4096"),
        "{stderr}"
    );
    assert!(stderr.contains("this machine's memory, MemTotal in /proc/meminfo"), "{stderr}");
    assert!(stderr.contains("not even one run fits: lower batch_size or image_size"), "{stderr}");
    assert!(s.statuses().iter().all(|st| st.state == State::Pending && st.attempts == 0), "{:?}", s.statuses());
}

#[test]
fn a_failing_run_does_not_stop_the_others() {
    let s = Sweep::new(
        "failing",
        "",
        "epochs = 2",
        &format!("[[variant]]\nname = \"diverges\"\n{DIVERGES}\n[[variant]]\nname = \"fine\"\n"),
    );
    let out = s.run(&["--jobs", "2"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let statuses = s.statuses();
    let bad = statuses.iter().find(|s| s.variant == "diverges").unwrap();
    assert_eq!(bad.state, State::Failed);
    assert!(bad.reason.as_deref().unwrap_or("").contains("training loss became"), "{:?}", bad.reason);
    assert_complete(&s.dir.join(&statuses.iter().find(|s| s.variant == "fine").unwrap().id));
    let all = text(&out);
    assert!(all.contains("1 trained, 0 already done, 1 failed"), "{all}");
    assert!(all.contains("--retry-failed"), "{all}");
}

#[test]
fn sweep_exec_of_a_run_another_process_trains_exits_busy_and_changes_nothing() {
    let s = Sweep::new("busy", "", "epochs = 1", "");
    let planned = plan(&Spec::from_file(&s.spec).unwrap(), &[]).unwrap();
    let run_dir = materialise(&planned, &s.spec, &s.results).unwrap().join(&planned.runs[0].id);
    let before = std::fs::read(run_dir.join("status.json")).unwrap();
    let _trainer = RunLock::acquire(&run_dir).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_sweep")).arg("exec").arg(&run_dir).output().unwrap();
    assert_eq!(out.status.code(), Some(i32::from(ExecExit::Busy.code())), "{}", text(&out));
    // The notice, for an orchestrator that lost the exit status, and the reason for the user.
    assert_eq!(ExecExit::noticed_in(&String::from_utf8_lossy(&out.stderr)), Some(ExecExit::Busy));
    assert!(text(&out).contains(&format!("is being trained by process {}", std::process::id())), "{}", text(&out));
    assert_eq!(std::fs::read(run_dir.join("status.json")).unwrap(), before, "the status belongs to the trainer");
}

#[test]
fn fail_fast_stops_the_sweep_at_the_first_failure() {
    let s = Sweep::new(
        "failfast",
        "seeds = [0, 1, 2]",
        "epochs = 1",
        &format!("[[variant]]\nname = \"diverges\"\n{DIVERGES}\n[[variant]]\nname = \"fine\"\n"),
    );
    let out = s.run(&["--fail-fast"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let statuses = s.statuses();
    // Plan order: the three seeds of "diverges" first; the sweep stops after the first.
    assert_eq!(statuses[0].state, State::Failed);
    assert!(statuses[1..].iter().all(|s| s.state == State::Pending && s.attempts == 0), "{statuses:#?}");
}

#[test]
fn max_retries_retries_and_retry_failed_grants_a_fresh_set() {
    let s = Sweep::new("retries", "max_retries = 1", &format!("epochs = 1\n{DIVERGES}"), "");
    let out = s.run(&[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let status = &s.statuses()[0];
    assert_eq!((status.state, status.attempts, status.failures), (State::Failed, 2, 2), "one try and one retry");
    assert!(text(&out).contains("retrying"), "{}", text(&out));

    // Its retries are spent: a plain re-run leaves it alone but still reports it.
    let out = s.run(&[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("training loss became"), "{}", text(&out));
    assert_eq!(s.statuses()[0].attempts, 2);

    let out = s.run(&["--retry-failed"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(s.statuses()[0].attempts, 4, "--retry-failed: one more try and its retry");
}

#[test]
fn a_crashed_run_is_retried_and_resumes_from_its_checkpoint() {
    let s = Sweep::new("crash", "seeds = [0, 1]\nmax_retries = 1", "epochs = 15", "");
    let mut orchestrator = s.start(&["--jobs", "2"], "crash");
    s.wait_for("a run past epoch 2", |st| st.iter().any(|s| s.state == State::Running && s.epochs_done >= 2));
    let victim = s.statuses().into_iter().find(|s| s.state == State::Running && s.epochs_done >= 2).unwrap();
    unsafe { libc::kill(victim.pid.unwrap() as i32, libc::SIGKILL) };
    let exit = wait_exit(&mut orchestrator, MINUTE);
    let output = s.output_of("crash");
    assert!(exit.success(), "{output}");
    assert!(output.contains("killed by SIGKILL"), "the crash is reported: {output}");
    s.run_dirs().iter().for_each(|d| assert_complete(d));
    let run_dir = s.dir.join(&victim.id);
    assert_eq!(RunStatus::read(&run_dir).unwrap().unwrap().attempts, 2);
    assert!(resumed(&run_dir), "the retry resumes from the last checkpoint");
}

#[test]
fn a_second_sweep_run_is_refused_and_a_stale_lock_is_taken_over() {
    let s = Sweep::new("locked", "", "epochs = 15", "");
    let mut first = s.start(&[], "first");
    s.wait_for("the first run to start", |st| st.iter().any(|s| s.state == State::Running));
    let second = s.run(&[]);
    assert_eq!(second.status.code(), Some(1), "{}", text(&second));
    let message = text(&second);
    assert!(
        message.contains(&format!("another `sweep run` (process {}) is running this sweep", first.id())),
        "{message}"
    );
    unsafe { libc::kill(-(first.id() as i32), libc::SIGINT) };
    assert_eq!(wait_exit(&mut first, MINUTE).code(), Some(130));

    // A lock file left by a process that died (kill -9, a power cut) does not hold.
    std::fs::write(s.dir.join("sweep.lock"), "4194000").unwrap();
    let out = s.run(&[]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("took over the lock of `sweep run` process 4194000"), "{}", text(&out));
    assert!(!s.dir.join("sweep.lock").exists(), "the lock is removed on exit");
}

#[test]
fn ctrl_c_records_runs_as_interrupted_and_the_next_run_resumes_them() {
    let s = Sweep::new("ctrlc", "seeds = [0, 1, 2]", "epochs = 15", "");
    let mut orchestrator = s.start(&["--jobs", "2"], "ctrlc");
    s.wait_for("two runs past epoch 2", |st| {
        st.iter().filter(|s| s.state == State::Running && s.epochs_done >= 2).count() == 2
    });
    // Ctrl-C at a terminal: SIGINT to the whole foreground process group.
    unsafe { libc::kill(-(orchestrator.id() as i32), libc::SIGINT) };
    let exit = wait_exit(&mut orchestrator, MINUTE);
    let output = s.output_of("ctrlc");
    assert_eq!(exit.code(), Some(130), "{output}");
    assert!(output.contains("/15  loss "), "plain progress lines name the epoch and loss: {output}");
    let statuses = s.statuses();
    assert_eq!(statuses.iter().filter(|s| s.state == State::Interrupted).count(), 2, "{statuses:#?}");
    assert!(statuses.iter().all(|s| s.state != State::Running && s.pid.is_none()), "{statuses:#?}");
    assert_eq!(statuses[2].state, State::Pending, "no new run starts after Ctrl-C");
    assert!(!s.dir.join("sweep.lock").exists());

    let out = s.run(&["--jobs", "2"]);
    assert!(out.status.success(), "{}", text(&out));
    s.run_dirs().iter().for_each(|d| assert_complete(d));
    for st in statuses.iter().filter(|s| s.state == State::Interrupted) {
        assert!(resumed(&s.dir.join(&st.id)), "run {} resumes instead of starting over", st.id);
    }
}

#[test]
fn after_kill_9_of_the_orchestrator_the_next_run_finishes_the_sweep() {
    let s = Sweep::new("kill9", "seeds = [0, 1, 2]", "epochs = 12", "");
    let mut orchestrator = s.start(&["--jobs", "2"], "kill9");
    s.wait_for("a run past epoch 2", |st| st.iter().any(|s| s.state == State::Running && s.epochs_done >= 2));
    let before = s.statuses();
    unsafe { libc::kill(orchestrator.id() as i32, libc::SIGKILL) };
    orchestrator.wait().unwrap();
    // At once, while the orphaned children may still be winding down.
    let out = s.run(&["--jobs", "2"]);
    assert!(out.status.success(), "{}", text(&out));
    s.run_dirs().iter().for_each(|d| assert_complete(d));
    for st in before.iter().filter(|s| s.epochs_done >= 2) {
        let log = std::fs::read_to_string(s.dir.join(&st.id).join("log.txt")).unwrap();
        let epoch_ones = log.lines().filter(|l| l.starts_with("epoch   1 ")).count();
        assert_eq!(epoch_ones, 1, "completed epochs are not trained again:\n{log}");
        assert!(resumed(&s.dir.join(&st.id)), "{log}");
    }
}

/// `sweep ARGS` in the background, its stdout into `tag`.out.
fn watcher(s: &Sweep, args: &[&str], tag: &str) -> std::process::Child {
    let out = std::fs::File::create(s.tmp.path().join(format!("{tag}.out"))).unwrap();
    Command::new(env!("CARGO_BIN_EXE_sweep")).args(args).stdout(out).spawn().unwrap()
}

#[test]
fn status_and_report_watch_a_sweep_trained_by_another_process() {
    let s = Sweep::new("watched", "seeds = [0, 1]", "epochs = 4", "");
    let mut run = s.start(&[], "run");
    s.wait_for("the plan", |_| true);
    let dir = s.dir.to_str().unwrap();
    let report_dir = s.tmp.path().join("report");
    let mut status = watcher(&s, &["status", dir, "--watch", "--json", "--interval", "0.1"], "status");
    let mut report =
        watcher(&s, &["report", dir, "--watch", "--interval", "0.1", "-o", report_dir.to_str().unwrap()], "report");
    assert!(wait_exit(&mut run, 2 * MINUTE).success(), "{}", s.output_of("run"));
    assert!(wait_exit(&mut status, MINUTE).success());
    assert!(wait_exit(&mut report, 2 * MINUTE).success(), "{}", s.output_of("report"));

    // One JSON object per change, the last the finished sweep.
    let lines: Vec<serde_json::Value> =
        s.output_of("status").lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(lines.len() >= 2, "{}", s.output_of("status"));
    assert!(lines.iter().any(|v| v["finished"] != v["total"]), "a view before the end");
    let last = lines.last().unwrap();
    assert_eq!((last["finished"].as_u64(), last["total"].as_u64()), (Some(2), Some(2)));
    assert_eq!(last["eta_seconds"].as_f64(), Some(0.0));
    for r in last["runs"].as_array().unwrap() {
        assert_eq!(
            (r["state"].as_str(), r["epochs_done"].as_u64(), r["epochs"].as_u64()),
            (Some("done"), Some(4), Some(4))
        );
        assert!(r["metric"].as_f64().is_some_and(f64::is_finite) && r["eta_seconds"].is_null(), "{r}");
    }
    // Rewritten while the runs trained, then the final report, no longer marked partial.
    assert!(s.output_of("report").contains("wrote a partial report to"), "{}", s.output_of("report"));
    let md = std::fs::read_to_string(report_dir.join("report.md")).unwrap();
    assert!(!md.contains("Partial report"), "{md}");

    // A run left interrupted after 2 of its 4 epochs (its checkpoints removed, so that the status
    // stands): 2 epochs left at its own pace, and a partial report.
    let run_dir = &s.run_dirs()[0];
    std::fs::remove_dir_all(run_dir.join("checkpoints")).unwrap();
    let mut st = RunStatus::read(run_dir).unwrap().unwrap();
    (st.state, st.epochs_done, st.seconds) = (State::Interrupted, 2, 30.0);
    st.write(run_dir).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_sweep")).args(["status", dir, "--json"]).output().unwrap();
    let view: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let first = &view["runs"][0];
    assert_eq!((first["state"].as_str(), first["eta_seconds"].as_f64()), (Some("interrupted"), Some(30.0)));
    assert_eq!(view["finished"].as_u64(), Some(1));
    let out = Command::new(env!("CARGO_BIN_EXE_sweep"))
        .args(["report", dir, "-o", report_dir.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let md = std::fs::read_to_string(report_dir.join("report.md")).unwrap();
    assert!(md.contains("Partial report, made") && md.contains("while 1 of 2 runs were not finished"), "{md}");
}
