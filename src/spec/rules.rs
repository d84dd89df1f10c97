//! The rules that tie several keys together: defaults derived from other keys ([`derive`]) and the
//! combinations a run cannot train ([`cross_check`]), each error pointing at the key the user wrote
//! last.

use toml::Value;

use super::error::Diagnostic;
use super::run_config::{Optimizer, Pretrain, Task, choice};
use super::schema::quoted_list;
use super::value::{Flat, Layer, Origin, Setting};
use crate::color::ColorSpace;
use crate::color::quantize::ChromaBins;
use crate::loss::Loss;
use crate::model::{Backbone, FeatureMode};
use crate::named::Named;

/// Sets the keys whose default depends on others: the loss from the task, the features from the
/// backbone.
pub fn derive(flat: &mut Flat) {
    let derived = |v: &str| Setting { value: Value::String(v.into()), origin: Origin::Derived, layer: Layer::Default };
    if !flat.contains("loss") {
        let loss = choice::<Task>(flat, "task").default_loss();
        flat.set("loss", derived(loss.name()));
    }
    if !flat.contains("features") {
        let features = if choice::<Backbone>(flat, "backbone.arch") == Backbone::None {
            FeatureMode::Local
        } else {
            FeatureMode::Fusion
        };
        flat.set("features", derived(features.name()));
    }
}

/// Checks the rules that tie several keys of a resolved config together.
pub fn cross_check(flat: &Flat) -> Result<(), Vec<Diagnostic>> {
    let checks = Checks { flat };
    let mut errors = Vec::new();
    checks.loss_fits_task(&mut errors);
    checks.features_fit_backbone(&mut errors);
    checks.one_backbone_start(&mut errors);
    checks.pooling_fits_image_size(&mut errors);
    checks.networks_fit_image_size(&mut errors);
    checks.augment_ranges_ascend(&mut errors);
    checks.bins_fit_classification(&mut errors);
    checks.adam_betas_below_one(&mut errors);
    if errors.is_empty() { Ok(()) } else { Err(errors) }
}

struct Checks<'a> {
    flat: &'a Flat,
}

impl Checks<'_> {
    fn origin_of(&self, key: &str) -> Origin {
        self.flat.get(key).map(|s| s.origin.clone()).unwrap_or(Origin::Default)
    }

    /// Points at whichever of two keys the user wrote last (variant over base over default).
    fn blame(&self, a: &str, b: &str) -> Origin {
        let layer = |k: &str| self.flat.get(k).map(|s| s.layer).unwrap_or(Layer::Default);
        if layer(a) >= layer(b) { self.origin_of(a) } else { self.origin_of(b) }
    }

    fn loss_fits_task(&self, errors: &mut Vec<Diagnostic>) {
        let task: Task = choice(self.flat, "task");
        let loss: Loss = choice(self.flat, "loss");
        if Task::of(loss) != task {
            let fits: Vec<&str> = task.losses().into_iter().map(Loss::name).collect();
            errors.push(
                Diagnostic::new(
                    format!("loss = \"{loss}\" does not fit task = \"{task}\""),
                    self.blame("loss", "task"),
                )
                .help(format!("task = \"{task}\" trains with {}", quoted_list(&fits))),
            );
        }
    }

    fn features_fit_backbone(&self, errors: &mut Vec<Diagnostic>) {
        let arch: Backbone = choice(self.flat, "backbone.arch");
        let features: FeatureMode = choice(self.flat, "features");
        let blame = || self.blame("features", "backbone.arch");
        let nets: Vec<&str> = Backbone::NAMES.iter().copied().filter(|&n| n != Backbone::None.name()).collect();
        match (arch, features) {
            (Backbone::None, FeatureMode::Local) => {}
            (Backbone::None, FeatureMode::Fusion | FeatureMode::Hypercolumn) => errors.push(
                Diagnostic::new(
                    format!("features = \"{features}\" needs global features, but backbone = \"none\""),
                    blame(),
                )
                .help(format!("set backbone = {}, or features = \"local\"", quoted_list(&nets))),
            ),
            (_, FeatureMode::Local) => errors.push(
                Diagnostic::new(format!("backbone = \"{arch}\" is unused with features = \"local\""), blame())
                    .help("use features = \"fusion\" or \"hypercolumn\", or backbone = \"none\""),
            ),
            (_, FeatureMode::Fusion | FeatureMode::Hypercolumn) => {}
        }
    }

    fn one_backbone_start(&self, errors: &mut Vec<Diagnostic>) {
        let weights = self.flat.str("backbone.weights").unwrap_or("");
        let pretrain = self.flat.str("backbone.pretrain").and_then(Pretrain::parse);
        if !weights.is_empty() && pretrain == Some(Pretrain::Classification) {
            errors.push(
                Diagnostic::new(
                    "backbone.weights and backbone.pretrain = \"classification\" are both set",
                    self.blame("backbone.weights", "backbone.pretrain"),
                )
                .help("start the backbone from torchvision weights or from classification pretraining, not both"),
            );
        }
    }

    fn pooling_fits_image_size(&self, errors: &mut Vec<Diagnostic>) {
        let widths = self.flat.ints("local.widths");
        let pools = self.flat.ints("local.pool_after");
        if let Some(bad) = pools.iter().find(|&&p| p > widths.len()) {
            errors.push(
                Diagnostic::new(
                    format!("local.pool_after names layer {bad}, but local.widths has {} layers", widths.len()),
                    self.blame("local.pool_after", "local.widths"),
                )
                .help("give 1-based indices of layers in local.widths"),
            );
        }
        let mut unique = pools.clone();
        unique.sort_unstable();
        unique.dedup();
        if unique.len() != pools.len() {
            errors.push(Diagnostic::new("local.pool_after names a layer twice", self.origin_of("local.pool_after")));
        }
        let size = self.flat.int("image_size");
        let factor = 1i64 << unique.len().min(16);
        if size % factor != 0 {
            errors.push(
                Diagnostic::new(
                    format!(
                        "image_size = {size} is not divisible by {factor}, the local network's {} poolings",
                        unique.len()
                    ),
                    self.blame("image_size", "local.pool_after"),
                )
                .help(format!("use an image_size that is a multiple of {factor}")),
            );
        }
    }

    /// The backbones and judges downsample by 32.
    fn networks_fit_image_size(&self, errors: &mut Vec<Diagnostic>) {
        let size = self.flat.int("image_size");
        if size % 32 == 0 {
            return;
        }
        let arch: Backbone = choice(self.flat, "backbone.arch");
        if arch != Backbone::None {
            errors.push(
                Diagnostic::new(
                    format!("image_size = {size} does not suit backbone = \"{arch}\", which downsamples by 32"),
                    self.blame("image_size", "backbone.arch"),
                )
                .help("use an image_size that is a multiple of 32 (32 for CIFAR, 224 for ImageNet-style folders)"),
            );
        }
        let judge: Backbone = choice(self.flat, "judge.arch");
        if judge != Backbone::None {
            errors.push(
                Diagnostic::new(
                    format!("judge.arch = \"{judge}\" needs image_size to be a multiple of 32, not {size}"),
                    self.blame("image_size", "judge.arch"),
                )
                .help("use an image_size that is a multiple of 32, or judge = \"none\""),
            );
        }
    }

    /// A random resized crop's area and aspect ranges are written lowest first.
    fn augment_ranges_ascend(&self, errors: &mut Vec<Diagnostic>) {
        for key in ["augment.scale", "augment.ratio"] {
            if let Some([lo, hi]) = self.flat.value(key).and_then(Value::as_array).map(|a| a.as_slice())
                && lo.as_float() > hi.as_float()
            {
                errors.push(
                    Diagnostic::new(
                        format!("{key} = [{lo}, {hi}] is not a range: its first number is the larger"),
                        self.origin_of(key),
                    )
                    .help(format!("write the lower bound first: [{hi}, {lo}]")),
                );
            }
        }
    }

    /// Classification needs two chroma bins at least, and a soft-encoded target spreads over
    /// `soft_k` of them, which the color space must have at this bin size (a coarse grid has few:
    /// Lab at bin_size 200 has 2).
    fn bins_fit_classification(&self, errors: &mut Vec<Diagnostic>) {
        if self.flat.str("task") != Some(Task::Classification.name()) {
            return;
        }
        let (space, bin_size) = (choice::<ColorSpace>(self.flat, "color_space"), self.flat.float("bin_size") as f32);
        let bins = ChromaBins::new(space, bin_size).len();
        let at = format!("color_space = \"{space}\" at bin_size = {bin_size}");
        if bins < 2 {
            let d = Diagnostic::new(
                format!("classification needs 2 chroma bins at least; {at} has {bins}"),
                self.blame("bin_size", "color_space"),
            );
            errors.push(d.help("use a smaller bin_size (Zhang et al. use 10)"));
            return;
        }
        let k = self.flat.int("soft_k");
        if self.flat.bool("soft_encoding") == Some(true) && k > bins as i64 {
            errors.push(
                Diagnostic::new(
                    format!("soft_k = {k} is more than the {bins} chroma bins of {at}"),
                    self.blame("soft_k", "bin_size"),
                )
                .help(format!("use soft_k <= {bins}, a smaller bin_size, or soft_encoding = false")),
            );
        }
    }

    /// Adam divides by 1 - beta^t: a beta of 1 makes every step NaN.
    fn adam_betas_below_one(&self, errors: &mut Vec<Diagnostic>) {
        if self.flat.str("optimizer") == Some(Optimizer::Sgd.name()) {
            return;
        }
        let betas = self.flat.floats("betas");
        if betas.iter().any(|&b| b >= 1.0) {
            errors.push(
                Diagnostic::new(
                    format!("betas = {betas:?}: Adam's betas must be below 1 (it divides by 1 - beta^t)"),
                    self.origin_of("betas"),
                )
                .help("e.g. betas = [0.9, 0.999]"),
            );
        }
    }
}
