//! A run's `status.json`: its state, progress and, when it failed, why. Written atomically by whoever
//! changes the state (the trainer while it runs, the executors around it), read by `sweep status`.

use std::path::Path;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::data::io::write_atomic;

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
}

impl State {
    pub fn name(self) -> &'static str {
        match self {
            State::Pending => "pending",
            State::Running => "running",
            State::Done => "done",
            State::Failed => "failed",
            State::Interrupted => "interrupted",
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
    /// Seconds of training so far (all attempts).
    #[serde(default)]
    pub seconds: f64,
    /// Attempts started, for automatic retries.
    #[serde(default)]
    pub attempts: u32,
    /// Unix time of the last update.
    pub updated: u64,
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
            epochs: run.config.int("epochs") as u64,
            epochs_done: 0,
            reason: None,
            pid: None,
            seconds: 0.0,
            attempts: 0,
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

    pub fn write(&mut self, run_dir: &Path) -> Result<()> {
        self.updated = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let json = serde_json::to_vec_pretty(self).expect("status serialises");
        write_atomic(&run_dir.join(STATUS_FILE), &json)
    }
}
