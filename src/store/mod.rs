//! The results store: what lives under `results/` and the contract between the processes that share
//! it. It sits below both the trainer (`train`, which writes a run's files) and the orchestrators
//! (`runner`, which create run folders, read their progress and record how attempts ended), so that
//! neither imports the other, and `report` and `infer` read results through it.
//!
//! - `layout`: the results layout, and the names of the files whose format is owned outside the store;
//! - `plan`: a sweep's `plan.json`, and creating the run folders of a plan;
//! - `status`: a run's `status.json`, changed only through its transitions (one writer API);
//! - `lock`: the lock files of a sweep (one orchestrator), of a run (one trainer) and of a cache;
//! - `protocol`: the process protocol between an orchestrator and `sweep exec`: exit codes, the stop
//!   request, [`protocol::RunBusy`];
//! - `metrics_file`, `curve_file`: a run's `metrics.csv` and `curve.csv`/`curve_best.csv`;
//! - `decision`: a run's `decision.json`, how far early stopping lets it train (written by the
//!   orchestrator, read by the trainer before each epoch);
//! - `model_info`: a run's `model.json`;
//! - `log`: a run's `log.txt`.
//!
//! Each results file has one owner module that knows its name and format. The files above are owned
//! here, names and formats: they are plain data that layers on both sides of the trainer read
//! (`metrics.csv` is written by the trainer and read by the orchestrators' progress display, by
//! `sweep status`, by `sweep report` and by the orchestrator's early stopping),
//! so their format cannot live in `train`. Files whose format belongs to a higher layer keep their
//! owner there, and take their names from [`layout`]: checkpoints (burn's records,
//! `train::checkpoint`), `samples.png` (drawn from decoded chroma, `train::samples`), `config.toml`
//! (a one-run spec, `spec`), `eval/*.json` (`infer::eval`), the cached classifiers
//! (`train::pretrain`), the TensorBoard event files in `tb/` (`train::tensorboard`), the cached chroma
//! priors in `.priors/` (`train::prior`) and the cached file lists of image folders in `.filelists/`
//! (`data::filelist`, which sits below the store and is handed the folder). An executor keeps its own files in its folder of the sweep
//! ([`layout::executor_dir`]); their names are its own.
//!
//! The store imports `spec` (a plan's runs), `metrics` (the values of a metrics row) and `atomic`.

pub mod curve_file;
pub mod decision;
pub mod layout;
pub mod lock;
pub mod log;
pub mod metrics_file;
pub mod model_info;
pub mod plan;
pub mod protocol;
pub mod status;
