//! The display of a sweep in progress: on a terminal a line per active run (variant, epoch, loss,
//! ETA) and an overall bar with ETA, otherwise plain log lines (start, each epoch, end), all read
//! from the runs' status and metrics files; and [`Say`], through which the loop and the executors
//! print their own lines without tearing the bars.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use super::Sweep;
use crate::store::metrics_file::MetricsFile;
use crate::store::plan::SweepIndex;
use crate::store::status::{RunStatus, State};

/// How often the display reads the active runs' status files.
const TICK: Duration = Duration::from_millis(250);

/// Where lines go: above the bars on a terminal, to stdout otherwise; `stamped` lines carry the
/// seconds since the sweep started. Cheap to clone: the clones print to the same display.
#[derive(Clone)]
pub struct Say {
    multi: indicatif::MultiProgress,
    plain: bool,
    started: Instant,
}

impl Say {
    /// Bars when both stdout and stderr are a terminal, plain lines otherwise.
    pub fn new() -> Say {
        use std::io::IsTerminal;
        let plain = !std::io::stdout().is_terminal() || !std::io::stderr().is_terminal();
        let multi = indicatif::MultiProgress::new();
        if plain {
            multi.set_draw_target(indicatif::ProgressDrawTarget::hidden());
        }
        Say { multi, plain, started: Instant::now() }
    }

    /// Prints `text` (which carries names and reasons from specs and status files) with its control
    /// characters escaped.
    pub fn line(&self, text: &str) {
        let text = crate::terminal::line(text);
        if self.plain {
            println!("{text}");
        } else {
            let _ = self.multi.println(text);
        }
    }

    /// `[    12s] text`.
    pub fn stamped(&self, text: &str) {
        self.line(&format!("{} {text}", self.stamp()));
    }

    fn stamp(&self) -> String {
        format!("[{:>6.0}s]", self.started.elapsed().as_secs_f64())
    }
}

impl Default for Say {
    fn default() -> Say {
        Say::new()
    }
}

/// One active run on the display.
struct RunLine {
    run: usize,
    bar: indicatif::ProgressBar,
    epochs_done: u64,
}

/// A line per active run (variant, epoch, loss, ETA) and an overall bar with ETA on a terminal;
/// plain log lines (start, each epoch, end) otherwise.
pub struct Progress<'a> {
    sweep_dir: &'a Path,
    index: &'a SweepIndex,
    say: Say,
    overall: indicatif::ProgressBar,
    lines: Vec<RunLine>,
    /// Epochs done and planned per queued run, for the overall bar.
    epochs: HashMap<usize, (u64, u64)>,
    base_epochs: u64,
    runs_total: usize,
    runs_finished: usize,
    last_tick: Instant,
}

impl<'a> Progress<'a> {
    /// The display of the runs `queue` (indices into the plan's runs) of `sweep`.
    pub fn new(sweep: &'a Sweep<'a>, queue: &[usize]) -> Progress<'a> {
        let (sweep_dir, index) = (sweep.dir, sweep.index);
        let epochs: HashMap<usize, (u64, u64)> = queue
            .iter()
            .map(|&run| {
                let status = RunStatus::read(&sweep_dir.join(&index.runs[run].id)).ok().flatten();
                (run, status.map_or((0, 0), |s| (s.epochs_done, s.epochs)))
            })
            .collect();
        let base_epochs = epochs.values().map(|e| e.0).sum();
        let total: u64 = epochs.values().map(|e| e.1).sum();
        let overall = sweep.say.multi.add(indicatif::ProgressBar::new(total.saturating_sub(base_epochs)));
        overall.set_style(
            indicatif::ProgressStyle::with_template("sweep [{bar:30}] {msg}  {elapsed_precise}  ETA {eta}")
                .expect("valid template")
                .progress_chars("=> "),
        );
        let progress = Progress {
            sweep_dir,
            index,
            say: sweep.say.clone(),
            overall,
            lines: Vec::new(),
            epochs,
            base_epochs,
            runs_total: queue.len(),
            runs_finished: 0,
            last_tick: Instant::now(),
        };
        progress.update_overall();
        progress
    }

    /// An attempt of `run` began training at `place` (`on cpu`, `(task 12_3)`).
    pub fn started(&mut self, run: usize, place: &str) {
        let planned = &self.index.runs[run];
        let (done, total) = self.epochs.get(&run).copied().unwrap_or_default();
        if self.say.plain {
            self.say.line(&format!("{} start  {}  {}  {place}", self.say.stamp(), planned.id, planned.variant));
        }
        let bar = self.say.multi.insert_before(&self.overall, indicatif::ProgressBar::new(total));
        bar.set_style(
            indicatif::ProgressStyle::with_template("  {prefix:<32} epoch {pos}/{len}  {msg}").expect("valid template"),
        );
        bar.set_prefix(truncate(&crate::terminal::line(&format!("{} seed {}", planned.variant, planned.seed)), 32));
        bar.set_position(done);
        bar.set_message(if done == 0 { "first epoch".to_string() } else { format!("resuming after epoch {done}") });
        self.lines.push(RunLine { run, bar, epochs_done: done });
    }

    /// Reads the active runs' progress from their status and metrics files (every [`TICK`] at most).
    pub fn tick(&mut self) {
        if self.last_tick.elapsed() < TICK {
            return;
        }
        self.last_tick = Instant::now();
        let mut changed = Vec::new();
        for line in &mut self.lines {
            let planned = &self.index.runs[line.run];
            let run_dir = self.sweep_dir.join(&planned.id);
            let Ok(Some(s)) = RunStatus::read(&run_dir) else { continue };
            if s.epochs_done == line.epochs_done || s.state != State::Running {
                continue;
            }
            line.epochs_done = s.epochs_done;
            let loss = MetricsFile::open(&run_dir)
                .ok()
                .and_then(|m| m.rows().last().map(|r| r.train_loss))
                .map_or(String::new(), |l| format!("loss {l:.4}  "));
            let per_epoch = s.seconds / s.epochs_done.max(1) as f64;
            let eta = per_epoch * s.epochs.saturating_sub(s.epochs_done) as f64;
            let message = format!("{loss}ETA {}", seconds(eta));
            line.bar.set_length(s.epochs);
            line.bar.set_position(s.epochs_done);
            line.bar.set_message(message.clone());
            self.epochs.insert(line.run, (s.epochs_done, s.epochs));
            changed.push((line.run, s.epochs_done, s.epochs, message));
        }
        for (run, done, total, message) in changed {
            if self.say.plain {
                let planned = &self.index.runs[run];
                self.say.line(&format!(
                    "{} epoch {done}/{total}  {message}  {}  {}",
                    self.say.stamp(),
                    planned.id,
                    planned.variant
                ));
            }
        }
        self.update_overall();
    }

    fn update_overall(&self) {
        let done: u64 = self.epochs.values().map(|e| e.0).sum();
        self.overall.set_position(done.saturating_sub(self.base_epochs));
        self.overall.set_message(format!("{}/{} runs", self.runs_finished, self.runs_total));
    }

    /// A run joins the queue: one early stopping promoted (again, or one this sweep had not queued).
    pub fn add(&mut self, run: usize) {
        if self.epochs.contains_key(&run) {
            self.runs_finished = self.runs_finished.saturating_sub(1);
        } else {
            let status = RunStatus::read(&self.sweep_dir.join(&self.index.runs[run].id)).ok().flatten();
            let (done, total) = status.map_or((0, 0), |s| (s.epochs_done, s.epochs));
            self.epochs.insert(run, (done, total));
            self.base_epochs += done;
            self.overall.inc_length(total.saturating_sub(done));
            self.runs_total += 1;
        }
        self.update_overall();
    }

    /// Takes a run's line off the display.
    pub fn remove(&mut self, run: usize) {
        if let Some(pos) = self.lines.iter().position(|l| l.run == run) {
            let line = self.lines.remove(pos);
            line.bar.finish_and_clear();
            self.say.multi.remove(&line.bar);
        }
    }

    /// An attempt ended; `last` when the run will not be started again by this sweep.
    pub fn finished(&mut self, run: usize, how: &str, last: bool) {
        self.remove(run);
        if last {
            self.runs_finished += 1;
            if let Ok(Some(s)) = RunStatus::read(&self.sweep_dir.join(&self.index.runs[run].id)) {
                self.epochs.insert(run, (s.epochs_done, s.epochs));
            }
        }
        self.update_overall();
        let planned = &self.index.runs[run];
        self.say.stamped(&format!("{how:<6} {}  {}", planned.id, planned.variant));
    }

    /// Takes the overall bar off the display.
    pub fn finish(&self) {
        self.overall.finish_and_clear();
        self.say.multi.remove(&self.overall);
    }
}

fn seconds(s: f64) -> String {
    match s {
        s if s < 90.0 => format!("{s:.0} s"),
        s if s < 5400.0 => format!("{:.0} min", s / 60.0),
        s => format!("{:.1} h", s / 3600.0),
    }
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n { s.to_string() } else { format!("{}…", s.chars().take(n - 1).collect::<String>()) }
}
