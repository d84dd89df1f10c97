//! The Slurm executor against a real cluster: a small sweep goes through `sbatch` as a job array,
//! every run finishes, a task killed with `scancel` is resubmitted and resumes from its checkpoint,
//! and a finished sweep submits nothing; with `runs_per_task = 2` fewer tasks than runs train every
//! run, two at once in a task, and a run killed inside its task is resubmitted alone and resumes
//! while its pack-mate trains on. CI brings up a single-node cluster first
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

/// A sweep for the local cluster (`Sweep::new` with `sweep`, `base` and `rest`), then a `[slurm]` table
/// with its default partition, one CPU, a GPU where the node has them, a time limit and `slurm`;
/// and the GPUs per task.
fn on_cluster(name: &str, sweep: &str, base: &str, rest: &str, slurm: &str) -> (Sweep, u32) {
    let partition = sinfo("%P");
    let gpus = if sinfo("%G").contains("gpu") { 1 } else { 0 };
    let table = format!(
        "[slurm]\npartition = \"{partition}\"\ncpus_per_task = 1\ngpus_per_task = {gpus}\ntime = \"00:10:00\"\n{slurm}\n"
    );
    (Sweep::new(name, sweep, base, &format!("{rest}{table}")), gpus)
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
    let (s, gpus) =
        on_cluster("slurmci", "seeds = [0, 1, 2]\nmax_retries = 1", "epochs = 20", "", "mem = 512\nmax_concurrent = 2");
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
    let search = "[search]\nmethod = \"quasi\"\ntrials = 6\nthen = \"seeds\"\n[search.space]\nlr = { log_uniform = [1e-4, 3e-2] }\n\
                  [early_stop]\nmethod = \"asha\"\nreduction = 2\n";
    let (s, _) = on_cluster("slurmasha", "seeds = [0, 1]", "epochs = 4", search, "mem = 512\nmax_concurrent = 2");
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

#[test]
fn packed_tasks_train_every_run_and_a_run_killed_in_its_task_is_resubmitted_alone() {
    if !slurm_reachable() {
        return;
    }
    let (s, gpus) = on_cluster(
        "slurmpack",
        "seeds = [0, 1, 2]\nmax_retries = 1",
        "epochs = 20",
        "",
        "mem = 1024\nruns_per_task = 2",
    );
    let mut follower = s.start(&["--executor", "slurm"], "slurm");
    let slurm_dir = s.dir.join("slurm");
    // Task 0 packs the first two runs of the plan; kill one of them once both train, past epoch 2.
    s.wait_for("both runs of task 0 training", |st| {
        st[0].state == State::Running && st[1].state == State::Running && st[0].epochs_done >= 2
    });
    let runs_txt = std::fs::read_to_string(slurm_dir.join("runs.txt")).unwrap();
    let first: Vec<&str> = runs_txt.lines().next().unwrap().split(' ').collect();
    let dirs = s.run_dirs();
    assert_eq!(first, [dirs[0].to_str().unwrap(), dirs[1].to_str().unwrap()], "{runs_txt}");
    assert_eq!(runs_txt.lines().count(), 2, "3 runs, 2 per task: 2 tasks\n{runs_txt}");
    let (victim, mate) = (s.statuses()[0].clone(), s.statuses()[1].clone());
    let pid = victim.pid.expect("a running run records its process") as i32;
    assert_ne!(Some(pid as u32), mate.pid, "each run of a task is its own process");
    assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0, "kill -9 of the victim's sweep exec");

    let exit = wait_exit(&mut follower, Duration::from_secs(300));
    let output = s.output_of("slurm");
    assert!(exit.success(), "{output}");
    assert!(!slurm_dir.join("jobs.json").exists(), "nothing left to follow");
    let job = output
        .split("submitted Slurm job ")
        .nth(1)
        .and_then(|r| r.split(':').next())
        .expect("a submission")
        .to_string();
    assert!(output.contains(&format!("submitted Slurm job {job}: 2 task(s) for 3 runs, up to 2 in each")), "{output}");
    assert!(output.contains("each task's cpu: 2 runs x ~"), "{output}");
    assert!(
        output.contains(&format!("was killed by SIGKILL (out of memory, or kill -9) in Slurm task {job}_0")),
        "{output}"
    );
    assert!(output.contains("resubmitted 1 run(s) in 1 task(s) as Slurm job"), "{output}");
    s.run_dirs().iter().for_each(|d| assert_complete(d));

    // The victim alone in a new task, resumed from its checkpoint; its pack-mate never stopped.
    let runs_txt = std::fs::read_to_string(slurm_dir.join("runs.txt")).unwrap();
    assert_eq!(runs_txt.lines().nth(2), Some(dirs[0].to_str().unwrap()), "{runs_txt}");
    let statuses = s.statuses();
    assert_eq!((statuses[0].attempts, statuses[1].attempts, statuses[2].attempts), (2, 1, 1), "{statuses:#?}");
    assert!(resumed(&dirs[0]), "the resubmitted run resumes from the last checkpoint");
    assert!(!resumed(&dirs[1]), "its pack-mate trained on");
    let end = std::fs::read_to_string(slurm_dir.join(format!("ends/{job}_0/{}.json", victim.id))).unwrap();
    assert!(end.contains(&format!("\"signal\":{}", libc::SIGKILL)), "{end}");
    // Three task logs; a packed task's log says what its runs need.
    let logs: Vec<String> = std::fs::read_dir(slurm_dir.join("logs"))
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect();
    assert_eq!(logs.len(), 3, "{logs:#?}");
    let task0 = std::fs::read_to_string(slurm_dir.join(format!("logs/{job}_0.out"))).unwrap();
    assert!(task0.contains("sweep: memory per run: ~") && task0.contains("cpu: 2 runs x ~"), "{task0}");
    if gpus > 0 {
        assert!(logs.iter().all(|l| !l.contains("CUDA_VISIBLE_DEVICES=none")), "each task gets a GPU:\n{logs:#?}");
    }
}
