//! Expansion of a spec into runs: `[base]` + `--set` overrides + each `[[variant]]` x each `[grid]`
//! point, minus `[[exclude]]`d combinations, times each seed. Each combination is resolved (defaults,
//! derived keys, cross-key rules, conditional keys) into a flat config whose hash is the run's identity.
//!
//! Run identity: `id` is the first 12 hex digits of SHA-256 over the canonical JSON of the resolved
//! config (every applicable key, the seed included, keys sorted, no whitespace, floats in shortest
//! round-trip form); `group` is the same hash without the seed, shared by the seeds of one variant.
//! Keys that do not apply to a run (e.g. `temperature` for regression) are left out, so they cannot
//! change its identity. The variant's name is a label and is not hashed.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};
use toml::Value;

use super::error::{Diagnostic, SpecError, did_you_mean};
use super::parse::{Entry, SlurmSpec, Spec, SweepMeta};
use super::rules::{cross_check, derive};
use super::run_config::RunConfig;
use super::schema::{self, KEYS, Kind, SEED_KEY};
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
}

impl Plan {
    /// Variants in order, each with its runs (one per seed).
    pub fn groups(&self) -> Vec<(&str, Vec<&RunPlan>)> {
        let mut out: Vec<(&str, Vec<&RunPlan>)> = Vec::new();
        for run in &self.runs {
            match out.iter_mut().find(|(g, _)| *g == run.group) {
                Some((_, runs)) => runs.push(run),
                None => out.push((&run.group, vec![run])),
            }
        }
        out
    }
}

/// Expands `spec` with command-line overrides (`KEY=VALUE`, `sweep.seeds=[0,1]` for `[sweep]` keys,
/// `slurm.partition=gpu` for `[slurm]` keys).
pub fn plan(spec: &Spec, overrides: &[String]) -> Result<Plan, SpecError> {
    let mut errors = Vec::new();
    let mut meta = spec.meta.clone();
    let mut slurm = spec.slurm.clone();
    let mut cli = Vec::new();
    for arg in overrides {
        match parse_override(arg, &mut meta, &mut slurm) {
            Ok(Some(entry)) => cli.push(entry),
            Ok(None) => {}
            Err(d) => errors.push(d),
        }
    }
    if !errors.is_empty() {
        return Err(SpecError(errors));
    }

    // Everything below the variants: defaults, [sweep] data defaults, [base], --set.
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

    // What the variants are compared against in `changed`.
    let mut below_derived = below.clone();
    derive(&mut below_derived);

    // Variants x grid points.
    let variants: Vec<Option<&super::parse::VariantDef>> =
        if spec.variants.is_empty() { vec![None] } else { spec.variants.iter().map(Some).collect() };
    let mut points: Vec<Vec<&Entry>> = vec![Vec::new()];
    for axis in &spec.grid {
        points = points
            .into_iter()
            .flat_map(|p| {
                axis.values.iter().map(move |v| {
                    let mut next = p.clone();
                    next.push(v);
                    next
                })
            })
            .collect();
    }

    let mut runs = Vec::new();
    let mut warnings = Vec::new();
    let mut exclude_hits = vec![0usize; spec.excludes.len()];
    let mut ignored_below: BTreeMap<&str, (Origin, &'static str, usize)> = BTreeMap::new();
    let mut combos = 0usize;
    let mut seen_groups: BTreeMap<String, String> = BTreeMap::new();
    for variant in &variants {
        for point in &points {
            let own: Vec<&Entry> = variant.map(|v| v.entries.iter().collect()).unwrap_or_default();
            for g in point {
                if let Some(clash) = own.iter().find(|e| e.key.name == g.key.name) {
                    errors.push(
                        Diagnostic::new(
                            format!("this variant sets `{}`, which is also a [grid] axis", g.key.name),
                            clash.origin.clone(),
                        )
                        .help("set it in the variant or in the grid, not both"),
                    );
                }
            }
            let name = variant_name(variant.and_then(|v| v.name.as_deref()), &own, point);
            let mut flat = below.clone();
            for e in own.iter().chain(point.iter()) {
                flat.set(
                    e.key.name,
                    Setting { value: e.value.clone(), origin: e.origin.clone(), layer: Layer::Variant },
                );
            }
            derive(&mut flat);

            if let Some(i) = spec.excludes.iter().position(|rule| {
                rule.name.as_ref().is_none_or(|n| *n == name || variant.and_then(|v| v.name.as_ref()) == Some(n))
                    && rule.matches.iter().all(|(key, values)| flat.value(key.name).is_some_and(|v| values.contains(v)))
            }) {
                exclude_hits[i] += 1;
                continue;
            }
            combos += 1;

            if let Err(mut e) = cross_check(&flat) {
                for d in &mut e {
                    d.message = format!("variant \"{name}\": {}", d.message);
                }
                errors.extend(e);
                continue;
            }
            for key in KEYS {
                let Some(cond) = key.when else { continue };
                if (cond.holds)(&flat) {
                    if let Some(entry) = ignored_below.get_mut(key.name) {
                        entry.2 += 1;
                    }
                    continue;
                }
                let Some(setting) = flat.remove(key.name) else { continue };
                match setting.layer {
                    Layer::Variant => errors.push(
                        Diagnostic::new(
                            format!(
                                "variant \"{name}\" sets `{}`, which only applies when {}",
                                key.name, cond.describe
                            ),
                            setting.origin,
                        )
                        .help("remove it from this variant, or drop the combination with an [[exclude]]"),
                    ),
                    Layer::Base | Layer::Cli => {
                        ignored_below.entry(key.name).or_insert((setting.origin, cond.describe, 0));
                    }
                    Layer::Default => {}
                }
            }
            let changed = own
                .iter()
                .chain(point.iter())
                .filter(|e| flat.contains(e.key.name) && below_derived.value(e.key.name) != Some(&e.value))
                .map(|e| (e.key.name.to_string(), plain(&e.value)))
                .collect();
            let group = short_hash(&flat.canonical_json());
            if let Some(other) = seen_groups.insert(group.clone(), name.clone()) {
                errors.push(Diagnostic::new(
                    format!(
                        "variants \"{other}\" and \"{name}\" resolve to the same config: they would train the same runs"
                    ),
                    variant.map(|v| v.origin.clone()).unwrap_or(Origin::Default),
                ));
            }
            for &seed in &meta.seeds {
                let mut config = flat.clone();
                let seed_value = Value::Integer(seed as i64);
                config.set(SEED_KEY, Setting { value: seed_value, origin: Origin::Derived, layer: Layer::Default });
                let id = short_hash(&config.canonical_json());
                runs.push(RunPlan {
                    id,
                    group: group.clone(),
                    variant: name.clone(),
                    seed,
                    settings: RunConfig::decode(&config),
                    config,
                    changed: Vec::clone(&changed),
                });
            }
        }
    }

    for (i, hits) in exclude_hits.iter().enumerate() {
        if *hits == 0 {
            warnings.push(format!("[[exclude]] number {} matches no combination", i + 1));
        }
    }
    for (key, (origin, describe, applied)) in ignored_below {
        if applied > 0 {
            continue;
        }
        let message = format!("`{key}` does not apply to any run of this sweep: it only applies when {describe}");
        match origin {
            Origin::Cli { .. } => errors.push(Diagnostic::new(message, origin)),
            _ => warnings.push(format!("{message} (ignored)")),
        }
    }
    if let Some(reference) = &spec.reference {
        check_reference(reference, &runs, &mut errors);
    }
    if combos == 0 && errors.is_empty() {
        let origin = spec.excludes.first().map(|e| e.origin.clone()).unwrap_or(Origin::Default);
        errors.push(Diagnostic::new("every combination is excluded: the sweep has no runs", origin));
    }
    if errors.is_empty() { Ok(Plan { meta, runs, slurm, warnings }) } else { Err(SpecError(errors)) }
}

/// Every variant `[reference]` gives numbers for must be one of the sweep's.
fn check_reference(reference: &super::parse::Reference, runs: &[RunPlan], errors: &mut Vec<Diagnostic>) {
    let mut names: Vec<&str> = Vec::new();
    for run in runs {
        if !names.contains(&run.variant.as_str()) {
            names.push(&run.variant);
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

/// `name`, or the grid values (`task=classification,lr=0.01`), or both; `base` for a spec without either.
fn variant_name(name: Option<&str>, own: &[&Entry], point: &[&Entry]) -> String {
    let mut parts: Vec<String> = Vec::new();
    match name {
        Some(n) => parts.push(n.to_string()),
        None => parts.extend(own.iter().map(|e| format!("{}={}", e.key.name, plain(&e.value)))),
    }
    parts.extend(point.iter().map(|e| format!("{}={}", e.key.name, plain(&e.value))));
    if parts.is_empty() { "base".to_string() } else { parts.join(",") }
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

/// Parses one `--set KEY=VALUE`; `[sweep]` keys (`sweep.seeds=[0,1]`) change `meta` and return `None`.
fn parse_override(arg: &str, meta: &mut SweepMeta, slurm: &mut SlurmSpec) -> Result<Option<Entry>, Diagnostic> {
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
        return table_key(super::parse::apply_sweep_key(meta, sweep_key, &literal()));
    }
    if let Some(slurm_key) = name.strip_prefix("slurm.") {
        return table_key(super::parse::apply_slurm_key(slurm, slurm_key, &literal()));
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
        (Kind::Text | Kind::Choice(_), Ok(v)) if !v.is_str() => Value::String(text.to_string()),
        (Kind::Text | Kind::Choice(_), Err(_)) => Value::String(text.to_string()),
        (_, Ok(v)) => v,
        (_, Err(e)) => return Err(Diagnostic::new(format!("--set {arg}: {e}"), origin)),
    };
    let value = check(key, &value).map_err(|msg| Diagnostic::new(msg, origin.clone()))?;
    Ok(Some(Entry { key, value, origin }))
}
