//! Experiment specs: TOML parsing, validation, expansion into runs, and run identity.
//!
//! - `schema`: every config key with its type, default, documentation and when it applies;
//! - `value`: values with their provenance and the canonical form run ids hash;
//! - `parse`: reading a spec file into checked tables (`[sweep]`, `[base]`, `[grid]`, `[[variant]]`,
//!   `[[exclude]]`, `[reference]`, `[slurm]`, `[search]`, `[early_stop]`);
//! - `generate`: plan generators, the combinations of a spec's settings (grid x variants, and a
//!   search's trials inside each);
//! - `search`: `[search]`, its samplers (random, scrambled Halton) and distributions;
//! - `early_stop`: `[early_stop]`, the rule the orchestrator stops trials by;
//! - `expand`: the runs a spec describes, with their resolved configs and ids;
//! - `rules`: derived defaults and the rules that tie several keys together;
//! - `run_config`: a run's resolved config typed ([`RunConfig`]), what the layers below read;
//! - `config`: a run's `config.toml`;
//! - `error`: diagnostics with file:line:column, the offending text and "did you mean".

pub mod config;
pub mod early_stop;
pub mod error;
pub mod expand;
pub mod generate;
pub mod parse;
pub mod rules;
pub mod run_config;
pub mod schema;
pub mod search;
pub mod value;

pub use config::{config_toml, read_config};
pub use error::SpecError;
pub use expand::{Plan, RunPlan, plan};
pub use parse::{PublishedVariant, Reference, Spec, SweepMeta};
pub use run_config::RunConfig;
pub use value::Flat;

/// Reads a spec file and expands it with `--set` overrides.
pub fn load(path: &std::path::Path, overrides: &[String]) -> Result<Plan, SpecError> {
    plan(&Spec::from_file(path)?, overrides)
}
