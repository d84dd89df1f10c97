//! Batch preparation: a list of image indices -> model-ready planar `f32` buffers in a color space
//! (gray input, chroma target, class labels). Every data set goes through [`prepare`].

use anyhow::Context;
use rayon::prelude::*;

use super::ImageSource;
use crate::color::ColorSpace;
// TEMPORARY: becomes `use crate::color::convert::encode_u8_planar;` once the color branch is merged.
use super::standin_color::encode_u8_planar;

/// Images per call of the color conversion: batches are split into chunks of this many images that are
/// converted in parallel.
const ENCODE_CHUNK: usize = 64;

/// A batch of images in the layout the model consumes (row-major, planar, `n` images of `side x side`).
#[derive(Clone, Debug, PartialEq)]
pub struct ColorBatch {
    /// Number of images.
    pub n: usize,
    /// Side of every image, in pixels.
    pub side: usize,
    /// The network input: the color space's luminance scaled to [0, 1], `[n, 1, side, side]`.
    pub gray: Vec<f32>,
    /// The target: the color space's two chroma channels in its own units, `[n, 2, side, side]`.
    pub chroma: Vec<f32>,
    /// Class label of each image, `[n]`.
    pub labels: Vec<u32>,
}

impl ColorBatch {
    /// Pixels per image (`side * side`).
    pub fn hw(&self) -> usize {
        self.side * self.side
    }
}

/// Reads the images `indices` of `source` (in parallel) and converts them to gray input and chroma target
/// in `space`. Indices may repeat and come in any order; an index out of range or an unreadable image is
/// an error naming it.
pub fn prepare(
    source: &dyn ImageSource,
    indices: &[usize],
    space: ColorSpace,
) -> anyhow::Result<ColorBatch> {
    let n = indices.len();
    let side = source.side();
    let hw = side * side;
    let len = source.len();
    if let Some(&bad) = indices.iter().find(|&&i| i >= len) {
        anyhow::bail!("image index {bad} is out of range: the source holds {len} images");
    }
    let mut rgb = vec![0u8; n * 3 * hw];
    if hw > 0 {
        rgb.par_chunks_mut(3 * hw)
            .zip(indices.par_iter())
            .try_for_each(|(out, &i)| {
                source
                    .read_rgb(i, out)
                    .with_context(|| format!("reading image {i}"))
            })?;
    }
    let mut gray = vec![0f32; n * hw];
    let mut chroma = vec![0f32; n * 2 * hw];
    if hw > 0 {
        rgb.par_chunks(ENCODE_CHUNK * 3 * hw)
            .zip(gray.par_chunks_mut(ENCODE_CHUNK * hw))
            .zip(chroma.par_chunks_mut(ENCODE_CHUNK * 2 * hw))
            .for_each(|((rgb, gray), chroma)| encode_u8_planar(space, rgb, hw, gray, chroma));
    }
    let labels = indices.iter().map(|&i| source.label(i) as u32).collect();
    Ok(ColorBatch {
        n,
        side,
        gray,
        chroma,
        labels,
    })
}
