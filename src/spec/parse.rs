//! Reading a spec file: TOML syntax, the top-level tables, key names and value types, each error with
//! the file, line and column of the offending text. Expansion into runs is `expand.rs`'s job.
//!
//! `[slurm]` (the Slurm executor's resources) is read here too; it says where runs execute, not what
//! they train, so it is not part of run identity. `[search]` and `[early_stop]` are read by their own
//! modules (`super::search`, `super::early_stop`) with this module's `Reader`.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use toml::Value;
use toml::de::{DeTable, DeValue};

use super::early_stop::EarlyStop;
use super::error::{Diagnostic, SpecError, did_you_mean};
use super::generate::Strategy;
use super::schema::{self, Key};
use super::search::Search;
use super::value::{Origin, PathBase, SourceFile, check, show};
use crate::metrics::Metric;
use crate::named::Named;

/// The `[sweep]` table.
#[derive(Clone, Debug)]
pub struct SweepMeta {
    pub name: String,
    pub description: String,
    pub seeds: Vec<u64>,
    /// Primary metric.
    pub metric: Metric,
    /// Where the primary metric was chosen, for errors about it (no run measures it).
    pub metric_origin: Origin,
    pub higher_is_better: bool,
    /// Automatic retries of a failed run.
    pub max_retries: u32,
}

/// The `[slurm]` table: resources of each task of the job array the Slurm executor submits. `None`
/// leaves the choice to the cluster's defaults.
#[derive(Clone, Debug, PartialEq)]
pub struct SlurmSpec {
    pub partition: Option<String>,
    /// GPUs per task (`--gpus-per-task`); 0 asks for none.
    pub gpus_per_task: u32,
    pub cpus_per_task: Option<u32>,
    /// Memory per task in Slurm's notation (`--mem`): a number of megabytes or with a K/M/G/T suffix.
    pub mem: Option<String>,
    /// Time limit per task in Slurm's notation (`--time`): minutes, MM:SS, HH:MM:SS, D-HH, D-HH:MM or
    /// D-HH:MM:SS.
    pub time: Option<String>,
    /// Tasks running at once (`--array=...%K`).
    pub max_concurrent: Option<u32>,
    /// Further sbatch options, one per `#SBATCH` line, e.g. `--account=lab`.
    pub extra: Vec<String>,
    /// Runs trained at once in each task, sharing its GPU and CPUs (1 to [`MAX_RUNS_PER_TASK`]).
    pub runs_per_task: u32,
}

/// The most runs one Slurm task packs (as `sweep run --per-device` allows).
pub const MAX_RUNS_PER_TASK: u32 = 64;

impl SlurmSpec {
    /// `mem` in bytes, in Slurm's binary units (a bare number is megabytes; `16G` is 16 GiB);
    /// `None` when unset, or 0 (Slurm's "all of a node's memory").
    pub fn mem_bytes(&self) -> Option<u64> {
        let mem = self.mem.as_deref()?;
        let (digits, shift) = match mem.as_bytes().last()?.to_ascii_uppercase() {
            b'K' => (&mem[..mem.len() - 1], 10),
            b'M' => (&mem[..mem.len() - 1], 20),
            b'G' => (&mem[..mem.len() - 1], 30),
            b'T' => (&mem[..mem.len() - 1], 40),
            _ => (mem, 20),
        };
        digits.parse::<u64>().ok().filter(|&n| n > 0)?.checked_mul(1 << shift)
    }
}

impl Default for SlurmSpec {
    /// No resources asked for, one run per task.
    fn default() -> Self {
        SlurmSpec {
            partition: None,
            gpus_per_task: 0,
            cpus_per_task: None,
            mem: None,
            time: None,
            max_concurrent: None,
            extra: Vec::new(),
            runs_per_task: 1,
        }
    }
}

/// One `key = value` of a spec, checked against the schema.
#[derive(Clone, Debug)]
pub struct Entry {
    pub key: &'static Key,
    pub value: Value,
    pub origin: Origin,
}

/// A `[grid]` axis: a key and the values it takes.
#[derive(Clone, Debug)]
pub struct Axis {
    pub key: &'static Key,
    pub values: Vec<Entry>,
}

/// A `[[variant]]`.
#[derive(Clone, Debug)]
pub struct VariantDef {
    pub name: Option<String>,
    pub entries: Vec<Entry>,
    pub origin: Origin,
}

/// An `[[exclude]]`: drops every combination whose values match all of its keys (a list matches any
/// of its values; `name` matches the variant's name).
#[derive(Clone, Debug)]
pub struct ExcludeRule {
    pub name: Option<String>,
    pub matches: Vec<(&'static Key, Vec<Value>)>,
    pub origin: Origin,
}

/// `[reference]`: published numbers per variant and where they come from; `sweep report` shows them
/// beside the measured ones.
#[derive(Clone, Debug)]
pub struct Reference {
    pub citation: String,
    pub url: Option<String>,
    pub variants: Vec<PublishedVariant>,
    /// Orderings the paper states in words (`[[reference.claim]]`).
    pub claims: Vec<Claim>,
}

/// A published ordering: variant `above` measures higher on `metric` than variant `below` does on
/// `below_metric` (the same metric unless the claim compares two metrics of one variant, as in
/// "colorized images are recognised better than gray ones").
#[derive(Clone, Debug)]
pub struct Claim {
    /// The paper's statement and where it is made.
    pub says: String,
    pub metric: String,
    pub above: String,
    pub below: String,
    pub below_metric: String,
    pub origin: Origin,
}

/// The published numbers of one variant: `(metric, value)`, each metric a [`Metric`]'s name.
#[derive(Clone, Debug)]
pub struct PublishedVariant {
    pub name: String,
    pub values: Vec<(String, f64)>,
    pub origin: Origin,
}

/// A parsed, type-checked spec.
#[derive(Clone, Debug)]
pub struct Spec {
    pub path: PathBuf,
    pub meta: SweepMeta,
    /// `[sweep]` data set defaults, applied below `[base]`.
    pub data_defaults: Vec<Entry>,
    pub base: Vec<Entry>,
    pub grid: Vec<Axis>,
    pub variants: Vec<VariantDef>,
    pub excludes: Vec<ExcludeRule>,
    pub reference: Option<Reference>,
    pub slurm: SlurmSpec,
    /// `[search]`: random or quasi-random trials inside each variant.
    pub search: Option<Search>,
    /// `[early_stop]`: which trials the orchestrator stops early.
    pub early_stop: Option<EarlyStop>,
    /// How the combinations are generated: grid x variants, or a search inside each of them when the
    /// spec has a `[search]` table (see `super::generate`).
    pub strategy: Strategy,
}

const TOP_LEVEL: &[&str] =
    &["sweep", "base", "grid", "variant", "exclude", "reference", "slurm", "search", "early_stop"];
/// The table of a run's `config.toml` that records where its relative paths resolved.
pub const PATHS_TABLE: &str = "paths";
const REFERENCE_KEYS: &[&str] = &["citation", "url", "variants", "claim"];
const CLAIM_KEYS: &[&str] = &["says", "metric", "above", "below", "below_metric"];
const SWEEP_KEYS: &[&str] =
    &["name", "description", "seeds", "metric", "higher_is_better", "dataset", "data_dir", "max_retries"];
const SLURM_KEYS: &[&str] =
    &["partition", "gpus_per_task", "cpus_per_task", "mem", "time", "max_concurrent", "runs_per_task", "extra"];

/// The largest spec file read (a grid of 100,000 values is well under it).
const MAX_SPEC_BYTES: u64 = 16 << 20;

/// Collects diagnostics while a spec is read.
pub(super) struct Reader {
    pub(super) file: Arc<SourceFile>,
    pub(super) errors: Vec<Diagnostic>,
}

impl Reader {
    pub(super) fn origin(&self, span: Range<usize>) -> Origin {
        Origin::File { file: self.file.clone(), span }
    }
    pub(super) fn error(&mut self, message: String, span: Range<usize>, help: Option<String>) {
        let mut d = Diagnostic::new(message, self.origin(span));
        d.help = help;
        self.errors.push(d);
    }
    pub(super) fn value(&mut self, v: &toml::Spanned<DeValue>, what: &str) -> Option<Value> {
        match to_value(v.get_ref()) {
            Ok(value) => Some(value),
            Err(msg) => {
                self.error(format!("{what}: {msg}"), v.span(), None);
                None
            }
        }
    }
}

impl Spec {
    pub fn from_file(path: &Path) -> Result<Spec, SpecError> {
        Spec::from_str(path, read_text(path)?)
    }

    pub fn from_str(path: &Path, text: String) -> Result<Spec, SpecError> {
        Spec::parse(SourceFile { path: path.to_path_buf(), text, paths: PathBase::folder_of(path) })
    }

    /// Reads a run's `config.toml`: a one-run spec with a `[paths]` table of where its relative paths
    /// resolved when it was written ([`PathBase::Recorded`]).
    pub fn from_run_config(path: &Path) -> Result<Spec, SpecError> {
        let text = read_text(path)?;
        let table: Option<toml::Table> = toml::from_str(&text).ok();
        let recorded = table
            .as_ref()
            .and_then(|t| t.get(PATHS_TABLE)?.as_table())
            .map(|t| t.iter().filter_map(|(k, v)| Some((k.clone(), PathBuf::from(v.as_str()?)))).collect())
            .unwrap_or_default();
        Spec::parse(SourceFile { path: path.to_path_buf(), text, paths: PathBase::Recorded(recorded) })
    }

    fn parse(file: SourceFile) -> Result<Spec, SpecError> {
        let file = Arc::new(file);
        let path = file.path.as_path();
        let doc = DeTable::parse(&file.text).map_err(|e| syntax_error(&file, &e))?;
        let mut r = Reader { file: file.clone(), errors: Vec::new() };
        let root = doc.get_ref();
        check_tables(&mut r, root);
        let get = |name: &str| root.iter().find(|(k, _)| k.get_ref() == name).map(|(_, v)| v);

        let (meta, data_defaults) = read_sweep_table(&mut r, get("sweep"));
        let base = get("base").map(|v| table_entries(&mut r, v, "base")).unwrap_or_default();
        let grid = get("grid").map(|v| read_grid(&mut r, v)).unwrap_or_default();
        let variants = get("variant").map(|v| read_variants(&mut r, v)).unwrap_or_default();
        let excludes = match get("exclude") {
            Some(v) => array_of_tables(&mut r, v, "exclude").into_iter().map(|t| read_exclude(&mut r, t)).collect(),
            None => Vec::new(),
        };
        let reference = get("reference").and_then(|v| read_reference(&mut r, v));
        let slurm = match get("slurm") {
            Some(v) => match v.get_ref().as_table() {
                Some(t) => read_slurm(&mut r, t),
                None => {
                    r.error("`slurm` must be a table: [slurm]".into(), v.span(), None);
                    SlurmSpec::default()
                }
            },
            None => SlurmSpec::default(),
        };

        let search = get("search").and_then(|v| super::search::read(&mut r, v));
        let early_stop = get("early_stop").and_then(|v| super::early_stop::read(&mut r, v));
        let strategy = if search.is_some() { Strategy::Search } else { Strategy::Grid };
        match (meta, r.errors.is_empty()) {
            (Some(meta), true) => Ok(Spec {
                path: path.to_path_buf(),
                meta,
                data_defaults,
                base,
                grid,
                variants,
                excludes,
                reference,
                slurm,
                search,
                early_stop,
                strategy,
            }),
            (Some(_), false) | (None, _) => Err(SpecError(r.errors)),
        }
    }
}

fn read_text(path: &Path) -> Result<String, SpecError> {
    // Read up to a bound: /dev/zero would never end (a pipe, `<(...)`, is fine).
    let mut bytes = Vec::new();
    let read = std::fs::File::open(path)
        .and_then(|f| std::io::Read::read_to_end(&mut std::io::Read::take(f, MAX_SPEC_BYTES + 1), &mut bytes));
    let problem = match read {
        Err(e) => Some(e.to_string()),
        Ok(_) if bytes.len() as u64 > MAX_SPEC_BYTES => {
            Some(format!("it holds more than {MAX_SPEC_BYTES} bytes, more than a spec may"))
        }
        Ok(_) => None,
    };
    if let Some(problem) = problem {
        let d = Diagnostic::new(format!("cannot read spec {}: {problem}", path.display()), Origin::Default);
        return Err(d.help("give the path of a TOML spec, e.g. experiments/quickstart.toml").into());
    }
    let text = String::from_utf8(bytes).map_err(|e| {
        Diagnostic::new(format!("cannot read spec {}: it is not UTF-8 text ({e})", path.display()), Origin::Default)
            .help("a spec is a TOML file, e.g. experiments/quickstart.toml")
    })?;
    Ok(text)
}

/// A TOML syntax error at its place in the file; a dotted key under a shorthand gets its own help.
fn syntax_error(file: &Arc<SourceFile>, e: &toml::de::Error) -> Diagnostic {
    let span = e.span().unwrap_or(0..0);
    let message = e.message().trim_end();
    let d = Diagnostic::new(
        format!("TOML syntax error: {message}"),
        Origin::File { file: file.clone(), span: span.clone() },
    );
    if !message.contains("dotted key") {
        return d;
    }
    // `backbone = "vgg16"` followed by `backbone.pretrain = ...` in one table: the span starts at the
    // dotted key, whose first part names the shorthand.
    let dotted = file.text.get(span.start..).unwrap_or("");
    let table = dotted.split(['.', '=', ' ']).next().unwrap_or("");
    let help = match schema::SHORTHANDS.iter().find(|s| s.0 == table) {
        Some((t, k)) => format!(
            "a key cannot be both a value and a table: write `{k} = \"...\"` (not `{t} = \"...\"`) where the same table sets other `{t}.*` keys"
        ),
        None => format!(
            "a key cannot be both a value and a table: this table gives `{table}` a value and `{table}.*` keys; keep one"
        ),
    };
    d.help(help)
}

/// Every top-level table must be one a spec has (a run's `config.toml` also has `[paths]`).
fn check_tables(r: &mut Reader, root: &DeTable) {
    let recorded = matches!(r.file.paths, PathBase::Recorded(_));
    for (k, _) in root.iter() {
        let name = k.get_ref().as_ref();
        let known = TOP_LEVEL.contains(&name) || (recorded && name == PATHS_TABLE);
        if !known {
            let help = did_you_mean(k.get_ref(), TOP_LEVEL.iter().copied())
                .map(|s| format!("did you mean `{s}`?"))
                .unwrap_or_else(|| format!("a spec has the tables {}", schema::quoted_list(TOP_LEVEL)));
            r.error(format!("unknown table `{}`", k.get_ref()), k.span(), Some(help));
        }
    }
}

/// `[sweep]`, which every spec needs.
fn read_sweep_table(r: &mut Reader, v: Option<&toml::Spanned<DeValue>>) -> (Option<SweepMeta>, Vec<Entry>) {
    match v {
        Some(v) => match v.get_ref().as_table() {
            Some(t) => read_sweep(r, t),
            None => {
                r.error("`sweep` must be a table: [sweep]".into(), v.span(), None);
                (None, Vec::new())
            }
        },
        None => {
            r.error(
                "the spec has no [sweep] table".into(),
                0..0,
                Some("start the spec with [sweep] and name = \"my-sweep\"".into()),
            );
            (None, Vec::new())
        }
    }
}

/// `[grid]`: one list of values per axis.
fn read_grid(r: &mut Reader, v: &toml::Spanned<DeValue>) -> Vec<Axis> {
    let mut grid: Vec<Axis> = Vec::new();
    for FlatItem { key, key_span, value } in flatten(r, v, "grid") {
        let Some(items) = value.get_ref().as_array() else {
            let example = key.default.unwrap_or("...");
            r.error(
                format!("grid axis `{}` must be a list of the values it takes", key.name),
                value.span(),
                Some(format!("e.g. {} = [{example}, ...]", key.name)),
            );
            continue;
        };
        if items.is_empty() {
            r.error(format!("grid axis `{}` has no values", key.name), value.span(), None);
            continue;
        }
        let values: Vec<Entry> = items.iter().filter_map(|item| checked(r, key, item)).collect();
        if grid.iter().any(|a| a.key.name == key.name) {
            r.error(format!("grid axis `{}` is given twice", key.name), key_span, None);
        }
        grid.push(Axis { key, values });
    }
    grid
}

/// The `[[variant]]`s, whose names must differ.
fn read_variants(r: &mut Reader, v: &toml::Spanned<DeValue>) -> Vec<VariantDef> {
    let variants: Vec<VariantDef> =
        array_of_tables(r, v, "variant").into_iter().map(|table| read_variant(r, table)).collect();
    let mut names: Vec<&str> = Vec::new();
    for v in &variants {
        if let Some(name) = &v.name {
            if names.contains(&name.as_str()) {
                r.errors.push(Diagnostic::new(format!("two variants are named \"{name}\""), v.origin.clone()));
            }
            names.push(name);
        }
    }
    variants
}

fn read_sweep(r: &mut Reader, t: &DeTable) -> (Option<SweepMeta>, Vec<Entry>) {
    let mut meta = SweepMeta {
        name: String::new(),
        description: String::new(),
        seeds: vec![0],
        metric: Metric::Psnr,
        metric_origin: Origin::Default,
        higher_is_better: true,
        max_retries: 0,
    };
    let mut higher_given = false;
    let mut data_defaults = Vec::new();
    for (k, v) in t.iter() {
        let key = k.get_ref().as_ref();
        let span = v.span();
        let Some(value) = r.value(v, &format!("[sweep] {key}")) else { continue };
        if key == "dataset" || key == "data_dir" {
            let key = schema::key(key).expect("data keys are in the schema");
            match check(key, &value) {
                Ok(value) => data_defaults.push(Entry { key, value, origin: r.origin(span) }),
                Err(msg) => r.error(msg, span, None),
            }
            continue;
        }
        higher_given |= key == "higher_is_better";
        if key == "metric" {
            meta.metric_origin = r.origin(span.clone());
        }
        if let Err((msg, help)) = apply_sweep_key(&mut meta, key, &value) {
            let span = if SWEEP_KEYS.contains(&key) { span } else { k.span() };
            r.error(msg, span, help);
        }
    }
    if meta.name.is_empty() {
        r.error(
            "[sweep] has no name".into(),
            0..0,
            Some("add name = \"...\": it names the folder results/<name>/".into()),
        );
        return (None, data_defaults);
    }
    if !higher_given {
        meta.higher_is_better = meta.metric.higher_is_better();
    }
    (Some(meta), data_defaults)
}

/// Sets one `[sweep]` key (from the spec or from `--set sweep.KEY=VALUE`); the error is a message and
/// an optional help line.
pub fn apply_sweep_key(meta: &mut SweepMeta, key: &str, value: &Value) -> Result<(), (String, Option<String>)> {
    let invalid = |help: &str| Err((format!("[sweep] {key} = {} is not valid", show(value)), Some(help.to_string())));
    match key {
        "name" => match value.as_str() {
            Some(s) if valid_name(s) => meta.name = s.to_string(),
            _ => {
                return invalid(&format!(
                    "it names the results folder: use up to {MAX_SWEEP_NAME} letters, digits, '-', '_' and '.', e.g. name = \"losses\""
                ));
            }
        },
        "description" => match value.as_str() {
            Some(s) => meta.description = s.to_string(),
            None => return invalid("give a string"),
        },
        "seeds" => {
            let parsed: Option<Vec<u64>> = value
                .as_array()
                .filter(|a| !a.is_empty())
                .and_then(|a| a.iter().map(|s| s.as_integer().and_then(|i| u64::try_from(i).ok())).collect());
            let Some(list) = parsed else {
                return invalid("give a non-empty list of integers >= 0, e.g. seeds = [0, 1, 2]");
            };
            let mut sorted = list.clone();
            sorted.sort_unstable();
            sorted.dedup();
            if sorted.len() != list.len() {
                return invalid("each seed may appear once");
            }
            meta.seeds = list;
        }
        "metric" => match value.as_str().and_then(Metric::parse) {
            Some(metric) => meta.metric = metric,
            None => {
                let help = metric_help(value.as_str().unwrap_or(""), "valid metrics:", '"');
                return Err((format!("[sweep] metric = {} is not a known metric", show(value)), Some(help)));
            }
        },
        "higher_is_better" => match value.as_bool() {
            Some(b) => meta.higher_is_better = b,
            None => return invalid("give true or false"),
        },
        "max_retries" => match value.as_integer().and_then(|i| u32::try_from(i).ok()) {
            Some(n) => meta.max_retries = n,
            None => return invalid("give an integer >= 0"),
        },
        _ => {
            let help = did_you_mean(key, SWEEP_KEYS.iter().copied())
                .map(|s| format!("did you mean `{s}`?"))
                .unwrap_or_else(|| format!("[sweep] takes {}", schema::quoted_list(SWEEP_KEYS)));
            return Err((format!("unknown key `{key}` in [sweep]"), Some(help)));
        }
    }
    Ok(())
}

fn read_slurm(r: &mut Reader, t: &DeTable) -> SlurmSpec {
    let mut slurm = SlurmSpec::default();
    for (k, v) in t.iter() {
        let key = k.get_ref().as_ref();
        let Some(value) = r.value(v, &format!("[slurm] {key}")) else { continue };
        if let Err((msg, help)) = apply_slurm_key(&mut slurm, key, &value) {
            let span = if SLURM_KEYS.contains(&key) { v.span() } else { k.span() };
            r.error(msg, span, help);
        }
    }
    slurm
}

/// Sets one `[slurm]` key (from the spec or from `--set slurm.KEY=VALUE`); the error is a message and
/// an optional help line. Values end up on `#SBATCH` lines, so each is checked against Slurm's
/// notation here rather than failing at submission.
pub fn apply_slurm_key(slurm: &mut SlurmSpec, key: &str, value: &Value) -> Result<(), (String, Option<String>)> {
    let invalid = |help: &str| Err((format!("[slurm] {key} = {} is not valid", show(value)), Some(help.to_string())));
    let count = |min: i64| value.as_integer().filter(|&i| i >= min).and_then(|i| u32::try_from(i).ok());
    match key {
        "partition" => match value.as_str() {
            Some(s) if !s.is_empty() && s.chars().all(|c| c.is_ascii_graphic() && c != '#') => {
                slurm.partition = Some(s.to_string())
            }
            _ => return invalid("give a partition's name as `sinfo` lists it, e.g. partition = \"gpu\""),
        },
        "gpus_per_task" => match count(0) {
            Some(n) => slurm.gpus_per_task = n,
            None => return invalid("give an integer >= 0, e.g. gpus_per_task = 1"),
        },
        "cpus_per_task" => match count(1) {
            Some(n) => slurm.cpus_per_task = Some(n),
            None => return invalid("give an integer >= 1, e.g. cpus_per_task = 4"),
        },
        "max_concurrent" => match count(1) {
            Some(n) => slurm.max_concurrent = Some(n),
            None => return invalid("give an integer >= 1: the tasks that may run at once, e.g. max_concurrent = 4"),
        },
        "runs_per_task" => match count(1).filter(|&n| n <= MAX_RUNS_PER_TASK) {
            Some(n) => slurm.runs_per_task = n,
            None => {
                return invalid(&format!(
                    "give an integer from 1 to {MAX_RUNS_PER_TASK}: the runs each task trains at once on its GPU, e.g. runs_per_task = 4"
                ));
            }
        },
        "mem" => match value {
            Value::Integer(i) if *i >= 0 => slurm.mem = Some(i.to_string()),
            Value::String(s) if slurm_mem(s) => slurm.mem = Some(s.clone()),
            _ => return invalid("give megabytes or a number with a K, M, G or T suffix, e.g. mem = \"16G\""),
        },
        "time" => match value {
            Value::Integer(i) if *i >= 0 => slurm.time = Some(i.to_string()),
            Value::String(s) if slurm_time(s) => slurm.time = Some(s.clone()),
            _ => {
                return invalid("give minutes or MM:SS, HH:MM:SS, D-HH, D-HH:MM, D-HH:MM:SS, e.g. time = \"04:00:00\"");
            }
        },
        "extra" => {
            let lines: Option<Vec<String>> = value.as_array().and_then(|a| {
                a.iter()
                    .map(|v| v.as_str().filter(|s| s.starts_with('-') && !s.contains(['\n', '\r'])).map(str::to_string))
                    .collect()
            });
            match lines {
                Some(lines) => slurm.extra = lines,
                None => {
                    return invalid(
                        "give a list of sbatch options, one per #SBATCH line, e.g. extra = [\"--account=lab\", \"--qos=high\"]",
                    );
                }
            }
        }
        _ => {
            let help = did_you_mean(key, SLURM_KEYS.iter().copied())
                .map(|s| format!("did you mean `{s}`?"))
                .unwrap_or_else(|| {
                    format!(
                        "[slurm] takes {}; other sbatch options go in extra = [\"--option=value\"]",
                        schema::quoted_list(SLURM_KEYS)
                    )
                });
            return Err((format!("unknown key `{key}` in [slurm]"), Some(help)));
        }
    }
    Ok(())
}

/// Slurm's `--mem`: digits with an optional K, M, G or T suffix.
fn slurm_mem(s: &str) -> bool {
    let digits = s.strip_suffix(['K', 'M', 'G', 'T', 'k', 'm', 'g', 't']).unwrap_or(s);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

/// Slurm's `--time`: minutes, MM:SS, HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS.
fn slurm_time(s: &str) -> bool {
    let number = |p: &str| !p.is_empty() && p.len() <= 6 && p.bytes().all(|b| b.is_ascii_digit());
    let (days, rest) = match s.split_once('-') {
        Some((d, rest)) => (Some(d), rest),
        None => (None, s),
    };
    let parts: Vec<&str> = rest.split(':').collect();
    days.is_none_or(number) && parts.iter().all(|p| number(p)) && (1..=3).contains(&parts.len())
}

/// `url` (trimmed) when it is an address a report may link: `http://` or `https://` and a host, with
/// no spaces, control characters, quotes, backticks or angle brackets (which would end the link in
/// Markdown or HTML).
pub fn web_url(url: &str) -> Option<&str> {
    let url = url.trim();
    let lower = url.to_ascii_lowercase();
    let rest = lower.strip_prefix("https://").or_else(|| lower.strip_prefix("http://"))?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    let bad = |c: char| c.is_whitespace() || crate::terminal::is_unsafe(c) || matches!(c, '"' | '\'' | '`' | '<' | '>');
    (!host.is_empty() && !url.chars().any(bad)).then_some(url)
}

/// Longest sweep name: it names a folder, and a report on several sweeps joins their names into one.
pub const MAX_SWEEP_NAME: usize = 64;
/// Longest `[[variant]]` name: it labels tables, plots and the sheet, and is typed in
/// `sweep colorize --run results/<sweep>/<variant>`.
pub const MAX_VARIANT_NAME: usize = 100;

/// Whether a sweep name is safe as a folder name.
pub fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_SWEEP_NAME
        && !s.starts_with('.')
        && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// What is wrong with a `[[variant]]` name, if anything: it must be one line of visible text
/// (control characters would reach terminals and files), short, and a name that
/// `results/<sweep>/<variant>` can address (no path separators, not `.` or `..`).
fn variant_name_problem(s: &str) -> Option<String> {
    if s.trim().is_empty() {
        Some("is empty".into())
    } else if let Some(c) = s.chars().find(|&c| crate::terminal::is_unsafe(c)) {
        Some(format!("holds the control character U+{:04X}", c as u32))
    } else if s.chars().count() > MAX_VARIANT_NAME {
        Some(format!("is {} characters long, more than {MAX_VARIANT_NAME}", s.chars().count()))
    } else if s.contains(['/', '\\']) || s == "." || s == ".." {
        Some("is a path (it holds / or \\, or is . or ..): `results/<sweep>/<variant>` could not name it".into())
    } else if s != s.trim() {
        Some("begins or ends with a space".into())
    } else {
        None
    }
}

fn read_variant(r: &mut Reader, (span, t): (Range<usize>, &DeTable)) -> VariantDef {
    let mut name = None;
    let mut entries = Vec::new();
    for (k, v) in t.iter() {
        if k.get_ref() == "name" {
            match v.get_ref().as_str().map(|s| (s, variant_name_problem(s))) {
                Some((s, None)) => name = Some(s.to_string()),
                Some((_, Some(problem))) => r.error(
                    format!("this variant's name {problem}"),
                    v.span(),
                    Some(format!(
                        "give a short label of up to {MAX_VARIANT_NAME} characters, e.g. name = \"cross-entropy-rebalanced\""
                    )),
                ),
                None => r.error("a variant's name must be a non-empty string".into(), v.span(), None),
            }
            continue;
        }
        for item in flatten_pair(r, k, v, "") {
            if let Some(e) = checked(r, item.key, item.value) {
                entries.push(e);
            }
        }
    }
    VariantDef { name, entries, origin: r.origin(span) }
}

fn read_exclude(r: &mut Reader, (span, t): (Range<usize>, &DeTable)) -> ExcludeRule {
    let mut name = None;
    let mut matches = Vec::new();
    for (k, v) in t.iter() {
        if k.get_ref() == "name" {
            match v.get_ref().as_str() {
                Some(s) => name = Some(s.to_string()),
                None => r.error("`name` in [[exclude]] must be a variant's name".into(), v.span(), None),
            }
            continue;
        }
        for item in flatten_pair(r, k, v, "") {
            // A list matches any of its values, unless the key itself takes a list.
            let list_key = matches!(item.key.kind, schema::Kind::IntList { .. } | schema::Kind::FloatList { .. });
            let values: Vec<Entry> = match item.value.get_ref().as_array() {
                Some(items) if !list_key || items.iter().all(|i| i.get_ref().is_array()) => {
                    items.iter().filter_map(|i| checked(r, item.key, i)).collect()
                }
                _ => checked(r, item.key, item.value).into_iter().collect(),
            };
            matches.push((item.key, values.into_iter().map(|e| e.value).collect()));
        }
    }
    if name.is_none() && matches.is_empty() {
        r.error("an [[exclude]] with no keys would drop every run".into(), span.clone(), None);
    }
    ExcludeRule { name, matches, origin: r.origin(span) }
}

/// `[reference]`: `citation` (required), `url`, and `[reference.variants]` mapping variant names to
/// tables of `metric = number`. That the names are the spec's variants is checked on expansion,
/// where grid variants get their names.
fn read_reference(r: &mut Reader, v: &toml::Spanned<DeValue>) -> Option<Reference> {
    let Some(t) = v.get_ref().as_table() else {
        r.error("`reference` must be a table: [reference]".into(), v.span(), None);
        return None;
    };
    let mut reference = Reference { citation: String::new(), url: None, variants: Vec::new(), claims: Vec::new() };
    let mut variants_given = false;
    for (k, v) in t.iter() {
        match k.get_ref().as_ref() {
            "citation" | "url" => match v.get_ref().as_str().map(str::trim).filter(|s| !s.is_empty()) {
                Some(s) if k.get_ref() == "url" => match web_url(s) {
                    Some(url) => reference.url = Some(url.to_string()),
                    None => r.error(
                        format!("[reference] url = {} is not an http(s) address", show(&Value::String(s.into()))),
                        v.span(),
                        Some("give the paper's web address, e.g. url = \"https://arxiv.org/abs/1603.08511\"".into()),
                    ),
                },
                Some(s) => reference.citation = s.to_string(),
                None => r.error(format!("[reference] {} must be a non-empty string", k.get_ref()), v.span(), None),
            },
            "variants" => {
                variants_given = true;
                let Some(table) = v.get_ref().as_table() else {
                    r.error(
                        "[reference] variants must be a table of variants".into(),
                        v.span(),
                        Some("write [reference.variants] and one line per variant, e.g. l2 = { auc = 91.2 }".into()),
                    );
                    continue;
                };
                for (name, numbers) in table.iter() {
                    if let Some(published) = read_published(r, name, numbers) {
                        reference.variants.push(published);
                    }
                }
            }
            "claim" => match v.get_ref().as_array() {
                Some(items) => {
                    for item in items.iter() {
                        if let Some(claim) = read_claim(r, item) {
                            reference.claims.push(claim);
                        }
                    }
                }
                None => r.error(
                    "[reference] claim must be an array of tables".into(),
                    v.span(),
                    Some("write one [[reference.claim]] table per claim".into()),
                ),
            },
            other => {
                let help = did_you_mean(other, REFERENCE_KEYS.iter().copied())
                    .map(|s| format!("did you mean `{s}`?"))
                    .unwrap_or_else(|| format!("[reference] takes {}", schema::quoted_list(REFERENCE_KEYS)));
                r.error(format!("unknown key `{other}` in [reference]"), k.span(), Some(help));
            }
        }
    }
    if reference.citation.is_empty() {
        r.error(
            "[reference] has no citation".into(),
            v.span(),
            Some("add citation = \"Authors, title, venue year, table N\": published numbers need their source".into()),
        );
    }
    if !variants_given && reference.claims.is_empty() {
        r.error(
            "[reference] gives no numbers and no claims".into(),
            v.span(),
            Some(
                "add [reference.variants] with one line per variant, e.g. l2 = { auc = 91.2, auc_rebal = 64.4 }".into(),
            ),
        );
    }
    Some(reference)
}

/// One `[[reference.claim]]`: `says`, `metric`, `above`, `below` (required) and `below_metric`.
fn read_claim(r: &mut Reader, v: &toml::Spanned<DeValue>) -> Option<Claim> {
    let example = "e.g. says = \"rebalancing gives the most colourful results (sec. 3)\", metric = \"colorfulness\", above = \"full\", below = \"l2\"";
    let Some(t) = v.get_ref().as_table() else {
        r.error("a [[reference.claim]] must be a table".into(), v.span(), Some(example.into()));
        return None;
    };
    // A string value with the span of its value, for errors that point at it.
    let mut text = |key: &str| -> Option<(String, std::ops::Range<usize>)> {
        let (k, value) = t.iter().find(|(k, _)| k.get_ref() == key)?;
        match value.get_ref().as_str().map(str::trim).filter(|s| !s.is_empty()) {
            Some(s) => Some((s.to_string(), value.span())),
            None => {
                r.error(format!("[[reference.claim]] {key} must be a non-empty string"), k.span(), None);
                None
            }
        }
    };
    let (says, metric, above, below, below_metric) =
        (text("says"), text("metric"), text("above"), text("below"), text("below_metric"));
    for (k, _) in t.iter() {
        if !CLAIM_KEYS.contains(&k.get_ref().as_ref()) {
            let help = did_you_mean(k.get_ref(), CLAIM_KEYS.iter().copied())
                .map(|s| format!("did you mean `{s}`?"))
                .unwrap_or_else(|| format!("a claim takes {}", schema::quoted_list(CLAIM_KEYS)));
            r.error(format!("unknown key `{}` in [[reference.claim]]", k.get_ref()), k.span(), Some(help));
        }
    }
    for (key, value) in [("metric", &metric), ("below_metric", &below_metric)] {
        if let Some((m, span)) = value
            && !is_metric(m)
        {
            let help = metric_help(m, "claims are about the metrics", '`');
            r.error(format!("[[reference.claim]] {key} = \"{m}\" is not a known metric"), span.clone(), Some(help));
            return None;
        }
    }
    let missing: Vec<&str> = [("says", &says), ("metric", &metric), ("above", &above), ("below", &below)]
        .iter()
        .filter(|(_, v)| v.is_none())
        .map(|(k, _)| *k)
        .collect();
    if !missing.is_empty() {
        r.error(format!("a [[reference.claim]] lacks {}", missing.join(", ")), v.span(), Some(example.into()));
        return None;
    }
    let [says, metric, above, below] = [says?, metric?, above?, below?].map(|(text, _)| text);
    let below_metric = below_metric.map_or_else(|| metric.clone(), |(text, _)| text);
    if above == below && metric == below_metric {
        r.error(
            format!("this [[reference.claim]] compares \"{above}\" on {metric} with itself"),
            v.span(),
            Some("name two variants, or a below_metric for two metrics of one variant".into()),
        );
        return None;
    }
    Some(Claim { says, metric, above, below, below_metric, origin: r.origin(v.span()) })
}

fn is_metric(name: &str) -> bool {
    Metric::parse(name).is_some()
}

/// Help for a name that is not a metric: the closest metric (quoted with `quote`), then `lead` and
/// the list of metrics.
pub(super) fn metric_help(given: &str, lead: &str, quote: char) -> String {
    let list = format!("{lead} {}", schema::quoted_list(&Metric::NAMES));
    match did_you_mean(given, Metric::NAMES.iter().copied()) {
        Some(g) => format!("did you mean {quote}{g}{quote}? {list}"),
        None => list,
    }
}

/// One variant's published numbers: `name = { metric = number, ... }`.
fn read_published(
    r: &mut Reader,
    name: &toml::Spanned<std::borrow::Cow<str>>,
    numbers: &toml::Spanned<DeValue>,
) -> Option<PublishedVariant> {
    let Some(t) = numbers.get_ref().as_table().filter(|t| !t.is_empty()) else {
        r.error(
            format!("[reference.variants] {} must be a table of published numbers", name.get_ref()),
            numbers.span(),
            Some(format!("e.g. {} = {{ auc = 91.2, auc_rebal = 64.4 }}", name.get_ref())),
        );
        return None;
    };
    let mut values = Vec::new();
    for (metric, value) in t.iter() {
        if !is_metric(metric.get_ref()) {
            let help = metric_help(metric.get_ref(), "published numbers are for the metrics", '`');
            r.error(
                format!("unknown metric `{}` in [reference.variants]", metric.get_ref()),
                metric.span(),
                Some(help),
            );
            continue;
        }
        match r.value(value, &format!("[reference.variants] {}.{}", name.get_ref(), metric.get_ref())) {
            Some(Value::Float(f)) if f.is_finite() => values.push((metric.get_ref().to_string(), f)),
            Some(Value::Integer(i)) => values.push((metric.get_ref().to_string(), i as f64)),
            Some(other) => r.error(
                format!("published {} = {} is not a number", metric.get_ref(), show(&other)),
                value.span(),
                Some("give the number as printed in the paper, e.g. 91.2".into()),
            ),
            None => {}
        }
    }
    Some(PublishedVariant { name: name.get_ref().to_string(), values, origin: r.origin(numbers.span()) })
}

pub(super) fn checked(r: &mut Reader, key: &'static Key, v: &toml::Spanned<DeValue>) -> Option<Entry> {
    let value = r.value(v, &format!("`{}`", key.name))?;
    match check(key, &value) {
        Ok(value) => Some(Entry { key, value, origin: r.origin(v.span()) }),
        Err(msg) => {
            r.error(msg, v.span(), None);
            None
        }
    }
}

fn table_entries(r: &mut Reader, v: &toml::Spanned<DeValue>, what: &str) -> Vec<Entry> {
    let items = flatten(r, v, what);
    let mut entries: Vec<Entry> = Vec::new();
    for item in items {
        if let Some(e) = checked(r, item.key, item.value) {
            entries.push(e);
        }
    }
    entries
}

pub(super) struct FlatItem<'a, 'i> {
    pub(super) key: &'static Key,
    pub(super) key_span: Range<usize>,
    pub(super) value: &'a toml::Spanned<DeValue<'i>>,
}

/// The keys of a table, with nested tables (`[base.backbone]`, `backbone.pretrain = ...`) resolved to
/// dotted schema keys; unknown names are reported with a suggestion.
fn flatten<'a, 'i>(r: &mut Reader, v: &'a toml::Spanned<DeValue<'i>>, what: &str) -> Vec<FlatItem<'a, 'i>> {
    let Some(t) = v.get_ref().as_table() else {
        r.error(format!("`{what}` must be a table: [{what}]"), v.span(), None);
        return Vec::new();
    };
    t.iter().flat_map(|(k, v)| flatten_pair(r, k, v, "")).collect()
}

pub(super) fn flatten_pair<'a, 'i>(
    r: &mut Reader,
    k: &toml::Spanned<std::borrow::Cow<'i, str>>,
    v: &'a toml::Spanned<DeValue<'i>>,
    prefix: &str,
) -> Vec<FlatItem<'a, 'i>> {
    let name = format!("{prefix}{}", k.get_ref());
    if let Some(key) = schema::key(&name) {
        return vec![FlatItem { key, key_span: k.span(), value: v }];
    }
    if let Some((_, target)) = schema::SHORTHANDS.iter().find(|s| s.0 == name)
        && !v.get_ref().is_table()
    {
        let key = schema::key(target).expect("shorthands name schema keys");
        return vec![FlatItem { key, key_span: k.span(), value: v }];
    }
    let is_group = schema::KEYS.iter().any(|key| key.name.starts_with(&format!("{name}.")));
    match v.get_ref().as_table() {
        Some(t) if is_group => {
            let nested = format!("{name}.");
            t.iter().flat_map(|(k, v)| flatten_pair(r, k, v, &nested)).collect()
        }
        _ => {
            let help = match did_you_mean(&name, schema::key_names()) {
                Some(s) => format!("did you mean `{s}`? (`sweep keys` lists every key)"),
                None => "`sweep keys` lists every key with its default".to_string(),
            };
            r.error(format!("unknown key `{name}`"), k.span(), Some(help));
            Vec::new()
        }
    }
}

fn array_of_tables<'a, 'i>(
    r: &mut Reader,
    v: &'a toml::Spanned<DeValue<'i>>,
    what: &str,
) -> Vec<(Range<usize>, &'a DeTable<'i>)> {
    match v.get_ref().as_array() {
        Some(items) => items
            .iter()
            .filter_map(|item| match item.get_ref().as_table() {
                Some(t) => Some((item.span(), t)),
                None => {
                    r.error(format!("each [[{what}]] must be a table"), item.span(), None);
                    None
                }
            })
            .collect(),
        None => {
            r.error(
                format!("`{what}` must be an array of tables: write [[{what}]] (double brackets) for each one"),
                v.span(),
                None,
            );
            Vec::new()
        }
    }
}

fn to_value(v: &DeValue) -> Result<Value, String> {
    Ok(match v {
        DeValue::String(s) => Value::String(s.to_string()),
        DeValue::Integer(i) => Value::Integer(
            i64::from_str_radix(i.as_str(), i.radix()).map_err(|_| format!("integer {i} does not fit in 64 bits"))?,
        ),
        DeValue::Float(f) => Value::Float(f.as_str().parse().map_err(|_| format!("{f} is not a number"))?),
        DeValue::Boolean(b) => Value::Boolean(*b),
        DeValue::Datetime(d) => return Err(format!("a date ({d}) is not a valid setting")),
        DeValue::Array(a) => Value::Array(a.iter().map(|i| to_value(i.get_ref())).collect::<Result<_, _>>()?),
        DeValue::Table(t) => Value::Table(
            t.iter()
                .map(|(k, v)| Ok((k.get_ref().to_string(), to_value(v.get_ref())?)))
                .collect::<Result<_, String>>()?,
        ),
    })
}
