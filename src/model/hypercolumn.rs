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
use burn::tensor::{Device, Tensor, TensorData};

use super::conv::{Epilogue, conv2d};

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
            parts.push(resize_bilinear(s, h, w));
        }
        conv2d(&self.fuse, Tensor::cat(parts, 1), Epilogue::Relu)
    }
}

/// `stage` (`[N, C, sh, sw]`) bilinearly resized to `[N, C, h, w]`, with align_corners = false
/// (PyTorch's default, which keeps pixel centres aligned).
///
/// Written as two small matrix products, `A_h · stage · A_wᵀ`, rather than burn's `interpolate`:
/// the result and its gradient are the same (tested below on flex), but burn 0.22's GPU backends
/// (wgpu, cuda) have no bilinear backward ("Bilinear interpolation backward is not supported by
/// JIT backend", on wgpu over lavapipe), which ended the process with SIGSEGV in the first
/// training step on an H200. A matmul's backward is another matmul, on every backend.
fn resize_bilinear(stage: Tensor<4>, h: usize, w: usize) -> Tensor<4> {
    let [_, _, sh, sw] = stage.dims();
    if (sh, sw) == (h, w) {
        return stage;
    }
    let device = stage.device();
    let rows = Tensor::<2>::from_data(TensorData::new(interpolation_weights(h, sh), [h, sh]), &device);
    let cols = Tensor::<2>::from_data(TensorData::new(interpolation_weights(w, sw), [w, sw]), &device);
    rows.unsqueeze::<4>().matmul(stage.matmul(cols.transpose().unsqueeze::<4>()))
}

/// The `[out, src]` weights of a 1-D linear resize from `src` samples to `out`, align_corners =
/// false: output sample `o` sits at source coordinate `(o + 0.5) * src / out - 0.5`, clamped at 0
/// (PyTorch's `area_pixel_compute_source_index`), and mixes its two neighbours, the upper one
/// clamped to the last sample.
fn interpolation_weights(out: usize, src: usize) -> Vec<f32> {
    let scale = src as f32 / out as f32;
    let mut weights = vec![0.0; out * src];
    for o in 0..out {
        let x = ((o as f32 + 0.5) * scale - 0.5).max(0.0);
        let lower = (x.floor() as usize).min(src - 1);
        let upper = (lower + 1).min(src - 1);
        let t = x - lower as f32;
        weights[o * src + lower] += 1.0 - t;
        weights[o * src + upper] += t;
    }
    weights
}

#[cfg(test)]
mod tests {
    use burn::tensor::module::interpolate;
    use burn::tensor::ops::{InterpolateMode, InterpolateOptions};
    use burn::tensor::{Distribution, Tensor};

    use super::*;

    /// The matrix form gives burn's own bilinear interpolation's values and input gradient (on
    /// flex, where burn's kernels work), upsampling by the factors the backbones need, from one
    /// pixel, by a non-integer factor, and downsampling.
    #[test]
    fn resizing_matches_burns_bilinear_interpolation() {
        let device = Device::flex().autodiff();
        for (from, to) in [([4, 4], [8, 8]), ([2, 2], [8, 8]), ([1, 1], [8, 8]), ([3, 5], [7, 6]), ([8, 8], [4, 4])] {
            let x = Tensor::<4>::random([2, 3, from[0], from[1]], Distribution::Normal(0.0, 1.0), &device);
            let upstream = Tensor::<4>::random([2, 3, to[0], to[1]], Distribution::Normal(0.0, 1.0), &device);
            let run = |ours: bool| {
                let x = x.clone().detach().require_grad();
                let y = if ours {
                    resize_bilinear(x.clone(), to[0], to[1])
                } else {
                    let options = InterpolateOptions::new(InterpolateMode::Bilinear).with_align_corners(false);
                    interpolate(x.clone(), options.with_output_size(to))
                };
                let grads = (y.clone() * upstream.clone()).sum().backward();
                let vec = |t: Tensor<4>| t.into_data().try_to_vec::<f32>().unwrap();
                (vec(y), vec(x.grad(&grads).unwrap()))
            };
            let ((y, dx), (y_ref, dx_ref)) = (run(true), run(false));
            assert_eq!(y.len(), 2 * 3 * to[0] * to[1]);
            for (what, ours, burns) in [("values", &y, &y_ref), ("gradient", &dx, &dx_ref)] {
                for (a, b) in ours.iter().zip(burns) {
                    assert!((a - b).abs() <= 1e-5 * (1.0 + b.abs()), "{from:?} -> {to:?} {what}: {a} vs {b}");
                }
            }
        }
    }

    /// Worked by hand: 2 samples to 4 sit at source coordinates -0.25 (clamped to 0), 0.25, 0.75
    /// and 1.25 (upper neighbour clamped), so the rows are [1, 0], [.75, .25], [.25, .75], [0, 1].
    #[test]
    fn interpolation_weights_by_hand() {
        assert_eq!(interpolation_weights(4, 2), vec![1.0, 0.0, 0.75, 0.25, 0.25, 0.75, 0.0, 1.0]);
        assert_eq!(interpolation_weights(3, 1), vec![1.0, 1.0, 1.0]);
    }
}
