//! `sweep run` (a whole sweep), `sweep exec` (one run) and `sweep status` (a sweep's runs).

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use super::table::Table;
use super::{CmdResult, ExecArgs, Executor, Failure, RunArgs, StatusArgs};
use crate::device::Device;
use crate::runner::layout::{SweepIndex, materialise, sweep_dir};
use crate::runner::local::{self, LocalOptions};
use crate::runner::lock::SweepLock;
use crate::runner::queue::select;
use crate::runner::slurm::{self, SlurmOptions};
use crate::runner::status::{RunStatus, State};
use crate::train::metrics_file::MetricsFile;
use crate::train::trainer::{EXIT_BUSY, RunBusy};
use crate::train::{Outcome, exec as train_run, open_device};

pub fn run(args: RunArgs) -> CmdResult {
    let plan = crate::spec::load(&args.spec.spec, &args.spec.overrides)?;
    for w in &plan.warnings {
        eprintln!("warning: {w}");
    }
    // Absolute, because Slurm tasks and their scripts use it from elsewhere.
    let dir = std::path::absolute(sweep_dir(&args.results, &plan.meta.name))
        .with_context(|| format!("cannot resolve the results folder {}", args.results.display()))?;
    match args.executor {
        Executor::Local if args.jobs.is_some() && !args.devices.is_empty() => {
            return Err(usage(
                "give either --jobs (runs at once on --device) or --devices (one run per GPU), not both",
            ));
        }
        Executor::Local => {
            if args.devices.is_empty() {
                // Fail before creating anything if the device cannot work.
                open_device(args.device)?;
            }
        }
        Executor::Slurm if args.jobs.is_some() || !args.devices.is_empty() || args.fail_fast => {
            return Err(usage(
                "--jobs, --devices and --fail-fast apply to the local executor; on Slurm, set max_concurrent and \
                 gpus_per_task in the spec's [slurm] table",
            ));
        }
        Executor::Slurm => {
            if plan.slurm.gpus_per_task > 0 && args.device == Device::Cpu {
                eprintln!(
                    "warning: [slurm] gpus_per_task = {} but --device cpu: the runs will not use the GPUs (pass --device cuda:0)",
                    plan.slurm.gpus_per_task
                );
            }
        }
    }
    if args.dry_run {
        let index = SweepIndex::from_plan(&plan, &args.spec.spec);
        match args.executor {
            Executor::Local => {
                let selection = select(&dir, &index, args.retry_failed)?;
                println!(
                    "would train {} of {} runs into {} ({} done already)",
                    selection.queue.len(),
                    index.runs.len(),
                    dir.display(),
                    selection.skipped
                );
                for &run in &selection.queue {
                    println!("  {}  {}", index.runs[run].id, index.runs[run].variant);
                }
            }
            Executor::Slurm => {
                let opts = SlurmOptions { device: args.device, retry_failed: args.retry_failed };
                print!("{}", slurm::dry_run(&dir, &index, &plan.slurm, &opts)?);
            }
        }
        return Ok(());
    }
    // Locked before anything is written, so that a second `sweep run` cannot rewrite plan.json.
    let lock = SweepLock::acquire(&dir)?;
    let results = dir.parent().map_or_else(|| args.results.clone(), Path::to_path_buf);
    materialise(&plan, &args.spec.spec, &results)?;
    let index = SweepIndex::read(&dir)?;
    let outcome = match args.executor {
        Executor::Local => {
            let opts = LocalOptions {
                jobs: args.jobs.unwrap_or(1),
                devices: args.devices.clone(),
                device: args.device,
                retry_failed: args.retry_failed,
                fail_fast: args.fail_fast,
            };
            local::run_sweep(&lock, &index, &opts)?
        }
        Executor::Slurm => {
            let opts = SlurmOptions { device: args.device, retry_failed: args.retry_failed };
            slurm::run_sweep(&lock, &index, &plan.slurm, &opts)?
        }
    };
    drop(lock);
    print!("{}", status_table(&dir, &index)?);
    println!(
        "\n{} trained, {} already done, {} failed{}   results: {}",
        outcome.done,
        outcome.skipped,
        outcome.failed.len(),
        if outcome.interrupted { ", interrupted: run the same command again to resume" } else { "" },
        dir.display()
    );
    if !outcome.failed.is_empty() {
        for f in &outcome.failed {
            eprintln!("failed: {} ({}): {}", f.id, f.variant, f.reason);
        }
        return Err(Failure {
            code: 1,
            error: anyhow::anyhow!(
                "{} run(s) failed (`sweep run --retry-failed` trains them again)",
                outcome.failed.len()
            ),
        });
    }
    if outcome.interrupted {
        return Err(Failure { code: 130, error: anyhow::anyhow!("interrupted") });
    }
    Ok(())
}

fn usage(message: &str) -> Failure {
    Failure { code: 2, error: anyhow::anyhow!("{message}") }
}

pub fn exec(args: ExecArgs) -> CmdResult {
    let device = open_device(args.device)?;
    crate::train::trainer::install_stop_handler();
    match train_run(&args.run_dir, &device, args.quiet) {
        Ok(Outcome::Done) => Ok(()),
        Ok(Outcome::Interrupted) => {
            Err(Failure { code: 130, error: anyhow::anyhow!("interrupted; run again to resume") })
        }
        Err(error) if error.is::<RunBusy>() => Err(Failure { code: EXIT_BUSY, error }),
        Err(error) => Err(error.into()),
    }
}

pub fn status(args: StatusArgs) -> CmdResult {
    let dir = resolve_sweep_dir(args.target.as_deref(), &args.results)?;
    let index = SweepIndex::read(&dir)?;
    println!("sweep \"{}\" ({})", index.sweep, dir.display());
    print!("{}", status_table(&dir, &index)?);
    Ok(())
}

/// A spec (its sweep's folder under `results`) or a sweep folder.
pub fn resolve_sweep_dir(target: Option<&Path>, results: &Path) -> anyhow::Result<PathBuf> {
    let Some(target) = target else {
        bail!("give a spec or a sweep's results folder, e.g. `sweep status experiments/quickstart.toml`");
    };
    if target.is_dir() {
        return Ok(target.to_path_buf());
    }
    if target.extension().is_some_and(|e| e == "toml") {
        let spec = crate::spec::Spec::from_file(target)?;
        return Ok(sweep_dir(results, &spec.meta.name));
    }
    bail!("{} is neither a spec (.toml) nor a sweep's results folder", target.display())
}

/// One row per run: state, epochs, primary metric, time, failure reason.
pub fn status_table(dir: &Path, index: &SweepIndex) -> anyhow::Result<String> {
    let mut table = Table::new(["run id", "variant", "seed", "state", "epochs", &index.metric, "time", "reason"])
        .align_right(2)
        .align_right(4)
        .align_right(5)
        .align_right(6);
    for run in &index.runs {
        let run_dir = dir.join(&run.id);
        let status = RunStatus::read(&run_dir).with_context(|| format!("run {}", run.id))?;
        let metrics = MetricsFile::open(&run_dir)?;
        let last = metrics.rows().last().and_then(|r| r.get(&index.metric));
        let (state, epochs, seconds, reason) = match &status {
            // A trainer that died without recording its state (kill -9, a machine's crash).
            Some(s) if s.state == State::Running && s.trainer_alive() == Some(false) => (
                "lost".to_string(),
                format!("{}/{}", s.epochs_done, s.epochs),
                format!("{:.0} s", s.seconds),
                "its training process is gone; `sweep run` resumes it".to_string(),
            ),
            Some(s) => (
                s.state.name().to_string(),
                format!("{}/{}", s.epochs_done, s.epochs),
                format!("{:.0} s", s.seconds),
                s.reason.clone().unwrap_or_default(),
            ),
            None => ("missing".into(), "-".into(), "-".into(), String::new()),
        };
        let reason: String = reason.lines().next().unwrap_or("").chars().take(60).collect();
        table.row([
            run.id.clone(),
            run.variant.clone(),
            run.seed.to_string(),
            state,
            epochs,
            last.map_or("-".into(), |v| format!("{v:.3}")),
            seconds,
            reason,
        ]);
    }
    Ok(table.render())
}
