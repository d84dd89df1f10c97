//! The process protocol between an orchestrator (`sweep run`'s executors) and the `sweep exec`
//! process that trains one run, as types both sides share:
//!
//! - how `sweep exec` ends: [`ExecExit`], its exit status. Done, failed and interrupted attempts are
//!   also recorded in the run's `status.json` by the trainer; [`ExecExit::Busy`] (another live
//!   process trains the run, [`RunBusy`]) cannot be, since the status belongs to that process, so
//!   `sweep exec` also writes [`ExecExit::notice`] on stderr, for orchestrators that may lose the
//!   exit status (Slurm forgets finished tasks);
//! - the stop request: SIGINT, SIGTERM or SIGHUP ([`request_stop`], [`is_stop_signal`]), on which
//!   the trainer finishes its batch and records the run as interrupted ([`install_stop_handler`],
//!   [`stop_requested`]). The orchestrators take the same signals to stop a sweep;
//! - how each `sweep exec` of a pack ended ([`ExecEnd`], `<ends>/<run-id>.json`): a `sweep exec`
//!   that trains several runs at once (a Slurm task's pack) starts one child per run and records
//!   each child's end as it comes, for an orchestrator that sees only the pack's process (Slurm).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::atomic::write_atomic;

/// How `sweep exec` ended, by its exit code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExecExit {
    /// 0: the run is done, or early stopping stopped it (`status.json` says which).
    Done,
    /// 1: the attempt failed; the trainer recorded why in `status.json` when it could.
    Failed,
    /// 2: bad usage or a config that does not parse.
    Usage,
    /// 75 (EX_TEMPFAIL): another live process trains the run; nothing was changed.
    Busy,
    /// 130: stopped on request; recorded as interrupted, resumes from the last checkpoint.
    Interrupted,
}

impl ExecExit {
    const ALL: [ExecExit; 5] =
        [ExecExit::Done, ExecExit::Failed, ExecExit::Usage, ExecExit::Busy, ExecExit::Interrupted];

    pub const fn code(self) -> u8 {
        match self {
            ExecExit::Done => 0,
            ExecExit::Failed => 1,
            ExecExit::Usage => 2,
            ExecExit::Busy => 75,
            ExecExit::Interrupted => 130,
        }
    }

    /// The end an exit code means; `None` for a code `sweep exec` does not use.
    pub fn from_code(code: i32) -> Option<ExecExit> {
        ExecExit::ALL.into_iter().find(|e| i32::from(e.code()) == code)
    }

    fn name(self) -> &'static str {
        match self {
            ExecExit::Done => "done",
            ExecExit::Failed => "failed",
            ExecExit::Usage => "usage",
            ExecExit::Busy => "busy",
            ExecExit::Interrupted => "interrupted",
        }
    }

    /// The line announcing this end on stderr: `sweep-exec-exit: busy (75)`.
    pub fn notice(self) -> String {
        format!("{NOTICE} {} ({})", self.name(), self.code())
    }

    /// The end announced by the last [`ExecExit::notice`] in a process's output, if any.
    pub fn noticed_in(output: &str) -> Option<ExecExit> {
        let name = output.lines().rev().find_map(|l| l.trim().strip_prefix(NOTICE))?;
        let name = name.split_whitespace().next()?;
        ExecExit::ALL.into_iter().find(|e| e.name() == name)
    }
}

/// The prefix of [`ExecExit::notice`].
const NOTICE: &str = "sweep-exec-exit:";

/// How one `sweep exec` child of a pack ended, as the pack's process saw it: written atomically to
/// `<ends>/<run-id>.json` when it ends, while the pack's other runs may train on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecEnd {
    /// Its exit code ([`ExecExit::from_code`]), when it exited.
    pub code: Option<i32>,
    /// The signal that killed it, when one did.
    pub signal: Option<i32>,
    /// The length of the run's `log.txt` before it started: its output follows.
    pub log_offset: u64,
}

impl ExecEnd {
    fn path(ends: &Path, run_id: &str) -> PathBuf {
        ends.join(format!("{run_id}.json"))
    }

    /// Records the end of run `run_id`'s child in the folder `ends`.
    pub fn write(&self, ends: &Path, run_id: &str) -> Result<()> {
        write_atomic(&Self::path(ends, run_id), &serde_json::to_vec(self).expect("an exec end serialises"))
    }

    /// The recorded end of run `run_id`'s child in `ends`; `None` while it has not ended (or was never
    /// started there).
    pub fn read(ends: &Path, run_id: &str) -> Result<Option<ExecEnd>> {
        let path = Self::path(ends, run_id);
        match std::fs::read(&path) {
            Ok(bytes) => {
                serde_json::from_slice(&bytes).map(Some).with_context(|| format!("{} is damaged", path.display()))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
    }
}

/// `sweep exec` found its run being trained by another live process ([`ExecExit::Busy`]).
#[derive(Debug)]
pub struct RunBusy {
    pub run_dir: PathBuf,
    pub pid: Option<u32>,
}

impl std::fmt::Display for RunBusy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let who = self.pid.map_or("another process".to_string(), |p| format!("process {p}"));
        write!(f, "run {} is being trained by {who} already", self.run_dir.display())
    }
}

impl std::error::Error for RunBusy {}

/// Set by a stop signal: the trainer stops at the next batch, the orchestrators stop the sweep.
static STOP: AtomicBool = AtomicBool::new(false);

/// Installs the handler of the stop signals (Ctrl-C, SIGTERM, SIGHUP) once per process.
pub fn install_stop_handler() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = ctrlc::set_handler(|| STOP.store(true, Ordering::SeqCst));
    });
}

/// Whether this process has been asked to stop.
pub fn stop_requested() -> bool {
    STOP.load(Ordering::SeqCst)
}

/// Asks the process `pid` (a `sweep exec` this process started) to stop: it finishes its current
/// batch and records itself as interrupted.
pub fn request_stop(pid: u32) {
    // The caller's child is not reaped before the caller sees it exit, so its pid cannot have been reused.
    unsafe { libc::kill(pid as i32, libc::SIGTERM) };
}

/// Whether `signal` is one of the stop signals: a process it killed was stopped, not crashed.
pub fn is_stop_signal(signal: i32) -> bool {
    [libc::SIGINT, libc::SIGTERM, libc::SIGHUP].contains(&signal)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_and_notices_round_trip() {
        for end in ExecExit::ALL {
            assert_eq!(ExecExit::from_code(i32::from(end.code())), Some(end));
            assert_eq!(ExecExit::noticed_in(&format!("epoch 1\n{}\n", end.notice())), Some(end));
        }
        assert_eq!(ExecExit::Busy.code(), 75);
        assert_eq!(ExecExit::from_code(3), None);
        assert_eq!(ExecExit::noticed_in("error: run x is being trained by process 12 already\n"), None);
        let last = format!("{}\n{}\n", ExecExit::Busy.notice(), ExecExit::Done.notice());
        assert_eq!(ExecExit::noticed_in(&last), Some(ExecExit::Done));
    }

    #[test]
    fn exec_ends_round_trip_and_are_absent_until_written() {
        let dir = tempfile::tempdir().unwrap();
        let ends = dir.path().join("ends/12_3");
        assert_eq!(ExecEnd::read(&ends, "abc").unwrap(), None);
        let killed = ExecEnd { code: None, signal: Some(libc::SIGKILL), log_offset: 120 };
        killed.write(&ends, "abc").unwrap();
        assert_eq!(ExecEnd::read(&ends, "abc").unwrap(), Some(killed));
        assert_eq!(ExecEnd::read(&ends, "abd").unwrap(), None);
        std::fs::write(ends.join("abd.json"), "{").unwrap();
        assert!(format!("{:#}", ExecEnd::read(&ends, "abd").unwrap_err()).contains("abd.json is damaged"));
    }
}
