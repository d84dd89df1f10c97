//! ImageNet-style folders: one sub-folder per class holding JPEG and PNG files.
//!
//! Layout: `dir/<class>/**/*.{jpg,jpeg,png}` (extensions case-insensitive, hidden files and folders
//! skipped; class names are the sub-folder names, sorted). If both `dir/train` and `dir/val` exist they are
//! the two splits (each with class sub-folders; the classes are those of `train`). Otherwise every file is
//! assigned to validation when a hash of its path relative to `dir` (with `/` separators) and the
//! `data_seed` falls in a 10% bucket: the split of a file never depends on which other files exist or on
//! the order the file system lists them. `train_images` / `val_images` keep a subset chosen the same way
//! (the N files with the smallest hash under another seed), again independent of listing order.
//!
//! Images are decoded lazily in [`ImageSource::read_rgb`] (format sniffed from the content; JPEGs at the
//! reduced size [`decode::load_region`] picks), converted to 8-bit RGB (gray, alpha and 16-bit inputs
//! included), resized so the shorter side is `image_size` with [`pixels::RESIZE_FILTER`] and
//! centre-cropped to a square; a random resized crop ([`ImageSource::read_rgb_region`]) cuts its
//! rectangle out of the full-size photo before shrinking it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail, ensure};

use super::augment::Rect;
use super::filelist::Tree;
use super::{DataConfig, DataSet, ImageSource, decode, pixels};
use crate::rng::Rng;

/// Percentage of files that go to validation when the folder has no `train`/`val` split.
pub const VAL_PERCENT: u64 = 10;

/// File extensions (lower case) recognised as images.
pub const EXTENSIONS: [&str; 3] = ["jpg", "jpeg", "png"];

const SPLIT_STREAM: u64 = 0x5350_4C49_545F_5641; // "SPLIT_VA"
const SUBSET_STREAM: u64 = 0x5355_4253_4554_5F4E; // "SUBSET_N"

/// Whether `path` has an image extension (case-insensitive).
pub fn is_image_file(path: &Path) -> bool {
    path.extension().and_then(|e| e.to_str()).is_some_and(|e| EXTENSIONS.iter().any(|x| e.eq_ignore_ascii_case(x)))
}

/// FNV-1a, 64 bit: a stable hash of a relative path (std's hasher is not stable across releases).
pub(super) fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xCBF2_9CE4_8422_2325, |h, &b| (h ^ b as u64).wrapping_mul(0x0100_0000_01B3))
}

fn path_key(rel: &str, seed: u64, stream: u64) -> u64 {
    Rng::derive(seed ^ stream, fnv1a(rel.as_bytes())).next_u64()
}

/// Whether the file at `rel` (path relative to the data set folder, `/`-separated) belongs to the
/// validation split when the folder has no explicit split.
pub fn is_validation(rel: &str, data_seed: u64) -> bool {
    path_key(rel, data_seed, SPLIT_STREAM) % 100 < VAL_PERCENT
}

fn relative(path: &Path, root: &Path) -> String {
    let rel = path.strip_prefix(root).unwrap_or(path);
    rel.components().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/")
}

/// The scanned tree of the folder `root`: from the file-list cache in `cache` when given ([`Tree::cached`]).
fn tree(root: &Path, cache: Option<&Path>) -> anyhow::Result<Tree> {
    if !root.exists() {
        bail!("data folder {} does not exist", root.display());
    }
    ensure!(root.is_dir(), "{} is not a folder: `dir` must be a folder with one sub-folder per class", root.display());
    match cache {
        Some(dir) => Tree::cached(root, dir),
        None => Tree::scan(root),
    }
}

/// The class sub-folders of `root` (the top-level folders of its `tree`), sorted by name.
fn class_folders(root: &Path, tree: &Tree) -> anyhow::Result<Vec<String>> {
    let top = |p: &&Path| p.components().count() == 1;
    let classes: Vec<String> = tree.dirs().filter(top).map(|p| p.to_string_lossy().into_owned()).collect();
    if classes.is_empty() {
        let loose = tree.files.iter().map(PathBuf::as_path).filter(top).count();
        if loose > 0 {
            bail!(
                "{} holds {loose} images but no class sub-folders: put each class's images in a sub-folder named \
                 after it",
                root.display()
            );
        }
        bail!("data folder {} is empty: expected one sub-folder per class holding JPEG or PNG images", root.display());
    }
    Ok(classes)
}

/// `(file, label)` pairs of every image in the class folders of `root` (labels index into `classes`), in
/// path order; images directly in `root` are not in any class and are left out.
fn scan(root: &Path, tree: &Tree, classes: &[String]) -> anyhow::Result<Vec<(PathBuf, u32)>> {
    let labels: HashMap<&str, u32> = classes.iter().enumerate().map(|(i, c)| (c.as_str(), i as u32)).collect();
    let mut counts: HashMap<String, usize> = HashMap::new();
    for name in class_folders(root, tree)? {
        if !labels.contains_key(name.as_str()) {
            bail!("class folder {} has no counterpart among the training classes", root.join(&name).display());
        }
        counts.insert(name, 0);
    }
    let mut files = Vec::with_capacity(tree.files.len());
    for file in &tree.files {
        let mut parts = file.components();
        let (Some(class), Some(_)) = (parts.next(), parts.next()) else { continue };
        let class = class.as_os_str().to_string_lossy();
        if let Some(count) = counts.get_mut(class.as_ref()) {
            *count += 1;
            files.push((root.join(file), labels[class.as_ref()]));
        }
    }
    if let Some((empty, _)) = counts.iter().filter(|(_, n)| **n == 0).min() {
        bail!(
            "class folder {} holds no images (looked for {} files, any letter case)",
            root.join(empty).display(),
            EXTENSIONS.join(", ")
        );
    }
    Ok(files)
}

/// Keeps `limit` files (0 = all): those with the smallest hash of their relative path, in path order.
fn subset(mut files: Vec<(PathBuf, u32)>, limit: usize, root: &Path, seed: u64) -> Vec<(PathBuf, u32)> {
    if limit == 0 || limit >= files.len() {
        return files;
    }
    let mut keyed: Vec<(u64, usize)> =
        files.iter().enumerate().map(|(i, (p, _))| (path_key(&relative(p, root), seed, SUBSET_STREAM), i)).collect();
    keyed.sort_unstable();
    let mut keep: Vec<usize> = keyed[..limit].iter().map(|&(_, i)| i).collect();
    keep.sort_unstable();
    let mut flags = vec![false; files.len()];
    for i in keep {
        flags[i] = true;
    }
    let mut i = 0;
    files.retain(|_| {
        i += 1;
        flags[i - 1]
    });
    files
}

/// One split of an image folder: files decoded on demand.
#[derive(Clone, Debug)]
pub struct FolderSource {
    files: Vec<PathBuf>,
    labels: Vec<u32>,
    side: usize,
}

impl FolderSource {
    /// A source serving `files` (with `labels`) at `side x side`.
    pub fn new(files: Vec<(PathBuf, u32)>, side: usize) -> Self {
        let (files, labels) = files.into_iter().unzip();
        FolderSource { files, labels, side }
    }

    /// Path of image `index`.
    pub fn path(&self, index: usize) -> Option<&Path> {
        self.files.get(index).map(PathBuf::as_path)
    }
}

/// Decodes the image file at `path` (format sniffed from its content) to 8-bit RGB. Errors name the file
/// and carry the decoder's message.
pub fn load_rgb8(path: &Path) -> anyhow::Result<image::RgbImage> {
    let reader = image::ImageReader::open(path).with_context(|| format!("cannot open image {}", path.display()))?;
    let reader = reader.with_guessed_format().with_context(|| format!("cannot read image {}", path.display()))?;
    let img = reader.decode().map_err(|e| anyhow::anyhow!("cannot decode image {}: {e}", path.display()))?;
    ensure!(img.width() > 0 && img.height() > 0, "image {} is empty (0 pixels)", path.display());
    Ok(pixels::to_rgb8(img))
}

impl ImageSource for FolderSource {
    fn len(&self) -> usize {
        self.files.len()
    }

    fn side(&self) -> usize {
        self.side
    }

    fn label(&self, index: usize) -> usize {
        self.labels.get(index).copied().unwrap_or(0) as usize
    }

    fn item_name(&self, index: usize) -> String {
        self.files.get(index).map(|p| p.display().to_string()).unwrap_or_else(|| format!("image {index}"))
    }

    fn read_rgb(&self, index: usize, out: &mut [u8]) -> anyhow::Result<()> {
        self.read_rgb_region(index, &mut Rect::centre_square, out)
    }

    fn read_rgb_region(
        &self,
        index: usize,
        region: &mut dyn FnMut(u32, u32) -> Rect,
        out: &mut [u8],
    ) -> anyhow::Result<()> {
        let Some(path) = self.files.get(index) else {
            bail!("image index {index} is out of range ({} images)", self.files.len());
        };
        ensure!(self.side > 0, "image side must be positive");
        // One bad file in a big folder ends the run; say what to do about it.
        let img = decode::load_region(path, region, self.side).map_err(|e| {
            anyhow::anyhow!(
                "{e:#} (every file of the data set must decode: repair, replace or delete it, then `sweep run --retry-failed` trains the run again)"
            )
        })?;
        pixels::rgb_image_to_planar(&img, out).with_context(|| format!("image {}", path.display()))
    }
}

/// Opens an image folder as a config describes, with its file lists cached in `cache` when given (see
/// [`super::filelist`]).
pub fn open(cfg: &DataConfig, cache: Option<&Path>) -> anyhow::Result<DataSet> {
    let root = &cfg.dir;
    let (train_dir, val_dir) = (root.join("train"), root.join("val"));
    let (classes, train, val) = if train_dir.is_dir() && val_dir.is_dir() {
        let train_tree = tree(&train_dir, cache)?;
        let classes = class_folders(&train_dir, &train_tree)?;
        let train = scan(&train_dir, &train_tree, &classes)?;
        let val = scan(&val_dir, &tree(&val_dir, cache)?, &classes)?;
        (
            classes,
            subset(train, cfg.train_images, &train_dir, cfg.data_seed),
            subset(val, cfg.val_images, &val_dir, cfg.data_seed),
        )
    } else {
        let tree = tree(root, cache)?;
        let classes = class_folders(root, &tree)?;
        let (val, train): (Vec<_>, Vec<_>) = scan(root, &tree, &classes)?
            .into_iter()
            .partition(|(p, _)| is_validation(&relative(p, root), cfg.data_seed));
        (
            classes,
            subset(train, cfg.train_images, root, cfg.data_seed),
            subset(val, cfg.val_images, root, cfg.data_seed),
        )
    };
    Ok(DataSet {
        name: "folder".to_string(),
        classes,
        train: Arc::new(FolderSource::new(train, cfg.image_size)),
        val: Arc::new(FolderSource::new(val, cfg.image_size)),
    })
}
