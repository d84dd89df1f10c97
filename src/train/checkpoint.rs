//! Checkpoints: the model and optimizer state after each epoch, written so that a crash at any moment
//! leaves either the previous or the new checkpoint complete, never a torn one.
//!
//! Epoch N is written into `checkpoints/.epoch-000N.tmp/` and renamed to `checkpoints/epoch-000N/`
//! once complete (a rename within a folder is atomic): publishing commits the epoch. Before that the
//! epoch's metrics row is written (so that a crash in between repeats the epoch rather than losing
//! its row) and, when the epoch is the best so far, `best/` is replaced by a copy of it (with
//! `best/epoch` naming it) in one exchange, so that there is never an instant without `best/` and
//! never a published epoch whose `best/` is still to be written. Only the newest epoch and `best/`
//! are kept. A checkpoint that does not load is moved aside (`epoch-000N.damaged`) and the trainer
//! resumes from the one before it ([`candidates`]). The names are the store's
//! ([`crate::store::layout::checkpoints`]); the format and the publishing are this module's.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use burn::module::Module;
use burn::optim::ModuleOptimizer;

use crate::fault::{Point, after};
use crate::model::ColorizationNet;
use crate::store::layout::checkpoints::{
    BEST_EPOCH_FILE, BEST_TMP, MODEL_FILE, OPTIM_FILE, best_dir, dir as checkpoints_dir, epoch_dir, epoch_of,
    epoch_tmp_dir, newest,
};
use crate::store::layout::damaged;

/// The checkpoints an attempt may resume from, best first: the published epochs, newest first, then
/// `best/` (a copy of an earlier epoch, with its optimizer state) when it records its epoch.
pub fn candidates(run_dir: &Path) -> Vec<(u64, PathBuf)> {
    let mut found: Vec<(u64, PathBuf)> = std::fs::read_dir(checkpoints_dir(run_dir))
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .filter_map(|e| Some((epoch_of(e.file_name().to_str()?)?, e.path())))
                .filter(|(_, dir)| dir.join(MODEL_FILE).is_file())
                .collect()
        })
        .unwrap_or_default();
    found.sort_by_key(|(epoch, _)| std::cmp::Reverse(*epoch));
    if let Some(epoch) = recorded_best_epoch(run_dir) {
        found.push((epoch, best_dir(run_dir)));
    }
    found
}

/// Moves a checkpoint that does not load out of the way (`epoch-0003` -> `epoch-0003.damaged`),
/// where it is kept for a look but no longer found; returns where it went.
pub fn set_aside(dir: &Path) -> Result<PathBuf> {
    let aside = damaged(dir);
    if aside.exists() {
        std::fs::remove_dir_all(&aside).with_context(|| format!("cannot remove {}", aside.display()))?;
    }
    std::fs::rename(dir, &aside).with_context(|| format!("cannot move {} aside", dir.display()))?;
    Ok(aside)
}

/// The checkpoint folder a trained run is used from: `best`, `last`, or a path.
pub fn resolve(run_dir: &Path, which: &str) -> Result<PathBuf> {
    match which {
        "last" => newest(run_dir).map(|(_, p)| p).with_context(|| {
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

/// Writes epoch `epoch`'s checkpoint (see the module doc for the order); `before_publish` runs
/// after the files are complete and before the checkpoint becomes visible (the metrics row goes
/// there). Older epochs are removed afterwards.
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
    after(Point::CheckpointModel, epoch);
    optim.save(tmp.join(OPTIM_FILE)).map_err(|e| anyhow::anyhow!("cannot save the optimizer state: {e:?}"))?;
    after(Point::CheckpointOptim, epoch);
    sync_dir(&tmp);
    before_publish()?;
    if is_best {
        save_best(run_dir, epoch, &tmp)?;
    }
    after(Point::Best, epoch);
    let dir = epoch_dir(run_dir, epoch);
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    std::fs::rename(&tmp, &dir).with_context(|| format!("cannot publish checkpoint {}", dir.display()))?;
    sync_dir(&root);
    after(Point::Publish, epoch);
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
    after(Point::Prune, epoch);
    Ok(())
}

/// Replaces `best/` by a copy of the checkpoint files in `from`, of epoch `epoch`.
fn save_best(run_dir: &Path, epoch: u64, from: &Path) -> Result<()> {
    let best_tmp = checkpoints_dir(run_dir).join(BEST_TMP);
    let _ = std::fs::remove_dir_all(&best_tmp);
    std::fs::create_dir_all(&best_tmp)?;
    for f in [MODEL_FILE, OPTIM_FILE] {
        std::fs::copy(from.join(f), best_tmp.join(f))?;
    }
    std::fs::write(best_tmp.join(BEST_EPOCH_FILE), epoch.to_string())?;
    sync_dir(&best_tmp);
    replace_dir(&best_tmp, &best_dir(run_dir))
}

/// Puts the folder `new` at `target`'s path. Where the file system can, the two are exchanged in one
/// step (Linux's `renameat2` with `RENAME_EXCHANGE`) and the old contents removed from `new`'s path
/// afterwards, so that `target` never goes missing; elsewhere `target` is removed first.
fn replace_dir(new: &Path, target: &Path) -> Result<()> {
    use std::os::unix::ffi::OsStrExt;
    if target.exists() {
        let c = |p: &Path| std::ffi::CString::new(p.as_os_str().as_bytes()).context("a path with a NUL byte");
        let (from, to) = (c(new)?, c(target)?);
        let exchanged = unsafe {
            libc::renameat2(libc::AT_FDCWD, from.as_ptr(), libc::AT_FDCWD, to.as_ptr(), libc::RENAME_EXCHANGE)
        } == 0;
        if exchanged {
            let _ = std::fs::remove_dir_all(new);
            return Ok(());
        }
        std::fs::remove_dir_all(target).with_context(|| format!("cannot replace {}", target.display()))?;
    }
    std::fs::rename(new, target).with_context(|| format!("cannot rename {} to {}", new.display(), target.display()))
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
