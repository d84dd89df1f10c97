//! Putting a trained run to work: loading it back (`TrainedRun`), colorizing photos (`colorize`) and
//! evaluating it on another data set (`eval`).

pub mod colorize;
pub mod eval;

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use burn::module::Module;
use burn::tensor::{Device, Tensor, TensorData};

use crate::model::ColorizationNet;
use crate::spec::run_config::BackboneStart;
use crate::spec::{RunPlan, SweepMeta, read_config};
use crate::store::layout::CONFIG_FILE;
use crate::store::layout::checkpoints;
use crate::store::model_info::{MODEL_INFO, ModelInfo};
use crate::store::plan::SweepIndex;
use crate::store::status::{RunStatus, State};
use crate::train::checkpoint;
use crate::train::objective::Objective;
use crate::train::trainer::model_config;

/// The run folder `path` names: itself when it is a folder, else, for `<sweep folder>/<variant>`,
/// the run of that variant with the lowest seed (ids change with the schema; variant names do not).
/// A grid's variant name may hold a `/` (`data_dir=data/a`): the sweep folder is the nearest
/// ancestor with a plan, and the rest of the path is the name.
pub fn find_run(path: &Path) -> Result<PathBuf> {
    if path.is_dir() {
        return Ok(path.to_path_buf());
    }
    let plan_of = |dir: &Path| SweepIndex::read(dir).ok().map(|index| (dir.to_path_buf(), index));
    let found = path.ancestors().skip(1).take_while(|a| !a.as_os_str().is_empty()).find_map(plan_of);
    let Some((sweep_dir, index)) = found else {
        let parent = path.parent().unwrap_or(Path::new("."));
        bail!("{} is not a run folder, and {} is not a sweep's results folder", path.display(), parent.display());
    };
    let rest = path.strip_prefix(&sweep_dir).unwrap_or(path);
    let name = rest.components().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/");
    let sweep_dir = sweep_dir.as_path();
    let mut runs: Vec<_> = index.runs.iter().filter(|r| r.variant == name).collect();
    runs.sort_by_key(|r| r.seed);
    match runs.first() {
        Some(run) => Ok(sweep_dir.join(&run.id)),
        None => {
            let mut variants: Vec<&str> = index.runs.iter().map(|r| r.variant.as_str()).collect();
            variants.dedup();
            bail!(
                "{} is neither a run folder nor a variant of sweep \"{}\": its variants are {}",
                path.display(),
                index.sweep,
                variants.iter().map(|v| format!("\"{v}\"")).collect::<Vec<_>>().join(", ")
            )
        }
    }
}

/// A trained run, ready for inference.
pub struct TrainedRun {
    pub dir: PathBuf,
    pub meta: SweepMeta,
    pub run: RunPlan,
    pub objective: Objective,
    pub model: ColorizationNet,
    pub checkpoint: PathBuf,
    /// The epoch the checkpoint holds, where it says (`best/epoch`, `epoch-000N`).
    pub epoch: Option<u64>,
    /// The run's state and epochs done, as its status says, when it is not done.
    pub unfinished: Option<(State, u64)>,
    pub device: Device,
}

impl TrainedRun {
    /// Loads the run in `run_dir` from its `best`, `last` or given checkpoint onto `device`.
    /// `run_dir` may also name a variant of a sweep, `results/<sweep>/<variant>` (see [`find_run`]).
    pub fn load(run_dir: &Path, which: &str, device: &Device) -> Result<TrainedRun> {
        let run_dir = &find_run(run_dir)?;
        let config = run_dir.join(CONFIG_FILE);
        if !config.is_file() {
            bail!("{} is not a run folder: it has no {CONFIG_FILE}", run_dir.display());
        }
        let id = run_dir.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let (meta, mut run) = read_config(&config, Some(id))?;
        let mut unfinished = None;
        if let Ok(Some(status)) = RunStatus::read(run_dir) {
            run.variant = status.variant;
            unfinished = (status.state != State::Done).then_some((status.state, status.epochs_done));
        }
        let checkpoint = checkpoint::resolve(run_dir, which)?;
        let epoch = if checkpoint == checkpoints::best_dir(run_dir) {
            checkpoint::recorded_best_epoch(run_dir)
        } else {
            checkpoint.file_name().and_then(|n| n.to_str()).and_then(checkpoints::epoch_of)
        };
        let info = match ModelInfo::read(run_dir)? {
            Some(info) => info,
            // Only a classification-pretrained backbone needs the class count.
            None if !matches!(run.settings.net.backbone_start, BackboneStart::Pretrained(_)) => {
                ModelInfo { num_classes: 0 }
            }
            None => bail!("{} has no {MODEL_INFO}: train the run again", run_dir.display()),
        };
        let objective = Objective::for_inference(&run.settings);
        let model_cfg = model_config(&run.settings, &objective, info.num_classes);
        let model = model_cfg.try_init(device)?;
        let model = checkpoint::load_model(&checkpoint, model)?.valid();
        let device = device.clone();
        Ok(TrainedRun {
            dir: run_dir.to_path_buf(),
            meta,
            run,
            objective,
            model,
            checkpoint,
            epoch,
            unfinished,
            device,
        })
    }

    /// Which weights these are: `epoch 2 of 3 (checkpoints/best)`.
    pub fn checkpoint_note(&self) -> String {
        let epochs = self.run.settings.train.epochs;
        let which = self.checkpoint.strip_prefix(&self.dir).unwrap_or(&self.checkpoint).display().to_string();
        match self.epoch {
            Some(epoch) => format!("epoch {epoch} of {epochs} ({which})"),
            None => format!("checkpoint {} (of a run of {epochs} epochs)", self.checkpoint.display()),
        }
    }

    /// A warning when the run is not done: its weights are those of an unfinished training.
    pub fn unfinished_warning(&self) -> Option<String> {
        let (state, done) = self.unfinished?;
        Some(format!(
            "run {} is {} after {done} of {} epochs: using its {}",
            self.run.id,
            state.name(),
            self.run.settings.train.epochs,
            self.checkpoint_note()
        ))
    }

    /// Side of the images the run was trained on.
    pub fn image_size(&self) -> usize {
        self.run.settings.data.image_size
    }

    /// Predicted chroma `[n][2][side*side]` (natural units) for gray images `[n][side*side]` in [0, 1].
    pub fn predict(&self, gray: Vec<f32>, n: usize, side: usize, temperature: Option<f32>) -> Result<Vec<f32>> {
        let input = Tensor::<4>::from_data(TensorData::new(gray, [n, 1, side, side]), &self.device);
        let output = self.model.forward(input);
        let raw = output.into_data().try_to_vec::<f32>()?;
        Ok(self.objective.decode(raw, side * side, temperature))
    }
}
