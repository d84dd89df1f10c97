//! The data path of photo folders (issue 16): how fast JPEGs become training batches, against the
//! training step at the same image size. `bench/data_path.sh` runs every part; see bench/RESULTS.md.
//!
//! Parts (one per invocation):
//! - `make DIR [--count N]`: writes N JPEGs (default 3000) into `DIR/class0..9/`, each a random crop of
//!   one of the photos in `/work/shared/photos` (or `$PHOTOS`), resized to ImageNet's typical 500 px
//!   longer side and encoded at a random quality from 75 to 95. Deterministic.
//! - `data DIR --size S [--batches N] [--augment none|resized]`: images/s of the trainer's data path
//!   (`prepare_augmented` + `host_batch`: decode, crop, resize, flip, colour conversion, targets) on
//!   batches of 64 in shuffled order, on rayon pools of 1 and 2 threads (`--threads LIST`), alternated
//!   round by round so that both see the same machine load.
//! - `decode DIR --size S [--files N]`: one thread, per file: sweep's decode ([`decode::load_region`], JPEG
//!   DCT scaling) against the `image` crate's full decode and the same centre crop and resize,
//!   alternated file by file.
//! - `open DIR`: seconds to open the folder as a data set: a fresh scan, then from the cached file list.
//! - `step --size S [--batch B] [--steps N]`: images/s of the trainer's step on the standard model at
//!   S x S pixels (the CPU's side of the comparison).
//!
//! Lines starting with `RESULT` are the measurements.

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::tensor::Device;
use image::codecs::jpeg::JpegEncoder;
use sweep::color::ColorSpace;
use sweep::data::augment::{Rect, resized_crop};
use sweep::data::{self, Augment, Crop, DataConfig, DatasetKind, decode, pixels, prepare_augmented};
use sweep::rng::Rng;
use sweep::spec::{RunConfig, Spec, plan};
use sweep::store::layout::file_lists_dir;
use sweep::train::objective::Objective;
use sweep::train::trainer::{model_config, optimizer, seeded, train_step};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const BATCH: usize = 64;

/// `--name value` of the command line, parsed, or `default`.
fn flag<T: std::str::FromStr>(args: &[String], name: &str, default: T) -> T {
    match args.iter().position(|a| a == name) {
        Some(i) => args.get(i + 1).and_then(|v| v.parse().ok()).unwrap_or_else(|| panic!("{name} needs a value")),
        None => default,
    }
}

fn main() {
    sweep::allocator::keep_freed_memory();
    // cargo bench passes --bench to every harness = false target.
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    let dir = || PathBuf::from(args.get(1).expect("a folder after the part's name"));
    let size = flag(&args, "--size", 64usize);
    match args.first().map(String::as_str) {
        Some("make") => make(&dir(), flag(&args, "--count", 3000)),
        Some("data") => {
            let threads: String = flag(&args, "--threads", "1,2".to_string());
            let threads = threads.split(',').map(|t| t.parse().expect("--threads 1,2")).collect::<Vec<usize>>();
            let augment: String = flag(&args, "--augment", "none".to_string());
            data_rate(&dir(), size, flag(&args, "--batches", 8), &threads, &augment)
        }
        Some("decode") => decode_rate(&dir(), size, flag(&args, "--files", 200)),
        Some("open") => open_time(&dir()),
        Some("step") => step_rate(size, flag(&args, "--batch", 16), flag(&args, "--steps", 3)),
        other => panic!("unknown part {other:?}: make, data, decode, open or step"),
    }
}

/// Writes `count` ImageNet-like JPEGs into `dir/class<k>/`.
fn make(dir: &Path, count: usize) {
    let photos = std::env::var("PHOTOS").unwrap_or_else(|_| "/work/shared/photos".into());
    let mut sources: Vec<image::RgbImage> = std::fs::read_dir(&photos)
        .unwrap_or_else(|e| panic!("{photos}: {e}"))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| data::folder::is_image_file(p))
        .map(|p| image::open(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display())).to_rgb8())
        .collect();
    sources.sort_by_key(|img| img.dimensions());
    assert!(!sources.is_empty(), "no photos in {photos}");
    let mut rng = Rng::new(16);
    let (mut bytes, started) = (0u64, Instant::now());
    for i in 0..count {
        let src = &sources[i % sources.len()];
        let rect = resized_crop(&mut rng, src.width(), src.height(), [0.3, 1.0], [0.75, 4.0 / 3.0]);
        let long = 500.0 / rect.w.max(rect.h) as f64;
        let (w, h) = ((rect.w as f64 * long).round() as u32, (rect.h as f64 * long).round() as u32);
        let cut = image::imageops::crop_imm(src, rect.x, rect.y, rect.w, rect.h).to_image();
        let img = image::imageops::resize(&cut, w, h, pixels::RESIZE_FILTER);
        let path = dir.join(format!("class{}", i % 10)).join(format!("img{i:05}.jpg"));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let mut out = Vec::new();
        JpegEncoder::new_with_quality(&mut out, 75 + rng.below(21) as u8).encode_image(&img).unwrap();
        bytes += out.len() as u64;
        std::fs::write(&path, out).unwrap();
    }
    println!(
        "wrote {count} JPEGs ({:.1} MB, mean {:.0} KB) into {} in {:.1} s",
        bytes as f64 / 1e6,
        bytes as f64 / count.max(1) as f64 / 1e3,
        dir.display(),
        started.elapsed().as_secs_f64()
    );
}

/// Every image of the folder `dir` at `size` pixels.
fn folder_config(dir: &Path, size: usize) -> DataConfig {
    DataConfig {
        kind: DatasetKind::Folder,
        dir: dir.to_path_buf(),
        image_size: size,
        train_images: 0,
        val_images: 0,
        data_seed: 0,
    }
}

fn folder(dir: &Path, size: usize) -> data::DataSet {
    data::open(&folder_config(dir, size)).unwrap_or_else(|e| panic!("{e:#}"))
}

/// The default run config at `size` pixels (the standard model, Lab, l2).
fn run_config(size: usize) -> RunConfig {
    let text = format!("[sweep]\nname = \"bench\"\n[base]\nimage_size = {size}\n");
    let spec = Spec::from_str(Path::new("bench.toml"), text).expect("valid spec");
    plan(&spec, &[]).expect("valid plan").runs.remove(0).settings
}

/// Images/s of prepare_augmented + host_batch on pools of each thread count, alternated.
fn data_rate(dir: &Path, size: usize, batches: usize, threads: &[usize], augment: &str) {
    let ds = folder(dir, size);
    let cfg = run_config(size);
    let objective = Objective::new(&cfg, Vec::new);
    let crop = match augment {
        "none" => Crop::None,
        "resized" => Crop::Resized { scale: [0.08, 1.0], ratio: [0.75, 4.0 / 3.0] },
        other => panic!("--augment {other}: none or resized"),
    };
    let augment = Augment { flip: crop != Crop::None, crop };
    let pools: Vec<rayon::ThreadPool> =
        threads.iter().map(|&t| rayon::ThreadPoolBuilder::new().num_threads(t).build().unwrap()).collect();
    let mut order: Vec<usize> = (0..ds.train.len()).collect();
    Rng::new(1).shuffle(&mut order);
    let mut rates = vec![Vec::new(); threads.len()];
    // Seconds in host_batch (targets; outside prepare's parallel decode) per thread count.
    let mut targets = vec![0.0f64; threads.len()];
    let mut next = 0;
    for round in 0..3 {
        for (k, pool) in pools.iter().enumerate() {
            let epoch = augment.epoch(0, round);
            let started = Instant::now();
            for _ in 0..batches {
                let idx: Vec<usize> = (0..BATCH).map(|j| order[(next + j) % order.len()]).collect();
                next += BATCH;
                let batch = pool.install(|| prepare_augmented(ds.train.as_ref(), &idx, ColorSpace::Lab, &epoch));
                let t = Instant::now();
                drop(pool.install(|| objective.host_batch(&batch.unwrap_or_else(|e| panic!("{e:#}")))));
                targets[k] += t.elapsed().as_secs_f64();
            }
            let seconds = started.elapsed().as_secs_f64();
            rates[k].push((batches * BATCH) as f64 / seconds);
        }
    }
    for ((t, r), host) in threads.iter().zip(&rates).zip(&targets) {
        let mut sorted = r.clone();
        sorted.sort_by(f64::total_cmp);
        let total: f64 = r.iter().map(|rate| (batches * BATCH) as f64 / rate).sum();
        println!(
            "RESULT data_img_per_s size {size} threads {t} augment {} median {:.1} (rounds {:.1?}, {} batches of \
             {BATCH} each; host_batch {:.0}% of the time)",
            if augment.is_identity() { "none" } else { "resized+flip" },
            sorted[1],
            r,
            batches,
            100.0 * host / total
        );
    }
}

/// One thread: sweep's decode against a full decode + the same centre crop and resize, alternated.
fn decode_rate(dir: &Path, size: usize, files: usize) {
    let ds = folder(dir, size);
    let src = ds.train.as_ref();
    let paths: Vec<PathBuf> = (0..files.min(src.len())).map(|i| PathBuf::from(src.item_name(i))).collect();
    let (mut scaled, mut full) = (0.0f64, 0.0f64);
    for path in &paths {
        let t = Instant::now();
        let a = decode::load_region(path, &mut Rect::centre_square, size).unwrap();
        scaled += t.elapsed().as_secs_f64();
        let t = Instant::now();
        let img = image::open(path).unwrap().to_rgb8();
        let b = pixels::square_resize(&img, size);
        full += t.elapsed().as_secs_f64();
        assert_eq!(a.dimensions(), b.dimensions());
    }
    let n = paths.len() as f64;
    println!(
        "RESULT decode_img_per_s size {size} one thread: reduced-size decode {:.1}, full decode {:.1}, ratio {:.2} ({} files)",
        n / scaled,
        n / full,
        full / scaled,
        paths.len()
    );
}

/// Seconds to open the folder: scanned, then through a file-list cache (written by the first open).
fn open_time(dir: &Path) {
    let cache = tempfile::tempdir().unwrap();
    let lists = file_lists_dir(cache.path());
    let cfg = folder_config(dir, 64);
    for what in ["scan, writing the cache", "cached list", "scan (no cache)"] {
        let t = Instant::now();
        let ds = match what {
            "scan (no cache)" => data::open(&cfg),
            _ => data::open_with(&cfg, Some(&lists)),
        }
        .unwrap_or_else(|e| panic!("{e:#}"));
        let cached = std::fs::read_dir(&lists).map(|d| d.count()).unwrap_or(0);
        println!(
            "RESULT open_seconds {what}: {:.2} s for {} files, {} classes ({cached} cache file)",
            t.elapsed().as_secs_f64(),
            ds.train.len() + ds.val.len(),
            ds.classes.len()
        );
    }
}

/// Images/s of the trainer's step on the standard model at `size` pixels, batch `batch`.
fn step_rate(size: usize, batch: usize, steps: usize) {
    let cfg = run_config(size);
    let objective = Objective::new(&cfg, Vec::new);
    let device = Device::flex().autodiff();
    let model_cfg = model_config(&cfg, &objective, 0);
    let model: Result<_, std::convert::Infallible> = seeded(&device, 0, || Ok(model_cfg.init(&device)));
    let mut model = model.unwrap();
    let mut optim = optimizer(&cfg.train.optimizer);
    let ds = data::open(&DataConfig {
        kind: DatasetKind::Synthetic,
        dir: "".into(),
        image_size: size,
        train_images: batch,
        val_images: 1,
        data_seed: 0,
    })
    .unwrap();
    let idx: Vec<usize> = (0..batch).collect();
    let prepared = data::prepare(ds.train.as_ref(), &idx, ColorSpace::Lab).unwrap();
    let mut seconds = Vec::new();
    for s in 0..steps + 1 {
        let host = objective.host_batch(&prepared);
        let t = Instant::now();
        let (m, loss) = train_step(model, &mut optim, &objective, host, &device, 1e-3);
        model = m;
        assert!(loss.into_scalar::<f32>().is_finite());
        // The first step allocates and warms up.
        if s > 0 {
            seconds.push(t.elapsed().as_secs_f64());
        }
    }
    let total: f64 = seconds.iter().sum();
    println!(
        "RESULT step_img_per_s size {size} batch {batch} threads {}: {:.2} ({steps} steps, {:.1} s each)",
        rayon::current_num_threads(),
        (steps * batch) as f64 / total,
        total / steps as f64
    );
}
