//! Data sets behind one trait.
//!
//! Every data set is a pair of [`ImageSource`]s (train and validation) of square RGB images with class
//! labels. [`prepare()`] turns a batch of them into model-ready planar `f32` buffers in the configured
//! color space: the gray input, the chroma target and the labels; [`prepare_augmented`] does the same
//! for training batches after the random crops and flips of [`augment`]. Sources: `synthetic` (built in, no
//! download), `cifar` (CIFAR-10/100 binary layout), `folder` (ImageNet-style class folders); `fetch`
//! downloads the CIFAR archives; `decode` decodes photos at the size they are needed (JPEG DCT
//! scaling); `filelist` scans image folders once and caches their file lists; `show` writes contact
//! sheets and summaries; `pixels` the planar/interleaved conversions and the square resize shared by
//! the sources. [`open`] turns a [`DataConfig`] into a [`DataSet`].

pub mod augment;
pub mod cifar;
pub mod decode;
pub mod fetch;
pub mod filelist;
pub mod folder;
pub mod pixels;
pub mod prepare;
pub mod show;
pub mod synthetic;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::bail;

use crate::named::named_enum;

pub use augment::{Augment, Crop};
pub use fetch::fetch;
pub use prepare::{ColorBatch, panic_message, prefetched, prepare, prepare_augmented};
pub use show::{contact_sheet, describe};

named_enum! {
    /// Which data set a run uses.
    pub enum DatasetKind {
        /// The built-in procedural data set (no download); see [`synthetic`].
        Synthetic = "synthetic",
        /// CIFAR-10 in its binary layout; see [`cifar`] and [`fetch()`].
        Cifar10 = "cifar10",
        /// CIFAR-100 (fine labels) in its binary layout; see [`cifar`] and [`fetch()`].
        Cifar100 = "cifar100",
        /// ImageNet-style class folders of JPEG/PNG files; see [`folder`].
        Folder = "folder",
    }
}

/// What the data module needs to know from a run's config.
#[derive(Clone, Debug, PartialEq)]
pub struct DataConfig {
    /// Which data set.
    pub kind: DatasetKind,
    /// Where the data set lives (`cifar*`: the unpacked binary folder or its parent; `folder`: the class folders).
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
    /// Whether there are no images.
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
    /// Writes the rectangle `region(width, height)` of image `index`'s original (`width x height`), resized
    /// to `side x side`, as [`read_rgb`](ImageSource::read_rgb) does (the random resized crop of
    /// [`augment`]). Sources whose originals are larger than what they serve (photo folders) override
    /// this to crop before they shrink; by default the original is the served `side x side` image.
    fn read_rgb_region(
        &self,
        index: usize,
        region: &mut dyn FnMut(u32, u32) -> augment::Rect,
        out: &mut [u8],
    ) -> anyhow::Result<()> {
        let side = self.side();
        let mut served = vec![0u8; 3 * side * side];
        self.read_rgb(index, &mut served)?;
        let rect = region(side as u32, side as u32);
        let img = pixels::planar_to_rgb_image(&served, side)?;
        pixels::rgb_image_to_planar(&pixels::crop_resize(&img, rect, side), out)
    }
    /// A human-readable name of image `index` for messages (a file path, a file and record number).
    fn item_name(&self, index: usize) -> String {
        format!("image {index}")
    }
}

/// Largest `image_size` any source accepts (a sanity bound, not a limit of the formats).
pub const MAX_IMAGE_SIZE: usize = 4096;

/// An opened data set: its class names and its two splits.
///
/// Both splits share `classes` (labels index into it) and have the same image side.
#[derive(Clone)]
pub struct DataSet {
    /// Short name for logs and summaries (`synthetic`, `cifar10`, `cifar100`, `folder`).
    pub name: String,
    /// Class names; a label `l` means `classes[l]`.
    pub classes: Vec<String>,
    /// Training split.
    pub train: Arc<dyn ImageSource>,
    /// Validation split (CIFAR: the official test set).
    pub val: Arc<dyn ImageSource>,
}

impl DataSet {
    /// Side of every image in both splits, in pixels.
    pub fn side(&self) -> usize {
        self.train.side()
    }
}

impl fmt::Debug for DataSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DataSet")
            .field("name", &self.name)
            .field("classes", &self.classes.len())
            .field("side", &self.train.side())
            .field("train", &self.train.len())
            .field("val", &self.val.len())
            .finish()
    }
}

/// Opens the data set a run's config describes.
///
/// Nothing is downloaded here: `cifar*` expects the unpacked binary folder (see [`fetch()`]). Errors name
/// the path and what is wrong with it.
pub fn open(cfg: &DataConfig) -> anyhow::Result<DataSet> {
    open_with(cfg, None)
}

/// [`open()`], with the file lists of image folders cached in the folder `file_lists` (for a run, its
/// results folder's `.filelists/`, which the store names), so that a big folder is scanned once, not
/// by every run.
pub fn open_with(cfg: &DataConfig, file_lists: Option<&Path>) -> anyhow::Result<DataSet> {
    if cfg.image_size == 0 || cfg.image_size > MAX_IMAGE_SIZE {
        bail!("image_size must be between 1 and {MAX_IMAGE_SIZE} pixels, got {}", cfg.image_size);
    }
    match cfg.kind {
        DatasetKind::Synthetic => Ok(synthetic::open(cfg)),
        DatasetKind::Cifar10 | DatasetKind::Cifar100 => cifar::open(cfg),
        DatasetKind::Folder => folder::open(cfg, file_lists),
    }
}
