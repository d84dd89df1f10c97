//! The head: 3x3 conv + ReLU layers at full resolution, then a 1x1 "per-pixel dense" layer
//! giving 2 chroma channels through the output activation, or Q class logits.

use burn::module::Module;
use burn::nn::PaddingConfig2d;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::tensor::activation::{sigmoid, tanh};
use burn::tensor::{Device, Tensor};

use super::conv::{Epilogue, conv2d, upsample_conv2d};
use super::{Activation, Output};

/// Per-pixel predictor on the full-resolution feature map.
#[derive(Module, Debug)]
pub struct Head {
    /// 3x3 convs (same padding), each followed by ReLU.
    pub convs: Vec<Conv2d>,
    /// 1x1 conv to the output channels.
    pub out: Conv2d,
    /// Regression activation or classification.
    #[module(skip)]
    pub output: Output,
}

impl Head {
    /// `in_channels` features in, `widths` hidden 3x3 layers, then `output.channels()` out.
    pub fn new(in_channels: usize, widths: &[usize], output: Output, device: &Device) -> Self {
        let mut in_ch = in_channels;
        let convs = widths
            .iter()
            .map(|&w| {
                let conv = Conv2dConfig::new([in_ch, w], [3, 3]).with_padding(PaddingConfig2d::Same).init(device);
                in_ch = w;
                conv
            })
            .collect();
        let out = Conv2dConfig::new([in_ch, output.channels()], [1, 1]).init(device);
        Self { convs, out, output }
    }

    /// `[N, C, H / scale, W / scale]` features, upsampled `scale` times (nearest) by the first
    /// layer, to `[N, 2, H, W]` (activated) or `[N, Q, H, W]` logits.
    pub fn forward(&self, x: Tensor<4>, scale: usize) -> Tensor<4> {
        let mut layers = self.convs.iter().map(|c| (c, Epilogue::Relu)).chain([(&self.out, Epilogue::Identity)]);
        let (first, epilogue) = layers.next().expect("the 1x1 output conv is always there");
        let y = layers.fold(upsample_conv2d(first, x, scale, epilogue), |x, (c, e)| conv2d(c, x, e));
        match self.output {
            Output::Regression(Activation::Tanh) => tanh(y),
            Output::Regression(Activation::Sigmoid) => sigmoid(y),
            Output::Regression(Activation::Linear) | Output::Classification { .. } => y,
        }
    }
}
