//! Lock files that keep two processes off the same work: `results/<sweep>/sweep.lock` (one
//! orchestrator per sweep), `<run>/exec.lock` (one trainer per run) and the pretraining cache's
//! `lock` (one pretraining per backbone).
//!
//! The lock is an advisory `flock` on the file, not the file's existence: the kernel drops it when
//! its holder dies, however it dies, so a lock left by a killed process is free to take over and a
//! recycled pid can never keep it alive. The file holds the holder's pid only to name it in messages.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use super::protocol::RunBusy;

/// A held lock; released (and its file removed) when dropped.
#[derive(Debug)]
pub struct LockFile {
    path: PathBuf,
    file: File,
    /// The pid left in the file by a holder that died without releasing it.
    pub stale_pid: Option<u32>,
}

/// Who holds a lock that could not be taken.
#[derive(Debug)]
pub struct Held {
    pub pid: Option<u32>,
}

impl LockFile {
    /// Takes the lock at `path` if no live process holds it.
    pub fn try_acquire(path: &Path) -> Result<std::result::Result<LockFile, Held>> {
        // A holder removes the file before releasing it, so whoever opened the old file and gets the
        // lock afterwards finds the path gone or replaced and tries again with the new file.
        for _ in 0..10 {
            let mut file = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(path)
                .with_context(|| format!("cannot create the lock file {}", path.display()))?;
            if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
                let err = std::io::Error::last_os_error();
                if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
                    return Ok(Err(Held { pid: read_pid(&mut file) }));
                }
                return Err(err).with_context(|| format!("cannot lock {}", path.display()));
            }
            let same = match (file.metadata(), std::fs::metadata(path)) {
                (Ok(a), Ok(b)) => a.ino() == b.ino() && a.dev() == b.dev(),
                _ => false,
            };
            if !same {
                continue;
            }
            let stale_pid = read_pid(&mut file);
            file.set_len(0)
                .and_then(|_| file.rewind())
                .and_then(|_| write!(file, "{}", std::process::id()))
                .with_context(|| format!("cannot write {}", path.display()))?;
            return Ok(Ok(LockFile { path: path.to_path_buf(), file, stale_pid }));
        }
        bail!("cannot lock {}: it keeps being replaced by other processes", path.display())
    }
}

impl Drop for LockFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
        unsafe { libc::flock(self.file.as_raw_fd(), libc::LOCK_UN) };
    }
}

fn read_pid(file: &mut File) -> Option<u32> {
    let mut text = String::new();
    file.rewind().ok()?;
    file.read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}

/// The lock of a sweep's results folder, held by the one `sweep run` working on it.
#[derive(Debug)]
pub struct SweepLock {
    dir: PathBuf,
    _lock: LockFile,
}

pub const SWEEP_LOCK: &str = "sweep.lock";

impl SweepLock {
    /// Locks `sweep_dir` (created if missing), or says which process is running the sweep already.
    pub fn acquire(sweep_dir: &Path) -> Result<SweepLock> {
        std::fs::create_dir_all(sweep_dir).with_context(|| format!("cannot create {}", sweep_dir.display()))?;
        match LockFile::try_acquire(&sweep_dir.join(SWEEP_LOCK))? {
            Ok(lock) => {
                if let Some(pid) = lock.stale_pid {
                    eprintln!("note: took over the lock of `sweep run` process {pid}, which is no longer running");
                }
                Ok(SweepLock { dir: sweep_dir.to_path_buf(), _lock: lock })
            }
            Err(Held { pid }) => {
                let who =
                    pid.map_or("another `sweep run`".to_string(), |p| format!("another `sweep run` (process {p})"));
                bail!("{who} is running this sweep in {}; wait for it to finish or stop it first", sweep_dir.display())
            }
        }
    }

    /// The locked sweep folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// A run's lock, held by the one `sweep exec` training it.
#[derive(Debug)]
pub struct RunLock {
    _lock: LockFile,
}

pub const RUN_LOCK: &str = "exec.lock";

impl RunLock {
    /// Locks the run in `run_dir`; [`RunBusy`] (as the error) when another live process holds it.
    pub fn acquire(run_dir: &Path) -> Result<RunLock> {
        match LockFile::try_acquire(&run_dir.join(RUN_LOCK))? {
            Ok(lock) => Ok(RunLock { _lock: lock }),
            Err(Held { pid }) => Err(RunBusy { run_dir: run_dir.to_path_buf(), pid }.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_and_a_released_lock_is_free() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.lock");
        let first = LockFile::try_acquire(&path).unwrap().unwrap();
        assert_eq!(first.stale_pid, None);
        // flock locks belong to the open file, so a second open in this process conflicts like another process.
        let held = LockFile::try_acquire(&path).unwrap().unwrap_err();
        assert_eq!(held.pid, Some(std::process::id()));
        drop(first);
        assert!(!path.exists());
        let again = LockFile::try_acquire(&path).unwrap().unwrap();
        drop(again);
    }

    #[test]
    fn a_file_left_by_a_dead_holder_is_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.lock");
        std::fs::write(&path, "4194999").unwrap();
        let lock = LockFile::try_acquire(&path).unwrap().unwrap();
        assert_eq!(lock.stale_pid, Some(4194999));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), std::process::id().to_string());
    }

    #[test]
    fn a_held_run_lock_is_a_run_busy_naming_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let _held = RunLock::acquire(dir.path()).unwrap();
        let err = RunLock::acquire(dir.path()).unwrap_err();
        let busy = err.downcast_ref::<RunBusy>().expect("a RunBusy");
        assert_eq!(busy.pid, Some(std::process::id()));
        assert!(err.to_string().contains("is being trained by process"), "{err}");
    }

    #[test]
    fn the_sweep_lock_names_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let _held = SweepLock::acquire(dir.path()).unwrap();
        let err = SweepLock::acquire(dir.path()).unwrap_err().to_string();
        assert!(err.contains(&format!("process {}", std::process::id())), "{err}");
        assert!(err.contains("is running this sweep"), "{err}");
    }
}
