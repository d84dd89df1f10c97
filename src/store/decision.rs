//! A run's `decision.json`: how far early stopping lets it train, written by the orchestrator
//! (`crate::runner::early_stop`) and read by the trainer before each epoch. The orchestrator derives
//! every decision from the runs' metrics files, so the file is a message, not a record: a lost or
//! stale one is written again by the next `sweep run`. A run without one trains all its epochs.

use std::path::Path;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::atomic::write_atomic;

pub const DECISION_FILE: &str = "decision.json";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    /// The epochs the run may have done; `None`: all of them.
    pub epochs: Option<u64>,
    /// Why, for the run's status when it stops there (`stopped at rung 1 (epoch 3) by asha: ...`).
    pub reason: String,
}

impl Decision {
    /// The run's decision; `None` without a file. One that does not read is an error (a trainer that
    /// ignored it would train what the orchestrator stopped).
    pub fn read(run_dir: &Path) -> Result<Option<Decision>> {
        let path = run_dir.join(DECISION_FILE);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .with_context(|| {
                    format!("{} is not a valid decision file (`sweep run` writes it again)", path.display())
                })
                .map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
    }

    /// Writes the decision, unless the file says so already.
    pub fn write(&self, run_dir: &Path) -> Result<()> {
        if Decision::read(run_dir).ok().flatten().as_ref() == Some(self) {
            return Ok(());
        }
        write_atomic(&run_dir.join(DECISION_FILE), &serde_json::to_vec_pretty(self).expect("decision serialises"))
    }

    /// Whether a run that has done `epochs_done` epochs must stop here.
    pub fn stops_at(&self, epochs_done: u64) -> bool {
        self.epochs.is_some_and(|limit| epochs_done >= limit)
    }
}
