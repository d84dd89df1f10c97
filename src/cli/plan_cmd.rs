//! `sweep plan` (a spec's runs as a table or JSON) and `sweep keys` (the config schema).

use serde_json::json;

use super::table::Table;
use super::{CmdResult, KeysArgs, PlanArgs};
use crate::spec::schema::KEYS;
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
    println!(
        "sweep \"{}\": {variants} variant{} x {} seed{} = {} runs   (ranked by {}, {} is better)",
        meta.name,
        if variants == 1 { "" } else { "s" },
        meta.seeds.len(),
        if meta.seeds.len() == 1 { "" } else { "s" },
        plan.runs.len(),
        meta.metric,
        if meta.higher_is_better { "higher" } else { "lower" },
    );
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
