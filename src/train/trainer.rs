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

use anyhow::{Result, bail};
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
use crate::model::{Backbone, BackboneInput, ColorizationNet, FeatureMode, LoadOptions, ModelConfig, Output};
use crate::rng::Rng;
use crate::spec::run_config::{LrSchedule, Optimizer, choice};
use crate::spec::{Flat, RunPlan, SweepMeta, read_config};
use crate::store::curve_file;
use crate::store::layout::{CONFIG_FILE, SAMPLES_FILE};
use crate::store::lock::RunLock;
use crate::store::log::RunLog;
use crate::store::metrics_file::{MetricsFile, MetricsRow};
use crate::store::model_info::ModelInfo;
use crate::store::protocol::stop_requested;
use crate::store::status::{End, RunStatus};

/// Images whose chroma estimates the class prior (for rebalancing and the rebalanced AuC).
const PRIOR_IMAGES: usize = 5000;
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
    let (meta, mut run) = read_config(&config_path, Some(&id)).map_err(|e| anyhow::anyhow!("{e}"))?;
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
    let cfg = &run.config;
    let epochs = cfg.int("epochs") as u64;
    let batch_size = cfg.int("batch_size") as usize;
    log.line(&format!("run {} ({}), seed {}, {} epochs", run.id, run.variant, run.seed, epochs));

    let data = crate::data::open(&cfg.data_config())?;
    let space = cfg.color_space();
    let Evaluator { objective, class_weights, val } = Evaluator::new(cfg, &data)?;

    ModelInfo { num_classes: data.classes.len() }.write(run_dir)?;
    let ad_device = device.clone().autodiff();
    let model_cfg = model_config(cfg, &objective, data.classes.len());
    let mut model =
        seeded(&ad_device, run.seed, || model_cfg.try_init(&ad_device)).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut pretrain_top1 = None;
    let results_root = run_dir.parent().and_then(Path::parent).unwrap_or(Path::new("."));
    if let Some(net) = model_cfg.backbone_config() {
        let weights = cfg.str("backbone.weights").unwrap_or("");
        if !weights.is_empty() {
            model
                .load_torchvision_backbone(weights, &LoadOptions::default())
                .map_err(|e| anyhow::anyhow!("backbone.weights = \"{weights}\": {e}"))?;
            log.line(&format!("backbone: torchvision weights from {weights}"));
        } else if cfg.str("backbone.pretrain") == Some("classification") {
            let pre = pretrain::pretrained_backbone(cfg, net, &data, device, results_root, log)?;
            model = model.load_backbone_file(&pre.path, true).map_err(|e| anyhow::anyhow!("{e}"))?;
            pretrain_top1 = Some(pre.top1);
        }
        if cfg.bool("backbone.freeze") == Some(true) {
            model = model.freeze_backbone();
        }
    }
    let semantic = match judge(cfg, &data, device, results_root, log)? {
        Some(j) => Some(SemanticTest::new(j, space, &val, batch_size, device)?),
        None => None,
    };
    let mut optim = optimizer(cfg);

    // Resume from the last complete epoch.
    let mut metrics = MetricsFile::open(run_dir)?;
    let mut start = 0;
    if let Some((epoch, dir)) = checkpoint::latest(run_dir) {
        model = checkpoint::load_model(&dir, model)?;
        optim = checkpoint::load_optim(&dir, optim)?;
        start = epoch.min(epochs);
        metrics.truncate_after(start)?;
        log.line(&format!("resuming after epoch {start} from {}", dir.display()));
    } else {
        metrics.truncate_after(0)?;
    }
    let higher = meta.higher_is_better;
    let mut best = metrics.rows().iter().filter_map(|r| r.get(meta.metric.name())).fold(None, |b: Option<f64>, v| {
        Some(match b {
            Some(b) if (higher && b >= v) || (!higher && b <= v) => b,
            _ => v,
        })
    });

    let train_len = data.train.len();
    for epoch in start..epochs {
        let lr = learning_rate(cfg, epoch, epochs);
        let mut order: Vec<usize> = (0..train_len).collect();
        Rng::derive(run.seed, epoch).shuffle(&mut order);
        let batches: Vec<Vec<usize>> = order.chunks(batch_size).map(<[usize]>::to_vec).collect();
        let bar = progress_bar(batches.len() as u64, &format!("epoch {}/{epochs}", epoch + 1), log.quiet);

        let started = Instant::now();
        let mut loss_sum = 0.0f64;
        let mut seen = 0usize;
        // Seconds the step waited for the data thread: the data path must not be what training waits on.
        let mut data_wait = 0.0f64;
        let (trained, interrupted) = std::thread::scope(|scope| -> Result<(ColorizationNet, bool)> {
            let mut model = model;
            // Batches are decoded, converted and encoded on another thread while the model trains.
            let (tx, rx) = std::sync::mpsc::sync_channel::<Result<HostBatch>>(2);
            let (data, objective) = (&data, &objective);
            scope.spawn(move || {
                for idx in &batches {
                    let batch = prepare(data.train.as_ref(), idx, space).map(|b| objective.host_batch(&b));
                    if tx.send(batch).is_err() {
                        break;
                    }
                }
            });
            let mut waiting = Instant::now();
            for (step, batch) in rx.iter().enumerate() {
                data_wait += waiting.elapsed().as_secs_f64();
                if stop_requested() {
                    return Ok((model, true));
                }
                let batch = batch?;
                let n = batch.n;
                let (stepped, value) = train_step(model, &mut optim, objective, batch, &ad_device, lr);
                model = stepped;
                if !value.is_finite() {
                    bail!(
                        "the training loss became {value} at epoch {}, step {}: lower lr or check the data",
                        epoch + 1,
                        step + 1
                    );
                }
                loss_sum += value * n as f64;
                seen += n;
                bar.inc(1);
                bar.set_message(format!("loss {:.4}", loss_sum / seen as f64));
                waiting = Instant::now();
            }
            Ok((model, false))
        })?;
        model = trained;
        bar.finish_and_clear();
        if interrupted {
            log.line(&format!("interrupted during epoch {}", epoch + 1));
            return Ok(Outcome::Interrupted);
        }
        let train_seconds = started.elapsed().as_secs_f64();

        let valid = model.valid();
        let eval = evaluate(&valid, &objective, &val, batch_size, device, class_weights.as_ref(), semantic.as_ref())?;
        let row = MetricsRow {
            epoch: epoch + 1,
            train_loss: loss_sum / seen.max(1) as f64,
            val_loss: eval.loss,
            metrics: eval.metrics,
            images_per_s: seen as f64 / train_seconds,
            seconds: started.elapsed().as_secs_f64(),
            lr,
            pretrain_top1,
            semantic: eval.semantic,
        };
        let value = row.get(meta.metric.name()).unwrap_or(f64::NAN);
        let is_best = match best {
            None => true,
            Some(b) => (higher && value > b) || (!higher && value < b),
        };
        if is_best {
            best = Some(value);
        }
        samples::write_sheet(&run_dir.join(SAMPLES_FILE), space, &val, &eval.sample_chroma, SAMPLE_IMAGES)?;
        curve_file::write(run_dir, epoch + 1, &eval.curve, is_best)?;
        // The inference view carries batch norm's current running statistics (the training view lags one update).
        checkpoint::save(run_dir, epoch + 1, &valid, &optim, is_best, || metrics.append(row.clone()))?;
        status.record_epoch(run_dir, epoch + 1, clock.seconds())?;
        log.line(&format!(
            "{}  (waited for data {:.1}% of training)",
            row.summary(),
            100.0 * data_wait / train_seconds
        ));
    }
    Ok(Outcome::Done)
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
        let raw = output.into_data().try_to_vec::<f32>().map_err(|e| anyhow::anyhow!("{e:?}"))?;
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
    pub fn new(cfg: &Flat, data: &DataSet) -> Result<Evaluator> {
        let space = cfg.color_space();
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

/// The network a resolved config describes.
pub fn model_config(cfg: &Flat, objective: &Objective, num_classes: usize) -> ModelConfig {
    let backbone: Backbone = choice(cfg, "backbone.arch");
    let features: FeatureMode = choice(cfg, "features");
    let output = match objective {
        Objective::Classification { .. } => Output::Classification { bins: objective.output_channels() },
        Objective::Regression { .. } => Output::Regression(choice(cfg, "activation")),
    };
    let mut pool_after = cfg.ints("local.pool_after");
    pool_after.sort_unstable();
    let weights = cfg.str("backbone.weights").is_some_and(|w| !w.is_empty());
    ModelConfig {
        image_size: cfg.int("image_size") as usize,
        local_widths: cfg.ints("local.widths"),
        local_pool_after: pool_after,
        backbone,
        backbone_width: cfg.value("backbone.width").and_then(toml::Value::as_float).unwrap_or(1.0) as f32,
        backbone_input: if weights { BackboneInput::ImagenetRgb } else { BackboneInput::Gray },
        features,
        fusion_dim: cfg.value("fusion_dim").and_then(toml::Value::as_integer).unwrap_or(256) as usize,
        head_widths: cfg.ints("head.widths"),
        output,
        num_classes: if cfg.str("backbone.pretrain") == Some("classification") { num_classes } else { 0 },
    }
}

/// The optimizer a resolved config describes.
pub fn optimizer(cfg: &Flat) -> ModuleOptimizer {
    let wd = cfg.float("weight_decay") as f32;
    let decay = (wd > 0.0).then(|| WeightDecayConfig::new(wd));
    match choice::<Optimizer>(cfg, "optimizer") {
        Optimizer::Sgd => SgdConfig::new()
            .with_momentum(Some(MomentumConfig::new().with_momentum(cfg.float("momentum"))))
            .with_weight_decay(decay)
            .init(),
        Optimizer::AdamW => {
            let b = cfg.floats("betas");
            AdamWConfig::new().with_beta_1(b[0] as f32).with_beta_2(b[1] as f32).with_weight_decay(wd).init()
        }
        Optimizer::Adam => {
            let b = cfg.floats("betas");
            AdamConfig::new().with_beta_1(b[0] as f32).with_beta_2(b[1] as f32).with_weight_decay(decay).init()
        }
    }
}

/// The learning rate of epoch `epoch` (0-based): constant, step (times lr_gamma every lr_step_epochs)
/// or cosine (from lr down to lr_min over the run).
pub fn learning_rate(cfg: &Flat, epoch: u64, epochs: u64) -> f64 {
    let lr = cfg.float("lr");
    match choice::<LrSchedule>(cfg, "lr_schedule") {
        LrSchedule::Step => lr * cfg.float("lr_gamma").powi((epoch / cfg.int("lr_step_epochs") as u64) as i32),
        LrSchedule::Cosine => {
            let min = cfg.float("lr_min");
            let t = epoch as f64 / epochs.max(1) as f64;
            min + 0.5 * (lr - min) * (1.0 + (std::f64::consts::PI * t).cos())
        }
        LrSchedule::Constant => lr,
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
