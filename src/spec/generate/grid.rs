//! Grid x variants: every `[[variant]]` (or `[base]` alone, without variants) crossed with every point
//! of the Cartesian product of the `[grid]` axes, in the spec's order (variants outer, the first axis
//! varying slowest).

use super::{Combination, MAX_RUNS, PlanGenerator};
use crate::spec::error::Diagnostic;
use crate::spec::expand::plain;
use crate::spec::parse::{Entry, Spec, VariantDef};
use crate::spec::value::Origin;

/// The grid x variants generator.
pub struct Grid;

impl PlanGenerator for Grid {
    fn combinations(&self, spec: &Spec, errors: &mut Vec<Diagnostic>) -> Vec<Combination> {
        let variants: Vec<Option<&VariantDef>> =
            if spec.variants.is_empty() { vec![None] } else { spec.variants.iter().map(Some).collect() };
        // Counted before any is made: a grid of absurd size is refused, not allocated.
        let count =
            spec.grid.iter().fold(variants.len() as u128, |n, axis| n.saturating_mul(axis.values.len() as u128));
        if count > MAX_RUNS {
            let axes: Vec<String> = spec.grid.iter().map(|a| format!("{} ({})", a.key.name, a.values.len())).collect();
            let widest = spec.grid.iter().max_by_key(|a| a.values.len()).and_then(|a| a.values.first());
            errors.push(
                Diagnostic::new(
                    format!(
                        "the grid makes {count} combinations ({} variant(s) x {}), more than a sweep may have ({MAX_RUNS} runs)",
                        variants.len(),
                        axes.join(" x ")
                    ),
                    widest.map_or(Origin::Default, |e| e.origin.clone()),
                )
                .help("split the grid over several specs, or give its axes fewer values"),
            );
            return Vec::new();
        }
        let points = grid_points(spec);
        let mut out = Vec::new();
        for variant in variants {
            let own: Vec<&Entry> = variant.map(|v| v.entries.iter().collect()).unwrap_or_default();
            for point in &points {
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
                let variant_name = variant.and_then(|v| v.name.clone());
                out.push(Combination {
                    name: name(variant_name.as_deref(), &own, point),
                    variant: variant_name,
                    entries: own.iter().chain(point).map(|&e| e.clone()).collect(),
                    origin: variant.map(|v| v.origin.clone()).unwrap_or(Origin::Default),
                    trial: None,
                });
            }
        }
        out
    }
}

/// The points of the grid: one value of each axis, in order.
fn grid_points(spec: &Spec) -> Vec<Vec<&Entry>> {
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
    points
}

/// `name`, or the variant's values (`task=classification`), then the grid values (`lr=0.01`); `base`
/// for a spec without either.
fn name(variant: Option<&str>, own: &[&Entry], point: &[&Entry]) -> String {
    let mut parts: Vec<String> = Vec::new();
    match variant {
        Some(n) => parts.push(n.to_string()),
        None => parts.extend(own.iter().map(|e| format!("{}={}", e.key.name, plain(&e.value)))),
    }
    parts.extend(point.iter().map(|e| format!("{}={}", e.key.name, plain(&e.value))));
    if parts.is_empty() { "base".to_string() } else { parts.join(",") }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn combinations(text: &str) -> Vec<Combination> {
        let spec = Spec::from_str(Path::new("t.toml"), text.to_string()).unwrap_or_else(|e| panic!("{e}"));
        let mut errors = Vec::new();
        let out = Grid.combinations(&spec, &mut errors);
        assert!(errors.is_empty(), "{errors:?}");
        out
    }

    #[test]
    fn variants_are_crossed_with_every_grid_point_in_order() {
        let c = combinations(
            "[sweep]\nname = \"t\"\n[grid]\nlr = [0.1, 0.01]\nepochs = [1, 2]\n[[variant]]\nname = \"a\"\n[[variant]]\ntask = \"classification\"\n",
        );
        let names: Vec<&str> = c.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "a,lr=0.1,epochs=1",
                "a,lr=0.1,epochs=2",
                "a,lr=0.01,epochs=1",
                "a,lr=0.01,epochs=2",
                "task=classification,lr=0.1,epochs=1",
                "task=classification,lr=0.1,epochs=2",
                "task=classification,lr=0.01,epochs=1",
                "task=classification,lr=0.01,epochs=2",
            ]
        );
        assert_eq!(c[0].variant.as_deref(), Some("a"));
        assert_eq!(c[4].variant, None);
        // The variant's own values come first, then the point's.
        let keys: Vec<&str> = c[4].entries.iter().map(|e| e.key.name).collect();
        assert_eq!(keys, ["task", "lr", "epochs"]);
    }

    #[test]
    fn a_spec_without_grid_or_variants_is_one_combination_named_base() {
        let c = combinations("[sweep]\nname = \"t\"\n[base]\nlr = 0.1\n");
        assert_eq!(c.len(), 1);
        assert_eq!((c[0].name.as_str(), c[0].entries.len()), ("base", 0));
    }
}
