//! `index.html`: the whole report on one self-contained page (no file or network it loads): tables,
//! every plot and sample sheet embedded as base64 PNG data URIs, the spec that produced the sweep,
//! the software version and the date. A small script marks images that fail to decode, visibly and
//! in `data-broken-images` on `<body>`, which the browser test reads.
//!
//! Base64 is written here (a dozen lines) rather than pulled in as a crate for one function.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::tables::{self, Grid};
use super::{Figure, Report, reference};
use crate::atomic::write_atomic;

pub const HTML_FILE: &str = "index.html";

const STYLE: &str = r#"
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; color: #222;
       max-width: 1500px; margin: 0 auto; padding: 0 24px 48px; }
h1 { margin: 24px 0 4px; } h2 { margin-top: 36px; border-bottom: 1px solid #ddd; padding-bottom: 4px; }
.meta { color: #555; margin: 0; }
nav a { margin-right: 14px; }
table { border-collapse: collapse; margin: 12px 0; font-variant-numeric: tabular-nums; }
th, td { padding: 4px 10px; border-bottom: 1px solid #e4e4e4; text-align: left; white-space: nowrap; }
th { background: #f5f5f5; position: sticky; top: 0; }
td.num, th.num { text-align: right; }
tr.best td { background: #e7f5ea; font-weight: 600; }
.scroll { overflow-x: auto; }
figure { margin: 20px 0; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { color: #444; max-width: 1100px; }
pre { background: #f7f7f7; padding: 12px; overflow-x: auto; font-size: 13px; }
.note { background: #fff8e1; border-left: 4px solid #f2b100; padding: 6px 10px; margin: 6px 0; }
.error { background: #fdecea; border-left: 4px solid #d93025; padding: 6px 10px; }
.verdict { margin: 4px 0; }
"#;

/// Marks images that did not decode: visibly, and on `<body>` for tests.
const SCRIPT: &str = r#"
window.addEventListener('load', function () {
  var broken = [];
  for (var i = 0; i < document.images.length; i++) {
    var img = document.images[i];
    if (!img.complete || img.naturalWidth === 0) { broken.push(img.alt); }
  }
  document.body.setAttribute('data-images', String(document.images.length));
  document.body.setAttribute('data-broken-images', String(broken.length));
  if (broken.length > 0) {
    var p = document.createElement('p');
    p.className = 'error';
    p.textContent = 'Images that failed to load: ' + broken.join(', ');
    document.body.insertBefore(p, document.body.firstChild);
  }
});
"#;

pub fn write(report: &Report, out: &Path, figures: &[Figure]) -> Result<PathBuf> {
    let path = out.join(HTML_FILE);
    write_atomic(&path, render(report, figures)?.as_bytes())?;
    Ok(path)
}

fn render(report: &Report, figures: &[Figure]) -> Result<String> {
    let title = format!("Report: {}", report.title());
    let mut h = String::new();
    let _ = write!(
        h,
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<h1>{}</h1>\n",
        esc(&title),
        esc(&title)
    );
    for (set, label) in report.sets.iter().zip(&report.labels) {
        if !set.index.description.is_empty() {
            let _ = writeln!(h, "<p class=\"meta\"><b>{}</b>: {}</p>", esc(label), esc(&set.index.description));
        }
    }
    let sources: Vec<String> =
        report.sets.iter().map(|s| format!("<code>{}</code>", esc(&s.dir.display().to_string()))).collect();
    let _ = writeln!(
        h,
        "<p class=\"meta\">Made {} by sweep {} from {}. {}.</p>\n<p class=\"meta\">{}.</p>",
        esc(&report.created),
        env!("CARGO_PKG_VERSION"),
        sources.join(", "),
        esc(&tables::run_counts(report)),
        esc(&report.basis())
    );
    let comparisons = reference::for_report(report);
    let across = tables::across_sweeps(report);
    let evaluations = tables::evaluations(report);
    let mut nav = vec![("ranking", "Ranking"), ("runs", "Runs"), ("metrics", "Every metric")];
    if !comparisons.is_empty() {
        nav.push(("references", "Published references"));
    }
    if evaluations.is_some() {
        nav.push(("evaluations", "Evaluations"));
    }
    if across.is_some() {
        nav.push(("across", "Across sweeps"));
    }
    nav.extend([("figures", "Figures"), ("samples", "Sample sheets"), ("spec", "Spec")]);
    let links: Vec<String> = nav.iter().map(|(id, name)| format!("<a href=\"#{id}\">{name}</a>")).collect();
    let _ = writeln!(h, "<nav>{}</nav>", links.join(""));

    for note in &report.notes {
        let _ = writeln!(h, "<p class=\"note\">{}</p>", esc(note));
    }

    let _ = writeln!(h, "<h2 id=\"ranking\">Ranking</h2>\n{}", table(&tables::ranked(report, false)));
    let _ = writeln!(h, "<pre>{}</pre>", esc(&tables::summary_lines(report).join("\n")));

    let _ = writeln!(h, "<h2 id=\"runs\">Runs</h2>");
    let runs = table(&tables::runs(report));
    if tables::all_done(report) {
        let _ = writeln!(
            h,
            "<details><summary>Every run is done ({}).</summary>\n{runs}</details>",
            esc(&tables::run_counts(report))
        );
    } else {
        let _ = writeln!(
            h,
            "<p>Not every run is done: unfinished runs count only for variants without a finished run (marked partial), failed runs never.</p>\n{runs}"
        );
    }

    let _ = writeln!(h, "<h2 id=\"metrics\">Every metric</h2>");
    for at in [report.at, report.at.other()] {
        let _ = writeln!(h, "<h3>At each run's {} epoch</h3>\n{}", at.name(), table(&tables::metrics(report, at)));
    }

    if !comparisons.is_empty() {
        let _ = writeln!(h, "<h2 id=\"references\">Published references</h2>");
        for (set, c) in &comparisons {
            let source = match &c.url {
                Some(url) => format!("{} (<a href=\"{}\">{}</a>)", esc(&c.citation), esc(url), esc(url)),
                None => esc(&c.citation),
            };
            let _ = writeln!(h, "<h3>{}</h3>\n<p>Source: {source}</p>\n{}", esc(&report.labels[*set]), table(&c.table));
            for v in &c.verdicts {
                let _ = writeln!(h, "<p class=\"verdict\">{}</p>", esc(&v.line));
            }
            if !c.claims.is_empty() {
                let items: String = c.claims.iter().map(|c| format!("<li>{}</li>", esc(&c.line))).collect();
                let _ = writeln!(h, "<p>Published claims:</p>\n<ul class=\"verdict\">{items}</ul>");
            }
            let pairs = reference::pairs_table(&c.verdicts);
            if !pairs.rows.is_empty() {
                let _ = writeln!(h, "<details><summary>Every pair</summary>\n{}</details>", table(&pairs));
            }
        }
    }
    if let Some(grid) = &evaluations {
        let _ = writeln!(
            h,
            "<h2 id=\"evaluations\">Evaluations on other data sets</h2>\n<p><code>sweep eval</code> results of trained runs, each beside the run's last training epoch.</p>\n{}",
            table(grid)
        );
    }
    if let Some(grid) = &across {
        let _ = writeln!(h, "<h2 id=\"across\">Across sweeps</h2>\n{}", table(grid));
    }

    let _ = writeln!(h, "<h2 id=\"figures\">Figures</h2>");
    for f in figures.iter().filter(|f| f.svg) {
        h.push_str(&figure(f)?);
    }
    let _ = writeln!(h, "<h2 id=\"samples\">Sample sheets</h2>");
    for f in figures.iter().filter(|f| !f.svg) {
        h.push_str(&figure(f)?);
    }
    h.push_str(&run_samples(report)?);

    let _ = writeln!(h, "<h2 id=\"spec\">Spec</h2>");
    for (set, label) in report.sets.iter().zip(&report.labels) {
        match &set.spec {
            Some(spec) => {
                let _ = writeln!(
                    h,
                    "<h3>{} <code>{}</code></h3>\n<p>As the file reads now; the table below is what each variant changed when the runs were planned (with any --set overrides).</p>\n<pre>{}</pre>",
                    esc(label),
                    esc(&spec.path.display().to_string()),
                    esc(&spec.text)
                );
            }
            None => {
                let _ = writeln!(
                    h,
                    "<h3>{}</h3>\n<p>The spec ({}) could not be read.</p>",
                    esc(label),
                    esc(&set.index.spec)
                );
            }
        }
        h.push_str(&changes(set));
    }
    let _ = writeln!(
        h,
        "<p class=\"meta\">sweep {} · {}</p>\n<script>{SCRIPT}</script>\n</body>\n</html>",
        env!("CARGO_PKG_VERSION"),
        esc(&report.created)
    );
    Ok(h)
}

/// What each variant of a sweep changes from the spec's `[base]`, as the plan recorded it (command-line
/// `--set` overrides included, which the spec's text does not show).
fn changes(set: &super::load::SweepResults) -> String {
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
    table(&grid)
}

/// Each variant's own sample sheet (gray | predicted | truth), folded away.
fn run_samples(report: &Report) -> Result<String> {
    let mut h =
        String::from("<details><summary>Each variant's own sample sheet (gray | predicted | truth)</summary>\n");
    for v in &report.variants {
        let set = &report.sets[v.set];
        let found =
            v.used.iter().chain(&v.runs).map(|&i| &set.runs[i]).find_map(|r| r.samples.as_ref().map(|p| (r, p)));
        let Some((run, path)) = found else { continue };
        let alt = format!("samples of {}", v.label);
        let _ = writeln!(
            h,
            "<figure><img alt=\"{}\" src=\"{}\"><figcaption>{} (run {}, seed {})</figcaption></figure>",
            esc(&alt),
            data_uri(path)?,
            esc(&v.label),
            esc(&run.planned.id),
            run.planned.seed
        );
    }
    h.push_str("</details>\n");
    Ok(h)
}

fn figure(f: &Figure) -> Result<String> {
    let svg = if f.svg { format!(" <a href=\"{}.svg\">SVG</a>", esc(&f.stem)) } else { String::new() };
    Ok(format!(
        "<figure id=\"{}\"><h3>{}</h3><img alt=\"{}\" src=\"{}\"><figcaption>{}{svg}</figcaption></figure>\n",
        esc(&f.stem),
        esc(&f.title),
        esc(&f.title),
        data_uri(&f.png())?,
        esc(&f.caption)
    ))
}

fn data_uri(png: &Path) -> Result<String> {
    let bytes = std::fs::read(png).with_context(|| format!("cannot read {} to embed it", png.display()))?;
    Ok(format!("data:image/png;base64,{}", base64(&bytes)))
}

fn table(grid: &Grid) -> String {
    let cell = |tag: &str, text: &str, numeric: bool| {
        let class = if numeric { " class=\"num\"" } else { "" };
        format!("<{tag}{class}>{}</{tag}>", esc(text))
    };
    let mut h = String::from("<div class=\"scroll\"><table>\n<thead><tr>");
    for (i, name) in grid.header.iter().enumerate() {
        h.push_str(&cell("th", name, grid.numeric.get(i).copied().unwrap_or(false)));
    }
    h.push_str("</tr></thead>\n<tbody>\n");
    for (r, row) in grid.rows.iter().enumerate() {
        h.push_str(if grid.highlight == Some(r) { "<tr class=\"best\">" } else { "<tr>" });
        for (i, text) in row.iter().enumerate() {
            h.push_str(&cell("td", text, grid.numeric.get(i).copied().unwrap_or(false)));
        }
        h.push_str("</tr>\n");
    }
    h.push_str("</tbody></table></div>\n");
    h
}

/// Escapes text for HTML content and attribute values.
fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Standard base64 (RFC 4648) with padding.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], chunk.get(1).copied().unwrap_or(0), chunk.get(2).copied().unwrap_or(0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc_4648_vectors() {
        for (plain, encoded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(plain.as_bytes()), encoded);
        }
        assert_eq!(base64(&[0xff, 0xfe, 0x00]), "//4A");
    }

    #[test]
    fn text_is_escaped() {
        assert_eq!(esc("<b a=\"x\">&'"), "&lt;b a=&quot;x&quot;&gt;&amp;&#39;");
    }
}
