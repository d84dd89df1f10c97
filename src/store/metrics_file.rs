//! A run's `metrics.csv`: one row per finished epoch. The whole file is rewritten atomically for each
//! new row (it is small), so it never holds a torn or duplicated row, and resuming truncates it back
//! to the last checkpoint.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::atomic::write_atomic;
use crate::metrics::{COLORFULNESS_GT, Metric, Metrics, SemanticTop1};

pub const METRICS_FILE: &str = "metrics.csv";

/// The columns, in order: the metrics under their [`Metric`] names, and what else an epoch records.
pub const COLUMNS: &[&str] = &[
    "epoch",
    Metric::TrainLoss.name(),
    Metric::ValLoss.name(),
    Metric::Psnr.name(),
    Metric::AbRmse.name(),
    Metric::Auc.name(),
    Metric::AucRebal.name(),
    Metric::Colorfulness.name(),
    COLORFULNESS_GT,
    "images_per_s",
    "seconds",
    "lr",
    "pretrain_top1",
    Metric::Top1Colorized.name(),
    Metric::Top1Gray.name(),
    Metric::Top1Color.name(),
];

#[derive(Clone, Debug, PartialEq)]
pub struct MetricsRow {
    pub epoch: u64,
    pub train_loss: f64,
    pub val_loss: f64,
    pub metrics: Metrics,
    pub images_per_s: f64,
    pub seconds: f64,
    pub lr: f64,
    /// Top-1 of the classification-pretrained backbone on gray validation images, if there is one.
    pub pretrain_top1: Option<f64>,
    /// The semantic judge's top-1 on colorized, gray and true-colour validation images, if there is one.
    pub semantic: Option<SemanticTop1>,
}

impl MetricsRow {
    fn values(&self) -> Vec<Option<f64>> {
        let m = &self.metrics;
        vec![
            Some(self.epoch as f64),
            Some(self.train_loss),
            Some(self.val_loss),
            Some(m.psnr),
            Some(m.ab_rmse),
            Some(m.auc),
            Some(m.auc_rebal),
            Some(m.colorfulness),
            Some(m.colorfulness_gt),
            Some(self.images_per_s),
            Some(self.seconds),
            Some(self.lr),
            self.pretrain_top1,
            self.semantic.map(|s| s.colorized),
            self.semantic.map(|s| s.gray),
            self.semantic.map(|s| s.color),
        ]
    }

    /// A column's value by name.
    pub fn get(&self, column: &str) -> Option<f64> {
        COLUMNS.iter().position(|c| *c == column).and_then(|i| self.values()[i])
    }

    fn parse(line: &str) -> Option<MetricsRow> {
        let cells: Vec<&str> = line.split(',').collect();
        if cells.len() != COLUMNS.len() {
            return None;
        }
        let num = |i: usize| cells[i].trim().parse::<f64>().ok();
        let metrics = Metrics {
            psnr: num(3)?,
            ab_rmse: num(4)?,
            auc: num(5)?,
            auc_rebal: num(6)?,
            colorfulness: num(7)?,
            colorfulness_gt: num(8)?,
        };
        Some(MetricsRow {
            epoch: cells[0].trim().parse().ok()?,
            train_loss: num(1)?,
            val_loss: num(2)?,
            metrics,
            images_per_s: num(9)?,
            seconds: num(10)?,
            lr: num(11)?,
            pretrain_top1: num(12),
            semantic: match (num(13), num(14), num(15)) {
                (Some(colorized), Some(gray), Some(color)) => Some(SemanticTop1 { colorized, gray, color }),
                _ => None,
            },
        })
    }

    fn to_csv(&self) -> String {
        let cells: Vec<String> = self
            .values()
            .iter()
            .enumerate()
            .map(|(i, v)| match v {
                Some(v) if i == 0 => format!("{v}"),
                Some(v) => format!("{v:.6}"),
                None => String::new(),
            })
            .collect();
        cells.join(",")
    }

    /// The log line of an epoch.
    pub fn summary(&self) -> String {
        let m = &self.metrics;
        format!(
            "epoch {:>3}  train_loss {:.4}  val_loss {:.4}  psnr {:.2}  ab_rmse {:.2}  auc {:.2}  auc_rebal {:.2}  colorfulness {:.1} (gt {:.1})  {:.1} img/s  {:.1} s",
            self.epoch,
            self.train_loss,
            self.val_loss,
            m.psnr,
            m.ab_rmse,
            m.auc,
            m.auc_rebal,
            m.colorfulness,
            m.colorfulness_gt,
            self.images_per_s,
            self.seconds
        )
    }
}

/// The rows of a run's metrics file.
pub struct MetricsFile {
    path: PathBuf,
    rows: Vec<MetricsRow>,
}

impl MetricsFile {
    /// Reads the file if it exists; rows that do not parse are dropped.
    pub fn open(run_dir: &Path) -> Result<MetricsFile> {
        let path = run_dir.join(METRICS_FILE);
        let rows = match std::fs::read_to_string(&path) {
            Ok(text) => text.lines().skip(1).filter_map(MetricsRow::parse).collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        Ok(MetricsFile { path, rows })
    }

    pub fn rows(&self) -> &[MetricsRow] {
        &self.rows
    }

    /// Keeps the rows of epochs up to `epoch` and writes the file.
    pub fn truncate_after(&mut self, epoch: u64) -> Result<()> {
        self.rows.retain(|r| r.epoch <= epoch);
        self.write()
    }

    /// Adds (or replaces) the row of its epoch and writes the file.
    pub fn append(&mut self, row: MetricsRow) -> Result<()> {
        self.rows.retain(|r| r.epoch < row.epoch);
        self.rows.push(row);
        self.write()
    }

    fn write(&self) -> Result<()> {
        let mut text = COLUMNS.join(",");
        text.push('\n');
        for row in &self.rows {
            text.push_str(&row.to_csv());
            text.push('\n');
        }
        write_atomic(&self.path, text.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(epoch: u64) -> MetricsRow {
        MetricsRow {
            epoch,
            train_loss: 0.5 / epoch as f64,
            val_loss: 0.25,
            metrics: Metrics {
                psnr: 24.5,
                ab_rmse: 10.0,
                auc: 90.0,
                auc_rebal: 60.0,
                colorfulness: 20.0,
                colorfulness_gt: 30.0,
            },
            images_per_s: 100.0,
            seconds: 3.0,
            lr: 0.001,
            pretrain_top1: None,
            semantic: None,
        }
    }

    #[test]
    fn rows_round_trip_and_truncate_without_duplicates() {
        let dir = tempfile::tempdir().unwrap();
        let mut f = MetricsFile::open(dir.path()).unwrap();
        for e in 1..=3 {
            let semantic = (e == 2).then_some(SemanticTop1 { colorized: 41.5, gray: 30.0, color: 50.25 });
            f.append(MetricsRow { semantic, ..row(e) }).unwrap();
        }
        f.append(row(3)).unwrap();
        let back = MetricsFile::open(dir.path()).unwrap();
        assert_eq!(back.rows().len(), 3);
        assert_eq!(back.rows()[2].get("psnr"), Some(24.5));
        assert_eq!(back.rows()[0].get("pretrain_top1"), None);
        assert_eq!(back.rows()[0].get("top1_gray"), None);
        assert_eq!(back.rows()[1].semantic, Some(SemanticTop1 { colorized: 41.5, gray: 30.0, color: 50.25 }));
        let mut back = back;
        back.truncate_after(1).unwrap();
        let text = std::fs::read_to_string(dir.path().join(METRICS_FILE)).unwrap();
        assert_eq!(text.lines().count(), 2);
        assert!(text.starts_with(
            "epoch,train_loss,val_loss,psnr,ab_rmse,auc,auc_rebal,colorfulness,colorfulness_gt,images_per_s,seconds"
        ));
        // A torn last line is dropped on reading.
        std::fs::write(dir.path().join(METRICS_FILE), format!("{text}2,0.1,0.2")).unwrap();
        assert_eq!(MetricsFile::open(dir.path()).unwrap().rows().len(), 1);
    }
}
