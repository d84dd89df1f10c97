//! The bad-spec corpus: every file in tests/bad_specs/ must make `sweep plan` fail with exit code 2,
//! without a panic, and print each line the file announces in its `# expect:` comments.

use std::path::Path;
use std::process::Command;

#[test]
fn every_bad_spec_fails_clearly() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bad_specs");
    let mut files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    assert!(files.len() >= 20, "the corpus must hold at least 20 bad specs, found {}", files.len());
    let mut failures = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let expected: Vec<&str> = text.lines().filter_map(|l| l.strip_prefix("# expect: ")).collect();
        assert!(!expected.is_empty(), "{} announces no expected message", file.display());
        let out = Command::new(env!("CARGO_BIN_EXE_sweep")).arg("plan").arg(file).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        let name = file.file_name().unwrap().to_string_lossy();
        if out.status.code() != Some(2) {
            failures.push(format!("{name}: exit code {:?}, expected 2\n{stderr}", out.status.code()));
        }
        if stderr.contains("panicked") || stderr.contains("RUST_BACKTRACE") {
            failures.push(format!("{name}: panicked\n{stderr}"));
        }
        if !stderr.contains(&*name) && !stderr.contains("command line") {
            failures.push(format!("{name}: the error does not name the file\n{stderr}"));
        }
        for e in expected {
            if !stderr.contains(e) {
                failures.push(format!("{name}: missing `{e}` in\n{stderr}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
