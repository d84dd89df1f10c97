//! Color spaces and chroma quantization.
//!
//! `convert` owns sRGB <-> Lab / YUV / HSV, per pixel and batched; `quantize` owns the chroma bins used by
//! classification (gamut, soft-encoding, class prior, rebalancing weights, annealed-mean decoding).
//! To add a color space: a variant of [`ColorSpace`], its pair of conversions in `convert`, its ranges below.

pub mod convert;
pub mod quantize;

use crate::named::named_enum;

named_enum! {
    /// The color space a model works in: one luminance channel in, two chroma channels out.
    ///
    /// Units are chosen so that one chroma grid of size 10 makes sense in every space:
    /// - Lab: L in [0, 100], a and b in about [-128, 128] (CIE, D65).
    /// - YUV: BT.601 scaled by 255: Y in [0, 255], U in about [-111, 111], V in about [-157, 157].
    /// - HSV: V in [0, 100], H in degrees [0, 360) (circular), S in [0, 100].
    pub enum ColorSpace {
        Lab = "lab",
        Yuv = "yuv",
        Hsv = "hsv",
    }
}
