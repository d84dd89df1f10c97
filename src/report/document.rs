//! The report as a document: the one walk over its sections, in their one order, that every format
//! renders (terminal, `report.md`, `index.html`). The walk decides what is said and in which order;
//! a [`super::Renderer`] only decides how a heading, a paragraph or a table looks. A format with room
//! for only the essentials (the terminal) gets the [`Detail::Summary`] document: the ranking, the
//! unfinished runs, the verdicts on published numbers and the evaluations, without the other tables,
//! the figures and the spec.
//!
//! The sections: title and provenance, notes, ranking, runs, every metric (at the report's epoch and
//! at the other), published references (one per sweep with a `[reference]`), evaluations on other
//! data sets, across sweeps, figures, sample sheets, spec.

use std::path::PathBuf;

use super::load::{RunState, SweepResults};
use super::tables::{self, Grid};
use super::{Figure, Report, reference, search};
use crate::spec::parse::web_url;

/// How much of the report a format shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Detail {
    /// Everything: a file that is read at leisure.
    Full,
    /// What a terminal shows after `sweep report`.
    Summary,
}

/// A run of text inside a block. The texts are as the spec or the results say them: each renderer
/// escapes them for its format.
#[derive(Clone, Debug, PartialEq)]
pub enum Span {
    Text(String),
    /// A file name, a command, a folder.
    Code(String),
    Strong(String),
    /// Made by [`Span::link`] only, so that `url` is an http(s) address a renderer may link.
    Link {
        text: String,
        url: String,
    },
}

impl Span {
    /// A link to `url` when it is an http(s) address (see [`web_url`]); otherwise the text with the
    /// address beside it as plain text, which no format turns into a link.
    pub fn link(text: &str, url: &str) -> Span {
        match web_url(url) {
            Some(url) => Span::Link { text: text.to_string(), url: url.to_string() },
            None => Span::Text(format!("{text} ({url})")),
        }
    }
}

/// How the report was made: shown under the title (and at the foot of a page).
#[derive(Clone, Debug, PartialEq)]
pub struct Provenance {
    pub created: String,
    pub version: &'static str,
    /// The results folders reported on.
    pub sources: Vec<String>,
}

/// One block of the document.
#[derive(Clone, Debug)]
pub enum Block {
    Title(String),
    /// Small print under the title: a sweep's description, the counts, the basis of the numbers.
    Meta(Vec<Span>),
    Provenance(Provenance),
    /// The sections that follow, as (anchor, title), for a format that links to them.
    Contents(Vec<(String, String)>),
    /// Problems and caveats worth reading before the numbers.
    Notes(Vec<String>),
    Section {
        id: String,
        title: String,
    },
    Subsection(Vec<Span>),
    Paragraph(Vec<Span>),
    /// Lines whose indentation means something (the ranking's summary).
    Lines(Vec<String>),
    List(Vec<String>),
    Table(Grid),
    /// Detail a reader may open: the summary, then the body.
    Folded {
        summary: String,
        body: Vec<Block>,
    },
    /// A figure written into the report's folder.
    Figure(Figure),
    /// A picture from elsewhere (a run's sample sheet), for formats that can embed it.
    Image {
        alt: String,
        path: PathBuf,
        caption: String,
    },
    /// Verbatim text (the spec), in `language`.
    Code {
        text: String,
        language: &'static str,
    },
}

/// The document of `report` for a format showing `detail`; `figures` are those written for it.
pub fn document(report: &Report, figures: &[Figure], detail: Detail) -> Vec<Block> {
    let full = detail == Detail::Full;
    let mut doc = head(report);
    let comparisons = reference::for_report(report);
    let evaluations = tables::evaluations(report);
    let across = tables::across_sweeps(report).filter(|_| full);
    if full {
        doc.push(Block::Contents(contents(!comparisons.is_empty(), evaluations.is_some(), across.is_some())));
    }
    if !report.notes.is_empty() {
        doc.push(Block::Notes(report.notes.clone()));
    }
    ranking(report, full, &mut doc);
    searches(report, figures, full, &mut doc);
    runs(report, full, &mut doc);
    if full {
        for (i, at) in [report.at, report.at.other()].into_iter().enumerate() {
            let id = if i == 0 { "metrics" } else { "metrics-other" };
            doc.push(section(id, &format!("Every metric at the {} epoch", at.name())));
            doc.push(Block::Table(tables::metrics(report, at)));
        }
    }
    for (i, (set, comparison)) in comparisons.iter().enumerate() {
        references(&report.labels[*set], comparison, i, full, &mut doc);
    }
    if let Some(grid) = evaluations {
        doc.push(section("evaluations", "Evaluations on other data sets"));
        doc.push(Block::Paragraph(vec![
            Span::Code("sweep eval".into()),
            Span::Text(" results of trained runs, each beside the run's last training epoch.".into()),
        ]));
        doc.push(Block::Table(grid));
    }
    if let Some(grid) = across {
        doc.push(section("across", "Across sweeps"));
        doc.push(Block::Table(grid));
    }
    if full {
        pictures(report, figures, &mut doc);
        doc.push(section("spec", "Spec"));
        for (set, label) in report.sets.iter().zip(&report.labels) {
            spec(set, label, &mut doc);
        }
    }
    doc
}

fn section(id: &str, title: &str) -> Block {
    Block::Section { id: id.into(), title: title.into() }
}

fn text(text: impl Into<String>) -> Vec<Span> {
    vec![Span::Text(text.into())]
}

/// The title, each sweep's description, how the report was made and what its numbers are.
fn head(report: &Report) -> Vec<Block> {
    let mut doc = vec![Block::Title(report.title())];
    for (set, label) in report.sets.iter().zip(&report.labels) {
        if !set.index.description.is_empty() {
            doc.push(Block::Meta(vec![
                Span::Strong(label.clone()),
                Span::Text(format!(": {}", set.index.description)),
            ]));
        }
    }
    doc.push(Block::Provenance(Provenance {
        created: report.created.clone(),
        version: env!("CARGO_PKG_VERSION"),
        sources: report.sets.iter().map(|s| s.dir.display().to_string()).collect(),
    }));
    if let Some(partial) = tables::partial_note(report) {
        doc.push(Block::Meta(vec![Span::Strong(partial)]));
    }
    doc.push(Block::Meta(text(tables::run_counts(report))));
    doc.push(Block::Meta(text(report.basis())));
    doc
}

/// The sections of a full document, for its table of contents.
fn contents(references: bool, evaluations: bool, across: bool) -> Vec<(String, String)> {
    let mut entries = vec![("ranking", "Ranking"), ("runs", "Runs"), ("metrics", "Every metric")];
    if references {
        entries.push(("references", "Published references"));
    }
    if evaluations {
        entries.push(("evaluations", "Evaluations"));
    }
    if across {
        entries.push(("across", "Across sweeps"));
    }
    entries.extend([("figures", "Figures"), ("samples", "Sample sheets"), ("spec", "Spec")]);
    entries.into_iter().map(|(id, title)| (id.to_string(), title.to_string())).collect()
}

/// The ranked table (the summary's without the other metrics' spreads) and how far ahead the best is.
fn ranking(report: &Report, full: bool, doc: &mut Vec<Block>) {
    doc.push(section("ranking", "Ranking"));
    doc.push(Block::Table(tables::ranked(report, !full)));
    doc.push(Block::Lines(tables::summary_lines(report)));
}

/// Each searched variant's trials: how the variant's tuned setting was chosen, its table and plot.
fn searches(report: &Report, figures: &[Figure], full: bool, doc: &mut Vec<Block>) {
    let mut plots = figures.iter().filter(|f| f.stem.starts_with(search::FIGURE_PREFIX));
    for (set, label) in report.sets.iter().zip(&report.labels) {
        let searched = search::searched(set);
        if searched.is_empty() {
            continue;
        }
        doc.push(section("search", &format!("Search of {label}")));
        let tuned = set.runs.iter().any(|r| r.planned.tuned);
        let how = if tuned {
            "each variant's best trial, trained again with every seed of [sweep] seeds"
        } else {
            "each variant's best trial trained in full"
        };
        let (trained, planned): (u64, u64) = searched
            .iter()
            .flat_map(|s| &s.trials)
            .fold((0, 0), |(a, b), t| (a + t.epochs, b + t.planned.unwrap_or(t.epochs)));
        doc.push(Block::Paragraph(text(format!(
            "The comparison above is at tuned settings: {how}. The trials trained {trained} of {planned} epochs ({:.0}% saved by early stopping).",
            if planned > 0 { 100.0 * (planned - trained.min(planned)) as f64 / planned as f64 } else { 0.0 }
        ))));
        for s in &searched {
            doc.push(Block::Subsection(text(s.name.clone())));
            let grid = search::table(set, s);
            if full {
                doc.push(Block::Table(grid));
                doc.extend(plots.next().cloned().map(Block::Figure));
            } else if let Some(row) = grid.highlight.and_then(|i| grid.rows.get(i)) {
                // trial, the sampled values, epochs, metric, note: "best: trial #2, lr=0.0045, 4/4 epochs, psnr 16.6".
                let named: Vec<String> = grid
                    .header
                    .iter()
                    .zip(row)
                    .skip(1)
                    .take(grid.header.len() - 4)
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect();
                let n = row.len();
                doc.push(Block::Paragraph(text(format!(
                    "best: trial {}, {}, {} epochs, {} {}",
                    row[0],
                    named.join(", "),
                    row[n - 3],
                    grid.header[n - 2],
                    row[n - 2]
                ))));
            }
        }
    }
}

/// Every run's state: the table where some are not done (the summary lists only those), folded away
/// where all are.
fn runs(report: &Report, full: bool, doc: &mut Vec<Block>) {
    if tables::all_done(report) {
        if full {
            doc.push(section("runs", "Runs"));
            let summary = format!("Every run is done ({}).", tables::run_counts(report));
            doc.push(Block::Folded { summary, body: vec![Block::Table(tables::runs(report))] });
        }
        return;
    }
    doc.push(section("runs", "Runs"));
    doc.push(Block::Paragraph(text(
        "Not every run is done: unfinished runs count only for variants without a finished run (marked partial), failed runs never.",
    )));
    if full {
        doc.push(Block::Table(tables::runs(report)));
        return;
    }
    let unfinished = report
        .sets
        .iter()
        .flat_map(|s| &s.runs)
        .filter(|r| !matches!(r.state, RunState::Done | RunState::Stopped))
        .map(|r| format!("{} {} seed {}: {}", r.planned.id, r.planned.variant, r.planned.seed, r.state.describe()));
    doc.push(Block::List(unfinished.collect()));
}

/// One sweep's published references: the numbers beside the measured ones, the verdict on each
/// published ordering and claim, every pair.
fn references(label: &str, c: &reference::Comparison, i: usize, full: bool, doc: &mut Vec<Block>) {
    let id = if i == 0 { "references".to_string() } else { format!("references-{i}") };
    doc.push(section(&id, &format!("Published references of {label}")));
    let source = match &c.url {
        Some(url) => Span::link(&c.citation, url),
        None => Span::Text(c.citation.clone()),
    };
    doc.push(Block::Paragraph(vec![Span::Text("Source: ".into()), source]));
    if full {
        doc.push(Block::Table(c.table.clone()));
    }
    let verdicts = c.verdicts.iter().map(|v| v.line.clone());
    doc.push(Block::List(verdicts.chain(c.claims.iter().map(|c| format!("claim {}", c.line))).collect()));
    let pairs = reference::pairs_table(&c.verdicts);
    if full && !pairs.rows.is_empty() {
        doc.push(Block::Folded { summary: "Every pair".into(), body: vec![Block::Table(pairs)] });
    }
}

/// The plots, then the sample sheets: the report's own (the comparison sheet) and each variant's.
fn pictures(report: &Report, figures: &[Figure], doc: &mut Vec<Block>) {
    doc.push(section("figures", "Figures"));
    let search = |f: &&Figure| f.stem.starts_with(search::FIGURE_PREFIX);
    doc.extend(figures.iter().filter(|f| f.svg && !search(f)).cloned().map(Block::Figure));
    doc.push(section("samples", "Sample sheets"));
    doc.extend(figures.iter().filter(|f| !f.svg).cloned().map(Block::Figure));
    let mut sheets = Vec::new();
    for v in &report.variants {
        let set = &report.sets[v.set];
        let found =
            v.used.iter().chain(&v.runs).map(|&i| &set.runs[i]).find_map(|r| r.samples.as_ref().map(|p| (r, p)));
        let Some((run, path)) = found else { continue };
        let caption = format!("{} (run {}, seed {})", v.label, run.planned.id, run.planned.seed);
        sheets.push(Block::Image { alt: format!("samples of {}", v.label), path: path.clone(), caption });
    }
    let summary = "Each variant's own sample sheet (gray | predicted | truth)".to_string();
    doc.push(Block::Folded { summary, body: sheets });
}

/// A sweep's spec as the file reads now, and what each variant changed from its `[base]` as the plan
/// recorded it (command-line `--set` overrides included, which the spec's text does not show).
fn spec(set: &SweepResults, label: &str, doc: &mut Vec<Block>) {
    match &set.spec {
        Some(spec) => {
            doc.push(Block::Subsection(vec![
                Span::Text(format!("{label} ")),
                Span::Code(spec.path.display().to_string()),
            ]));
            doc.push(Block::Paragraph(text(
                "As the file reads now; the table below is what each variant changed when the runs were planned (with any --set overrides).",
            )));
            doc.push(Block::Code { text: spec.text.clone(), language: "toml" });
        }
        None => {
            doc.push(Block::Subsection(text(label)));
            doc.push(Block::Paragraph(text(format!("The spec ({}) could not be read.", set.index.spec))));
        }
    }
    let mut grid = Grid {
        header: vec!["variant".into(), "differs from [base]".into()],
        numeric: vec![false, false],
        ..Grid::default()
    };
    let mut seen: Vec<&str> = Vec::new();
    for run in &set.runs {
        if seen.contains(&run.planned.group.as_str()) {
            continue;
        }
        seen.push(&run.planned.group);
        let changed: Vec<String> = run.planned.changed.iter().map(|(k, v)| format!("{k} = {v}")).collect();
        grid.rows
            .push(vec![run.planned.variant.clone(), if changed.is_empty() { "-".into() } else { changed.join(", ") }]);
    }
    doc.push(Block::Table(grid));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Format;
    use crate::report::fixtures::fake_report;

    /// A plot and a sheet, as 1-pixel PNGs in `dir` (the page embeds them).
    fn figures(dir: &std::path::Path) -> Vec<Figure> {
        let figure = |stem: &str, svg| {
            image::RgbImage::new(1, 1).save(dir.join(format!("{stem}.png"))).unwrap();
            Figure {
                stem: stem.into(),
                title: format!("{stem} title"),
                caption: format!("{stem} caption"),
                svg,
                dir: dir.to_path_buf(),
            }
        };
        vec![figure("learning_curves", true), figure("comparison_sheet", false)]
    }

    fn section_ids(doc: &[Block]) -> Vec<String> {
        doc.iter().filter_map(|b| if let Block::Section { id, .. } = b { Some(id.clone()) } else { None }).collect()
    }

    #[test]
    fn the_full_document_has_every_section_once_in_order_and_its_contents_point_at_them() {
        let mut report = fake_report(3);
        report.notes.push("a caveat".into());
        let tmp = tempfile::tempdir().unwrap();
        let doc = document(&report, &figures(tmp.path()), Detail::Full);
        let ids = section_ids(&doc);
        assert_eq!(ids, ["ranking", "runs", "metrics", "metrics-other", "figures", "samples", "spec"]);
        let Some(Block::Contents(contents)) = doc.iter().find(|b| matches!(b, Block::Contents(_))) else {
            panic!("no contents")
        };
        assert!(contents.iter().all(|(id, _)| ids.contains(id)), "{contents:?} vs {ids:?}");
        // The notes come before the numbers, the plots in the figures, the comparison sheet in the samples.
        let at = |f: &dyn Fn(&Block) -> bool| doc.iter().position(f).unwrap();
        assert!(at(&|b| matches!(b, Block::Notes(_))) < at(&|b| matches!(b, Block::Section { .. })));
        let sheet = at(&|b| matches!(b, Block::Figure(f) if f.stem == "comparison_sheet"));
        let curves = at(&|b| matches!(b, Block::Figure(f) if f.stem == "learning_curves"));
        let section = |id: &str| at(&|b| matches!(b, Block::Section { id: i, .. } if i == id));
        assert!(section("figures") < curves && curves < section("samples") && section("samples") < sheet);
    }

    #[test]
    fn the_summary_keeps_the_ranking_and_leaves_out_the_detail() {
        let report = fake_report(3);
        let tmp = tempfile::tempdir().unwrap();
        let doc = document(&report, &figures(tmp.path()), Detail::Summary);
        // Every run is done, so the summary's only section is the ranking.
        assert_eq!(section_ids(&doc), ["ranking"]);
        let detail = |b: &Block| {
            matches!(
                b,
                Block::Contents(_) | Block::Figure(_) | Block::Image { .. } | Block::Code { .. } | Block::Folded { .. }
            )
        };
        assert!(!doc.iter().any(detail));
        assert_eq!(doc.iter().filter(|b| matches!(b, Block::Table(_))).count(), 1, "the ranked table alone");
    }

    /// What a hostile spec can put into a report: markup, a script, control characters, a formula.
    const HOSTILE: &str = "<img src=x onerror=alert(1)> [x](javascript:alert(1)) \x1b[2J =1+1 | **b** `c`";

    #[test]
    fn every_format_shows_hostile_names_and_descriptions_as_text() {
        let mut report = fake_report(2);
        report.sets[0].index.description = HOSTILE.into();
        report.notes.push(HOSTILE.into());
        for v in &mut report.variants {
            v.name = format!("{HOSTILE} {}", v.name);
            v.label = v.name.clone();
        }
        for run in &mut report.sets[0].runs {
            run.planned.variant = format!("{HOSTILE} {}", run.planned.variant);
        }
        let tmp = tempfile::tempdir().unwrap();
        let doc = document(&report, &figures(tmp.path()), Detail::Full);
        let md = Format::Markdown.renderer().render(&doc).unwrap();
        // Each `<`, `[`, `]` and `|` of the text is backslash-escaped.
        let raw = |needle: &str| md.match_indices(needle).any(|(i, _)| !md[..i].ends_with('\\'));
        assert!(!raw("<img") && !raw("](javascript") && !md.contains('\x1b'), "{md}");
        assert!(md.contains("\\<img src=x onerror=alert(1)\\>"), "the text is kept, escaped:\n{md}");
        let html = Format::Html.renderer().render(&doc).unwrap();
        assert!(!html.contains("<img src=x") && !html.contains('\x1b'), "{html}");
        assert!(html.contains("&lt;img src=x onerror=alert(1)&gt;"), "{html}");
    }

    #[test]
    fn only_http_addresses_become_links() {
        let link = Span::link("the paper", "https://arxiv.org/abs/1603.08511");
        assert_eq!(link, Span::Link { text: "the paper".into(), url: "https://arxiv.org/abs/1603.08511".into() });
        for url in [
            "javascript:alert(1)",
            "data:text/html,<b>",
            "file:///etc/passwd",
            "https://",
            "http://a b",
            "https://x\"onclick=\"y",
        ] {
            assert!(matches!(Span::link("t", url), Span::Text(_)), "{url}");
        }
        let doc = [Block::Paragraph(vec![Span::link("click", "javascript:alert(1)")])];
        for format in Format::ALL {
            let text = format.renderer().render(&doc).unwrap();
            assert!(!text.contains("href") && !text.contains("<javascript"), "{}: {text}", format.file_name());
        }
    }

    #[test]
    fn every_format_renders_the_sections_in_the_documents_order() {
        let report = fake_report(2);
        let tmp = tempfile::tempdir().unwrap();
        let doc = document(&report, &figures(tmp.path()), Detail::Full);
        let titles: Vec<String> = doc
            .iter()
            .filter_map(|b| if let Block::Section { title, .. } = b { Some(title.clone()) } else { None })
            .collect();
        for format in Format::ALL {
            let text = format.renderer().render(&doc).unwrap();
            let mut from = 0;
            for title in &titles {
                let found = text[from..].find(title.as_str());
                assert!(found.is_some(), "{}: {title} missing or out of order", format.file_name());
                from += found.unwrap() + title.len();
            }
        }
    }
}
