//! Cross-entropy against a target distribution over the chroma bins (Zhang et al. 2016, eq. 2): with
//! a soft-encoded target it spreads credit over the bins near the true colour.
//!
//! On `Autodiff<Flex>` (CPU training) the loss and its gradient are computed here in one pass over
//! the logits each way, pixel block by pixel block: `lse = log sum exp(logits)` per pixel, the loss
//! `lse * sum t - sum t * logits`, and the gradient `g * (softmax * sum t - t)`. burn's composition
//! (log-softmax's max, subtraction, exp, sum and log, then a product and a sum, each a new
//! `[n, q, h, w]` tensor, and as many in the backward) made a classification run's step about 3.5x
//! a regression run's on the quickstart's net. Elsewhere (GPU backends, inference, a target that
//! needs a gradient) it is burn's composition.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::{Autodiff, Flex};
use burn::tensor::activation::log_softmax;
use burn::tensor::{DType, Tensor, TensorData};
use rayon::prelude::*;

use super::ClassificationLoss;
use crate::flex::{contiguous, slice};

type Ad = Autodiff<Flex, NoCheckpointing>;

/// `-sum_q target_q log softmax(logits)_q` per pixel.
#[derive(Debug)]
pub struct CrossEntropy;

impl ClassificationLoss for CrossEntropy {
    fn per_pixel(&self, logits: Tensor<4>, target: Tensor<4>) -> Tensor<4> {
        train_flex(&logits, &target).unwrap_or_else(|| composed(logits, target))
    }
}

/// The loss as burn's tensor operations.
fn composed(logits: Tensor<4>, target: Tensor<4>) -> Tensor<4> {
    (log_softmax(logits, 1) * target).sum_dim(1).neg()
}

/// Pixels a thread works on at once: the block's running sums stay in L1.
const BLOCK: usize = 256;

/// The fused path on `Autodiff<Flex>` with an untracked `f32` target; `None` elsewhere.
fn train_flex(logits: &Tensor<4>, target: &Tensor<4>) -> Option<Tensor<4>> {
    let ad = logits.device().is_autodiff() && logits.dtype() == DType::F32 && target.dtype() == DType::F32;
    if !ad || target.is_require_grad() || logits.dims() != target.dims() {
        return None;
    }
    let [n, q, h, w] = logits.dims();
    let lp = logits.clone().try_into_primitive::<Ad>().ok()?;
    let tp = target.clone().inner().try_into_primitive::<Flex>().ok()?;
    let (l, t) = (contiguous(lp.primitive()), contiguous(&tp));
    let dims = Dims { n, q, h, w, hw: h * w };
    let sums = forward(slice(&l), slice(&t), dims);
    let loss = FlexTensor::from_data(TensorData::new(sums.loss.clone(), [n, 1, h, w]));
    let out = match CrossEntropyBackward.prepare::<NoCheckpointing>([lp.node()]).compute_bound().stateful() {
        OpsKind::Tracked(prep) => prep.finish(CeState { logits: l, target: t, sums, dims }, loss),
        OpsKind::UnTracked(prep) => prep.finish(loss),
    };
    Some(Tensor::from_primitive::<Ad>(out))
}

#[derive(Clone, Copy, Debug)]
struct Dims {
    n: usize,
    q: usize,
    h: usize,
    w: usize,
    /// Pixels of an image: `h * w`.
    hw: usize,
}

/// Per pixel: the loss, `log sum exp(logits)` and the target's total mass.
#[derive(Clone, Debug)]
struct Sums {
    loss: Vec<f32>,
    lse: Vec<f32>,
    mass: Vec<f32>,
}

/// The blocks of pixels of every image: (image, first pixel, pixels).
fn blocks(d: Dims) -> impl ParallelIterator<Item = (usize, usize, usize)> {
    let per_image = d.hw.div_ceil(BLOCK);
    (0..d.n * per_image).into_par_iter().map(move |i| {
        let (image, start) = (i / per_image, i % per_image * BLOCK);
        (image, start, BLOCK.min(d.hw - start))
    })
}

/// The loss of every pixel, with what the backward needs.
fn forward(l: &[f32], t: &[f32], d: Dims) -> Sums {
    let per_block: Vec<(usize, Vec<[f32; 3]>)> = blocks(d)
        .map(|(image, start, len)| {
            let base = image * d.q * d.hw + start;
            let (l_rows, t_rows) = (&l[base..], &t[base..]);
            let row = |k: usize| &l_rows[k * d.hw..][..len];
            let mut max = row(0).to_vec();
            for k in 1..d.q {
                max.iter_mut().zip(row(k)).for_each(|(m, &v)| *m = if v > *m || v.is_nan() { v } else { *m });
            }
            let (mut sum, mut mass, mut dot) = (vec![0f32; len], vec![0f32; len], vec![0f32; len]);
            for k in 0..d.q {
                for (i, (&v, &p)) in row(k).iter().zip(&t_rows[k * d.hw..][..len]).enumerate() {
                    sum[i] += (v - max[i]).exp();
                    mass[i] += p;
                    dot[i] += p * v;
                }
            }
            let out = (0..len).map(|i| {
                let lse = max[i] + sum[i].ln();
                [lse * mass[i] - dot[i], lse, mass[i]]
            });
            (image * d.hw + start, out.collect())
        })
        .collect();
    let mut sums = Sums { loss: vec![0.0; d.n * d.hw], lse: vec![0.0; d.n * d.hw], mass: vec![0.0; d.n * d.hw] };
    for (at, values) in per_block {
        for (i, [loss, lse, mass]) in values.into_iter().enumerate() {
            (sums.loss[at + i], sums.lse[at + i], sums.mass[at + i]) = (loss, lse, mass);
        }
    }
    sums
}

#[derive(Clone, Debug)]
struct CeState {
    logits: FlexTensor,
    target: FlexTensor,
    sums: Sums,
    dims: Dims,
}

#[derive(Debug)]
struct CrossEntropyBackward;

impl Backward<Flex, 1> for CrossEntropyBackward {
    type State = CeState;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _checkpointer: &mut Checkpointer) {
        let [node] = ops.parents;
        let grad = contiguous(&grads.consume::<Flex>(&ops.node));
        let Some(node) = node else { return };
        let s = ops.state;
        let d = s.dims;
        let dl = backward(slice(&grad), slice(&s.logits), slice(&s.target), &s.sums, d);
        grads.register::<Flex>(node.id, FlexTensor::from_data(TensorData::new(dl, [d.n, d.q, d.h, d.w])));
    }
}

/// `dlogits = g * (softmax(logits) * mass - target)` for the per-pixel upstream gradient `g`.
fn backward(g: &[f32], l: &[f32], t: &[f32], sums: &Sums, d: Dims) -> Vec<f32> {
    let mut dl = vec![0f32; l.len()];
    dl.par_chunks_mut(d.q * d.hw).zip(l.par_chunks(d.q * d.hw)).zip(t.par_chunks(d.q * d.hw)).enumerate().for_each(
        |(image, ((dl, l), t))| {
            let px = image * d.hw..(image + 1) * d.hw;
            let (g, lse, mass) = (&g[px.clone()], &sums.lse[px.clone()], &sums.mass[px]);
            for ((dl, l), t) in dl.chunks_exact_mut(d.hw).zip(l.chunks_exact(d.hw)).zip(t.chunks_exact(d.hw)) {
                for i in 0..d.hw {
                    dl[i] = g[i] * ((l[i] - lse[i]).exp() * mass[i] - t[i]);
                }
            }
        },
    );
    dl
}

#[cfg(test)]
mod tests {
    use burn::tensor::{Device, Distribution};

    use super::*;
    use crate::flex::test_support::{assert_close, values};
    use crate::loss::tests::column;

    #[test]
    fn the_fused_loss_and_its_gradient_are_burns() {
        let device = Device::flex().autodiff();
        // 300 pixels: a whole block and part of one; 13 bins; targets of mass 1 and 0.5.
        for (dims, mass) in [([2, 13, 20, 15], 1.0), ([3, 5, 3, 4], 0.5)] {
            let logits = Tensor::<4>::random(dims, Distribution::Normal(0.0, 3.0), &device).require_grad();
            let raw = Tensor::<4>::random(dims, Distribution::Uniform(0.0, 1.0), &device);
            let target = (raw.clone() / raw.sum_dim(1)).mul_scalar(mass);
            let upstream =
                Tensor::<4>::random([dims[0], 1, dims[2], dims[3]], Distribution::Uniform(0.0, 2.0), &device);
            assert!(train_flex(&logits, &target).is_some(), "{dims:?}: the fused path runs");
            let run = |loss: Tensor<4>| {
                let grads = (loss.clone() * upstream.clone()).sum().backward();
                (values(loss), values(logits.grad(&grads).unwrap()))
            };
            let (fused, dfused) = run(CrossEntropy.per_pixel(logits.clone(), target.clone()));
            let (burn, dburn) = run(composed(logits.clone(), target.clone()));
            assert_close("loss", &fused, &burn, 1e-5);
            assert_close("logits' gradient", &dfused, &dburn, 1e-5);
        }
    }

    #[test]
    fn is_the_negative_log_likelihood_of_a_one_hot_target() {
        // Logits (0, ln 3): softmax (1/4, 3/4); a one-hot target on the second bin costs -ln(3/4).
        let loss = values(CrossEntropy.per_pixel(column(&[0.0, 3.0f32.ln()]), column(&[0.0, 1.0])));
        assert_eq!(loss.len(), 1);
        assert!((loss[0] - (4.0f32 / 3.0).ln()).abs() < 1e-6, "{loss:?}");
    }
}
