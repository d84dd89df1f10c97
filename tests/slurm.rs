//! The Slurm executor against a real cluster: a small sweep goes through `sbatch` as a job array,
//! every run finishes, a task killed with `scancel` is resubmitted and resumes from its checkpoint,
//! and a finished sweep submits nothing. CI brings up a single-node cluster first
//! (`.ci/slurm/start-local-slurm.sh`, with fake GPUs) and sets `SWEEP_REQUIRE_SLURM=1`, which turns a
//! missing cluster into a failure; elsewhere the cluster test skips with a message when `sinfo`
//! cannot reach a controller. `--dry-run` needs no cluster.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{Sweep, assert_complete, resumed, text, wait_exit};
use sweep::store::status::{RunStatus, State};

/// Whether a Slurm controller answers; panics instead of skipping when CI requires one.
fn slurm_reachable() -> bool {
    let sinfo = Command::new("sinfo").arg("-h").output();
    let reason = match &sinfo {
        Ok(out) if out.status.success() => return true,
        Ok(out) => {
            format!("`sinfo` failed: {}", String::from_utf8_lossy(&out.stderr).trim().lines().last().unwrap_or(""))
        }
        Err(e) => format!("`sinfo` cannot run: {e}"),
    };
    let help = "start the local cluster with `sudo .ci/slurm/start-local-slurm.sh` and \
                `source /tmp/slurmtest/env.sh` (it exports SLURM_CONF)";
    if std::env::var("SWEEP_REQUIRE_SLURM").as_deref() == Ok("1") {
        panic!("SWEEP_REQUIRE_SLURM=1 but no Slurm cluster is reachable ({reason}); {help}");
    }
    eprintln!(
        "SKIPPED: no Slurm cluster is reachable ({reason}); {help}, or set SWEEP_REQUIRE_SLURM=1 to fail instead"
    );
    false
}

/// `sinfo` for one field of the default partition (`%P` name, `%G` generic resources).
fn sinfo(field: &str) -> String {
    let out = Command::new("sinfo").args(["-h", "-o", field]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let line = text.lines().find(|l| l.contains('*')).or_else(|| text.lines().next()).unwrap_or("");
    line.trim().trim_end_matches('*').to_string()
}

#[test]
fn dry_run_prints_the_job_script_and_submits_nothing() {
    let s = Sweep::new(
        "slurmdry",
        "seeds = [0, 1, 2]",
        "epochs = 1",
        "[slurm]\npartition = \"gpu\"\ncpus_per_task = 2\nmax_concurrent = 2\nextra = [\"--qos=test\"]\n",
    );
    let out = s.run(&["--executor", "slurm", "--dry-run"]);
    let printed = text(&out);
    assert!(out.status.success(), "{printed}");
    for line in [
        "#SBATCH --array=0-2%2",
        "#SBATCH --partition=gpu",
        "#SBATCH --cpus-per-task=2",
        "#SBATCH --qos=test",
        &format!("#SBATCH --output={}/slurm/logs/%A_%a.out", s.dir.display()),
        &format!("exec '{}' exec", std::fs::canonicalize(env!("CARGO_BIN_EXE_sweep")).unwrap().display()),
        "would run: sbatch --parsable --array=0-2%2",
    ] {
        assert!(printed.contains(line), "missing `{line}` in\n{printed}");
    }
    let run_lines = printed.lines().filter(|l| l.starts_with(&format!("{}/", s.dir.display()))).count();
    assert_eq!(run_lines, 3, "runs.txt lists the 3 run folders:\n{printed}");
    assert!(!s.results.exists(), "a dry run writes nothing");

    let out = s.run(&["--executor", "slurm", "--jobs", "2"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("max_concurrent"), "{}", text(&out));
}

#[test]
fn a_sweep_runs_through_slurm_and_a_cancelled_task_is_resubmitted() {
    if !slurm_reachable() {
        return;
    }
    let partition = sinfo("%P");
    let gpus = if sinfo("%G").contains("gpu") { 1 } else { 0 };
    let s = Sweep::new(
        "slurmci",
        "seeds = [0, 1, 2]\nmax_retries = 1",
        "epochs = 20",
        &format!(
            "[slurm]\npartition = \"{partition}\"\ncpus_per_task = 1\ngpus_per_task = {gpus}\nmem = 512\ntime = \"00:10:00\"\nmax_concurrent = 2\n"
        ),
    );
    let mut follower = s.start(&["--executor", "slurm"], "slurm");
    s.wait_for("a Slurm task past epoch 2", |st| st.iter().any(|s| s.state == State::Running && s.epochs_done >= 2));

    // Cancel the task of a running run: Slurm stops it with SIGTERM, it records itself as
    // interrupted, and the follower resubmits its index.
    let victim = s.statuses().into_iter().find(|s| s.state == State::Running && s.epochs_done >= 2).unwrap();
    let slurm_dir = s.dir.join("slurm");
    let jobs: serde_json::Value = serde_json::from_slice(&std::fs::read(slurm_dir.join("jobs.json")).unwrap()).unwrap();
    let job = jobs["jobs"][0].as_str().unwrap().to_string();
    let runs = std::fs::read_to_string(slurm_dir.join("runs.txt")).unwrap();
    let index = runs.lines().position(|l| l.ends_with(&victim.id)).unwrap();
    let scancel = Command::new("scancel").arg(format!("{job}_{index}")).output().unwrap();
    assert!(scancel.status.success(), "{}", text(&scancel));

    let exit = wait_exit(&mut follower, Duration::from_secs(300));
    let output = s.output_of("slurm");
    assert!(exit.success(), "{output}");
    assert!(output.contains(&format!("submitted Slurm job {job}: 3 task(s), at most 2 at once")), "{output}");
    assert!(output.contains(&format!("Slurm task {job}_{index} ended as CANCELLED")), "{output}");
    assert!(output.contains("resubmitted 1 task(s) as Slurm job"), "{output}");
    s.run_dirs().iter().for_each(|d| assert_complete(d));
    let run_dir = s.dir.join(&victim.id);
    assert_eq!(RunStatus::read(&run_dir).unwrap().unwrap().attempts, 2);
    assert!(resumed(&run_dir), "the resubmitted task resumes from the last checkpoint");
    assert!(!slurm_dir.join("jobs.json").exists(), "nothing left to follow");
    let logs: Vec<String> = std::fs::read_dir(slurm_dir.join("logs"))
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect();
    assert_eq!(logs.len(), 4, "one log per task, the resubmitted one included");
    if gpus > 0 {
        assert!(logs.iter().all(|l| !l.contains("CUDA_VISIBLE_DEVICES=none")), "each task gets a GPU:\n{logs:#?}");
    }

    // A finished sweep submits nothing.
    let again = s.run(&["--executor", "slurm"]);
    assert!(again.status.success(), "{}", text(&again));
    assert!(text(&again).contains("3 done already, 0 to submit"), "{}", text(&again));
    assert!(!slurm_dir.join("jobs.json").exists());
}

#[test]
fn a_search_with_asha_runs_through_slurm_with_stopped_tasks_and_promotions_resubmitted() {
    if !slurm_reachable() {
        return;
    }
    let partition = sinfo("%P");
    let gpus = if sinfo("%G").contains("gpu") { 1 } else { 0 };
    let s = Sweep::new(
        "slurmasha",
        "seeds = [0, 1]",
        "epochs = 4",
        &format!(
            "[search]\nmethod = \"quasi\"\ntrials = 6\nthen = \"seeds\"\n[search.space]\nlr = {{ log_uniform = [1e-4, 3e-2] }}\n\
             [early_stop]\nmethod = \"asha\"\nreduction = 2\n\
             [slurm]\npartition = \"{partition}\"\ncpus_per_task = 1\ngpus_per_task = {gpus}\nmem = 512\ntime = \"00:10:00\"\nmax_concurrent = 2\n"
        ),
    );
    let out = s.run(&["--executor", "slurm"]);
    assert!(out.status.success(), "{}", text(&out));
    let index = sweep::store::plan::SweepIndex::read(&s.dir).unwrap();
    let statuses = s.statuses();
    let trials: Vec<&RunStatus> =
        statuses.iter().filter(|st| index.runs.iter().any(|r| r.id == st.id && !r.tuned)).collect();
    // Every trial ended trained in full or stopped; at least one in full; ASHA saved epochs.
    assert!(trials.iter().all(|t| matches!(t.state, State::Done | State::Stopped)), "{trials:#?}");
    assert!(trials.iter().any(|t| t.state == State::Done && t.epochs_done == 4));
    assert!(trials.iter().map(|t| t.epochs_done).sum::<u64>() < 24);
    // The best trial trained again with seed 1.
    let tuned = index.runs.iter().find(|r| r.tuned).expect("a tuned run");
    assert_complete(&s.dir.join(&tuned.id));
}
