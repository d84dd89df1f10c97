//! TensorBoard event files read back by TensorBoard's own reader: a file written here, and the files of
//! a trained sweep, shown as one TensorBoard run per variant and seed with every `metrics.csv` column
//! and the sample sheet. Skipped with a message where `tensorboard` is not importable (see
//! `common::tensorboard_read`), unless SWEEP_REQUIRE_TENSORBOARD=1.

mod common;

use std::path::Path;

use burn::tensor::Device;
use common::{TINY, assert_matches_metrics, tensorboard_read};
use serde_json::json;
use sweep::spec::{Spec, plan};
use sweep::store::plan::materialise;
use sweep::train::tensorboard::{EventWriter, SAMPLES_TAG};

#[test]
fn an_event_file_written_here_reads_back_in_tensorboard() {
    let dir = tempfile::tempdir().unwrap();
    let mut events = EventWriter::create(&dir.path().join("a run"), "x").unwrap();
    for step in 1..=3 {
        events.scalars(step, &[("loss", 1.0 / step as f32), ("psnr", 20.0 + step as f32)]).unwrap();
    }
    let img = image::RgbImage::from_fn(5, 3, |x, y| image::Rgb([x as u8 * 50, y as u8 * 80, 7]));
    let mut png = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png).unwrap();
    events.image(2, "sheet", &png, 5, 3).unwrap();
    events.flush().unwrap();
    let Some(read) = tensorboard_read(dir.path(), "an_event_file_written_here_reads_back_in_tensorboard") else {
        return;
    };
    let run = &read["a run"];
    assert_eq!(run["scalars"]["loss"], json!([[1, 1.0], [2, 0.5], [3, 1.0f32 / 3.0]]), "{read}");
    assert_eq!(run["scalars"]["psnr"], json!([[1, 21.0], [2, 22.0], [3, 23.0]]));
    assert_eq!(run["images"]["sheet"], json!([[2, 5, 3, png.len()]]));
}

#[test]
fn every_run_of_a_sweep_shows_in_tensorboard_by_variant_and_seed() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "[sweep]\nname = \"tb\"\nseeds = [0, 1]\n[base]\n{TINY}epochs = 2\n[grid]\ncolor_space = [\"lab\", \"yuv\"]\n"
    );
    let plan = plan(&Spec::from_str(Path::new("tb.toml"), text).unwrap(), &[]).unwrap();
    let sweep_dir = materialise(&plan, Path::new("tb.toml"), dir.path()).unwrap();
    for run in &plan.runs {
        sweep::train::exec(&sweep_dir.join(&run.id), &Device::flex(), true).unwrap();
    }
    let Some(read) = tensorboard_read(&sweep_dir, "every_run_of_a_sweep_shows_in_tensorboard_by_variant_and_seed")
    else {
        return;
    };
    let mut names: Vec<&str> = read.as_object().unwrap().keys().map(String::as_str).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "tb/color_space=lab/seed0",
            "tb/color_space=lab/seed1",
            "tb/color_space=yuv/seed0",
            "tb/color_space=yuv/seed1"
        ]
    );
    for run in &plan.runs {
        let board = &read[format!("tb/{}/seed{}", run.variant, run.seed)];
        let run_dir = sweep_dir.join(&run.id);
        assert_matches_metrics(board, &run_dir);
        let (w, h) = image::image_dimensions(run_dir.join("samples.png")).unwrap();
        let sheets: Vec<(u64, u64, u64)> = board["images"][SAMPLES_TAG]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| (e[0].as_u64().unwrap(), e[1].as_u64().unwrap(), e[2].as_u64().unwrap()))
            .collect();
        assert_eq!(sheets, [(1, w as u64, h as u64), (2, w as u64, h as u64)], "{}", run.variant);
    }
}
