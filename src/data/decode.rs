//! Decoding a photo at the size it is needed: a rectangle of the file's image, resized to `side x side`.
//!
//! A JPEG stores 8x8 blocks of DCT coefficients, and an inverse DCT of only the lowest 4x4, 2x2 or 1x1 of
//! them gives the image at 1/2, 1/4 or 1/8 of its size for much less work than the full decode
//! (libjpeg's `scale_num/scale_denom`). [`load_region`] uses the largest of these reductions that still
//! leaves the wanted rectangle at least `side` pixels wide and high, so the final resize always
//! shrinks: a 500x375 photo served at 64 px decodes at 1/4 (125x94), at 224 px in full. The `image`
//! crate's JPEG decoder (zune-jpeg) cannot scale, so reduced decodes go through `jpeg-decoder`; full-size
//! decodes, PNGs, and JPEGs that are neither 8-bit gray nor YCbCr/RGB (CMYK, 12-bit) go through `image`.
//! The scaled image is the DCT's low-pass of the original, not bit-identical to decoding in full and
//! resizing: the rectangle's edges move by at most half a pixel of the reduced image.

use std::io::Cursor;
use std::path::Path;

use anyhow::{Context, ensure};
use image::RgbImage;
use jpeg_decoder::{Decoder, PixelFormat};

use super::augment::Rect;
use super::pixels;

/// The reductions a JPEG decodes at (image size divided by these), largest first.
const JPEG_DIVISORS: [u32; 3] = [8, 4, 2];

/// Decodes the image file at `path` (format sniffed from its content), cuts `region(width, height)` out
/// of it and resizes that to `side x side` ([`pixels::crop_resize`]). `region` is called exactly once,
/// with the file's full size. Errors name the file and carry the decoder's message.
pub fn load_region(path: &Path, region: &mut dyn FnMut(u32, u32) -> Rect, side: usize) -> anyhow::Result<RgbImage> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot open image {}", path.display()))?;
    let what = || format!("cannot decode image {}", path.display());
    if let Some(mut jpeg) = scalable_jpeg(&bytes).with_context(what)? {
        let info = jpeg.info().context("the JPEG header has no frame").with_context(what)?;
        let (width, height) = (info.width as u32, info.height as u32);
        ensure!(width > 0 && height > 0, "image {} is empty (0 pixels)", path.display());
        let rect = region(width, height);
        let fits = |d: u32| rect.w >= side as u32 * d && rect.h >= side as u32 * d;
        if let Some(divisor) = JPEG_DIVISORS.into_iter().find(|&d| fits(d)) {
            let (w, h) = (width.div_ceil(divisor) as u16, height.div_ceil(divisor) as u16);
            let (w, h) = jpeg.scale(w, h).with_context(what)?;
            let pixels = jpeg.decode().with_context(what)?;
            let img = rgb_from_jpeg(pixels, info.pixel_format, w as u32, h as u32).with_context(what)?;
            return Ok(pixels::crop_resize(&img, scaled(rect, (width, height), img.dimensions()), side));
        }
        return Ok(pixels::crop_resize(&decode_full(&bytes, path)?, rect, side));
    }
    let img = decode_full(&bytes, path)?;
    let rect = region(img.width(), img.height());
    Ok(pixels::crop_resize(&img, rect, side))
}

/// A JPEG decoder past the header, when `bytes` are a JPEG that `jpeg-decoder` can scale (8-bit gray or
/// colour); `None` for anything else.
fn scalable_jpeg(bytes: &[u8]) -> Result<Option<Decoder<Cursor<&[u8]>>>, jpeg_decoder::Error> {
    if !bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return Ok(None);
    }
    let mut decoder = Decoder::new(Cursor::new(bytes));
    decoder.read_info()?;
    let scalable = decoder.info().is_some_and(|i| matches!(i.pixel_format, PixelFormat::L8 | PixelFormat::RGB24));
    Ok(scalable.then_some(decoder))
}

fn rgb_from_jpeg(pixels: Vec<u8>, format: PixelFormat, w: u32, h: u32) -> anyhow::Result<RgbImage> {
    let rgb = match format {
        PixelFormat::RGB24 => pixels,
        // Only gray and colour JPEGs reach here (see `scalable_jpeg`).
        _ => pixels.iter().flat_map(|&v| [v, v, v]).collect(),
    };
    RgbImage::from_raw(w, h, rgb).context("the decoder returned fewer pixels than its image size")
}

/// `rect` of a `full` image mapped onto the same image decoded at size `reduced` (at least a pixel, inside).
fn scaled(rect: Rect, full: (u32, u32), reduced: (u32, u32)) -> Rect {
    let span = |start: u32, len: u32, from: u32, to: u32| {
        let map = |v: u32| (v as f64 * to as f64 / from as f64).round() as u32;
        let a = map(start).min(to - 1);
        (a, map(start + len).clamp(a + 1, to) - a)
    };
    let (x, w) = span(rect.x, rect.w, full.0, reduced.0);
    let (y, h) = span(rect.y, rect.h, full.1, reduced.1);
    Rect { x, y, w, h }
}

/// The whole image through the `image` crate, as 8-bit RGB.
fn decode_full(bytes: &[u8], path: &Path) -> anyhow::Result<RgbImage> {
    let img = image::load_from_memory(bytes).with_context(|| format!("cannot decode image {}", path.display()))?;
    ensure!(img.width() > 0 && img.height() > 0, "image {} is empty (0 pixels)", path.display());
    Ok(pixels::to_rgb8(img))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rectangles_map_onto_the_reduced_image() {
        let r = Rect { x: 100, y: 40, w: 200, h: 120 };
        assert_eq!(scaled(r, (500, 375), (125, 94)), Rect { x: 25, y: 10, w: 50, h: 30 });
        // Never past the edge, never empty.
        let r = Rect { x: 499, y: 0, w: 1, h: 375 };
        let s = scaled(r, (500, 375), (63, 47));
        assert!(s.x + s.w <= 63 && s.w >= 1 && s.h == 47, "{s:?}");
    }
}
