//! ImageNet-style class folders: scanning, the hash split, decoding and resizing, and errors.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use image::{ImageBuffer, Luma, Rgb, RgbImage, Rgba};
use sweep::data::folder::{FolderSource, is_validation};
use sweep::data::{self, DataConfig, DatasetKind, ImageSource};

fn config(dir: &Path, size: usize) -> DataConfig {
    DataConfig {
        kind: DatasetKind::Folder,
        dir: dir.to_path_buf(),
        image_size: size,
        train_images: 0,
        val_images: 0,
        data_seed: 0,
    }
}

fn read(src: &dyn ImageSource, i: usize) -> anyhow::Result<Vec<u8>> {
    let mut out = vec![0u8; 3 * src.side() * src.side()];
    src.read_rgb(i, &mut out)?;
    Ok(out)
}

fn flat(w: u32, h: u32, c: [u8; 3]) -> RgbImage {
    RgbImage::from_pixel(w, h, Rgb(c))
}

fn save(img: &RgbImage, path: &Path) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    // Format from the extension, whatever its case.
    let ext = path.extension().unwrap().to_string_lossy().to_ascii_lowercase();
    let format = if ext == "png" { image::ImageFormat::Png } else { image::ImageFormat::Jpeg };
    img.save_with_format(path, format).unwrap();
}

/// The split of every image of the opened data set (path relative to `root` -> "train" / "val"), checked
/// against the public split function.
fn splits(root: &Path, cfg: &DataConfig) -> BTreeMap<String, &'static str> {
    let ds = data::open(cfg).unwrap();
    let mut map = BTreeMap::new();
    for (split, src) in [("train", &ds.train), ("val", &ds.val)] {
        for i in 0..src.len() {
            let path = PathBuf::from(src.item_name(i));
            let rel = path.strip_prefix(root).unwrap().to_string_lossy().replace('\\', "/");
            assert_eq!(is_validation(&rel, cfg.data_seed), split == "val", "{rel}");
            assert!(map.insert(rel, split).is_none());
        }
    }
    map
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn scans_classes_extensions_and_sizes() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    save(&flat(40, 30, [250, 10, 10]), &root.join("red/a.PNG"));
    save(&flat(30, 40, [250, 10, 10]), &root.join("red/b.Jpg"));
    save(&flat(30, 40, [250, 10, 10]), &root.join("red/nested/c.jpeg"));
    save(&flat(17, 17, [10, 10, 250]), &root.join("blue/x.png"));
    fs::write(root.join("blue/notes.txt"), "not an image").unwrap();
    fs::write(root.join("blue/.hidden.png"), "hidden, skipped").unwrap();
    fs::create_dir_all(root.join(".cache")).unwrap();
    let mut cfg = config(root, 16);
    // All four images, whatever the split.
    let ds = data::open(&cfg).unwrap();
    assert_eq!(ds.name, "folder");
    assert_eq!(ds.classes, ["blue", "red"]);
    assert_eq!(ds.train.len() + ds.val.len(), 4);
    for src in [&ds.train, &ds.val] {
        for i in 0..src.len() {
            let img = read(src.as_ref(), i).unwrap();
            assert_eq!(img.len(), 3 * 16 * 16);
            let mean_r = img[..256].iter().map(|&v| v as f32).sum::<f32>() / 256.0;
            let expect_red = src.label(i) == 1;
            assert_eq!(mean_r > 128.0, expect_red, "image {i} label {}", src.label(i));
        }
    }
    // Limits pick a deterministic subset.
    cfg.train_images = 2;
    let a = data::open(&cfg).unwrap();
    let b = data::open(&cfg).unwrap();
    assert_eq!(a.train.len(), 2.min(ds.train.len()));
    assert_eq!(
        (0..a.train.len()).map(|i| read(a.train.as_ref(), i).unwrap()).collect::<Vec<_>>(),
        (0..b.train.len()).map(|i| read(b.train.as_ref(), i).unwrap()).collect::<Vec<_>>()
    );
}

#[test]
fn hash_split_is_about_ten_percent_and_stable_when_files_are_added() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let tiny = flat(4, 4, [1, 2, 3]);
    for i in 0..300 {
        save(&tiny, &root.join(format!("class{}/img{i:03}.png", i % 3)));
    }
    let cfg = config(root, 4);
    let before = splits(root, &cfg);
    let val = before.values().filter(|s| **s == "val").count();
    assert!((15..=50).contains(&val), "{val} of 300 in validation");
    // Add files (to existing and new classes): no existing file changes split.
    for i in 300..400 {
        save(&tiny, &root.join(format!("class{}/img{i:03}.png", i % 4)));
    }
    let after = splits(root, &cfg);
    assert_eq!(after.len(), 400);
    for (path, split) in &before {
        assert_eq!(after[path], *split, "{path} moved from {split}");
    }
    // Another seed gives another split.
    let mut other = cfg.clone();
    other.data_seed = 99;
    let moved = before.keys().filter(|p| is_validation(p, 99) != is_validation(p, 0)).count();
    assert!(moved > 10, "seed changes the split ({moved} moved)");
    let _ = data::open(&other).unwrap();
}

#[test]
fn explicit_train_and_val_folders_are_used() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    for i in 0..5 {
        save(&flat(8, 8, [200, 0, 0]), &root.join(format!("train/cat/{i}.png")));
        save(&flat(8, 8, [0, 200, 0]), &root.join(format!("train/dog/{i}.png")));
    }
    save(&flat(8, 8, [0, 200, 0]), &root.join("val/dog/v.png"));
    let ds = data::open(&config(root, 8)).unwrap();
    assert_eq!(ds.classes, ["cat", "dog"]);
    assert_eq!((ds.train.len(), ds.val.len()), (10, 1));
    assert_eq!(ds.val.label(0), 1);
    // A validation class that training lacks is an error naming it.
    save(&flat(8, 8, [0, 0, 200]), &root.join("val/bird/b.png"));
    let msg = format!("{:#}", data::open(&config(root, 8)).unwrap_err());
    assert!(msg.contains("bird"), "{msg}");
}

#[test]
fn gray_rgba_and_16_bit_images_become_rgb8() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    fs::create_dir_all(root.join("c")).unwrap();
    ImageBuffer::<Luma<u8>, _>::from_pixel(10, 10, Luma([77])).save(root.join("c/gray.png")).unwrap();
    ImageBuffer::<Rgba<u8>, _>::from_pixel(10, 10, Rgba([10, 20, 30, 128])).save(root.join("c/rgba.png")).unwrap();
    ImageBuffer::<Rgb<u16>, _>::from_pixel(10, 10, Rgb([65535, 32896, 0])).save(root.join("c/deep.png")).unwrap();
    let files = vec![(root.join("c/gray.png"), 0), (root.join("c/rgba.png"), 0), (root.join("c/deep.png"), 0)];
    let src = FolderSource::new(files, 6);
    let px = |i| {
        let img = read(&src, i).unwrap();
        [img[0], img[36], img[72]]
    };
    assert_eq!(px(0), [77, 77, 77]);
    assert_eq!(px(1), [10, 20, 30]);
    assert_eq!(px(2), [255, 128, 0]);
}

#[test]
fn centre_crop_keeps_the_middle() {
    let tmp = tempfile::tempdir().unwrap();
    // 90x30: left and right thirds black, middle third white -> the square crop is all white.
    let img = RgbImage::from_fn(90, 30, |x, _| if (30..60).contains(&x) { Rgb([255; 3]) } else { Rgb([0; 3]) });
    save(&img, &tmp.path().join("c/wide.png"));
    let src = FolderSource::new(vec![(tmp.path().join("c/wide.png"), 0)], 12);
    assert!(read(&src, 0).unwrap().iter().all(|&v| v >= 250));
}

#[test]
fn corrupt_images_are_errors_naming_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let good = root.join("c/good.jpg");
    save(&RgbImage::from_fn(64, 64, |x, y| Rgb([x as u8 * 4, y as u8 * 4, 128])), &good);
    let truncated = root.join("c/truncated.jpg");
    let bytes = fs::read(&good).unwrap();
    fs::write(&truncated, &bytes[..bytes.len() / 3]).unwrap();
    let garbage = root.join("c/garbage.JPG");
    fs::write(&garbage, b"this is not a JPEG at all").unwrap();
    let src = FolderSource::new(vec![(good.clone(), 0), (truncated.clone(), 0), (garbage.clone(), 0)], 16);
    read(&src, 0).unwrap();
    for (i, path) in [(1, &truncated), (2, &garbage)] {
        let msg = format!("{:#}", read(&src, i).unwrap_err());
        assert!(msg.contains(&path.display().to_string()), "{msg}");
        assert!(msg.contains("decode") || msg.contains("format"), "{msg}");
        assert!(msg.contains("repair, replace or delete it"), "{msg}");
    }
    // Through prepare as well: the batch fails, naming the file.
    let msg = format!("{:#}", data::prepare(&src, &[0, 2], sweep::color::ColorSpace::Lab).unwrap_err());
    assert!(msg.contains("garbage.JPG"), "{msg}");
}

#[test]
fn bad_roots_are_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let err = |cfg: &DataConfig| format!("{:#}", data::open(cfg).unwrap_err());
    let msg = err(&config(&root.join("missing"), 8));
    assert!(msg.contains("missing") && msg.contains("does not exist"), "{msg}");
    let msg = err(&config(root, 8));
    assert!(msg.contains("empty") && msg.contains(&root.display().to_string()), "{msg}");
    fs::write(root.join("file.png"), b"x").unwrap();
    let msg = err(&config(&root.join("file.png"), 8));
    assert!(msg.contains("not a folder"), "{msg}");
    let msg = err(&config(root, 8));
    assert!(msg.contains("no class sub-folders"), "{msg}");
    save(&flat(4, 4, [0, 0, 0]), &root.join("full/a.png"));
    fs::create_dir_all(root.join("hollow/sub")).unwrap();
    fs::write(root.join("hollow/readme.txt"), b"x").unwrap();
    let msg = err(&config(root, 8));
    assert!(msg.contains("hollow") && msg.contains("no images"), "{msg}");
}

#[test]
fn real_photos_load_at_64() {
    let photos = Path::new("/work/shared/photos");
    if !photos.is_dir() {
        eprintln!("SKIPPED: {} not present", photos.display());
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let class = tmp.path().join("photos");
    fs::create_dir_all(&class).unwrap();
    let mut count = 0;
    for e in fs::read_dir(photos).unwrap() {
        let p = e.unwrap().path();
        if sweep::data::folder::is_image_file(&p) {
            fs::copy(&p, class.join(p.file_name().unwrap())).unwrap();
            count += 1;
        }
    }
    assert!(count >= 5, "expected the photos, found {count}");
    let ds = data::open(&config(tmp.path(), 64)).unwrap();
    assert_eq!(ds.train.len() + ds.val.len(), count);
    let mut all = Vec::new();
    for src in [&ds.train, &ds.val] {
        assert_eq!(src.side(), 64);
        for i in 0..src.len() {
            all.push(read(src.as_ref(), i).unwrap());
        }
    }
    // Each 64px image has the mean colour of the centre square of the original, within a few levels.
    let mut files: Vec<PathBuf> = walk(&class);
    files.sort();
    let batch_means: Vec<[f64; 3]> = all
        .iter()
        .map(|img| {
            std::array::from_fn(|c| img[c * 4096..(c + 1) * 4096].iter().map(|&v| v as f64).sum::<f64>() / 4096.0)
        })
        .collect();
    for f in &files {
        let img = image::open(f).unwrap().to_rgb8();
        let (w, h) = img.dimensions();
        let s = w.min(h);
        let (x0, y0) = ((w - s) / 2, (h - s) / 2);
        let mut m = [0f64; 3];
        for y in y0..y0 + s {
            for x in x0..x0 + s {
                let p = img.get_pixel(x, y).0;
                (0..3).for_each(|c| m[c] += p[c] as f64);
            }
        }
        m.iter_mut().for_each(|v| *v /= (s * s) as f64);
        let close = batch_means.iter().any(|b| (0..3).all(|c| (b[c] - m[c]).abs() < 3.0));
        assert!(close, "{}: no 64px image has its mean colour {m:?}", f.display());
    }
}

#[test]
fn jpegs_decoded_at_reduced_size_match_the_full_decode() {
    let photos = Path::new("/work/shared/photos");
    if !photos.is_dir() {
        eprintln!("SKIPPED: {} not present", photos.display());
        return;
    }
    let mut jpegs: Vec<PathBuf> =
        walk(photos).into_iter().filter(|p| p.extension().is_some_and(|e| e == "jpg")).collect();
    jpegs.sort();
    assert!(jpegs.len() >= 2, "expected the JPEG photos, found {jpegs:?}");
    for path in &jpegs {
        let full = image::open(path).unwrap().to_rgb8();
        // 64 px decodes these (>= 300 px) at 1/4 or 1/8, within a level or two of the full decode; a side
        // over half the shorter one decodes in full, identical to the image crate's.
        let full_size = full.width().min(full.height()) as usize / 2 + 1;
        for (side, tolerance) in [(64usize, 2.0f64), (full_size, 0.0)] {
            let src = FolderSource::new(vec![(path.clone(), 0)], side);
            let got = read(&src, 0).unwrap();
            let mut want = vec![0u8; got.len()];
            sweep::data::pixels::rgb_image_to_planar(&sweep::data::pixels::square_resize(&full, side), &mut want)
                .unwrap();
            let mean =
                got.iter().zip(&want).map(|(&a, &b)| (a as f64 - b as f64).abs()).sum::<f64>() / got.len() as f64;
            assert!(mean <= tolerance, "{} at {side} px: mean difference {mean:.2} levels", path.display());
        }
    }
}

#[test]
fn scans_end_and_count_each_file_once_whatever_the_folder_holds() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    for i in 0..12 {
        save(&flat(8, 8, [i * 20, 0, 0]), &root.join(format!("cats/{i}.png")));
    }
    save(&flat(8, 8, [0, 90, 0]), &root.join("dogs/a.png"));
    // A link back up to the root (a loop), a link to a sibling class, a linked file twice, a FIFO
    // named like an image (reading it would block forever) and a dangling link.
    std::os::unix::fs::symlink(root, root.join("cats/loop")).unwrap();
    std::os::unix::fs::symlink(root.join("dogs"), root.join("cats/dogs-again")).unwrap();
    std::os::unix::fs::symlink(root.join("cats/0.png"), root.join("dogs/zz-linked.png")).unwrap();
    std::os::unix::fs::symlink(root.join("nowhere.png"), root.join("dogs/dangling.png")).unwrap();
    let fifo = std::ffi::CString::new(root.join("dogs/fifo.png").to_str().unwrap()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
    let started = std::time::Instant::now();
    let ds = data::open(&config(root, 8)).unwrap();
    assert!(started.elapsed().as_secs() < 10);
    assert_eq!(ds.train.len() + ds.val.len(), 13, "every image once, whatever links to it");
    let names: Vec<String> = (0..ds.train.len()).map(|i| ds.train.item_name(i)).collect();
    assert!(!names.iter().any(|n| n.contains("loop") || n.contains("fifo") || n.contains("dangling")), "{names:?}");
}

#[test]
fn a_header_claiming_billions_of_pixels_is_refused_before_decoding() {
    let tmp = tempfile::tempdir().unwrap();
    // A PNG signature and an IHDR of 100000 x 100000 RGB pixels, and no image data.
    let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
    png.extend_from_slice(&100_000u32.to_be_bytes());
    png.extend_from_slice(&100_000u32.to_be_bytes());
    png.extend_from_slice(&[8, 2, 0, 0, 0]);
    let crc = crc32(&png[12..]);
    png.extend_from_slice(&crc.to_be_bytes());
    for chunk in [&b"IDAT"[..], b"IEND"] {
        png.extend_from_slice(&[0, 0, 0, 0]);
        png.extend_from_slice(chunk);
        png.extend_from_slice(&crc32(chunk).to_be_bytes());
    }
    let path = tmp.path().join("huge.png");
    fs::write(&path, &png).unwrap();
    let err = format!("{:#}", sweep::data::folder::load_rgb8(&path).unwrap_err());
    assert!(err.contains(&path.display().to_string()) && err.contains("100000 x 100000"), "{err}");
    assert!(err.contains("64 megapixels"), "{err}");
}

#[test]
fn a_truncated_jpeg_is_told_from_a_whole_one() {
    let mut jpeg = Vec::new();
    let img = RgbImage::from_fn(64, 48, |x, y| Rgb([(x * 4) as u8, (y * 5) as u8, 128]));
    img.write_to(&mut std::io::Cursor::new(&mut jpeg), image::ImageFormat::Jpeg).unwrap();
    assert!(sweep::data::folder::jpeg_is_complete(&jpeg));
    assert!(!sweep::data::folder::jpeg_is_complete(&jpeg[..jpeg.len() / 2]));
    assert!(!sweep::data::folder::jpeg_is_complete(&jpeg[..jpeg.len() - 2]));
    // Data after the end (a camera's trailer) is still a whole image.
    let mut trailer = jpeg.clone();
    trailer.extend_from_slice(b"\xFF\xD8 trailing bytes");
    assert!(sweep::data::folder::jpeg_is_complete(&trailer));
}

/// CRC-32 (ISO 3309, as PNG uses it).
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}
