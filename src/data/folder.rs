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
//! Folders are scanned by [`Tree::scan`] (training data, cached) and [`Walk`] (`sweep colorize`'s
//! inputs), both of which end whatever the folder holds: links are followed, but each folder is entered
//! and each file listed once, and only regular files are listed.
//!
//! Images are decoded lazily in [`ImageSource::read_rgb`] (format sniffed from the content; JPEGs at the
//! reduced size [`decode::load_region`] picks; see
//! [`load_rgb8`] for the size limits and truncated JPEGs), converted to 8-bit RGB (gray, alpha and 16-bit inputs
//! included), resized so the shorter side is `image_size` with [`pixels::RESIZE_FILTER`] and
//! centre-cropped to a square; a random resized crop ([`ImageSource::read_rgb_region`]) cuts its
//! rectangle out of the full-size photo before shrinking it.

use std::collections::HashMap;
use std::fs;
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

fn is_hidden(path: &Path) -> bool {
    path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with('.'))
}

fn sorted_entries(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut entries = Vec::new();
    for entry in fs::read_dir(dir).with_context(|| format!("cannot list folder {}", dir.display()))? {
        let entry = entry.with_context(|| format!("cannot list folder {}", dir.display()))?;
        let path = entry.path();
        if !is_hidden(&path) {
            entries.push(path);
        }
    }
    entries.sort();
    Ok(entries)
}

/// A scan of folders that ends whatever they hold: symbolic links are followed, but each folder is
/// entered once and each file listed once (by device and inode), so a link to a parent folder is no
/// loop and a linked file no duplicate; only regular files are listed (a FIFO named `x.png` would
/// block its reader forever, a device never end). Hidden entries are skipped, folders listed in
/// name order.
#[derive(Default)]
pub struct Walk {
    seen: std::collections::HashSet<(u64, u64)>,
    /// Entries that are neither folders nor regular files (FIFOs, sockets, devices, broken links).
    pub skipped: Vec<PathBuf>,
}

impl Walk {
    /// Marks `dir` as entered, so that a link to it from elsewhere is not followed (a class folder
    /// linked from another class's is that class's, walked on its own).
    pub fn enclose(&mut self, dir: &Path) {
        self.first_visit(dir);
    }

    /// The regular files under `dir` not listed by this walk before, depth first in name order.
    pub fn files(&mut self, dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
        let mut out = Vec::new();
        self.enclose(dir);
        self.walk(dir, &mut out)?;
        Ok(out)
    }

    fn walk(&mut self, dir: &Path, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
        for path in sorted_entries(dir)? {
            let Ok(meta) = fs::metadata(&path) else {
                self.skipped.push(path);
                continue;
            };
            if meta.is_dir() {
                if self.first_visit(&path) {
                    self.walk(&path, out)?;
                }
            } else if !meta.is_file() {
                self.skipped.push(path);
            } else if self.first_visit(&path) {
                out.push(path);
            }
        }
        Ok(())
    }

    /// Whether the folder or file at `path` (links followed) is met for the first time.
    pub(super) fn first_visit(&mut self, path: &Path) -> bool {
        use std::os::unix::fs::MetadataExt;
        fs::metadata(path).is_ok_and(|m| self.seen.insert((m.dev(), m.ino())))
    }
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

/// Largest image sweep decodes: 64 megapixels (8192 x 8192). A header claiming more is refused before
/// anything is decoded, naming the file and this limit: colorizing keeps about 40 bytes per pixel.
pub const MAX_PIXELS: u64 = 1 << 26;
/// Largest image file sweep reads (files are read whole, then decoded from memory).
pub const MAX_FILE_BYTES: u64 = 1 << 30;

/// Decodes the image file at `path` (format sniffed from its content) to 8-bit RGB. Errors name the file
/// and carry the decoder's message. The header's dimensions are checked against [`MAX_PIXELS`] before
/// decoding, and the decoder may allocate no more than they need. A JPEG that ends before its image
/// does (a truncated download) decodes without an error as a partly gray picture: it is decoded, with
/// a warning naming it (once per file and process).
pub fn load_rgb8(path: &Path) -> anyhow::Result<image::RgbImage> {
    let size = fs::metadata(path).with_context(|| format!("cannot open image {}", path.display()))?.len();
    ensure!(
        size <= MAX_FILE_BYTES,
        "image {} is {size} bytes, more than sweep reads ({} MB): scale it down first",
        path.display(),
        MAX_FILE_BYTES >> 20
    );
    let bytes = fs::read(path).with_context(|| format!("cannot read image {}", path.display()))?;
    let reader = || {
        image::ImageReader::new(std::io::Cursor::new(&bytes))
            .with_guessed_format()
            .with_context(|| format!("cannot read image {}", path.display()))
    };
    let format = reader()?.format();
    let (w, h) =
        reader()?.into_dimensions().map_err(|e| anyhow::anyhow!("cannot decode image {}: {e}", path.display()))?;
    ensure!(
        u64::from(w) * u64::from(h) <= MAX_PIXELS,
        "image {} is {w} x {h} pixels ({:.0} megapixels), more than sweep decodes ({} megapixels, e.g. 8192 x 8192): scale it down first",
        path.display(),
        f64::from(w) * f64::from(h) / 1e6,
        MAX_PIXELS >> 20
    );
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(w);
    limits.max_image_height = Some(h);
    // The largest output (16-bit RGBA) and as much again for the decoder's own buffers.
    limits.max_alloc = Some(2 * 8 * u64::from(w) * u64::from(h) + (64 << 20));
    let mut decoder = reader()?;
    decoder.limits(limits);
    let img = decoder.decode().map_err(|e| anyhow::anyhow!("cannot decode image {}: {e}", path.display()))?;
    ensure!(img.width() > 0 && img.height() > 0, "image {} is empty (0 pixels)", path.display());
    if format == Some(image::ImageFormat::Jpeg) && !jpeg_is_complete(&bytes) {
        warn_once(
            path,
            "is a truncated JPEG (it ends before its image does): its missing part decodes gray; repair or replace it",
        );
    }
    Ok(pixels::to_rgb8(img))
}

/// Prints `warning: <path> <what>` on stderr, the first time only for each file (a data set's
/// images are read every epoch).
fn warn_once(path: &Path, what: &str) {
    static WARNED: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());
    let mut warned = WARNED.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if !warned.iter().any(|p| p == path) {
        warned.push(path.to_path_buf());
        eprintln!("warning: {}", crate::terminal::line(&format!("{} {what}", path.display())));
    }
}

/// Whether a JPEG's bytes hold its whole image: walking its segments from the start, the
/// entropy-coded data of every scan is followed by a marker and the image by EOI (`FF D9`). A file
/// whose segments cannot be walked counts as complete: the decoder judges it.
pub fn jpeg_is_complete(b: &[u8]) -> bool {
    if !b.starts_with(&[0xFF, 0xD8]) {
        return true;
    }
    let mut i = 2;
    loop {
        let (Some(&ff), Some(&marker)) = (b.get(i), b.get(i + 1)) else { return false };
        if ff != 0xFF {
            return true;
        }
        match marker {
            0xD9 => return true,
            // Fill bytes, and the markers without a length.
            0xFF => i += 1,
            0x01 | 0xD0..=0xD7 => i += 2,
            _ => {
                let (Some(&hi), Some(&lo)) = (b.get(i + 2), b.get(i + 3)) else { return false };
                i += 2 + usize::from(u16::from_be_bytes([hi, lo]));
                if marker == 0xDA {
                    // Entropy-coded data runs to the next FF that is neither stuffing (FF 00) nor a restart.
                    while i + 1 < b.len() && !(b[i] == 0xFF && b[i + 1] != 0x00 && !(0xD0..=0xD7).contains(&b[i + 1])) {
                        i += 1;
                    }
                }
            }
        }
    }
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
