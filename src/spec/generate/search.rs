//! A search's trials inside each of grid x variants' combinations: trial `i` of a combination is
//! the combination's values plus, for every `[search.space]` key, the value its distribution gives
//! at coordinate `d` of the sampler's point `(seed, i)`. The trials of every combination share their
//! points, so variants are compared on the same settings. Trials are named `<combination>#<i>`.

use super::{Combination, MAX_RUNS, PlanGenerator, Trial, grid::Grid};
use crate::spec::error::Diagnostic;
use crate::spec::expand::plain;
use crate::spec::parse::{Entry, Spec};
use crate::spec::search::Dimension;

/// The search generator.
pub struct Search;

impl PlanGenerator for Search {
    fn combinations(&self, spec: &Spec, errors: &mut Vec<Diagnostic>) -> Vec<Combination> {
        let variants = Grid.combinations(spec, errors);
        let Some(search) = &spec.search else { return variants };
        check_clashes(spec, &search.space, errors);
        let count = variants.len() as u128 * search.trials as u128;
        if count > MAX_RUNS {
            let d = Diagnostic::new(
                format!(
                    "{} trials x {} variants = {count} runs, more than a sweep may have ({MAX_RUNS})",
                    search.trials,
                    variants.len()
                ),
                search.origin.clone(),
            );
            errors.push(d.help("give fewer trials"));
            return Vec::new();
        }
        let sampler = search.method.sampler();
        let points: Vec<Vec<f64>> =
            (0..search.trials).map(|i| sampler.point(search.seed, i, search.space.len())).collect();
        let mut out = Vec::with_capacity(count as usize);
        for v in &variants {
            for (i, point) in points.iter().enumerate() {
                let sampled: Vec<Entry> = search
                    .space
                    .iter()
                    .zip(point)
                    .map(|(d, &u)| Entry { key: d.key, value: d.dist.at(u), origin: d.origin.clone() })
                    .collect();
                let trial = Trial {
                    variant: v.name.clone(),
                    index: i as u64,
                    sampled: sampled.iter().map(|e| (e.key.name.to_string(), plain(&e.value))).collect(),
                };
                out.push(Combination {
                    name: format!("{}#{i}", v.name),
                    variant: v.variant.clone(),
                    entries: v.entries.iter().cloned().chain(sampled).collect(),
                    origin: v.origin.clone(),
                    trial: Some(trial),
                });
            }
        }
        out
    }
}

/// A searched key may not also be a grid axis or a variant's key: which value would a run get?
fn check_clashes(spec: &Spec, space: &[Dimension], errors: &mut Vec<Diagnostic>) {
    for d in space {
        let name = d.key.name;
        let clash = if spec.grid.iter().any(|a| a.key.name == name) {
            Some("a [grid] axis")
        } else if spec.variants.iter().any(|v| v.entries.iter().any(|e| e.key.name == name)) {
            Some("set by a [[variant]]")
        } else {
            None
        };
        if let Some(what) = clash {
            errors.push(
                Diagnostic::new(format!("`{name}` is searched in [search.space] and is also {what}"), d.origin.clone())
                    .help("search it, or set it in the grid or the variants, not both"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn combinations(text: &str) -> Vec<Combination> {
        let spec = Spec::from_str(Path::new("t.toml"), text.to_string()).unwrap_or_else(|e| panic!("{e}"));
        let mut errors = Vec::new();
        let out = Search.combinations(&spec, &mut errors);
        assert!(errors.is_empty(), "{errors:?}");
        out
    }

    const SPEC: &str = "[sweep]\nname = \"t\"\n[[variant]]\nname = \"a\"\n[[variant]]\nname = \"b\"\ntask = \"classification\"\n\
        [search]\nmethod = \"quasi\"\ntrials = TRIALS\n[search.space]\nlr = { log_uniform = [1e-4, 1e-2] }\nepochs = { int_uniform = [1, 3] }\n";

    #[test]
    fn each_variant_gets_the_same_trials_and_more_trials_keep_the_earlier_ones() {
        let four = combinations(&SPEC.replace("TRIALS", "4"));
        let names: Vec<&str> = four.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["a#0", "a#1", "a#2", "a#3", "b#0", "b#1", "b#2", "b#3"]);
        assert_eq!(four[1].trial.as_ref().unwrap().sampled, four[5].trial.as_ref().unwrap().sampled);
        let keys: Vec<&str> = four[5].entries.iter().map(|e| e.key.name).collect();
        assert_eq!(keys, ["task", "lr", "epochs"]);
        let eight = combinations(&SPEC.replace("TRIALS", "8"));
        for i in 0..4 {
            assert_eq!(eight[i].trial, four[i].trial, "trial {i} changed with the count");
        }
        // Base-2 stratification of the lr coordinate: 4 trials, one in each quarter of the log range.
        let mut quarters: Vec<usize> = four[..4]
            .iter()
            .map(|c| ((c.entries[0].value.as_float().unwrap() / 1e-4).log(100.0) * 4.0) as usize)
            .collect();
        quarters.sort_unstable();
        assert_eq!(quarters, [0, 1, 2, 3]);
    }
}
