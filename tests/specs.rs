//! Spec expansion, overrides and run identity, on specs written here and on every spec in experiments/.

use std::path::Path;
use std::process::Command;

use sweep::spec::{Spec, plan};

fn spec(text: &str) -> Spec {
    Spec::from_str(Path::new("test.toml"), text.to_string()).unwrap_or_else(|e| panic!("{e}"))
}

fn sweep_cmd(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_sweep")).args(args).current_dir(env!("CARGO_MANIFEST_DIR")).output().unwrap()
}

#[test]
fn every_experiment_spec_plans() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments");
    let mut n = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let out = sweep_cmd(&["plan", path.to_str().unwrap()]);
            assert!(out.status.success(), "{}: {}", path.display(), String::from_utf8_lossy(&out.stderr));
            n += 1;
        }
    }
    assert!(n >= 11, "expected at least 11 specs, found {n}");
}

#[test]
fn grid_times_variants_minus_excludes_times_seeds() {
    let s = spec(
        r#"
        [sweep]
        name = "t"
        seeds = [1, 2]
        [grid]
        color_space = ["lab", "yuv", "hsv"]
        lr = [0.1, 0.01]
        [[variant]]
        name = "reg"
        [[variant]]
        name = "cls"
        task = "classification"
        [[exclude]]
        color_space = "hsv"
        lr = 0.1
        [[exclude]]
        name = "cls"
        color_space = ["yuv"]
    "#,
    );
    let p = plan(&s, &[]).unwrap();
    // 2 variants x 6 grid points = 12; minus 2 (hsv, 0.1) minus 2 (cls, yuv) = 8 combinations; x 2 seeds.
    assert_eq!(p.runs.len(), 16);
    assert_eq!(p.groups().len(), 8);
    let names: Vec<&str> = p.groups().iter().map(|(_, runs)| runs[0].variant.as_str()).collect();
    assert!(names.contains(&"cls,color_space=lab,lr=0.01"), "{names:?}");
    assert!(!names.iter().any(|n| n.starts_with("cls,color_space=yuv")));
    assert!(!names.iter().any(|n| n.contains("hsv,lr=0.1")));
    // Classification keys appear only in classification runs; seeds differ in id, not in group.
    for r in &p.runs {
        assert_eq!(r.config.contains("temperature"), r.variant.starts_with("cls"), "{}", r.variant);
        assert_eq!(r.config.int("seed") as u64, r.seed);
    }
    let (_, first) = &p.groups()[0];
    assert_eq!(first.len(), 2);
    assert_eq!(first[0].group, first[1].group);
    assert_ne!(first[0].id, first[1].id);
}

#[test]
fn run_ids_ignore_key_order_spelling_and_inapplicable_keys() {
    let a = spec("[sweep]\nname = \"a\"\n[base]\nlr = 0.01\nepochs = 3\nbackbone = \"vgg16\"\n");
    let b =
        spec("[base]\nbackbone.arch = \"vgg16\"\nepochs = 3\nlr = 1e-2\ntemperature = 0.5\n[sweep]\nname = \"b\"\n");
    let pa = plan(&a, &[]).unwrap();
    let pb = plan(&b, &[]).unwrap();
    assert_eq!(pa.runs[0].id, pb.runs[0].id);
    assert!(pb.warnings.iter().any(|w| w.contains("temperature")), "{:?}", pb.warnings);
    let c = spec("[sweep]\nname = \"a\"\n[base]\nlr = 0.02\nepochs = 3\nbackbone = \"vgg16\"\n");
    assert_ne!(pa.runs[0].id, plan(&c, &[]).unwrap().runs[0].id);
}

#[test]
fn run_id_is_the_documented_hash() {
    // The id is SHA-256 of the canonical JSON; pin one so that an accidental change of the canonical
    // form (which would orphan every existing result) fails this test.
    let p = plan(&spec("[sweep]\nname = \"x\"\n"), &[]).unwrap();
    let run = &p.runs[0];
    let json = run.config.canonical_json();
    assert!(json.starts_with(r#"{"activation":"tanh","backbone.arch":"none","batch_size":64,"#), "{json}");
    assert_eq!(run.id, sweep::spec::expand::short_hash(&json));
    assert_eq!(run.id.len(), 12);
    // sha256("abc") = ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad
    assert_eq!(sweep::spec::expand::short_hash("abc"), "ba7816bf8f01");
}

#[test]
fn set_overrides_are_typed_and_checked() {
    let s = spec("[sweep]\nname = \"x\"\n[base]\nepochs = 3\n");
    let p = plan(&s, &["epochs=5".into(), "dataset=cifar100".into(), "sweep.seeds=[4, 5]".into()]).unwrap();
    assert_eq!(p.runs.len(), 2);
    assert_eq!(p.runs[0].config.int("epochs"), 5);
    assert_eq!(p.runs[0].config.text("dataset"), "cifar100");
    assert_eq!(p.runs[1].seed, 5);
    let err = plan(&s, &["epocs=5".into()]).unwrap_err().to_string();
    assert!(err.contains("unknown key `epocs`") && err.contains("did you mean `epochs`"), "{err}");
    let err = plan(&s, &["lr=fast".into()]).unwrap_err().to_string();
    assert!(err.contains("--set lr=fast"), "{err}");
    let err = plan(&s, &["temperature=0.2".into()]).unwrap_err().to_string();
    assert!(err.contains("does not apply to any run"), "{err}");
}

#[test]
fn config_toml_round_trips_to_the_same_id() {
    let s = spec(
        "[sweep]\nname = \"x\"\nseeds = [7]\n[base]\ntask = \"classification\"\nrebalance = true\nbackbone = \"resnet18\"\n",
    );
    let p = plan(&s, &[]).unwrap();
    let run = &p.runs[0];
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    std::fs::write(&path, sweep::spec::config_toml(&p.meta, run)).unwrap();
    let (meta, back) = sweep::spec::read_config(&path, Some(&run.id)).unwrap();
    assert_eq!(back.id, run.id);
    assert_eq!(back.seed, 7);
    assert_eq!(meta.name, "x");
    let edited = std::fs::read_to_string(&path).unwrap().replace("rebalance_lambda = 0.5", "rebalance_lambda = 0.4");
    std::fs::write(&path, edited).unwrap();
    let err = sweep::spec::read_config(&path, Some(&run.id)).unwrap_err().to_string();
    assert!(err.contains("edited or damaged"), "{err}");
}

#[test]
fn reference_tables_parse_with_grid_variant_names() {
    let s = spec(
        r#"
[sweep]
name = "r"
[grid]
task = ["regression", "classification"]
[reference]
citation = "Someone, a paper, 2016, table 1"
url = "https://example.org/paper"
[reference.variants]
"task=regression" = { auc = 91, auc_rebal = 64.4 }
"task=classification".psnr = 24.5
"#,
    );
    let r = s.reference.as_ref().unwrap();
    assert_eq!(r.citation, "Someone, a paper, 2016, table 1");
    assert_eq!(r.url.as_deref(), Some("https://example.org/paper"));
    assert_eq!(r.variants[0].name, "task=regression");
    assert_eq!(r.variants[0].values, vec![("auc".to_string(), 91.0), ("auc_rebal".to_string(), 64.4)]);
    assert_eq!(r.variants[1].values, vec![("psnr".to_string(), 24.5)]);
    assert!(plan(&s, &[]).is_ok());
    let quickstart =
        Spec::from_file(&Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments/quickstart.toml")).unwrap();
    // Only the row confirmed against the paper (the full model) is committed.
    assert_eq!(quickstart.reference.unwrap().variants.len(), 1);
}

#[test]
fn plan_prints_a_table_and_json() {
    let out = sweep_cmd(&["plan", "experiments/quickstart.toml"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(text.contains("run id") && text.contains("classification-rebalanced"), "{text}");
    let out = sweep_cmd(&["plan", "experiments/task.toml", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["sweep"], "task");
    assert_eq!(v["runs"].as_array().unwrap().len(), 4);
    assert_eq!(v["runs"][0]["config"]["dataset"], "cifar100");
}

#[test]
fn every_subcommand_has_help_and_completions_generate() {
    for cmd in [
        vec!["--help"],
        vec!["plan", "--help"],
        vec!["run", "--help"],
        vec!["status", "--help"],
        vec!["report", "--help"],
        vec!["exec", "--help"],
        vec!["colorize", "--help"],
        vec!["eval", "--help"],
        vec!["data", "fetch", "--help"],
        vec!["data", "show", "--help"],
        vec!["keys", "--help"],
    ] {
        let out = sweep_cmd(&cmd);
        assert!(out.status.success(), "{cmd:?}");
        assert!(String::from_utf8_lossy(&out.stdout).contains("Usage: sweep"), "{cmd:?}");
    }
    let out = sweep_cmd(&["completions", "bash"]);
    assert!(out.status.success() && String::from_utf8_lossy(&out.stdout).contains("_sweep"));
}

#[test]
fn the_slurm_table_is_typed_overridable_and_not_part_of_run_identity() {
    let base = "[sweep]\nname = \"s\"\n[base]\nlr = 0.01\n";
    let with = format!(
        "{base}[slurm]\npartition = \"gpu\"\ngpus_per_task = 1\ncpus_per_task = 4\nmem = \"16G\"\ntime = \"1-00:00:00\"\nmax_concurrent = 8\nextra = [\"--account=lab\"]\n"
    );
    let plain = plan(&spec(base), &[]).unwrap();
    let slurm = plan(&spec(&with), &[]).unwrap();
    assert_eq!(plain.runs[0].id, slurm.runs[0].id, "[slurm] must not change run ids");
    assert_eq!(slurm.slurm.partition.as_deref(), Some("gpu"));
    assert_eq!((slurm.slurm.gpus_per_task, slurm.slurm.cpus_per_task), (1, Some(4)));
    assert_eq!((slurm.slurm.mem.as_deref(), slurm.slurm.time.as_deref()), (Some("16G"), Some("1-00:00:00")));
    assert_eq!((slurm.slurm.max_concurrent, slurm.slurm.extra.clone()), (Some(8), vec!["--account=lab".to_string()]));
    assert_eq!((plain.slurm.runs_per_task, slurm.slurm.runs_per_task), (1, 1), "one run per task unless packed");
    assert_eq!((plain.slurm.mem_bytes(), slurm.slurm.mem_bytes()), (None, Some(16 << 30)));

    let set = ["slurm.partition=short".to_string(), "slurm.time=04:00:00".to_string(), "slurm.mem=512".to_string()];
    let over = plan(&spec(&with), &set).unwrap();
    assert_eq!(over.slurm.partition.as_deref(), Some("short"));
    assert_eq!(over.slurm.time.as_deref(), Some("04:00:00"));
    assert_eq!(over.slurm.mem.as_deref(), Some("512"));
    assert_eq!(over.slurm.mem_bytes(), Some(512 << 20), "a bare number is megabytes");
    let packed = plan(&spec(&with), &["slurm.runs_per_task=4".to_string()]).unwrap();
    assert_eq!((packed.slurm.runs_per_task, packed.runs[0].id.as_str()), (4, plain.runs[0].id.as_str()));
    for bad in ["0", "65", "2.5", "\"4\""] {
        let err = plan(&spec(&with), &[format!("slurm.runs_per_task={bad}")]).unwrap_err().to_string();
        assert!(err.contains("runs_per_task") && err.contains("give an integer from 1 to 64"), "{bad}: {err}");
    }
    assert_eq!(over.runs[0].id, plain.runs[0].id);
    let err = plan(&spec(&with), &["slurm.gpu_per_task=2".to_string()]).unwrap_err().to_string();
    assert!(
        err.contains("unknown key `gpu_per_task` in [slurm]") && err.contains("did you mean `gpus_per_task`?"),
        "{err}"
    );
}

#[test]
fn the_readme_spec_example_plans() {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let start = readme.find("```toml\n[sweep]").expect("the README shows a spec") + "```toml\n".len();
    let end = start + readme[start..].find("```").unwrap();
    let p = plan(&spec(&readme[start..end]), &[]).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(p.runs.len(), 3, "one variant x lab (yuv excluded) x 3 seeds");
}

#[test]
fn a_closed_stdout_ends_the_process_quietly() {
    use std::os::unix::process::ExitStatusExt;
    // `sweep plan --json | head -1`: the reader is gone before sweep writes.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = Command::new(env!("CARGO_BIN_EXE_sweep"))
        .args(["plan", "experiments/zhang2016.toml", "--json"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(writer)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(out.status.signal(), Some(libc::SIGPIPE), "{stderr}");
}

#[test]
fn augmentation_keys_are_part_of_run_identity_only_when_they_augment() {
    let ids = |base: &str| -> Vec<String> {
        let text = format!("[sweep]\nname = \"aug\"\n[base]\nepochs = 3\n{base}\n");
        plan(&spec(&text), &[]).unwrap_or_else(|e| panic!("{base}: {e}")).runs.iter().map(|r| r.id.clone()).collect()
    };
    let plain = ids("");
    // Off, written out or not, is the run without augmentation; its config does not mention augment.
    assert_eq!(ids("augment.flip = false\naugment.crop = \"none\""), plain);
    let p = plan(&spec("[sweep]\nname = \"aug\"\n[base]\nepochs = 3\naugment.flip = false\n"), &[]).unwrap();
    assert!(!p.runs[0].config.canonical_json().contains("augment"), "{}", p.runs[0].config.canonical_json());
    let flip = ids("augment.flip = true");
    let pad = ids("augment.crop = \"pad\"");
    let resized = ids("augment.crop = \"resized\"");
    for other in [&flip, &pad, &resized] {
        assert_ne!(*other, plain);
    }
    assert_ne!(pad, resized);
    // The crop's own settings count where they apply: the defaults are written out in the config.
    assert_eq!(ids("augment.crop = \"pad\"\naugment.pad = 4"), pad);
    assert_ne!(ids("augment.crop = \"pad\"\naugment.pad = 2"), pad);
    assert_eq!(ids("augment.crop = \"resized\"\naugment.scale = [0.08, 1.0]"), resized);
    assert_ne!(ids("augment.crop = \"resized\"\naugment.ratio = [0.5, 2.0]"), resized);
    // A grid over the flip: the "false" variant is the plain run.
    let grid = plan(&spec("[sweep]\nname = \"aug\"\n[base]\nepochs = 3\n[grid]\naugment.flip = [false, true]\n"), &[])
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(grid.runs[0].id, plain[0]);
    assert_eq!(grid.runs[1].id, flip[0]);
    let cfg = &grid.runs[1].settings;
    assert_eq!(cfg.train.augment, sweep::data::Augment { flip: true, crop: sweep::data::Crop::None });
    let p = plan(&spec("[sweep]\nname = \"aug\"\n[base]\naugment.crop = \"resized\"\n"), &[]).unwrap();
    assert_eq!(
        p.runs[0].settings.train.augment.crop,
        sweep::data::Crop::Resized { scale: [0.08, 1.0], ratio: [0.75, 4.0 / 3.0] }
    );
}

#[test]
fn augmentation_keys_are_checked() {
    let err = |base: &str| -> String {
        let text = format!("[sweep]\nname = \"aug\"\n[base]\n{base}\n[[variant]]\nname = \"v\"\nepochs = 2\n");
        // Values are checked when the spec is read, rules between keys when it is planned.
        match Spec::from_str(Path::new("test.toml"), text).map(|s| plan(&s, &[])) {
            Ok(Ok(_)) => panic!("{base}: planned"),
            Ok(Err(e)) | Err(e) => e.to_string(),
        }
    };
    let msg = err("augment.crop = \"random\"");
    assert!(msg.contains("augment.crop") && msg.contains("\"pad\"") && msg.contains("\"resized\""), "{msg}");
    let msg = err("augment.crop = \"resized\"\naugment.scale = [1.0, 0.5]");
    assert!(msg.contains("augment.scale = [1.0, 0.5] is not a range") && msg.contains("[0.5, 1.0]"), "{msg}");
    let msg = err("augment.crop = \"resized\"\naugment.ratio = [0.0, 2.0]");
    assert!(msg.contains("augment.ratio") && msg.contains("0.01"), "{msg}");
    // augment.pad means nothing without the padded crop: an error in a variant, a warning in [base].
    let text = "[sweep]\nname = \"aug\"\n[[variant]]\nname = \"v\"\naugment.crop = \"resized\"\naugment.pad = 2\n";
    let msg = plan(&spec(text), &[]).unwrap_err().to_string();
    assert!(msg.contains("augment.pad") && msg.contains("only applies when augment.crop = \"pad\""), "{msg}");
}

#[test]
fn the_readme_search_example_plans_and_more_trials_keep_the_earlier_runs() {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let start = readme.find("```toml\n[search]").expect("the README shows a search") + "```toml\n".len();
    let end = start + readme[start..].find("```").unwrap();
    let s = spec(&format!("[sweep]\nname = \"x\"\nseeds = [0, 1]\n{}", &readme[start..end]));
    let p = plan(&s, &[]).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(p.runs.len(), 16, "16 trials, each with the first seed");
    assert!(p.runs.iter().all(|r| r.seed == 0 && r.trial.is_some()));
    let fewer = plan(&s, &["search.trials=4".into(), "early_stop.reduction=2".into()]).unwrap();
    let ids = |p: &sweep::spec::Plan| p.runs.iter().map(|r| r.id.clone()).collect::<Vec<_>>();
    assert_eq!(ids(&fewer), ids(&p)[..4]);
    assert_eq!(fewer.early_stop.unwrap().reduction, 2);
    // Each trial's sampled values are in its config, within their ranges.
    for r in &p.runs {
        let lr = r.config.float("lr");
        assert!((1e-4..=1e-2).contains(&lr), "{lr}");
        assert!((2..=4).contains(&r.config.value("epochs").unwrap().as_integer().unwrap()));
    }
    let err = plan(&spec("[sweep]\nname = \"x\"\n"), &["search.trials=4".into()]).unwrap_err().to_string();
    assert!(err.contains("the spec has no [search] table"), "{err}");
}
