//! Direct convolution with stride 1 on x86-64 CPUs with AVX-512F: the forward pass (and with it
//! the stride-1 input gradient, which is a forward conv of `dy`) and the weight gradient as
//! register-tiled outer products read straight from zero-padded input planes. No im2col, no GEMM
//! packing: on the standard model these were half the time of the GEMM path (`gemm`'s packing of
//! the im2col columns and, for the weight gradient, their transposition).
//!
//! Layout. A band of output rows `r0..r0 + rows` of one image reads padded-input rows
//! `r0..r0 + rows + kh - 1`. Each channel's band is copied, zero-padded, into a plane of
//! `wp = ow + kw - 1` columns. Output pixel `(r, q)` of the band, at flat index `p = r * wp + q`,
//! then reads kernel tap `(i, j)` at `p + i * wp + j` of every plane: each tap is one fixed offset,
//! and 16 consecutive `p` are one vector load. The `kw - 1` columns `q >= ow` of each row are junk,
//! computed and dropped (6% more work on 32-wide maps with 3x3 kernels, none with 1x1).
//!
//! - forward: tiles of [`FWD_V`] x 16 pixels by [`FWD_J`] output channels held in 24 vector
//!   registers, summed over every (input channel, tap) with the weights broadcast from a packed
//!   `[c * kh * kw][o]` copy; then the band's valid pixels get the bias and the epilogue on their
//!   way to the output.
//! - weight gradient: `dW[o][c, tap] = sum_p dy[o, p] x[c, p + tap]`, tiles of [`WGT_V`] x 16
//!   output channels by [`WGT_J`] (channel, tap) pairs, summed over every pixel of the band with
//!   `dy` transposed to `[p][o]` (zero in the junk columns) and the input broadcast.
//!
//! Work is spread over rayon's threads by (image, band); the weight gradient sums each thread's
//! contiguous share of the bands in order and the shares in order, so the result does not depend
//! on scheduling (only on the thread count, as the GEMM path's).

use std::arch::x86_64::{
    __m512, _mm512_add_ps, _mm512_fmadd_ps, _mm512_loadu_ps, _mm512_set1_ps, _mm512_setzero_ps, _mm512_storeu_ps,
};
use std::ops::Range;

use rayon::prelude::*;

use super::{Epilogue, Geometry};
use crate::model::norm::relu_nan;

/// Whether this CPU runs the kernels (AVX-512F, detected at run time).
pub(super) fn available() -> bool {
    std::arch::is_x86_feature_detected!("avx512f")
}

/// Forward tile: 16-pixel vectors...
const FWD_V: usize = 4;
/// ...by output channels.
const FWD_J: usize = 6;
/// Weight-gradient tile: 16-channel vectors...
const WGT_V: usize = 2;
/// ...by (input channel, tap) pairs.
const WGT_J: usize = 12;
/// Output pixels (junk columns included) per band at most: a 32x32 map is one band; on large
/// images a band's planes stay within the core's L2 cache.
const BAND_PIXELS: usize = 2048;

/// Where a band's planes live and how far apart.
#[derive(Clone, Copy, Debug)]
struct Planes {
    /// Columns of a padded row: `ow + kw - 1`.
    wp: usize,
    /// Output pixels of the band, junk included: `rows * wp`.
    len: usize,
    /// `len` rounded up to whole forward tiles.
    tiled: usize,
    /// Floats from one channel's plane to the next: the padded rows, and room for the last
    /// tile's reads past them.
    stride: usize,
}

impl Planes {
    fn of(g: &Geometry, rows: usize) -> Self {
        let wp = g.ow + g.kw - 1;
        let len = rows * wp;
        let tiled = len.next_multiple_of(FWD_V * 16);
        let reach = (g.kh - 1) * wp + g.kw - 1;
        let stride = ((rows + g.kh - 1) * wp).max(tiled + reach).next_multiple_of(16);
        Self { wp, len, tiled, stride }
    }

    /// Offset of kernel tap `(i, j)` from the output pixel it belongs to.
    fn tap_offsets(&self, g: &Geometry) -> Vec<usize> {
        (0..g.kh * g.kw).map(|t| t / g.kw * self.wp + t % g.kw).collect()
    }
}

/// Output rows `rows` of image `image`: the unit of work.
#[derive(Clone, Debug)]
struct Band {
    image: usize,
    rows: Range<usize>,
}

/// Every image's bands, image by image: equal bands of at most [`BAND_PIXELS`] output pixels.
fn bands(g: &Geometry) -> Vec<Band> {
    let wp = g.ow + g.kw - 1;
    let count = g.oh.div_ceil((BAND_PIXELS / wp).max(1));
    let rows = g.oh.div_ceil(count);
    (0..g.n)
        .flat_map(|image| (0..g.oh).step_by(rows).map(move |r| Band { image, rows: r..(r + rows).min(g.oh) }))
        .collect()
}

/// A matrix behind a raw pointer: row `r` starts at `ptr + r * stride`.
#[derive(Clone, Copy)]
struct Rows<P> {
    ptr: P,
    stride: usize,
}

/// Copies the padded input rows that `band` reads, every channel of its image, into `buf` (one
/// plane per channel, `planes.stride` apart, zeros in the padding and past the rows).
fn pad_band(x: &[f32], g: &Geometry, band: &Band, planes: &Planes, buf: &mut Vec<f32>) {
    buf.clear();
    buf.resize(g.c * planes.stride, 0.0);
    let [top, left] = g.pad;
    let img = &x[band.image * g.c * g.h * g.w..][..g.c * g.h * g.w];
    for (plane, src) in buf.chunks_exact_mut(planes.stride).zip(img.chunks_exact(g.h * g.w)) {
        for (pr, row) in plane.chunks_exact_mut(planes.wp).take(band.rows.len() + g.kh - 1).enumerate() {
            let Some(ih) = (band.rows.start + pr).checked_sub(top).filter(|&ih| ih < g.h) else { continue };
            row[left..left + g.w].copy_from_slice(&src[ih * g.w..][..g.w]);
        }
    }
}

/// The output, written by several threads at once: each band writes only its own rows of its
/// own image.
#[derive(Clone, Copy)]
struct Output(*mut f32);
// SAFETY: the bands' regions of the output are disjoint (see `store_band`).
unsafe impl Send for Output {}
unsafe impl Sync for Output {}

/// `y = epilogue(W x + bias)` for every image (`[n, o, oh, ow]`); `weight` in burn's layout
/// `[o, c, kh, kw]`. Stride 1 only.
pub(super) fn forward(x: &[f32], weight: &[f32], bias: Option<&[f32]>, g: Geometry, epilogue: Epilogue) -> Vec<f32> {
    assert!(g.stride == [1, 1] && available(), "direct conv: stride 1 on AVX-512F");
    assert_eq!((x.len(), weight.len()), (g.n * g.c * g.h * g.w, g.o * g.k()), "direct conv: operand sizes");
    let o_pad = g.o.next_multiple_of(FWD_J);
    let mut packed = vec![0f32; g.k() * o_pad];
    for (o, filter) in weight.chunks_exact(g.k()).enumerate() {
        filter.iter().enumerate().for_each(|(ct, &v)| packed[ct * o_pad + o] = v);
    }
    let mut y = vec![0f32; g.n * g.o * g.p()];
    let out = Output(y.as_mut_ptr());
    bands(&g).into_par_iter().for_each_init(
        || (Vec::new(), Vec::new()),
        |(buf, acc), band| {
            let planes = Planes::of(&g, band.rows.len());
            pad_band(x, &g, &band, &planes, buf);
            acc.clear();
            acc.resize(o_pad * planes.tiled, 0.0);
            let offsets = planes.tap_offsets(&g);
            assert!(buf.len() >= (g.c - 1) * planes.stride + planes.tiled + offsets[offsets.len() - 1]);
            for ot in (0..o_pad).step_by(FWD_J) {
                for p0 in (0..planes.tiled).step_by(FWD_V * 16) {
                    // SAFETY: AVX-512F was asserted; the reads reach at most buf[(c - 1) * stride +
                    // tiled - 1 + the last tap's offset] (< buf.len(), asserted) and
                    // packed[(k - 1) * o_pad + o_pad - 1]; the writes acc's row ot + FWD_J - 1,
                    // column tiled - 1, inside its o_pad x tiled.
                    unsafe {
                        forward_tile(
                            Rows { ptr: buf.as_ptr().add(p0), stride: planes.stride },
                            &offsets,
                            g.c,
                            Rows { ptr: packed.as_ptr().add(ot), stride: o_pad },
                            Rows { ptr: acc.as_mut_ptr().add(ot * planes.tiled + p0), stride: planes.tiled },
                        )
                    }
                }
            }
            store_band(acc, &planes, &g, &band, bias, epilogue, out);
        },
    );
    y
}

/// Moves a band's valid pixels from the tile sums to the output (`[n, o, oh, ow]` behind `out`),
/// adding the bias and applying the epilogue.
fn store_band(
    acc: &[f32],
    planes: &Planes,
    g: &Geometry,
    band: &Band,
    bias: Option<&[f32]>,
    epilogue: Epilogue,
    out: Output,
) {
    for o in 0..g.o {
        let add = bias.map_or(0.0, |bias| bias[o]);
        let src = &acc[o * planes.tiled..][..planes.len];
        for (r, row) in band.rows.clone().zip(src.chunks_exact(planes.wp)) {
            // SAFETY: row r of channel o of this band's image lies inside y ([n, o, oh, ow]), and no
            // other band writes it.
            let dst =
                unsafe { std::slice::from_raw_parts_mut(out.0.add(((band.image * g.o + o) * g.oh + r) * g.ow), g.ow) };
            match epilogue {
                Epilogue::Identity => dst.iter_mut().zip(row).for_each(|(d, &v)| *d = v + add),
                Epilogue::Relu => dst.iter_mut().zip(row).for_each(|(d, &v)| *d = relu_nan(v + add)),
            }
        }
    }
}

/// One forward tile: `acc[j][v * 16 + l] = sum over (ci, t) of w[ci * taps + t][j] *
/// x[ci][offsets[t] + v * 16 + l]` for `j < FWD_J`, `v < FWD_V`, `l < 16` (`taps` =
/// `offsets.len()`, the rows of `w` and `acc` counted by their strides).
///
/// # Safety
/// AVX-512F must be available, and every address named above inside its allocation.
#[target_feature(enable = "avx512f")]
unsafe fn forward_tile(x: Rows<*const f32>, offsets: &[usize], c: usize, w: Rows<*const f32>, acc: Rows<*mut f32>) {
    let mut sums = [[_mm512_setzero_ps(); FWD_V]; FWD_J];
    for ci in 0..c {
        // SAFETY (this block and the next): within the bounds the caller guarantees.
        let (xc, wc) = unsafe { (x.ptr.add(ci * x.stride), w.ptr.add(ci * offsets.len() * w.stride)) };
        for (t, &offset) in offsets.iter().enumerate() {
            let (xp, wt) = unsafe { (xc.add(offset), wc.add(t * w.stride)) };
            let xv: [__m512; FWD_V] = std::array::from_fn(|v| unsafe { _mm512_loadu_ps(xp.add(16 * v)) });
            for (j, row) in sums.iter_mut().enumerate() {
                let wv = _mm512_set1_ps(unsafe { *wt.add(j) });
                for (s, &xv) in row.iter_mut().zip(&xv) {
                    *s = _mm512_fmadd_ps(xv, wv, *s);
                }
            }
        }
    }
    for (j, row) in sums.iter().enumerate() {
        for (v, &s) in row.iter().enumerate() {
            // SAFETY: within the bounds the caller guarantees.
            unsafe { _mm512_storeu_ps(acc.ptr.add(j * acc.stride + 16 * v), s) };
        }
    }
}

/// `dW = sum over images of dy x^T` in burn's layout `[o, c, kh, kw]`, and `db = sum dy` (`[o]`):
/// the (image, band) pairs split into one contiguous share per thread, each summed in order, the
/// shares added in order. Stride 1 only.
pub(super) fn weight_grad(dy: &[f32], x: &[f32], g: Geometry) -> (Vec<f32>, Vec<f32>) {
    assert!(g.stride == [1, 1] && available(), "direct conv: stride 1 on AVX-512F");
    assert_eq!((x.len(), dy.len()), (g.n * g.c * g.h * g.w, g.n * g.o * g.p()), "direct conv: operand sizes");
    let (k, o_pad) = (g.k(), g.o.next_multiple_of(WGT_V * 16));
    let k_pad = k.next_multiple_of(WGT_J);
    let items = bands(&g);
    let shares = rayon::current_num_threads().min(items.len());
    let partial: Vec<(Vec<f32>, Vec<f64>)> = (0..shares)
        .into_par_iter()
        .map(|share| {
            let (mut dwt, mut db) = (vec![0f32; k_pad * o_pad], vec![0f64; g.o]);
            let (mut buf, mut dyt) = (Vec::new(), Vec::new());
            for band in &items[share * items.len() / shares..(share + 1) * items.len() / shares] {
                let gy = &dy[band.image * g.o * g.p()..][..g.o * g.p()];
                let span = band.rows.start * g.ow..band.rows.end * g.ow;
                for (sum, plane) in db.iter_mut().zip(gy.chunks_exact(g.p())) {
                    *sum += plane[span.clone()].iter().map(|&v| v as f64).sum::<f64>();
                }
                let planes = Planes::of(&g, band.rows.len());
                pad_band(x, &g, band, &planes, &mut buf);
                transpose_band(gy, &g, band, &planes, o_pad, &mut dyt);
                weight_grad_band(&buf, &dyt, &g, &planes, o_pad, &mut dwt);
            }
            (dwt, db)
        })
        .collect();
    let mut dwt = vec![0f32; k_pad * o_pad];
    let mut db = vec![0f64; g.o];
    for (pw, pb) in &partial {
        dwt.iter_mut().zip(pw).for_each(|(d, v)| *d += v);
        db.iter_mut().zip(pb).for_each(|(d, v)| *d += v);
    }
    let dw = (0..g.o * k).map(|i| dwt[(i % k) * o_pad + i / k]).collect();
    (dw, db.into_iter().map(|v| v as f32).collect())
}

/// `dy` of one band as `[p][o_pad]` (pixels of the padded rows, junk columns and channels past
/// `o` zero).
fn transpose_band(gy: &[f32], g: &Geometry, band: &Band, planes: &Planes, o_pad: usize, dyt: &mut Vec<f32>) {
    dyt.clear();
    dyt.resize(planes.len * o_pad, 0.0);
    for (o, plane) in gy.chunks_exact(g.p()).enumerate() {
        for (r, row) in plane[band.rows.start * g.ow..band.rows.end * g.ow].chunks_exact(g.ow).enumerate() {
            let base = r * planes.wp * o_pad + o;
            row.iter().enumerate().for_each(|(q, &v)| dyt[base + q * o_pad] = v);
        }
    }
}

/// Adds one band's `dy x^T` to `dwt` (`[k_pad][o_pad]`).
fn weight_grad_band(buf: &[f32], dyt: &[f32], g: &Geometry, planes: &Planes, o_pad: usize, dwt: &mut [f32]) {
    let taps = planes.tap_offsets(g);
    let k_pad = dwt.len() / o_pad;
    // (channel, tap) pairs past k read the plane's start; their sums land in rows that are dropped.
    let offsets: Vec<usize> = (0..k_pad)
        .map(|ct| if ct < g.k() { ct / taps.len() * planes.stride + taps[ct % taps.len()] } else { 0 })
        .collect();
    assert!(
        buf.len() >= (g.c - 1) * planes.stride + planes.len + taps[taps.len() - 1] && dyt.len() == planes.len * o_pad
    );
    for ob in (0..o_pad).step_by(WGT_V * 16) {
        for ct in (0..k_pad).step_by(WGT_J) {
            // SAFETY: AVX-512F was asserted by the caller; reads reach buf[offsets[ct + j] +
            // len - 1] (asserted above) and dyt[(len - 1) * o_pad + ob + WGT_V * 16 - 1]; writes
            // dwt rows ct..ct + WGT_J, columns ob..ob + WGT_V * 16.
            unsafe {
                weight_grad_tile(
                    buf.as_ptr(),
                    &offsets[ct..ct + WGT_J],
                    planes.len,
                    Rows { ptr: dyt.as_ptr().add(ob), stride: o_pad },
                    Rows { ptr: dwt.as_mut_ptr().add(ct * o_pad + ob), stride: o_pad },
                )
            }
        }
    }
}

/// One weight-gradient tile: `dwt[j][v * 16 + l] += sum over p < len of x[offsets[j] + p] *
/// dyt[p][v * 16 + l]` for `j < WGT_J`, `v < WGT_V`, `l < 16` (rows counted by their strides).
///
/// # Safety
/// AVX-512F must be available, and every address named above inside its allocation.
#[target_feature(enable = "avx512f")]
unsafe fn weight_grad_tile(x: *const f32, offsets: &[usize], len: usize, dyt: Rows<*const f32>, dwt: Rows<*mut f32>) {
    let mut sums = [[_mm512_setzero_ps(); WGT_V]; WGT_J];
    for p in 0..len {
        // SAFETY (this block and the next two): within the bounds the caller guarantees.
        let (dp, xp) = unsafe { (dyt.ptr.add(p * dyt.stride), x.add(p)) };
        let dv: [__m512; WGT_V] = std::array::from_fn(|v| unsafe { _mm512_loadu_ps(dp.add(16 * v)) });
        for (row, &offset) in sums.iter_mut().zip(offsets) {
            let xv = _mm512_set1_ps(unsafe { *xp.add(offset) });
            for (s, &dv) in row.iter_mut().zip(&dv) {
                *s = _mm512_fmadd_ps(dv, xv, *s);
            }
        }
    }
    for (j, row) in sums.iter().enumerate() {
        for (v, &s) in row.iter().enumerate() {
            // SAFETY: within the bounds the caller guarantees.
            unsafe {
                let q = dwt.ptr.add(j * dwt.stride + 16 * v);
                _mm512_storeu_ps(q, _mm512_add_ps(_mm512_loadu_ps(q), s));
            }
        }
    }
}
