//! What `sweep run` says of memory before it starts runs: the training step of the largest of them,
//! estimated from its config ([`crate::train::memory`]), printed once per sweep; the total of the
//! runs trained at once on each device that takes several (`--per-device`, `--jobs`, a Slurm task's
//! `runs_per_task`); and a refusal up front, before any run starts, when the runs at once on the
//! CPU would need more than the memory they have: the machine's (`MemTotal` in `/proc/meminfo`), or
//! a Slurm task's `[slurm] mem`. A GPU's memory cannot be asked without opening the device, which
//! the runs do themselves, so for GPUs the totals are only printed.

use std::collections::HashSet;
use std::path::PathBuf;

use super::BadOptions;
use crate::train::memory::{StepMemory, run_memory};

/// The estimates of a set of runs: the largest, which bounds each of them.
#[derive(Clone, Debug, PartialEq)]
pub struct Footprint {
    /// The largest run's training step.
    pub largest: StepMemory,
    /// Its variant (or run id), for the messages.
    pub label: String,
    /// The smallest run's total, when it differs from the largest's.
    pub smallest: u64,
}

/// Memory the runs at once must fit in.
#[derive(Clone, Debug)]
pub struct Limit {
    pub bytes: u64,
    /// What it is, for the error: `this machine's memory (MemTotal in /proc/meminfo)`.
    pub what: String,
    /// What the user may change: `lower --jobs or --per-device`.
    pub fix: &'static str,
}

impl Footprint {
    /// The estimates of `runs` (each a run folder and its label; the seeds of one variant share an
    /// estimate, so a label is estimated once). A run whose config cannot be read is left out: it
    /// fails on its own when it starts. `None` when no run could be estimated.
    pub fn of(runs: impl IntoIterator<Item = (PathBuf, String)>) -> Option<Footprint> {
        let mut seen = HashSet::new();
        let mut footprint: Option<Footprint> = None;
        for (dir, label) in runs {
            if !seen.insert(label.clone()) {
                continue;
            }
            let Ok(step) = run_memory(&dir) else { continue };
            let total = step.bytes.total();
            footprint = Some(match footprint {
                None => Footprint { largest: step, label, smallest: total },
                Some(f) if total > f.per_run() => Footprint { largest: step, label, smallest: f.smallest },
                Some(f) => Footprint { smallest: f.smallest.min(total), ..f },
            });
        }
        footprint
    }

    /// The estimate of each run: the largest's.
    pub fn per_run(&self) -> u64 {
        self.largest.bytes.total()
    }

    /// `memory per run: ~310 MB (a batch of 64 at 32x32: parameters, gradients and optimizer state
    /// 4.5 MB, activations 245 MB, and a quarter for the allocator)`, with the range and the
    /// largest run when the runs differ.
    pub fn line(&self) -> String {
        let b = &self.largest.bytes;
        let largest = if self.smallest < self.per_run() {
            format!("; the runs need ~{} to ~{}, the most {}", human(self.smallest), human(self.per_run()), self.label)
        } else {
            String::new()
        };
        format!(
            "memory per run: ~{} (a batch of {} at {s}x{s}: parameters, gradients and optimizer state {}, \
             activations {}, and a quarter for the allocator{largest})",
            human(self.per_run()),
            self.largest.batch,
            human(b.parameters + b.gradients + b.optimizer),
            human(b.activations),
            s = self.largest.image_size,
        )
    }

    /// `cuda:0: 4 runs x ~310 MB = ~1.2 GB`.
    pub fn device_line(&self, device: &str, runs: usize) -> String {
        let runs_word = if runs == 1 { "run" } else { "runs" };
        format!("{device}: {runs} {runs_word} x ~{} = ~{}", human(self.per_run()), human(runs as u64 * self.per_run()))
    }

    /// [`BadOptions`] when `runs` at once would need more than `limit`, saying how many fit.
    pub fn check(&self, runs: usize, limit: &Limit) -> Result<(), BadOptions> {
        let need = runs as u64 * self.per_run();
        if need <= limit.bytes {
            return Ok(());
        }
        let fit = limit.bytes / self.per_run().max(1);
        let advice = match fit {
            0 => "not even one run fits: lower batch_size or image_size".to_string(),
            n => format!("{n} fit at once: {}, or lower batch_size", limit.fix),
        };
        Err(BadOptions(format!(
            "{runs} run(s) at once would need about {} ({runs} x ~{} for {}, a batch of {} at {s}x{s}), more than {} ({}); {advice}",
            human(need),
            human(self.per_run()),
            self.label,
            self.largest.batch,
            human(limit.bytes),
            limit.what,
            s = self.largest.image_size,
        )))
    }
}

/// This machine's memory: `MemTotal` in `/proc/meminfo`, `None` where there is none (not Linux).
pub fn machine_memory() -> Option<Limit> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kb: u64 =
        text.lines().find_map(|l| l.strip_prefix("MemTotal:"))?.trim().strip_suffix("kB")?.trim().parse().ok()?;
    Some(Limit {
        bytes: kb * 1024,
        what: "this machine's memory, MemTotal in /proc/meminfo".into(),
        fix: "lower --jobs or --per-device",
    })
}

/// `310 MB`, `1.2 GB`: two or three significant digits, in decimal units.
pub fn human(bytes: u64) -> String {
    let units = [("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)];
    let b = bytes as f64;
    for (unit, size) in units {
        if b >= size {
            let v = b / size;
            return if v >= 10.0 { format!("{v:.0} {unit}") } else { format!("{v:.1} {unit}") };
        }
    }
    format!("{bytes} B")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::TrainingBytes;

    fn footprint(total_mb: u64) -> Footprint {
        // total() adds a quarter: 4/5 of the wanted total in activations.
        let bytes = TrainingBytes { parameters: 0, gradients: 0, optimizer: 0, activations: total_mb * 800_000 };
        Footprint { largest: StepMemory { bytes, batch: 64, image_size: 32 }, label: "big".into(), smallest: 1 }
    }

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(human(310_400_000), "310 MB");
        assert_eq!(human(1_240_000_000), "1.2 GB");
        assert_eq!(human(12_600_000_000), "13 GB");
        assert_eq!(human(51_583_000_000_000), "52 TB");
        assert_eq!(human(4_500), "4.5 kB");
        assert_eq!(human(12), "12 B");
    }

    #[test]
    fn packed_runs_are_totalled_and_refused_beyond_the_limit() {
        let f = footprint(310);
        assert_eq!(f.per_run(), 310_000_000);
        assert_eq!(f.device_line("cuda:0", 4), "cuda:0: 4 runs x ~310 MB = ~1.2 GB");
        assert_eq!(f.device_line("cpu", 1), "cpu: 1 run x ~310 MB = ~310 MB");
        assert!(f.line().starts_with("memory per run: ~310 MB (a batch of 64 at 32x32"), "{}", f.line());
        assert!(f.line().contains("the runs need ~1 B to ~310 MB, the most big)"), "{}", f.line());
        let limit = Limit { bytes: 1_000_000_000, what: "the task's mem".into(), fix: "lower runs_per_task" };
        assert!(f.check(3, &limit).is_ok());
        let err = f.check(4, &limit).unwrap_err().to_string();
        assert!(err.starts_with("4 run(s) at once would need about 1.2 GB (4 x ~310 MB for big"), "{err}");
        assert!(err.contains("more than 1.0 GB (the task's mem); 3 fit at once: lower runs_per_task"), "{err}");
        let err = footprint(2000).check(1, &limit).unwrap_err().to_string();
        assert!(err.contains("not even one run fits"), "{err}");
    }

    #[test]
    fn the_machine_memory_is_read_on_linux() {
        if cfg!(target_os = "linux") {
            let limit = machine_memory().expect("/proc/meminfo has MemTotal");
            assert!(limit.bytes > 100_000_000, "{}", limit.bytes);
        }
    }
}
