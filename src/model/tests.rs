//! Tests of the whole model: shapes for every backbone x features x output combination, output
//! ranges, gradients (and their absence for a frozen backbone), burnpack round trips, parameter
//! counts of the torchvision-sized backbones, config validation. All on `Device::flex()` with
//! narrow layers so they run in seconds; torchvision weight loading is tested in `weights.rs`.

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::{Device, Distribution, Tensor};

use super::*;

/// A narrow config: local 8-16-16, head 8, fusion 16, backbone width 1/8.
fn small(backbone: Backbone, features: FeatureMode, output: Output, image_size: usize) -> ModelConfig {
    ModelConfig {
        image_size,
        local_widths: vec![8, 16, 16],
        local_pool_after: vec![2],
        backbone,
        backbone_width: 0.125,
        backbone_input: BackboneInput::Gray,
        features,
        fusion_dim: 16,
        head_widths: vec![8],
        output,
        num_classes: 0,
    }
}

/// Test support: what only these tests do with a model (pretraining builds its backbone from a
/// [`BackboneConfig`] and moves it into a net through a file, `crate::train::pretrain`).
impl ModelConfig {
    /// Builds only the backbone; it has the same parameter paths as the backbone inside
    /// [`ColorizationNet`], so its burnpack file loads there ([`ColorizationNet::load_backbone_file`]).
    fn init_backbone(&self, device: &Device) -> Result<BackboneNet, ModelError> {
        self.validate()?;
        let config = self.backbone_config().ok_or(ModelError::NoBackbone)?;
        Ok(config.init(device))
    }
}

impl ColorizationNet {
    /// Class logits `[N, num_classes]` from the backbone's classifier (for pretraining).
    ///
    /// # Panics
    /// When the net has no backbone or was built with `num_classes = 0`; see
    /// [`ColorizationNet::has_classifier`].
    fn classify(&self, gray: Tensor<4>) -> Tensor<2> {
        self.backbone.as_ref().expect("classify needs a backbone (backbone = None)").classify(gray)
    }

    /// Whether [`ColorizationNet::classify`] can run.
    fn has_classifier(&self) -> bool {
        self.backbone.as_ref().is_some_and(|b| b.has_classifier())
    }

    /// The backbone, if any.
    fn backbone(&self) -> Option<&BackboneNet> {
        self.backbone.as_ref()
    }

    /// Undoes [`ColorizationNet::freeze_backbone`] ([`Module::unfreeze`]).
    fn unfreeze_backbone(mut self) -> Self {
        self.backbone = self.backbone.map(Module::unfreeze);
        self
    }

    /// Replaces the backbone with `backbone` (e.g. one pretrained as a classifier), which must
    /// have the same architecture and parameter shapes as the net's own, classifier included.
    fn with_backbone(mut self, backbone: BackboneNet) -> Result<Self, ModelError> {
        let own = self.backbone.as_ref().ok_or(ModelError::NoBackbone)?;
        let (a, b) = (param_shapes(own), param_shapes(&backbone));
        if a != b {
            let diff = a
                .iter()
                .zip(b.iter())
                .find(|(x, y)| x != y)
                .map(|(x, y)| format!("net has {} {:?}, given {} {:?}", x.0, x.1, y.0, y.1))
                .unwrap_or_else(|| format!("net has {} tensors, given {}", a.len(), b.len()));
            return Err(ModelError::BackboneMismatch(diff));
        }
        self.backbone = Some(backbone);
        Ok(self)
    }
}

fn gray(n: usize, size: usize, device: &Device) -> Tensor<4> {
    Tensor::random([n, 1, size, size], Distribution::Default, device)
}

fn combos() -> Vec<(Backbone, FeatureMode)> {
    vec![
        (Backbone::None, FeatureMode::Local),
        (Backbone::Vgg16, FeatureMode::Fusion),
        (Backbone::Vgg16, FeatureMode::Hypercolumn),
        (Backbone::Resnet18, FeatureMode::Fusion),
        (Backbone::Resnet18, FeatureMode::Hypercolumn),
    ]
}

const OUTPUTS: [Output; 4] = [
    Output::Regression(Activation::Tanh),
    Output::Regression(Activation::Sigmoid),
    Output::Regression(Activation::Linear),
    Output::Classification { bins: 13 },
];

#[test]
fn output_shapes_for_every_combination_at_32() {
    let device = Device::flex();
    let x = gray(2, 32, &device);
    for (backbone, features) in combos() {
        for output in OUTPUTS {
            let net = small(backbone, features, output, 32).init(&device);
            let y = net.forward(x.clone());
            assert_eq!(y.dims(), [2, output.channels(), 32, 32], "{backbone:?} {features:?} {output:?}");
        }
    }
}

#[test]
fn output_shapes_at_64_use_the_torchvision_variants() {
    let device = Device::flex();
    let x = gray(2, 64, &device);
    for (backbone, features) in combos() {
        let mut config = small(backbone, features, Output::Classification { bins: 5 }, 64);
        config.backbone_input = BackboneInput::ImagenetRgb;
        if backbone != Backbone::None {
            assert_eq!(config.backbone_variant(), Some(BackboneVariant::Imagenet));
        }
        let net = config.init(&device);
        assert_eq!(net.forward(x.clone()).dims(), [2, 5, 64, 64], "{backbone:?} {features:?}");
    }
}

#[test]
fn no_pool_local_branch_skips_the_upsample() {
    let device = Device::flex();
    let mut config = small(Backbone::None, FeatureMode::Local, OUTPUTS[0], 32);
    config.local_pool_after = vec![];
    let net = config.init(&device);
    assert_eq!(net.forward(gray(1, 32, &device)).dims(), [1, 2, 32, 32]);
}

#[test]
fn regression_activations_stay_in_range() {
    let device = Device::flex();
    // Inputs far outside [0, 1] push the pre-activations out to where tanh and sigmoid saturate.
    let x = gray(2, 32, &device).mul_scalar(200.0).sub_scalar(100.0);
    for (act, lo, hi) in [(Activation::Tanh, -1.0, 1.0), (Activation::Sigmoid, 0.0, 1.0)] {
        let net = small(Backbone::Resnet18, FeatureMode::Fusion, Output::Regression(act), 32).init(&device);
        let y = net.forward(x.clone());
        let min = y.clone().min().into_scalar::<f32>();
        let max = y.max().into_scalar::<f32>();
        assert!(min >= lo && max <= hi, "{act:?}: [{min}, {max}]");
        assert!(max > min, "{act:?}: constant output");
    }
}

/// `(path, has gradient)` of every trainable parameter (batch-norm running stats left out).
fn grad_presence(net: &ColorizationNet, grads: &burn::tensor::Gradients) -> Vec<(String, bool)> {
    struct V<'a> {
        path: Vec<String>,
        grads: &'a burn::tensor::Gradients,
        out: Vec<(String, bool)>,
    }
    impl ModuleVisitor for V<'_> {
        fn enter_module(&mut self, name: &str, _: &str) {
            self.path.push(name.to_string());
        }
        fn exit_module(&mut self, _: &str, _: &str) {
            self.path.pop();
        }
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let path = self.path.join(".");
            if !is_running_stat(&path) {
                self.out.push((path, param.val().grad(self.grads).is_some()));
            }
        }
    }
    let mut v = V { path: vec![], grads, out: vec![] };
    net.visit(&mut v);
    v.out
}

#[test]
fn backward_reaches_every_parameter() {
    let device = Device::flex().autodiff();
    let x = gray(2, 32, &device);
    for (backbone, features) in combos() {
        for output in [OUTPUTS[0], OUTPUTS[3]] {
            let net = small(backbone, features, output, 32).init(&device);
            let grads = net.forward(x.clone()).powi_scalar(2).mean().backward();
            let presence = grad_presence(&net, &grads);
            assert!(presence.len() > 10);
            let without: Vec<_> = presence.iter().filter(|(_, g)| !g).map(|(p, _)| p).collect();
            assert!(without.is_empty(), "{backbone:?} {features:?} {output:?}: no gradient for {without:?}");
        }
    }
}

#[test]
fn frozen_backbone_gets_no_gradients_and_keeps_its_statistics() {
    let device = Device::flex().autodiff();
    let x = gray(2, 32, &device);
    for backbone in [Backbone::Vgg16, Backbone::Resnet18] {
        let net = small(backbone, FeatureMode::Hypercolumn, OUTPUTS[0], 32).init(&device).freeze_backbone();
        let stats_before = running_stats(&net.valid());
        let grads = net.forward(x.clone()).mean().backward();
        for (path, has_grad) in grad_presence(&net, &grads) {
            assert_eq!(has_grad, !path.starts_with("backbone"), "{backbone:?} {path}");
        }
        // Frozen batch norm runs on its running statistics and leaves them alone. `valid()`
        // syncs the running state: burn keeps a batch norm's latest update per thread and
        // folds it into the visible value one update late.
        let stats_after = running_stats(&net.valid());
        for ((path, before), (_, after)) in stats_before.iter().zip(&stats_after) {
            if path.starts_with("backbone") {
                assert_eq!(before, after, "{path} changed");
            }
        }
        // The local branch still trains its batch norms.
        assert!(stats_before.iter().zip(&stats_after).any(|((p, b), (_, a))| p.starts_with("local") && b != a));

        let net = net.unfreeze_backbone();
        let grads = net.forward(x.clone()).mean().backward();
        assert!(grad_presence(&net, &grads).iter().all(|(_, g)| *g), "{backbone:?}");
    }
}

fn running_stats(net: &ColorizationNet) -> Vec<(String, Vec<f32>)> {
    struct V {
        path: Vec<String>,
        out: Vec<(String, Vec<f32>)>,
    }
    impl ModuleVisitor for V {
        fn enter_module(&mut self, name: &str, _: &str) {
            self.path.push(name.to_string());
        }
        fn exit_module(&mut self, _: &str, _: &str) {
            self.path.pop();
        }
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let path = self.path.join(".");
            if is_running_stat(&path) {
                let v = param.val().into_data().try_to_vec::<f32>().unwrap();
                self.out.push((path, v));
            }
        }
    }
    let mut v = V { path: vec![], out: vec![] };
    net.visit(&mut v);
    v.out
}

#[test]
fn burnpack_round_trip_gives_identical_outputs() {
    let device = Device::flex();
    let dir = tempfile::tempdir().unwrap();
    let x = gray(2, 32, &device);
    for (backbone, features) in combos() {
        let mut config = small(backbone, features, OUTPUTS[3], 32);
        config.num_classes = if backbone == Backbone::None { 0 } else { 7 };
        let net = config.init(&device);
        let before = net.forward(x.clone()).into_data();
        let path = dir.path().join(format!("{backbone:?}-{features:?}.bpk"));
        net.save_file(&path).unwrap();
        let fresh = config.init(&device);
        assert_ne!(fresh.forward(x.clone()).into_data(), before, "fresh init should differ");
        let loaded = fresh.load_file(&path);
        assert_eq!(loaded.forward(x.clone()).into_data(), before, "{backbone:?} {features:?}");
    }
}

#[test]
fn torchvision_sized_parameter_counts() {
    let device = Device::flex();
    let full = |backbone| ModelConfig {
        image_size: 224,
        backbone,
        backbone_width: 1.0,
        backbone_input: BackboneInput::ImagenetRgb,
        features: FeatureMode::Fusion,
        num_classes: 1000,
        ..ModelConfig::default()
    };
    // Parameters are lazy: counting reads shapes and allocates none of VGG's 138M floats.
    let resnet = full(Backbone::Resnet18).init_backbone(&device).unwrap();
    assert_eq!(parameter_count(&resnet), 11_689_512);
    let vgg = full(Backbone::Vgg16).init_backbone(&device).unwrap();
    assert_eq!(parameter_count(&vgg), 138_357_544);
}

#[test]
fn classify_gives_class_logits() {
    let device = Device::flex();
    for size in [32, 64] {
        for backbone in [Backbone::Vgg16, Backbone::Resnet18] {
            let mut config = small(backbone, FeatureMode::Fusion, OUTPUTS[0], size);
            config.num_classes = 10;
            let net = config.init(&device);
            assert!(net.has_classifier());
            assert_eq!(net.classify(gray(3, size, &device)).dims(), [3, 10]);
            let bb = config.init_backbone(&device).unwrap();
            assert_eq!(bb.classify(gray(3, size, &device)).dims(), [3, 10]);
        }
    }
    let net = small(Backbone::Vgg16, FeatureMode::Fusion, OUTPUTS[0], 32).init(&device);
    assert!(!net.has_classifier());
}

#[test]
fn pretrained_backbone_moves_into_a_colorization_net() {
    let device = Device::flex();
    let dir = tempfile::tempdir().unwrap();
    let x = gray(2, 32, &device);
    for backbone in [Backbone::Vgg16, Backbone::Resnet18] {
        let mut config = small(backbone, FeatureMode::Fusion, OUTPUTS[0], 32);
        config.num_classes = 10;
        let pretrained = config.init_backbone(&device).unwrap();
        let expected = pretrained.features(x.clone()).global.into_data();
        let path = dir.path().join(format!("{backbone:?}.bpk"));
        pretrained.clone().save_file(&path).unwrap();

        // Same config: the classifier comes along.
        let net = config.init(&device).load_backbone_file(&path, false).unwrap();
        assert_eq!(net.backbone().unwrap().features(x.clone()).global.into_data(), expected);

        // A colorization net without classifier: only with the mismatch allowed.
        let mut no_cls = config.clone();
        no_cls.num_classes = 0;
        let err = no_cls.init(&device).load_backbone_file(&path, false).unwrap_err();
        assert!(matches!(err, ModelError::BackboneFile(_)), "{err}");
        let net = no_cls.init(&device).load_backbone_file(&path, true).unwrap();
        assert_eq!(net.backbone().unwrap().features(x.clone()).global.into_data(), expected);

        // In memory.
        let net = config.init(&device).with_backbone(pretrained).unwrap();
        assert_eq!(net.backbone().unwrap().features(x.clone()).global.into_data(), expected);

        // A backbone of another width does not fit.
        let mut wide = config.clone();
        wide.backbone_width = 0.25;
        let other = wide.init_backbone(&device).unwrap();
        let err = config.init(&device).with_backbone(other).unwrap_err();
        assert!(matches!(err, ModelError::BackboneMismatch(_)), "{err}");
    }
}

#[test]
fn invalid_configs_name_the_field() {
    let base = ModelConfig::default();
    let cases: Vec<(ModelConfig, &str)> = vec![
        (ModelConfig { features: FeatureMode::Fusion, ..base.clone() }, "features"),
        (ModelConfig { backbone: Backbone::Vgg16, ..base.clone() }, "features"),
        (ModelConfig { local_pool_after: vec![4], ..base.clone() }, "local_pool_after"),
        (ModelConfig { local_pool_after: vec![2, 2], ..base.clone() }, "local_pool_after"),
        (ModelConfig { local_widths: vec![], ..base.clone() }, "local_widths"),
        (
            ModelConfig {
                image_size: 48,
                backbone: Backbone::Resnet18,
                features: FeatureMode::Hypercolumn,
                ..base.clone()
            },
            "image_size",
        ),
        (ModelConfig { image_size: 33, ..base.clone() }, "image_size"),
        (ModelConfig { output: Output::Classification { bins: 1 }, ..base.clone() }, "output"),
        (ModelConfig { num_classes: 10, ..base.clone() }, "num_classes"),
        (
            ModelConfig {
                backbone: Backbone::Vgg16,
                features: FeatureMode::Fusion,
                backbone_width: 0.0,
                ..base.clone()
            },
            "backbone_width",
        ),
    ];
    for (config, field) in cases {
        match config.validate() {
            Err(ModelError::InvalidConfig { field: f, .. }) => assert_eq!(f, field, "{config:?}"),
            other => panic!("{config:?}: expected an error on {field}, got {other:?}"),
        }
    }
    assert_eq!(ModelConfig::default().validate(), Ok(()));
}

/// One forward + backward of the seed-size model with a small fusion backbone, batch 64, 32x32.
/// Ignored by default (a few seconds to a minute on 2 cores); run with
/// `cargo test --lib model::tests::seed_step_timing -- --ignored --nocapture`.
#[test]
#[ignore]
fn seed_step_timing() {
    let device = Device::flex().autodiff();
    let x = gray(64, 32, &device);
    for (name, config) in [
        ("seed local", ModelConfig::default()),
        (
            "seed + fusion resnet18 w0.25",
            ModelConfig {
                backbone: Backbone::Resnet18,
                backbone_width: 0.25,
                features: FeatureMode::Fusion,
                ..ModelConfig::default()
            },
        ),
        (
            "seed + fusion vgg16 w0.25",
            ModelConfig {
                backbone: Backbone::Vgg16,
                backbone_width: 0.25,
                features: FeatureMode::Fusion,
                ..ModelConfig::default()
            },
        ),
    ] {
        let net = config.init(&device);
        println!("{name}: {} parameters", parameter_count(&net));
        for i in 0..3 {
            let t = std::time::Instant::now();
            let grads = net.forward(x.clone()).powi_scalar(2).mean().backward();
            drop(grads);
            println!("{name}: step {i}: {:.3} s", t.elapsed().as_secs_f64());
        }
    }
}

/// Documents the burn 0.22 behaviour the module docs warn about: a visitor (and so
/// `save_file`) sees batch-norm running statistics one update late until `valid()` syncs them.
#[test]
fn running_stats_lag_one_update_until_valid() {
    let device = Device::flex().autodiff();
    let net = small(Backbone::None, FeatureMode::Local, OUTPUTS[0], 32).init(&device);
    let initial = running_stats(&net);
    let _ = net.forward(gray(2, 32, &device));
    assert_eq!(running_stats(&net), initial, "first update not yet visible");
    let _ = net.forward(gray(2, 32, &device));
    let lagging = running_stats(&net);
    assert_ne!(lagging, initial, "second update folds in the first");
    let synced = running_stats(&net.valid());
    assert_ne!(synced, lagging, "valid() folds in the second");
}

#[test]
fn the_forward_estimate_grows_with_the_area_and_counts_the_widest_maps() {
    let device = Device::flex();
    let reg = small(Backbone::None, FeatureMode::Local, Output::Regression(Activation::Tanh), 32).init(&device);
    // The widest conv is local 16 -> 16 (16 in, twice 16 out), the output 2 channels twice more and
    // the decoded chroma: 48 + 4 + 2 channels of f32, a quarter more for the allocator.
    assert_eq!(reg.forward_bytes(1), 5 * 54);
    assert_eq!(reg.forward_bytes(64), 64 * 64 * reg.forward_bytes(1));
    let cls = small(Backbone::None, FeatureMode::Local, Output::Classification { bins: 261 }, 32).init(&device);
    // The output conv 8 -> 261 is the widest, and its maps are kept twice more.
    assert_eq!(cls.forward_bytes(1), 5 * (8 + 2 * 261 + 2 * 261 + 2));
    let vgg = small(Backbone::Vgg16, FeatureMode::Fusion, Output::Regression(Activation::Tanh), 32).init(&device);
    assert!(vgg.forward_bytes(1) >= reg.forward_bytes(1));
}

/// The training estimate of a net small enough to work out by hand (`training_bytes`' doc says what
/// it counts): image 4x4, one local conv 1 -> 2 with a pool, a head conv 2 -> 2, tanh output.
#[test]
fn the_training_estimate_counts_parameters_optimizer_state_and_every_kept_map() {
    let config = ModelConfig {
        image_size: 4,
        local_widths: vec![2],
        local_pool_after: vec![1],
        head_widths: vec![2],
        ..ModelConfig::default()
    };
    let net = config.init(&Device::flex());
    // Floats: local conv 2*1*9 + 2, batch norm gamma, beta, mean, var 4*2, head conv 2*2*9 + 2, output
    // conv 2*2 + 2: 72, of which 68 trainable (not the running statistics).
    // Kept per image (4x4 = 16 px, 2x2 = 4 after the pool): input 1*16; conv and batch norm outputs
    // 2*2*16; pool output and indices 3*2*4; upsampled mix 2*16; head conv 2*16, output 2*16, tanh
    // 2*16; the loss 3*2*16: 16 + 64 + 24 + 32 + 96 + 96 = 328. Working set: the widest conv (head,
    // 2 in + 2*2 out) + 2*2 output + 2 decoded = 12 channels of 16 px = 192.
    let step = net.training_bytes(3, 4, 2, false);
    assert_eq!(
        step,
        TrainingBytes {
            parameters: 4 * 72,
            gradients: 4 * 68,
            optimizer: 4 * 2 * 68,
            activations: 4 * 3 * (328 + 192)
        },
    );
    assert_eq!(step.total(), (288 + 272 + 544 + 6240) * 5 / 4);
    // The working set is the forward estimate's maps, without its margin.
    assert_eq!(net.forward_bytes(4), 192 * 4 * 5 / 4);
    // Activations grow with the batch and the area; SGD keeps one float per parameter, not two.
    assert_eq!(net.training_bytes(6, 8, 1, false).activations, 4 * 6 * 4 * (328 + 192));
    assert_eq!(net.training_bytes(3, 4, 1, false).optimizer, 4 * 68);
}

#[test]
fn a_frozen_backbone_keeps_no_maps_and_has_no_gradients() {
    let device = Device::flex();
    for backbone in [Backbone::Vgg16, Backbone::Resnet18] {
        for features in [FeatureMode::Fusion, FeatureMode::Hypercolumn] {
            let net = small(backbone, features, Output::Regression(Activation::Tanh), 32).init(&device);
            let local =
                small(Backbone::None, FeatureMode::Local, Output::Regression(Activation::Tanh), 32).init(&device);
            let (trained, frozen) = (net.training_bytes(4, 32, 2, false), net.training_bytes(4, 32, 2, true));
            let backbone_params = 4 * parameter_count(net.backbone.as_ref().unwrap()) as u64;
            assert_eq!(trained.gradients - frozen.gradients, backbone_params, "{backbone:?} {features:?}");
            assert_eq!(trained.parameters, frozen.parameters);
            assert!(trained.activations > frozen.activations, "{backbone:?} {features:?}");
            assert!(frozen.activations > local.training_bytes(4, 32, 2, false).activations);
        }
    }
}
