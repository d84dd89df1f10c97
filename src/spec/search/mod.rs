//! `[search]`: random or quasi-random search inside each variant of grid x variants.
//!
//! ```toml
//! [search]
//! method = "quasi"              # or "random"
//! trials = 16                   # per variant; trial i depends only on (seed, i)
//! seed = 0
//! then = "seeds"                # optional: train each variant's best trial with every [sweep] seed
//! [search.space]
//! lr = { log_uniform = [1e-4, 1e-2] }
//! weight_decay = { uniform = [0.0, 1e-3] }
//! epochs = { int_uniform = [2, 4] }
//! local.widths = { choice = [[32, 64], [64, 128]] }
//! ```
//!
//! A [`Sampler`] gives each trial a point of the unit cube, one file per method (`random`: SplitMix64
//! seeded by (seed, trial); `quasi`: a scrambled Halton sequence), and each [`Distribution`] maps its
//! coordinate to a value of its key, checked against the schema when the spec is read (ranges) and
//! when the trial is made (the value). Floats are rounded to 4 significant digits, so that plans,
//! run names and configs stay readable; a trial that rounds onto an earlier one is trained once.
//! The trials themselves are made by `super::generate::search`.

pub mod quasi;
pub mod random;

use toml::Value;
use toml::de::DeValue;

use super::parse::{Reader, flatten_pair};
use super::schema::{self, Key, Kind};
use super::value::{Origin, check, show};
use crate::named::{Named, named_enum};

/// How the trials' points in the unit cube are drawn.
pub trait Sampler: Sync {
    /// Trial `trial`'s point in `[0, 1)^dims`, a function of `(seed, trial)` alone.
    fn point(&self, seed: u64, trial: u64, dims: usize) -> Vec<f64>;
}

named_enum! {
    /// `[search] method`: how trials are sampled.
    pub enum SearchMethod: sampler() -> &'static dyn Sampler {
        /// Independent uniform draws.
        Random = "random" => &random::Random,
        /// A scrambled Halton sequence: few trials cover the space evenly.
        Quasi = "quasi" => &quasi::Quasi,
    }
}

named_enum! {
    /// `[search] then`: what follows the search.
    pub enum Then {
        /// Each variant's best trial trained with every seed of `[sweep] seeds`.
        Seeds = "seeds",
    }
}

named_enum! {
    /// The distributions of `[search.space]`.
    pub enum DistributionKind {
        LogUniform = "log_uniform",
        Uniform = "uniform",
        IntUniform = "int_uniform",
        Choice = "choice",
    }
}

/// Where a searched key's values come from.
#[derive(Clone, Debug, PartialEq)]
pub enum Distribution {
    LogUniform(f64, f64),
    Uniform(f64, f64),
    IntUniform(i64, i64),
    Choice(Vec<Value>),
}

impl Distribution {
    pub fn kind(&self) -> DistributionKind {
        match self {
            Distribution::LogUniform(..) => DistributionKind::LogUniform,
            Distribution::Uniform(..) => DistributionKind::Uniform,
            Distribution::IntUniform(..) => DistributionKind::IntUniform,
            Distribution::Choice(_) => DistributionKind::Choice,
        }
    }

    /// The value at coordinate `u` in `[0, 1)`.
    pub fn at(&self, u: f64) -> Value {
        let u = u.clamp(0.0, 1.0);
        match self {
            Distribution::LogUniform(a, b) => Value::Float(round((a.ln() + u * (b.ln() - a.ln())).exp()).clamp(*a, *b)),
            Distribution::Uniform(a, b) => Value::Float(round(a + u * (b - a)).clamp(*a, *b)),
            Distribution::IntUniform(a, b) => {
                let span = (b - a) as f64 + 1.0;
                Value::Integer(a + ((u * span).floor() as i64).min(b - a))
            }
            Distribution::Choice(values) => values[((u * values.len() as f64) as usize).min(values.len() - 1)].clone(),
        }
    }
}

/// Rounds to 4 significant digits.
fn round(x: f64) -> f64 {
    format!("{x:.3e}").parse().unwrap_or(x)
}

/// One searched key.
#[derive(Clone, Debug)]
pub struct Dimension {
    pub key: &'static Key,
    pub dist: Distribution,
    /// Its entry in `[search.space]`.
    pub origin: Origin,
}

/// A spec's `[search]` table.
#[derive(Clone, Debug)]
pub struct Search {
    pub method: SearchMethod,
    pub trials: u64,
    pub seed: u64,
    pub then: Option<Then>,
    pub space: Vec<Dimension>,
    /// The table, for errors about the search as a whole.
    pub origin: Origin,
}

const SEARCH_KEYS: &[&str] = &["method", "trials", "seed", "then", "space"];

/// The most trials a search may have per variant.
pub const MAX_TRIALS: u64 = 100_000;

/// Sets one `[search]` key other than `space` (from the spec or from `--set search.KEY=VALUE`).
pub fn apply_search_key(search: &mut Search, key: &str, value: &Value) -> Result<(), (String, Option<String>)> {
    let invalid = |help: String| Err((format!("[search] {key} = {} is not valid", show(value)), Some(help)));
    match key {
        "method" => match value.as_str().and_then(SearchMethod::parse) {
            Some(m) => search.method = m,
            None => return invalid(format!("give one of {}", schema::quoted_list(&SearchMethod::NAMES))),
        },
        "trials" => {
            match value.as_integer().and_then(|i| u64::try_from(i).ok()).filter(|n| (1..=MAX_TRIALS).contains(n)) {
                Some(n) => search.trials = n,
                None => {
                    return invalid(format!(
                        "give the number of trials per variant, 1 to {MAX_TRIALS}, e.g. trials = 16"
                    ));
                }
            }
        }
        "seed" => match value.as_integer().and_then(|i| u64::try_from(i).ok()) {
            Some(n) => search.seed = n,
            None => return invalid("give an integer >= 0".into()),
        },
        "then" => match value.as_str().and_then(Then::parse) {
            Some(t) => search.then = Some(t),
            None => return invalid(format!("give {}", schema::quoted_list(&Then::NAMES))),
        },
        _ => {
            let help = super::error::did_you_mean(key, SEARCH_KEYS.iter().copied())
                .map(|s| format!("did you mean `{s}`?"))
                .unwrap_or_else(|| format!("[search] takes {}", schema::quoted_list(SEARCH_KEYS)));
            return Err((format!("unknown key `{key}` in [search]"), Some(help)));
        }
    }
    Ok(())
}

/// Reads `[search]`; problems go to `r`.
pub(super) fn read(r: &mut Reader, v: &toml::Spanned<DeValue>) -> Option<Search> {
    let Some(t) = v.get_ref().as_table() else {
        r.error("`search` must be a table: [search]".into(), v.span(), None);
        return None;
    };
    let mut search = Search {
        method: SearchMethod::Random,
        trials: 0,
        seed: 0,
        then: None,
        space: Vec::new(),
        origin: r.origin(v.span()),
    };
    for (k, v) in t.iter() {
        let key = k.get_ref().as_ref();
        if key == "space" {
            read_space(r, v, &mut search.space);
            continue;
        }
        let Some(value) = r.value(v, &format!("[search] {key}")) else { continue };
        if let Err((msg, help)) = apply_search_key(&mut search, key, &value) {
            let span = if SEARCH_KEYS.contains(&key) { v.span() } else { k.span() };
            r.error(msg, span, help);
        }
    }
    let missing = |what: &str| format!("[search] has no {what}");
    if search.trials == 0 && !t.iter().any(|(k, _)| k.get_ref() == "trials") {
        r.error(missing("trials"), v.span(), Some("add trials = N: the trials per variant, e.g. trials = 16".into()));
    }
    if search.space.is_empty() && !t.iter().any(|(k, _)| k.get_ref() == "space") {
        r.error(
            missing("[search.space]"),
            v.span(),
            Some("add [search.space] with one line per searched key, e.g. lr = { log_uniform = [1e-4, 1e-2] }".into()),
        );
    }
    Some(search)
}

/// `[search.space]`: one distribution per key.
fn read_space(r: &mut Reader, v: &toml::Spanned<DeValue>, space: &mut Vec<Dimension>) {
    let Some(t) = v.get_ref().as_table() else {
        r.error("[search] space must be a table: [search.space]".into(), v.span(), None);
        return;
    };
    if t.is_empty() {
        r.error(
            "[search.space] searches no key".into(),
            v.span(),
            Some("add e.g. lr = { log_uniform = [1e-4, 1e-2] }".into()),
        );
    }
    for (k, v) in t.iter() {
        for item in flatten_pair(r, k, v, "") {
            if space.iter().any(|d| d.key.name == item.key.name) {
                r.error(format!("`{}` is searched twice", item.key.name), item.key_span.clone(), None);
                continue;
            }
            if let Some(dist) = read_distribution(r, item.key, item.value) {
                space.push(Dimension { key: item.key, dist, origin: r.origin(item.key_span.clone()) });
            }
        }
    }
}

/// One key's distribution: `{ log_uniform = [a, b] }`, `{ uniform = [a, b] }`, `{ int_uniform = [a, b] }`
/// or `{ choice = [...] }`, whose values must be valid for the key.
fn read_distribution(r: &mut Reader, key: &'static Key, v: &toml::Spanned<DeValue>) -> Option<Distribution> {
    let name = key.name;
    let example = format!(
        "write {name} = {{ log_uniform = [a, b] }}, {{ uniform = [a, b] }}, {{ int_uniform = [a, b] }} or {{ choice = [...] }}"
    );
    let table = v.get_ref().as_table().filter(|t| t.len() == 1);
    let Some((kind_key, arg)) = table.and_then(|t| t.iter().next()) else {
        r.error(format!("[search.space] {name} must be one distribution"), v.span(), Some(example));
        return None;
    };
    let Some(kind) = DistributionKind::parse(kind_key.get_ref()) else {
        r.error(format!("unknown distribution `{}` for {name}", kind_key.get_ref()), kind_key.span(), Some(example));
        return None;
    };
    let items = arg.get_ref().as_array().map(|a| a.iter().collect::<Vec<_>>());
    let Some(items) = items.filter(|a| !a.is_empty()) else {
        r.error(format!("{kind} of {name} must be a non-empty list"), arg.span(), Some(example));
        return None;
    };
    Some(match kind {
        DistributionKind::Choice => Distribution::Choice(read_choices(r, key, &items)?),
        DistributionKind::LogUniform => {
            read_range(r, key, kind, arg, &items).map(|(a, b)| Distribution::LogUniform(a, b))?
        }
        DistributionKind::Uniform => read_range(r, key, kind, arg, &items).map(|(a, b)| Distribution::Uniform(a, b))?,
        DistributionKind::IntUniform => {
            read_range(r, key, kind, arg, &items).map(|(a, b)| Distribution::IntUniform(a as i64, b as i64))?
        }
    })
}

/// The values of a choice, each valid for the key (a wrong one is an error at its place).
fn read_choices(r: &mut Reader, key: &'static Key, items: &[&toml::Spanned<DeValue>]) -> Option<Vec<Value>> {
    let mut values = Vec::new();
    let before = r.errors.len();
    for item in items {
        let Some(value) = r.value(item, &format!("choice of {}", key.name)) else { continue };
        match check(key, &value) {
            Ok(value) => values.push(value),
            Err(msg) => r.error(format!("a choice of {}: {msg}", key.name), item.span(), None),
        }
    }
    (r.errors.len() == before).then_some(values)
}

/// The two ends of a range distribution, checked for the key.
fn read_range(
    r: &mut Reader,
    key: &'static Key,
    kind: DistributionKind,
    arg: &toml::Spanned<DeValue>,
    items: &[&toml::Spanned<DeValue>],
) -> Option<(f64, f64)> {
    let name = key.name;
    let numeric = match (key.kind, kind) {
        (Kind::Float { .. }, _) | (Kind::Int { .. }, DistributionKind::IntUniform) => true,
        (Kind::Int { .. }, _) => {
            let help = format!("`{name}` takes integers: use int_uniform or choice");
            r.error(format!("{kind} does not fit `{name}`"), arg.span(), Some(help));
            return None;
        }
        (Kind::Bool | Kind::Path | Kind::Choice(_) | Kind::IntList { .. } | Kind::FloatList { .. }, _) => false,
    };
    if !numeric {
        let help = format!("`{name}` is not a number: search it with {name} = {{ choice = [...] }}");
        r.error(format!("{kind} does not fit `{name}`"), arg.span(), Some(help));
        return None;
    }
    if items.len() != 2 {
        r.error(format!("{kind} of {name} must be [low, high]"), arg.span(), None);
        return None;
    }
    let mut ends = Vec::new();
    for item in items {
        let value = r.value(item, &format!("{kind} of {name}"))?;
        let fits = match kind {
            DistributionKind::IntUniform => value.as_integer().is_some(),
            DistributionKind::LogUniform | DistributionKind::Uniform | DistributionKind::Choice => {
                value.as_float().or(value.as_integer().map(|i| i as f64)).is_some()
            }
        };
        if !fits {
            r.error(
                format!(
                    "{kind} of {name}: {} is not {}",
                    show(&value),
                    if kind == DistributionKind::IntUniform { "an integer" } else { "a number" }
                ),
                item.span(),
                None,
            );
            return None;
        }
        if kind == DistributionKind::LogUniform
            && value.as_float().or(value.as_integer().map(|i| i as f64)).is_some_and(|x| x <= 0.0)
        {
            let help = "a log-uniform range lies above 0: give e.g. [1e-5, 1e-2], or use uniform".to_string();
            r.error(format!("log_uniform of {name} touches 0 or below ({})", show(&value)), item.span(), Some(help));
            return None;
        }
        match check(key, &value) {
            Ok(v) => ends.push((v, item.span())),
            Err(msg) => {
                r.error(format!("{kind} of {name}: {msg}"), item.span(), None);
                return None;
            }
        }
    }
    let float = |v: &Value| v.as_float().or(v.as_integer().map(|i| i as f64)).unwrap_or(f64::NAN);
    let (lo, hi) = (float(&ends[0].0), float(&ends[1].0));
    if lo >= hi {
        let what = if lo == hi { "empty" } else { "inverted" };
        r.error(
            format!("{kind} range of {name} is {what}: [{}, {}]", show(&ends[0].0), show(&ends[1].0)),
            arg.span(),
            Some("give [low, high] with low below high; to fix a value, set it in [base]".into()),
        );
        return None;
    }
    Some((lo, hi))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distributions_map_the_unit_interval_onto_their_values() {
        let log = Distribution::LogUniform(1e-4, 1e-2);
        assert_eq!(log.at(0.0), Value::Float(1e-4));
        assert_eq!(log.at(0.5), Value::Float(1e-3));
        assert_eq!(log.at(0.999_999_999), Value::Float(1e-2));
        // 4 significant digits: 1e-4 * 100^0.3 = 3.98107e-4.
        assert_eq!(log.at(0.3), Value::Float(3.981e-4));
        assert_eq!(Distribution::Uniform(0.0, 1e-3).at(0.25), Value::Float(2.5e-4));
        let ints = Distribution::IntUniform(2, 4);
        let got: Vec<Value> = [0.0, 0.33, 0.34, 0.66, 0.67, 0.999].iter().map(|&u| ints.at(u)).collect();
        assert_eq!(got, [2, 2, 3, 3, 4, 4].map(Value::Integer));
        let choice = Distribution::Choice(vec![Value::Boolean(true), Value::Boolean(false)]);
        assert_eq!((choice.at(0.49), choice.at(0.5)), (Value::Boolean(true), Value::Boolean(false)));
    }
}
