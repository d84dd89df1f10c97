//! The Slurm executor: one job array per sweep, each task running `sweep exec` for one run folder,
//! or for several at once (`[slurm] runs_per_task`), for users who outgrow one machine. The Slurm
//! nodes share the file system with this machine and run the same `sweep` binary, found by its
//! absolute path.
//!
//! In its own folder of the sweep, `results/<sweep>/slurm/`, it writes `job.sh` (resources from the spec's `[slurm]` table),
//! `runs.txt` (line i+1 holds the absolute run folders of array index i, separated by spaces: one
//! per task, or up to `runs_per_task`), `logs/<job>_<index>.out` (each task's output) and `jobs.json`
//! (the jobs submitted, so that a later `sweep run` follows them instead of submitting twice). It
//! submits with `sbatch --parsable`, follows the tasks with `squeue` (and `scontrol` for how a task
//! ended; `sacct` needs an accounting database many clusters lack) and the runs' own `status.json`,
//! and resubmits only the failed runs (`sbatch --array=LIST`, the same script) as they end, while
//! they have retries left. A task that Slurm stopped (cancelled, out of time, preempted) counts as a
//! failed attempt of its runs, which resume from their last checkpoint when resubmitted.
//!
//! **Packed tasks.** With `runs_per_task = N` (default 1), the runs are packed N to a task in plan
//! order, and each task trains its runs at once on its one GPU (or its CPUs): the task runs `sweep
//! exec --ends DIR RUN_DIR...` ([`super::pack`]), which starts one `sweep exec` child per run, as the
//! local executor's `--per-device` slots do, with the task's CPU threads (`SLURM_CPUS_PER_TASK`)
//! split between them, and records how each child ended in `slurm/ends/<job>_<index>/<run-id>.json`
//! as it ends. So each run is followed on its own: a run that fails or is stopped inside a task is
//! settled and resubmitted alone while the other runs of its task train on; the resubmitted runs
//! are packed again, N to a new task (a line appended to `runs.txt`; the lines of tasks already
//! submitted never change), unless all the runs of one task are resubmitted together, which reuse
//! its index. With N = 1 the script, `runs.txt` and the array indices are those of one run per task.
//! Before submitting, the estimated memory of a run and of a task's runs is printed, and CPU runs
//! whose task would need more than `[slurm] mem` are refused ([`super::memory`]); each packed task
//! prints its runs' memory in its log.
//!
//! Ctrl-C stops following, not training: the job keeps running in Slurm, and the next `sweep run`
//! follows it again (`scancel JOB` stops it).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use super::local::attempt_end;
use super::memory::{Footprint, Limit};
use super::queue::{Selection, busy_note};
use super::{Attempt, AttemptEnd, BadOptions, Event, Executor, Exit, Halt, RunOptions, Sweep};
use crate::atomic::write_atomic;
use crate::device::Device;
use crate::spec::parse::SlurmSpec;
use crate::store::layout::executor_dir;
use crate::store::log;
use crate::store::plan::SweepIndex;
use crate::store::protocol::{ExecEnd, ExecExit, is_stop_signal};
use crate::store::status::{RunStatus, State};

/// The executor's folder inside the sweep's.
pub const SLURM_DIR: &str = "slurm";
const SCRIPT: &str = "job.sh";
const RUNS: &str = "runs.txt";
const JOBS: &str = "jobs.json";
const LOGS: &str = "logs";
/// Where packed tasks record how each run's process ended: `ends/<job>_<index>/<run-id>.json`.
const ENDS: &str = "ends";
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
    let task = match spec.runs_per_task {
        1 => format!("# Task i trains the run folder on line i+1 of {RUNS}; failed tasks are resubmitted with\n"),
        n => format!(
            "# Task i trains the run folders on line i+1 of {RUNS} at once (up to {n}); failed runs are resubmitted with\n"
        ),
    };
    s += &format!(
        "# Job array of sweep \"{}\" ({}), written by `sweep run --executor slurm`.\n{task}\
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
    let exe = shell_quote(&exe.display().to_string());
    let device = shell_quote(device);
    s += &match spec.runs_per_task {
        1 => one_run_body(&runs_q, &exe, &device),
        _ => packed_body(&runs_q, &exe, &device, &shell_quote(&dir.join(ENDS).display().to_string())),
    };
    s
}

/// The script's first commands: `var` is the task's line of `runs.txt` (`what` it holds), or the
/// task ends with exit code 2.
fn task_line(var: &str, what: &str, runs_q: &str) -> String {
    format!(
        r#"set -euo pipefail
{var}=$(sed -n "$((SLURM_ARRAY_TASK_ID + 1))p" {runs_q})
if [ -z "${var}" ]; then
  echo "error: no {what} at index $SLURM_ARRAY_TASK_ID in "{runs_q} >&2
  exit 2
fi
"#
    )
}

/// The script's commands for one run per task: `sweep exec` in the task's place.
fn one_run_body(runs_q: &str, exe: &str, device: &str) -> String {
    task_line("run_dir", "run", runs_q)
        + &format!(
            r#"# The run's threads use the CPUs Slurm gave the task.
if [ -n "${{SLURM_CPUS_PER_TASK:-}}" ]; then export RAYON_NUM_THREADS=$SLURM_CPUS_PER_TASK; fi
echo "sweep: task ${{SLURM_ARRAY_JOB_ID}}_${{SLURM_ARRAY_TASK_ID}} on $(hostname): $run_dir (CUDA_VISIBLE_DEVICES=${{CUDA_VISIBLE_DEVICES:-none}})"
exec {exe} exec "$run_dir" --device {device}
"#
        )
}

/// The script's commands for a packed task: one `sweep exec` training the line's runs at once,
/// recording each one's end under `ends_q/<job>_<index>/`.
fn packed_body(runs_q: &str, exe: &str, device: &str, ends_q: &str) -> String {
    task_line("line", "runs", runs_q)
        + &format!(
            r#"read -r -a runs <<< "$line"
# The runs share the task's GPU and CPUs: sweep exec splits SLURM_CPUS_PER_TASK between them.
echo "sweep: task ${{SLURM_ARRAY_JOB_ID}}_${{SLURM_ARRAY_TASK_ID}} on $(hostname): ${{#runs[@]}} run(s): $line (CUDA_VISIBLE_DEVICES=${{CUDA_VISIBLE_DEVICES:-none}})"
exec {exe} exec --device {device} --ends {ends_q}/"${{SLURM_ARRAY_JOB_ID}}_${{SLURM_ARRAY_TASK_ID}}" "${{runs[@]}}"
"#
        )
}

/// Packs `runs` (plan order), `per_task` to an array task: the lines of `runs.txt`.
fn pack(runs: &[usize], per_task: usize) -> Vec<Vec<usize>> {
    runs.chunks(per_task.max(1)).map(<[usize]>::to_vec).collect()
}

/// The array indices that train `runs`: a line of `lines` all of whose runs are among `runs` is
/// submitted as it is when it was never `submitted` (the first submission) or is full (`per_task`
/// runs: with one run per task, every run's own line); the others are packed, `per_task` to a line,
/// into lines appended to `lines` (those of tasks submitted before never change). Returns the
/// indices in ascending order.
fn assign(lines: &mut Vec<Vec<usize>>, runs: &[usize], per_task: usize, submitted: &HashSet<usize>) -> Vec<usize> {
    let wanted: HashSet<usize> = runs.iter().copied().collect();
    let mut indices = Vec::new();
    let mut covered = HashSet::new();
    for (i, line) in lines.iter().enumerate() {
        let reusable = line.len() == per_task.max(1) || !submitted.contains(&i);
        if reusable && !line.is_empty() && line.iter().all(|r| wanted.contains(r) && !covered.contains(r)) {
            indices.push(i);
            covered.extend(line.iter().copied());
        }
    }
    let rest: Vec<usize> = runs.iter().copied().filter(|r| !covered.contains(r)).collect();
    for line in pack(&rest, per_task) {
        indices.push(lines.len());
        lines.push(line);
    }
    indices
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
    /// The runs of each array index: the lines of the current `runs.txt`.
    lines: Vec<Vec<usize>>,
    /// Each run's array index in the current `runs.txt` (its latest line).
    index_of: HashMap<usize, usize>,
    /// The array indices submitted since `runs.txt` was written.
    submitted: HashSet<usize>,
    /// Tasks under way, by run.
    tasks: BTreeMap<usize, Task>,
    /// The next submission is the first of the current `runs.txt`.
    first: bool,
    last_poll: Instant,
    last_warning: Option<Instant>,
    /// The memory of a run was printed (once per sweep).
    told_memory: bool,
}

impl SlurmExecutor {
    /// The executor for the spec's `[slurm]` table; `--jobs`, `--devices`, `--per-device` and
    /// `--fail-fast` are refused.
    pub fn new(opts: &RunOptions, spec: &SlurmSpec) -> Result<SlurmExecutor> {
        if opts.jobs.is_some() || !opts.devices.is_empty() || opts.per_device.is_some() || opts.fail_fast {
            return Err(BadOptions(
                "--jobs, --devices, --per-device and --fail-fast apply to the local executor; on Slurm, set \
                 max_concurrent, gpus_per_task and runs_per_task (runs at once in each task) in the spec's [slurm] table"
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
            lines: Vec::new(),
            index_of: HashMap::new(),
            submitted: HashSet::new(),
            tasks: BTreeMap::new(),
            first: false,
            last_poll: Instant::now(),
            last_warning: None,
            told_memory: false,
        })
    }

    /// The tasks of an earlier `sweep run` still in Slurm, as (job, array index), mapped to runs
    /// through the `runs.txt` they were submitted with; a run in two of them (resubmitted from a pack
    /// that still trains its other runs) is followed in the newer.
    fn adopt_tasks(&mut self, sweep: &Sweep, alive: &HashMap<(String, usize), String>) -> Result<Vec<Attempt>> {
        let runs_path = executor_dir(sweep.dir, SLURM_DIR).join(RUNS);
        let text =
            std::fs::read_to_string(&runs_path).with_context(|| format!("cannot read {}", runs_path.display()))?;
        let (lines, unknown) = parse_runs_txt(&text, sweep.index);
        let ends = executor_dir(sweep.dir, SLURM_DIR).join(ENDS);
        let mut adopted: HashMap<usize, u32> = HashMap::new();
        let mut tasks: Vec<&(String, usize)> = alive.keys().collect();
        tasks.sort_by_key(|(job, i)| (job.parse::<u64>().unwrap_or(u64::MAX), *i));
        for (job, i) in tasks {
            if unknown.contains(i) || lines.get(*i).is_none_or(Vec::is_empty) {
                bail!(
                    "Slurm task {job}_{i} trains a run that is not in this sweep's plan (line {} of {}): \
                     let it finish or `scancel {job}`, then run again",
                    i + 1,
                    runs_path.display()
                );
            }
            for &run in &lines[*i] {
                // A running task's attempt has started already, and so has one whose process ended
                // (its end recorded); a pending one's has not. A status that does not read is the
                // task's trainer's to rebuild.
                let ended = ExecEnd::read(&task_ends(&ends, job, *i), &sweep.index.runs[run].id).ok().flatten();
                let status = RunStatus::read(&sweep.run_dir(run)).ok().flatten();
                let begun = |s: &RunStatus| u32::from((s.state == State::Running || ended.is_some()) && s.attempts > 0);
                let attempts_before = status.map_or(0, |s| s.attempts - begun(&s));
                self.index_of.insert(run, *i);
                self.tasks.insert(run, Task { index: *i, job: job.clone(), running: false });
                adopted.insert(run, attempts_before);
            }
            self.submitted.insert(*i);
        }
        self.lines = lines;
        let mut attempts: Vec<Attempt> =
            adopted.into_iter().map(|(run, attempts_before)| Attempt { run, attempts_before }).collect();
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

    /// `runs.txt` from the lines, atomically (a task reads its line when it starts).
    fn write_runs(&self, sweep: &Sweep) -> Result<()> {
        let path = executor_dir(sweep.dir, SLURM_DIR).join(RUNS);
        write_atomic(&path, runs_txt(&self.lines, |run| sweep.run_dir(run)).as_bytes())
    }

    /// Prints the memory of a run and of a task's runs (once per sweep); CPU runs whose task would
    /// need more than `[slurm] mem` are refused. A GPU's memory is not known here.
    fn memory(&mut self, sweep: &Sweep, queue: &[usize]) -> Result<()> {
        let runs = queue.iter().map(|&r| (sweep.run_dir(r), sweep.index.runs[r].variant.clone()));
        let Some(footprint) = Footprint::of(runs) else { return Ok(()) };
        let per_task = (self.spec.runs_per_task as usize).min(queue.len());
        if !std::mem::replace(&mut self.told_memory, true) {
            sweep.say.line(&footprint.line());
            if per_task > 1 {
                sweep.say.line(&footprint.device_line(&format!("each task's {}", self.device), per_task));
            }
        }
        if self.device == Device::Cpu
            && let Some(bytes) = self.spec.mem_bytes()
        {
            let what = format!("the task's [slurm] mem = {}", self.spec.mem.as_deref().unwrap_or_default());
            let limit = Limit { bytes, what, fix: "lower [slurm] runs_per_task or raise mem" };
            footprint.check(per_task, &limit)?;
        }
        Ok(())
    }
}

impl Executor for SlurmExecutor {
    fn destination(&self) -> String {
        "submit to Slurm".into()
    }

    fn devices_here(&self) -> Vec<Device> {
        Vec::new()
    }

    /// The script, the index -> runs mapping and the sbatch command, for the runs a real submission
    /// would include.
    fn dry_run(&self, sweep_dir: &Path, index: &SweepIndex, selection: &Selection) -> Result<String> {
        check_path(sweep_dir)?;
        let dir = executor_dir(sweep_dir, SLURM_DIR);
        let lines = pack(&selection.queue, self.spec.runs_per_task as usize);
        let mut out = format!("# {}\n", dir.join(SCRIPT).display());
        out += &job_script(&self.exe, sweep_dir, index, &self.spec, &self.device.to_string(), lines.len());
        out += &format!("\n# {} (array index i is line i+1)\n", dir.join(RUNS).display());
        out += &runs_txt(&lines, |run| sweep_dir.join(&index.runs[run].id));
        let skipped =
            format!("{} done already, {} failed without retries left", selection.skipped, selection.failed.len());
        let tasks = match self.spec.runs_per_task {
            1 => String::new(),
            _ => format!(" in {} tasks", lines.len()),
        };
        if selection.queue.is_empty() {
            out += &format!("\n# nothing to submit ({skipped})\n");
        } else {
            out += &format!(
                "\n# would run: sbatch --parsable --array={} {}   ({} runs{tasks}; {skipped})\n",
                array_range(&(0..lines.len()).collect::<Vec<_>>(), self.spec.max_concurrent),
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

    /// Prints the memory of the runs (refusing CPU tasks beyond `[slurm] mem`), then writes
    /// `runs.txt` (line i+1: the run folders of array index i, `queue` packed `runs_per_task` to a
    /// line) and the job script, and clears the end records of earlier jobs (Slurm may reuse job ids).
    fn prepare(&mut self, sweep: &Sweep, queue: &[usize]) -> Result<()> {
        self.memory(sweep, queue)?;
        let dir = executor_dir(sweep.dir, SLURM_DIR);
        std::fs::create_dir_all(dir.join(LOGS))
            .with_context(|| format!("cannot create {}", dir.join(LOGS).display()))?;
        match std::fs::remove_dir_all(dir.join(ENDS)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(e).with_context(|| format!("cannot remove {}", dir.join(ENDS).display()));
            }
            _ => {}
        }
        self.lines = pack(queue, self.spec.runs_per_task as usize);
        self.write_runs(sweep)?;
        let script =
            job_script(&self.exe, sweep.dir, sweep.index, &self.spec, &self.device.to_string(), self.lines.len());
        write_atomic(&dir.join(SCRIPT), script.as_bytes())?;
        self.jobs = Jobs::default();
        self.submitted.clear();
        self.index_of =
            self.lines.iter().enumerate().flat_map(|(i, line)| line.iter().map(move |&run| (run, i))).collect();
        self.first = true;
        Ok(())
    }

    /// Slurm queues the tasks itself (`max_concurrent` limits how many run at once).
    fn free_slots(&self) -> usize {
        usize::MAX
    }

    /// Submits the array indices of the runs as one job: the whole array first, then the failed runs
    /// again, with the same script (packed runs in new lines of `runs.txt`, see [`assign`]).
    fn start(&mut self, sweep: &Sweep, runs: &[usize]) -> Result<()> {
        let dir = executor_dir(sweep.dir, SLURM_DIR);
        let before = self.lines.len();
        let indices = assign(&mut self.lines, runs, self.spec.runs_per_task as usize, &self.submitted);
        self.submitted.extend(indices.iter().copied());
        if self.lines.len() > before {
            self.write_runs(sweep)?;
        }
        for &i in &indices {
            for &run in &self.lines[i] {
                self.index_of.insert(run, i);
            }
        }
        let job = self.submit(&dir, &indices)?;
        let packed = self.spec.runs_per_task > 1;
        if std::mem::take(&mut self.first) {
            sweep.say.stamped(&format!(
                "submitted Slurm job {job}: {} task(s){}{}; logs in {}",
                indices.len(),
                if packed {
                    format!(" for {} runs, up to {} in each", runs.len(), self.spec.runs_per_task)
                } else {
                    String::new()
                },
                self.spec.max_concurrent.map_or(String::new(), |k| format!(", at most {k} at once")),
                dir.join(LOGS).display()
            ));
        } else {
            let what = if packed { format!("{} run(s) in ", runs.len()) } else { String::new() };
            sweep.say.stamped(&format!(
                "resubmitted {what}{} task(s) as Slurm job {job}: array indices {}",
                indices.len(),
                array_range(&indices, None)
            ));
        }
        for &run in runs {
            self.tasks.insert(run, Task { index: self.index_of[&run], job: job.clone(), running: false });
        }
        Ok(())
    }

    /// Every [`POLL`]: the runs whose process ended inside a packed task (its end recorded) and the
    /// runs of the tasks Slurm no longer holds have ended; the others may have started.
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
        let ends = executor_dir(sweep.dir, SLURM_DIR).join(ENDS);
        let mut events = Vec::new();
        let (mut recorded, mut ended) = (Vec::new(), Vec::new());
        for (&run, task) in &mut self.tasks {
            // Read after squeue: a task gone from it has written the ends of all its runs.
            if let Ok(Some(end)) = ExecEnd::read(&task_ends(&ends, &task.job, task.index), &sweep.index.runs[run].id) {
                recorded.push((run, end));
                continue;
            }
            match alive.get(&(task.job.clone(), task.index)) {
                Some(state) if state == "RUNNING" && !task.running => {
                    task.running = true;
                    events.push(Event::Running { run, place: format!("(task {}_{})", task.job, task.index) });
                }
                Some(_) => {}
                None => ended.push(run),
            }
        }
        for (run, end) in recorded {
            let task = self.tasks.remove(&run).expect("a recorded run was under way");
            events.push(Event::Ended { run, end: recorded_end(sweep, run, &task, end) });
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

/// How run `run`'s process in the packed `task` ended, from its recorded end and its `log.txt`.
fn recorded_end(sweep: &Sweep, run: usize, task: &Task, end: ExecEnd) -> AttemptEnd {
    let name = format!("{}_{}", task.job, task.index);
    let stopped = end.code.and_then(ExecExit::from_code) == Some(ExecExit::Interrupted);
    let output = log::since(&sweep.run_dir(run), end.log_offset);
    match attempt_end(end.code, end.signal, output) {
        // Slurm stopped the task (or someone the run): the trainer recorded the interruption.
        AttemptEnd::Exited(exit) if stopped => AttemptEnd::Exited(Exit {
            how: format!("was stopped in Slurm task {name} (cancelled, out of time, preempted or signalled)"),
            ..exit
        }),
        AttemptEnd::Exited(exit) => {
            AttemptEnd::Exited(Exit { how: format!("{} in Slurm task {name}", exit.how), ..exit })
        }
        busy @ AttemptEnd::Busy(_) => busy,
    }
}

/// The lines of `runs.txt` as runs of the plan; the indices of lines naming a run the plan lacks.
fn parse_runs_txt(text: &str, index: &SweepIndex) -> (Vec<Vec<usize>>, HashSet<usize>) {
    let position: HashMap<&str, usize> = index.runs.iter().enumerate().map(|(i, r)| (r.id.as_str(), i)).collect();
    let mut unknown = HashSet::new();
    let lines = text
        .lines()
        .enumerate()
        .map(|(i, line)| {
            let id = |dir: &str| {
                Path::new(dir).file_name().and_then(|n| n.to_str()).and_then(|id| position.get(id).copied())
            };
            let runs: Vec<usize> = line.split_whitespace().filter_map(id).collect();
            if runs.len() != line.split_whitespace().count() {
                unknown.insert(i);
            }
            runs
        })
        .collect();
    (lines, unknown)
}

/// `runs.txt`: line i+1 holds the run folders of array index i, separated by spaces.
fn runs_txt(lines: &[Vec<usize>], run_dir: impl Fn(usize) -> PathBuf) -> String {
    lines
        .iter()
        .map(|line| {
            let dirs: Vec<String> = line.iter().map(|&run| run_dir(run).display().to_string()).collect();
            format!("{}\n", dirs.join(" "))
        })
        .collect()
}

/// Where the packed task `job`_`index` records how each of its runs' processes ended.
fn task_ends(ends: &Path, job: &str, index: usize) -> PathBuf {
    ends.join(format!("{job}_{index}"))
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

    fn assert_has(script: &str, lines: &[&str]) {
        for line in lines {
            assert!(script.contains(line), "missing {line} in\n{script}");
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
        assert_has(
            &s,
            &[
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
            ],
        );
        let bare = job_script(Path::new("/opt/sweep"), Path::new("/r/demo"), &index(), &SlurmSpec::default(), "cpu", 3);
        assert!(bare.contains("#SBATCH --array=0-2\n"), "{bare}");
        assert!(!bare.contains("--partition") && !bare.contains("--gres"), "{bare}");
    }

    #[test]
    fn a_packed_script_trains_its_line_at_once_and_records_each_end() {
        let spec = SlurmSpec { gpus_per_task: 1, runs_per_task: 4, ..SlurmSpec::default() };
        let s = job_script(Path::new("/opt/sweep"), Path::new("/data/results/demo"), &index(), &spec, "cuda:0", 3);
        assert_has(
            &s,
            &[
                "#SBATCH --array=0-2\n",
                "#SBATCH --gres=gpu:1",
                "# Task i trains the run folders on line i+1 of runs.txt at once (up to 4)",
                "read -r -a runs <<< \"$line\"",
                "exec '/opt/sweep' exec --device 'cuda:0' --ends '/data/results/demo/slurm/ends'/\"${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}\" \"${runs[@]}\"",
            ],
        );
        // The task's CPUs are split by sweep exec, not given whole to each run.
        assert!(!s.contains("RAYON_NUM_THREADS"), "{s}");
        let one = job_script(Path::new("/opt/sweep"), Path::new("/r/demo"), &index(), &SlurmSpec::default(), "cpu", 3);
        assert!(!one.contains("--ends") && one.contains("export RAYON_NUM_THREADS=$SLURM_CPUS_PER_TASK"), "{one}");
    }

    #[test]
    fn runs_are_packed_in_plan_order_and_resubmitted_alone() {
        assert_eq!(pack(&[0, 1, 2, 3, 4], 2), vec![vec![0, 1], vec![2, 3], vec![4]]);
        assert_eq!(pack(&[5, 7], 1), vec![vec![5], vec![7]]);
        let mut submitted = HashSet::new();
        let mut assign = |lines: &mut Vec<Vec<usize>>, runs: &[usize], per_task: usize| {
            let indices = assign(lines, runs, per_task, &submitted);
            submitted.extend(indices.iter().copied());
            indices
        };
        let mut lines = pack(&[0, 1, 2, 3, 4], 2);
        // The first submission: every line as it is, the short last one too.
        assert_eq!(assign(&mut lines, &[0, 1, 2, 3, 4], 2), vec![0, 1, 2]);
        assert_eq!(lines.len(), 3);
        // Run 1 fails while its pack-mate 0 trains on: a new task for it alone; lines never change.
        assert_eq!(assign(&mut lines, &[1], 2), vec![3]);
        assert_eq!(lines, vec![vec![0, 1], vec![2, 3], vec![4], vec![1]]);
        // Failures of different tasks that end together are packed together again.
        assert_eq!(assign(&mut lines, &[4, 2], 2), vec![4]);
        assert_eq!(lines[4], vec![4, 2]);
        // A whole task cancelled: its full line again; the others packed anew.
        assert_eq!(assign(&mut lines, &[3, 2, 1], 2), vec![1, 5]);
        assert_eq!(lines[5], vec![1]);
        let mut lines = pack(&[0, 1], 2);
        assert_eq!(assign(&mut lines, &[1, 0], 2), vec![0]);
        // One run per task: each run's own index, as without packing.
        let mut lines = pack(&[0, 1, 2], 1);
        let none = HashSet::new();
        assert_eq!(super::assign(&mut lines, &[0, 1, 2], 1, &none), vec![0, 1, 2]);
        assert_eq!(super::assign(&mut lines, &[2], 1, &HashSet::from([0, 1, 2])), vec![2]);
        assert_eq!(lines.len(), 3);
    }

    #[test]
    fn runs_txt_reads_back_as_written() {
        let mut idx = index();
        let planned = idx.runs[0].clone();
        idx.runs = ["a1", "b2", "c3"].iter().map(|id| PlannedRun { id: (*id).into(), ..planned.clone() }).collect();
        let lines = vec![vec![0, 2], vec![1]];
        let text = runs_txt(&lines, |run| Path::new("/r/demo").join(&idx.runs[run].id));
        assert_eq!(text, "/r/demo/a1 /r/demo/c3\n/r/demo/b2\n");
        assert_eq!(parse_runs_txt(&text, &idx), (lines, HashSet::new()));
        let (read, unknown) = parse_runs_txt("/r/demo/a1 /r/demo/zz\n/r/demo/b2\n", &idx);
        assert_eq!((read, unknown), (vec![vec![0], vec![1]], HashSet::from([0])));
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
