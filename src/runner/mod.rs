//! Turning a plan into finished runs: the executors that train a sweep's run folders (created by
//! [`crate::store::plan::materialise`]) and follow them to the end, reading and recording their
//! state through the store.
//!
//! - `queue`: what the executors share: which runs to train, recording how an attempt ended;
//! - `local`: the local executor (one child process `sweep exec` per run, N at a time);
//! - `slurm`: the Slurm executor (one job array per sweep, followed to the end).

pub mod local;
pub mod queue;
pub mod slurm;
