//! The local executor: every run is a child process (`sweep exec RUN_DIR`), so a crash, a panic or an
//! out-of-memory in one run cannot take the sweep down. `--jobs N` runs N at once and splits the CPU
//! threads between them; `--devices cuda:0,cuda:1` runs one per GPU with `CUDA_VISIBLE_DEVICES` set.
//!
//! Done runs are skipped; interrupted and crashed ones resume from their last checkpoint; failed ones
//! are retried up to `max_retries` times (and once more with `--retry-failed`). A lock file on the
//! sweep's folder refuses a second concurrent `sweep run` of the same sweep; a lock whose process has
//! died is taken over. Children get SIGTERM when the orchestrator dies (even by `kill -9`), record
//! themselves as interrupted and resume with the next `sweep run`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use super::layout::SweepIndex;
use super::status::{RunStatus, State};
use crate::train::trainer::{STOP, process_alive};

pub struct LocalOptions {
    pub jobs: usize,
    /// GPU slots (`cuda:0`, `wgpu:1`); empty = `jobs` CPU slots on `device`.
    pub devices: Vec<String>,
    pub device: String,
    pub retry_failed: bool,
    pub fail_fast: bool,
    /// Print one line per event instead of progress bars.
    pub plain: bool,
}

/// What a sweep did.
#[derive(Debug, Default)]
pub struct SweepOutcome {
    pub done: usize,
    pub skipped: usize,
    pub failed: Vec<(String, String, String)>,
    pub interrupted: bool,
}

struct Slot {
    device: String,
    env: Vec<(String, String)>,
}

struct Active {
    run: usize,
    child: Child,
    slot: usize,
}

/// Trains every run of the sweep in `sweep_dir` that is not done.
pub fn run_sweep(sweep_dir: &Path, index: &SweepIndex, opts: &LocalOptions) -> Result<SweepOutcome> {
    let _lock = SweepLock::acquire(sweep_dir)?;
    crate::train::trainer::install_stop_handler();
    let slots = slots(opts)?;
    let exe = std::env::current_exe().context("cannot find the sweep executable")?;
    let mut outcome = SweepOutcome::default();
    let mut queue: Vec<usize> = Vec::new();
    for (i, run) in index.runs.iter().enumerate() {
        let status = RunStatus::read(&sweep_dir.join(&run.id))?;
        match status.map(|s| (s.state, s.attempts)) {
            Some((State::Done, _)) => outcome.skipped += 1,
            Some((State::Failed, attempts)) if !opts.retry_failed && attempts > index.max_retries => {
                let reason = RunStatus::read(&sweep_dir.join(&run.id))?.and_then(|s| s.reason).unwrap_or_default();
                outcome.failed.push((run.id.clone(), run.variant.clone(), reason));
            }
            _ => queue.push(i),
        }
    }
    let total = queue.len();
    let progress = Progress::new(total, opts.plain);
    progress.line(&format!(
        "sweep \"{}\": {} runs, {} done already, {} to train on {} slot{}",
        index.sweep,
        index.runs.len(),
        outcome.skipped,
        total,
        slots.len(),
        if slots.len() == 1 { "" } else { "s" }
    ));
    let mut queue = queue.into_iter();
    let mut active: Vec<Active> = Vec::new();
    let mut free: Vec<usize> = (0..slots.len()).rev().collect();
    let mut retries: std::collections::HashMap<usize, u32> = Default::default();
    let mut stop_new = false;
    let mut pending_retry: Vec<usize> = Vec::new();
    loop {
        if STOP.load(Ordering::SeqCst) {
            stop_new = true;
            outcome.interrupted = true;
        }
        while !stop_new && let Some(&slot) = free.last() {
            let Some(run) = pending_retry.pop().or_else(|| queue.next()) else { break };
            free.pop();
            let planned = &index.runs[run];
            let run_dir = sweep_dir.join(&planned.id);
            let child = spawn(&exe, &run_dir, &slots[slot])?;
            progress.started(&planned.variant, &planned.id, &slots[slot].device);
            active.push(Active { run, child, slot });
        }
        if active.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
        progress.tick(sweep_dir, index, active.iter().map(|a| a.run));
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
            let mut status = RunStatus::read(&run_dir)?.context("a run lost its status.json")?;
            if status.state == State::Running {
                // The child died without recording why (a crash, a kill, out of memory).
                status.state = State::Failed;
                status.pid = None;
                status.reason = Some(format!("the training process ended abruptly ({exit})"));
                status.write(&run_dir)?;
            }
            match status.state {
                State::Done => {
                    outcome.done += 1;
                    progress.finished(&planned.variant, &planned.id, "done");
                }
                State::Interrupted => {
                    outcome.interrupted = true;
                    progress.finished(&planned.variant, &planned.id, "interrupted");
                }
                _ => {
                    let reason = status.reason.clone().unwrap_or_else(|| "unknown".into());
                    let tries = retries.entry(a.run).or_default();
                    if *tries < index.max_retries && !STOP.load(Ordering::SeqCst) {
                        *tries += 1;
                        progress.finished(&planned.variant, &planned.id, &format!("failed, retry {tries}: {reason}"));
                        pending_retry.push(a.run);
                    } else {
                        progress.finished(&planned.variant, &planned.id, &format!("failed: {reason}"));
                        outcome.failed.push((planned.id.clone(), planned.variant.clone(), reason));
                        if opts.fail_fast {
                            stop_new = true;
                            for other in &mut active {
                                // SIGTERM lets them checkpoint their state as interrupted.
                                unsafe { libc::kill(other.child.id() as i32, libc::SIGTERM) };
                            }
                        }
                    }
                }
            }
        }
    }
    progress.clear();
    Ok(outcome)
}

/// The execution slots: one per GPU, or `jobs` CPU slots sharing the cores.
fn slots(opts: &LocalOptions) -> Result<Vec<Slot>> {
    if !opts.devices.is_empty() {
        return opts
            .devices
            .iter()
            .map(|d| match d.split_once(':') {
                Some(("cuda", i)) if i.parse::<usize>().is_ok() => {
                    Ok(Slot { device: "cuda:0".into(), env: vec![("CUDA_VISIBLE_DEVICES".into(), i.into())] })
                }
                Some(("wgpu", i)) if i.parse::<usize>().is_ok() => Ok(Slot { device: d.clone(), env: Vec::new() }),
                _ => bail!("--devices: `{d}` is not a GPU slot; give cuda:N or wgpu:N, comma-separated"),
            })
            .collect();
    }
    if opts.jobs == 0 {
        bail!("--jobs must be at least 1");
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = (cores / opts.jobs).max(1);
    Ok((0..opts.jobs)
        .map(|_| Slot { device: opts.device.clone(), env: vec![("RAYON_NUM_THREADS".into(), threads.to_string())] })
        .collect())
}

fn spawn(exe: &Path, run_dir: &Path, slot: &Slot) -> Result<Child> {
    use std::os::unix::process::CommandExt;
    let mut cmd = Command::new(exe);
    cmd.arg("exec").arg(run_dir).arg("--device").arg(&slot.device).arg("--quiet");
    cmd.envs(slot.env.iter().map(|(k, v)| (k, v)));
    cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
    // The child gets SIGTERM if the orchestrator dies, whatever kills it, and records itself as
    // interrupted instead of training on unwatched.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
            Ok(())
        });
    }
    cmd.spawn().with_context(|| format!("cannot start {} exec {}", exe.display(), run_dir.display()))
}

/// Refuses a second `sweep run` on the same sweep folder; takes over a lock whose owner died.
pub struct SweepLock {
    path: PathBuf,
}

impl SweepLock {
    pub fn acquire(sweep_dir: &Path) -> Result<SweepLock> {
        let path = sweep_dir.join("sweep.lock");
        for _ in 0..2 {
            match std::fs::OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(mut f) => {
                    write!(f, "{}", std::process::id())?;
                    return Ok(SweepLock { path });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let pid = std::fs::read_to_string(&path).ok().and_then(|s| s.trim().parse::<i32>().ok());
                    if let Some(pid) = pid.filter(|&p| process_alive(p)) {
                        bail!(
                            "another `sweep run` (process {pid}) is running this sweep in {}; wait for it or stop it first",
                            sweep_dir.display()
                        );
                    }
                    std::fs::remove_file(&path)?;
                }
                Err(e) => return Err(e).with_context(|| format!("cannot create {}", path.display())),
            }
        }
        bail!("cannot lock {}", path.display())
    }
}

impl Drop for SweepLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Terminal progress: a line per active run and an overall bar, or plain lines when not a terminal.
struct Progress {
    multi: indicatif::MultiProgress,
    overall: indicatif::ProgressBar,
    bars: std::cell::RefCell<Vec<(String, indicatif::ProgressBar)>>,
    plain: bool,
    started: Instant,
}

impl Progress {
    fn new(total: usize, plain: bool) -> Progress {
        use std::io::IsTerminal;
        let plain = plain || !std::io::stderr().is_terminal();
        let multi = indicatif::MultiProgress::new();
        if plain {
            multi.set_draw_target(indicatif::ProgressDrawTarget::hidden());
        }
        let overall = multi.add(indicatif::ProgressBar::new(total as u64));
        overall.set_style(
            indicatif::ProgressStyle::with_template("sweep [{bar:30}] {pos}/{len} runs  {elapsed_precise}  ETA {eta}")
                .expect("valid template")
                .progress_chars("=> "),
        );
        Progress { multi, overall, bars: Default::default(), plain, started: Instant::now() }
    }

    fn line(&self, text: &str) {
        if self.plain {
            println!("{text}");
        } else {
            let _ = self.multi.println(text);
        }
    }

    fn started(&self, variant: &str, id: &str, device: &str) {
        if self.plain {
            println!("[{:>6.0}s] start  {id}  {variant}  on {device}", self.started.elapsed().as_secs_f64());
            return;
        }
        let bar = self.multi.insert_before(&self.overall, indicatif::ProgressBar::new(1));
        bar.set_style(
            indicatif::ProgressStyle::with_template("  {prefix:<32} epoch {pos}/{len}  {msg}").expect("valid template"),
        );
        bar.set_prefix(truncate(variant, 32));
        self.bars.borrow_mut().push((id.to_string(), bar));
    }

    fn tick(&self, sweep_dir: &Path, index: &SweepIndex, active: impl Iterator<Item = usize>) {
        if self.plain {
            return;
        }
        for run in active {
            let id = &index.runs[run].id;
            let Some((_, bar)) = self.bars.borrow().iter().find(|(i, _)| i == id).map(|(i, b)| (i.clone(), b.clone()))
            else {
                continue;
            };
            if let Ok(Some(s)) = RunStatus::read(&sweep_dir.join(id)) {
                bar.set_length(s.epochs);
                bar.set_position(s.epochs_done);
                let eta = if s.epochs_done > 0 {
                    let per_epoch = s.seconds / s.epochs_done as f64;
                    format!("ETA {:.0} s", per_epoch * (s.epochs - s.epochs_done) as f64)
                } else {
                    "first epoch".to_string()
                };
                bar.set_message(eta);
            }
        }
    }

    fn finished(&self, variant: &str, id: &str, how: &str) {
        if let Some(pos) = self.bars.borrow().iter().position(|(i, _)| i == id) {
            let (_, bar) = self.bars.borrow_mut().remove(pos);
            bar.finish_and_clear();
            self.multi.remove(&bar);
        }
        self.overall.inc(1);
        self.line(&format!("[{:>6.0}s] {how:<6} {id}  {variant}", self.started.elapsed().as_secs_f64()));
    }

    fn clear(&self) {
        self.overall.finish_and_clear();
    }
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n { s.to_string() } else { format!("{}…", s.chars().take(n - 1).collect::<String>()) }
}
