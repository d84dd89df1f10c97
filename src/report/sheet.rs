//! The comparison sheet: the same validation images colorized by every variant, one row per variant
//! in rank order between the gray input (top) and the ground truth (bottom), with the variants' names
//! on the left. Rows rather than columns, so that 30 variants stay legible: names get the width they
//! need and the sheet only grows downwards.
//!
//! It is cut from each variant's `samples.png` (the trainer's gray | predicted | truth rows of the
//! same fixed validation images, at the run's last epoch), taking the first used run with one.

use std::path::Path;

use anyhow::{Context, Result, bail};
use plotters::prelude::*;

use super::plots::{FONT, draw_error, encode_png, fit, register_font, text_width};
use super::{Figure, Report};
use crate::atomic::write_atomic;
use crate::store::layout::SAMPLES_FILE;

/// The trainer's sheet geometry: tiles separated by this many white pixels.
const GAP: u32 = 2;

/// The tiles of one `samples.png`: per image, gray, predicted and truth.
struct Samples {
    tile: u32,
    images: Vec<[image::RgbImage; 3]>,
}

/// Cuts a `samples.png` into its tiles; an error says what is wrong with the file.
fn cut(path: &Path) -> Result<Samples> {
    let img = image::open(path).with_context(|| format!("cannot read {}", path.display()))?.to_rgb8();
    let (w, h) = img.dimensions();
    let tile = w.saturating_sub(4 * GAP) / 3;
    if tile == 0 || 3 * tile + 4 * GAP != w || h < tile + 2 * GAP {
        bail!("{} is not a sample sheet (3 tiles per row): it is {w}x{h}", path.display());
    }
    let count = (h - GAP) / (tile + GAP);
    let images = (0..count)
        .map(|i| {
            let y = GAP + i * (tile + GAP);
            [0, 1, 2].map(|c| image::imageops::crop_imm(&img, GAP + c * (tile + GAP), y, tile, tile).to_image())
        })
        .collect();
    Ok(Samples { tile, images })
}

/// Writes one sheet per sweep (`comparison_sheet.png`, or `comparison_sheet_<k>.png` with several).
pub fn write_all(report: &Report, out: &Path) -> Result<Vec<Figure>> {
    let mut figures = Vec::new();
    for (set_index, set) in report.sets.iter().enumerate() {
        let mut rows: Vec<(String, Samples)> = Vec::new();
        let mut skipped = Vec::new();
        for v in report.variants.iter().filter(|v| v.set == set_index) {
            let path = v.used.iter().chain(&v.runs).find_map(|&i| set.runs[i].samples.as_ref());
            match path.map(|p| cut(p)) {
                Some(Ok(samples)) if rows.first().is_none_or(|(_, first)| first.tile == samples.tile) => {
                    rows.push((v.label.clone(), samples))
                }
                Some(Ok(_)) => skipped.push(format!("{} (other image size)", v.label)),
                Some(Err(e)) => skipped.push(format!("{} ({e:#})", v.label)),
                None => skipped.push(format!("{} (no {SAMPLES_FILE})", v.label)),
            }
        }
        if rows.is_empty() {
            continue;
        }
        let stem = if report.sets.len() > 1 {
            format!("comparison_sheet_{}", set_index + 1)
        } else {
            "comparison_sheet".into()
        };
        let png = draw(&rows)?;
        write_atomic(&out.join(format!("{stem}.png")), &png)?;
        let mut caption = format!(
            "The same {} validation images: gray input (top), each variant at its last epoch in rank order (first seed with a sheet), ground truth (bottom).",
            rows.iter().map(|(_, s)| s.images.len()).min().unwrap_or(0)
        );
        if !skipped.is_empty() {
            caption.push_str(&format!(" Left out: {}.", skipped.join("; ")));
        }
        let title = if report.sets.len() > 1 {
            format!("Comparison sheet: {}", report.labels[set_index])
        } else {
            "Comparison sheet".into()
        };
        figures.push(Figure { stem, title, caption, svg: false, dir: out.to_path_buf() });
    }
    Ok(figures)
}

/// The sheet as PNG bytes.
fn draw(rows: &[(String, Samples)]) -> Result<Vec<u8>> {
    let first = &rows[0].1;
    // Shrink the tiles of big sheets so that 30 variants still fit a screen's width.
    let tile = if rows.len() > 12 { first.tile.min(64) } else { first.tile };
    let count = rows.iter().map(|(_, s)| s.images.len()).min().unwrap_or(0) as u32;
    let mut labels: Vec<String> = vec!["gray input".into()];
    labels.extend(rows.iter().enumerate().map(|(i, (l, _))| format!("{}. {l}", i + 1)));
    labels.push("ground truth".into());
    let font_size = 14;
    let label_width = labels.iter().map(|l| text_width(l, font_size)).max().unwrap_or(0).clamp(80, 360) + 16;
    let (w, h) = (label_width + count * (tile + GAP) + GAP, labels.len() as u32 * (tile + GAP) + GAP);
    let mut sheet = image::RgbImage::from_pixel(w, h, image::Rgb([255, 255, 255]));
    let scaled = |img: &image::RgbImage| {
        if img.width() == tile {
            img.clone()
        } else {
            image::imageops::resize(img, tile, tile, image::imageops::FilterType::Nearest)
        }
    };
    let tiles_of_row = |row: usize| -> Vec<image::RgbImage> {
        (0..count as usize)
            .map(|i| match row {
                0 => scaled(&first.images[i][0]),
                r if r <= rows.len() => scaled(&rows[r - 1].1.images[i][1]),
                _ => scaled(&first.images[i][2]),
            })
            .collect()
    };
    for row in 0..labels.len() {
        for (i, t) in tiles_of_row(row).iter().enumerate() {
            let (x, y) = (label_width + GAP + i as u32 * (tile + GAP), GAP + row as u32 * (tile + GAP));
            image::imageops::replace(&mut sheet, t, x.into(), y.into());
        }
    }
    // Names drawn onto the composed pixels with plotters (the compiled-in font).
    register_font()?;
    let mut raw = sheet.into_raw();
    {
        let root = BitMapBackend::with_buffer(&mut raw, (w, h)).into_drawing_area();
        let font = (FONT, font_size).into_font();
        for (row, label) in labels.iter().enumerate() {
            let label = fit(label, font_size, label_width - 16);
            let y = (GAP + row as u32 * (tile + GAP) + tile / 2) as i32 - font_size as i32 / 2;
            let width = text_width(&label, font_size) as i32;
            root.draw(&Text::new(label, (label_width as i32 - 8 - width, y), font.clone())).map_err(draw_error)?;
        }
        root.present().map_err(draw_error)?;
    }
    let sheet = image::RgbImage::from_raw(w, h, raw).context("sheet buffer has the wrong size")?;
    encode_png(sheet)
}
