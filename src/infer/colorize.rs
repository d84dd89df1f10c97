//! `sweep colorize`: colour real photos with a trained run.
//!
//! The model sees the photo's luma resized to its working resolution (the run's image size by
//! default); the predicted chroma is upsampled bilinearly to the photo's own size and recombined with
//! its original full-resolution luma, so the output keeps every detail of the input (as DeOldify and
//! Zhang et al. do). HSV hue is upsampled as a unit vector, so that 350 and 10 degrees blend to 0, not
//! 180. Outputs have the input's width and height, PNG or JPEG by extension.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};

use super::TrainedRun;
use crate::atomic::write_atomic;
use crate::color::convert::{decoded_planar, encode_u8_planar, gray_planar};
use crate::data::folder::{Walk, is_image_file, load_rgb8};
use crate::data::pixels::{rgb_image_to_planar, square_resize};
use crate::model::Backbone;

pub struct ColorizeOptions {
    pub output: PathBuf,
    pub temperature: Option<f32>,
    /// Working resolution (default: the run's image size).
    pub size: Option<usize>,
    pub compare: bool,
    pub force: bool,
}

/// What a batch did.
#[derive(Debug, Default)]
pub struct ColorizeReport {
    pub written: Vec<PathBuf>,
    pub skipped_existing: Vec<PathBuf>,
    /// Files in input folders that are not JPEG or PNG images.
    pub skipped_unsupported: Vec<PathBuf>,
    /// Inputs that could not be colorized, with the reason.
    pub errors: Vec<(PathBuf, String)>,
    pub seconds: f64,
}

/// One input file and where its output goes.
struct Job {
    input: PathBuf,
    output: PathBuf,
    /// The output was named on the command line (`-o photo.png`): if it exists, it is not skipped
    /// like an output in a folder (which lets a batch resume) but an error without `--force`.
    explicit: bool,
}

/// Colorizes every input (files, or folders recursed) into `opts.output`.
pub fn colorize(run: &TrainedRun, inputs: &[PathBuf], opts: &ColorizeOptions) -> Result<ColorizeReport> {
    let size = opts.size.unwrap_or_else(|| run.image_size());
    check_size(run, size)?;
    let mut report = ColorizeReport::default();
    let jobs = plan_jobs(inputs, &opts.output, opts.compare, &mut report)?;
    let bar = indicatif::ProgressBar::new(jobs.len() as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("colorize [{bar:30}] {pos}/{len}  {wide_msg}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    let started = Instant::now();
    for job in jobs {
        bar.set_message(job.input.display().to_string());
        if job.output.exists() && !opts.force && job.explicit {
            let message = format!("{} exists: add --force to overwrite it, or give another -o", job.output.display());
            report.errors.push((job.input, message));
        } else if job.output.exists() && !opts.force {
            report.skipped_existing.push(job.output);
        } else {
            match colorize_file(run, &job.input, &job.output, size, opts) {
                Ok(()) => report.written.push(job.output),
                Err(e) => report.errors.push((job.input, format!("{e:#}"))),
            }
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// Bytes the model's forward pass may take at `--size` ([`crate::model::ColorizationNet::forward_bytes`]):
/// the working resolution is refused, with the largest that fits, rather than run out of memory.
pub const FORWARD_LIMIT: u64 = 8 << 30;

fn check_size(run: &TrainedRun, size: usize) -> Result<()> {
    let net = &run.run.settings.net;
    // The backbones downsample by 32, the local network by 2 per pooling.
    let factor = if net.backbone != Backbone::None { 32 } else { 1 << net.local_pool_after.len() };
    // The largest multiple of `factor` whose forward pass fits in FORWARD_LIMIT.
    let fits =
        ((FORWARD_LIMIT as f64 / run.model.forward_bytes(1) as f64).sqrt() as usize).min(crate::data::MAX_IMAGE_SIZE);
    let largest = fits / factor * factor;
    if size == 0 || !size.is_multiple_of(factor) || size > crate::data::MAX_IMAGE_SIZE {
        bail!("--size {size} does not suit this model: use a multiple of {factor} up to {largest}");
    }
    let need = run.model.forward_bytes(size);
    if need > FORWARD_LIMIT {
        bail!(
            "--size {size} would need about {:.1} GB for this model's forward pass, more than colorize's limit of {} GB: use --size {largest} or less",
            need as f64 / 1e9,
            FORWARD_LIMIT >> 30
        );
    }
    Ok(())
}

/// Expands folders and names outputs. `output` with an image extension names the output file of a
/// single input file; any other `output` is a folder (an extension that is not an image's is an
/// error, not a folder named `out.gif`), and outputs mirror the inputs' names and tree under it.
/// Two inputs that would write the same file (`a/x.png` and `b/x.png`, or `x.png` and `x.jpg`'s
/// comparison sheets) are not allowed to overwrite each other: the later one is an error that
/// names the earlier. No output may be an input (`--force` overwrites outputs, never photos).
fn plan_jobs(inputs: &[PathBuf], output: &Path, compare: bool, report: &mut ColorizeReport) -> Result<Vec<Job>> {
    let single_file_output = output_is_file(inputs, output)?;
    let mut jobs = Vec::new();
    let mut walk = Walk::default();
    for input in inputs {
        if input.is_dir() {
            let mut files = walk.files(input).with_context(|| format!("cannot read folder {}", input.display()))?;
            files.sort();
            for file in files {
                let rel = file.strip_prefix(input).unwrap_or(&file).to_path_buf();
                if is_image_file(&file) {
                    jobs.push(Job { output: output.join(&rel), input: file, explicit: false });
                } else {
                    report.skipped_unsupported.push(file);
                }
            }
        } else if input.is_file() {
            let out = if single_file_output {
                output.to_path_buf()
            } else {
                output.join(input.file_name().unwrap_or_default())
            };
            jobs.push(Job { input: input.clone(), output: out, explicit: single_file_output });
        } else if input.exists() {
            report.errors.push((input.clone(), "not a regular file or a folder".into()));
        } else {
            report.errors.push((input.clone(), "no such file or folder".into()));
        }
    }
    report.skipped_unsupported.append(&mut walk.skipped);
    let writes = |job: &Job| {
        let mut writes = vec![job.output.clone()];
        if compare {
            writes.push(compare_sheet_path(&job.output));
        }
        writes
    };
    let inputs: HashMap<(u64, u64), PathBuf> =
        jobs.iter().filter_map(|j| Some((file_id(&j.input)?, j.input.clone()))).collect();
    let mut claimed: HashMap<PathBuf, PathBuf> = HashMap::new();
    jobs.retain(|job| {
        let writes = writes(job);
        if let Some((path, photo)) = writes.iter().find_map(|w| file_id(w).and_then(|id| inputs.get(&id)).map(|p| (w, p))) {
            let message = format!(
                "its output {} is the input {}: colorize never overwrites a photo, even with --force; give another --output",
                path.display(),
                photo.display()
            );
            report.errors.push((job.input.clone(), message));
            return false;
        }
        if let Some((path, first)) = writes.iter().find_map(|w| claimed.get(w).map(|first| (w, first))) {
            report.errors.push((
                job.input.clone(),
                format!(
                    "its output {} is also {}'s: colorize one of them in a separate call with another --output",
                    path.display(),
                    first.display()
                ),
            ));
            return false;
        }
        for w in writes {
            claimed.insert(w, job.input.clone());
        }
        true
    });
    Ok(jobs)
}

/// Whether `output` names one output file (`-o photo.png` for one input file) rather than a folder;
/// an output that can be neither is an error.
fn output_is_file(inputs: &[PathBuf], output: &Path) -> Result<bool> {
    let Some(ext) = output.extension().filter(|_| !output.is_dir()) else { return Ok(false) };
    if output_format(output).is_none() {
        bail!(
            "-o {}: colorize writes PNG and JPEG files (.png, .jpg or .jpeg), not .{}; give one of those, or a folder (named without an extension, or one that exists)",
            output.display(),
            ext.to_string_lossy()
        );
    }
    if !(inputs.len() == 1 && inputs[0].is_file()) {
        bail!(
            "-o {} names one output file, but the inputs are {}: give a folder for their outputs",
            output.display(),
            if inputs.len() == 1 { "a folder".to_string() } else { format!("{} paths", inputs.len()) }
        );
    }
    Ok(true)
}

/// Device and inode of an existing file (links followed): what tells an output from an input.
fn file_id(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

/// Where `--compare` puts the comparison sheet of `output`: beside it, `NAME.compare.png`.
fn compare_sheet_path(output: &Path) -> PathBuf {
    output.with_file_name(format!("{}.compare.png", output.file_stem().unwrap_or_default().to_string_lossy()))
}

fn output_format(path: &Path) -> Option<image::ImageFormat> {
    match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
        "png" => Some(image::ImageFormat::Png),
        "jpg" | "jpeg" => Some(image::ImageFormat::Jpeg),
        _ => None,
    }
}

fn colorize_file(run: &TrainedRun, input: &Path, output: &Path, size: usize, opts: &ColorizeOptions) -> Result<()> {
    let format = output_format(output)
        .with_context(|| format!("cannot write {}: give the output a .png, .jpg or .jpeg name", output.display()))?;
    let original = load_rgb8(input)?;
    let colorized = colorize_image(run, &original, size, opts.temperature)?;
    save(&colorized, output, format)?;
    if opts.compare {
        let sheet = compare_sheet(run, &original, &colorized);
        save(&sheet, &compare_sheet_path(output), image::ImageFormat::Png)?;
    }
    Ok(())
}

/// The colorized version of `original`, same size.
pub fn colorize_image(
    run: &TrainedRun,
    original: &image::RgbImage,
    size: usize,
    temperature: Option<f32>,
) -> Result<image::RgbImage> {
    let space = run.objective.space();
    let (w, h) = (original.width() as usize, original.height() as usize);
    let hw = w * h;
    // Full-resolution luma of the original (its chroma is thrown away).
    let mut planar = vec![0u8; 3 * hw];
    rgb_image_to_planar(original, &mut planar)?;
    let mut luma = vec![0.0f32; hw];
    let mut unused = vec![0.0f32; 2 * hw];
    encode_u8_planar(space, &planar, hw, &mut luma, &mut unused);
    // The model's view: the whole photo squeezed to size x size (no crop, so every pixel gets chroma).
    let small = square_resize_stretch(original, size);
    let mut small_planar = vec![0u8; 3 * size * size];
    rgb_image_to_planar(&small, &mut small_planar)?;
    let mut small_luma = vec![0.0f32; size * size];
    let mut small_chroma = vec![0.0f32; 2 * size * size];
    encode_u8_planar(space, &small_planar, size * size, &mut small_luma, &mut small_chroma);
    let chroma_small = run.predict(small_luma, 1, size, temperature)?;
    let chroma = upsample_chroma(&chroma_small, size, w, h, space.hue_channel());
    let rgb = decoded_planar(space, &luma, &chroma, hw);
    Ok(planar_f32_to_image(&rgb, w, h))
}

/// Resizes to size x size without keeping the aspect ratio (the prediction is stretched back).
fn square_resize_stretch(img: &image::RgbImage, size: usize) -> image::RgbImage {
    if img.width() == img.height() {
        return square_resize(img, size);
    }
    image::imageops::resize(img, size as u32, size as u32, crate::data::pixels::RESIZE_FILTER)
}

/// Bilinear upsampling of chroma planes `[2][s*s]` to `[2][w*h]` (pixel centres aligned); a hue
/// channel is interpolated as a unit vector so that it wraps.
pub fn upsample_chroma(chroma: &[f32], s: usize, w: usize, h: usize, hue: Option<usize>) -> Vec<f32> {
    let sample = |plane: &[f32], x: f32, y: f32, f: &dyn Fn(f32) -> f32| {
        let x = x.clamp(0.0, (s - 1) as f32);
        let y = y.clamp(0.0, (s - 1) as f32);
        let (x0, y0) = (x.floor() as usize, y.floor() as usize);
        let (x1, y1) = ((x0 + 1).min(s - 1), (y0 + 1).min(s - 1));
        let (fx, fy) = (x - x0 as f32, y - y0 as f32);
        let v = |xx: usize, yy: usize| f(plane[yy * s + xx]);
        (v(x0, y0) * (1.0 - fx) + v(x1, y0) * fx) * (1.0 - fy) + (v(x0, y1) * (1.0 - fx) + v(x1, y1) * fx) * fy
    };
    let mut out = vec![0.0f32; 2 * w * h];
    for c in 0..2 {
        let plane = &chroma[c * s * s..(c + 1) * s * s];
        for y in 0..h {
            let sy = (y as f32 + 0.5) * s as f32 / h as f32 - 0.5;
            for x in 0..w {
                let sx = (x as f32 + 0.5) * s as f32 / w as f32 - 0.5;
                out[c * w * h + y * w + x] = if hue == Some(c) {
                    let cos = sample(plane, sx, sy, &|d: f32| d.to_radians().cos());
                    let sin = sample(plane, sx, sy, &|d: f32| d.to_radians().sin());
                    sin.atan2(cos).to_degrees().rem_euclid(360.0)
                } else {
                    sample(plane, sx, sy, &|v| v)
                };
            }
        }
    }
    out
}

fn planar_f32_to_image(rgb: &[f32], w: usize, h: usize) -> image::RgbImage {
    let hw = w * h;
    image::RgbImage::from_fn(w as u32, h as u32, |x, y| {
        let i = y as usize * w + x as usize;
        image::Rgb([rgb[i], rgb[hw + i], rgb[2 * hw + i]].map(|v| (v.clamp(0.0, 1.0) * 255.0).round() as u8))
    })
}

/// gray | colorized | original, side by side.
fn compare_sheet(run: &TrainedRun, original: &image::RgbImage, colorized: &image::RgbImage) -> image::RgbImage {
    let (w, h) = original.dimensions();
    let space = run.objective.space();
    let hw = (w * h) as usize;
    let mut planar = vec![0u8; 3 * hw];
    let _ = rgb_image_to_planar(original, &mut planar);
    let mut luma = vec![0.0f32; hw];
    let mut chroma = vec![0.0f32; 2 * hw];
    encode_u8_planar(space, &planar, hw, &mut luma, &mut chroma);
    let gray_rgb = gray_planar(space, &luma, hw);
    let gray = planar_f32_to_image(&gray_rgb, w as usize, h as usize);
    let gap = 8;
    let mut sheet = image::RgbImage::from_pixel(3 * w + 2 * gap, h, image::Rgb([255, 255, 255]));
    for (i, img) in [&gray, colorized, original].into_iter().enumerate() {
        image::imageops::replace(&mut sheet, img, (i as u32 * (w + gap)) as i64, 0);
    }
    sheet
}

fn save(img: &image::RgbImage, path: &Path, format: image::ImageFormat) -> Result<()> {
    let mut bytes = Vec::new();
    image::DynamicImage::ImageRgb8(img.clone())
        .write_to(&mut std::io::Cursor::new(&mut bytes), format)
        .with_context(|| format!("cannot encode {}", path.display()))?;
    write_atomic(path, &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upsampling_keeps_constant_planes_and_wraps_hue() {
        // A 2x2 plane of hue 350 and 10 degrees (left and right columns), saturation 40.
        let chroma = vec![350.0, 10.0, 350.0, 10.0, 40.0, 40.0, 40.0, 40.0];
        let up = upsample_chroma(&chroma, 2, 4, 4, Some(0));
        assert!(up[16..].iter().all(|&v| (v - 40.0).abs() < 1e-4));
        // Midway between the columns the hue is 0 (or 360), never 180.
        let mid = up[1];
        assert!(!(90.0..270.0).contains(&mid), "{mid}");
        let corner = up[0];
        assert!((corner - 350.0).abs() < 1e-3, "{corner}");
    }
}
