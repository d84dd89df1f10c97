//! A run's `metrics.csv`: one row per finished epoch. The whole file is rewritten atomically for each
//! new row (it is small), so it never holds a torn or duplicated row, and resuming truncates it back
//! to the last checkpoint.
//!
//! Reading never drops a line. The header names the format: the current [`COLUMNS`] or an older one
//! in [`FORMATS`] (before the semantic judge added its three columns), each read by its column names;
//! a file without a header sweep wrote is read by each line's number of cells. A line that does not
//! parse is a [`DamagedLine`], reported with its file and line number and written back verbatim when
//! the file is rewritten, so that a resumed run keeps it (an older format is rewritten as the current
//! one, values unchanged).

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

    /// The columns whose value is not finite (NaN or infinite): a row of a diverged model, which is
    /// no result.
    pub fn non_finite(&self) -> Vec<String> {
        let values = self.values();
        COLUMNS
            .iter()
            .zip(values)
            .filter_map(|(c, v)| v.filter(|v| !v.is_finite()).map(|v| format!("{c} {v}")))
            .collect()
    }

    /// A column's value by name.
    pub fn get(&self, column: &str) -> Option<f64> {
        COLUMNS.iter().position(|c| *c == column).and_then(|i| self.values()[i])
    }

    /// The row in `cells`, laid out as `format` (one of [`FORMATS`]); why not, when they do not parse.
    fn parse(cells: &[&str], format: &[&str]) -> Result<MetricsRow, String> {
        if cells.len() != format.len() {
            return Err(format!("it has {} cells, the header names {} columns", cells.len(), format.len()));
        }
        let cell = |name: &str| format.iter().position(|c| *c == name).map(|i| cells[i].trim());
        // The columns every format has; the others may be empty (no pretrained backbone, no judge).
        let num = |name: &str| -> Result<f64, String> {
            let text = cell(name).unwrap_or("");
            text.parse::<f64>().map_err(|_| format!("`{name}` is `{text}`, not a number"))
        };
        let optional = |name: &str| -> Result<Option<f64>, String> {
            match cell(name) {
                None | Some("") => Ok(None),
                Some(_) => num(name).map(Some),
            }
        };
        let epoch = cell("epoch").unwrap_or("");
        let epoch = epoch.parse::<u64>().map_err(|_| format!("`epoch` is `{epoch}`, not an epoch number"))?;
        let metrics = Metrics {
            psnr: num(Metric::Psnr.name())?,
            ab_rmse: num(Metric::AbRmse.name())?,
            auc: num(Metric::Auc.name())?,
            auc_rebal: num(Metric::AucRebal.name())?,
            colorfulness: num(Metric::Colorfulness.name())?,
            colorfulness_gt: num(COLORFULNESS_GT)?,
        };
        let semantic = (
            optional(Metric::Top1Colorized.name())?,
            optional(Metric::Top1Gray.name())?,
            optional(Metric::Top1Color.name())?,
        );
        Ok(MetricsRow {
            epoch,
            train_loss: num(Metric::TrainLoss.name())?,
            val_loss: num(Metric::ValLoss.name())?,
            metrics,
            images_per_s: num("images_per_s")?,
            seconds: num("seconds")?,
            lr: num("lr")?,
            pretrain_top1: optional("pretrain_top1")?,
            semantic: match semantic {
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

/// The formats of `metrics.csv` sweep has written, newest first, by their columns: the current one,
/// and the one before the semantic judge (its last column `pretrain_top1`).
pub const FORMATS: [&[&str]; 2] = [COLUMNS, COLUMNS.split_at(13).0];

/// A line of `metrics.csv` that does not parse: kept verbatim, and reported as `file:line: why`.
#[derive(Clone, Debug, PartialEq)]
pub struct DamagedLine {
    pub path: PathBuf,
    /// 1-based, as an editor counts.
    pub line: usize,
    pub text: String,
    pub why: String,
    /// The epoch in its first cell, when that parses: resuming truncates it like a row of that epoch.
    epoch: Option<u64>,
    /// A first line that is no header sweep wrote: not written back (the file gets the current header).
    header: bool,
}

/// The numbers of columns of sweep's formats, for messages: `16 or 13`.
fn format_sizes() -> String {
    FORMATS.iter().map(|f| f.len().to_string()).collect::<Vec<_>>().join(" or ")
}

impl std::fmt::Display for DamagedLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text: String = self.text.chars().take(80).collect();
        let more = if text.len() < self.text.len() { "..." } else { "" };
        let kept = if self.header { "" } else { "; the line is kept as it is" };
        write!(f, "{}:{}: {} (`{text}{more}`){kept}", self.path.display(), self.line, self.why)
    }
}

/// The rows of a run's metrics file, and the lines that do not parse.
pub struct MetricsFile {
    path: PathBuf,
    rows: Vec<MetricsRow>,
    damaged: Vec<DamagedLine>,
}

impl MetricsFile {
    /// Reads the file if it exists (see the module doc: no line is dropped).
    pub fn open(run_dir: &Path) -> Result<MetricsFile> {
        let path = run_dir.join(METRICS_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        let mut file = MetricsFile { path, rows: Vec::new(), damaged: Vec::new() };
        let mut lines = text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()).peekable();
        let header = lines.peek().map(|(_, l)| l.trim());
        let format = FORMATS.into_iter().find(|f| header == Some(f.join(",").as_str()));
        if format.is_some() {
            lines.next();
        }
        for (i, line) in lines {
            let cells: Vec<&str> = line.split(',').collect();
            // Without a known header, the number of cells tells the format.
            let by_count = || FORMATS.into_iter().find(|f| f.len() == cells.len());
            let parsed = match format.or_else(by_count) {
                Some(f) => MetricsRow::parse(&cells, f),
                None => Err(format!("it has {} cells; sweep's formats have {}", cells.len(), format_sizes())),
            };
            let (why, header) = match parsed {
                Ok(row) => {
                    file.rows.push(row);
                    continue;
                }
                // A first line that is neither a known header nor a row: a damaged header, replaced
                // when the file is rewritten.
                Err(_) if i == 0 => (
                    format!(
                        "is not a header sweep wrote (`{}`); the lines below are read by their number of cells",
                        COLUMNS.join(",")
                    ),
                    true,
                ),
                Err(why) => (format!("does not parse: {why}"), false),
            };
            let epoch = cells[0].trim().parse().ok();
            let path = file.path.clone();
            file.damaged.push(DamagedLine { path, line: i + 1, text: line.to_string(), why, epoch, header });
        }
        Ok(file)
    }

    /// The rows of run `run`'s file in `run_dir`, for a reader that goes on whatever it finds: each
    /// damaged line, or the file not reading at all, becomes a note (`run <id>: file:line: why`).
    pub fn rows_noting(run_dir: &Path, run: &str, notes: &mut Vec<String>) -> Vec<MetricsRow> {
        match MetricsFile::open(run_dir) {
            Ok(file) => {
                notes.extend(file.damaged.iter().map(|d| format!("run {run}: {d}")));
                file.rows
            }
            Err(e) => {
                notes.push(format!("run {run}: {e:#}"));
                Vec::new()
            }
        }
    }

    pub fn rows(&self) -> &[MetricsRow] {
        &self.rows
    }

    /// The lines that do not parse.
    pub fn damaged(&self) -> &[DamagedLine] {
        &self.damaged
    }

    /// Keeps the rows of epochs up to `epoch` and writes the file. Damaged lines of later epochs go
    /// with them (those epochs are trained again); the others are kept.
    pub fn truncate_after(&mut self, epoch: u64) -> Result<()> {
        self.rows.retain(|r| r.epoch <= epoch);
        self.damaged.retain(|d| !d.header && d.epoch.is_none_or(|e| e <= epoch));
        self.write()
    }

    /// Adds (or replaces) the row of its epoch and writes the file.
    pub fn append(&mut self, row: MetricsRow) -> Result<()> {
        self.rows.retain(|r| r.epoch < row.epoch);
        self.damaged.retain(|d| !d.header && d.epoch.is_none_or(|e| e < row.epoch));
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
        for line in &self.damaged {
            text.push_str(&line.text);
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
        // A torn last line is no row, and is reported with its line.
        std::fs::write(dir.path().join(METRICS_FILE), format!("{text}2,0.1,0.2")).unwrap();
        let torn = MetricsFile::open(dir.path()).unwrap();
        assert_eq!(torn.rows().len(), 1);
        let damage = torn.damaged()[0].to_string();
        assert!(damage.contains("metrics.csv:3: does not parse: it has 3 cells"), "{damage}");
    }

    #[test]
    fn the_format_before_the_judge_is_read_and_rewritten_as_the_current_one() {
        let dir = tempfile::tempdir().unwrap();
        let old = "epoch,train_loss,val_loss,psnr,ab_rmse,auc,auc_rebal,colorfulness,colorfulness_gt,images_per_s,seconds,lr,pretrain_top1\n\
                   1,0.5,0.25,24.5,10,90,60,20,30,100,3,0.001,\n\
                   2,0.4,0.25,25.5,10,90,60,20,30,100,3,0.001,41.5\n";
        std::fs::write(dir.path().join(METRICS_FILE), old).unwrap();
        let mut f = MetricsFile::open(dir.path()).unwrap();
        assert!(f.damaged().is_empty(), "{:?}", f.damaged());
        assert_eq!(f.rows().iter().map(|r| r.epoch).collect::<Vec<_>>(), [1, 2]);
        assert_eq!(
            (f.rows()[1].get("psnr"), f.rows()[1].pretrain_top1, f.rows()[1].semantic),
            (Some(25.5), Some(41.5), None)
        );
        f.append(row(3)).unwrap();
        let back = MetricsFile::open(dir.path()).unwrap();
        assert_eq!(back.rows().len(), 3);
        assert_eq!(back.rows()[1].pretrain_top1, Some(41.5));
        let text = std::fs::read_to_string(dir.path().join(METRICS_FILE)).unwrap();
        assert!(text.starts_with(&format!("{}\n", COLUMNS.join(","))), "{text}");
        // Without any header, each line is read by its number of cells.
        let rows: Vec<&str> = old.lines().skip(1).collect();
        std::fs::write(dir.path().join(METRICS_FILE), rows.join("\n")).unwrap();
        let headless = MetricsFile::open(dir.path()).unwrap();
        assert_eq!((headless.rows().len(), headless.damaged().len()), (2, 0));
    }

    #[test]
    fn a_damaged_line_is_reported_and_kept_when_the_file_is_rewritten() {
        let dir = tempfile::tempdir().unwrap();
        let mut f = MetricsFile::open(dir.path()).unwrap();
        (1..=3).for_each(|e| f.append(row(e)).unwrap());
        let path = dir.path().join(METRICS_FILE);
        let text = std::fs::read_to_string(&path).unwrap();
        let damaged = text.replacen("\n2,", "\n2,oops", 1).replacen("\n3,", "\nthree,", 1);
        std::fs::write(&path, &damaged).unwrap();
        let mut f = MetricsFile::open(dir.path()).unwrap();
        assert_eq!(f.rows().iter().map(|r| r.epoch).collect::<Vec<_>>(), [1]);
        let notes: Vec<String> = f.damaged().iter().map(|d| d.to_string()).collect();
        assert!(notes[0].contains("metrics.csv:3: does not parse: `train_loss` is `oops0.250000`"), "{notes:?}");
        assert!(notes[1].contains("metrics.csv:4: does not parse: `epoch` is `three`"), "{notes:?}");
        // Resuming after epoch 2: epoch 2's damaged line stays, and so does the one of no known epoch.
        f.truncate_after(2).unwrap();
        f.append(row(3)).unwrap();
        let back = MetricsFile::open(dir.path()).unwrap();
        assert_eq!(back.rows().iter().map(|r| r.epoch).collect::<Vec<_>>(), [1, 3]);
        let kept: Vec<&str> = back.damaged().iter().map(|d| d.text.as_str()).collect();
        assert_eq!(kept, [damaged.lines().nth(2).unwrap(), damaged.lines().nth(3).unwrap()]);
        // A first line that is no header is replaced by the header when the file is rewritten.
        std::fs::write(&path, text.replacen("epoch,", "epoc,", 1)).unwrap();
        let mut f = MetricsFile::open(dir.path()).unwrap();
        assert_eq!((f.rows().len(), f.damaged()[0].line), (3, 1));
        f.truncate_after(3).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
    }
}
