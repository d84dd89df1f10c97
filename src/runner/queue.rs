//! Which runs of a sweep still need training (done ones are skipped, failed ones wait for
//! `--retry-failed` once their retries are spent), how an attempt that ended without recording its
//! outcome (a crash, a kill, a process that never started training) is written into its
//! `status.json`, and what a sweep did.

use std::path::Path;

use anyhow::{Context, Result};

use super::Exit;
use crate::store::lock::RunLock;
use crate::store::plan::SweepIndex;
use crate::store::protocol::RunBusy;
use crate::store::status::{End, RunStatus, STATUS_FILE, State};

/// A run that failed for good (its retries spent).
#[derive(Clone, Debug)]
pub struct FailedRun {
    pub id: String,
    pub variant: String,
    pub reason: String,
}

/// What a sweep did.
#[derive(Debug, Default)]
pub struct SweepOutcome {
    /// Runs trained to the end by this sweep.
    pub done: usize,
    /// Runs that were done already.
    pub skipped: usize,
    pub failed: Vec<FailedRun>,
    /// Some runs were stopped (Ctrl-C, `--fail-fast`) or are still running elsewhere (a detached Slurm
    /// job): running the sweep again picks them up.
    pub interrupted: bool,
    /// Trials early stopping left stopped when the sweep ended.
    pub stopped: usize,
}

/// The runs a sweep will train, in plan order (indices into [`SweepIndex::runs`]).
#[derive(Debug, Default)]
pub struct Selection {
    pub queue: Vec<usize>,
    pub skipped: usize,
    /// Runs early stopping stopped: not queued, unless a decision promotes them.
    pub stopped: Vec<usize>,
    /// Failed runs whose retries are spent, left alone without `--retry-failed`.
    pub failed: Vec<FailedRun>,
    /// Failed runs queued again by `--retry-failed`.
    retried: Vec<usize>,
    /// Status files found unreadable, and what became of them.
    pub notes: Vec<String>,
}

/// Chooses the runs to train: everything not done, except failed runs without retries left unless
/// `retry_failed`. Reads status files only, unless `repair`: then a status file that cannot be read
/// is rebuilt from its run's files ([`RunStatus::rebuild`], said in [`Selection::notes`]), and a run
/// whose status cannot be rebuilt either is listed as failed, without stopping the others.
pub fn select(sweep_dir: &Path, index: &SweepIndex, retry_failed: bool, repair: bool) -> Result<Selection> {
    let mut selection = Selection::default();
    for (i, run) in index.runs.iter().enumerate() {
        let run_dir = sweep_dir.join(&run.id);
        let status = match RunStatus::read(&run_dir) {
            Ok(status) => status,
            Err(e) if !repair => {
                selection.notes.push(format!("run {}: {e:#} (`sweep run` rebuilds it from the run's files)", run.id));
                continue;
            }
            Err(e) => match rebuild(&run_dir) {
                Ok(status) => {
                    let what = status.as_ref().map_or("left to the process that trains it".into(), |s| {
                        format!("rebuilt from the run's files ({})", s.state.name())
                    });
                    selection.notes.push(format!("run {}: {e:#}: {what}", run.id));
                    status
                }
                Err(why) => {
                    let reason = format!("{e:#}, and it cannot be rebuilt: {why:#}");
                    selection.failed.push(FailedRun { id: run.id.clone(), variant: run.variant.clone(), reason });
                    continue;
                }
            },
        };
        let Some(s) = status else {
            selection.queue.push(i);
            continue;
        };
        match s.state {
            State::Done => selection.skipped += 1,
            State::Stopped => selection.stopped.push(i),
            State::Failed if !s.retries_left(index.max_retries) => {
                if retry_failed {
                    selection.retried.push(i);
                    selection.queue.push(i);
                } else {
                    selection.failed.push(FailedRun {
                        id: run.id.clone(),
                        variant: run.variant.clone(),
                        reason: s.reason.unwrap_or_else(|| "unknown".into()),
                    });
                }
            }
            State::Failed | State::Pending | State::Running | State::Interrupted => selection.queue.push(i),
        }
    }
    Ok(selection)
}

/// Rebuilds the unreadable status of the run in `run_dir` under its lock; `None` when a live trainer
/// holds the lock (its next write replaces the file).
fn rebuild(run_dir: &Path) -> Result<Option<RunStatus>> {
    match RunLock::acquire(run_dir) {
        Ok(_lock) => RunStatus::rebuild(run_dir).map(Some),
        Err(e) if e.is::<RunBusy>() => Ok(None),
        Err(e) => Err(e),
    }
}

impl Selection {
    /// Gives the runs queued by `--retry-failed` a fresh set of `max_retries` retries.
    pub fn grant_retries(&self, sweep_dir: &Path, index: &SweepIndex) -> Result<()> {
        self.retried.iter().try_for_each(|&i| RunStatus::grant_retries(&sweep_dir.join(&index.runs[i].id)))
    }
}

/// Records the end of an attempt whose process has exited. If the trainer recorded the outcome
/// itself (done, failed, interrupted), that stands, except that an interruption is a failed attempt
/// where `stop_is_failure` (Slurm stopped the task: it resumes when resubmitted, and counts against
/// the retries). Otherwise the trainer died without a word (a crash, a kill, out of memory) or never
/// started training (a bad config, a missing binary): the run is recorded as interrupted when a stop
/// signal ended it (and stops are not failures), as failed otherwise, with how the process ended and
/// the last words of its output as the reason.
pub fn settle(run_dir: &Path, attempts_before: u32, exit: &Exit, stop_is_failure: bool) -> Result<RunStatus> {
    let observed = match RunStatus::observe(run_dir) {
        Ok(status) => status,
        // The trainer has ended: nothing writes the status meanwhile.
        Err(_) => Some(RunStatus::rebuild(run_dir)?),
    };
    let mut status = observed.with_context(|| format!("{} lost its {STATUS_FILE}", run_dir.display()))?;
    // Done is final, whoever made it so (an attempt that found its run done changes nothing).
    if status.state == State::Done {
        return Ok(status);
    }
    let how = &exit.how;
    let recorded = status.attempts > attempts_before && status.state != State::Running;
    let end = if recorded {
        if !(status.state == State::Interrupted && stop_is_failure) {
            return Ok(status);
        }
        End::Failed(format!("{how} after {} of {} epochs", status.epochs_done, status.epochs))
    } else if exit.signalled && !stop_is_failure {
        End::Interrupted(format!("stopped ({how}) before it could record its state; `sweep run` resumes it"))
    } else {
        End::Failed(match last_words(&exit.output) {
            Some(words) => format!("{words} ({how})"),
            None => format!("the training process {how}"),
        })
    };
    status.end_attempt(run_dir, end, None)?;
    Ok(status)
}

/// What a busy attempt's output says (its last line: who trains the run), for the display.
pub fn busy_note(output: &str) -> String {
    output.lines().map(str::trim).rfind(|l| !l.is_empty()).unwrap_or("another process trains the run").to_string()
}

/// The line of a process's output that says why it died: the first panic's message (later ones
/// follow from it: a scope whose thread panicked, a poisoned lock), an allocation failure, or the
/// last `error:` line, with the place it points at (a spec error's `--> file:line:column`).
pub fn last_words(output: &str) -> Option<String> {
    let lines: Vec<&str> = output.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    if let Some(i) = lines.iter().position(|l| l.contains("panicked at")) {
        let at = lines[i].split("panicked at").nth(1).unwrap_or("").trim().trim_end_matches(':');
        let message = lines.get(i + 1).copied().unwrap_or("");
        return Some(format!("panicked: {message} (at {at})"));
    }
    let i = lines.iter().rposition(|l| l.starts_with("error:") || l.starts_with("memory allocation of"))?;
    let words = lines[i].trim_start_matches("error:").trim();
    Some(match lines.get(i + 1).and_then(|l| l.strip_prefix("--> ")) {
        Some(place) => format!("{words} (at {place})"),
        None => words.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_words_finds_panics_errors_and_allocation_failures() {
        let panic = "run abc\nthread 'main' panicked at src/train/trainer.rs:12:5:\nindex out of bounds\nnote: run with `RUST_BACKTRACE=1`\n";
        assert_eq!(last_words(panic).unwrap(), "panicked: index out of bounds (at src/train/trainer.rs:12:5)");
        assert_eq!(last_words("epoch 1\nerror: config.toml is damaged\n").unwrap(), "config.toml is damaged");
        assert_eq!(
            last_words("memory allocation of 1024 bytes failed\n").unwrap(),
            "memory allocation of 1024 bytes failed"
        );
        assert_eq!(last_words("epoch 1 done\n"), None);
        // The first panic is the cause; the scope's own panic only reports it.
        let scoped = "thread '<unnamed>' panicked at src/color/quantize.rs:374:9:\nk must be in 1..=2, got 5\n\
                      thread 'main' panicked at library/std/src/thread/scoped.rs:169:17:\na scoped thread panicked\n";
        assert_eq!(last_words(scoped).unwrap(), "panicked: k must be in 1..=2, got 5 (at src/color/quantize.rs:374:9)");
        let spec = "error: TOML syntax error: invalid comment character\n --> /r/config.toml:1:40\n  |\n";
        assert_eq!(last_words(spec).unwrap(), "TOML syntax error: invalid comment character (at /r/config.toml:1:40)");
    }
}
