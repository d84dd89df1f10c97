//! `index.html`: the whole report on one self-contained page (no file or network it loads): tables,
//! every plot and sample sheet embedded as base64 PNG data URIs, the spec that produced the sweep,
//! the software version and the date. A small script marks images that fail to decode, visibly and
//! in `data-broken-images` on `<body>`, which the browser test reads.
//!
//! Base64 is written here (a dozen lines) rather than pulled in as a crate for one function.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result};

use super::document::{Block, Detail, Span};
use super::tables::Grid;
use super::{Figure, Renderer};

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

pub struct Html;

impl Renderer for Html {
    fn detail(&self) -> Detail {
        Detail::Full
    }

    fn render(&self, doc: &[Block]) -> Result<String> {
        let title = doc.iter().find_map(|b| if let Block::Title(t) = b { Some(t.as_str()) } else { None });
        let title = format!("Report: {}", title.unwrap_or("sweep"));
        let mut h = format!(
            "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n",
            esc(&title)
        );
        for block in doc {
            h.push_str(&render_block(block)?);
        }
        if let Some(p) = doc.iter().find_map(|b| if let Block::Provenance(p) = b { Some(p) } else { None }) {
            let _ = writeln!(h, "<p class=\"meta\">sweep {} · {}</p>", p.version, esc(&p.created));
        }
        let _ = writeln!(h, "<script>{SCRIPT}</script>\n</body>\n</html>");
        Ok(h)
    }
}

fn render_block(block: &Block) -> Result<String> {
    Ok(match block {
        Block::Title(title) => format!("<h1>Report: {}</h1>\n", esc(title)),
        Block::Meta(spans) => format!("<p class=\"meta\">{}</p>\n", spans_html(spans)),
        Block::Provenance(p) => {
            let sources: Vec<String> = p.sources.iter().map(|s| format!("<code>{}</code>", esc(s))).collect();
            format!(
                "<p class=\"meta\">Made {} by sweep {} from {}.</p>\n",
                esc(&p.created),
                p.version,
                sources.join(", ")
            )
        }
        Block::Contents(entries) => {
            let links: String =
                entries.iter().map(|(id, t)| format!("<a href=\"#{}\">{}</a>", esc(id), esc(t))).collect();
            format!("<nav>{links}</nav>\n")
        }
        Block::Notes(notes) => notes.iter().map(|n| format!("<p class=\"note\">{}</p>\n", esc(n))).collect(),
        Block::Section { id, title } => format!("<h2 id=\"{}\">{}</h2>\n", esc(id), esc(title)),
        Block::Subsection(spans) => format!("<h3>{}</h3>\n", spans_html(spans)),
        Block::Paragraph(spans) => format!("<p>{}</p>\n", spans_html(spans)),
        Block::Lines(lines) => format!("<pre>{}</pre>\n", esc(&lines.join("\n"))),
        Block::List(items) => {
            let items: String = items.iter().map(|i| format!("<li>{}</li>", esc(i))).collect();
            format!("<ul class=\"verdict\">{items}</ul>\n")
        }
        Block::Table(grid) => table(grid),
        Block::Folded { summary, body } => {
            let body = body.iter().map(render_block).collect::<Result<String>>()?;
            format!("<details><summary>{}</summary>\n{body}</details>\n", esc(summary))
        }
        Block::Figure(f) => figure(f)?,
        Block::Image { alt, path, caption } => format!(
            "<figure><img alt=\"{}\" src=\"{}\"><figcaption>{}</figcaption></figure>\n",
            esc(alt),
            data_uri(path)?,
            esc(caption)
        ),
        Block::Code { text, .. } => format!("<pre>{}</pre>\n", esc(text)),
    })
}

fn spans_html(spans: &[Span]) -> String {
    spans
        .iter()
        .map(|s| match s {
            Span::Text(t) => esc(t),
            Span::Code(t) => format!("<code>{}</code>", esc(t)),
            Span::Strong(t) => format!("<b>{}</b>", esc(t)),
            Span::Link { text, url } => format!("{} (<a href=\"{}\">{}</a>)", esc(text), esc(url), esc(url)),
        })
        .collect()
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

/// Escapes text for HTML content and attribute values: markup characters as entities, control
/// characters (which HTML does not allow) other than line breaks and tabs as U+FFFD. Every text of
/// the page goes through it; links are the document's, which makes them only of http(s) addresses.
fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\n' | '\t' => out.push(c),
            c if crate::terminal::is_unsafe(c) => out.push('\u{fffd}'),
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
        assert_eq!(esc("a\x1b[31m\u{202e}b\nc"), "a\u{fffd}[31m\u{fffd}b\nc");
    }
}
