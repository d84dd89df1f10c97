//! Atomic file writes: every file sweep writes (results, reports, colorized photos, contact sheets)
//! goes through [`write_atomic`], so that a reader or a crash never sees a half-written file.
//!
//! A leaf beside `rng` rather than part of `store`: the data layer (contact sheets) writes files too
//! and sits below the store, which reads the spec, which reads the data layer's types. It imports
//! nothing from the crate, so every layer may use it without an import going upwards.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Context;

/// Writes `bytes` to `path` atomically: first to a temporary file in the same folder ([`tmp_path`],
/// flushed to disk), then renamed over `path`, so that readers see either the old file or the
/// complete new one, never a half written one. Creates the parent folder if needed. On error the
/// temporary file is removed.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent).with_context(|| format!("cannot create folder {}", parent.display()))?;
    }
    let tmp = tmp_path(path);
    let result = (|| -> anyhow::Result<()> {
        let mut file = fs::File::create(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
        file.write_all(bytes).with_context(|| format!("cannot write {}", tmp.display()))?;
        file.sync_all().with_context(|| format!("cannot flush {}", tmp.display()))?;
        drop(file);
        fs::rename(&tmp, path).with_context(|| format!("cannot rename {} to {}", tmp.display(), path.display()))?;
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// `<path>.<pid>.<n>.tmp`: a temporary name for [`write_atomic`] that no other writer uses at the same
/// time (the process id and a count within the process), so that several processes or threads writing
/// the same file at once (runs starting together and caching the same file list) each rename a
/// complete file of their own instead of writing into one shared temporary file.
pub fn tmp_path(path: &Path) -> PathBuf {
    static WRITES: AtomicU64 = AtomicU64::new(0);
    let n = WRITES.fetch_add(1, Ordering::Relaxed);
    let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(format!(".{}.{n}.tmp", std::process::id()));
    path.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_atomic_replaces_and_leaves_no_tmp() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("a.txt");
        write_atomic(&path, b"one").unwrap();
        write_atomic(&path, b"two").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        let names: Vec<_> = fs::read_dir(path.parent().unwrap()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, ["a.txt"], "no temporary file is left");
    }

    #[test]
    fn concurrent_writers_of_one_file_each_publish_a_whole_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shared.txt");
        let contents: Vec<Vec<u8>> = (0..8u8).map(|t| vec![b'a' + t; 100_000]).collect();
        std::thread::scope(|s| {
            for c in &contents {
                s.spawn(|| (0..20).for_each(|_| write_atomic(&path, c).unwrap()));
            }
        });
        assert!(contents.contains(&fs::read(&path).unwrap()), "the file is one writer's whole content");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1, "no temporary file is left");
    }

    #[test]
    fn write_atomic_into_a_file_as_folder_fails_cleanly() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("file");
        fs::write(&blocker, b"x").unwrap();
        let err = write_atomic(&blocker.join("a.txt"), b"y").unwrap_err();
        assert!(format!("{err:#}").contains("file"), "{err:#}");
    }
}
