//! Contact sheets and data set summaries.

mod data_support;

use sweep::color::ColorSpace;
use sweep::data::{self, DataConfig, DatasetKind, contact_sheet, describe};

fn synthetic(size: usize, val: usize) -> data::DataSet {
    data::open(&DataConfig {
        kind: DatasetKind::Synthetic,
        dir: "unused".into(),
        image_size: size,
        train_images: 16,
        val_images: val,
        data_seed: 4,
    })
    .unwrap()
}

#[test]
fn contact_sheet_pairs_colour_and_gray_upscaled() {
    let ds = synthetic(32, 40);
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("sheets/sheet.png");
    contact_sheet(&ds, ColorSpace::Lab, 10, &out).unwrap();
    assert!(!tmp.path().join("sheets/sheet.png.tmp").exists());
    let png = image::open(&out).unwrap().to_rgb8();
    // 32px images are shown 3x (96px); 10 pairs in 3 columns and 4 rows, 2px inside a pair, 6px margins.
    assert_eq!(png.dimensions(), (3 * (2 * 96 + 2) + 4 * 6, 4 * 96 + 5 * 6));
    // The first pair is validation image 0: colour on the left (nearest-neighbour upscaled) ...
    let mut img = vec![0u8; 3 * 32 * 32];
    ds.val.read_rgb(0, &mut img).unwrap();
    for (x, y) in [(0, 0), (5, 7), (31, 31)] {
        for (dx, dy) in [(0, 0), (2, 2)] {
            let p = png.get_pixel(6 + 3 * x + dx, 6 + 3 * y + dy).0;
            assert_eq!(
                p,
                [
                    img[y as usize * 32 + x as usize],
                    img[1024 + y as usize * 32 + x as usize],
                    img[2048 + y as usize * 32 + x as usize]
                ]
            );
        }
    }
    // ... then a 2px background gap, then the gray version: neutral, darker where the colour is darker.
    assert_eq!(png.get_pixel(6 + 96, 6).0, [48, 48, 48]);
    let gray_at = |x: u32, y: u32| png.get_pixel(6 + 96 + 2 + 3 * x, 6 + 3 * y).0;
    let luma = |x: usize, y: usize| {
        let p = y * 32 + x;
        0.2126 * img[p] as f32 + 0.7152 * img[1024 + p] as f32 + 0.0722 * img[2048 + p] as f32
    };
    for y in 0..32 {
        for x in 0..32 {
            let g = gray_at(x, y);
            assert!(g[0].abs_diff(g[1]) <= 1 && g[1].abs_diff(g[2]) <= 1, "gray pixel {g:?} is not neutral");
        }
    }
    let (mut dark, mut bright) = ((0, 0), (0, 0));
    for y in 0..32 {
        for x in 0..32 {
            if luma(x, y) < luma(dark.0, dark.1) {
                dark = (x, y);
            }
            if luma(x, y) > luma(bright.0, bright.1) {
                bright = (x, y);
            }
        }
    }
    assert!(gray_at(dark.0 as u32, dark.1 as u32)[0] < gray_at(bright.0 as u32, bright.1 as u32)[0]);
}

#[test]
fn contact_sheet_in_every_space_and_size_and_errors() {
    let tmp = tempfile::tempdir().unwrap();
    for space in ColorSpace::ALL {
        for size in [8, 100] {
            let out = tmp.path().join(format!("{}-{size}.png", space.name()));
            contact_sheet(&synthetic(size, 3), space, 50, &out).unwrap();
            let (w, h) = image::image_dimensions(&out).unwrap();
            assert!(w > 2 * size as u32 && h > size as u32);
        }
    }
    let msg =
        format!("{:#}", contact_sheet(&synthetic(8, 3), ColorSpace::Lab, 0, &tmp.path().join("x.png")).unwrap_err());
    assert!(msg.contains("no images"), "{msg}");
    // Writing into a path whose parent is a file fails with an error, not a panic.
    std::fs::write(tmp.path().join("file"), b"").unwrap();
    assert!(contact_sheet(&synthetic(8, 3), ColorSpace::Lab, 2, &tmp.path().join("file/x.png")).is_err());
}

#[test]
fn describe_counts_per_split_and_class() {
    let text = describe(&synthetic(16, 12));
    assert!(text.starts_with("synthetic: 8 classes, 16x16 pixels, 16 training and 12 validation images"), "{text}");
    let balloon = text.lines().find(|l| l.contains("balloon")).unwrap();
    assert_eq!(balloon.split_whitespace().collect::<Vec<_>>(), ["5", "balloon", "2", "1"]);
    let total = text.lines().last().unwrap();
    assert_eq!(total.split_whitespace().collect::<Vec<_>>(), ["total", "16", "12"]);
    // Columns line up: every table row has the same length.
    let rows: Vec<&str> = text.lines().skip(1).collect();
    assert!(rows.iter().all(|r| r.len() == rows[0].len()), "{text}");

    let tmp = tempfile::tempdir().unwrap();
    data_support::write_cifar100(tmp.path(), 300, 100);
    let ds = data::open(&DataConfig {
        kind: DatasetKind::Cifar100,
        dir: tmp.path().to_path_buf(),
        image_size: 32,
        train_images: 0,
        val_images: 0,
        data_seed: 0,
    })
    .unwrap();
    let text = describe(&ds);
    assert_eq!(text.lines().count(), 1 + 2 + 100 + 2);
    let row = text.lines().find(|l| l.contains("fine_7 ")).unwrap();
    assert_eq!(row.split_whitespace().collect::<Vec<_>>(), ["7", "fine_7", "3", "1"]);
    assert_eq!(ds.train.len(), 300);
}

#[test]
fn a_sheet_that_would_not_fit_in_memory_is_refused_with_a_count_that_does() {
    let ds = synthetic(4096, 64);
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("sheet.png");
    let err = format!("{:#}", contact_sheet(&ds, ColorSpace::Lab, 64, &out).unwrap_err());
    assert!(
        err.contains("a sheet of 64 images of 4096 x 4096 pixels") && err.contains("use --count 6 or fewer"),
        "{err}"
    );
    assert!(!out.exists());
}
