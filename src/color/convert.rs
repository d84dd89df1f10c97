//! sRGB <-> Lab / YUV / HSV conversions, per pixel and batched.
//!
//! Two paths share the definitions below:
//! - the per-pixel methods of [`ColorSpace`] (`from_srgb`, `to_srgb`) compute Lab and YUV in f64: they are the
//!   reference (tests, single colours, decoding);
//! - [`encode_u8_planar`] is the data path (whole data sets of 8-bit images): f32, a 256-entry table for the sRGB
//!   transfer curve, a division-free bit-trick cube root, loops written so that LLVM vectorises them, rayon over
//!   images. It agrees with the reference within 1e-4 in every channel on all 2^24 colours.
//!   [`decode_planar`] turns a gray input plus predicted chroma back into clamped RGB.
//!
//! Definitions (the units are fixed by [`ColorSpace`]'s documentation):
//! - sRGB transfer curve (IEC 61966-2-1): linear = c / 12.92 for c <= 0.04045, else ((c + 0.055) / 1.055)^2.4.
//!   The inverse is applied to any real (the linear piece continues below 0), so `to_srgb` inverts `from_srgb`
//!   also outside the gamut.
//! - Lab: linear sRGB -> XYZ by the standard sRGB/D65 matrix (Lindbloom's 7-digit values), divided by the white
//!   point taken as the matrix's row sums (0.95047, 1.0000001, 1.08883), so that sRGB white is exactly a = b = 0;
//!   CIE f(t) = t^(1/3) above epsilon = 216/24389, else (kappa t + 16) / 116 with kappa = 24389/27;
//!   L = 116 f(Y) - 16, a = 500 (f(X) - f(Y)), b = 200 (f(Y) - f(Z)).
//! - YUV (BT.601 on gamma-encoded sRGB, times 255): Y = 255 (0.299 R + 0.587 G + 0.114 B),
//!   U = 255 * 0.492 (B - Y/255), V = 255 * 0.877 (R - Y/255); so |U| <= 255 * 0.492 * 0.886 = 111.158 and
//!   |V| <= 255 * 0.877 * 0.701 = 156.768.
//! - HSV (hexcone): V = 100 max, S = 100 (max - min) / max (0 for black), H in degrees [0, 360), 0 for grays.

use super::ColorSpace;
use rayon::prelude::*;
use std::sync::LazyLock;

/// Linear sRGB -> CIE XYZ (D65), IEC 61966-2-1 primaries, as tabulated by Bruce Lindbloom.
const RGB_TO_XYZ: [[f64; 3]; 3] =
    [[0.4124564, 0.3575761, 0.1804375], [0.2126729, 0.7151522, 0.0721750], [0.0193339, 0.1191920, 0.9503041]];

/// Rows divided by their sums (the white point): linear sRGB -> XYZ / white.
const RGB_TO_XYZN: [[f64; 3]; 3] = normalise_rows(RGB_TO_XYZ);
/// Its inverse: XYZ / white -> linear sRGB.
const XYZN_TO_RGB: [[f64; 3]; 3] = invert(RGB_TO_XYZN);
/// The same matrix in f32 for the batched path.
const RGB_TO_XYZN_F32: [[f32; 3]; 3] = to_f32(RGB_TO_XYZN);

/// CIE constants in their exact rational form, which makes f(t) continuous at the junction.
const LAB_EPSILON: f64 = 216.0 / 24389.0;
const LAB_KAPPA: f64 = 24389.0 / 27.0;

/// BT.601 luma weights and the U, V scale factors.
const YUV_KR: f64 = 0.299;
const YUV_KG: f64 = 0.587;
const YUV_KB: f64 = 0.114;
const YUV_U: f64 = 0.492;
const YUV_V: f64 = 0.877;

/// Extremes of Lab a and b over the sRGB cube, rounded outwards at the 4th decimal. They are reached at corners of
/// the cube: a at green (min) and magenta (max), b at blue (min) and yellow (max) (checked in the tests).
const LAB_A_BOUNDS: (f32, f32) = (-86.1828, 98.2344);
const LAB_B_BOUNDS: (f32, f32) = (-107.8602, 94.4780);
/// |U| and |V| are largest at blue/yellow and red/cyan: 255 * 0.492 * (1 - 0.114) and 255 * 0.877 * (1 - 0.299).
const YUV_U_MAX: f32 = (255.0 * YUV_U * (1.0 - YUV_KB)) as f32;
const YUV_V_MAX: f32 = (255.0 * YUV_V * (1.0 - YUV_KR)) as f32;

const fn normalise_rows(m: [[f64; 3]; 3]) -> [[f64; 3]; 3] {
    let mut out = m;
    let mut i = 0;
    while i < 3 {
        let sum = m[i][0] + m[i][1] + m[i][2];
        let mut j = 0;
        while j < 3 {
            out[i][j] = m[i][j] / sum;
            j += 1;
        }
        i += 1;
    }
    out
}

/// 3x3 inverse by cofactors, evaluated at compile time so that the inverse matrix needs no magic numbers.
const fn invert(m: [[f64; 3]; 3]) -> [[f64; 3]; 3] {
    let c00 = m[1][1] * m[2][2] - m[1][2] * m[2][1];
    let c01 = m[1][2] * m[2][0] - m[1][0] * m[2][2];
    let c02 = m[1][0] * m[2][1] - m[1][1] * m[2][0];
    let det = m[0][0] * c00 + m[0][1] * c01 + m[0][2] * c02;
    [
        [c00 / det, (m[0][2] * m[2][1] - m[0][1] * m[2][2]) / det, (m[0][1] * m[1][2] - m[0][2] * m[1][1]) / det],
        [c01 / det, (m[0][0] * m[2][2] - m[0][2] * m[2][0]) / det, (m[0][2] * m[1][0] - m[0][0] * m[1][2]) / det],
        [c02 / det, (m[0][1] * m[2][0] - m[0][0] * m[2][1]) / det, (m[0][0] * m[1][1] - m[0][1] * m[1][0]) / det],
    ]
}

const fn to_f32(m: [[f64; 3]; 3]) -> [[f32; 3]; 3] {
    let mut out = [[0.0f32; 3]; 3];
    let mut i = 0;
    while i < 9 {
        out[i / 3][i % 3] = m[i / 3][i % 3] as f32;
        i += 1;
    }
    out
}

impl ColorSpace {
    /// The largest luma value: 100 (Lab L, HSV V) or 255 (YUV Y).
    pub fn luma_max(self) -> f32 {
        match self {
            ColorSpace::Lab | ColorSpace::Hsv => 100.0,
            ColorSpace::Yuv => 255.0,
        }
    }

    /// (min, max) of each chroma channel over the sRGB gamut, for normalising model outputs.
    /// HSV: hue (0, 360) (circular), saturation (0, 100).
    pub fn chroma_bounds(self) -> [(f32, f32); 2] {
        match self {
            ColorSpace::Lab => [LAB_A_BOUNDS, LAB_B_BOUNDS],
            ColorSpace::Yuv => [(-YUV_U_MAX, YUV_U_MAX), (-YUV_V_MAX, YUV_V_MAX)],
            ColorSpace::Hsv => [(0.0, 360.0), (0.0, 100.0)],
        }
    }

    /// The chroma channel that is an angle (period 360): hue, channel 0 in HSV.
    pub fn hue_channel(self) -> Option<usize> {
        match self {
            ColorSpace::Hsv => Some(0),
            ColorSpace::Lab | ColorSpace::Yuv => None,
        }
    }

    /// sRGB in [0, 1] -> (luma, chroma1, chroma2) in this space's units. Lab and YUV are computed in f64
    /// (reference path); HSV is exact in f32 (comparisons and one division).
    pub fn from_srgb(self, rgb: [f32; 3]) -> [f32; 3] {
        let [r, g, b] = rgb.map(f64::from);
        let out = match self {
            ColorSpace::Lab => {
                let lin = [r, g, b].map(srgb_to_linear);
                let [fx, fy, fz] = mat_vec(&RGB_TO_XYZN, lin).map(lab_f);
                [116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)]
            }
            ColorSpace::Yuv => {
                let y = YUV_KR * r + YUV_KG * g + YUV_KB * b;
                [255.0 * y, 255.0 * YUV_U * (b - y), 255.0 * YUV_V * (r - y)]
            }
            ColorSpace::Hsv => return hsv_from_rgb(rgb),
        };
        out.map(|x| x as f32)
    }

    /// (luma, chroma1, chroma2) -> sRGB; the exact inverse of [`ColorSpace::from_srgb`], NOT clamped (colours
    /// outside the gamut give values outside [0, 1]). HSV hue is taken modulo 360.
    pub fn to_srgb(self, p: [f32; 3]) -> [f32; 3] {
        let [l, c1, c2] = p.map(f64::from);
        let out = match self {
            ColorSpace::Lab => {
                let fy = (l + 16.0) / 116.0;
                let xyzn = [fy + c1 / 500.0, fy, fy - c2 / 200.0].map(lab_f_inv);
                mat_vec(&XYZN_TO_RGB, xyzn).map(linear_to_srgb)
            }
            ColorSpace::Yuv => {
                let y = l / 255.0;
                let b = y + c1 / (255.0 * YUV_U);
                let r = y + c2 / (255.0 * YUV_V);
                [r, (y - YUV_KR * r - YUV_KB * b) / YUV_KG, b]
            }
            ColorSpace::Hsv => {
                // Branch-free hexcone: channel n is V - V S clamp(min(k, 4 - k), 0, 1), k = (n + H/60) mod 6.
                let h = (c1 / 60.0).rem_euclid(6.0);
                let (v, s) = (l / 100.0, c2 / 100.0);
                let channel = |n: f64| {
                    let k = (n + h).rem_euclid(6.0);
                    v - v * s * k.min(4.0 - k).clamp(0.0, 1.0)
                };
                [channel(5.0), channel(3.0), channel(1.0)]
            }
        };
        out.map(|x| x as f32)
    }
}

fn srgb_to_linear(c: f64) -> f64 {
    if c <= 0.04045 { c / 12.92 } else { ((c + 0.055) / 1.055).powf(2.4) }
}

fn linear_to_srgb(l: f64) -> f64 {
    if l <= 0.0031308 { l * 12.92 } else { 1.055 * l.powf(1.0 / 2.4) - 0.055 }
}

fn lab_f(t: f64) -> f64 {
    if t > LAB_EPSILON { t.cbrt() } else { (LAB_KAPPA * t + 16.0) / 116.0 }
}

fn lab_f_inv(f: f64) -> f64 {
    let cube = f * f * f;
    if cube > LAB_EPSILON { cube } else { (116.0 * f - 16.0) / LAB_KAPPA }
}

fn mat_vec(m: &[[f64; 3]; 3], v: [f64; 3]) -> [f64; 3] {
    m.map(|row| row[0] * v[0] + row[1] * v[1] + row[2] * v[2])
}

/// RGB -> (V, H, S), shared by both paths. Written with selects rather than early returns so that it vectorises;
/// the unselected hue candidates may be NaN (0 / 0 for grays), which a select discards.
#[inline(always)]
fn hsv_from_rgb([r, g, b]: [f32; 3]) -> [f32; 3] {
    let max = r.max(g).max(b);
    let min = r.min(g).min(b);
    let d = max - min;
    let inv_d = 1.0 / d;
    let sector = if max == r {
        (g - b) * inv_d
    } else if max == g {
        (b - r) * inv_d + 2.0
    } else {
        (r - g) * inv_d + 4.0
    };
    let sector = if sector < 0.0 { sector + 6.0 } else { sector };
    let hue = if d > 0.0 { 60.0 * sector } else { 0.0 };
    // A tiny negative sector plus 6 can round to exactly 6: keep the hue in [0, 360).
    let hue = if hue >= 360.0 { hue - 360.0 } else { hue };
    let sat = if max > 0.0 { 100.0 * d / max } else { 0.0 };
    [100.0 * max, hue, sat]
}

/// sRGB transfer curve for every 8-bit value, computed in f64 once.
static SRGB_U8_TO_LINEAR: LazyLock<[f32; 256]> =
    LazyLock::new(|| std::array::from_fn(|i| srgb_to_linear(i as f64 / 255.0) as f32));

/// Cube root for t > 0 (f32 normals), relative error below 1e-6 (about 1e-7 measured), without a division:
/// - r ~ t^(-1/3) from the bits (negate and third the exponent: `MAGIC - bits / 3`, within 3.5 %);
/// - two Newton steps for the inverse cube root, r <- r (4 - t r^3) / 3, which need only products and square the
///   relative error (3.5e-2 -> 2.3e-3 -> 1.1e-5);
/// - y = t r^2 ~ t^(1/3), then one Newton step for the cube root written as a small correction,
///   y - (y^3 - t) r^2 / 3 (r^2 stands for 1 / y^2), whose own rounding barely reaches the result: this keeps
///   Lab a = 500 (f(X) - f(Y)) within 1e-4 of the f64 reference.
///
/// No branches and no division, so the calling loop vectorises and stays cheap; t = 0 gives 0.
#[inline(always)]
fn fast_cbrt(t: f32) -> f32 {
    const MAGIC: u32 = 0x54a2_3290;
    // wrapping_sub: it cannot overflow for t >= 0, and a checked one (debug builds) would be a branch.
    let mut r = f32::from_bits(MAGIC.wrapping_sub(t.to_bits() / 3));
    for _ in 0..2 {
        r = r * (4.0 - t * r * r * r) * (1.0 / 3.0);
    }
    let r2 = r * r;
    let y = t * r2;
    y - (y * y * y - t) * r2 * (1.0 / 3.0)
}

/// Pixels per inner block of the batched path: the stack buffers stay in L1 and the arithmetic loop has a fixed
/// maximum length.
const BLOCK: usize = 256;

/// Planar 8-bit RGB images -> luma in [0, 1] (divided by [`ColorSpace::luma_max`]) and chroma in natural units.
///
/// `rgb` is `[n][3][hw]` (per image: all R, all G, all B), `luma01` is `[n][hw]`, `chroma` is `[n][2][hw]`.
/// Rayon parallelises over images. Panics if the lengths disagree (`rgb.len()` must be a multiple of `3 * hw`).
pub fn encode_u8_planar(space: ColorSpace, rgb: &[u8], hw: usize, luma01: &mut [f32], chroma: &mut [f32]) {
    let Some(n) = image_count(rgb.len(), 3, hw) else {
        assert!(luma01.is_empty() && chroma.is_empty(), "hw == 0 needs empty buffers");
        return;
    };
    assert_eq!(luma01.len(), n * hw, "luma01 must hold n * hw values");
    assert_eq!(chroma.len(), 2 * n * hw, "chroma must hold 2 * n * hw values");
    rgb.par_chunks(3 * hw).zip(luma01.par_chunks_mut(hw)).zip(chroma.par_chunks_mut(2 * hw)).for_each(
        |((src, luma), chroma)| {
            let (r, rest) = src.split_at(hw);
            let (g, b) = rest.split_at(hw);
            let (c1, c2) = chroma.split_at_mut(hw);
            let blocks = r
                .chunks(BLOCK)
                .zip(g.chunks(BLOCK))
                .zip(b.chunks(BLOCK))
                .zip(luma.chunks_mut(BLOCK))
                .zip(c1.chunks_mut(BLOCK).zip(c2.chunks_mut(BLOCK)));
            for ((((r, g), b), luma), (c1, c2)) in blocks {
                match space {
                    ColorSpace::Lab => encode_block_lab([r, g, b], luma, c1, c2),
                    ColorSpace::Yuv => encode_block_yuv([r, g, b], luma, c1, c2),
                    ColorSpace::Hsv => encode_block_hsv([r, g, b], luma, c1, c2),
                }
            }
        },
    );
}

/// Number of images in a planar buffer of `len` values with `channels` planes of `hw`; None when hw == 0.
pub(super) fn image_count(len: usize, channels: usize, hw: usize) -> Option<usize> {
    if hw == 0 {
        assert_eq!(len, 0, "hw == 0 needs empty buffers");
        return None;
    }
    assert_eq!(len % (channels * hw), 0, "buffer length must be a multiple of {channels} * hw");
    Some(len / (channels * hw))
}

fn encode_block_lab(rgb: [&[u8]; 3], luma: &mut [f32], c1: &mut [f32], c2: &mut [f32]) {
    // The table lookups (a gather) stay in their own loop so that the arithmetic loop below is plain
    // slice-in/slice-out f32 code that LLVM vectorises.
    let lut = &*SRGB_U8_TO_LINEAR;
    let mut lin = [[0.0f32; BLOCK]; 3];
    for (plane, src) in lin.iter_mut().zip(rgb) {
        for (dst, &v) in plane.iter_mut().zip(src) {
            *dst = lut[usize::from(v)];
        }
    }
    let m = RGB_TO_XYZN_F32;
    let f = |t: f32| {
        // Both pieces are computed and one is selected: a branch here would stop the loop from vectorising.
        let root = fast_cbrt(t);
        let line = (LAB_KAPPA as f32 * t + 16.0) * (1.0 / 116.0);
        if t > LAB_EPSILON as f32 { root } else { line }
    };
    // Re-slicing everything to one length lets LLVM drop the bounds checks inside the loop.
    let n = luma.len();
    let (lr, lg, lb) = (&lin[0][..n], &lin[1][..n], &lin[2][..n]);
    let (c1, c2) = (&mut c1[..n], &mut c2[..n]);
    for i in 0..n {
        let (r, g, b) = (lr[i], lg[i], lb[i]);
        let fx = f(m[0][0] * r + m[0][1] * g + m[0][2] * b);
        let fy = f(m[1][0] * r + m[1][1] * g + m[1][2] * b);
        let fz = f(m[2][0] * r + m[2][1] * g + m[2][2] * b);
        // L / 100 = 1.16 fy - 0.16.
        luma[i] = 1.16 * fy - 0.16;
        c1[i] = 500.0 * (fx - fy);
        c2[i] = 200.0 * (fy - fz);
    }
}

fn encode_block_yuv([r, g, b]: [&[u8]; 3], luma: &mut [f32], c1: &mut [f32], c2: &mut [f32]) {
    let (kr, kg, kb) = (YUV_KR as f32, YUV_KG as f32, YUV_KB as f32);
    let (su, sv) = (YUV_U as f32, YUV_V as f32);
    let n = luma.len();
    let (r, g, b, c1, c2) = (&r[..n], &g[..n], &b[..n], &mut c1[..n], &mut c2[..n]);
    for i in 0..n {
        // Y/255 on [0, 255] inputs is the weighted sum divided by 255: luma01 and the chroma both use y in [0, 1].
        let (r, g, b) = (f32::from(r[i]) / 255.0, f32::from(g[i]) / 255.0, f32::from(b[i]) / 255.0);
        let y = kr * r + kg * g + kb * b;
        luma[i] = y;
        c1[i] = 255.0 * su * (b - y);
        c2[i] = 255.0 * sv * (r - y);
    }
}

fn encode_block_hsv([r, g, b]: [&[u8]; 3], luma: &mut [f32], c1: &mut [f32], c2: &mut [f32]) {
    let n = luma.len();
    let (r, g, b, c1, c2) = (&r[..n], &g[..n], &b[..n], &mut c1[..n], &mut c2[..n]);
    for i in 0..n {
        let rgb = [r[i], g[i], b[i]].map(|v| f32::from(v) / 255.0);
        let [v, h, s] = hsv_from_rgb(rgb);
        luma[i] = v * (1.0 / 100.0);
        c1[i] = h;
        c2[i] = s;
    }
}

/// [`decode_planar`] into a new buffer: planar RGB `[n][3][hw]`.
pub fn decoded_planar(space: ColorSpace, luma01: &[f32], chroma: &[f32], hw: usize) -> Vec<f32> {
    let mut rgb = vec![0.0; 3 * luma01.len()];
    decode_planar(space, luma01, chroma, hw, &mut rgb);
    rgb
}

/// The gray input as a viewer (or a colour classifier) sees it: the luma with zero chroma, which is
/// neutral in every space, as planar RGB `[n][3][hw]`.
pub fn gray_planar(space: ColorSpace, luma01: &[f32], hw: usize) -> Vec<f32> {
    decoded_planar(space, luma01, &vec![0.0; 2 * luma01.len()], hw)
}

/// Gray input plus chroma -> planar RGB in [0, 1] (clamped): `luma01` is `[n][hw]` in [0, 1] (times
/// [`ColorSpace::luma_max`]), `chroma` is `[n][2][hw]` in natural units, `rgb` is `[n][3][hw]`.
/// Rayon parallelises over images. Panics if the lengths disagree.
pub fn decode_planar(space: ColorSpace, luma01: &[f32], chroma: &[f32], hw: usize, rgb: &mut [f32]) {
    let Some(n) = image_count(luma01.len(), 1, hw) else {
        assert!(chroma.is_empty() && rgb.is_empty(), "hw == 0 needs empty buffers");
        return;
    };
    assert_eq!(chroma.len(), 2 * n * hw, "chroma must hold 2 * n * hw values");
    assert_eq!(rgb.len(), 3 * n * hw, "rgb must hold 3 * n * hw values");
    let luma_max = space.luma_max();
    luma01.par_chunks(hw).zip(chroma.par_chunks(2 * hw)).zip(rgb.par_chunks_mut(3 * hw)).for_each(
        |((luma, chroma), out)| {
            let (c1, c2) = chroma.split_at(hw);
            let (r, rest) = out.split_at_mut(hw);
            let (g, b) = rest.split_at_mut(hw);
            for i in 0..hw {
                let p = space.to_srgb([luma[i] * luma_max, c1[i], c2[i]]);
                [r[i], g[i], b[i]] = p.map(|v| v.clamp(0.0, 1.0));
            }
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    fn random_rgb(rng: &mut Rng) -> [f32; 3] {
        [rng.uniform(), rng.uniform(), rng.uniform()]
    }

    fn assert_close(got: [f32; 3], want: [f32; 3], tol: f32, what: &str) {
        for c in 0..3 {
            assert!((got[c] - want[c]).abs() <= tol, "{what}: got {got:?}, want {want:?} (tolerance {tol})");
        }
    }

    #[test]
    fn lab_of_primaries_matches_published_values() {
        // CIE Lab (D65) of the sRGB primaries as given by Bruce Lindbloom's calculator, and recomputed
        // independently in Python from the formulas in this file's header.
        let cases = [
            ([1.0, 1.0, 1.0], [100.0, 0.0, 0.0]),
            ([0.0, 0.0, 0.0], [0.0, 0.0, 0.0]),
            ([1.0, 0.0, 0.0], [53.2408, 80.0925, 67.2032]),
            ([0.0, 1.0, 0.0], [87.7347, -86.1827, 83.1793]),
            ([0.0, 0.0, 1.0], [32.2970, 79.1875, -107.8602]),
        ];
        for (rgb, lab) in cases {
            assert_close(ColorSpace::Lab.from_srgb(rgb), lab, 0.05, &format!("Lab of {rgb:?}"));
        }
        // Mid gray 0.5: linear 0.214041, L = 116 * 0.214041^(1/3) - 16 = 53.389.
        assert_close(ColorSpace::Lab.from_srgb([0.5; 3]), [53.389, 0.0, 0.0], 1e-3, "Lab of gray");
    }

    #[test]
    fn yuv_of_white_and_primaries() {
        let yuv = |rgb| ColorSpace::Yuv.from_srgb(rgb);
        assert_close(yuv([1.0, 1.0, 1.0]), [255.0, 0.0, 0.0], 1e-4, "white");
        // Red: Y = 255 * 0.299 = 76.245, U = 255 * 0.492 * (0 - 0.299) = -37.51254,
        // V = 255 * 0.877 * (1 - 0.299) = 156.768135.
        assert_close(yuv([1.0, 0.0, 0.0]), [76.245, -37.51254, 156.76814], 1e-3, "red");
        // Blue: Y = 255 * 0.114 = 29.07, U = 255 * 0.492 * 0.886 = 111.15756, V = 255 * 0.877 * -0.114.
        assert_close(yuv([0.0, 0.0, 1.0]), [29.07, 111.15756, -25.49439], 1e-3, "blue");
    }

    #[test]
    fn hsv_of_named_colours() {
        let hsv = |rgb| ColorSpace::Hsv.from_srgb(rgb);
        assert_close(hsv([1.0, 0.0, 0.0]), [100.0, 0.0, 100.0], 1e-4, "red");
        assert_close(hsv([1.0, 1.0, 0.0]), [100.0, 60.0, 100.0], 1e-4, "yellow");
        assert_close(hsv([0.0, 1.0, 0.0]), [100.0, 120.0, 100.0], 1e-4, "green");
        assert_close(hsv([0.0, 1.0, 1.0]), [100.0, 180.0, 100.0], 1e-4, "cyan");
        assert_close(hsv([0.0, 0.0, 1.0]), [100.0, 240.0, 100.0], 1e-4, "blue");
        assert_close(hsv([1.0, 0.0, 1.0]), [100.0, 300.0, 100.0], 1e-4, "magenta");
        // (0.5, 0.25, 0.5): max 0.5, min 0.25, S = 50, hue sector of R: (g - b) / d = -1 -> 300.
        assert_close(hsv([0.5, 0.25, 0.5]), [50.0, 300.0, 50.0], 1e-4, "dark magenta");
        assert_close(hsv([0.5, 0.5, 0.5]), [50.0, 0.0, 0.0], 1e-6, "gray");
        assert_close(hsv([0.0, 0.0, 0.0]), [0.0, 0.0, 0.0], 0.0, "black");
    }

    #[test]
    fn scalar_round_trip_on_random_pixels() {
        let mut rng = Rng::new(11);
        for space in ColorSpace::ALL {
            for _ in 0..10_000 {
                let rgb = random_rgb(&mut rng);
                let back = space.to_srgb(space.from_srgb(rgb));
                assert_close(back, rgb, 1e-4, &format!("{space:?} round trip"));
            }
        }
    }

    #[test]
    fn to_srgb_inverts_outside_the_gamut_and_wraps_hue() {
        // Not clamped: Lab (50, 100, 100) is outside sRGB, yet it must come back from its own RGB values.
        let rgb = ColorSpace::Lab.to_srgb([50.0, 100.0, 100.0]);
        assert!(rgb[1] < 0.0, "expected an out-of-gamut green channel, got {rgb:?}");
        let lab = ColorSpace::Lab.from_srgb(rgb);
        assert_close(lab, [50.0, 100.0, 100.0], 1e-3, "Lab outside the gamut");
        let hsv = ColorSpace::Hsv;
        assert_close(hsv.to_srgb([100.0, 360.0 + 120.0, 100.0]), [0.0, 1.0, 0.0], 1e-5, "hue 480 == 120");
        assert_close(hsv.to_srgb([100.0, -60.0, 100.0]), [1.0, 0.0, 1.0], 1e-5, "hue -60 == 300");
    }

    #[test]
    fn bounds_are_reached_at_the_cube_corners_and_contain_the_gamut() {
        for space in ColorSpace::ALL {
            let bounds = space.chroma_bounds();
            // Every cube surface colour at 1/64 steps (where the chroma extremes lie) is within the bounds.
            let steps: Vec<f32> = (0..=64).map(|i| i as f32 / 64.0).collect();
            for &u in &steps {
                for &v in &steps {
                    for face in 0..6 {
                        let axis = face / 2;
                        let mut rgb = [0.0; 3];
                        rgb[axis] = (face % 2) as f32;
                        rgb[(axis + 1) % 3] = u;
                        rgb[(axis + 2) % 3] = v;
                        let p = space.from_srgb(rgb);
                        for c in 0..2 {
                            let (lo, hi) = bounds[c];
                            assert!(p[c + 1] >= lo && p[c + 1] <= hi, "{space:?} {rgb:?} -> {p:?}");
                        }
                    }
                }
            }
        }
        // Tightness: the bounds are the corner values to 1e-3.
        let lab = |rgb| ColorSpace::Lab.from_srgb(rgb);
        let [(a_lo, a_hi), (b_lo, b_hi)] = ColorSpace::Lab.chroma_bounds();
        assert!((lab([0.0, 1.0, 0.0])[1] - a_lo).abs() < 1e-3);
        assert!((lab([1.0, 0.0, 1.0])[1] - a_hi).abs() < 1e-3);
        assert!((lab([0.0, 0.0, 1.0])[2] - b_lo).abs() < 1e-3);
        assert!((lab([1.0, 1.0, 0.0])[2] - b_hi).abs() < 1e-3);
        let yuv = |rgb| ColorSpace::Yuv.from_srgb(rgb);
        let [(_, u_hi), (_, v_hi)] = ColorSpace::Yuv.chroma_bounds();
        assert!((yuv([0.0, 0.0, 1.0])[1] - u_hi).abs() < 1e-3);
        assert!((yuv([1.0, 0.0, 0.0])[2] - v_hi).abs() < 1e-3);
        assert_eq!(ColorSpace::Hsv.hue_channel(), Some(0));
        assert_eq!(ColorSpace::Lab.hue_channel(), None);
        assert_eq!(ColorSpace::ALL.map(ColorSpace::luma_max), [100.0, 255.0, 100.0]);
    }

    #[test]
    fn fast_cbrt_relative_error_below_1e6() {
        // Over the range the Lab path uses (epsilon .. 1.09) and well beyond, on a geometric sweep.
        let mut t = 1e-6f32;
        while t < 1e6 {
            let want = f64::from(t).cbrt();
            let rel = ((f64::from(fast_cbrt(t)) - want) / want).abs();
            assert!(rel < 1e-6, "cbrt({t}): relative error {rel}");
            t *= 1.0007;
        }
    }

    /// `n` random planar 8-bit images of `hw` pixels.
    fn random_images(rng: &mut Rng, n: usize, hw: usize) -> Vec<u8> {
        (0..3 * n * hw).map(|_| rng.below(256) as u8).collect()
    }

    #[test]
    fn batched_u8_path_matches_scalar_path_and_round_trips() {
        // 13 images of 997 pixels: more than one block per image and a ragged last block.
        let (n, hw) = (13, 997);
        let mut rng = Rng::new(5);
        let rgb = random_images(&mut rng, n, hw);
        for space in ColorSpace::ALL {
            let mut luma = vec![0.0; n * hw];
            let mut chroma = vec![0.0; 2 * n * hw];
            encode_u8_planar(space, &rgb, hw, &mut luma, &mut chroma);
            // Within 1e-4 in the space's own units (luma times luma_max): f32 carries about 7 digits and Lab
            // a = 500 (fx - fy) magnifies the cube roots' last-bit differences (largest seen on all 2^24 colours: 7.7e-5 on a).
            for img in 0..n {
                for i in 0..hw {
                    let src = [0, 1, 2].map(|c| f32::from(rgb[(img * 3 + c) * hw + i]) / 255.0);
                    let got = [
                        luma[img * hw + i] * space.luma_max(),
                        chroma[(img * 2) * hw + i],
                        chroma[(img * 2 + 1) * hw + i],
                    ];
                    assert_close(got, space.from_srgb(src), 1e-4, &format!("{space:?} pixel {src:?}"));
                }
            }
            let mut back = vec![0.0; 3 * n * hw];
            decode_planar(space, &luma, &chroma, hw, &mut back);
            for (j, (&b, &a)) in back.iter().zip(&rgb).enumerate() {
                let a = f32::from(a) / 255.0;
                assert!((b - a).abs() <= 1e-4, "{space:?} value {j}: {a} came back as {b}");
            }
        }
    }

    #[test]
    fn decode_clamps_out_of_gamut_chroma() {
        let luma = [0.5];
        let chroma = [120.0, -120.0];
        let mut rgb = [0.0; 3];
        decode_planar(ColorSpace::Lab, &luma, &chroma, 1, &mut rgb);
        assert!(rgb.iter().all(|v| (0.0..=1.0).contains(v)), "{rgb:?}");
        assert!(rgb.contains(&0.0) || rgb.contains(&1.0), "{rgb:?} should hit a bound");
    }

    #[test]
    fn empty_batches_are_accepted() {
        encode_u8_planar(ColorSpace::Lab, &[], 0, &mut [], &mut []);
        encode_u8_planar(ColorSpace::Lab, &[], 16, &mut [], &mut []);
        decode_planar(ColorSpace::Hsv, &[], &[], 16, &mut []);
    }

    /// The batched path against the f64 reference on all 2^24 colours; reports the largest differences.
    /// Slow in a debug build: run with `-- --ignored` in an optimised profile.
    #[test]
    #[ignore]
    fn batched_u8_path_matches_scalar_path_on_all_colours() {
        const HW: usize = 1 << 16;
        let mut planar = vec![0u8; 3 * HW];
        let (mut luma, mut chroma) = (vec![0.0; HW], vec![0.0; 2 * HW]);
        for space in ColorSpace::ALL {
            let mut worst = [0.0f32; 3];
            for r in 0..=255u8 {
                for i in 0..HW {
                    [planar[i], planar[HW + i], planar[2 * HW + i]] = [r, (i >> 8) as u8, i as u8];
                }
                encode_u8_planar(space, &planar, HW, &mut luma, &mut chroma);
                for i in 0..HW {
                    let want = space.from_srgb([0, 1, 2].map(|c| f32::from(planar[c * HW + i]) / 255.0));
                    let got = [luma[i] * space.luma_max(), chroma[i], chroma[HW + i]];
                    for c in 0..3 {
                        worst[c] = worst[c].max((got[c] - want[c]).abs());
                    }
                }
            }
            eprintln!("{space:?}: largest |batched - scalar| per channel {worst:?}");
            assert!(worst.iter().all(|&w| w <= 1e-4), "{space:?}: {worst:?}");
        }
    }

    /// The whole CIFAR-100 training set at once: 50,000 images of 32 x 32 into Lab. Run with
    /// `cargo test --lib color::convert::tests::encode_speed -- --ignored --nocapture` in an optimised profile.
    #[test]
    #[ignore]
    fn encode_speed_cifar_train_size() {
        let (n, hw) = (50_000, 1024);
        let mut rng = Rng::new(3);
        let rgb = random_images(&mut rng, n, hw);
        let mut luma = vec![0.0; n * hw];
        let mut chroma = vec![0.0; 2 * n * hw];
        // The first writes to fresh buffers pay the page faults (600 MB): an untimed pass first.
        encode_u8_planar(ColorSpace::Yuv, &rgb, hw, &mut luma, &mut chroma);
        for space in ColorSpace::ALL {
            let start = std::time::Instant::now();
            encode_u8_planar(space, &rgb, hw, &mut luma, &mut chroma);
            let secs = start.elapsed().as_secs_f64();
            eprintln!("{space:?}: {n} images of {hw} px in {secs:.3} s ({:.1} Mpx/s)", (n * hw) as f64 / secs / 1e6);
        }
    }
}
