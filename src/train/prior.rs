//! The chroma priors a run measures when it starts: how many pixels of a sample of the training
//! images fall into each chroma bin. The rebalanced AuC weighs pixels by the inverse prior over Lab
//! bins ([`AUC_BIN_SIZE`], smoothed by [`AUC_PRIOR_SIGMA`]: [`class_weights`]), and a rebalanced
//! classification run weights its loss by the prior over its own bins (its color space and
//! `bin_size`, handed to [`super::objective::Objective::new`]).
//!
//! The sample ([`sample`]): every training image when there are at most [`PRIOR_IMAGES`], else
//! [`PRIOR_IMAGES`] of them spread evenly over the whole set (image `i * len / PRIOR_IMAGES`), so that
//! a folder listed class by class gives every class its share instead of the first few classes
//! everything. Each sample image is decoded once and converted into every color space whose counts
//! are needed, a few images per thread at a time: memory holds a few images per core, not the sample.
//!
//! The counts are cached in the results folder (`results/.priors/<key>.txt`, the folder named by
//! [`crate::store::layout::priors_dir`]; the file's name and format are this module's), so that the
//! runs of a sweep on one data set decode its sample once between them. The key is a hash of what the
//! counts depend on: the data config, the training split's length, the name and label of every sample
//! image ([`crate::data::ImageSource::item_name`]: a photo's path), the color space and the bin size.
//! So a folder whose file list changes gets a new prior; as with the cached file list, a photo
//! rewritten in place under the same name is not seen (delete `results/.priors/` to measure again).
//! A damaged or foreign cache file is measured again and rewritten; runs starting together each write
//! the same counts through [`crate::atomic::write_atomic`].

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use rayon::prelude::*;
use sha2::{Digest, Sha256};

use crate::atomic::write_atomic;
use crate::color::ColorSpace;
use crate::color::convert::encode_u8_planar;
use crate::color::quantize::{ChromaBins, rebalance_weights};
use crate::data::{DataSet, ImageSource};
use crate::metrics::ClassWeights;
use crate::spec::RunConfig;
use crate::spec::run_config::TaskConfig;

/// Most training images the priors are measured on.
pub const PRIOR_IMAGES: usize = 5000;
/// The Lab bins of the rebalanced AuC (Zhang et al.'s grid).
pub const AUC_BIN_SIZE: f32 = 10.0;
/// The smoothing of the rebalanced AuC's prior, in Lab units.
pub const AUC_PRIOR_SIGMA: f32 = 5.0;
/// First line of a cache file (the format's version).
const HEADER: &str = "sweep chroma prior 1";
/// Sample images one task of the counting pass decodes at a time.
const IMAGES_PER_TASK: usize = 4;

/// The counts a run starts from.
#[derive(Clone, Debug, PartialEq)]
pub struct Priors {
    /// Pixels per Lab bin of the rebalanced AuC ([`AUC_BIN_SIZE`]).
    pub auc: Vec<u64>,
    /// Pixels per bin of the run's own classification bins, when it rebalances its loss.
    pub own: Option<Vec<u64>>,
    /// Sample images the counts come from.
    pub images: usize,
    /// Whether every count came from the cache (nothing was decoded).
    pub cached: bool,
}

/// The indices of the training images the priors are measured on (see the module docs).
pub fn sample(len: usize) -> Vec<usize> {
    if len <= PRIOR_IMAGES {
        return (0..len).collect();
    }
    // i * len / PRIOR_IMAGES is strictly increasing in i because len > PRIOR_IMAGES.
    (0..PRIOR_IMAGES).map(|i| (i as u128 * len as u128 / PRIOR_IMAGES as u128) as usize).collect()
}

/// The run's priors, from the cache in `cache_dir` where it has them, else measured on the sample
/// of `data`'s training images (in one pass for all the bins missing) and cached there.
pub fn measure(cfg: &RunConfig, data: &DataSet, cache_dir: Option<&Path>) -> Result<Priors> {
    let source = data.train.as_ref();
    let indices = sample(source.len());
    let auc = ChromaBins::new(ColorSpace::Lab, AUC_BIN_SIZE);
    let own = own_bins(cfg).map(|(space, size)| ChromaBins::new(space, size));
    // A Lab run with 10-unit bins counts the same bins as the AuC: once.
    let same = own.as_ref().is_some_and(|b| b.space() == auc.space() && b.bin_size() == auc.bin_size());
    let mut wanted = vec![auc];
    wanted.extend(own.filter(|_| !same));
    let identity = data_identity(cfg, source, &indices);
    let files: Vec<Option<PathBuf>> =
        wanted.iter().map(|b| cache_dir.map(|dir| dir.join(format!("{}.txt", key(&identity, b))))).collect();
    let mut counts: Vec<Option<Vec<u64>>> =
        wanted.iter().zip(&files).map(|(b, f)| f.as_deref().and_then(|f| read_cache(f, b))).collect();
    let missing: Vec<usize> = (0..wanted.len()).filter(|&i| counts[i].is_none()).collect();
    let cached = missing.is_empty();
    if !cached {
        let bins: Vec<&ChromaBins> = missing.iter().map(|&i| wanted[i].as_ref()).collect();
        for (&i, measured) in missing.iter().zip(count_sample(source, &indices, &bins)?) {
            if let Some(file) = &files[i] {
                write_cache(file, &measured)?;
            }
            counts[i] = Some(measured);
        }
    }
    let mut counts = counts.into_iter().flatten();
    let auc = counts.next().unwrap_or_default();
    let own = if same { Some(auc.clone()) } else { counts.next() };
    Ok(Priors { auc, own, images: indices.len(), cached })
}

/// The per-pixel weights of the rebalanced AuC: the inverse smoothed Lab prior (lambda = 0).
pub fn class_weights(priors: &Priors) -> ClassWeights {
    let bins = ChromaBins::new(ColorSpace::Lab, AUC_BIN_SIZE);
    let prior = bins.prior_of_counts(&priors.auc, AUC_PRIOR_SIGMA);
    ClassWeights { weights: rebalance_weights(&prior, 0.0), bins }
}

/// The color space and bin size of the run's own prior: a classification run that rebalances its loss.
fn own_bins(cfg: &RunConfig) -> Option<(ColorSpace, f32)> {
    match &cfg.task {
        TaskConfig::Classification(c) => c.rebalance.map(|_| (cfg.color_space, c.bin_size)),
        TaskConfig::Regression(_) => None,
    }
}

/// Pixels per bin of each of `bins` over the images `indices` of `source`, each image decoded once.
fn count_sample(source: &dyn ImageSource, indices: &[usize], bins: &[&ChromaBins]) -> Result<Vec<Vec<u64>>> {
    let hw = source.side() * source.side();
    let zeros = || bins.iter().map(|b| vec![0u64; b.len()]).collect::<Vec<_>>();
    indices
        .par_chunks(IMAGES_PER_TASK)
        .try_fold(zeros, |mut counts, idx| -> Result<Vec<Vec<u64>>> {
            let mut rgb = vec![0u8; idx.len() * 3 * hw];
            for (out, &i) in rgb.chunks_exact_mut(3 * hw).zip(idx) {
                source.read_rgb(i, out).with_context(|| format!("reading image {i} for the chroma prior"))?;
            }
            let (mut luma, mut chroma) = (vec![0f32; idx.len() * hw], vec![0f32; idx.len() * 2 * hw]);
            for (b, counts) in bins.iter().zip(&mut counts) {
                encode_u8_planar(b.space(), &rgb, hw, &mut luma, &mut chroma);
                b.count(&chroma, hw, counts);
            }
            Ok(counts)
        })
        .try_reduce(zeros, |mut a, b| {
            for (a, b) in a.iter_mut().zip(b) {
                a.iter_mut().zip(b).for_each(|(a, b)| *a += b);
            }
            Ok(a)
        })
}

/// What every prior of this data depends on, as text to hash (see the module docs).
fn data_identity(cfg: &RunConfig, source: &dyn ImageSource, indices: &[usize]) -> String {
    let d = &cfg.data;
    let mut text = format!(
        "{HEADER}\ndataset {}\ndata_dir {}\nimage_size {}\ntrain_images {}\nval_images {}\ndata_seed {}\ntrain {}\n",
        d.kind,
        d.dir.display(),
        d.image_size,
        d.train_images,
        d.val_images,
        d.data_seed,
        source.len()
    );
    for &i in indices {
        text += &format!("{}\t{}\n", source.item_name(i), source.label(i));
    }
    text
}

/// The cache key of the prior over `bins` of the data `identity`: 16 hex digits of SHA-256.
fn key(identity: &str, bins: &ChromaBins) -> String {
    let text = format!("{identity}bins {} {}\n", bins.space(), bins.bin_size());
    Sha256::digest(text.as_bytes()).iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// A cache file's counts: [`HEADER`], the number of bins, then one count per line. `None` when the
/// file is missing, damaged or for other bins (it is measured again).
fn read_cache(path: &Path, bins: &ChromaBins) -> Option<Vec<u64>> {
    let text = std::fs::read_to_string(path).ok()?;
    let mut lines = text.lines();
    if lines.next()? != HEADER || lines.next()?.parse::<usize>().ok()? != bins.len() {
        return None;
    }
    let counts: Vec<u64> = lines.map(|l| l.parse().ok()).collect::<Option<_>>()?;
    (counts.len() == bins.len()).then_some(counts)
}

fn write_cache(path: &Path, counts: &[u64]) -> Result<()> {
    let mut text = format!("{HEADER}\n{}\n", counts.len());
    for c in counts {
        text += &format!("{c}\n");
    }
    write_atomic(path, text.as_bytes()).context("caching the chroma prior")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sample_is_every_image_of_a_small_set_and_spread_over_a_large_one() {
        assert_eq!(sample(0), Vec::<usize>::new());
        assert_eq!(sample(PRIOR_IMAGES), (0..PRIOR_IMAGES).collect::<Vec<_>>());
        for len in [PRIOR_IMAGES + 1, 2 * PRIOR_IMAGES + 3, 1_281_167] {
            let s = sample(len);
            assert_eq!(s.len(), PRIOR_IMAGES);
            assert!(s.windows(2).all(|w| w[0] < w[1]), "distinct, in order");
            assert_eq!(s[0], 0);
            // Evenly spread: the gaps differ by at most one and the last reaches the end's last gap.
            let gaps: Vec<usize> = s.windows(2).map(|w| w[1] - w[0]).collect();
            let (lo, hi) = (gaps.iter().min().unwrap(), gaps.iter().max().unwrap());
            assert!(hi - lo <= 1, "{len}: gaps {lo}..{hi}");
            assert!(len - 1 - s[PRIOR_IMAGES - 1] <= *hi, "{len}: ends at {}", s[PRIOR_IMAGES - 1]);
        }
    }
}
