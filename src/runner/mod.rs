//! Turning a plan into finished runs: run folders (`results/<sweep>/<run-id>/`), their status files,
//! and the executors that train them.
//!
//! - `layout`: creating run folders from a plan and finding them again;
//! - `status`: a run's `status.json`;
//! - `lock`: lock files that keep a second orchestrator off a sweep and a second trainer off a run;
//! - `queue`: what the executors share: which runs to train, recording how an attempt ended;
//! - `local`: the local executor (one child process `sweep exec` per run, N at a time);
//! - `slurm`: the Slurm executor (one job array per sweep, followed to the end).

pub mod layout;
pub mod local;
pub mod lock;
pub mod queue;
pub mod slurm;
pub mod status;
