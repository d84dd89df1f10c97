//! ResNet-18 (He et al. 2016) as torchvision builds it (`torchvision.models.resnet18`), plus the
//! CIFAR-style 32x32 variant (3x3 stride-1 stem, no max pool).
//!
//! Field names are torchvision's (`conv1`, `bn1`, `layer1`..`layer4`, `fc`); torchvision's
//! `downsample = nn.Sequential(conv1x1, BatchNorm2d)` is kept as an indexed list so its keys are
//! `downsample.0.weight` and `downsample.1.*` with no remapping. Batch-norm `weight`/`bias` are
//! burn's `gamma`/`beta`; burn-store's PyTorch adapter renames them on load.

use burn::module::{Initializer, Module};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};

use super::super::conv::{Epilogue, conv_bn_relu, conv2d};
use super::super::memory::{maps, pool_kept};
use super::super::pool::max_pool2d;
use super::{
    BackboneConfig, BackboneFeatures, BackboneInput, BackboneNetwork, BackboneVariant, global_avg_pool, scaled,
};

/// One entry of a block's `downsample`.
#[derive(Module, Debug)]
pub enum DownsampleLayer {
    /// 1x1 conv with the block's stride, no bias.
    Conv(Conv2d),
    /// Batch norm.
    Norm(BatchNorm),
}

/// torchvision's `BasicBlock`: two 3x3 convs with batch norm and a residual connection.
#[derive(Module, Debug)]
pub struct BasicBlock {
    /// 3x3 conv with the block's stride.
    pub conv1: Conv2d,
    /// Batch norm after conv1.
    pub bn1: BatchNorm,
    /// 3x3 conv, stride 1.
    pub conv2: Conv2d,
    /// Batch norm after conv2.
    pub bn2: BatchNorm,
    /// Projection of the shortcut when the shape changes (first block of layers 2-4).
    pub downsample: Option<Vec<DownsampleLayer>>,
}

fn conv(cin: usize, cout: usize, k: usize, stride: usize, pad: usize, dev: &Device) -> Conv2d {
    Conv2dConfig::new([cin, cout], [k, k])
        .with_stride([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(pad, pad, pad, pad))
        .with_bias(false)
        // torchvision: kaiming_normal_(mode="fan_out", nonlinearity="relu").
        .with_initializer(Initializer::KaimingNormal { gain: std::f64::consts::SQRT_2, fan_out_only: true })
        .init(dev)
}

impl BasicBlock {
    fn new(cin: usize, cout: usize, stride: usize, device: &Device) -> Self {
        let downsample = (stride != 1 || cin != cout).then(|| {
            vec![
                DownsampleLayer::Conv(conv(cin, cout, 1, stride, 0, device)),
                DownsampleLayer::Norm(BatchNormConfig::new(cout).init(device)),
            ]
        });
        Self {
            conv1: conv(cin, cout, 3, stride, 1, device),
            bn1: BatchNormConfig::new(cout).init(device),
            conv2: conv(cout, cout, 3, 1, 1, device),
            bn2: BatchNormConfig::new(cout).init(device),
            downsample,
        }
    }

    /// Floats per image a training step keeps for the block at input `side`, and its output side:
    /// conv1's, bn1's, the ReLU's, conv2's and bn2's outputs, the shortcut's conv and batch norm when
    /// it has them, the sum and the last ReLU.
    fn kept_floats(&self, side: usize) -> (u64, usize) {
        let side = side.div_ceil(self.conv1.stride[0]);
        let channels = self.conv1.weight.lazy_shape()[0];
        let shortcut = if self.downsample.is_some() { 2 } else { 0 };
        ((7 + shortcut) * maps(channels, side), side)
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let out = conv_bn_relu(&self.conv1, &self.bn1, x.clone());
        let out = self.bn2.forward(conv2d(&self.conv2, out, Epilogue::Identity));
        let identity = match &self.downsample {
            Some(layers) => layers.iter().fold(x, |x, l| match l {
                DownsampleLayer::Conv(c) => conv2d(c, x, Epilogue::Identity),
                DownsampleLayer::Norm(n) => n.forward(x),
            }),
            None => x,
        };
        relu(out + identity)
    }
}

/// ResNet-18. Imagenet variant: 7x7 stride-2 stem, 3x3 stride-2 max pool, four layers of two
/// basic blocks (64, 128, 256, 512 channels times `width`; strides 1, 2, 2, 2), global average
/// pool, `fc`. Small variant: 3x3 stride-1 stem and no max pool.
#[derive(Module, Debug)]
pub struct Resnet18 {
    /// Stem conv (7x7 stride 2 padding 3, or 3x3 stride 1 padding 1 in the small variant).
    pub conv1: Conv2d,
    /// Stem batch norm.
    pub bn1: BatchNorm,
    /// 3x3 stride-2 max pool (Imagenet variant only).
    pub maxpool: Option<MaxPool2d>,
    /// Two blocks, stride 1.
    pub layer1: Vec<BasicBlock>,
    /// Two blocks, the first with stride 2.
    pub layer2: Vec<BasicBlock>,
    /// Two blocks, the first with stride 2.
    pub layer3: Vec<BasicBlock>,
    /// Two blocks, the first with stride 2.
    pub layer4: Vec<BasicBlock>,
    /// Classifier on the pooled layer4 output, absent when `num_classes = 0`.
    pub fc: Option<Linear>,
    /// torchvision or CIFAR-style form.
    #[module(skip)]
    pub variant: BackboneVariant,
    /// How the gray input is prepared.
    #[module(skip)]
    pub input: BackboneInput,
}

impl Resnet18 {
    /// Outputs of layers 2, 3 and 4.
    fn layers(&self, gray: Tensor<4>) -> Vec<Tensor<4>> {
        let x = self.input.prepare(gray);
        let mut x = conv_bn_relu(&self.conv1, &self.bn1, x);
        if let Some(pool) = &self.maxpool {
            x = max_pool2d(pool, x);
        }
        let run = |blocks: &[BasicBlock], x: Tensor<4>| blocks.iter().fold(x, |x, b| b.forward(x));
        let l1 = run(&self.layer1, x);
        let l2 = run(&self.layer2, l1);
        let l3 = run(&self.layer3, l2.clone());
        let l4 = run(&self.layer4, l3.clone());
        vec![l2, l3, l4]
    }
}

impl BackboneNetwork for Resnet18 {
    /// Layers 2-4 as stages, average-pooled layer 4 as the global vector.
    fn features(&self, gray: Tensor<4>) -> BackboneFeatures {
        let stages = self.layers(gray);
        let global = global_avg_pool(stages[2].clone());
        BackboneFeatures { stages, global }
    }

    /// Channels of layers 2-4.
    fn stage_channels(&self) -> Vec<usize> {
        [&self.layer2, &self.layer3, &self.layer4].iter().map(|l| l[1].conv2.weight.lazy_shape()[0]).collect()
    }

    /// Class logits; the caller checks that `fc` is present.
    fn classify(&self, gray: Tensor<4>) -> Tensor<2> {
        let l4 = self.layers(gray).pop().expect("three stages");
        let fc = self.fc.as_ref().expect("classify without fc");
        fc.forward(global_avg_pool(l4))
    }

    fn has_classifier(&self) -> bool {
        self.fc.is_some()
    }

    fn variant(&self) -> BackboneVariant {
        self.variant
    }

    /// The prepared input; the stem conv's, batch norm's and ReLU's outputs and the max pool's; each
    /// block's (see [`BasicBlock::kept_floats`]).
    fn kept_floats(&self, side: usize) -> u64 {
        let mut floats = maps(self.input.channels(), side);
        let mut side = side.div_ceil(self.conv1.stride[0]);
        let stem = self.conv1.weight.lazy_shape()[0];
        floats += 3 * maps(stem, side);
        if self.maxpool.is_some() {
            side = side.div_ceil(2);
            floats += pool_kept(stem, side);
        }
        for block in self.layer1.iter().chain(&self.layer2).chain(&self.layer3).chain(&self.layer4) {
            let (kept, out_side) = block.kept_floats(side);
            floats += kept;
            side = out_side;
        }
        floats
    }

    fn new(config: &BackboneConfig, device: &Device) -> Self {
        let w = config.width;
        let c = [scaled(64, w), scaled(128, w), scaled(256, w), scaled(512, w)];
        let (conv1, maxpool) = match config.variant {
            BackboneVariant::Imagenet => (
                conv(config.input.channels(), c[0], 7, 2, 3, device),
                Some(
                    MaxPool2dConfig::new([3, 3])
                        .with_strides([2, 2])
                        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                        .init(),
                ),
            ),
            BackboneVariant::Small => (conv(config.input.channels(), c[0], 3, 1, 1, device), None),
        };
        let layer = |cin: usize, cout: usize, stride: usize| {
            vec![BasicBlock::new(cin, cout, stride, device), BasicBlock::new(cout, cout, 1, device)]
        };
        Self {
            conv1,
            bn1: BatchNormConfig::new(c[0]).init(device),
            maxpool,
            layer1: layer(c[0], c[0], 1),
            layer2: layer(c[0], c[1], 2),
            layer3: layer(c[1], c[2], 2),
            layer4: layer(c[2], c[3], 2),
            // torchvision leaves fc at PyTorch's default init, which is burn's default too.
            fc: (config.num_classes > 0).then(|| LinearConfig::new(c[3], config.num_classes).init(device)),
            variant: config.variant,
            input: config.input,
        }
    }
}
