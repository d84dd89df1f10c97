//! The synthetic data set: determinism, sizes, and colour statistics that make it a useful colorization
//! benchmark (determined classes have their colour, ambiguous classes do not).

use std::f32::consts::PI;

use sweep::color::ColorSpace;
use sweep::data::synthetic::{self, AMBIGUOUS_CLASSES, CLASSES, Split, SyntheticSource};
use sweep::data::{self, DataConfig, DatasetKind, ImageSource, prepare};

fn config(seed: u64, size: usize) -> DataConfig {
    DataConfig {
        kind: DatasetKind::Synthetic,
        dir: "unused".into(),
        image_size: size,
        train_images: 0,
        val_images: 0,
        data_seed: seed,
    }
}

fn image(src: &dyn ImageSource, i: usize) -> Vec<u8> {
    let mut out = vec![0u8; 3 * src.side() * src.side()];
    src.read_rgb(i, &mut out).unwrap();
    out
}

#[test]
fn defaults_and_labels() {
    let ds = data::open(&config(1, 32)).unwrap();
    assert_eq!(ds.name, "synthetic");
    assert_eq!(ds.classes.len(), 8);
    assert_eq!((ds.train.len(), ds.val.len()), (5000, 1000));
    assert_eq!(ds.train.side(), 32);
    let mut cfg = config(1, 16);
    cfg.train_images = 40;
    cfg.val_images = 9;
    let ds = data::open(&cfg).unwrap();
    assert_eq!((ds.train.len(), ds.val.len()), (40, 9));
    let mut per_class = [0; 8];
    (0..40).for_each(|i| per_class[ds.train.label(i)] += 1);
    assert_eq!(per_class, [5; 8]);
    assert!(ds.train.read_rgb(40, &mut [0; 3 * 16 * 16]).is_err(), "out of range index is an error");
    assert!(ds.train.read_rgb(0, &mut [0; 10]).is_err(), "wrong buffer size is an error");
}

#[test]
fn same_seed_same_bytes_other_seed_or_split_differs() {
    let a = SyntheticSource::new(7, Split::Train, 100, 24);
    let b = SyntheticSource::new(7, Split::Train, 100, 24);
    let c = SyntheticSource::new(8, Split::Train, 100, 24);
    let v = SyntheticSource::new(7, Split::Val, 100, 24);
    // Read in a different order: generation depends only on (seed, split, index).
    let later: Vec<Vec<u8>> = (0..16).rev().map(|i| image(&b, i)).collect();
    for i in 0..16 {
        let x = image(&a, i);
        assert_eq!(x, later[15 - i], "image {i} not reproducible");
        assert_ne!(x, image(&c, i), "image {i} same under another seed");
        assert_ne!(x, image(&v, i), "image {i} same in train and val");
    }
    // Through the public batch API as well.
    let p = prepare(&a, &[3, 1, 4], ColorSpace::Lab).unwrap();
    let q = prepare(&b, &[3, 1, 4], ColorSpace::Lab).unwrap();
    assert_eq!(p, q);
}

#[test]
fn renders_at_any_size() {
    for side in [8, 13, 32, 64, 128, 512] {
        let src = SyntheticSource::new(3, Split::Train, 8, side);
        for (i, class) in CLASSES.iter().enumerate() {
            let img = image(&src, i);
            assert_eq!(img.len(), 3 * side * side);
            let (min, max) = (img.iter().min().unwrap(), img.iter().max().unwrap());
            assert!(max - min > 40, "class {} at {side}px has almost no contrast ({min}..{max})", class);
        }
    }
}

#[test]
fn the_same_scene_at_two_sizes_looks_alike() {
    // Rendering is resolution independent: the 16x16 image is close to a box-filtered 64x64 one.
    let small = SyntheticSource::new(5, Split::Train, 8, 16);
    let big = SyntheticSource::new(5, Split::Train, 8, 64);
    for (i, class) in CLASSES.iter().enumerate() {
        let (s, b) = (image(&small, i), image(&big, i));
        let mut err = 0.0f64;
        for c in 0..3 {
            for y in 0..16 {
                for x in 0..16 {
                    let mut acc = 0.0f64;
                    for dy in 0..4 {
                        for dx in 0..4 {
                            acc += b[c * 4096 + (4 * y + dy) * 64 + 4 * x + dx] as f64;
                        }
                    }
                    err += (acc / 16.0 - s[c * 256 + y * 16 + x] as f64).abs();
                }
            }
        }
        let mean = err / (3.0 * 256.0);
        assert!(mean < 20.0, "class {}: 16px and 64px renderings differ by {mean:.1} levels on average", class);
    }
}

/// Mean (L, a, b) of rows `rows` over the images of `class` among the first `n` (Lab, 32 px).
fn mean_lab(src: &dyn ImageSource, class: usize, n: usize, rows: std::ops::Range<usize>) -> (f32, f32, f32) {
    let side = src.side();
    let hw = side * side;
    let idx: Vec<usize> = (0..n).filter(|&i| src.label(i) == class).collect();
    let batch = prepare(src, &idx, ColorSpace::Lab).unwrap();
    let (mut l, mut a, mut b, mut count) = (0.0, 0.0, 0.0, 0.0);
    for k in 0..idx.len() {
        for y in rows.clone() {
            for x in 0..side {
                let p = y * side + x;
                l += batch.gray[k * hw + p] * 100.0;
                a += batch.chroma[k * 2 * hw + p];
                b += batch.chroma[k * 2 * hw + hw + p];
                count += 1.0;
            }
        }
    }
    (l / count, a / count, b / count)
}

#[test]
fn determined_classes_have_their_colours() {
    let src = SyntheticSource::new(11, Split::Train, 320, 32);
    // Landscape: blue sky on top (b < 0), green grass at the bottom (a < 0, b > 0).
    let (_, _, sky_b) = mean_lab(&src, 0, 320, 0..4);
    let (_, grass_a, grass_b) = mean_lab(&src, 0, 320, 28..32);
    assert!(sky_b < -20.0, "landscape sky b = {sky_b}");
    assert!(grass_a < -15.0 && grass_b > 15.0, "landscape grass a, b = {grass_a}, {grass_b}");
    // Sunset: warm sky (a > 0, b > 0), dark ground.
    let (_, sa, sb) = mean_lab(&src, 1, 320, 0..12);
    let (ground_l, _, _) = mean_lab(&src, 1, 320, 30..32);
    assert!(sa > 15.0 && sb > 20.0, "sunset sky a, b = {sa}, {sb}");
    assert!(ground_l < 20.0, "sunset ground L = {ground_l}");
    // Sea: pale blue sky, blue water in the middle, sand (b > 0) at the bottom.
    let (_, _, water_b) = mean_lab(&src, 2, 320, 16..20);
    let (sand_l, _, sand_b) = mean_lab(&src, 2, 320, 30..32);
    assert!(water_b < -20.0, "sea water b = {water_b}");
    assert!(sand_b > 10.0 && sand_l > 60.0, "sand L, b = {sand_l}, {sand_b}");
    // Brick wall: red (a > 0) overall.
    let (_, brick_a, brick_b) = mean_lab(&src, 3, 320, 0..32);
    assert!(brick_a > 15.0 && brick_b > 10.0, "brick a, b = {brick_a}, {brick_b}");
    // Forest: green (a < 0) overall.
    let (_, forest_a, _) = mean_lab(&src, 4, 320, 0..24);
    assert!(forest_a < -5.0, "forest a = {forest_a}");
}

/// Per instance of `class`: the mean (a, b) of its most colourful pixels (the top 10% by Lab chroma),
/// i.e. its dominant vivid colour.
fn instance_chromas(src: &dyn ImageSource, class: usize, n: usize) -> Vec<(f32, f32)> {
    let hw = src.side() * src.side();
    let idx: Vec<usize> = (0..n).filter(|&i| src.label(i) == class).collect();
    let batch = prepare(src, &idx, ColorSpace::Lab).unwrap();
    (0..idx.len())
        .map(|k| {
            let mut px: Vec<(f32, f32)> =
                (0..hw).map(|p| (batch.chroma[k * 2 * hw + p], batch.chroma[k * 2 * hw + hw + p])).collect();
            px.sort_by(|x, y| y.0.hypot(y.1).total_cmp(&x.0.hypot(x.1)));
            let top = &px[..hw / 10];
            let sum = top.iter().fold((0.0, 0.0), |acc, c| (acc.0 + c.0, acc.1 + c.1));
            (sum.0 / top.len() as f32, sum.1 / top.len() as f32)
        })
        .collect()
}

/// Per instance of `class`: the HSV hue (radians) of its most saturated pixels (circular mean over the top
/// 10% by HSV saturation).
fn instance_hsv_hues(src: &dyn ImageSource, class: usize, n: usize) -> Vec<f32> {
    let hw = src.side() * src.side();
    let idx: Vec<usize> = (0..n).filter(|&i| src.label(i) == class).collect();
    let batch = prepare(src, &idx, ColorSpace::Hsv).unwrap();
    (0..idx.len())
        .map(|k| {
            let mut px: Vec<(f32, f32)> =
                (0..hw).map(|p| (batch.chroma[k * 2 * hw + p], batch.chroma[k * 2 * hw + hw + p])).collect();
            px.sort_by(|x, y| y.1.total_cmp(&x.1));
            let (x, y) = px[..hw / 10]
                .iter()
                .fold((0.0f32, 0.0f32), |acc, &(h, _)| (acc.0 + h.to_radians().cos(), acc.1 + h.to_radians().sin()));
            y.atan2(x)
        })
        .collect()
}

/// Length of the mean unit hue vector (1 = all the same hue, 0 = spread all round).
fn hue_concentration(chromas: &[(f32, f32)]) -> f32 {
    let (mut x, mut y) = (0.0, 0.0);
    for &(a, b) in chromas {
        let h = b.atan2(a);
        x += h.cos();
        y += h.sin();
    }
    (x * x + y * y).sqrt() / chromas.len() as f32
}

#[test]
fn ambiguous_classes_have_random_hues_determined_ones_do_not() {
    let n = 8 * 60;
    let src = SyntheticSource::new(12, Split::Train, n, 32);
    for class in AMBIGUOUS_CLASSES {
        let hues = instance_hsv_hues(&src, class, n);
        let r = hue_concentration(&hues.iter().map(|h| (h.cos(), h.sin())).collect::<Vec<_>>());
        let mut sectors = [0; 6];
        for &h in &hues {
            let h = h.rem_euclid(2.0 * PI);
            sectors[((h / (PI / 3.0)) as usize).min(5)] += 1;
        }
        eprintln!("{}: R = {r}, sectors {sectors:?}", CLASSES[class]);
        assert!(r < 0.3, "{}: hues too concentrated (R = {r})", CLASSES[class]);
        assert!(sectors.iter().all(|&s| s >= 3), "{}: hue sectors {sectors:?}", CLASSES[class]);
        // The regression optimum (the mean over instances) is washed out compared with each instance.
        let chromas = instance_chromas(&src, class, n);
        let mean = chromas.iter().fold((0.0, 0.0), |acc, c| (acc.0 + c.0, acc.1 + c.1));
        let mean_mag = (mean.0 / chromas.len() as f32).hypot(mean.1 / chromas.len() as f32);
        let inst_mag = chromas.iter().map(|c| c.0.hypot(c.1)).sum::<f32>() / chromas.len() as f32;
        assert!(mean_mag < 0.3 * inst_mag, "{}: mean chroma {mean_mag} vs per instance {inst_mag}", CLASSES[class]);
    }
    // Classes with one dominant colour (landscape and sea have two regions; see the row tests above).
    for class in [1, 3, 4] {
        let r = hue_concentration(&instance_chromas(&src, class, n));
        eprintln!("{}: R = {r}", CLASSES[class]);
        assert!(r > 0.9, "{}: hue should be consistent (R = {r})", CLASSES[class]);
    }
}

/// Simple gray-only features: 4x4 block means and standard deviations, and the horizontal / vertical
/// gradient energy.
fn gray_features(gray: &[f32], side: usize) -> Vec<f32> {
    let mut f = Vec::new();
    let block = side / 4;
    for by in 0..4 {
        for bx in 0..4 {
            let vals: Vec<f32> =
                (0..block * block).map(|k| gray[(by * block + k / block) * side + bx * block + k % block]).collect();
            let m = vals.iter().sum::<f32>() / vals.len() as f32;
            let v = vals.iter().map(|x| (x - m).powi(2)).sum::<f32>() / vals.len() as f32;
            f.push(m);
            f.push(v.sqrt() * 3.0);
        }
    }
    let (mut gx, mut gy) = (0.0, 0.0);
    for y in 0..side - 1 {
        for x in 0..side - 1 {
            gx += (gray[y * side + x + 1] - gray[y * side + x]).abs();
            gy += (gray[(y + 1) * side + x] - gray[y * side + x]).abs();
        }
    }
    let norm = ((side - 1) * (side - 1)) as f32;
    f.push(10.0 * gx / norm);
    f.push(10.0 * gy / norm);
    f
}

#[test]
fn classes_are_distinguishable_in_gray() {
    // A nearest-class-mean classifier on crude gray features must beat chance (12.5%) by far.
    let side = 32;
    let hw = side * side;
    let train = SyntheticSource::new(21, Split::Train, 800, side);
    let val = SyntheticSource::new(21, Split::Val, 400, side);
    let tb = prepare(&train, &(0..800).collect::<Vec<_>>(), ColorSpace::Lab).unwrap();
    let vb = prepare(&val, &(0..400).collect::<Vec<_>>(), ColorSpace::Lab).unwrap();
    let dim = gray_features(&tb.gray[..hw], side).len();
    let mut centroids = vec![vec![0.0f32; dim]; 8];
    for k in 0..800 {
        let f = gray_features(&tb.gray[k * hw..(k + 1) * hw], side);
        let c = &mut centroids[tb.labels[k] as usize];
        c.iter_mut().zip(&f).for_each(|(c, f)| *c += f / 100.0);
    }
    let correct = (0..400)
        .filter(|&k| {
            let f = gray_features(&vb.gray[k * hw..(k + 1) * hw], side);
            let best = (0..8)
                .min_by(|&a, &b| {
                    let d = |c: &Vec<f32>| c.iter().zip(&f).map(|(c, f)| (c - f).powi(2)).sum::<f32>();
                    d(&centroids[a]).total_cmp(&d(&centroids[b]))
                })
                .unwrap();
            best == vb.labels[k] as usize
        })
        .count();
    let accuracy = correct as f32 / 400.0;
    eprintln!("nearest-centroid accuracy on gray features: {accuracy:.3}");
    assert!(accuracy > 0.5, "gray accuracy {accuracy}");
}

#[test]
fn render_is_exposed_for_single_images() {
    let mut rng = sweep::rng::Rng::new(1);
    let mut out = vec![0u8; 3 * 20 * 20];
    synthetic::render(5, &mut rng, 20, &mut out);
    assert!(out.iter().any(|&v| v != out[0]));
}
