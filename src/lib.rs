//! sweep: define, run and compare automatic-colorization experiments.
//!
//! One folder per concern: `spec` (TOML experiment specs, resolved and typed run configs, run
//! identity), `color` (color spaces and chroma quantization), `data` (data sets behind one trait),
//! `model` (the network), `loss` (the losses, one file each), `train` (one run's training loop),
//! `infer` (colorize and eval with a trained run), `metrics` (colorization metrics and their names),
//! `runner` (run folders and executors), `report` (tables, plots and pages from a sweep's results),
//! `cli` (the `sweep` command line). Below them all: `named` (closed choices that know their names)
//! and `device` (the device a run trains on, as the command line names it). The binary in `main.rs`
//! only calls [`cli::main`].

pub mod allocator;
pub mod cli;
pub mod color;
pub mod data;
pub mod device;
pub mod infer;
pub mod loss;
pub mod metrics;
pub mod model;
pub mod named;
pub mod report;
pub mod rng;
pub mod runner;
pub mod spec;
pub mod train;
