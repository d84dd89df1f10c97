//! `results/<sweep>/plan.json`, listing the sweep's runs in plan order (for `status` and `report`),
//! and creating the run folders of a plan: `config.toml` and a pending `status.json` in each.
//!
//! A sweep folder belongs to one spec, the one `plan.json` names (by its absolute path): another spec
//! declaring the same `[sweep]` name is refused ([`claim`]) rather than mixed into it. An unreadable
//! `plan.json` is set aside and written again by `sweep run`; until then `sweep status` and `sweep
//! report` list the run folders they find ([`SweepIndex::scan`]).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use super::layout::{CONFIG_FILE, damaged};
use super::status::RunStatus;
use crate::atomic::write_atomic;
use crate::spec::generate::Trial;
use crate::spec::{Plan, Spec, config_toml, read_config};

pub const PLAN_FILE: &str = "plan.json";

/// One run of a sweep as `plan.json` lists it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PlannedRun {
    pub id: String,
    pub group: String,
    pub variant: String,
    pub seed: u64,
    pub changed: Vec<(String, String)>,
    /// The search trial it trains, if a search made it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trial: Option<Trial>,
    /// It trains a variant's best trial with another seed (`[search] then = "seeds"`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub tuned: bool,
}

/// A searched key as `plan.json` records it, for the report's search plots.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SearchedKey {
    pub key: String,
    /// Its distribution's name (`log_uniform` is plotted on a log axis).
    pub distribution: String,
}

/// `plan.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SweepIndex {
    pub sweep: String,
    pub description: String,
    pub spec: String,
    pub metric: String,
    pub higher_is_better: bool,
    pub max_retries: u32,
    pub runs: Vec<PlannedRun>,
    /// The keys a `[search]` samples, in `[search.space]` order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub searched: Vec<SearchedKey>,
}

impl SweepIndex {
    /// The index of `plan`, read from `spec_path` (recorded absolute: the spec is its owner's name).
    pub fn from_plan(plan: &Plan, spec_path: &Path) -> SweepIndex {
        let spec = std::path::absolute(spec_path).unwrap_or_else(|_| spec_path.to_path_buf());
        SweepIndex {
            sweep: plan.meta.name.clone(),
            description: plan.meta.description.clone(),
            spec: spec.display().to_string(),
            metric: plan.meta.metric.name().to_string(),
            higher_is_better: plan.meta.higher_is_better,
            max_retries: plan.meta.max_retries,
            runs: plan
                .runs
                .iter()
                .map(|r| PlannedRun {
                    id: r.id.clone(),
                    group: r.group.clone(),
                    variant: r.variant.clone(),
                    seed: r.seed,
                    changed: r.changed.clone(),
                    trial: r.trial.clone(),
                    tuned: r.tuned,
                })
                .collect(),
            searched: plan
                .search
                .iter()
                .flat_map(|s| &s.space)
                .map(|d| SearchedKey { key: d.key.name.to_string(), distribution: d.dist.kind().name().to_string() })
                .collect(),
        }
    }

    /// The spec file this index names. Versions before it was recorded absolute recorded it relative
    /// to where `sweep run` ran, which for the default `--results results` is the folder above
    /// `results/`: tried there when the current folder has no such file.
    pub fn spec_path(&self, sweep_dir: &Path) -> PathBuf {
        let path = PathBuf::from(&self.spec);
        if path.is_absolute() || path.is_file() {
            return path;
        }
        let beside_results = sweep_dir.parent().and_then(Path::parent).map(|root| root.join(&path));
        beside_results.filter(|p| p.is_file()).unwrap_or(path)
    }

    /// The spec other than `spec_path` whose sweep this is: the one the index names, when that file
    /// still exists and still declares the sweep's name (a spec that was moved, renamed or renamed
    /// its sweep has let go of it).
    pub fn other_owner(&self, sweep_dir: &Path, spec_path: &Path) -> Option<PathBuf> {
        let theirs = self.spec_path(sweep_dir);
        let same = |a: &Path, b: &Path| match (a.canonicalize(), b.canonicalize()) {
            (Ok(a), Ok(b)) => a == b,
            _ => false,
        };
        if self.spec.is_empty() || !theirs.is_file() || same(&theirs, spec_path) {
            return None;
        }
        Spec::from_file(&theirs).ok().filter(|s| s.meta.name == self.sweep).map(|_| theirs)
    }

    /// The index rebuilt from the run folders in `sweep_dir` (each with a `config.toml` that reads
    /// back), for a sweep whose `plan.json` cannot be read: runs by variant and seed, the metric of
    /// their configs; no description and no spec. Run folders whose config does not read are left
    /// out, each with a note.
    pub fn scan(sweep_dir: &Path) -> Result<(SweepIndex, Vec<String>)> {
        let entries = std::fs::read_dir(sweep_dir).with_context(|| format!("cannot list {}", sweep_dir.display()))?;
        let (mut runs, mut notes, mut meta) = (Vec::new(), Vec::new(), None);
        for dir in entries.filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| p.join(CONFIG_FILE).is_file()) {
            let id = dir.file_name().and_then(|n| n.to_str()).unwrap_or("").to_string();
            let (m, run) = match read_config(&dir.join(CONFIG_FILE), Some(&id)) {
                Ok(read) => read,
                Err(e) => {
                    let first = e.to_string().lines().next().unwrap_or("").to_string();
                    notes.push(format!("run folder {} is left out: {first}", dir.display()));
                    continue;
                }
            };
            let variant = RunStatus::read(&dir).ok().flatten().map_or_else(|| id.clone(), |s| s.variant);
            runs.push(PlannedRun {
                id,
                group: run.group,
                variant,
                seed: run.seed,
                changed: Vec::new(),
                trial: None,
                tuned: false,
            });
            meta.get_or_insert(m);
        }
        runs.sort_by(|a, b| (&a.variant, a.seed).cmp(&(&b.variant, b.seed)));
        let name = sweep_dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let index = SweepIndex {
            sweep: meta.as_ref().map_or(name, |m| m.name.clone()),
            description: String::new(),
            spec: String::new(),
            metric: meta.as_ref().map_or("val_loss", |m| m.metric.name()).to_string(),
            higher_is_better: meta.as_ref().is_some_and(|m| m.higher_is_better),
            max_retries: meta.as_ref().map_or(0, |m| m.max_retries),
            runs,
            searched: Vec::new(),
        };
        Ok((index, notes))
    }

    /// `plan.json`, or where it exists but cannot be read, the index [`SweepIndex::scan`] finds, with
    /// notes saying so.
    pub fn read_or_scan(sweep_dir: &Path) -> Result<(SweepIndex, Vec<String>)> {
        match SweepIndex::read(sweep_dir) {
            Ok(index) => Ok((index, Vec::new())),
            Err(e) if sweep_dir.join(PLAN_FILE).is_file() => {
                let (index, mut notes) = SweepIndex::scan(sweep_dir)?;
                notes.insert(
                    0,
                    format!(
                        "{e:#}: listing the {} run folders found instead (`sweep run` writes it again)",
                        index.runs.len()
                    ),
                );
                Ok((index, notes))
            }
            Err(e) => Err(e),
        }
    }

    pub fn read(sweep_dir: &Path) -> Result<SweepIndex> {
        let path = sweep_dir.join(PLAN_FILE);
        let bytes = std::fs::read(&path).with_context(|| {
            format!("{} not found: is {} a sweep's results folder?", path.display(), sweep_dir.display())
        })?;
        serde_json::from_slice(&bytes).with_context(|| format!("{} is not a valid plan file", path.display()))
    }
}

/// The folder of a sweep's results.
pub fn sweep_dir(results: &Path, sweep: &str) -> PathBuf {
    results.join(sweep)
}

/// Takes the sweep folder `dir` for the spec `spec_path` before `sweep run` writes into it: refused
/// when it holds the sweep of another spec of the same name ([`SweepIndex::other_owner`]). An
/// unreadable `plan.json` is set aside (`plan.json.damaged`), since [`materialise`] writes it again;
/// the note says so.
pub fn claim(dir: &Path, spec_path: &Path) -> Result<Option<String>> {
    let path = dir.join(PLAN_FILE);
    let index = match SweepIndex::read(dir) {
        Ok(index) => index,
        Err(_) if !path.exists() => return Ok(None),
        Err(e) => {
            let aside = damaged(&path);
            std::fs::rename(&path, &aside).with_context(|| format!("cannot set {} aside", path.display()))?;
            return Ok(Some(format!("{e:#}: set aside as {}; written again from the spec", aside.display())));
        }
    };
    if let Some(other) = index.other_owner(dir, spec_path) {
        bail!(
            "{} holds sweep \"{}\" of another spec, {}, and {} declares the same [sweep] name: their runs \
             would be mixed. Give one of them another `name` in [sweep], or train this one into another \
             results folder (--results DIR)",
            dir.display(),
            index.sweep,
            other.display(),
            spec_path.display()
        );
    }
    Ok(None)
}

/// Creates the folders of every run in `plan` (config.toml, and a pending status.json where there is
/// none) and writes `plan.json`. Existing runs keep their status; their config.toml is written again
/// when it differs (the same settings, so the same run id, but where its relative paths resolve may
/// have changed with the spec's folder). `sweep run` calls it with the sweep's lock held, so that a
/// second `sweep run` cannot rewrite `plan.json` under a running one.
pub fn materialise(plan: &Plan, spec_path: &Path, results: &Path) -> Result<PathBuf> {
    let dir = sweep_dir(results, &plan.meta.name);
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    for run in &plan.runs {
        let run_dir = dir.join(&run.id);
        std::fs::create_dir_all(&run_dir).with_context(|| format!("cannot create {}", run_dir.display()))?;
        let config = run_dir.join(CONFIG_FILE);
        let text = config_toml(&plan.meta, run);
        if std::fs::read_to_string(&config).ok().as_deref() != Some(text.as_str()) {
            write_atomic(&config, text.as_bytes())?;
        }
        RunStatus::create(&run_dir, run, &plan.meta.name)?;
    }
    let index = SweepIndex::from_plan(plan, spec_path);
    write_atomic(&dir.join(PLAN_FILE), &serde_json::to_vec_pretty(&index).expect("plan serialises"))?;
    Ok(dir)
}
