//! Training one run: the device, the objective (targets, losses, decoding), the loop with its
//! metrics file, checkpoints, sample sheet, backbone pretraining and the semantic judge.
//!
//! - `device`: a [`crate::device::Device`] to a burn device;
//! - `objective`: regression and classification targets, the weighting and averaging of the losses
//!   (the losses themselves are `crate::loss`), and decoding;
//! - `trainer`: the epoch loop, validation, resumption (`sweep exec`);
//! - `checkpoint`, `metrics_file`, `curve_file`, `samples`: what a run writes each epoch;
//! - `pretrain`: classifiers trained before a run and shared between runs (pretrained backbones, judges);
//! - `judge`: Zhang et al.'s semantic test, a true-colour classifier's top-1 on colorized images.

pub mod checkpoint;
pub mod curve_file;
pub mod device;
pub mod judge;
pub mod metrics_file;
pub mod objective;
pub mod pretrain;
pub mod samples;
pub mod trainer;

pub use device::open_device;
pub use trainer::{Outcome, exec};
