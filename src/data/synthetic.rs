//! The built-in synthetic data set: procedural colour images, no download, any size.
//!
//! # What it draws
//!
//! Eight classes, chosen so that a colorizer has something to learn *and* something it cannot know:
//!
//! | label | class      | colour determined by                                                     |
//! |-------|------------|--------------------------------------------------------------------------|
//! | 0     | landscape  | position: blue sky (with white clouds) above a wavy horizon, textured green grass below |
//! | 1     | sunset     | position: red-orange to yellow sky, bright yellow sun disc, near-black ground |
//! | 2     | sea        | position: pale blue sky, straight horizon, blue sea with wave stripes, white foam, beige sand |
//! | 3     | brick wall | texture: red-brown bricks in a running bond, light grey mortar             |
//! | 4     | forest     | texture: vertical brown trunks (cylindrical shading, bark streaks) on mottled green foliage |
//! | 5     | balloon    | **ambiguous**: a shaded oval of uniformly random hue, with a string, on a neutral grey background |
//! | 6     | box        | **ambiguous**: a box (front, top and side faces) of uniformly random hue on a neutral grey background |
//! | 7     | stripes    | **ambiguous**: parallel stripes at a random angle, every stripe its own random hue |
//!
//! Classes 0-4 have one plausible colouring that follows from shape, texture and position, so
//! regression and classification should both get them right. Classes 5-7 have a hue that is uniformly
//! random across instances: the best regression answer is the washed-out average (near grey), while a
//! classifier over chroma bins can commit to one vivid guess. Every class has its own geometry and texture,
//! so classes are distinguishable in gray.
//!
//! # How it draws
//!
//! Each image is a function of `(u, v)` in `[0, 1]^2` (pixel centres, `v` pointing down) whose parameters
//! (horizon height and waviness, brick size, sun position, hue, ...) are drawn from a [`Rng`] seeded by
//! `(data_seed, split, index)`; so the same scene renders at any size (8 to 512 pixels and beyond) and the
//! same seed always gives the same bytes. Edges are anti-aliased analytically over one pixel, textures come
//! from smooth value noise on a coarse random lattice (resolution independent), and every image gets a
//! gentle random lighting gradient, a small brightness change and mild per-pixel Gaussian noise (mostly
//! luminance, σ ≈ 1.2% of full scale, plus σ ≈ 0.4% per channel). Colours are sRGB in `[0, 1]`, quantized
//! to `u8` at the end.
//!
//! The label of image `i` is `i % 8`, so any prefix of a split is balanced. Train and validation use
//! independent streams derived from `data_seed`, so they never share an image.

use std::f32::consts::{PI, TAU};
use std::sync::Arc;

use anyhow::ensure;

use super::{DataConfig, DataSet, ImageSource};
use crate::color::ColorSpace;
use crate::rng::Rng;

/// Class names, indexed by label.
pub const CLASSES: [&str; 8] = ["landscape", "sunset", "sea", "brick wall", "forest", "balloon", "box", "stripes"];

/// Labels of the classes whose hue is random across instances (balloon, box, stripes).
pub const AMBIGUOUS_CLASSES: [usize; 3] = [5, 6, 7];

/// Training images when `train_images` is 0.
pub const DEFAULT_TRAIN_IMAGES: usize = 5000;
/// Validation images when `val_images` is 0.
pub const DEFAULT_VAL_IMAGES: usize = 1000;

/// Which split a synthetic source draws; each has its own random stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Split {
    /// The training split.
    Train,
    /// The validation split.
    Val,
}

impl Split {
    fn stream(self) -> u64 {
        match self {
            Split::Train => 0x5452_4149_4E5F_5350, // "TRAIN_SP"
            Split::Val => 0x5641_4C5F_5350_4C54,   // "VAL_SPLT"
        }
    }
}

/// One split of the synthetic data set: `len` images of `side x side`, generated on demand.
#[derive(Clone, Debug)]
pub struct SyntheticSource {
    split_seed: u64,
    len: usize,
    side: usize,
}

impl SyntheticSource {
    /// The `split` of the data set seeded by `data_seed`, with `len` images of `side` pixels.
    pub fn new(data_seed: u64, split: Split, len: usize, side: usize) -> Self {
        SyntheticSource { split_seed: Rng::derive(data_seed, split.stream()).next_u64(), len, side }
    }
}

impl ImageSource for SyntheticSource {
    fn len(&self) -> usize {
        self.len
    }

    fn side(&self) -> usize {
        self.side
    }

    fn label(&self, index: usize) -> usize {
        index % CLASSES.len()
    }

    fn read_rgb(&self, index: usize, out: &mut [u8]) -> anyhow::Result<()> {
        ensure!(index < self.len, "synthetic image {index} is out of range ({} images)", self.len);
        let n = 3 * self.side * self.side;
        ensure!(out.len() == n, "output buffer holds {} bytes, a {0}x{0} image needs {n}", self.side);
        let mut rng = Rng::derive(self.split_seed, index as u64);
        render(self.label(index), &mut rng, self.side, out);
        Ok(())
    }
}

/// Opens the synthetic data set a config describes (`train_images`/`val_images` 0 mean 5000/1000).
pub fn open(cfg: &DataConfig) -> DataSet {
    let train = if cfg.train_images == 0 { DEFAULT_TRAIN_IMAGES } else { cfg.train_images };
    let val = if cfg.val_images == 0 { DEFAULT_VAL_IMAGES } else { cfg.val_images };
    DataSet {
        name: "synthetic".to_string(),
        classes: CLASSES.iter().map(|c| c.to_string()).collect(),
        train: Arc::new(SyntheticSource::new(cfg.data_seed, Split::Train, train, cfg.image_size)),
        val: Arc::new(SyntheticSource::new(cfg.data_seed, Split::Val, val, cfg.image_size)),
    }
}

type Rgb = [f32; 3];

/// Renders one image of class `class` (planar RGB u8, `side x side`) from `rng`.
pub fn render(class: usize, rng: &mut Rng, side: usize, out: &mut [u8]) {
    let hw = side * side;
    debug_assert_eq!(out.len(), 3 * hw);
    let scene = scene(class % CLASSES.len(), rng);
    // Global look: lighting gradient, brightness, noise.
    let (gx, gy) = (rng.range(-0.12, 0.12), rng.range(-0.12, 0.12));
    let brightness = rng.range(0.9, 1.06);
    let aa = 1.0 / side.max(1) as f32;
    for y in 0..side {
        let v = (y as f32 + 0.5) * aa;
        for x in 0..side {
            let u = (x as f32 + 0.5) * aa;
            let c = scene(u, v, aa);
            let shade = brightness * (1.0 + gx * (u - 0.5) + gy * (v - 0.5));
            let luma_noise = 0.012 * rng.normal();
            let p = y * side + x;
            for (ch, &value) in c.iter().enumerate() {
                let value = value * shade + luma_noise + 0.004 * rng.normal();
                out[ch * hw + p] = (value.clamp(0.0, 1.0) * 255.0).round() as u8;
            }
        }
    }
}

/// A scene: colour at `(u, v)` given the anti-aliasing width `aa` (one pixel in `u, v` units).
type Scene = Box<dyn Fn(f32, f32, f32) -> Rgb>;

fn scene(class: usize, rng: &mut Rng) -> Scene {
    match class {
        0 => landscape(rng),
        1 => sunset(rng),
        2 => sea(rng),
        3 => brick_wall(rng),
        4 => forest(rng),
        5 => balloon(rng),
        6 => boxed(rng),
        _ => stripes(rng),
    }
}

// ---------------------------------------------------------------------------------------------------------
// Helpers

fn lerp(a: Rgb, b: Rgb, t: f32) -> Rgb {
    [a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t, a[2] + (b[2] - a[2]) * t]
}

fn scale(c: Rgb, s: f32) -> Rgb {
    [c[0] * s, c[1] * s, c[2] * s]
}

/// Multiplies each channel by a factor in [1 - amount, 1 + amount): a small colour variation that keeps
/// the hue family.
fn jitter(rng: &mut Rng, c: Rgb, amount: f32) -> Rgb {
    [
        c[0] * rng.range(1.0 - amount, 1.0 + amount),
        c[1] * rng.range(1.0 - amount, 1.0 + amount),
        c[2] * rng.range(1.0 - amount, 1.0 + amount),
    ]
}

/// Coverage of a shape at signed distance `d` (negative inside), anti-aliased over `aa`.
fn coverage(d: f32, aa: f32) -> f32 {
    (0.5 - d / aa).clamp(0.0, 1.0)
}

fn smoothstep(e0: f32, e1: f32, x: f32) -> f32 {
    let t = ((x - e0) / (e1 - e0)).clamp(0.0, 1.0);
    t * t * (3.0 - 2.0 * t)
}

/// A random hue at a vivid saturation and value.
fn random_vivid(rng: &mut Rng) -> Rgb {
    let (hue, sat, value) = (rng.range(0.0, 360.0), rng.range(0.55, 0.95), rng.range(0.65, 0.95));
    // The color module's HSV units: V and S in [0, 100], H in degrees.
    ColorSpace::Hsv.to_srgb([value * 100.0, hue, sat * 100.0])
}

/// Smooth periodic value noise in [0, 1]: random values on an `n x n` lattice over the unit square,
/// interpolated with a smoothstep. Resolution independent.
struct ValueNoise {
    n: usize,
    values: Vec<f32>,
}

impl ValueNoise {
    fn new(rng: &mut Rng, n: usize) -> Self {
        ValueNoise { n, values: (0..n * n).map(|_| rng.uniform()).collect() }
    }

    fn at(&self, u: f32, v: f32) -> f32 {
        let n = self.n as f32;
        let (x, y) = ((u * n).rem_euclid(n), (v * n).rem_euclid(n));
        let (x0, y0) = (x.floor() as usize % self.n, y.floor() as usize % self.n);
        let (x1, y1) = ((x0 + 1) % self.n, (y0 + 1) % self.n);
        let (fx, fy) = (smoothstep(0.0, 1.0, x.fract()), smoothstep(0.0, 1.0, y.fract()));
        let g = |i: usize, j: usize| self.values[j * self.n + i];
        let top = g(x0, y0) + (g(x1, y0) - g(x0, y0)) * fx;
        let bottom = g(x0, y1) + (g(x1, y1) - g(x0, y1)) * fx;
        top + (bottom - top) * fy
    }
}

/// A uniform value in [0, 1) attached to the integer cell `(a, b)` of a pattern (one brick).
fn cell_random(seed: u64, a: i64, b: i64) -> f32 {
    Rng::derive(seed, (a as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (b as u64)).uniform()
}

/// A neutral (equal RGB) background: grey level in [0.35, 0.85] with a gentle vertical gradient.
fn neutral_background(rng: &mut Rng) -> impl Fn(f32) -> Rgb + use<> {
    let g0 = rng.range(0.35, 0.85);
    let slope = rng.range(-0.12, 0.12);
    move |v| {
        let g = g0 + slope * (v - 0.5);
        [g, g, g]
    }
}

/// Signed distance (negative inside; exact on edges, approximate near corners) of `p` to a convex polygon
/// with vertices in clockwise or counter-clockwise order.
fn convex_sd(p: (f32, f32), verts: &[(f32, f32)]) -> f32 {
    let n = verts.len();
    // Orientation: sign of the area.
    let area: f32 = (0..n)
        .map(|i| {
            let (a, b) = (verts[i], verts[(i + 1) % n]);
            a.0 * b.1 - b.0 * a.1
        })
        .sum();
    let sign = if area >= 0.0 { 1.0 } else { -1.0 };
    (0..n)
        .map(|i| {
            let (a, b) = (verts[i], verts[(i + 1) % n]);
            let (ex, ey) = (b.0 - a.0, b.1 - a.1);
            let len = (ex * ex + ey * ey).sqrt().max(1e-9);
            // Outward normal for counter-clockwise (positive area) order is (ey, -ex).
            sign * ((p.0 - a.0) * ey - (p.1 - a.1) * ex) / len
        })
        .fold(f32::NEG_INFINITY, f32::max)
}

// ---------------------------------------------------------------------------------------------------------
// Scenes whose colour follows from shape, texture and position

fn landscape(rng: &mut Rng) -> Scene {
    let h0 = rng.range(0.35, 0.6);
    let (a1, f1, p1) = (rng.range(0.02, 0.07), rng.range(1.0, 2.5), rng.range(0.0, TAU));
    let (a2, f2, p2) = (rng.range(0.005, 0.025), rng.range(3.0, 6.0), rng.range(0.0, TAU));
    let sky_top = jitter(rng, [0.20, 0.40, 0.85], 0.08);
    let sky_low = jitter(rng, [0.60, 0.76, 0.95], 0.05);
    let grass = jitter(rng, [0.24, 0.52, 0.13], 0.1);
    let cloud_cover = rng.range(0.0, 1.0);
    let clouds = ValueNoise::new(rng, 5);
    let patches = ValueNoise::new(rng, 7);
    let blades = ValueNoise::new(rng, 48);
    Box::new(move |u, v, aa| {
        let horizon = h0 + a1 * (TAU * f1 * u + p1).sin() + a2 * (TAU * f2 * u + p2).sin();
        let t = (v / horizon).clamp(0.0, 1.0);
        let mut sky = lerp(sky_top, sky_low, t);
        let cloud = smoothstep(0.55, 0.8, clouds.at(u, v * 2.0)) * cloud_cover * (1.0 - t);
        sky = lerp(sky, [0.96, 0.96, 0.97], cloud);
        let depth = ((v - horizon) / (1.0 - horizon).max(0.05)).clamp(0.0, 1.0);
        let texture = 0.62 + 0.3 * patches.at(u, v) + 0.35 * blades.at(u * 1.5, v * 0.6 + depth);
        let ground = scale(grass, texture * (1.1 - 0.3 * depth));
        lerp(sky, ground, coverage(horizon - v, aa))
    })
}

fn sunset(rng: &mut Rng) -> Scene {
    let hg = rng.range(0.6, 0.78);
    let (a, f, p) = (rng.range(0.0, 0.04), rng.range(0.5, 2.0), rng.range(0.0, TAU));
    let top = jitter(rng, [0.55, 0.16, 0.20], 0.1);
    let mid = jitter(rng, [0.95, 0.42, 0.12], 0.06);
    let low = jitter(rng, [1.0, 0.74, 0.30], 0.04);
    let (cx, r) = (rng.range(0.25, 0.75), rng.range(0.07, 0.14));
    let cy = hg - rng.range(-0.02, 0.22);
    let sun = [1.0, 0.93, 0.55];
    let ground = jitter(rng, [0.10, 0.07, 0.07], 0.15);
    let texture = ValueNoise::new(rng, 16);
    Box::new(move |u, v, aa| {
        let horizon = hg + a * (TAU * f * u + p).sin();
        let t = (v / hg).clamp(0.0, 1.0);
        let mut c = if t < 0.5 { lerp(top, mid, t * 2.0) } else { lerp(mid, low, t * 2.0 - 1.0) };
        let d = ((u - cx).powi(2) + (v - cy).powi(2)).sqrt();
        let glow = 0.35 * (-((d - r).max(0.0) / (2.0 * r)).powi(2)).exp();
        c = lerp(c, [1.0, 0.85, 0.5], glow);
        c = lerp(c, sun, coverage(d - r, aa));
        let g = scale(ground, 0.8 + 0.4 * texture.at(u, v));
        lerp(c, g, coverage(horizon - v, aa))
    })
}

fn sea(rng: &mut Rng) -> Scene {
    let hs = rng.range(0.3, 0.45);
    let tilt = rng.range(-0.02, 0.02);
    let (s0, sa, sf, sp) = (rng.range(0.68, 0.85), rng.range(0.01, 0.04), rng.range(0.7, 2.0), rng.range(0.0, TAU));
    let sky_top = jitter(rng, [0.55, 0.75, 0.95], 0.05);
    let sky_low = [0.86, 0.92, 0.98];
    let sea_far = jitter(rng, [0.10, 0.30, 0.55], 0.08);
    let sea_near = jitter(rng, [0.14, 0.50, 0.68], 0.08);
    let sand = jitter(rng, [0.88, 0.78, 0.58], 0.04);
    let (k, wobble, wp) = (rng.range(9.0, 15.0), rng.range(0.2, 0.6), rng.range(0.0, TAU));
    let grain = ValueNoise::new(rng, 64);
    Box::new(move |u, v, aa| {
        let horizon = hs + tilt * (u - 0.5);
        let shore = s0 + sa * (TAU * sf * u + sp).sin();
        let sky = lerp(sky_top, sky_low, (v / horizon).clamp(0.0, 1.0));
        let depth = ((v - horizon) / (shore - horizon).max(0.05)).clamp(0.0, 1.0);
        let wave = (TAU * k * depth.sqrt() + wobble * (TAU * 3.0 * u + wp).sin()).sin();
        let water = scale(lerp(sea_far, sea_near, depth), 0.86 + 0.14 * wave);
        let foam = smoothstep(0.02, 0.0, shore - v) * 0.8;
        let water = lerp(water, [0.95, 0.97, 0.98], foam);
        let beach = scale(sand, 0.9 + 0.2 * grain.at(u, v));
        let lower = lerp(water, beach, coverage(shore - v, aa));
        lerp(sky, lower, coverage(horizon - v, aa))
    })
}

fn brick_wall(rng: &mut Rng) -> Scene {
    let bh = rng.range(0.07, 0.13);
    let bw = bh * rng.range(1.8, 2.6);
    let mortar = bh * rng.range(0.12, 0.2);
    let (ox, oy) = (rng.range(0.0, 1.0), rng.range(0.0, 1.0));
    let brick = jitter(rng, [0.62, 0.26, 0.16], 0.08);
    let mortar_colour = jitter(rng, [0.78, 0.76, 0.70], 0.04);
    let seed = rng.next_u64();
    let texture = ValueNoise::new(rng, 40);
    Box::new(move |u, v, aa| {
        let row = ((v + oy) / bh).floor();
        let fy = (v + oy) - row * bh;
        let shift = if (row as i64).rem_euclid(2) == 1 { bw * 0.5 } else { 0.0 };
        let col = ((u + ox + shift) / bw).floor();
        let fx = (u + ox + shift) - col * bw;
        // Distance to the nearest mortar line centre, minus half its width: negative inside mortar.
        let dist = fx.min(bw - fx).min(fy.min(bh - fy)) - mortar * 0.5;
        let (r1, r2) = (cell_random(seed, row as i64, col as i64), cell_random(seed ^ 1, row as i64, col as i64));
        let b = [brick[0] * (0.75 + 0.4 * r1), brick[1] * (0.7 + 0.45 * r2), brick[2] * (0.75 + 0.4 * r1)];
        let tex = 0.85 + 0.3 * texture.at(u, v);
        lerp(scale(b, tex), scale(mortar_colour, 0.92 + 0.1 * tex), coverage(dist, aa))
    })
}

fn forest(rng: &mut Rng) -> Scene {
    let foliage = jitter(rng, [0.17, 0.42, 0.14], 0.1);
    let ground_line = rng.range(0.82, 0.93);
    let ground = jitter(rng, [0.30, 0.25, 0.12], 0.1);
    let bark = jitter(rng, [0.38, 0.24, 0.13], 0.08);
    let count = 3 + rng.below(4);
    let mut trunks: Vec<(f32, f32)> = (0..count).map(|_| (rng.range(0.0, 1.0), rng.range(0.03, 0.08))).collect();
    trunks.sort_by(|a, b| a.1.total_cmp(&b.1)); // thin (far) first, wide (near) drawn over them
    let leaves = ValueNoise::new(rng, 10);
    let fine = ValueNoise::new(rng, 30);
    let streaks = ValueNoise::new(rng, 24);
    Box::new(move |u, v, aa| {
        let mottled = 0.5 + 0.45 * leaves.at(u, v) + 0.35 * fine.at(u, v);
        let mut c = scale(foliage, mottled);
        c = lerp(c, scale(ground, 0.85 + 0.3 * fine.at(u * 2.0, v)), coverage(ground_line - v, aa));
        for (i, &(x, w)) in trunks.iter().enumerate() {
            let half = w * 0.5;
            let t = ((u - x) / half).clamp(-1.0, 1.0);
            let cylinder = 0.5 + 0.5 * (1.0 - t * t).sqrt();
            let streak = 0.8 + 0.35 * streaks.at(t * 0.15 + i as f32 * 0.37, v * 0.1);
            let trunk = scale(bark, cylinder * streak);
            let bottom = ground_line + 0.02 * (i as f32 / 6.0);
            let d = ((u - x).abs() - half).max(v - bottom);
            c = lerp(c, trunk, coverage(d, aa));
        }
        c
    })
}

// ---------------------------------------------------------------------------------------------------------
// Scenes whose hue is random (ambiguous)

fn balloon(rng: &mut Rng) -> Scene {
    let background = neutral_background(rng);
    let colour = random_vivid(rng);
    let (cx, cy) = (rng.range(0.3, 0.7), rng.range(0.28, 0.5));
    let rx = rng.range(0.14, 0.24);
    let ry = rx * 1.18;
    let (sway, phase) = (rng.range(0.01, 0.04), rng.range(0.0, TAU));
    let light = {
        let (x, y, z) = (-0.45f32, -0.55f32, 0.7f32);
        let n = (x * x + y * y + z * z).sqrt();
        (x / n, y / n, z / n)
    };
    Box::new(move |u, v, aa| {
        let mut c = background(v);
        // String: a thin dark curve from the balloon's bottom down to the image edge.
        let top = cy + ry;
        if v > top {
            let sx = cx + sway * (PI * 3.0 * (v - top) + phase).sin();
            let d = (u - sx).abs() - 0.003;
            c = lerp(c, [0.22, 0.22, 0.22], coverage(d, aa.max(0.004)) * 0.9);
        }
        let (dx, dy) = ((u - cx) / rx, (v - cy) / ry);
        let r2 = dx * dx + dy * dy;
        let sd = (r2.sqrt() - 1.0) * rx.min(ry);
        if sd < aa {
            let z = (1.0 - r2).max(0.0).sqrt();
            let diffuse = (dx * light.0 + dy * light.1 + z * light.2).max(0.0);
            // Specular: reflection of the light about the normal, viewer along +z.
            let ndotl = dx * light.0 + dy * light.1 + z * light.2;
            let rz = 2.0 * ndotl * z - light.2;
            let spec = rz.max(0.0).powi(24) * 0.55;
            let shaded = lerp(scale(colour, 0.35 + 0.75 * diffuse), [1.0, 1.0, 1.0], spec);
            c = lerp(c, shaded, coverage(sd, aa));
        }
        c
    })
}

fn boxed(rng: &mut Rng) -> Scene {
    let background = neutral_background(rng);
    let colour = random_vivid(rng);
    let (w, h) = (rng.range(0.3, 0.48), rng.range(0.25, 0.4));
    let dx = rng.range(0.07, 0.14);
    let dy = -dx * rng.range(0.6, 0.9);
    let x0 = rng.range(0.08, 0.92 - w - dx);
    let y0 = rng.range(0.05 - dy, 0.92 - h);
    let front = [(x0, y0), (x0 + w, y0), (x0 + w, y0 + h), (x0, y0 + h)];
    let top = [(x0, y0), (x0 + dx, y0 + dy), (x0 + w + dx, y0 + dy), (x0 + w, y0)];
    let side = [(x0 + w, y0), (x0 + w + dx, y0 + dy), (x0 + w + dx, y0 + h + dy), (x0 + w, y0 + h)];
    let shadow = [
        (x0 + 0.03, y0 + h),
        (x0 + w + 0.03, y0 + h),
        (x0 + w + dx + 0.06, y0 + h + 0.05),
        (x0 + dx + 0.06, y0 + h + 0.05),
    ];
    Box::new(move |u, v, aa| {
        let p = (u, v);
        let mut c = background(v);
        c = scale(c, 1.0 - 0.35 * coverage(convex_sd(p, &shadow), 0.03));
        let shade_front = 0.88 - 0.12 * ((v - y0) / h).clamp(0.0, 1.0);
        c = lerp(c, scale(colour, shade_front), coverage(convex_sd(p, &front), aa));
        c = lerp(c, lerp(colour, [1.0, 1.0, 1.0], 0.18), coverage(convex_sd(p, &top), aa));
        c = lerp(c, scale(colour, 0.58), coverage(convex_sd(p, &side), aa));
        c
    })
}

fn stripes(rng: &mut Rng) -> Scene {
    let angle = rng.range(0.0, PI);
    let (ca, sa) = (angle.cos(), angle.sin());
    let period = rng.range(0.09, 0.22);
    let phase = rng.range(0.0, 1.0);
    let seed = rng.next_u64();
    let stripe_colour = move |k: i64| {
        let mut r = Rng::derive(seed, k as u64);
        random_vivid(&mut r)
    };
    Box::new(move |u, v, aa| {
        let t = ((u - 0.5) * ca + (v - 0.5) * sa) / period + phase;
        let k = t.floor();
        let f = t - k;
        let own = stripe_colour(k as i64);
        // Blend with the neighbour across the nearest boundary over one pixel.
        let (d, neighbour) = if f < 0.5 { (f, k as i64 - 1) } else { (1.0 - f, k as i64 + 1) };
        let mix = (0.5 - d * period / aa).clamp(0.0, 0.5);
        lerp(own, stripe_colour(neighbour), mix)
    })
}
