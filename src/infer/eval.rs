//! `sweep eval`: every validation metric of training, for a trained run on another data set (a CIFAR
//! folder, an image folder, synthetic data with another seed). The evaluation is training's own
//! ([`Evaluator`] and [`evaluate`]), so on the run's own validation split it repeats the numbers of
//! the checkpoint's epoch. On another data set (another kind, folder or data seed) it evaluates that
//! set's whole validation split, not as many images as the run's `val_images` kept of its own,
//! unless `--set val_images=N` says otherwise. Results are also kept in the run folder,
//! `eval/<label>.json`, where `sweep report` finds them.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};

use super::TrainedRun;
use super::colorize::FORWARD_LIMIT;
use crate::atomic::write_atomic;
use crate::data::DatasetKind;
use crate::metrics::{COLORFULNESS_GT, Metric, Metrics};
use crate::spec::expand::short_hash;
use crate::spec::{RunConfig, Spec, config_toml, plan};
use crate::store::layout::{CONFIG_FILE, EVAL_DIR, priors_dir, results_root};
use crate::train::prior;
use crate::train::trainer::{Evaluator, evaluate};

/// Keys `sweep eval --set` may change: the data, and the decoding temperature.
pub const EVAL_KEYS: &[&str] =
    &["dataset", "data_dir", "image_size", "train_images", "val_images", "data_seed", "temperature"];

/// One evaluation, as `eval/<label>.json` keeps it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EvalResult {
    pub run: String,
    pub variant: String,
    pub checkpoint: String,
    pub dataset: String,
    pub data_dir: Option<String>,
    pub images: usize,
    pub val_loss: f64,
    /// Training's own validation metrics; flattened, so the JSON keeps one key per metric.
    #[serde(flatten)]
    pub metrics: Metrics,
}

impl EvalResult {
    /// The validation loss, every validation metric and the ground truth's colorfulness, by name.
    pub fn rows(&self) -> Vec<(&'static str, f64)> {
        let mut rows = vec![(Metric::ValLoss.name(), self.val_loss)];
        rows.extend(Metric::ALL.iter().filter_map(|&m| self.metrics.value(m).map(|v| (m.name(), v))));
        rows.push((COLORFULNESS_GT, self.metrics.colorfulness_gt));
        rows
    }
}

/// The evaluations kept in a run folder (`eval/*.json`), in file-name order; files that do not parse
/// are returned as notes naming them.
pub fn read_kept(run_dir: &Path) -> (Vec<EvalResult>, Vec<String>) {
    let mut files: Vec<PathBuf> = std::fs::read_dir(run_dir.join(EVAL_DIR))
        .map(|entries| entries.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.retain(|p| p.extension().is_some_and(|e| e == "json"));
    files.sort();
    let mut results = Vec::new();
    let mut notes = Vec::new();
    for file in files {
        match std::fs::read(&file).map_err(anyhow::Error::from).and_then(|b| Ok(serde_json::from_slice(&b)?)) {
            Ok(r) => results.push(r),
            Err(e) => notes.push(format!("{} is not a readable evaluation: {e}", file.display())),
        }
    }
    (results, notes)
}

/// An evaluation done: the result, where it is kept, and how many validation images the set has.
pub struct Evaluation {
    pub result: EvalResult,
    pub kept: PathBuf,
    /// The `val_images` cap the evaluation ran with: 0 for the data set's whole validation split.
    pub val_images: usize,
}

/// Evaluates `run` with its config's data keys changed by `overrides` (`KEY=VALUE`).
pub fn eval(run: &TrainedRun, overrides: &[String]) -> Result<Evaluation> {
    for o in overrides {
        let key = o.split_once('=').map_or(o.as_str(), |(k, _)| k.trim());
        if !EVAL_KEYS.contains(&key) {
            bail!("sweep eval --set {o}: eval changes only {}", EVAL_KEYS.join(", "));
        }
    }
    // The run's config.toml is a one-run spec: the overrides go through the same checks as any --set.
    let text = config_toml(&run.meta, &run.run);
    let spec = Spec::from_str(Path::new(CONFIG_FILE), text)?;
    let mut planned = plan(&spec, overrides)?;
    let own = &run.run.settings.data;
    let other = |d: &crate::data::DataConfig| d.kind != own.kind || d.dir != own.dir || d.data_seed != own.data_seed;
    let capped = overrides.iter().any(|o| o.split_once('=').is_some_and(|(k, _)| k.trim() == "val_images"));
    if other(&planned.runs[0].settings.data) && !capped {
        // The run's val_images kept part of its own validation split; another set is evaluated whole.
        let mut whole = overrides.to_vec();
        whole.push("val_images=0".into());
        planned = plan(&spec, &whole)?;
    }
    let cfg = &planned.runs[0].settings;
    let data = crate::data::open(&cfg.data)?;
    let batch_size = batch_that_fits(run, cfg)?;
    let priors = prior::measure(cfg, &data, Some(&priors_dir(results_root(&run.dir))))?;
    let evaluator = Evaluator::new(cfg, &data, &priors)?;
    // The judge is trained on the run's own data set; eval may point at another one.
    let e = evaluate(&run.model, &evaluator, batch_size, &run.device, None)?;
    let result = EvalResult {
        run: run.run.id.clone(),
        variant: run.run.variant.clone(),
        checkpoint: run.checkpoint.display().to_string(),
        dataset: cfg.data.kind.name().to_string(),
        // Where it was read from, for the data sets read from files.
        data_dir: (cfg.data.kind != DatasetKind::Synthetic).then(|| cfg.data.dir.display().to_string()),
        images: evaluator.val.len(),
        val_loss: e.loss,
        metrics: e.metrics,
    };
    let label = format!("{}-{}", result.dataset, short_hash(&format!("{overrides:?}{}", result.checkpoint)));
    let path = run.dir.join(EVAL_DIR).join(format!("{label}.json"));
    write_atomic(&path, &serde_json::to_vec_pretty(&result)?)?;
    Ok(Evaluation { result, kept: path, val_images: cfg.data.val_images })
}

/// The batch size of an evaluation of `run` that fits in memory: at most the run's, and small enough
/// for the forward pass (batch norm runs on its statistics, so the numbers do not depend on it). A
/// size at which not even one image fits is refused with what to do. The validation images are read
/// batch by batch and the prior from a bounded sample, so the data set's size needs no bound here.
fn batch_that_fits(run: &TrainedRun, cfg: &RunConfig) -> Result<usize> {
    let side = cfg.data.image_size;
    let forward = run.model.forward_bytes(side);
    if forward > FORWARD_LIMIT {
        bail!(
            "image_size {side} would need about {:.1} GB for this model's forward pass, more than {} GB: evaluate at a smaller --set image_size",
            forward as f64 / 1e9,
            FORWARD_LIMIT >> 30
        );
    }
    Ok(cfg.train.batch_size.min((FORWARD_LIMIT / forward.max(1)) as usize).max(1))
}
