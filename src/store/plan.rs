//! `results/<sweep>/plan.json`, listing the sweep's runs in plan order (for `status` and `report`),
//! and creating the run folders of a plan: `config.toml` and a pending `status.json` in each.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use super::layout::CONFIG_FILE;
use super::status::RunStatus;
use crate::atomic::write_atomic;
use crate::spec::{Plan, config_toml};

pub const PLAN_FILE: &str = "plan.json";

/// One run of a sweep as `plan.json` lists it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PlannedRun {
    pub id: String,
    pub group: String,
    pub variant: String,
    pub seed: u64,
    pub changed: Vec<(String, String)>,
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
}

impl SweepIndex {
    /// The index of `plan`, read from `spec_path`.
    pub fn from_plan(plan: &Plan, spec_path: &Path) -> SweepIndex {
        SweepIndex {
            sweep: plan.meta.name.clone(),
            description: plan.meta.description.clone(),
            spec: spec_path.display().to_string(),
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
                })
                .collect(),
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

/// Creates the folders of every run in `plan` (config.toml and a pending status.json where missing)
/// and writes `plan.json`. Existing runs are left as they are. `sweep run` calls it with the sweep's
/// lock held, so that a second `sweep run` cannot rewrite `plan.json` under a running one.
pub fn materialise(plan: &Plan, spec_path: &Path, results: &Path) -> Result<PathBuf> {
    let dir = sweep_dir(results, &plan.meta.name);
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    for run in &plan.runs {
        let run_dir = dir.join(&run.id);
        std::fs::create_dir_all(&run_dir).with_context(|| format!("cannot create {}", run_dir.display()))?;
        let config = run_dir.join(CONFIG_FILE);
        if !config.is_file() {
            write_atomic(&config, config_toml(&plan.meta, run).as_bytes())?;
        }
        RunStatus::create(&run_dir, run, &plan.meta.name)?;
    }
    let index = SweepIndex::from_plan(plan, spec_path);
    write_atomic(&dir.join(PLAN_FILE), &serde_json::to_vec_pretty(&index).expect("plan serialises"))?;
    Ok(dir)
}
