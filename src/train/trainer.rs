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

use std::path::Path;
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
use super::objective::{HostBatch, Objective};
use super::pretrain;
use super::samples;
use crate::color::ColorSpace;
use crate::color::convert::decoded_planar;
use crate::color::quantize::{ChromaBins, rebalance_weights};
use crate::data::{ColorBatch, DataSet, prepare};
use crate::metrics::{Accumulator, ClassWeights};
use crate::model::{BackboneInput, ColorizationNet, LoadOptions, ModelConfig, Output};
use crate::rng::Rng;
use crate::spec::run_config::{BackboneStart, OptimizerConfig, Schedule, TaskConfig, TrainConfig};
use crate::spec::{RunConfig, RunPlan, SweepMeta, read_config};
use crate::store::curve_file;
use crate::store::layout::{CONFIG_FILE, SAMPLES_FILE, results_root};
use crate::store::lock::RunLock;
use crate::store::log::RunLog;
use crate::store::metrics_file::{MetricsFile, MetricsRow};
use crate::store::model_info::ModelInfo;
use crate::store::protocol::stop_requested;
use crate::store::status::{End, RunStatus};

/// Images whose chroma estimates the class prior (for rebalancing and the rebalanced AuC).
pub const PRIOR_IMAGES: usize = 5000;
/// Validation images on `samples.png`.
const SAMPLE_IMAGES: usize = 8;

/// How a run ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Done,
    Interrupted,
}

/// Trains the run in `run_dir` on `device` (plain, without autodiff) until it is done, fails or is
/// interrupted. Keeps `status.json` up to date; a failure is recorded there with its reason. Another
/// live process training the run already is the error [`crate::store::protocol::RunBusy`].
pub fn exec(run_dir: &Path, device: &Device, quiet: bool) -> Result<Outcome> {
    let id = run_dir.file_name().and_then(|n| n.to_str()).unwrap_or("").to_string();
    let config_path = run_dir.join(CONFIG_FILE);
    if !config_path.is_file() {
        bail!("{} is not a run folder: it has no {CONFIG_FILE} (sweep run creates them)", run_dir.display());
    }
    let (meta, mut run) = read_config(&config_path, Some(&id))?;
    // One trainer per run, whoever started it (two executors, a Slurm task and a local run, a user).
    let _lock = RunLock::acquire(run_dir)?;
    let mut status = match RunStatus::read(run_dir)? {
        Some(s) => s,
        None => RunStatus::pending(&run, &meta.name),
    };
    // config.toml describes one run; the variant's name lives in the status the runner wrote.
    run.variant = status.variant.clone();
    status.begin_attempt(run_dir)?;
    let clock = WallClock { started: Instant::now(), before: status.seconds };
    let mut log = RunLog::open(run_dir, quiet);
    let result = train(run_dir, &meta, &run, device, &mut status, &clock, &mut log);
    let end = match &result {
        Ok(Outcome::Done) => End::Done,
        Ok(Outcome::Interrupted) => End::Interrupted("interrupted (Ctrl-C or SIGTERM); `sweep run` resumes it".into()),
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
    let data = crate::data::open(&cfg.data)?;
    let evaluator = Evaluator::new(cfg, &data)?;
    ModelInfo { num_classes: data.classes.len() }.write(run_dir)?;
    let results_root = results_root(run_dir);
    let ad_device = device.clone().autodiff();
    let devices = (device, &ad_device);
    let (model, pretrain_top1) = initial_model(cfg, &evaluator.objective, &data, devices, results_root, log)?;
    let semantic = match judge(cfg, &data, device, results_root, log)? {
        Some(j) => Some(SemanticTest::new(j, cfg.color_space, &evaluator.val, cfg.train.batch_size, device)?),
        None => None,
    };
    let semantic = semantic.as_ref();
    let epochs = Epochs { run_dir, meta, cfg, data: &data, evaluator: &evaluator, semantic, device, ad_device };
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
        let epochs = self.cfg.train.epochs;
        let mut optim = optimizer(&self.cfg.train.optimizer);
        let mut model = model;
        let mut metrics = MetricsFile::open(self.run_dir)?;
        let mut start = 0;
        if let Some((epoch, dir)) = checkpoint::latest(self.run_dir) {
            model = checkpoint::load_model(&dir, model)?;
            optim = checkpoint::load_optim(&dir, optim)?;
            start = epoch.min(epochs);
            metrics.truncate_after(start)?;
            log.line(&format!("resuming after epoch {start} from {}", dir.display()));
        } else {
            metrics.truncate_after(0)?;
        }
        let mut best = Best::of(self.meta, metrics.rows());
        for epoch in start..epochs {
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
            let is_best = best.update(row.get(self.meta.metric.name()).unwrap_or(f64::NAN));
            let space = self.cfg.color_space;
            samples::write_sheet(
                &self.run_dir.join(SAMPLES_FILE),
                space,
                &self.evaluator.val,
                &eval.sample_chroma,
                SAMPLE_IMAGES,
            )?;
            curve_file::write(self.run_dir, epoch + 1, &eval.curve, is_best)?;
            // The inference view carries batch norm's current running statistics (the training view lags one update).
            checkpoint::save(self.run_dir, epoch + 1, &valid, &optim, is_best, || metrics.append(row.clone()))?;
            status.record_epoch(self.run_dir, epoch + 1, clock.seconds())?;
            let waited = 100.0 * training.data_wait / training.seconds;
            log.line(&format!("{}  (waited for data {waited:.1}% of training)", row.summary()));
        }
        Ok(Outcome::Done)
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
        let epochs = self.cfg.train.epochs;
        let bar = progress_bar(batches.len() as u64, &format!("epoch {}/{epochs}", epoch + 1), log.quiet);
        let started = Instant::now();
        let mut training = EpochTraining { loss_sum: 0.0, seen: 0, seconds: 0.0, data_wait: 0.0 };
        let (model, interrupted) = std::thread::scope(|scope| -> Result<(ColorizationNet, bool)> {
            let mut model = model;
            let (tx, rx) = std::sync::mpsc::sync_channel::<Result<HostBatch>>(2);
            let data = self.data;
            let preparer = scope.spawn(move || {
                for idx in &batches {
                    let batch = prepare(data.train.as_ref(), idx, space).map(|b| objective.host_batch(&b));
                    if tx.send(batch).is_err() {
                        break;
                    }
                }
            });
            let mut waiting = Instant::now();
            for (step, batch) in rx.iter().enumerate() {
                training.data_wait += waiting.elapsed().as_secs_f64();
                if stop_requested() {
                    return Ok((model, true));
                }
                let batch = batch?;
                let n = batch.n;
                let (stepped, value) = train_step(model, optim, objective, batch, &self.ad_device, lr);
                model = stepped;
                if !value.is_finite() {
                    bail!(
                        "the training loss became {value} at epoch {}, step {}: lower lr or check the data",
                        epoch + 1,
                        step + 1
                    );
                }
                training.loss_sum += value * n as f64;
                training.seen += n;
                bar.inc(1);
                bar.set_message(format!("loss {:.4}", training.loss_sum / training.seen as f64));
                waiting = Instant::now();
            }
            // The channel also closes when the preparing thread panicked: its message is the
            // failure's reason (unjoined, the scope would only say that a scoped thread panicked).
            if let Err(panic) = preparer.join() {
                bail!("preparing the training batches failed: {}", super::panic_message(panic.as_ref()));
            }
            Ok((model, false))
        })?;
        bar.finish_and_clear();
        training.seconds = started.elapsed().as_secs_f64();
        Ok((model, (!interrupted).then_some(training)))
    }

    fn evaluate(&self, valid: &ColorizationNet) -> Result<Evaluation> {
        let e = self.evaluator;
        let batch_size = self.cfg.train.batch_size;
        evaluate(valid, &e.objective, &e.val, batch_size, self.device, e.class_weights.as_ref(), self.semantic)
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

/// One optimisation step on one batch: upload, forward, loss, backward, optimizer update. Returns
/// the updated model and the batch's mean loss (read before the update; a non-finite value means
/// the step diverged and the caller should stop). The trainer and `benches/train_step.rs` both run
/// exactly this, so the benchmark times the real step.
pub fn train_step(
    model: ColorizationNet,
    optim: &mut ModuleOptimizer,
    objective: &Objective,
    batch: HostBatch,
    device: &Device,
    lr: f64,
) -> (ColorizationNet, f64) {
    let batch = batch.into_device(device);
    let output = model.forward(batch.gray.clone());
    let loss = objective.loss(output, &batch);
    let value = loss.clone().into_scalar::<f32>() as f64;
    let grads = GradientsParams::from_grads(loss.backward(), &model);
    (optim.step(lr, model, grads), value)
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

/// Runs `model` (inference view) over `val` in batches; with a `semantic` test, Zhang's semantic test too.
pub fn evaluate(
    model: &ColorizationNet,
    objective: &Objective,
    val: &ColorBatch,
    batch_size: usize,
    device: &Device,
    class_weights: Option<&ClassWeights>,
    semantic: Option<&SemanticTest>,
) -> Result<Evaluation> {
    let space = objective.space();
    let hw = val.side * val.side;
    let mut acc = Accumulator::new(class_weights.cloned());
    let mut colorized_logits = Vec::new();
    let mut loss_sum = 0.0;
    let mut sample_chroma = Vec::new();
    for start in (0..val.n).step_by(batch_size) {
        let batch = val.slice(start..(start + batch_size).min(val.n));
        let host = objective.host_batch(&batch);
        let on_device = host.into_device(device);
        let output = model.forward(on_device.gray.clone());
        loss_sum += objective.loss(output.clone(), &on_device).into_scalar::<f32>() as f64 * batch.n as f64;
        let raw = output.into_data().try_to_vec::<f32>()?;
        let chroma = objective.decode(raw, hw, None);
        let predicted = decoded_planar(space, &batch.gray, &chroma, hw);
        let truth = decoded_planar(space, &batch.gray, &batch.chroma, hw);
        acc.add(&predicted, &truth, hw);
        if let Some(test) = semantic {
            colorized_logits.extend(test.logits(&predicted, batch.side, batch_size, device)?);
        }
        if sample_chroma.len() < SAMPLE_IMAGES * 2 * hw {
            let take = (SAMPLE_IMAGES * 2 * hw - sample_chroma.len()).min(chroma.len());
            sample_chroma.extend_from_slice(&chroma[..take]);
        }
    }
    Ok(Evaluation {
        loss: loss_sum / val.n.max(1) as f64,
        metrics: acc.finish(),
        curve: acc.curve(),
        sample_chroma,
        semantic: semantic.map(|t| t.result(&colorized_logits, &val.labels)),
    })
}

/// What validation needs: the objective (with rebalancing weights from the training images), the
/// per-pixel weights of the rebalanced AuC and the prepared validation images. Training and
/// `sweep eval` build it the same way, so that eval on the training data repeats training's numbers.
pub struct Evaluator {
    pub objective: Objective,
    pub class_weights: Option<ClassWeights>,
    pub val: ColorBatch,
}

impl Evaluator {
    pub fn new(cfg: &RunConfig, data: &DataSet) -> Result<Evaluator> {
        let space = cfg.color_space;
        let prior_indices: Vec<usize> = (0..data.train.len().min(PRIOR_IMAGES)).collect();
        let prior_chroma = prepare(data.train.as_ref(), &prior_indices, space)?.chroma;
        let objective = Objective::new(cfg, || prior_chroma);
        let class_weights = lab_class_weights(data, &prior_indices)?;
        let val_indices: Vec<usize> = (0..data.val.len()).collect();
        let val = prepare(data.val.as_ref(), &val_indices, space)?;
        if val.n == 0 || data.train.is_empty() {
            bail!(
                "the data set has {} training and {} validation images: both must be non-empty",
                data.train.len(),
                val.n
            );
        }
        Ok(Evaluator { objective, class_weights, val })
    }
}

/// Per-pixel weights of the rebalanced AuC: the inverse smoothed prior of Lab ab bins (lambda = 0),
/// from the training images.
fn lab_class_weights(data: &DataSet, indices: &[usize]) -> Result<Option<ClassWeights>> {
    if indices.is_empty() {
        return Ok(None);
    }
    let lab = prepare(data.train.as_ref(), indices, ColorSpace::Lab)?;
    let bins = ChromaBins::new(ColorSpace::Lab, 10.0);
    let prior = bins.prior(&lab.chroma, lab.side * lab.side, 5.0);
    let weights = rebalance_weights(&prior, 0.0);
    Ok(Some(ClassWeights { bins, weights }))
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
