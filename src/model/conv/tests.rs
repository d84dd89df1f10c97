//! The GEMM convolution against burn's layers: forward, input, weight and bias gradients on odd
//! shapes, the folded inference path, and a whole training step of a small net.

use std::io::Write;

use burn::module::{Module, ModuleVisitor, Param, RunningState};
use burn::nn::BatchNormConfig;
use burn::nn::conv::Conv2dConfig;
use burn::nn::loss::{MseLoss, Reduction};
use burn::optim::{GradientsParams, SgdConfig};
use burn::tensor::{Device, Distribution};

use super::*;
use crate::flex::test_support::{assert_close, values};
use crate::model::{Backbone, BackboneInput, ColorizationNet, FeatureMode, ModelConfig, Output};

/// Runs `f` with the GEMM path off on this thread: burn's layers all the way.
fn burn_only<T>(f: impl FnOnce() -> T) -> T {
    BURN_ONLY.with(|b| b.set(true));
    let out = f();
    BURN_ONLY.with(|b| b.set(false));
    out
}

/// Runs `f` with the direct kernels off on this thread: the im2col + GEMM path where the GEMM
/// path applies.
fn gemm_only<T>(f: impl FnOnce() -> T) -> T {
    GEMM_ONLY.with(|b| b.set(true));
    let out = f();
    GEMM_ONLY.with(|b| b.set(false));
    out
}

/// Whether this CPU runs the direct kernels.
fn direct_available() -> bool {
    #[cfg(target_arch = "x86_64")]
    return direct::available();
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// One conv case: input `[n, c, h, w]`, `o` filters of `k x k`.
struct Case {
    input: [usize; 4],
    o: usize,
    k: usize,
    stride: usize,
    padding: PaddingConfig2d,
    bias: bool,
    epilogue: Epilogue,
}

/// Output, input gradient, weight gradient, bias gradient of `layer(x)`, a layer made of `conv`,
/// under a random upstream gradient.
fn gradients(
    conv: &Conv2d,
    x: &Tensor<4>,
    upstream: &Tensor<4>,
    layer: impl Fn(Tensor<4>) -> Tensor<4>,
) -> [Vec<f32>; 4] {
    let x = x.clone().detach().require_grad();
    let y = layer(x.clone());
    assert_eq!(y.dims(), upstream.dims(), "output shape");
    let grads = (y.clone() * upstream.clone()).sum().backward();
    let db = conv.bias.as_ref().map(|b| values(b.val().grad(&grads).unwrap())).unwrap_or_default();
    [values(y), values(x.grad(&grads).unwrap()), values(conv.weight.val().grad(&grads).unwrap()), db]
}

/// [`gradients`] of `epilogue(conv(x))`.
fn run(conv: &Conv2d, x: &Tensor<4>, upstream: &Tensor<4>, epilogue: Epilogue) -> [Vec<f32>; 4] {
    gradients(conv, x, upstream, |x| conv2d(conv, x, epilogue))
}

#[test]
fn gemm_conv_and_its_gradients_match_burns_on_odd_shapes() {
    let device = Device::flex().autodiff();
    let relu = Epilogue::Relu;
    let id = Epilogue::Identity;
    let same = PaddingConfig2d::Same;
    let cases = [
        // The model's 3x3 same conv; channels that are no multiple of 8 or 16, odd planes.
        Case { input: [3, 17, 9, 11], o: 13, k: 3, stride: 1, padding: same.clone(), bias: true, epilogue: relu },
        // One image (the GEMMs take the threads), one input channel (the first local conv).
        Case { input: [1, 1, 7, 5], o: 5, k: 3, stride: 1, padding: same.clone(), bias: true, epilogue: id },
        // The head's 1x1 conv: the input is its own im2col.
        Case { input: [2, 19, 6, 7], o: 2, k: 1, stride: 1, padding: PaddingConfig2d::Valid, bias: true, epilogue: id },
        // Stride 2: explicit padding, asymmetric `Same` (0 before, 1 after), a 1x1 downsample.
        Case {
            input: [2, 5, 9, 8],
            o: 7,
            k: 3,
            stride: 2,
            padding: PaddingConfig2d::Explicit(1, 1, 1, 1),
            bias: false,
            epilogue: id,
        },
        Case { input: [2, 3, 8, 8], o: 4, k: 3, stride: 2, padding: same.clone(), bias: true, epilogue: relu },
        Case { input: [2, 6, 9, 7], o: 3, k: 1, stride: 2, padding: PaddingConfig2d::Valid, bias: false, epilogue: id },
        // Padding past the kernel (the input gradient then scatters back), asymmetric.
        Case {
            input: [2, 4, 6, 5],
            o: 3,
            k: 3,
            stride: 1,
            padding: PaddingConfig2d::Explicit(3, 0, 1, 2),
            bias: true,
            epilogue: id,
        },
        // ResNet's 7x7 stem, and a plane of 41 x 40 = 1640 output pixels (two GEMM tiles).
        Case {
            input: [1, 3, 13, 12],
            o: 8,
            k: 7,
            stride: 2,
            padding: PaddingConfig2d::Explicit(3, 3, 3, 3),
            bias: false,
            epilogue: id,
        },
        Case { input: [2, 2, 41, 40], o: 3, k: 3, stride: 1, padding: same.clone(), bias: true, epilogue: relu },
        // 70 rows of 67 padded columns: three bands of the direct kernels; a 5x5 kernel.
        Case { input: [1, 3, 70, 65], o: 4, k: 3, stride: 1, padding: same.clone(), bias: true, epilogue: relu },
        Case { input: [2, 3, 9, 10], o: 18, k: 5, stride: 1, padding: same, bias: false, epilogue: id },
    ];
    for (i, case) in cases.iter().enumerate() {
        let [_, c, ..] = case.input;
        let conv = Conv2dConfig::new([c, case.o], [case.k, case.k])
            .with_stride([case.stride, case.stride])
            .with_padding(case.padding.clone())
            .with_bias(case.bias)
            .init(&device);
        let x = Tensor::<4>::random(case.input, Distribution::Normal(0.0, 1.0), &device);
        let out_dims = conv.forward(x.clone()).dims();
        let upstream = Tensor::<4>::random(out_dims, Distribution::Normal(0.0, 1.0), &device);
        let op = ConvOp::Plain(Geometry::of(&conv, case.input).unwrap());
        assert!(train_flex(&conv, &x, op, case.epilogue).is_some(), "case {i}: the GEMM path runs");
        #[cfg(target_arch = "x86_64")]
        assert_eq!(
            direct_applies(&Geometry::of(&conv, case.input).unwrap()),
            case.stride == 1 && direct_available(),
            "case {i}: the direct kernels take every stride-1 conv where the CPU has them"
        );
        let direct = run(&conv, &x, &upstream, case.epilogue);
        let gemm = gemm_only(|| run(&conv, &x, &upstream, case.epilogue));
        let burn = burn_only(|| run(&conv, &x, &upstream, case.epilogue));
        if case.epilogue == Epilogue::Relu {
            assert!(burn[0].contains(&0.0) && burn[0].iter().any(|&v| v > 0.0), "case {i}: the ReLU must cut");
        }
        for (path, fast) in [("direct", direct), ("gemm", gemm)] {
            for (what, (f, b)) in
                ["output", "input grad", "weight grad", "bias grad"].iter().zip(fast.iter().zip(&burn))
            {
                assert_close(&format!("case {i} {path} {what}"), f, b, 1e-4);
            }
        }
    }
}

/// [`gradients`] of `epilogue(conv(up(x)))`, `up` a nearest upsample by `scale`, through
/// [`upsample_conv2d`] (under `burn_only`, burn's `interpolate` and conv).
fn run_upsampled(
    conv: &Conv2d,
    x: &Tensor<4>,
    scale: usize,
    upstream: &Tensor<4>,
    epilogue: Epilogue,
) -> [Vec<f32>; 4] {
    gradients(conv, x, upstream, |x| upsample_conv2d(conv, x, scale, epilogue))
}

#[test]
fn a_conv_of_an_upsampled_map_and_its_gradients_match_burns_interpolate_and_conv() {
    let device = Device::flex().autodiff();
    let same = PaddingConfig2d::Same;
    // (map [n, c, h, w], scale, filters, kernel, padding, bias, epilogue, whether the phases run)
    let cases = [
        // The standard model's head: one pool's worth, 3x3, ReLU.
        ([2, 5, 4, 6], 2, 7, 3, same.clone(), true, Epilogue::Relu, true),
        // Two pools (x4), a 1x1 head (no hidden conv), x3 with a 5x5 kernel.
        ([1, 3, 3, 5], 4, 4, 3, same.clone(), true, Epilogue::Identity, true),
        ([2, 4, 5, 4], 2, 2, 1, PaddingConfig2d::Valid, true, Epilogue::Identity, true),
        ([1, 2, 6, 5], 3, 3, 5, same.clone(), false, Epilogue::Relu, true),
        // 70 map rows of 32 padded columns: two bands.
        ([1, 2, 70, 30], 2, 3, 3, same, true, Epilogue::Relu, true),
        // A conv that shrinks the map: interpolate and conv.
        ([1, 2, 4, 4], 2, 3, 3, PaddingConfig2d::Valid, true, Epilogue::Identity, false),
    ];
    for (i, (dims, scale, o, k, padding, bias, epilogue, phases)) in cases.into_iter().enumerate() {
        let conv = Conv2dConfig::new([dims[1], o], [k, k]).with_padding(padding).with_bias(bias).init(&device);
        let x = Tensor::<4>::random(dims, Distribution::Normal(0.0, 1.0), &device);
        let [n, c, h, w] = dims;
        let full = Geometry::of(&conv, [n, c, scale * h, scale * w]).unwrap();
        #[cfg(target_arch = "x86_64")]
        assert_eq!(direct::Upsampled::new(full, scale).is_some(), phases && direct_available(), "case {i}: phases");
        let upstream = Tensor::<4>::random([n, o, full.oh, full.ow], Distribution::Normal(0.0, 1.0), &device);
        let fused = run_upsampled(&conv, &x, scale, &upstream, epilogue);
        let gemm = gemm_only(|| run_upsampled(&conv, &x, scale, &upstream, epilogue));
        let burn = burn_only(|| run_upsampled(&conv, &x, scale, &upstream, epilogue));
        for (path, fast) in [("fused", fused), ("gemm", gemm)] {
            for (what, (f, b)) in
                ["output", "input grad", "weight grad", "bias grad"].iter().zip(fast.iter().zip(&burn))
            {
                assert_close(&format!("case {i} {path} {what}"), f, b, 1e-4);
            }
        }
        let inference = upsample_conv2d(&conv.valid(), x.clone().inner(), scale, epilogue);
        assert_close(&format!("case {i} inference"), &values(inference), &burn[0], 1e-4);
    }
}

#[test]
fn groups_and_dilation_take_burns_path() {
    let device = Device::flex().autodiff();
    let x = Tensor::<4>::random([2, 4, 7, 7], Distribution::Normal(0.0, 1.0), &device);
    let dilated = Conv2dConfig::new([4, 3], [3, 3]).with_dilation([2, 2]).init(&device);
    let grouped = Conv2dConfig::new([4, 6], [3, 3]).with_groups(2).init(&device);
    for conv in [dilated, grouped] {
        assert!(Geometry::of(&conv, x.dims()).is_none(), "no geometry, no fast path");
        assert_eq!(values(conv2d(&conv, x.clone(), Epilogue::Relu)), values(relu(conv.forward(x.clone()))));
    }
}

#[test]
fn inference_folds_batch_norm_into_the_conv() {
    let device = Device::flex();
    let conv = Conv2dConfig::new([5, 6], [3, 3]).with_padding(PaddingConfig2d::Same).init(&device);
    let mut bn = BatchNormConfig::new(6).init(&device);
    let channel = |v: [f32; 6]| Tensor::<1>::from_data(TensorData::new(v.to_vec(), [6]), &device);
    bn.gamma = Param::from_tensor(channel([1.0, 0.5, -0.7, 2.0, 1.3, 0.1]));
    bn.beta = Param::from_tensor(channel([0.0, 0.3, -0.2, 0.5, -1.0, 0.05]));
    bn.running_mean = RunningState::new(channel([0.1, -0.2, 0.0, 0.3, 0.05, -0.4]));
    bn.running_var = RunningState::new(channel([0.5, 1.5, 0.2, 1.0, 2.0, 0.8]));
    let x = Tensor::<4>::random([3, 5, 7, 9], Distribution::Normal(0.0, 1.0), &device);
    let burn = values(relu(bn.forward(conv.forward(x.clone()))));
    assert!(burn.contains(&0.0) && burn.iter().any(|&v| v > 0.0), "the ReLU must cut");
    let op = ConvOp::Plain(Geometry::of(&conv, x.dims()).unwrap());
    assert!(infer_flex(&conv, &x, op, Some(&bn), Epilogue::Relu).is_some(), "the folded path runs on flex");
    assert_close("conv + bn + relu", &values(conv_bn_relu(&conv, &bn, x.clone())), &burn, 1e-5);
    assert_close(
        "conv + relu",
        &values(conv2d(&conv, x.clone(), Epilogue::Relu)),
        &values(relu(conv.forward(x))),
        1e-5,
    );
}

/// Every parameter's value (after `stepped`) or gradient, in visiting order.
fn params(net: &ColorizationNet, grads: Option<&GradientsParams>) -> Vec<Vec<f32>> {
    struct Collect<'a>(Vec<Vec<f32>>, Option<&'a GradientsParams>);
    impl ModuleVisitor for Collect<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let v = match self.1 {
                Some(grads) => grads.get::<D>(param.id).map(values).unwrap_or_default(),
                None => values(param.val()),
            };
            self.0.push(v);
        }
    }
    let mut c = Collect(Vec::new(), grads);
    net.visit(&mut c);
    c.0
}

/// Two SGD steps of a small net (local 5-7 with a pool, head 6, tanh) on an MSE loss: losses, the
/// gradients of the second step and the parameters after it.
fn two_steps(net: ColorizationNet, gray: &Tensor<4>, target: &Tensor<4>) -> (Vec<f32>, Vec<Vec<f32>>, Vec<Vec<f32>>) {
    let mut optim = SgdConfig::new().init();
    let (mut net, mut losses, mut last) = (net, Vec::new(), Vec::new());
    for _ in 0..2 {
        let loss = MseLoss::new().forward(net.forward(gray.clone()), target.clone(), Reduction::Mean);
        losses.push(loss.clone().into_scalar::<f32>());
        let grads = GradientsParams::from_grads(loss.backward(), &net);
        last = params(&net, Some(&grads));
        net = optim.step(0.5, net, grads);
    }
    (losses, last, params(&net, None))
}

#[test]
fn a_training_step_matches_burns_layers() {
    let device = Device::flex().autodiff();
    let config = ModelConfig {
        image_size: 12,
        local_widths: vec![5, 7],
        local_pool_after: vec![1],
        backbone: Backbone::None,
        backbone_width: 1.0,
        backbone_input: BackboneInput::Gray,
        features: FeatureMode::Local,
        fusion_dim: 4,
        head_widths: vec![6],
        output: Output::Regression(crate::model::Activation::Tanh),
        num_classes: 0,
    };
    let net = config.init(&device);
    let gray = Tensor::<4>::random([3, 1, 12, 12], Distribution::Uniform(0.0, 1.0), &device);
    let target = Tensor::<4>::random([3, 2, 12, 12], Distribution::Uniform(-1.0, 1.0), &device);
    let direct = two_steps(net.clone(), &gray, &target);
    let gemm = gemm_only(|| two_steps(net.clone(), &gray, &target));
    let burn = burn_only(|| two_steps(net, &gray, &target));
    assert_ne!(burn.0[0], burn.0[1], "the first step changes the net");
    // The batch norms' running statistics (no gradient) are shared by the clones of the net.
    let trained = |i: &usize| !burn.1[*i].is_empty();
    assert_eq!(
        (0..burn.1.len()).filter(trained).count(),
        12,
        "weights and biases of 4 convs, gamma and beta of 2 batch norms"
    );
    for (path, fast) in [("direct", direct), ("gemm", gemm)] {
        assert_close(&format!("{path} losses"), &fast.0, &burn.0, 1e-5);
        for (i, (f, b)) in fast.1.iter().zip(&burn.1).enumerate() {
            assert_close(&format!("{path} gradient {i}"), f, b, 1e-3);
        }
        for i in (0..burn.2.len()).filter(trained) {
            assert_close(&format!("{path} parameter {i} after two steps"), &fast.2[i], &burn.2[i], 1e-4);
        }
    }
}

#[test]
fn backbone_nets_train_as_with_burns_layers() {
    let device = Device::flex().autodiff();
    for (backbone, features) in [(Backbone::Resnet18, FeatureMode::Fusion), (Backbone::Vgg16, FeatureMode::Hypercolumn)]
    {
        let config = ModelConfig {
            image_size: 32,
            local_widths: vec![4, 6],
            local_pool_after: vec![1],
            backbone,
            backbone_width: 0.0625,
            backbone_input: BackboneInput::Gray,
            features,
            fusion_dim: 4,
            head_widths: vec![5],
            output: Output::Regression(crate::model::Activation::Tanh),
            num_classes: 0,
        };
        let net = config.init(&device);
        let gray = Tensor::<4>::random([2, 1, 32, 32], Distribution::Uniform(0.0, 1.0), &device);
        let target = Tensor::<4>::random([2, 2, 32, 32], Distribution::Uniform(-1.0, 1.0), &device);
        let fast = two_steps(net.clone(), &gray, &target);
        let burn = burn_only(|| two_steps(net, &gray, &target));
        assert_close(&format!("{backbone:?} losses"), &fast.0, &burn.0, 1e-5);
        for (i, (f, b)) in fast.1.iter().zip(&burn.1).enumerate() {
            assert_close(&format!("{backbone:?} gradient {i}"), f, b, 1e-3);
        }
    }
}

/// Says which GEMM kernels this CPU runs and whether it runs the direct kernels (on the test's
/// stderr, past the harness's capture), and checks both against the CPU's flags.
#[test]
fn gemm_kernels_follow_the_cpu() {
    let kernels = gemm_kernels();
    let flags = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let has = |flag: &str| flags.lines().any(|l| l.starts_with("flags") && l.split_whitespace().any(|f| f == flag));
    if cfg!(all(target_arch = "x86_64", target_os = "linux")) {
        let expected = match (has("avx512f"), has("fma")) {
            (true, _) => GemmKernels::Avx512,
            (false, true) => GemmKernels::Fma,
            (false, false) => GemmKernels::Other,
        };
        assert_eq!(kernels, expected, "/proc/cpuinfo's flags");
        assert_eq!(direct_available(), has("avx512f"), "direct kernels: /proc/cpuinfo's flags");
    }
    let direct = if direct_available() { "AVX-512F direct kernels for stride-1 convs" } else { "no direct kernels" };
    let _ = writeln!(std::io::stderr(), "gemm kernels on this CPU: {kernels:?}; {direct}");
}
