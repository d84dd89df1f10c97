//! Reading a sweep's results for the report: `plan.json`, and each run's status, metrics rows, best
//! epoch, accuracy curves and sample sheet. A sweep in progress or a crash leaves runs without some
//! of these files, or with files that do not parse; such runs are reported with what is wrong, never
//! fatal. Only a folder without `plan.json` is an error, since then there is no sweep to report (one
//! whose `plan.json` does not read is reported from the run folders found, with a note).

use std::path::{Path, PathBuf};

use crate::infer::eval::{EvalResult, read_kept};
use crate::spec::{Reference, Spec};
use crate::store::curve_file::{self, CURVE_BEST_FILE, CURVE_FILE, CurveFile};
use crate::store::layout::SAMPLES_FILE;
use crate::store::metrics_file::{METRICS_FILE, MetricsFile, MetricsRow};
use crate::store::plan::{PlannedRun, SweepIndex};
use crate::store::status::{RunStatus, STATUS_FILE, State};
use crate::train::checkpoint::recorded_best_epoch;

/// What became of a run, for the report.
#[derive(Clone, Debug, PartialEq)]
pub enum RunState {
    /// Finished every planned epoch.
    Done,
    /// Not finished: pending, running or interrupted (the state's name), with the epochs it has.
    Partial(String),
    /// Failed, with the reason from `status.json`.
    Failed(String),
    /// Stopped early by a search's early stopping: its numbers are those of the epoch it reached.
    Stopped,
    /// No readable `status.json`: why.
    Missing(String),
}

impl RunState {
    /// One line for tables: `done`, `partial (running)`, `failed: reason`, `missing: why`.
    pub fn describe(&self) -> String {
        match self {
            RunState::Done => "done".into(),
            RunState::Partial(state) => format!("partial ({state})"),
            RunState::Failed(reason) => format!("failed: {}", reason.lines().next().unwrap_or("")),
            RunState::Stopped => "stopped early".into(),
            RunState::Missing(why) => format!("missing: {why}"),
        }
    }
}

/// One run's results.
#[derive(Clone, Debug)]
pub struct RunResult {
    pub planned: PlannedRun,
    pub dir: PathBuf,
    pub state: RunState,
    /// Epochs the run is configured for, when its status says.
    pub epochs: Option<u64>,
    /// One row per finished epoch (lines that do not parse are in the sweep's notes).
    pub rows: Vec<MetricsRow>,
    /// The epoch of the best checkpoint by the sweep's primary metric.
    pub best_epoch: Option<u64>,
    pub curve_last: Option<CurveFile>,
    pub curve_best: Option<CurveFile>,
    /// `samples.png`, if the run has one.
    pub samples: Option<PathBuf>,
    /// Evaluations on other data sets (`sweep eval`), from `eval/*.json`.
    pub evals: Vec<EvalResult>,
}

/// The spec a sweep came from, when it can still be read.
#[derive(Clone, Debug)]
pub struct SpecSource {
    pub path: PathBuf,
    pub text: String,
    pub reference: Option<Reference>,
}

/// A sweep's results.
#[derive(Clone, Debug)]
pub struct SweepResults {
    pub dir: PathBuf,
    pub index: SweepIndex,
    pub spec: Option<SpecSource>,
    pub runs: Vec<RunResult>,
    /// Problems met while reading, each naming its file, for the report to show.
    pub notes: Vec<String>,
}

impl SweepResults {
    /// Reads the sweep in `dir`; `spec` is the spec the user named, else `plan.json`'s.
    pub fn load(dir: &Path, spec: Option<&Path>) -> anyhow::Result<SweepResults> {
        let (index, mut notes) = SweepIndex::read_or_scan(dir)?;
        let spec_path = spec.map(Path::to_path_buf).unwrap_or_else(|| index.spec_path(dir));
        let spec = read_spec(&spec_path, &mut notes);
        let runs = index.runs.iter().map(|planned| read_run(dir, planned, &index, &mut notes)).collect();
        Ok(SweepResults { dir: dir.to_path_buf(), index, spec, runs, notes })
    }
}

fn read_spec(path: &Path, notes: &mut Vec<String>) -> Option<SpecSource> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) => {
            notes.push(format!(
                "the spec {} cannot be read ({e}): the report leaves out its text and published references",
                path.display()
            ));
            return None;
        }
    };
    let reference = match Spec::from_str(path, text.clone()) {
        Ok(spec) => spec.reference,
        Err(e) => {
            let first = e.to_string().lines().next().unwrap_or("").to_string();
            notes.push(format!(
                "the spec {} does not parse any more ({first}): the report leaves out its published references",
                path.display()
            ));
            None
        }
    };
    Some(SpecSource { path: path.to_path_buf(), text, reference })
}

fn read_run(sweep_dir: &Path, planned: &PlannedRun, index: &SweepIndex, notes: &mut Vec<String>) -> RunResult {
    let dir = sweep_dir.join(&planned.id);
    let rows = MetricsFile::rows_noting(&dir, &planned.id, notes);
    let (state, epochs) = match RunStatus::read(&dir) {
        Ok(Some(status)) => (state_of(&status, &rows), Some(status.epochs)),
        Ok(None) => (RunState::Missing(format!("{} has no {STATUS_FILE}", dir.display())), None),
        Err(e) => (RunState::Missing(format!("{e:#}")), None),
    };
    let mut curve = |name: &str| match curve_file::read(&dir.join(name)) {
        Ok(curve) => curve,
        Err(e) => {
            notes.push(format!("run {}: {e:#}", planned.id));
            None
        }
    };
    let (curve_last, curve_best) = (curve(CURVE_FILE), curve(CURVE_BEST_FILE));
    let best_epoch = best_epoch(&dir, &rows, &index.metric, index.higher_is_better);
    let samples = Some(dir.join(SAMPLES_FILE)).filter(|p| p.is_file());
    let (evals, eval_notes) = read_kept(&dir);
    notes.extend(eval_notes);
    RunResult { planned: planned.clone(), dir, state, epochs, rows, best_epoch, curve_last, curve_best, samples, evals }
}

/// Done only when the metrics file holds every epoch the status claims: a run whose status says done
/// but whose rows are missing is reported as partial rather than averaged as finished. A row with a
/// non-finite value is a diverged model's (older versions of sweep finished such runs): failed.
fn state_of(status: &RunStatus, rows: &[MetricsRow]) -> RunState {
    if let Some(row) = rows.iter().find(|r| !r.non_finite().is_empty()) {
        let values = row.non_finite().join(", ");
        return RunState::Failed(format!("epoch {} has {values}: the model diverged", row.epoch));
    }
    match status.state {
        State::Done if rows.len() as u64 >= status.epochs => RunState::Done,
        State::Done => RunState::Partial(format!("done, but {METRICS_FILE} lacks epochs")),
        State::Failed => RunState::Failed(status.reason.clone().unwrap_or_else(|| "no reason recorded".into())),
        State::Stopped => RunState::Stopped,
        other => RunState::Partial(other.name().to_string()),
    }
}

/// The best checkpoint's epoch from `checkpoints/best/epoch` when it names a row of the metrics file,
/// else the trainer's rule applied to the rows (the first epoch with the best value).
fn best_epoch(dir: &Path, rows: &[MetricsRow], metric: &str, higher: bool) -> Option<u64> {
    let recorded = recorded_best_epoch(dir).filter(|e| rows.iter().any(|r| r.epoch == *e));
    recorded.or_else(|| {
        let mut best: Option<(u64, f64)> = None;
        for row in rows {
            let Some(v) = row.get(metric).filter(|v| v.is_finite()) else { continue };
            if best.is_none_or(|(_, b)| (higher && v > b) || (!higher && v < b)) {
                best = Some((row.epoch, v));
            }
        }
        best.map(|(e, _)| e)
    })
}
