//! The loop every executor shares: select the runs of a sweep to train, start an attempt of each as
//! the executor has room, settle every attempt that ends (what the trainer recorded, or what its
//! process's end says), retry failed runs while they have retries left, and stop on Ctrl-C or
//! `--fail-fast`. The executor only starts attempts and reports what became of them.
//!
//! A run whose trainer is still alive on this machine (the child of a `sweep run` killed a moment
//! ago, winding down, or someone's `sweep exec`) is tried again once that process has gone, and so
//! is a run whose attempt found it busy ([`AttemptEnd::Busy`]). Attempts an earlier `sweep run` left
//! under way ([`Executor::adopt`]) are followed to the end first, before anything new starts.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use anyhow::Result;

use super::early_stop;
use super::progress::{Progress, Say};
use super::queue::{FailedRun, SweepOutcome, select, settle};
use super::{Attempt, AttemptEnd, Event, Executor, Halt, RunOptions, Sweep};
use crate::spec::early_stop::StopRule;
use crate::store::lock::SweepLock;
use crate::store::plan::SweepIndex;
use crate::store::protocol::{install_stop_handler, stop_requested};
use crate::store::status::{RunStatus, State};

/// How often the executor is polled: short, so that a free slot never idles for long.
const POLL: Duration = Duration::from_millis(20);
/// Wait before trying again a run that another process still trains.
const BUSY_RETRY: Duration = Duration::from_secs(1);
/// How often early stopping looks at the trials under way (and after every attempt that ends).
const DECIDE_EVERY: Duration = Duration::from_secs(1);

/// Trains every run of the locked sweep that is not done with `executor` (see the module doc).
pub fn run_sweep(
    executor: &mut dyn Executor,
    lock: &SweepLock,
    index: &SweepIndex,
    opts: &RunOptions,
    early_stop: Option<StopRule>,
) -> Result<SweepOutcome> {
    install_stop_handler();
    let sweep = Sweep { dir: lock.dir(), index, say: Say::new(), early_stop };
    let mut outcome = SweepOutcome::default();
    let adopted = executor.adopt(&sweep)?;
    if !adopted.is_empty() && !Round::new(&sweep, adopted, &[], opts).drive(executor, &mut outcome)? {
        return detached(executor, &sweep, outcome);
    }
    let mut selection = select(sweep.dir, index, opts.retry_failed, true)?;
    selection.notes.iter().for_each(|n| sweep.say.line(&format!("warning: {n}")));
    // Every trial's decision is written before any starts; stopped trials promoted meanwhile go first.
    let promoted = match &sweep.early_stop {
        Some(rule) => early_stop::decide(&sweep, rule)?,
        None => Vec::new(),
    };
    let promoted: Vec<usize> = promoted.into_iter().filter(|r| !selection.queue.contains(r)).collect();
    selection.queue.splice(0..0, promoted.iter().copied());
    selection.grant_retries(sweep.dir, index)?;
    // Runs finished by adopted attempts count as trained, not as done already; runs that failed for
    // good are all in the selection's list.
    outcome.skipped = selection.skipped.saturating_sub(outcome.done);
    outcome.failed = selection.failed.clone();
    let mut round = Round::new(&sweep, Vec::new(), &selection.queue, opts);
    let stopped = selection.stopped.iter().filter(|r| !promoted.contains(r)).count();
    sweep.say.line(&format!(
        "sweep \"{}\": {} runs, {} done already{}, {} to {}",
        index.sweep,
        index.runs.len(),
        selection.skipped,
        if stopped > 0 { format!(", {stopped} stopped early") } else { String::new() },
        selection.queue.len(),
        executor.destination()
    ));
    if !selection.queue.is_empty() {
        // Stopped trials may be promoted and started later: the executor readies them too.
        let mut startable = selection.queue.clone();
        startable.extend(selection.stopped.iter().filter(|r| !promoted.contains(r)));
        executor.prepare(&sweep, &startable)?;
    }
    if !round.drive(executor, &mut outcome)? {
        return detached(executor, &sweep, outcome);
    }
    executor.finish(&sweep, false)?;
    outcome.stopped = select(sweep.dir, index, false, false)?.stopped.len();
    Ok(outcome)
}

/// The outcome of a sweep whose attempts go on without this process.
fn detached(executor: &mut dyn Executor, sweep: &Sweep, outcome: SweepOutcome) -> Result<SweepOutcome> {
    executor.finish(sweep, true)?;
    Ok(SweepOutcome { interrupted: true, ..outcome })
}

/// A run waiting for its next attempt.
struct Waiting {
    run: usize,
    not_before: Instant,
}

/// One pass of the loop over a set of runs: some under way from the start (adopted), the others
/// queued.
struct Round<'a> {
    sweep: &'a Sweep<'a>,
    progress: Progress<'a>,
    waiting: VecDeque<Waiting>,
    /// Attempts under way: run -> its attempt count before the attempt started.
    active: HashMap<usize, u32>,
    /// Runs whose wait for another process was said already.
    told_busy: HashSet<usize>,
    /// Ctrl-C or SIGTERM: no new attempts.
    stopping: bool,
    /// `--fail-fast` after a failure: the same, for the other runs.
    halted: bool,
    fail_fast: bool,
    /// When early stopping last decided.
    decided: Instant,
}

impl<'a> Round<'a> {
    fn new(sweep: &'a Sweep<'a>, adopted: Vec<Attempt>, queue: &[usize], opts: &RunOptions) -> Round<'a> {
        let runs: Vec<usize> = adopted.iter().map(|a| a.run).chain(queue.iter().copied()).collect();
        let progress = Progress::new(sweep, &runs);
        let now = Instant::now();
        Round {
            sweep,
            progress,
            waiting: queue.iter().map(|&run| Waiting { run, not_before: now }).collect(),
            active: adopted.iter().map(|a| (a.run, a.attempts_before)).collect(),
            told_busy: HashSet::new(),
            stopping: false,
            halted: false,
            fail_fast: opts.fail_fast,
            decided: now,
        }
    }

    /// Runs the loop until every run has ended for good; `false` when the executor left its attempts
    /// running without this process (Ctrl-C on Slurm).
    fn drive(&mut self, executor: &mut dyn Executor, outcome: &mut SweepOutcome) -> Result<bool> {
        let followed = self.follow(executor, outcome);
        self.progress.finish();
        followed
    }

    fn follow(&mut self, executor: &mut dyn Executor, outcome: &mut SweepOutcome) -> Result<bool> {
        loop {
            if stop_requested() && !self.stopping {
                self.stopping = true;
                outcome.interrupted = true;
                // A Ctrl-C at the terminal reaches the children too; a signal to the orchestrator
                // alone reaches them through this.
                if executor.halt() == Halt::Detach {
                    return Ok(false);
                }
            }
            self.start_ready(executor)?;
            if self.active.is_empty() && (self.stopping || self.halted || self.waiting.is_empty()) {
                return Ok(true);
            }
            std::thread::sleep(POLL);
            self.progress.tick();
            let events = executor.poll(self.sweep)?;
            let ended = events.iter().any(|e| matches!(e, Event::Ended { .. }));
            for event in events {
                if !self.handle(event, executor, outcome)? {
                    return Ok(false);
                }
            }
            if ended || self.decided.elapsed() >= DECIDE_EVERY {
                self.decide()?;
            }
        }
    }

    /// Early stopping's decisions from the files as they are now; stopped trials they promote are
    /// started before the others.
    fn decide(&mut self) -> Result<()> {
        self.decided = Instant::now();
        let Some(rule) = &self.sweep.early_stop else { return Ok(()) };
        let promoted = early_stop::decide(self.sweep, rule)?;
        for &run in promoted.iter().rev() {
            if !self.active.contains_key(&run) && !self.waiting.iter().any(|w| w.run == run) {
                self.progress.add(run);
                self.waiting.push_front(Waiting { run, not_before: Instant::now() });
            }
        }
        Ok(())
    }

    /// Starts an attempt of every waiting run whose time has come, as far as the executor has room.
    fn start_ready(&mut self, executor: &mut dyn Executor) -> Result<()> {
        if self.stopping || self.halted {
            return Ok(());
        }
        let now = Instant::now();
        let room = executor.free_slots();
        let mut batch = Vec::new();
        while batch.len() < room {
            let Some(pos) = self.waiting.iter().position(|w| w.not_before <= now) else { break };
            let run = self.waiting.remove(pos).map(|w| w.run).expect("the position is in range");
            let planned = &self.sweep.index.runs[run];
            // One that does not read is the trainer's to rebuild.
            let status = RunStatus::read(&self.sweep.run_dir(run)).ok().flatten();
            if let Some(s) = status.as_ref().filter(|s| s.state == State::Running && s.trainer_alive() == Some(true)) {
                if self.told_busy.insert(run) {
                    let pid = s.pid.map_or(String::new(), |p| format!(" {p}"));
                    self.sweep.say.line(&format!("waiting for process{pid}, which still trains run {}", planned.id));
                }
                self.waiting.push_back(Waiting { run, not_before: now + BUSY_RETRY });
                continue;
            }
            self.active.insert(run, status.map_or(0, |s| s.attempts));
            batch.push(run);
        }
        if batch.is_empty() { Ok(()) } else { executor.start(self.sweep, &batch) }
    }

    /// Takes in one event; `false` when the sweep stopped with its attempts left running.
    fn handle(&mut self, event: Event, executor: &mut dyn Executor, outcome: &mut SweepOutcome) -> Result<bool> {
        let (run, end) = match event {
            Event::Running { run, place } => {
                self.progress.started(run, &place);
                return Ok(true);
            }
            Event::Ended { run, end } => (run, end),
        };
        let attempts_before = self.active.remove(&run).unwrap_or(0);
        let exit = match end {
            AttemptEnd::Busy(note) => {
                // Another process took the run's lock first: nothing was changed.
                self.progress.remove(run);
                if !self.stopping && !self.halted {
                    if self.told_busy.insert(run) {
                        self.sweep.say.line(&format!("waiting: {note}"));
                    }
                    self.waiting.push_back(Waiting { run, not_before: Instant::now() + BUSY_RETRY });
                }
                return Ok(true);
            }
            AttemptEnd::Exited(exit) => exit,
        };
        let status = settle(&self.sweep.run_dir(run), attempts_before, &exit, executor.stop_is_failure())?;
        self.settled(run, &status, executor, outcome)
    }

    /// What becomes of a run whose attempt was settled as `status`.
    fn settled(
        &mut self,
        run: usize,
        status: &RunStatus,
        executor: &mut dyn Executor,
        outcome: &mut SweepOutcome,
    ) -> Result<bool> {
        match status.state {
            State::Done => {
                outcome.done += 1;
                self.progress.finished(run, "done", true);
            }
            State::Interrupted => {
                outcome.interrupted = true;
                self.progress.finished(run, "interrupted", true);
            }
            State::Stopped => {
                let epochs = format!("stopped after epoch {}", status.epochs_done);
                self.progress.finished(run, &epochs, true);
            }
            // An attempt that settled without a final state counts as a failure.
            State::Failed | State::Pending | State::Running => {
                let reason = status.reason.clone().unwrap_or_else(|| "unknown".into());
                if status.retries_left(self.sweep.index.max_retries) && !self.stopping && !self.halted {
                    self.progress.finished(run, &format!("failed, retrying: {reason}"), false);
                    self.waiting.push_back(Waiting { run, not_before: Instant::now() });
                    return Ok(true);
                }
                self.progress.finished(run, &format!("failed: {reason}"), true);
                let planned = &self.sweep.index.runs[run];
                outcome.failed.push(FailedRun { id: planned.id.clone(), variant: planned.variant.clone(), reason });
                if self.fail_fast && !self.halted {
                    self.halted = true;
                    return Ok(executor.halt() == Halt::Drain);
                }
            }
        }
        Ok(true)
    }
}
