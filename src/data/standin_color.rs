//! TEMPORARY stand-in for `crate::color::convert` (being written on the `color` branch), so that the data
//! module compiles and can be tested before the merge. Same signatures and units as documented there.
//! Remove this file once `crate::color::convert::{encode_u8_planar, decode_planar}` exist.

use crate::color::ColorSpace;

fn srgb_to_linear(c: f32) -> f32 {
    if c <= 0.04045 {
        c / 12.92
    } else {
        ((c + 0.055) / 1.055).powf(2.4)
    }
}

fn linear_to_srgb(c: f32) -> f32 {
    let c = c.clamp(0.0, 1.0);
    if c <= 0.003_130_8 {
        12.92 * c
    } else {
        1.055 * c.powf(1.0 / 2.4) - 0.055
    }
}

const XN: f32 = 0.950_47;
const ZN: f32 = 1.088_83;

fn lab_f(t: f32) -> f32 {
    if t > 0.008_856 {
        t.cbrt()
    } else {
        7.787 * t + 16.0 / 116.0
    }
}

fn lab_finv(t: f32) -> f32 {
    if t > 0.206_893 {
        t * t * t
    } else {
        (t - 16.0 / 116.0) / 7.787
    }
}

fn rgb_to(space: ColorSpace, r: f32, g: f32, b: f32) -> [f32; 3] {
    match space {
        ColorSpace::Lab => {
            let (r, g, b) = (srgb_to_linear(r), srgb_to_linear(g), srgb_to_linear(b));
            let x = (0.412_456 * r + 0.357_576 * g + 0.180_438 * b) / XN;
            let y = 0.212_673 * r + 0.715_152 * g + 0.072_175 * b;
            let z = (0.019_334 * r + 0.119_192 * g + 0.950_304 * b) / ZN;
            let (fx, fy, fz) = (lab_f(x), lab_f(y), lab_f(z));
            [
                (116.0 * fy - 16.0) / 100.0,
                500.0 * (fx - fy),
                200.0 * (fy - fz),
            ]
        }
        ColorSpace::Yuv => {
            let y = 0.299 * r + 0.587 * g + 0.114 * b;
            [y, 255.0 * 0.492 * (b - y), 255.0 * 0.877 * (r - y)]
        }
        ColorSpace::Hsv => {
            let max = r.max(g).max(b);
            let min = r.min(g).min(b);
            let d = max - min;
            let h = if d <= 0.0 {
                0.0
            } else if max == r {
                60.0 * ((g - b) / d).rem_euclid(6.0)
            } else if max == g {
                60.0 * ((b - r) / d + 2.0)
            } else {
                60.0 * ((r - g) / d + 4.0)
            };
            let s = if max > 0.0 { 100.0 * d / max } else { 0.0 };
            [max, h, s]
        }
    }
}

fn to_rgb(space: ColorSpace, l01: f32, c1: f32, c2: f32) -> [f32; 3] {
    match space {
        ColorSpace::Lab => {
            let fy = (l01 * 100.0 + 16.0) / 116.0;
            let fx = fy + c1 / 500.0;
            let fz = fy - c2 / 200.0;
            let (x, y, z) = (lab_finv(fx) * XN, lab_finv(fy), lab_finv(fz) * ZN);
            let r = 3.240_454 * x - 1.537_138 * y - 0.498_531 * z;
            let g = -0.969_266 * x + 1.876_011 * y + 0.041_556 * z;
            let b = 0.055_643 * x - 0.204_026 * y + 1.057_225 * z;
            [linear_to_srgb(r), linear_to_srgb(g), linear_to_srgb(b)]
        }
        ColorSpace::Yuv => {
            let (u, v) = (c1 / (255.0 * 0.492), c2 / (255.0 * 0.877));
            let b = l01 + u;
            let r = l01 + v;
            let g = (l01 - 0.299 * r - 0.114 * b) / 0.587;
            [r.clamp(0.0, 1.0), g.clamp(0.0, 1.0), b.clamp(0.0, 1.0)]
        }
        ColorSpace::Hsv => {
            let (h, s, v) = (
                c1.rem_euclid(360.0) / 60.0,
                (c2 / 100.0).clamp(0.0, 1.0),
                l01,
            );
            let c = v * s;
            let x = c * (1.0 - (h % 2.0 - 1.0).abs());
            let m = v - c;
            let (r, g, b) = match h as u32 {
                0 => (c, x, 0.0),
                1 => (x, c, 0.0),
                2 => (0.0, c, x),
                3 => (0.0, x, c),
                4 => (x, 0.0, c),
                _ => (c, 0.0, x),
            };
            [
                (r + m).clamp(0.0, 1.0),
                (g + m).clamp(0.0, 1.0),
                (b + m).clamp(0.0, 1.0),
            ]
        }
    }
}

/// Cube root for t in (0, 1]: bit-level initial guess refined by two Halley steps (relative error ~1e-7).
#[inline]
fn fast_cbrt(t: f32) -> f32 {
    let mut y = f32::from_bits(t.to_bits() / 3 + 709_921_077);
    for _ in 0..2 {
        let y3 = y * y * y;
        y *= (y3 + 2.0 * t) / (2.0 * y3 + t);
    }
    y
}

#[inline]
fn lab_f_fast(t: f32) -> f32 {
    if t > 0.008_856 {
        fast_cbrt(t)
    } else {
        7.787 * t + 16.0 / 116.0
    }
}

fn srgb_lut() -> [f32; 256] {
    std::array::from_fn(|i| srgb_to_linear(i as f32 / 255.0))
}

/// Stand-in for `crate::color::convert::encode_u8_planar`.
pub fn encode_u8_planar(
    space: ColorSpace,
    rgb: &[u8],
    hw: usize,
    luma01: &mut [f32],
    chroma: &mut [f32],
) {
    let n = luma01.len() / hw.max(1);
    let lut = srgb_lut();
    for i in 0..n {
        let img = &rgb[i * 3 * hw..(i + 1) * 3 * hw];
        let (l, c) = (
            &mut luma01[i * hw..(i + 1) * hw],
            &mut chroma[i * 2 * hw..(i + 1) * 2 * hw],
        );
        let (r8, rest) = img.split_at(hw);
        let (g8, b8) = rest.split_at(hw);
        let (c1, c2) = c.split_at_mut(hw);
        if space == ColorSpace::Lab {
            for p in 0..hw {
                let (r, g, b) = (
                    lut[r8[p] as usize],
                    lut[g8[p] as usize],
                    lut[b8[p] as usize],
                );
                let x = (0.412_456 * r + 0.357_576 * g + 0.180_438 * b) / XN;
                let y = 0.212_673 * r + 0.715_152 * g + 0.072_175 * b;
                let z = (0.019_334 * r + 0.119_192 * g + 0.950_304 * b) / ZN;
                let (fx, fy, fz) = (lab_f_fast(x), lab_f_fast(y), lab_f_fast(z));
                l[p] = (116.0 * fy - 16.0) / 100.0;
                c1[p] = 500.0 * (fx - fy);
                c2[p] = 200.0 * (fy - fz);
            }
            continue;
        }
        for p in 0..hw {
            let [a, b, cc] = rgb_to(
                space,
                r8[p] as f32 / 255.0,
                g8[p] as f32 / 255.0,
                b8[p] as f32 / 255.0,
            );
            l[p] = a;
            c1[p] = b;
            c2[p] = cc;
        }
    }
}

/// Stand-in for `crate::color::convert::decode_planar`.
pub fn decode_planar(
    space: ColorSpace,
    luma01: &[f32],
    chroma: &[f32],
    hw: usize,
    rgb: &mut [f32],
) {
    let n = luma01.len() / hw.max(1);
    for i in 0..n {
        for p in 0..hw {
            let [r, g, b] = to_rgb(
                space,
                luma01[i * hw + p],
                chroma[i * 2 * hw + p],
                chroma[i * 2 * hw + hw + p],
            );
            rgb[i * 3 * hw + p] = r;
            rgb[i * 3 * hw + hw + p] = g;
            rgb[i * 3 * hw + 2 * hw + p] = b;
        }
    }
}
