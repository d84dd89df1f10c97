//! Checkpoints: the model and optimizer state after each epoch, written so that a crash at any moment
//! leaves either the previous or the new checkpoint complete, never a torn one.
//!
//! Epoch N is written into `checkpoints/.epoch-000N.tmp/` and renamed to `checkpoints/epoch-000N/`
//! once complete (a rename within a folder is atomic). Only the newest epoch and `best/` (a copy of
//! the epoch with the best primary metric, with `best/epoch` naming it) are kept. The names are the
//! store's ([`crate::store::layout::checkpoints`]); the format and the publishing are this module's.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use burn::module::Module;
use burn::optim::ModuleOptimizer;

use crate::model::ColorizationNet;
use crate::store::layout::checkpoints::{
    BEST_EPOCH_FILE, BEST_TMP, MODEL_FILE, OPTIM_FILE, best_dir, dir as checkpoints_dir, epoch_dir, epoch_of,
    epoch_tmp_dir,
};

/// The newest complete checkpoint: its epoch (1-based count of finished epochs) and folder.
pub fn latest(run_dir: &Path) -> Option<(u64, PathBuf)> {
    let entries = std::fs::read_dir(checkpoints_dir(run_dir)).ok()?;
    entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let epoch = epoch_of(&name)?;
            e.path().join(MODEL_FILE).is_file().then(|| (epoch, e.path()))
        })
        .max_by_key(|(epoch, _)| *epoch)
}

/// The checkpoint folder a trained run is used from: `best`, `last`, or a path.
pub fn resolve(run_dir: &Path, which: &str) -> Result<PathBuf> {
    match which {
        "last" => latest(run_dir).map(|(_, p)| p).with_context(|| {
            format!("{} has no checkpoint yet: train it first (sweep exec {})", run_dir.display(), run_dir.display())
        }),
        "best" => {
            let best = best_dir(run_dir);
            if best.join(MODEL_FILE).is_file() { Ok(best) } else { resolve(run_dir, "last") }
        }
        path => {
            let p = PathBuf::from(path);
            let dir = if p.is_file() { p.parent().map(Path::to_path_buf).unwrap_or_default() } else { p };
            if dir.join(MODEL_FILE).is_file() {
                Ok(dir)
            } else {
                anyhow::bail!(
                    "checkpoint `{path}` not found: give best, last, or a checkpoint folder holding {MODEL_FILE}"
                )
            }
        }
    }
}

/// Writes epoch `epoch`'s checkpoint; `before_publish` runs after the files are complete and before
/// the checkpoint becomes visible (the metrics row goes there, so that a crash in between repeats
/// the epoch rather than losing its row). Older epochs are removed afterwards.
pub fn save(
    run_dir: &Path,
    epoch: u64,
    model: &ColorizationNet,
    optim: &ModuleOptimizer,
    is_best: bool,
    before_publish: impl FnOnce() -> Result<()>,
) -> Result<()> {
    let root = checkpoints_dir(run_dir);
    std::fs::create_dir_all(&root).with_context(|| format!("cannot create {}", root.display()))?;
    let tmp = epoch_tmp_dir(run_dir, epoch);
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp)?;
    }
    std::fs::create_dir_all(&tmp)?;
    model.clone().save_file(tmp.join(MODEL_FILE)).map_err(|e| anyhow::anyhow!("cannot save the model: {e:?}"))?;
    optim.save(tmp.join(OPTIM_FILE)).map_err(|e| anyhow::anyhow!("cannot save the optimizer state: {e:?}"))?;
    sync_dir(&tmp);
    before_publish()?;
    let dir = epoch_dir(run_dir, epoch);
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    std::fs::rename(&tmp, &dir).with_context(|| format!("cannot publish checkpoint {}", dir.display()))?;
    if is_best {
        let best_tmp = root.join(BEST_TMP);
        let _ = std::fs::remove_dir_all(&best_tmp);
        std::fs::create_dir_all(&best_tmp)?;
        for f in [MODEL_FILE, OPTIM_FILE] {
            std::fs::copy(dir.join(f), best_tmp.join(f))?;
        }
        std::fs::write(best_tmp.join(BEST_EPOCH_FILE), epoch.to_string())?;
        let best = best_dir(run_dir);
        let _ = std::fs::remove_dir_all(&best);
        std::fs::rename(&best_tmp, &best)?;
    }
    // Keep only the newest epoch (and best/).
    for entry in std::fs::read_dir(&root)?.filter_map(|e| e.ok()) {
        let name = entry.file_name().to_string_lossy().to_string();
        if let Some(n) = epoch_of(&name)
            && n < epoch
        {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
    sync_dir(&root);
    Ok(())
}

/// The epoch `best/` was copied from, as `best/epoch` records it (`None` without a readable one).
pub fn recorded_best_epoch(run_dir: &Path) -> Option<u64> {
    std::fs::read_to_string(best_dir(run_dir).join(BEST_EPOCH_FILE)).ok()?.trim().parse().ok()
}

/// Loads a checkpoint's model into `model` (built from the same config).
pub fn load_model(dir: &Path, model: ColorizationNet) -> Result<ColorizationNet> {
    let path = dir.join(MODEL_FILE);
    model.try_load_file(&path).map_err(|e| anyhow::anyhow!("cannot load {}: {e:?}", path.display()))
}

pub fn load_optim(dir: &Path, optim: ModuleOptimizer) -> Result<ModuleOptimizer> {
    let path = dir.join(OPTIM_FILE);
    optim.load(&path).map_err(|e| anyhow::anyhow!("cannot load {}: {e:?}", path.display()))
}

/// Flushes a folder's entries to disk, so that a rename survives a power cut (best effort).
fn sync_dir(dir: &Path) {
    if let Ok(f) = std::fs::File::open(dir) {
        let _ = f.sync_all();
    }
}
