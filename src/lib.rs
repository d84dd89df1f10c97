//! sweep: define, run and compare automatic-colorization experiments.
//!
//! One folder per concern: `spec` (TOML experiment specs, resolved run configs, run identity), `color`
//! (color spaces and chroma quantization), `data` (data sets behind one trait), `model` (the network),
//! `train` (one run's training loop), `metrics` (colorization metrics), `runner` (run folders and
//! executors), `cli` (the `sweep` command line). The binary in `main.rs` only calls [`cli::main`].

pub mod allocator;
pub mod cli;
pub mod color;
pub mod data;
pub mod metrics;
pub mod model;
pub mod rng;
pub mod runner;
pub mod spec;
pub mod train;
