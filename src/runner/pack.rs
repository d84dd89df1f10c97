//! A pack: several runs trained at once by one `sweep exec RUN_DIR... --ends DIR`, what each task of
//! a Slurm job array runs when the spec packs runs (`[slurm] runs_per_task`). Each run is its own
//! `sweep exec` child, started as the local executor starts them ([`super::local::slots`] and
//! [`super::local::spawn`]: the task's CPU threads split between the runs, its GPU shared), so that a
//! run that crashes, fails or is stopped leaves the others training. As each child ends, how it
//! ended is written to `DIR/<run-id>.json` ([`ExecEnd`]), from which the Slurm executor settles that
//! run alone (and resubmits it, while it has retries) as the others go on.
//!
//! Before the runs start it prints the estimated memory of each and their total, and refuses CPU
//! runs that would not fit in the node's memory ([`super::memory`]). A stop signal (`scancel`, the
//! time limit) is passed on to every child, which records its run as interrupted; the pack waits for
//! them all.

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::Duration;

use anyhow::{Context, Result};

use super::local::{LocalOptions, cores, describe, slots, spawn};
use super::memory::{Footprint, Limit, machine_memory};
use crate::device::Device;
use crate::store::log;
use crate::store::protocol::{ExecEnd, ExecExit, install_stop_handler, request_stop, stop_requested};

/// How often the children are looked at.
const POLL: Duration = Duration::from_millis(200);

/// A child training one run of the pack.
struct Member {
    run_dir: PathBuf,
    id: String,
    child: Child,
    log_offset: u64,
}

/// Trains `run_dirs` at once on `device`, each in its own `sweep exec`, recording each one's end in
/// `ends` when given; returns how the pack ends: done when every run's process exited with 0, interrupted when
/// it was asked to stop, failed otherwise (the runs' own ends are in `ends` and their status files).
pub fn exec_pack(run_dirs: &[PathBuf], device: Device, ends: Option<&Path>) -> Result<ExecExit> {
    if let Some(ends) = ends {
        std::fs::create_dir_all(ends).with_context(|| format!("cannot create {}", ends.display()))?;
    }
    check_memory(run_dirs, device)?;
    let options = LocalOptions { jobs: run_dirs.len(), devices: Vec::new(), per_device: 1, device };
    let slots = slots(&options, None, task_cores())?;
    let exe = std::env::current_exe().context("cannot find the sweep executable")?;
    install_stop_handler();
    let mut members = Vec::new();
    for (run_dir, slot) in run_dirs.iter().zip(&slots) {
        let log_offset = log::len(run_dir);
        let id = run_id(run_dir);
        let child = spawn(&exe, run_dir, slot)?;
        println!("sweep: run {id} started (process {})", child.id());
        members.push(Member { run_dir: run_dir.clone(), id, child, log_offset });
    }
    let mut all_done = true;
    let mut forwarded = false;
    while !members.is_empty() {
        if stop_requested() && !std::mem::replace(&mut forwarded, true) {
            members.iter().for_each(|m| request_stop(m.child.id()));
        }
        let mut i = 0;
        while i < members.len() {
            let Some(status) = members[i].child.try_wait()? else {
                i += 1;
                continue;
            };
            let m = members.swap_remove(i);
            let end = ExecEnd { code: status.code(), signal: status.signal(), log_offset: m.log_offset };
            if let Some(ends) = ends {
                end.write(ends, &m.id)?;
            }
            all_done &= status.code() == Some(0);
            println!("sweep: run {} {} ({})", m.id, describe(end.code, end.signal), m.run_dir.display());
        }
        std::thread::sleep(POLL);
    }
    Ok(match (forwarded, all_done) {
        (_, true) => ExecExit::Done,
        (true, false) => ExecExit::Interrupted,
        (false, false) => ExecExit::Failed,
    })
}

/// A run's id: its folder's name.
fn run_id(run_dir: &Path) -> String {
    run_dir.file_name().map_or_else(String::new, |n| n.to_string_lossy().into_owned())
}

/// The cores the pack's runs share: the task's (`SLURM_CPUS_PER_TASK`) in a Slurm task, else what
/// this process may use.
fn task_cores() -> usize {
    std::env::var("SLURM_CPUS_PER_TASK")
        .ok()
        .and_then(|n| n.trim().parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or_else(cores)
}

/// Prints the runs' memory; on the CPU, refuses runs that would not fit in the node's memory.
fn check_memory(run_dirs: &[PathBuf], device: Device) -> Result<()> {
    let runs = run_dirs.iter().map(|d| (d.clone(), run_id(d)));
    let Some(footprint) = Footprint::of(runs) else { return Ok(()) };
    println!("sweep: {}", footprint.line());
    if run_dirs.len() > 1 {
        println!("sweep: {}", footprint.device_line(&device.to_string(), run_dirs.len()));
    }
    if device == Device::Cpu
        && let Some(limit) = machine_memory()
    {
        footprint.check(run_dirs.len(), &Limit { fix: "lower [slurm] runs_per_task", ..limit })?;
    }
    Ok(())
}
