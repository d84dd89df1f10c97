//! What the executors share: which runs of a sweep still need training (done ones are skipped,
//! failed ones wait for `--retry-failed` once their retries are spent), how an attempt that ended
//! without recording its outcome (a crash, a kill, a process that never started training) is written
//! into its `status.json`, and what a sweep did.

use std::path::Path;

use anyhow::{Context, Result};

use crate::store::plan::SweepIndex;
use crate::store::status::{RunStatus, STATUS_FILE, State};

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
}

/// The runs a sweep will train, in plan order (indices into [`SweepIndex::runs`]).
#[derive(Debug, Default)]
pub struct Selection {
    pub queue: Vec<usize>,
    pub skipped: usize,
    /// Failed runs whose retries are spent, left alone without `--retry-failed`.
    pub failed: Vec<FailedRun>,
    /// Failed runs queued again by `--retry-failed`.
    retried: Vec<usize>,
}

/// Chooses the runs to train: everything not done, except failed runs without retries left unless
/// `retry_failed`. Reads status files only.
pub fn select(sweep_dir: &Path, index: &SweepIndex, retry_failed: bool) -> Result<Selection> {
    let mut selection = Selection::default();
    for (i, run) in index.runs.iter().enumerate() {
        let status = RunStatus::read(&sweep_dir.join(&run.id)).with_context(|| format!("run {}", run.id))?;
        match status {
            Some(s) if s.state == State::Done => selection.skipped += 1,
            Some(s) if s.state == State::Failed && !s.retries_left(index.max_retries) => {
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
            _ => selection.queue.push(i),
        }
    }
    Ok(selection)
}

impl Selection {
    /// Gives the runs queued by `--retry-failed` a fresh set of `max_retries` retries.
    pub fn grant_retries(&self, sweep_dir: &Path, index: &SweepIndex) -> Result<()> {
        for &i in &self.retried {
            let run_dir = sweep_dir.join(&index.runs[i].id);
            if let Some(mut status) = RunStatus::read(&run_dir)? {
                status.failures = 0;
                status.write(&run_dir)?;
            }
        }
        Ok(())
    }
}

/// Records the end of an attempt whose process has exited. If the trainer recorded the outcome
/// itself (done, failed, interrupted), that stands. Otherwise it died without a word (a crash, a
/// kill, out of memory) or never started training (a bad config, a missing binary): the run is
/// recorded as interrupted when `stopped` (it was stopped on purpose) and as failed otherwise, with
/// `ended` (how the process ended) and the last words of its `output` as the reason.
pub fn settle(run_dir: &Path, attempts_before: u32, ended: &str, stopped: bool, output: &str) -> Result<RunStatus> {
    let mut status =
        RunStatus::read(run_dir)?.with_context(|| format!("{} lost its {STATUS_FILE}", run_dir.display()))?;
    let recorded = status.attempts > attempts_before && status.state != State::Running;
    if recorded {
        return Ok(status);
    }
    status.pid = None;
    if stopped {
        status.state = State::Interrupted;
        status.reason = Some(format!("stopped ({ended}) before it could record its state; `sweep run` resumes it"));
    } else {
        status.state = State::Failed;
        status.failures += 1;
        status.reason = Some(match last_words(output) {
            Some(words) => format!("{words} ({ended})"),
            None => format!("the training process {ended}"),
        });
    }
    status.write(run_dir)?;
    Ok(status)
}

/// The line of a process's output that says why it died: a panic's message, an allocation failure, or
/// the last `error:` line.
pub fn last_words(output: &str) -> Option<String> {
    let lines: Vec<&str> = output.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    if let Some(i) = lines.iter().rposition(|l| l.contains("panicked at")) {
        let at = lines[i].split("panicked at").nth(1).unwrap_or("").trim().trim_end_matches(':');
        let message = lines.get(i + 1).copied().unwrap_or("");
        return Some(format!("panicked: {message} (at {at})"));
    }
    lines
        .iter()
        .rev()
        .find(|l| l.starts_with("error:") || l.starts_with("memory allocation of"))
        .map(|l| l.trim_start_matches("error:").trim().to_string())
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
    }
}
