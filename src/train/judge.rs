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

use anyhow::{Result, anyhow};
use burn::module::Module;
use burn::tensor::Device;

use super::pretrain::{ClassifierInput, ClassifierJob, cached_classifier, classify_all, rgb_of};
use super::trainer::RunLog;
use crate::color::ColorSpace;
use crate::data::DataSet;
use crate::metrics::{SemanticTop1, top1};
use crate::model::{Backbone, BackboneConfig, BackboneInput, BackboneNet, BackboneVariant};
use crate::spec::Flat;

/// Keys besides the data's that decide the judge: its architecture and training; not the colorizer,
/// and not the run's seed: a measuring instrument, it is seeded by the data seed and shared by all seeds.
const KEYS: &[&str] = &["judge.arch", "judge.width", "judge.epochs", "lr", "batch_size"];

/// A trained judge, ready to classify.
pub struct Judge {
    net: BackboneNet,
    classes: usize,
}

/// The run's judge, trained first if no run has; `None` when `judge.arch = "none"`.
pub fn judge(
    cfg: &Flat,
    data: &DataSet,
    device: &Device,
    results_root: &Path,
    log: &mut RunLog,
) -> Result<Option<Judge>> {
    let arch = match cfg.text("judge.arch") {
        "vgg16" => Backbone::Vgg16,
        "resnet18" => Backbone::Resnet18,
        _ => return Ok(None),
    };
    let image_size = cfg.int("image_size") as usize;
    if !image_size.is_multiple_of(32) {
        anyhow::bail!(
            "judge.arch = \"{}\" needs image_size to be a multiple of 32, not {image_size}",
            cfg.text("judge.arch")
        );
    }
    let classes = data.classes.len();
    let net = BackboneConfig {
        arch,
        width: cfg.float("judge.width") as f32,
        variant: BackboneVariant::for_image_size(image_size),
        input: BackboneInput::Rgb,
        num_classes: classes,
    };
    let job = ClassifierJob {
        role: "judge",
        dir: super::pretrain::cache_dir(cfg, results_root, ".judge", KEYS),
        net: net.clone(),
        input: ClassifierInput::Rgb,
        epochs: cfg.int("judge.epochs") as u64,
        seed: cfg.int("data_seed") as u64,
        lr: cfg.float("lr"),
        batch_size: cfg.int("batch_size") as usize,
    };
    let trained = cached_classifier(&job, data, device, log)?;
    let net = net
        .init(device)
        .try_load_file(&trained.path)
        .map_err(|e| anyhow!("cannot load the judge {}: {e:?}", trained.path.display()))?;
    Ok(Some(Judge { net, classes }))
}

/// Collects the judge's logits over validation batches.
pub struct SemanticTally<'a> {
    judge: &'a Judge,
    device: Device,
    batch_size: usize,
    colorized: Vec<f32>,
    gray: Vec<f32>,
    color: Vec<f32>,
    labels: Vec<u32>,
}

impl<'a> SemanticTally<'a> {
    pub fn new(judge: &'a Judge, device: &Device, batch_size: usize) -> Self {
        SemanticTally {
            judge,
            device: device.clone(),
            batch_size,
            colorized: Vec::new(),
            gray: Vec::new(),
            color: Vec::new(),
            labels: Vec::new(),
        }
    }

    /// One batch: planar sRGB `[n][3][side * side]` of the colorized and true-colour images, the
    /// gray input (luma in `[0, 1]` of `space`) and the labels.
    pub fn add(
        &mut self,
        space: ColorSpace,
        colorized: &[f32],
        color: &[f32],
        gray: &[f32],
        side: usize,
        labels: &[u32],
    ) -> Result<()> {
        let hw = side * side;
        let gray_rgb = rgb_of(space, gray, &vec![0.0; 2 * gray.len()], hw);
        let net = &self.judge.net;
        self.colorized.extend(classify_all(net, colorized, 3, side, self.batch_size, &self.device)?);
        self.gray.extend(classify_all(net, &gray_rgb, 3, side, self.batch_size, &self.device)?);
        self.color.extend(classify_all(net, color, 3, side, self.batch_size, &self.device)?);
        self.labels.extend_from_slice(labels);
        Ok(())
    }

    /// The three top-1 accuracies (%).
    pub fn finish(&self) -> SemanticTop1 {
        let c = self.judge.classes;
        SemanticTop1 {
            colorized: top1(&self.colorized, c, &self.labels),
            gray: top1(&self.gray, c, &self.labels),
            color: top1(&self.color, c, &self.labels),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let color = rgb_of(ColorSpace::Lab, &gray, &chroma, hw);
        let labels = [0, 1, 2, 0, 1, 2];
        let mut tally = SemanticTally::new(&judge, &device, 4);
        tally.add(ColorSpace::Lab, &color, &color, &gray, side, &labels).unwrap();
        let s = tally.finish();
        assert_eq!(s.colorized, s.color);
        // What the judge sees as gray: equal R, G and B.
        let gray_rgb = rgb_of(ColorSpace::Lab, &gray, &vec![0.0; 2 * gray.len()], hw);
        for image in gray_rgb.chunks(3 * hw) {
            for p in 0..hw {
                let (r, g, b) = (image[p], image[hw + p], image[2 * hw + p]);
                assert!((r - g).abs() < 1e-4 && (g - b).abs() < 1e-4, "{r} {g} {b}");
            }
        }
        // And the tally's gray top-1 is the judge's top-1 on exactly those images.
        let logits = classify_all(&judge.net, &gray_rgb, 3, side, 4, &device).unwrap();
        assert_eq!(s.gray, top1(&logits, 3, &labels));
    }
}
