//! `sweep plan` (a spec's runs as a table or JSON) and `sweep keys` (the config schema).

use std::collections::BTreeSet;

use serde_json::json;

use super::table::Table;
use super::{CmdResult, KeysArgs, PlanArgs};
use crate::spec::Plan;
use crate::spec::early_stop::StopMethod;
use crate::spec::schema::KEYS;
use crate::spec::search::{Search, Then};
use crate::terminal::text;

pub fn plan(args: PlanArgs) -> CmdResult {
    let plan = crate::spec::load(&args.spec.spec, &args.spec.overrides)?;
    for w in &plan.warnings {
        eprintln!("warning: {}", text(w));
    }
    let meta = &plan.meta;
    if args.json {
        let runs: Vec<_> = plan
            .runs
            .iter()
            .map(|r| {
                let config: serde_json::Value = serde_json::from_str(&r.config.canonical_json()).expect("canonical JSON parses");
                json!({
                    "id": r.id,
                    "group": r.group,
                    "variant": r.variant,
                    "seed": r.seed,
                    "changed": r.changed.iter().map(|(k, v)| (k.clone(), serde_json::Value::from(v.as_str()))).collect::<serde_json::Map<_, _>>(),
                    "trial": r.trial,
                    "config": config,
                })
            })
            .collect();
        let out = json!({
            "sweep": meta.name,
            "description": meta.description,
            "spec": args.spec.spec.display().to_string(),
            "metric": meta.metric.name(),
            "higher_is_better": meta.higher_is_better,
            "seeds": meta.seeds,
            "runs": runs,
            "warnings": plan.warnings,
        });
        println!("{}", serde_json::to_string_pretty(&out).expect("JSON values serialise"));
        return Ok(());
    }
    let variants = plan.groups().len();
    // A search's trials train with the first seed (its best ones later with the others).
    let seeds = if plan.search.is_some() { 1 } else { meta.seeds.len() };
    println!(
        "sweep \"{}\": {variants} {}{} x {seeds} seed{} = {} runs   (ranked by {}, {} is better)",
        meta.name,
        if plan.search.is_some() { "trial" } else { "variant" },
        if variants == 1 { "" } else { "s" },
        if seeds == 1 { "" } else { "s" },
        plan.runs.len(),
        meta.metric,
        if meta.higher_is_better { "higher" } else { "lower" },
    );
    if let Some(search) = &plan.search {
        println!("{}", search_line(&plan, search));
    }
    if !meta.description.is_empty() {
        println!("{}", text(meta.description.trim()));
    }
    println!();
    let mut table = Table::new(["run id", "variant", "seed", "differs from base"]).align_right(2);
    for r in &plan.runs {
        let changed: Vec<String> = r.changed.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let changed = if changed.is_empty() { "-".to_string() } else { changed.join(" ") };
        table.row([r.id.clone(), r.variant.clone(), r.seed.to_string(), changed]);
    }
    print!("{}", table.render());
    Ok(())
}

/// What a search plan does beyond its table: the sampler, the trials, what follows, early stopping.
fn search_line(plan: &Plan, search: &Search) -> String {
    let variants: BTreeSet<&str> =
        plan.runs.iter().filter_map(|r| r.trial.as_ref()).map(|t| t.variant.as_str()).collect();
    let mut line = format!(
        "search: {} ({} sampler, seed {}), {} trials in each of {} variant{}, trained with seed {}",
        search.space.iter().map(|d| format!("{} {}", d.key.name, d.dist.kind())).collect::<Vec<_>>().join(", "),
        search.method,
        search.seed,
        search.trials,
        variants.len(),
        if variants.len() == 1 { "" } else { "s" },
        plan.meta.seeds[0],
    );
    if search.then == Some(Then::Seeds) {
        line += &format!("; then each variant's best trial with seeds {:?}", plan.meta.seeds);
    }
    if let Some(rule) = &plan.early_stop {
        line += &format!("; early stopping: {} on {}", rule.method, rule.metric);
        if rule.method == StopMethod::Asha {
            let epochs = plan.runs.iter().map(|r| r.settings.train.epochs).max().unwrap_or(0);
            let rungs: Vec<String> = rule.rungs(epochs).iter().map(u64::to_string).collect();
            line += &format!(", rungs at epochs {} (the top 1/{} go on)", rungs.join(", "), rule.reduction);
        }
    }
    text(&line).into_owned()
}

pub fn keys(args: KeysArgs) -> CmdResult {
    let default = |k: &crate::spec::schema::Key| k.default.map(|d| d.to_string()).unwrap_or_else(|| "(derived)".into());
    let when = |k: &crate::spec::schema::Key| k.when.map(|c| c.describe.to_string()).unwrap_or_else(|| "always".into());
    if args.markdown {
        println!("| key | default | applies when | meaning |\n| --- | --- | --- | --- |");
        for k in KEYS {
            println!("| `{}` | `{}` | {} | {} |", k.name, default(k), when(k), k.doc);
        }
        return Ok(());
    }
    let mut table = Table::new(["key", "default", "valid values", "applies when"]);
    for k in KEYS {
        table.row([k.name.to_string(), default(k), k.kind.describe(), when(k)]);
    }
    print!("{}", table.render());
    println!("\nEach key, what it does:");
    for k in KEYS {
        println!("  {:<26} {}", k.name, k.doc);
    }
    Ok(())
}
