//! Published numbers (a spec's `[reference]`) beside the measured ones, and for each metric whether
//! the published ordering of the variants holds in the measurement.
//!
//! Published values come from other data and networks, so only orderings are compared. For each pair
//! of variants with published and measured values of a metric, the pair *holds* when the measured
//! means differ in the published direction by more than their noise, is *reversed* when they differ
//! the other way by more than their noise, and is *unresolved* otherwise. The noise is the standard
//! error of the difference, sqrt(s1^2/n1 + s2^2/n2), when both variants have several seeds, and zero
//! otherwise (one seed gives no estimate of it, which the verdict then says).
//!
//! Claims (`[[reference.claim]]`) are orderings a paper states in words ("rebalancing gives the
//! most colourful results"): each is one such pair, judged the same way.

use super::aggregate::{At, Stat, Variant};
use super::tables::{Grid, format_stat};
use crate::metrics::Metric;
use crate::spec::Reference;

/// How one pair of variants compares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Holds,
    Reversed,
    Unresolved,
}

/// One pair: `a` is published above `b`.
#[derive(Clone, Debug)]
pub struct Pair {
    pub a: String,
    pub b: String,
    pub published: (f64, f64),
    pub measured: (Stat, Stat),
    pub outcome: Outcome,
}

/// The pairs of one metric and the one-line verdict.
#[derive(Clone, Debug)]
pub struct Verdict {
    pub metric: String,
    pub pairs: Vec<Pair>,
    pub line: String,
}

/// A sweep's published numbers against its measurement.
pub struct Comparison {
    pub citation: String,
    pub url: Option<String>,
    /// Variant, metric, published, measured.
    pub table: Grid,
    pub verdicts: Vec<Verdict>,
    /// One line per claim, in the spec's order.
    pub claims: Vec<ClaimVerdict>,
}

/// How a published claim fares: `None` when a side has no measurement yet.
#[derive(Clone, Debug)]
pub struct ClaimVerdict {
    pub outcome: Option<Outcome>,
    pub line: String,
}

/// The comparison of each sweep of the report whose spec has a `[reference]`, with the sweep's index.
pub fn for_report(report: &super::Report) -> Vec<(usize, Comparison)> {
    report
        .sets
        .iter()
        .enumerate()
        .filter_map(|(i, set)| {
            let reference = set.spec.as_ref()?.reference.as_ref()?;
            let variants: Vec<&Variant> = report.variants.iter().filter(|v| v.set == i).collect();
            Some((i, compare(reference, &variants, report.at)))
        })
        .collect()
}

/// Compares `reference` with `variants` (those of the sweep whose spec carries it) at `at`.
pub fn compare(reference: &Reference, variants: &[&Variant], at: At) -> Comparison {
    let mut table = Grid {
        header: ["variant", "metric", "published", "measured", "n"].map(String::from).to_vec(),
        numeric: vec![false, false, true, true, true],
        ..Grid::default()
    };
    let measured = |name: &str, metric: &str| variants.iter().find(|v| v.name == name).and_then(|v| v.stat(at, metric));
    let mut metrics: Vec<&str> = Vec::new();
    for published in &reference.variants {
        for (metric, value) in &published.values {
            let stat = measured(&published.name, metric);
            table.rows.push(vec![
                published.name.clone(),
                metric.clone(),
                format!("{value}"),
                format_stat(stat),
                stat.map_or("0".into(), |s| s.n.to_string()),
            ]);
            if !metrics.contains(&metric.as_str()) {
                metrics.push(metric);
            }
        }
    }
    // Metrics in the schema's order, so that verdicts read the same way in every report.
    metrics.sort_by_key(|m| Metric::NAMES.iter().position(|name| name == m));
    let verdicts: Vec<Verdict> = metrics
        .into_iter()
        .map(|metric| {
            let values: Vec<(&str, f64, Stat)> = reference
                .variants
                .iter()
                .filter_map(|p| {
                    let value = p.values.iter().find(|(m, _)| m == metric)?.1;
                    Some((p.name.as_str(), value, measured(&p.name, metric)?))
                })
                .collect();
            verdict(metric, &values)
        })
        .collect();
    // Metrics published for one variant only (or with ties) have no ordering to check: one line for all.
    let (mut verdicts, silent): (Vec<Verdict>, Vec<Verdict>) = verdicts.into_iter().partition(|v| !v.pairs.is_empty());
    if !silent.is_empty() {
        let names: Vec<&str> = silent.iter().map(|v| v.metric.as_str()).collect();
        verdicts.push(Verdict {
            metric: names.join(", "),
            pairs: Vec::new(),
            line: format!(
                "{}: no ordering to check (no two variants have measured values and different published ones); the values are in the table",
                names.join(", ")
            ),
        });
    }
    let claims = reference
        .claims
        .iter()
        .map(|c| {
            let above = measured(&c.above, &c.metric);
            let below = measured(&c.below, &c.below_metric);
            let side = |name: &str, metric: &str, stat: Option<Stat>| format!("{name} {metric} {}", format_stat(stat));
            let sides = format!("{} vs {}", side(&c.above, &c.metric, above), side(&c.below, &c.below_metric, below));
            let outcome = above.zip(below).map(|(a, b)| outcome(a, b));
            let word = match outcome {
                Some(Outcome::Holds) => "holds",
                Some(Outcome::Reversed) => "is reversed",
                Some(Outcome::Unresolved) => "is within noise",
                None => "is not measured yet",
            };
            ClaimVerdict { outcome, line: format!("\"{}\" {word}: {sides}", c.says) }
        })
        .collect();
    Comparison { citation: reference.citation.clone(), url: reference.url.clone(), table, verdicts, claims }
}

/// Whether `a`'s mean is above `b`'s by more than the noise (see the module docs).
fn outcome(a: Stat, b: Stat) -> Outcome {
    let diff = a.mean - b.mean;
    let noise = if a.n > 1 && b.n > 1 { (a.std.powi(2) / a.n as f64 + b.std.powi(2) / b.n as f64).sqrt() } else { 0.0 };
    if diff.abs() <= noise {
        Outcome::Unresolved
    } else if diff > 0.0 {
        Outcome::Holds
    } else {
        Outcome::Reversed
    }
}

/// The verdict of one metric from `(variant, published, measured)` triples.
fn verdict(metric: &str, values: &[(&str, f64, Stat)]) -> Verdict {
    let mut pairs = Vec::new();
    for (i, x) in values.iter().enumerate() {
        for y in &values[i + 1..] {
            // Ties in the paper say nothing about an ordering.
            if x.1 == y.1 {
                continue;
            }
            let (a, b) = if x.1 > y.1 { (x, y) } else { (y, x) };
            let outcome = outcome(a.2, b.2);
            pairs.push(Pair { a: a.0.into(), b: b.0.into(), published: (a.1, b.1), measured: (a.2, b.2), outcome });
        }
    }
    let line = verdict_line(metric, values, &pairs);
    Verdict { metric: metric.to_string(), pairs, line }
}

fn verdict_line(metric: &str, values: &[(&str, f64, Stat)], pairs: &[Pair]) -> String {
    if pairs.is_empty() {
        return format!(
            "{metric}: nothing to compare (no two variants have measured values and different published ones)"
        );
    }
    let count = |o: Outcome| pairs.iter().filter(|p| p.outcome == o).count();
    let (holds, reversed, unresolved) = (count(Outcome::Holds), count(Outcome::Reversed), count(Outcome::Unresolved));
    let word = match (holds, reversed) {
        (h, 0) if h == pairs.len() => "holds",
        (0, r) if r == pairs.len() => "is reversed",
        (0, 0) => "is unresolved",
        (_, 0) => "holds where resolved",
        (0, _) => "is reversed where resolved",
        _ => "partly holds",
    };
    let order = |key: &dyn Fn(&(&str, f64, Stat)) -> f64| {
        let mut sorted: Vec<&(&str, f64, Stat)> = values.iter().collect();
        sorted.sort_by(|x, y| key(y).total_cmp(&key(x)));
        sorted.iter().map(|v| v.0).collect::<Vec<_>>().join(" > ")
    };
    let mut line = format!(
        "{metric}: the published ordering {word} ({holds} of {} pairs hold, {reversed} reversed, {unresolved} within noise); published {}, measured {}",
        pairs.len(),
        order(&|v| v.1),
        order(&|v| v.2.mean),
    );
    let reversed: Vec<String> =
        pairs.iter().filter(|p| p.outcome == Outcome::Reversed).map(|p| format!("{} vs {}", p.a, p.b)).collect();
    if !reversed.is_empty() {
        line.push_str(&format!("; reversed: {}", reversed.join(", ")));
    }
    if values.iter().any(|v| v.2.n < 2) {
        line.push_str(" (some variants have one seed: no noise estimate)");
    }
    line
}

/// The pairs of every verdict as one table.
pub fn pairs_table(verdicts: &[Verdict]) -> Grid {
    let mut grid = Grid {
        header: ["metric", "published higher", "published lower", "published", "measured", "outcome"]
            .map(String::from)
            .to_vec(),
        numeric: vec![false, false, false, true, true, false],
        ..Grid::default()
    };
    for v in verdicts {
        for p in &v.pairs {
            grid.rows.push(vec![
                v.metric.clone(),
                p.a.clone(),
                p.b.clone(),
                format!("{} vs {}", p.published.0, p.published.1),
                format!("{} vs {}", format_stat(Some(p.measured.0)), format_stat(Some(p.measured.1))),
                match p.outcome {
                    Outcome::Holds => "holds",
                    Outcome::Reversed => "reversed",
                    Outcome::Unresolved => "within noise",
                }
                .into(),
            ]);
        }
    }
    grid
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stat(mean: f64, std: f64, n: usize) -> Stat {
        Stat { mean, std, n }
    }

    #[test]
    fn pairs_hold_reverse_or_stay_within_noise() {
        let values =
            [("full", 67.3, stat(60.0, 0.5, 3)), ("class", 65.1, stat(58.0, 0.5, 3)), ("l2", 64.4, stat(59.0, 3.0, 3))];
        let v = verdict("auc_rebal", &values);
        let outcome = |a: &str, b: &str| v.pairs.iter().find(|p| p.a == a && p.b == b).unwrap().outcome;
        assert_eq!(outcome("full", "class"), Outcome::Holds);
        // 59.0 vs 58.0 with a standard error of sqrt(9/3 + 0.25/3) = 1.76: within noise.
        assert_eq!(outcome("class", "l2"), Outcome::Unresolved);
        assert_eq!(outcome("full", "l2"), Outcome::Unresolved);
        assert!(
            v.line.starts_with("auc_rebal: the published ordering holds where resolved (1 of 3 pairs hold"),
            "{}",
            v.line
        );
        assert!(v.line.contains("published full > class > l2, measured full > l2 > class"), "{}", v.line);

        let reversed = verdict("auc", &[("a", 2.0, stat(1.0, f64::NAN, 1)), ("b", 1.0, stat(2.0, f64::NAN, 1))]);
        assert_eq!(reversed.pairs[0].outcome, Outcome::Reversed);
        assert!(reversed.line.contains("is reversed") && reversed.line.contains("reversed: a vs b"));
        assert!(reversed.line.contains("no noise estimate"));
        let mixed = verdict(
            "auc",
            &[("a", 3.0, stat(3.0, 0.1, 2)), ("b", 2.0, stat(1.0, 0.1, 2)), ("c", 1.0, stat(2.0, 0.1, 2))],
        );
        assert!(mixed.line.contains("partly holds (2 of 3 pairs hold, 1 reversed"), "{}", mixed.line);
        let tie = verdict("auc", &[("a", 1.0, stat(1.0, 0.1, 2)), ("b", 1.0, stat(2.0, 0.1, 2))]);
        assert!(tie.pairs.is_empty() && tie.line.contains("nothing to compare"));
    }
}
