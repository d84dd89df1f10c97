//! sweep: define, run and compare automatic-colorization experiments.
//!
//! One folder per concern: `spec` (TOML experiment specs, resolved and typed run configs, run
//! identity), `color` (color spaces and chroma quantization), `data` (data sets behind one trait),
//! `model` (the network), `loss` (the losses, one file each), `train` (one run's training loop),
//! `infer` (colorize and eval with a trained run), `metrics` (colorization metrics and their names),
//! `store` (the results folders: layout, status files, locks, metrics files, the protocol between
//! orchestrator and trainer), `runner` (the executors that train a sweep's runs), `report` (tables,
//! plots and pages from a sweep's results), `cli` (the `sweep` command line). Below them all: `named`
//! (closed choices that know their names), `device` (the device a run trains on, as the command line
//! names it), `atomic` (atomic file writes), `fault` (the reliability tests' kill hook), `flex` (the
//! data of burn's CPU tensors for sweep's own CPU operations),
//! `terminal` (text made safe for a terminal) and `rng`. The
//! binary in `main.rs` only calls [`cli::main`].
//!
//! Layers import only downwards: cli > report > infer > runner > train > store > model, data, loss,
//! metrics, color; `spec` (which decodes configs into the lower layers' types) is read by every layer
//! from the store up.

pub mod allocator;
pub mod atomic;
pub mod cli;
pub mod color;
pub mod data;
pub mod device;
pub mod fault;
pub mod flex;
pub mod infer;
pub mod loss;
pub mod metrics;
pub mod model;
pub mod named;
pub mod report;
pub mod rng;
pub mod runner;
pub mod spec;
pub mod store;
pub mod terminal;
pub mod train;
