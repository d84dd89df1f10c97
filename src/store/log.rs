//! A run's `log.txt`: the trainer's log lines and, since the local executor sends a `sweep exec`
//! child's stdout and stderr there, its process's own output (errors, panics). Appended to by every
//! attempt; an orchestrator reads what one attempt wrote from the length the file had before it.

use std::io::{Read, Seek, Write};
use std::path::Path;

use anyhow::{Context, Result};

pub const LOG_FILE: &str = "log.txt";

/// A line-oriented log: to stdout (unless quiet) and to the run's `log.txt`.
pub struct RunLog {
    file: Option<std::fs::File>,
    pub quiet: bool,
}

impl RunLog {
    pub fn open(run_dir: &Path, quiet: bool) -> RunLog {
        RunLog { file: append(run_dir).ok(), quiet }
    }

    pub fn line(&mut self, text: &str) {
        if !self.quiet {
            // The run's log lines carry names and paths from its config.
            println!("{}", crate::terminal::line(text));
        }
        if let Some(f) = &mut self.file {
            let _ = writeln!(f, "{text}");
        }
    }
}

/// `log.txt` opened for appending (created if missing): what a child process's output goes to.
pub fn append(run_dir: &Path) -> Result<std::fs::File> {
    let path = run_dir.join(LOG_FILE);
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))
}

/// The length of `log.txt` now (0 if there is none): where the next attempt's output will start.
pub fn len(run_dir: &Path) -> u64 {
    std::fs::metadata(run_dir.join(LOG_FILE)).map_or(0, |m| m.len())
}

/// What `log.txt` holds after `offset` (its last 64 KiB at most).
pub fn since(run_dir: &Path, offset: u64) -> String {
    let Ok(mut file) = std::fs::File::open(run_dir.join(LOG_FILE)) else { return String::new() };
    let len = file.metadata().map_or(0, |m| m.len());
    let start = offset.max(len.saturating_sub(64 * 1024));
    let mut bytes = Vec::new();
    if file.seek(std::io::SeekFrom::Start(start)).is_ok() {
        let _ = file.read_to_end(&mut bytes);
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_attempt_reads_back_what_followed_its_offset() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!((len(dir.path()), since(dir.path(), 0)), (0, String::new()));
        RunLog::open(dir.path(), true).line("first attempt");
        let offset = len(dir.path());
        writeln!(append(dir.path()).unwrap(), "error: second attempt").unwrap();
        assert_eq!(since(dir.path(), offset), "error: second attempt\n");
        assert_eq!(since(dir.path(), 0), "first attempt\nerror: second attempt\n");
    }
}
