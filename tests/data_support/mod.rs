//! Shared helpers of the data integration tests: generators of CIFAR files in the official binary layout.
#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};

/// Planar RGB pixels of generated record `i`: R = (i + x) mod 256, G = 8 y mod 256, B = (255 - i) mod 256
/// at pixel (x, y).
pub fn pixels(i: usize) -> Vec<u8> {
    let mut px = vec![0u8; 3072];
    for y in 0..32 {
        for x in 0..32 {
            px[y * 32 + x] = ((i + x) % 256) as u8;
            px[1024 + y * 32 + x] = ((8 * y) % 256) as u8;
            px[2048 + y * 32 + x] = (255 - i % 256) as u8;
        }
    }
    px
}

/// Bytes of a CIFAR-100 file with `n` records: coarse label `i % 20`, fine label `i % 100`, pixels(i).
pub fn cifar100_bytes(n: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(n * 3074);
    for i in 0..n {
        out.push((i % 20) as u8);
        out.push((i % 100) as u8);
        out.extend_from_slice(&pixels(i));
    }
    out
}

/// Bytes of a CIFAR-10 file with `n` records starting at record number `first`: label `(first + i) % 10`.
pub fn cifar10_bytes(first: usize, n: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(n * 3073);
    for i in first..first + n {
        out.push((i % 10) as u8);
        out.extend_from_slice(&pixels(i));
    }
    out
}

pub fn fine_names() -> String {
    (0..100).map(|i| format!("fine_{i}\n")).collect()
}

/// Writes `parent/cifar-100-binary/` with `train` and `test` records; returns the folder.
pub fn write_cifar100(parent: &Path, train: usize, test: usize) -> PathBuf {
    let dir = parent.join("cifar-100-binary");
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("train.bin"), cifar100_bytes(train)).unwrap();
    fs::write(dir.join("test.bin"), cifar100_bytes(test)).unwrap();
    fs::write(dir.join("fine_label_names.txt"), fine_names()).unwrap();
    fs::write(dir.join("coarse_label_names.txt"), (0..20).map(|i| format!("coarse_{i}\n")).collect::<String>())
        .unwrap();
    dir
}

/// Writes `parent/cifar-10-batches-bin/` with five training batches of `per_batch` records and a test
/// batch of `test` records; returns the folder.
pub fn write_cifar10(parent: &Path, per_batch: usize, test: usize) -> PathBuf {
    let dir = parent.join("cifar-10-batches-bin");
    fs::create_dir_all(&dir).unwrap();
    for b in 0..5 {
        fs::write(dir.join(format!("data_batch_{}.bin", b + 1)), cifar10_bytes(b * per_batch, per_batch)).unwrap();
    }
    fs::write(dir.join("test_batch.bin"), cifar10_bytes(0, test)).unwrap();
    let names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"];
    fs::write(dir.join("batches.meta.txt"), names.join("\n") + "\n\n").unwrap();
    dir
}
