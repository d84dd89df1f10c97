//! The training loop of one run (`sweep exec RUN_DIR`): data, model, optimizer, epochs, validation,
//! metrics, checkpoints and resumption.
//!
//! What is burn's and what is ours: burn gives the model, autodiff, the optimizers (Adam, AdamW, SGD)
//! and their state files, and the burnpack format. The loop itself is ours rather than burn-train's
//! learner, because a run here must resume bit-for-bit from its last complete epoch, append exactly
//! one row per epoch to `metrics.csv`, compute colorization metrics on decoded images, stop on a
//! NaN with a reason in `status.json`, and be driven by the sweep's executors: the learner's own
//! checkpointing, metric loggers and TUI do not fit those contracts. The learning-rate schedules are
//! closed-form functions of the epoch (see [`learning_rate`]), so resuming needs no scheduler state.
//! Before each epoch a search's trial asks its early-stopping decision (`decision.json`, written by
//! the orchestrator) whether it may go on, and ends as stopped, its checkpoints kept, where it may not.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::{
    AdamConfig, AdamWConfig, GradientsParams, ModuleOptimizer, SgdConfig, decay::WeightDecayConfig,
    momentum::MomentumConfig,
};
use burn::tensor::{Device, Tensor};

use super::checkpoint;
use super::judge::{SemanticTest, judge};
use super::losses::DeviceLosses;
use super::objective::{HostBatch, Objective};
use super::pretrain;
use super::prior::{self, Priors};
use super::samples;
use super::tensorboard::RunBoard;
use crate::color::convert::decoded_planar;
use crate::data::{ColorBatch, DataSet, ImageSource, prefetched, prepare, prepare_augmented};
use crate::fault::{Point, after};
use crate::metrics::{Accumulator, ClassWeights};
use crate::model::{BackboneInput, ColorizationNet, LoadOptions, ModelConfig, Output};
use crate::rng::Rng;
use crate::spec::run_config::{BackboneStart, OptimizerConfig, Schedule, TaskConfig, TrainConfig};
use crate::spec::{RunConfig, RunPlan, SweepMeta, read_config};
use crate::store::curve_file;
use crate::store::decision::Decision;
use crate::store::layout::{
    CONFIG_FILE, SAMPLES_FILE, checkpoints, file_lists_dir, priors_dir, results_root, tensorboard_dir,
};
use crate::store::lock::RunLock;
use crate::store::log::RunLog;
use crate::store::metrics_file::{MetricsFile, MetricsRow};
use crate::store::model_info::ModelInfo;
use crate::store::protocol::stop_requested;
use crate::store::status::{End, RunStatus, State};

/// Validation images on `samples.png`.
const SAMPLE_IMAGES: usize = 8;

/// How a run ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Done,
    Interrupted,
    /// Early stopping stopped it ([`Decision`]), with the decision's reason.
    Stopped(String),
    /// It was done before this call, which changed nothing.
    AlreadyDone,
}

/// Trains the run in `run_dir` on `device` (plain, without autodiff) until it is done, fails or is
/// interrupted. Keeps `status.json` up to date; a failure is recorded there with its reason. Another
/// live process training the run already is the error [`crate::store::protocol::RunBusy`]. A run
/// that is done already is left as it is ([`Outcome::AlreadyDone`]), wherever this is called from.
pub fn exec(run_dir: &Path, device: &Device, quiet: bool) -> Result<Outcome> {
    let id = run_dir.file_name().and_then(|n| n.to_str()).unwrap_or("").to_string();
    let config_path = run_dir.join(CONFIG_FILE);
    if !config_path.is_file() {
        bail!("{} is not a run folder: it has no {CONFIG_FILE} (sweep run creates them)", run_dir.display());
    }
    let (meta, mut run) = read_config(&config_path, Some(&id))?;
    // One trainer per run, whoever started it (two executors, a Slurm task and a local run, a user).
    let _lock = RunLock::acquire(run_dir)?;
    let mut status = match RunStatus::read(run_dir) {
        Ok(Some(s)) => s,
        Ok(None) => RunStatus::pending(&run, &meta.name),
        Err(e) => {
            let rebuilt = RunStatus::rebuild(run_dir)?;
            let line = format!("warning: {e:#}: rebuilt from the run's files ({})", rebuilt.state.name());
            RunLog::open(run_dir, quiet).line(&line);
            rebuilt
        }
    };
    if status.state == State::Done {
        return Ok(Outcome::AlreadyDone);
    }
    // config.toml describes one run; the variant's name lives in the status the runner wrote.
    run.variant = status.variant.clone();
    status.begin_attempt(run_dir)?;
    let clock = WallClock { started: Instant::now(), before: status.seconds };
    let mut log = RunLog::open(run_dir, quiet);
    let result = train(run_dir, &meta, &run, device, &mut status, &clock, &mut log);
    let end = match &result {
        Ok(Outcome::Done | Outcome::AlreadyDone) => End::Done,
        Ok(Outcome::Interrupted) => End::Interrupted("interrupted (Ctrl-C or SIGTERM); `sweep run` resumes it".into()),
        Ok(Outcome::Stopped(reason)) => End::Stopped(reason.clone()),
        Err(e) => {
            log.line(&format!("failed: {e:#}"));
            End::Failed(format!("{e:#}"))
        }
    };
    status.end_attempt(run_dir, end, Some(clock.seconds()))?;
    result
}

/// A run's wall time over all its attempts: `status.json`'s `seconds`.
struct WallClock {
    started: Instant,
    /// Seconds of the earlier attempts.
    before: f64,
}

impl WallClock {
    fn seconds(&self) -> f64 {
        self.before + self.started.elapsed().as_secs_f64()
    }
}

fn train(
    run_dir: &Path,
    meta: &SweepMeta,
    run: &RunPlan,
    device: &Device,
    status: &mut RunStatus,
    clock: &WallClock,
    log: &mut RunLog,
) -> Result<Outcome> {
    let cfg = &run.settings;
    log.line(&format!("run {} ({}), seed {}, {} epochs", run.id, run.variant, run.seed, cfg.train.epochs));
    let results_root = results_root(run_dir);
    let started = Instant::now();
    // A photo folder is scanned once for all the runs of the results folder (its file list is cached),
    // and its prior measured once (cached too).
    let data = crate::data::open_with(&cfg.data, Some(&file_lists_dir(results_root)))?;
    let opened = started.elapsed().as_secs_f64();
    let priors = prior::measure(cfg, &data, Some(&priors_dir(results_root)))?;
    let evaluator = Evaluator::new(cfg, &data, &priors)?;
    log.line(&format!(
        "data: {} training and {} validation images, opened in {opened:.1} s; chroma prior of {} images {} in {:.1} s",
        data.train.len(),
        data.val.len(),
        priors.images,
        if priors.cached { "read from the cache" } else { "measured" },
        started.elapsed().as_secs_f64() - opened
    ));
    ModelInfo { num_classes: data.classes.len() }.write(run_dir)?;
    let ad_device = device.clone().autodiff();
    let devices = (device, &ad_device);
    let (model, pretrain_top1) = initial_model(cfg, &evaluator.objective, &data, devices, results_root, log)?;
    let semantic = judge(cfg, &data, device, results_root, log)?.map(|j| SemanticTest::new(j, cfg.color_space));
    let semantic = semantic.as_ref();
    let board_dir = tensorboard_dir(run_dir.parent().unwrap_or(Path::new(".")), &run.variant, run.seed);
    let (run_id, data, evaluator, board_dir) = (run.id.as_str(), &data, &evaluator, &board_dir);
    let epochs = Epochs { run_dir, run_id, board_dir, meta, cfg, data, evaluator, semantic, device, ad_device };
    epochs.run(model, pretrain_top1, status, clock, log)
}

/// The colorizer before its first epoch, on the second of `(device, ad_device)` (the device with
/// autodiff): seeded, its backbone started from torchvision weights or classification pretraining
/// (whose top-1 is returned) and frozen as the config says.
fn initial_model(
    cfg: &RunConfig,
    objective: &Objective,
    data: &DataSet,
    (device, ad_device): (&Device, &Device),
    results_root: &Path,
    log: &mut RunLog,
) -> Result<(ColorizationNet, Option<f64>)> {
    let model_cfg = model_config(cfg, objective, data.classes.len());
    let mut model = seeded(ad_device, cfg.seed, || model_cfg.try_init(ad_device))?;
    let mut pretrain_top1 = None;
    if let Some(net) = model_cfg.backbone_config() {
        match &cfg.net.backbone_start {
            BackboneStart::Scratch => {}
            BackboneStart::Torchvision(weights) => {
                model
                    .load_torchvision_backbone(weights, &LoadOptions::default())
                    .with_context(|| format!("backbone.weights = \"{}\"", weights.display()))?;
                log.line(&format!("backbone: torchvision weights from {}", weights.display()));
            }
            BackboneStart::Pretrained(pretrain) => {
                let pre = pretrain::pretrained_backbone(cfg, pretrain, net, data, device, results_root, log)?;
                model = model.load_backbone_file(&pre.path, true)?;
                pretrain_top1 = Some(pre.top1);
            }
        }
        if cfg.net.freeze_backbone {
            model = model.freeze_backbone();
        }
    }
    Ok((model, pretrain_top1))
}

/// What each epoch of a run uses.
struct Epochs<'a> {
    run_dir: &'a Path,
    run_id: &'a str,
    /// The folder of the run's TensorBoard event files.
    board_dir: &'a Path,
    meta: &'a SweepMeta,
    cfg: &'a RunConfig,
    data: &'a DataSet,
    evaluator: &'a Evaluator,
    semantic: Option<&'a SemanticTest>,
    device: &'a Device,
    /// `device` with autodiff, where the model trains.
    ad_device: Device,
}

/// What training one epoch measured.
struct EpochTraining {
    loss_sum: f64,
    seen: usize,
    seconds: f64,
    /// Seconds the step waited for the data thread: the data path must not be what training waits on.
    data_wait: f64,
}

impl EpochTraining {
    /// Reads the losses of the steps since the last read and adds them up; a non-finite one stops
    /// the run, naming the epoch (0-based `epoch`) and step it happened at.
    fn add(&mut self, losses: &mut DeviceLosses, epoch: u64) -> Result<()> {
        for read in losses.read()? {
            if !read.value.is_finite() {
                bail!(
                    "the training loss became {} at epoch {}, step {}: lower lr or check the data",
                    read.value,
                    epoch + 1,
                    read.step + 1
                );
            }
            self.loss_sum += read.value * read.images as f64;
            self.seen += read.images;
        }
        Ok(())
    }
}

impl Epochs<'_> {
    /// Trains the remaining epochs, resuming after the last complete one.
    fn run(
        &self,
        model: ColorizationNet,
        pretrain_top1: Option<f64>,
        status: &mut RunStatus,
        clock: &WallClock,
        log: &mut RunLog,
    ) -> Result<Outcome> {
        let mut metrics = MetricsFile::open(self.run_dir)?;
        for line in metrics.damaged() {
            log.line(&format!("warning: {line}"));
        }
        let (mut model, mut optim, start) = self.resume(model, &metrics, log)?;
        metrics.truncate_after(start)?;
        // The status follows the files: after a kill between a checkpoint and its status, it lags.
        status.record_epoch(self.run_dir, start, clock.seconds())?;
        after(Point::Resume, start);
        // TensorBoard's view: a new event file for this attempt, starting with the epochs kept.
        let mut board = RunBoard::open(self.board_dir, self.run_id, metrics.rows())?;
        let mut best = Best::of(self.meta, metrics.rows());
        for epoch in start..self.cfg.train.epochs {
            // Early stopping's decision, asked before each epoch: the orchestrator may have changed it.
            if let Some(decision) = Decision::read(self.run_dir)?.filter(|d| d.stops_at(epoch)) {
                log.line(&format!("stopped after epoch {epoch}: {}", decision.reason));
                return Ok(Outcome::Stopped(decision.reason));
            }
            let lr = learning_rate(&self.cfg.train, epoch);
            let started = Instant::now();
            let (trained, training) = self.train_epoch(model, &mut optim, epoch, lr, log)?;
            model = trained;
            let Some(training) = training else {
                log.line(&format!("interrupted during epoch {}", epoch + 1));
                return Ok(Outcome::Interrupted);
            };
            let valid = model.valid();
            let eval = self.evaluate(&valid)?;
            let row = MetricsRow {
                epoch: epoch + 1,
                train_loss: training.loss_sum / training.seen.max(1) as f64,
                val_loss: eval.loss,
                metrics: eval.metrics,
                images_per_s: training.seen as f64 / training.seconds,
                seconds: started.elapsed().as_secs_f64(),
                lr,
                pretrain_top1,
                semantic: eval.semantic,
            };
            let diverged = row.non_finite();
            if !diverged.is_empty() {
                bail!(
                    "epoch {} gave {}: the model diverged (lower lr, or check the data)",
                    epoch + 1,
                    diverged.join(", ")
                );
            }
            let is_best = best.update(row.get(self.meta.metric.name()).unwrap_or(f64::NAN));
            self.commit(&valid, &optim, &eval, &row, is_best, &mut metrics)?;
            status.record_epoch(self.run_dir, epoch + 1, clock.seconds())?;
            after(Point::Status, epoch + 1);
            board.epoch(&row, &self.run_dir.join(SAMPLES_FILE))?;
            let waited = 100.0 * training.data_wait / training.seconds;
            log.line(&format!("{}  (waited for data {waited:.1}% of training)", row.summary()));
        }
        Ok(Outcome::Done)
    }

    /// The model and optimizer an attempt starts from, and the epochs they have done: the newest
    /// checkpoint that loads. One that does not (a damaged file) is set aside, saying so, and the
    /// next tried: an older epoch, `best/` when its epoch still has its metrics row, or the start.
    fn resume(
        &self,
        model: ColorizationNet,
        metrics: &MetricsFile,
        log: &mut RunLog,
    ) -> Result<(ColorizationNet, ModuleOptimizer, u64)> {
        let fresh = || optimizer(&self.cfg.train.optimizer);
        let has_row = |epoch: u64| metrics.rows().iter().any(|r| r.epoch == epoch);
        for (epoch, dir) in checkpoint::candidates(self.run_dir) {
            if dir == checkpoints::best_dir(self.run_dir) && !has_row(epoch) {
                continue;
            }
            let loaded = checkpoint::load_model(&dir, model.clone())
                .and_then(|m| Ok((m, checkpoint::load_optim(&dir, fresh())?)));
            match loaded {
                Ok((model, optim)) => {
                    let start = epoch.min(self.cfg.train.epochs);
                    log.line(&format!("resuming after epoch {start} from {}", dir.display()));
                    return Ok((model, optim, start));
                }
                Err(e) => {
                    let aside = checkpoint::set_aside(&dir)
                        .with_context(|| format!("the checkpoint of epoch {epoch} does not load ({e:#})"))?;
                    log.line(&format!(
                        "warning: the checkpoint of epoch {epoch} does not load ({e:#}): moved to {}; trying the one before it",
                        aside.display()
                    ));
                }
            }
        }
        Ok((model, fresh(), 0))
    }

    /// Writes an epoch's results in the order that a kill at any point leaves the run resumable with
    /// nothing lost (see `checkpoint`): sample sheet, curves, then the checkpoint with the metrics row
    /// written just before it is published.
    fn commit(
        &self,
        valid: &ColorizationNet,
        optim: &ModuleOptimizer,
        eval: &Evaluation,
        row: &MetricsRow,
        is_best: bool,
        metrics: &mut MetricsFile,
    ) -> Result<()> {
        let (run_dir, epoch) = (self.run_dir, row.epoch);
        let space = self.cfg.color_space;
        samples::write_sheet(
            &run_dir.join(SAMPLES_FILE),
            space,
            &self.evaluator.samples,
            &eval.sample_chroma,
            SAMPLE_IMAGES,
        )?;
        after(Point::Samples, epoch);
        curve_file::write(run_dir, epoch, &eval.curve, is_best)?;
        after(Point::Curve, epoch);
        // The inference view carries batch norm's current running statistics (the training view lags one update).
        checkpoint::save(run_dir, epoch, valid, optim, is_best, || {
            metrics.append(row.clone())?;
            after(Point::Metrics, epoch);
            Ok(())
        })
    }

    /// One pass over the training images in the epoch's order, batches prepared on another thread
    /// while the model trains; `None` when a stop was requested.
    fn train_epoch(
        &self,
        model: ColorizationNet,
        optim: &mut ModuleOptimizer,
        epoch: u64,
        lr: f64,
        log: &RunLog,
    ) -> Result<(ColorizationNet, Option<EpochTraining>)> {
        let (batch_size, space, objective) =
            (self.cfg.train.batch_size, self.cfg.color_space, &self.evaluator.objective);
        let mut order: Vec<usize> = (0..self.data.train.len()).collect();
        Rng::derive(self.cfg.seed, epoch).shuffle(&mut order);
        let batches: Vec<Vec<usize>> = order.chunks(batch_size).map(<[usize]>::to_vec).collect();
        // Training images only: validation is never augmented.
        let augment = self.cfg.train.augment.epoch(self.cfg.seed, epoch);
        let epochs = self.cfg.train.epochs;
        let bar = progress_bar(batches.len() as u64, &format!("epoch {}/{epochs}", epoch + 1), log.quiet);
        let started = Instant::now();
        let mut training = EpochTraining { loss_sum: 0.0, seen: 0, seconds: 0.0, data_wait: 0.0 };
        let data = self.data.train.as_ref();
        let prepare = |idx: &[usize]| prepare_augmented(data, idx, space, &augment).map(|b| objective.host_batch(&b));
        let mut losses = DeviceLosses::default();
        let (model, interrupted) = prefetched(&batches, prepare, |batches| -> Result<(ColorizationNet, bool)> {
            let mut model = model;
            let mut waiting = Instant::now();
            for (step, batch) in batches.enumerate() {
                training.data_wait += waiting.elapsed().as_secs_f64();
                if stop_requested() {
                    return Ok((model, true));
                }
                let batch = batch?;
                let n = batch.n;
                let (stepped, loss) = train_step(model, optim, objective, batch, &self.ad_device, lr);
                model = stepped;
                losses.push(loss, n, step);
                if losses.waiting() >= LOSS_READ_EVERY {
                    training.add(&mut losses, epoch)?;
                    bar.set_message(format!("loss {:.4}", training.loss_sum / training.seen as f64));
                }
                bar.inc(1);
                waiting = Instant::now();
            }
            training.add(&mut losses, epoch)?;
            Ok((model, false))
        })?;
        bar.finish_and_clear();
        training.seconds = started.elapsed().as_secs_f64();
        Ok((model, (!interrupted).then_some(training)))
    }

    fn evaluate(&self, valid: &ColorizationNet) -> Result<Evaluation> {
        evaluate(valid, self.evaluator, self.cfg.train.batch_size, self.device, self.semantic)
    }
}

/// The best value of the primary metric so far, which decides the best checkpoint.
struct Best {
    value: Option<f64>,
    higher_is_better: bool,
}

impl Best {
    /// The best of the rows kept from earlier epochs.
    fn of(meta: &SweepMeta, rows: &[MetricsRow]) -> Best {
        let higher = meta.higher_is_better;
        let value = rows.iter().filter_map(|r| r.get(meta.metric.name())).fold(None, |b: Option<f64>, v| {
            Some(match b {
                Some(b) if (higher && b >= v) || (!higher && b <= v) => b,
                Some(_) | None => v,
            })
        });
        Best { value, higher_is_better: higher }
    }

    /// Takes `value` if it is better (the first value always is); says whether it was.
    fn update(&mut self, value: f64) -> bool {
        let better = match self.value {
            None => true,
            Some(b) => (self.higher_is_better && value > b) || (!self.higher_is_better && value < b),
        };
        if better {
            self.value = Some(value);
        }
        better
    }
}

/// At most this many training steps between two reads of the loss (and at the end of each epoch):
/// each read is a device sync, so a GPU queues this many steps ahead. A diverging run is stopped
/// within as many steps, with the step it diverged at.
pub const LOSS_READ_EVERY: usize = 20;

/// One optimisation step on one batch: upload, forward, loss, backward, optimizer update. Returns
/// the updated model and the batch's mean loss (computed before the update), left on the device:
/// reading it is a device sync, which the caller does for many steps at once ([`DeviceLosses`]).
/// The trainer and `benches/train_step.rs` both run exactly this, so the benchmark times the real
/// step.
pub fn train_step(
    model: ColorizationNet,
    optim: &mut ModuleOptimizer,
    objective: &Objective,
    batch: HostBatch,
    device: &Device,
    lr: f64,
) -> (ColorizationNet, Tensor<1>) {
    let batch = batch.into_device(device);
    let output = model.forward(batch.gray.clone());
    let loss = objective.loss(output, &batch);
    let grads = GradientsParams::from_grads(loss.clone().backward(), &model);
    (optim.step(lr, model, grads), loss.detach())
}

/// Builds a module right after seeding burn's generator and draws all its random initial values
/// before anyone else can seed: the seed may be global to the backend and burn initialises
/// parameters lazily (on first use), so two runs initialised at once in one process (tests, a
/// library user) would otherwise draw from each other's stream.
pub fn seeded<M: Module, E>(device: &Device, seed: u64, init: impl FnOnce() -> Result<M, E>) -> Result<M, E> {
    struct Materialise;
    impl ModuleVisitor for Materialise {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let _ = param.val();
        }
    }
    static INIT: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = INIT.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    device.seed(seed);
    let module = init()?;
    module.visit(&mut Materialise);
    Ok(module)
}

/// Validation: loss, metrics and the decoded chroma of the first images (for the sample sheet).
pub struct Evaluation {
    pub loss: f64,
    pub metrics: crate::metrics::Metrics,
    pub curve: crate::metrics::AccuracyCurve,
    pub sample_chroma: Vec<f32>,
    /// The judge's top-1 on colorized, gray and true-colour images, when there is a judge.
    pub semantic: Option<crate::metrics::SemanticTop1>,
}

/// Runs `model` (inference view) over the validation images in batches, read and prepared ahead
/// of the model by the data path ([`prefetched`]), so that validation holds a few batches, never
/// the whole split; with a `semantic` test, Zhang's semantic test too. Each batch's output is read
/// back once (its metrics are the host's); the losses together after the pass.
pub fn evaluate(
    model: &ColorizationNet,
    evaluator: &Evaluator,
    batch_size: usize,
    device: &Device,
    semantic: Option<&SemanticTest>,
) -> Result<Evaluation> {
    let (objective, val) = (&evaluator.objective, evaluator.val.as_ref());
    let space = objective.space();
    let hw = val.side() * val.side();
    let mut acc = Accumulator::new(Some(evaluator.class_weights.clone()));
    let mut pass = semantic.map(SemanticTest::pass);
    let mut losses = DeviceLosses::default();
    let mut sample_chroma = Vec::new();
    let order: Vec<usize> = (0..val.len()).collect();
    let batches: Vec<Vec<usize>> = order.chunks(batch_size.max(1)).map(<[usize]>::to_vec).collect();
    let prepare = |idx: &[usize]| prepare(val, idx, space).map(|b| (objective.host_batch(&b), b));
    prefetched(&batches, prepare, |batches| -> Result<()> {
        for (step, prepared) in batches.enumerate() {
            let (host, batch) = prepared?;
            let on_device = host.into_device(device);
            let output = model.forward(on_device.gray.clone());
            // Read with the others after the pass: the output below is this batch's one read.
            losses.push(objective.loss(output.clone(), &on_device), batch.n, step);
            let raw = output.into_data().try_to_vec::<f32>()?;
            let chroma = objective.decode(raw, hw, None);
            let predicted = decoded_planar(space, &batch.gray, &chroma, hw);
            let truth = decoded_planar(space, &batch.gray, &batch.chroma, hw);
            acc.add(&predicted, &truth, hw);
            if let (Some(test), Some(pass)) = (semantic, pass.as_mut()) {
                test.add(pass, &batch, (&predicted, &truth), batch_size, device)?;
            }
            if sample_chroma.len() < SAMPLE_IMAGES * 2 * hw {
                let take = (SAMPLE_IMAGES * 2 * hw - sample_chroma.len()).min(chroma.len());
                sample_chroma.extend_from_slice(&chroma[..take]);
            }
        }
        Ok(())
    })?;
    let loss_sum: f64 = losses.read()?.iter().map(|l| l.value * l.images as f64).sum();
    Ok(Evaluation {
        loss: loss_sum / val.len().max(1) as f64,
        metrics: acc.finish(),
        curve: acc.curve(),
        sample_chroma,
        semantic: semantic.zip(pass).map(|(test, pass)| test.result(pass)),
    })
}

/// What validation needs: the objective (with rebalancing weights from the training images' prior),
/// the per-pixel weights of the rebalanced AuC, the validation images and the first of them prepared
/// for the sample sheet. Training and `sweep eval` build it the same way, so that eval on the
/// training data repeats training's numbers.
pub struct Evaluator {
    pub objective: Objective,
    pub class_weights: ClassWeights,
    /// The validation split, read batch by batch at each validation.
    pub val: Arc<dyn ImageSource>,
    /// The first [`SAMPLE_IMAGES`] validation images, prepared: the sample sheet's.
    pub samples: ColorBatch,
}

impl Evaluator {
    /// The evaluator of a run on `data`, whose training images' priors are `priors`
    /// ([`prior::measure`]).
    pub fn new(cfg: &RunConfig, data: &DataSet, priors: &Priors) -> Result<Evaluator> {
        if data.val.is_empty() || data.train.is_empty() {
            bail!(
                "the data set has {} training and {} validation images: both must be non-empty",
                data.train.len(),
                data.val.len()
            );
        }
        let objective = Objective::new(cfg, || priors.own.clone().unwrap_or_default());
        let sample_indices: Vec<usize> = (0..data.val.len().min(SAMPLE_IMAGES)).collect();
        let samples = prepare(data.val.as_ref(), &sample_indices, cfg.color_space)?;
        let class_weights = prior::class_weights(priors);
        Ok(Evaluator { objective, class_weights, val: data.val.clone(), samples })
    }
}

/// The network a run's config describes; `num_classes` is the data set's, for a backbone pretrained
/// as its classifier.
pub fn model_config(cfg: &RunConfig, objective: &Objective, num_classes: usize) -> ModelConfig {
    let net = &cfg.net;
    let output = match &cfg.task {
        TaskConfig::Regression(r) => Output::Regression(r.activation),
        TaskConfig::Classification(_) => Output::Classification { bins: objective.output_channels() },
    };
    let (backbone_input, num_classes) = match net.backbone_start {
        BackboneStart::Scratch => (BackboneInput::Gray, 0),
        BackboneStart::Torchvision(_) => (BackboneInput::ImagenetRgb, 0),
        BackboneStart::Pretrained(_) => (BackboneInput::Gray, num_classes),
    };
    ModelConfig {
        image_size: cfg.data.image_size,
        local_widths: net.local_widths.clone(),
        local_pool_after: net.local_pool_after.clone(),
        backbone: net.backbone,
        backbone_width: net.backbone_width,
        backbone_input,
        features: net.features,
        fusion_dim: net.fusion_dim,
        head_widths: net.head_widths.clone(),
        output,
        num_classes,
    }
}

/// The optimizer a run's config describes.
pub fn optimizer(cfg: &OptimizerConfig) -> ModuleOptimizer {
    let decay = |wd: f64| (wd > 0.0).then(|| WeightDecayConfig::new(wd as f32));
    match *cfg {
        OptimizerConfig::Sgd { momentum, weight_decay } => SgdConfig::new()
            .with_momentum(Some(MomentumConfig::new().with_momentum(momentum)))
            .with_weight_decay(decay(weight_decay))
            .init(),
        OptimizerConfig::AdamW { betas: [b1, b2], weight_decay } => AdamWConfig::new()
            .with_beta_1(b1 as f32)
            .with_beta_2(b2 as f32)
            .with_weight_decay(weight_decay as f32)
            .init(),
        OptimizerConfig::Adam { betas: [b1, b2], weight_decay } => AdamConfig::new()
            .with_beta_1(b1 as f32)
            .with_beta_2(b2 as f32)
            .with_weight_decay(decay(weight_decay))
            .init(),
    }
}

/// The learning rate of epoch `epoch` (0-based): constant, step (times lr_gamma every lr_step_epochs)
/// or cosine (from lr down to lr_min over the run).
pub fn learning_rate(cfg: &TrainConfig, epoch: u64) -> f64 {
    let lr = cfg.lr;
    match cfg.schedule {
        Schedule::Constant => lr,
        Schedule::Step { every, gamma } => lr * gamma.powi((epoch / every) as i32),
        Schedule::Cosine { min } => {
            let t = epoch as f64 / cfg.epochs.max(1) as f64;
            min + 0.5 * (lr - min) * (1.0 + (std::f64::consts::PI * t).cos())
        }
    }
}

fn progress_bar(len: u64, prefix: &str, quiet: bool) -> indicatif::ProgressBar {
    if quiet {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(len);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} batches  {msg}  ETA {eta}")
            .expect("the template is valid")
            .progress_chars("=> "),
    );
    bar.set_prefix(prefix.to_string());
    bar
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{Spec, plan};

    /// The epoch's mean training loss read in windows is the mean read step by step: the same tiny
    /// net trained twice from one seed on the same batches, read each step and every third step.
    #[test]
    fn losses_read_in_windows_give_the_mean_of_reading_every_step() {
        let text = "[sweep]\nname = \"window\"\n[base]\ndataset = \"synthetic\"\nimage_size = 8\nbatch_size = 4\n\
                    train_images = 28\nlocal.widths = [4]\nlocal.pool_after = []\nhead.widths = []\n";
        let spec = Spec::from_str(Path::new("window.toml"), text.to_string()).unwrap();
        let cfg = plan(&spec, &[]).unwrap().runs.remove(0).settings;
        let data = crate::data::open(&cfg.data).unwrap();
        let objective = Objective::new(&cfg, Vec::new);
        let ad_device = Device::flex().autodiff();
        let train = |every: usize| {
            let model_cfg = model_config(&cfg, &objective, data.classes.len());
            let mut model = seeded(&ad_device, 7, || model_cfg.try_init(&ad_device)).unwrap();
            let mut optim = optimizer(&cfg.train.optimizer);
            let (mut training, mut losses) =
                (EpochTraining { loss_sum: 0.0, seen: 0, seconds: 0.0, data_wait: 0.0 }, DeviceLosses::default());
            for step in 0..7 {
                let idx: Vec<usize> = (step * 4..step * 4 + 4).collect();
                let batch = objective.host_batch(&prepare(data.train.as_ref(), &idx, cfg.color_space).unwrap());
                let n = batch.n;
                let (stepped, loss) = train_step(model, &mut optim, &objective, batch, &ad_device, 1e-3);
                model = stepped;
                losses.push(loss, n, step);
                if losses.waiting() >= every {
                    training.add(&mut losses, 0).unwrap();
                }
            }
            training.add(&mut losses, 0).unwrap();
            (training.loss_sum / training.seen as f64, training.seen)
        };
        let (each_step, seen) = train(1);
        let (windowed, seen_windowed) = train(3);
        assert_eq!((seen, seen_windowed), (28, 28));
        assert!(each_step.is_finite() && each_step > 0.0, "{each_step}");
        assert!((each_step - windowed).abs() <= 1e-6 * each_step, "{each_step} vs {windowed}");
    }

    #[test]
    fn a_non_finite_loss_names_its_epoch_and_step() {
        let device = Device::flex();
        let mut losses = DeviceLosses::default();
        for (step, value) in [0.5f32, 0.25, f32::INFINITY].into_iter().enumerate() {
            losses.push(Tensor::from_floats([value], &device), 4, step);
        }
        let mut training = EpochTraining { loss_sum: 0.0, seen: 0, seconds: 0.0, data_wait: 0.0 };
        let err = training.add(&mut losses, 1).unwrap_err().to_string();
        assert!(err.contains("became inf at epoch 2, step 3"), "{err}");
    }
}
