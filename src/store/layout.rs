//! The results layout and the names in it:
//!
//! ```text
//! results/<sweep>/plan.json            the sweep's runs in plan order (plan)
//! results/<sweep>/sweep.lock           one orchestrator per sweep (lock)
//! results/<sweep>/<executor>/          an executor's own files, e.g. slurm/ (executor_dir)
//! results/<sweep>/tb/<variant>/seed<N>/ a run's TensorBoard event files (tensorboard_dir; format: train::tensorboard)
//! results/<sweep>/<run-id>/            a run folder:
//!   config.toml    the resolved config, a one-run spec (format: spec)
//!   status.json    state and progress (status)
//!   metrics.csv    one row per epoch (metrics_file)
//!   decision.json  how far early stopping lets the run train (decision)
//!   curve.csv      ab-accuracy curves, curve_best.csv (curve_file)
//!   model.json     what rebuilding the network needs beyond the config (model_info)
//!   log.txt        the trainer's log and its process's output (log)
//!   exec.lock      one trainer per run (lock)
//!   samples.png    gray | predicted | truth (format: train::samples)
//!   checkpoints/   epoch-NNNN/ and best/ with model.bpk, optim.bpk (format: train::checkpoint);
//!                  *.damaged/: ones that did not load, set aside (damaged)
//!   *.damaged      a results file that could not be read, set aside when it was rebuilt (damaged)
//!   eval/          <label>.json per `sweep eval` (format: infer::eval)
//! results/.pretrain/<hash>/, results/.judge/<hash>/
//!                  cached classifiers: classifier.bpk, metrics.csv, top1, lock (format: train::pretrain)
//! results/.filelists/<hash>.txt
//!                  cached file lists of image folders (file_lists_dir; format: data::filelist)
//! results/.priors/<key>.txt
//!                  cached chroma priors of training sets (priors_dir; format: train::prior)
//! ```
//!
//! This module holds the names whose format is owned outside the store; the store's own files are
//! named by their modules.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// A run's resolved config; its format is the spec's ([`crate::spec::config_toml`], [`crate::spec::read_config`]).
pub const CONFIG_FILE: &str = "config.toml";
/// The sample sheet of the last epoch; its format is `train::samples`'.
pub const SAMPLES_FILE: &str = "samples.png";
/// The `sweep eval` results kept in a run folder; their format is `infer::eval`'s.
pub const EVAL_DIR: &str = "eval";

/// The checkpoints of a run (their format, burn's records and the publishing protocol, is
/// `train::checkpoint`'s): `checkpoints/epoch-NNNN/` (being written: `.epoch-NNNN.tmp/`) and
/// `checkpoints/best/` (being written: `.best.tmp/`), each holding the model and optimizer files;
/// `best/epoch` names the epoch `best/` is a copy of.
pub mod checkpoints {
    use std::path::{Path, PathBuf};

    pub const DIR: &str = "checkpoints";
    pub const MODEL_FILE: &str = "model.bpk";
    pub const OPTIM_FILE: &str = "optim.bpk";
    const BEST: &str = "best";
    pub const BEST_TMP: &str = ".best.tmp";
    /// In `best/`: the epoch it was copied from.
    pub const BEST_EPOCH_FILE: &str = "epoch";
    const EPOCH_PREFIX: &str = "epoch-";

    /// `<run>/checkpoints`.
    pub fn dir(run_dir: &Path) -> PathBuf {
        run_dir.join(DIR)
    }

    /// The folder of epoch `epoch`'s checkpoint.
    pub fn epoch_dir(run_dir: &Path, epoch: u64) -> PathBuf {
        dir(run_dir).join(format!("{EPOCH_PREFIX}{epoch:04}"))
    }

    /// The folder epoch `epoch`'s checkpoint is written into before it is published.
    pub fn epoch_tmp_dir(run_dir: &Path, epoch: u64) -> PathBuf {
        dir(run_dir).join(format!(".{EPOCH_PREFIX}{epoch:04}.tmp"))
    }

    /// The epoch a folder name in `checkpoints/` is the checkpoint of (`epoch-0003` -> 3).
    pub fn epoch_of(name: &str) -> Option<u64> {
        name.strip_prefix(EPOCH_PREFIX)?.parse().ok()
    }

    /// `<run>/checkpoints/best`.
    pub fn best_dir(run_dir: &Path) -> PathBuf {
        dir(run_dir).join(BEST)
    }

    /// The newest published epoch checkpoint (a folder `epoch-NNNN` holding its model file): its
    /// epoch and folder. Publishing is the last write that commits an epoch, so this is how many
    /// epochs the run has done, whatever `status.json` says after a kill.
    pub fn newest(run_dir: &Path) -> Option<(u64, PathBuf)> {
        let entries = std::fs::read_dir(dir(run_dir)).ok()?;
        entries
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let epoch = epoch_of(e.file_name().to_str()?)?;
                e.path().join(MODEL_FILE).is_file().then(|| (epoch, e.path()))
            })
            .max_by_key(|(epoch, _)| *epoch)
    }
}

/// A classifier cache shared by the runs of a results folder: `results/.pretrain/<hash>/`
/// (classification-pretrained backbones) or `results/.judge/<hash>/` (semantic judges). The files'
/// formats are `train::pretrain`'s.
pub struct ClassifierCache {
    pub dir: PathBuf,
}

/// What a [`ClassifierCache`] holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CacheKind {
    Pretrain,
    Judge,
}

impl ClassifierCache {
    /// The cache of `kind` under the results folder `results_root`, for the key hash `hash`.
    pub fn new(results_root: &Path, kind: CacheKind, hash: &str) -> ClassifierCache {
        let folder = match kind {
            CacheKind::Pretrain => ".pretrain",
            CacheKind::Judge => ".judge",
        };
        ClassifierCache { dir: results_root.join(folder).join(hash) }
    }

    pub fn classifier(&self) -> PathBuf {
        self.dir.join("classifier.bpk")
    }

    /// The classifier while it is being written.
    pub fn classifier_tmp(&self) -> PathBuf {
        self.dir.join(".classifier.bpk.tmp")
    }

    /// One row per epoch of the classifier's training.
    pub fn metrics(&self) -> PathBuf {
        self.dir.join("metrics.csv")
    }

    /// The final validation top-1, written last: its presence marks a complete cache.
    pub fn top1(&self) -> PathBuf {
        self.dir.join("top1")
    }

    /// Held by the run that trains the classifier.
    pub fn lock(&self) -> PathBuf {
        self.dir.join("lock")
    }
}

/// Where a results file or folder that cannot be read is set aside when sweep rebuilds or replaces
/// it (`status.json.damaged`, `plan.json.damaged`, `checkpoints/epoch-0003.damaged`): kept for a
/// look, under a name no reader takes for the original.
pub fn damaged(path: &Path) -> PathBuf {
    let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".damaged");
    path.with_file_name(name)
}

/// The results folder a run folder `results/<sweep>/<run-id>` is in, where the classifier caches
/// shared by its runs live.
pub fn results_root(run_dir: &Path) -> &Path {
    run_dir.parent().and_then(Path::parent).unwrap_or(Path::new("."))
}

/// The folder in which the executor `name` keeps its own files for a sweep (`results/<sweep>/slurm/`).
pub fn executor_dir(sweep_dir: &Path, name: &str) -> PathBuf {
    sweep_dir.join(name)
}

/// The folder of the cached file lists of image folders under the results folder `results_root`
/// (`results/.filelists/`), shared by its runs; the files' names and format are `data::filelist`'s.
pub fn file_lists_dir(results_root: &Path) -> PathBuf {
    results_root.join(".filelists")
}

/// The folder of the cached chroma priors of training sets under the results folder `results_root`
/// (`results/.priors/`), shared by its runs; the files' names and format are `train::prior`'s.
pub fn priors_dir(results_root: &Path) -> PathBuf {
    results_root.join(".priors")
}

/// The folder of cubecl's persistent caches (autotune results, compiled GPU kernels) under the
/// results folder `results_root`, one per machine (`results/.cubecl/<host>/`): every run of every
/// sweep in the results folder on that machine reuses them, while machines sharing the folder (a
/// cluster's nodes, with their own GPUs and drivers) keep apart. The files are cubecl's own database,
/// which several processes may write at once.
pub fn kernel_cache_dir(results_root: &Path) -> PathBuf {
    let host = super::status::this_host();
    results_root.join(".cubecl").join(if host.is_empty() { "unknown-host" } else { host.as_str() })
}

/// Longest folder name a variant gets in [`tensorboard_dir`] (file systems allow 255 bytes).
pub const MAX_VARIANT_FOLDER: usize = 200;

/// The folder of a run's TensorBoard event files: `<sweep_dir>/tb/<variant>/seed<seed>`, so that
/// `tensorboard --logdir results/<sweep>` names the run `tb/<variant>/seed<seed>` (the files' names
/// and format are `train::tensorboard`'s). A variant name that cannot be a folder name as it is (a
/// `/`, a leading `.`, over [`MAX_VARIANT_FOLDER`] bytes) gets its unsafe characters replaced by `_`,
/// is shortened, and ends in `~` and 8 hex digits of a hash of the name, so that two variants never
/// share a folder (and delete each other's files).
pub fn tensorboard_dir(sweep_dir: &Path, variant: &str, seed: u64) -> PathBuf {
    let mut name: String =
        variant.chars().map(|c| if c.is_alphanumeric() || " _.,=+-@()[]".contains(c) { c } else { '_' }).collect();
    if name.starts_with('.') {
        name.insert(0, '_');
    }
    if name != variant || name.len() > MAX_VARIANT_FOLDER || name.is_empty() {
        while name.len() > MAX_VARIANT_FOLDER - 9 {
            name.pop();
        }
        let hash = Sha256::digest(variant.as_bytes());
        name += &format!("~{:02x}{:02x}{:02x}{:02x}", hash[0], hash[1], hash[2], hash[3]);
    }
    sweep_dir.join("tb").join(name).join(format!("seed{seed}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variant_names_become_one_tensorboard_folder_each() {
        let sweep = Path::new("r/s");
        let name = |variant: &str| tensorboard_dir(sweep, variant, 0).parent().unwrap().file_name().unwrap().to_owned();
        assert_eq!(tensorboard_dir(sweep, "cls,color_space=lab", 2), Path::new("r/s/tb/cls,color_space=lab/seed2"));
        let slash = name("w=/data/x.pth");
        assert!(slash.to_str().unwrap().starts_with("w=_data_x.pth~"), "{slash:?}");
        assert_ne!(slash, name("w=_data_x.pth"), "a replaced character never makes two names one");
        for odd in ["..", ".", ""] {
            assert!(!name(odd).to_str().unwrap().starts_with('.') && !name(odd).is_empty(), "{odd:?}");
        }
        // Long names that differ only past the cut stay apart.
        let (a, b) = ("x".repeat(300) + "a", "x".repeat(300) + "b");
        assert!(name(&a).len() <= MAX_VARIANT_FOLDER);
        assert_ne!(name(&a), name(&b));
    }

    #[test]
    fn kernel_caches_are_per_machine_under_the_results_folder() {
        let dir = kernel_cache_dir(Path::new("results"));
        assert_eq!(dir.parent(), Some(Path::new("results/.cubecl")));
        let host = super::super::status::this_host();
        assert_eq!(dir.file_name().unwrap().to_str().unwrap(), if host.is_empty() { "unknown-host" } else { &host });
    }
}
