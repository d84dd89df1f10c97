//! Downloading the CIFAR-10 / CIFAR-100 binary archives: resumable, checksummed, unpacked atomically.
//!
//! [`fetch`] downloads `cifar-10-binary.tar.gz` or `cifar-100-binary.tar.gz` from the official page
//! (<https://www.cs.toronto.edu/~kriz/cifar.html>) or a mirror (the `base_url` argument, else the
//! `SWEEP_CIFAR_MIRROR` environment variable: a URL prefix to which `/<archive name>` is appended), checks
//! it against the MD5 published on that page, and unpacks it into `dir`:
//!
//! 1. If `dir/<folder>` already holds a complete data set (every file present, data files sized in whole
//!    records), nothing is downloaded.
//! 2. The archive is downloaded to `dir/<archive>.part`. An existing `.part` file (from an interrupted
//!    run, or a connection cut during this one) is resumed with an HTTP `Range` request; a server that
//!    ignores `Range` (answers 200) restarts the download from the start. Connection errors are retried a
//!    few times, each retry resuming where the previous one stopped. A progress bar shows on stderr when it
//!    is a terminal.
//! 3. The MD5 of the complete file is compared with the expected one. On a mismatch the `.part` file is
//!    deleted and the call fails: no half-written data set is left behind.
//! 4. The archive is unpacked into a temporary folder inside `dir`, checked, and renamed to
//!    `dir/<folder>` in one step; the archive and the temporary folder are then removed.
//!
//! [`fetch_from`] is the same with an explicit URL and checksum (tests use it with a local server).

use std::fs::{self, File, OpenOptions};
use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use md5::{Digest, Md5};

use super::DatasetKind;
use super::cifar::{self, Layout};

/// Where the official archives live.
pub const DEFAULT_BASE_URL: &str = "https://www.cs.toronto.edu/~kriz";

/// Environment variable naming a mirror (URL prefix) used when no `base_url` is given.
pub const MIRROR_ENV: &str = "SWEEP_CIFAR_MIRROR";

/// Download attempts (the first plus retries) before giving up on a flaky connection.
const ATTEMPTS: u32 = 5;

/// One downloadable archive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Archive {
    /// The data set it holds.
    pub kind: DatasetKind,
    /// File name on the server.
    pub file_name: &'static str,
    /// MD5 published on <https://www.cs.toronto.edu/~kriz/cifar.html>, lower-case hex.
    pub md5: &'static str,
}

/// The CIFAR-10 binary archive.
pub const CIFAR10_ARCHIVE: Archive = Archive {
    kind: DatasetKind::Cifar10,
    file_name: "cifar-10-binary.tar.gz",
    md5: "c32a1d4ab5d03f1284b67883e8d87530",
};

/// The CIFAR-100 binary archive.
pub const CIFAR100_ARCHIVE: Archive = Archive {
    kind: DatasetKind::Cifar100,
    file_name: "cifar-100-binary.tar.gz",
    md5: "03b5dce01913d631647c71ecec9e9cb8",
};

/// The archive of `kind`, or `None` for kinds that cannot be downloaded.
pub fn archive(kind: DatasetKind) -> Option<&'static Archive> {
    match kind {
        DatasetKind::Cifar10 => Some(&CIFAR10_ARCHIVE),
        DatasetKind::Cifar100 => Some(&CIFAR100_ARCHIVE),
        DatasetKind::Synthetic | DatasetKind::Folder => None,
    }
}

fn downloadable(kind: DatasetKind) -> anyhow::Result<(&'static Archive, &'static Layout)> {
    match (archive(kind), cifar::layout(kind)) {
        (Some(a), Some(l)) => Ok((a, l)),
        (None, _) | (_, None) => bail!("only cifar10 and cifar100 can be downloaded, not {}", kind.name()),
    }
}

/// The URL `fetch` downloads `kind` from, given the optional mirror (else `SWEEP_CIFAR_MIRROR`, else the
/// official host).
pub fn archive_url(kind: DatasetKind, base_url: Option<&str>) -> anyhow::Result<String> {
    let (archive, _) = downloadable(kind)?;
    let env = std::env::var(MIRROR_ENV).ok().filter(|s| !s.trim().is_empty());
    let base = base_url.map(str::to_string).or(env).unwrap_or_else(|| DEFAULT_BASE_URL.to_string());
    Ok(format!("{}/{}", base.trim().trim_end_matches('/'), archive.file_name))
}

/// Downloads and unpacks CIFAR-10 or CIFAR-100 into `dir` (see the module doc) and returns the unpacked
/// folder (`dir/cifar-10-batches-bin` or `dir/cifar-100-binary`). `base_url` replaces the official
/// host (`https://www.cs.toronto.edu/~kriz`); the archive is always checked against the published MD5.
pub fn fetch(kind: DatasetKind, dir: &Path, base_url: Option<&str>) -> anyhow::Result<PathBuf> {
    let (archive, _) = downloadable(kind)?;
    fetch_from(kind, dir, &archive_url(kind, base_url)?, archive.md5)
}

/// [`fetch`] with an explicit archive URL and expected MD5 (lower- or upper-case hex).
pub fn fetch_from(kind: DatasetKind, dir: &Path, url: &str, md5_hex: &str) -> anyhow::Result<PathBuf> {
    let (archive, layout) = downloadable(kind)?;
    let expected = md5_hex.trim().to_ascii_lowercase();
    if expected.len() != 32 || !expected.bytes().all(|b| b.is_ascii_hexdigit()) {
        bail!("expected MD5 {md5_hex:?} is not 32 hex digits");
    }
    let final_dir = dir.join(layout.folder);
    if layout.check_folder(&final_dir).is_ok() {
        return Ok(final_dir);
    }
    let created = !dir.exists();
    fs::create_dir_all(dir).with_context(|| format!("cannot create folder {}", dir.display()))?;
    let part = dir.join(format!("{}.part", archive.file_name));
    let result = download_verify_unpack(layout, url, &expected, dir, &part, &final_dir);
    if result.is_err() && fs::metadata(&part).is_ok_and(|m| m.len() == 0) {
        let _ = fs::remove_file(&part);
    }
    if result.is_err() && created {
        // Leave nothing behind: the folder was ours and holds nothing useful.
        let _ = fs::remove_dir(dir);
    }
    result
}

fn download_verify_unpack(
    layout: &Layout,
    url: &str,
    expected: &str,
    dir: &Path,
    part: &Path,
    final_dir: &Path,
) -> anyhow::Result<PathBuf> {
    download(url, part, expected)?;
    let actual = md5_file(part)?;
    if actual != expected {
        let _ = fs::remove_file(part);
        bail!(
            "checksum mismatch for {url}: expected MD5 {expected}, got {actual}; the download was deleted and \
             nothing was unpacked (a corrupt transfer or a wrong mirror: try again, or another mirror)"
        );
    }
    let unpacked = unpack(layout, part, dir, final_dir);
    // The archive is not needed any more, whether unpacking worked or not (a verified archive that does
    // not unpack would not unpack next time either).
    let _ = fs::remove_file(part);
    unpacked?;
    Ok(final_dir.to_path_buf())
}

/// MD5 of a file as lower-case hex.
pub fn md5_file(path: &Path) -> anyhow::Result<String> {
    let mut file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut hasher = Md5::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).with_context(|| format!("cannot read {}", path.display()))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

fn progress_bar() -> ProgressBar {
    let target =
        if std::io::stderr().is_terminal() { ProgressDrawTarget::stderr() } else { ProgressDrawTarget::hidden() };
    let bar = ProgressBar::with_draw_target(None, target);
    if let Ok(style) = ProgressStyle::with_template("{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

/// How one attempt ended.
enum Attempt {
    /// The whole file is in `part`.
    Complete,
    /// Worth another try (connection cut, server error, range mismatch): the reason.
    Retry(anyhow::Error),
}

/// Downloads `url` into `part`, resuming what is there; retries a few times on connection problems.
fn download(url: &str, part: &Path, expected_md5: &str) -> anyhow::Result<()> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_connect(Some(Duration::from_secs(30)))
        .timeout_per_read(Some(Duration::from_secs(60)))
        .build()
        .into();
    let bar = progress_bar();
    bar.set_message(
        part.file_name().map(|n| n.to_string_lossy().trim_end_matches(".part").to_string()).unwrap_or_default(),
    );
    let mut last = None;
    for attempt in 0..ATTEMPTS {
        if attempt > 0 {
            std::thread::sleep(Duration::from_millis(250 << (attempt - 1).min(4)));
        }
        match download_once(&agent, url, part, expected_md5, &bar)? {
            Attempt::Complete => {
                bar.finish_and_clear();
                return Ok(());
            }
            Attempt::Retry(e) => last = Some(e),
        }
    }
    bar.abandon();
    let e = last.unwrap_or_else(|| anyhow!("no attempt made"));
    let kept = fs::metadata(part).map(|m| m.len()).unwrap_or(0);
    let resume = if kept > 0 {
        format!("; the {kept} bytes received are kept in {} and the next run resumes from there", part.display())
    } else {
        String::new()
    };
    Err(e.context(format!("download of {url} failed after {ATTEMPTS} attempts{resume}")))
}

fn header<'a>(resp: &'a ureq::http::Response<ureq::Body>, name: &str) -> Option<&'a str> {
    resp.headers().get(name).and_then(|v| v.to_str().ok())
}

/// Start offset of a `Content-Range: bytes START-END/TOTAL` header.
fn content_range_start(value: &str) -> Option<u64> {
    value.trim().strip_prefix("bytes")?.trim().split('-').next()?.trim().parse().ok()
}

fn download_once(
    agent: &ureq::Agent,
    url: &str,
    part: &Path,
    expected_md5: &str,
    bar: &ProgressBar,
) -> anyhow::Result<Attempt> {
    let offset = fs::metadata(part).map(|m| m.len()).unwrap_or(0);
    let mut request = agent.get(url).header("Accept-Encoding", "identity");
    if offset > 0 {
        request = request.header("Range", format!("bytes={offset}-"));
    }
    let resp = match request.call() {
        Ok(resp) => resp,
        Err(e) => {
            return Ok(Attempt::Retry(anyhow!(e).context(format!("cannot reach {url}"))));
        }
    };
    let status = resp.status().as_u16();
    let length = header(&resp, "content-length").and_then(|v| v.trim().parse::<u64>().ok());
    let (mut file, start) = match status {
        206 if offset > 0 => {
            if header(&resp, "content-range").and_then(content_range_start) != Some(offset) {
                // The server sent some other range: start over rather than guess.
                fs::remove_file(part).with_context(|| format!("cannot remove {}", part.display()))?;
                return Ok(Attempt::Retry(anyhow!("{url}: the server answered a different byte range than asked")));
            }
            let file = OpenOptions::new()
                .append(true)
                .open(part)
                .with_context(|| format!("cannot open {}", part.display()))?;
            (file, offset)
        }
        200 | 206 => {
            // A fresh download, or a server that ignores Range: (re)write from the start.
            (File::create(part).with_context(|| format!("cannot create {}", part.display()))?, 0)
        }
        416 if offset > 0 => {
            // Nothing past our offset: either the file is complete already, or it is longer than the
            // server's copy. The checksum decides; otherwise start over.
            if md5_file(part)? == expected_md5 {
                return Ok(Attempt::Complete);
            }
            fs::remove_file(part).with_context(|| format!("cannot remove {}", part.display()))?;
            return Ok(Attempt::Retry(anyhow!("{url}: the partial download was longer than the file; starting over")));
        }
        500..=599 => return Ok(Attempt::Retry(anyhow!("{url}: server error HTTP {status}"))),
        _ => bail!("download of {url} failed: HTTP {status}"),
    };
    bar.set_length(length.map(|l| l + start).unwrap_or(0));
    bar.set_position(start);
    let mut reader = resp.into_body().into_reader();
    let mut buf = vec![0u8; 1 << 16];
    let mut received = 0u64;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                file.flush().ok();
                return Ok(Attempt::Retry(
                    anyhow!(e).context(format!("connection to {url} lost after {} bytes", start + received)),
                ));
            }
        };
        file.write_all(&buf[..n]).with_context(|| format!("cannot write {}", part.display()))?;
        received += n as u64;
        bar.set_position(start + received);
    }
    file.sync_all().with_context(|| format!("cannot write {}", part.display()))?;
    if let Some(len) = length
        && received < len
    {
        return Ok(Attempt::Retry(anyhow!("connection to {url} closed after {received} of {len} bytes")));
    }
    Ok(Attempt::Complete)
}

/// Unpacks the verified archive `archive` into a temporary folder in `dir`, checks it holds `layout`, and
/// renames it to `final_dir` (replacing an incomplete folder there).
fn unpack(layout: &Layout, archive: &Path, dir: &Path, final_dir: &Path) -> anyhow::Result<()> {
    let tmp = dir.join(format!(".{}.unpack-{}", layout.folder, std::process::id()));
    let result = (|| -> anyhow::Result<()> {
        if tmp.exists() {
            fs::remove_dir_all(&tmp).with_context(|| format!("cannot remove {}", tmp.display()))?;
        }
        fs::create_dir_all(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
        let file = File::open(archive).with_context(|| format!("cannot open {}", archive.display()))?;
        let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(std::io::BufReader::new(file)));
        tar.unpack(&tmp).with_context(|| format!("cannot unpack {}", archive.display()))?;
        let unpacked = tmp.join(layout.folder);
        layout
            .check_folder(&unpacked)
            .with_context(|| format!("{} does not hold the expected {}/ folder", archive.display(), layout.folder))?;
        if final_dir.exists() {
            // An incomplete earlier copy: move it aside (one rename), move the new one in, delete the old.
            let old = tmp.join("previous");
            fs::rename(final_dir, &old).with_context(|| format!("cannot move aside {}", final_dir.display()))?;
        }
        fs::rename(&unpacked, final_dir)
            .with_context(|| format!("cannot rename {} to {}", unpacked.display(), final_dir.display()))?;
        Ok(())
    })();
    let _ = fs::remove_dir_all(&tmp);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_range_parses_the_start() {
        assert_eq!(content_range_start("bytes 100-199/200"), Some(100));
        assert_eq!(content_range_start("bytes */200"), None);
    }

    #[test]
    fn urls_use_the_mirror_and_published_names() {
        assert_eq!(
            archive_url(DatasetKind::Cifar100, Some("http://127.0.0.1:9/x/")).unwrap(),
            "http://127.0.0.1:9/x/cifar-100-binary.tar.gz"
        );
        assert!(archive_url(DatasetKind::Synthetic, None).is_err());
        assert_eq!(CIFAR10_ARCHIVE.md5.len(), 32);
    }
}
