//! Turning a plan into finished runs: the executors that train a sweep's run folders (created by
//! [`crate::store::plan::materialise`]) and follow them to the end, reading and recording their
//! state through the store.
//!
//! - [`Executor`] (below): where and how a run's attempt is started and watched, one file per
//!   implementation: `local` (a child process `sweep exec` per run, N at a time, on this machine) and
//!   `slurm` (a job array, followed through `squeue`), registered by one arm of [`ExecutorKind`];
//! - `sweep`: the loop every executor shares: select the runs to train, start them as slots free up,
//!   settle each attempt that ends, retry failed runs with retries left, stop on Ctrl-C or
//!   `--fail-fast`;
//! - `queue`: which runs to train and how an attempt that ended without recording its outcome is
//!   written into its `status.json`;
//! - `progress`: the display of a sweep in progress (a line per active run and an overall bar on a
//!   terminal, plain lines otherwise);
//! - `early_stop`: which trials of a search stop early, decided from the runs' metrics files (ASHA,
//!   the median rule), and each variant's best trial for `[search] then = "seeds"`;
//! - `memory`: the estimated memory of the runs about to start, printed, and checked against the
//!   memory the runs at once on a CPU have;
//! - `pack`: several runs trained at once by one `sweep exec` (a Slurm task's `runs_per_task`), each
//!   in its own child, each child's end recorded for the Slurm executor.
//!
//! **Adding an executor** is one file here implementing [`Executor`] (starting attempts, reporting
//! what became of them as [`Event`]s) and one arm of [`ExecutorKind`] (its `--executor` name, and
//! [`ExecutorKind::build`] constructing it from the [`RunOptions`], refusing options it does not
//! take with [`BadOptions`]). The loop, the retries, the status files, the stop request and the
//! display come with it. Several runs per device or per Slurm task are an executor's business (the
//! local executor's slots, the Slurm executor's packed tasks), each run still reported as its own
//! [`Event`]. Early stopping is the loop's: it writes each trial's decision
//! file, the trainer stops itself there (an ordinary end of its attempt, settled as stopped, its slot
//! free at once), and the loop starts the stopped runs a later decision promotes like any other.

pub mod early_stop;
pub mod local;
pub mod memory;
pub mod pack;
pub mod progress;
pub mod queue;
pub mod slurm;
pub mod sweep;
pub mod tuned;

use std::path::Path;

use anyhow::Result;

use crate::device::Device;
use crate::spec::early_stop::StopRule;
use crate::spec::parse::SlurmSpec;
use crate::store::plan::SweepIndex;
use progress::Say;
use queue::Selection;

/// Which executor trains a sweep (`sweep run --executor`): one arm per implementation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ExecutorKind {
    /// Child processes on this machine.
    Local,
    /// A Slurm job array.
    Slurm,
}

impl ExecutorKind {
    /// The executor, set up for `opts` (and the spec's `[slurm]` table); [`BadOptions`] when it
    /// does not take an option given.
    pub fn build(self, opts: &RunOptions, slurm: &SlurmSpec) -> Result<Box<dyn Executor>> {
        Ok(match self {
            ExecutorKind::Local => Box::new(local::LocalExecutor::new(opts)?),
            ExecutorKind::Slurm => Box::new(slurm::SlurmExecutor::new(opts, slurm)?),
        })
    }
}

/// What `sweep run`'s command line asks of a sweep; each executor takes the options that mean
/// something to it and refuses the others.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// `--device`: the device of each run.
    pub device: Device,
    /// `--jobs`: runs at once on this machine.
    pub jobs: Option<usize>,
    /// `--devices`: device slots, `per_device` runs each.
    pub devices: Vec<Device>,
    /// `--per-device`: runs at once on each of `devices`.
    pub per_device: Option<usize>,
    /// `--retry-failed`: failed runs get a fresh set of retries.
    pub retry_failed: bool,
    /// `--fail-fast`: the first run that fails for good stops the sweep.
    pub fail_fast: bool,
}

/// Options an executor does not take, or that contradict each other: bad usage (exit code 2).
#[derive(Debug)]
pub struct BadOptions(pub String);

impl std::fmt::Display for BadOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BadOptions {}

/// The sweep an executor works on: its (locked, absolute) results folder, its runs, and where to say
/// what happens.
pub struct Sweep<'a> {
    pub dir: &'a Path,
    pub index: &'a SweepIndex,
    pub say: Say,
    /// The early-stopping rule of the search's trials.
    pub early_stop: Option<StopRule>,
}

impl Sweep<'_> {
    /// The folder of run `run` (an index into the plan's runs).
    pub fn run_dir(&self, run: usize) -> std::path::PathBuf {
        self.dir.join(&self.index.runs[run].id)
    }
}

/// An attempt already under way when the sweep starts (adopted from an earlier `sweep run`).
#[derive(Clone, Copy, Debug)]
pub struct Attempt {
    pub run: usize,
    /// The run's attempt count before this attempt started, to tell whether it recorded its end.
    pub attempts_before: u32,
}

/// What an executor reports from [`Executor::poll`].
#[derive(Debug)]
pub enum Event {
    /// An attempt began training; `place` says where (`on cuda:0`, `(task 12_3)`).
    Running { run: usize, place: String },
    /// An attempt's process ended.
    Ended { run: usize, end: AttemptEnd },
}

/// How an attempt's process ended.
#[derive(Debug)]
pub enum AttemptEnd {
    /// Another live process trains the run ([`crate::store::protocol::ExecExit::Busy`]): nothing
    /// changed, try again later. The note says who, for the display.
    Busy(String),
    /// The process ended otherwise; unless the trainer recorded the outcome, the loop records it
    /// from this ([`queue::settle`]).
    Exited(Exit),
}

/// A process's end as an executor saw it.
#[derive(Debug)]
pub struct Exit {
    /// How it ended, for a failure's reason: `exited with code 1`, `Slurm task 12_3 ended as CANCELLED, exit code 0:15`.
    pub how: String,
    /// The end of its output, where a dead trainer's last words are.
    pub output: String,
    /// A stop signal ended it.
    pub signalled: bool,
}

/// What becomes of the attempts under way when a sweep stops (Ctrl-C, `--fail-fast`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Halt {
    /// They were asked to stop; the loop waits for them to end and settles them.
    Drain,
    /// They go on without this process (a Slurm job); the loop returns at once.
    Detach,
}

/// Where and how the runs of a sweep are trained: starting an attempt of a run and reporting what
/// became of it. The loop around it ([`sweep::run_sweep`]) is shared.
pub trait Executor {
    /// Where the runs go, ending the opening line `... 4 to <destination>`: `train on 2 slots`.
    fn destination(&self) -> String;

    /// The devices the runs will open on this machine, which `sweep run` checks before it creates
    /// anything (none where the runs train elsewhere).
    fn devices_here(&self) -> Vec<Device>;

    /// `sweep run --dry-run`: what would run for the runs `selection` queues. Writes nothing.
    fn dry_run(&self, dir: &Path, index: &SweepIndex, selection: &Selection) -> Result<String>;

    /// Attempts an earlier `sweep run` started that are still under way, which the loop follows to
    /// the end before anything new starts (none where attempts die with their orchestrator).
    fn adopt(&mut self, sweep: &Sweep) -> Result<Vec<Attempt>>;

    /// Called once, before the first start, with every run this sweep may start.
    fn prepare(&mut self, sweep: &Sweep, queue: &[usize]) -> Result<()>;

    /// How many more attempts may start now.
    fn free_slots(&self) -> usize;

    /// Starts an attempt of each of `runs` (at most [`Executor::free_slots`]).
    fn start(&mut self, sweep: &Sweep, runs: &[usize]) -> Result<()>;

    /// What happened since the last call. Called every few milliseconds: an executor that asks
    /// someone else (a Slurm controller) decides how often it really looks.
    fn poll(&mut self, sweep: &Sweep) -> Result<Vec<Event>>;

    /// The sweep stops (Ctrl-C, `--fail-fast`): stop the attempts under way, or leave them running.
    fn halt(&mut self) -> Halt;

    /// Whether an attempt that a stop signal ended is a failed attempt, retried while the run has
    /// retries left (Slurm's stops: `scancel`, the time limit, preemption), rather than an
    /// interruption that the next `sweep run` resumes (a Ctrl-C here).
    fn stop_is_failure(&self) -> bool;

    /// The sweep ends; `detached` when its attempts go on without this process.
    fn finish(&mut self, sweep: &Sweep, detached: bool) -> Result<()>;
}
