//! `samples.png`: for a fixed set of validation images, one row each of gray | predicted | ground
//! truth, enlarged with nearest-neighbour so that 32-pixel images can be seen.

use std::path::Path;

use anyhow::Result;

use crate::atomic::write_atomic;
use crate::color::ColorSpace;
use crate::color::convert::{decoded_planar, gray_planar};
use crate::data::ColorBatch;

/// Writes the sheet for the first `count` images of `val`, with `predicted` chroma `[k][2][hw]`.
pub fn write_sheet(path: &Path, space: ColorSpace, val: &ColorBatch, predicted: &[f32], count: usize) -> Result<()> {
    let side = val.side;
    let hw = side * side;
    let n = count.min(val.n).min(predicted.len() / (2 * hw));
    let scale = (96 / side).max(1);
    let tile = side * scale;
    let gap = 2;
    let width = 3 * tile + 4 * gap;
    let height = n * tile + (n + 1) * gap;
    let mut img = image::RgbImage::from_pixel(width as u32, height.max(1) as u32, image::Rgb([255, 255, 255]));
    for i in 0..n {
        let gray = &val.gray[i * hw..(i + 1) * hw];
        let pred = decoded_planar(space, gray, &predicted[i * 2 * hw..(i + 1) * 2 * hw], hw);
        let truth = decoded_planar(space, gray, &val.chroma[i * 2 * hw..(i + 1) * 2 * hw], hw);
        // The gray tile is the image with zero chroma, i.e. what a viewer sees of the input.
        let shown_gray = gray_planar(space, gray, hw);
        let y0 = gap + i * (tile + gap);
        for (col, shown) in [&shown_gray, &pred, &truth].into_iter().enumerate() {
            let x0 = gap + col * (tile + gap);
            for y in 0..tile {
                for x in 0..tile {
                    let p = (y / scale) * side + x / scale;
                    let rgb = [shown[p], shown[hw + p], shown[2 * hw + p]];
                    let px = rgb.map(|v| (v.clamp(0.0, 1.0) * 255.0).round() as u8);
                    img.put_pixel((x0 + x) as u32, (y0 + y) as u32, image::Rgb(px));
                }
            }
        }
    }
    let mut bytes = Vec::new();
    image::DynamicImage::ImageRgb8(img).write_to(&mut std::io::Cursor::new(&mut bytes), image::ImageFormat::Png)?;
    write_atomic(path, &bytes)
}
