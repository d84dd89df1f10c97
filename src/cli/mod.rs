//! The `sweep` command line: argument definitions (clap) and dispatch to one function per subcommand.
//!
//! Exit codes: 0 success, 1 a run or command failed, 2 bad usage or a bad spec, 130 interrupted;
//! `sweep exec` also exits with 75 when another process trains its run already (its codes are the
//! process protocol's, [`crate::store::protocol::ExecExit`]).

mod data_cmd;
mod infer_cmd;
mod plan_cmd;
mod report_cmd;
mod run_cmd;
mod status_cmd;
pub mod table;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};

use crate::device::Device;
use crate::runner::ExecutorKind;

/// Define, run and compare automatic-colorization experiments.
///
/// A TOML spec in experiments/ enumerates variants (task, loss, color space, backbone, features,
/// activation, ...); `sweep run` trains one model per variant and seed, `sweep report` compares them.
#[derive(Parser, Debug)]
#[command(name = "sweep", version, propagate_version = true, arg_required_else_help = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Expand a spec into its runs and print them (nothing is trained).
    Plan(PlanArgs),
    /// Train every run of a spec that is not done yet.
    Run(RunArgs),
    /// Show the state of every run of a sweep.
    Status(StatusArgs),
    /// Turn a sweep's results into comparison tables and plots.
    Report(ReportArgs),
    /// Train one run from its folder (what the executors start for each run), or several at once.
    Exec(ExecArgs),
    /// Colorize photos with a trained run.
    Colorize(ColorizeArgs),
    /// Evaluate a trained run on another data set.
    Eval(EvalArgs),
    /// Download or inspect data sets.
    #[command(subcommand)]
    Data(DataCommand),
    /// List every config key with its default, when it applies and what it does.
    Keys(KeysArgs),
    /// Print a shell completion script (e.g. `sweep completions bash > /etc/bash_completion.d/sweep`).
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

/// A spec and its command-line overrides.
#[derive(Args, Debug, Clone)]
pub struct SpecArgs {
    /// The experiment spec (TOML), e.g. experiments/quickstart.toml.
    pub spec: PathBuf,
    /// Override a [base] key (typed by the schema), e.g. --set lr=0.01 --set dataset=synthetic;
    /// [sweep] and [slurm] keys as sweep.KEY and slurm.KEY, e.g. --set sweep.seeds=[0,1,2]. Repeatable.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub overrides: Vec<String>,
}

#[derive(Args, Debug)]
pub struct PlanArgs {
    #[command(flatten)]
    pub spec: SpecArgs,
    /// Print the runs as JSON (with every resolved key) instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    pub spec: SpecArgs,
    /// Runs trained at once on this machine (CPU threads are split between them), 1 to 256 [default: 1].
    #[arg(long, short = 'j', value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=256))]
    pub jobs: Option<usize>,
    /// Device slots, one run each, e.g. cuda:0,cuda:1 (sets CUDA_VISIBLE_DEVICES for each child);
    /// cpu is a CPU slot.
    #[arg(long, value_delimiter = ',')]
    pub devices: Vec<Device>,
    /// Runs trained at once on each device of --devices (CPU threads are split between all slots), 1
    /// to 64 [default: 1].
    #[arg(long, requires = "devices", value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=64))]
    pub per_device: Option<usize>,
    /// Where runs execute: child processes here, or a Slurm job array (resources from the spec's
    /// [slurm] table; this command follows the job and resubmits failed tasks).
    #[arg(long, value_enum, default_value_t = ExecutorKind::Local)]
    pub executor: ExecutorKind,
    /// Results folder; runs go to DIR/<sweep>/<run-id>/.
    #[arg(long, default_value = "results")]
    pub results: PathBuf,
    /// Device of each run: cpu, cuda:N or wgpu:N (on Slurm, cuda:0 is the task's first GPU).
    #[arg(long, default_value = "cpu")]
    pub device: Device,
    /// Train failed runs again, with a fresh set of the spec's max_retries retries.
    #[arg(long)]
    pub retry_failed: bool,
    /// Stop the sweep at the first run that fails for good, after its retries (local executor).
    #[arg(long)]
    pub fail_fast: bool,
    /// Print what would run (for Slurm: the job script and its runs) without writing or starting anything.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Args, Debug)]
pub struct StatusArgs {
    /// A spec, or a sweep's results folder (results/<sweep>).
    pub target: Option<PathBuf>,
    /// Results folder, when TARGET is a spec.
    #[arg(long, default_value = "results")]
    pub results: PathBuf,
    /// Refresh until every run is done or failed: in place on a terminal; piped, a new table (or
    /// JSON line) each time a run moves. Works for a sweep trained elsewhere (another terminal, Slurm).
    #[arg(long)]
    pub watch: bool,
    /// Seconds between refreshes of --watch.
    #[arg(long, default_value_t = 2.0, value_parser = positive_seconds)]
    pub interval: f64,
    /// Print the status as JSON (one object per line with --watch): every run's state, epochs,
    /// primary metric, seconds and ETA, and the sweep's.
    #[arg(long)]
    pub json: bool,
}

/// A number of seconds > 0, finite (for --interval).
fn positive_seconds(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 && v <= 86_400.0 => Ok(v),
        _ => Err(format!("{text} is not a number of seconds in (0, 86400]")),
    }
}

#[derive(Args, Debug)]
pub struct ReportArgs {
    /// Specs or results folders; two or more are compared on one page.
    pub targets: Vec<PathBuf>,
    /// Output folder (default reports/<sweep>/, or reports/<a>-vs-<b>/ for several sweeps).
    #[arg(long, short = 'o')]
    pub output: Option<PathBuf>,
    /// Results folder, when a target is a spec.
    #[arg(long, default_value = "results")]
    pub results: PathBuf,
    /// The epoch of each run the tables and plots use: its last, or its best checkpoint's (chosen by
    /// the primary metric on the same validation images, so optimistic). summary.csv has both.
    #[arg(long, value_enum, default_value_t = EpochChoice::Last)]
    pub epoch: EpochChoice,
    /// Rewrite the report each time an epoch finishes (the page says it is partial and when it was
    /// made) until every run is done or failed, then write the final one. For a sweep training
    /// elsewhere: another terminal, Slurm.
    #[arg(long)]
    pub watch: bool,
    /// Seconds between looks at the results with --watch.
    #[arg(long, default_value_t = 5.0, value_parser = positive_seconds)]
    pub interval: f64,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum EpochChoice {
    Last,
    Best,
}

#[derive(Args, Debug)]
pub struct ExecArgs {
    /// The run's folder, holding its config.toml. Several: trained at once on DEVICE, each in its own
    /// process (its output in its log.txt), the CPU threads split between them (a Slurm task's pack).
    #[arg(required = true)]
    pub run_dirs: Vec<PathBuf>,
    /// cpu, cuda:N or wgpu:N.
    #[arg(long, default_value = "cpu")]
    pub device: Device,
    /// No progress bar or log lines on stdout (log.txt still gets them); what the executors use.
    #[arg(long)]
    pub quiet: bool,
    /// Train the runs as a pack (also one), recording how each one's process ended in
    /// DIR/<run-id>.json as it ends: what the Slurm executor's packed tasks run.
    #[arg(long, value_name = "DIR")]
    pub ends: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct ColorizeArgs {
    /// The trained run's folder, or SWEEP_FOLDER/VARIANT for the variant's run with the lowest seed
    /// (e.g. results/quickstart/classification-rebalanced).
    #[arg(long)]
    pub run: PathBuf,
    /// Image files (JPEG, PNG) or folders (recursed).
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// Output file (.png, .jpg or .jpeg; one input file) or folder (outputs mirror the inputs' names).
    #[arg(long, short = 'o', default_value = "colorized")]
    pub output: PathBuf,
    /// Annealed-mean temperature for classification runs, a number > 0 (lower: more saturated;
    /// default: the run's `temperature`).
    #[arg(long, value_parser = positive_number, allow_hyphen_values = true)]
    pub temperature: Option<f64>,
    /// Working resolution of the model (default: the run's image_size), up to the largest side whose
    /// forward pass fits in 8 GB (colorize names it for the run; about 1200 for the quickstart's
    /// classification runs).
    #[arg(long)]
    pub size: Option<usize>,
    /// Also write a side-by-side sheet: gray | colorized | original.
    #[arg(long)]
    pub compare: bool,
    /// Overwrite existing outputs. Without it, an output file named by -o that exists is an error
    /// (exit code 1), and existing outputs in an output folder are skipped and listed (so that an
    /// interrupted batch resumes). An input is never overwritten, even with --force.
    #[arg(long)]
    pub force: bool,
    /// best, last, or a checkpoint folder.
    #[arg(long, default_value = "best")]
    pub checkpoint: String,
    /// cpu, cuda:N or wgpu:N.
    #[arg(long, default_value = "cpu")]
    pub device: Device,
}

#[derive(Args, Debug)]
pub struct EvalArgs {
    /// The trained run's folder, or SWEEP_FOLDER/VARIANT for the variant's run with the lowest seed
    /// (e.g. results/quickstart/classification-rebalanced).
    #[arg(long)]
    pub run: PathBuf,
    /// Data set: synthetic, cifar10, cifar100 or folder.
    #[arg(long, default_value = "synthetic")]
    pub dataset: String,
    /// Where the data set lives.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Change data keys or the decoding temperature, e.g. --set data_seed=7 --set val_images=500.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub overrides: Vec<String>,
    /// Write the metrics to this CSV or JSON file.
    #[arg(long, short = 'o')]
    pub output: Option<PathBuf>,
    /// best, last, or a checkpoint folder.
    #[arg(long, default_value = "last")]
    pub checkpoint: String,
    /// cpu, cuda:N or wgpu:N.
    #[arg(long, default_value = "cpu")]
    pub device: Device,
}

#[derive(Subcommand, Debug)]
pub enum DataCommand {
    /// Download a data set's official archive, verify its checksum and unpack it.
    Fetch(FetchArgs),
    /// Write a contact sheet (colour | gray) and print counts per split and class.
    Show(ShowArgs),
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum FetchName {
    Cifar10,
    Cifar100,
}

#[derive(Args, Debug)]
pub struct FetchArgs {
    #[arg(value_enum)]
    pub name: FetchName,
    /// Folder to unpack into.
    #[arg(long, default_value = "data")]
    pub dir: PathBuf,
    /// Mirror to download from instead of the official host (also SWEEP_CIFAR_MIRROR).
    #[arg(long)]
    pub mirror: Option<String>,
}

#[derive(Args, Debug)]
pub struct ShowArgs {
    /// synthetic, cifar10, cifar100 or folder.
    pub dataset: String,
    /// Data keys, e.g. --set data_dir=data --set image_size=64 --set color_space=yuv.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub overrides: Vec<String>,
    /// Images on the sheet, 1 to 1024.
    #[arg(long, default_value_t = 32, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=1024))]
    pub count: usize,
    /// The PNG to write.
    #[arg(long, short = 'o', default_value = "contact_sheet.png")]
    pub output: PathBuf,
}

#[derive(Args, Debug)]
pub struct KeysArgs {
    /// Print a Markdown table (for the README) instead of the terminal table.
    #[arg(long)]
    pub markdown: bool,
}

/// A finite number above 0 (clap's parser of `--temperature`).
fn positive_number(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(x) if x.is_finite() && x > 0.0 => Ok(x),
        Ok(_) => Err(format!("`{text}` is not a number > 0")),
        Err(_) => Err(format!("`{text}` is not a number: give one > 0, e.g. 0.38")),
    }
}

/// A failure with its exit code: 2 for bad input the user must fix, 1 for everything else.
pub struct Failure {
    pub code: u8,
    pub error: anyhow::Error,
}

impl<E: Into<anyhow::Error>> From<E> for Failure {
    fn from(e: E) -> Self {
        let error = e.into();
        let usage = error.is::<crate::spec::SpecError>() || error.is::<crate::runner::BadOptions>();
        let code = if usage { 2 } else { 1 };
        Failure { code, error }
    }
}

pub type CmdResult = Result<(), Failure>;

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Plan(args) => plan_cmd::plan(args),
        Command::Keys(args) => plan_cmd::keys(args),
        Command::Data(DataCommand::Fetch(args)) => data_cmd::fetch(args),
        Command::Data(DataCommand::Show(args)) => data_cmd::show(args),
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "sweep", &mut std::io::stdout());
            Ok(())
        }
        Command::Run(args) => run_cmd::run(args),
        Command::Exec(args) => run_cmd::exec(args),
        Command::Status(args) => status_cmd::status(args),
        Command::Report(args) => report_cmd::report(args),
        Command::Colorize(args) => infer_cmd::colorize_cmd(args),
        Command::Eval(args) => infer_cmd::eval_cmd(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure { code, error }) => {
            eprintln!("error: {}", crate::terminal::text(&format!("{error:#}")));
            ExitCode::from(code)
        }
    }
}
