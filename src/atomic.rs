//! Atomic file writes: every file sweep writes (results, reports, colorized photos, contact sheets)
//! goes through [`write_atomic`], so that a reader or a crash never sees a half-written file.
//!
//! A leaf beside `rng` rather than part of `store`: the data layer (contact sheets) writes files too
//! and sits below the store, which reads the spec, which reads the data layer's types. It imports
//! nothing from the crate, so every layer may use it without an import going upwards.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;

/// Writes `bytes` to `path` atomically: first to `<path>.tmp` in the same folder (flushed to disk), then
/// renamed over `path`, so that readers see either the old file or the complete new one, never a half
/// written one. Creates the parent folder if needed. On error the temporary file is removed.
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

/// `<path>.tmp`: the temporary name [`write_atomic`] uses.
pub fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".tmp");
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
        assert!(!tmp_path(&path).exists());
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
