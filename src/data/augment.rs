//! Training-image augmentation: random horizontal flips, random crops with padding (CIFAR-sized
//! data) and random resized crops (photo folders), as torchvision's `RandomHorizontalFlip`,
//! `RandomCrop(size, padding)` and `RandomResizedCrop`.
//!
//! The transforms apply to the colour image, before [`super::prepare`] splits it into gray input and
//! chroma target, so input and target always come from the same transformed pixels. Every random choice
//! comes from [`Rng::derive`] of (run seed, epoch, image index): an image is transformed the same way
//! whichever batch, thread or attempt reads it, so a resumed run is bit-identical to an uninterrupted
//! one. Validation images are never augmented: only [`super::prepare_augmented`] applies an
//! [`EpochAugment`], and the trainer calls it for training batches alone.
//!
//! Order and draws per image: the crop's draws first, then one draw for the flip (probability 1/2).
//! - `Pad { pad }`: the `side x side` image is padded by `pad` pixels of zeros on every side
//!   (torchvision's default `padding_mode="constant"`, `fill=0`: black) and a `side x side` window is
//!   cut at a uniformly random offset (row first, then column, as torchvision draws them).
//! - `Resized { scale, ratio }`: torchvision's `RandomResizedCrop.get_params` on the source's original
//!   image (a photo's full resolution; CIFAR and synthetic images at their served size): up to 10
//!   attempts of an area fraction uniform in `scale` and an aspect ratio log-uniform in `ratio`, side
//!   lengths rounded half to even (Python's `round`), accepted when the rectangle fits, placed uniformly;
//!   after 10 failures the centre crop of the image clamped to the ratio range (the whole image when its
//!   own ratio is in range). The rectangle is resized to `side x side` (aspect not kept, as torchvision)
//!   with the data module's [`super::pixels::RESIZE_FILTER`] (torchvision uses antialiased bilinear).

use anyhow::ensure;

use super::ImageSource;
use crate::rng::Rng;

/// The stream of augmentation draws, apart from the trainer's shuffle of the same seed and epoch.
const AUGMENT_STREAM: u64 = 0x4155_474D_454E_5431; // "AUGMENT1"
/// Attempts of `RandomResizedCrop` before its centre-crop fallback (torchvision's constant).
pub const RESIZED_CROP_ATTEMPTS: usize = 10;

/// How training images are augmented (the run's `augment.*` keys, decoded in `src/spec/`).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Augment {
    /// Flip each image horizontally with probability 1/2.
    pub flip: bool,
    /// The random crop, if any.
    pub crop: Crop,
}

/// The random crop of [`Augment`].
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum Crop {
    /// No crop: the image as the source serves it.
    #[default]
    None,
    /// Pad by `pad` pixels of black on every side, then cut a random `side x side` window.
    Pad { pad: usize },
    /// torchvision's `RandomResizedCrop`: area fraction in `scale`, aspect ratio (width / height) in `ratio`.
    Resized { scale: [f64; 2], ratio: [f64; 2] },
}

/// A rectangle of an image, in pixels: left, top, width, height.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rect {
    pub x: u32,
    pub y: u32,
    pub w: u32,
    pub h: u32,
}

impl Rect {
    /// The centred square of the shorter side: what a source serves without augmentation.
    pub fn centre_square(width: u32, height: u32) -> Rect {
        let s = width.min(height);
        Rect { x: (width - s) / 2, y: (height - s) / 2, w: s, h: s }
    }
}

impl Augment {
    /// Whether this changes nothing (every image is served as is).
    pub fn is_identity(&self) -> bool {
        !self.flip && self.crop == Crop::None
    }

    /// The transforms of epoch `epoch` (0-based) of a run with seed `seed`.
    pub fn epoch(&self, seed: u64, epoch: u64) -> EpochAugment {
        EpochAugment { augment: *self, stream: Rng::derive(seed ^ AUGMENT_STREAM, epoch).next_u64() }
    }
}

/// The augmentation of one epoch: every image's transform is a function of its index.
#[derive(Clone, Copy, Debug)]
pub struct EpochAugment {
    augment: Augment,
    stream: u64,
}

impl EpochAugment {
    /// Writes image `index` of `source`, transformed, as planar RGB (`3 * side * side` bytes) into `out`.
    pub fn read(&self, source: &dyn ImageSource, index: usize, out: &mut [u8]) -> anyhow::Result<()> {
        let mut rng = Rng::derive(self.stream, index as u64);
        let side = source.side();
        match self.augment.crop {
            Crop::None => source.read_rgb(index, out)?,
            Crop::Pad { pad } => {
                source.read_rgb(index, out)?;
                let (dy, dx) = (rng.below(2 * pad + 1), rng.below(2 * pad + 1));
                shift_planar(out, side, dy as isize - pad as isize, dx as isize - pad as isize)?;
            }
            Crop::Resized { scale, ratio } => {
                source.read_rgb_region(index, &mut |w, h| resized_crop(&mut rng, w, h, scale, ratio), out)?
            }
        }
        if self.augment.flip && rng.uniform() < 0.5 {
            flip_planar(out, side)?;
        }
        Ok(())
    }
}

/// torchvision's `RandomResizedCrop.get_params` for a `width x height` image (see the module docs).
pub fn resized_crop(rng: &mut Rng, width: u32, height: u32, scale: [f64; 2], ratio: [f64; 2]) -> Rect {
    let area = width as f64 * height as f64;
    let (log_lo, log_hi) = (ratio[0].ln(), ratio[1].ln());
    for _ in 0..RESIZED_CROP_ATTEMPTS {
        let target = area * (scale[0] + (scale[1] - scale[0]) * rng.uniform() as f64);
        let aspect = (log_lo + (log_hi - log_lo) * rng.uniform() as f64).exp();
        let w = (target * aspect).sqrt().round_ties_even();
        let h = (target / aspect).sqrt().round_ties_even();
        if w > 0.0 && w <= width as f64 && h > 0.0 && h <= height as f64 {
            let (w, h) = (w as u32, h as u32);
            let y = rng.below((height - h + 1) as usize) as u32;
            let x = rng.below((width - w + 1) as usize) as u32;
            return Rect { x, y, w, h };
        }
    }
    let (min, max) = (ratio[0].min(ratio[1]), ratio[0].max(ratio[1]));
    let own = width as f64 / height as f64;
    let (w, h) = if own < min {
        (width, ((width as f64 / min).round_ties_even() as u32).clamp(1, height))
    } else if own > max {
        (((height as f64 * max).round_ties_even() as u32).clamp(1, width), height)
    } else {
        (width, height)
    };
    Rect { x: (width - w) / 2, y: (height - h) / 2, w, h }
}

/// Mirrors a planar `side x side` image left to right, in place.
pub fn flip_planar(planar: &mut [u8], side: usize) -> anyhow::Result<()> {
    ensure!(planar.len() == 3 * side * side, "flip: {} bytes is not a planar {side}x{side} image", planar.len());
    if side > 0 {
        planar.chunks_exact_mut(side).for_each(<[u8]>::reverse);
    }
    Ok(())
}

/// Moves a planar `side x side` image by `(dy, dx)` pixels (positive: content moves up and left, as the
/// window of a padded crop moves down and right), filling what comes in with zeros.
fn shift_planar(planar: &mut [u8], side: usize, dy: isize, dx: isize) -> anyhow::Result<()> {
    ensure!(planar.len() == 3 * side * side, "crop: {} bytes is not a planar {side}x{side} image", planar.len());
    let source = planar.to_vec();
    let inside = |v: isize| (0..side as isize).contains(&v).then_some(v as usize);
    for (plane, from) in planar.chunks_exact_mut(side * side).zip(source.chunks_exact(side * side)) {
        for (y, row) in plane.chunks_exact_mut(side).enumerate() {
            let src_row = inside(y as isize + dy).map(|sy| &from[sy * side..(sy + 1) * side]);
            for (x, px) in row.iter_mut().enumerate() {
                *px = match (src_row, inside(x as isize + dx)) {
                    (Some(r), Some(sx)) => r[sx],
                    _ => 0,
                };
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp(side: usize) -> Vec<u8> {
        (0..3 * side * side).map(|i| (i % 251) as u8 + 1).collect()
    }

    #[test]
    fn flipping_twice_is_the_identity_and_once_mirrors_rows() {
        let side = 7;
        let original = ramp(side);
        let mut img = original.clone();
        flip_planar(&mut img, side).unwrap();
        assert_ne!(img, original);
        for c in 0..3 {
            for y in 0..side {
                for x in 0..side {
                    let at = |x: usize| c * side * side + y * side + x;
                    assert_eq!(img[at(x)], original[at(side - 1 - x)]);
                }
            }
        }
        flip_planar(&mut img, side).unwrap();
        assert_eq!(img, original);
        assert!(flip_planar(&mut img[1..], side).is_err());
    }

    #[test]
    fn a_padded_crop_is_a_shifted_window_with_black_borders() {
        let side = 6;
        let original = ramp(side);
        let mut img = original.clone();
        shift_planar(&mut img, side, 2, -1).unwrap();
        for c in 0..3 {
            for y in 0..side {
                for x in 0..side {
                    let (sy, sx) = (y as isize + 2, x as isize - 1);
                    let expect = if (0..side as isize).contains(&sy) && (0..side as isize).contains(&sx) {
                        original[c * side * side + sy as usize * side + sx as usize]
                    } else {
                        0
                    };
                    assert_eq!(img[c * side * side + y * side + x], expect, "c{c} y{y} x{x}");
                }
            }
        }
        let mut same = original.clone();
        shift_planar(&mut same, side, 0, 0).unwrap();
        assert_eq!(same, original);
    }

    #[test]
    fn resized_crops_stay_inside_with_area_and_ratio_in_range() {
        let (scale, ratio) = ([0.08, 1.0], [3.0 / 4.0, 4.0 / 3.0]);
        let mut rng = Rng::new(11);
        let (width, height) = (500u32, 375u32);
        let mut fractions = Vec::new();
        for _ in 0..20_000 {
            let r = resized_crop(&mut rng, width, height, scale, ratio);
            assert!(r.w > 0 && r.h > 0 && r.x + r.w <= width && r.y + r.h <= height, "{r:?}");
            let fraction = (r.w * r.h) as f64 / (width * height) as f64;
            let aspect = r.w as f64 / r.h as f64;
            // Rounding the sides to whole pixels moves area and aspect a little past the bounds.
            assert!((0.075..=1.0).contains(&fraction), "{r:?}: area fraction {fraction}");
            assert!((0.74..=1.35).contains(&aspect), "{r:?}: aspect {aspect}");
            fractions.push(fraction);
        }
        // Accepted draws are uniform in area over what fits. On a 4:3 image a crop fits when its area
        // fraction is at most 0.75 times its aspect ratio, so large areas are often rejected: the same
        // algorithm in Python (torchvision's code with `random`, 200,000 draws) gives a mean fraction of
        // 0.432 and 32.2% of the crops under 30% of the area; 0.54 and 24% would mean no rejection.
        let mean = fractions.iter().sum::<f64>() / fractions.len() as f64;
        assert!((0.42..0.445).contains(&mean), "mean area fraction {mean}");
        let small = fractions.iter().filter(|&&f| f < 0.3).count() as f64 / fractions.len() as f64;
        assert!((0.31..0.335).contains(&small), "{small} of the crops below 30% of the area");
        // Placement is uniform: the mean centre of the crops is the image's centre.
        let mut rng = Rng::new(5);
        let cx: f64 = (0..20_000)
            .map(|_| {
                let r = resized_crop(&mut rng, width, height, scale, ratio);
                r.x as f64 + r.w as f64 / 2.0
            })
            .sum::<f64>()
            / 20_000.0;
        assert!((cx - 250.0).abs() < 3.0, "mean centre x {cx}");
    }

    #[test]
    fn resized_crop_falls_back_to_the_centre_as_torchvision() {
        // A 1000x10 strip: no crop of ratio <= 4/3 and area >= 8% fits in 10 rows, so after ten attempts
        // the centre crop clamped to the widest ratio: 10 rows, round(10 * 4/3) = 13 columns.
        let mut rng = Rng::new(3);
        let r = resized_crop(&mut rng, 1000, 10, [0.5, 1.0], [0.75, 4.0 / 3.0]);
        assert_eq!(r, Rect { x: (1000 - 13) / 2, y: 0, w: 13, h: 10 });
        // A tall one: the narrowest ratio, round(10 / 0.75) = 13 rows.
        let r = resized_crop(&mut rng, 10, 1000, [0.5, 1.0], [0.75, 4.0 / 3.0]);
        assert_eq!(r, Rect { x: 0, y: (1000 - 13) / 2, w: 10, h: 13 });
        // A scale that never fits (area 200%) on a square: the whole image.
        let r = resized_crop(&mut rng, 40, 40, [2.0, 2.0], [1.0, 1.0]);
        assert_eq!(r, Rect { x: 0, y: 0, w: 40, h: 40 });
        // Python's round(): 12.5 rounds to 12, not 13 (width 25, ratio 2: the fallback height).
        let r = resized_crop(&mut rng, 25, 1000, [2.0, 2.0], [2.0, 2.0]);
        assert_eq!((r.w, r.h), (25, 12));
    }

    #[test]
    fn each_epoch_and_image_has_its_own_stream() {
        let a = Augment { flip: true, crop: Crop::None };
        assert_eq!(a.epoch(1, 2).stream, a.epoch(1, 2).stream);
        assert_ne!(a.epoch(1, 2).stream, a.epoch(1, 3).stream);
        assert_ne!(a.epoch(1, 2).stream, a.epoch(2, 2).stream);
        // Not the trainer's shuffle stream of the same seed and epoch.
        assert_ne!(a.epoch(1, 2).stream, Rng::derive(1, 2).next_u64());
        assert!(Augment::default().is_identity() && !a.is_identity());
    }
}
