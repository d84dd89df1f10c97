//! Data sets behind one trait.
//!
//! Every data set is a pair of [`ImageSource`]s (train and validation) of square RGB images with class
//! labels. [`prepare`] turns a batch of them into model-ready planar `f32` buffers in the configured
//! color space: the gray input, the chroma target and the labels. Sources: `synthetic` (built in, no
//! download), `cifar` (CIFAR-10/100 binary layout), `folder` (ImageNet-style class folders); `fetch`
//! downloads the CIFAR archives; `show` writes contact sheets.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Which data set a run uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DatasetKind {
    Synthetic,
    Cifar10,
    Cifar100,
    Folder,
}

/// What the data module needs to know from a run's config.
#[derive(Clone, Debug, PartialEq)]
pub struct DataConfig {
    pub kind: DatasetKind,
    /// Where the data set lives (`cifar*`: the unpacked binary folder; `folder`: the class folders).
    /// Unused by `synthetic`.
    pub dir: PathBuf,
    /// Side of the square images the model sees, in pixels.
    pub image_size: usize,
    /// Use at most this many training images (0 = all). Synthetic: exactly this many (0 = 5000).
    pub train_images: usize,
    /// Use at most this many validation images (0 = all). Synthetic: exactly this many (0 = 1000).
    pub val_images: usize,
    /// Seed of the synthetic generator and of the folder train/validation split.
    pub data_seed: u64,
}

/// A read-only, random-access collection of square RGB images with class labels.
pub trait ImageSource: Send + Sync {
    /// Number of images.
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Side of every image, in pixels.
    fn side(&self) -> usize;
    /// Class label of image `index`.
    fn label(&self, index: usize) -> usize;
    /// Writes image `index` as planar RGB (all R, then all G, then all B; row-major), `3 * side * side`
    /// bytes, into `out`. Errors name the file and what is wrong with it.
    fn read_rgb(&self, index: usize, out: &mut [u8]) -> anyhow::Result<()>;
}
