//! Transfer learning: a backbone first trained to classify the data set's labels on gray images,
//! cached under the hash of what determines it so that every run sharing it reuses one pretraining.
//!
//! The cache lives in `<results>/.pretrain/<hash>/` (`backbone.bpk`, `metrics.csv`, `log.txt`). The
//! hash covers the data (set, folder, size, image counts, seed), the color space (it decides the
//! luma the backbone sees), the backbone (arch, width), the pretraining epochs, lr, batch size and
//! the run's seed. Concurrent runs needing the same backbone take a lock file (with the owner's pid);
//! the others wait for the result instead of training it twice, and take over a lock whose owner died.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use burn::module::Module;
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::activation::log_softmax;
use burn::tensor::{Device, Tensor, TensorData};

use super::trainer::{RunLog, seeded};
use crate::data::io::write_atomic;
use crate::data::{DataSet, prepare};
use crate::metrics::top1;
use crate::model::{BackboneNet, ModelConfig};
use crate::rng::Rng;
use crate::runner::lock::LockFile;
use crate::spec::Flat;
use crate::spec::expand::short_hash;

/// A pretrained backbone: its burnpack file and its top-1 on the validation images (gray).
pub struct Pretrained {
    pub path: PathBuf,
    pub top1: f64,
}

const KEYS: &[&str] = &[
    "dataset",
    "data_dir",
    "image_size",
    "train_images",
    "val_images",
    "data_seed",
    "color_space",
    "backbone.arch",
    "backbone.width",
    "backbone.pretrain_epochs",
    "lr",
    "batch_size",
    "seed",
];

/// The folder of the pretraining a run needs.
pub fn cache_dir(cfg: &Flat, results_root: &Path) -> PathBuf {
    let key: Vec<String> =
        KEYS.iter().map(|k| format!("{k}={}", cfg.value(k).map(|v| v.to_string()).unwrap_or_default())).collect();
    results_root.join(".pretrain").join(short_hash(&key.join("\n")))
}

/// Returns the cached pretrained backbone, training it first if no run has.
pub fn pretrained_backbone(
    cfg: &Flat,
    model_cfg: &ModelConfig,
    data: &DataSet,
    device: &Device,
    results_root: &Path,
    log: &mut RunLog,
) -> Result<Pretrained> {
    let dir = cache_dir(cfg, results_root);
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let path = dir.join("backbone.bpk");
    let top1_path = dir.join("top1");
    let lock = dir.join("lock");
    let mut waited = false;
    loop {
        if path.is_file()
            && let Ok(top1) = std::fs::read_to_string(&top1_path).map(|s| s.trim().parse::<f64>().unwrap_or(f64::NAN))
        {
            log.line(&format!("backbone: classification-pretrained, from {} (top-1 {top1:.1}%)", dir.display()));
            return Ok(Pretrained { path, top1 });
        }
        match LockFile::try_acquire(&lock)? {
            Ok(_held) => {
                // Another run may have finished it between the check above and the lock.
                if !path.is_file() || !top1_path.is_file() {
                    let top1 = train_classifier(cfg, model_cfg, data, device, &dir, log)?;
                    return Ok(Pretrained { path, top1 });
                }
            }
            Err(held) => {
                if !waited {
                    let who = held.pid.map_or("another process".to_string(), |p| format!("process {p}"));
                    log.line(&format!("waiting for {who}, which pretrains this backbone in {}", dir.display()));
                    waited = true;
                }
                std::thread::sleep(Duration::from_millis(500));
            }
        }
    }
}

/// Trains the backbone's classifier with cross-entropy; writes `backbone.bpk`, `metrics.csv` and
/// `top1` into `dir` and returns the final validation top-1.
fn train_classifier(
    cfg: &Flat,
    model_cfg: &ModelConfig,
    data: &DataSet,
    device: &Device,
    dir: &Path,
    log: &mut RunLog,
) -> Result<f64> {
    let classes = data.classes.len();
    if classes < 2 {
        bail!(
            "backbone.pretrain = \"classification\" needs a data set with at least 2 classes; this one has {classes}"
        );
    }
    let seed = cfg.int("seed") as u64;
    let ad_device = device.clone().autodiff();
    let mut backbone: BackboneNet = seeded(&ad_device, seed ^ 0x5EED_BAC4_B0E5, || model_cfg.init_backbone(&ad_device))
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut optim = AdamConfig::new().init();
    let lr = cfg.float("lr");
    let batch_size = cfg.int("batch_size") as usize;
    let epochs = cfg.int("backbone.pretrain_epochs") as u64;
    let space = cfg.color_space();
    let val_indices: Vec<usize> = (0..data.val.len()).collect();
    let val = prepare(data.val.as_ref(), &val_indices, space)?;
    let mut csv = String::from("epoch,train_loss,val_top1,seconds\n");
    let mut top = 0.0;
    log.line(&format!(
        "pretraining the backbone to classify {classes} classes for {epochs} epochs ({})",
        dir.display()
    ));
    for epoch in 0..epochs {
        let started = Instant::now();
        let mut order: Vec<usize> = (0..data.train.len()).collect();
        Rng::derive(seed ^ 0x5EED, epoch).shuffle(&mut order);
        let (mut loss_sum, mut seen) = (0.0, 0usize);
        for idx in order.chunks(batch_size) {
            let batch = prepare(data.train.as_ref(), idx, space)?;
            let gray =
                Tensor::<4>::from_data(TensorData::new(batch.gray, [batch.n, 1, batch.side, batch.side]), &ad_device);
            let logits = backbone.classify(gray);
            let loss = cross_entropy(logits, &batch.labels, classes, &ad_device);
            let value = loss.clone().into_scalar::<f32>() as f64;
            if !value.is_finite() {
                bail!("the pretraining loss became {value} at epoch {}", epoch + 1);
            }
            let grads = GradientsParams::from_grads(loss.backward(), &backbone);
            backbone = optim.step(lr, backbone, grads);
            loss_sum += value * batch.n as f64;
            seen += batch.n;
        }
        let valid = backbone.valid();
        let mut logits_all = Vec::with_capacity(val.n * classes);
        for start in (0..val.n).step_by(batch_size) {
            let b = val.slice(start..(start + batch_size).min(val.n));
            let gray = Tensor::<4>::from_data(TensorData::new(b.gray, [b.n, 1, b.side, b.side]), device);
            logits_all
                .extend(valid.classify(gray).into_data().try_to_vec::<f32>().map_err(|e| anyhow::anyhow!("{e:?}"))?);
        }
        top = top1(&logits_all, classes, &val.labels);
        let line = format!(
            "{},{:.6},{top:.4},{:.2}",
            epoch + 1,
            loss_sum / seen.max(1) as f64,
            started.elapsed().as_secs_f64()
        );
        log.line(&format!(
            "pretrain epoch {}/{epochs}: loss {:.4}, val top-1 {top:.1}%",
            epoch + 1,
            loss_sum / seen.max(1) as f64
        ));
        csv.push_str(&line);
        csv.push('\n');
    }
    write_atomic(&dir.join("metrics.csv"), csv.as_bytes())?;
    let tmp = dir.join(".backbone.bpk.tmp");
    backbone.valid().save_file(&tmp).map_err(|e| anyhow::anyhow!("cannot save the pretrained backbone: {e:?}"))?;
    std::fs::rename(&tmp, dir.join("backbone.bpk"))?;
    write_atomic(&dir.join("top1"), format!("{top}").as_bytes())?;
    Ok(top)
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
