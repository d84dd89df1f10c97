//! Hypercolumn mixing after Larsson, Maire and Shakhnarovich (2016), "Learning Representations
//! for Automatic Colorization": several backbone stages are bilinearly upsampled to the local
//! map's resolution and stacked per pixel with the local features, then mixed by a 1x1 conv + ReLU.
//!
//! The stages are the backbone's three deepest (VGG blocks 3-5, ResNet layers 2-4; see
//! [`BackboneNet::stage_channels`](super::BackboneNet::stage_channels)). They are resized to the
//! local map's resolution, not the input's: the full-resolution upsample comes after the 1x1
//! mix, where the mix is 4x cheaper with the default single local pool. With the default local
//! branch every stage is coarser than the local map; a stage finer than it (several local
//! pools) is bilinearly downsampled.

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::tensor::activation::relu;
use burn::tensor::module::interpolate;
use burn::tensor::ops::{InterpolateMode, InterpolateOptions};
use burn::tensor::{Device, Tensor};

/// Per-pixel stacking of local features and upsampled backbone stages.
#[derive(Module, Debug)]
pub struct Hypercolumn {
    /// 1x1 conv over `[local, stage_1, .., stage_k]` to `fusion_dim`, followed by ReLU.
    pub fuse: Conv2d,
}

impl Hypercolumn {
    /// `local_channels` from the local branch, `stage_channels` of the stages in order.
    pub fn new(local_channels: usize, stage_channels: &[usize], dim: usize, device: &Device) -> Self {
        let total = local_channels + stage_channels.iter().sum::<usize>();
        Self { fuse: Conv2dConfig::new([total, dim], [1, 1]).init(device) }
    }

    /// `local`: `[N, C, h, w]`; `stages`: `[N, C_i, h_i, w_i]`. Returns `[N, dim, h, w]`.
    pub fn forward(&self, local: Tensor<4>, stages: Vec<Tensor<4>>) -> Tensor<4> {
        let [_, _, h, w] = local.dims();
        let mut parts = Vec::with_capacity(stages.len() + 1);
        parts.push(local);
        for s in stages {
            let [_, _, sh, sw] = s.dims();
            parts.push(if (sh, sw) == (h, w) {
                s
            } else {
                // align_corners = false is PyTorch's default and keeps pixel centres aligned.
                interpolate(
                    s,
                    InterpolateOptions::new(InterpolateMode::Bilinear)
                        .with_align_corners(false)
                        .with_output_size([h, w]),
                )
            });
        }
        relu(self.fuse.forward(Tensor::cat(parts, 1)))
    }
}
