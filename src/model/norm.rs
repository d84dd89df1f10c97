//! Batch norm followed by ReLU, the pair every local block applies after its conv, as one operation.
//!
//! burn 0.22's training batch norm is one autodiff node, but on the flex CPU backend its forward
//! and backward are compositions of generic tensor operations: channel-major transposed copies for
//! the statistics, then a subtraction, a division, a multiplication and an addition over the whole
//! activation, each writing a new tensor, then the ReLU's own pass and its backward mask (about 5x
//! PyTorch's time on a [64, 128, 32, 32] batch). Here, on `Autodiff<Flex>` with `f32` data, the
//! forward is two passes (statistics, then normalise + affine + ReLU writing the output once) and
//! the backward two (the channel sums, then the input gradient), with the ReLU's mask folded in.
//!
//! Everywhere else (inference, other backends such as CUDA or wgpu, other float types, checkpointing
//! autodiff) [`batch_norm_relu`] is exactly `relu(bn.forward(x))`: the fast path is taken only where
//! it is valid. The tests below check the fused path against that composition: output, the
//! gradients of the input, gamma and beta, and the running statistics.

use burn::backend::TensorMetadata;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::{Autodiff, Flex};
use burn::nn::BatchNorm;
use burn::tensor::activation::relu;
use burn::tensor::{DType, Tensor, TensorData};
use rayon::prelude::*;

use crate::flex::{contiguous, slice};

type Ad = Autodiff<Flex, NoCheckpointing>;

/// `relu(bn.forward(x))` for `x: [N, C, H, W]`, in one fused operation where that is possible (see
/// the module docs). In training mode the running statistics are updated as burn's batch norm
/// updates them.
pub fn batch_norm_relu(bn: &BatchNorm, x: Tensor<4>) -> Tensor<4> {
    if x.device().is_autodiff()
        && bn.training.is_enabled()
        && x.dtype() == DType::F32
        && let Some(y) = train_flex(bn, &x)
    {
        return y;
    }
    relu(bn.forward(x))
}

/// The fused training path on `Autodiff<Flex>`; `None` (nothing consumed) on any other backend.
fn train_flex(bn: &BatchNorm, x: &Tensor<4>) -> Option<Tensor<4>> {
    let xp = x.clone().try_into_primitive::<Ad>().ok()?;
    let gamma = bn.gamma.val().try_into_primitive::<Ad>().ok()?;
    let beta = bn.beta.val().try_into_primitive::<Ad>().ok()?;
    if gamma.primitive().dtype() != DType::F32 || beta.primitive().dtype() != DType::F32 {
        return None;
    }
    let [n, c, h, w] = x.dims();
    let dims = Dims { n, c, hw: h * w };
    let x_data = contiguous(xp.primitive());
    let gamma_data = contiguous(gamma.primitive());
    let beta_data = contiguous(beta.primitive());
    let (y, stats) = forward(slice(&x_data), slice(&gamma_data), slice(&beta_data), dims, bn.epsilon);
    let y = FlexTensor::from_data(TensorData::new(y, [n, c, h, w]));

    let device = x.device();
    let update = |state: &burn::module::RunningState<Tensor<1>>, batch: &[f32]| {
        let batch = Tensor::<1>::from_data(TensorData::new(batch.to_vec(), [c]), &device);
        let running = state.value_sync().to_device(&device);
        state.update(running.mul_scalar(1.0 - bn.momentum).add(batch.mul_scalar(bn.momentum)).detach());
    };
    update(&bn.running_mean, &stats.mean);
    update(&bn.running_var, &stats.var);

    let out = match BnRelu.prepare::<NoCheckpointing>([xp.node(), gamma.node(), beta.node()]).compute_bound().stateful()
    {
        OpsKind::Tracked(prep) => {
            let state = BnReluState { x: x_data, gamma: gamma_data, y: y.clone(), stats, dims };
            prep.finish(state, y)
        }
        OpsKind::UnTracked(prep) => prep.finish(y),
    };
    Some(Tensor::from_primitive::<Ad>(out))
}

#[derive(Clone, Copy, Debug)]
struct Dims {
    n: usize,
    c: usize,
    hw: usize,
}

/// Per-channel batch statistics (biased variance, as burn's running statistics use).
#[derive(Clone, Debug)]
struct Stats {
    mean: Vec<f32>,
    var: Vec<f32>,
    inv_std: Vec<f32>,
}

#[derive(Clone, Debug)]
struct BnReluState {
    x: FlexTensor,
    gamma: FlexTensor,
    /// The output: its sign is the ReLU's mask.
    y: FlexTensor,
    stats: Stats,
    dims: Dims,
}

#[derive(Debug)]
struct BnRelu;

impl Backward<Flex, 3> for BnRelu {
    type State = BnReluState;

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _checkpointer: &mut Checkpointer) {
        let [node_x, node_gamma, node_beta] = ops.parents;
        let grad = contiguous(&grads.consume::<Flex>(&ops.node));
        let s = ops.state;
        let d = s.dims;
        let (dx, dgamma, dbeta) = backward(slice(&grad), slice(&s.y), slice(&s.x), slice(&s.gamma), &s.stats, d);
        if let Some(node) = node_x {
            grads.register::<Flex>(node.id, FlexTensor::from_data(TensorData::new(dx, s.x.shape())));
        }
        if let Some(node) = node_gamma {
            grads.register::<Flex>(node.id, FlexTensor::from_data(TensorData::new(dgamma, [d.c])));
        }
        if let Some(node) = node_beta {
            grads.register::<Flex>(node.id, FlexTensor::from_data(TensorData::new(dbeta, [d.c])));
        }
    }
}

/// ReLU that keeps NaN (as burn's does), so a diverging run still sees a NaN loss.
#[inline(always)]
pub(super) fn relu_nan(v: f32) -> f32 {
    if v > 0.0 || v.is_nan() { v } else { 0.0 }
}

/// Lanes of the f64 accumulators: independent sums the compiler can keep in vector registers.
const LANES: usize = 8;

/// Sums of `f(i)` over one plane in f64, in `LANES` independent accumulators.
#[inline(always)]
fn plane_sums<const K: usize>(len: usize, f: impl Fn(usize) -> [f64; K]) -> [f64; K] {
    let mut acc = [[0f64; K]; LANES];
    let full = len / LANES * LANES;
    for base in (0..full).step_by(LANES) {
        for (lane, sums) in acc.iter_mut().enumerate() {
            for (sum, v) in sums.iter_mut().zip(f(base + lane)) {
                *sum += v;
            }
        }
    }
    let mut out = [0f64; K];
    for i in full..len {
        for (sum, v) in out.iter_mut().zip(f(i)) {
            *sum += v;
        }
    }
    for sums in &acc {
        for (total, v) in out.iter_mut().zip(sums) {
            *total += v;
        }
    }
    out
}

/// Per-channel statistics in one pass (sums and sums of squares in f64, so `E[x^2] - E[x]^2`
/// keeps f32 accuracy), then the normalised, scaled, shifted and rectified output in one more.
fn forward(x: &[f32], gamma: &[f32], beta: &[f32], d: Dims, epsilon: f64) -> (Vec<f32>, Stats) {
    let count = (d.n * d.hw) as f64;
    let moments: Vec<(f64, f64)> = (0..d.c)
        .into_par_iter()
        .map(|ch| {
            let (mut s, mut q) = (0.0, 0.0);
            for img in 0..d.n {
                let plane = &x[(img * d.c + ch) * d.hw..][..d.hw];
                let [ps, pq] = plane_sums(d.hw, |i| {
                    let v = plane[i] as f64;
                    [v, v * v]
                });
                s += ps;
                q += pq;
            }
            let mean = s / count;
            (mean, (q / count - mean * mean).max(0.0))
        })
        .collect();
    let stats = Stats {
        mean: moments.iter().map(|m| m.0 as f32).collect(),
        var: moments.iter().map(|m| m.1 as f32).collect(),
        inv_std: moments.iter().map(|m| (1.0 / (m.1 + epsilon).sqrt()) as f32).collect(),
    };
    let mut y = vec![0f32; x.len()];
    y.par_chunks_mut(d.hw).zip(x.par_chunks(d.hw)).enumerate().for_each(|(p, (out, inp))| {
        let ch = p % d.c;
        let scale = gamma[ch] * stats.inv_std[ch];
        let shift = beta[ch] - stats.mean[ch] * scale;
        for (o, &v) in out.iter_mut().zip(inp) {
            *o = relu_nan(v * scale + shift);
        }
    });
    (y, stats)
}

/// Gradients of `relu(batch_norm(x))` with respect to `x`, `gamma` and `beta` given the output's
/// gradient `g`: with `g'` = `g` where the output is positive (or NaN), `x^` the normalised input
/// and M the values per channel, `dbeta = sum g'`, `dgamma = sum g' x^` and
/// `dx = gamma inv_std (g' - dbeta / M - x^ dgamma / M)`, burn's formula.
fn backward(g: &[f32], y: &[f32], x: &[f32], gamma: &[f32], st: &Stats, d: Dims) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let masked = |g: f32, y: f32| if y > 0.0 || y.is_nan() { g } else { 0.0 };
    let sums: Vec<(f64, f64)> = (0..d.c)
        .into_par_iter()
        .map(|ch| {
            let (mean, inv_std) = (st.mean[ch], st.inv_std[ch]);
            let (mut sb, mut sg) = (0.0, 0.0);
            for img in 0..d.n {
                let at = (img * d.c + ch) * d.hw;
                let (g, y, x) = (&g[at..][..d.hw], &y[at..][..d.hw], &x[at..][..d.hw]);
                let [b, gm] = plane_sums(d.hw, |i| {
                    let gi = masked(g[i], y[i]);
                    [gi as f64, (gi * (x[i] - mean) * inv_std) as f64]
                });
                sb += b;
                sg += gm;
            }
            (sb, sg)
        })
        .collect();
    let dbeta: Vec<f32> = sums.iter().map(|s| s.0 as f32).collect();
    let dgamma: Vec<f32> = sums.iter().map(|s| s.1 as f32).collect();
    let count = (d.n * d.hw) as f32;
    let mut dx = vec![0f32; x.len()];
    dx.par_chunks_mut(d.hw).enumerate().for_each(|(p, out)| {
        let ch = p % d.c;
        let at = p * d.hw;
        let (g, y, x) = (&g[at..][..d.hw], &y[at..][..d.hw], &x[at..][..d.hw]);
        let (mean, inv_std) = (st.mean[ch], st.inv_std[ch]);
        let scale = gamma[ch] * inv_std;
        let mean_g = dbeta[ch] / count;
        let mean_gx = dgamma[ch] / count;
        for i in 0..d.hw {
            let xhat = (x[i] - mean) * inv_std;
            out[i] = scale * (masked(g[i], y[i]) - mean_g - xhat * mean_gx);
        }
    });
    (dx, dgamma, dbeta)
}

#[cfg(test)]
mod tests {
    use burn::module::{Module, Param};
    use burn::nn::BatchNormConfig;
    use burn::tensor::{Device, Distribution};

    use super::*;
    use crate::flex::test_support::{assert_close, values};

    /// A batch norm with non-trivial gamma and beta (so the ReLU cuts part of every channel).
    fn bn(c: usize, gamma: &[f32], beta: &[f32], device: &Device) -> BatchNorm {
        let mut bn = BatchNormConfig::new(c).init(device);
        bn.gamma = Param::from_tensor(Tensor::from_data(TensorData::new(gamma.to_vec(), [c]), device));
        bn.beta = Param::from_tensor(Tensor::from_data(TensorData::new(beta.to_vec(), [c]), device));
        bn
    }

    #[test]
    fn fused_batch_norm_relu_matches_burns_layers() {
        let device = Device::flex().autodiff();
        // 5 x 7 planes: not a multiple of the accumulator lanes; an offset mean tests the variance.
        let shape = [4, 6, 5, 7];
        let x = Tensor::<4>::random(shape, Distribution::Normal(3.0, 2.0), &device);
        let upstream = Tensor::<4>::random(shape, Distribution::Normal(0.0, 1.0), &device);
        let gamma = [1.0, 0.5, -0.7, 2.0, 1.3, 0.1];
        let beta = [0.0, 0.3, -0.2, 0.5, -1.0, 0.05];
        let run = |fused: bool| {
            let bn = bn(6, &gamma, &beta, &device);
            let x = x.clone().detach().require_grad();
            let y = if fused {
                train_flex(&bn, &x).expect("the fused path runs on flex")
            } else {
                relu(bn.forward(x.clone()))
            };
            let grads = (y.clone() * upstream.clone()).sum().backward();
            let grad = |p: &Param<Tensor<1>>| p.val().grad(&grads).unwrap().into_data().try_to_vec::<f32>().unwrap();
            let (dgamma, dbeta) = (grad(&bn.gamma), grad(&bn.beta));
            let dx = x.grad(&grads).unwrap().into_data().try_to_vec::<f32>().unwrap();
            let valid = bn.valid();
            let stats = |t: Tensor<1>| t.into_data().try_to_vec::<f32>().unwrap();
            (values(y), dx, dgamma, dbeta, stats(valid.running_mean.value()), stats(valid.running_var.value()))
        };
        let (f, b) = (run(true), run(false));
        assert!(b.0.contains(&0.0) && b.0.iter().any(|&v| v > 0.0), "the ReLU must cut some values");
        assert_close("output", &f.0, &b.0, 1e-5);
        assert_close("x grad", &f.1, &b.1, 1e-4);
        assert_close("gamma grad", &f.2, &b.2, 1e-4);
        assert_close("beta grad", &f.3, &b.3, 1e-4);
        assert_close("running mean", &f.4, &b.4, 1e-5);
        assert_close("running var", &f.5, &b.5, 1e-5);
    }

    #[test]
    fn batch_norm_relu_keeps_nan_and_falls_back_without_autodiff() {
        let device = Device::flex().autodiff();
        let bn = bn(2, &[1.0, 1.0], &[0.0, 0.0], &device);
        let mut data = vec![1.0f32; 2 * 2 * 4];
        data[0] = f32::NAN;
        let x = Tensor::<4>::from_data(TensorData::new(data, [2, 2, 2, 2]), &device);
        let y = values(batch_norm_relu(&bn, x));
        assert!(y[..4].iter().all(|v| v.is_nan()), "a NaN poisons its channel: {y:?}");
        assert!(y[4..8].iter().all(|&v| v == 0.0), "a constant channel normalises to 0: {y:?}");

        // Without autodiff the fused path does not apply; the result is burn's inference batch norm.
        let plain = Device::flex();
        let bn = bn_plain(&plain);
        let x = Tensor::<4>::random([2, 2, 3, 3], Distribution::Normal(0.0, 1.0), &plain);
        assert!(train_flex(&bn, &x).is_none());
        assert_eq!(values(batch_norm_relu(&bn, x.clone())), values(relu(bn.forward(x))));
    }

    fn bn_plain(device: &Device) -> BatchNorm {
        bn(2, &[0.5, -1.0], &[0.1, 0.2], device)
    }
}
