//! Training one run: the device, the objective (targets, losses, decoding), the loop (which writes
//! its results through `crate::store`), checkpoints, sample sheet, backbone pretraining and the
//! semantic judge.
//!
//! - `device`: a [`crate::device::Device`] to a burn device;
//! - `objective`: regression and classification targets, the weighting and averaging of the losses
//!   (the losses themselves are `crate::loss`), and decoding;
//! - `trainer`: the epoch loop, validation, resumption (`sweep exec`);
//! - `losses`: step losses kept on the device and read back together, not once per step;
//! - `checkpoint`, `samples`: the files of a run whose format is training's (the others are the store's);
//! - `tensorboard`: the run's TensorBoard event files (in the store's `results/<sweep>/tb/<variant>/seed<N>/`);
//! - `prior`: the chroma priors a run starts from (rebalancing, the rebalanced AuC), measured once on a
//!   sample spread over the training set and cached;
//! - `pretrain`: classifiers trained before a run and shared between runs (pretrained backbones, judges);
//! - `judge`: Zhang et al.'s semantic test, a true-colour classifier's top-1 on colorized images;
//! - `memory`: the memory of a run's training step, estimated from its config before it starts.

pub mod checkpoint;
pub mod device;
pub mod judge;
pub mod losses;
pub mod memory;
pub mod objective;
pub mod pretrain;
pub mod prior;
pub mod samples;
pub mod tensorboard;
pub mod trainer;

pub use device::open_device;
pub use trainer::{Outcome, exec};
