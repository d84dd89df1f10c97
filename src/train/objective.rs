//! What a run optimises, and how its outputs become chroma: the task's targets, losses and decoding.
//!
//! Regression: chroma is scaled to the activation's range ([-1, 1] for tanh and linear, [0, 1] for
//! sigmoid) using the color space's chroma bounds; the loss is l2, l1 or huber per channel. HSV's hue is
//! an angle: its error is wrapped onto the circle (a prediction of 359 degrees for a truth of 1 is 2
//! degrees off, not 358) and weighted by the true saturation, since the hue of a gray pixel is
//! meaningless (Larsson et al. 2016 weight hue by chroma for the same reason).
//!
//! Classification (Zhang et al. 2016): each pixel's chroma is soft-encoded over its `soft_k` nearest
//! in-gamut bins (or hard-assigned), the loss is the cross-entropy against the softmax of the logits,
//! optionally weighted per pixel by the class-rebalancing weight of the true colour's bin, and
//! predictions are decoded by the annealed mean at temperature T (circular for hue).
//!
//! The losses themselves are in [`crate::loss`] (to add one, see there): the objective computes the
//! residual or the logits' targets, and weights and averages what the loss gives per value.

use std::sync::Arc;

use burn::tensor::{Device, Tensor, TensorData};

use crate::color::ColorSpace;
use crate::color::quantize::{ChromaBins, rebalance_weights};
use crate::data::ColorBatch;
use crate::loss::{ClassificationLoss, LossParams, RegressionLoss};
use crate::model::Activation;
use crate::spec::RunConfig;
use crate::spec::run_config::TaskConfig;

/// How model outputs relate to chroma.
#[derive(Clone)]
pub enum Objective {
    Regression {
        space: ColorSpace,
        loss: &'static dyn RegressionLoss,
        params: LossParams,
        /// Output range of the activation: (-1, 1) or (0, 1).
        range: (f32, f32),
    },
    Classification {
        space: ColorSpace,
        loss: &'static dyn ClassificationLoss,
        bins: Arc<ChromaBins>,
        soft_k: usize,
        soft_sigma: f32,
        /// Per-bin rebalancing weights, when `rebalance` is on.
        weights: Option<Vec<f32>>,
        temperature: f32,
    },
}

/// A batch's inputs, targets and weights on the host, built off the training thread.
pub struct HostBatch {
    pub n: usize,
    pub side: usize,
    pub gray: Vec<f32>,
    /// Regression: normalised chroma `[n][2][hw]`; classification: target distributions `[n][q][hw]`.
    pub target: Vec<f32>,
    pub target_channels: usize,
    /// Per-pixel weights `[n][hw]` (hue saturation weights or class rebalancing), if any.
    pub weight: Option<Vec<f32>>,
}

/// A batch on the device, ready for a training or validation step.
pub struct DeviceBatch {
    pub gray: Tensor<4>,
    pub target: Tensor<4>,
    pub weight: Option<Tensor<4>>,
}

impl HostBatch {
    /// Moves the batch to `device`. The training step uses this: on a CPU backend the buffers
    /// become the tensors' storage without another copy.
    pub fn into_device(self, device: &Device) -> DeviceBatch {
        let shape = [self.n, 1, self.side, self.side];
        let tensor =
            |v: Vec<f32>, c: usize| Tensor::from_data(TensorData::new(v, [shape[0], c, shape[2], shape[3]]), device);
        DeviceBatch {
            gray: tensor(self.gray, 1),
            target: tensor(self.target, self.target_channels),
            weight: self.weight.map(|w| tensor(w, 1)),
        }
    }
}

impl Objective {
    /// Builds the objective of a run. `train_counts` (the training set's pixels per chroma bin of the
    /// run, `ChromaBins::new(color space, bin_size)`: [`super::prior::Priors::own`]) gives the empirical
    /// prior for rebalancing; it is called only when the run rebalances, and no counts give the
    /// uniform prior.
    pub fn new(cfg: &RunConfig, train_counts: impl FnOnce() -> Vec<u64>) -> Objective {
        Self::build(cfg, Some(train_counts))
    }

    /// The objective for decoding a trained run's outputs: no training data, so no rebalancing weights.
    pub fn for_inference(cfg: &RunConfig) -> Objective {
        Self::build(cfg, None::<fn() -> Vec<u64>>)
    }

    fn build(cfg: &RunConfig, train_counts: Option<impl FnOnce() -> Vec<u64>>) -> Objective {
        let space = cfg.color_space;
        match &cfg.task {
            TaskConfig::Regression(r) => {
                Objective::Regression { space, loss: r.loss, params: r.params, range: target_range(r.activation) }
            }
            TaskConfig::Classification(c) => {
                let bins = ChromaBins::new(space, c.bin_size);
                let (soft_k, soft_sigma) = c.soft.map_or((1, 1.0), |soft| (soft.k, soft.sigma));
                let weights = train_counts.zip(c.rebalance).map(|(counts, rebalance)| {
                    let prior = bins.prior_of_counts(&counts(), rebalance.prior_sigma);
                    rebalance_weights(&prior, rebalance.lambda)
                });
                Objective::Classification {
                    space,
                    loss: c.loss,
                    bins,
                    soft_k,
                    soft_sigma,
                    weights,
                    temperature: c.temperature,
                }
            }
        }
    }

    /// Channels the model's head must output.
    pub fn output_channels(&self) -> usize {
        match self {
            Objective::Regression { .. } => 2,
            Objective::Classification { bins, .. } => bins.len(),
        }
    }

    pub fn space(&self) -> ColorSpace {
        match self {
            Objective::Regression { space, .. } | Objective::Classification { space, .. } => *space,
        }
    }

    /// Targets and weights of a prepared batch.
    pub fn host_batch(&self, batch: &ColorBatch) -> HostBatch {
        let hw = batch.side * batch.side;
        let (target, target_channels, weight) = match self {
            Objective::Regression { space, range, .. } => {
                let target = normalise_chroma(*space, *range, &batch.chroma, hw);
                // The hue term's weight is the true saturation in [0, 1] (chroma channel 1 is S).
                let weight = space.hue_channel().map(|_| {
                    batch.chroma.chunks_exact(2 * hw).flat_map(|img| img[hw..].iter().map(|s| s / 100.0)).collect()
                });
                (target, 2, weight)
            }
            Objective::Classification { bins, soft_k, soft_sigma, weights, .. } => {
                let target = bins.encode_batch(&batch.chroma, hw, *soft_k, *soft_sigma);
                let weight = weights.as_ref().map(|w| {
                    batch
                        .chroma
                        .chunks_exact(2 * hw)
                        .flat_map(|img| (0..hw).map(move |i| w[bins.nearest([img[i], img[hw + i]])]))
                        .collect()
                });
                (target, bins.len(), weight)
            }
        };
        HostBatch { n: batch.n, side: batch.side, gray: batch.gray.clone(), target, target_channels, weight }
    }

    /// The mean loss of a batch (a scalar tensor).
    pub fn loss(&self, output: Tensor<4>, batch: &DeviceBatch) -> Tensor<1> {
        match self {
            Objective::Regression { space, loss, params, range } => {
                let mut diff = output - batch.target.clone();
                if let Some(hue) = space.hue_channel() {
                    diff = wrap_hue(diff, hue, range.1 - range.0);
                }
                let per_value = loss.per_value(diff, params);
                match (&batch.weight, space.hue_channel()) {
                    (Some(w), Some(hue)) => {
                        let [n, c, h, wd] = per_value.dims();
                        let hue_term = per_value.clone().narrow(1, hue, 1) * w.clone();
                        let other = 1 - hue;
                        let rest = per_value.narrow(1, other, 1);
                        (hue_term + rest).sum().div_scalar((n * c * h * wd) as f32)
                    }
                    (None, _) | (_, None) => per_value.mean(),
                }
            }
            Objective::Classification { loss, .. } => {
                let per_pixel = loss.per_pixel(output, batch.target.clone());
                match &batch.weight {
                    Some(w) => (per_pixel * w.clone()).mean(),
                    None => per_pixel.mean(),
                }
            }
        }
    }

    /// Decodes model outputs `[n, c, h, w]` (copied to the host) into chroma `[n][2][hw]` in the
    /// color space's natural units. `temperature` overrides the run's annealed-mean T.
    pub fn decode(&self, output: Vec<f32>, hw: usize, temperature: Option<f32>) -> Vec<f32> {
        match self {
            Objective::Regression { space, range, .. } => denormalise_chroma(*space, *range, &output, hw),
            Objective::Classification { bins, temperature: t, .. } => {
                bins.annealed_mean(&output, hw, temperature.unwrap_or(*t))
            }
        }
    }
}

/// The range regression targets are scaled to: the activation's output range, [-1, 1] for an
/// unbounded (linear) output.
fn target_range(activation: Activation) -> (f32, f32) {
    match activation {
        Activation::Sigmoid => (0.0, 1.0),
        Activation::Tanh | Activation::Linear => (-1.0, 1.0),
    }
}

/// Wraps the hue channel's differences into half a period either side of zero.
fn wrap_hue(diff: Tensor<4>, hue: usize, period: f32) -> Tensor<4> {
    let [n, c, h, w] = diff.dims();
    let hue_diff = diff.clone().narrow(1, hue, 1);
    // round() has a zero gradient, so the wrapped difference keeps d(diff) = 1.
    let wrapped = hue_diff.clone() - hue_diff.div_scalar(period).round().mul_scalar(period);
    let parts = if hue == 0 { vec![wrapped, diff.narrow(1, 1, c - 1)] } else { vec![diff.narrow(1, 0, hue), wrapped] };
    let out = Tensor::cat(parts, 1);
    debug_assert_eq!(out.dims(), [n, c, h, w]);
    out
}

/// Chroma `[n][2][hw]` in natural units -> the activation's range.
pub fn normalise_chroma(space: ColorSpace, range: (f32, f32), chroma: &[f32], hw: usize) -> Vec<f32> {
    let bounds = space.chroma_bounds();
    chroma
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            let (lo, hi) = bounds[(i / hw) % 2];
            range.0 + (range.1 - range.0) * (v - lo) / (hi - lo)
        })
        .collect()
}

/// Inverse of [`normalise_chroma`], per image of `hw` pixels; hue wraps onto [0, 360).
pub fn denormalise_chroma(space: ColorSpace, range: (f32, f32), output: &[f32], hw: usize) -> Vec<f32> {
    let bounds = space.chroma_bounds();
    let hue = space.hue_channel();
    output
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            let channel = (i / hw) % 2;
            let (lo, hi) = bounds[channel];
            let x = lo + (hi - lo) * (v - range.0) / (range.1 - range.0);
            if hue == Some(channel) { x.rem_euclid(hi - lo) + lo } else { x }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chroma_normalisation_round_trips_and_wraps_hue() {
        let hw = 3;
        // Two images of 3 pixels, HSV chroma (hue, saturation).
        let chroma = vec![0.0, 180.0, 359.0, 0.0, 50.0, 100.0, 90.0, 270.0, 10.0, 20.0, 30.0, 40.0];
        for range in [(-1.0, 1.0), (0.0, 1.0)] {
            let norm = normalise_chroma(ColorSpace::Hsv, range, &chroma, hw);
            assert!(norm.iter().all(|v| (range.0 - 1e-6..=range.1 + 1e-6).contains(v)), "{norm:?}");
            let back = denormalise_chroma(ColorSpace::Hsv, range, &norm, hw);
            for (a, b) in back.iter().zip(&chroma) {
                assert!((a - b).abs() < 1e-3, "{back:?}");
            }
        }
        // A hue past the top of the range wraps around: 1.0 above the top is 360 degrees further.
        let over = denormalise_chroma(ColorSpace::Hsv, (0.0, 1.0), &[1.1, 0.5, 0.5, 0.5, 0.5, 0.5], hw);
        assert!((over[0] - 36.0).abs() < 1e-3, "{over:?}");
    }

    #[test]
    fn hue_errors_are_wrapped_onto_the_circle() {
        let device = Device::flex();
        // Predicted hue 0.95 vs truth 0.05 in sigmoid units (period 1): 0.1 apart on the circle.
        let diff = Tensor::<4>::from_data(TensorData::new(vec![0.9f32, 0.2], [1, 2, 1, 1]), &device);
        let wrapped = wrap_hue(diff, 0, 1.0).into_data().try_to_vec::<f32>().unwrap();
        assert!((wrapped[0] + 0.1).abs() < 1e-6, "{wrapped:?}");
        assert!((wrapped[1] - 0.2).abs() < 1e-6, "the saturation channel is left alone: {wrapped:?}");
    }
}
