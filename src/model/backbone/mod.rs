//! Global backbones (VGG-16, ResNet-18), one file each behind [`BackboneNetwork`]: their
//! configuration, the gray-to-backbone input preparation, and the features the colorization net takes
//! from them.
//!
//! To add a backbone: a file here with the network (a burn `Module` implementing [`BackboneNetwork`],
//! downsampling by 32, with a classifier when `num_classes > 0`) and its tests, and one arm in the
//! `backbones!` list below (`Vgg11 = "vgg11" => vgg11::Vgg11`) with its `mod` line. The arm makes it
//! a choice of `backbone.arch` and `judge.arch`, a variant of [`BackboneNet`] (its name is the prefix
//! of the net's parameter paths in checkpoints) and builds it; fusion, hypercolumns, pretraining, the
//! judge and torchvision loading (if its parameter names are torchvision's) follow.
//!
//! # Variants
//! [`BackboneVariant::Imagenet`] (image side >= 64) is torchvision's architecture, parameter for
//! parameter: with `width = 1.0` every tensor has torchvision's name and shape, so torchvision
//! checkpoints load (see [`super::weights`]). [`BackboneVariant::Small`] (image side < 64, i.e.
//! CIFAR's 32x32) is sized down so that a 32x32 image is not reduced to a single pixel:
//! - VGG-16 drops the last max pool (conv5 runs at 2x2) and its classifier is one linear layer on
//!   the average-pooled conv5 features. The convs keep torchvision's names and shapes, so
//!   torchvision conv weights still load (the classifier does not).
//! - ResNet-18 is the CIFAR-style ResNet of He et al. (2016, sec. 4.2) as commonly adapted: a 3x3
//!   stride-1 stem and no max pool; everything after the stem is torchvision's.
//!
//! # Input
//! torchvision weights expect normalised RGB, so [`BackboneInput::ImagenetRgb`] replicates the
//! luma channel three times and applies ImageNet's mean/std. Scratch backbones can use
//! [`BackboneInput::Gray`]: one input channel, normalised by the channel-averaged ImageNet
//! mean/std, which saves the two redundant channels of the first conv. [`BackboneInput::Rgb`] takes
//! real colour images (the semantic judge of `crate::train::judge`, which classifies colorized
//! images).

pub mod resnet;
pub mod vgg;

use std::path::Path;

use burn::module::Module;
use burn::tensor::{Device, Tensor};

use super::weights::{self, LoadOptions, LoadReport, WeightError};
use crate::named::named_enum;
use resnet::Resnet18;
use vgg::Vgg16;

/// Which form of a backbone is built; chosen by [`BackboneVariant::for_image_size`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackboneVariant {
    /// torchvision's architecture (image side >= 64).
    Imagenet,
    /// Sized down for 32x32 inputs (image side < 64); see the module docs.
    Small,
}

impl BackboneVariant {
    /// `Small` below 64 pixels, `Imagenet` from 64 up.
    pub fn for_image_size(image_size: usize) -> Self {
        if image_size < 64 { BackboneVariant::Small } else { BackboneVariant::Imagenet }
    }
}

/// How the gray input is fed to the backbone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackboneInput {
    /// One channel, `(y - 0.449) / 0.226` (ImageNet's mean/std averaged over RGB).
    Gray,
    /// Luma replicated to RGB and normalised with ImageNet's per-channel mean/std, as torchvision
    /// weights expect.
    ImagenetRgb,
    /// Colour images `[N, 3, H, W]` (sRGB in `[0, 1]`), normalised with ImageNet's per-channel
    /// mean/std.
    Rgb,
}

impl BackboneInput {
    /// Channels of the first conv.
    pub fn channels(&self) -> usize {
        match self {
            BackboneInput::Gray => 1,
            BackboneInput::ImagenetRgb | BackboneInput::Rgb => 3,
        }
    }

    /// The network's input (`[N, 1, H, W]` luma in `[0, 1]`, or `[N, 3, H, W]` sRGB for
    /// [`BackboneInput::Rgb`]) to the first conv's input.
    pub fn prepare(&self, input: Tensor<4>) -> Tensor<4> {
        const MEAN: [f32; 3] = [0.485, 0.456, 0.406];
        const STD: [f32; 3] = [0.229, 0.224, 0.225];
        match self {
            BackboneInput::Gray => {
                let mean = MEAN.iter().sum::<f32>() / 3.0;
                let std = STD.iter().sum::<f32>() / 3.0;
                input.sub_scalar(mean).div_scalar(std)
            }
            BackboneInput::ImagenetRgb | BackboneInput::Rgb => {
                let device = input.device();
                let mean = Tensor::<1>::from_floats(MEAN, &device).reshape([1, 3, 1, 1]);
                let std = Tensor::<1>::from_floats(STD, &device).reshape([1, 3, 1, 1]);
                let rgb = if *self == BackboneInput::Rgb { input } else { input.repeat_dim(1, 3) };
                (rgb - mean) / std
            }
        }
    }
}

/// What the colorization net takes from a backbone.
#[derive(Debug)]
pub struct BackboneFeatures {
    /// The three deepest stages, shallow to deep (for hypercolumns), `[N, C_i, h_i, w_i]`.
    pub stages: Vec<Tensor<4>>,
    /// The last stage average-pooled, `[N, global_dim]` (for fusion).
    pub global: Tensor<2>,
}

/// Everything needed to build a backbone; usually from [`super::ModelConfig::backbone_config`].
#[derive(Clone, Debug, PartialEq)]
pub struct BackboneConfig {
    /// The network (not [`Backbone::None`]).
    pub arch: Backbone,
    /// Channel multiplier (1.0 = torchvision).
    pub width: f32,
    /// torchvision or sized-down form.
    pub variant: BackboneVariant,
    /// Gray or ImageNet-RGB input.
    pub input: BackboneInput,
    /// Classifier outputs, 0 for none.
    pub num_classes: usize,
}

/// `channels * width`, rounded, at least 1.
pub(crate) fn scaled(channels: usize, width: f32) -> usize {
    ((channels as f32 * width).round() as usize).max(1)
}

/// `[N, C, h, w]` to `[N, C]` by averaging over space.
pub(crate) fn global_avg_pool(x: Tensor<4>) -> Tensor<2> {
    let [n, c, _, _] = x.dims();
    x.mean_dim(3).mean_dim(2).reshape([n, c])
}

/// A global network: what the colorization net, classification pretraining and the semantic judge
/// need of it. The type is also a burn `Module` (the [`BackboneNet`] enum derives `Module` over it) and
/// must downsample by 32 (the specs' `image_size` rule and `sweep colorize` assume it).
pub trait BackboneNetwork: std::fmt::Debug {
    /// Builds it from a backbone config (its `arch` is not checked). Parameters may be initialised
    /// lazily (on first use), so building a full-size one only to count its parameters allocates
    /// nothing.
    fn new(config: &BackboneConfig, device: &Device) -> Self
    where
        Self: Sized;

    /// The three deepest stages and the global vector, for the colorization net. `input`: the
    /// network's input (`[N, 1, H, W]` luma in `[0, 1]`, or `[N, 3, H, W]` sRGB for
    /// [`BackboneInput::Rgb`]).
    fn features(&self, input: Tensor<4>) -> BackboneFeatures;

    /// Channels of each of [`BackboneFeatures::stages`].
    fn stage_channels(&self) -> Vec<usize>;

    /// Class logits `[N, num_classes]`; only called when [`BackboneNetwork::has_classifier`].
    fn classify(&self, input: Tensor<4>) -> Tensor<2>;

    /// Whether it was built with a classifier (`num_classes > 0`).
    fn has_classifier(&self) -> bool;

    /// The form it was built in.
    fn variant(&self) -> BackboneVariant;

    /// Floats per image of `side` x `side` that a training step through it keeps for the backward:
    /// every map its forward makes, each at the resolution it is made at (see
    /// `ColorizationNet::training_bytes`, [`super::memory::maps`], [`super::memory::pool_kept`]).
    fn kept_floats(&self, side: usize) -> u64;
}

/// Declares the backbones: the [`Backbone`] choice (with `None`), the [`BackboneNet`] module enum
/// and the dispatch to each network's [`BackboneNetwork`] implementation, from one arm per network.
macro_rules! backbones {
    ($( $(#[$doc:meta])* $variant:ident = $name:literal => $net:ty ),+ $(,)?) => {
        named_enum! {
            /// Which global network, if any, runs beside the local branch (and which network the
            /// semantic judge is).
            pub enum Backbone {
                /// No global network: local features only.
                None = "none",
                $( $(#[$doc])* $variant = $name ),+
            }
        }

        /// A global network. Enum variant names appear in burnpack paths
        /// (`Vgg16.features.0.Conv.weight`); torchvision loading goes to the inner network, whose paths
        /// are torchvision's.
        // One per model, so the enum's size does not matter; burn's `Module` has no impl for `Box`.
        #[allow(clippy::large_enum_variant)]
        #[derive(Module, Debug)]
        pub enum BackboneNet {
            $( $(#[$doc])* $variant($net) ),+
        }

        impl BackboneConfig {
            /// Builds the backbone (see [`BackboneNetwork::new`]).
            ///
            /// # Panics
            /// When `arch` is [`Backbone::None`].
            pub fn init(&self, device: &Device) -> BackboneNet {
                match self.arch {
                    $( Backbone::$variant => BackboneNet::$variant(<$net as BackboneNetwork>::new(self, device)), )+
                    Backbone::None => panic!("BackboneConfig::init with Backbone::None"),
                }
            }
        }

        impl BackboneNet {
            /// The network inside.
            fn network(&self) -> &dyn BackboneNetwork {
                match self {
                    $( BackboneNet::$variant(n) => n ),+
                }
            }

            /// Loads torchvision weights (`.pth`/`.pt` or `.safetensors`); all-or-nothing. See
            /// [`super::weights`].
            pub fn load_torchvision(
                &mut self,
                path: impl AsRef<Path>,
                options: &LoadOptions,
            ) -> Result<LoadReport, WeightError> {
                match self {
                    $( BackboneNet::$variant(n) => weights::load_torchvision(n, path.as_ref(), options) ),+
                }
            }
        }
    };
}

backbones! {
    /// torchvision `vgg16` (no batch norm); see [`Vgg16`] for the 32x32 variant.
    Vgg16 = "vgg16" => Vgg16,
    /// torchvision `resnet18`; see [`Resnet18`] for the CIFAR-style 32x32 variant.
    Resnet18 = "resnet18" => Resnet18,
}

impl BackboneNet {
    /// Stages and global vector for the colorization net. `gray`: `[N, 1, H, W]` in `[0, 1]`.
    pub fn features(&self, gray: Tensor<4>) -> BackboneFeatures {
        self.network().features(gray)
    }

    /// Class logits `[N, num_classes]` of the network's input (gray, or RGB for [`BackboneInput::Rgb`]).
    ///
    /// # Panics
    /// When built with `num_classes = 0` (see [`BackboneNet::has_classifier`]).
    pub fn classify(&self, gray: Tensor<4>) -> Tensor<2> {
        assert!(self.has_classifier(), "classify needs a classifier: build the model with num_classes > 0");
        self.network().classify(gray)
    }

    /// Whether the backbone has a classifier (`num_classes > 0`).
    pub fn has_classifier(&self) -> bool {
        self.network().has_classifier()
    }

    /// Width of [`BackboneFeatures::global`].
    pub fn global_dim(&self) -> usize {
        *self.stage_channels().last().expect("three stages")
    }

    /// Channels of each of [`BackboneFeatures::stages`].
    pub fn stage_channels(&self) -> Vec<usize> {
        self.network().stage_channels()
    }

    /// The variant this backbone was built as.
    pub fn variant(&self) -> BackboneVariant {
        self.network().variant()
    }

    /// Floats per image a training step through it keeps (see [`BackboneNetwork::kept_floats`]).
    pub fn kept_floats(&self, side: usize) -> u64 {
        self.network().kept_floats(side)
    }
}
