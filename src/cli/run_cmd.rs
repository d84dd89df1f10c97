//! `sweep run` (a whole sweep), `sweep exec` (one run) and `sweep status` (a sweep's runs).

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use super::table::Table;
use super::{CmdResult, ExecArgs, Executor, Failure, RunArgs, StatusArgs};
use crate::runner::layout::{SweepIndex, materialise, sweep_dir};
use crate::runner::local::{LocalOptions, run_sweep};
use crate::runner::status::RunStatus;
use crate::train::metrics_file::MetricsFile;
use crate::train::{Outcome, exec as train_run, parse_device};

pub fn run(args: RunArgs) -> CmdResult {
    let plan = crate::spec::load(&args.spec.spec, &args.spec.overrides)?;
    for w in &plan.warnings {
        eprintln!("warning: {w}");
    }
    if let Executor::Slurm = args.executor {
        return Err(
            anyhow::anyhow!("the Slurm executor is not available in this build yet (tracked in issue 4)").into()
        );
    }
    if args.dry_run {
        println!("would train {} runs into {}", plan.runs.len(), sweep_dir(&args.results, &plan.meta.name).display());
        return Ok(());
    }
    if args.devices.is_empty() {
        // Fail before creating anything if the device cannot work.
        parse_device(&args.device)?;
    }
    let dir = materialise(&plan, &args.spec.spec, &args.results)?;
    let index = SweepIndex::read(&dir)?;
    let opts = LocalOptions {
        jobs: args.jobs,
        devices: args.devices.clone(),
        device: args.device.clone(),
        retry_failed: args.retry_failed,
        fail_fast: args.fail_fast,
        plain: false,
    };
    let outcome = run_sweep(&dir, &index, &opts)?;
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
        for (id, variant, reason) in &outcome.failed {
            eprintln!("failed: {id} ({variant}): {reason}");
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

pub fn exec(args: ExecArgs) -> CmdResult {
    let device = parse_device(&args.device)?;
    crate::train::trainer::install_stop_handler();
    match train_run(&args.run_dir, &device, args.quiet)? {
        Outcome::Done => Ok(()),
        Outcome::Interrupted => Err(Failure { code: 130, error: anyhow::anyhow!("interrupted; run again to resume") }),
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
        let spec = crate::spec::Spec::from_file(target).map_err(|e| anyhow::anyhow!("{e}"))?;
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
