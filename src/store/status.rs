//! A run's `status.json`: its state, progress and, when it failed, why. Read by `sweep status`, the
//! orchestrators and the report; written atomically, and changed only through the transitions below
//! (one writer API for the trainer and the orchestrators around it), so that the rules of a state
//! change (a failure counts against the retries, an ended attempt has no process) live once:
//!
//! - [`RunStatus::create`]: a new run folder's pending status;
//! - [`RunStatus::rebuild`]: an unreadable status rebuilt from the run's files;
//! - [`RunStatus::begin_attempt`]: `sweep exec` starts training (running, its pid and host);
//! - [`RunStatus::record_epoch`]: an epoch is checkpointed (the last one makes the run done);
//! - [`RunStatus::end_attempt`]: the attempt ended, recorded by the trainer or, when its process died
//!   without a word, by the orchestrator;
//! - [`RunStatus::grant_retries`]: `--retry-failed` gives a failed run a fresh set of retries.

use std::path::Path;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use super::layout::{CONFIG_FILE, checkpoints, damaged};
use crate::atomic::write_atomic;

pub const STATUS_FILE: &str = "status.json";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// Created, not started.
    Pending,
    Running,
    Done,
    Failed,
    /// Stopped on purpose (Ctrl-C); resumes from its last checkpoint.
    Interrupted,
    /// Stopped early by the search's early stopping (`decision.json`), its epochs and checkpoints
    /// kept: not a failure, and resumed from its last checkpoint if a later decision promotes it.
    Stopped,
}

impl State {
    pub fn name(self) -> &'static str {
        match self {
            State::Pending => "pending",
            State::Running => "running",
            State::Done => "done",
            State::Failed => "failed",
            State::Interrupted => "interrupted",
            State::Stopped => "stopped",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunStatus {
    pub state: State,
    pub id: String,
    pub sweep: String,
    pub variant: String,
    pub seed: u64,
    pub epochs: u64,
    pub epochs_done: u64,
    /// Why the run failed or was interrupted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Process training the run, while it runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// Host of that process (a Slurm node's pid means nothing on the login node).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// Wall seconds the run has taken so far, all attempts together: data and model set-up, epochs,
    /// validation and checkpoints (what `sweep status` shows as its time; `metrics.csv` has each
    /// epoch's training and validation time).
    #[serde(default)]
    pub seconds: f64,
    /// Attempts started (interrupted ones included).
    #[serde(default)]
    pub attempts: u32,
    /// Failed attempts since the run was last given retries: automatic retries go on while this is at
    /// most the sweep's `max_retries`; `--retry-failed` sets it back to 0.
    #[serde(default)]
    pub failures: u32,
    /// Unix time of the last update.
    pub updated: u64,
}

/// How an attempt ended, for [`RunStatus::end_attempt`].
#[derive(Clone, Debug, PartialEq)]
pub enum End {
    Done,
    /// Stopped on purpose; resumes from its last checkpoint. The reason says how.
    Interrupted(String),
    /// Failed, with why; counts against the run's retries.
    Failed(String),
    /// Stopped by early stopping, with the decision's reason.
    Stopped(String),
}

impl RunStatus {
    /// The status of a run that has not started.
    pub fn pending(run: &crate::spec::RunPlan, sweep: &str) -> RunStatus {
        RunStatus {
            state: State::Pending,
            id: run.id.clone(),
            sweep: sweep.to_string(),
            variant: run.variant.clone(),
            seed: run.seed,
            epochs: run.settings.train.epochs,
            epochs_done: 0,
            reason: None,
            pid: None,
            host: None,
            seconds: 0.0,
            attempts: 0,
            failures: 0,
            updated: 0,
        }
    }

    pub fn read(run_dir: &Path) -> Result<Option<RunStatus>> {
        let path = run_dir.join(STATUS_FILE);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .with_context(|| format!("{} is not a valid status file", path.display()))
                .map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
    }

    /// The status as the run's files have it: `status.json`, with the epochs done taken from the
    /// newest published checkpoint when there is one. Publishing commits an epoch and the status is
    /// written after it, so a kill in between leaves `status.json` one epoch behind until the next
    /// attempt records it; what `sweep status` shows and what an orchestrator settles an attempt on
    /// follow the files instead. Without checkpoints (removed to save space) the status stands.
    pub fn observe(run_dir: &Path) -> Result<Option<RunStatus>> {
        let Some(mut status) = RunStatus::read(run_dir)? else { return Ok(None) };
        if let Some((epoch, _)) = checkpoints::newest(run_dir) {
            status.epochs_done = epoch.min(status.epochs);
        }
        Ok(Some(status))
    }

    /// Writes the status as it is, stamped with the time. The transitions below are how sweep changes
    /// a status; this is what they share (and what a test uses to set up a state).
    pub fn write(&mut self, run_dir: &Path) -> Result<()> {
        self.updated = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let json = serde_json::to_vec_pretty(self).expect("status serialises");
        write_atomic(&run_dir.join(STATUS_FILE), &json)
    }

    /// Writes the pending status of `run` into its new folder, unless the folder has a status file
    /// already (one that cannot be read is [`RunStatus::rebuild`]'s).
    pub fn create(run_dir: &Path, run: &crate::spec::RunPlan, sweep: &str) -> Result<()> {
        if !run_dir.join(STATUS_FILE).exists() {
            RunStatus::pending(run, sweep).write(run_dir)?;
        }
        Ok(())
    }

    /// Rebuilds a `status.json` that cannot be read (damaged, or of a format this version does not
    /// read) from what the run's files say, and sets the old one aside (`status.json.damaged`). The
    /// run's identity comes from its `config.toml`, its epochs from its newest checkpoint; the
    /// counters and a failure's reason from the old file where they still read, the variant from it
    /// or from the sweep's `plan.json`. A run with every epoch checkpointed is done, one with some
    /// interrupted (it resumes), one that had failed stays failed. The caller holds the run's lock, so
    /// that no trainer writes the status meanwhile.
    pub fn rebuild(run_dir: &Path) -> Result<RunStatus> {
        let path = run_dir.join(STATUS_FILE);
        let old: serde_json::Value =
            std::fs::read(&path).ok().and_then(|bytes| serde_json::from_slice(&bytes).ok()).unwrap_or_default();
        let id = run_dir.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let (meta, run) = crate::spec::read_config(&run_dir.join(CONFIG_FILE), Some(id))
            .with_context(|| format!("{} cannot be rebuilt: its run's config does not read", path.display()))?;
        let mut status = RunStatus::pending(&run, &meta.name);
        status.variant =
            field(&old, "variant").or_else(|| planned_variant(run_dir, id)).unwrap_or_else(|| id.to_string());
        status.attempts = field(&old, "attempts").unwrap_or(0);
        status.seconds = field(&old, "seconds").unwrap_or(0.0);
        status.epochs_done = checkpoints::newest(run_dir).map_or(0, |(epoch, _)| epoch.min(status.epochs));
        let recorded: Option<State> = field(&old, "state");
        let rebuilt = "its status.json did not read and was rebuilt from its files".to_string();
        if status.epochs_done >= status.epochs {
            status.state = State::Done;
        } else if recorded == Some(State::Failed) {
            status.state = State::Failed;
            status.failures = field(&old, "failures").unwrap_or(1).max(1);
            status.reason = Some(field(&old, "reason").unwrap_or(rebuilt));
        } else if status.epochs_done > 0 || recorded.is_some_and(|s| s != State::Pending) {
            status.state = State::Interrupted;
            status.reason = Some(format!("{rebuilt}; `sweep run` resumes it after epoch {}", status.epochs_done));
        }
        if path.exists() {
            let aside = damaged(&path);
            std::fs::rename(&path, &aside).with_context(|| format!("cannot set {} aside", path.display()))?;
        }
        status.write(run_dir)?;
        Ok(status)
    }

    /// An attempt starts training in this process: running, no reason, this process's pid and host,
    /// one attempt more.
    pub fn begin_attempt(&mut self, run_dir: &Path) -> Result<()> {
        self.state = State::Running;
        self.reason = None;
        self.pid = Some(std::process::id());
        self.host = Some(this_host());
        self.attempts += 1;
        self.write(run_dir)
    }

    /// The run has `epochs_done` epochs checkpointed, `seconds` into the run (all attempts together):
    /// after each epoch, and when an attempt resumes. The last epoch makes the run done in the same
    /// write, so that no kill can leave a run with every epoch checkpointed and a status saying
    /// otherwise for longer than the instant between publishing the checkpoint and this write.
    pub fn record_epoch(&mut self, run_dir: &Path, epochs_done: u64, seconds: f64) -> Result<()> {
        self.epochs_done = epochs_done;
        self.seconds = seconds;
        if epochs_done >= self.epochs {
            self.state = State::Done;
            self.reason = None;
            self.pid = None;
        }
        self.write(run_dir)
    }

    /// The attempt ended as `end`; `seconds`, the run's time so far, when the trainer knows it (an
    /// orchestrator recording a dead trainer's end keeps the last recorded time). A failure counts
    /// against the retries.
    pub fn end_attempt(&mut self, run_dir: &Path, end: End, seconds: Option<f64>) -> Result<()> {
        self.pid = None;
        if let Some(seconds) = seconds {
            self.seconds = seconds;
        }
        match end {
            End::Done => self.state = State::Done,
            End::Interrupted(reason) => {
                self.state = State::Interrupted;
                self.reason = Some(reason);
            }
            End::Failed(reason) => {
                self.state = State::Failed;
                self.failures += 1;
                self.reason = Some(reason);
            }
            End::Stopped(reason) => {
                self.state = State::Stopped;
                self.reason = Some(reason);
            }
        }
        self.write(run_dir)
    }

    /// Gives the run in `run_dir` a fresh set of `max_retries` retries (`--retry-failed`).
    pub fn grant_retries(run_dir: &Path) -> Result<()> {
        if let Some(mut status) = RunStatus::read(run_dir)? {
            status.failures = 0;
            status.write(run_dir)?;
        }
        Ok(())
    }

    /// Whether the run may be retried automatically: it has failed at most `max_retries` times. A
    /// failed run always counts at least one failure (status files of older versions have none).
    pub fn retries_left(&self, max_retries: u32) -> bool {
        let failures = if self.state == State::Failed { self.failures.max(1) } else { self.failures };
        failures <= max_retries
    }

    /// For a running run, whether its training process still exists; `None` when it runs on another
    /// host (a Slurm node), where this machine cannot tell.
    pub fn trainer_alive(&self) -> Option<bool> {
        let pid = self.pid?;
        if self.host.as_deref().is_some_and(|h| h != this_host()) {
            return None;
        }
        Some(i32::try_from(pid).is_ok_and(process_alive))
    }
}

/// The field `name` of a status file's JSON, if it reads as a `T`.
fn field<T: serde::de::DeserializeOwned>(old: &serde_json::Value, name: &str) -> Option<T> {
    old.get(name).and_then(|v| serde_json::from_value(v.clone()).ok())
}

/// The variant the sweep's `plan.json` gives run `id`, if it reads.
fn planned_variant(run_dir: &Path, id: &str) -> Option<String> {
    let index = super::plan::SweepIndex::read(run_dir.parent()?).ok()?;
    index.runs.into_iter().find(|r| r.id == id).map(|r| r.variant)
}

/// Whether a process exists (signal 0 checks without sending anything).
fn process_alive(pid: i32) -> bool {
    pid > 0
        && (unsafe { libc::kill(pid, 0) } == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM))
}

/// This machine's host name (empty if it cannot be read).
pub(crate) fn this_host() -> String {
    let mut buf = [0u8; 256];
    let ok = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } == 0;
    let len = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    if ok { String::from_utf8_lossy(&buf[..len]).into_owned() } else { String::new() }
}
