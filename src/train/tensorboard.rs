//! TensorBoard event files: a run's per-epoch scalars and sample sheet, written as it trains, so that
//! `tensorboard --logdir results/<sweep>` shows every run of a sweep live, named by variant and seed.
//!
//! Layout: `results/<sweep>/tb/<variant>/seed<N>/events.out.tfevents.<unix seconds>.<run id>.<pid>.<n>`:
//! the folder is the store's ([`crate::store::layout::tensorboard_dir`]), the file names in it are
//! TensorBoard's convention and ours. TensorBoard names a run by the folder of its event files
//! relative to the log directory, so runs appear as `tb/<variant>/seed<N>`. Each epoch adds one event
//! with a scalar per `metrics.csv` column (tag = column name, step = epoch: losses, every metric,
//! `lr`, `images_per_s`, `seconds`, and the judge's columns when there is one) and one with
//! `samples.png` as an image (tag `samples`); the file is flushed after each epoch, so a TensorBoard
//! watching it updates as the run trains.
//!
//! Resumption: each attempt of a run writes a new event file that starts with the epochs `metrics.csv`
//! kept (their scalars; the sample sheets of earlier epochs are not kept, so a resumed run's image
//! starts at its next epoch), then removes the older event files of the folder (earlier attempts, or
//! a run of an earlier config of that variant and seed). So the folder never holds an epoch twice,
//! and epochs that were rolled back (trained after the last checkpoint) vanish with the old file.
//!
//! Format: TFRecord framing (little-endian u64 length, masked CRC-32C of the length, the bytes, masked
//! CRC-32C of the bytes) around `tensorflow.Event` protocol buffers: `file_version = "brain.Event:2"`
//! first, then `Summary { Value { tag, simple_value } }` and `Summary { Value { tag, image: Image {
//! height, width, colorspace, encoded_image_string } } }`. Written by hand (a few dozen lines of
//! protobuf encoding): the crates that do it (`tensorboard-rs`) pull an old `protobuf` runtime and are
//! unmaintained, and `crc32c` would be a dependency for a 256-entry table.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};

use crate::store::metrics_file::{COLUMNS, MetricsRow};

/// Start of every event file's name: TensorBoard reads the files whose names contain `tfevents`.
pub const FILE_PREFIX: &str = "events.out.tfevents.";
/// The image tag of the sample sheet.
pub const SAMPLES_TAG: &str = "samples";

/// The TensorBoard view of one run, kept up to date by the trainer (see the module docs).
pub struct RunBoard {
    events: EventWriter,
}

impl RunBoard {
    /// Starts the run's event file in `dir` for this attempt of run `id`, with the scalars of the epochs
    /// `kept` in `metrics.csv`, and removes the folder's older event files.
    pub fn open(dir: &Path, id: &str, kept: &[MetricsRow]) -> Result<RunBoard> {
        let mut events = EventWriter::create(dir, id)?;
        for row in kept {
            events.scalars(row.epoch as i64, &scalars(row))?;
        }
        events.flush()?;
        for entry in std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))? {
            let path = entry.with_context(|| format!("cannot list {}", dir.display()))?.path();
            let is_events = path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with(FILE_PREFIX));
            if is_events && path != events.path {
                std::fs::remove_file(&path).with_context(|| format!("cannot remove {}", path.display()))?;
            }
        }
        Ok(RunBoard { events })
    }

    /// Adds a finished epoch: its `metrics.csv` row and the sample sheet (a PNG file), then flushes.
    pub fn epoch(&mut self, row: &MetricsRow, samples_png: &Path) -> Result<()> {
        let step = row.epoch as i64;
        self.events.scalars(step, &scalars(row))?;
        let png = std::fs::read(samples_png).with_context(|| format!("cannot read {}", samples_png.display()))?;
        let (width, height) = image::ImageReader::new(std::io::Cursor::new(&png))
            .with_guessed_format()
            .context("reading the sample sheet")?
            .into_dimensions()
            .with_context(|| format!("{} is not a readable image", samples_png.display()))?;
        self.events.image(step, SAMPLES_TAG, &png, width, height)?;
        self.events.flush()
    }
}

/// `(column, value)` of every column of a `metrics.csv` row that has a value, but the epoch.
fn scalars(row: &MetricsRow) -> Vec<(&'static str, f32)> {
    COLUMNS.iter().filter(|c| **c != "epoch").filter_map(|c| row.get(c).map(|v| (*c, v as f32))).collect()
}

/// One event file, appended to.
pub struct EventWriter {
    file: File,
    path: PathBuf,
}

impl EventWriter {
    /// Creates `dir/events.out.tfevents.<unix seconds>.<name>.<pid>.<n>` (and `dir`) with its
    /// `file_version` event. The time comes first because TensorBoard reads a folder's event files in
    /// name order; the process id and a count within the process keep two files of one second apart.
    pub fn create(dir: &Path, name: &str) -> Result<EventWriter> {
        static FILES: AtomicU64 = AtomicU64::new(0);
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create folder {}", dir.display()))?;
        let secs = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        let (pid, n) = (std::process::id(), FILES.fetch_add(1, Ordering::Relaxed));
        let path = dir.join(format!("{FILE_PREFIX}{secs:010}.{name}.{pid}.{n}"));
        let file = File::create(&path).with_context(|| format!("cannot create {}", path.display()))?;
        let mut writer = EventWriter { file, path };
        writer.write(&event(0, |e| field_bytes(e, 3, b"brain.Event:2")))?;
        Ok(writer)
    }

    /// One event at `step` with a scalar summary value per `(tag, value)`.
    pub fn scalars(&mut self, step: i64, values: &[(&str, f32)]) -> Result<()> {
        let mut summary = Vec::new();
        for (tag, value) in values {
            let mut v = Vec::new();
            field_bytes(&mut v, 1, tag.as_bytes());
            key(&mut v, 2, 5);
            v.extend_from_slice(&value.to_le_bytes());
            field_bytes(&mut summary, 1, &v);
        }
        self.write(&event(step, |e| field_bytes(e, 5, &summary)))
    }

    /// One event at `step` with an image summary value: `png` is the encoded image, `width x height` RGB.
    pub fn image(&mut self, step: i64, tag: &str, png: &[u8], width: u32, height: u32) -> Result<()> {
        let mut img = Vec::new();
        for (field, value) in [(1, height as u64), (2, width as u64), (3, 3)] {
            key(&mut img, field, 0);
            varint(&mut img, value);
        }
        field_bytes(&mut img, 4, png);
        let mut v = Vec::new();
        field_bytes(&mut v, 1, tag.as_bytes());
        field_bytes(&mut v, 4, &img);
        let mut summary = Vec::new();
        field_bytes(&mut summary, 1, &v);
        self.write(&event(step, |e| field_bytes(e, 5, &summary)))
    }

    /// Pushes what was written to the file, so that a reader sees whole records.
    pub fn flush(&mut self) -> Result<()> {
        self.file.flush().with_context(|| format!("cannot write {}", self.path.display()))
    }

    /// Appends one record.
    fn write(&mut self, data: &[u8]) -> Result<()> {
        let len = (data.len() as u64).to_le_bytes();
        let mut record = Vec::with_capacity(data.len() + 16);
        record.extend_from_slice(&len);
        record.extend_from_slice(&masked_crc(&len).to_le_bytes());
        record.extend_from_slice(data);
        record.extend_from_slice(&masked_crc(data).to_le_bytes());
        self.file.write_all(&record).with_context(|| format!("cannot write {}", self.path.display()))
    }
}

/// An `Event` with the current wall time, `step`, and the fields `what` adds.
fn event(step: i64, what: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let wall = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0);
    let mut e = Vec::new();
    key(&mut e, 1, 1);
    e.extend_from_slice(&wall.to_le_bytes());
    key(&mut e, 2, 0);
    varint(&mut e, step as u64);
    what(&mut e);
    e
}

fn key(out: &mut Vec<u8>, field: u32, wire: u32) {
    varint(out, ((field << 3) | wire) as u64);
}

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// A length-delimited field (strings, bytes, embedded messages).
fn field_bytes(out: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    key(out, field, 2);
    varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), as TFRecord uses.
fn crc32c(data: &[u8]) -> u32 {
    const TABLE: [u32; 256] = {
        let mut table = [0u32; 256];
        let mut i = 0;
        while i < 256 {
            let mut c = i as u32;
            let mut k = 0;
            while k < 8 {
                c = if c & 1 != 0 { (c >> 1) ^ 0x82F6_3B78 } else { c >> 1 };
                k += 1;
            }
            table[i] = c;
            i += 1;
        }
        table
    };
    !data.iter().fold(!0u32, |c, &b| TABLE[((c ^ b as u32) & 0xFF) as usize] ^ (c >> 8))
}

/// TFRecord's masked CRC: rotated right by 15 bits plus a constant.
fn masked_crc(data: &[u8]) -> u32 {
    crc32c(data).rotate_right(15).wrapping_add(0xA282_EAD8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_and_its_mask_match_the_references() {
        // The CRC-32C check value (RFC 3720's catalogue) and iSCSI's 32 zero bytes.
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
        assert_eq!(crc32c(&[0u8; 32]), 0x8A91_36AA);
        assert_eq!(masked_crc(b""), 0u32.rotate_right(15).wrapping_add(0xA282_EAD8));
    }

    #[test]
    fn varints_and_fields_are_protobuf() {
        let mut v = Vec::new();
        varint(&mut v, 300);
        assert_eq!(v, [0xAC, 0x02]);
        let mut f = Vec::new();
        field_bytes(&mut f, 3, b"ab");
        assert_eq!(f, [0x1A, 2, b'a', b'b']);
        // A negative step is ten bytes of two's complement, as int64 wants.
        let mut n = Vec::new();
        varint(&mut n, -1i64 as u64);
        assert_eq!(n.len(), 10);
    }
}
