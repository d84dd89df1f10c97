//! VGG-16 (Simonyan and Zisserman 2015) as torchvision builds it (`torchvision.models.vgg16`, no
//! batch norm), plus the sized-down 32x32 variant.
//!
//! The layers are kept in lists indexed exactly like torchvision's `nn.Sequential`s, ReLUs,
//! pools and dropouts included, so the convs sit at `features.{0,2,5,7,10,12,14,17,19,21,24,26,28}`
//! and the linears at `classifier.{0,3,6}` with no key remapping. Each list entry is an enum;
//! burn puts the variant name in the path (`features.0.Conv.weight`), which loading skips with
//! `skip_enum_variants`.

use burn::module::{Initializer, Module};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{Dropout, DropoutConfig, Linear, LinearConfig, PaddingConfig2d, Relu};
use burn::tensor::module::adaptive_avg_pool2d;
use burn::tensor::{Device, Tensor};

use super::super::conv::{Epilogue, conv2d};
use super::super::memory::{maps, pool_kept};
use super::super::pool::max_pool2d;
use super::{
    BackboneConfig, BackboneFeatures, BackboneInput, BackboneNetwork, BackboneVariant, global_avg_pool, scaled,
};

/// torchvision's `cfgs["D"]`: conv widths, `None` = 2x2 max pool.
const CFG_D: [Option<usize>; 18] = [
    Some(64),
    Some(64),
    None,
    Some(128),
    Some(128),
    None,
    Some(256),
    Some(256),
    Some(256),
    None,
    Some(512),
    Some(512),
    Some(512),
    None,
    Some(512),
    Some(512),
    Some(512),
    None,
];

/// One entry of `features`.
#[derive(Module, Debug)]
pub enum VggFeature {
    /// 3x3 conv, padding 1, with bias.
    Conv(Conv2d),
    /// In-place ReLU in torchvision.
    Relu(Relu),
    /// 2x2 max pool, stride 2.
    Pool(MaxPool2d),
}

/// One entry of `classifier`.
#[derive(Module, Debug)]
pub enum VggClassifierLayer {
    /// Fully connected layer.
    Linear(Linear),
    /// ReLU.
    Relu(Relu),
    /// Dropout(0.5).
    Dropout(Dropout),
}

/// VGG-16. Imagenet variant: torchvision's `features`, adaptive average pool to 7x7, and
/// `classifier` = Linear(512*7*7, 4096), ReLU, Dropout, Linear(4096, 4096), ReLU, Dropout,
/// Linear(4096, num_classes) (widths scaled by `width`). Small variant: no last pool, and
/// `classifier` = one Linear(512, num_classes) on the average-pooled conv5 output.
#[derive(Module, Debug)]
pub struct Vgg16 {
    /// Convs, ReLUs and pools in torchvision's order.
    pub features: Vec<VggFeature>,
    /// Empty when `num_classes = 0`.
    pub classifier: Vec<VggClassifierLayer>,
    /// torchvision or sized-down form.
    #[module(skip)]
    pub variant: BackboneVariant,
    /// How the gray input is prepared.
    #[module(skip)]
    pub input: BackboneInput,
}

impl Vgg16 {
    /// Outputs of the five conv blocks (after the last ReLU, before the pool) and the output of
    /// all of `features`.
    fn blocks(&self, gray: Tensor<4>) -> (Vec<Tensor<4>>, Tensor<4>) {
        let mut x = self.input.prepare(gray);
        let mut blocks = Vec::with_capacity(5);
        for layer in &self.features {
            x = match layer {
                VggFeature::Conv(c) => conv2d(c, x, Epilogue::Identity),
                VggFeature::Relu(r) => r.forward(x),
                VggFeature::Pool(p) => {
                    blocks.push(x.clone());
                    max_pool2d(p, x)
                }
            };
        }
        if blocks.len() < 5 {
            // Small variant: block 5 has no pool after it.
            blocks.push(x.clone());
        }
        (blocks, x)
    }
}

impl BackboneNetwork for Vgg16 {
    /// Blocks 3-5 as stages, average-pooled block 5 as the global vector.
    fn features(&self, gray: Tensor<4>) -> BackboneFeatures {
        let (mut blocks, _) = self.blocks(gray);
        let stages = blocks.split_off(2);
        let global = global_avg_pool(stages[2].clone());
        BackboneFeatures { stages, global }
    }

    /// Channels of blocks 3-5.
    fn stage_channels(&self) -> Vec<usize> {
        let convs: Vec<usize> = self
            .features
            .iter()
            .filter_map(|l| match l {
                VggFeature::Conv(c) => Some(c.weight.lazy_shape()[0]),
                VggFeature::Relu(_) | VggFeature::Pool(_) => None,
            })
            .collect();
        // Last conv of blocks 3, 4, 5 (13 convs: 2, 2, 3, 3, 3).
        vec![convs[6], convs[9], convs[12]]
    }

    /// Class logits; the caller checks that `classifier` is not empty.
    fn classify(&self, gray: Tensor<4>) -> Tensor<2> {
        let (blocks, out) = self.blocks(gray);
        let mut x = match self.variant {
            BackboneVariant::Imagenet => {
                let [n, c, _, _] = out.dims();
                adaptive_avg_pool2d(out, [7, 7]).reshape([n, c * 49])
            }
            BackboneVariant::Small => global_avg_pool(blocks[4].clone()),
        };
        for layer in &self.classifier {
            x = match layer {
                VggClassifierLayer::Linear(l) => l.forward(x),
                VggClassifierLayer::Relu(r) => r.forward(x),
                VggClassifierLayer::Dropout(d) => d.forward(x),
            };
        }
        x
    }

    fn has_classifier(&self) -> bool {
        !self.classifier.is_empty()
    }

    fn variant(&self) -> BackboneVariant {
        self.variant
    }

    /// The prepared input, each conv's output and its ReLU's, each pool's output and indices.
    fn kept_floats(&self, side: usize) -> u64 {
        let (mut side, mut channels) = (side, self.input.channels());
        let mut floats = maps(channels, side);
        for layer in &self.features {
            floats += match layer {
                VggFeature::Conv(c) => {
                    channels = c.weight.lazy_shape()[0];
                    maps(channels, side)
                }
                VggFeature::Relu(_) => maps(channels, side),
                VggFeature::Pool(_) => {
                    side /= 2;
                    pool_kept(channels, side)
                }
            };
        }
        floats
    }

    fn new(config: &BackboneConfig, device: &Device) -> Self {
        let w = config.width;
        // torchvision: kaiming_normal_(mode="fan_out", nonlinearity="relu"), bias 0, linears
        // N(0, 0.01). Matters for scratch training: VGG has no batch norm to rescue a poor init.
        let conv_init = Initializer::KaimingNormal { gain: std::f64::consts::SQRT_2, fan_out_only: true };
        let linear_init = Initializer::Normal { mean: 0.0, std: 0.01 };
        let mut features = Vec::new();
        let mut in_ch = config.input.channels();
        let last = CFG_D.len() - 1;
        for (i, entry) in CFG_D.iter().enumerate() {
            match entry {
                Some(c) => {
                    let out_ch = scaled(*c, w);
                    let conv = Conv2dConfig::new([in_ch, out_ch], [3, 3])
                        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                        .with_initializer(conv_init.clone())
                        .init(device);
                    features.push(VggFeature::Conv(zero_bias(conv, device)));
                    features.push(VggFeature::Relu(Relu::new()));
                    in_ch = out_ch;
                }
                None if i == last && config.variant == BackboneVariant::Small => {}
                None => features.push(VggFeature::Pool(MaxPool2dConfig::new([2, 2]).init())),
            }
        }
        let mut classifier = Vec::new();
        if config.num_classes > 0 {
            let lin = |i: usize, o: usize| {
                let l = LinearConfig::new(i, o).with_initializer(linear_init.clone()).init(device);
                VggClassifierLayer::Linear(zero_linear_bias(l, device))
            };
            match config.variant {
                BackboneVariant::Imagenet => {
                    let hidden = scaled(4096, w);
                    classifier.push(lin(in_ch * 7 * 7, hidden));
                    classifier.push(VggClassifierLayer::Relu(Relu::new()));
                    classifier.push(VggClassifierLayer::Dropout(DropoutConfig::new(0.5).init()));
                    classifier.push(lin(hidden, hidden));
                    classifier.push(VggClassifierLayer::Relu(Relu::new()));
                    classifier.push(VggClassifierLayer::Dropout(DropoutConfig::new(0.5).init()));
                    classifier.push(lin(hidden, config.num_classes));
                }
                BackboneVariant::Small => classifier.push(lin(in_ch, config.num_classes)),
            }
        }
        Self { features, classifier, variant: config.variant, input: config.input }
    }
}

/// torchvision initializes conv and linear biases to zero.
pub(crate) fn zero_bias(mut conv: Conv2d, device: &Device) -> Conv2d {
    if let Some(b) = conv.bias.take() {
        conv.bias = Some(Initializer::Zeros.init(b.lazy_shape(), device));
    }
    conv
}

fn zero_linear_bias(mut linear: Linear, device: &Device) -> Linear {
    if let Some(b) = linear.bias.take() {
        linear.bias = Some(Initializer::Zeros.init(b.lazy_shape(), device));
    }
    linear
}
