//! A run's cumulative ab-accuracy curves (`curve.csv` for the last finished epoch, `curve_best.csv`
//! for the epoch of the best checkpoint): one row per threshold 0..=150 with the raw and the
//! rebalanced fraction of pixels within it, and the epoch they come from (so that a reader can tell
//! a curve that belongs to another epoch than the one it wants). Written by the trainer after each
//! epoch, read by `sweep report`.

use std::path::Path;

use anyhow::{Context, Result};

use crate::atomic::write_atomic;
use crate::metrics::AccuracyCurve;

pub const CURVE_FILE: &str = "curve.csv";
pub const CURVE_BEST_FILE: &str = "curve_best.csv";
const HEADER: &str = "epoch,threshold,fraction,fraction_rebal";

/// A curve file read back.
#[derive(Clone, Debug, PartialEq)]
pub struct CurveFile {
    pub epoch: u64,
    pub curve: AccuracyCurve,
}

/// Writes epoch `epoch`'s curve to `curve.csv`, and to `curve_best.csv` too when it is the best epoch.
pub fn write(run_dir: &Path, epoch: u64, curve: &AccuracyCurve, is_best: bool) -> Result<()> {
    let mut text = format!("{HEADER}\n");
    for (t, raw) in curve.raw.iter().enumerate() {
        let rebal = curve.rebalanced.as_ref().and_then(|r| r.get(t)).map_or(String::new(), |v| format!("{v:.6}"));
        text.push_str(&format!("{epoch},{t},{raw:.6},{rebal}\n"));
    }
    write_atomic(&run_dir.join(CURVE_FILE), text.as_bytes())?;
    if is_best {
        write_atomic(&run_dir.join(CURVE_BEST_FILE), text.as_bytes())?;
    }
    Ok(())
}

/// Reads a curve file; `Ok(None)` if there is none. A file that is not a complete curve of one epoch
/// is an error naming it.
pub fn read(path: &Path) -> Result<Option<CurveFile>> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let bad = |why: &str| anyhow::anyhow!("{} is not a valid curve file: {why}", path.display());
    let mut lines = text.lines();
    if lines.next() != Some(HEADER) {
        return Err(bad(&format!("its first line is not `{HEADER}`")));
    }
    let mut epoch = None;
    let (mut raw, mut rebal) = (Vec::new(), Vec::new());
    for (i, line) in lines.enumerate() {
        let cells: Vec<&str> = line.split(',').collect();
        let parsed = match cells.as_slice() {
            [e, t, r, b] => e
                .parse::<u64>()
                .ok()
                .zip(t.parse::<usize>().ok())
                .zip(r.parse::<f64>().ok())
                .map(|((e, t), r)| (e, t, r, b.parse::<f64>().ok())),
            _ => None,
        };
        let Some((e, t, r, b)) = parsed else { return Err(bad(&format!("line {} does not parse", i + 2))) };
        if t != i || *epoch.get_or_insert(e) != e {
            return Err(bad(&format!("line {} is out of order or from another epoch", i + 2)));
        }
        raw.push(r);
        rebal.push(b);
    }
    let Some(epoch) = epoch else { return Err(bad("it has no rows")) };
    let rebalanced = rebal.iter().all(Option::is_some).then(|| rebal.into_iter().flatten().collect());
    Ok(Some(CurveFile { epoch, curve: AccuracyCurve { raw, rebalanced } }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn curves_round_trip_and_torn_files_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let curve = AccuracyCurve {
            raw: (0..=150).map(|t| t as f64 / 150.0).collect(),
            rebalanced: Some((0..=150).map(|t| (t as f64 / 150.0).powi(2)).collect()),
        };
        write(dir.path(), 3, &curve, true).unwrap();
        let back = read(&dir.path().join(CURVE_BEST_FILE)).unwrap().unwrap();
        assert_eq!(back.epoch, 3);
        assert_eq!(back.curve.raw.len(), 151);
        assert!((back.curve.raw[75] - 0.5).abs() < 1e-6);
        assert!((back.curve.rebalanced.unwrap()[75] - 0.25).abs() < 1e-6);
        let without = AccuracyCurve { raw: vec![0.5, 1.0], rebalanced: None };
        write(dir.path(), 4, &without, false).unwrap();
        assert_eq!(read(&dir.path().join(CURVE_FILE)).unwrap().unwrap().curve, without);
        assert_eq!(read(&dir.path().join(CURVE_BEST_FILE)).unwrap().unwrap().epoch, 3, "only the best is copied");
        assert!(read(&dir.path().join("missing.csv")).unwrap().is_none());
        let path = dir.path().join(CURVE_FILE);
        std::fs::write(&path, format!("{HEADER}\n4,0,0.5,\n4,1,0.")).unwrap();
        let err = read(&path).unwrap_err().to_string();
        assert!(err.contains("curve.csv") && err.contains("line 3"), "{err}");
    }
}
