//! What every color space shares: the sRGB transfer curve, and the batched conversions of whole
//! batches of images, which hand blocks of pixels to the space's [`ColorModel`].
//!
//! Two paths:
//! - the per-pixel methods (`from_srgb`, `to_srgb`) compute Lab and YUV in f64: they are the reference (tests,
//!   single colours, decoding);
//! - [`encode_u8_planar`] is the data path (whole data sets of 8-bit images): rayon over images, each
//!   image in blocks of [`BLOCK`] pixels through the space's [`super::ColorModel::encode_block`] (f32, loops
//!   written so that LLVM vectorises them). It
//!   agrees with the reference within 1e-4 in every channel on all 2^24 colours.
//!   [`decode_planar`] turns a gray input plus predicted chroma back into clamped RGB.
//!
//! The sRGB transfer curve (IEC 61966-2-1): linear = c / 12.92 for c <= 0.04045, else ((c + 0.055) / 1.055)^2.4.
//! The inverse is applied to any real (the linear piece continues below 0), so `to_srgb` inverts `from_srgb`
//! also outside the gamut. Each space's own definitions are in its file (`lab.rs`, `yuv.rs`, `hsv.rs`).

use super::ColorSpace;
use rayon::prelude::*;
use std::sync::LazyLock;

pub(super) fn srgb_to_linear(c: f64) -> f64 {
    if c <= 0.04045 { c / 12.92 } else { ((c + 0.055) / 1.055).powf(2.4) }
}

pub(super) fn linear_to_srgb(l: f64) -> f64 {
    if l <= 0.0031308 { l * 12.92 } else { 1.055 * l.powf(1.0 / 2.4) - 0.055 }
}

pub(super) fn mat_vec(m: &[[f64; 3]; 3], v: [f64; 3]) -> [f64; 3] {
    m.map(|row| row[0] * v[0] + row[1] * v[1] + row[2] * v[2])
}

/// sRGB transfer curve for every 8-bit value, computed in f64 once.
pub(super) static SRGB_U8_TO_LINEAR: LazyLock<[f32; 256]> =
    LazyLock::new(|| std::array::from_fn(|i| srgb_to_linear(i as f64 / 255.0) as f32));

/// Pixels per inner block of the batched path: the stack buffers stay in L1 and the arithmetic loop has a fixed
/// maximum length.
pub const BLOCK: usize = 256;

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
    let model = space.model();
    rgb.par_chunks(3 * hw).zip(luma01.par_chunks_mut(hw)).zip(chroma.par_chunks_mut(2 * hw)).for_each(
        |((src, luma), chroma)| {
            let (r, rest) = src.split_at(hw);
            let (g, b) = rest.split_at(hw);
            let (c1, c2) = chroma.split_at_mut(hw);
            model.encode_image([r, g, b], luma, c1, c2);
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
    let model = space.model();
    luma01.par_chunks(hw).zip(chroma.par_chunks(2 * hw)).zip(rgb.par_chunks_mut(3 * hw)).for_each(
        |((luma, chroma), out)| {
            let (c1, c2) = chroma.split_at(hw);
            let (r, rest) = out.split_at_mut(hw);
            let (g, b) = rest.split_at_mut(hw);
            model.decode_image(luma, [c1, c2], [r, g, b]);
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::color::tests::assert_close;
    use crate::rng::Rng;

    fn random_rgb(rng: &mut Rng) -> [f32; 3] {
        [rng.uniform(), rng.uniform(), rng.uniform()]
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
        assert_eq!(
            [ColorSpace::Lab, ColorSpace::Yuv, ColorSpace::Hsv].map(ColorSpace::luma_max),
            [100.0, 255.0, 100.0]
        );
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
