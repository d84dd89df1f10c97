//! Max pooling over non-overlapping windows (kernel = stride, no padding, no dilation), the local
//! branch's 2x2 pool, with its own backward on `Autodiff<Flex>` and its own forward on flex.
//!
//! burn 0.22's flex max pool is generic (any stride, padding, dilation) and its backward scatters
//! through a full index tensor: it was 7-8% of the standard model's training step once the convs
//! ran on their own kernels. Here the forward reads each window once and keeps the position of its
//! maximum as one byte; the backward writes each output's gradient to that position. Ties go to the
//! first position in the window (row by row) and a NaN is the maximum of its window, as in burn's, so
//! a diverging run still sees NaN downstream.
//!
//! Everywhere else (other backends, other float types, overlapping or padded windows) [`max_pool2d`]
//! is `pool.forward(x)`. The tests check both paths against burn's: output and input gradient.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::{Autodiff, Flex};
use burn::nn::PaddingConfig2d;
use burn::nn::pool::MaxPool2d;
use burn::tensor::{DType, Tensor, TensorData};
use rayon::prelude::*;

use crate::flex::{contiguous, slice};

type Ad = Autodiff<Flex, NoCheckpointing>;

/// `pool.forward(x)` for `x: [N, C, H, W]`, through this module's kernels where they apply (see the
/// module docs).
pub fn max_pool2d(pool: &MaxPool2d, x: Tensor<4>) -> Tensor<4> {
    if let Some(window) = Window::of(pool, x.dims())
        && x.dtype() == DType::F32
    {
        let y = match x.device().is_autodiff() {
            true => train_flex(&x, window),
            false => infer_flex(&x, window),
        };
        if let Some(y) = y {
            return y;
        }
    }
    pool.forward(x)
}

/// A non-overlapping pooling of `[n, c, h, w]` by `k` (rows) x `l` (columns) windows.
#[derive(Clone, Copy, Debug)]
struct Window {
    n: usize,
    c: usize,
    h: usize,
    w: usize,
    k: usize,
    l: usize,
}

impl Window {
    /// The window of `pool` on an input of `dims`; `None` where windows overlap, are padded or
    /// dilated, are rounded up, or leave no output.
    fn of(pool: &MaxPool2d, dims: [usize; 4]) -> Option<Self> {
        let [n, c, h, w] = dims;
        let [k, l] = pool.kernel_size;
        let plain = pool.stride == pool.kernel_size
            && matches!(pool.padding, PaddingConfig2d::Valid)
            && pool.dilation == [1, 1]
            && !pool.ceil_mode;
        // A window of more than 256 positions would not fit the one-byte argmax.
        (plain && k * l <= 256 && h >= k && w >= l && n * c > 0).then_some(Self { n, c, h, w, k, l })
    }

    fn out_dims(&self) -> [usize; 4] {
        [self.n, self.c, self.h / self.k, self.w / self.l]
    }
}

/// The training path: the pooled output, and the argmax kept for the backward.
fn train_flex(x: &Tensor<4>, window: Window) -> Option<Tensor<4>> {
    let xp = x.clone().try_into_primitive::<Ad>().ok()?;
    let data = contiguous(xp.primitive());
    let (y, argmax) = forward(slice(&data), window);
    let y = FlexTensor::from_data(TensorData::new(y, window.out_dims()));
    let out = match MaxPool.prepare::<NoCheckpointing>([xp.node()]).compute_bound().stateful() {
        OpsKind::Tracked(prep) => prep.finish(PoolState { argmax, window }, y),
        OpsKind::UnTracked(prep) => prep.finish(y),
    };
    Some(Tensor::from_primitive::<Ad>(out))
}

/// The inference path on flex without autodiff (the argmax, one byte an output, is dropped).
fn infer_flex(x: &Tensor<4>, window: Window) -> Option<Tensor<4>> {
    let data = contiguous(&x.clone().try_into_primitive::<Flex>().ok()?);
    let (y, _) = forward(slice(&data), window);
    Some(Tensor::from_primitive::<Flex>(FlexTensor::from_data(TensorData::new(y, window.out_dims()))))
}

/// The maximum of every window, and its position in the window (row-major).
fn forward(x: &[f32], win: Window) -> (Vec<f32>, Vec<u8>) {
    let [_, _, oh, ow] = win.out_dims();
    let mut y = vec![0f32; win.n * win.c * oh * ow];
    let mut argmax = vec![0u8; y.len()];
    let planes = y.par_chunks_mut(oh * ow).zip(argmax.par_chunks_mut(oh * ow)).zip(x.par_chunks(win.h * win.w));
    planes.for_each(|((out, arg), plane)| {
        for (r, (out_row, arg_row)) in out.chunks_exact_mut(ow).zip(arg.chunks_exact_mut(ow)).enumerate() {
            if (win.k, win.l) == (2, 2) {
                let (a, b) = (&plane[2 * r * win.w..][..2 * ow], &plane[(2 * r + 1) * win.w..][..2 * ow]);
                pool_rows_2x2(a, b, out_row, arg_row);
                continue;
            }
            for (q, (v, at)) in out_row.iter_mut().zip(arg_row).enumerate() {
                (*v, *at) = window_max(plane, &win, r, q);
            }
        }
    });
    (y, argmax)
}

/// One output row of 2x2 windows (the model's pool) from input rows `a` and `b`: [`window_max`]'s
/// rule without branches, which random data would mispredict half the time.
#[inline(always)]
fn pool_rows_2x2(a: &[f32], b: &[f32], out: &mut [f32], arg: &mut [u8]) {
    let windows = a.chunks_exact(2).zip(b.chunks_exact(2));
    for ((v, at), (top, bottom)) in out.iter_mut().zip(arg.iter_mut()).zip(windows) {
        let (mut best, mut pos) = (top[0], 0u8);
        for (i, &x) in [top[1], bottom[0], bottom[1]].iter().enumerate() {
            let take = x > best || x.is_nan();
            best = if take { x } else { best };
            pos = if take { i as u8 + 1 } else { pos };
        }
        (*v, *at) = (best, pos);
    }
}

/// The maximum of window `(r, q)` of one plane and its position: the first of equal values, the
/// last NaN over any number (burn's rule).
#[inline(always)]
fn window_max(plane: &[f32], win: &Window, r: usize, q: usize) -> (f32, u8) {
    let mut best = (f32::NEG_INFINITY, 0u8);
    let mut first = true;
    for i in 0..win.k {
        let row = &plane[(r * win.k + i) * win.w + q * win.l..][..win.l];
        for (j, &v) in row.iter().enumerate() {
            if first || v > best.0 || v.is_nan() {
                best = (v, (i * win.l + j) as u8);
                first = false;
            }
        }
    }
    best
}

#[derive(Clone, Debug)]
struct PoolState {
    /// Position of each output's maximum in its window.
    argmax: Vec<u8>,
    window: Window,
}

#[derive(Debug)]
struct MaxPool;

impl Backward<Flex, 1> for MaxPool {
    type State = PoolState;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _checkpointer: &mut Checkpointer) {
        let [node] = ops.parents;
        let grad = contiguous(&grads.consume::<Flex>(&ops.node));
        let Some(node) = node else { return };
        let win = ops.state.window;
        let dx = backward(slice(&grad), &ops.state.argmax, win);
        grads.register::<Flex>(node.id, FlexTensor::from_data(TensorData::new(dx, [win.n, win.c, win.h, win.w])));
    }
}

/// The input gradient: each output's gradient at its window's maximum, zero elsewhere (and in the
/// rows and columns past the last whole window).
fn backward(dy: &[f32], argmax: &[u8], win: Window) -> Vec<f32> {
    let [_, _, oh, ow] = win.out_dims();
    let mut dx = vec![0f32; win.n * win.c * win.h * win.w];
    let planes = dx.par_chunks_mut(win.h * win.w).zip(dy.par_chunks(oh * ow)).zip(argmax.par_chunks(oh * ow));
    planes.for_each(|((plane, grad), arg)| {
        for (r, (grad_row, arg_row)) in grad.chunks_exact(ow).zip(arg.chunks_exact(ow)).enumerate() {
            for (q, (&g, &at)) in grad_row.iter().zip(arg_row).enumerate() {
                let (i, j) = (at as usize / win.l, at as usize % win.l);
                plane[(r * win.k + i) * win.w + q * win.l + j] = g;
            }
        }
    });
    dx
}

#[cfg(test)]
mod tests {
    use burn::nn::pool::MaxPool2dConfig;
    use burn::tensor::{Device, Distribution};

    use super::*;
    use crate::flex::test_support::{assert_close, values};

    /// Output and input gradient of `pool` under a random upstream gradient, through
    /// [`max_pool2d`] or (`burn`) burn's own layer.
    fn run(pool: &MaxPool2d, x: &Tensor<4>, burn: bool) -> [Vec<f32>; 2] {
        let x = x.clone().detach().require_grad();
        let y = if burn { pool.forward(x.clone()) } else { max_pool2d(pool, x.clone()) };
        // The same upstream gradient on both paths, different for every output: made from the output.
        let upstream = y.clone().detach().mul_scalar(0.5).add_scalar(0.25);
        let grads = (y.clone() * upstream).sum().backward();
        [values(y), values(x.grad(&grads).unwrap())]
    }

    #[test]
    fn pooling_and_its_gradient_match_burns() {
        let device = Device::flex().autodiff();
        // The model's 2x2; odd planes (a last row and column outside every window); 3x2 windows.
        for (dims, kernel) in [([2, 3, 8, 8], [2, 2]), ([1, 5, 7, 9], [2, 2]), ([2, 2, 9, 8], [3, 2])] {
            let pool = MaxPool2dConfig::new(kernel).init();
            let x = Tensor::<4>::random(dims, Distribution::Normal(0.0, 1.0), &device);
            assert!(Window::of(&pool, dims).is_some(), "{dims:?}: this module's path runs");
            let [y, dx] = run(&pool, &x, false);
            let [burn_y, burn_dx] = run(&pool, &x, true);
            assert_close(&format!("{dims:?} output"), &y, &burn_y, 0.0);
            assert_close(&format!("{dims:?} input gradient"), &dx, &burn_dx, 0.0);
            assert_eq!(dx.iter().filter(|&&v| v != 0.0).count(), y.len(), "{dims:?}: one gradient per window");
            let inference = max_pool2d(&pool, x.clone().inner());
            assert_eq!(values(inference), burn_y, "{dims:?}: inference on flex");
        }
    }

    #[test]
    fn ties_go_to_the_first_position_and_nan_wins_as_in_burns() {
        let device = Device::flex().autodiff();
        let x = Tensor::<4>::from_data(
            TensorData::new(vec![2.0, 1.0, 0.0, f32::NAN, 2.0, -1.0, 2.0, 5.0], [1, 1, 2, 4]),
            &device,
        )
        .require_grad();
        let pool = MaxPool2dConfig::new([2, 2]).init();
        let y = max_pool2d(&pool, x.clone());
        let out = values(y.clone());
        assert_eq!(out[0], 2.0, "window 1: 2.0, twice");
        assert!(out[1].is_nan(), "window 2 holds a NaN");
        let dx = values(x.grad(&y.sum().backward()).unwrap());
        assert_eq!(dx, vec![1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0], "the first 2.0, and the NaN");
        // burn's own layer agrees.
        let burn = pool.forward(x.clone());
        assert_eq!(values(x.grad(&burn.sum().backward()).unwrap()), dx);
    }

    #[test]
    fn overlapping_or_padded_windows_take_burns_path() {
        let dims = [1, 1, 6, 6];
        assert!(Window::of(&MaxPool2dConfig::new([3, 3]).with_strides([1, 1]).init(), dims).is_none());
        let padded = MaxPool2dConfig::new([2, 2]).with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1)).init();
        assert!(Window::of(&padded, dims).is_none());
        assert!(Window::of(&MaxPool2dConfig::new([2, 2]).with_ceil_mode(true).init(), dims).is_none());
    }
}
