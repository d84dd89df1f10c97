//! Direct convolution with stride 1 on x86-64 CPUs with AVX-512F: the forward pass (and with it
//! the stride-1 input gradient, which is a forward conv of `dy`) and the weight gradient as
//! register-tiled outer products read straight from zero-padded input planes, also for a conv whose
//! input is a nearest upsample of a smaller map ([`Upsampled`], the head's first conv). No im2col,
//! no GEMM packing: on the standard model these were half the time of the GEMM path (`gemm`'s
//! packing of the im2col columns and, for the weight gradient, their transposition).
//!
//! Layout. A band of output rows `r0..r0 + rows` of one image reads padded-input rows
//! `r0..r0 + rows + kh - 1`. Each channel's band is copied, zero-padded, into a plane of
//! `wp = ow + kw - 1` columns. Output pixel `(r, q)` of the band, at flat index `p = r * wp + q`,
//! then reads kernel tap `(i, j)` at `p + i * wp + j` of its channel's plane: each (channel, tap)
//! term of the sum is one fixed offset into the band's planes, and 16 consecutive `p` are one
//! vector load. The `kw - 1` columns `q >= ow` of each row are junk, computed and dropped (6% more
//! work on 32-wide maps with 3x3 kernels, none with 1x1).
//!
//! - forward: tiles of [`FWD_V`] x 16 pixels by [`FWD_J`] output channels held in 24 vector
//!   registers, summed over the terms with the weights broadcast from a packed `[term][o]` copy;
//!   then the band's valid pixels get the bias and the epilogue on their way to the output.
//! - weight gradient: `dW[o][term] = sum_p dy[o, p] x[term offset + p]`, tiles of [`WGT_V`] x 16
//!   output channels by [`WGT_J`] terms, summed over every pixel of the band with `dy` transposed to
//!   `[p][o]` (zero in the junk columns) and the input broadcast.
//!
//! A conv of a map upsampled `s` times (nearest) is, for each of the `s * s` output phases `(a, b)`
//! (output pixels `(s r + a, s q + b)`), a smaller conv of the map itself: the kernel rows that read
//! the same source row are summed (a 3x3 kernel becomes four 2x2 kernels at `s` = 2), so the
//! upsampled map is never made and the work is `(2 / 3)^2` of the conv's at full size. Its input
//! gradient sums the phases' transposed convs, as one forward pass over the `s * s` phases of `dy`
//! stacked as channels; its weight gradient is each phase's, folded back onto the kernel.
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
/// ...by terms.
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
    /// The planes of a band of `rows` output rows of a stride-1 conv of geometry `g`.
    fn of(g: &Geometry, rows: usize) -> Self {
        let wp = g.ow + g.kw - 1;
        let len = rows * wp;
        let tiled = len.next_multiple_of(FWD_V * 16);
        let reach = (g.kh - 1) * wp + g.kw - 1;
        let stride = ((rows + g.kh - 1) * wp).max(tiled + reach).next_multiple_of(16);
        Self { wp, len, tiled, stride }
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

/// The terms of a conv's sum: for each, the input plane it reads and its offset in that plane from
/// the output pixel (see the module docs).
#[derive(Clone, Debug)]
struct Terms(Vec<(usize, usize)>);

impl Terms {
    /// Every (channel, tap) of a plain conv of geometry `g`, channel by channel, taps row-major
    /// (burn's weight layout).
    fn plain(g: &Geometry) -> Self {
        let wp = g.ow + g.kw - 1;
        Self((0..g.k()).map(|ct| (ct / (g.kh * g.kw), ct % (g.kh * g.kw) / g.kw * wp + ct % g.kw)).collect())
    }

    /// Offsets into a band's planes `stride` apart; `pad_to` terms at least, the extra ones
    /// reading the first plane's start.
    fn offsets(&self, stride: usize, pad_to: usize) -> Vec<usize> {
        let mut offsets: Vec<usize> = self.0.iter().map(|&(plane, at)| plane * stride + at).collect();
        offsets.resize(offsets.len().max(pad_to), 0);
        offsets
    }
}

/// A forward conv's weights, `[term][o_pad]` (output channels padded with zeros to whole tiles).
struct Packed {
    data: Vec<f32>,
    o_pad: usize,
}

impl Packed {
    /// `weight(o, term)` for `o` output channels and `terms` terms.
    fn new(o: usize, terms: usize, weight: impl Fn(usize, usize) -> f32) -> Self {
        let o_pad = o.next_multiple_of(FWD_J);
        let mut data = vec![0f32; terms * o_pad];
        for (t, row) in data.chunks_exact_mut(o_pad).enumerate() {
            row[..o].iter_mut().enumerate().for_each(|(oc, v)| *v = weight(oc, t));
        }
        Self { data, o_pad }
    }
}

/// How a band's rows and columns are read from a source map: padded row `pr` of a band starting at
/// output row `r0` is source row `scale * (r0 + pr - pad[0]) + phase[0]` (zero outside), and the
/// same for columns; `scale` 1 and phase 0 for a plain input, the `s` phases of `dy` for the input
/// gradient of an upsampled conv.
#[derive(Clone, Copy, Debug)]
struct Source {
    /// Rows and columns of the source map.
    h: usize,
    w: usize,
    /// Padding before the first row and column, in sampled rows and columns.
    pad: [usize; 2],
    scale: usize,
    phase: [usize; 2],
}

impl Source {
    fn plain(g: &Geometry) -> Self {
        Self { h: g.h, w: g.w, pad: g.pad, scale: 1, phase: [0, 0] }
    }

    /// Sampled rows (and columns) of the source.
    fn dims(&self) -> [usize; 2] {
        [(self.h - self.phase[0]).div_ceil(self.scale), (self.w - self.phase[1]).div_ceil(self.scale)]
    }
}

/// Copies the padded rows of one channel's source map (`src`, `h x w`) that a band of `rows` output
/// rows from `r0` reads into `plane` (zeros in the padding and past the rows).
fn pad_plane(src: &[f32], from: &Source, r0: usize, rows: usize, planes: &Planes, plane: &mut [f32]) {
    plane.fill(0.0);
    let [sh, sw] = from.dims();
    let (s, [a, b], [top, left]) = (from.scale, from.phase, from.pad);
    for (pr, row) in plane.chunks_exact_mut(planes.wp).take(rows).enumerate() {
        let Some(ih) = (r0 + pr).checked_sub(top).filter(|&ih| ih < sh) else { continue };
        let src_row = &src[(s * ih + a) * from.w..][..from.w];
        match s {
            1 => row[left..left + sw].copy_from_slice(src_row),
            _ => row[left..left + sw].iter_mut().zip(src_row[b..].iter().step_by(s)).for_each(|(d, &v)| *d = v),
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

/// Where a band's results go: output pixel `(r, q)` of the band is `(scale * r + phase[0], scale * q
/// + phase[1])` of an `[n, o, oh, ow]` output.
#[derive(Clone, Copy, Debug)]
struct Placement {
    o: usize,
    oh: usize,
    ow: usize,
    scale: usize,
    phase: [usize; 2],
}

/// `y = epilogue(W x + bias)` for every image (`[n, o, oh, ow]`); `weight` in burn's layout
/// `[o, c, kh, kw]`. Stride 1 only.
pub(super) fn forward(x: &[f32], weight: &[f32], bias: Option<&[f32]>, g: Geometry, epilogue: Epilogue) -> Vec<f32> {
    check(&g, x.len(), weight.len());
    let packed = Packed::new(g.o, g.k(), |o, t| weight[o * g.k() + t]);
    let place = Placement { o: g.o, oh: g.oh, ow: g.ow, scale: 1, phase: [0, 0] };
    let pad = |band: &Band, planes: &Planes, buf: &mut Vec<f32>| pad_band(x, &g, &Source::plain(&g), band, planes, buf);
    conv_bands(&g, pad, &[(Terms::plain(&g), packed, place)], bias, epilogue)
}

/// A conv of geometry `g` band by band: each band's planes made by `pad`, then for each of `convs`
/// the band's sums over its terms, stored at its placement (with `bias` and `epilogue`) in an output
/// of `[n, o, oh, ow]` as the first placement names.
fn conv_bands(
    g: &Geometry,
    pad: impl Fn(&Band, &Planes, &mut Vec<f32>) + Sync,
    convs: &[(Terms, Packed, Placement)],
    bias: Option<&[f32]>,
    epilogue: Epilogue,
) -> Vec<f32> {
    let first = convs[0].2;
    let mut y = vec![0f32; g.n * first.o * first.oh * first.ow];
    let out = Output(y.as_mut_ptr());
    bands(g).into_par_iter().for_each_init(
        || (Vec::new(), Vec::new()),
        |(buf, acc), band| {
            let planes = Planes::of(g, band.rows.len());
            pad(&band, &planes, buf);
            for (terms, packed, place) in convs {
                conv_band(buf, &planes, terms, packed, acc);
                store_band(acc, &planes, &band, *place, bias, epilogue, out);
            }
        },
    );
    y
}

/// The operands' sizes against `g`, and what the kernels need.
fn check(g: &Geometry, x_len: usize, weight_len: usize) {
    assert!(g.stride == [1, 1] && available(), "direct conv: stride 1 on AVX-512F");
    assert_eq!((x_len, weight_len), (g.n * g.c * g.h * g.w, g.o * g.k()), "direct conv: operand sizes");
}

/// Every channel of the band's image, padded (see [`pad_plane`]), into `buf`.
fn pad_band(x: &[f32], g: &Geometry, from: &Source, band: &Band, planes: &Planes, buf: &mut Vec<f32>) {
    buf.resize(g.c * planes.stride, 0.0);
    let size = from.h * from.w;
    let img = &x[band.image * g.c * size..][..g.c * size];
    for (plane, src) in buf.chunks_exact_mut(planes.stride).zip(img.chunks_exact(size)) {
        pad_plane(src, from, band.rows.start, band.rows.len() + g.kh - 1, planes, plane);
    }
}

/// The band's sums `acc[o][p]` (`[o_pad][tiled]`) of every term.
fn conv_band(buf: &[f32], planes: &Planes, terms: &Terms, packed: &Packed, acc: &mut Vec<f32>) {
    acc.resize(packed.o_pad * planes.tiled, 0.0);
    let offsets = terms.offsets(planes.stride, 0);
    let reach = offsets.iter().max().copied().unwrap_or(0);
    assert!(buf.len() >= reach + planes.tiled && packed.data.len() == offsets.len() * packed.o_pad);
    for ot in (0..packed.o_pad).step_by(FWD_J) {
        for p0 in (0..planes.tiled).step_by(FWD_V * 16) {
            // SAFETY: AVX-512F is available (checked by the callers); the reads reach at most
            // buf[reach + tiled - 1] (asserted inside buf) and packed's last row, column o_pad - 1;
            // the writes acc's row ot + FWD_J - 1 <= o_pad - 1, column tiled - 1.
            unsafe {
                forward_tile(
                    buf.as_ptr().add(p0),
                    &offsets,
                    Rows { ptr: packed.data.as_ptr().add(ot), stride: packed.o_pad },
                    Rows { ptr: acc.as_mut_ptr().add(ot * planes.tiled + p0), stride: planes.tiled },
                )
            }
        }
    }
}

/// Moves a band's valid pixels from the tile sums to the output behind `out` (see [`Placement`]),
/// adding the bias and applying the epilogue.
fn store_band(
    acc: &[f32],
    planes: &Planes,
    band: &Band,
    place: Placement,
    bias: Option<&[f32]>,
    epilogue: Epilogue,
    out: Output,
) {
    let (s, [a, b]) = (place.scale, place.phase);
    let cols = (place.ow - b).div_ceil(s);
    for o in 0..place.o {
        let add = bias.map_or(0.0, |bias| bias[o]);
        let src = &acc[o * planes.tiled..][..planes.len];
        for (r, row) in band.rows.clone().zip(src.chunks_exact(planes.wp)) {
            let start = ((band.image * place.o + o) * place.oh + s * r + a) * place.ow + b;
            // SAFETY: row s r + a of channel o of this band's image lies inside the output
            // ([n, o, oh, ow]), and no other band (or phase, for its columns) writes it.
            let dst = unsafe { std::slice::from_raw_parts_mut(out.0.add(start), place.ow - b) };
            let value = |v: f32| match epilogue {
                Epilogue::Identity => v + add,
                Epilogue::Relu => relu_nan(v + add),
            };
            match s {
                1 => dst.iter_mut().zip(&row[..cols]).for_each(|(d, &v)| *d = value(v)),
                _ => dst.iter_mut().step_by(s).zip(&row[..cols]).for_each(|(d, &v)| *d = value(v)),
            }
        }
    }
}

/// A matrix behind a raw pointer: row `r` starts at `ptr + r * stride`.
#[derive(Clone, Copy)]
struct Rows<P> {
    ptr: P,
    stride: usize,
}

/// One forward tile: `acc[j][v * 16 + l] = sum over terms t of w[t][j] * x[offsets[t] + v * 16 +
/// l]` for `j < FWD_J`, `v < FWD_V`, `l < 16` (rows of `w` and `acc` counted by their strides).
///
/// # Safety
/// AVX-512F must be available, and every address named above inside its allocation.
#[target_feature(enable = "avx512f")]
unsafe fn forward_tile(x: *const f32, offsets: &[usize], w: Rows<*const f32>, acc: Rows<*mut f32>) {
    let mut sums = [[_mm512_setzero_ps(); FWD_V]; FWD_J];
    for (t, &offset) in offsets.iter().enumerate() {
        // SAFETY (this block and the two below): within the bounds the caller guarantees.
        let (xp, wt) = unsafe { (x.add(offset), w.ptr.add(t * w.stride)) };
        let xv: [__m512; FWD_V] = std::array::from_fn(|v| unsafe { _mm512_loadu_ps(xp.add(16 * v)) });
        for (j, row) in sums.iter_mut().enumerate() {
            let wv = _mm512_set1_ps(unsafe { *wt.add(j) });
            for (s, &xv) in row.iter_mut().zip(&xv) {
                *s = _mm512_fmadd_ps(xv, wv, *s);
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

/// `dW = sum over images of dy x^T` in burn's layout `[o, c, kh, kw]`, and `db = sum dy` (`[o]`).
/// Stride 1 only.
pub(super) fn weight_grad(dy: &[f32], x: &[f32], g: Geometry) -> (Vec<f32>, Vec<f32>) {
    check(&g, x.len(), g.o * g.k());
    assert_eq!(dy.len(), g.n * g.o * g.p(), "direct conv: dy's size");
    let place = Placement { o: g.o, oh: g.oh, ow: g.ow, scale: 1, phase: [0, 0] };
    let (sums, db) = weight_grad_sums(dy, x, &g, &Source::plain(&g), &[(Terms::plain(&g), place)]);
    let o_pad = g.o.next_multiple_of(WGT_V * 16);
    let dw = (0..g.o * g.k()).map(|i| sums[0][(i % g.k()) * o_pad + i / g.k()]).collect();
    (dw, db)
}

/// For each (terms, placement) pair, `sum over bands of dy^T x` as `[term][o_pad]` (`dy` read at
/// the placement's pixels), and `db = sum dy`: the bands split into one contiguous share per
/// thread, each summed in order, the shares added in order.
fn weight_grad_sums(
    dy: &[f32],
    x: &[f32],
    g: &Geometry,
    from: &Source,
    phases: &[(Terms, Placement)],
) -> (Vec<Vec<f32>>, Vec<f32>) {
    let o_pad = g.o.next_multiple_of(WGT_V * 16);
    let sizes: Vec<usize> = phases.iter().map(|(t, _)| t.0.len().next_multiple_of(WGT_J) * o_pad).collect();
    let items = bands(g);
    let shares = rayon::current_num_threads().min(items.len());
    let out_size = phases[0].1.oh * phases[0].1.ow;
    let partial: Vec<(Vec<Vec<f32>>, Vec<f64>)> = (0..shares)
        .into_par_iter()
        .map(|share| {
            let mut sums: Vec<Vec<f32>> = sizes.iter().map(|&n| vec![0f32; n]).collect();
            let (mut db, mut buf, mut dyt) = (vec![0f64; g.o], Vec::new(), Vec::new());
            for band in &items[share * items.len() / shares..(share + 1) * items.len() / shares] {
                let gy = &dy[band.image * g.o * out_size..][..g.o * out_size];
                let planes = Planes::of(g, band.rows.len());
                pad_band(x, g, from, band, &planes, &mut buf);
                for ((terms, place), sum) in phases.iter().zip(&mut sums) {
                    transpose_band(gy, band, &planes, *place, o_pad, &mut dyt);
                    add_column_sums(&dyt, o_pad, g.o, &mut db);
                    weight_grad_band(&buf, &dyt, &planes, terms, o_pad, sum);
                }
            }
            (sums, db)
        })
        .collect();
    let (mut sums, mut db): (Vec<Vec<f32>>, Vec<f64>) =
        (sizes.iter().map(|&n| vec![0f32; n]).collect(), vec![0f64; g.o]);
    for (pw, pb) in &partial {
        sums.iter_mut().zip(pw).for_each(|(s, p)| s.iter_mut().zip(p).for_each(|(d, v)| *d += v));
        db.iter_mut().zip(pb).for_each(|(d, v)| *d += v);
    }
    (sums, db.into_iter().map(|v| v as f32).collect())
}

/// `db[o] += sum over p of dyt[p][o]` (junk pixels are zero in `dyt`).
fn add_column_sums(dyt: &[f32], o_pad: usize, o: usize, db: &mut [f64]) {
    for row in dyt.chunks_exact(o_pad) {
        db.iter_mut().zip(&row[..o]).for_each(|(d, &v)| *d += v as f64);
    }
}

/// `dy` at one band's pixels of a placement as `[p][o_pad]` (pixels of the padded rows; junk
/// columns and channels past `o` zero).
fn transpose_band(gy: &[f32], band: &Band, planes: &Planes, place: Placement, o_pad: usize, dyt: &mut Vec<f32>) {
    dyt.clear();
    dyt.resize(planes.len * o_pad, 0.0);
    let (s, [a, b]) = (place.scale, place.phase);
    let cols = (place.ow - b).div_ceil(s);
    for (o, plane) in gy.chunks_exact(place.oh * place.ow).enumerate() {
        for (r, row_index) in band.rows.clone().enumerate() {
            let row = &plane[(s * row_index + a) * place.ow + b..][..place.ow - b];
            let base = r * planes.wp * o_pad + o;
            row.iter().step_by(s).take(cols).enumerate().for_each(|(q, &v)| dyt[base + q * o_pad] = v);
        }
    }
}

/// Adds one band's `dy x^T` over `terms` to `dwt` (`[terms, padded to WGT_J][o_pad]`).
fn weight_grad_band(buf: &[f32], dyt: &[f32], planes: &Planes, terms: &Terms, o_pad: usize, dwt: &mut [f32]) {
    let rows = dwt.len() / o_pad;
    // Terms past the last read the planes' start; their sums land in rows that are dropped.
    let offsets = terms.offsets(planes.stride, rows);
    let reach = offsets.iter().max().copied().unwrap_or(0);
    assert!(buf.len() >= reach + planes.len && dyt.len() == planes.len * o_pad && rows.is_multiple_of(WGT_J));
    for ob in (0..o_pad).step_by(WGT_V * 16) {
        for t in (0..rows).step_by(WGT_J) {
            // SAFETY: AVX-512F is available (checked by the callers); reads reach buf[reach + len
            // - 1] (asserted above) and dyt[(len - 1) * o_pad + ob + WGT_V * 16 - 1]; writes dwt
            // rows t..t + WGT_J, columns ob..ob + WGT_V * 16.
            unsafe {
                weight_grad_tile(
                    buf.as_ptr(),
                    &offsets[t..t + WGT_J],
                    planes.len,
                    Rows { ptr: dyt.as_ptr().add(ob), stride: o_pad },
                    Rows { ptr: dwt.as_mut_ptr().add(t * o_pad + ob), stride: o_pad },
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

/// One axis of an [`Upsampled`] conv: kernel size `k`, padding `pad` before the first (upsampled)
/// row, upsampling `s`. Output row `s r + a` (phase `a`) reads kernel row `i` from source row
/// `r + d(a, i)`, `d(a, i) = floor((a + i - pad) / s)`, so phase `a`'s kernel has rows
/// `d(a, 0)..=d(a, k - 1)`, each the sum of the kernel rows that read it.
#[derive(Clone, Copy, Debug)]
struct Axis {
    k: usize,
    pad: usize,
    s: usize,
    /// Source rows read before the first (`max -d(a, 0)`) and after the last (`max d(a, k - 1)`).
    before: usize,
    after: usize,
}

impl Axis {
    fn new(k: usize, pad: usize, s: usize) -> Self {
        let mut axis = Self { k, pad, s, before: 0, after: 0 };
        for a in 0..s {
            axis.before = axis.before.max((-axis.d(a, 0)).max(0) as usize);
            axis.after = axis.after.max(axis.d(a, k - 1).max(0) as usize);
        }
        axis
    }

    fn d(&self, a: usize, i: usize) -> isize {
        (a as isize + i as isize - self.pad as isize).div_euclid(self.s as isize)
    }

    /// Rows of phase `a`'s kernel.
    fn taps(&self, a: usize) -> usize {
        (self.d(a, self.k - 1) - self.d(a, 0)) as usize + 1
    }

    /// The row of phase `a`'s kernel that kernel row `i` is summed into.
    fn tap_of(&self, a: usize, i: usize) -> usize {
        (self.d(a, i) - self.d(a, 0)) as usize
    }

    /// Padded source row read by phase `a`'s tap `u` from output row 0 (`before` rows of padding).
    fn forward_offset(&self, a: usize, u: usize) -> usize {
        (self.before as isize + self.d(a, 0)) as usize + u
    }

    /// Padded row of phase `a`'s `dy` read by tap `u` for source row 0 of the input gradient
    /// (`after` rows of padding): `dy`'s row `R - d(a, 0) - u` feeds source row `R`.
    fn backward_offset(&self, a: usize, u: usize) -> usize {
        (self.after as isize - self.d(a, 0)) as usize - u
    }
}

/// A stride-1 conv of a map upsampled `s` times by nearest neighbour, computed from the map itself
/// phase by phase (see the module docs).
#[derive(Clone, Copy, Debug)]
pub(super) struct Upsampled {
    /// The conv's geometry on the upsampled map (`h`, `w`, `oh`, `ow` all `s` times the map's).
    full: Geometry,
    s: usize,
    rows: Axis,
    cols: Axis,
}

impl Upsampled {
    /// The conv of geometry `full` on a map upsampled `s` times; `None` unless it has stride 1 and
    /// keeps the upsampled size (`Same` padding), and the kernels are available.
    pub(super) fn new(full: Geometry, s: usize) -> Option<Self> {
        let same = full.stride == [1, 1] && (full.oh, full.ow) == (full.h, full.w);
        let whole = s > 1 && full.h.is_multiple_of(s) && full.w.is_multiple_of(s);
        (same && whole && available()).then(|| Self {
            full,
            s,
            rows: Axis::new(full.kh, full.pad[0], s),
            cols: Axis::new(full.kw, full.pad[1], s),
        })
    }

    /// The map's dims `[n, c, h, w]`.
    pub(super) fn input_dims(&self) -> [usize; 4] {
        [self.full.n, self.full.c, self.full.h / self.s, self.full.w / self.s]
    }

    /// The conv on the map, padded by what the phases read, with every phase's taps inside its
    /// kernel (`c` input channels, `o` output channels).
    fn low(&self, c: usize, o: usize, pad: [usize; 2]) -> Geometry {
        let [n, _, h, w] = self.input_dims();
        let (kh, kw) = (self.rows.before + self.rows.after + 1, self.cols.before + self.cols.after + 1);
        Geometry { n, c, h, w, o, kh, kw, stride: [1, 1], pad, oh: h, ow: w }
    }

    /// The phases `(a, b)`, row-major.
    fn phases(&self) -> impl Iterator<Item = [usize; 2]> + use<> {
        let s = self.s;
        (0..s * s).map(move |p| [p / s, p % s])
    }

    /// Where phase `[a, b]`'s results go in the output.
    fn placement(&self, phase: [usize; 2]) -> Placement {
        Placement { o: self.full.o, oh: self.full.oh, ow: self.full.ow, scale: self.s, phase }
    }

    /// Phase `[a, b]`'s terms in the forward conv: (channel, tap row, tap column), with `wp` columns
    /// a padded row.
    fn forward_terms(&self, [a, b]: [usize; 2], wp: usize) -> Terms {
        let (nu, nv) = (self.rows.taps(a), self.cols.taps(b));
        let term = |t: usize| {
            let (ch, u, v) = (t / (nu * nv), t / nv % nu, t % nv);
            (ch, self.rows.forward_offset(a, u) * wp + self.cols.forward_offset(b, v))
        };
        Terms((0..self.full.c * nu * nv).map(term).collect())
    }

    /// `weight` (burn's `[o, c, kh, kw]`) summed into phase `[a, b]`'s kernel: `[o][c][u][v]`.
    fn phase_weight(&self, weight: &[f32], [a, b]: [usize; 2]) -> Vec<f32> {
        let g = &self.full;
        let (nu, nv) = (self.rows.taps(a), self.cols.taps(b));
        let mut out = vec![0f32; g.o * g.c * nu * nv];
        for (oc, filter) in weight.chunks_exact(g.kh * g.kw).enumerate() {
            for (t, &v) in filter.iter().enumerate() {
                let (u, w) = (self.rows.tap_of(a, t / g.kw), self.cols.tap_of(b, t % g.kw));
                out[(oc * nu + u) * nv + w] += v;
            }
        }
        out
    }

    /// `y = epilogue(W up(x) + bias)` (`[n, o, s h, s w]`) from the map `x` (`[n, c, h, w]`).
    pub(super) fn forward(&self, x: &[f32], weight: &[f32], bias: Option<&[f32]>, epilogue: Epilogue) -> Vec<f32> {
        let g = self.full;
        let low = self.low(g.c, g.o, [self.rows.before, self.cols.before]);
        self.check(Some(x.len()), None, weight.len());
        let wp = low.ow + low.kw - 1;
        let phases: Vec<(Terms, Packed, Placement)> = self
            .phases()
            .map(|phase| {
                let terms = self.forward_terms(phase, wp);
                let w = self.phase_weight(weight, phase);
                let k = terms.0.len();
                (terms, Packed::new(g.o, k, |o, t| w[o * k + t]), self.placement(phase))
            })
            .collect();
        let pad = |band: &Band, planes: &Planes, buf: &mut Vec<f32>| {
            pad_band(x, &low, &Source::plain(&low), band, planes, buf)
        };
        conv_bands(&low, pad, &phases, bias, epilogue)
    }

    /// The operands' sizes, where given: the map `[n, c, h, w]`, `dy` (`[n, o, s h, s w]`) and
    /// burn's weight `[o, c, kh, kw]`; and what the kernels need.
    fn check(&self, x_len: Option<usize>, dy_len: Option<usize>, weight_len: usize) {
        let g = &self.full;
        assert!(available(), "direct conv: AVX-512F");
        let map: usize = self.input_dims().iter().product();
        assert!(x_len.is_none_or(|l| l == map) && dy_len.is_none_or(|l| l == g.n * g.o * g.p()), "direct conv: sizes");
        assert_eq!(weight_len, g.o * g.k(), "direct conv: weight size");
    }

    /// The conv's geometry on the upsampled map.
    pub(super) fn geometry(&self) -> Geometry {
        self.full
    }

    /// The map's gradient (`[n, c, h, w]`) from `dy` (`[n, o, s h, s w]`): every phase's transposed
    /// conv, summed in one forward pass over the phases of `dy` stacked as `s * s * o` channels.
    pub(super) fn input_grad(&self, dy: &[f32], weight: &[f32]) -> Vec<f32> {
        let g = self.full;
        self.check(None, Some(dy.len()), weight.len());
        let phases: Vec<[usize; 2]> = self.phases().collect();
        let back = self.low(phases.len() * g.o, g.c, [self.rows.after, self.cols.after]);
        let wp = back.ow + back.kw - 1;
        let (mut offsets, mut values) = (Vec::new(), Vec::new());
        for (p, &phase @ [a, b]) in phases.iter().enumerate() {
            let (nu, nv) = (self.rows.taps(a), self.cols.taps(b));
            let w = self.phase_weight(weight, phase);
            for (oc, u, v) in (0..g.o).flat_map(|oc| (0..nu * nv).map(move |t| (oc, t / nv, t % nv))) {
                let at = self.rows.backward_offset(a, u) * wp + self.cols.backward_offset(b, v);
                offsets.push((p * g.o + oc, at));
                values.push((0..g.c).map(|c| w[((oc * g.c + c) * nu + u) * nv + v]).collect::<Vec<f32>>());
            }
        }
        let packed = Packed::new(g.c, values.len(), |c, t| values[t][c]);
        let place = Placement { o: back.o, oh: back.oh, ow: back.ow, scale: 1, phase: [0, 0] };
        let pad = |band: &Band, planes: &Planes, buf: &mut Vec<f32>| self.pad_phases(dy, &back, band, planes, buf);
        conv_bands(&back, pad, &[(Terms(offsets), packed, place)], None, Epilogue::Identity)
    }

    /// Every phase of every channel of `dy` for the band's image, padded, as the `back` conv's
    /// input planes: phase `p`, channel `oc` in plane `p * o + oc`.
    fn pad_phases(&self, dy: &[f32], back: &Geometry, band: &Band, planes: &Planes, buf: &mut Vec<f32>) {
        let g = &self.full;
        buf.resize(back.c * planes.stride, 0.0);
        let img = &dy[band.image * g.o * g.p()..][..g.o * g.p()];
        let mut planes_out = buf.chunks_exact_mut(planes.stride);
        for phase in self.phases() {
            let from = Source { h: g.oh, w: g.ow, pad: back.pad, scale: self.s, phase };
            for (src, plane) in img.chunks_exact(g.p()).zip(planes_out.by_ref()) {
                pad_plane(src, &from, band.rows.start, band.rows.len() + back.kh - 1, planes, plane);
            }
        }
    }

    /// `dW` in burn's layout `[o, c, kh, kw]` (each phase's, folded back onto the kernel) and
    /// `db = sum dy` (`[o]`), from `dy` (`[n, o, s h, s w]`) and the map `x`.
    pub(super) fn weight_grad(&self, dy: &[f32], x: &[f32]) -> (Vec<f32>, Vec<f32>) {
        let g = self.full;
        self.check(Some(x.len()), Some(dy.len()), g.o * g.k());
        let low = self.low(g.c, g.o, [self.rows.before, self.cols.before]);
        let wp = low.ow + low.kw - 1;
        let phases: Vec<(Terms, Placement)> =
            self.phases().map(|phase| (self.forward_terms(phase, wp), self.placement(phase))).collect();
        let (sums, db) = weight_grad_sums(dy, x, &low, &Source::plain(&low), &phases);
        let o_pad = g.o.next_multiple_of(WGT_V * 16);
        let mut dw = vec![0f32; g.o * g.k()];
        for ([a, b], sum) in self.phases().zip(&sums) {
            let (nu, nv) = (self.rows.taps(a), self.cols.taps(b));
            for (idx, d) in dw.iter_mut().enumerate() {
                let (oc, c, t) = (idx / g.k(), idx % g.k() / (g.kh * g.kw), idx % (g.kh * g.kw));
                let (u, v) = (self.rows.tap_of(a, t / g.kw), self.cols.tap_of(b, t % g.kw));
                *d += sum[((c * nu + u) * nv + v) * o_pad + oc];
            }
        }
        (dw, db)
    }
}
