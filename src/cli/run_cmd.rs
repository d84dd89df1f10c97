//! `sweep run` (a whole sweep) and `sweep exec` (one run), and how a command finds a sweep's folder.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use super::{CmdResult, ExecArgs, Failure, RunArgs};
use crate::runner::pack::exec_pack;
use crate::runner::queue::{SweepOutcome, select};
use crate::runner::sweep::run_sweep;
use crate::runner::tuned::best_trials;
use crate::runner::{Executor, RunOptions};
use crate::spec::Plan;
use crate::spec::expand::with_tuned;
use crate::spec::search::Then;
use crate::store::layout::{kernel_cache_dir, results_root};
use crate::store::lock::SweepLock;
use crate::store::plan::{PLAN_FILE, SweepIndex, claim, materialise, sweep_dir};
use crate::store::protocol::{ExecExit, RunBusy, install_stop_handler};
use crate::terminal::{line, text};
use crate::train::device::use_kernel_caches;
use crate::train::{Outcome, exec as train_run, open_device};

pub fn run(args: RunArgs) -> CmdResult {
    let plan = crate::spec::load(&args.spec.spec, &args.spec.overrides)?;
    for w in &plan.warnings {
        eprintln!("warning: {}", text(w));
    }
    // Absolute, because Slurm tasks and their scripts use it from elsewhere.
    let dir = std::path::absolute(sweep_dir(&args.results, &plan.meta.name))
        .with_context(|| format!("cannot resolve the results folder {}", args.results.display()))?;
    let opts = RunOptions {
        device: args.device,
        jobs: args.jobs,
        devices: args.devices.clone(),
        per_device: args.per_device,
        retry_failed: args.retry_failed,
        fail_fast: args.fail_fast,
    };
    let mut executor = args.executor.build(&opts, &plan.slurm)?;
    let results = dir.parent().map_or_else(|| args.results.clone(), Path::to_path_buf);
    use_kernel_caches(&kernel_cache_dir(&results));
    // Fail before creating anything if a device cannot work.
    for device in executor.devices_here() {
        open_device(device)?;
    }
    if args.dry_run {
        let index = SweepIndex::from_plan(&plan, &args.spec.spec);
        let selection = select(&dir, &index, args.retry_failed, false)?;
        selection.notes.iter().for_each(|n| eprintln!("warning: {}", line(n)));
        print!("{}", text(&executor.dry_run(&dir, &index, &selection)?));
        return Ok(());
    }
    // Locked before anything is written, so that a second `sweep run` cannot rewrite plan.json.
    let lock = SweepLock::acquire(&dir)?;
    if let Some(note) = claim(&dir, &args.spec.spec)? {
        eprintln!("warning: {note}");
    }
    let outcome = train_phases(plan, executor.as_mut(), &lock, &args.spec.spec, &results, &opts)?;
    drop(lock);
    print!("{}", super::status_cmd::SweepView::read(&dir)?.table());
    finished(&dir, &outcome)
}

/// Trains the plan's runs; with `[search] then = "seeds"`, then the best trial of each variant whose
/// search has ended with the sweep's other seeds (added to the plan from the files, so a re-run adds
/// the same ones at once).
fn train_phases(
    mut plan: Plan,
    executor: &mut dyn Executor,
    lock: &SweepLock,
    spec_path: &Path,
    results: &Path,
    opts: &RunOptions,
) -> anyhow::Result<SweepOutcome> {
    let tuning = plan.search.as_ref().is_some_and(|s| s.then == Some(Then::Seeds));
    let dir = lock.dir();
    let tuned = |plan: Plan| {
        let index = SweepIndex::from_plan(&plan, spec_path);
        let best: Vec<String> = best_trials(dir, &index).into_iter().map(|i| index.runs[i].id.clone()).collect();
        with_tuned(plan, &best.iter().map(String::as_str).collect::<Vec<_>>())
    };
    if tuning {
        plan = tuned(plan);
    }
    let mut total = SweepOutcome::default();
    loop {
        materialise(&plan, spec_path, results)?;
        let index = SweepIndex::read(dir)?;
        let outcome = run_sweep(executor, lock, &index, opts, plan.early_stop)?;
        let trained_before = total.done;
        total = SweepOutcome {
            done: trained_before + outcome.done,
            skipped: outcome.skipped.saturating_sub(trained_before),
            ..outcome
        };
        if !tuning || total.interrupted {
            return Ok(total);
        }
        let runs = plan.runs.len();
        plan = tuned(plan);
        if plan.runs.len() == runs {
            return Ok(total);
        }
    }
}

/// The last line of `sweep run`, and its exit code: 1 when runs failed, 130 when it was interrupted.
fn finished(dir: &Path, outcome: &SweepOutcome) -> CmdResult {
    let stopped = if outcome.stopped > 0 { format!(", {} stopped early", outcome.stopped) } else { String::new() };
    println!(
        "\n{} trained, {} already done, {} failed{stopped}{}   results: {}",
        outcome.done,
        outcome.skipped,
        outcome.failed.len(),
        if outcome.interrupted { ", interrupted: run the same command again to resume" } else { "" },
        line(&dir.display().to_string())
    );
    if !outcome.failed.is_empty() {
        for f in &outcome.failed {
            eprintln!("failed: {}", line(&format!("{} ({}): {}", f.id, f.variant, f.reason)));
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
    let run_dir = match (&args.run_dirs[..], &args.ends) {
        ([run_dir], None) => run_dir,
        (run_dirs, ends) => {
            args.device.built_in().context("--device")?;
            return match exec_pack(run_dirs, args.device, ends.as_deref())? {
                ExecExit::Done => Ok(()),
                end => Err(Failure {
                    code: end.code(),
                    error: anyhow::anyhow!("not every run of the pack is done (see each run's log.txt)"),
                }),
            };
        }
    };
    use_kernel_caches(&kernel_cache_dir(results_root(run_dir)));
    let device = open_device(args.device)?;
    install_stop_handler();
    match train_run(run_dir, &device, args.quiet) {
        // Exit 0: the run's status says done or stopped.
        Ok(Outcome::Done | Outcome::Stopped(_)) => Ok(()),
        Ok(Outcome::AlreadyDone) => {
            println!(
                "run {} is done already: nothing to train (remove its folder to train it again)",
                run_dir.display()
            );
            Ok(())
        }
        Ok(Outcome::Interrupted) => Err(Failure {
            code: ExecExit::Interrupted.code(),
            error: anyhow::anyhow!("interrupted; run again to resume"),
        }),
        Err(error) if error.is::<RunBusy>() => {
            // The run's status belongs to the process that trains it: say so where an orchestrator
            // that lost the exit status (Slurm) still finds it.
            eprintln!("{}", ExecExit::Busy.notice());
            Err(Failure { code: ExecExit::Busy.code(), error })
        }
        Err(error) => Err(error.into()),
    }
}

/// A spec (its sweep's folder under `results`, unless that holds another spec's sweep of the same
/// name) or a sweep folder.
pub fn resolve_sweep_dir(target: Option<&Path>, results: &Path) -> anyhow::Result<PathBuf> {
    let Some(target) = target else {
        bail!("give a spec or a sweep's results folder, e.g. `sweep status experiments/quickstart.toml`");
    };
    if target.is_dir() {
        return Ok(target.to_path_buf());
    }
    if target.extension().is_some_and(|e| e == "toml") {
        let spec = crate::spec::Spec::from_file(target)?;
        let dir = sweep_dir(results, &spec.meta.name);
        if let Some(other) = SweepIndex::read(&dir).ok().and_then(|index| index.other_owner(&dir, target)) {
            bail!(
                "{} holds sweep \"{}\" of another spec, {}, not of {}: both declare this [sweep] name (give the \
                 results folder, or --results DIR where this spec trained)",
                dir.display(),
                spec.meta.name,
                other.display(),
                target.display()
            );
        }
        return Ok(dir);
    }
    bail!("{} is neither a spec (.toml) nor a sweep's results folder", target.display())
}

/// A results folder (`results/`) given where a sweep's (`results/<sweep>`) is expected: an error that
/// lists the sweeps it holds and the command for one of them.
pub fn not_a_results_root(dir: &Path, command: &str) -> anyhow::Result<()> {
    if dir.join(PLAN_FILE).is_file() {
        return Ok(());
    }
    let mut sweeps: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .filter(|e| e.path().join(PLAN_FILE).is_file())
                .filter_map(|e| e.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default();
    sweeps.sort();
    let Some(first) = sweeps.first() else { return Ok(()) };
    let shown: Vec<String> = sweeps.iter().take(20).map(|s| format!("\"{s}\"")).collect();
    let more = if sweeps.len() > 20 { format!(" and {} more", sweeps.len() - 20) } else { String::new() };
    bail!(
        "{} is a results folder, not a sweep's: it holds the sweep{} {}{more}; give one, e.g. `sweep {command} {}`",
        dir.display(),
        if sweeps.len() == 1 { "" } else { "s" },
        shown.join(", "),
        dir.join(first).display()
    )
}
