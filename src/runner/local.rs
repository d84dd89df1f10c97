//! The local executor: every run is a child process (`sweep exec RUN_DIR`), so a crash, a panic or an
//! out-of-memory in one run cannot take the sweep down. `--jobs N` runs N at once and splits the CPU
//! threads between them; `--devices cuda:0,cuda:1` runs one per GPU with `CUDA_VISIBLE_DEVICES` set,
//! `--per-device K` K per device (a small net uses a sliver of a GPU), the CPU threads split between
//! all the slots.
//!
//! Ctrl-C or SIGTERM stops the children, which record themselves as interrupted; children also get
//! SIGTERM when the orchestrator dies, even by `kill -9`, so no attempt outlives its orchestrator
//! (nothing to adopt). Each child's stdout and stderr go to its run's `log.txt`, so a panic's message
//! becomes the failure's reason.
//!
//! Before the first run starts it prints the estimated memory of a run's training step and, for a
//! device that trains several at once, their total; runs at once on the CPU that would need more
//! than the machine's memory are refused up front ([`super::memory`]). A Slurm task that packs runs
//! (`super::pack`) starts them with this executor's slots and children.

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use anyhow::{Context, Result, bail};

use super::memory::{Footprint, machine_memory};
use super::queue::{Selection, busy_note};
use super::{Attempt, AttemptEnd, BadOptions, Event, Executor, Exit, Halt, RunOptions, Sweep};
use crate::device::Device;
use crate::store::log;
use crate::store::plan::SweepIndex;
use crate::store::protocol::{ExecExit, is_stop_signal, request_stop};

/// What the local executor takes of the command line.
pub struct LocalOptions {
    /// Runs at once on `device` when `devices` is empty.
    pub jobs: usize,
    /// Device slots (`cuda:0`, `wgpu:1`, `cpu`), `per_device` runs each.
    pub devices: Vec<Device>,
    pub per_device: usize,
    pub device: Device,
}

/// Where a child trains: its `--device` and environment.
pub(super) struct Slot {
    device: Device,
    env: Vec<(String, String)>,
}

/// A child training a run.
struct Active {
    run: usize,
    child: Child,
    slot: usize,
    /// Length of `log.txt` before this child started: what follows is its output.
    log_offset: u64,
}

pub struct LocalExecutor {
    opts: LocalOptions,
    exe: PathBuf,
    slots: Vec<Slot>,
    free: Vec<usize>,
    active: Vec<Active>,
    /// Children started since the last poll, reported by it.
    started: Vec<Event>,
    /// The memory of a run was printed (once per sweep).
    told_memory: bool,
}

impl LocalExecutor {
    /// Slots for `opts`; `--jobs` with `--devices` is refused, and so is a device of `--devices`
    /// whose backend this build lacks, once, before any run starts (`--device` is opened by `sweep
    /// run` itself).
    pub fn new(opts: &RunOptions) -> Result<LocalExecutor> {
        if opts.jobs.is_some() && !opts.devices.is_empty() {
            return Err(BadOptions(
                "give either --jobs (runs at once on --device) or --devices (one run per GPU), not both".into(),
            )
            .into());
        }
        for d in &opts.devices {
            d.built_in().context("--devices")?;
        }
        let opts = LocalOptions {
            jobs: opts.jobs.unwrap_or(1),
            devices: opts.devices.clone(),
            per_device: opts.per_device.unwrap_or(1),
            device: opts.device,
        };
        let slots = slots(&opts, std::env::var("CUDA_VISIBLE_DEVICES").ok(), cores())?;
        let exe = std::env::current_exe().context("cannot find the sweep executable")?;
        let free = (0..slots.len()).rev().collect();
        Ok(LocalExecutor { opts, exe, slots, free, active: Vec::new(), started: Vec::new(), told_memory: false })
    }

    /// The devices as the user named them, with the runs each trains at once (the same device named
    /// twice counts once, with both its shares).
    fn device_shares(&self) -> Vec<(String, usize)> {
        let named: Vec<(Device, usize)> = if self.opts.devices.is_empty() {
            vec![(self.opts.device, self.opts.jobs)]
        } else {
            self.opts.devices.iter().map(|&d| (d, self.opts.per_device)).collect()
        };
        let mut shares: Vec<(String, usize)> = Vec::new();
        for (device, runs) in named {
            match shares.iter_mut().find(|(name, _)| *name == device.to_string()) {
                Some((_, n)) => *n += runs,
                None => shares.push((device.to_string(), runs)),
            }
        }
        shares
    }
}

impl Executor for LocalExecutor {
    fn destination(&self) -> String {
        let n = self.slots.len();
        format!("train on {n} slot{}", if n == 1 { "" } else { "s" })
    }

    fn devices_here(&self) -> Vec<Device> {
        // Slots of --devices are opened by their children, each with its own CUDA_VISIBLE_DEVICES
        // (that their backends are built in, `slots` checked). The first device of each backend is
        // probed here too: a missing driver or NVRTC fails every slot alike, so it is one error up
        // front instead of one failed run per slot (a context on that one GPU, for the sweep).
        if self.opts.devices.is_empty() {
            return vec![self.opts.device];
        }
        let mut first = Vec::new();
        for &device in &self.opts.devices {
            if !first.iter().any(|d: &Device| std::mem::discriminant(d) == std::mem::discriminant(&device)) {
                first.push(device);
            }
        }
        first
    }

    fn dry_run(&self, dir: &Path, index: &SweepIndex, selection: &Selection) -> Result<String> {
        let mut out = format!(
            "would train {} of {} runs into {} ({} done already)\n",
            selection.queue.len(),
            index.runs.len(),
            dir.display(),
            selection.skipped
        );
        for &run in &selection.queue {
            out += &format!("  {}  {}\n", index.runs[run].id, index.runs[run].variant);
        }
        Ok(out)
    }

    fn adopt(&mut self, _sweep: &Sweep) -> Result<Vec<Attempt>> {
        Ok(Vec::new())
    }

    /// Prints the memory of a run and of each device's runs at once (once per sweep), and refuses
    /// CPU runs at once that would not fit in the machine's memory.
    fn prepare(&mut self, sweep: &Sweep, queue: &[usize]) -> Result<()> {
        let runs = queue.iter().map(|&r| (sweep.run_dir(r), sweep.index.runs[r].variant.clone()));
        let Some(footprint) = Footprint::of(runs) else { return Ok(()) };
        let shares: Vec<(String, usize)> =
            self.device_shares().into_iter().map(|(device, n)| (device, n.min(queue.len()))).collect();
        if !std::mem::replace(&mut self.told_memory, true) {
            sweep.say.line(&footprint.line());
            for (device, n) in shares.iter().filter(|(_, n)| *n > 1) {
                sweep.say.line(&footprint.device_line(device, *n));
            }
        }
        let on_cpu: usize =
            shares.iter().filter(|(device, _)| *device == Device::Cpu.to_string()).map(|(_, n)| n).sum();
        if on_cpu > 0
            && let Some(limit) = machine_memory()
        {
            footprint.check(on_cpu, &limit)?;
        }
        Ok(())
    }

    fn free_slots(&self) -> usize {
        self.free.len()
    }

    fn start(&mut self, sweep: &Sweep, runs: &[usize]) -> Result<()> {
        for &run in runs {
            let slot = self.free.pop().context("no free slot")?;
            let run_dir = sweep.run_dir(run);
            let log_offset = log::len(&run_dir);
            let child = spawn(&self.exe, &run_dir, &self.slots[slot])?;
            self.started.push(Event::Running { run, place: format!("on {}", self.slots[slot].device) });
            self.active.push(Active { run, child, slot, log_offset });
        }
        Ok(())
    }

    fn poll(&mut self, sweep: &Sweep) -> Result<Vec<Event>> {
        let mut events = std::mem::take(&mut self.started);
        let mut i = 0;
        while i < self.active.len() {
            let Some(status) = self.active[i].child.try_wait()? else {
                i += 1;
                continue;
            };
            let a = self.active.swap_remove(i);
            self.free.push(a.slot);
            let output = log::since(&sweep.run_dir(a.run), a.log_offset);
            events.push(Event::Ended { run: a.run, end: attempt_end(status.code(), status.signal(), output) });
        }
        Ok(events)
    }

    fn halt(&mut self) -> Halt {
        // The children are not reaped before try_wait sees them exit, so their pids are still theirs.
        self.active.iter().for_each(|a| request_stop(a.child.id()));
        Halt::Drain
    }

    fn stop_is_failure(&self) -> bool {
        false
    }

    fn finish(&mut self, _sweep: &Sweep, _detached: bool) -> Result<()> {
        Ok(())
    }
}

/// How a `sweep exec` child that exited with `code` or was killed by `signal` ended, with its
/// `output`: busy ([`ExecExit::Busy`]: another process trains the run), or exited.
pub(super) fn attempt_end(code: Option<i32>, signal: Option<i32>, output: String) -> AttemptEnd {
    if code.and_then(ExecExit::from_code) == Some(ExecExit::Busy) {
        return AttemptEnd::Busy(busy_note(&output));
    }
    // Killed by a stop signal before it could record its state (before its handler was installed):
    // interrupted, not failed (unless the executor counts stops as failures).
    let signalled = signal.is_some_and(is_stop_signal);
    AttemptEnd::Exited(Exit { how: describe(code, signal), output, signalled })
}

/// How a child ended, for a failure's reason.
pub(super) fn describe(code: Option<i32>, signal: Option<i32>) -> String {
    match (code, signal) {
        (Some(code), _) => format!("exited with code {code}"),
        (None, Some(libc::SIGKILL)) => "was killed by SIGKILL (out of memory, or kill -9)".into(),
        (None, Some(libc::SIGSEGV)) => "crashed (SIGSEGV)".into(),
        (None, Some(libc::SIGABRT)) => "aborted (SIGABRT)".into(),
        (None, Some(signal)) => format!("was killed by signal {signal}"),
        (None, None) => "ended without an exit code or signal".into(),
    }
}

/// The cores the runs share: what this process may use (its CPU affinity and cgroup quota).
pub(super) fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The execution slots: `per_device` per device of `devices`, or `jobs` on `device`; all share the
/// `cores`. `cuda_visible` is this process's `CUDA_VISIBLE_DEVICES`: `cuda:N` is the N-th GPU this
/// process may use.
pub(super) fn slots(opts: &LocalOptions, cuda_visible: Option<String>, cores: usize) -> Result<Vec<Slot>> {
    if opts.jobs == 0 || opts.per_device == 0 {
        bail!("--jobs and --per-device must be at least 1");
    }
    let places: Vec<(Device, Vec<(String, String)>)> = if opts.devices.is_empty() {
        vec![(opts.device, Vec::new()); opts.jobs]
    } else {
        let visible: Option<Vec<String>> =
            cuda_visible.filter(|v| !v.trim().is_empty()).map(|v| v.split(',').map(|s| s.trim().to_string()).collect());
        let mut places = Vec::new();
        for &d in &opts.devices {
            let place = match d {
                Device::Cuda(i) => {
                    let physical = match &visible {
                        Some(list) => list.get(i).cloned().with_context(|| {
                            format!("--devices: {d} is not among the {} GPUs of CUDA_VISIBLE_DEVICES", list.len())
                        })?,
                        None => i.to_string(),
                    };
                    (Device::Cuda(0), vec![("CUDA_VISIBLE_DEVICES".to_string(), physical)])
                }
                Device::Wgpu(Some(_)) | Device::Cpu => (d, Vec::new()),
                Device::Wgpu(None) => bail!(
                    "--devices: `{d}` is wgpu's default adapter, not one GPU; give cuda:N, wgpu:N or cpu, comma-separated"
                ),
            };
            places.extend(std::iter::repeat_n(place, opts.per_device));
        }
        places
    };
    // Each run gets its share of the cores (the data thread of each run is mostly idle); a thread
    // count the user set for rayon is left alone.
    let threads = (cores / places.len()).max(1).to_string();
    let rayon = std::env::var_os("RAYON_NUM_THREADS").is_none().then_some(("RAYON_NUM_THREADS".to_string(), threads));
    Ok(places
        .into_iter()
        .map(|(device, mut env)| {
            env.extend(rayon.clone());
            Slot { device, env }
        })
        .collect())
}

/// Starts `sweep exec RUN_DIR` in `slot`, its output appended to the run's `log.txt`; it gets SIGTERM
/// when this process dies.
pub(super) fn spawn(exe: &Path, run_dir: &Path, slot: &Slot) -> Result<Child> {
    use std::os::unix::process::CommandExt;
    let log = log::append(run_dir)?;
    let mut cmd = Command::new(exe);
    cmd.arg("exec").arg(run_dir).arg("--device").arg(slot.device.to_string()).arg("--quiet");
    cmd.envs(slot.env.iter().map(|(k, v)| (k, v)));
    cmd.stdin(Stdio::null()).stdout(log.try_clone()?).stderr(log);
    let orchestrator = std::process::id() as i32;
    // The child gets SIGTERM if the orchestrator dies, whatever kills it, and records itself as
    // interrupted instead of training on unwatched. If the orchestrator died before the request took
    // effect, the child does not start at all.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            if libc::getppid() != orchestrator {
                return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        });
    }
    cmd.spawn().with_context(|| format!("cannot start {} exec {}", exe.display(), run_dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(jobs: usize, devices: &[&str]) -> LocalOptions {
        LocalOptions {
            jobs,
            devices: devices.iter().map(|d| d.parse().unwrap()).collect(),
            per_device: 1,
            device: Device::Cpu,
        }
    }

    fn env(slot: &Slot, key: &str) -> Option<String> {
        slot.env.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone())
    }

    #[test]
    fn gpu_slots_pin_one_gpu_each() {
        let s = slots(&opts(1, &["cuda:1", "cuda:0", "wgpu:0"]), None, 4).unwrap();
        assert_eq!(s.len(), 3);
        assert_eq!(
            (s[0].device.to_string().as_str(), env(&s[0], "CUDA_VISIBLE_DEVICES").as_deref()),
            ("cuda:0", Some("1"))
        );
        assert_eq!(env(&s[1], "CUDA_VISIBLE_DEVICES").as_deref(), Some("0"));
        assert_eq!((s[2].device.to_string().as_str(), env(&s[2], "CUDA_VISIBLE_DEVICES")), ("wgpu:0", None));
        // Indices count within the GPUs this process was given.
        let s = slots(&opts(1, &["cuda:0", "cuda:1"]), Some("4,6".into()), 4).unwrap();
        assert_eq!(env(&s[1], "CUDA_VISIBLE_DEVICES").as_deref(), Some("6"));
        assert!(slots(&opts(1, &["cuda:2"]), Some("4,6".into()), 4).is_err());
        // A name that is no device ("gpu0") is refused when the command line is parsed (crate::device).
        let err = format!("{:#}", slots(&opts(1, &["wgpu"]), None, 4).err().unwrap());
        assert!(err.contains("give cuda:N, wgpu:N or cpu"), "{err}");
    }

    #[test]
    fn per_device_packs_k_slots_on_each_device_and_splits_the_cores_between_all() {
        let mut o = opts(1, &["cpu", "cpu"]);
        o.per_device = 3;
        let s = slots(&o, None, 12).unwrap();
        assert_eq!(s.len(), 6);
        assert!(s.iter().all(|s| s.device == Device::Cpu && env(s, "CUDA_VISIBLE_DEVICES").is_none()));
        if std::env::var_os("RAYON_NUM_THREADS").is_none() {
            assert!(s.iter().all(|s| env(s, "RAYON_NUM_THREADS").as_deref() == Some("2")));
            // Fewer cores than slots: one thread each.
            assert!(slots(&o, None, 4).unwrap().iter().all(|s| env(s, "RAYON_NUM_THREADS").as_deref() == Some("1")));
        }
        o.per_device = 0;
        assert!(slots(&o, None, 12).is_err());
    }

    #[test]
    fn a_device_this_build_lacks_is_refused_before_any_run() {
        for (name, feature_on) in [("cuda:0", cfg!(feature = "cuda")), ("wgpu:0", cfg!(feature = "wgpu"))] {
            let run_options = RunOptions {
                device: Device::Cpu,
                jobs: None,
                devices: vec![Device::Cpu, name.parse().unwrap()],
                per_device: Some(2),
                retry_failed: false,
                fail_fast: false,
            };
            let result = LocalExecutor::new(&run_options);
            if feature_on {
                assert_eq!(result.unwrap().slots.len(), 4);
            } else {
                let err = format!("{:#}", result.err().unwrap());
                assert!(err.starts_with(&format!("--devices: device `{name}`")) && err.contains("--features"), "{err}");
            }
        }
    }

    #[test]
    fn cpu_slots_split_the_cores() {
        assert!(slots(&opts(0, &[]), None, 4).is_err());
        let s = slots(&opts(2, &[]), None, 5).unwrap();
        assert_eq!(s.len(), 2);
        assert!(s.iter().all(|s| s.device == Device::Cpu));
        if std::env::var_os("RAYON_NUM_THREADS").is_none() {
            assert_eq!(env(&s[0], "RAYON_NUM_THREADS").as_deref(), Some("2"));
        }
    }
}
