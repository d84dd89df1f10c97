//! Batch preparation: a list of image indices -> model-ready planar `f32` buffers in a color space
//! (gray input, chroma target, class labels). Every data set goes through [`prepare`]; [`prefetched`]
//! prepares the batches of a pass (training or validation) ahead of their consumer, so that a pass
//! holds a few batches at a time, never a whole split.

use anyhow::Context;
use rayon::prelude::*;

use super::ImageSource;
use super::augment::EpochAugment;
use crate::color::ColorSpace;
use crate::color::convert::encode_u8_planar;

/// Bytes of RGB per unit of parallel work: batches are split into chunks of about this size (at least one
/// image), each read and converted by one thread.
const CHUNK_BYTES: usize = 192 * 1024;

/// Batches [`prefetched`] prepares ahead of the one being consumed (with the one being prepared and
/// the one consumed, four are in memory at most).
pub const PREFETCH: usize = 2;

/// The data path of a pass over batches: `prepare` turns each of `batches` into a `T` on another
/// thread (which spreads each batch over every core, see [`prepare`]), up to [`PREFETCH`] batches
/// ahead of `consume`, which reads them in order from the iterator it is given. When `consume`
/// returns (done, stopped early or failed), the preparation stops. A panic while preparing also ends
/// the batches early: it is then the pass's error, with the panic's message (`consume` alone would
/// see a short pass, and an unjoined scope would only say that a scoped thread panicked).
pub fn prefetched<T: Send, R>(
    batches: &[Vec<usize>],
    prepare: impl Fn(&[usize]) -> anyhow::Result<T> + Send,
    consume: impl FnOnce(&mut dyn Iterator<Item = anyhow::Result<T>>) -> anyhow::Result<R>,
) -> anyhow::Result<R> {
    std::thread::scope(|scope| {
        let (tx, rx) = std::sync::mpsc::sync_channel::<anyhow::Result<T>>(PREFETCH);
        let preparer = scope.spawn(move || {
            for idx in batches {
                if tx.send(prepare(idx)).is_err() {
                    break;
                }
            }
        });
        let consumed = consume(&mut rx.iter());
        if let Err(panic) = preparer.join() {
            anyhow::bail!("preparing the batches failed: {}", panic_message(panic.as_ref()));
        }
        consumed
    })
}

/// The message a panic carried (`panic!("...")`, an `assert!`'s), for an error that says the real
/// cause rather than that a thread panicked.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "a panic without a message".to_string())
}

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
    /// A copy of images `range` of the batch.
    pub fn slice(&self, range: std::ops::Range<usize>) -> ColorBatch {
        let hw = self.side * self.side;
        ColorBatch {
            n: range.len(),
            side: self.side,
            gray: self.gray[range.start * hw..range.end * hw].to_vec(),
            chroma: self.chroma[2 * range.start * hw..2 * range.end * hw].to_vec(),
            labels: self.labels[range].to_vec(),
        }
    }

    pub fn hw(&self) -> usize {
        self.side * self.side
    }
}

/// Reads the images `indices` of `source` (in parallel) and converts them to gray input and chroma target
/// in `space`. Indices may repeat and come in any order; an index out of range or an unreadable image is
/// an error naming it.
pub fn prepare(source: &dyn ImageSource, indices: &[usize], space: ColorSpace) -> anyhow::Result<ColorBatch> {
    prepare_with(source, indices, space, None)
}

/// [`prepare`] for training: each image is transformed by the epoch's `augment` (crop, flip) before its
/// gray/chroma split, so input and target come from the same transformed pixels.
pub fn prepare_augmented(
    source: &dyn ImageSource,
    indices: &[usize],
    space: ColorSpace,
    augment: &EpochAugment,
) -> anyhow::Result<ColorBatch> {
    prepare_with(source, indices, space, Some(augment))
}

fn prepare_with(
    source: &dyn ImageSource,
    indices: &[usize],
    space: ColorSpace,
    augment: Option<&EpochAugment>,
) -> anyhow::Result<ColorBatch> {
    let n = indices.len();
    let side = source.side();
    let hw = side * side;
    let len = source.len();
    if let Some(&bad) = indices.iter().find(|&&i| i >= len) {
        anyhow::bail!("image index {bad} is out of range: the source holds {len} images");
    }
    let mut gray = vec![0f32; n * hw];
    let mut chroma = vec![0f32; n * 2 * hw];
    if hw > 0 && n > 0 {
        // Read and convert chunk by chunk (in parallel): each chunk's RGB stays in a small per-thread buffer
        // that fits in cache, instead of one batch-sized buffer. A batch is split over every thread even
        // when it would fit one chunk: a GPU trains 64 small images faster than one thread renders them.
        let chunk = (CHUNK_BYTES / (3 * hw)).min(n.div_ceil(rayon::current_num_threads())).clamp(1, 256);
        indices
            .par_chunks(chunk)
            .zip(gray.par_chunks_mut(chunk * hw))
            .zip(chroma.par_chunks_mut(chunk * 2 * hw))
            .try_for_each_init(Vec::new, |rgb: &mut Vec<u8>, ((idx, gray), chroma)| {
                rgb.resize(idx.len() * 3 * hw, 0);
                for (out, &i) in rgb.chunks_exact_mut(3 * hw).zip(idx) {
                    match augment {
                        Some(a) => a.read(source, i, out),
                        None => source.read_rgb(i, out),
                    }
                    .with_context(|| format!("reading image {i}"))?;
                }
                encode_u8_planar(space, rgb, hw, gray, chroma);
                anyhow::Ok(())
            })?;
    }
    let labels = indices.iter().map(|&i| source.label(i) as u32).collect();
    Ok(ColorBatch { n, side, gray, chroma, labels })
}
