//! TensorBoard event files read back by TensorBoard's own reader. Skipped with a message where `tensorboard` is not importable (see
//! `common::tensorboard_read`), unless SWEEP_REQUIRE_TENSORBOARD=1.

mod common;

use common::tensorboard_read;
use serde_json::json;
use sweep::train::tensorboard::EventWriter;

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
