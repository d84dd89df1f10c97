//! CIFAR-10 and CIFAR-100 in their official binary layout.
//!
//! - CIFAR-10: folder `cifar-10-batches-bin/` with `data_batch_1.bin` .. `data_batch_5.bin` (train),
//!   `test_batch.bin` (validation) and `batches.meta.txt` (class names, one a line). A record is one label
//!   byte followed by 3072 bytes of planar RGB 32x32.
//! - CIFAR-100: folder `cifar-100-binary/` with `train.bin`, `test.bin`, `fine_label_names.txt` and
//!   `coarse_label_names.txt`. A record is a coarse label byte, a fine label byte, then 3072 bytes. sweep
//!   uses the fine labels (100 classes).
//!
//! The configured `dir` may be the unpacked folder itself or its parent. Each file's size is checked
//! (a multiple of the record size), then the records in use are read into memory with one read and
//! their labels checked; images are then served from memory, resized with [`pixels::RESIZE_FILTER`]
//! when `image_size != 32`. The official test set is the validation split. `train_images` /
//! `val_images` keep the first N records, and only those are read (CIFAR-100's 150 MB `train.bin`
//! is not read whole for a run on 64 images).

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail, ensure};

use super::{DataConfig, DataSet, DatasetKind, ImageSource, pixels};

/// Side of a CIFAR image, in pixels.
pub const CIFAR_SIDE: usize = 32;
/// Bytes of pixels in one record (planar RGB 32x32).
pub const PIXEL_BYTES: usize = 3 * CIFAR_SIDE * CIFAR_SIDE;

/// The file layout of one CIFAR variant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// Which data set this is.
    pub kind: DatasetKind,
    /// Folder the official archive unpacks to.
    pub folder: &'static str,
    /// Training files, in order.
    pub train: &'static [&'static str],
    /// Test (validation) files, in order.
    pub test: &'static [&'static str],
    /// File with the class names of the labels sweep uses, one a line.
    pub names: &'static str,
    /// Other files the layout contains (checked for presence only).
    pub extra: &'static [&'static str],
    /// Bytes per record.
    pub record: usize,
    /// Offset of the label sweep uses within a record.
    pub label_offset: usize,
    /// Number of classes of that label.
    pub classes: usize,
    /// Other label bytes to range-check: (offset, number of values, what it is).
    pub other_labels: &'static [(usize, usize, &'static str)],
}

/// CIFAR-10's layout.
pub const CIFAR10: Layout = Layout {
    kind: DatasetKind::Cifar10,
    folder: "cifar-10-batches-bin",
    train: &["data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin"],
    test: &["test_batch.bin"],
    names: "batches.meta.txt",
    extra: &[],
    record: 1 + PIXEL_BYTES,
    label_offset: 0,
    classes: 10,
    other_labels: &[],
};

/// CIFAR-100's layout (fine labels).
pub const CIFAR100: Layout = Layout {
    kind: DatasetKind::Cifar100,
    folder: "cifar-100-binary",
    train: &["train.bin"],
    test: &["test.bin"],
    names: "fine_label_names.txt",
    extra: &["coarse_label_names.txt"],
    record: 2 + PIXEL_BYTES,
    label_offset: 1,
    classes: 100,
    other_labels: &[(0, 20, "coarse label")],
};

/// The layout of `kind`, or `None` if it is not a CIFAR kind.
pub fn layout(kind: DatasetKind) -> Option<&'static Layout> {
    match kind {
        DatasetKind::Cifar10 => Some(&CIFAR10),
        DatasetKind::Cifar100 => Some(&CIFAR100),
        DatasetKind::Synthetic | DatasetKind::Folder => None,
    }
}

impl Layout {
    /// Every file the layout must contain.
    pub fn files(&self) -> Vec<&'static str> {
        let mut files: Vec<&'static str> = self.train.iter().chain(self.test).copied().collect();
        files.push(self.names);
        files.extend(self.extra);
        files
    }

    fn fetch_hint(&self, dir: &Path) -> String {
        format!("run `sweep data fetch {} --dir {}` to download it", self.kind.name(), dir.display())
    }

    /// Checks that `folder` holds every file of the layout, data files with a non-zero size that is a
    /// multiple of the record size. Used by `fetch` to decide whether a download is needed; does not read
    /// the data.
    pub fn check_folder(&self, folder: &Path) -> anyhow::Result<()> {
        for name in self.files() {
            let path = folder.join(name);
            let meta = fs::metadata(&path).with_context(|| format!("missing file {}", path.display()))?;
            if name.ends_with(".bin") {
                check_size(&path, meta.len(), self.record)?;
            }
        }
        Ok(())
    }
}

fn check_size(path: &Path, size: u64, record: usize) -> anyhow::Result<()> {
    ensure!(size > 0, "{} is empty (0 bytes): it holds no {record}-byte records", path.display());
    ensure!(
        size.is_multiple_of(record as u64),
        "{} has {size} bytes, which is not a multiple of the record size {record} ({} whole records and {} \
         bytes over): the file looks truncated or is not a CIFAR file",
        path.display(),
        size / record as u64,
        size % record as u64
    );
    Ok(())
}

/// Finds the unpacked folder of `layout` given `dir`, which may be the folder itself or its parent.
pub fn locate(layout: &Layout, dir: &Path) -> anyhow::Result<PathBuf> {
    let child = dir.join(layout.folder);
    if child.is_dir() {
        return Ok(child);
    }
    if dir.join(layout.train[0]).is_file() || dir.file_name().is_some_and(|n| n == layout.folder) {
        return Ok(dir.to_path_buf());
    }
    if !dir.exists() {
        bail!("data folder {} does not exist: {}", dir.display(), layout.fetch_hint(dir));
    }
    if !dir.is_dir() {
        bail!("{} is not a folder: point `dir` at the folder holding {}/", dir.display(), layout.folder);
    }
    let other = if layout.kind == DatasetKind::Cifar10 { &CIFAR100 } else { &CIFAR10 };
    let mixup = if dir.join(other.folder).is_dir() || dir.join(other.train[0]).is_file() {
        format!(" ({} holds {} instead; check the data set kind)", dir.display(), other.kind.name())
    } else {
        String::new()
    };
    bail!(
        "missing file {}: neither {} nor its sub-folder {}/ holds a {} data set{mixup}; {}",
        child.join(layout.train[0]).display(),
        dir.display(),
        layout.folder,
        layout.kind.name(),
        layout.fetch_hint(dir)
    )
}

/// Reads the class names of `layout` from `folder` (one a line, blank lines ignored).
pub fn read_class_names(layout: &Layout, folder: &Path, dir: &Path) -> anyhow::Result<Vec<String>> {
    let path = folder.join(layout.names);
    if !path.is_file() {
        bail!("missing file {}: {}", path.display(), layout.fetch_hint(dir));
    }
    let text = fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
    let names: Vec<String> = text.lines().map(str::trim).filter(|l| !l.is_empty()).map(String::from).collect();
    ensure!(
        names.len() == layout.classes,
        "{} lists {} class names, {} has {}",
        path.display(),
        names.len(),
        layout.kind.name(),
        layout.classes
    );
    Ok(names)
}

/// One file's records in memory.
struct Chunk {
    path: PathBuf,
    bytes: Vec<u8>,
    /// Records of this file in use (after the limit).
    records: usize,
}

/// One split of a CIFAR data set held in memory.
pub struct CifarSource {
    chunks: Vec<Chunk>,
    layout: &'static Layout,
    len: usize,
    side: usize,
}

impl std::fmt::Debug for CifarSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CifarSource")
            .field("kind", &self.layout.kind)
            .field("files", &self.chunks.iter().map(|c| &c.path).collect::<Vec<_>>())
            .field("len", &self.len)
            .field("side", &self.side)
            .finish()
    }
}

impl CifarSource {
    /// Loads `files` (in order) from `folder`, keeping the first `limit` records (0 = all), serving images
    /// of `side` pixels. `dir` is the configured folder, named in "run fetch" hints.
    pub fn load(
        layout: &'static Layout,
        folder: &Path,
        files: &[&str],
        limit: usize,
        side: usize,
        dir: &Path,
    ) -> anyhow::Result<Self> {
        ensure!(side > 0, "image side must be positive");
        let mut chunks = Vec::new();
        let mut len = 0usize;
        for name in files {
            if limit > 0 && len >= limit {
                break;
            }
            let path = folder.join(name);
            if !path.is_file() {
                bail!("missing file {}: {}", path.display(), layout.fetch_hint(dir));
            }
            let size = fs::metadata(&path).with_context(|| format!("cannot read {}", path.display()))?.len();
            check_size(&path, size, layout.record)?;
            let count = usize::try_from(size / layout.record as u64).unwrap_or(usize::MAX);
            let records = if limit > 0 { count.min(limit - len) } else { count };
            let bytes = read_records(&path, records * layout.record)?;
            validate_labels(layout, &path, &bytes)?;
            len += records;
            chunks.push(Chunk { path, bytes, records });
        }
        Ok(CifarSource { chunks, layout, len, side })
    }

    fn record(&self, mut index: usize) -> anyhow::Result<(&Chunk, &[u8])> {
        for chunk in &self.chunks {
            if index < chunk.records {
                let r = self.layout.record;
                return Ok((chunk, &chunk.bytes[index * r..(index + 1) * r]));
            }
            index -= chunk.records;
        }
        bail!("CIFAR image index out of range ({} images)", self.len)
    }
}

/// The first `n` bytes of the file at `path` (its size was checked to hold them).
fn read_records(path: &Path, n: usize) -> anyhow::Result<Vec<u8>> {
    let mut bytes = vec![0u8; n];
    let mut file = fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    std::io::Read::read_exact(&mut file, &mut bytes).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(bytes)
}

fn validate_labels(layout: &Layout, path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let checks =
        std::iter::once((layout.label_offset, layout.classes, "label")).chain(layout.other_labels.iter().copied());
    for (offset, count, what) in checks {
        if let Some((i, rec)) =
            bytes.chunks_exact(layout.record).enumerate().find(|(_, rec)| rec[offset] as usize >= count)
        {
            bail!(
                "{}: record {i} (byte offset {}) has {what} {}, out of range for {} (0..={}): the file is \
                 corrupt or not a {} file",
                path.display(),
                i * layout.record,
                rec[offset],
                layout.kind.name(),
                count - 1,
                layout.kind.name()
            );
        }
    }
    Ok(())
}

impl ImageSource for CifarSource {
    fn len(&self) -> usize {
        self.len
    }

    fn side(&self) -> usize {
        self.side
    }

    fn label(&self, index: usize) -> usize {
        self.record(index).map(|(_, rec)| rec[self.layout.label_offset] as usize).unwrap_or(0)
    }

    fn item_name(&self, index: usize) -> String {
        let mut rest = index;
        for chunk in &self.chunks {
            if rest < chunk.records {
                return format!("{} record {rest}", chunk.path.display());
            }
            rest -= chunk.records;
        }
        format!("image {index}")
    }

    fn read_rgb(&self, index: usize, out: &mut [u8]) -> anyhow::Result<()> {
        let (chunk, rec) = self.record(index)?;
        let pixels = &rec[self.layout.record - PIXEL_BYTES..];
        pixels::resize_planar(pixels, CIFAR_SIDE, self.side, out)
            .with_context(|| format!("{}: image {index}", chunk.path.display()))
    }
}

/// Opens a CIFAR-10 or CIFAR-100 data set as a config describes.
pub fn open(cfg: &DataConfig) -> anyhow::Result<DataSet> {
    let Some(layout) = layout(cfg.kind) else {
        bail!("{} is not a CIFAR data set", cfg.kind.name());
    };
    let folder = locate(layout, &cfg.dir)?;
    let classes = read_class_names(layout, &folder, &cfg.dir)?;
    for name in layout.extra {
        let path = folder.join(name);
        if !path.is_file() {
            bail!("missing file {}: {}", path.display(), layout.fetch_hint(&cfg.dir));
        }
    }
    let train = CifarSource::load(layout, &folder, layout.train, cfg.train_images, cfg.image_size, &cfg.dir)?;
    let val = CifarSource::load(layout, &folder, layout.test, cfg.val_images, cfg.image_size, &cfg.dir)?;
    Ok(DataSet { name: layout.kind.name().to_string(), classes, train: Arc::new(train), val: Arc::new(val) })
}
