//! Training one run: the device, the objective (targets, losses, decoding), the loop with its
//! metrics file, checkpoints, sample sheet, backbone pretraining and the semantic judge.
//!
//! - `device`: `--device` names to burn devices;
//! - `objective`: regression and classification targets, losses and decoding (add a loss here);
//! - `trainer`: the epoch loop, validation, resumption (`sweep exec`);
//! - `checkpoint`, `metrics_file`, `curve_file`, `samples`: what a run writes each epoch;
//! - `tensorboard`: the run's TensorBoard event files (`results/<sweep>/tb/<variant>/seed<N>/`);
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
pub mod tensorboard;
pub mod trainer;

pub use device::parse_device;
pub use trainer::{Outcome, exec};
