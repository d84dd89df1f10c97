//! Hostile input to every output: what a spec or a results file says (names, descriptions,
//! citations, reasons) reaches the terminal, report.md, index.html and summary.csv as text, never as
//! markup, a script, a formula or a terminal control sequence; a results folder given where a
//! sweep's is expected is explained. (The bad-spec corpus, tests/bad_specs/, has what `plan` refuses.)

mod common;

use common::{Sweep, text};

const SCRIPT: &str = "<script>alert(1)</script>";
const IMG: &str = "<img src=x onerror=alert(1)>";

fn hostile_sweep() -> Sweep {
    let sweep = format!(
        "description = \"{SCRIPT} [click](javascript:alert(1)) # not a heading\\u001b[2J\"\nseeds = [0]\nmetric = \"psnr\"\nmax_retries = 0\n"
    );
    let rest = format!(
        r#"[[variant]]
name = "{IMG}"
epochs = 1

[[variant]]
name = "=HYPERLINK(""evil"")"
epochs = 1
lr = 0.01

[reference]
citation = "{SCRIPT} *bold* | pipe"
url = "https://example.org/paper?a=1&b=2"
[[reference.claim]]
says = "{IMG} wins"
metric = "psnr"
above = "{IMG}"
below = "=HYPERLINK(""evil"")"
"#
    )
    .replace("\"\"evil\"\"", "\\\"evil\\\"");
    Sweep::new("hostile", &sweep, "", &rest)
}

#[test]
fn every_output_shows_hostile_text_as_text() {
    let s = hostile_sweep();
    let out = s.run(&[]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(!text(&out).contains('\x1b'), "sweep run printed a control character: {:?}", text(&out));
    let reports = s.tmp.path().join("reports");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sweep"))
        .args(["report", s.dir.to_str().unwrap(), "-o", reports.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let terminal = text(&out);
    assert!(!terminal.contains('\x1b') && terminal.contains("\\u{1b}[2J"), "{terminal:?}");

    let whole = std::fs::read_to_string(reports.join("report.md")).unwrap();
    // The spec is quoted verbatim in a fenced code block at the end, where Markdown reads no markup.
    let (md, spec) = whole.split_at(whole.find("## Spec").unwrap());
    assert!(spec.contains("```toml\n") && spec.contains(SCRIPT), "{spec}");
    let raw = |needle: &str| md.match_indices(needle).any(|(i, _)| !md[..i].ends_with('\\'));
    for needle in ["<script", "<img", "](javascript", "*bold*", "| pipe"] {
        assert!(!raw(needle), "report.md has {needle} unescaped:\n{md}");
    }
    assert!(!md.contains('\x1b') && md.contains("<https://example.org/paper?a=1&b=2>"), "{md}");

    let html = std::fs::read_to_string(reports.join("index.html")).unwrap();
    assert!(!html.contains(SCRIPT) && !html.contains(IMG) && !html.contains("href=\"javascript"), "{html}");
    assert!(html.contains("&lt;img src=x onerror=alert(1)&gt;") && !html.contains('\x1b'), "index.html");
    assert!(html.contains("href=\"https://example.org/paper?a=1&amp;b=2\""), "the http(s) link stays a link");

    let mut csv = csv::Reader::from_path(reports.join("summary.csv")).unwrap();
    let variants: Vec<String> = csv.records().map(|r| r.unwrap()[1].to_string()).collect();
    assert!(variants.contains(&"'=HYPERLINK(\"evil\")".to_string()), "{variants:?}");
    assert!(variants.iter().all(|v| !v.starts_with(['=', '+', '-', '@'])), "{variants:?}");
}

#[test]
fn a_damaged_status_cannot_drive_the_terminal() {
    let s = Sweep::new("status-ctrl", "seeds = [0]", "epochs = 1", "");
    assert!(s.run(&[]).status.success());
    let dir = &s.run_dirs()[0];
    let mut status = sweep::store::status::RunStatus::read(dir).unwrap().unwrap();
    status.state = sweep::store::status::State::Failed;
    status.reason = Some("boom\x1b]0;pwned\x07\x1b[2J".into());
    status.variant = "v\x1b[31m".into();
    status.write(dir).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sweep"))
        .args(["status", s.dir.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(!text(&out).contains('\x1b') && !text(&out).contains('\x07'), "{:?}", text(&out));
    assert!(text(&out).contains("boom\\u{1b}]0;pwned"), "{}", text(&out));
}

#[test]
fn a_results_root_is_explained_with_its_sweeps() {
    let s = Sweep::new("root-a", "seeds = [0]", "epochs = 1", "");
    assert!(s.run(&[]).status.success());
    for command in ["report", "status"] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_sweep"))
            .args([command, s.results.to_str().unwrap()])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains("is a results folder, not a sweep's: it holds the sweep \"root-a\""), "{stderr}");
        assert!(stderr.contains(&format!("`sweep {command} {}`", s.dir.display())), "{stderr}");
    }
}

#[test]
fn a_spec_that_never_ends_is_refused() {
    for path in ["/dev/zero", "/dev/urandom"] {
        let started = std::time::Instant::now();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_sweep")).args(["plan", path]).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{}", text(&out));
        assert!(text(&out).contains(&format!("cannot read spec {path}")), "{}", text(&out));
        assert!(started.elapsed().as_secs() < 20);
    }
}
