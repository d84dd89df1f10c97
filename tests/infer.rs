//! `sweep colorize` and `sweep eval` with a small trained run: real photos keep their size and
//! luminance, bad inputs are reported by name without stopping the batch, and eval on the run's own
//! validation split repeats the metrics of training's last epoch.

use std::path::{Path, PathBuf};
use std::process::Command;

use burn::tensor::Device;
use sweep::color::ColorSpace;
use sweep::spec::{Spec, plan};
use sweep::store::metrics_file::MetricsFile;
use sweep::store::plan::materialise;

fn photos() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/photos")
}

/// Trains a tiny classification run (2 epochs) and returns its folder.
fn trained_run(dir: &Path, extra: &str) -> PathBuf {
    trained_run_of_widths(dir, "[4, 8, 8]", extra)
}

/// [`trained_run`] with the local network's widths `widths` (the standard model's are [64, 128, 128]).
fn trained_run_of_widths(dir: &Path, widths: &str, extra: &str) -> PathBuf {
    let text = format!(
        "[sweep]\nname = \"infer\"\n[base]\nimage_size = 32\ntrain_images = 32\nval_images = 16\nbatch_size = 8\n\
         epochs = 2\nlocal.widths = {widths}\nhead.widths = [4, 4]\n{extra}\n"
    );
    let spec = Spec::from_str(Path::new("t.toml"), text).unwrap();
    let p = plan(&spec, &[]).unwrap();
    let run = materialise(&p, Path::new("t.toml"), dir).unwrap().join(&p.runs[0].id);
    sweep::train::exec(&run, &Device::flex(), true).unwrap();
    run
}

fn sweep_cmd(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_sweep")).args(args).output().unwrap()
}

fn lab_l(img: &image::RgbImage) -> Vec<f32> {
    img.pixels().map(|p| ColorSpace::Lab.from_srgb(p.0.map(|v| v as f32 / 255.0))[0]).collect()
}

#[test]
fn colorized_photos_keep_their_size_and_luminance() {
    if !photos().is_dir() {
        eprintln!("skipped: {} not found", photos().display());
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let run = trained_run(dir.path(), "task = \"classification\"\nrebalance = true");
    let out = dir.path().join("out");
    let o = sweep_cmd(&[
        "colorize",
        "--run",
        run.to_str().unwrap(),
        photos().to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--compare",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.contains("README.md: not a JPEG or PNG image"), "{stderr}");
    let mut checked = 0;
    for entry in std::fs::read_dir(photos()).unwrap() {
        let input = entry.unwrap().path();
        if !sweep::data::folder::is_image_file(&input) {
            continue;
        }
        let original = image::open(&input).unwrap().to_rgb8();
        let colorized = image::open(out.join(input.file_name().unwrap())).unwrap().to_rgb8();
        assert_eq!(original.dimensions(), colorized.dimensions(), "{}", input.display());
        // The output keeps the input's luminance: only chroma changed (up to 8-bit rounding and the
        // clamping of out-of-gamut colours).
        let (a, b) = (lab_l(&original), lab_l(&colorized));
        let mean_diff: f32 = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).sum::<f32>() / a.len() as f32;
        assert!(mean_diff < 1.5, "{}: mean |dL| = {mean_diff}", input.display());
        assert!(out.join(format!("{}.compare.png", input.file_stem().unwrap().to_string_lossy())).is_file());
        checked += 1;
    }
    assert!(checked >= 5, "only {checked} photos checked");

    // An existing output is kept without --force.
    let o = sweep_cmd(&[
        "colorize",
        "--run",
        run.to_str().unwrap(),
        photos().join("coffee.png").to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("--force"));
}

#[test]
fn corrupt_and_missing_inputs_are_named_and_do_not_stop_the_batch() {
    let dir = tempfile::tempdir().unwrap();
    let run = trained_run(dir.path(), "color_space = \"hsv\"");
    let inputs = dir.path().join("in");
    std::fs::create_dir_all(inputs.join("sub")).unwrap();
    std::fs::write(inputs.join("broken.jpg"), b"\xFF\xD8\xFF\xE0 not really a jpeg").unwrap();
    let good = image::RgbImage::from_fn(40, 24, |x, y| image::Rgb([(x * 6) as u8, (y * 10) as u8, 128]));
    good.save(inputs.join("sub/good.png")).unwrap();
    let out = dir.path().join("out");
    let o = sweep_cmd(&[
        "colorize",
        "--run",
        run.to_str().unwrap(),
        inputs.to_str().unwrap(),
        "/no/such/photo.png",
        "-o",
        out.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("broken.jpg") && stderr.contains("/no/such/photo.png"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let made = image::open(out.join("sub/good.png")).unwrap();
    assert_eq!((made.width(), made.height()), (40, 24));
    // Inputs that would write the same file: `a/x.png` and `b/x.png`, and with --compare `y.jpg`'s
    // and `y.png`'s sheets (both y.compare.png). The first of each pair is written, the second is an
    // error that names the first, not a silent overwrite or skip.
    let clash = dir.path().join("clash");
    for name in ["a/x.png", "b/x.png", "c/y.jpg", "c/y.png"] {
        std::fs::create_dir_all(clash.join(name).parent().unwrap()).unwrap();
        good.save(clash.join(name)).unwrap();
    }
    let out = dir.path().join("clash-out");
    let arg = |p: &str| clash.join(p).to_str().unwrap().to_string();
    let o = sweep_cmd(&[
        "colorize",
        "--run",
        run.to_str().unwrap(),
        &arg("a/x.png"),
        &arg("b/x.png"),
        &arg("c"),
        "--compare",
        "-o",
        out.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(&format!("{}: its output", arg("b/x.png"))), "{stderr}");
    assert!(stderr.contains(&format!("is also {}'s", arg("a/x.png"))), "{stderr}");
    assert!(stderr.contains(&format!("{}: its output", arg("c/y.png"))), "{stderr}");
    assert!(stderr.contains("y.compare.png") && stderr.contains(&format!("is also {}'s", arg("c/y.jpg"))), "{stderr}");
    for made in ["x.png", "x.compare.png", "y.jpg", "y.compare.png"] {
        assert!(out.join(made).is_file(), "{made} missing: {stderr}");
    }
    assert!(!out.join("y.png").exists(), "{stderr}");
    // A working resolution the model cannot take is refused up front.
    let o = sweep_cmd(&[
        "colorize",
        "--run",
        run.to_str().unwrap(),
        inputs.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--size",
        "31",
    ]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("--size 31 does not suit this model"));
}

#[test]
fn eval_on_the_validation_split_repeats_the_last_epoch() {
    let dir = tempfile::tempdir().unwrap();
    let run = trained_run(dir.path(), "task = \"classification\"\nrebalance = true");
    let json = dir.path().join("eval.json");
    let o =
        sweep_cmd(&["eval", "--run", run.to_str().unwrap(), "--dataset", "synthetic", "-o", json.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let last = MetricsFile::open(&run).unwrap().rows().last().unwrap().clone();
    for metric in ["val_loss", "psnr", "ab_rmse", "auc", "auc_rebal", "colorfulness", "colorfulness_gt"] {
        let measured = v[metric].as_f64().unwrap();
        let trained = last.get(metric).unwrap();
        assert!(
            (measured - trained).abs() <= 1e-5 * trained.abs().max(1.0),
            "{metric}: eval {measured} vs training {trained}"
        );
    }
    // Another synthetic seed is another data set: different numbers, kept in the run folder.
    let o = sweep_cmd(&["eval", "--run", run.to_str().unwrap(), "--set", "data_seed=7"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(std::fs::read_dir(run.join("eval")).unwrap().count(), 2);
    let o = sweep_cmd(&["eval", "--run", run.to_str().unwrap(), "--set", "lr=0.1"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("eval changes only"));

    // The report shows the evaluations beside the training metrics.
    let out = dir.path().join("report");
    let o = sweep_cmd(&["report", run.parent().unwrap().to_str().unwrap(), "-o", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("evaluations on other data sets"));
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    let section = &md[md.find("## Evaluations on other data sets").expect("an evaluations section")..];
    let rows: Vec<&str> = section.lines().filter(|l| l.starts_with("| ") && l.contains("synthetic")).collect();
    assert_eq!(rows.len(), 2, "{section}");
    let psnr = format!("{:.2}", v["psnr"].as_f64().unwrap());
    assert!(rows.iter().any(|r| r.contains(&psnr)), "{section}");
    assert!(std::fs::read_to_string(out.join("index.html")).unwrap().contains("Evaluations on other data sets"));
}

#[test]
fn a_run_can_be_named_by_its_sweep_folder_and_variant() {
    let dir = tempfile::tempdir().unwrap();
    let run = trained_run(dir.path(), "");
    let photo = dir.path().join("in.png");
    image::RgbImage::from_fn(40, 24, |x, y| image::Rgb([(x * 6) as u8, (y * 10) as u8, 90])).save(&photo).unwrap();
    let out = dir.path().join("out.png");
    let colorize_with = |variant: &str| {
        let by_name = run.parent().unwrap().join(variant);
        sweep_cmd(&[
            "colorize",
            "--run",
            by_name.to_str().unwrap(),
            photo.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ])
    };
    // The only variant of a sweep without [[variant]] tables is "base".
    let o = colorize_with("base");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(image::open(&out).unwrap().to_rgb8().dimensions(), (40, 24));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains(run.file_name().unwrap().to_str().unwrap()), "names the run it picked: {stdout}");

    let o = colorize_with("bsae");
    assert_eq!(o.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains("is neither a run folder nor a variant of sweep \"infer\": its variants are \"base\""),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

fn text_of(o: &std::process::Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

#[test]
fn outputs_are_checked_and_inputs_never_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let run = trained_run(dir.path(), "task = \"classification\"");
    let run = run.to_str().unwrap();
    let photos = dir.path().join("photos");
    std::fs::create_dir_all(&photos).unwrap();
    let photo = photos.join("in.png");
    image::RgbImage::from_fn(40, 24, |x, y| image::Rgb([(x * 6) as u8, (y * 10) as u8, 90])).save(&photo).unwrap();
    let original = std::fs::read(&photo).unwrap();
    let p = photo.to_str().unwrap();

    // -o with an extension that is no image's is an error naming the valid ones, not a folder.
    let gif = dir.path().join("out.gif");
    let o = sweep_cmd(&["colorize", "--run", run, p, "-o", gif.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", text_of(&o));
    assert!(text_of(&o).contains(".png, .jpg or .jpeg") && !gif.exists(), "{}", text_of(&o));

    // An input is never an output, even with --force: named as the output, or as the output folder.
    for out in [p, photos.to_str().unwrap()] {
        let o = sweep_cmd(&["colorize", "--run", run, p, "-o", out, "--force", "--compare"]);
        assert_eq!(o.status.code(), Some(1), "{}", text_of(&o));
        assert!(text_of(&o).contains("never overwrites a photo"), "{}", text_of(&o));
        assert_eq!(std::fs::read(&photo).unwrap(), original);
    }
    let o = sweep_cmd(&["colorize", "--run", run, photos.to_str().unwrap(), "-o", photos.to_str().unwrap(), "--force"]);
    assert_eq!(o.status.code(), Some(1), "{}", text_of(&o));
    assert_eq!(std::fs::read(&photo).unwrap(), original);

    // An explicit output that exists is an error without --force (a folder's are skipped, see above).
    let out = dir.path().join("out.png");
    let args = ["colorize", "--run", run, p, "-o", out.to_str().unwrap()];
    assert!(sweep_cmd(&args).status.success());
    let o = sweep_cmd(&args);
    assert_eq!(o.status.code(), Some(1), "{}", text_of(&o));
    assert!(text_of(&o).contains("exists: add --force"), "{}", text_of(&o));
    assert!(sweep_cmd(&[&args[..], &["--force"]].concat()).status.success());

    // Numbers that panicked, and a working size that does not fit in memory: refused, with the limit.
    for t in ["-1", "nan", "inf", "0"] {
        let o = sweep_cmd(&["colorize", "--run", run, p, "-o", out.to_str().unwrap(), "--force", "--temperature", t]);
        assert_eq!(o.status.code(), Some(2), "--temperature {t}: {}", text_of(&o));
        assert!(text_of(&o).contains("is not a number > 0") && !text_of(&o).contains("panicked"), "{}", text_of(&o));
    }
    let o = sweep_cmd(&["colorize", "--run", run, p, "-o", out.to_str().unwrap(), "--force", "--size", "4096"]);
    assert_eq!(o.status.code(), Some(1), "{}", text_of(&o));
    assert!(text_of(&o).contains("--size 4096 would need about") && text_of(&o).contains("or less"), "{}", text_of(&o));
}

#[test]
fn colorize_and_eval_say_which_epoch_of_an_unfinished_run_they_use() {
    let dir = tempfile::tempdir().unwrap();
    let run = trained_run(dir.path(), "");
    // Left interrupted after its first epoch, its best checkpoint that epoch's.
    std::fs::write(run.join("checkpoints/best/epoch"), "1").unwrap();
    let mut status = sweep::store::status::RunStatus::read(&run).unwrap().unwrap();
    status.state = sweep::store::status::State::Interrupted;
    status.epochs_done = 1;
    status.write(&run).unwrap();
    let photo = dir.path().join("in.png");
    image::RgbImage::from_pixel(16, 16, image::Rgb([90, 120, 30])).save(&photo).unwrap();
    let out = dir.path().join("out.png");
    let o =
        sweep_cmd(&["colorize", "--run", run.to_str().unwrap(), photo.to_str().unwrap(), "-o", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text_of(&o));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains("is interrupted after 1 of 2 epochs: using its epoch 1 of 2 (checkpoints/best)"),
        "{stderr}"
    );
    assert!(String::from_utf8_lossy(&o.stdout).contains("epoch 1 of 2"), "{}", text_of(&o));

    // eval on its own data keeps its val_images; on another data set it takes the whole split.
    let o = sweep_cmd(&["eval", "--run", run.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text_of(&o));
    assert!(
        text_of(&o).contains("epoch 2 of 2") && text_of(&o).contains("16 validation images: val_images = 16"),
        "{}",
        text_of(&o)
    );
    assert!(text_of(&o).contains("is interrupted after 1 of 2 epochs"), "{}", text_of(&o));
    let o = sweep_cmd(&["eval", "--run", run.to_str().unwrap(), "--set", "data_seed=7"]);
    assert!(text_of(&o).contains("1000 validation images: the whole split"), "{}", text_of(&o));
    let o = sweep_cmd(&["eval", "--run", run.to_str().unwrap(), "--set", "data_seed=7", "--set", "val_images=40"]);
    assert!(text_of(&o).contains("40 validation images: val_images = 40"), "{}", text_of(&o));
    // A size at which the forward pass would not fit is refused before any image is prepared (the
    // validation images are read batch by batch, so their number needs no bound). The tiny net fits
    // at every image_size up to its maximum, 4096 (about 2.5 GB), so this takes the standard widths
    // (about 33 GB at 4096 px, over the 8 GB limit).
    let wide = trained_run_of_widths(&dir.path().join("wide"), "[64, 128, 128]", "");
    let o = sweep_cmd(&["eval", "--run", wide.to_str().unwrap(), "--set", "image_size=4096"]);
    assert_eq!(o.status.code(), Some(1), "{}", text_of(&o));
    assert!(
        text_of(&o).contains("image_size 4096 would need about") && text_of(&o).contains("forward pass"),
        "{}",
        text_of(&o)
    );
}

#[test]
fn a_truncated_jpeg_is_colorized_with_a_warning_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let run = trained_run(dir.path(), "");
    let mut jpeg = Vec::new();
    let img = image::RgbImage::from_fn(64, 48, |x, y| image::Rgb([(x * 4) as u8, (y * 5) as u8, 128]));
    img.write_to(&mut std::io::Cursor::new(&mut jpeg), image::ImageFormat::Jpeg).unwrap();
    let photo = dir.path().join("cut.jpg");
    std::fs::write(&photo, &jpeg[..jpeg.len() * 2 / 3]).unwrap();
    let out = dir.path().join("out");
    let o =
        sweep_cmd(&["colorize", "--run", run.to_str().unwrap(), photo.to_str().unwrap(), "-o", out.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.contains(&format!("warning: {} is a truncated JPEG", photo.display())), "{}", text_of(&o));
}
