//! What a run does before its first step, for data sets too big to decode at start: the chroma priors
//! are counted on a sample spread over the training set, each sample image decoded once for all the
//! bins, and cached in the results folder; validation reads nothing at start but the sample sheet's
//! images, then every image once per pass.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use burn::tensor::Device;
use sweep::color::ColorSpace;
use sweep::color::quantize::ChromaBins;
use sweep::data::{self, DataSet, ImageSource, prepare};
use sweep::model::ColorizationNet;
use sweep::spec::{RunConfig, Spec, plan};
use sweep::train::prior::{self, PRIOR_IMAGES, Priors};
use sweep::train::trainer::{Evaluator, evaluate, model_config};

/// An image source that counts the images read from it, and can refuse to read.
struct Counting {
    inner: Arc<dyn ImageSource>,
    reads: AtomicUsize,
    refuse: AtomicBool,
}

impl Counting {
    fn new(inner: Arc<dyn ImageSource>) -> Arc<Counting> {
        Arc::new(Counting { inner, reads: AtomicUsize::new(0), refuse: AtomicBool::new(false) })
    }
    fn reads(&self) -> usize {
        self.reads.load(Ordering::SeqCst)
    }
}

impl ImageSource for Counting {
    fn len(&self) -> usize {
        self.inner.len()
    }
    fn side(&self) -> usize {
        self.inner.side()
    }
    fn label(&self, index: usize) -> usize {
        self.inner.label(index)
    }
    fn read_rgb(&self, index: usize, out: &mut [u8]) -> anyhow::Result<()> {
        anyhow::ensure!(!self.refuse.load(Ordering::SeqCst), "this test's source refuses to read");
        self.reads.fetch_add(1, Ordering::SeqCst);
        self.inner.read_rgb(index, out)
    }
    fn item_name(&self, index: usize) -> String {
        self.inner.item_name(index)
    }
}

fn config(base: &str) -> RunConfig {
    let text = format!(
        "[sweep]\nname = \"start\"\n[base]\ndataset = \"synthetic\"\nimage_size = 8\nbatch_size = 16\n\
         local.widths = [4]\nlocal.pool_after = []\nhead.widths = []\n{base}\n"
    );
    let spec = Spec::from_str(Path::new("start.toml"), text).unwrap_or_else(|e| panic!("{e}"));
    plan(&spec, &[]).unwrap_or_else(|e| panic!("{e}")).runs.remove(0).settings
}

/// The data set of `cfg` with counting sources.
fn counted(cfg: &RunConfig) -> (DataSet, Arc<Counting>, Arc<Counting>) {
    let mut data = data::open(&cfg.data).unwrap();
    let (train, val) = (Counting::new(data.train.clone()), Counting::new(data.val.clone()));
    data.train = train.clone();
    data.val = val.clone();
    (data, train, val)
}

/// Pixels per bin of `bins` in the images `indices` of `source`, prepared as the trainer prepares batches.
fn counts_of(source: &dyn ImageSource, indices: &[usize], bins: &ChromaBins) -> Vec<u64> {
    let batch = prepare(source, indices, bins.space()).unwrap();
    let mut counts = vec![0; bins.len()];
    bins.count(&batch.chroma, batch.hw(), &mut counts);
    counts
}

#[test]
fn the_priors_count_a_spread_sample_once_for_all_their_bins() {
    // More training images than the sample: the sample is strided over all of them.
    let cfg = config(&format!(
        "train_images = {}\nval_images = 8\ntask = \"classification\"\nrebalance = true\ncolor_space = \"hsv\"\nbin_size = 20.0",
        PRIOR_IMAGES + 1000
    ));
    let (data, train, _) = counted(&cfg);
    let priors = prior::measure(&cfg, &data, None).unwrap();
    assert_eq!(train.reads(), PRIOR_IMAGES, "every sample image is decoded once, for both priors");
    assert!(!priors.cached);
    assert_eq!(priors.images, PRIOR_IMAGES);
    let sample = prior::sample(data.train.len());
    assert_eq!(*sample.last().unwrap(), (PRIOR_IMAGES - 1) * (PRIOR_IMAGES + 1000) / PRIOR_IMAGES);
    let inner = train.inner.as_ref();
    let lab = ChromaBins::new(ColorSpace::Lab, prior::AUC_BIN_SIZE);
    assert_eq!(priors.auc, counts_of(inner, &sample, &lab));
    let hsv = ChromaBins::new(ColorSpace::Hsv, 20.0);
    assert_eq!(priors.own.as_deref(), Some(&counts_of(inner, &sample, &hsv)[..]));
}

#[test]
fn a_small_training_set_is_its_own_sample_and_a_lab_run_counts_its_bins_once() {
    let cfg = config("train_images = 40\nval_images = 8\ntask = \"classification\"\nrebalance = true");
    let (data, train, _) = counted(&cfg);
    let priors = prior::measure(&cfg, &data, None).unwrap();
    assert_eq!(train.reads(), 40);
    assert_eq!(prior::sample(40), (0..40).collect::<Vec<_>>());
    let lab = ChromaBins::new(ColorSpace::Lab, 10.0);
    assert_eq!(priors.auc, counts_of(train.inner.as_ref(), &(0..40).collect::<Vec<_>>(), &lab));
    assert_eq!(priors.own.as_ref(), Some(&priors.auc), "Lab bins of 10 are the AuC's own");
    // A regression run has no prior of its own.
    let plain = config("train_images = 40\nval_images = 8");
    assert_eq!(prior::measure(&plain, &data, None).unwrap().own, None);
}

#[test]
fn the_priors_are_cached_by_what_they_depend_on() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join(".priors");
    let cfg =
        config("train_images = 60\nval_images = 8\ntask = \"classification\"\nrebalance = true\ncolor_space = \"yuv\"");
    let (data, train, _) = counted(&cfg);
    let first = prior::measure(&cfg, &data, Some(&cache)).unwrap();
    assert_eq!(std::fs::read_dir(&cache).unwrap().count(), 2, "one file per set of bins");
    // The next run reads nothing: its source may not even be readable.
    train.refuse.store(true, Ordering::SeqCst);
    let again = prior::measure(&cfg, &data, Some(&cache)).unwrap();
    assert_eq!(again, Priors { cached: true, ..first.clone() });
    // Other bins of the same data: the AuC's counts come from the cache, the new bins are measured.
    train.refuse.store(false, Ordering::SeqCst);
    let finer = config(
        "train_images = 60\nval_images = 8\ntask = \"classification\"\nrebalance = true\ncolor_space = \"yuv\"\nbin_size = 5.0",
    );
    let reads = train.reads();
    let other = prior::measure(&finer, &data, Some(&cache)).unwrap();
    assert!(!other.cached);
    assert_eq!((other.auc.clone(), train.reads() - reads), (first.auc.clone(), 60));
    assert_ne!(other.own, first.own);
    // Other data (another synthetic seed: the same names, other pixels) is another prior.
    let reseeded = config("train_images = 60\nval_images = 8\ndata_seed = 1");
    let (data1, _, _) = counted(&reseeded);
    let measured = prior::measure(&reseeded, &data1, Some(&cache)).unwrap();
    assert!(!measured.cached);
    assert_eq!(measured.auc, prior::measure(&reseeded, &data1, None).unwrap().auc);
    assert_ne!(measured.auc, first.auc);
    // A damaged cache file is measured again and rewritten.
    for entry in std::fs::read_dir(&cache).unwrap() {
        std::fs::write(entry.unwrap().path(), "sweep chroma prior 1\n3\n1\n").unwrap();
    }
    let repaired = prior::measure(&cfg, &data, Some(&cache)).unwrap();
    assert_eq!(repaired, first);
    assert_eq!(prior::measure(&cfg, &data, Some(&cache)).unwrap(), again);
}

#[test]
fn validation_reads_the_sample_sheet_at_start_and_each_image_once_per_pass() {
    let cfg = config("train_images = 32\nval_images = 40");
    let (data, _, val) = counted(&cfg);
    let priors = prior::measure(&cfg, &data, None).unwrap();
    let evaluator = Evaluator::new(&cfg, &data, &priors).unwrap();
    assert_eq!(val.reads(), 8, "only the sample sheet's images are read at start");
    assert_eq!(evaluator.samples.n, 8);
    let device = Device::flex();
    let model: ColorizationNet = model_config(&cfg, &evaluator.objective, 0).init(&device);
    let first = evaluate(&model, &evaluator, 16, &device, None).unwrap();
    assert_eq!(val.reads(), 8 + 40);
    let second = evaluate(&model, &evaluator, 16, &device, None).unwrap();
    assert_eq!(val.reads(), 8 + 80);
    assert_eq!((first.loss, first.metrics), (second.loss, second.metrics));
    assert_eq!(first.sample_chroma.len(), 8 * 2 * 64, "the sample sheet's chroma, from the first batch");
    // A failing read stops the pass with the image's error.
    val.refuse.store(true, Ordering::SeqCst);
    let err = evaluate(&model, &evaluator, 16, &device, None).err().expect("an error");
    assert!(format!("{err:#}").contains("refuses to read"), "{err:#}");
}
