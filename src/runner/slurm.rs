//! The Slurm executor: one job array per sweep, each task running `sweep exec` for one run folder,
//! for users who outgrow one machine. The Slurm nodes share the file system with this machine and
//! run the same `sweep` binary, found by its absolute path.
//!
//! In its own folder of the sweep, `results/<sweep>/slurm/`, it writes `job.sh` (resources from the spec's `[slurm]` table),
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

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use super::queue::{Selection, busy_note};
use super::{Attempt, AttemptEnd, BadOptions, Event, Executor, Exit, Halt, RunOptions, Sweep};
use crate::atomic::write_atomic;
use crate::device::Device;
use crate::spec::parse::SlurmSpec;
use crate::store::layout::executor_dir;
use crate::store::plan::SweepIndex;
use crate::store::protocol::{ExecExit, is_stop_signal};
use crate::store::status::{RunStatus, State};

/// The executor's folder inside the sweep's.
pub const SLURM_DIR: &str = "slurm";
const SCRIPT: &str = "job.sh";
const RUNS: &str = "runs.txt";
const JOBS: &str = "jobs.json";
const LOGS: &str = "logs";
/// How often squeue is asked: often enough for short test runs, rarely enough for a shared controller.
const POLL: Duration = Duration::from_secs(2);

/// `jobs.json`: the jobs submitted for the current `runs.txt`.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Jobs {
    jobs: Vec<String>,
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
        index.sweep,
        // A comment line: a newline in the spec's path must not end it.
        crate::terminal::line(&index.spec)
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

/// An array task under way.
struct Task {
    /// Its array index: line index + 1 of `runs.txt`.
    index: usize,
    job: String,
    /// Slurm said RUNNING (and the display was told).
    running: bool,
}

pub struct SlurmExecutor {
    /// `--device` of each task's `sweep exec`.
    device: Device,
    spec: SlurmSpec,
    exe: PathBuf,
    /// `jobs.json`.
    jobs: Jobs,
    /// Each run's array index in the current `runs.txt`.
    index_of: HashMap<usize, usize>,
    /// Tasks under way, by run.
    tasks: BTreeMap<usize, Task>,
    /// The next submission is the first of the current `runs.txt`.
    first: bool,
    last_poll: Instant,
    last_warning: Option<Instant>,
}

impl SlurmExecutor {
    /// The executor for the spec's `[slurm]` table; `--jobs`, `--devices`, `--per-device` and
    /// `--fail-fast` are refused.
    pub fn new(opts: &RunOptions, spec: &SlurmSpec) -> Result<SlurmExecutor> {
        if opts.jobs.is_some() || !opts.devices.is_empty() || opts.per_device.is_some() || opts.fail_fast {
            return Err(BadOptions(
                "--jobs, --devices, --per-device and --fail-fast apply to the local executor; on Slurm, set \
                 max_concurrent and gpus_per_task in the spec's [slurm] table"
                    .into(),
            )
            .into());
        }
        if spec.gpus_per_task > 0 && opts.device == Device::Cpu {
            eprintln!(
                "warning: [slurm] gpus_per_task = {} but --device cpu: the runs will not use the GPUs (pass --device cuda:0)",
                spec.gpus_per_task
            );
        }
        Ok(SlurmExecutor {
            device: opts.device,
            spec: spec.clone(),
            exe: current_exe()?,
            jobs: Jobs::default(),
            index_of: HashMap::new(),
            tasks: BTreeMap::new(),
            first: false,
            last_poll: Instant::now(),
            last_warning: None,
        })
    }

    /// The tasks of an earlier `sweep run` still in Slurm, as (job, array index), mapped to runs
    /// through the `runs.txt` they were submitted with.
    fn adopt_tasks(&mut self, sweep: &Sweep, alive: &HashMap<(String, usize), String>) -> Result<Vec<Attempt>> {
        let runs_path = executor_dir(sweep.dir, SLURM_DIR).join(RUNS);
        let runs =
            std::fs::read_to_string(&runs_path).with_context(|| format!("cannot read {}", runs_path.display()))?;
        let lines: Vec<&str> = runs.lines().collect();
        let mut attempts = Vec::new();
        for (job, i) in alive.keys() {
            let id = lines.get(*i).and_then(|l| Path::new(l).file_name()).and_then(|n| n.to_str());
            let Some(run) = id.and_then(|id| sweep.index.runs.iter().position(|r| r.id == id)) else {
                bail!(
                    "Slurm task {job}_{i} trains a run that is not in this sweep's plan (line {} of {}): \
                     let it finish or `scancel {job}`, then run again",
                    i + 1,
                    runs_path.display()
                );
            };
            // A running task's attempt has started already; a pending one's has not. A status that
            // does not read is the task's trainer's to rebuild.
            let status = RunStatus::read(&sweep.run_dir(run)).ok().flatten();
            let attempts_before = status.map_or(0, |s| s.attempts - u32::from(s.state == State::Running));
            self.index_of.insert(run, *i);
            self.tasks.insert(run, Task { index: *i, job: job.clone(), running: false });
            attempts.push(Attempt { run, attempts_before });
        }
        attempts.sort_by_key(|a| self.index_of[&a.run]);
        Ok(attempts)
    }

    /// How a task that Slurm no longer holds ended.
    fn end_of(&self, sweep: &Sweep, run: usize, task: &Task) -> AttemptEnd {
        let name = format!("{}_{}", task.job, task.index);
        let end = scontrol_end(&name);
        let logs = executor_dir(sweep.dir, SLURM_DIR).join(LOGS);
        let output = std::fs::read_to_string(logs.join(format!("{name}.out"))).unwrap_or_default();
        // The exit status, while the controller remembers the task; else the notice `sweep exec` wrote.
        let exit = end.as_ref().and_then(|(_, code)| exec_exit(code)).or_else(|| ExecExit::noticed_in(&output));
        if exit == Some(ExecExit::Busy) {
            let planned = &sweep.index.runs[run];
            return AttemptEnd::Busy(format!("{} {}: {}", planned.id, planned.variant, busy_note(&output)));
        }
        let signalled =
            end.as_ref().and_then(|(_, code)| code.split_once(':')?.1.parse().ok()).is_some_and(is_stop_signal);
        let how = match &end {
            Some((state, code)) => format!("Slurm task {name} ended as {state}, exit code {code}"),
            None => format!("Slurm task {name} ended"),
        };
        AttemptEnd::Exited(Exit { how, output, signalled })
    }

    /// `sbatch --parsable --array=LIST job.sh`: the new job's id, also recorded in `jobs.json`.
    fn submit(&mut self, dir: &Path, indices: &[usize]) -> Result<String> {
        let script = dir.join(SCRIPT);
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
        self.jobs.jobs.push(job.clone());
        write_atomic(&dir.join(JOBS), &serde_json::to_vec_pretty(&self.jobs).expect("jobs serialise"))?;
        // squeue is asked about the new job after a full poll interval, not at once.
        self.last_poll = Instant::now();
        Ok(job)
    }
}

impl Executor for SlurmExecutor {
    fn destination(&self) -> String {
        "submit to Slurm".into()
    }

    fn devices_here(&self) -> Vec<Device> {
        Vec::new()
    }

    /// The script, the index -> run mapping and the sbatch command, for the runs a real submission
    /// would include.
    fn dry_run(&self, sweep_dir: &Path, index: &SweepIndex, selection: &Selection) -> Result<String> {
        check_path(sweep_dir)?;
        let dir = executor_dir(sweep_dir, SLURM_DIR);
        let mut out = format!("# {}\n", dir.join(SCRIPT).display());
        out += &job_script(&self.exe, sweep_dir, index, &self.spec, &self.device.to_string(), selection.queue.len());
        out += &format!("\n# {} (array index i is line i+1)\n", dir.join(RUNS).display());
        for &run in &selection.queue {
            out += &format!("{}\n", sweep_dir.join(&index.runs[run].id).display());
        }
        let skipped =
            format!("{} done already, {} failed without retries left", selection.skipped, selection.failed.len());
        if selection.queue.is_empty() {
            out += &format!("\n# nothing to submit ({skipped})\n");
        } else {
            out += &format!(
                "\n# would run: sbatch --parsable --array={} {}   ({} runs; {skipped})\n",
                array_range(&(0..selection.queue.len()).collect::<Vec<_>>(), self.spec.max_concurrent),
                dir.join(SCRIPT).display(),
                selection.queue.len()
            );
        }
        Ok(out)
    }

    /// Jobs of an earlier `sweep run` that are still queued or running are followed, not submitted
    /// again; what they leave unfinished is picked up afterwards like any unfinished run.
    fn adopt(&mut self, sweep: &Sweep) -> Result<Vec<Attempt>> {
        check_path(sweep.dir)?;
        self.jobs = read_jobs(&executor_dir(sweep.dir, SLURM_DIR))?;
        let alive = squeue(&self.jobs.jobs)?;
        if alive.is_empty() {
            return Ok(Vec::new());
        }
        sweep.say.stamped(&format!(
            "following {} task(s) of Slurm job(s) {} submitted by an earlier `sweep run`",
            alive.len(),
            self.jobs.jobs.join(", ")
        ));
        self.last_poll = Instant::now();
        self.adopt_tasks(sweep, &alive)
    }

    /// Writes `runs.txt` (line i+1: the run folder of array index i) and the job script for `queue`.
    fn prepare(&mut self, sweep: &Sweep, queue: &[usize]) -> Result<()> {
        let dir = executor_dir(sweep.dir, SLURM_DIR);
        std::fs::create_dir_all(dir.join(LOGS))
            .with_context(|| format!("cannot create {}", dir.join(LOGS).display()))?;
        let runs: String = queue.iter().map(|&r| format!("{}\n", sweep.run_dir(r).display())).collect();
        write_atomic(&dir.join(RUNS), runs.as_bytes())?;
        let script = job_script(&self.exe, sweep.dir, sweep.index, &self.spec, &self.device.to_string(), queue.len());
        write_atomic(&dir.join(SCRIPT), script.as_bytes())?;
        self.jobs = Jobs::default();
        self.index_of = queue.iter().enumerate().map(|(i, &run)| (run, i)).collect();
        self.first = true;
        Ok(())
    }

    /// Slurm queues the tasks itself (`max_concurrent` limits how many run at once).
    fn free_slots(&self) -> usize {
        usize::MAX
    }

    /// Submits the runs' array indices as one job: the whole array first, then the failed indices
    /// again, with the same script.
    fn start(&mut self, sweep: &Sweep, runs: &[usize]) -> Result<()> {
        let dir = executor_dir(sweep.dir, SLURM_DIR);
        let mut indices: Vec<usize> = runs.iter().map(|r| self.index_of[r]).collect();
        indices.sort_unstable();
        let job = self.submit(&dir, &indices)?;
        if std::mem::take(&mut self.first) {
            sweep.say.stamped(&format!(
                "submitted Slurm job {job}: {} task(s){}; logs in {}",
                indices.len(),
                self.spec.max_concurrent.map_or(String::new(), |k| format!(", at most {k} at once")),
                dir.join(LOGS).display()
            ));
        } else {
            sweep.say.stamped(&format!(
                "resubmitted {} task(s) as Slurm job {job}: array indices {}",
                indices.len(),
                array_range(&indices, None)
            ));
        }
        for &run in runs {
            self.tasks.insert(run, Task { index: self.index_of[&run], job: job.clone(), running: false });
        }
        Ok(())
    }

    /// Every [`POLL`]: the tasks Slurm no longer holds have ended; the others may have started.
    fn poll(&mut self, sweep: &Sweep) -> Result<Vec<Event>> {
        if self.tasks.is_empty() || self.last_poll.elapsed() < POLL {
            return Ok(Vec::new());
        }
        self.last_poll = Instant::now();
        let open: HashSet<String> = self.tasks.values().map(|t| t.job.clone()).collect();
        let alive = match squeue(&open.into_iter().collect::<Vec<_>>()) {
            Ok(alive) => alive,
            Err(e) => {
                // A busy or restarting controller: keep following, and say so once a minute.
                if self.last_warning.is_none_or(|t| t.elapsed() >= Duration::from_secs(60)) {
                    sweep.say.stamped(&format!("warning: {e:#}; trying again"));
                    self.last_warning = Some(Instant::now());
                }
                return Ok(Vec::new());
            }
        };
        let mut events = Vec::new();
        let mut ended = Vec::new();
        for (&run, task) in &mut self.tasks {
            match alive.get(&(task.job.clone(), task.index)) {
                Some(state) if state == "RUNNING" && !task.running => {
                    task.running = true;
                    events.push(Event::Running { run, place: format!("(task {}_{})", task.job, task.index) });
                }
                Some(_) => {}
                None => ended.push(run),
            }
        }
        for run in ended {
            let task = self.tasks.remove(&run).expect("an ended task was under way");
            events.push(Event::Ended { run, end: self.end_of(sweep, run, &task) });
        }
        Ok(events)
    }

    /// Ctrl-C stops following, not training: the job keeps running in Slurm.
    fn halt(&mut self) -> Halt {
        Halt::Detach
    }

    fn stop_is_failure(&self) -> bool {
        true
    }

    fn finish(&mut self, sweep: &Sweep, detached: bool) -> Result<()> {
        if detached {
            sweep.say.line(&format!(
                "stopped following; Slurm job(s) {} keep running: run the same `sweep run` again to follow them, \
                 `scancel {}` to stop them",
                self.jobs.jobs.join(", "),
                self.jobs.jobs.join(" ")
            ));
            return Ok(());
        }
        remove_jobs(&executor_dir(sweep.dir, SLURM_DIR))
    }
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
                trial: None,
                tuned: false,
            }],
            searched: Vec::new(),
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
            runs_per_task: 1,
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
