//! Augmentation through the data layer: the same transform for an image whatever batch or order reads it,
//! gray input and chroma target from the same transformed pixels, the padded crop's offsets, and the
//! random resized crop cutting the full-size photo.

use std::collections::BTreeMap;
use std::path::Path;

use image::{Rgb, RgbImage};
use sweep::color::ColorSpace;
use sweep::color::convert::encode_u8_planar;
use sweep::data::augment::{EpochAugment, Rect};
use sweep::data::folder::FolderSource;
use sweep::data::{self, Augment, Crop, DataConfig, DatasetKind, ImageSource, prepare, prepare_augmented};

const RESIZED: Crop = Crop::Resized { scale: [0.08, 1.0], ratio: [0.75, 4.0 / 3.0] };

fn synthetic(side: usize, n: usize) -> data::DataSet {
    data::open(&DataConfig {
        kind: DatasetKind::Synthetic,
        dir: "".into(),
        image_size: side,
        train_images: n,
        val_images: 8,
        data_seed: 3,
    })
    .unwrap()
}

fn read(aug: &EpochAugment, src: &dyn ImageSource, i: usize) -> Vec<u8> {
    let mut out = vec![0u8; 3 * src.side() * src.side()];
    aug.read(src, i, &mut out).unwrap();
    out
}

fn mirrored(planar: &[u8], side: usize) -> Vec<u8> {
    let mut out = planar.to_vec();
    sweep::data::augment::flip_planar(&mut out, side).unwrap();
    out
}

#[test]
fn an_image_is_transformed_by_seed_epoch_and_index_alone() {
    let ds = synthetic(32, 24);
    let src = ds.train.as_ref();
    for crop in [Crop::None, Crop::Pad { pad: 4 }, RESIZED] {
        let aug = Augment { flip: true, crop };
        let epoch = aug.epoch(7, 0);
        let forward: Vec<usize> = (0..24).collect();
        let backward: Vec<usize> = (0..24).rev().collect();
        let a = prepare_augmented(src, &forward, ColorSpace::Lab, &epoch).unwrap();
        let b = prepare_augmented(src, &backward, ColorSpace::Lab, &aug.epoch(7, 0)).unwrap();
        let hw = 32 * 32;
        for i in 0..24 {
            let j = 23 - i;
            assert_eq!(a.gray[i * hw..(i + 1) * hw], b.gray[j * hw..(j + 1) * hw], "{crop:?}: image {i}");
        }
        // Another epoch or seed transforms the images otherwise; no augmentation serves them as they are.
        for other in [aug.epoch(7, 1), aug.epoch(8, 0)] {
            let c = prepare_augmented(src, &forward, ColorSpace::Lab, &other).unwrap();
            assert_ne!(a.gray, c.gray, "{crop:?}");
        }
        let plain = prepare(src, &forward, ColorSpace::Lab).unwrap();
        assert_ne!(a.gray, plain.gray, "{crop:?}");
        let none = prepare_augmented(src, &forward, ColorSpace::Lab, &Augment::default().epoch(7, 0)).unwrap();
        assert_eq!(none, plain);
    }
}

#[test]
fn gray_and_chroma_come_from_the_same_transformed_image() {
    let ds = synthetic(32, 16);
    let src = ds.train.as_ref();
    let indices: Vec<usize> = (0..16).collect();
    let hw = 32 * 32;
    for space in [ColorSpace::Lab, ColorSpace::Yuv, ColorSpace::Hsv] {
        for crop in [Crop::Pad { pad: 4 }, RESIZED] {
            let epoch = Augment { flip: true, crop }.epoch(1, 2);
            let batch = prepare_augmented(src, &indices, space, &epoch).unwrap();
            for (k, &i) in indices.iter().enumerate() {
                let rgb = read(&epoch, src, i);
                let (mut gray, mut chroma) = (vec![0f32; hw], vec![0f32; 2 * hw]);
                encode_u8_planar(space, &rgb, hw, &mut gray, &mut chroma);
                assert_eq!(batch.gray[k * hw..(k + 1) * hw], gray[..], "{space:?} {crop:?} image {i}");
                assert_eq!(batch.chroma[2 * k * hw..2 * (k + 1) * hw], chroma[..], "{space:?} {crop:?} image {i}");
            }
        }
    }
    // A flip alone: every image is the original or its mirror, each for about half of them, and its gray
    // input is the mirror of the original's when the image was flipped.
    let epoch = Augment { flip: true, crop: Crop::None }.epoch(5, 0);
    let flipped = prepare_augmented(src, &indices, ColorSpace::Lab, &epoch).unwrap();
    let plain = prepare(src, &indices, ColorSpace::Lab).unwrap();
    let mut mirrors = 0;
    for &i in &indices {
        let mut original = vec![0u8; 3 * hw];
        src.read_rgb(i, &mut original).unwrap();
        let got = read(&epoch, src, i);
        let gray = &flipped.gray[i * hw..(i + 1) * hw];
        let plain_gray = &plain.gray[i * hw..(i + 1) * hw];
        if got == original {
            assert_eq!(gray, plain_gray, "image {i}");
        } else {
            assert_eq!(got, mirrored(&original, 32), "image {i} is neither the original nor its mirror");
            for y in 0..32 {
                let row: Vec<f32> = plain_gray[y * 32..(y + 1) * 32].iter().rev().copied().collect();
                assert_eq!(gray[y * 32..(y + 1) * 32], row[..], "image {i}, row {y}");
            }
            mirrors += 1;
        }
    }
    assert!((3..=13).contains(&mirrors), "{mirrors} of 16 images flipped");
}

/// An image source of one white `side x side` image, repeated `n` times.
struct White {
    side: usize,
    n: usize,
}

impl ImageSource for White {
    fn len(&self) -> usize {
        self.n
    }
    fn side(&self) -> usize {
        self.side
    }
    fn label(&self, _: usize) -> usize {
        0
    }
    fn read_rgb(&self, _: usize, out: &mut [u8]) -> anyhow::Result<()> {
        out.fill(255);
        Ok(())
    }
}

#[test]
fn padded_crops_move_the_window_uniformly_over_the_padding() {
    let (side, pad, n) = (16usize, 4usize, 9000usize);
    let src = White { side, n };
    let epoch = Augment { flip: false, crop: Crop::Pad { pad } }.epoch(0, 0);
    let mut offsets: BTreeMap<(isize, isize), usize> = BTreeMap::new();
    for i in 0..n {
        let img = read(&epoch, &src, i);
        let red = &img[..side * side];
        let white_rows: Vec<usize> = (0..side).filter(|&y| red[y * side..(y + 1) * side].contains(&255)).collect();
        let white_cols: Vec<usize> = (0..side).filter(|&x| (0..side).any(|y| red[y * side + x] == 255)).collect();
        // The white square is the image moved by the window's offset; the rest is black padding.
        let (top, left) = (white_rows[0], white_cols[0]);
        let (rows, cols) = (white_rows.len(), white_cols.len());
        let dy = if top > 0 { top as isize } else { rows as isize - side as isize };
        let dx = if left > 0 { left as isize } else { cols as isize - side as isize };
        assert!(dy.unsigned_abs() <= pad && dx.unsigned_abs() <= pad, "image {i}: offset ({dy}, {dx})");
        assert_eq!(red.iter().filter(|&&v| v == 255).count(), rows * cols, "image {i}: white is one rectangle");
        assert_eq!(img[..side * side], img[side * side..2 * side * side], "channels move together");
        *offsets.entry((dy, dx)).or_default() += 1;
    }
    // 81 offsets, each about n / 81 = 111 times.
    assert_eq!(offsets.len(), (2 * pad + 1).pow(2));
    for (offset, count) in &offsets {
        assert!((60..170).contains(count), "offset {offset:?} drawn {count} times of {n}");
    }
}

fn save(img: &RgbImage, path: &Path, format: image::ImageFormat) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    img.save_with_format(path, format).unwrap();
}

#[test]
fn resized_crops_cut_the_full_size_photo() {
    // 600x300: red on the left 100 columns, blue elsewhere. A crop of the red strip is red at any size;
    // the centre square (what validation sees) is blue. As PNG (full decode) and as JPEG (DCT-scaled:
    // at 16 px the 96x100 rectangle decodes at 1/4).
    let tmp = tempfile::tempdir().unwrap();
    let img = RgbImage::from_fn(600, 300, |x, _| if x < 100 { Rgb([230, 20, 20]) } else { Rgb([20, 20, 230]) });
    for (name, format) in [("c/strip.png", image::ImageFormat::Png), ("c/strip.jpg", image::ImageFormat::Jpeg)] {
        let path = tmp.path().join(name);
        save(&img, &path, format);
        let src = FolderSource::new(vec![(path, 0)], 16);
        let mut sizes = Vec::new();
        let mut out = vec![0u8; 3 * 16 * 16];
        let strip = Rect { x: 0, y: 100, w: 96, h: 100 };
        src.read_rgb_region(
            0,
            &mut |w, h| {
                sizes.push((w, h));
                strip
            },
            &mut out,
        )
        .unwrap();
        assert_eq!(sizes, [(600, 300)], "{name}: the region is chosen once, on the full-size image");
        let (r, b) = (&out[..256], &out[512..]);
        assert!(r.iter().all(|&v| v > 180) && b.iter().all(|&v| v < 70), "{name}: the crop is the red strip");
        src.read_rgb(0, &mut out).unwrap();
        let (r, b) = (&out[..256], &out[512..]);
        assert!(r.iter().all(|&v| v < 70) && b.iter().all(|&v| v > 180), "{name}: the centre square is blue");
        // Through the augmentation: crops of the whole range of scales, all of them from this photo.
        let epoch = Augment { flip: false, crop: RESIZED }.epoch(0, 0);
        let src = FolderSource::new(vec![(tmp.path().join(name), 0); 200], 16);
        let reds: Vec<f64> = (0..200)
            .map(|i| read(&epoch, &src, i)[..256].iter().filter(|&&v| v > 128).count() as f64 / 256.0)
            .collect();
        let mean = reds.iter().sum::<f64>() / reds.len() as f64;
        // Crops placed uniformly cover the edge strip less than the middle: torchvision's algorithm
        // in Python (100,000 draws) puts 6.1% red in a crop on average and no red in 72% of them.
        assert!((0.03..0.1).contains(&mean), "{name}: mean red fraction {mean}");
        let none = reds.iter().filter(|&&f| f < 0.01).count();
        assert!((120..170).contains(&none), "{name}: {none} of 200 crops without red");
    }
}
