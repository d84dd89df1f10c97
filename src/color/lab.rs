//! CIE Lab (D65): L in [0, 100], a and b in about [-128, 128].
//!
//! Linear sRGB -> XYZ by the standard sRGB/D65 matrix (Lindbloom's 7-digit values), divided by the white
//! point taken as the matrix's row sums (0.95047, 1.0000001, 1.08883), so that sRGB white is exactly a = b = 0;
//! CIE f(t) = t^(1/3) above epsilon = 216/24389, else (kappa t + 16) / 116 with kappa = 24389/27;
//! L = 116 f(Y) - 16, a = 500 (f(X) - f(Y)), b = 200 (f(Y) - f(Z)). The per-pixel path is f64; the batched
//! path is f32 with a table for the transfer curve and a division-free cube root.

use super::ColorModel;
use super::convert::{BLOCK, SRGB_U8_TO_LINEAR, linear_to_srgb, mat_vec, srgb_to_linear};

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

/// Extremes of Lab a and b over the sRGB cube, rounded outwards at the 4th decimal. They are reached at corners of
/// the cube: a at green (min) and magenta (max), b at blue (min) and yellow (max) (checked in the tests).
const LAB_A_BOUNDS: (f32, f32) = (-86.1828, 98.2344);
const LAB_B_BOUNDS: (f32, f32) = (-107.8602, 94.4780);

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

/// CIE Lab.
#[derive(Debug)]
pub struct Lab;

impl ColorModel for Lab {
    fn luma_max(&self) -> f32 {
        100.0
    }

    fn chroma_bounds(&self) -> [(f32, f32); 2] {
        [LAB_A_BOUNDS, LAB_B_BOUNDS]
    }

    fn encode(&self, rgb: [f32; 3]) -> [f32; 3] {
        let lin = rgb.map(f64::from).map(srgb_to_linear);
        let [fx, fy, fz] = mat_vec(&RGB_TO_XYZN, lin).map(lab_f);
        [116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)].map(|x| x as f32)
    }

    fn decode(&self, p: [f32; 3]) -> [f32; 3] {
        let [l, c1, c2] = p.map(f64::from);
        let fy = (l + 16.0) / 116.0;
        let xyzn = [fy + c1 / 500.0, fy, fy - c2 / 200.0].map(lab_f_inv);
        mat_vec(&XYZN_TO_RGB, xyzn).map(linear_to_srgb).map(|x| x as f32)
    }

    fn encode_block(&self, rgb: [&[u8]; 3], luma: &mut [f32], c1: &mut [f32], c2: &mut [f32]) {
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
}

fn lab_f(t: f64) -> f64 {
    if t > LAB_EPSILON { t.cbrt() } else { (LAB_KAPPA * t + 16.0) / 116.0 }
}

fn lab_f_inv(f: f64) -> f64 {
    let cube = f * f * f;
    if cube > LAB_EPSILON { cube } else { (116.0 * f - 16.0) / LAB_KAPPA }
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::color::ColorSpace;
    use crate::color::tests::assert_close;

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
}
