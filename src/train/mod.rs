//! Training one run: the device, the objective (targets, losses, decoding), the loop with its
//! metrics file, checkpoints, sample sheet and backbone pretraining.
//!
//! - `device`: `--device` names to burn devices;
//! - `objective`: regression and classification targets, losses and decoding (add a loss here);
//! - `trainer`: the epoch loop, validation, resumption (`sweep exec`);
//! - `checkpoint`, `metrics_file`, `curve_file`, `samples`: what a run writes each epoch;
//! - `pretrain`: classification pretraining of backbones, shared between runs.

pub mod checkpoint;
pub mod curve_file;
pub mod device;
pub mod metrics_file;
pub mod objective;
pub mod pretrain;
pub mod samples;
pub mod trainer;

pub use device::parse_device;
pub use trainer::{Outcome, exec};
