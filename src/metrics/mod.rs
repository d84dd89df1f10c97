//! Colorization metrics, each from its published definition.
//!
//! Every metric is computed on RGB images rebuilt from the gray input plus the predicted chroma,
//! against the ground-truth RGB, and chroma errors are measured in CIE Lab ab whatever color space
//! the model works in, so that runs in Lab, YUV and HSV are compared on one scale.
//!
//! - `psnr`: mean over images of 10 log10(1 / MSE) on RGB in [0, 1] (capped at 100 dB for a perfect image).
//! - `ab_rmse`: root mean square of the per-pixel ab error (Euclidean distance in the ab plane).
//! - `auc`: area under the cumulative curve of per-pixel ab errors over thresholds 0 to 150, normalised
//!   to 100 (Zhang et al. 2016). The integral is exact: the area of the curve F(t) = P(d <= t) over
//!   [0, T] is E[max(0, T - d)], so AuC = 100 E[max(0, 1 - d / 150)].
//! - `auc_rebal`: the same with each pixel weighted by the inverse of its ground-truth color class's
//!   prior probability (Zhang et al.'s rebalanced AuC: the class weights with lambda = 0).
//! - `colorfulness`: Hasler and Suesstrunk 2003, metric M3, on 0-255 RGB, mean over images:
//!   M = sqrt(std(rg)^2 + std(yb)^2) + 0.3 sqrt(mean(rg)^2 + mean(yb)^2), rg = R - G, yb = (R + G) / 2 - B.
//!   `colorfulness_gt` is the same on the ground truth.
//!
//! - `top1_colorized`, `top1_gray`, `top1_color`: Zhang et al.'s semantic test, the top-1 (%) of a
//!   classifier trained on true-colour images on the colorized, gray and true-colour validation images
//!   ([`SemanticTop1`], filled by `crate::train::judge`).
//!
//! Besides the AuC, the accumulator keeps a histogram of the per-pixel ab errors (raw and rebalanced
//! weights) from which [`AccuracyCurve`] gives the cumulative curve itself, the fraction of pixels within
//! each integer threshold 0..=150 (Zhang et al. 2016, figure 3). The AuC stays the exact integral; the
//! curve is what the report plots.
//!
//! [`Metric`] names the measures a sweep can rank by; `metrics.csv`, `sweep eval`, the reports and
//! the specs' published numbers all take the names from it.

use std::sync::Arc;

use crate::color::ColorSpace;
use crate::color::quantize::ChromaBins;
use crate::named::named_enum;

named_enum! {
    /// A measure a sweep can rank its runs by (`[sweep] metric`), with whether higher is better.
    pub enum Metric: higher_is_better() -> bool {
        Psnr = "psnr" => true,
        AbRmse = "ab_rmse" => false,
        Auc = "auc" => true,
        AucRebal = "auc_rebal" => true,
        Colorfulness = "colorfulness" => true,
        ValLoss = "val_loss" => false,
        TrainLoss = "train_loss" => false,
        Top1Colorized = "top1_colorized" => true,
        Top1Gray = "top1_gray" => true,
        Top1Color = "top1_color" => true,
    }
}

/// The ground truth's colorfulness: measured beside the metrics (what a colorization's
/// colorfulness is compared with), a property of the data and not a measure to rank runs by.
pub const COLORFULNESS_GT: &str = "colorfulness_gt";

/// Largest ab error the AuC curve integrates over.
pub const AUC_MAX_DISTANCE: f64 = 150.0;
/// PSNR of an image without error, instead of infinity.
pub const PSNR_CAP: f64 = 100.0;
/// Histogram bins of ab errors: bin k holds errors in (k - 1, k] (bin 0 exact zeros), for k up to
/// [`AUC_MAX_DISTANCE`], and one more bin for everything beyond.
const CURVE_BINS: usize = AUC_MAX_DISTANCE as usize + 2;

/// Per-pixel weights for the rebalanced AuC: the weight of each Lab ab bin.
#[derive(Clone)]
pub struct ClassWeights {
    pub bins: Arc<ChromaBins>,
    pub weights: Vec<f32>,
}

/// One epoch's validation metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Metrics {
    pub psnr: f64,
    pub ab_rmse: f64,
    pub auc: f64,
    pub auc_rebal: f64,
    pub colorfulness: f64,
    pub colorfulness_gt: f64,
}

impl Metric {
    /// Whether only a run with a semantic judge measures it (Zhang et al.'s top-1 test).
    pub fn needs_judge(self) -> bool {
        match self {
            Metric::Top1Colorized | Metric::Top1Gray | Metric::Top1Color => true,
            Metric::Psnr
            | Metric::AbRmse
            | Metric::Auc
            | Metric::AucRebal
            | Metric::Colorfulness
            | Metric::ValLoss
            | Metric::TrainLoss => false,
        }
    }
}

impl Metrics {
    /// The metrics these fields hold, in [`Metric`]'s order.
    pub fn held() -> impl Iterator<Item = Metric> {
        Metric::ALL.into_iter().filter(|&m| Metrics::default().value(m).is_some())
    }

    /// The value of `metric`, when it is one of these validation metrics.
    pub fn value(&self, metric: Metric) -> Option<f64> {
        match metric {
            Metric::Psnr => Some(self.psnr),
            Metric::AbRmse => Some(self.ab_rmse),
            Metric::Auc => Some(self.auc),
            Metric::AucRebal => Some(self.auc_rebal),
            Metric::Colorfulness => Some(self.colorfulness),
            Metric::ValLoss | Metric::TrainLoss | Metric::Top1Colorized | Metric::Top1Gray | Metric::Top1Color => None,
        }
    }
}

/// Zhang et al.'s semantic test: a true-colour classifier's top-1 (%) on the same validation images
/// colorized, gray and in true colour.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SemanticTop1 {
    pub colorized: f64,
    pub gray: f64,
    pub color: f64,
}

/// The cumulative ab-accuracy curve: `raw[t]` is the fraction of pixels whose ab error is at most `t`,
/// for t = 0, 1, ..., 150; `rebalanced` the same with the rebalanced AuC's class weights.
#[derive(Clone, Debug, PartialEq)]
pub struct AccuracyCurve {
    pub raw: Vec<f64>,
    pub rebalanced: Option<Vec<f64>>,
}

impl AccuracyCurve {
    /// The area under a curve on the AuC's 0-100 scale, by the trapezoid rule over its integer
    /// thresholds. It differs from the exact AuC by less than 100 * 0.5 / 150 = 1/3 (each pixel's
    /// error is rounded up to the next integer threshold, and the rule gives back half a step).
    pub fn area(curve: &[f64]) -> f64 {
        let steps = curve.len().saturating_sub(1).max(1) as f64;
        100.0 * curve.windows(2).map(|w| 0.5 * (w[0] + w[1])).sum::<f64>() / steps
    }
}

/// Accumulates metrics over batches of images.
#[derive(Clone, Default)]
pub struct Accumulator {
    class_weights: Option<ClassWeights>,
    images: usize,
    psnr_sum: f64,
    pixels: usize,
    sq_ab_sum: f64,
    auc_sum: f64,
    auc_rebal_sum: f64,
    weight_sum: f64,
    colorfulness_sum: f64,
    colorfulness_gt_sum: f64,
    /// Pixels (raw) and class weights (rebalanced) per [`CURVE_BINS`] bin of ab error.
    histogram: Vec<f64>,
    histogram_rebal: Vec<f64>,
}

impl Accumulator {
    pub fn new(class_weights: Option<ClassWeights>) -> Self {
        Accumulator {
            class_weights,
            histogram: vec![0.0; CURVE_BINS],
            histogram_rebal: vec![0.0; CURVE_BINS],
            ..Default::default()
        }
    }

    /// Adds a batch of images, planar RGB in [0, 1]: `[n][3][hw]`.
    pub fn add(&mut self, predicted: &[f32], truth: &[f32], hw: usize) {
        assert_eq!(predicted.len(), truth.len());
        for (p, t) in predicted.chunks_exact(3 * hw).zip(truth.chunks_exact(3 * hw)) {
            self.add_image(p, t, hw);
        }
    }

    fn add_image(&mut self, p: &[f32], t: &[f32], hw: usize) {
        let sq: f64 = p.iter().zip(t).map(|(a, b)| ((a - b) as f64).powi(2)).sum();
        let mse = sq / (3 * hw) as f64;
        self.psnr_sum += if mse > 0.0 { (10.0 * (1.0 / mse).log10()).min(PSNR_CAP) } else { PSNR_CAP };
        self.colorfulness_sum += colorfulness(p, hw);
        self.colorfulness_gt_sum += colorfulness(t, hw);
        self.images += 1;
        for i in 0..hw {
            let lab_p = ColorSpace::Lab.from_srgb([p[i], p[hw + i], p[2 * hw + i]]);
            let lab_t = ColorSpace::Lab.from_srgb([t[i], t[hw + i], t[2 * hw + i]]);
            let d = (((lab_p[1] - lab_t[1]) as f64).powi(2) + ((lab_p[2] - lab_t[2]) as f64).powi(2)).sqrt();
            self.sq_ab_sum += d * d;
            let area = (1.0 - d / AUC_MAX_DISTANCE).max(0.0);
            self.auc_sum += area;
            let bin = (d.ceil() as usize).min(CURVE_BINS - 1);
            self.histogram[bin] += 1.0;
            if let Some(cw) = &self.class_weights {
                let w = cw.weights[cw.bins.nearest([lab_t[1], lab_t[2]])] as f64;
                self.auc_rebal_sum += w * area;
                self.weight_sum += w;
                self.histogram_rebal[bin] += w;
            }
        }
        self.pixels += hw;
    }

    pub fn finish(&self) -> Metrics {
        let images = self.images.max(1) as f64;
        let pixels = self.pixels.max(1) as f64;
        let auc = 100.0 * self.auc_sum / pixels;
        Metrics {
            psnr: self.psnr_sum / images,
            ab_rmse: (self.sq_ab_sum / pixels).sqrt(),
            auc,
            auc_rebal: if self.weight_sum > 0.0 { 100.0 * self.auc_rebal_sum / self.weight_sum } else { f64::NAN },
            colorfulness: self.colorfulness_sum / images,
            colorfulness_gt: self.colorfulness_gt_sum / images,
        }
    }

    /// The cumulative curves from the histograms.
    pub fn curve(&self) -> AccuracyCurve {
        let cumulative = |hist: &[f64], total: f64| -> Vec<f64> {
            let mut sum = 0.0;
            hist[..CURVE_BINS - 1]
                .iter()
                .map(|h| {
                    sum += h;
                    sum / total
                })
                .collect()
        };
        AccuracyCurve {
            raw: cumulative(&self.histogram, self.pixels.max(1) as f64),
            rebalanced: (self.weight_sum > 0.0).then(|| cumulative(&self.histogram_rebal, self.weight_sum)),
        }
    }
}

/// Hasler and Suesstrunk's M3 of one planar RGB image in [0, 1], on the 0-255 scale.
pub fn colorfulness(rgb: &[f32], hw: usize) -> f64 {
    let (mut s_rg, mut s_yb, mut s_rg2, mut s_yb2) = (0.0f64, 0.0f64, 0.0f64, 0.0f64);
    for i in 0..hw {
        let (r, g, b) = (rgb[i] as f64 * 255.0, rgb[hw + i] as f64 * 255.0, rgb[2 * hw + i] as f64 * 255.0);
        let rg = r - g;
        let yb = 0.5 * (r + g) - b;
        s_rg += rg;
        s_yb += yb;
        s_rg2 += rg * rg;
        s_yb2 += yb * yb;
    }
    let n = hw as f64;
    let (m_rg, m_yb) = (s_rg / n, s_yb / n);
    let var_rg = (s_rg2 / n - m_rg * m_rg).max(0.0);
    let var_yb = (s_yb2 / n - m_yb * m_yb).max(0.0);
    (var_rg + var_yb).sqrt() + 0.3 * (m_rg * m_rg + m_yb * m_yb).sqrt()
}

/// Top-1 accuracy (%) of class logits `[n][classes]` against labels.
pub fn top1(logits: &[f32], classes: usize, labels: &[u32]) -> f64 {
    top1_percent(top1_hits(logits, classes, labels), labels.len())
}

/// How many rows of class logits `[n][classes]` have their largest value at the label: [`top1`] of data
/// that comes in batches is [`top1_percent`] of these summed.
pub fn top1_hits(logits: &[f32], classes: usize, labels: &[u32]) -> usize {
    logits
        .chunks_exact(classes)
        .zip(labels)
        .filter(|(row, label)| {
            let best =
                row.iter().enumerate().fold((0, f32::NEG_INFINITY), |b, (i, &v)| if v > b.1 { (i, v) } else { b });
            best.0 == **label as usize
        })
        .count()
}

/// `hits` of `n` images, in percent (0 without images).
pub fn top1_percent(hits: usize, n: usize) -> f64 {
    100.0 * hits as f64 / n.max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(pixels: &[[f32; 3]]) -> Vec<f32> {
        let hw = pixels.len();
        let mut out = vec![0.0; 3 * hw];
        for (i, p) in pixels.iter().enumerate() {
            for c in 0..3 {
                out[c * hw + i] = p[c];
            }
        }
        out
    }

    #[test]
    fn psnr_by_hand() {
        // Every channel off by 0.1: MSE = 0.01, PSNR = 10 log10(100) = 20 dB.
        let t = image(&[[0.5, 0.5, 0.5], [0.2, 0.3, 0.4]]);
        let p: Vec<f32> = t.iter().map(|v| v + 0.1).collect();
        let mut acc = Accumulator::new(None);
        acc.add(&p, &t, 2);
        assert!((acc.finish().psnr - 20.0).abs() < 1e-4, "{}", acc.finish().psnr);
        let mut perfect = Accumulator::new(None);
        perfect.add(&t, &t, 2);
        let m = perfect.finish();
        assert_eq!(m.psnr, PSNR_CAP);
        assert!(m.ab_rmse < 1e-6);
        assert!((m.auc - 100.0).abs() < 1e-9);
    }

    #[test]
    fn colorfulness_by_hand() {
        // Gray: no colour at all.
        assert!(colorfulness(&image(&[[0.3, 0.3, 0.3], [0.8, 0.8, 0.8]]), 2) < 1e-9);
        // Pure red everywhere: rg = 255, yb = 127.5, no spread: M = 0.3 sqrt(255^2 + 127.5^2) = 85.53.
        let red = colorfulness(&image(&[[1.0, 0.0, 0.0]; 4]), 4);
        assert!((red - 0.3 * (255.0f64.powi(2) + 127.5f64.powi(2)).sqrt()).abs() < 1e-3, "{red}");
        // Half red, half green: rg = +-255 (std 255, mean 0), yb = 127.5 (std 0): M = 255 + 0.3 * 127.5.
        let rg = colorfulness(&image(&[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]), 2);
        assert!((rg - (255.0 + 0.3 * 127.5)).abs() < 1e-3, "{rg}");
    }

    #[test]
    fn auc_is_the_area_under_the_cumulative_error_curve() {
        // Two pixels of equal L with ab errors of 0 and exactly 75 (gray vs a gray-ish colour is hard to
        // hit exactly, so check the formula against a discrete sweep of thresholds on real pixels).
        let t = image(&[[0.5, 0.5, 0.5], [0.9, 0.2, 0.1], [0.1, 0.6, 0.9], [0.4, 0.4, 0.1]]);
        let p = image(&[[0.5, 0.5, 0.5], [0.5, 0.4, 0.4], [0.3, 0.5, 0.6], [0.9, 0.1, 0.8]]);
        let mut acc = Accumulator::new(None);
        acc.add(&p, &t, 4);
        let auc = acc.finish().auc;
        let d: Vec<f64> = (0..4)
            .map(|i| {
                let a = ColorSpace::Lab.from_srgb([p[i], p[4 + i], p[8 + i]]);
                let b = ColorSpace::Lab.from_srgb([t[i], t[4 + i], t[8 + i]]);
                (((a[1] - b[1]) as f64).powi(2) + ((a[2] - b[2]) as f64).powi(2)).sqrt()
            })
            .collect();
        // Riemann sum of the cumulative curve with a fine step.
        let steps = 150_000;
        let mut area = 0.0;
        for s in 0..steps {
            let th = (s as f64 + 0.5) * AUC_MAX_DISTANCE / steps as f64;
            area += d.iter().filter(|&&x| x <= th).count() as f64 / 4.0;
        }
        let expected = 100.0 * area / steps as f64;
        assert!((auc - expected).abs() < 1e-3, "{auc} vs {expected}");
        assert!(auc > 0.0 && auc < 100.0);
    }

    #[test]
    fn the_curves_area_is_the_auc() {
        // Many pixels with errors spread over the whole range, some beyond 150.
        let mut rng = crate::rng::Rng::new(7);
        let n = 4000;
        let t: Vec<f32> = (0..3 * n).map(|_| rng.uniform()).collect();
        let p: Vec<f32> = (0..3 * n).map(|_| rng.uniform()).collect();
        let bins = ChromaBins::new(ColorSpace::Lab, 10.0);
        let weights: Vec<f32> = (0..bins.len()).map(|i| 1.0 + (i % 5) as f32).collect();
        let mut acc = Accumulator::new(Some(ClassWeights { bins, weights }));
        acc.add(&p, &t, n);
        let m = acc.finish();
        let curve = acc.curve();
        assert_eq!(curve.raw.len(), 151);
        assert!(curve.raw.windows(2).all(|w| w[0] <= w[1]), "cumulative curves never decrease");
        assert!(curve.raw[150] <= 1.0 && curve.raw[0] >= 0.0);
        let rebal = curve.rebalanced.as_ref().unwrap();
        // The trapezoid rule over integer thresholds is within 1/3 of the exact integral.
        let (raw_area, rebal_area) = (AccuracyCurve::area(&curve.raw), AccuracyCurve::area(rebal));
        assert!((raw_area - m.auc).abs() < 1.0 / 3.0, "{raw_area} vs {}", m.auc);
        assert!((rebal_area - m.auc_rebal).abs() < 1.0 / 3.0, "{rebal_area} vs {}", m.auc_rebal);
        // A perfect prediction is within every threshold.
        let mut perfect = Accumulator::new(None);
        perfect.add(&t, &t, n);
        let c = perfect.curve();
        assert!(c.raw.iter().all(|&f| f == 1.0) && c.rebalanced.is_none());
        assert_eq!(AccuracyCurve::area(&c.raw), 100.0);
    }

    #[test]
    fn rebalanced_auc_weights_pixels_by_their_class() {
        // Two pixels: a gray one predicted exactly (area 1) and a red one predicted gray (area
        // 1 - d/150). Raw AuC averages the two; rebalanced AuC weights each by its class's weight.
        let t = image(&[[0.5, 0.5, 0.5], [0.8, 0.1, 0.1]]);
        let p = image(&[[0.5, 0.5, 0.5], [0.3, 0.3, 0.3]]);
        let bins = ChromaBins::new(ColorSpace::Lab, 10.0);
        let gray_bin = bins.nearest([0.0, 0.0]);
        let red = ColorSpace::Lab.from_srgb([0.8, 0.1, 0.1]);
        let red_bin = bins.nearest([red[1], red[2]]);
        let mut weights = vec![1.0f32; bins.len()];
        weights[gray_bin] = 1.0;
        weights[red_bin] = 3.0;
        let mut acc = Accumulator::new(Some(ClassWeights { bins, weights }));
        acc.add(&p, &t, 2);
        let m = acc.finish();
        let gray_p = ColorSpace::Lab.from_srgb([0.3, 0.3, 0.3]);
        let d = (((red[1] - gray_p[1]) as f64).powi(2) + ((red[2] - gray_p[2]) as f64).powi(2)).sqrt();
        let red_area = 1.0 - d / AUC_MAX_DISTANCE;
        assert!((m.auc - 100.0 * (1.0 + red_area) / 2.0).abs() < 1e-3, "{m:?}");
        assert!((m.auc_rebal - 100.0 * (1.0 + 3.0 * red_area) / 4.0).abs() < 1e-3, "{m:?}");
        assert!(m.auc_rebal < m.auc, "the rare, badly predicted colour weighs more");
    }

    #[test]
    fn top1_counts_argmax_hits() {
        let logits = [0.1, 0.9, 0.0, 2.0, 1.0, 0.5, 0.0, 0.0, 3.0];
        assert!((top1(&logits, 3, &[1, 0, 0]) - 200.0 / 3.0).abs() < 1e-9);
    }
}
