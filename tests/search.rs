//! A search with early stopping through the real binary (issue 14): ASHA's decisions, made by the
//! orchestrator from the runs' files, survive a kill -9 of the orchestrator in the middle of the
//! search: the re-run finishes with the same decisions, the same numbers, and the same tuned runs
//! (`then = "seeds"`) as an uninterrupted sweep.

mod common;

use std::collections::BTreeMap;

use common::{Sweep, numbers, resumed, text};
use sweep::store::plan::SweepIndex;
use sweep::store::status::State;

const SEARCH: &str = r#"
[search]
method = "quasi"
trials = 6
then = "seeds"
[search.space]
lr = { log_uniform = [1e-4, 3e-2] }
[early_stop]
method = "asha"
min_epochs = 1
reduction = 2
"#;

fn search() -> Sweep {
    Sweep::new("search", "seeds = [0, 1]", "epochs = 4", SEARCH)
}

/// A run's state, epochs done and metric rows.
type RunOutcome = (State, u64, Vec<Vec<f64>>);

/// Each run's outcome, by run id; and the ids of the tuned runs.
fn outcome(s: &Sweep) -> (BTreeMap<String, RunOutcome>, Vec<String>) {
    let index = SweepIndex::read(&s.dir).unwrap();
    let runs = s
        .statuses()
        .into_iter()
        .map(|st| (st.id.clone(), (st.state, st.epochs_done, numbers(&s.dir.join(&st.id)))))
        .collect();
    (runs, index.runs.iter().filter(|r| r.tuned).map(|r| r.id.clone()).collect())
}

#[test]
fn asha_decisions_survive_a_kill_9_of_the_orchestrator_and_the_best_trial_trains_with_every_seed() {
    let whole = search();
    let out = whole.run(&[]);
    assert!(out.status.success(), "{}", text(&out));
    let (expected, tuned) = outcome(&whole);
    // 6 trials, 4 epochs, rungs at epochs 1 and 2: three trials go past epoch 1, one past epoch 2.
    let trials: Vec<&RunOutcome> = expected.iter().filter(|(id, _)| !tuned.contains(id)).map(|(_, v)| v).collect();
    let epochs: Vec<u64> = {
        let mut e: Vec<u64> = trials.iter().map(|t| t.1).collect();
        e.sort_unstable();
        e
    };
    assert_eq!(epochs, [1, 1, 1, 2, 2, 4], "{expected:?}");
    assert_eq!(trials.iter().filter(|t| t.0 == State::Stopped).count(), 5);
    // The promoted trials waited at a rung and resumed from its checkpoint.
    let index = SweepIndex::read(&whole.dir).unwrap();
    assert!(index.runs.iter().any(|r| !r.tuned && resumed(&whole.dir.join(&r.id))));
    // The best trial, trained in full, is trained again with seed 1, in its group.
    assert_eq!(tuned.len(), 1);
    let tuned_run = index.runs.iter().find(|r| r.tuned).unwrap();
    let best = index.runs.iter().find(|r| !r.tuned && r.group == tuned_run.group).unwrap();
    assert_eq!((best.seed, tuned_run.seed, expected[&best.id].1), (0, 1, 4));
    let status =
        std::process::Command::new(env!("CARGO_BIN_EXE_sweep")).arg("status").arg(&whole.dir).output().unwrap();
    let shown = text(&status);
    assert!(shown.contains("asha: stopped at rung 0 (epoch 1)"), "{shown}");
    assert!(shown.contains("search: 6 trials, 5 stopped early; 11 of 24 epochs trained (54% saved"), "{shown}");

    // The same sweep killed (kill -9) while its search is under way, then run again.
    let killed = search();
    let mut orchestrator = killed.start(&[], "killed");
    killed.wait_for("a stopped trial and another under way", |st| {
        st.iter().any(|s| s.state == State::Stopped)
            && st.iter().any(|s| s.state == State::Running && s.epochs_done >= 1)
    });
    unsafe { libc::kill(orchestrator.id() as i32, libc::SIGKILL) };
    orchestrator.wait().unwrap();
    let out = killed.run(&[]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(outcome(&killed), (expected, tuned), "the re-run's decisions and numbers are the uninterrupted sweep's");
}
