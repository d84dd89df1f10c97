//! 2-D convolution with its own backward on `Autodiff<Flex>`, and a folded conv + batch norm + ReLU
//! for inference on flex: every conv of the local branch, the head, Fusion and Hypercolumn.
//!
//! burn 0.22's flex backend has its own forward `conv2d`, but its backward is burn-backend's
//! composed default: the input gradient through `conv_transpose2d`, the weight gradient through
//! `swap_dims` and a `conv2d` whose kernel is the activation. Here, for `f32` data, groups 1 and
//! dilation 1 (any kernel size, stride and padding, asymmetric `Same` padding included), each of
//! the three products is one GEMM per image (or per tile of output rows, on large images) over an
//! im2col layout: with `col[(c, i, j), p]` the input pixel under kernel tap `(i, j)` of output
//! pixel `p` (zero in the padding),
//! - forward: `y = W col + bias`, with an optional ReLU applied while the tile is in cache;
//! - input gradient: with stride 1, the forward conv of `dy` by the flipped, transposed kernel (an
//!   im2col of `dy` and one GEMM); with a larger stride `dcol = W^T dy`, scattered back (col2im);
//! - weight gradient: `dW = sum over images of dy col^T`; bias gradient: `sum dy` (a reduction).
//!
//! On CPUs with AVX-512F, stride-1 convs (every conv of the standard model) skip im2col and the
//! GEMMs: [`direct`] computes the forward pass (and so the stride-1 input gradient) and the weight
//! gradient with its own register-tiled kernels, about 1.4x the GEMM path's training step.
//!
//! 1x1 convs with stride 1 and no padding use the input itself as `col`. Images are spread over
//! rayon's threads, each GEMM single-threaded; with fewer images than threads the GEMMs use the
//! threads instead. GEMMs come from the `gemm` crate (the one flex uses), whose AVX-512 kernels
//! this crate turns on (burn's `x86-v4` feature): `gemm` picks them at run time where the CPU has
//! `avx512f`, its FMA (AVX2) kernels elsewhere ([`gemm_kernels`] says which).
//!
//! For inference (a device without autodiff) [`conv_bn_relu`] folds the batch norm's running
//! statistics into the conv's weights and bias and runs one conv with the ReLU in its epilogue.
//!
//! Everywhere else (other backends, other float types, groups or dilation) these functions are
//! burn's layers: `conv.forward(x)`, `relu(...)`, [`batch_norm_relu`]. The tests check the fast
//! paths against burn's: output, the input, weight and bias gradients, and a training step.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, NodeGuard, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::{Autodiff, Flex};
use burn::nn::conv::Conv2d;
use burn::nn::{BatchNorm, PaddingConfig2d};
use burn::tensor::activation::relu;
use burn::tensor::module::interpolate;
use burn::tensor::ops::{InterpolateMode, InterpolateOptions};
use burn::tensor::{DType, Tensor, TensorData};
use gemm::Parallelism;
use rayon::prelude::*;

use super::norm::{batch_norm_relu, relu_nan};
use crate::flex::{contiguous, slice};

type Ad = Autodiff<Flex, NoCheckpointing>;

/// What the conv applies to its output before returning it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Epilogue {
    /// The conv's output as it is.
    Identity,
    /// ReLU (NaN kept, as burn's ReLU keeps it).
    Relu,
}

/// `epilogue(conv.forward(x))` for `x: [N, C, H, W]`, through the GEMM path where it applies (see
/// the module docs).
pub fn conv2d(conv: &Conv2d, x: Tensor<4>, epilogue: Epilogue) -> Tensor<4> {
    if fast_path_on()
        && let Some(op) = Geometry::of(conv, x.dims()).map(ConvOp::Plain)
        && let Some(y) = on_flex(conv, &x, op, epilogue)
    {
        return y;
    }
    let y = conv.forward(x);
    match epilogue {
        Epilogue::Identity => y,
        Epilogue::Relu => relu(y),
    }
}

/// `epilogue(conv.forward(up(x)))` for `x: [N, C, H, W]`, `up` the nearest upsample to
/// `[scale H, scale W]` (the head's first conv, after the local branch's pools): on CPUs with
/// AVX-512F without making the upsampled map (see [`direct`]), else burn's `interpolate` and
/// [`conv2d`].
pub fn upsample_conv2d(conv: &Conv2d, x: Tensor<4>, scale: usize, epilogue: Epilogue) -> Tensor<4> {
    if scale == 1 {
        return conv2d(conv, x, epilogue);
    }
    #[cfg(target_arch = "x86_64")]
    if fast_path_on()
        && let [n, c, h, w] = x.dims()
        && let Some(g) = Geometry::of(conv, [n, c, scale * h, scale * w]).filter(direct_applies)
        && let Some(up) = direct::Upsampled::new(g, scale)
        && let Some(y) = on_flex(conv, &x, ConvOp::Upsampled(up), epilogue)
    {
        return y;
    }
    let [_, _, h, w] = x.dims();
    let nearest = InterpolateOptions::new(InterpolateMode::Nearest).with_output_size([scale * h, scale * w]);
    conv2d(conv, interpolate(x, nearest), epilogue)
}

/// `op` on flex (training with autodiff, or inference) where the fast paths take it.
fn on_flex(conv: &Conv2d, x: &Tensor<4>, op: ConvOp, epilogue: Epilogue) -> Option<Tensor<4>> {
    match x.device().is_autodiff() {
        true => train_flex(conv, x, op, epilogue),
        false => infer_flex(conv, x, op, None, epilogue),
    }
}

/// `relu(bn.forward(conv.forward(x)))`, a local block's conv, batch norm and ReLU: in training the
/// GEMM conv followed by the fused [`batch_norm_relu`]; without autodiff on flex one conv whose
/// weights and bias have the batch norm's running statistics folded in, with the ReLU in its
/// epilogue.
pub fn conv_bn_relu(conv: &Conv2d, bn: &BatchNorm, x: Tensor<4>) -> Tensor<4> {
    if fast_path_on()
        && !x.device().is_autodiff()
        && let Some(op) = Geometry::of(conv, x.dims()).map(ConvOp::Plain)
        && let Some(y) = infer_flex(conv, &x, op, Some(bn), Epilogue::Relu)
    {
        return y;
    }
    batch_norm_relu(bn, conv2d(conv, x, Epilogue::Identity))
}

/// The GEMM kernels the `gemm` crate runs on this CPU (its own run-time choice, gemm 0.19's
/// `init_gemm_fn`, with this crate's `x86-v4` feature on).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GemmKernels {
    /// AVX-512F kernels (16 `f32` lanes).
    Avx512,
    /// AVX2 + FMA kernels (8 lanes).
    Fma,
    /// Neither: scalar code (x86 without FMA), or another architecture's own kernels.
    Other,
}

/// See [`GemmKernels`].
pub fn gemm_kernels() -> GemmKernels {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            return GemmKernels::Avx512;
        }
        if std::arch::is_x86_feature_detected!("fma") {
            return GemmKernels::Fma;
        }
    }
    GemmKernels::Other
}

#[cfg(test)]
thread_local! {
    /// Tests turn the GEMM path off on their thread to run burn's layers in the same model.
    static BURN_ONLY: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Whether the GEMM path may be taken (always, outside this module's tests).
fn fast_path_on() -> bool {
    #[cfg(test)]
    if BURN_ONLY.with(|b| b.get()) {
        return false;
    }
    true
}

#[cfg(test)]
thread_local! {
    /// Tests turn the direct kernels off on their thread to check the GEMM path on the same CPU.
    static GEMM_ONLY: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Whether [`direct`]'s kernels take a conv of geometry `g`: stride 1 on a CPU with AVX-512F
/// (outside this module's tests that ask for the GEMM path).
#[cfg(target_arch = "x86_64")]
fn direct_applies(g: &Geometry) -> bool {
    #[cfg(test)]
    if GEMM_ONLY.with(|b| b.get()) {
        return false;
    }
    g.stride == [1, 1] && direct::available()
}

/// Shape of one conv: input `[n, c, h, w]`, weight `[o, c, kh, kw]`, output `[n, o, oh, ow]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Geometry {
    n: usize,
    c: usize,
    h: usize,
    w: usize,
    o: usize,
    kh: usize,
    kw: usize,
    stride: [usize; 2],
    /// Padding before the first row and column (the rest of the output size follows from `oh`, `ow`).
    pad: [usize; 2],
    oh: usize,
    ow: usize,
}

impl Geometry {
    /// The geometry of `conv` on an input of `dims`; `None` for what the GEMM path does not cover
    /// (groups, dilation, an empty output).
    fn of(conv: &Conv2d, dims: [usize; 4]) -> Option<Self> {
        let [n, c, h, w] = dims;
        let [o, wc, kh, kw] = conv.weight.lazy_shape().dims();
        if conv.groups != 1 || conv.dilation != [1, 1] || wc != c || [kh, kw] != conv.kernel_size {
            return None;
        }
        let ((top, bottom), (left, right)) = match conv.padding {
            PaddingConfig2d::Valid => ((0, 0), (0, 0)),
            PaddingConfig2d::Same => (same_padding(kh, conv.stride[0], h), same_padding(kw, conv.stride[1], w)),
            PaddingConfig2d::Explicit(top, left, bottom, right) => ((top, bottom), (left, right)),
        };
        let out = |size: usize, before: usize, after: usize, k: usize, s: usize| {
            (size + before + after).checked_sub(k).map(|span| span / s + 1)
        };
        let oh = out(h, top, bottom, kh, conv.stride[0])?;
        let ow = out(w, left, right, kw, conv.stride[1])?;
        (n * o * oh * ow > 0 && c > 0).then_some(Self {
            n,
            c,
            h,
            w,
            o,
            kh,
            kw,
            stride: conv.stride,
            pad: [top, left],
            oh,
            ow,
        })
    }

    /// Rows of `col` (and columns of the weight matrix): `c * kh * kw`.
    fn k(&self) -> usize {
        self.c * self.kh * self.kw
    }

    /// Output pixels of one image.
    fn p(&self) -> usize {
        self.oh * self.ow
    }

    /// A 1x1 conv with stride 1 and no padding: the input is its own `col`.
    fn pointwise(&self) -> bool {
        self.kh == 1 && self.kw == 1 && self.stride == [1, 1] && self.pad == [0, 0]
    }

    /// Output rows per GEMM tile: whole images up to [`TILE_PIXELS`] output pixels.
    fn tile_rows(&self) -> usize {
        (TILE_PIXELS / self.ow).clamp(1, self.oh)
    }

    /// The tiles of one image, as ranges of output rows.
    fn tiles(&self) -> impl Iterator<Item = std::ops::Range<usize>> + use<> {
        let (step, oh) = (self.tile_rows(), self.oh);
        (0..oh).step_by(step).map(move |r| r..(r + step).min(oh))
    }
}

/// Output pixels per GEMM tile: a whole 32x32 image, and a `col` of at most a few MB on large ones.
const TILE_PIXELS: usize = 1024;

/// burn-nn's `Same` padding (its helper is private): the output has `ceil(size / stride)` pixels,
/// the extra padding going after (ONNX's convention).
fn same_padding(kernel: usize, stride: usize, size: usize) -> (usize, usize) {
    let out = size.div_ceil(stride);
    let total = if out > 0 { ((out - 1) * stride + kernel).saturating_sub(size) } else { 0 };
    (total / 2, total - total / 2)
}

/// What a conv node computes: the conv of its input, or of its input upsampled.
#[derive(Clone, Copy, Debug)]
enum ConvOp {
    Plain(Geometry),
    #[cfg(target_arch = "x86_64")]
    Upsampled(direct::Upsampled),
}

impl ConvOp {
    /// The conv's geometry (on the upsampled input for [`ConvOp::Upsampled`]).
    fn geometry(&self) -> Geometry {
        match self {
            ConvOp::Plain(g) => *g,
            #[cfg(target_arch = "x86_64")]
            ConvOp::Upsampled(up) => up.geometry(),
        }
    }

    /// The dims of the node's input.
    fn input_dims(&self) -> [usize; 4] {
        match self {
            ConvOp::Plain(g) => [g.n, g.c, g.h, g.w],
            #[cfg(target_arch = "x86_64")]
            ConvOp::Upsampled(up) => up.input_dims(),
        }
    }

    fn forward(&self, x: &[f32], weight: &[f32], bias: Option<&[f32]>, epilogue: Epilogue) -> Vec<f32> {
        match self {
            ConvOp::Plain(g) => forward(x, weight, bias, *g, epilogue),
            #[cfg(target_arch = "x86_64")]
            ConvOp::Upsampled(up) => up.forward(x, weight, bias, epilogue),
        }
    }

    fn input_grad(&self, dy: &[f32], weight: &[f32]) -> Vec<f32> {
        match self {
            ConvOp::Plain(g) => input_grad(dy, weight, *g),
            #[cfg(target_arch = "x86_64")]
            ConvOp::Upsampled(up) => up.input_grad(dy, weight),
        }
    }

    fn weight_grad(&self, dy: &[f32], x: &[f32]) -> (Vec<f32>, Vec<f32>) {
        match self {
            ConvOp::Plain(g) => weight_grad(dy, x, *g),
            #[cfg(target_arch = "x86_64")]
            ConvOp::Upsampled(up) => up.weight_grad(dy, x),
        }
    }
}

/// The training path on `Autodiff<Flex>`; `None` (nothing consumed) where it does not apply.
fn train_flex(conv: &Conv2d, x: &Tensor<4>, op: ConvOp, epilogue: Epilogue) -> Option<Tensor<4>> {
    if x.dtype() != DType::F32 {
        return None;
    }
    let g = op.geometry();
    let xp = x.clone().try_into_primitive::<Ad>().ok()?;
    let weight = conv.weight.val().try_into_primitive::<Ad>().ok()?;
    let bias = match &conv.bias {
        Some(b) => Some(b.val().try_into_primitive::<Ad>().ok()?),
        None => None,
    };
    let f32_data = |t: &FlexTensor| (t.dtype() == DType::F32).then(|| contiguous(t));
    let x_data = f32_data(xp.primitive())?;
    let w_data = f32_data(weight.primitive())?;
    let b_data = match &bias {
        Some(b) => Some(f32_data(b.primitive())?),
        None => None,
    };
    let y = op.forward(slice(&x_data), slice(&w_data), b_data.as_ref().map(slice), epilogue);
    let y = FlexTensor::from_data(TensorData::new(y, [g.n, g.o, g.oh, g.ow]));
    let state = ConvState { x: x_data, weight: w_data, y: y.clone(), epilogue, op };
    Some(match bias {
        Some(b) => track(ConvBackward::<3>, [xp.node(), weight.node(), b.node()], state, y),
        None => track(ConvBackward::<2>, [xp.node(), weight.node()], state, y),
    })
}

/// Records the conv in the autodiff graph (when any parent is tracked).
fn track<const N: usize>(op: ConvBackward<N>, parents: [NodeGuard; N], state: ConvState, y: FlexTensor) -> Tensor<4>
where
    ConvBackward<N>: Backward<Flex, N, State = ConvState>,
{
    let out = match op.prepare::<NoCheckpointing>(parents).compute_bound().stateful() {
        OpsKind::Tracked(prep) => prep.finish(state, y),
        OpsKind::UnTracked(prep) => prep.finish(y),
    };
    Tensor::from_primitive::<Ad>(out)
}

/// The inference path on flex without autodiff, with `bn`'s running statistics folded in when
/// given; `None` where it does not apply.
fn infer_flex(
    conv: &Conv2d,
    x: &Tensor<4>,
    op: ConvOp,
    bn: Option<&BatchNorm>,
    epilogue: Epilogue,
) -> Option<Tensor<4>> {
    if x.dtype() != DType::F32 {
        return None;
    }
    let g = op.geometry();
    let host = |t: Tensor<1>| t.try_into_primitive::<Flex>().ok().filter(|p| p.dtype() == DType::F32);
    let x_data = contiguous(&x.clone().try_into_primitive::<Flex>().ok()?);
    let w_data = contiguous(&conv.weight.val().try_into_primitive::<Flex>().ok().filter(|p| p.dtype() == DType::F32)?);
    let mut weight = slice(&w_data).to_vec();
    let mut bias = match &conv.bias {
        Some(b) => slice(&contiguous(&host(b.val())?)).to_vec(),
        None => vec![0.0; g.o],
    };
    if let Some(bn) = bn {
        let vec = |t: Tensor<1>| host(t).map(|p| slice(&contiguous(&p)).to_vec());
        let (gamma, beta) = (vec(bn.gamma.val())?, vec(bn.beta.val())?);
        let (mean, var) = (vec(bn.running_mean.value())?, vec(bn.running_var.value())?);
        let k = g.k();
        for o in 0..g.o {
            let scale = gamma[o] / (var[o] as f64 + bn.epsilon).sqrt() as f32;
            weight[o * k..][..k].iter_mut().for_each(|v| *v *= scale);
            bias[o] = (bias[o] - mean[o]) * scale + beta[o];
        }
    }
    let y = op.forward(slice(&x_data), &weight, Some(&bias), epilogue);
    Some(Tensor::from_primitive::<Flex>(FlexTensor::from_data(TensorData::new(y, [g.n, g.o, g.oh, g.ow]))))
}

#[derive(Clone, Debug)]
struct ConvState {
    x: FlexTensor,
    weight: FlexTensor,
    /// The output: with a ReLU epilogue its sign is the mask of the gradient.
    y: FlexTensor,
    epilogue: Epilogue,
    op: ConvOp,
}

/// The conv's node: parents input, weight and (with `N` = 3) bias.
#[derive(Debug)]
struct ConvBackward<const N: usize>;

impl<const N: usize> Backward<Flex, N> for ConvBackward<N> {
    type State = ConvState;

    fn backward(self, ops: Ops<Self::State, N>, grads: &mut Gradients, _checkpointer: &mut Checkpointer) {
        let s = ops.state;
        let g = s.op.geometry();
        let grad = contiguous(&grads.consume::<Flex>(&ops.node));
        let masked: Vec<f32>;
        let dy = match s.epilogue {
            Epilogue::Identity => slice(&grad),
            Epilogue::Relu => {
                let keep = |g: f32, y: f32| if y > 0.0 || y.is_nan() { g } else { 0.0 };
                masked = slice(&grad).par_iter().zip(slice(&s.y)).map(|(&g, &y)| keep(g, y)).collect();
                &masked
            }
        };
        let [node_x, node_w, node_b] = std::array::from_fn(|i| ops.parents.get(i).cloned().flatten());
        if let Some(node) = node_x {
            let dx = s.op.input_grad(dy, slice(&s.weight));
            grads.register::<Flex>(node.id, FlexTensor::from_data(TensorData::new(dx, s.op.input_dims())));
        }
        if node_w.is_some() || node_b.is_some() {
            let (dw, db) = s.op.weight_grad(dy, slice(&s.x));
            if let Some(node) = node_w {
                grads.register::<Flex>(node.id, FlexTensor::from_data(TensorData::new(dw, [g.o, g.c, g.kh, g.kw])));
            }
            if let Some(node) = node_b {
                grads.register::<Flex>(node.id, FlexTensor::from_data(TensorData::new(db, [g.o])));
            }
        }
    }
}

/// A matrix inside a slice: element `(r, c)` at `data[r * rs + c * cs]`.
#[derive(Clone, Copy)]
struct View<'a> {
    data: &'a [f32],
    rows: usize,
    cols: usize,
    rs: usize,
    cs: usize,
}

impl View<'_> {
    /// The highest index the view touches must be inside its slice (what makes [`gemm`] sound).
    fn check(&self, len: usize) {
        assert!(self.rows > 0 && self.cols > 0 && (self.rows - 1) * self.rs + (self.cols - 1) * self.cs < len);
    }
}

/// `dst = lhs rhs` (or `dst += lhs rhs` with `accumulate`), `dst` row-major with row stride `dst_rs`.
fn gemm(dst: &mut [f32], dst_rs: usize, accumulate: bool, lhs: View, rhs: View, par: Parallelism) {
    let (m, n, k) = (lhs.rows, rhs.cols, lhs.cols);
    assert_eq!(rhs.rows, k, "inner dimensions");
    lhs.check(lhs.data.len());
    rhs.check(rhs.data.len());
    View { data: dst, rows: m, cols: n, rs: dst_rs, cs: 1 }.check(dst.len());
    // SAFETY: the three views were checked to lie inside their slices; `dst` is borrowed mutably,
    // so it aliases neither operand.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            dst_rs as isize,
            accumulate,
            lhs.data.as_ptr(),
            lhs.cs as isize,
            lhs.rs as isize,
            rhs.data.as_ptr(),
            rhs.cs as isize,
            rhs.rs as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            par,
        );
    }
}

/// Threading of the GEMMs when `items` independent pieces of work are spread over rayon's threads:
/// single-threaded GEMMs when there is a piece per thread, the threads inside the GEMM otherwise.
fn gemm_parallelism(items: usize) -> Parallelism {
    match items >= rayon::current_num_threads() {
        true => Parallelism::None,
        false => Parallelism::Rayon(0),
    }
}

/// The input columns `x` would need in the [`Geometry::pointwise`] case; `None` otherwise.
fn input_as_col<'a>(img: &'a [f32], g: &Geometry, rows: &std::ops::Range<usize>) -> Option<View<'a>> {
    g.pointwise().then(|| View {
        data: &img[rows.start * g.ow..],
        rows: g.c,
        cols: rows.len() * g.ow,
        rs: g.h * g.w,
        cs: 1,
    })
}

/// For kernel tap `(i, j)`, output row `r` reads input row `r * sh + i - pad_h`; along the row,
/// output column `q` reads `q * sw + j - pad_w`. Returns the input row (if inside) and the range of
/// output columns whose input column is inside, with the input column of its first.
fn tap_span(g: &Geometry, i: usize, j: usize, r: usize) -> Option<(usize, std::ops::Range<usize>, usize)> {
    let ih = (r * g.stride[0] + i).checked_sub(g.pad[0]).filter(|&ih| ih < g.h)?;
    let sw = g.stride[1];
    // First q with q * sw + j >= pad, last with q * sw + j - pad < w.
    let lo = g.pad[1].saturating_sub(j).div_ceil(sw);
    let hi = ((g.w + g.pad[1]).saturating_sub(j)).div_ceil(sw).min(g.ow);
    (lo < hi).then(|| (ih, lo..hi, lo * sw + j - g.pad[1]))
}

/// im2col of output rows `rows` of one image into `col` (`[k, rows.len() * ow]`).
fn im2col(img: &[f32], g: &Geometry, rows: &std::ops::Range<usize>, col: &mut Vec<f32>) {
    let t = rows.len() * g.ow;
    col.clear();
    col.resize(g.k() * t, 0.0);
    let sw = g.stride[1];
    for (k, dst) in col.chunks_exact_mut(t).enumerate() {
        let (c, i, j) = (k / (g.kh * g.kw), k / g.kw % g.kh, k % g.kw);
        let plane = &img[c * g.h * g.w..][..g.h * g.w];
        for (r, out) in rows.clone().zip(dst.chunks_exact_mut(g.ow)) {
            let Some((ih, span, iw)) = tap_span(g, i, j, r) else { continue };
            let src = &plane[ih * g.w + iw..];
            match sw {
                1 => out[span.clone()].copy_from_slice(&src[..span.len()]),
                _ => out[span].iter_mut().zip(src.iter().step_by(sw)).for_each(|(o, &v)| *o = v),
            }
        }
    }
}

/// col2im: adds `dcol` (`[k, rows.len() * ow]`) onto the input gradient of one image.
fn col2im_add(dcol: &[f32], g: &Geometry, rows: &std::ops::Range<usize>, dimg: &mut [f32]) {
    let t = rows.len() * g.ow;
    let sw = g.stride[1];
    for (k, src) in dcol.chunks_exact(t).enumerate() {
        let (c, i, j) = (k / (g.kh * g.kw), k / g.kw % g.kh, k % g.kw);
        let plane = &mut dimg[c * g.h * g.w..][..g.h * g.w];
        for (r, grad) in rows.clone().zip(src.chunks_exact(g.ow)) {
            let Some((ih, span, iw)) = tap_span(g, i, j, r) else { continue };
            let dst = &mut plane[ih * g.w + iw..];
            match sw {
                1 => dst[..span.len()].iter_mut().zip(&grad[span]).for_each(|(d, &v)| *d += v),
                _ => dst.iter_mut().step_by(sw).zip(&grad[span]).for_each(|(d, &v)| *d += v),
            }
        }
    }
}

/// `y = epilogue(W x + bias)` for every image (`[n, o, oh, ow]`): [`direct::forward`] where it
/// applies, else [`gemm_forward`].
fn forward(x: &[f32], weight: &[f32], bias: Option<&[f32]>, g: Geometry, epilogue: Epilogue) -> Vec<f32> {
    #[cfg(target_arch = "x86_64")]
    if direct_applies(&g) {
        return direct::forward(x, weight, bias, g, epilogue);
    }
    gemm_forward(x, weight, bias, g, epilogue)
}

/// `y = epilogue(W col + bias)` for every image (`[n, o, oh, ow]`), GEMMs over im2col.
fn gemm_forward(x: &[f32], weight: &[f32], bias: Option<&[f32]>, g: Geometry, epilogue: Epilogue) -> Vec<f32> {
    let (k, p) = (g.k(), g.p());
    let mut y = vec![0f32; g.n * g.o * p];
    let par = gemm_parallelism(g.n);
    let w = View { data: weight, rows: g.o, cols: k, rs: k, cs: 1 };
    y.par_chunks_mut(g.o * p).zip(x.par_chunks(g.c * g.h * g.w)).for_each_init(Vec::new, |col, (out, img)| {
        for rows in g.tiles() {
            let t = rows.len() * g.ow;
            let rhs = input_as_col(img, &g, &rows).unwrap_or_else(|| {
                im2col(img, &g, &rows, col);
                View { data: col, rows: k, cols: t, rs: t, cs: 1 }
            });
            let dst = &mut out[rows.start * g.ow..];
            if let Some(bias) = bias {
                for (row, &b) in dst.chunks_mut(p).zip(bias) {
                    row[..t].fill(b);
                }
            }
            gemm(dst, p, bias.is_some(), w, rhs, par);
            if epilogue == Epilogue::Relu {
                for row in dst.chunks_mut(p) {
                    row[..t].iter_mut().for_each(|v| *v = relu_nan(*v));
                }
            }
        }
    });
    y
}

/// `dx` for every image (`[n, c, h, w]`): with stride 1, the forward conv of `dy` by the kernel
/// flipped in space with its channels swapped (padded by `k - 1 - pad`), an im2col of copies and
/// one GEMM; otherwise `col2im(W^T dy)`.
fn input_grad(dy: &[f32], weight: &[f32], g: Geometry) -> Vec<f32> {
    if g.stride == [1, 1] && g.pad[0] < g.kh && g.pad[1] < g.kw {
        let (kh, kw) = (g.kh, g.kw);
        let mut flipped = vec![0f32; weight.len()];
        for (idx, v) in flipped.iter_mut().enumerate() {
            let (c, o, i, j) = (idx / (g.o * kh * kw), idx / (kh * kw) % g.o, idx / kw % kh, idx % kw);
            *v = weight[((o * g.c + c) * kh + kh - 1 - i) * kw + kw - 1 - j];
        }
        let pad = [kh - 1 - g.pad[0], kw - 1 - g.pad[1]];
        let back = Geometry { c: g.o, h: g.oh, w: g.ow, o: g.c, pad, oh: g.h, ow: g.w, ..g };
        return forward(dy, &flipped, None, back, Epilogue::Identity);
    }
    let (k, p) = (g.k(), g.p());
    let mut dx = vec![0f32; g.n * g.c * g.h * g.w];
    let par = gemm_parallelism(g.n);
    let wt = View { data: weight, rows: k, cols: g.o, rs: 1, cs: k };
    dx.par_chunks_mut(g.c * g.h * g.w).zip(dy.par_chunks(g.o * p)).for_each_init(Vec::new, |dcol, (dimg, gy)| {
        for rows in g.tiles() {
            let t = rows.len() * g.ow;
            let rhs = View { data: &gy[rows.start * g.ow..], rows: g.o, cols: t, rs: p, cs: 1 };
            dcol.clear();
            dcol.resize(k * t, 0.0);
            gemm(dcol, t, false, wt, rhs, par);
            col2im_add(dcol, &g, &rows, dimg);
        }
    });
    dx
}

/// `dW` (`[o, c, kh, kw]`) and `db = sum dy` (`[o]`): [`direct::weight_grad`] where it applies,
/// else [`gemm_weight_grad`].
fn weight_grad(dy: &[f32], x: &[f32], g: Geometry) -> (Vec<f32>, Vec<f32>) {
    #[cfg(target_arch = "x86_64")]
    if direct_applies(&g) {
        return direct::weight_grad(dy, x, g);
    }
    gemm_weight_grad(dy, x, g)
}

/// `dW = sum over images of dy col^T` (`[o, c, kh, kw]`) and `db = sum dy` (`[o]`): images split
/// into one contiguous group per thread, each with its own sums, added in group order.
fn gemm_weight_grad(dy: &[f32], x: &[f32], g: Geometry) -> (Vec<f32>, Vec<f32>) {
    let (k, p) = (g.k(), g.p());
    let groups = rayon::current_num_threads().min(g.n);
    let par = gemm_parallelism(groups);
    let partial: Vec<(Vec<f32>, Vec<f64>)> = (0..groups)
        .into_par_iter()
        .map(|group| {
            let (mut dw, mut db, mut col) = (vec![0f32; g.o * k], vec![0f64; g.o], Vec::new());
            for b in group * g.n / groups..(group + 1) * g.n / groups {
                let (img, gy) = (&x[b * g.c * g.h * g.w..][..g.c * g.h * g.w], &dy[b * g.o * p..][..g.o * p]);
                for (sum, row) in db.iter_mut().zip(gy.chunks_exact(p)) {
                    *sum += row.iter().map(|&v| v as f64).sum::<f64>();
                }
                for rows in g.tiles() {
                    let t = rows.len() * g.ow;
                    let lhs = View { data: &gy[rows.start * g.ow..], rows: g.o, cols: t, rs: p, cs: 1 };
                    let col_t = match input_as_col(img, &g, &rows) {
                        Some(v) => View { data: v.data, rows: t, cols: k, rs: 1, cs: v.rs },
                        None => {
                            im2col(img, &g, &rows, &mut col);
                            View { data: &col, rows: t, cols: k, rs: 1, cs: t }
                        }
                    };
                    gemm(&mut dw, k, true, lhs, col_t, par);
                }
            }
            (dw, db)
        })
        .collect();
    let mut dw = vec![0f32; g.o * k];
    let mut db = vec![0f64; g.o];
    for (pw, pb) in &partial {
        dw.iter_mut().zip(pw).for_each(|(d, v)| *d += v);
        db.iter_mut().zip(pb).for_each(|(d, v)| *d += v);
    }
    (dw, db.into_iter().map(|v| v as f32).collect())
}

#[cfg(target_arch = "x86_64")]
mod direct;
#[cfg(test)]
mod tests;
