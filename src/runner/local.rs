//! The local executor: every run is a child process (`sweep exec RUN_DIR`), so a crash, a panic or an
//! out-of-memory in one run cannot take the sweep down. `--jobs N` runs N at once and splits the CPU
//! threads between them; `--devices cuda:0,cuda:1` runs one per GPU with `CUDA_VISIBLE_DEVICES` set.
//!
//! Done runs are skipped; interrupted and crashed ones resume from their last checkpoint; failed ones
//! are retried while they have retries left (`max_retries`; `--retry-failed` grants a fresh set).
//! The caller holds the sweep's lock ([`SweepLock`]). Ctrl-C or SIGTERM stops the children, which
//! record themselves as interrupted; children also get SIGTERM when the orchestrator dies, even by
//! `kill -9`, and a run whose old trainer is still winding down is retried once that one has gone.
//! Each child's stdout and stderr go to its run's `log.txt`, so a panic's message becomes the
//! failure's reason.

use std::collections::{HashMap, HashSet, VecDeque};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use super::queue::{FailedRun, SweepOutcome, select, settle};
use crate::device::Device;
use crate::store::lock::SweepLock;
use crate::store::log;
use crate::store::metrics_file::MetricsFile;
use crate::store::plan::SweepIndex;
use crate::store::protocol::{ExecExit, install_stop_handler, is_stop_signal, request_stop, stop_requested};
use crate::store::status::{RunStatus, State};

/// How often finished children are looked for: short, so that a slot never idles for long.
const POLL: Duration = Duration::from_millis(20);
/// How often the progress display reads the runs' status files.
const TICK: Duration = Duration::from_millis(250);
/// Wait before trying again a run that another process still trains.
const BUSY_RETRY: Duration = Duration::from_secs(1);

pub struct LocalOptions {
    /// Runs at once on `device` when `devices` is empty.
    pub jobs: usize,
    /// GPU slots (`cuda:0`, `wgpu:1`), one run each.
    pub devices: Vec<Device>,
    pub device: Device,
    pub retry_failed: bool,
    pub fail_fast: bool,
}

/// Where a child trains: its `--device` and environment.
struct Slot {
    device: Device,
    env: Vec<(String, String)>,
}

struct Active {
    run: usize,
    child: Child,
    slot: usize,
    /// The run's attempt count before this child started, to tell whether it started training.
    attempts_before: u32,
    /// Length of `log.txt` before this child started: what follows is its output.
    log_offset: u64,
}

struct Waiting {
    run: usize,
    not_before: Instant,
}

/// Trains every run of the locked sweep that is not done (see the module doc).
pub fn run_sweep(lock: &SweepLock, index: &SweepIndex, opts: &LocalOptions) -> Result<SweepOutcome> {
    let sweep_dir = lock.dir();
    install_stop_handler();
    let slots = slots(opts, std::env::var("CUDA_VISIBLE_DEVICES").ok())?;
    let exe = std::env::current_exe().context("cannot find the sweep executable")?;
    let selection = select(sweep_dir, index, opts.retry_failed)?;
    selection.grant_retries(sweep_dir, index)?;
    let mut outcome =
        SweepOutcome { skipped: selection.skipped, failed: selection.failed.clone(), ..SweepOutcome::default() };
    let mut progress = Progress::new(sweep_dir, index, &selection.queue);
    progress.line(&format!(
        "sweep \"{}\": {} runs, {} done already, {} to train on {} slot{}",
        index.sweep,
        index.runs.len(),
        outcome.skipped,
        selection.queue.len(),
        slots.len(),
        if slots.len() == 1 { "" } else { "s" }
    ));

    let now = Instant::now();
    let mut waiting: VecDeque<Waiting> = selection.queue.iter().map(|&run| Waiting { run, not_before: now }).collect();
    let mut active: Vec<Active> = Vec::new();
    let mut free: Vec<usize> = (0..slots.len()).rev().collect();
    let mut told_busy: HashSet<usize> = HashSet::new();
    // Ctrl-C or SIGTERM: no new runs, active ones stop and record themselves as interrupted.
    let mut stopping = false;
    // --fail-fast after a failure: the same, for the other runs.
    let mut halted = false;
    loop {
        if stop_requested() && !stopping {
            stopping = true;
            outcome.interrupted = true;
            // A Ctrl-C at the terminal reaches the children too; a signal to the orchestrator alone
            // reaches them through this.
            active.iter().for_each(|a| terminate(&a.child));
        }
        while !stopping && !halted && !free.is_empty() {
            let now = Instant::now();
            let Some(pos) = waiting.iter().position(|w| w.not_before <= now) else { break };
            let run = waiting.remove(pos).map(|w| w.run).expect("the position is in range");
            let slot = free.pop().expect("a slot is free");
            let planned = &index.runs[run];
            let run_dir = sweep_dir.join(&planned.id);
            let status = RunStatus::read(&run_dir)?;
            if let Some(s) = status.as_ref().filter(|s| s.state == State::Running && s.trainer_alive() == Some(true)) {
                // Still trained by the child of a `sweep run` killed a moment ago, winding down (or by
                // someone's `sweep exec`): try again once that process has gone.
                if told_busy.insert(run) {
                    let pid = s.pid.map_or(String::new(), |p| format!(" {p}"));
                    progress.line(&format!("waiting for process{pid}, which still trains run {}", planned.id));
                }
                free.push(slot);
                waiting.push_back(Waiting { run, not_before: now + BUSY_RETRY });
                continue;
            }
            let attempts_before = status.map_or(0, |s| s.attempts);
            let log_offset = log::len(&run_dir);
            let child = spawn(&exe, &run_dir, &slots[slot])?;
            progress.started(run, slots[slot].device);
            active.push(Active { run, child, slot, attempts_before, log_offset });
        }
        if active.is_empty() && (stopping || halted || waiting.is_empty()) {
            break;
        }
        std::thread::sleep(POLL);
        progress.tick();

        let mut i = 0;
        while i < active.len() {
            let Some(exit) = active[i].child.try_wait()? else {
                i += 1;
                continue;
            };
            let a = active.swap_remove(i);
            free.push(a.slot);
            let planned = &index.runs[a.run];
            let run_dir = sweep_dir.join(&planned.id);
            let output = log::since(&run_dir, a.log_offset);
            if exit.code().and_then(ExecExit::from_code) == Some(ExecExit::Busy) {
                // Another process took the run's lock first (see above): nothing was changed.
                progress.remove(a.run);
                if !stopping && !halted {
                    if told_busy.insert(a.run) {
                        progress.line(&format!("waiting: {}", output.lines().last().unwrap_or("busy").trim()));
                    }
                    waiting.push_back(Waiting { run: a.run, not_before: Instant::now() + BUSY_RETRY });
                }
                continue;
            }
            // Killed by a stop signal before it could record its state (before its handler was
            // installed): interrupted, not failed.
            let stopped = exit.signal().is_some_and(is_stop_signal);
            let status = settle(&run_dir, a.attempts_before, &describe(exit), stopped, &output)?;
            match status.state {
                State::Done => {
                    outcome.done += 1;
                    progress.finished(a.run, "done", true);
                }
                State::Interrupted => {
                    outcome.interrupted = true;
                    progress.finished(a.run, "interrupted", true);
                }
                _ => {
                    let reason = status.reason.clone().unwrap_or_else(|| "unknown".into());
                    if status.retries_left(index.max_retries) && !stopping && !halted {
                        progress.finished(a.run, &format!("failed, retrying: {reason}"), false);
                        waiting.push_back(Waiting { run: a.run, not_before: Instant::now() });
                        continue;
                    }
                    progress.finished(a.run, &format!("failed: {reason}"), true);
                    outcome.failed.push(FailedRun { id: planned.id.clone(), variant: planned.variant.clone(), reason });
                    if opts.fail_fast && !halted {
                        halted = true;
                        active.iter().for_each(|other| terminate(&other.child));
                    }
                }
            }
        }
    }
    progress.finish();
    Ok(outcome)
}

/// Asks a child to stop: it finishes its current batch and records itself as interrupted.
fn terminate(child: &Child) {
    request_stop(child.id());
}

/// How a child ended, for a failure's reason.
fn describe(exit: ExitStatus) -> String {
    match (exit.code(), exit.signal()) {
        (Some(code), _) => format!("exited with code {code}"),
        (None, Some(libc::SIGKILL)) => "was killed by SIGKILL (out of memory, or kill -9)".into(),
        (None, Some(libc::SIGSEGV)) => "crashed (SIGSEGV)".into(),
        (None, Some(libc::SIGABRT)) => "aborted (SIGABRT)".into(),
        (None, Some(signal)) => format!("was killed by signal {signal}"),
        (None, None) => format!("ended ({exit})"),
    }
}

/// The execution slots: one per GPU, or `jobs` CPU slots sharing the cores. `cuda_visible` is this
/// process's `CUDA_VISIBLE_DEVICES`: `cuda:N` is the N-th GPU this process may use.
fn slots(opts: &LocalOptions, cuda_visible: Option<String>) -> Result<Vec<Slot>> {
    if !opts.devices.is_empty() {
        let visible: Option<Vec<String>> =
            cuda_visible.filter(|v| !v.trim().is_empty()).map(|v| v.split(',').map(|s| s.trim().to_string()).collect());
        return opts
            .devices
            .iter()
            .map(|&d| match d {
                Device::Cuda(i) => {
                    let physical = match &visible {
                        Some(list) => list.get(i).cloned().with_context(|| {
                            format!("--devices: {d} is not among the {} GPUs of CUDA_VISIBLE_DEVICES", list.len())
                        })?,
                        None => i.to_string(),
                    };
                    Ok(Slot { device: Device::Cuda(0), env: vec![("CUDA_VISIBLE_DEVICES".into(), physical)] })
                }
                Device::Wgpu(Some(_)) => Ok(Slot { device: d, env: Vec::new() }),
                Device::Wgpu(None) | Device::Cpu => {
                    bail!("--devices: `{d}` is not a GPU slot; give cuda:N or wgpu:N, comma-separated")
                }
            })
            .collect();
    }
    if opts.jobs == 0 {
        bail!("--jobs must be at least 1");
    }
    // Each run gets its share of the cores (the data thread of each run is mostly idle); a thread
    // count the user set for rayon is left alone.
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = (cores / opts.jobs).max(1);
    let env = if std::env::var_os("RAYON_NUM_THREADS").is_some() {
        Vec::new()
    } else {
        vec![("RAYON_NUM_THREADS".to_string(), threads.to_string())]
    };
    Ok((0..opts.jobs).map(|_| Slot { device: opts.device, env: env.clone() }).collect())
}

fn spawn(exe: &Path, run_dir: &Path, slot: &Slot) -> Result<Child> {
    use std::os::unix::process::CommandExt;
    let log = log::append(run_dir)?;
    let mut cmd = Command::new(exe);
    cmd.arg("exec").arg(run_dir).arg("--device").arg(slot.device.to_string()).arg("--quiet");
    cmd.envs(slot.env.iter().map(|(k, v)| (k, v)));
    cmd.stdin(Stdio::null()).stdout(log.try_clone()?).stderr(log);
    let orchestrator = std::process::id() as i32;
    // The child gets SIGTERM if the orchestrator dies, whatever kills it, and records itself as
    // interrupted instead of training on unwatched. If the orchestrator died before the request took
    // effect, the child does not start at all.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            if libc::getppid() != orchestrator {
                return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        });
    }
    cmd.spawn().with_context(|| format!("cannot start {} exec {}", exe.display(), run_dir.display()))
}

/// One active run on the display.
struct RunLine {
    run: usize,
    bar: indicatif::ProgressBar,
    epochs_done: u64,
}

/// A line per active run (variant, epoch, loss, ETA) and an overall bar with ETA on a terminal;
/// plain log lines (start, each epoch, end) otherwise.
struct Progress<'a> {
    sweep_dir: &'a Path,
    index: &'a SweepIndex,
    plain: bool,
    multi: indicatif::MultiProgress,
    overall: indicatif::ProgressBar,
    lines: Vec<RunLine>,
    /// Epochs done and planned per queued run, for the overall bar.
    epochs: HashMap<usize, (u64, u64)>,
    base_epochs: u64,
    runs_total: usize,
    runs_finished: usize,
    started: Instant,
    last_tick: Instant,
}

impl<'a> Progress<'a> {
    fn new(sweep_dir: &'a Path, index: &'a SweepIndex, queue: &[usize]) -> Progress<'a> {
        use std::io::IsTerminal;
        let plain = !std::io::stdout().is_terminal() || !std::io::stderr().is_terminal();
        let epochs: HashMap<usize, (u64, u64)> = queue
            .iter()
            .map(|&run| {
                let status = RunStatus::read(&sweep_dir.join(&index.runs[run].id)).ok().flatten();
                (run, status.map_or((0, 0), |s| (s.epochs_done, s.epochs)))
            })
            .collect();
        let base_epochs = epochs.values().map(|e| e.0).sum();
        let multi = indicatif::MultiProgress::new();
        if plain {
            multi.set_draw_target(indicatif::ProgressDrawTarget::hidden());
        }
        let total: u64 = epochs.values().map(|e| e.1).sum();
        let overall = multi.add(indicatif::ProgressBar::new(total.saturating_sub(base_epochs)));
        overall.set_style(
            indicatif::ProgressStyle::with_template("sweep [{bar:30}] {msg}  {elapsed_precise}  ETA {eta}")
                .expect("valid template")
                .progress_chars("=> "),
        );
        let progress = Progress {
            sweep_dir,
            index,
            plain,
            multi,
            overall,
            lines: Vec::new(),
            epochs,
            base_epochs,
            runs_total: queue.len(),
            runs_finished: 0,
            started: Instant::now(),
            last_tick: Instant::now(),
        };
        progress.update_overall();
        progress
    }

    fn stamp(&self) -> String {
        format!("[{:>6.0}s]", self.started.elapsed().as_secs_f64())
    }

    fn line(&self, text: &str) {
        if self.plain {
            println!("{text}");
        } else {
            let _ = self.multi.println(text);
        }
    }

    fn started(&mut self, run: usize, device: Device) {
        let planned = &self.index.runs[run];
        let (done, total) = self.epochs.get(&run).copied().unwrap_or_default();
        if self.plain {
            println!("{} start  {}  {}  on {device}", self.stamp(), planned.id, planned.variant);
        }
        let bar = self.multi.insert_before(&self.overall, indicatif::ProgressBar::new(total));
        bar.set_style(
            indicatif::ProgressStyle::with_template("  {prefix:<32} epoch {pos}/{len}  {msg}").expect("valid template"),
        );
        bar.set_prefix(truncate(&format!("{} seed {}", planned.variant, planned.seed), 32));
        bar.set_position(done);
        bar.set_message(if done == 0 { "first epoch".to_string() } else { format!("resuming after epoch {done}") });
        self.lines.push(RunLine { run, bar, epochs_done: done });
    }

    /// Reads the active runs' progress from their status and metrics files.
    fn tick(&mut self) {
        if self.last_tick.elapsed() < TICK {
            return;
        }
        self.last_tick = Instant::now();
        let mut changed = Vec::new();
        for line in &mut self.lines {
            let planned = &self.index.runs[line.run];
            let run_dir = self.sweep_dir.join(&planned.id);
            let Ok(Some(s)) = RunStatus::read(&run_dir) else { continue };
            if s.epochs_done == line.epochs_done || s.state != State::Running {
                continue;
            }
            line.epochs_done = s.epochs_done;
            let loss = MetricsFile::open(&run_dir)
                .ok()
                .and_then(|m| m.rows().last().map(|r| r.train_loss))
                .map_or(String::new(), |l| format!("loss {l:.4}  "));
            let per_epoch = s.seconds / s.epochs_done.max(1) as f64;
            let eta = per_epoch * s.epochs.saturating_sub(s.epochs_done) as f64;
            let message = format!("{loss}ETA {}", seconds(eta));
            line.bar.set_length(s.epochs);
            line.bar.set_position(s.epochs_done);
            line.bar.set_message(message.clone());
            self.epochs.insert(line.run, (s.epochs_done, s.epochs));
            changed.push((line.run, s.epochs_done, s.epochs, message));
        }
        for (run, done, total, message) in changed {
            if self.plain {
                let planned = &self.index.runs[run];
                println!("{} epoch {done}/{total}  {message}  {}  {}", self.stamp(), planned.id, planned.variant);
            }
        }
        self.update_overall();
    }

    fn update_overall(&self) {
        let done: u64 = self.epochs.values().map(|e| e.0).sum();
        self.overall.set_position(done.saturating_sub(self.base_epochs));
        self.overall.set_message(format!("{}/{} runs", self.runs_finished, self.runs_total));
    }

    /// Takes a run's line off the display.
    fn remove(&mut self, run: usize) {
        if let Some(pos) = self.lines.iter().position(|l| l.run == run) {
            let line = self.lines.remove(pos);
            line.bar.finish_and_clear();
            self.multi.remove(&line.bar);
        }
    }

    /// A child ended; `last` when the run will not be started again by this sweep.
    fn finished(&mut self, run: usize, how: &str, last: bool) {
        self.remove(run);
        if last {
            self.runs_finished += 1;
            if let Ok(Some(s)) = RunStatus::read(&self.sweep_dir.join(&self.index.runs[run].id)) {
                self.epochs.insert(run, (s.epochs_done, s.epochs));
            }
        }
        self.update_overall();
        let planned = &self.index.runs[run];
        self.line(&format!("{} {how:<6} {}  {}", self.stamp(), planned.id, planned.variant));
    }

    fn finish(&self) {
        self.overall.finish_and_clear();
    }
}

fn seconds(s: f64) -> String {
    match s {
        s if s < 90.0 => format!("{s:.0} s"),
        s if s < 5400.0 => format!("{:.0} min", s / 60.0),
        s => format!("{:.1} h", s / 3600.0),
    }
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n { s.to_string() } else { format!("{}…", s.chars().take(n - 1).collect::<String>()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(jobs: usize, devices: &[&str]) -> LocalOptions {
        LocalOptions {
            jobs,
            devices: devices.iter().map(|d| d.parse().unwrap()).collect(),
            device: Device::Cpu,
            retry_failed: false,
            fail_fast: false,
        }
    }

    fn env(slot: &Slot, key: &str) -> Option<String> {
        slot.env.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone())
    }

    #[test]
    fn gpu_slots_pin_one_gpu_each() {
        let s = slots(&opts(1, &["cuda:1", "cuda:0", "wgpu:0"]), None).unwrap();
        assert_eq!(s.len(), 3);
        assert_eq!(
            (s[0].device.to_string().as_str(), env(&s[0], "CUDA_VISIBLE_DEVICES").as_deref()),
            ("cuda:0", Some("1"))
        );
        assert_eq!(env(&s[1], "CUDA_VISIBLE_DEVICES").as_deref(), Some("0"));
        assert_eq!((s[2].device.to_string().as_str(), s[2].env.len()), ("wgpu:0", 0));
        // Indices count within the GPUs this process was given.
        let s = slots(&opts(1, &["cuda:0", "cuda:1"]), Some("4,6".into())).unwrap();
        assert_eq!(env(&s[1], "CUDA_VISIBLE_DEVICES").as_deref(), Some("6"));
        assert!(slots(&opts(1, &["cuda:2"]), Some("4,6".into())).is_err());
        // A name that is no device ("gpu0") is refused when the command line is parsed (crate::device).
        let err = slots(&opts(1, &["cpu"]), None).err().unwrap().to_string();
        assert!(err.contains("give cuda:N or wgpu:N"), "{err}");
    }

    #[test]
    fn cpu_slots_split_the_cores() {
        assert!(slots(&opts(0, &[]), None).is_err());
        let s = slots(&opts(2, &[]), None).unwrap();
        assert_eq!(s.len(), 2);
        assert!(s.iter().all(|s| s.device == Device::Cpu));
        if std::env::var_os("RAYON_NUM_THREADS").is_none() {
            let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
            assert_eq!(env(&s[0], "RAYON_NUM_THREADS"), Some((cores / 2).max(1).to_string()));
        }
    }
}
