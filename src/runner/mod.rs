//! Turning a plan into finished runs: run folders (`results/<sweep>/<run-id>/`), their status files,
//! and the executors that train them.
//!
//! - `layout`: creating run folders from a plan and finding them again;
//! - `status`: a run's `status.json`;
//! - `local`: the local executor (one child process `sweep exec` per run, N at a time).

pub mod layout;
pub mod local;
pub mod status;
