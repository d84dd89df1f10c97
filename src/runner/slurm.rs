//! The Slurm executor: one job array per sweep, each task running `sweep exec` for one run folder,
//! for users who outgrow one machine. The Slurm nodes share the file system with this machine and
//! run the same `sweep` binary, found by its absolute path.
//!
//! In `results/<sweep>/slurm/` it writes `job.sh` (resources from the spec's `[slurm]` table),
//! `runs.txt` (line i+1 is the absolute run folder of array index i), `logs/<job>_<index>.out` (each
//! task's output) and `jobs.json` (the jobs submitted, so that a later `sweep run` follows them instead
//! of submitting twice). It submits with `sbatch --parsable`, follows the tasks with `squeue` (and
//! `scontrol` for how a task ended; `sacct` needs an accounting database many clusters lack) and the
//! runs' own `status.json`, and resubmits only the failed indices (`sbatch --array=LIST`, the same
//! script) as they end, while they have retries left. A task that Slurm stopped (cancelled, out of
//! time, preempted) counts as a failed attempt and resumes from its last checkpoint when resubmitted.
//!
//! Ctrl-C stops following, not training: the job keeps running in Slurm, and the next `sweep run`
//! follows it again (`scancel JOB` stops it).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use super::queue::{FailedRun, SweepOutcome, select, settle};
use crate::atomic::write_atomic;
use crate::device::Device;
use crate::spec::parse::SlurmSpec;
use crate::store::lock::SweepLock;
use crate::store::plan::SweepIndex;
use crate::store::protocol::{ExecExit, install_stop_handler, stop_requested};
use crate::store::status::{RunStatus, State};

/// The executor's folder inside the sweep's.
pub const SLURM_DIR: &str = "slurm";
const SCRIPT: &str = "job.sh";
const RUNS: &str = "runs.txt";
const JOBS: &str = "jobs.json";
const LOGS: &str = "logs";
/// How often squeue is asked: often enough for short test runs, rarely enough for a shared controller.
const POLL: Duration = Duration::from_secs(2);

pub struct SlurmOptions {
    /// `--device` of each task's `sweep exec`.
    pub device: Device,
    pub retry_failed: bool,
}

/// `jobs.json`: the jobs submitted for the current `runs.txt`.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Jobs {
    jobs: Vec<String>,
}

/// One array index being followed.
struct Task {
    index: usize,
    /// Index into the sweep's runs.
    run: usize,
    job: String,
    attempts_before: u32,
    epochs_seen: u64,
    running: bool,
    ended: bool,
}

/// The job script for `count` array tasks (see the module doc). `sweep_dir` must be absolute.
pub fn job_script(
    exe: &Path,
    sweep_dir: &Path,
    index: &SweepIndex,
    spec: &SlurmSpec,
    device: &str,
    count: usize,
) -> String {
    let dir = sweep_dir.join(SLURM_DIR);
    let runs = dir.join(RUNS);
    let mut s = String::from("#!/bin/bash\n");
    s += &format!(
        "# Job array of sweep \"{}\" ({}), written by `sweep run --executor slurm`.\n\
         # Task i trains the run folder on line i+1 of {RUNS}; failed tasks are resubmitted with\n\
         # `sbatch --array=LIST` and this same script.\n",
        index.sweep, index.spec
    );
    let mut option = |line: String| s += &format!("#SBATCH {line}\n");
    option(format!("--job-name=sweep-{}", index.sweep));
    option(format!("--array={}", array_range(&(0..count).collect::<Vec<_>>(), spec.max_concurrent)));
    option(format!("--output={}", dir.join(LOGS).join("%A_%a.out").display()));
    option("--ntasks=1".into());
    if let Some(p) = &spec.partition {
        option(format!("--partition={p}"));
    }
    if let Some(c) = spec.cpus_per_task {
        option(format!("--cpus-per-task={c}"));
    }
    if spec.gpus_per_task > 0 {
        option(format!("--gres=gpu:{}", spec.gpus_per_task));
    }
    if let Some(m) = &spec.mem {
        option(format!("--mem={m}"));
    }
    if let Some(t) = &spec.time {
        option(format!("--time={t}"));
    }
    for extra in &spec.extra {
        option(extra.clone());
    }
    let runs_q = shell_quote(&runs.display().to_string());
    s += &format!(
        r#"set -euo pipefail
run_dir=$(sed -n "$((SLURM_ARRAY_TASK_ID + 1))p" {runs_q})
if [ -z "$run_dir" ]; then
  echo "error: no run at index $SLURM_ARRAY_TASK_ID in "{runs_q} >&2
  exit 2
fi
# The run's threads use the CPUs Slurm gave the task.
if [ -n "${{SLURM_CPUS_PER_TASK:-}}" ]; then export RAYON_NUM_THREADS=$SLURM_CPUS_PER_TASK; fi
echo "sweep: task ${{SLURM_ARRAY_JOB_ID}}_${{SLURM_ARRAY_TASK_ID}} on $(hostname): $run_dir (CUDA_VISIBLE_DEVICES=${{CUDA_VISIBLE_DEVICES:-none}})"
exec {exe} exec "$run_dir" --device {device}
"#,
        exe = shell_quote(&exe.display().to_string()),
        device = shell_quote(device),
    );
    s
}

/// What `--dry-run` prints: the script, the index -> run mapping and the sbatch command, for the runs
/// a real submission would include. Writes nothing.
pub fn dry_run(sweep_dir: &Path, index: &SweepIndex, spec: &SlurmSpec, opts: &SlurmOptions) -> Result<String> {
    check_path(sweep_dir)?;
    let selection = select(sweep_dir, index, opts.retry_failed)?;
    let exe = current_exe()?;
    let dir = sweep_dir.join(SLURM_DIR);
    let mut out = format!("# {}\n", dir.join(SCRIPT).display());
    out += &job_script(&exe, sweep_dir, index, spec, &opts.device.to_string(), selection.queue.len());
    out += &format!("\n# {} (array index i is line i+1)\n", dir.join(RUNS).display());
    for &run in &selection.queue {
        out += &format!("{}\n", sweep_dir.join(&index.runs[run].id).display());
    }
    let skipped = format!("{} done already, {} failed without retries left", selection.skipped, selection.failed.len());
    if selection.queue.is_empty() {
        out += &format!("\n# nothing to submit ({skipped})\n");
    } else {
        out += &format!(
            "\n# would run: sbatch --parsable --array={} {}   ({} runs; {skipped})\n",
            array_range(&(0..selection.queue.len()).collect::<Vec<_>>(), spec.max_concurrent),
            dir.join(SCRIPT).display(),
            selection.queue.len()
        );
    }
    Ok(out)
}

/// Submits the runs of the locked sweep that are not done as a job array and follows it to the end
/// (see the module doc). The sweep folder must be absolute.
pub fn run_sweep(lock: &SweepLock, index: &SweepIndex, spec: &SlurmSpec, opts: &SlurmOptions) -> Result<SweepOutcome> {
    let sweep_dir = lock.dir();
    check_path(sweep_dir)?;
    install_stop_handler();
    let exe = current_exe()?;
    let dir = sweep_dir.join(SLURM_DIR);
    let follower = Follower { sweep_dir, dir: &dir, index, spec, started: Instant::now() };
    let mut outcome = SweepOutcome::default();

    // Jobs of an earlier `sweep run` that are still queued or running are followed, not submitted
    // again; what they leave unfinished is picked up below like any unfinished run.
    let mut jobs = read_jobs(&dir)?;
    let alive = squeue(&jobs.jobs)?;
    if !alive.is_empty() {
        follower.say(&format!(
            "following {} task(s) of Slurm job(s) {} submitted by an earlier `sweep run`",
            alive.len(),
            jobs.jobs.join(", ")
        ));
        let mut tasks = follower.adopt(&alive)?;
        if !follower.follow(&mut tasks, &mut jobs, &mut outcome)? {
            return Ok(detached(&jobs.jobs, outcome));
        }
    }

    let selection = select(sweep_dir, index, opts.retry_failed)?;
    selection.grant_retries(sweep_dir, index)?;
    // Runs finished by adopted tasks are counted as trained, not as done already; runs that failed
    // for good are all in the selection's list.
    outcome.skipped = selection.skipped.saturating_sub(outcome.done);
    outcome.failed = selection.failed.clone();
    println!(
        "sweep \"{}\": {} runs, {} done already, {} to submit to Slurm",
        index.sweep,
        index.runs.len(),
        selection.skipped,
        selection.queue.len()
    );
    if selection.queue.is_empty() {
        remove_jobs(&dir)?;
        return Ok(outcome);
    }

    std::fs::create_dir_all(dir.join(LOGS)).with_context(|| format!("cannot create {}", dir.join(LOGS).display()))?;
    let runs: String =
        selection.queue.iter().map(|&r| format!("{}\n", sweep_dir.join(&index.runs[r].id).display())).collect();
    write_atomic(&dir.join(RUNS), runs.as_bytes())?;
    write_atomic(
        &dir.join(SCRIPT),
        job_script(&exe, sweep_dir, index, spec, &opts.device.to_string(), selection.queue.len()).as_bytes(),
    )?;
    jobs = Jobs::default();
    let all: Vec<usize> = (0..selection.queue.len()).collect();
    let job = follower.submit(&all, &mut jobs)?;
    follower.say(&format!(
        "submitted Slurm job {job}: {} task(s){}; logs in {}",
        all.len(),
        spec.max_concurrent.map_or(String::new(), |k| format!(", at most {k} at once")),
        dir.join(LOGS).display()
    ));
    let mut tasks = Vec::new();
    for (i, &run) in selection.queue.iter().enumerate() {
        let attempts_before = RunStatus::read(&sweep_dir.join(&index.runs[run].id))?.map_or(0, |s| s.attempts);
        tasks.push(Task {
            index: i,
            run,
            job: job.clone(),
            attempts_before,
            epochs_seen: 0,
            running: false,
            ended: false,
        });
    }
    if !follower.follow(&mut tasks, &mut jobs, &mut outcome)? {
        return Ok(detached(&jobs.jobs, outcome));
    }
    remove_jobs(&dir)?;
    Ok(outcome)
}

/// Follows the tasks of one `runs.txt` and resubmits the failed ones.
struct Follower<'a> {
    sweep_dir: &'a Path,
    /// `results/<sweep>/slurm`.
    dir: &'a Path,
    index: &'a SweepIndex,
    spec: &'a SlurmSpec,
    started: Instant,
}

impl Follower<'_> {
    fn say(&self, text: &str) {
        println!("[{:>6.0}s] {text}", self.started.elapsed().as_secs_f64());
    }

    /// The tasks of an earlier `sweep run` still in Slurm, as (job, array index), mapped to runs
    /// through the `runs.txt` they were submitted with.
    fn adopt(&self, alive: &HashMap<(String, usize), String>) -> Result<Vec<Task>> {
        let runs_path = self.dir.join(RUNS);
        let runs =
            std::fs::read_to_string(&runs_path).with_context(|| format!("cannot read {}", runs_path.display()))?;
        let lines: Vec<&str> = runs.lines().collect();
        let mut tasks = Vec::new();
        for (job, i) in alive.keys() {
            let id = lines.get(*i).and_then(|l| Path::new(l).file_name()).and_then(|n| n.to_str());
            let Some(run) = id.and_then(|id| self.index.runs.iter().position(|r| r.id == id)) else {
                bail!(
                    "Slurm task {job}_{i} trains a run that is not in this sweep's plan (line {} of {}): \
                     let it finish or `scancel {job}`, then run again",
                    i + 1,
                    runs_path.display()
                );
            };
            // A running task's attempt has started already; a pending one's has not.
            let status = RunStatus::read(&self.sweep_dir.join(&self.index.runs[run].id))?;
            let attempts_before = status.as_ref().map_or(0, |s| s.attempts - u32::from(s.state == State::Running));
            let epochs_seen = status.map_or(0, |s| s.epochs_done);
            tasks.push(Task {
                index: *i,
                run,
                job: job.clone(),
                attempts_before,
                epochs_seen,
                running: false,
                ended: false,
            });
        }
        tasks.sort_by_key(|t| t.index);
        Ok(tasks)
    }

    /// Follows `tasks` until every one has ended for good, resubmitting failed ones with retries
    /// left. `false` when Ctrl-C stopped the following (the jobs go on).
    fn follow(&self, tasks: &mut [Task], jobs: &mut Jobs, outcome: &mut SweepOutcome) -> Result<bool> {
        let mut last_warning: Option<Instant> = None;
        while !tasks.iter().all(|t| t.ended) {
            if stop_requested() {
                return Ok(false);
            }
            std::thread::sleep(POLL);
            let open: HashSet<String> = tasks.iter().filter(|t| !t.ended).map(|t| t.job.clone()).collect();
            let alive = match squeue(&open.into_iter().collect::<Vec<_>>()) {
                Ok(alive) => alive,
                Err(e) => {
                    // A busy or restarting controller: keep following, and say so once a minute.
                    if last_warning.is_none_or(|t| t.elapsed() >= Duration::from_secs(60)) {
                        self.say(&format!("warning: {e:#}; trying again"));
                        last_warning = Some(Instant::now());
                    }
                    continue;
                }
            };
            let mut retry: Vec<usize> = Vec::new();
            for task in tasks.iter_mut().filter(|t| !t.ended) {
                match alive.get(&(task.job.clone(), task.index)) {
                    Some(state) => self.progress(task, state),
                    None => {
                        task.ended = true;
                        if self.ended(task, outcome)? {
                            retry.push(task.index);
                        }
                    }
                }
            }
            if !retry.is_empty() {
                let job = self.submit(&retry, jobs)?;
                self.say(&format!(
                    "resubmitted {} task(s) as Slurm job {job}: array indices {}",
                    retry.len(),
                    array_range(&retry, None)
                ));
                for task in tasks.iter_mut().filter(|t| retry.contains(&t.index)) {
                    let status = RunStatus::read(&self.sweep_dir.join(&self.index.runs[task.run].id))?;
                    task.attempts_before = status.as_ref().map_or(0, |s| s.attempts);
                    task.epochs_seen = status.map_or(0, |s| s.epochs_done);
                    task.job = job.clone();
                    task.running = false;
                    task.ended = false;
                }
            }
        }
        Ok(true)
    }

    /// A task Slurm still holds: says when it starts and each epoch it finishes.
    fn progress(&self, task: &mut Task, state: &str) {
        let planned = &self.index.runs[task.run];
        if state == "RUNNING" && !task.running {
            task.running = true;
            self.say(&format!("start  {}  {}  (task {}_{})", planned.id, planned.variant, task.job, task.index));
        }
        if let Ok(Some(s)) = RunStatus::read(&self.sweep_dir.join(&planned.id))
            && s.state == State::Running
            && s.epochs_done > task.epochs_seen
        {
            task.epochs_seen = s.epochs_done;
            self.say(&format!("epoch {}/{}  {}  {}", s.epochs_done, s.epochs, planned.id, planned.variant));
        }
    }

    /// Records how a task that Slurm no longer holds ended; `true` when it is to be resubmitted.
    fn ended(&self, task: &Task, outcome: &mut SweepOutcome) -> Result<bool> {
        let planned = &self.index.runs[task.run];
        let run_dir = self.sweep_dir.join(&planned.id);
        let name = format!("{}_{}", task.job, task.index);
        let end = scontrol_end(&name);
        let output = std::fs::read_to_string(self.dir.join(LOGS).join(format!("{name}.out"))).unwrap_or_default();
        let ended = match &end {
            Some((state, code)) => format!("Slurm task {name} ended as {state}, exit code {code}"),
            None => format!("Slurm task {name} ended"),
        };
        // The exit status, while the controller remembers the task; else the notice `sweep exec` wrote.
        let exit = end.as_ref().and_then(|(_, code)| exec_exit(code)).or_else(|| ExecExit::noticed_in(&output));
        let busy = exit == Some(ExecExit::Busy);
        if busy {
            // Nothing was changed: another process (a local `sweep exec`?) trains the run.
            self.say(&format!(
                "busy   {}  {}: another process trains it; submitting it again",
                planned.id, planned.variant
            ));
            return Ok(true);
        }
        let mut status = settle(&run_dir, task.attempts_before, &ended, false, &output)?;
        if status.state == State::Interrupted {
            // Slurm sent SIGTERM: scancel, the time limit, preemption. It counts as a failed
            // attempt; a resubmitted task resumes from the last checkpoint.
            status.state = State::Failed;
            status.failures += 1;
            status.reason = Some(format!("{ended} after {} of {} epochs", status.epochs_done, status.epochs));
            status.write(&run_dir)?;
        }
        if status.state == State::Done {
            outcome.done += 1;
            self.say(&format!("done   {}  {}", planned.id, planned.variant));
            return Ok(false);
        }
        let reason = status.reason.clone().unwrap_or_else(|| "unknown".into());
        if status.retries_left(self.index.max_retries) {
            self.say(&format!("failed {}  {}: {reason}; resubmitting", planned.id, planned.variant));
            return Ok(true);
        }
        self.say(&format!("failed {}  {}: {reason}", planned.id, planned.variant));
        outcome.failed.push(FailedRun { id: planned.id.clone(), variant: planned.variant.clone(), reason });
        Ok(false)
    }

    /// `sbatch --parsable --array=LIST job.sh`: the new job's id, also recorded in `jobs.json`.
    fn submit(&self, indices: &[usize], jobs: &mut Jobs) -> Result<String> {
        let script = self.dir.join(SCRIPT);
        let array = format!("--array={}", array_range(indices, self.spec.max_concurrent));
        let out = slurm_command("sbatch", &["--parsable", &array, &script.display().to_string()])?;
        if !out.status.success() {
            bail!(
                "sbatch refused the job array {}: {}\n(check the spec's [slurm] table; `sbatch {array} {}` shows the same error)",
                script.display(),
                String::from_utf8_lossy(&out.stderr).trim(),
                script.display()
            );
        }
        let job = parse_sbatch(&String::from_utf8_lossy(&out.stdout))
            .with_context(|| format!("sbatch printed no job id: {}", String::from_utf8_lossy(&out.stdout).trim()))?;
        jobs.jobs.push(job.clone());
        write_atomic(&self.dir.join(JOBS), &serde_json::to_vec_pretty(jobs).expect("jobs serialise"))?;
        Ok(job)
    }
}

/// The outcome of a sweep whose follower stops (Ctrl-C) while its jobs go on.
fn detached(jobs: &[String], outcome: SweepOutcome) -> SweepOutcome {
    println!(
        "stopped following; Slurm job(s) {} keep running: run the same `sweep run` again to follow them, \
         `scancel {}` to stop them",
        jobs.join(", "),
        jobs.join(" ")
    );
    SweepOutcome { interrupted: true, ..outcome }
}

fn read_jobs(dir: &Path) -> Result<Jobs> {
    let path = dir.join(JOBS);
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes).with_context(|| {
            format!("{} is damaged: delete it (after `scancel` of the jobs it names)", path.display())
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Jobs::default()),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

fn remove_jobs(dir: &Path) -> Result<()> {
    match std::fs::remove_file(dir.join(JOBS)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("cannot remove {}", dir.join(JOBS).display()))
        }
        _ => Ok(()),
    }
}

/// `sbatch --parsable` prints `JOBID` or `JOBID;CLUSTER`.
fn parse_sbatch(stdout: &str) -> Option<String> {
    let id = stdout.lines().map(str::trim).rfind(|l| !l.is_empty())?.split(';').next()?.trim();
    (!id.is_empty() && id.bytes().all(|b| b.is_ascii_digit())).then(|| id.to_string())
}

/// The array tasks of `jobs` that Slurm still holds (pending, running, completing...), by
/// (job, index), with their state.
fn squeue(jobs: &[String]) -> Result<HashMap<(String, usize), String>> {
    if jobs.is_empty() {
        return Ok(HashMap::new());
    }
    let out = slurm_command("squeue", &["-h", "-r", "-j", &jobs.join(","), "-o", "%i %T"])?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        // Jobs that ended long ago are forgotten by the controller.
        if stderr.contains("Invalid job id") {
            return Ok(HashMap::new());
        }
        bail!("squeue failed: {}", stderr.trim());
    }
    Ok(parse_squeue(&String::from_utf8_lossy(&out.stdout)))
}

/// Lines `JOB_INDEX STATE`; a pending remainder may still read `JOB_[2-5%2]`.
fn parse_squeue(stdout: &str) -> HashMap<(String, usize), String> {
    let mut tasks = HashMap::new();
    for line in stdout.lines() {
        let mut words = line.split_whitespace();
        let (Some(id), Some(state)) = (words.next(), words.next()) else { continue };
        let Some((job, rest)) = id.split_once('_') else { continue };
        let list = rest.trim_start_matches('[').trim_end_matches(']');
        let list = list.split('%').next().unwrap_or("");
        for part in list.split(',') {
            let (a, b) = part.split_once('-').unwrap_or((part, part));
            if let (Ok(a), Ok(b)) = (a.parse::<usize>(), b.parse::<usize>()) {
                for i in a..=b.min(a + 1_000_000) {
                    tasks.insert((job.to_string(), i), state.to_string());
                }
            }
        }
    }
    tasks
}

/// How an array task ended (`JobState`, `ExitCode`), while the controller remembers it.
fn scontrol_end(task: &str) -> Option<(String, String)> {
    let out = slurm_command("scontrol", &["show", "job", "-o", task]).ok()?;
    parse_scontrol(&String::from_utf8_lossy(&out.stdout))
}

/// How `sweep exec` ended, from a task's `ExitCode=CODE:SIGNAL` (a code only when no signal ended it).
fn exec_exit(exit_code: &str) -> Option<ExecExit> {
    let (code, signal) = exit_code.split_once(':')?;
    if signal != "0" {
        return None;
    }
    ExecExit::from_code(code.parse().ok()?)
}

fn parse_scontrol(stdout: &str) -> Option<(String, String)> {
    let field = |name: &str| stdout.split_whitespace().find_map(|w| w.strip_prefix(name)).map(str::to_string);
    Some((field("JobState=")?, field("ExitCode=").unwrap_or_else(|| "?".into())))
}

fn slurm_command(program: &str, args: &[&str]) -> Result<std::process::Output> {
    Command::new(program).args(args).output().with_context(|| {
        format!("cannot run `{program}`: the Slurm executor needs Slurm's commands on PATH (is this a cluster's login node?)")
    })
}

/// `0-7%2`, `1,4,5`: the `--array` value for `indices`, at most `max_concurrent` at once.
fn array_range(indices: &[usize], max_concurrent: Option<u32>) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut i = 0;
    while i < indices.len() {
        let mut j = i;
        while j + 1 < indices.len() && indices[j + 1] == indices[j] + 1 {
            j += 1;
        }
        parts.push(if j == i { indices[i].to_string() } else { format!("{}-{}", indices[i], indices[j]) });
        i = j + 1;
    }
    let limit = max_concurrent.map_or(String::new(), |k| format!("%{k}"));
    format!("{}{limit}", parts.join(","))
}

/// `'text'` for a POSIX shell.
fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

fn current_exe() -> Result<PathBuf> {
    let exe = std::env::current_exe().context("cannot find the sweep executable")?;
    std::fs::canonicalize(&exe).with_context(|| format!("cannot resolve {}", exe.display()))
}

/// `#SBATCH --output=` and runs.txt take the path as it is: no whitespace or quotes.
fn check_path(sweep_dir: &Path) -> Result<()> {
    let text = sweep_dir.display().to_string();
    if !sweep_dir.is_absolute() {
        bail!("the Slurm executor needs an absolute sweep folder, got {text}");
    }
    if text.chars().any(|c| c.is_whitespace() || matches!(c, '\'' | '"' | '\\' | '%')) {
        bail!(
            "the sweep folder {text} has whitespace, quotes or '%' in its path, which #SBATCH lines cannot carry: \
             choose a results folder without them (--results DIR)"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::plan::PlannedRun;

    fn index() -> SweepIndex {
        SweepIndex {
            sweep: "demo".into(),
            description: String::new(),
            spec: "experiments/demo.toml".into(),
            metric: "psnr".into(),
            higher_is_better: true,
            max_retries: 1,
            runs: vec![PlannedRun {
                id: "abc".into(),
                group: "g".into(),
                variant: "v".into(),
                seed: 0,
                changed: vec![],
            }],
        }
    }

    #[test]
    fn the_script_carries_the_resources_and_absolute_paths() {
        let spec = SlurmSpec {
            partition: Some("gpu".into()),
            gpus_per_task: 1,
            cpus_per_task: Some(4),
            mem: Some("16G".into()),
            time: Some("04:00:00".into()),
            max_concurrent: Some(2),
            extra: vec!["--account=lab".into()],
        };
        let s = job_script(Path::new("/opt/sweep"), Path::new("/data/results/demo"), &index(), &spec, "cuda:0", 8);
        for line in [
            "#SBATCH --array=0-7%2",
            "#SBATCH --output=/data/results/demo/slurm/logs/%A_%a.out",
            "#SBATCH --partition=gpu",
            "#SBATCH --cpus-per-task=4",
            "#SBATCH --gres=gpu:1",
            "#SBATCH --mem=16G",
            "#SBATCH --time=04:00:00",
            "#SBATCH --account=lab",
            "'/data/results/demo/slurm/runs.txt'",
            "exec '/opt/sweep' exec \"$run_dir\" --device 'cuda:0'",
        ] {
            assert!(s.contains(line), "missing {line} in\n{s}");
        }
        let bare = job_script(Path::new("/opt/sweep"), Path::new("/r/demo"), &index(), &SlurmSpec::default(), "cpu", 3);
        assert!(bare.contains("#SBATCH --array=0-2\n"), "{bare}");
        assert!(!bare.contains("--partition") && !bare.contains("--gres"), "{bare}");
    }

    #[test]
    fn array_ranges_compress_runs_of_indices() {
        assert_eq!(array_range(&[0, 1, 2, 3], Some(2)), "0-3%2");
        assert_eq!(array_range(&[1, 4, 5, 6, 9], None), "1,4-6,9");
        assert_eq!(array_range(&[3], Some(1)), "3%1");
    }

    #[test]
    fn slurm_outputs_parse() {
        assert_eq!(parse_sbatch("1234\n").as_deref(), Some("1234"));
        assert_eq!(parse_sbatch("1234;cluster\n").as_deref(), Some("1234"));
        assert_eq!(parse_sbatch("sbatch: error\n"), None);
        let tasks = parse_squeue("12_0 RUNNING\n12_[2-4%2] PENDING\n13_7 COMPLETING\n");
        assert_eq!(tasks.len(), 5);
        assert_eq!(tasks[&("12".to_string(), 0)], "RUNNING");
        assert_eq!(tasks[&("12".to_string(), 3)], "PENDING");
        assert_eq!(tasks[&("13".to_string(), 7)], "COMPLETING");
        let line =
            "JobId=15 ArrayJobId=12 ArrayTaskId=1 JobName=x JobState=CANCELLED Reason=None ExitCode=0:15 RunTime=1";
        assert_eq!(parse_scontrol(line), Some(("CANCELLED".into(), "0:15".into())));
        assert_eq!(parse_scontrol("slurm_load_jobs error: Invalid job id specified"), None);
        assert_eq!(exec_exit("75:0"), Some(ExecExit::Busy));
        assert_eq!(exec_exit("0:0"), Some(ExecExit::Done));
        assert_eq!(exec_exit("0:15"), None);
        assert_eq!(exec_exit("?"), None);
    }

    #[test]
    fn paths_slurm_cannot_carry_are_refused() {
        assert!(check_path(Path::new("/data/my results/x")).is_err());
        assert!(check_path(Path::new("results/x")).is_err());
        assert!(check_path(Path::new("/data/results/x")).is_ok());
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
    }
}
