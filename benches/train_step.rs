//! Training-speed benchmark of sweep's standard model (issue 3, section 6), the sweep half of
//! `bench/run.sh`; `bench/pytorch_reference.py` is the other half.
//!
//! Three parts, each selectable by name (default: all):
//! - `step`: the trainer's real step ([`sweep::train::trainer::train_step`]: upload, forward, loss,
//!   backward, Adam) on the default config (local 64-128-128, head 64-64, tanh, Lab, l2, batch 64,
//!   32x32), timed over `--steps` steps after `--warmup` steps, the losses read back every
//!   `--loss-every` steps (1 by default, as `pytorch_reference.py`);
//! - `data`: the data path alone (`prepare` + `host_batch` + `into_device` on synthetic images),
//!   and the trainer's pipeline (data thread feeding the step) against the step alone, so a data
//!   path that training waits on shows up as a lower pipeline rate;
//! - `ops`: forward + backward of single layers on the model's largest activation shape
//!   ([64, 128, 32, 32]), printed as a table;
//! - `infer`: inference of the same model (`valid()`, no autodiff, as validation and `sweep
//!   colorize` run it) on batches of 64, timed over `--steps` batches after `--warmup`.
//!
//! Run: `RAYON_NUM_THREADS=2 cargo bench --bench train_step -- [step|data|ops|infer] [--steps N] [--warmup N]
//! [--loss-every N]`.
//! Lines starting with `RESULT` are what `bench/run.sh` parses.

use std::time::Instant;

use burn::module::Module;
use burn::nn::BatchNormConfig;
use burn::nn::PaddingConfig2d;
use burn::nn::conv::Conv2dConfig;
use burn::nn::pool::MaxPool2dConfig;
use burn::tensor::activation::{relu, tanh};
use burn::tensor::module::interpolate;
use burn::tensor::ops::{InterpolateMode, InterpolateOptions};
use burn::tensor::{Device, Distribution, Tensor};
use sweep::data::{self, prepare};
use sweep::model::conv::{Epilogue, conv_bn_relu, conv2d, gemm_kernels, upsample_conv2d};
use sweep::model::norm::batch_norm_relu;
use sweep::model::pool::max_pool2d;
use sweep::model::{ColorizationNet, parameter_count};
use sweep::spec::{RunConfig, Spec, plan};
use sweep::train::losses::DeviceLosses;
use sweep::train::objective::{HostBatch, Objective};
use sweep::train::trainer::{model_config, optimizer, seeded, train_step};

/// The allocator of the `sweep` binary (see src/main.rs), so the step is timed as `sweep exec` runs it.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The default run config: every key at its schema default except the data set's size.
const CONFIG: &str = "[sweep]\nname = \"bench\"\n[base]\ntrain_images = 2048\nval_images = 64\nbatch_size = 64\n";

struct Args {
    parts: Vec<String>,
    steps: usize,
    warmup: usize,
    /// `step` reads the losses every this many steps (1: each step, as `pytorch_reference.py`
    /// by default; the trainer reads every `LOSS_READ_EVERY`).
    loss_every: usize,
}

fn args() -> Args {
    let mut parts = Vec::new();
    let (mut steps, mut warmup, mut loss_every) = (20, 3, 1);
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--steps" => steps = it.next().and_then(|v| v.parse().ok()).expect("--steps N"),
            "--warmup" => warmup = it.next().and_then(|v| v.parse().ok()).expect("--warmup N"),
            "--loss-every" => {
                loss_every = it.next().and_then(|v| v.parse().ok()).filter(|&n| n > 0).expect("--loss-every N")
            }
            // cargo bench passes --bench to every harness = false target.
            "--bench" => {}
            p @ ("step" | "data" | "ops" | "infer") => parts.push(p.to_string()),
            other => panic!(
                "unknown argument {other:?}: expected step, data, ops, infer, --steps N, --warmup N, --loss-every N"
            ),
        }
    }
    if parts.is_empty() {
        parts = vec!["step".into(), "data".into(), "ops".into(), "infer".into()];
    }
    Args { parts, steps, warmup, loss_every }
}

fn main() {
    sweep::allocator::keep_freed_memory();
    let args = args();
    println!("threads: {} (RAYON_NUM_THREADS); gemm kernels: {:?}", rayon::current_num_threads(), gemm_kernels());
    let cfg = {
        let spec = Spec::from_str(std::path::Path::new("bench.toml"), CONFIG.to_string()).expect("valid spec");
        plan(&spec, &[]).expect("valid plan").runs.remove(0).settings
    };
    let bench = Bench::new(&cfg);
    for part in &args.parts {
        match part.as_str() {
            "step" => bench.step(&args),
            "data" => bench.data(&args),
            "infer" => bench.infer(&args),
            _ => ops(),
        }
    }
}

/// Everything the trainer builds before its epoch loop.
struct Bench<'a> {
    cfg: &'a RunConfig,
    data: data::DataSet,
    objective: Objective,
    device: Device,
    ad_device: Device,
}

impl<'a> Bench<'a> {
    fn new(cfg: &'a RunConfig) -> Bench<'a> {
        let data = data::open(&cfg.data).expect("synthetic data opens");
        let objective = Objective::new(cfg, Vec::new);
        let device = Device::flex();
        let ad_device = device.clone().autodiff();
        Bench { cfg, data, objective, device, ad_device }
    }

    fn model(&self) -> ColorizationNet {
        let model_cfg = model_config(self.cfg, &self.objective, self.data.classes.len());
        let model: Result<_, std::convert::Infallible> =
            seeded(&self.ad_device, 0, || Ok(model_cfg.init(&self.ad_device)));
        model.expect("infallible")
    }

    fn host_batch(&self, b: usize) -> HostBatch {
        let bs = self.cfg.train.batch_size;
        let indices: Vec<usize> = (b * bs..(b + 1) * bs).map(|i| i % self.data.train.len()).collect();
        let batch = prepare(self.data.train.as_ref(), &indices, self.cfg.color_space).expect("synthetic images");
        self.objective.host_batch(&batch)
    }

    /// Images per second of the trainer's step on prepared batches.
    fn step(&self, args: &Args) {
        let mut model = self.model();
        println!("model: {} parameters (PyTorch's count: no batch-norm buffers)", parameter_count(&model));
        let mut optim = optimizer(&self.cfg.train.optimizer);
        let lr = self.cfg.train.lr;
        let batches: Vec<HostBatch> = (0..4).map(|b| self.host_batch(b)).collect();
        // Timed per window of `--loss-every` steps (the batch copies left out), as the reference:
        // a read waits for everything queued before it. A window counts when it ends after warm-up.
        let (mut losses, mut windows, mut window) = (DeviceLosses::default(), Vec::new(), Window::default());
        let total = args.warmup + args.steps;
        for s in 0..total {
            let batch = clone_batch(&batches[s % batches.len()]);
            let n = batch.n;
            let t = Instant::now();
            let (m, loss) = train_step(model, &mut optim, &self.objective, batch, &self.ad_device, lr);
            model = m;
            losses.push(loss, n, s);
            if losses.waiting() >= args.loss_every || s + 1 == total {
                for read in losses.read().expect("losses read back") {
                    assert!(read.value.is_finite(), "loss {} at step {}", read.value, read.step);
                }
            }
            window.add(t.elapsed().as_secs_f64(), n);
            if losses.waiting() == 0 {
                if s >= args.warmup {
                    windows.push(window);
                }
                window = Window::default();
            }
        }
        let (seconds, images, steps) =
            windows.iter().fold((0.0, 0, 0), |(t, i, s), w| (t + w.seconds, i + w.images, s + w.steps));
        let mut per_batch: Vec<f64> = windows.iter().map(|w| w.seconds / w.steps as f64).collect();
        println!(
            "RESULT sweep_train_img_per_s {:.2} (mean over {} steps, loss read every {}; median step {:.1} ms/batch)",
            images as f64 / seconds,
            steps,
            args.loss_every,
            median(&mut per_batch) * 1e3
        );
    }

    /// Images per second of the model's inference (`valid()`) on batches of 64.
    fn infer(&self, args: &Args) {
        let model = self.model().valid();
        let host = self.host_batch(0);
        let n = host.n;
        let batch = host.into_device(&self.device);
        let mut times = Vec::new();
        for s in 0..args.warmup + args.steps {
            let t = Instant::now();
            let out = model.forward(batch.gray.clone());
            drop(out.into_data());
            if s >= args.warmup {
                times.push(t.elapsed().as_secs_f64());
            }
        }
        let total: f64 = times.iter().sum();
        println!(
            "RESULT sweep_infer_img_per_s {:.2} (mean over {} batches of {}; median {:.1} ms/batch)",
            (times.len() * n) as f64 / total,
            times.len(),
            n,
            median(&mut times) * 1e3
        );
    }

    /// The data path alone, and the trainer's pipeline against the step alone.
    fn data(&self, args: &Args) {
        let bs = self.cfg.train.batch_size;
        let n = args.steps.max(10);
        let t = Instant::now();
        for b in 0..n {
            drop(self.host_batch(b).into_device(&self.device));
        }
        let data_rate = (n * bs) as f64 / t.elapsed().as_secs_f64();
        println!("RESULT sweep_data_img_per_s {data_rate:.1} (prepare + host_batch + into_device, {n} batches)");

        // The trainer's arrangement: one thread prepares batches two ahead while the step runs.
        let mut model = self.model();
        let mut optim = optimizer(&self.cfg.train.optimizer);
        let lr = self.cfg.train.lr;
        let steps = args.warmup + args.steps;
        let (tx, rx) = std::sync::mpsc::sync_channel::<HostBatch>(2);
        let mut waited = 0.0;
        let mut start = Instant::now();
        std::thread::scope(|scope| {
            scope.spawn(move || {
                for b in 0..steps {
                    if tx.send(self.host_batch(b)).is_err() {
                        break;
                    }
                }
            });
            for s in 0..steps {
                if s == args.warmup {
                    start = Instant::now();
                    waited = 0.0;
                }
                let t = Instant::now();
                let batch = rx.recv().expect("the data thread sends every batch");
                waited += t.elapsed().as_secs_f64();
                model = train_step(model, &mut optim, &self.objective, batch, &self.ad_device, lr).0;
            }
        });
        let elapsed = start.elapsed().as_secs_f64();
        println!(
            "RESULT sweep_pipeline_img_per_s {:.2} (data thread + step, {} steps; waited for data {:.1}% of the time)",
            (args.steps * bs) as f64 / elapsed,
            args.steps,
            100.0 * waited / elapsed
        );
    }
}

/// Steps timed together, between two reads of the losses.
#[derive(Clone, Copy, Default)]
struct Window {
    seconds: f64,
    images: usize,
    steps: usize,
}

impl Window {
    fn add(&mut self, seconds: f64, images: usize) {
        (self.seconds, self.images, self.steps) = (self.seconds + seconds, self.images + images, self.steps + 1);
    }
}

fn clone_batch(b: &HostBatch) -> HostBatch {
    HostBatch {
        n: b.n,
        side: b.side,
        gray: b.gray.clone(),
        target: b.target.clone(),
        target_channels: b.target_channels,
        weight: b.weight.clone(),
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Median milliseconds of `f` over `reps` runs after one warm-up run.
fn time_ms(reps: usize, mut f: impl FnMut()) -> f64 {
    f();
    let mut t: Vec<f64> = (0..reps)
        .map(|_| {
            let s = Instant::now();
            f();
            s.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    median(&mut t)
}

/// Forward + backward of each layer on the shapes of the standard model, with a sum as the loss
/// (its own cost is the `sum only` row).
fn ops() {
    let dev = Device::flex().autodiff();
    let big = [64, 128, 32, 32];
    let input = |shape: [usize; 4]| Tensor::<4>::random(shape, Distribution::Normal(0.0, 1.0), &dev).require_grad();
    let fwd_bwd = |shape: [usize; 4], f: &dyn Fn(Tensor<4>) -> Tensor<4>| {
        let x = input(shape);
        time_ms(5, || {
            let _ = f(x.clone()).sum().backward();
        })
    };
    let conv = Conv2dConfig::new([64, 128], [3, 3]).with_padding(PaddingConfig2d::Same).init(&dev);
    let bn = BatchNormConfig::new(128).init(&dev);
    let head = Conv2dConfig::new([128, 64], [3, 3]).with_padding(PaddingConfig2d::Same).init(&dev);
    let pool = MaxPool2dConfig::new([2, 2]).init();
    let up =
        |x: Tensor<4>| interpolate(x, InterpolateOptions::new(InterpolateMode::Nearest).with_output_size([32, 32]));
    let conv_in = input([64, 64, 32, 32]);
    let fwd = |f: &dyn Fn(Tensor<4>) -> Tensor<4>| {
        time_ms(3, || {
            let _ = f(conv_in.clone().detach());
        })
    };
    let (plain, plain_in) = (conv.valid(), conv_in.clone().inner());
    let plain_bn = bn.valid();
    let infer = |f: &dyn Fn(Tensor<4>) -> Tensor<4>| {
        time_ms(3, || {
            let _ = f(plain_in.clone());
        })
    };
    let rows: Vec<(&str, f64)> = vec![
        ("conv 3x3 64->128 (in [64,64,32,32]), forward, burn's conv2d", fwd(&|x| conv.forward(x))),
        (
            "the same, forward, sweep's GEMM conv (`model::conv::conv2d`)",
            fwd(&|x| conv2d(&conv, x, Epilogue::Identity)),
        ),
        ("conv 3x3 64->128, forward + backward, burn's conv2d", fwd_bwd([64, 64, 32, 32], &|x| conv.forward(x))),
        (
            "the same, forward + backward, sweep's GEMM conv",
            fwd_bwd([64, 64, 32, 32], &|x| conv2d(&conv, x, Epilogue::Identity)),
        ),
        (
            "conv + batch norm + relu (a local block), forward + backward, burn's layers",
            fwd_bwd([64, 64, 32, 32], &|x| relu(bn.forward(conv.forward(x)))),
        ),
        (
            "the same, sweep's GEMM conv + fused batch norm + relu (`conv_bn_relu`)",
            fwd_bwd([64, 64, 32, 32], &|x| conv_bn_relu(&conv, &bn, x)),
        ),
        ("conv + batch norm + relu, inference, burn's layers", infer(&|x| relu(plain_bn.forward(plain.forward(x))))),
        ("the same, inference, sweep's folded conv (`conv_bn_relu`)", infer(&|x| conv_bn_relu(&plain, &plain_bn, x))),
        ("batch norm (training)", fwd_bwd(big, &|x| bn.forward(x))),
        ("batch norm + relu, burn's layers", fwd_bwd(big, &|x| relu(bn.forward(x)))),
        ("batch norm + relu, sweep's fused op", fwd_bwd(big, &|x| batch_norm_relu(&bn, x))),
        ("max pool 2x2, burn's", fwd_bwd(big, &|x| pool.forward(x))),
        ("max pool 2x2, sweep's (`model::pool::max_pool2d`)", fwd_bwd(big, &|x| max_pool2d(&pool, x))),
        ("relu", fwd_bwd(big, &|x| relu(x))),
        ("tanh", fwd_bwd(big, &|x| tanh(x))),
        ("nearest upsample 16x16 -> 32x32", fwd_bwd([64, 128, 16, 16], &|x| up(x))),
        (
            "nearest upsample 16x16 -> 32x32 + conv 3x3 128->64 + relu (the head's first conv), upsample then sweep's conv",
            fwd_bwd([64, 128, 16, 16], &|x| conv2d(&head, up(x), Epilogue::Relu)),
        ),
        (
            "the same, sweep's conv of the pooled map (`upsample_conv2d`)",
            fwd_bwd([64, 128, 16, 16], &|x| upsample_conv2d(&head, x, 2, Epilogue::Relu)),
        ),
        ("sum only (the loss of every row)", fwd_bwd(big, &|x| x)),
    ];
    println!("\n| op, [64, 128, 32, 32] unless said, ms (median of 5) | sweep (burn flex) |");
    println!("| --- | --- |");
    for (name, ms) in rows {
        println!("| {name} | {ms:.1} |");
    }
}
