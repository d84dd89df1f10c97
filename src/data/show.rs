//! Looking at a data set: a PNG contact sheet of colour / gray pairs ([`contact_sheet`]) and a table of
//! image counts per split and class ([`describe`]).

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, bail};
use image::ImageEncoder;
use image::codecs::png::PngEncoder;
use rayon::prelude::*;

use super::{DataSet, ImageSource, prepare};
use crate::atomic::write_atomic;
use crate::color::ColorSpace;
use crate::color::convert::gray_planar;

/// Gap between the colour and the gray half of a pair, in pixels.
const PAIR_GAP: usize = 2;
/// Gap between pairs and around the sheet, in pixels.
const MARGIN: usize = 6;
/// Background of the sheet (dark grey, so that white and black images both stand out).
const BACKGROUND: u8 = 48;
/// Memory a contact sheet may take, in bytes.
const SHEET_BYTES: u64 = 2 << 30;
/// Small images are upscaled (nearest neighbour) until they are at least this many pixels wide.
const MIN_TILE: usize = 96;

/// Writes a PNG contact sheet of `count` images of `ds` (from the validation split, or training when
/// validation is empty; spread evenly over the split) to `out`, atomically. Each image appears as a pair:
/// the colour original, then what the model sees (the luminance of `space` rendered as gray, i.e. decoded
/// with zero chroma), separated by a 2-pixel gap. Small images are upscaled with nearest neighbour so that
/// 32-pixel images are visible (to at least 96 pixels).
pub fn contact_sheet(ds: &DataSet, space: ColorSpace, count: usize, out: &Path) -> anyhow::Result<()> {
    let source: &dyn ImageSource = if ds.val.is_empty() { ds.train.as_ref() } else { ds.val.as_ref() };
    let len = source.len();
    let count = count.min(len);
    if count == 0 {
        bail!("data set {} has no images to show", ds.name);
    }
    let side = source.side();
    if side == 0 {
        bail!("data set {} has 0-pixel images", ds.name);
    }
    let hw = side * side;
    // The images, their prepared gray and chroma (f32) and the sheet: about 20 bytes a pixel.
    let need = (count * hw) as u64 * 20;
    if need > SHEET_BYTES {
        let fit = (SHEET_BYTES / (hw as u64 * 20)).max(1);
        bail!(
            "a sheet of {count} images of {side} x {side} pixels would take {:.1} GB of memory (more than {} GB): use --count {fit} or fewer, or a smaller image_size",
            need as f64 / 1e9,
            SHEET_BYTES >> 30
        );
    }
    let indices: Vec<usize> = (0..count).map(|i| i * len / count).collect();

    let mut rgb = vec![0u8; count * 3 * hw];
    rgb.par_chunks_mut(3 * hw)
        .zip(indices.par_iter())
        .try_for_each(|(buf, &i)| source.read_rgb(i, buf).with_context(|| format!("reading image {i}")))?;
    let batch = prepare(source, &indices, space)?;
    let gray_rgb = gray_planar(space, &batch.gray, hw);

    let scale = MIN_TILE.div_ceil(side).clamp(1, 8);
    let tile = side * scale;
    let pair_w = 2 * tile + PAIR_GAP;
    let cols = ((count as f64 / 2.0).sqrt().ceil() as usize).clamp(1, count);
    let rows = count.div_ceil(cols);
    let width = cols * pair_w + (cols + 1) * MARGIN;
    let height = rows * tile + (rows + 1) * MARGIN;
    let mut sheet = vec![BACKGROUND; width * height * 3];
    for k in 0..count {
        let (x0, y0) = (MARGIN + (k % cols) * (pair_w + MARGIN), MARGIN + (k / cols) * (tile + MARGIN));
        let colour = &rgb[k * 3 * hw..(k + 1) * 3 * hw];
        let gray = &gray_rgb[k * 3 * hw..(k + 1) * 3 * hw];
        for y in 0..tile {
            for x in 0..tile {
                let p = (y / scale) * side + x / scale;
                let left = ((y0 + y) * width + x0 + x) * 3;
                let right = ((y0 + y) * width + x0 + tile + PAIR_GAP + x) * 3;
                for c in 0..3 {
                    sheet[left + c] = colour[c * hw + p];
                    sheet[right + c] = (gray[c * hw + p].clamp(0.0, 1.0) * 255.0).round() as u8;
                }
            }
        }
    }
    let mut png = Vec::new();
    PngEncoder::new(&mut png)
        .write_image(&sheet, width as u32, height as u32, image::ExtendedColorType::Rgb8)
        .context("cannot encode the contact sheet as PNG")?;
    write_atomic(out, &png).with_context(|| format!("cannot write contact sheet {}", out.display()))
}

/// Counts of images per label in `source`.
fn counts(source: &dyn ImageSource, classes: usize) -> Vec<usize> {
    let mut counts = vec![0usize; classes];
    for i in 0..source.len() {
        if let Some(c) = counts.get_mut(source.label(i)) {
            *c += 1;
        }
    }
    counts
}

/// A table of the data set: name, image size, and the number of images per class in each split.
pub fn describe(ds: &DataSet) -> String {
    let train = counts(ds.train.as_ref(), ds.classes.len());
    let val = counts(ds.val.as_ref(), ds.classes.len());
    let side = ds.side();
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{}: {} classes, {side}x{side} pixels, {} training and {} validation images",
        ds.name,
        ds.classes.len(),
        ds.train.len(),
        ds.val.len()
    );
    let name_w = ds.classes.iter().map(|c| c.chars().count()).max().unwrap_or(0).max(5);
    let num_w = ds.train.len().max(ds.val.len()).max(1).to_string().len().max(5);
    let label_w = ds.classes.len().saturating_sub(1).to_string().len().max(5);
    let _ = writeln!(s, "{:>label_w$}  {:<name_w$}  {:>num_w$}  {:>num_w$}", "label", "class", "train", "val");
    let _ = writeln!(s, "{}", "-".repeat(label_w + name_w + 2 * num_w + 6));
    for (i, name) in ds.classes.iter().enumerate() {
        let _ = writeln!(s, "{i:>label_w$}  {name:<name_w$}  {:>num_w$}  {:>num_w$}", train[i], val[i]);
    }
    let _ = writeln!(s, "{}", "-".repeat(label_w + name_w + 2 * num_w + 6));
    let _ = writeln!(s, "{:>label_w$}  {:<name_w$}  {:>num_w$}  {:>num_w$}", "", "total", ds.train.len(), ds.val.len());
    s
}
