//! Classifiers trained before a run and cached under the hash of what determines them, so that
//! every run sharing one reuses a single training. Two kinds use it:
//! - transfer learning: the backbone first trained to classify the data set's labels on gray
//!   images (`backbone.pretrain = "classification"`, cached in `<results>/.pretrain/<hash>/`);
//! - the semantic judge of [`super::judge`], trained on true-colour images (`<results>/.judge/<hash>/`).
//!
//! A cache folder holds `classifier.bpk`, `metrics.csv` (one row per epoch) and `top1` (the final
//! validation top-1). Its name is the hash the run's config gives each classifier
//! ([`crate::spec::run_config::ClassifierConfig`]): the data (set, folder, size, image counts, seed)
//! and what each kind lists besides: what the classifier sees, its architecture, epochs, lr, batch
//! size and, for the pretrained backbone, the run's seed (the judge is seeded by the data seed). Concurrent runs
//! needing the same classifier take a lock file (with the owner's pid); the others wait for the
//! result instead of training it twice, and take over a lock whose owner died. A cache that does not
//! load is set aside and trained again.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use burn::module::Module;
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::activation::log_softmax;
use burn::tensor::{Device, Tensor, TensorData};

use super::trainer::seeded;
use crate::atomic::write_atomic;
use crate::color::ColorSpace;
use crate::color::convert::decoded_planar;
use crate::data::{ColorBatch, DataSet, ImageSource, prefetched, prepare};
use crate::metrics::{top1_hits, top1_percent};
use crate::model::{BackboneConfig, BackboneNet};
use crate::rng::Rng;
use crate::spec::RunConfig;
use crate::spec::run_config::ClassifierConfig;
use crate::store::layout::{CacheKind, ClassifierCache, damaged};
use crate::store::lock::LockFile;
use crate::store::log::RunLog;

/// A trained classifier: its burnpack file, its top-1 (%) on the validation images and the network
/// loaded from the file (on the device it was asked for).
pub struct Pretrained {
    pub path: PathBuf,
    pub top1: f64,
    pub net: BackboneNet,
}

/// What a classifier sees.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClassifierInput {
    /// The colorizer's own input: luma in `[0, 1]` of this color space, `[N, 1, H, W]`.
    Gray(ColorSpace),
    /// The true-colour image, sRGB in `[0, 1]`, `[N, 3, H, W]`.
    Rgb,
}

impl ClassifierInput {
    /// The images `indices` of `source` as this input, `(values, channels, batch)`.
    fn load(self, source: &dyn ImageSource, indices: &[usize]) -> Result<(Vec<f32>, usize, ColorBatch)> {
        Ok(match self {
            ClassifierInput::Gray(space) => {
                let mut batch = prepare(source, indices, space)?;
                // The values move out; the batch keeps what callers read of it (size and labels).
                (std::mem::take(&mut batch.gray), 1, batch)
            }
            ClassifierInput::Rgb => {
                let batch = prepare(source, indices, ColorSpace::Lab)?;
                (decoded_planar(ColorSpace::Lab, &batch.gray, &batch.chroma, batch.hw()), 3, batch)
            }
        })
    }
}

/// One classifier to obtain: where it is cached, what it is and how it is trained.
pub struct ClassifierJob {
    /// What it is for, in log lines ("backbone", "judge").
    pub role: &'static str,
    pub cache: ClassifierCache,
    pub net: BackboneConfig,
    pub input: ClassifierInput,
    pub epochs: u64,
    pub seed: u64,
    pub lr: f64,
    pub batch_size: usize,
}

/// Returns the cached classifier of `job`, training it first if no run has. A cache whose files do
/// not load (a damaged `classifier.bpk`, a `top1` that is no number) is set aside
/// (`classifier.bpk.damaged`), saying so, and trained again, so that retrying the run is a remedy.
pub fn cached_classifier(job: &ClassifierJob, data: &DataSet, device: &Device, log: &mut RunLog) -> Result<Pretrained> {
    let dir = &job.cache.dir;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let lock = job.cache.lock();
    let mut waited = false;
    loop {
        if let Some(Ok(found)) = cached(job, device) {
            log.line(&format!("{}: trained classifier from {} (top-1 {:.1}%)", job.role, dir.display(), found.top1));
            return Ok(found);
        }
        match LockFile::try_acquire(&lock)? {
            Ok(_held) => {
                // Another run may have finished it between the check above and the lock.
                match cached(job, device) {
                    Some(Ok(found)) => return Ok(found),
                    Some(Err(why)) => {
                        let aside = damaged(&job.cache.classifier());
                        std::fs::rename(job.cache.classifier(), &aside)
                            .with_context(|| format!("cannot set {} aside", job.cache.classifier().display()))?;
                        let _ = std::fs::remove_file(job.cache.top1());
                        log.line(&format!(
                            "warning: the cached {} in {} does not load ({why}): set aside as {}; training it again",
                            job.role,
                            dir.display(),
                            aside.display()
                        ));
                    }
                    None => {}
                }
                let top1 = train_classifier(job, data, device, log)?;
                return match cached(job, device) {
                    Some(Ok(found)) => Ok(found),
                    Some(Err(why)) => bail!("the {} just trained in {} does not load: {why}", job.role, dir.display()),
                    None => bail!("the {} trained in {} (top-1 {top1:.1}%) left no files", job.role, dir.display()),
                };
            }
            Err(held) => {
                if !waited {
                    let who = held.pid.map_or("another process".to_string(), |p| format!("process {p}"));
                    log.line(&format!("waiting for {who}, which trains this {} in {}", job.role, dir.display()));
                    waited = true;
                }
                std::thread::sleep(Duration::from_millis(500));
            }
        }
    }
}

/// The complete cache of `job`, loaded onto `device`: `None` while it is incomplete (`top1` is
/// written last), why not when its files do not load.
fn cached(job: &ClassifierJob, device: &Device) -> Option<std::result::Result<Pretrained, String>> {
    let (path, top1_path) = (job.cache.classifier(), job.cache.top1());
    if !path.is_file() || !top1_path.is_file() {
        return None;
    }
    let top1 = match std::fs::read_to_string(&top1_path).map(|s| s.trim().parse::<f64>()) {
        Ok(Ok(top1)) if top1.is_finite() => top1,
        Ok(_) => return Some(Err(format!("{} holds no top-1", top1_path.display()))),
        Err(e) => return Some(Err(format!("{}: {e}", top1_path.display()))),
    };
    Some(match job.net.clone().init(device).try_load_file(&path) {
        Ok(net) => Ok(Pretrained { path, top1, net }),
        Err(e) => Err(format!("{}: {e:?}", path.display())),
    })
}

/// Trains the classifier with cross-entropy; writes `classifier.bpk`, `metrics.csv` and `top1`
/// into the job's folder and returns the final validation top-1.
fn train_classifier(job: &ClassifierJob, data: &DataSet, device: &Device, log: &mut RunLog) -> Result<f64> {
    let classes = data.classes.len();
    if classes < 2 {
        bail!("the {} classifier needs a data set with at least 2 classes; this one has {classes}", job.role);
    }
    let ad_device = device.clone().autodiff();
    let mut net: BackboneNet = seeded(&ad_device, job.seed ^ 0x5EED_BAC4_B0E5, || {
        Ok::<_, std::convert::Infallible>(job.net.init(&ad_device))
    })?;
    let mut optim = AdamConfig::new().init();
    let mut csv = String::from("epoch,train_loss,val_top1,seconds\n");
    let mut top = 0.0;
    log.line(&format!(
        "training the {} to classify {classes} classes for {} epochs ({})",
        job.role,
        job.epochs,
        job.cache.dir.display()
    ));
    for epoch in 0..job.epochs {
        let started = Instant::now();
        let mut order: Vec<usize> = (0..data.train.len()).collect();
        Rng::derive(job.seed ^ 0x5EED, epoch).shuffle(&mut order);
        let (mut loss_sum, mut seen) = (0.0, 0usize);
        for idx in order.chunks(job.batch_size) {
            let (input, channels, batch) = job.input.load(data.train.as_ref(), idx)?;
            let x =
                Tensor::<4>::from_data(TensorData::new(input, [batch.n, channels, batch.side, batch.side]), &ad_device);
            let loss = cross_entropy(net.classify(x), &batch.labels, classes, &ad_device);
            let value = loss.clone().into_scalar::<f32>() as f64;
            if !value.is_finite() {
                bail!("the {} classifier's loss became {value} at epoch {}", job.role, epoch + 1);
            }
            let grads = GradientsParams::from_grads(loss.backward(), &net);
            net = optim.step(job.lr, net, grads);
            loss_sum += value * batch.n as f64;
            seen += batch.n;
        }
        top = val_top1(job, &net.valid(), data.val.as_ref(), classes, device)?;
        let mean_loss = loss_sum / seen.max(1) as f64;
        csv.push_str(&format!("{},{mean_loss:.6},{top:.4},{:.2}\n", epoch + 1, started.elapsed().as_secs_f64()));
        log.line(&format!("{} epoch {}/{}: loss {mean_loss:.4}, val top-1 {top:.1}%", job.role, epoch + 1, job.epochs));
    }
    write_atomic(&job.cache.metrics(), csv.as_bytes())?;
    let tmp = job.cache.classifier_tmp();
    net.valid().save_file(&tmp).with_context(|| format!("cannot save the {} classifier", job.role))?;
    std::fs::rename(&tmp, job.cache.classifier())?;
    write_atomic(&job.cache.top1(), format!("{top}").as_bytes())?;
    Ok(top)
}

/// The top-1 (%) of `net` on the validation images `val`, read in batches ahead of the classifier
/// ([`prefetched`]), so that the split is never in memory whole.
fn val_top1(
    job: &ClassifierJob,
    net: &BackboneNet,
    val: &dyn ImageSource,
    classes: usize,
    device: &Device,
) -> Result<f64> {
    let order: Vec<usize> = (0..val.len()).collect();
    let batches: Vec<Vec<usize>> = order.chunks(job.batch_size.max(1)).map(<[usize]>::to_vec).collect();
    let input = job.input;
    prefetched(
        &batches,
        |idx| input.load(val, idx),
        |batches| -> Result<f64> {
            let mut hits = 0;
            for loaded in batches {
                let (values, channels, batch) = loaded?;
                let logits = classify_all(net, &values, channels, batch.side, job.batch_size, device)?;
                hits += top1_hits(&logits, classes, &batch.labels);
            }
            Ok(top1_percent(hits, val.len()))
        },
    )
}

/// Class logits `[n][classes]` of planar images `[n][channels][side * side]`, in batches.
pub fn classify_all(
    net: &BackboneNet,
    images: &[f32],
    channels: usize,
    side: usize,
    batch_size: usize,
    device: &Device,
) -> Result<Vec<f32>> {
    let per_image = channels * side * side;
    let mut logits = Vec::new();
    for chunk in images.chunks(batch_size.max(1) * per_image) {
        let n = chunk.len() / per_image;
        let x = Tensor::<4>::from_data(TensorData::new(chunk.to_vec(), [n, channels, side, side]), device);
        logits.extend(net.classify(x).into_data().try_to_vec::<f32>()?);
    }
    Ok(logits)
}

/// Mean cross-entropy of logits `[n, classes]` against integer labels.
fn cross_entropy(logits: Tensor<2>, labels: &[u32], classes: usize, device: &Device) -> Tensor<1> {
    let mut one_hot = vec![0.0f32; labels.len() * classes];
    for (i, &l) in labels.iter().enumerate() {
        one_hot[i * classes + l as usize] = 1.0;
    }
    let target = Tensor::<2>::from_data(TensorData::new(one_hot, [labels.len(), classes]), device);
    (log_softmax(logits, 1) * target).sum_dim(1).neg().mean()
}

/// The classification-pretrained backbone a run needs (`backbone.pretrain = "classification"`):
/// `net` is the colorizer's backbone config with a classifier of the data set's classes.
pub fn pretrained_backbone(
    cfg: &RunConfig,
    pretrain: &ClassifierConfig,
    net: BackboneConfig,
    data: &DataSet,
    device: &Device,
    results_root: &Path,
    log: &mut RunLog,
) -> Result<Pretrained> {
    let job = ClassifierJob {
        role: "backbone",
        cache: ClassifierCache::new(results_root, CacheKind::Pretrain, &pretrain.cache_key),
        net,
        input: ClassifierInput::Gray(cfg.color_space),
        epochs: pretrain.epochs,
        seed: cfg.seed,
        lr: cfg.train.lr,
        batch_size: cfg.train.batch_size,
    };
    cached_classifier(&job, data, device, log)
}
