//! `sweep status`: one sweep's runs as a table, as JSON (`--json`, for scripts and notebooks), or
//! refreshed in place until the sweep ends (`--watch`, for a sweep running in another terminal or on
//! Slurm). Every form is made from the same [`SweepView`], read from the run folders' files alone, so
//! it needs no connection to the process that trains.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

use super::table::Table;
use super::{CmdResult, StatusArgs};
use crate::store::decision::Decision;
use crate::store::metrics_file::MetricsFile;
use crate::store::plan::SweepIndex;
use crate::store::status::{RunStatus, State};
use crate::terminal::line;

/// A sweep as `sweep status` shows it.
#[derive(Debug, Serialize)]
pub struct SweepView {
    pub sweep: String,
    pub folder: PathBuf,
    /// The primary metric and whether higher is better.
    pub metric: String,
    pub higher_is_better: bool,
    /// When the view was read: Unix seconds, and as `YYYY-MM-DD HH:MM UTC`.
    pub unix_time: u64,
    pub time: String,
    pub runs: Vec<RunView>,
    /// Runs done, stopped early or failed for good, of all the sweep's runs.
    pub finished: usize,
    pub total: usize,
    /// Seconds until every run is finished, at the pace seen so far (see [`sweep_eta`]).
    pub eta_seconds: Option<f64>,
    /// Files that did not read, and what was done about them.
    pub notes: Vec<String>,
    /// A search's trials and what early stopping saved, for a sweep with a `[search]`.
    pub search: Option<SearchView>,
}

/// What early stopping saved: the epochs the search's trials trained against training each in full.
#[derive(Debug, Serialize)]
pub struct SearchView {
    pub trials: usize,
    pub stopped: usize,
    pub epochs_trained: u64,
    pub epochs_in_full: u64,
}

impl SearchView {
    fn of(index: &SweepIndex, statuses: &[Option<&RunStatus>]) -> Option<SearchView> {
        let trials: Vec<&RunStatus> = index
            .runs
            .iter()
            .zip(statuses)
            .filter(|(r, _)| r.trial.is_some() && !r.tuned)
            .filter_map(|(_, s)| *s)
            .collect();
        (!trials.is_empty()).then(|| SearchView {
            trials: trials.len(),
            stopped: trials.iter().filter(|s| s.state == State::Stopped).count(),
            epochs_trained: trials.iter().map(|s| s.epochs_done).sum(),
            epochs_in_full: trials.iter().map(|s| s.epochs).sum(),
        })
    }

    fn line(&self) -> String {
        let (trained, full) = (self.epochs_trained, self.epochs_in_full);
        let saved = if full > 0 { 100.0 * (full - trained.min(full)) as f64 / full as f64 } else { 0.0 };
        format!(
            "search: {} trials, {} stopped early; {trained} of {full} epochs trained ({saved:.0}% saved against training every trial in full)\n",
            self.trials, self.stopped
        )
    }
}

/// One run's row.
#[derive(Debug, Serialize)]
pub struct RunView {
    pub id: String,
    pub variant: String,
    pub seed: u64,
    /// `pending`, `running`, `done`, `failed`, `interrupted`, `stopped` (by early stopping: the reason
    /// is its decision's, the rung it stopped at); `lost` for a running run whose training
    /// process is gone; `missing` and `unreadable` for a status file that is absent or damaged.
    pub state: String,
    pub epochs_done: Option<u64>,
    pub epochs: Option<u64>,
    /// The primary metric at the last checkpointed epoch.
    pub metric: Option<f64>,
    /// Wall seconds the run has taken, all attempts together.
    pub seconds: Option<f64>,
    /// Seconds the run still needs: its epochs left at its own seconds per epoch (the sweep's
    /// average for a run without a finished epoch); none for a finished run.
    pub eta_seconds: Option<f64>,
    pub reason: String,
}

impl SweepView {
    /// Reads the sweep in `dir` from its plan and its runs' files.
    pub fn read(dir: &Path) -> anyhow::Result<SweepView> {
        let (index, mut notes) = SweepIndex::read_or_scan(dir)?;
        let mut runs: Vec<(RunView, Option<RunStatus>)> =
            index.runs.iter().map(|run| run_view(dir, &index, run, &mut notes)).collect();
        let per_epoch = seconds_per_epoch(runs.iter().filter_map(|(_, s)| s.as_ref()));
        for (view, status) in &mut runs {
            view.eta_seconds = status.as_ref().and_then(|s| run_eta(s, per_epoch));
        }
        let statuses: Vec<Option<&RunStatus>> = runs.iter().map(|(_, s)| s.as_ref()).collect();
        let eta_seconds = sweep_eta(&statuses, runs.iter().map(|(v, _)| v.eta_seconds));
        let search = SearchView::of(&index, &statuses);
        let finished = statuses.iter().flatten().filter(|s| trains_no_more(s.state)).count();
        let runs: Vec<RunView> = runs.into_iter().map(|(v, _)| v).collect();
        let unix_time = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        Ok(SweepView {
            finished,
            total: runs.len(),
            sweep: index.sweep,
            folder: dir.to_path_buf(),
            metric: index.metric,
            higher_is_better: index.higher_is_better,
            unix_time,
            time: crate::report::utc(unix_time),
            runs,
            eta_seconds,
            notes,
            search,
        })
    }

    /// Whether no run can train any more without a new `sweep run` (every run done, stopped or failed).
    pub fn is_finished(&self) -> bool {
        self.finished == self.total
    }

    /// The table of runs, then notes on files that did not read, then the sweep's progress line.
    pub fn table(&self) -> String {
        let mut table =
            Table::new(["run id", "variant", "seed", "state", "epochs", &self.metric, "time", "eta", "reason"]);
        for c in [2, 4, 5, 6, 7] {
            table = table.align_right(c);
        }
        for run in &self.runs {
            let epochs = match (run.epochs_done, run.epochs) {
                (Some(d), Some(e)) => format!("{d}/{e}"),
                _ => "-".into(),
            };
            table.row([
                run.id.clone(),
                run.variant.clone(),
                run.seed.to_string(),
                run.state.clone(),
                epochs,
                run.metric.map_or("-".into(), |v| format!("{v:.3}")),
                run.seconds.map_or("-".into(), |s| format!("{s:.0} s")),
                run.eta_seconds.map_or("-".into(), clock),
                run.reason.lines().next().unwrap_or("").chars().take(60).collect(),
            ]);
        }
        let notes: String = self.notes.iter().map(|n| format!("note: {n}\n")).collect();
        let eta = match self.eta_seconds {
            Some(s) if !self.is_finished() => format!(", about {} to go", clock(s)),
            _ => String::new(),
        };
        let search = self.search.as_ref().map_or(String::new(), SearchView::line);
        format!("{}{search}{notes}{} of {} runs finished{eta}\n", table.render(), self.finished, self.total)
    }
}

/// The row of `run`, and its status file where it read.
fn run_view(
    dir: &Path,
    index: &SweepIndex,
    run: &crate::store::plan::PlannedRun,
    notes: &mut Vec<String>,
) -> (RunView, Option<RunStatus>) {
    let run_dir = dir.join(&run.id);
    let rows = MetricsFile::rows_noting(&run_dir, &run.id, notes);
    let mut view = RunView {
        id: run.id.clone(),
        variant: run.variant.clone(),
        seed: run.seed,
        state: "missing".into(),
        epochs_done: None,
        epochs: None,
        metric: None,
        seconds: None,
        eta_seconds: None,
        reason: String::new(),
    };
    let status = match RunStatus::observe(&run_dir) {
        Ok(status) => status,
        Err(e) => {
            notes.push(format!("run {}: {e:#}", run.id));
            view.state = "unreadable".into();
            view.reason = "`sweep run` rebuilds its status.json".into();
            None
        }
    };
    if let Some(s) = &status {
        // A trainer that died without recording its state (kill -9, a machine's crash).
        let lost = s.state == State::Running && s.trainer_alive() == Some(false);
        view.state = if lost { "lost".into() } else { s.state.name().into() };
        view.reason = match (lost, s.state) {
            (true, _) => Some("its training process is gone; `sweep run` resumes it".into()),
            // A stopped trial's standing is its decision's now (it may have changed since it stopped).
            (false, State::Stopped) => Decision::read(&run_dir).ok().flatten().map(|d| d.reason),
            (false, _) => None,
        }
        .or_else(|| s.reason.clone())
        .unwrap_or_default();
        view.epochs_done = Some(s.epochs_done);
        view.epochs = Some(s.epochs);
        view.seconds = Some(s.seconds);
        // The row of the last checkpointed epoch: a later one (a kill before its checkpoint) is trained again.
        view.metric = rows.iter().find(|r| r.epoch == s.epochs_done).and_then(|r| r.get(&index.metric));
    }
    (view, status)
}

/// The sweep's average wall seconds per finished epoch, over the runs that finished one.
fn seconds_per_epoch<'a>(statuses: impl Iterator<Item = &'a RunStatus>) -> Option<f64> {
    let (seconds, epochs) =
        statuses.filter(|s| s.epochs_done > 0).fold((0.0, 0u64), |(t, n), s| (t + s.seconds, n + s.epochs_done));
    (epochs > 0).then(|| seconds / epochs as f64)
}

/// Whether a run in `state` is finished for the view: it trains no more unless a new `sweep run`
/// retries it (failed) or a later decision promotes it (stopped).
fn trains_no_more(state: State) -> bool {
    match state {
        State::Done | State::Failed | State::Stopped => true,
        State::Pending | State::Running | State::Interrupted => false,
    }
}

/// Seconds run `s` still needs: its own pace once it has an epoch, else the sweep's.
fn run_eta(s: &RunStatus, sweep_per_epoch: Option<f64>) -> Option<f64> {
    if trains_no_more(s.state) {
        return None;
    }
    let per_epoch = if s.epochs_done > 0 { Some(s.seconds / s.epochs_done as f64) } else { sweep_per_epoch }?;
    Some(s.epochs.saturating_sub(s.epochs_done) as f64 * per_epoch)
}

/// The sweep's remaining seconds: the runs' together, shared among as many slots as are training
/// now (the executor's width is not in the files; what trains at once is the best estimate of it).
fn sweep_eta(statuses: &[Option<&RunStatus>], etas: impl Iterator<Item = Option<f64>>) -> Option<f64> {
    let unfinished: Vec<Option<f64>> = statuses
        .iter()
        .zip(etas)
        .filter(|(s, _)| !s.is_some_and(|s| trains_no_more(s.state)))
        .map(|(_, eta)| eta)
        .collect();
    if unfinished.is_empty() {
        return Some(0.0);
    }
    // A run without a pace yet (no epoch anywhere) leaves the sweep's end unknown.
    let total: f64 = unfinished.iter().copied().sum::<Option<f64>>()?;
    let training = statuses.iter().flatten().filter(|s| s.state == State::Running).count().max(1);
    Some(total / training as f64)
}

/// Seconds as `45 s`, `12 min`, `3 h 05 min`.
fn clock(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min", s.div_ceil(60)),
        _ => format!("{} h {:02} min", s / 3600, (s % 3600) / 60),
    }
}

pub fn status(args: StatusArgs) -> CmdResult {
    let dir = super::run_cmd::resolve_sweep_dir(args.target.as_deref(), &args.results)?;
    super::run_cmd::not_a_results_root(&dir, "status")?;
    if !args.watch {
        let view = SweepView::read(&dir)?;
        print!("{}", if args.json { json(&view, true)? } else { heading(&view) + &view.table() });
        return Ok(());
    }
    let every = Duration::from_secs_f64(args.interval);
    let tty = std::io::stdout().is_terminal() && !args.json;
    let mut last = String::new();
    loop {
        let view = SweepView::read(&dir)?;
        // Piped, a frame is printed only when a run moved (not for the clock alone).
        let progress = view.table();
        let frame = if args.json { json(&view, false)? } else { heading(&view) + &progress };
        if tty {
            println!("\x1b[H\x1b[2J{frame}refreshing every {} s; Ctrl-C to stop", args.interval);
        } else if progress != last {
            print!("{frame}{}", if args.json { "" } else { "\n" });
        }
        std::io::stdout().flush()?;
        last = progress;
        if view.is_finished() {
            return Ok(());
        }
        std::thread::sleep(every);
    }
}

/// The first lines of the table form: the sweep, its folder and when it was read, then notes.
fn heading(view: &SweepView) -> String {
    format!("{}\n", line(&format!("sweep \"{}\" ({}) at {}", view.sweep, view.folder.display(), view.time)))
}

/// The view as JSON: indented for one look, one line per refresh for `--watch`.
fn json(view: &SweepView, pretty: bool) -> anyhow::Result<String> {
    let text = if pretty { serde_json::to_string_pretty(view)? } else { serde_json::to_string(view)? };
    Ok(text + "\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(state: State, epochs_done: u64, epochs: u64, seconds: f64) -> RunStatus {
        RunStatus {
            state,
            epochs_done,
            epochs,
            seconds,
            ..serde_json::from_str(
                r#"{"state":"pending","id":"a","sweep":"s","variant":"v","seed":0,"epochs":1,"epochs_done":0,"updated":0}"#,
            )
            .unwrap()
        }
    }

    #[test]
    fn the_eta_is_the_epochs_left_at_the_pace_seen() {
        let running = status(State::Running, 2, 5, 20.0);
        let pending = status(State::Pending, 0, 4, 0.0);
        let done = status(State::Done, 5, 5, 60.0);
        // Sweep pace: (20 + 60) s over 7 epochs.
        let pace = seconds_per_epoch([&running, &pending, &done].into_iter());
        assert_eq!(pace, Some(80.0 / 7.0));
        assert_eq!(run_eta(&running, pace), Some(30.0), "3 epochs at its own 10 s");
        assert_eq!(run_eta(&pending, pace), Some(4.0 * 80.0 / 7.0));
        assert_eq!(run_eta(&done, pace), None);
        let statuses = [Some(&running), Some(&pending), Some(&done)];
        let etas = statuses.iter().map(|s| run_eta(s.unwrap(), pace));
        // One run training at once: the runs' remaining seconds add up.
        assert_eq!(sweep_eta(&statuses, etas), Some(30.0 + 4.0 * 80.0 / 7.0));
        // No epoch anywhere yet: unknown.
        let fresh = status(State::Running, 0, 3, 4.0);
        assert_eq!(sweep_eta(&[Some(&fresh)], std::iter::once(run_eta(&fresh, None))), None);
        assert_eq!(sweep_eta(&[Some(&done)], std::iter::once(None)), Some(0.0));
    }

    #[test]
    fn two_runs_training_at_once_halve_the_sweep_eta() {
        let a = status(State::Running, 1, 3, 10.0);
        let b = status(State::Running, 1, 3, 10.0);
        let statuses = [Some(&a), Some(&b)];
        let etas = statuses.iter().map(|s| run_eta(s.unwrap(), None));
        assert_eq!(sweep_eta(&statuses, etas), Some(20.0));
    }

    #[test]
    fn clock_reads_like_a_person_would_say_it() {
        assert_eq!(clock(44.6), "45 s");
        assert_eq!(clock(61.0), "2 min");
        assert_eq!(clock(3.0 * 3600.0 + 5.0 * 60.0 + 10.0), "3 h 05 min");
    }
}
