//! Expansion of a spec into runs: `[base]` + `--set` overrides + each combination of the spec's plan
//! generator (`super::generate`: each `[[variant]]` x each `[grid]` point), minus `[[exclude]]`d
//! combinations, times each seed. Each combination is resolved (defaults, derived keys, cross-key
//! rules, conditional keys) into a flat config whose hash is the run's identity, and decoded into the
//! run's typed config.
//!
//! Run identity: `id` is the first 12 hex digits of SHA-256 over the canonical JSON of the resolved
//! config (every applicable key, the seed included, keys sorted, no whitespace, floats in shortest
//! round-trip form); `group` is the same hash without the seed, shared by the seeds of one variant.
//! Keys that do not apply to a run (e.g. `temperature` for regression) are left out, so they cannot
//! change its identity. The variant's name is a label and is not hashed.

use std::collections::{BTreeMap, BTreeSet};

use sha2::{Digest, Sha256};
use toml::Value;

use super::early_stop::{EarlyStop, StopRule, apply_early_stop_key};
use super::error::{Diagnostic, SpecError, did_you_mean};
use super::generate::{Combination, MAX_RUNS, Trial};
use super::parse::{Entry, ExcludeRule, SlurmSpec, Spec, SweepMeta};
use super::rules::{cross_check, derive};
use super::run_config::RunConfig;
use super::schema::{self, KEYS, Kind, SEED_KEY};
use super::search::{Search, apply_search_key};
use super::value::{Flat, Layer, Origin, Setting, check, parse_literal};

/// One run of a sweep.
#[derive(Clone, Debug)]
pub struct RunPlan {
    pub id: String,
    pub group: String,
    pub variant: String,
    pub seed: u64,
    /// The resolved config: every applicable key, and `seed`. What the run's identity, its
    /// `config.toml` and `sweep plan --json` are made of.
    pub config: Flat,
    /// The same config typed: what training reads.
    pub settings: RunConfig,
    /// The variant's own values that differ from `[base]`, as `(key, value)`.
    pub changed: Vec<(String, String)>,
    /// The search trial it trains, if a search made it.
    pub trial: Option<Trial>,
    /// It trains a variant's best trial with another seed (`[search] then = "seeds"`).
    pub tuned: bool,
}

impl RunPlan {
    /// The same config with seed `seed`: its own run id, the same group.
    pub fn with_seed(&self, seed: u64) -> RunPlan {
        let mut config = self.config.clone();
        config.set(
            SEED_KEY,
            Setting { value: Value::Integer(seed as i64), origin: Origin::Derived, layer: Layer::Default },
        );
        let mut settings = self.settings.clone();
        settings.seed = seed;
        RunPlan { id: short_hash(&config.canonical_json()), seed, config, settings, ..self.clone() }
    }
}

/// A sweep expanded into runs.
#[derive(Clone, Debug)]
pub struct Plan {
    pub meta: SweepMeta,
    pub runs: Vec<RunPlan>,
    /// Resources for the Slurm executor (not part of any run's identity).
    pub slurm: SlurmSpec,
    /// Things worth telling the user that do not stop the sweep (ignored base keys, unused excludes).
    pub warnings: Vec<String>,
    /// The spec's `[search]`, with its `--set search.KEY` overrides.
    pub search: Option<Search>,
    /// The early-stopping rule of the search's trials.
    pub early_stop: Option<StopRule>,
}

impl Plan {
    /// Variants in order, each with its runs (one per seed).
    pub fn groups(&self) -> Vec<(&str, Vec<&RunPlan>)> {
        // Found by a map, not a search of the groups so far: a grid of 100,000 variants stays linear.
        let mut at: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
        let mut out: Vec<(&str, Vec<&RunPlan>)> = Vec::new();
        for run in &self.runs {
            match at.get(run.group.as_str()) {
                Some(&i) => out[i].1.push(run),
                None => {
                    at.insert(&run.group, out.len());
                    out.push((&run.group, vec![run]));
                }
            }
        }
        out
    }
}

/// Expands `spec` with command-line overrides (`KEY=VALUE`, `sweep.seeds=[0,1]` for `[sweep]` keys,
/// `slurm.partition=gpu` for `[slurm]` keys).
pub fn plan(spec: &Spec, overrides: &[String]) -> Result<Plan, SpecError> {
    let (spec, meta, slurm, cli) = apply_overrides(spec, overrides)?;
    let spec = &spec;
    let mut errors = Vec::new();
    let combinations = spec.strategy.generator().combinations(spec, &mut errors);
    let runs = combinations.len() as u128 * meta.seeds.len() as u128;
    if runs > MAX_RUNS {
        let d = Diagnostic::new(
            format!(
                "{} makes {} combinations x {} seeds = {runs} runs, more than a sweep may have ({MAX_RUNS})",
                spec.path.display(),
                combinations.len(),
                meta.seeds.len()
            ),
            Origin::Default,
        );
        return Err(d.help("split the sweep over several specs, or use fewer seeds or grid values").into());
    }
    let mut resolver = Resolver::new(spec, &meta, below_variants(spec, &cli));
    for combination in &combinations {
        resolver.resolve(combination, &mut errors);
    }
    let Resolver { runs, warnings, .. } = resolver.finish(&mut errors);
    if let Some(reference) = &spec.reference {
        check_reference(reference, &runs, &mut errors);
    }
    check_metric_is_measured(&meta, &runs, &mut errors);
    let early_stop = spec.early_stop.as_ref().and_then(|stop| stop_rule(spec, stop, &meta, &runs, &mut errors));
    let search = spec.search.clone();
    if errors.is_empty() {
        Ok(Plan { meta, runs, slurm, warnings, search, early_stop })
    } else {
        Err(SpecError(errors))
    }
}

/// The early-stopping rule with its metric resolved; it needs a search, and a metric every run measures.
fn stop_rule(
    spec: &Spec,
    stop: &EarlyStop,
    meta: &SweepMeta,
    runs: &[RunPlan],
    errors: &mut Vec<Diagnostic>,
) -> Option<StopRule> {
    if spec.search.is_none() {
        let d = Diagnostic::new(
            "[early_stop] stops trials of a search, and this spec has no [search]",
            stop.origin.clone(),
        );
        errors.push(d.help("add a [search] table with trials and [search.space], or remove [early_stop]"));
        return None;
    }
    let metric = stop.metric.unwrap_or(meta.metric);
    if metric.needs_judge() && runs.iter().any(|r| r.settings.judge.is_none()) {
        let d = Diagnostic::new(
            format!(
                "[early_stop] metric = \"{metric}\" is measured only with a judge, and not every run of this sweep has one"
            ),
            stop.metric_origin.clone(),
        );
        errors.push(
            d.help("stop on a metric every run measures, e.g. metric = \"psnr\", or set judge = \"vgg16\" in [base]"),
        );
        return None;
    }
    let higher_is_better =
        if stop.metric.is_some_and(|m| m != meta.metric) { metric.higher_is_better() } else { meta.higher_is_better };
    Some(StopRule {
        method: stop.method,
        metric,
        higher_is_better,
        min_epochs: stop.min_epochs,
        reduction: stop.reduction,
        min_runs: stop.min_runs,
    })
}

/// The spec with its `[search]` and `[early_stop]` overrides applied, its `[sweep]` and `[slurm]`
/// tables with theirs, and the overrides of `[base]` keys; every bad override is an error.
fn apply_overrides(spec: &Spec, overrides: &[String]) -> Result<(Spec, SweepMeta, SlurmSpec, Vec<Entry>), SpecError> {
    let mut errors = Vec::new();
    let mut tables = Tables { meta: spec.meta.clone(), slurm: spec.slurm.clone(), spec: spec.clone() };
    let mut cli = Vec::new();
    for arg in overrides {
        match parse_override(arg, &mut tables) {
            Ok(Some(entry)) => cli.push(entry),
            Ok(None) => {}
            Err(d) => errors.push(d),
        }
    }
    let Tables { meta, slurm, spec } = tables;
    if errors.is_empty() { Ok((spec, meta, slurm, cli)) } else { Err(SpecError(errors)) }
}

/// What `--set TABLE.KEY=VALUE` overrides change.
struct Tables {
    meta: SweepMeta,
    slurm: SlurmSpec,
    /// For `[search]` and `[early_stop]`.
    spec: Spec,
}

/// `plan` with the runs that train the trials `best` (run ids, each a variant's best trial) with the
/// sweep's other seeds (`[search] then = "seeds"`), those it lacks only.
pub fn with_tuned(mut plan: Plan, best: &[&str]) -> Plan {
    let seeds = plan.meta.seeds.get(1..).unwrap_or_default().to_vec();
    let have: BTreeSet<String> = plan.runs.iter().map(|r| r.id.clone()).collect();
    let tuned: Vec<RunPlan> = plan
        .runs
        .iter()
        .filter(|r| best.contains(&r.id.as_str()))
        .flat_map(|r| seeds.iter().map(|&seed| RunPlan { tuned: true, ..r.with_seed(seed) }))
        .filter(|r| !have.contains(&r.id))
        .collect();
    plan.runs.extend(tuned);
    plan
}

/// Everything below the variants: the schema's defaults, `[sweep]`'s data defaults, `[base]`, `--set`.
fn below_variants(spec: &Spec, cli: &[Entry]) -> Flat {
    let mut below = Flat::default();
    for key in KEYS {
        if let Some(default) = key.default {
            let value =
                check(key, &parse_literal(default).expect("schema defaults parse")).expect("defaults are valid");
            below.set(key.name, Setting { value, origin: Origin::Default, layer: Layer::Default });
        }
    }
    let layered = spec.data_defaults.iter().map(|e| (e, Layer::Default));
    let layered = layered.chain(spec.base.iter().map(|e| (e, Layer::Base)));
    for (e, layer) in layered.chain(cli.iter().map(|e| (e, Layer::Cli))) {
        below.set(e.key.name, Setting { value: e.value.clone(), origin: e.origin.clone(), layer });
    }
    below
}

/// Resolves combinations into runs, keeping what the checks across combinations need.
struct Resolver<'a> {
    spec: &'a Spec,
    seeds: &'a [u64],
    below: Flat,
    /// `below` with its derived keys: what a variant's values are compared with for `changed`.
    below_derived: Flat,
    /// Combinations each `[[exclude]]` dropped.
    exclude_hits: Vec<usize>,
    /// Conditional `[base]` and `--set` keys left out of some run: where they were set and when they apply.
    ignored: BTreeMap<&'static str, (Origin, &'static str)>,
    /// Conditional keys that applied to some run.
    applied: BTreeSet<&'static str>,
    /// Combinations not excluded.
    kept: usize,
    /// Group id -> the variant that has it.
    groups: BTreeMap<String, String>,
    runs: Vec<RunPlan>,
    warnings: Vec<String>,
}

impl<'a> Resolver<'a> {
    fn new(spec: &'a Spec, meta: &'a SweepMeta, below: Flat) -> Resolver<'a> {
        let mut below_derived = below.clone();
        derive(&mut below_derived);
        Resolver {
            spec,
            seeds: &meta.seeds,
            below,
            below_derived,
            exclude_hits: vec![0; spec.excludes.len()],
            ignored: BTreeMap::new(),
            applied: BTreeSet::new(),
            kept: 0,
            groups: BTreeMap::new(),
            runs: Vec::new(),
            warnings: Vec::new(),
        }
    }

    /// Adds the runs of one combination (one per seed), unless an `[[exclude]]` drops it or it
    /// breaks a rule (an error).
    fn resolve(&mut self, c: &Combination, errors: &mut Vec<Diagnostic>) {
        let mut flat = self.below.clone();
        for e in &c.entries {
            flat.set(e.key.name, Setting { value: e.value.clone(), origin: e.origin.clone(), layer: Layer::Variant });
        }
        derive(&mut flat);
        if let Some(i) = self.spec.excludes.iter().position(|rule| excludes(rule, c, &flat)) {
            self.exclude_hits[i] += 1;
            return;
        }
        self.kept += 1;
        if let Err(mut e) = cross_check(&flat) {
            for d in &mut e {
                d.message = format!("variant \"{}\": {}", c.name, d.message);
            }
            errors.extend(e);
            return;
        }
        self.drop_inapplicable(&mut flat, &c.name, errors);
        omit_defaults(&mut flat);
        let changed: Vec<(String, String)> = c
            .entries
            .iter()
            .filter(|e| flat.contains(e.key.name) && self.below_derived.value(e.key.name) != Some(&e.value))
            .map(|e| (e.key.name.to_string(), plain(&e.value)))
            .collect();
        let group = short_hash(&flat.canonical_json());
        if let (Some(other), Some(_)) = (self.groups.get(&group), &c.trial) {
            self.warnings.push(format!("trial {} samples the same config as {other}: it is trained once", c.name));
            return;
        }
        if let Some(other) = self.groups.insert(group.clone(), c.name.clone()) {
            errors.push(Diagnostic::new(
                format!(
                    "variants \"{other}\" and \"{}\" resolve to the same config: they would train the same runs",
                    c.name
                ),
                c.origin.clone(),
            ));
        }
        // A search's trials train with the first seed; `then = "seeds"` adds the others to the best.
        let seeds = if c.trial.is_some() { &self.seeds[..1] } else { self.seeds };
        for &seed in seeds {
            let mut config = flat.clone();
            let seed_value = Value::Integer(seed as i64);
            config.set(SEED_KEY, Setting { value: seed_value, origin: Origin::Derived, layer: Layer::Default });
            self.runs.push(RunPlan {
                id: short_hash(&config.canonical_json()),
                group: group.clone(),
                variant: c.name.clone(),
                seed,
                settings: RunConfig::decode(&config),
                config,
                changed: changed.clone(),
                trial: c.trial.clone(),
                tuned: false,
            });
        }
    }

    /// Removes the keys that do not apply to this run (they cannot change its identity). One the
    /// variant sets itself is an error; one set below only has to apply to some run (see `finish`).
    fn drop_inapplicable(&mut self, flat: &mut Flat, name: &str, errors: &mut Vec<Diagnostic>) {
        for key in KEYS {
            let Some(cond) = key.when else { continue };
            if (cond.holds)(flat) {
                self.applied.insert(key.name);
                continue;
            }
            let Some(setting) = flat.remove(key.name) else { continue };
            match setting.layer {
                Layer::Variant => errors.push(
                    Diagnostic::new(
                        format!("variant \"{name}\" sets `{}`, which only applies when {}", key.name, cond.describe),
                        setting.origin,
                    )
                    .help("remove it from this variant, or drop the combination with an [[exclude]]"),
                ),
                Layer::Base | Layer::Cli => {
                    self.ignored.entry(key.name).or_insert((setting.origin, cond.describe));
                }
                Layer::Default => {}
            }
        }
    }

    /// The checks over all combinations: excludes that drop nothing and keys set below the variants
    /// that apply to no run are warnings (errors for `--set`), no run at all is an error.
    fn finish(mut self, errors: &mut Vec<Diagnostic>) -> Resolver<'a> {
        for (i, hits) in self.exclude_hits.iter().enumerate() {
            if *hits == 0 {
                self.warnings.push(format!("[[exclude]] number {} matches no combination", i + 1));
            }
        }
        for (key, (origin, describe)) in std::mem::take(&mut self.ignored) {
            if self.applied.contains(key) {
                continue;
            }
            let message = format!("`{key}` does not apply to any run of this sweep: it only applies when {describe}");
            match origin {
                Origin::Cli { .. } => errors.push(Diagnostic::new(message, origin)),
                Origin::Default | Origin::Derived | Origin::File { .. } => {
                    self.warnings.push(format!("{message} (ignored)"))
                }
            }
        }
        if self.kept == 0 && errors.is_empty() {
            let origin = self.spec.excludes.first().map(|e| e.origin.clone()).unwrap_or(Origin::Default);
            errors.push(Diagnostic::new("every combination is excluded: the sweep has no runs", origin));
        }
        self
    }
}

/// Drops the [`schema::OMITTED_AT_DEFAULT`] keys that hold their default.
fn omit_defaults(flat: &mut Flat) {
    for &name in schema::OMITTED_AT_DEFAULT {
        let default = schema::key(name).and_then(|k| k.default).and_then(|d| parse_literal(d).ok());
        if default.is_some_and(|d| flat.value(name) == Some(&d)) {
            flat.remove(name);
        }
    }
}

/// Whether `rule` drops combination `c` (resolved as `flat`): its name (if any) is the combination's
/// or its variant's, and every key's value is one it lists.
fn excludes(rule: &ExcludeRule, c: &Combination, flat: &Flat) -> bool {
    rule.name.as_ref().is_none_or(|n| *n == c.name || c.variant.as_ref() == Some(n))
        && rule.matches.iter().all(|(key, values)| flat.value(key.name).is_some_and(|v| values.contains(v)))
}

/// Every variant `[reference]` gives numbers for must be one of the sweep's.
fn check_reference(reference: &super::parse::Reference, runs: &[RunPlan], errors: &mut Vec<Diagnostic>) {
    // A search's trials stand for their variant, under its name (the report compares it so).
    let mut names: Vec<&str> = Vec::new();
    for run in runs {
        let name = run.trial.as_ref().map_or(run.variant.as_str(), |t| t.variant.as_str());
        if !names.contains(&name) {
            names.push(name);
        }
    }
    let named = reference.variants.iter().map(|p| (p.name.as_str(), "gives numbers for", &p.origin)).chain(
        reference.claims.iter().flat_map(|c| {
            [(c.above.as_str(), "claims something of", &c.origin), (c.below.as_str(), "claims something of", &c.origin)]
        }),
    );
    for (name, what, origin) in named {
        if names.contains(&name) {
            continue;
        }
        let list = names.iter().map(|n| format!("\"{n}\"")).collect::<Vec<_>>().join(", ");
        let help = match did_you_mean(name, names.iter().copied()) {
            Some(g) => format!("did you mean \"{g}\"? the variants are {list}"),
            None => format!("the variants are {list}"),
        };
        errors.push(
            Diagnostic::new(
                format!("[reference] {what} \"{name}\", which is not a variant of this sweep"),
                origin.clone(),
            )
            .help(help),
        );
    }
}

/// The primary metric ranks every variant, so every run must measure it: the semantic test's top-1
/// metrics need a judge.
fn check_metric_is_measured(meta: &SweepMeta, runs: &[RunPlan], errors: &mut Vec<Diagnostic>) {
    if !meta.metric.needs_judge() {
        return;
    }
    if let Some(run) = runs.iter().find(|r| r.settings.judge.is_none()) {
        let which = if runs.iter().all(|r| r.settings.judge.is_none()) {
            "no run of this sweep has one".to_string()
        } else {
            format!("variant \"{}\" has none", run.variant)
        };
        errors.push(
            Diagnostic::new(
                format!("[sweep] metric = \"{}\" is measured only with a judge, and {which}", meta.metric),
                meta.metric_origin.clone(),
            )
            .help("set judge = \"vgg16\" (or \"resnet18\") in [base], or rank by another metric, e.g. metric = \"auc_rebal\""),
        );
    }
}

/// A value without TOML quoting, for names and tables.
pub fn plain(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Array(a) => format!("[{}]", a.iter().map(plain).collect::<Vec<_>>().join(",")),
        other => other.to_string(),
    }
}

/// First 12 hex digits of SHA-256.
pub fn short_hash(text: &str) -> String {
    Sha256::digest(text.as_bytes()).iter().take(6).map(|b| format!("{b:02x}")).collect()
}

/// Parses one `--set KEY=VALUE`; keys of the other tables (`sweep.seeds=[0,1]`, `search.trials=32`)
/// change `tables` and return `None`.
fn parse_override(arg: &str, tables: &mut Tables) -> Result<Option<Entry>, Diagnostic> {
    let origin = Origin::Cli { arg: arg.to_string() };
    let Some((name, text)) = arg.split_once('=') else {
        return Err(Diagnostic::new(format!("--set {arg}: expected KEY=VALUE"), origin).help("e.g. --set lr=0.01"));
    };
    let name = name.trim();
    let text = text.trim();
    let table_key = |applied: Result<(), (String, Option<String>)>| {
        applied.map(|_| None).map_err(|(msg, help)| {
            let d = Diagnostic::new(format!("--set {arg}: {msg}"), origin.clone());
            match help {
                Some(h) => d.help(h),
                None => d,
            }
        })
    };
    // Strings of [sweep] and [slurm] may be given bare (`--set slurm.partition=gpu`), and a bare
    // `--set slurm.time=04:00:00` is Slurm's notation, not a TOML time.
    let literal = || match parse_literal(text) {
        Ok(Value::Datetime(_)) | Err(_) => Value::String(text.to_string()),
        Ok(v) => v,
    };
    if let Some(sweep_key) = name.strip_prefix("sweep.") {
        if sweep_key == "metric" {
            tables.meta.metric_origin = origin.clone();
        }
        return table_key(super::parse::apply_sweep_key(&mut tables.meta, sweep_key, &literal()));
    }
    if let Some(slurm_key) = name.strip_prefix("slurm.") {
        return table_key(super::parse::apply_slurm_key(&mut tables.slurm, slurm_key, &literal()));
    }
    let missing = |table: &str| Err((format!("the spec has no [{table}] table to set a key of"), None));
    if let Some(key) = name.strip_prefix("search.") {
        return table_key(match &mut tables.spec.search {
            Some(search) => apply_search_key(search, key, &literal()),
            None => missing("search"),
        });
    }
    if let Some(key) = name.strip_prefix("early_stop.") {
        return table_key(match &mut tables.spec.early_stop {
            Some(stop) => {
                if key == "metric" {
                    stop.metric_origin = origin.clone();
                }
                apply_early_stop_key(stop, key, &literal())
            }
            None => missing("early_stop"),
        });
    }
    let canonical = schema::SHORTHANDS.iter().find(|s| s.0 == name).map(|s| s.1).unwrap_or(name);
    let Some(key) = schema::key(canonical) else {
        let help = match did_you_mean(name, schema::key_names()) {
            Some(s) => format!("did you mean `{s}`? (`sweep keys` lists every key)"),
            None => {
                "`sweep keys` lists every key; [sweep] and [slurm] keys are set as sweep.KEY and slurm.KEY".to_string()
            }
        };
        return Err(Diagnostic::new(format!("--set: unknown key `{name}`"), origin).help(help));
    };
    // Strings may be given bare (`--set dataset=cifar100`).
    let value = match (key.kind, parse_literal(text)) {
        (Kind::Path | Kind::Choice(_), Ok(v)) if !v.is_str() => Value::String(text.to_string()),
        (Kind::Path | Kind::Choice(_), Err(_)) => Value::String(text.to_string()),
        (_, Ok(v)) => v,
        (_, Err(e)) => return Err(Diagnostic::new(format!("--set {arg}: {e}"), origin)),
    };
    let value = check(key, &value).map_err(|msg| Diagnostic::new(msg, origin.clone()))?;
    Ok(Some(Entry { key, value, origin }))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn spec(text: &str) -> Spec {
        Spec::from_str(Path::new("t.toml"), text.to_string()).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn a_base_key_that_applies_to_an_earlier_variant_only_is_not_ignored() {
        // temperature applies to the first variant (classification) and not to the second: it
        // applies to some run, whatever the order of the variants.
        for variants in [
            "[[variant]]\ntask = \"classification\"\n[[variant]]\nname = \"reg\"\n",
            "[[variant]]\nname = \"reg\"\n[[variant]]\ntask = \"classification\"\n",
        ] {
            let s = spec(&format!("[sweep]\nname = \"t\"\n[base]\ntemperature = 0.5\n{variants}"));
            let p = plan(&s, &["temperature=0.3".into()]).unwrap_or_else(|e| panic!("{variants}: {e}"));
            assert!(p.warnings.is_empty(), "{:?}", p.warnings);
            let cls = p.runs.iter().find(|r| r.variant != "reg").unwrap();
            assert_eq!(cls.config.float("temperature"), 0.3);
        }
        // A key that applies to no run still warns (in the spec) or fails (on the command line).
        let s = spec("[sweep]\nname = \"t\"\n[base]\ntemperature = 0.5\n");
        assert!(plan(&s, &[]).unwrap().warnings[0].contains("`temperature` does not apply to any run"));
        assert!(plan(&s, &["temperature=0.3".into()]).is_err());
    }

    #[test]
    fn a_judge_metric_needs_a_judge_in_every_run() {
        let judged = "[sweep]\nname = \"t\"\nmetric = \"top1_colorized\"\n[base]\njudge = \"vgg16\"\n";
        assert!(plan(&spec(judged), &[]).is_ok());
        let partly = format!("{judged}[[variant]]\nname = \"a\"\n[[variant]]\nname = \"b\"\njudge = \"none\"\n");
        let err = plan(&spec(&partly), &[]).unwrap_err().to_string();
        assert!(err.contains("variant \"b\" has none"), "{err}");
        let none = spec("[sweep]\nname = \"t\"\n");
        let err = plan(&none, &["sweep.metric=top1_gray".into()]).unwrap_err().to_string();
        assert!(err.contains("no run of this sweep has one") && err.contains("--set sweep.metric=top1_gray"), "{err}");
    }

    #[test]
    fn every_run_carries_its_config_decoded() {
        let s = spec("[sweep]\nname = \"t\"\nseeds = [3, 4]\n[grid]\nlr = [0.1, 0.01]\n");
        let p = plan(&s, &[]).unwrap();
        assert_eq!(p.runs.len(), 4);
        for r in &p.runs {
            assert_eq!(r.settings.seed, r.seed);
            assert_eq!(r.settings.train.lr, r.config.float("lr"));
        }
    }
}
