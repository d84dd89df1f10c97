//! Chroma quantization for classification (Zhang, Isola, Efros 2016, "Colorful Image Colorization").
//!
//! Owns the in-gamut chroma bins of a color space ([`ChromaBins`]), nearest-bin lookup, soft-encoding of targets,
//! the empirical class prior, class-rebalancing weights ([`rebalance_weights`]) and annealed-mean decoding of
//! predicted distributions.
//!
//! The grid: along each chroma axis, cell `k` covers `[(k - 1/2) s, (k + 1/2) s)` and is centred at `k s`, with
//! `s` the bin size, so a value quantizes to `round(v / s) s`. The HSV hue axis is a circle: it has
//! `round(360 / bin_size)` cells of equal width (exactly `bin_size` when it divides 360), centred at 0, s, 2s, ...,
//! and hue 360 is hue 0.

use super::ColorSpace;
use super::convert::{encode_u8_planar, image_count};
use rayon::prelude::*;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

const HUE_PERIOD: f32 = 360.0;
/// Cells of the lookup table beyond the outermost kept bins on each non-circular side: chroma within this margin
/// (model outputs slightly outside the gamut) is looked up in O(1); farther points fall back to a full search.
const MARGIN: i64 = 4;
/// The smallest bin size accepted. The Lab and YUV gamuts are found from a sample of the 8-bit colours (see
/// [`ChromaBins`]) that is checked to hit exactly the same cells as all 2^24 of them down to this size; finer
/// than that the sample could leave holes, and the bins would be finer than 8-bit data can resolve.
pub const MIN_BIN_SIZE: f32 = 1.0;
/// `cell_bin` value of a table cell that is not a kept bin.
const NO_BIN: u32 = u32::MAX;

/// One axis of the bin grid and of the lookup table over it.
#[derive(Clone, Copy, Debug)]
struct Axis {
    step: f32,
    /// Grid index of the table's first cell (0 on the circular axis).
    first: i64,
    /// Cells in the table (the whole circle on the circular axis).
    count: usize,
    circular: bool,
}

impl Axis {
    /// Grid index of the cell that holds `v` (the circular axis wraps it into `0..count`).
    fn cell(&self, v: f32) -> i64 {
        // A float -> int `as` cast saturates (NaN gives 0).
        let k = (v / self.step).round() as i64;
        if self.circular { k.rem_euclid(self.count as i64) } else { k }
    }

    /// Table position of `v`, None outside the table.
    fn slot(&self, v: f32) -> Option<usize> {
        // Infinite input saturates to i64::MIN / MAX, where the subtraction can overflow: that is outside too.
        let s = self.cell(v).checked_sub(self.first)?;
        usize::try_from(s).ok().filter(|&s| s < self.count)
    }

    fn center(&self, slot: usize) -> f32 {
        (self.first + slot as i64) as f32 * self.step
    }

    /// |a - b| along this axis (the shorter way round on the circle).
    fn diff(&self, a: f32, b: f32) -> f32 {
        let d = (a - b).abs();
        if self.circular {
            let d = d.rem_euclid(HUE_PERIOD);
            d.min(HUE_PERIOD - d)
        } else {
            d
        }
    }

    /// The slot `d` cells away from `slot`, None off the table's edge (the circle has no edge).
    fn offset(&self, slot: usize, d: isize) -> Option<usize> {
        let s = slot as isize + d;
        if self.circular {
            Some(s.rem_euclid(self.count as isize) as usize)
        } else {
            usize::try_from(s).ok().filter(|&s| s < self.count)
        }
    }

    /// First slot and length of the window of slots within `r` cells of `slot` (clipped to the table, or the whole
    /// circle), and whether it is the whole axis.
    fn window(&self, slot: usize, r: usize) -> (usize, usize, bool) {
        if self.circular {
            if 2 * r + 1 >= self.count { (0, self.count, true) } else { (slot + self.count - r, 2 * r + 1, false) }
        } else {
            let lo = slot.saturating_sub(r);
            let hi = (slot + r).min(self.count - 1);
            (lo, hi - lo + 1, lo == 0 && hi == self.count - 1)
        }
    }
}

/// The in-gamut chroma bins of one color space at one bin size, with an O(1) nearest-bin table.
///
/// Kept bins, Lab and YUV: the cells that some 8-bit sRGB colour (at any luminance) quantizes to, found by
/// encoding, with the same batched path as the data, every 8-bit colour on the surface of the RGB cube plus a
/// lattice of the interior with step 15. The chroma extremes lie on the cube's surface (an interior colour can be
/// moved along its curve of constant chroma to the surface), and the ignored test
/// `sample_hits_the_same_cells_as_all_8bit_colours` checks against all 2^24 colours that this sample finds exactly
/// the same cells at bin sizes 10, 5, 2 and [`MIN_BIN_SIZE`]. Since the data are 8-bit images, every data
/// pixel's own cell is a kept bin. (With real-valued sRGB colours Lab at size 10 would have one bin more, 262:
/// the cell centred at (20, -80) is touched only by a sliver near (25, -75) that no 8-bit colour lands in.)
///
/// Kept bins, HSV: the whole rectangle of hue x saturation cells, hue in [0, 360), saturation in [0, 100], since
/// every such (H, S) is the chroma of some sRGB colour. (The surface argument does not carry over to 8-bit HSV:
/// (H, S) depends only on ratios of the channels, and at small bin sizes some cells are reached only by interior
/// 8-bit colours, others, near S = 0, by none; at size 10 the 8-bit colours do reach all 396 cells.)
///
/// Bin counts at bin size 10: **Lab 261**, **YUV 549**, **HSV 396** (36 hues x 11 saturations).
/// Zhang et al. report 313 for Lab without saying how they decided "in gamut". The 313-bin list circulated with
/// their code (`pts_in_hull.npy`, as transcribed in third-party code) contains all 261 bins found here, the
/// sliver cell (20, -80) above, and 51 cells that no sRGB colour reaches at all (for instance b = 100, whose cell
/// starts at 95 > 94.48, the largest b of any sRGB colour, at yellow; or (100, -90)). Neither "centre inside the
/// ab projection of the gamut" (229 bins) nor "centre inside its convex hull" (233) nor "cell meeting the hull"
/// (269) reproduces 313, so their gamut was presumably taken from data or with a looser criterion; here the
/// criterion is exact and documented instead.
///
/// Bins are numbered in row-major order of (chroma1, chroma2) cells; centres are in the space's chroma units.
#[derive(Debug)]
pub struct ChromaBins {
    space: ColorSpace,
    bin_size: f32,
    centers: Vec<[f32; 2]>,
    axes: [Axis; 2],
    /// Per table cell (row-major over the two axes): the kept bin of that cell, or [`NO_BIN`].
    cell_bin: Vec<u32>,
    /// Per table cell: `candidates[cand_start[c]..cand_start[c + 1]]` are the bins that are nearest to some point
    /// of cell `c`: the cell's own bin when it is kept, else every boundary bin that can win.
    cand_start: Vec<u32>,
    candidates: Vec<u32>,
}

type Cache = Mutex<HashMap<(ColorSpace, u32), Arc<ChromaBins>>>;

impl ChromaBins {
    /// The in-gamut bins of `space` on a grid of `bin_size` chroma units (see the type's documentation).
    /// Cached per (space, bin size): later calls return the same `Arc`.
    ///
    /// Panics unless `bin_size` is finite and at least [`MIN_BIN_SIZE`].
    pub fn new(space: ColorSpace, bin_size: f32) -> Arc<ChromaBins> {
        assert!(
            bin_size.is_finite() && bin_size >= MIN_BIN_SIZE,
            "bin size must be a number >= {MIN_BIN_SIZE}, got {bin_size}"
        );
        static CACHE: OnceLock<Cache> = OnceLock::new();
        let cache = CACHE.get_or_init(Cache::default);
        let key = (space, bin_size.to_bits());
        if let Some(bins) = cache.lock().unwrap_or_else(PoisonError::into_inner).get(&key) {
            return Arc::clone(bins);
        }
        // Built without holding the lock: the build uses rayon, and a worker thread that steals a task calling
        // `new` while this thread held the (non-reentrant) lock would deadlock. Two racing builds give equal
        // results; the first one stored wins.
        let built = Arc::new(Self::build(space, bin_size));
        let mut map = cache.lock().unwrap_or_else(PoisonError::into_inner);
        Arc::clone(map.entry(key).or_insert(built))
    }

    fn build(space: ColorSpace, bin_size: f32) -> ChromaBins {
        let chroma = match space.hue_channel() {
            Some(hue) => hue_saturation_cells(hue, bin_size),
            None => sample_gamut_chroma(space),
        };
        let grid_axis = |channel: usize, values: &[f32]| {
            if space.hue_channel() == Some(channel) {
                let count = (HUE_PERIOD / bin_size).round().max(1.0) as usize;
                return Axis { step: HUE_PERIOD / count as f32, first: 0, count, circular: true };
            }
            // The table spans the sampled cells plus the margin.
            let (lo, hi) = values.iter().fold((i64::MAX, i64::MIN), |(lo, hi), &v| {
                let k = (v / bin_size).round() as i64;
                (lo.min(k), hi.max(k))
            });
            Axis { step: bin_size, first: lo - MARGIN, count: (hi - lo + 1 + 2 * MARGIN) as usize, circular: false }
        };
        let axes = [grid_axis(0, &chroma[0]), grid_axis(1, &chroma[1])];
        let [a0, a1] = axes;
        let mut hit = vec![false; a0.count * a1.count];
        for (&v0, &v1) in chroma[0].iter().zip(&chroma[1]) {
            // Every sampled value lies inside the table just fitted, so both slots exist.
            if let (Some(s0), Some(s1)) = (a0.slot(v0), a1.slot(v1)) {
                hit[s0 * a1.count + s1] = true;
            }
        }
        let mut cell_bin = vec![NO_BIN; hit.len()];
        let mut centers = Vec::new();
        for (cell, _) in hit.iter().enumerate().filter(|(_, h)| **h) {
            cell_bin[cell] = centers.len() as u32;
            centers.push([a0.center(cell / a1.count), a1.center(cell % a1.count)]);
        }
        let mut bins =
            ChromaBins { space, bin_size, centers, axes, cell_bin, cand_start: Vec::new(), candidates: Vec::new() };
        bins.build_candidates();
        bins
    }

    /// Candidate lists of the lookup table. A kept cell's only candidate is itself (the grid's Voronoi cells are
    /// its cells). For another cell, the nearest kept bin of any point p in it is a boundary bin (one with a
    /// 4-neighbour that is not kept): from an interior bin b, some axis has |p - b| > step / 2 along it (p is not
    /// in b's cell), and the neighbour one step towards p along that axis is then closer. With D the distance from
    /// the cell's centre to its nearest kept bin and h the cell's half diagonal, every point of the cell has a bin
    /// within D + h, and a bin farther than D + 2h from the centre is farther than D + h from every point: the
    /// candidates are the boundary bins within D + 2h of the centre.
    fn build_candidates(&mut self) {
        let [a0, a1] = self.axes;
        let kept = |s0: Option<usize>, s1: Option<usize>| match (s0, s1) {
            (Some(s0), Some(s1)) => self.cell_bin[s0 * a1.count + s1] != NO_BIN,
            _ => false,
        };
        let boundary: Vec<u32> = (0..self.cell_bin.len())
            .filter(|&cell| {
                let (s0, s1) = (cell / a1.count, cell % a1.count);
                kept(Some(s0), Some(s1))
                    && [(-1, 0), (1, 0), (0, -1), (0, 1)]
                        .iter()
                        .any(|&(d0, d1)| !kept(a0.offset(s0, d0), a1.offset(s1, d1)))
            })
            .map(|cell| self.cell_bin[cell])
            .collect();
        let half_diagonal = 0.5 * a0.step.hypot(a1.step);
        let mut cand_start = Vec::with_capacity(self.cell_bin.len() + 1);
        let mut candidates = Vec::new();
        let mut dist = Vec::with_capacity(boundary.len());
        for cell in 0..self.cell_bin.len() {
            cand_start.push(candidates.len() as u32);
            let own = self.cell_bin[cell];
            if own != NO_BIN {
                candidates.push(own);
                continue;
            }
            let center = [a0.center(cell / a1.count), a1.center(cell % a1.count)];
            dist.clear();
            dist.extend(boundary.iter().map(|&b| self.distance(center, self.centers[b as usize])));
            let reach = dist.iter().fold(f32::INFINITY, |m, &d| m.min(d)) + 2.0 * half_diagonal;
            // The small slack keeps a bin whose bound is met with equality despite rounding.
            candidates.extend(boundary.iter().zip(&dist).filter(|(_, d)| **d <= reach * 1.0001).map(|(&b, _)| b));
        }
        cand_start.push(candidates.len() as u32);
        self.cand_start = cand_start;
        self.candidates = candidates;
    }

    /// The color space whose chroma these bins quantize.
    pub fn space(&self) -> ColorSpace {
        self.space
    }

    /// The grid step in chroma units, as passed to [`ChromaBins::new`].
    pub fn bin_size(&self) -> f32 {
        self.bin_size
    }

    /// Number of bins Q.
    pub fn len(&self) -> usize {
        self.centers.len()
    }

    /// Always false (every space has in-gamut colours); here for API symmetry with `len`.
    pub fn is_empty(&self) -> bool {
        self.centers.is_empty()
    }

    /// Bin centres in the space's chroma units, indexed by bin.
    pub fn centers(&self) -> &[[f32; 2]] {
        &self.centers
    }

    /// Table cell of a chroma value, None outside the table.
    fn table_cell(&self, c: [f32; 2]) -> Option<(usize, usize)> {
        Some((self.axes[0].slot(c[0])?, self.axes[1].slot(c[1])?))
    }

    /// Index of the bin nearest to `c` (by [`ChromaBins::distance`]); chroma outside the gamut snaps to the
    /// nearest kept bin. O(1) inside the lookup table (the gamut plus a margin), a full search outside it.
    pub fn nearest(&self, c: [f32; 2]) -> usize {
        let candidates = match self.table_cell(c) {
            Some((s0, s1)) => {
                let cell = s0 * self.axes[1].count + s1;
                &self.candidates[self.cand_start[cell] as usize..self.cand_start[cell + 1] as usize]
            }
            None => return self.nearest_of(0..self.centers.len() as u32, c),
        };
        if let [only] = candidates { *only as usize } else { self.nearest_of(candidates.iter().copied(), c) }
    }

    fn nearest_of(&self, candidates: impl Iterator<Item = u32>, c: [f32; 2]) -> usize {
        let mut best = (0, f32::INFINITY);
        for b in candidates {
            let d = self.distance2(c, self.centers[b as usize]);
            if d < best.1 {
                best = (b as usize, d);
            }
        }
        best.0
    }

    /// Euclidean distance in chroma units; on the HSV hue axis the difference is taken the shorter way round.
    pub fn distance(&self, a: [f32; 2], b: [f32; 2]) -> f32 {
        self.distance2(a, b).sqrt()
    }

    fn distance2(&self, a: [f32; 2], b: [f32; 2]) -> f32 {
        let d0 = self.axes[0].diff(a[0], b[0]);
        let d1 = self.axes[1].diff(a[1], b[1]);
        d0 * d0 + d1 * d1
    }

    /// Soft-encoding of one chroma value: its `k` nearest bins, nearest first, weighted by the Gaussian kernel
    /// exp(-d^2 / (2 sigma^2)) and normalised to sum 1, written into `out` as (bin, weight).
    /// `k == 1` is the hard one-hot encoding. `sigma == 0` puts all the weight on the nearest bin(s).
    ///
    /// Panics unless `1 <= k <= self.len()` and `out.len() == k`.
    pub fn soft_encode(&self, c: [f32; 2], k: usize, sigma: f32, out: &mut [(u32, f32)]) {
        assert!((1..=self.len()).contains(&k), "k must be in 1..={}, got {k}", self.len());
        assert_eq!(out.len(), k, "out must hold k pairs");
        if k == 1 {
            out[0] = (self.nearest(c) as u32, 1.0);
            return;
        }
        self.k_nearest(c, out);
        // Subtracting the smallest d^2 leaves the normalised weights unchanged and keeps the nearest bin's weight
        // at exactly 1, so far-away chroma or a tiny sigma cannot underflow every weight to 0 (0 / 0).
        let d2_min = out[0].1;
        let scale = -0.5 / (sigma * sigma);
        let mut sum = 0.0;
        for (_, w) in out.iter_mut() {
            let excess = *w - d2_min;
            *w = if excess > 0.0 { (excess * scale).exp() } else { 1.0 };
            sum += *w;
        }
        for (_, w) in out.iter_mut() {
            *w /= sum;
        }
    }

    /// The `out.len()` nearest bins to `c` as (bin, squared distance), nearest first.
    fn k_nearest(&self, c: [f32; 2], out: &mut [(u32, f32)]) {
        let Some((s0, s1)) = self.table_cell(c) else {
            let mut filled = 0;
            for (b, &center) in self.centers.iter().enumerate() {
                insert_sorted(out, &mut filled, b as u32, self.distance2(c, center));
            }
            return;
        };
        // Search growing square windows of cells around c's cell. A bin outside the window of radius r is at
        // least r + 1 cells away along some axis, so farther than (r + 1/2) steps from c: once the k-th best
        // inside is within that, the answer is exact.
        let [a0, a1] = self.axes;
        let min_step = a0.step.min(a1.step);
        let k = out.len();
        for r in 1.. {
            let mut filled = 0;
            let (start0, len0, all0) = a0.window(s0, r);
            let (start1, len1, all1) = a1.window(s1, r);
            for t0 in (start0..start0 + len0).map(|t| t % a0.count) {
                for t1 in (start1..start1 + len1).map(|t| t % a1.count) {
                    let b = self.cell_bin[t0 * a1.count + t1];
                    if b != NO_BIN {
                        insert_sorted(out, &mut filled, b, self.distance2(c, self.centers[b as usize]));
                    }
                }
            }
            let covers_table = all0 && all1;
            let bound = (r as f32 + 0.5) * min_step;
            if covers_table || (filled == k && out[k - 1].1 <= bound * bound) {
                return;
            }
        }
    }

    /// Soft-encoded targets for a batch: `chroma` is `[n][2][hw]`, the result is dense `[n][Q][hw]` with the
    /// weights of [`ChromaBins::soft_encode`] (one-hot when `k == 1`) and zeros elsewhere. Rayon over images.
    pub fn encode_batch(&self, chroma: &[f32], hw: usize, k: usize, sigma: f32) -> Vec<f32> {
        assert!((1..=self.len()).contains(&k), "k must be in 1..={}, got {k}", self.len());
        let Some(n) = image_count(chroma.len(), 2, hw) else {
            return Vec::new();
        };
        let q = self.len();
        let mut out = vec![0.0; n * q * hw];
        out.par_chunks_mut(q * hw).zip(chroma.par_chunks(2 * hw)).for_each(|(dst, src)| {
            let (c1, c2) = src.split_at(hw);
            let mut pairs = vec![(0u32, 0.0f32); k];
            for (p, (&v1, &v2)) in c1.iter().zip(c2).enumerate() {
                self.soft_encode([v1, v2], k, sigma, &mut pairs);
                for &(b, w) in &pairs {
                    dst[b as usize * hw + p] = w;
                }
            }
        });
        out
    }

    /// Empirical distribution of the nearest bins of `chroma` (`[n][2][hw]`), smoothed by a Gaussian of `sigma`
    /// chroma units over the bin centres (p'_i = sum_j p_j exp(-d(i, j)^2 / (2 sigma^2))) and renormalised to sum 1.
    /// `sigma <= 0` skips the smoothing; no data gives the uniform distribution.
    /// (`hw` is what splits each image of `[n][2][hw]` into its two channels.)
    pub fn prior(&self, chroma: &[f32], hw: usize, sigma: f32) -> Vec<f32> {
        let mut counts = vec![0u64; self.len()];
        self.count(chroma, hw, &mut counts);
        self.prior_of_counts(&counts, sigma)
    }

    /// Adds the pixels of `chroma` (`[n][2][hw]`) to `counts` (one per bin), each to its nearest bin: what
    /// [`prior`](Self::prior) is made of, for data that comes in pieces. Rayon over images.
    pub fn count(&self, chroma: &[f32], hw: usize, counts: &mut [u64]) {
        let q = self.len();
        assert_eq!(counts.len(), q, "one count per bin");
        if image_count(chroma.len(), 2, hw).is_none() {
            return;
        }
        let added = chroma
            .par_chunks(2 * hw)
            .fold(
                || vec![0u64; q],
                |mut counts, image| {
                    let (c1, c2) = image.split_at(hw);
                    for (&v1, &v2) in c1.iter().zip(c2) {
                        counts[self.nearest([v1, v2])] += 1;
                    }
                    counts
                },
            )
            .reduce(
                || vec![0u64; q],
                |mut a, b| {
                    a.iter_mut().zip(b).for_each(|(a, b)| *a += b);
                    a
                },
            );
        counts.iter_mut().zip(added).for_each(|(c, a)| *c += a);
    }

    /// [`prior`](Self::prior) of per-bin pixel counts ([`count`](Self::count)); no counts (all zero, or none
    /// at all) give the uniform distribution.
    pub fn prior_of_counts(&self, counts: &[u64], sigma: f32) -> Vec<f32> {
        let q = self.len();
        let total: u64 = counts.iter().sum();
        if total == 0 {
            return vec![1.0 / q as f32; q];
        }
        assert_eq!(counts.len(), q, "one count per bin");
        let p: Vec<f64> = counts.iter().map(|&c| c as f64 / total as f64).collect();
        let smoothed: Vec<f64> = if sigma > 0.0 {
            let scale = -0.5 / f64::from(sigma * sigma);
            (0..q)
                .into_par_iter()
                .map(|i| {
                    let ci = self.centers[i];
                    let kernel = |j: usize| (scale * f64::from(self.distance2(ci, self.centers[j]))).exp();
                    (0..q).filter(|&j| p[j] > 0.0).map(|j| p[j] * kernel(j)).sum()
                })
                .collect()
        } else {
            p
        };
        let sum: f64 = smoothed.iter().sum();
        smoothed.iter().map(|&v| (v / sum) as f32).collect()
    }

    /// Annealed mean of predicted distributions: `logits` is `[n][Q][hw]`; per pixel softmax(logits / T), then the
    /// expectation of the bin centres (for the HSV hue, the circular mean atan2(sum w sin h, sum w cos h)).
    /// T = 1 is the plain mean, T -> 0 the mode (T == 0 is accepted and gives the mode exactly; ties share it).
    /// Returns chroma `[n][2][hw]`. Rayon over images. Panics if T is negative or NaN.
    pub fn annealed_mean(&self, logits: &[f32], hw: usize, temperature: f32) -> Vec<f32> {
        assert!(temperature >= 0.0, "temperature must be >= 0, got {temperature}");
        let q = self.len();
        let Some(n) = image_count(logits.len(), q, hw) else {
            return Vec::new();
        };
        let hue = self.space.hue_channel();
        // What is averaged per bin: the centre, or (cos, sin) of the hue and the other channel.
        let features: Vec<[f32; 3]> = self
            .centers
            .iter()
            .map(|&center| match hue {
                Some(h) => {
                    let (sin, cos) = center[h].to_radians().sin_cos();
                    [cos, sin, center[1 - h]]
                }
                None => [center[0], center[1], 0.0],
            })
            .collect();
        let inv_t = 1.0 / temperature;
        let mut out = vec![0.0; 2 * n * hw];
        out.par_chunks_mut(2 * hw).zip(logits.par_chunks(q * hw)).for_each(|(dst, z)| {
            let mut max = vec![f32::NEG_INFINITY; hw];
            for row in z.chunks_exact(hw) {
                max.iter_mut().zip(row).for_each(|(m, &v)| *m = m.max(v));
            }
            let mut acc = [vec![0.0f32; hw], vec![0.0; hw], vec![0.0; hw], vec![0.0; hw]];
            let [sum, f0, f1, f2] = &mut acc;
            for (row, feat) in z.chunks_exact(hw).zip(&features) {
                for p in 0..hw {
                    // The maximum gets weight exactly 1 (exp(0)); with T == 0 the others get exp(-inf) = 0.
                    let excess = row[p] - max[p];
                    let w = if excess < 0.0 { (excess * inv_t).exp() } else { 1.0 };
                    sum[p] += w;
                    f0[p] += w * feat[0];
                    f1[p] += w * feat[1];
                    f2[p] += w * feat[2];
                }
            }
            let (d0, d1) = dst.split_at_mut(hw);
            for p in 0..hw {
                let (m0, m1, m2) = (f0[p] / sum[p], f1[p] / sum[p], f2[p] / sum[p]);
                let mean = match hue {
                    None => [m0, m1],
                    Some(h) => {
                        let angle = m1.atan2(m0).to_degrees().rem_euclid(HUE_PERIOD);
                        // rem_euclid can round up to the period itself.
                        let mut mean = [m2; 2];
                        mean[h] = if angle >= HUE_PERIOD { 0.0 } else { angle };
                        mean
                    }
                };
                [d0[p], d1[p]] = mean;
            }
        });
        out
    }
}

/// Inserts (bin, d2) into the ascending list `best[..filled]`, keeping at most `best.len()` entries.
fn insert_sorted(best: &mut [(u32, f32)], filled: &mut usize, bin: u32, d2: f32) {
    let k = best.len();
    let mut i = if *filled < k {
        *filled += 1;
        *filled - 1
    } else if d2 < best[k - 1].1 {
        k - 1
    } else {
        return;
    };
    while i > 0 && best[i - 1].1 > d2 {
        best[i] = best[i - 1];
        i -= 1;
    }
    best[i] = (bin, d2);
}

/// One chroma value per cell of the whole (hue, saturation) rectangle, hue in [0, 360) and saturation in
/// [0, 100]: the HSV gamut. `[channel][value]`, the hue in channel `hue`.
fn hue_saturation_cells(hue: usize, bin_size: f32) -> [Vec<f32>; 2] {
    let hue_cells = (HUE_PERIOD / bin_size).round().max(1.0) as usize;
    // The last saturation cell is the one that holds 100 (its centre may lie a little above 100).
    let sat_cells = (100.0 / bin_size).round() as usize + 1;
    let mut out = [Vec::new(), Vec::new()];
    for h in 0..hue_cells {
        for s in 0..sat_cells {
            out[hue].push(h as f32 * HUE_PERIOD / hue_cells as f32);
            out[1 - hue].push(s as f32 * bin_size);
        }
    }
    out
}

/// Chroma of the 8-bit colours that decide the gamut: every colour on the surface of the RGB cube and the
/// interior lattice with step 15; `[channel][sample]`. Encoded by the same batched path as the data.
fn sample_gamut_chroma(space: ColorSpace) -> [Vec<f32>; 2] {
    const LATTICE: usize = 15;
    let mut colours: Vec<[u8; 3]> = Vec::with_capacity(400_000);
    let all = 0..=255u8;
    // The six faces, each cube surface colour exactly once: r in {0, 255}; then g in {0, 255} with r inside;
    // then b in {0, 255} with r and g inside.
    for r in [0, 255] {
        for g in all.clone() {
            colours.extend(all.clone().map(|b| [r, g, b]));
        }
    }
    for r in 1..=254 {
        for g in [0, 255] {
            colours.extend(all.clone().map(|b| [r, g, b]));
        }
        for g in 1..=254 {
            colours.extend([[r, g, 0], [r, g, 255]]);
        }
    }
    let inner = || (LATTICE..255).step_by(LATTICE).map(|v| v as u8);
    for r in inner() {
        for g in inner() {
            colours.extend(inner().map(|b| [r, g, b]));
        }
    }
    // As images of 1024 pixels so that rayon can spread them; the last one is padded with black, which is
    // already in the sample.
    const HW: usize = 1024;
    let n = colours.len().div_ceil(HW);
    let mut planar = vec![0u8; 3 * n * HW];
    for (i, rgb) in colours.iter().enumerate() {
        let (image, p) = (i / HW, i % HW);
        for (c, &v) in rgb.iter().enumerate() {
            planar[(image * 3 + c) * HW + p] = v;
        }
    }
    let mut luma = vec![0.0; n * HW];
    let mut chroma = vec![0.0; 2 * n * HW];
    encode_u8_planar(space, &planar, HW, &mut luma, &mut chroma);
    let mut channels = [Vec::with_capacity(n * HW), Vec::with_capacity(n * HW)];
    for image in chroma.chunks_exact(2 * HW) {
        channels[0].extend_from_slice(&image[..HW]);
        channels[1].extend_from_slice(&image[HW..]);
    }
    channels
}

/// Class-rebalancing weights (Zhang et al., eq. 4): w_q proportional to ((1 - lambda) p_q + lambda / Q)^-1,
/// scaled so that sum_q p_q w_q = 1 (the expected weight of a pixel drawn from the prior is 1).
/// lambda = 1 gives every weight 1; lambda = 0 gives 1 / (Q p_q) when every p_q > 0. A bin whose mixture is 0
/// (lambda == 0 and p_q == 0) never occurs under the prior and gets weight 0 instead of infinity.
pub fn rebalance_weights(prior: &[f32], lambda: f32) -> Vec<f32> {
    let q = prior.len() as f64;
    let lambda = f64::from(lambda);
    let raw: Vec<f64> = prior
        .iter()
        .map(|&p| {
            let mix = (1.0 - lambda) * f64::from(p) + lambda / q;
            if mix > 0.0 { 1.0 / mix } else { 0.0 }
        })
        .collect();
    let expected: f64 = prior.iter().zip(&raw).map(|(&p, &w)| f64::from(p) * w).sum();
    let scale = if expected > 0.0 { 1.0 / expected } else { 1.0 };
    raw.iter().map(|&w| (w * scale) as f32).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    fn brute_nearest(bins: &ChromaBins, c: [f32; 2]) -> f32 {
        bins.centers().iter().map(|&b| bins.distance(c, b)).fold(f32::INFINITY, f32::min)
    }

    /// A random chroma value in the space's bounds widened by `widen` on each side.
    fn random_chroma(rng: &mut Rng, space: ColorSpace, widen: f32) -> [f32; 2] {
        let [(lo0, hi0), (lo1, hi1)] = space.chroma_bounds();
        [rng.range(lo0 - widen, hi0 + widen), rng.range(lo1 - widen, hi1 + widen)]
    }

    #[test]
    fn bin_counts_at_size_10() {
        // Lab 261 (not 313, see ChromaBins' documentation), YUV 549, HSV 36 hues x 11 saturations.
        assert_eq!(ChromaBins::new(ColorSpace::Lab, 10.0).len(), 261);
        assert_eq!(ChromaBins::new(ColorSpace::Yuv, 10.0).len(), 549);
        let hsv = ChromaBins::new(ColorSpace::Hsv, 10.0);
        assert_eq!(hsv.len(), 396);
        let hues: Vec<f32> = hsv.centers().iter().filter(|c| c[1] == 0.0).map(|c| c[0]).collect();
        assert_eq!(hues, (0..36).map(|h| h as f32 * 10.0).collect::<Vec<_>>());
        // Lab centres are multiples of 10 inside the extremes of the gamut's cells.
        let lab = ChromaBins::new(ColorSpace::Lab, 10.0);
        let (a, b): (Vec<f32>, Vec<f32>) = lab.centers().iter().map(|c| (c[0], c[1])).unzip();
        let range =
            |v: &[f32]| (v.iter().copied().fold(f32::MAX, f32::min), v.iter().copied().fold(f32::MIN, f32::max));
        assert_eq!(range(&a), (-90.0, 100.0));
        assert_eq!(range(&b), (-110.0, 90.0));
        assert!(lab.centers().contains(&[0.0, 0.0]));
    }

    #[test]
    fn construction_is_cached() {
        let first = ChromaBins::new(ColorSpace::Lab, 10.0);
        let start = std::time::Instant::now();
        let second = ChromaBins::new(ColorSpace::Lab, 10.0);
        assert!(Arc::ptr_eq(&first, &second));
        assert!(start.elapsed().as_millis() < 50, "a cached lookup took {:?}", start.elapsed());
        assert_eq!(second.space(), ColorSpace::Lab);
        assert_eq!(second.bin_size(), 10.0);
        assert!(!second.is_empty());
    }

    #[test]
    fn every_8bit_colour_quantizes_to_its_own_kept_cell() {
        let mut rng = Rng::new(21);
        for space in ColorSpace::ALL {
            let bins = ChromaBins::new(space, 10.0);
            for _ in 0..2_000 {
                let rgb = [0; 3].map(|_| rng.below(256) as f32 / 255.0);
                let [_, c1, c2] = space.from_srgb(rgb);
                let center = bins.centers()[bins.nearest([c1, c2])];
                // Within half a cell on each axis: the colour's own cell, not a neighbour.
                let d0 = bins.axes[0].diff(c1, center[0]);
                let d1 = (c2 - center[1]).abs();
                assert!(d0 <= 5.001 && d1 <= 5.001, "{space:?} {rgb:?} -> ({c1}, {c2}) in bin {center:?}");
            }
        }
    }

    #[test]
    fn nearest_agrees_with_brute_force() {
        let mut rng = Rng::new(8);
        for space in ColorSpace::ALL {
            for bin_size in [10.0, 7.0] {
                let bins = ChromaBins::new(space, bin_size);
                // Widened by 60: in gamut, just outside it (in the lookup table) and beyond the table.
                for _ in 0..3_000 {
                    let c = random_chroma(&mut rng, space, 60.0);
                    let got = bins.distance(c, bins.centers()[bins.nearest(c)]);
                    let want = brute_nearest(&bins, c);
                    assert!(got <= want + 1e-4, "{space:?}/{bin_size} {c:?}: {got} vs brute force {want}");
                }
            }
        }
        // Far away (the full search outside the table) and non-finite input: no panic, an answer in range.
        let lab = ChromaBins::new(ColorSpace::Lab, 10.0);
        for c in [[300.0, 0.0], [-1e4, 3.0], [20.0, 1e5]] {
            assert_eq!(lab.distance(c, lab.centers()[lab.nearest(c)]), brute_nearest(&lab, c));
        }
        assert!(lab.nearest([f32::NAN, f32::INFINITY]) < lab.len());
    }

    #[test]
    fn soft_encode_takes_the_k_nearest_with_gaussian_weights() {
        let mut rng = Rng::new(9);
        for space in ColorSpace::ALL {
            let bins = ChromaBins::new(space, 10.0);
            let mut out = [(0u32, 0.0f32); 5];
            for _ in 0..1_000 {
                let c = random_chroma(&mut rng, space, 30.0);
                bins.soft_encode(c, 5, 5.0, &mut out);
                let sum: f32 = out.iter().map(|p| p.1).sum();
                assert!((sum - 1.0).abs() < 1e-5, "weights sum to {sum}");
                let mut all: Vec<f32> = bins.centers().iter().map(|&b| bins.distance(c, b)).collect();
                all.sort_by(f32::total_cmp);
                for (i, &(b, _)) in out.iter().enumerate() {
                    let d = bins.distance(c, bins.centers()[b as usize]);
                    assert!((d - all[i]).abs() < 1e-3, "{space:?} {c:?}: neighbour {i} at {d}, brute force {}", all[i]);
                }
                assert!(out.windows(2).all(|w| w[0].1 >= w[1].1), "weights must decrease with distance");
            }
        }
        // By hand: Lab (3, 0) has bins (0, 0) at 3 and (10, 0) at 7; sigma 5 -> ratio exp(-(49 - 9) / 50) = e^-0.8,
        // so the weights are 1 / (1 + e^-0.8) = 0.689974 and 0.310026.
        let lab = ChromaBins::new(ColorSpace::Lab, 10.0);
        let mut out = [(0u32, 0.0f32); 2];
        lab.soft_encode([3.0, 0.0], 2, 5.0, &mut out);
        assert_eq!(out.map(|(b, _)| lab.centers()[b as usize]), [[0.0, 0.0], [10.0, 0.0]]);
        assert!((out[0].1 - 0.689974).abs() < 1e-5 && (out[1].1 - 0.310026).abs() < 1e-5, "{out:?}");
        // k = 1 and sigma = 0 are hard assignments.
        let mut one = [(0u32, 0.0f32)];
        lab.soft_encode([3.0, 0.0], 1, 5.0, &mut one);
        assert_eq!((lab.centers()[one[0].0 as usize], one[0].1), ([0.0, 0.0], 1.0));
        lab.soft_encode([3.0, 0.0], 2, 0.0, &mut out);
        assert_eq!(out.map(|p| p.1), [1.0, 0.0]);
    }

    #[test]
    fn hsv_hue_wraps_around() {
        let hsv = ChromaBins::new(ColorSpace::Hsv, 10.0);
        assert!((hsv.distance([355.0, 50.0], [5.0, 50.0]) - 10.0).abs() < 1e-4);
        assert!((hsv.distance([0.0, 0.0], [360.0, 0.0])).abs() < 1e-4);
        assert_eq!(hsv.centers()[hsv.nearest([358.0, 50.0])], [0.0, 50.0]);
        // Hue 359: bins at hue 0 (1 away) and 350 (9 away); sigma 5 -> ratio exp(-(81 - 1) / 50) = e^-1.6,
        // weights 1 / (1 + e^-1.6) = 0.832018 and 0.167982.
        let mut out = [(0u32, 0.0f32); 2];
        hsv.soft_encode([359.0, 50.0], 2, 5.0, &mut out);
        assert_eq!(out.map(|(b, _)| hsv.centers()[b as usize]), [[0.0, 50.0], [350.0, 50.0]]);
        assert!((out[0].1 - 0.832018).abs() < 1e-5 && (out[1].1 - 0.167982).abs() < 1e-5, "{out:?}");
    }

    #[test]
    fn encode_batch_matches_soft_encode() {
        let bins = ChromaBins::new(ColorSpace::Lab, 10.0);
        let (n, hw) = (3, 50);
        let mut rng = Rng::new(4);
        let chroma: Vec<f32> = (0..2 * n * hw).map(|_| rng.range(-60.0, 60.0)).collect();
        let q = bins.len();
        for k in [1, 5] {
            let dense = bins.encode_batch(&chroma, hw, k, 5.0);
            assert_eq!(dense.len(), n * q * hw);
            let mut pairs = vec![(0u32, 0.0f32); k];
            for img in 0..n {
                for p in 0..hw {
                    let c = [chroma[img * 2 * hw + p], chroma[(img * 2 + 1) * hw + p]];
                    bins.soft_encode(c, k, 5.0, &mut pairs);
                    let column: Vec<f32> = (0..q).map(|b| dense[(img * q + b) * hw + p]).collect();
                    let sum: f32 = column.iter().sum();
                    assert!((sum - 1.0).abs() < 1e-5);
                    for &(b, w) in &pairs {
                        assert_eq!(column[b as usize], w);
                    }
                    assert_eq!(column.iter().filter(|&&w| w != 0.0).count(), k);
                }
            }
        }
        assert!(bins.encode_batch(&[], 16, 5, 5.0).is_empty());
    }

    #[test]
    fn prior_of_one_colour_peaks_at_its_bin() {
        let bins = ChromaBins::new(ColorSpace::Lab, 10.0);
        let hw = 64;
        // Two images, every pixel at (1, -2): bin (0, 0).
        let chroma: Vec<f32> = (0..2).flat_map(|_| [vec![1.0; hw], vec![-2.0; hw]]).flatten().collect();
        let at = |c: [f32; 2]| bins.centers().iter().position(|&b| b == c).unwrap();
        let raw = bins.prior(&chroma, hw, 0.0);
        assert_eq!(raw[at([0.0, 0.0])], 1.0);
        assert_eq!(raw.iter().sum::<f32>(), 1.0);
        let smooth = bins.prior(&chroma, hw, 5.0);
        assert!((smooth.iter().sum::<f32>() - 1.0).abs() < 1e-5);
        let peak = smooth.iter().copied().enumerate().max_by(|a, b| a.1.total_cmp(&b.1)).unwrap().0;
        assert_eq!(peak, at([0.0, 0.0]));
        // A neighbour 10 away gets exp(-100 / (2 * 25)) = e^-2 of the peak.
        let ratio = smooth[at([10.0, 0.0])] / smooth[at([0.0, 0.0])];
        assert!((ratio - (-2.0f32).exp()).abs() < 1e-5, "ratio {ratio}");
        // No data: uniform.
        let empty = bins.prior(&[], hw, 5.0);
        assert!(empty.iter().all(|&p| p == 1.0 / bins.len() as f32));
    }

    #[test]
    fn rebalance_weights_by_hand() {
        let prior = [0.5, 0.3, 0.2];
        let expect = |w: &[f32]| prior.iter().zip(w).map(|(p, w)| p * w).sum::<f32>();
        // lambda = 0.5: mixtures 0.5 p + 1/6 = (5/12, 19/60, 4/15), inverses (2.4, 3.157895, 3.75), expectation
        // 2.897368, so w = (0.828338, 1.089918, 1.294278).
        let w = rebalance_weights(&prior, 0.5);
        for (got, want) in w.iter().zip([0.828338, 1.089918, 1.294278]) {
            assert!((got - want).abs() < 1e-5, "{w:?}");
        }
        assert!((expect(&w) - 1.0).abs() < 1e-6);
        // lambda = 1: constant Q, normalised to 1.
        assert!(rebalance_weights(&prior, 1.0).iter().all(|&w| (w - 1.0).abs() < 1e-6));
        // lambda = 0: 1 / (Q p) = (2/3, 10/9, 5/3).
        let w = rebalance_weights(&prior, 0.0);
        for (got, want) in w.iter().zip([2.0 / 3.0, 10.0 / 9.0, 5.0 / 3.0]) {
            assert!((got - want).abs() < 1e-5, "{w:?}");
        }
        // A bin the prior never sees, with lambda = 0: weight 0, the rest still average to 1.
        let w = rebalance_weights(&[0.5, 0.5, 0.0], 0.0);
        assert_eq!(w, vec![1.0, 1.0, 0.0]);
    }

    #[test]
    fn annealed_mean_interpolates_between_mean_and_mode() {
        let bins = ChromaBins::new(ColorSpace::Lab, 10.0);
        let (q, hw) = (bins.len(), 3);
        let mut rng = Rng::new(6);
        let logits: Vec<f32> = (0..q * hw).map(|_| 3.0 * rng.normal()).collect();
        let mean = bins.annealed_mean(&logits, hw, 1.0);
        let mode = bins.annealed_mean(&logits, hw, 0.0);
        let cold = bins.annealed_mean(&logits, hw, 0.01);
        for p in 0..hw {
            // Plain softmax expectation in f64.
            let z: Vec<f64> = (0..q).map(|b| f64::from(logits[b * hw + p])).collect();
            let max = z.iter().copied().fold(f64::MIN, f64::max);
            let e: Vec<f64> = z.iter().map(|v| (v - max).exp()).collect();
            let total: f64 = e.iter().sum();
            for ch in 0..2 {
                let want: f64 = e.iter().zip(bins.centers()).map(|(w, c)| w * f64::from(c[ch])).sum::<f64>() / total;
                assert!((f64::from(mean[ch * hw + p]) - want).abs() < 1e-3, "T = 1, channel {ch}");
            }
            let argmax = z.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).unwrap().0;
            for ch in 0..2 {
                assert_eq!(mode[ch * hw + p], bins.centers()[argmax][ch]);
                assert!((cold[ch * hw + p] - bins.centers()[argmax][ch]).abs() < 1e-2);
            }
        }
    }

    #[test]
    fn annealed_mean_of_hues_is_circular() {
        let bins = ChromaBins::new(ColorSpace::Hsv, 10.0);
        let q = bins.len();
        let at = |c: [f32; 2]| bins.centers().iter().position(|&b| b == c).unwrap();
        // Equal logits on hues 350 and 10 at saturation 50, all else negligible: the mean hue is 0, not 180.
        let mut logits = vec![-1e9; q];
        logits[at([350.0, 50.0])] = 2.0;
        logits[at([10.0, 50.0])] = 2.0;
        let mean = bins.annealed_mean(&logits, 1, 1.0);
        assert!(bins.distance([mean[0], mean[1]], [0.0, 50.0]) < 1e-3, "{mean:?}");
        assert!((0.0..360.0).contains(&mean[0]));
    }

    /// Checks the gamut against all 2^24 colours: every colour's cell is a kept bin and (Lab, YUV at every size
    /// tested, HSV at 10) every kept bin is some colour's cell. Slow in a debug build: run with `-- --ignored` in
    /// an optimised profile.
    #[test]
    #[ignore]
    fn sample_hits_the_same_cells_as_all_8bit_colours() {
        const HW: usize = 1 << 16;
        for space in ColorSpace::ALL {
            for bin_size in [10.0, 5.0, 2.0, MIN_BIN_SIZE] {
                let bins = ChromaBins::new(space, bin_size);
                let a1 = bins.axes[1];
                let mut seen = vec![false; bins.cell_bin.len()];
                let mut planar = vec![0u8; 3 * HW];
                let (mut luma, mut chroma) = (vec![0.0; HW], vec![0.0; 2 * HW]);
                for r in 0..=255u8 {
                    for i in 0..HW {
                        [planar[i], planar[HW + i], planar[2 * HW + i]] = [r, (i >> 8) as u8, i as u8];
                    }
                    encode_u8_planar(space, &planar, HW, &mut luma, &mut chroma);
                    for i in 0..HW {
                        let (s0, s1) = bins.table_cell([chroma[i], chroma[HW + i]]).expect("in the table");
                        let cell = s0 * a1.count + s1;
                        assert_ne!(bins.cell_bin[cell], NO_BIN, "{space:?}/{bin_size}: colour ({r}, {i}) missed");
                        seen[cell] = true;
                    }
                }
                // HSV keeps the whole (hue, saturation) rectangle, which 8-bit colours fill only at coarse sizes.
                if space.hue_channel().is_none() || bin_size == 10.0 {
                    let kept = bins.cell_bin.iter().filter(|&&b| b != NO_BIN).count();
                    let hit = seen.iter().filter(|&&s| s).count();
                    assert_eq!(hit, kept, "{space:?}/{bin_size}: a bin no colour hits");
                }
            }
        }
    }
}
