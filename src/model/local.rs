//! The local branch: a stack of 3x3 conv + batch norm + ReLU blocks, some followed by a 2x2 max
//! pool, run on the gray input (the seed's whole feature extractor).

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, PaddingConfig2d};
use burn::tensor::{Device, Tensor};

use super::conv::conv_bn_relu;
use super::pool::max_pool2d;

/// One local block: conv 3x3 (stride 1, same padding), batch norm, ReLU, optional 2x2 max pool.
#[derive(Module, Debug)]
pub struct LocalBlock {
    /// 3x3 convolution.
    pub conv: Conv2d,
    /// Batch norm after the conv.
    pub bn: BatchNorm,
    /// 2x2 max pool after the ReLU, when this conv is in `local_pool_after`.
    pub pool: Option<MaxPool2d>,
}

impl LocalBlock {
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let x = conv_bn_relu(&self.conv, &self.bn, x);
        match &self.pool {
            Some(pool) => max_pool2d(pool, x),
            None => x,
        }
    }
}

/// The local feature extractor. Output: `[N, last width, H / 2^p, W / 2^p]` for p pools.
#[derive(Module, Debug)]
pub struct LocalFeatures {
    /// The blocks in order.
    pub blocks: Vec<LocalBlock>,
}

impl LocalFeatures {
    /// `widths[i]` filters for conv `i + 1`; a pool after each conv named (1-based) in
    /// `pool_after`. The input has one channel (luma).
    pub fn new(widths: &[usize], pool_after: &[usize], device: &Device) -> Self {
        let mut in_ch = 1;
        let blocks = widths
            .iter()
            .enumerate()
            .map(|(i, &out_ch)| {
                let block = LocalBlock {
                    conv: Conv2dConfig::new([in_ch, out_ch], [3, 3]).with_padding(PaddingConfig2d::Same).init(device),
                    bn: BatchNormConfig::new(out_ch).init(device),
                    pool: pool_after.contains(&(i + 1)).then(|| MaxPool2dConfig::new([2, 2]).init()),
                };
                in_ch = out_ch;
                block
            })
            .collect();
        Self { blocks }
    }

    /// Channels of the output map.
    pub fn out_channels(&self) -> usize {
        let last = self.blocks.last().expect("at least one local block");
        last.conv.weight.lazy_shape()[0]
    }

    /// `gray`: `[N, 1, H, W]` luma in `[0, 1]`.
    pub fn forward(&self, gray: Tensor<4>) -> Tensor<4> {
        self.blocks.iter().fold(gray, |x, b| b.forward(x))
    }
}
