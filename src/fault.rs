//! A test hook, not a feature: `SWEEP_FAULT_POINT=NAME@EPOCH` (e.g. `publish@2`) makes the trainer
//! kill its own process with SIGKILL, as `kill -9` or a power cut would, right after the write point
//! `NAME` of epoch `EPOCH` (the epoch a resumed attempt starts at is its point `resume`, its number
//! the epoch resumed after). The reliability tests (`tests/reliability.rs`) kill a run at every write
//! point of an epoch this way and show that resuming loses nothing and that `status.json` agrees with
//! the files. Unset, as everywhere but in those tests, a write point costs a comparison.
//!
//! A leaf beside `atomic`: it imports only `named`.

use std::sync::OnceLock;

use crate::named::{Named, named_enum};

/// The environment variable that names the write point to die at.
pub const FAULT_POINT_VAR: &str = "SWEEP_FAULT_POINT";

named_enum! {
    /// The write points of an epoch, in the order the trainer writes them.
    pub enum Point {
        /// An attempt found its checkpoint, truncated `metrics.csv` to it and recorded it in `status.json`.
        Resume = "resume",
        /// `samples.png`.
        Samples = "samples",
        /// `curve.csv` (and `curve_best.csv`).
        Curve = "curve",
        /// The model file in the checkpoint being written.
        CheckpointModel = "checkpoint-model",
        /// The optimizer state in the checkpoint being written.
        CheckpointOptim = "checkpoint-optim",
        /// The epoch's row in `metrics.csv`.
        Metrics = "metrics",
        /// `checkpoints/best/`, when the epoch is the best so far.
        Best = "best",
        /// The checkpoint published under its epoch's name.
        Publish = "publish",
        /// Older checkpoints removed.
        Prune = "prune",
        /// The epoch recorded in `status.json` (the last one also makes the run done).
        Status = "status",
    }
}

/// The point `SWEEP_FAULT_POINT` names, read once per process.
fn armed() -> Option<(Point, u64)> {
    static ARMED: OnceLock<Option<(Point, u64)>> = OnceLock::new();
    *ARMED.get_or_init(|| parse(&std::env::var(FAULT_POINT_VAR).ok()?))
}

/// `NAME@EPOCH`.
fn parse(text: &str) -> Option<(Point, u64)> {
    let (name, epoch) = text.split_once('@')?;
    let point = Point::parse(name)?;
    Some((point, epoch.parse().ok()?))
}

/// Called right after write point `point` of epoch `epoch`: dies there when the hook names it.
pub fn after(point: Point, epoch: u64) {
    if armed() == Some((point, epoch)) {
        unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_with_their_epoch() {
        for point in Point::ALL {
            assert_eq!(parse(&format!("{}@3", point.name())), Some((point, 3)));
        }
        assert_eq!(parse("publish"), None);
        assert_eq!(parse("publish@x"), None);
        assert_eq!(parse("nowhere@1"), None);
        // Outside the reliability tests nothing is armed, and a write point returns.
        assert_eq!(armed(), None);
        after(Point::Publish, 1);
    }
}
