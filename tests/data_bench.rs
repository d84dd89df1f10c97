//! Speed of the CIFAR path: a 50,000-image CIFAR-100 train file (real size, 153.7 MB, generated in a
//! temporary folder) opened and turned into model-ready Lab tensors with `prepare` on every index.
//!
//! Run (release profile, the figure to report):
//! `cargo test --release --test data_bench -- --ignored --nocapture`

mod data_support;

use std::fs;
use std::time::Instant;

use sweep::color::ColorSpace;
use sweep::data::{self, DataConfig, DatasetKind, prepare};

#[test]
#[ignore = "benchmark: run with --release --ignored --nocapture"]
fn cifar100_train_file_to_lab_tensors() {
    let tmp = tempfile::tempdir().unwrap();
    // The layout with a small test file; the train file is replaced by one of the real size below.
    let dir = data_support::write_cifar100(tmp.path(), 0, 10);
    // Varied pixels (not a constant pattern): a cheap hash of position and record.
    let mut bytes = Vec::with_capacity(50_000 * 3074);
    for i in 0..50_000u32 {
        bytes.push((i % 20) as u8);
        bytes.push((i % 100) as u8);
        bytes.extend((0..3072u32).map(|p| (p.wrapping_mul(2_654_435_761) ^ i.wrapping_mul(40_503)).to_le_bytes()[1]));
    }
    fs::write(dir.join("train.bin"), &bytes).unwrap();
    drop(bytes);
    let cfg = DataConfig {
        kind: DatasetKind::Cifar100,
        dir: tmp.path().to_path_buf(),
        image_size: 32,
        train_images: 0,
        val_images: 0,
        data_seed: 0,
    };
    let threads = rayon::current_num_threads();
    let t = Instant::now();
    let ds = data::open(&cfg).unwrap();
    let open_s = t.elapsed().as_secs_f64();
    assert_eq!(ds.train.len(), 50_000);
    let indices: Vec<usize> = (0..50_000).collect();
    // The read phase alone (parallel copies out of the in-memory file), for the breakdown.
    let t = Instant::now();
    let mut rgb = vec![0u8; 50_000 * 3072];
    {
        use rayon::prelude::*;
        rgb.par_chunks_mut(3072).enumerate().for_each(|(i, out)| ds.train.read_rgb(i, out).unwrap());
    }
    let read_s = t.elapsed().as_secs_f64();
    drop(rgb);
    let mut times = Vec::new();
    for _ in 0..3 {
        let t = Instant::now();
        let batch = prepare(ds.train.as_ref(), &indices, ColorSpace::Lab).unwrap();
        times.push(t.elapsed().as_secs_f64());
        assert_eq!((batch.n, batch.gray.len(), batch.chroma.len()), (50_000, 50_000 * 1024, 50_000 * 2048));
        assert!(batch.gray.iter().all(|v| (0.0..=1.0001).contains(v)));
        drop(batch);
    }
    times.sort_by(f64::total_cmp);
    println!(
        "CIFAR-100 train (50,000 images, 153.7 MB), {threads} threads, {} build: open (read + validate) {:.3} s; \
         read_rgb of all {:.3} s; prepare all -> Lab tensors: best {:.3} s, median {:.3} s, worst {:.3} s",
        if cfg!(debug_assertions) { "debug" } else { "release" },
        open_s,
        read_s,
        times[0],
        times[1],
        times[2]
    );
}
