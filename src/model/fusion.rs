//! Fusion layer of Iizuka, Simo-Serra and Ishikawa (2016), "Let there be Color!": the backbone's
//! global vector is projected to `fusion_dim`, tiled over every position of the local feature
//! map, concatenated with it, and mixed by a 1x1 conv + ReLU.

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Linear, LinearConfig};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};

use super::conv::{Epilogue, conv2d};

/// Global-vector fusion.
#[derive(Module, Debug)]
pub struct Fusion {
    /// Backbone global vector (average-pooled last stage) to `fusion_dim`, followed by ReLU.
    pub global: Linear,
    /// 1x1 conv over `[local, tiled global]` to `fusion_dim`, followed by ReLU.
    pub fuse: Conv2d,
}

impl Fusion {
    /// `local_channels` from the local branch, `global_dim` from the backbone, `dim` out.
    pub fn new(local_channels: usize, global_dim: usize, dim: usize, device: &Device) -> Self {
        Self {
            global: LinearConfig::new(global_dim, dim).init(device),
            fuse: Conv2dConfig::new([local_channels + dim, dim], [1, 1]).init(device),
        }
    }

    /// `local`: `[N, C, h, w]`, `global`: `[N, G]`; returns `[N, dim, h, w]`.
    pub fn forward(&self, local: Tensor<4>, global: Tensor<2>) -> Tensor<4> {
        let [n, _, h, w] = local.dims();
        let g = relu(self.global.forward(global));
        let [_, d] = g.dims();
        let tiled = g.reshape([n, d, 1, 1]).expand([n, d, h, w]);
        conv2d(&self.fuse, Tensor::cat(vec![local, tiled], 1), Epilogue::Relu)
    }
}
