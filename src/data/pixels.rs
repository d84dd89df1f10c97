//! Pixel layout helpers shared by the sources: planar <-> interleaved RGB, the square resize (centre
//! crop to a square, then a Catmull-Rom resample) used by `cifar` (when `image_size != 32`) and
//! `folder`, and the crop-and-resize of a rectangle behind it and the random resized crop.

use anyhow::{Context, ensure};
use image::imageops::{self, FilterType};
use image::{DynamicImage, RgbImage};

use super::augment::Rect;

/// The filter of every resize in the data module: Catmull-Rom (bicubic, sharp, little ringing). The
/// `image` crate widens its support when shrinking, so downscaling is properly low-pass filtered.
pub const RESIZE_FILTER: FilterType = FilterType::CatmullRom;

/// Copies an interleaved RGB image into planar layout (all R, all G, all B). `out` must hold exactly
/// `3 * width * height` bytes.
pub fn rgb_image_to_planar(img: &RgbImage, out: &mut [u8]) -> anyhow::Result<()> {
    let hw = img.width() as usize * img.height() as usize;
    ensure!(out.len() == 3 * hw, "output buffer holds {} bytes, the image needs {}", out.len(), 3 * hw);
    let (r, rest) = out.split_at_mut(hw);
    let (g, b) = rest.split_at_mut(hw);
    for (i, px) in img.as_raw().chunks_exact(3).enumerate() {
        r[i] = px[0];
        g[i] = px[1];
        b[i] = px[2];
    }
    Ok(())
}

/// Builds an interleaved RGB image from a planar `side x side` one.
pub fn planar_to_rgb_image(planar: &[u8], side: usize) -> anyhow::Result<RgbImage> {
    let hw = side * side;
    ensure!(planar.len() == 3 * hw, "planar image holds {} bytes, {side}x{side} needs {}", planar.len(), 3 * hw);
    let mut raw = Vec::with_capacity(3 * hw);
    for i in 0..hw {
        raw.extend_from_slice(&[planar[i], planar[hw + i], planar[2 * hw + i]]);
    }
    RgbImage::from_raw(side as u32, side as u32, raw).context("planar_to_rgb_image: bad buffer size")
}

/// Centre-crops `img` to a square (the shorter side) and resizes it to `side x side` with
/// [`RESIZE_FILTER`]. Equivalent to "resize the shorter side to `side`, then centre-crop".
pub fn square_resize(img: &RgbImage, side: usize) -> RgbImage {
    let (w, h) = img.dimensions();
    crop_resize(img, Rect::centre_square(w, h), side)
}

/// Cuts `rect` out of `img` (clamped to the image) and resizes it to `side x side` with
/// [`RESIZE_FILTER`], stretching it if it is not square (as torchvision's `resized_crop`).
pub fn crop_resize(img: &RgbImage, rect: Rect, side: usize) -> RgbImage {
    let (w, h) = img.dimensions();
    let side = side as u32;
    if rect == (Rect { x: 0, y: 0, w, h }) && w == side && h == side {
        return img.clone();
    }
    let cropped = imageops::crop_imm(img, rect.x, rect.y, rect.w, rect.h).to_image();
    if cropped.dimensions() == (side, side) { cropped } else { imageops::resize(&cropped, side, side, RESIZE_FILTER) }
}

/// Converts any decoded image (gray, gray+alpha, RGBA, 16-bit, float) to 8-bit RGB. Alpha is dropped
/// (colour kept as stored); 16-bit and float channels are scaled to 0..=255.
pub fn to_rgb8(img: DynamicImage) -> RgbImage {
    match img {
        DynamicImage::ImageRgb8(rgb) => rgb,
        other => other.to_rgb8(),
    }
}

/// Resizes a planar `from x from` RGB image to planar `to x to` with [`RESIZE_FILTER`].
pub fn resize_planar(planar: &[u8], from: usize, to: usize, out: &mut [u8]) -> anyhow::Result<()> {
    if from == to {
        ensure!(out.len() == planar.len(), "output buffer holds {} bytes, expected {}", out.len(), planar.len());
        out.copy_from_slice(planar);
        return Ok(());
    }
    let img = planar_to_rgb_image(planar, from)?;
    rgb_image_to_planar(&square_resize(&img, to), out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn planar_round_trip() {
        let planar: Vec<u8> = (0..3 * 4 * 4).map(|i| i as u8).collect();
        let img = planar_to_rgb_image(&planar, 4).unwrap();
        assert_eq!(img.get_pixel(1, 0).0, [1, 17, 33]);
        let mut back = vec![0; planar.len()];
        rgb_image_to_planar(&img, &mut back).unwrap();
        assert_eq!(back, planar);
    }

    #[test]
    fn square_resize_crops_the_centre() {
        // 6x2 image: left and right thirds red, middle third green; centre crop 2x2 is all green.
        let img =
            RgbImage::from_fn(6, 2, |x, _| if (2..4).contains(&x) { [0, 255, 0].into() } else { [255, 0, 0].into() });
        let out = square_resize(&img, 2);
        assert!(out.pixels().all(|p| p.0 == [0, 255, 0]));
        let out = square_resize(&img, 8);
        assert_eq!(out.dimensions(), (8, 8));
        assert!(out.pixels().all(|p| p.0[1] > 200 && p.0[0] < 30));
    }
}
