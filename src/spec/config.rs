//! A run's resolved config on disk: `config.toml`.
//!
//! `config.toml` is itself a one-run spec: `[sweep]` with the run's seed and `[base]` with every
//! resolved key, as the spec spelled it (what the run id hashes), and `[paths]` with where its
//! relative paths resolved (against the spec's folder, or the current one for `--set` and defaults),
//! so that `sweep exec` trains on the same files from any folder. Reading it back goes through the same parser and checks as any spec, and must give
//! the run id it was written under, so a hand-edited or damaged file is caught instead of trained.

use std::path::Path;

use toml::Value;

use super::error::{Diagnostic, SpecError};
use super::expand::{Plan, RunPlan, plan};
use super::parse::{PATHS_TABLE, Spec, SweepMeta};
use super::schema::{self, Kind, SEED_KEY};
use super::value::Origin;

/// The text of a run's `config.toml`.
pub fn config_toml(meta: &SweepMeta, run: &RunPlan) -> String {
    let mut base = run.config.to_nested();
    base.remove(SEED_KEY);
    let mut sweep = toml::Table::new();
    sweep.insert("name".into(), Value::String(meta.name.clone()));
    sweep.insert("description".into(), Value::String(format!("variant \"{}\"", run.variant)));
    sweep.insert("seeds".into(), Value::Array(vec![Value::Integer(run.seed as i64)]));
    sweep.insert("metric".into(), Value::String(meta.metric.name().into()));
    sweep.insert("higher_is_better".into(), Value::Boolean(meta.higher_is_better));
    sweep.insert("max_retries".into(), Value::Integer(meta.max_retries as i64));
    let mut doc = toml::Table::new();
    doc.insert("sweep".into(), Value::Table(sweep));
    doc.insert("base".into(), Value::Table(base));
    let paths = recorded_paths(run);
    if !paths.is_empty() {
        doc.insert(PATHS_TABLE.into(), Value::Table(paths));
    }
    format!(
        "# Resolved config of run {id} (group {group}), variant \"{variant}\" of sweep \"{sweep}\".\n\
         # The run id is the first 12 hex digits of SHA-256 over the canonical JSON of these settings and\n\
         # the seed: editing this file changes the run's identity. Change the spec instead.\n\n{body}",
        id = run.id,
        group = run.group,
        variant = run.variant,
        sweep = meta.name,
        body = toml::to_string(&doc).expect("config values serialise"),
    )
}

/// Where the run's relative paths resolved (key -> absolute path), for `[paths]`: the folder a
/// spec's paths are relative to is not the run folder's, nor the one `sweep exec` may run from.
fn recorded_paths(run: &RunPlan) -> toml::Table {
    run.config
        .iter()
        .filter(|(key, s)| {
            let relative = s.value.as_str().is_some_and(|v| !v.is_empty() && Path::new(v).is_relative());
            relative && schema::key(key).is_some_and(|k| matches!(k.kind, Kind::Path))
        })
        .map(|(key, s)| (key.to_string(), Value::String(s.path(key).to_string_lossy().into_owned())))
        .collect()
}

/// Reads `config.toml` back; `expected_id` (the run folder's name) must match the config's hash.
pub fn read_config(path: &Path, expected_id: Option<&str>) -> Result<(SweepMeta, RunPlan), SpecError> {
    let spec = Spec::from_run_config(path)?;
    let Plan { meta, mut runs, .. } = plan(&spec, &[])?;
    if runs.len() != 1 {
        return Err(Diagnostic::new(
            format!("{} describes {} runs; a run's config.toml describes one", path.display(), runs.len()),
            Origin::Default,
        )
        .into());
    }
    let run = runs.remove(0);
    if let Some(expected) = expected_id
        && run.id != expected
    {
        return Err(Diagnostic::new(
            format!(
                "{} hashes to run id {} but lies in the folder of run {expected}: it was edited or damaged",
                path.display(),
                run.id
            ),
            Origin::Default,
        )
        .help("restore it, or run the spec again so that sweep writes a fresh run folder")
        .into());
    }
    Ok((meta, run))
}
