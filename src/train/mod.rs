//! Training one run: the device, the objective (targets, losses, decoding), the loop (which writes
//! its results through `crate::store`), checkpoints, sample sheet, backbone pretraining and the
//! semantic judge.
//!
//! - `device`: a [`crate::device::Device`] to a burn device;
//! - `objective`: regression and classification targets, the weighting and averaging of the losses
//!   (the losses themselves are `crate::loss`), and decoding;
//! - `trainer`: the epoch loop, validation, resumption (`sweep exec`);
//! - `checkpoint`, `samples`: the files of a run whose format is training's (the others are the store's);
//! - `pretrain`: classifiers trained before a run and shared between runs (pretrained backbones, judges);
//! - `judge`: Zhang et al.'s semantic test, a true-colour classifier's top-1 on colorized images.

pub mod checkpoint;
pub mod device;
pub mod judge;
pub mod objective;
pub mod pretrain;
pub mod samples;
pub mod trainer;

pub use device::open_device;
pub use trainer::{Outcome, exec};

/// The message a panic carried (`panic!("...")`, an `assert!`'s), for an error that says the real
/// cause rather than that a thread panicked.
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "a panic without a message".to_string())
}
