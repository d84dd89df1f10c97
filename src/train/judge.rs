//! Zhang et al.'s semantic test (2016, sec. 3.1, "semantic interpretability"): a classifier trained
//! on true-colour images judges the colorized ones. If colorization restores what makes an object
//! recognisable, the judge's top-1 on colorized validation images climbs from its top-1 on the gray
//! images towards its top-1 on the true-colour ones.
//!
//! The judge (`judge.arch`) is a VGG-16- or ResNet-18-style classifier of the data set's labels on
//! sRGB input, trained once per data set and cached in `<results>/.judge/<hash>/` by
//! [`super::pretrain`]; it does not depend on the colorizer, so every variant of a sweep (any color
//! space, task or model) is judged by the same network. Gray images are the run's luma with zero
//! chroma, in the run's color space.

use std::path::Path;

use anyhow::Result;
use burn::tensor::Device;

use super::pretrain::{ClassifierInput, ClassifierJob, cached_classifier, classify_all};
use crate::color::ColorSpace;
use crate::color::convert::{decoded_planar, gray_planar};
use crate::data::{ColorBatch, DataSet};
use crate::metrics::{SemanticTop1, top1};
use crate::model::{BackboneConfig, BackboneInput, BackboneNet, BackboneVariant};
use crate::spec::RunConfig;
use crate::store::layout::{CacheKind, ClassifierCache};
use crate::store::log::RunLog;

/// A trained judge, ready to classify.
pub struct Judge {
    net: BackboneNet,
    classes: usize,
}

/// The run's judge, trained first if no run has; `None` without one (`judge.arch = "none"`).
pub fn judge(
    cfg: &RunConfig,
    data: &DataSet,
    device: &Device,
    results_root: &Path,
    log: &mut RunLog,
) -> Result<Option<Judge>> {
    let Some(judge) = &cfg.judge else { return Ok(None) };
    let classes = data.classes.len();
    let net = BackboneConfig {
        arch: judge.arch,
        width: judge.width,
        variant: BackboneVariant::for_image_size(cfg.data.image_size),
        input: BackboneInput::Rgb,
        num_classes: classes,
    };
    let job = ClassifierJob {
        role: "judge",
        cache: ClassifierCache::new(results_root, CacheKind::Judge, &judge.classifier.cache_key),
        net,
        input: ClassifierInput::Rgb,
        epochs: judge.classifier.epochs,
        // A measuring instrument: seeded by the data, shared by every seed of every run.
        seed: cfg.data.data_seed,
        lr: cfg.train.lr,
        batch_size: cfg.train.batch_size,
    };
    let trained = cached_classifier(&job, data, device, log)?;
    Ok(Some(Judge { net: trained.net, classes }))
}

/// The semantic test of one run: the judge and its top-1 on the run's gray and true-colour
/// validation images. Those two do not change from epoch to epoch, so they are measured once, when
/// the run starts; each epoch's validation classifies only the colorized images.
pub struct SemanticTest {
    judge: Judge,
    gray: f64,
    color: f64,
}

impl SemanticTest {
    /// Measures `judge` on the gray and true-colour versions of `val` (prepared in `space`).
    pub fn new(judge: Judge, space: ColorSpace, val: &ColorBatch, batch_size: usize, device: &Device) -> Result<Self> {
        let hw = val.hw();
        let top1_of = |rgb: &[f32]| -> Result<f64> {
            let logits = classify_all(&judge.net, rgb, 3, val.side, batch_size, device)?;
            Ok(top1(&logits, judge.classes, &val.labels))
        };
        let gray = top1_of(&gray_planar(space, &val.gray, hw))?;
        let color = top1_of(&decoded_planar(space, &val.gray, &val.chroma, hw))?;
        Ok(SemanticTest { judge, gray, color })
    }

    /// The judge's logits `[n][classes]` of planar sRGB images `[n][3][side * side]`.
    pub fn logits(&self, rgb: &[f32], side: usize, batch_size: usize, device: &Device) -> Result<Vec<f32>> {
        classify_all(&self.judge.net, rgb, 3, side, batch_size, device)
    }

    /// The three top-1 accuracies (%), given the logits of the colorized validation images.
    pub fn result(&self, colorized_logits: &[f32], labels: &[u32]) -> SemanticTop1 {
        SemanticTop1 {
            colorized: top1(colorized_logits, self.judge.classes, labels),
            gray: self.gray,
            color: self.color,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Backbone;

    fn tiny_judge(device: &Device) -> Judge {
        let config = BackboneConfig {
            arch: Backbone::Resnet18,
            width: 0.0625,
            variant: BackboneVariant::Small,
            input: BackboneInput::Rgb,
            num_classes: 3,
        };
        Judge { net: config.init(device), classes: 3 }
    }

    #[test]
    fn a_perfect_colorization_scores_the_true_colour_top1_and_gray_has_no_chroma() {
        let device = Device::flex();
        let judge = tiny_judge(&device);
        let (n, side) = (6, 32);
        let hw = side * side;
        // Gray input and chroma in Lab units: a gradient and two colour casts per image.
        let gray: Vec<f32> = (0..n * hw).map(|i| (i % hw) as f32 / hw as f32).collect();
        let chroma: Vec<f32> = (0..n * 2 * hw).map(|i| if (i / hw) % 2 == 0 { 40.0 } else { -30.0 }).collect();
        let val = ColorBatch { n, side, gray: gray.clone(), chroma: chroma.clone(), labels: vec![0, 1, 2, 0, 1, 2] };
        let test = SemanticTest::new(judge, ColorSpace::Lab, &val, 4, &device).unwrap();
        let color = decoded_planar(ColorSpace::Lab, &gray, &chroma, hw);
        let s = test.result(&test.logits(&color, side, 4, &device).unwrap(), &val.labels);
        assert_eq!(s.colorized, s.color);
        // What the judge sees as gray: equal R, G and B.
        let gray_rgb = gray_planar(ColorSpace::Lab, &gray, hw);
        for image in gray_rgb.chunks(3 * hw) {
            for p in 0..hw {
                let (r, g, b) = (image[p], image[hw + p], image[2 * hw + p]);
                assert!((r - g).abs() < 1e-4 && (g - b).abs() < 1e-4, "{r} {g} {b}");
            }
        }
        // And the test's gray top-1 is the judge's top-1 on exactly those images.
        let logits = test.logits(&gray_rgb, side, 4, &device).unwrap();
        assert_eq!(s.gray, top1(&logits, 3, &val.labels));
    }
}
