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

use std::cell::OnceCell;
use std::path::Path;

use anyhow::Result;
use burn::tensor::Device;

use super::pretrain::{ClassifierInput, ClassifierJob, cached_classifier, classify_all};
use crate::color::ColorSpace;
use crate::color::convert::gray_planar;
use crate::data::{ColorBatch, DataSet};
use crate::metrics::{SemanticTop1, top1_hits, top1_percent};
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

/// The semantic test of one run: the judge, and its top-1 on the run's gray and true-colour
/// validation images. Those two do not change from epoch to epoch, so only the first validation pass
/// of an attempt measures them (beside the colorized images, from the same batches); the later
/// passes classify the colorized images alone.
pub struct SemanticTest {
    judge: Judge,
    space: ColorSpace,
    /// The top-1 (%) on the gray and the true-colour validation images, once measured.
    reference: OnceCell<(f64, f64)>,
}

/// One validation pass of a [`SemanticTest`]: the images the judge classified right so far.
pub struct SemanticPass {
    colorized: usize,
    gray: usize,
    color: usize,
    images: usize,
    /// Whether this pass measures the gray and true-colour top-1 too (the first pass).
    reference: bool,
}

impl SemanticTest {
    /// The test of `judge` on validation images prepared in `space`.
    pub fn new(judge: Judge, space: ColorSpace) -> SemanticTest {
        SemanticTest { judge, space, reference: OnceCell::new() }
    }

    /// Starts a validation pass.
    pub fn pass(&self) -> SemanticPass {
        SemanticPass { colorized: 0, gray: 0, color: 0, images: 0, reference: self.reference.get().is_none() }
    }

    /// Adds a batch of validation images to `pass`: `val` as prepared, `colorized` and `truth` its
    /// colorized and true-colour versions as planar sRGB `[n][3][side * side]`.
    pub fn add(
        &self,
        pass: &mut SemanticPass,
        val: &ColorBatch,
        (colorized, truth): (&[f32], &[f32]),
        batch_size: usize,
        device: &Device,
    ) -> Result<()> {
        let hits = |rgb: &[f32]| -> Result<usize> {
            let logits = self.logits(rgb, val.side, batch_size, device)?;
            Ok(top1_hits(&logits, self.judge.classes, &val.labels))
        };
        pass.colorized += hits(colorized)?;
        if pass.reference {
            pass.gray += hits(&gray_planar(self.space, &val.gray, val.hw()))?;
            pass.color += hits(truth)?;
        }
        pass.images += val.n;
        Ok(())
    }

    /// The judge's logits `[n][classes]` of planar sRGB images `[n][3][side * side]`.
    pub fn logits(&self, rgb: &[f32], side: usize, batch_size: usize, device: &Device) -> Result<Vec<f32>> {
        classify_all(&self.judge.net, rgb, 3, side, batch_size, device)
    }

    /// The three top-1 accuracies (%) of a finished pass.
    pub fn result(&self, pass: SemanticPass) -> SemanticTop1 {
        let percent = |hits| top1_percent(hits, pass.images);
        let &(gray, color) = self.reference.get_or_init(|| (percent(pass.gray), percent(pass.color)));
        SemanticTop1 { colorized: percent(pass.colorized), gray, color }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::color::convert::decoded_planar;
    use crate::metrics::top1;
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
        let test = SemanticTest::new(judge, ColorSpace::Lab);
        let color = decoded_planar(ColorSpace::Lab, &gray, &chroma, hw);
        // In two batches, as validation streams them.
        let mut pass = test.pass();
        for range in [0..4, 4..6] {
            let (part, rgb) = (val.slice(range.clone()), &color[range.start * 3 * hw..range.end * 3 * hw]);
            test.add(&mut pass, &part, (rgb, rgb), 4, &device).unwrap();
        }
        let s = test.result(pass);
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
        // A later pass classifies the colorized images alone and keeps the first pass's references.
        let mut later = test.pass();
        test.add(&mut later, &val, (&gray_rgb, &color), 4, &device).unwrap();
        let again = test.result(later);
        assert_eq!((again.colorized, again.gray, again.color), (s.gray, s.gray, s.color));
    }
}
