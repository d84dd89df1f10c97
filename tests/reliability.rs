//! The reliability suite: a results folder damaged, killed or misused the ways a crashing machine, a
//! careful user and a hostile one would (issue 13), through the real binary. Nothing is lost, nothing
//! wrong is reported as a result, and every message names the file and a remedy that works:
//!
//! - `metrics.csv`: rows of an older format are read, a damaged line is reported with file:line and
//!   kept when the run resumes;
//! - a diverging validation fails the run with its epoch;
//! - a kill at every write point of an epoch (`SWEEP_FAULT_POINT`, see `sweep::fault`) leaves
//!   `sweep status` agreeing with the files, and resuming gives the numbers of an uninterrupted run;
//! - relative paths resolve against the spec's folder and are recorded, so `sweep exec` works from
//!   anywhere and changes nothing on a done run;
//! - two specs with one `[sweep]` name in one results folder are refused;
//! - a damaged checkpoint, optimizer state or cached classifier is set aside and trained again;
//! - unreadable `status.json` and `plan.json` do not stop `status`, `report` or `run`, which rebuilds
//!   them from the run's files;
//! - a report of a sweep whose runs all failed lists them with their reasons.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{DIVERGES, Sweep, TINY, assert_complete, numbers, text};
use sweep::fault::{FAULT_POINT_VAR, Point};
use sweep::spec::{Spec, plan};
use sweep::store::metrics_file::MetricsFile;
use sweep::store::plan::materialise;
use sweep::store::status::{RunStatus, State};

fn sweep_cmd(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sweep"));
    cmd.args(args).env_remove(FAULT_POINT_VAR);
    cmd
}

/// `sweep exec RUN_DIR`, killed at `fault` (`NAME@EPOCH`) when given.
fn exec(run_dir: &Path, fault: Option<&str>) -> Output {
    let mut cmd = sweep_cmd(&["exec"]);
    cmd.arg(run_dir).arg("--quiet");
    if let Some(fault) = fault {
        cmd.env(FAULT_POINT_VAR, fault);
    }
    cmd.output().unwrap()
}

fn killed(out: &Output) -> bool {
    use std::os::unix::process::ExitStatusExt;
    out.status.signal() == Some(libc::SIGKILL)
}

/// The folder of the one run of `s`, created as `sweep run` creates it, not yet trained.
fn run_dir_of(s: &Sweep) -> PathBuf {
    let planned = plan(&Spec::from_file(&s.spec).unwrap(), &[]).unwrap();
    materialise(&planned, &s.spec, &s.results).unwrap().join(&planned.runs[0].id)
}

fn status_of(dir: &Path) -> String {
    let out = sweep_cmd(&["status"]).arg(dir).output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    text(&out)
}

/// The `epochs` and metric cells of run `id` in `sweep status`'s table.
fn status_row(dir: &Path, id: &str) -> (String, String) {
    let table = status_of(dir);
    let line = table.lines().find(|l| l.starts_with(id)).unwrap_or_else(|| panic!("{id} not in\n{table}"));
    let cells: Vec<&str> = line.split_whitespace().collect();
    (cells[4].to_string(), cells[5].to_string())
}

fn newest_checkpoint(run: &Path) -> u64 {
    sweep::store::layout::checkpoints::newest(run).map_or(0, |(e, _)| e)
}

const THREE_EPOCHS: &str = "epochs = 3\ntask = \"classification\"\nrebalance = true\n";

#[test]
fn metrics_rows_of_an_older_format_and_damaged_lines_are_read_reported_and_kept() {
    let s = Sweep::new("oldrows", "", THREE_EPOCHS, "");
    let run = run_dir_of(&s);
    // Killed after epoch 2 was committed.
    assert!(killed(&exec(&run, Some("samples@3"))));
    let path = run.join("metrics.csv");
    let current = std::fs::read_to_string(&path).unwrap();
    // The format before the judge (13 columns), and epoch 1's psnr damaged.
    let old: Vec<String> = current.lines().map(|l| l.split(',').take(13).collect::<Vec<_>>().join(",")).collect();
    let mut cells: Vec<String> = old[1].split(',').map(String::from).collect();
    cells[3] = "2x.5".into();
    let damaged = cells.join(",");
    std::fs::write(&path, format!("{}\n{damaged}\n{}\n", old[0], old[2])).unwrap();

    // status and report read epoch 2's row and name the damaged line.
    let status = status_of(&s.dir);
    assert!(status.contains("metrics.csv:2: does not parse: `psnr` is `2x.5`"), "{status}");
    let id = run.file_name().unwrap().to_str().unwrap();
    assert_ne!(status_row(&s.dir, id).1, "-", "{status}");
    let report = sweep_cmd(&["report"]).arg(&s.dir).arg("-o").arg(s.tmp.path().join("report")).output().unwrap();
    assert!(report.status.success(), "{}", text(&report));
    assert!(text(&report).contains("metrics.csv:2"), "{}", text(&report));

    // Resuming keeps the damaged line and epoch 2's row, and adds epoch 3.
    let out = s.run(&[]);
    assert!(out.status.success(), "{}", text(&out));
    let file = MetricsFile::open(&run).unwrap();
    assert_eq!(file.rows().iter().map(|r| r.epoch).collect::<Vec<_>>(), [2, 3]);
    assert_eq!(file.damaged().iter().map(|d| d.text.as_str()).collect::<Vec<_>>(), [damaged.as_str()]);
    assert!(std::fs::read_to_string(run.join("log.txt")).unwrap().contains("metrics.csv:2"));
}

#[test]
fn a_diverging_validation_fails_the_run_with_its_epoch() {
    // One optimizer step per epoch: the step's own loss is finite, the model after it is not.
    let s = Sweep::new("nanval", "", "epochs = 2\nlr = 1e300\n", "");
    let out = s.run(&["--set", "train_images=8"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let status = &s.statuses()[0];
    assert_eq!(status.state, State::Failed);
    let reason = status.reason.clone().unwrap_or_default();
    assert!(reason.contains("epoch 1 gave") && reason.contains("NaN") && reason.contains("diverged"), "{reason}");
    assert!(MetricsFile::open(&s.run_dirs()[0]).unwrap().rows().is_empty(), "no row of a diverged model");
}

#[test]
fn a_kill_at_every_write_point_resumes_to_the_numbers_of_an_uninterrupted_run() {
    let reference = Sweep::new("kills", "", THREE_EPOCHS, "");
    let out = reference.run(&[]);
    assert!(out.status.success(), "{}", text(&out));
    let reference_run = &reference.run_dirs()[0];
    let best = std::fs::read_to_string(reference_run.join("checkpoints/best/epoch")).unwrap();

    // Each point in the middle of the run and in its last epoch (a resumed attempt's first write
    // point is at the epoch it resumes after).
    let kills =
        Point::ALL.into_iter().flat_map(|p| if p == Point::Resume { vec![(p, 1)] } else { vec![(p, 2), (p, 3)] });
    for (point, at) in kills {
        let s = Sweep::new("kills", "", THREE_EPOCHS, "");
        let run = run_dir_of(&s);
        if point == Point::Resume {
            assert!(killed(&exec(&run, Some("samples@2"))));
        }
        let fault = format!("{}@{at}", point.name());
        let out = exec(&run, Some(&fault));
        assert!(killed(&out), "{fault}: {}", text(&out));

        // What status shows follows the files: the newest checkpoint and its epoch's row.
        let id = run.file_name().unwrap().to_str().unwrap();
        let (epochs, metric) = status_row(&s.dir, id);
        let done = newest_checkpoint(&run);
        assert_eq!(epochs, format!("{done}/3"), "{fault}");
        let row = MetricsFile::open(&run).unwrap().rows().iter().find(|r| r.epoch == done).map(|r| r.get("val_loss"));
        assert_eq!(metric == "-", row.is_none(), "{fault}: {metric}");

        let out = exec(&run, None);
        assert!(out.status.success(), "{fault}: {}", text(&out));
        assert_complete(&run);
        assert_eq!(numbers(&run), numbers(reference_run), "{fault}: resumed numbers differ");
        let best_now = std::fs::read_to_string(run.join("checkpoints/best/epoch")).unwrap();
        assert_eq!(best_now, best, "{fault}: best/ is the uninterrupted run's");
        let curve = std::fs::read_to_string(run.join("curve.csv")).unwrap();
        assert!(curve.lines().nth(1).unwrap().starts_with("3,"), "{fault}: curve.csv is the last epoch's");
        let status = RunStatus::read(&run).unwrap().unwrap();
        assert_eq!((status.state, status.epochs_done, status.pid), (State::Done, 3, None), "{fault}");
    }
}

/// A folder data set of 32x32 flat images: `train/` and `val/`, two classes each.
fn photos(root: &Path) {
    for (split, n) in [("train", 8), ("val", 4)] {
        for (class, colour) in [("red", [220, 30, 30]), ("blue", [30, 30, 220])] {
            for i in 0..n {
                let img = image::RgbImage::from_fn(32, 32, |x, y| {
                    let shade = ((x + y + i) % 32) as u8 * 4;
                    image::Rgb([colour[0] / 2 + shade, colour[1] / 2 + shade, colour[2] / 2 + shade])
                });
                let path = root.join(format!("{split}/{class}/{i}.png"));
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                img.save(&path).unwrap();
            }
        }
    }
}

#[test]
fn relative_paths_resolve_against_the_spec_folder_and_exec_from_anywhere_changes_nothing_on_a_done_run() {
    let tmp = tempfile::tempdir().unwrap();
    let specs = tmp.path().join("specs");
    photos(&specs.join("photos"));
    let base = TINY.replace("dataset = \"synthetic\"\n", "");
    let spec =
        format!("[sweep]\nname = \"paths\"\ndataset = \"folder\"\ndata_dir = \"photos\"\n[base]\n{base}epochs = 2\n");
    std::fs::write(specs.join("paths.toml"), spec).unwrap();
    // Run from the folder above the spec's: `photos` is the spec's neighbour, not the current folder's.
    let out = sweep_cmd(&["run", "specs/paths.toml", "--results", "results"])
        .current_dir(tmp.path())
        .env(FAULT_POINT_VAR, "status@1")
        .output()
        .unwrap();
    assert!(!out.status.success(), "killed after epoch 1: {}", text(&out));
    let dir = tmp.path().join("results/paths");
    let index = sweep::store::plan::SweepIndex::read(&dir).unwrap();
    let run = dir.join(&index.runs[0].id);
    let config = std::fs::read_to_string(run.join("config.toml")).unwrap();
    let photos = std::path::absolute(specs.join("photos")).unwrap();
    assert!(config.contains("data_dir = \"photos\""), "the run id hashes the spec's spelling:\n{config}");
    assert!(config.contains(&format!("data_dir = \"{}\"", photos.display())), "recorded:\n{config}");

    // `sweep exec` from another folder resumes on the recorded data.
    let out = sweep_cmd(&["exec"]).arg(&run).current_dir("/").output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert_complete(&run);

    // Once done, `sweep exec` from anywhere changes nothing.
    let snapshot = |run: &Path| -> Vec<(PathBuf, Vec<u8>)> {
        let mut files: Vec<(PathBuf, Vec<u8>)> =
            walk(run).into_iter().map(|p| (p.clone(), std::fs::read(&p).unwrap())).collect();
        files.sort();
        files
    };
    let before = snapshot(&run);
    let out = sweep_cmd(&["exec"]).arg(&run).current_dir(&specs).output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("is done already: nothing to train"), "{}", text(&out));
    assert_eq!(snapshot(&run), before, "a done run's files are untouched");
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()) {
        if entry.is_dir() { out.extend(walk(&entry)) } else { out.push(entry) }
    }
    out
}

#[test]
fn two_specs_with_one_sweep_name_in_one_results_folder_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let results = tmp.path().join("results");
    let spec = |folder: &str, lr: &str| {
        let path = tmp.path().join(folder).join("same.toml");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, format!("[sweep]\nname = \"same\"\n[base]\n{TINY}epochs = 1\nlr = {lr}\n")).unwrap();
        path
    };
    let (a, b) = (spec("a", "0.001"), spec("b", "0.002"));
    let run = |spec: &Path| sweep_cmd(&["run"]).arg(spec).arg("--results").arg(&results).output().unwrap();
    assert!(run(&a).status.success());
    let out = run(&b);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let message = text(&out);
    assert!(
        message.contains("of another spec")
            && message.contains(&a.display().to_string())
            && message.contains("--results"),
        "{message}"
    );
    let dir = results.join("same");
    assert_eq!(sweep::store::plan::SweepIndex::read(&dir).unwrap().runs.len(), 1, "nothing of b's was written");
    let status = sweep_cmd(&["status"]).arg(&b).arg("--results").arg(&results).output().unwrap();
    assert!(!status.status.success() && text(&status).contains("of another spec"), "{}", text(&status));
    let status = sweep_cmd(&["status"]).arg(&a).arg("--results").arg(&results).output().unwrap();
    assert!(status.status.success(), "{}", text(&status));
    // Once a renames its sweep, the folder is b's to take.
    std::fs::write(&a, std::fs::read_to_string(&a).unwrap().replace("\"same\"", "\"other\"")).unwrap();
    assert!(run(&b).status.success());
}

#[test]
fn a_damaged_checkpoint_or_optimizer_state_is_set_aside_and_the_run_trains_on_to_the_same_numbers() {
    let reference = Sweep::new("damaged", "", THREE_EPOCHS, "");
    assert!(reference.run(&[]).status.success());
    for file in ["optim.bpk", "model.bpk"] {
        let s = Sweep::new("damaged", "", THREE_EPOCHS, "");
        let run = run_dir_of(&s);
        assert!(killed(&exec(&run, Some("samples@3"))));
        std::fs::write(run.join("checkpoints/epoch-0002").join(file), b"not a burnpack").unwrap();
        let out = s.run(&[]);
        assert!(out.status.success(), "{file}: {}", text(&out));
        assert_complete(&run);
        assert_eq!(numbers(&run), numbers(&reference.run_dirs()[0]), "{file}");
        let log = std::fs::read_to_string(run.join("log.txt")).unwrap();
        assert!(log.contains("the checkpoint of epoch 2 does not load") && log.contains("epoch-0002.damaged"), "{log}");
        assert!(run.join("checkpoints/epoch-0002.damaged").join(file).is_file());
    }
}

#[test]
fn a_damaged_cached_classifier_is_set_aside_and_trained_again() {
    let body = "epochs = 1\nbackbone.arch = \"vgg16\"\nbackbone.width = 0.0625\nfusion_dim = 8\n\
                backbone.pretrain = \"classification\"\nbackbone.pretrain_epochs = 1\n";
    let s = Sweep::new("cache", "", body, "");
    assert!(s.run(&[]).status.success());
    let top1 = |run: &Path| MetricsFile::open(run).unwrap().rows()[0].pretrain_top1;
    let first = top1(&s.run_dirs()[0]);
    let cache = std::fs::read_dir(s.results.join(".pretrain")).unwrap().next().unwrap().unwrap().path();
    std::fs::write(cache.join("classifier.bpk"), b"bit rot").unwrap();
    // Another sweep with the same runs shares the cache.
    let text_of = std::fs::read_to_string(&s.spec).unwrap().replace("\"cache\"", "\"cache2\"");
    let spec2 = s.tmp.path().join("cache2.toml");
    std::fs::write(&spec2, text_of).unwrap();
    let out = sweep_cmd(&["run"]).arg(&spec2).arg("--results").arg(&s.results).output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let run = s.results.join("cache2").join(s.run_dirs()[0].file_name().unwrap());
    let log = std::fs::read_to_string(run.join("log.txt")).unwrap();
    assert!(log.contains("does not load") && log.contains("classifier.bpk.damaged"), "{log}");
    assert_eq!(top1(&run), first, "trained again to the same classifier");
}

#[test]
fn unreadable_status_and_plan_files_do_not_stop_status_report_or_run() {
    let s = Sweep::new("unreadable", "seeds = [0, 1, 2, 3]", "epochs = 2", "");
    assert!(s.run(&["--jobs", "2"]).status.success());
    let runs = s.run_dirs();
    let ids: Vec<String> = runs.iter().map(|r| r.file_name().unwrap().to_string_lossy().into_owned()).collect();
    std::fs::write(runs[0].join("status.json"), "{\"state\": \"do").unwrap();
    // An older format: fields this version needs are missing.
    std::fs::write(runs[1].join("status.json"), "{\"state\": \"done\", \"epochs_done\": 2}").unwrap();
    // And one without checkpoints: rebuilt as pending, and trained again.
    std::fs::write(runs[2].join("status.json"), "garbage").unwrap();
    std::fs::remove_dir_all(runs[2].join("checkpoints")).unwrap();

    let status = status_of(&s.dir);
    for (i, id) in ids.iter().enumerate() {
        let line = status.lines().find(|l| l.starts_with(id.as_str())).unwrap_or_else(|| panic!("{status}"));
        assert!(line.contains(if i < 3 { "unreadable" } else { "done" }), "{status}");
    }
    assert!(status.contains("status.json is not a valid status file"), "{status}");

    let out = s.run(&[]);
    assert!(out.status.success(), "{}", text(&out));
    let all = text(&out);
    assert!(all.contains("rebuilt from the run's files (done)"), "{all}");
    assert!(all.contains("rebuilt from the run's files (pending)"), "{all}");
    assert!(all.contains("1 trained, 3 already done"), "{all}");
    for run in &runs {
        assert_complete(run);
    }
    assert!(runs[..3].iter().all(|r| r.join("status.json.damaged").is_file()));

    // plan.json: status and report list the run folders they find; run writes it again.
    std::fs::write(s.dir.join("plan.json"), "[").unwrap();
    let status = status_of(&s.dir);
    assert!(status.contains("plan.json is not a valid plan file") && status.contains("run folders found"), "{status}");
    assert_eq!(status.matches(" done ").count(), 4, "{status}");
    let report = sweep_cmd(&["report"]).arg(&s.dir).arg("-o").arg(s.tmp.path().join("report")).output().unwrap();
    assert!(report.status.success(), "{}", text(&report));
    let out = s.run(&[]);
    assert!(text(&out).contains("plan.json.damaged"), "{}", text(&out));
    assert_eq!(sweep::store::plan::SweepIndex::read(&s.dir).unwrap().runs.len(), 4);
}

#[test]
fn a_report_of_a_sweep_whose_runs_all_failed_lists_them_with_their_reasons() {
    let s = Sweep::new(
        "allfailed",
        "",
        "epochs = 2",
        &format!("[[variant]]\nname = \"diverges\"\n{DIVERGES}\n[[variant]]\nname = \"later\"\nlr = 0.002\n"),
    );
    let out = s.run(&[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    // The second fails after its epochs (as a node lost at the end would leave it).
    let later = s.run_dirs().into_iter().find(|d| RunStatus::read(d).unwrap().unwrap().variant == "later").unwrap();
    let mut status = RunStatus::read(&later).unwrap().unwrap();
    status.state = State::Failed;
    status.reason = Some("the node went away".into());
    status.write(&later).unwrap();

    let out = sweep_cmd(&["report"]).arg(&s.dir).arg("-o").arg(s.tmp.path().join("report")).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let message = text(&out);
    assert!(message.contains("2 of its 2 runs failed"), "{message}");
    assert!(message.contains("(diverges, seed 0) failed after 0 epoch(s): the training loss became"), "{message}");
    assert!(message.contains("(later, seed 0) failed after 2 epoch(s): the node went away"), "{message}");
    assert!(message.contains("--retry-failed"), "{message}");
}
