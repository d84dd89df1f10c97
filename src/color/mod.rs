//! Color spaces and chroma quantization.
//!
//! A color space is one luminance channel the model sees and two chroma channels it predicts, each
//! space a file implementing [`ColorModel`] (`lab`, `yuv`, `hsv`) and registered by one arm of
//! [`ColorSpace`]. `convert` owns what they share: the sRGB transfer curve and the batched
//! conversions of whole batches of images; `quantize` owns the chroma bins used by classification
//! (gamut, soft-encoding, class prior, rebalancing weights, annealed-mean decoding), which it builds
//! for any space from its [`ColorModel`].
//!
//! To add a color space: a file here with a unit struct implementing [`ColorModel`] (its luma range,
//! chroma bounds, hue channel if one is an angle, and the per-pixel `encode` and `decode`; a vectorised
//! [`ColorModel::encode_block`] is optional) with its tests, and one arm in [`ColorSpace`]
//! (`Oklab = "oklab" => &oklab::Oklab`) with its `mod` line. The schema's choices, the data path,
//! the targets, the bins and the metrics follow from the arm.

pub mod convert;
pub mod hsv;
pub mod lab;
pub mod quantize;
pub mod yuv;

use crate::named::named_enum;

/// How one color space converts, in the units it documents.
pub trait ColorModel: Sync + std::fmt::Debug {
    /// The largest luma value (the luma the model sees is divided by it, to [0, 1]).
    fn luma_max(&self) -> f32;

    /// (min, max) of each chroma channel over the sRGB gamut, for normalising model outputs.
    fn chroma_bounds(&self) -> [(f32, f32); 2];

    /// The chroma channel that is an angle in degrees (period 360), if one is.
    fn hue_channel(&self) -> Option<usize> {
        None
    }

    /// sRGB in [0, 1] -> (luma, chroma1, chroma2): the reference conversion.
    fn encode(&self, rgb: [f32; 3]) -> [f32; 3];

    /// (luma, chroma1, chroma2) -> sRGB; the exact inverse of [`ColorModel::encode`], NOT clamped
    /// (colours outside the gamut give values outside [0, 1]); a hue is taken modulo 360.
    fn decode(&self, p: [f32; 3]) -> [f32; 3];

    /// The data path: one block of at most [`convert::BLOCK`] pixels of planar 8-bit RGB -> luma in
    /// [0, 1] (divided by [`ColorModel::luma_max`]) and the two chroma planes, all slices of the
    /// block's length. The default converts pixel by pixel with [`ColorModel::encode`]; a space
    /// overrides it with a loop LLVM vectorises, within 1e-4 of the reference.
    fn encode_block(&self, rgb: [&[u8]; 3], luma: &mut [f32], c1: &mut [f32], c2: &mut [f32]) {
        let luma_max = self.luma_max();
        for i in 0..luma.len() {
            let [l, a, b] = self.encode([rgb[0][i], rgb[1][i], rgb[2][i]].map(|v| f32::from(v) / 255.0));
            (luma[i], c1[i], c2[i]) = (l / luma_max, a, b);
        }
    }

    /// One image of planar 8-bit RGB -> its luma and chroma planes, block by block through
    /// [`ColorModel::encode_block`]. Provided, not to be overridden: as a trait method it is compiled
    /// for each space with that space's `encode_block` inlined, and the batched path calls it once per
    /// image.
    fn encode_image(&self, [r, g, b]: [&[u8]; 3], luma: &mut [f32], c1: &mut [f32], c2: &mut [f32]) {
        let blocks = r
            .chunks(convert::BLOCK)
            .zip(g.chunks(convert::BLOCK))
            .zip(b.chunks(convert::BLOCK))
            .zip(luma.chunks_mut(convert::BLOCK))
            .zip(c1.chunks_mut(convert::BLOCK).zip(c2.chunks_mut(convert::BLOCK)));
        for ((((r, g), b), luma), (c1, c2)) in blocks {
            self.encode_block([r, g, b], luma, c1, c2);
        }
    }

    /// One image's luma in [0, 1] and chroma planes -> planar RGB clamped to [0, 1], pixel by pixel
    /// through [`ColorModel::decode`]. Provided, not to be overridden (compiled per space, as
    /// [`ColorModel::encode_image`]).
    fn decode_image(&self, luma01: &[f32], [c1, c2]: [&[f32]; 2], [r, g, b]: [&mut [f32]; 3]) {
        let luma_max = self.luma_max();
        for i in 0..luma01.len() {
            let p = self.decode([luma01[i] * luma_max, c1[i], c2[i]]);
            [r[i], g[i], b[i]] = p.map(|v| v.clamp(0.0, 1.0));
        }
    }
}

named_enum! {
    /// The color space a model works in: one luminance channel in, two chroma channels out.
    ///
    /// Units are chosen so that one chroma grid of size 10 makes sense in every space:
    /// - Lab: L in [0, 100], a and b in about [-128, 128] (CIE, D65).
    /// - YUV: BT.601 scaled by 255: Y in [0, 255], U in about [-111, 111], V in about [-157, 157].
    /// - HSV: V in [0, 100], H in degrees [0, 360) (circular), S in [0, 100].
    pub enum ColorSpace: model() -> &'static dyn ColorModel {
        Lab = "lab" => &lab::Lab,
        Yuv = "yuv" => &yuv::Yuv,
        Hsv = "hsv" => &hsv::Hsv,
    }
}

impl ColorSpace {
    /// The largest luma value: 100 (Lab L, HSV V) or 255 (YUV Y).
    pub fn luma_max(self) -> f32 {
        self.model().luma_max()
    }

    /// (min, max) of each chroma channel over the sRGB gamut. HSV: hue (0, 360) (circular), saturation
    /// (0, 100).
    pub fn chroma_bounds(self) -> [(f32, f32); 2] {
        self.model().chroma_bounds()
    }

    /// The chroma channel that is an angle (period 360): hue, channel 0 in HSV.
    pub fn hue_channel(self) -> Option<usize> {
        self.model().hue_channel()
    }

    /// sRGB in [0, 1] -> (luma, chroma1, chroma2) in this space's units. Lab and YUV are computed in f64
    /// (reference path); HSV is exact in f32 (comparisons and one division).
    pub fn from_srgb(self, rgb: [f32; 3]) -> [f32; 3] {
        self.model().encode(rgb)
    }

    /// (luma, chroma1, chroma2) -> sRGB; the exact inverse of [`ColorSpace::from_srgb`], NOT clamped.
    pub fn to_srgb(self, p: [f32; 3]) -> [f32; 3] {
        self.model().decode(p)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    /// Each channel of `got` within `tol` of `want`.
    pub fn assert_close(got: [f32; 3], want: [f32; 3], tol: f32, what: &str) {
        for c in 0..3 {
            assert!((got[c] - want[c]).abs() <= tol, "{what}: got {got:?}, want {want:?} (tolerance {tol})");
        }
    }
}
