//! CIFAR-10 / CIFAR-100 binary files: parsing, limits, resizing, and errors that name the file.

mod data_support;

use std::fs;
use std::path::Path;

use data_support::*;
use sweep::color::ColorSpace;
use sweep::data::{self, DataConfig, DatasetKind, ImageSource, prepare};

fn config(kind: DatasetKind, dir: &Path) -> DataConfig {
    DataConfig { kind, dir: dir.to_path_buf(), image_size: 32, train_images: 0, val_images: 0, data_seed: 0 }
}

fn read(src: &dyn ImageSource, i: usize) -> Vec<u8> {
    let mut out = vec![0u8; 3 * src.side() * src.side()];
    src.read_rgb(i, &mut out).unwrap();
    out
}

fn error_of(cfg: &DataConfig) -> String {
    format!("{:#}", data::open(cfg).unwrap_err())
}

#[test]
fn cifar100_parses_fine_labels_and_pixels() {
    let tmp = tempfile::tempdir().unwrap();
    let folder = write_cifar100(tmp.path(), 250, 40);
    // `dir` may be the parent or the folder itself.
    for dir in [tmp.path(), folder.as_path()] {
        let ds = data::open(&config(DatasetKind::Cifar100, dir)).unwrap();
        assert_eq!(ds.name, "cifar100");
        assert_eq!(ds.classes.len(), 100);
        assert_eq!(ds.classes[42], "fine_42");
        assert_eq!((ds.train.len(), ds.val.len(), ds.train.side()), (250, 40, 32));
        assert_eq!(ds.train.label(0), 0);
        assert_eq!(ds.train.label(137), 37, "fine label, not coarse");
        assert_eq!(ds.val.label(39), 39);
        let img = read(ds.train.as_ref(), 137);
        assert_eq!(img, pixels(137));
        // Known positions: R at (x=5, y=0) = 137 + 5; G at (0, 3) = 24; B = 255 - 137.
        assert_eq!((img[5], img[1024 + 3 * 32], img[2048 + 500]), (142, 24, 118));
    }
}

#[test]
fn cifar10_concatenates_the_five_batches_in_order() {
    let tmp = tempfile::tempdir().unwrap();
    write_cifar10(tmp.path(), 12, 7);
    let ds = data::open(&config(DatasetKind::Cifar10, tmp.path())).unwrap();
    assert_eq!(ds.classes, ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]);
    assert_eq!((ds.train.len(), ds.val.len()), (60, 7));
    for i in [0, 11, 12, 25, 59] {
        assert_eq!(ds.train.label(i), i % 10);
        assert_eq!(read(ds.train.as_ref(), i), pixels(i), "record {i}");
    }
    assert!(ds.train.read_rgb(60, &mut [0; 3072]).is_err());
}

#[test]
fn limits_take_the_first_records() {
    let tmp = tempfile::tempdir().unwrap();
    write_cifar10(tmp.path(), 10, 10);
    let mut cfg = config(DatasetKind::Cifar10, tmp.path());
    cfg.train_images = 23;
    cfg.val_images = 4;
    let ds = data::open(&cfg).unwrap();
    assert_eq!((ds.train.len(), ds.val.len()), (23, 4));
    assert_eq!(read(ds.train.as_ref(), 22), pixels(22));
    cfg.train_images = 1000; // more than there are: all
    assert_eq!(data::open(&cfg).unwrap().train.len(), 50);
}

#[test]
fn resizes_when_image_size_is_not_32() {
    let tmp = tempfile::tempdir().unwrap();
    let folder = write_cifar100(tmp.path(), 3, 3);
    // Record 1: a flat colour, which must stay flat at any size.
    let mut bytes = fs::read(folder.join("train.bin")).unwrap();
    let rec = &mut bytes[3074..2 * 3074];
    rec[2..1026].fill(200);
    rec[1026..2050].fill(100);
    rec[2050..3074].fill(50);
    fs::write(folder.join("train.bin"), &bytes).unwrap();
    for size in [64, 20] {
        let mut cfg = config(DatasetKind::Cifar100, tmp.path());
        cfg.image_size = size;
        let ds = data::open(&cfg).unwrap();
        assert_eq!(ds.train.side(), size);
        let img = read(ds.train.as_ref(), 1);
        let hw = size * size;
        assert!(img[..hw].iter().all(|&v| v == 200) && img[hw..2 * hw].iter().all(|&v| v == 100));
        assert!(img[2 * hw..].iter().all(|&v| v == 50));
        // Record 0's green channel is a vertical ramp 0..248: still increasing top to bottom.
        let img = read(ds.train.as_ref(), 0);
        let g = &img[hw..2 * hw];
        assert!(g[size / 2] < g[(size - 1) * size + size / 2]);
        let batch = prepare(ds.train.as_ref(), &[0, 1, 2], ColorSpace::Lab).unwrap();
        assert_eq!((batch.gray.len(), batch.chroma.len()), (3 * hw, 6 * hw));
    }
}

#[test]
fn truncated_file_is_an_error_naming_it() {
    let tmp = tempfile::tempdir().unwrap();
    let folder = write_cifar100(tmp.path(), 5, 2);
    let path = folder.join("train.bin");
    let mut bytes = fs::read(&path).unwrap();
    bytes.truncate(5 * 3074 - 1000);
    fs::write(&path, &bytes).unwrap();
    let msg = error_of(&config(DatasetKind::Cifar100, tmp.path()));
    assert!(msg.contains(&path.display().to_string()), "{msg}");
    assert!(msg.contains(&(5 * 3074 - 1000).to_string()) && msg.contains("3074"), "{msg}");
    assert!(msg.contains("truncated"), "{msg}");
}

#[test]
fn label_out_of_range_names_file_and_record() {
    let tmp = tempfile::tempdir().unwrap();
    let folder = write_cifar100(tmp.path(), 10, 10);
    let path = folder.join("test.bin");
    let mut bytes = fs::read(&path).unwrap();
    bytes[7 * 3074 + 1] = 100; // fine label 100 in record 7
    fs::write(&path, &bytes).unwrap();
    let msg = error_of(&config(DatasetKind::Cifar100, tmp.path()));
    assert!(msg.contains(&path.display().to_string()) && msg.contains("record 7"), "{msg}");
    assert!(msg.contains("100"), "{msg}");

    // A bad coarse label is caught too.
    bytes[7 * 3074 + 1] = 5;
    bytes[3 * 3074] = 20;
    fs::write(&path, &bytes).unwrap();
    let msg = error_of(&config(DatasetKind::Cifar100, tmp.path()));
    assert!(msg.contains("record 3") && msg.contains("coarse"), "{msg}");

    // CIFAR-10: label 10.
    let tmp = tempfile::tempdir().unwrap();
    let folder = write_cifar10(tmp.path(), 4, 4);
    let path = folder.join("data_batch_3.bin");
    let mut bytes = fs::read(&path).unwrap();
    bytes[2 * 3073] = 10;
    fs::write(&path, &bytes).unwrap();
    let msg = error_of(&config(DatasetKind::Cifar10, tmp.path()));
    assert!(msg.contains(&path.display().to_string()) && msg.contains("record 2"), "{msg}");
}

#[test]
fn missing_files_name_the_path_and_the_fetch_command() {
    let tmp = tempfile::tempdir().unwrap();
    // Nothing there at all.
    let msg = error_of(&config(DatasetKind::Cifar100, &tmp.path().join("nope")));
    assert!(msg.contains("nope") && msg.contains("sweep data fetch cifar100 --dir"), "{msg}");
    // An empty folder.
    let msg = error_of(&config(DatasetKind::Cifar100, tmp.path()));
    assert!(msg.contains("train.bin") && msg.contains("sweep data fetch cifar100 --dir"), "{msg}");
    // One file missing.
    let folder = write_cifar100(tmp.path(), 3, 3);
    fs::remove_file(folder.join("test.bin")).unwrap();
    let msg = error_of(&config(DatasetKind::Cifar100, tmp.path()));
    assert!(msg.contains(&folder.join("test.bin").display().to_string()), "{msg}");
    assert!(msg.contains("sweep data fetch cifar100 --dir"), "{msg}");
    // The class names file missing.
    fs::write(folder.join("test.bin"), cifar100_bytes(3)).unwrap();
    fs::remove_file(folder.join("fine_label_names.txt")).unwrap();
    let msg = error_of(&config(DatasetKind::Cifar100, tmp.path()));
    assert!(msg.contains("fine_label_names.txt") && msg.contains("fetch"), "{msg}");
    // CIFAR-10 missing its fourth batch.
    let tmp = tempfile::tempdir().unwrap();
    let folder = write_cifar10(tmp.path(), 2, 2);
    fs::remove_file(folder.join("data_batch_4.bin")).unwrap();
    let msg = error_of(&config(DatasetKind::Cifar10, tmp.path()));
    assert!(msg.contains("data_batch_4.bin") && msg.contains("sweep data fetch cifar10 --dir"), "{msg}");
}

#[test]
fn the_other_cifar_is_pointed_out() {
    let tmp = tempfile::tempdir().unwrap();
    write_cifar10(tmp.path(), 2, 2);
    let msg = error_of(&config(DatasetKind::Cifar100, tmp.path()));
    assert!(msg.contains("holds cifar10"), "{msg}");
}

#[test]
fn wrong_number_of_class_names_and_empty_files_are_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let folder = write_cifar100(tmp.path(), 3, 3);
    fs::write(folder.join("fine_label_names.txt"), "a\nb\n").unwrap();
    let msg = error_of(&config(DatasetKind::Cifar100, tmp.path()));
    assert!(msg.contains("fine_label_names.txt") && msg.contains("2 class names"), "{msg}");
    fs::write(folder.join("fine_label_names.txt"), fine_names()).unwrap();
    fs::write(folder.join("train.bin"), b"").unwrap();
    let msg = error_of(&config(DatasetKind::Cifar100, tmp.path()));
    assert!(msg.contains("train.bin") && msg.contains("empty"), "{msg}");
}

#[test]
fn a_limit_reads_only_the_records_it_keeps() {
    let tmp = tempfile::tempdir().unwrap();
    let folder = write_cifar100(tmp.path(), 100, 10);
    // A 30 GB train.bin (sparse: the first 100 records are real, the rest zeros with valid labels) and
    // a bad label far beyond the limit: a run on 64 images neither reads the file whole nor checks it.
    let path = folder.join("train.bin");
    let file = fs::OpenOptions::new().write(true).open(&path).unwrap();
    let records: u64 = 10_000_000;
    file.set_len(records * 3074).unwrap();
    std::os::unix::fs::FileExt::write_at(&file, &[0, 100], (records - 1) * 3074).unwrap();
    let mut cfg = config(DatasetKind::Cifar100, tmp.path());
    cfg.train_images = 64;
    let started = std::time::Instant::now();
    let ds = data::open(&cfg).unwrap();
    assert!(started.elapsed().as_secs() < 5, "took {:?}", started.elapsed());
    assert_eq!(ds.train.len(), 64);
    assert_eq!(read(ds.train.as_ref(), 63), pixels(63));
    // Without a limit every record is read, and the bad label found.
    fs::OpenOptions::new().write(true).open(&path).unwrap().set_len(101 * 3074).unwrap();
    let file = fs::OpenOptions::new().write(true).open(&path).unwrap();
    std::os::unix::fs::FileExt::write_at(&file, &[0, 100], 100 * 3074).unwrap();
    cfg.train_images = 0;
    assert!(error_of(&cfg).contains("record 100"), "{}", error_of(&cfg));
}
