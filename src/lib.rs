//! sweep: define, run and compare automatic-colorization experiments.
//!
//! One folder per concern: `spec` (TOML experiment specs, resolved run configs, run identity), `color`
//! (color spaces and chroma quantization), `data` (data sets behind one trait), `cli` (the `sweep` command
//! line). The binary in `main.rs` only calls [`cli::main`].

pub mod cli;
pub mod color;
pub mod data;
pub mod model;
pub mod rng;
pub mod spec;
