//! The colorization network, built from a [`ModelConfig`].
//!
//! This module owns the whole model: the configuration types, [`ColorizationNet`] (local
//! features, an optional pretrained-or-scratch backbone, Fusion or Hypercolumn mixing, and the
//! per-pixel head), and the loading of torchvision weights into the backbones. Training loops,
//! losses and data live elsewhere; the model only maps a gray batch `[N, 1, H, W]` (luma in
//! `[0, 1]`) to chroma `[N, 2, H, W]` (regression) or `[N, Q, H, W]` logits (classification).
//!
//! Layout of the network (`features` decides the middle part):
//!
//! ```text
//! gray ─► local convs (+BN, ReLU, 2x2 pools) ─► [Fusion | Hypercolumn | nothing] ─► nearest upsample
//!   │                                               ▲                                 to H x W ─► head
//!   └─► backbone (VGG-16 / ResNet-18) ──────────────┘
//! ```
//!
//! Mixing happens at the local map's (pooled) resolution and is upsampled afterwards: tiling a
//! vector and 1x1 convolutions commute with nearest upsampling, so this is the same network as
//! mixing at full resolution for Fusion, at a quarter of the cost.
//!
//! # Freezing a backbone
//! [`ColorizationNet::freeze_backbone`] calls burn 0.22's [`Module::freeze`] on the backbone:
//! every parameter stops requiring a gradient *and* every module-owned training flag is turned
//! off, so batch norm uses (and no longer updates) its running statistics and dropout is off.
//! [`Module::no_grad`] alone would only stop gradients, leaving batch norm re-estimating and
//! overwriting its statistics on every batch, which is not what a frozen pretrained network means.
//! A frozen backbone's output is not tracked by autodiff, so its forward records no graph.
//!
//! # Pretraining a backbone as a classifier
//! `crate::train::pretrain` builds the backbone alone from [`ModelConfig::backbone_config`] with a
//! classifier of the data set's classes ([`BackboneConfig::init`]), trains [`BackboneNet::classify`],
//! saves it with `Module::save_file`, and the run puts it into its colorization net with
//! [`ColorizationNet::load_backbone_file`] (the paths are the same as inside the net).
//!
//! # Saving
//! `net.save_file(path)` / `config.init(&device).load_file(path)` (burnpack) store parameters
//! and batch-norm running statistics, not the config. burn keeps each batch norm's latest
//! running-statistics update per thread and folds it into the stored value one update late;
//! `valid()` folds it in, so save `net.valid()` to get the statistics of the last step.

pub mod backbone;
pub mod conv;
pub mod fusion;
pub mod head;
pub mod hypercolumn;
pub mod local;
pub mod memory;
pub mod norm;
pub mod pool;
pub mod weights;

use std::fmt;
use std::path::Path;

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::module::interpolate;
use burn::tensor::ops::{InterpolateMode, InterpolateOptions};
use burn::tensor::{Device, Tensor};

pub use backbone::{
    Backbone, BackboneConfig, BackboneFeatures, BackboneInput, BackboneNet, BackboneNetwork, BackboneVariant,
    resnet::Resnet18, vgg::Vgg16,
};
pub use fusion::Fusion;
pub use head::Head;
pub use hypercolumn::Hypercolumn;
pub use local::LocalFeatures;
pub use memory::TrainingBytes;
pub use weights::{LoadOptions, LoadReport, WeightError};

use crate::named::named_enum;

named_enum! {
    /// How the local features are combined with the backbone's.
    pub enum FeatureMode {
        /// Local features only (requires [`Backbone::None`]).
        Local = "local",
        /// Iizuka et al. 2016: a global vector tiled over the local map. See [`Fusion`].
        Fusion = "fusion",
        /// Larsson et al. 2016: backbone stages upsampled and stacked per pixel. See [`Hypercolumn`].
        Hypercolumn = "hypercolumn",
    }
}

named_enum! {
    /// Squashing applied to the two regressed chroma channels.
    pub enum Activation {
        /// Output in `[-1, 1]`.
        Tanh = "tanh",
        /// Output in `[0, 1]`.
        Sigmoid = "sigmoid",
        /// Unbounded output.
        Linear = "linear",
    }
}

/// What the head predicts at each pixel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    /// Two chroma channels after the activation.
    Regression(Activation),
    /// Logits over `bins` quantized chroma classes (softmax is the loss's job).
    Classification {
        /// Number of chroma bins Q.
        bins: usize,
    },
}

impl Output {
    /// Channels of the head's output.
    pub fn channels(&self) -> usize {
        match self {
            Output::Regression(_) => 2,
            Output::Classification { bins } => *bins,
        }
    }
}

/// Everything needed to build a [`ColorizationNet`].
#[derive(Clone, Debug, PartialEq)]
pub struct ModelConfig {
    /// Input side in pixels (32 for CIFAR). With a backbone it must be a multiple of 32; it also
    /// picks the backbone variant: below 64 the sized-down variants, from 64 up the torchvision
    /// ones (see [`BackboneVariant`]).
    pub image_size: usize,
    /// Filters of each local 3x3 conv (each followed by batch norm and ReLU). Default `[64, 128, 128]`.
    pub local_widths: Vec<usize>,
    /// 1-based indices of the local convs followed by a 2x2 max pool. Default `[2]`.
    pub local_pool_after: Vec<usize>,
    /// Global network.
    pub backbone: Backbone,
    /// Channel multiplier for the backbone (1.0 = torchvision sizes). Smaller values give fast
    /// scratch backbones for tests and CPU runs; torchvision weights only fit 1.0.
    pub backbone_width: f32,
    /// How the gray input reaches the backbone: see [`BackboneInput`]. Use
    /// [`BackboneInput::ImagenetRgb`] for torchvision weights.
    pub backbone_input: BackboneInput,
    /// Combination of local and backbone features.
    pub features: FeatureMode,
    /// Width of the global vector and of the Fusion/Hypercolumn 1x1 conv output. Default 256.
    pub fusion_dim: usize,
    /// Filters of the head's 3x3 convs (each followed by ReLU). Default `[64, 64]`.
    pub head_widths: Vec<usize>,
    /// Regression or classification output.
    pub output: Output,
    /// Classes of the backbone's classifier used for pretraining (0 = no classifier). 1000 with
    /// `backbone_width` 1.0 and `image_size >= 64` gives exactly torchvision's classifier.
    pub num_classes: usize,
}

impl Default for ModelConfig {
    /// The seed's model: local 64-128-128 with one pool after conv 2, head 64-64, tanh, 32x32.
    fn default() -> Self {
        Self {
            image_size: 32,
            local_widths: vec![64, 128, 128],
            local_pool_after: vec![2],
            backbone: Backbone::None,
            backbone_width: 1.0,
            backbone_input: BackboneInput::Gray,
            features: FeatureMode::Local,
            fusion_dim: 256,
            head_widths: vec![64, 64],
            output: Output::Regression(Activation::Tanh),
            num_classes: 0,
        }
    }
}

/// A [`ModelConfig`] that cannot be built, or a backbone that does not fit the net.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ModelError {
    /// A config field has an unusable value.
    InvalidConfig {
        /// The field's name in [`ModelConfig`].
        field: &'static str,
        /// What is wrong and what would be accepted.
        message: String,
    },
    /// The operation needs a backbone and the net has none.
    NoBackbone,
    /// A backbone file could not be read or does not fit this net's backbone.
    BackboneFile(String),
    /// A replacement backbone differs from the net's own (architecture or shapes); the tests replace
    /// backbones in memory.
    BackboneMismatch(String),
}

impl fmt::Display for ModelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ModelError::InvalidConfig { field, message } => {
                write!(f, "invalid model config: `{field}`: {message}")
            }
            ModelError::NoBackbone => write!(f, "this model has no backbone (backbone = None)"),
            ModelError::BackboneFile(msg) => write!(f, "cannot load backbone file: {msg}"),
            ModelError::BackboneMismatch(msg) => write!(f, "backbone does not fit: {msg}"),
        }
    }
}

impl std::error::Error for ModelError {}

fn invalid(field: &'static str, message: impl Into<String>) -> ModelError {
    ModelError::InvalidConfig { field, message: message.into() }
}

impl ModelConfig {
    /// Checks every field and their combinations; [`ModelConfig::init`] relies on this.
    pub fn validate(&self) -> Result<(), ModelError> {
        if self.local_widths.is_empty() || self.local_widths.contains(&0) {
            return Err(invalid("local_widths", "needs at least one conv and no zero width"));
        }
        let mut last = 0;
        for &i in &self.local_pool_after {
            if i == 0 || i > self.local_widths.len() {
                return Err(invalid(
                    "local_pool_after",
                    format!("index {i} is not a local conv (1-based, 1..={})", self.local_widths.len()),
                ));
            }
            if i <= last {
                return Err(invalid(
                    "local_pool_after",
                    "indices must be strictly increasing (at most one pool per conv)",
                ));
            }
            last = i;
        }
        let factor = 1usize << self.local_pool_after.len();
        if self.image_size == 0 || !self.image_size.is_multiple_of(factor) {
            return Err(invalid(
                "image_size",
                format!("{} is not a positive multiple of {factor} (2^number of local pools)", self.image_size),
            ));
        }
        match (self.backbone, self.features) {
            (Backbone::None, FeatureMode::Local) => {}
            (Backbone::None, f @ (FeatureMode::Fusion | FeatureMode::Hypercolumn)) => {
                let nets: Vec<&str> = Backbone::NAMES.into_iter().filter(|&n| n != Backbone::None.name()).collect();
                return Err(invalid("features", format!("{f:?} needs a backbone ({})", nets.join(" or "))));
            }
            (b, FeatureMode::Local) => {
                return Err(invalid(
                    "features",
                    format!("Local uses no backbone, but backbone = {b:?}; use Fusion or Hypercolumn"),
                ));
            }
            (_, FeatureMode::Fusion | FeatureMode::Hypercolumn) => {}
        }
        if self.backbone != Backbone::None {
            if !self.image_size.is_multiple_of(32) {
                return Err(invalid(
                    "image_size",
                    format!("{} is not a multiple of 32, which the backbones need", self.image_size),
                ));
            }
            if !(self.backbone_width.is_finite() && self.backbone_width > 0.0) {
                return Err(invalid("backbone_width", "must be a positive number"));
            }
            if self.backbone_input == BackboneInput::Rgb {
                return Err(invalid(
                    "backbone_input",
                    "a colorizer's backbone sees the gray input: use Gray or ImagenetRgb",
                ));
            }
        }
        if self.features != FeatureMode::Local && self.fusion_dim == 0 {
            return Err(invalid("fusion_dim", "must be positive"));
        }
        if self.head_widths.contains(&0) {
            return Err(invalid("head_widths", "no zero width"));
        }
        if let Output::Classification { bins } = self.output
            && bins < 2
        {
            return Err(invalid("output", "classification needs at least 2 bins"));
        }
        if self.num_classes > 0 && self.backbone == Backbone::None {
            return Err(invalid("num_classes", "a classifier sits on the backbone, and backbone = None"));
        }
        Ok(())
    }

    /// Which backbone variant this config builds (`None` without a backbone).
    pub fn backbone_variant(&self) -> Option<BackboneVariant> {
        (self.backbone != Backbone::None).then(|| BackboneVariant::for_image_size(self.image_size))
    }

    /// The backbone part of this config, `None` for [`Backbone::None`].
    pub fn backbone_config(&self) -> Option<BackboneConfig> {
        let variant = self.backbone_variant()?;
        Some(BackboneConfig {
            arch: self.backbone,
            width: self.backbone_width,
            variant,
            input: self.backbone_input,
            num_classes: self.num_classes,
        })
    }

    /// Builds the network, or says which field is wrong.
    pub fn try_init(&self, device: &Device) -> Result<ColorizationNet, ModelError> {
        self.validate()?;
        let local = LocalFeatures::new(&self.local_widths, &self.local_pool_after, device);
        let backbone = self.backbone_config().map(|c| c.init(device));
        let mut fusion = None;
        let mut hypercolumn = None;
        let mut mixed_channels = local.out_channels();
        if let Some(bb) = &backbone {
            match self.features {
                FeatureMode::Fusion => {
                    fusion = Some(Fusion::new(local.out_channels(), bb.global_dim(), self.fusion_dim, device));
                }
                FeatureMode::Hypercolumn => {
                    hypercolumn =
                        Some(Hypercolumn::new(local.out_channels(), &bb.stage_channels(), self.fusion_dim, device));
                }
                FeatureMode::Local => unreachable!("validated: Local has no backbone"),
            }
            mixed_channels = self.fusion_dim;
        }
        let head = Head::new(mixed_channels, &self.head_widths, self.output, device);
        Ok(ColorizationNet { local, backbone, fusion, hypercolumn, head })
    }

    /// Builds the network.
    ///
    /// # Panics
    /// When the config does not [`validate`](ModelConfig::validate); call
    /// [`try_init`](ModelConfig::try_init) to get the error instead.
    pub fn init(&self, device: &Device) -> ColorizationNet {
        self.try_init(device).unwrap_or_else(|e| panic!("{e}"))
    }
}

/// The colorization network. Build it with [`ModelConfig::init`].
#[derive(Module, Debug)]
pub struct ColorizationNet {
    /// Conv stack on the gray input (output at `1 / 2^pools` of the input size).
    pub local: LocalFeatures,
    /// Global network, absent for [`FeatureMode::Local`].
    pub backbone: Option<BackboneNet>,
    /// Present for [`FeatureMode::Fusion`].
    pub fusion: Option<Fusion>,
    /// Present for [`FeatureMode::Hypercolumn`].
    pub hypercolumn: Option<Hypercolumn>,
    /// Per-pixel predictor.
    pub head: Head,
}

impl ColorizationNet {
    /// Predicts chroma for a gray batch.
    ///
    /// `gray`: `[N, 1, H, W]`, luma in `[0, 1]`, H and W divisible by the net's total pooling
    /// (2^local pools, and 32 with a backbone). Returns `[N, 2, H, W]` after the activation
    /// (regression) or `[N, Q, H, W]` logits (classification).
    pub fn forward(&self, gray: Tensor<4>) -> Tensor<4> {
        let [_, _, h, w] = gray.dims();
        let local = self.local.forward(gray.clone());
        let mixed = match (&self.backbone, &self.fusion, &self.hypercolumn) {
            (Some(bb), Some(fusion), _) => fusion.forward(local, bb.features(gray).global),
            (Some(bb), None, Some(hc)) => hc.forward(local, bb.features(gray).stages),
            _ => local,
        };
        // Upsampled to the input's size by nearest neighbour, as in the seed: the head's 3x3 convs
        // smooth the blocks out. A whole factor (the local pools') is the head's own first step,
        // which on the CPU never makes the upsampled map.
        let [_, _, mh, mw] = mixed.dims();
        let scale = h / mh;
        if scale * mh == h && scale * mw == w {
            return self.head.forward(mixed, scale);
        }
        let full = interpolate(mixed, InterpolateOptions::new(InterpolateMode::Nearest).with_output_size([h, w]));
        self.head.forward(full, 1)
    }

    /// Freezes the backbone with [`Module::freeze`]: no gradients, batch norm on running
    /// statistics, dropout off (see the module docs for why not `no_grad`). No-op without one.
    pub fn freeze_backbone(mut self) -> Self {
        self.backbone = self.backbone.map(Module::freeze);
        self
    }

    /// Loads a backbone saved with `backbone.save_file(path)` (burnpack) into this net's
    /// backbone. With `allow_classifier_mismatch`, tensors of the file that the net lacks and
    /// tensors of the net that the file lacks are ignored (e.g. a CIFAR-10 classifier when the
    /// net has `num_classes = 0`); shapes must still agree.
    pub fn load_backbone_file(
        mut self,
        path: impl AsRef<Path>,
        allow_classifier_mismatch: bool,
    ) -> Result<Self, ModelError> {
        let own = self.backbone.take().ok_or(ModelError::NoBackbone)?;
        let record = burn::store::ModuleRecord::load(path.as_ref())
            .map_err(|e| ModelError::BackboneFile(format!("{}: {e}", path.as_ref().display())))?
            .allow_unused(allow_classifier_mismatch)
            .allow_partial(allow_classifier_mismatch);
        let loaded = own
            .try_load_record(record)
            .map_err(|e| ModelError::BackboneFile(format!("{}: {e}", path.as_ref().display())))?;
        self.backbone = Some(loaded);
        Ok(self)
    }

    /// Loads torchvision weights (`.pth`/`.pt` or `.safetensors`) into the backbone; see
    /// [`weights`]. On error the net is unchanged.
    pub fn load_torchvision_backbone(
        &mut self,
        path: impl AsRef<Path>,
        options: &LoadOptions,
    ) -> Result<LoadReport, WeightError> {
        match self.backbone.as_mut() {
            Some(bb) => bb.load_torchvision(path, options),
            None => Err(WeightError::NoBackbone),
        }
    }
}

/// Parameter count as PyTorch's `sum(p.numel() for p in m.parameters())` reports it: batch
/// norm running statistics (buffers in PyTorch, but visited like parameters by burn's
/// `Module::num_params`) are left out. Reads shapes only, so lazily initialized parameters are
/// not allocated.
pub fn parameter_count<M: Module>(module: &M) -> usize {
    param_shapes(module)
        .iter()
        .filter(|(path, _)| !is_running_stat(path))
        .map(|(_, shape)| shape.iter().product::<usize>())
        .sum()
}

fn is_running_stat(path: &str) -> bool {
    path.ends_with("running_mean") || path.ends_with("running_var")
}

/// `(path, shape)` of every float tensor of a module, in visiting order.
pub(crate) fn param_shapes<M: Module>(module: &M) -> Vec<(String, Vec<usize>)> {
    struct Shapes {
        path: Vec<String>,
        out: Vec<(String, Vec<usize>)>,
    }
    impl ModuleVisitor for Shapes {
        fn enter_module(&mut self, name: &str, _container_type: &str) {
            self.path.push(name.to_string());
        }
        fn exit_module(&mut self, _name: &str, _container_type: &str) {
            self.path.pop();
        }
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            self.out.push((self.path.join("."), param.lazy_shape().to_vec()));
        }
    }
    let mut v = Shapes { path: Vec::new(), out: Vec::new() };
    module.visit(&mut v);
    v.out
}

#[cfg(test)]
mod tests;
