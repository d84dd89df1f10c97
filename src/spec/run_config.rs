//! A run's resolved config, typed: [`RunConfig`], what every layer below `spec` reads instead of
//! config keys.
//!
//! [`RunConfig::decode`] turns a resolved [`Flat`] into it when a spec is planned (every
//! [`super::RunPlan`] carries both): the flat map stays what run identity, provenance and
//! `config.toml` are made of, and this module is the one place outside the schema that reads a config
//! key by name. The values were checked against the schema and the cross-key rules just before, so
//! decoding cannot fail on any input; a key missing or mistyped here means the schema and this decoder
//! disagree, a bug in sweep that panics naming the key. A hand-edited `config.toml` is read back
//! through the same parser and checks as any spec, so its errors point at its file, line and key.
//!
//! Keys that only apply to some runs are decoded where they apply: the classification settings inside
//! [`TaskConfig::Classification`], SGD's momentum inside [`OptimizerConfig::Sgd`]. The few plain
//! numbers a lower layer always takes (the fusion width, the backbone's width, the Huber threshold)
//! hold the key's value, or its schema default where the key does not apply to the run and nothing
//! reads it.

use std::path::PathBuf;

use toml::Value;

use super::expand::short_hash;
use super::schema;
use super::value::{Flat, parse_literal};
use crate::color::ColorSpace;
use crate::data::{Augment, Crop, DataConfig, DatasetKind};
use crate::loss::{ClassificationLoss, Family, Loss, LossParams, RegressionLoss};
use crate::model::{Activation, Backbone, FeatureMode};
use crate::named::{Named, named_enum};

named_enum! {
    /// What the network predicts: the chroma itself, or a distribution over chroma bins.
    pub enum Task {
        /// Regress the two chroma channels.
        Regression = "regression",
        /// Classify each pixel over quantized chroma bins (Zhang et al. 2016).
        Classification = "classification",
    }
}

impl Task {
    /// The loss a run of this task trains with when its spec names none.
    pub fn default_loss(self) -> Loss {
        match self {
            Task::Regression => Loss::L2,
            Task::Classification => Loss::CrossEntropy,
        }
    }

    /// The task whose outputs `loss` scores.
    pub fn of(loss: Loss) -> Task {
        match loss.family() {
            Family::Regression(_) => Task::Regression,
            Family::Classification(_) => Task::Classification,
        }
    }

    /// The losses that fit this task, in [`Loss`]'s order.
    pub fn losses(self) -> Vec<Loss> {
        Loss::ALL.into_iter().filter(|&l| Task::of(l) == self).collect()
    }
}

named_enum! {
    /// The `optimizer` key.
    pub enum Optimizer {
        Adam = "adam",
        /// Adam with decoupled weight decay.
        AdamW = "adamw",
        /// SGD with momentum.
        Sgd = "sgd",
    }
}

named_enum! {
    /// The `lr_schedule` key.
    pub enum LrSchedule {
        Constant = "constant",
        /// Times `lr_gamma` every `lr_step_epochs`.
        Step = "step",
        /// Cosine annealing to `lr_min` over the run.
        Cosine = "cosine",
    }
}

named_enum! {
    /// The `backbone.pretrain` key: how a backbone without torchvision weights starts.
    pub enum Pretrain {
        /// From scratch, trained with the colorizer.
        None = "none",
        /// First trained alone as a classifier of the data set's labels on gray images.
        Classification = "classification",
    }
}

named_enum! {
    /// The `augment.crop` key: the random crop of training images (its sizes are [`Crop`]'s).
    pub enum CropKind {
        None = "none",
        /// Pad, then cut a random window (torchvision's `RandomCrop` with padding).
        Pad = "pad",
        /// torchvision's `RandomResizedCrop`.
        Resized = "resized",
    }
}

/// A run's resolved config.
#[derive(Clone, Debug)]
pub struct RunConfig {
    pub seed: u64,
    pub data: DataConfig,
    pub color_space: ColorSpace,
    pub task: TaskConfig,
    pub net: NetConfig,
    pub train: TrainConfig,
    /// Zhang et al.'s semantic test, when `judge.arch` is not "none".
    pub judge: Option<JudgeConfig>,
}

/// The task with its loss and settings.
#[derive(Clone, Debug)]
pub enum TaskConfig {
    Regression(RegressionConfig),
    Classification(ClassificationConfig),
}

#[derive(Clone, Debug)]
pub struct RegressionConfig {
    pub loss: &'static dyn RegressionLoss,
    pub params: LossParams,
    pub activation: Activation,
}

#[derive(Clone, Debug)]
pub struct ClassificationConfig {
    pub loss: &'static dyn ClassificationLoss,
    /// Grid step of the chroma bins, in the color space's chroma units.
    pub bin_size: f32,
    /// Soft-encoding of the targets; `None`: the hard nearest bin.
    pub soft: Option<SoftEncoding>,
    /// Class rebalancing of the loss; `None`: every pixel weighs the same.
    pub rebalance: Option<Rebalance>,
    /// Annealed-mean decoding temperature.
    pub temperature: f32,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SoftEncoding {
    /// Nearest bins a target spreads over.
    pub k: usize,
    /// Width of the Gaussian kernel, in chroma units.
    pub sigma: f32,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rebalance {
    /// Mix of the empirical prior with the uniform distribution.
    pub lambda: f32,
    /// Gaussian smoothing of the empirical prior, in chroma units.
    pub prior_sigma: f32,
}

/// The network's shape and starting point as the config gives them (the head's output follows from
/// the task, a pretraining classifier's classes from the data).
#[derive(Clone, Debug, PartialEq)]
pub struct NetConfig {
    pub local_widths: Vec<usize>,
    /// 1-based local layers followed by a pool, ascending.
    pub local_pool_after: Vec<usize>,
    pub backbone: Backbone,
    /// Channel multiplier of the backbone.
    pub backbone_width: f32,
    pub features: FeatureMode,
    /// Width of the global vector and of the 1x1 fusion convolution.
    pub fusion_dim: usize,
    pub head_widths: Vec<usize>,
    /// Where the backbone's weights come from ([`BackboneStart::Scratch`] without a backbone).
    pub backbone_start: BackboneStart,
    /// Keep a pretrained backbone frozen (false for a scratch backbone).
    pub freeze_backbone: bool,
}

/// Where a backbone's weights come from.
#[derive(Clone, Debug, PartialEq)]
pub enum BackboneStart {
    /// Random, trained with the colorizer.
    Scratch,
    /// A torchvision checkpoint (`backbone.weights`).
    Torchvision(PathBuf),
    /// Classification pretraining on the data set's labels.
    Pretrained(ClassifierConfig),
}

/// A classifier trained before a run and cached (a pretrained backbone, a judge).
#[derive(Clone, Debug, PartialEq)]
pub struct ClassifierConfig {
    pub epochs: u64,
    /// What determines the classifier, hashed: the name of its cache folder.
    pub cache_key: String,
}

/// Zhang et al.'s semantic judge.
#[derive(Clone, Debug, PartialEq)]
pub struct JudgeConfig {
    /// The classifier's network (never [`Backbone::None`]).
    pub arch: Backbone,
    pub width: f32,
    pub classifier: ClassifierConfig,
}

/// How the colorizer is trained.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainConfig {
    pub epochs: u64,
    pub batch_size: usize,
    pub lr: f64,
    pub optimizer: OptimizerConfig,
    pub schedule: Schedule,
    /// The random crops and flips of training images (validation images are never augmented).
    pub augment: Augment,
}

/// The optimizer with its settings.
#[derive(Clone, Debug, PartialEq)]
pub enum OptimizerConfig {
    /// L2 penalty `weight_decay`.
    Adam { betas: [f64; 2], weight_decay: f64 },
    /// Decoupled `weight_decay`.
    AdamW { betas: [f64; 2], weight_decay: f64 },
    /// L2 penalty `weight_decay`.
    Sgd { momentum: f64, weight_decay: f64 },
}

/// The learning-rate schedule with its settings.
#[derive(Clone, Debug, PartialEq)]
pub enum Schedule {
    Constant,
    /// Times `gamma` every `every` epochs.
    Step {
        every: u64,
        gamma: f64,
    },
    /// From `lr` down to `min` over the run.
    Cosine {
        min: f64,
    },
}

/// Keys that decide the images every cached classifier learns from.
const DATA_KEYS: &[&str] = &["dataset", "data_dir", "image_size", "train_images", "val_images", "data_seed"];
/// Keys besides the data's that decide the classification-pretrained backbone.
const PRETRAIN_KEYS: &[&str] =
    &["color_space", "backbone.arch", "backbone.width", "backbone.pretrain_epochs", "lr", "batch_size", "seed"];
/// Keys besides the data's that decide the judge: its architecture and training; not the colorizer,
/// and not the run's seed: a measuring instrument, it is seeded by the data seed and shared by all seeds.
const JUDGE_KEYS: &[&str] = &["judge.arch", "judge.width", "judge.epochs", "lr", "batch_size"];

impl RunConfig {
    /// Decodes a resolved config (one that [`super::plan`] checked; see the module docs).
    pub fn decode(flat: &Flat) -> RunConfig {
        RunConfig {
            seed: flat.int(schema::SEED_KEY) as u64,
            data: data(flat),
            color_space: choice(flat, "color_space"),
            task: task(flat),
            net: net(flat),
            train: train(flat),
            judge: judge(flat),
        }
    }
}

fn data(flat: &Flat) -> DataConfig {
    DataConfig {
        kind: choice::<DatasetKind>(flat, "dataset"),
        // Only data sets read from disk have a folder.
        dir: flat.get("data_dir").map_or_else(PathBuf::new, |s| s.path("data_dir")),
        image_size: flat.int("image_size") as usize,
        train_images: flat.int("train_images") as usize,
        val_images: flat.int("val_images") as usize,
        data_seed: int_or_default(flat, "data_seed") as u64,
    }
}

fn task(flat: &Flat) -> TaskConfig {
    // The loss decides the family; the cross-key rules made sure it is the task's.
    match choice::<Loss>(flat, "loss").family() {
        Family::Regression(loss) => TaskConfig::Regression(RegressionConfig {
            loss,
            params: LossParams { huber_delta: float_or_default(flat, "huber_delta") as f32 },
            activation: choice(flat, "activation"),
        }),
        Family::Classification(loss) => TaskConfig::Classification(ClassificationConfig {
            loss,
            bin_size: flat.float("bin_size") as f32,
            soft: flat
                .flag("soft_encoding")
                .then(|| SoftEncoding { k: flat.int("soft_k") as usize, sigma: flat.float("soft_sigma") as f32 }),
            rebalance: flat.flag("rebalance").then(|| Rebalance {
                lambda: flat.float("rebalance_lambda") as f32,
                prior_sigma: flat.float("prior_sigma") as f32,
            }),
            temperature: flat.float("temperature") as f32,
        }),
    }
}

fn net(flat: &Flat) -> NetConfig {
    let backbone: Backbone = choice(flat, "backbone.arch");
    let mut local_pool_after = flat.ints("local.pool_after");
    local_pool_after.sort_unstable();
    // The backbone keys only exist with a backbone.
    let backbone_start = if backbone == Backbone::None {
        BackboneStart::Scratch
    } else {
        match (flat.text("backbone.weights"), choice::<Pretrain>(flat, "backbone.pretrain")) {
            ("", Pretrain::None) => BackboneStart::Scratch,
            ("", Pretrain::Classification) => BackboneStart::Pretrained(ClassifierConfig {
                epochs: flat.int("backbone.pretrain_epochs") as u64,
                cache_key: cache_key(flat, PRETRAIN_KEYS),
            }),
            (_, _) => BackboneStart::Torchvision(flat.path("backbone.weights")),
        }
    };
    NetConfig {
        local_widths: flat.ints("local.widths"),
        local_pool_after,
        backbone,
        backbone_width: float_or_default(flat, "backbone.width") as f32,
        features: choice(flat, "features"),
        fusion_dim: int_or_default(flat, "fusion_dim") as usize,
        head_widths: flat.ints("head.widths"),
        freeze_backbone: backbone_start != BackboneStart::Scratch && flat.flag("backbone.freeze"),
        backbone_start,
    }
}

fn train(flat: &Flat) -> TrainConfig {
    let weight_decay = flat.float("weight_decay");
    let betas = || {
        let b = flat.floats("betas");
        [b[0], b[1]]
    };
    TrainConfig {
        epochs: flat.int("epochs") as u64,
        batch_size: flat.int("batch_size") as usize,
        lr: flat.float("lr"),
        optimizer: match choice::<Optimizer>(flat, "optimizer") {
            Optimizer::Adam => OptimizerConfig::Adam { betas: betas(), weight_decay },
            Optimizer::AdamW => OptimizerConfig::AdamW { betas: betas(), weight_decay },
            Optimizer::Sgd => OptimizerConfig::Sgd { momentum: flat.float("momentum"), weight_decay },
        },
        schedule: match choice::<LrSchedule>(flat, "lr_schedule") {
            LrSchedule::Constant => Schedule::Constant,
            LrSchedule::Step => {
                Schedule::Step { every: flat.int("lr_step_epochs") as u64, gamma: flat.float("lr_gamma") }
            }
            LrSchedule::Cosine => Schedule::Cosine { min: flat.float("lr_min") },
        },
        augment: augment(flat),
    }
}

/// The `augment.*` keys. `augment.flip` and `augment.crop` are left out of the resolved config while
/// they hold their defaults ([`schema::OMITTED_AT_DEFAULT`]), so they are read with them.
fn augment(flat: &Flat) -> Augment {
    let range = |key: &str| {
        let v = flat.floats(key);
        [v[0], v[1]]
    };
    let crop = match choice_or_default::<CropKind>(flat, "augment.crop") {
        CropKind::None => Crop::None,
        CropKind::Pad => Crop::Pad { pad: flat.int("augment.pad") as usize },
        CropKind::Resized => Crop::Resized { scale: range("augment.scale"), ratio: range("augment.ratio") },
    };
    Augment { flip: default_of(flat, "augment.flip").as_bool().unwrap_or_else(|| missing("augment.flip")), crop }
}

fn judge(flat: &Flat) -> Option<JudgeConfig> {
    let arch: Backbone = choice(flat, "judge.arch");
    (arch != Backbone::None).then(|| JudgeConfig {
        arch,
        width: flat.float("judge.width") as f32,
        classifier: ClassifierConfig {
            epochs: flat.int("judge.epochs") as u64,
            cache_key: cache_key(flat, JUDGE_KEYS),
        },
    })
}

/// The hash over the values of the data keys and `keys` (absent keys as empty): a cached
/// classifier's folder name.
fn cache_key(flat: &Flat, keys: &[&str]) -> String {
    let lines: Vec<String> = DATA_KEYS
        .iter()
        .chain(keys)
        .map(|k| format!("{k}={}", flat.value(k).map(|v| v.to_string()).unwrap_or_default()))
        .collect();
    short_hash(&lines.join("\n"))
}

/// A closed choice's value.
pub(super) fn choice<T: Named>(flat: &Flat, key: &str) -> T {
    T::parse(flat.text(key)).unwrap_or_else(|| missing(key))
}

/// A key's value, or its schema default where it does not apply to the run (see the module docs).
fn default_of(flat: &Flat, key: &str) -> Value {
    match flat.value(key) {
        Some(v) => v.clone(),
        None => {
            schema::key(key).and_then(|k| k.default).and_then(|d| parse_literal(d).ok()).unwrap_or_else(|| missing(key))
        }
    }
}

fn choice_or_default<T: Named>(flat: &Flat, key: &str) -> T {
    default_of(flat, key).as_str().and_then(T::parse).unwrap_or_else(|| missing(key))
}

fn int_or_default(flat: &Flat, key: &str) -> i64 {
    default_of(flat, key).as_integer().unwrap_or_else(|| missing(key))
}

fn float_or_default(flat: &Flat, key: &str) -> f64 {
    default_of(flat, key).as_float().unwrap_or_else(|| missing(key))
}

/// Typed getters of resolved values. The values were checked against the schema when the config was
/// resolved, so a wrong type or a missing key here is a bug in sweep, not in the user's spec.
impl Flat {
    pub fn int(&self, key: &str) -> i64 {
        self.value(key).and_then(Value::as_integer).unwrap_or_else(|| missing(key))
    }
    pub fn float(&self, key: &str) -> f64 {
        self.value(key).and_then(Value::as_float).unwrap_or_else(|| missing(key))
    }
    pub fn text(&self, key: &str) -> &str {
        self.str(key).unwrap_or_else(|| missing(key))
    }
    /// A path key's location (see [`super::value::Setting::path`]).
    pub fn path(&self, key: &str) -> PathBuf {
        self.get(key).map(|s| s.path(key)).unwrap_or_else(|| missing(key))
    }
    pub fn flag(&self, key: &str) -> bool {
        self.bool(key).unwrap_or_else(|| missing(key))
    }
    pub fn ints(&self, key: &str) -> Vec<usize> {
        let list = self.value(key).and_then(Value::as_array).unwrap_or_else(|| missing(key));
        list.iter().map(|v| v.as_integer().unwrap_or_else(|| missing(key)) as usize).collect()
    }
    pub fn floats(&self, key: &str) -> Vec<f64> {
        let list = self.value(key).and_then(Value::as_array).unwrap_or_else(|| missing(key));
        list.iter().map(|v| v.as_float().unwrap_or_else(|| missing(key))).collect()
    }
}

fn missing(key: &str) -> ! {
    panic!("resolved config lacks a valid `{key}` (a bug in sweep's schema handling)")
}
