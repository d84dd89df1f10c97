//! sweep: define, run and compare automatic-colorization experiments.
//!
//! One folder per concern: `spec` (TOML experiment specs, resolved run configs, run identity), `color`
//! (color spaces and chroma quantization), `data` (data sets behind one trait), `model` (the network),
//! `train` (one run's training loop), `infer` (colorize and eval with a trained run), `metrics`
//! (colorization metrics), `store` (the results folders: layout, status files, locks, metrics files,
//! the protocol between orchestrator and trainer), `runner` (the executors that train a sweep's runs),
//! `report` (tables, plots and pages from a sweep's results), `cli` (the `sweep` command line);
//! `atomic` writes files atomically for all of them. The binary in `main.rs` only calls [`cli::main`].
//!
//! Layers import only downwards: cli > report > infer > runner > train > store > model, data, metrics,
//! color; `spec` (read by every layer above the data) and `atomic`, `rng` (leaves) on the side.

pub mod allocator;
pub mod atomic;
pub mod cli;
pub mod color;
pub mod data;
pub mod infer;
pub mod metrics;
pub mod model;
pub mod report;
pub mod rng;
pub mod runner;
pub mod spec;
pub mod store;
pub mod train;
