//! A run's `model.json`: what rebuilding its network needs beyond its config. Written by the trainer
//! once the data set is open, read by `infer` to load a trained run.

use std::path::Path;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::atomic::write_atomic;

pub const MODEL_INFO: &str = "model.json";

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelInfo {
    /// Classes of the data set the backbone classifier was pretrained on (0 = none).
    pub num_classes: usize,
}

impl ModelInfo {
    pub fn write(&self, run_dir: &Path) -> Result<()> {
        write_atomic(&run_dir.join(MODEL_INFO), &serde_json::to_vec(self).expect("model info serialises"))
    }

    /// The run's model info; `Ok(None)` when it has none (runs of versions before it was written).
    pub fn read(run_dir: &Path) -> Result<Option<ModelInfo>> {
        let path = run_dir.join(MODEL_INFO);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).with_context(|| format!("{} is damaged", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_info_round_trips_and_damage_is_named() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(ModelInfo::read(dir.path()).unwrap(), None);
        ModelInfo { num_classes: 10 }.write(dir.path()).unwrap();
        assert_eq!(ModelInfo::read(dir.path()).unwrap(), Some(ModelInfo { num_classes: 10 }));
        std::fs::write(dir.path().join(MODEL_INFO), "{").unwrap();
        let err = format!("{:#}", ModelInfo::read(dir.path()).unwrap_err());
        assert!(err.contains("model.json is damaged"), "{err}");
    }
}
