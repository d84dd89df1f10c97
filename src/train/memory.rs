//! The memory of a run's training step, estimated from its config before it starts: the net the
//! config describes, built lazily (nothing allocated), and
//! [`crate::model::ColorizationNet::training_bytes`] at the run's batch size, image size and
//! optimizer. What `sweep run` prints and checks before it starts runs (`crate::runner::memory`).
//! Classifiers trained before a run (a pretrained backbone, the semantic judge) are not counted.

use std::path::Path;

use anyhow::{Context, Result};

use super::objective::Objective;
use super::trainer::model_config;
use crate::model::TrainingBytes;
use crate::spec::run_config::OptimizerConfig;
use crate::spec::{RunConfig, read_config};
use crate::store::layout::CONFIG_FILE;

/// A run's training step, estimated, with what it was estimated at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StepMemory {
    pub bytes: TrainingBytes,
    pub batch: usize,
    pub image_size: usize,
}

/// The estimate for the run `cfg` describes.
pub fn step_memory(cfg: &RunConfig) -> Result<StepMemory> {
    let objective = Objective::for_inference(cfg);
    // The classifier of a pretrained backbone does not take part in colorization.
    let net = model_config(cfg, &objective, 0).try_init(&burn::tensor::Device::flex())?;
    let batch = cfg.train.batch_size;
    let image_size = cfg.data.image_size;
    let bytes = net.training_bytes(batch, image_size, optimizer_slots(&cfg.train.optimizer), cfg.net.freeze_backbone);
    Ok(StepMemory { bytes, batch, image_size })
}

/// The estimate for the run in `run_dir`, from its `config.toml`.
pub fn run_memory(run_dir: &Path) -> Result<StepMemory> {
    let path = run_dir.join(CONFIG_FILE);
    let (_, run) = read_config(&path, None).with_context(|| format!("cannot read {}", path.display()))?;
    step_memory(&run.settings)
}

/// Floats of optimizer state per trainable parameter: Adam's and AdamW's two moments, SGD's
/// velocity (kept whatever the momentum, as `trainer::optimizer` always configures one).
fn optimizer_slots(optimizer: &OptimizerConfig) -> usize {
    match optimizer {
        OptimizerConfig::Adam { .. } | OptimizerConfig::AdamW { .. } => 2,
        OptimizerConfig::Sgd { .. } => 1,
    }
}
