//! The config schema: every key a run can set, its type, default, documentation and when it applies.
//!
//! This table is the single source of truth: spec validation, `--set` typing, "did you mean"
//! suggestions, conditional-key checks and `sweep keys` all read it. To add a setting, add a [`Key`]
//! here, then decode it in `run_config.rs` ([`super::RunConfig`]). The choice lists are the
//! [`Named`] enums' names, so a choice the schema accepts is one the code implements.

use super::run_config::{CropKind, LrSchedule, Optimizer, Pretrain, Task};
use super::value::Flat;
use crate::color::ColorSpace;
use crate::data::DatasetKind;
use crate::loss::Loss;
use crate::model::{Activation, Backbone, FeatureMode};
use crate::named::Named;

/// The type (and valid range) of a key's value.
#[derive(Clone, Copy, Debug)]
pub enum Kind {
    Int {
        min: i64,
        max: i64,
    },
    /// `min_open`: the minimum itself is not allowed (e.g. a learning rate must be > 0).
    Float {
        min: f64,
        max: f64,
        min_open: bool,
    },
    Bool,
    /// A path. A relative one resolves against the folder of the spec file that gives it, or against
    /// the current folder when it comes from `--set` or the default ([`super::value::Setting::path`]).
    Path,
    Choice(&'static [&'static str]),
    /// `empty`: whether `[]` is allowed (no pooling, no hidden head layer); `longest`: the most
    /// items (a network of thousands of layers would not train).
    IntList {
        min: i64,
        max: i64,
        empty: bool,
        longest: usize,
    },
    FloatList {
        min: f64,
        max: f64,
        len: usize,
    },
}

/// One config key.
pub struct Key {
    /// Canonical dotted name, e.g. `backbone.pretrain`.
    pub name: &'static str,
    pub kind: Kind,
    /// Default as a TOML literal; `None` when the default is derived from other keys (see `derive`).
    pub default: Option<&'static str>,
    pub doc: &'static str,
    /// When the key means something; `None` = always.
    pub when: Option<Condition>,
}

/// When a key applies, as a predicate on the other (resolved) keys plus its description for errors.
#[derive(Clone, Copy)]
pub struct Condition {
    pub holds: fn(&Flat) -> bool,
    /// Completes "only applies when ...".
    pub describe: &'static str,
}

const POS_INT: Kind = Kind::Int { min: 1, max: i64::MAX };
const COUNT: Kind = Kind::Int { min: 0, max: i64::MAX };
const POS_FLOAT: Kind = Kind::Float { min: 0.0, max: f64::INFINITY, min_open: true };
const UNIT: Kind = Kind::Float { min: 0.0, max: 1.0, min_open: false };
/// An image count: synthetic data makes exactly that many, and an epoch orders them all in memory,
/// so it is bounded (ten times ImageNet's training set).
const IMAGES: Kind = Kind::Int { min: 0, max: 10_000_000 };

/// Keys left out of the resolved config while they hold their default: they came after runs had
/// published ids, and "off" must keep those ids (setting one to its default is the same run as not
/// setting it; any other value is part of the run's identity).
pub const OMITTED_AT_DEFAULT: &[&str] = &["augment.flip", "augment.crop"];

/// Whether `key` holds the choice `value`.
fn is(flat: &Flat, key: &str, value: impl Named) -> bool {
    flat.str(key) == Some(value.name())
}
fn classification(f: &Flat) -> bool {
    is(f, "task", Task::Classification)
}
fn has_backbone(f: &Flat) -> bool {
    !is(f, "backbone.arch", Backbone::None)
}
fn has_judge(f: &Flat) -> bool {
    !is(f, "judge.arch", Backbone::None)
}

/// Every key, in the order `sweep keys` and `config.toml` list them.
pub const KEYS: &[Key] = &[
    // --- data ---
    Key {
        name: "dataset",
        kind: Kind::Choice(&DatasetKind::NAMES),
        default: Some("\"synthetic\""),
        when: None,
        doc: "Data set: the built-in procedural `synthetic` set (no download), CIFAR-10/100 binaries, or an image `folder` (a sub-folder per class).",
    },
    Key {
        name: "data_dir",
        kind: Kind::Path,
        default: Some("\"data\""),
        when: Some(Condition {
            holds: |f| !is(f, "dataset", DatasetKind::Synthetic),
            describe: "dataset is not \"synthetic\"",
        }),
        doc: "Where the data set lives: the folder `sweep data fetch` unpacked into (or its parent), or the class folders.",
    },
    Key {
        name: "image_size",
        kind: Kind::Int { min: 8, max: 4096 },
        default: Some("32"),
        when: None,
        doc: "Side of the square images the model sees, in pixels (CIFAR is 32; other sizes are resized).",
    },
    Key {
        name: "train_images",
        kind: IMAGES,
        default: Some("0"),
        when: None,
        doc: "Use at most this many training images (0 = all; synthetic: 0 means 5000).",
    },
    Key {
        name: "val_images",
        kind: IMAGES,
        default: Some("0"),
        when: None,
        doc: "Use at most this many validation images (0 = all; synthetic: 0 means 1000).",
    },
    Key {
        name: "data_seed",
        kind: COUNT,
        default: Some("0"),
        when: Some(Condition {
            holds: |f| is(f, "dataset", DatasetKind::Synthetic) || is(f, "dataset", DatasetKind::Folder),
            describe: "dataset is \"synthetic\" or \"folder\"",
        }),
        doc: "Seed of the synthetic generator, and of the train/validation split of a folder without train/ and val/.",
    },
    // --- augmentation (training images only) ---
    Key {
        name: "augment.flip",
        kind: Kind::Bool,
        default: Some("false"),
        when: None,
        doc: "Flip each training image horizontally with probability 1/2 (torchvision's RandomHorizontalFlip), after the crop. Validation images are never augmented. While false it is left out of the run's config (and identity).",
    },
    Key {
        name: "augment.crop",
        kind: Kind::Choice(&CropKind::NAMES),
        default: Some("\"none\""),
        when: None,
        doc: "Random crop of each training image, before its gray/chroma split: none; pad (pad augment.pad pixels of black on every side, cut a random image_size window: torchvision's RandomCrop(32, padding=4), for CIFAR); resized (torchvision's RandomResizedCrop: an area fraction in augment.scale and an aspect ratio in augment.ratio of the full-size photo, resized to image_size; for folders). While none it is left out of the run's config (and identity).",
    },
    Key {
        name: "augment.pad",
        kind: Kind::Int { min: 1, max: 1024 },
        default: Some("4"),
        when: Some(Condition { holds: |f| is(f, "augment.crop", CropKind::Pad), describe: "augment.crop = \"pad\"" }),
        doc: "Pixels of black padding on every side before the random crop (4 is the usual for 32-pixel CIFAR).",
    },
    Key {
        name: "augment.scale",
        kind: Kind::FloatList { min: 0.0, max: 1.0, len: 2 },
        default: Some("[0.08, 1.0]"),
        when: Some(Condition {
            holds: |f| is(f, "augment.crop", CropKind::Resized),
            describe: "augment.crop = \"resized\"",
        }),
        doc: "Range of the area fraction of the full image that a random resized crop covers, lowest first (torchvision's 0.08 to 1).",
    },
    Key {
        name: "augment.ratio",
        kind: Kind::FloatList { min: 0.01, max: 100.0, len: 2 },
        default: Some("[0.75, 1.3333333333333333]"),
        when: Some(Condition {
            holds: |f| is(f, "augment.crop", CropKind::Resized),
            describe: "augment.crop = \"resized\"",
        }),
        doc: "Range of the aspect ratio (width / height) of a random resized crop, lowest first, drawn log-uniformly (torchvision's 3/4 to 4/3).",
    },
    // --- color and task ---
    Key {
        name: "color_space",
        kind: Kind::Choice(&ColorSpace::NAMES),
        default: Some("\"lab\""),
        when: None,
        doc: "Lab (L in, ab out), YUV (Y in, UV out) or HSV (V in, HS out; hue is circular).",
    },
    Key {
        name: "task",
        kind: Kind::Choice(&Task::NAMES),
        default: Some("\"regression\""),
        when: None,
        doc: "Regress the two chroma channels, or classify each pixel over quantized chroma bins (Zhang et al. 2016).",
    },
    Key {
        name: "loss",
        kind: Kind::Choice(&Loss::NAMES),
        default: None,
        when: None,
        doc: "l2, l1 or huber for regression; cross_entropy for classification. Default: l2 or cross_entropy by task.",
    },
    Key {
        name: "huber_delta",
        // In normalised units, where errors are at most a few: far above, Huber is L2 (and f32 overflows).
        kind: Kind::Float { min: 0.0, max: 1000.0, min_open: true },
        default: Some("1.0"),
        when: Some(Condition { holds: |f| is(f, "loss", Loss::Huber), describe: "loss = \"huber\"" }),
        doc: "Huber loss threshold, in the model's normalised chroma units ([-1, 1] for tanh).",
    },
    Key {
        name: "activation",
        kind: Kind::Choice(&Activation::NAMES),
        default: Some("\"tanh\""),
        when: Some(Condition { holds: |f| is(f, "task", Task::Regression), describe: "task = \"regression\"" }),
        doc: "Final activation of the regression head: tanh (targets scaled to [-1, 1]), sigmoid ([0, 1]) or linear ([-1, 1]).",
    },
    Key {
        name: "bin_size",
        // Finer than 1 the gamut sample could leave holes (see `ChromaBins`); coarser than 1000 every
        // color space has one bin.
        kind: Kind::Float { min: crate::color::quantize::MIN_BIN_SIZE as f64, max: 1000.0, min_open: false },
        default: Some("10.0"),
        when: Some(Condition { holds: classification, describe: "task = \"classification\"" }),
        doc: "Grid step of the chroma bins, in the color space's chroma units (Lab ab: 10 gives Zhang et al.'s grid).",
    },
    Key {
        name: "soft_encoding",
        kind: Kind::Bool,
        default: Some("true"),
        when: Some(Condition { holds: classification, describe: "task = \"classification\"" }),
        doc: "Spread each target over its nearest bins with a Gaussian kernel (true) or use the hard nearest bin (false).",
    },
    Key {
        name: "soft_k",
        kind: POS_INT,
        default: Some("5"),
        when: Some(Condition {
            holds: |f| classification(f) && f.bool("soft_encoding") == Some(true),
            describe: "soft_encoding = true",
        }),
        doc: "Number of nearest bins a soft-encoded target spreads over (the paper says 5, its Caffe layer uses 10).",
    },
    Key {
        name: "soft_sigma",
        kind: POS_FLOAT,
        default: Some("5.0"),
        when: Some(Condition {
            holds: |f| classification(f) && f.bool("soft_encoding") == Some(true),
            describe: "soft_encoding = true",
        }),
        doc: "Width of the soft-encoding Gaussian kernel, in chroma units.",
    },
    Key {
        name: "rebalance",
        kind: Kind::Bool,
        default: Some("false"),
        when: Some(Condition { holds: classification, describe: "task = \"classification\"" }),
        doc: "Weight each pixel's loss by the rarity of its color class (Zhang et al. 2016 class rebalancing).",
    },
    Key {
        name: "rebalance_lambda",
        kind: UNIT,
        default: Some("0.5"),
        when: Some(Condition {
            holds: |f| classification(f) && f.bool("rebalance") == Some(true),
            describe: "rebalance = true",
        }),
        doc: "Mix of the empirical prior with the uniform distribution in the rebalancing weights: w ~ ((1-lambda) p + lambda/Q)^-1.",
    },
    Key {
        name: "prior_sigma",
        kind: POS_FLOAT,
        default: Some("5.0"),
        when: Some(Condition {
            holds: |f| classification(f) && f.bool("rebalance") == Some(true),
            describe: "rebalance = true",
        }),
        doc: "Gaussian smoothing of the empirical chroma-bin prior, in chroma units.",
    },
    Key {
        name: "temperature",
        kind: POS_FLOAT,
        default: Some("0.38"),
        when: Some(Condition { holds: classification, describe: "task = \"classification\"" }),
        doc: "Annealed-mean decoding temperature T: 1 gives the mean, towards 0 the mode (Zhang et al. use 0.38).",
    },
    // --- model ---
    Key {
        name: "local.widths",
        kind: Kind::IntList { min: 1, max: 4096, empty: false, longest: 32 },
        default: Some("[64, 128, 128]"),
        when: None,
        doc: "Filters of the local network's 3x3 conv layers (each with batch norm and ReLU); the length sets the depth.",
    },
    Key {
        name: "local.pool_after",
        kind: Kind::IntList { min: 1, max: 64, empty: true, longest: 32 },
        default: Some("[2]"),
        when: None,
        doc: "1-based indices of the local conv layers followed by a 2x2 max pooling ([] = none).",
    },
    Key {
        name: "backbone.arch",
        kind: Kind::Choice(&Backbone::NAMES),
        default: Some("\"none\""),
        when: None,
        doc: "Global-feature backbone: none, a VGG-16-style or a ResNet-18-style network. `backbone = \"vgg16\"` is short for this key.",
    },
    Key {
        name: "backbone.width",
        kind: Kind::Float { min: 0.0, max: 4.0, min_open: true },
        default: Some("1.0"),
        when: Some(Condition { holds: has_backbone, describe: "backbone.arch is not \"none\"" }),
        doc: "Channel multiplier of the backbone (1.0 = torchvision's sizes; smaller for quick CPU runs).",
    },
    Key {
        name: "backbone.pretrain",
        kind: Kind::Choice(&Pretrain::NAMES),
        default: Some("\"none\""),
        when: Some(Condition { holds: has_backbone, describe: "backbone.arch is not \"none\"" }),
        doc: "Train the backbone from scratch with the colorizer (none), or first as a classifier of the data set's labels on gray images (classification).",
    },
    Key {
        name: "backbone.pretrain_epochs",
        kind: POS_INT,
        default: Some("5"),
        when: Some(Condition {
            holds: |f| has_backbone(f) && is(f, "backbone.pretrain", Pretrain::Classification),
            describe: "backbone.pretrain = \"classification\"",
        }),
        doc: "Epochs of classification pretraining (shared by every run with the same backbone and data).",
    },
    Key {
        name: "backbone.weights",
        kind: Kind::Path,
        default: Some("\"\""),
        when: Some(Condition { holds: has_backbone, describe: "backbone.arch is not \"none\"" }),
        doc: "torchvision weights to start from (.pth or .safetensors of vgg16 / resnet18); empty = none.",
    },
    Key {
        name: "backbone.freeze",
        kind: Kind::Bool,
        default: Some("true"),
        when: Some(Condition {
            holds: |f| {
                has_backbone(f)
                    && (is(f, "backbone.pretrain", Pretrain::Classification)
                        || f.str("backbone.weights").is_some_and(|w| !w.is_empty()))
            },
            describe: "the backbone is pretrained (backbone.pretrain or backbone.weights)",
        }),
        doc: "Keep a pretrained backbone frozen (true) or fine-tune it with the colorizer (false).",
    },
    Key {
        name: "features",
        kind: Kind::Choice(&FeatureMode::NAMES),
        default: None,
        when: None,
        doc: "How global features meet the local ones: none (local), fusion (Iizuka et al. 2016) or hypercolumn (Larsson et al. 2016). Default: fusion with a backbone, local without.",
    },
    Key {
        name: "fusion_dim",
        // The fusion layer holds fusion_dim^2 weights.
        kind: Kind::Int { min: 1, max: 16384 },
        default: Some("256"),
        when: Some(Condition {
            holds: |f| !is(f, "features", FeatureMode::Local),
            describe: "features is \"fusion\" or \"hypercolumn\"",
        }),
        doc: "Width of the global vector and of the 1x1 fusion convolution.",
    },
    Key {
        name: "head.widths",
        kind: Kind::IntList { min: 1, max: 4096, empty: true, longest: 32 },
        default: Some("[64, 64]"),
        when: None,
        doc: "Filters of the colorization head's 3x3 conv layers, before the per-pixel (1x1) output ([] = the dense output alone).",
    },
    // --- training ---
    Key { name: "epochs", kind: POS_INT, default: Some("10"), when: None, doc: "Training epochs." },
    Key { name: "batch_size", kind: POS_INT, default: Some("64"), when: None, doc: "Images per training step." },
    Key {
        name: "optimizer",
        kind: Kind::Choice(&Optimizer::NAMES),
        default: Some("\"adam\""),
        when: None,
        doc: "adam, adamw (decoupled weight decay) or sgd (with momentum).",
    },
    Key { name: "lr", kind: POS_FLOAT, default: Some("0.001"), when: None, doc: "Learning rate." },
    Key {
        name: "weight_decay",
        kind: Kind::Float { min: 0.0, max: f64::INFINITY, min_open: false },
        default: Some("0.0"),
        when: None,
        doc: "Weight decay (L2 penalty for adam and sgd, decoupled for adamw).",
    },
    Key {
        name: "betas",
        kind: Kind::FloatList { min: 0.0, max: 1.0, len: 2 },
        default: Some("[0.9, 0.999]"),
        when: Some(Condition {
            holds: |f| !is(f, "optimizer", Optimizer::Sgd),
            describe: "optimizer is \"adam\" or \"adamw\"",
        }),
        doc: "Adam's beta1 and beta2.",
    },
    Key {
        name: "momentum",
        kind: UNIT,
        default: Some("0.9"),
        when: Some(Condition { holds: |f| is(f, "optimizer", Optimizer::Sgd), describe: "optimizer = \"sgd\"" }),
        doc: "SGD momentum.",
    },
    Key {
        name: "lr_schedule",
        kind: Kind::Choice(&LrSchedule::NAMES),
        default: Some("\"constant\""),
        when: None,
        doc: "constant, step (multiply by lr_gamma every lr_step_epochs) or cosine (anneal to lr_min over the run).",
    },
    Key {
        name: "lr_step_epochs",
        kind: POS_INT,
        default: Some("10"),
        when: Some(Condition { holds: |f| is(f, "lr_schedule", LrSchedule::Step), describe: "lr_schedule = \"step\"" }),
        doc: "Epochs between learning-rate steps.",
    },
    Key {
        name: "lr_gamma",
        kind: Kind::Float { min: 0.0, max: 1.0, min_open: true },
        default: Some("0.1"),
        when: Some(Condition { holds: |f| is(f, "lr_schedule", LrSchedule::Step), describe: "lr_schedule = \"step\"" }),
        doc: "Factor applied to the learning rate at each step.",
    },
    Key {
        name: "lr_min",
        kind: Kind::Float { min: 0.0, max: f64::INFINITY, min_open: false },
        default: Some("0.0"),
        when: Some(Condition {
            holds: |f| is(f, "lr_schedule", LrSchedule::Cosine),
            describe: "lr_schedule = \"cosine\"",
        }),
        doc: "Final learning rate of the cosine schedule.",
    },
    // --- evaluation ---
    Key {
        name: "judge.arch",
        kind: Kind::Choice(&Backbone::NAMES),
        default: Some("\"none\""),
        when: None,
        doc: "Zhang et al.'s semantic test: a classifier of the data set's labels trained on the true-colour training images (vgg16 or resnet18; none = no test), trained once and cached under <results>/.judge/. Every epoch logs its top-1 on the colorized (top1_colorized), gray (top1_gray) and true-colour (top1_color) validation images.",
    },
    Key {
        name: "judge.width",
        kind: Kind::Float { min: 0.0, max: 4.0, min_open: true },
        default: Some("1.0"),
        when: Some(Condition { holds: has_judge, describe: "judge.arch is not \"none\"" }),
        doc: "Channel multiplier of the judge (1.0 = torchvision's sizes).",
    },
    Key {
        name: "judge.epochs",
        kind: POS_INT,
        default: Some("10"),
        when: Some(Condition { holds: has_judge, describe: "judge.arch is not \"none\"" }),
        doc: "Training epochs of the judge (with the run's lr and batch size).",
    },
];

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Key({})", self.name)
    }
}

/// Tables whose string value is shorthand for one of their keys (`backbone = "vgg16"`).
pub const SHORTHANDS: &[(&str, &str)] = &[("backbone", "backbone.arch"), ("judge", "judge.arch")];

/// The per-run seed is not a [`Key`]: it comes from `[sweep] seeds`.
pub const SEED_KEY: &str = "seed";

pub fn key(name: &str) -> Option<&'static Key> {
    KEYS.iter().find(|k| k.name == name)
}

/// Names a user may write, for "did you mean" suggestions.
pub fn key_names() -> impl Iterator<Item = &'static str> {
    KEYS.iter().map(|k| k.name).chain(SHORTHANDS.iter().map(|s| s.0))
}

impl Kind {
    /// What a valid value looks like, for error messages.
    pub fn describe(&self) -> String {
        match *self {
            Kind::Int { min, max } if max == i64::MAX => format!("an integer >= {min}"),
            Kind::Int { min, max } => format!("an integer from {min} to {max}"),
            Kind::Float { min, max, min_open } => {
                let lo = if min_open { ">" } else { ">=" };
                if max.is_infinite() {
                    format!("a number {lo} {min}")
                } else {
                    format!("a number {lo} {min} and <= {max}")
                }
            }
            Kind::Bool => "true or false".into(),
            Kind::Path => "a path (a string)".into(),
            Kind::Choice(c) => format!("one of {}", quoted_list(c)),
            Kind::IntList { min, empty: false, longest, .. } => {
                format!("a non-empty list of up to {longest} integers >= {min}")
            }
            Kind::IntList { min, empty: true, longest, .. } => {
                format!("a list of up to {longest} integers >= {min} (may be empty)")
            }
            Kind::FloatList { min, max, len } => format!("a list of {len} numbers from {min} to {max}"),
        }
    }
}

/// `"a", "b" or "c"`.
pub fn quoted_list(items: &[&str]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| format!("\"{s}\"")).collect();
    match quoted.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        _ => quoted.join(""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_default_parses_and_is_valid() {
        for k in KEYS {
            if let Some(d) = k.default {
                let v = super::super::value::parse_literal(d).unwrap();
                super::super::value::check(k, &v).unwrap_or_else(|e| panic!("default of {}: {e}", k.name));
            }
        }
    }

    #[test]
    fn names_are_unique_and_lists_read_well() {
        let mut names: Vec<_> = key_names().collect();
        names.sort();
        let n = names.len();
        names.dedup();
        assert_eq!(n, names.len());
        assert_eq!(quoted_list(&["a", "b", "c"]), "\"a\", \"b\" or \"c\"");
        assert_eq!(quoted_list(&["a"]), "\"a\"");
    }
}
