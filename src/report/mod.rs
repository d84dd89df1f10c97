//! `sweep report`: a sweep's runs (or several sweeps', side by side) turned into tables, plots and a
//! page under `reports/<sweep>/`.
//!
//! - `load`: reading results folders (plan, statuses, metrics, curves, sample sheets);
//! - `aggregate`: variants as mean +/- std over seeds, at the last or the best epoch, and ranking;
//! - `tables`: the tables every output shares (ranked, runs, metrics, across sweeps), as text grids;
//! - `reference`: published numbers beside measured ones, and whether published orderings hold;
//! - `search`: a search's trials (which one stands for each variant, their table and plot data);
//! - `summary`: `summary.csv`;
//! - `plots`: learning curves, final metrics, PSNR vs colorfulness, ab-accuracy curves (PNG and SVG);
//! - `sheet`: the comparison sheet of every variant's colorizations of the same validation images;
//! - `document`: the one walk over the report's sections, in their one order, as a document of
//!   blocks (headings, paragraphs, tables, figures) that every format renders;
//! - [`Renderer`] (below): one format, one file per implementation: `markdown` (`report.md`) and
//!   `html` (the self-contained `index.html`), registered by one arm of [`Format`]; the terminal's
//!   summary is the command line's (`cli/report_cmd.rs`).
//!
//! **Escaping.** The document carries names, descriptions, citations and reasons as the spec and the
//! results files say them; each format escapes every text with one function of its own (Markdown's
//! `escape`, HTML's `esc`, [`crate::terminal::line`] for the terminal, a formula guard for the text
//! cells of `summary.csv`), and only [`document::Span::link`] makes links, of http(s) addresses.
//!
//! **Adding a report format** (AsciiDoc, LaTeX, ...) is one file here implementing [`Renderer`] for
//! the document's blocks, and one arm of [`Format`] with its file name. What the report says and in
//! which order is [`document`]'s, so every format says the same. **Adding a section** is a few lines
//! in `document.rs`, from the blocks there are.

pub mod aggregate;
pub mod document;
#[cfg(test)]
mod fixtures;
mod html;
pub mod load;
mod markdown;
mod plots;
pub mod reference;
pub mod search;
mod sheet;
pub mod summary;
pub mod tables;

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};

use crate::atomic::write_atomic;
use aggregate::{At, Variant};
use document::{Block, Detail, document};
use load::SweepResults;

/// A format the report is rendered in: how each block of the [`document`] looks.
pub trait Renderer {
    /// How much of the report the format shows.
    fn detail(&self) -> Detail;
    /// The document, rendered.
    fn render(&self, doc: &[Block]) -> Result<String>;
}

/// The files a report is written as: one arm per format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Markdown,
    Html,
}

impl Format {
    pub const ALL: [Format; 2] = [Format::Markdown, Format::Html];

    pub fn file_name(self) -> &'static str {
        match self {
            Format::Markdown => markdown::MARKDOWN_FILE,
            Format::Html => html::HTML_FILE,
        }
    }

    fn renderer(self) -> Box<dyn Renderer> {
        match self {
            Format::Markdown => Box::new(markdown::Markdown),
            Format::Html => Box::new(html::Html),
        }
    }
}

/// A sweep to report on: its results folder and, when the user named it, its spec.
#[derive(Clone, Debug)]
pub struct Target {
    pub dir: PathBuf,
    pub spec: Option<PathBuf>,
}

/// Everything the outputs are made from.
pub struct Report {
    pub sets: Vec<SweepResults>,
    /// A short name per sweep: its name, or its folder where two sweeps share a name.
    pub labels: Vec<String>,
    /// Every variant of every sweep, best first.
    pub variants: Vec<Variant>,
    /// The primary metric (the first sweep's) and its direction.
    pub metric: String,
    pub higher_is_better: bool,
    /// The epoch the tables and plots use.
    pub at: At,
    /// Problems and caveats worth showing with the results.
    pub notes: Vec<String>,
    /// When the report was made, `YYYY-MM-DD HH:MM UTC`.
    pub created: String,
}

impl Report {
    pub fn build(targets: &[Target], at: At) -> Result<Report> {
        if targets.is_empty() {
            bail!("give a spec or a sweep's results folder, e.g. `sweep report experiments/quickstart.toml`");
        }
        let sets: Vec<SweepResults> =
            targets.iter().map(|t| SweepResults::load(&t.dir, t.spec.as_deref())).collect::<Result<_>>()?;
        let labels = labels(&sets);
        let (metric, higher_is_better) = (sets[0].index.metric.clone(), sets[0].index.higher_is_better);
        let mut notes = Vec::new();
        for (set, label) in sets.iter().zip(&labels) {
            if set.index.metric != metric || set.index.higher_is_better != higher_is_better {
                notes.push(format!(
                    "{label} ranks by {} ({}); this report ranks every sweep by the first one's, {metric}",
                    set.index.metric,
                    direction(set.index.higher_is_better)
                ));
            }
            let prefix = if sets.len() > 1 { format!("{label}: ") } else { String::new() };
            notes.extend(set.notes.iter().map(|n| format!("{prefix}{n}")));
        }
        let mut variants: Vec<Variant> = sets
            .iter()
            .enumerate()
            .flat_map(|(i, set)| aggregate::variants(set, i, (sets.len() > 1).then_some(labels[i].as_str())))
            .collect();
        if variants.iter().all(|v| v.used.is_empty()) {
            bail!(nothing_to_report(&sets));
        }
        aggregate::rank(&mut variants, &metric, higher_is_better, at);
        Ok(Report { sets, labels, variants, metric, higher_is_better, at, notes, created: utc_now() })
    }

    /// The metrics, in [`crate::metrics::Metric`]'s order, that at least one variant has a value of (the semantic
    /// test's columns only exist where a sweep has a judge).
    pub fn measured_metrics(&self) -> Vec<&'static str> {
        crate::metrics::Metric::NAMES
            .iter()
            .copied()
            .filter(|m| self.variants.iter().any(|v| v.stat(self.at, m).is_some()))
            .collect()
    }

    /// Writes every output into `out` (`summary.csv`, the figures, a file per [`Format`]) and
    /// returns the files written.
    pub fn write(&self, out: &Path) -> Result<Vec<PathBuf>> {
        let mut files = vec![summary::write(self, out)?];
        let mut figures = plots::write_all(self, out)?;
        figures.extend(sheet::write_all(self, out)?);
        for format in Format::ALL {
            let path = out.join(format.file_name());
            write_atomic(&path, self.render(format.renderer().as_ref(), &figures)?.as_bytes())?;
            files.push(path);
        }
        files.extend(figures.iter().flat_map(|f| f.files()));
        Ok(files)
    }

    /// The report rendered by `renderer`, with the `figures` written for it.
    pub fn render(&self, renderer: &dyn Renderer, figures: &[Figure]) -> Result<String> {
        renderer.render(&document(self, figures, renderer.detail()))
    }

    /// The default output folder: `reports/<sweep>` or `reports/<a>-vs-<b>`; for many sweeps, whose
    /// names joined would be too long a folder name, `reports/<a>-vs-<n>-more`.
    pub fn default_output(&self) -> PathBuf {
        let names: Vec<&str> = self.sets.iter().map(|s| s.index.sweep.as_str()).collect();
        let joined = names.join("-vs-");
        let name = if joined.len() <= 128 { joined } else { format!("{}-vs-{}-more", names[0], names.len() - 1) };
        Path::new("reports").join(name)
    }

    /// The title: the sweep's name or the names compared.
    pub fn title(&self) -> String {
        match self.labels.as_slice() {
            [one] => format!("sweep \"{one}\""),
            many => format!("sweeps {}", many.iter().map(|l| format!("\"{l}\"")).collect::<Vec<_>>().join(" vs ")),
        }
    }

    /// What the numbers are: the epoch and the ranking.
    pub fn basis(&self) -> String {
        format!(
            "ranked by {} ({}); numbers are mean ± std over seeds at each run's {} epoch{}",
            self.metric,
            direction(self.higher_is_better),
            self.at.name(),
            match self.at {
                At::Last => " (summary.csv also has the best epoch)",
                At::Best => " (the best checkpoint by the primary metric; summary.csv also has the last epoch)",
            }
        )
    }
}

/// A figure written into the report folder: PNG (and SVG for plots), a title and a caption.
#[derive(Clone, Debug)]
pub struct Figure {
    pub stem: String,
    pub title: String,
    pub caption: String,
    pub svg: bool,
    pub dir: PathBuf,
}

impl Figure {
    pub fn png(&self) -> PathBuf {
        self.dir.join(format!("{}.png", self.stem))
    }
    pub fn files(&self) -> Vec<PathBuf> {
        let mut files = vec![self.png()];
        if self.svg {
            files.push(self.dir.join(format!("{}.svg", self.stem)));
        }
        files
    }
}

/// Why a report has no numbers: no run has an epoch that counts. Failed runs never count, so those
/// are listed with their reasons.
fn nothing_to_report(sets: &[SweepResults]) -> String {
    let dirs: Vec<String> = sets.iter().map(|s| s.dir.display().to_string()).collect();
    let failed: Vec<String> = sets
        .iter()
        .flat_map(|s| &s.runs)
        .filter_map(|r| match &r.state {
            load::RunState::Failed(reason) => Some(format!(
                "\n  {} ({}, seed {}) failed after {} epoch(s): {}",
                r.planned.id,
                r.planned.variant,
                r.planned.seed,
                r.rows.len(),
                reason.lines().next().unwrap_or("")
            )),
            load::RunState::Done
            | load::RunState::Partial(_)
            | load::RunState::Stopped
            | load::RunState::Missing(_) => None,
        })
        .collect();
    if failed.is_empty() {
        return format!(
            "no run of {} has finished an epoch yet, so there is nothing to report (`sweep status` shows progress)",
            dirs.join(" or ")
        );
    }
    let runs: usize = sets.iter().map(|s| s.runs.len()).sum();
    format!(
        "no run of {} has numbers to report: {} of its {runs} runs failed, and failed runs are not averaged:{}\n\
         (`sweep run SPEC --retry-failed` trains them again)",
        dirs.join(" or "),
        failed.len(),
        failed.concat()
    )
}

pub fn direction(higher_is_better: bool) -> &'static str {
    if higher_is_better { "higher is better" } else { "lower is better" }
}

/// Sweep names, or their folders where names repeat (e.g. one sweep trained twice).
fn labels(sets: &[SweepResults]) -> Vec<String> {
    let names: Vec<&str> = sets.iter().map(|s| s.index.sweep.as_str()).collect();
    sets.iter()
        .map(|s| {
            let name = s.index.sweep.as_str();
            if names.iter().filter(|n| **n == name).count() > 1 { s.dir.display().to_string() } else { name.into() }
        })
        .collect()
}

/// The current time as `YYYY-MM-DD HH:MM UTC` (civil-from-days, so that no date crate is needed).
fn utc_now() -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    utc(secs)
}

pub fn utc(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let (hour, minute) = ((secs % 86_400) / 3600, (secs % 3600) / 60);
    // Howard Hinnant's days_from_civil inverse.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02} {hour:02}:{minute:02} UTC")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_folder_of_many_long_named_sweeps_is_a_valid_name() {
        let mut report = fixtures::fake_report(1);
        assert_eq!(report.default_output(), Path::new("reports/fake"));
        let set = report.sets[0].clone();
        report.sets = (0..5)
            .map(|i| {
                let mut s = set.clone();
                s.index.sweep = format!("{}{i}", "s".repeat(63));
                s
            })
            .collect();
        let name = report.default_output().file_name().unwrap().to_string_lossy().into_owned();
        assert_eq!(name, format!("{}0-vs-4-more", "s".repeat(63)));
    }

    #[test]
    fn utc_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00 UTC");
        assert_eq!(utc(1_700_000_000), "2023-11-14 22:13 UTC");
    }
}
