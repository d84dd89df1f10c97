//! Plan generators: how a spec's settings are combined into the points of a sweep, before defaults,
//! rules, excludes and seeds are applied to each (`super::expand`).
//!
//! A [`PlanGenerator`] turns a spec into [`Combination`]s: a name and the values set on top of
//! `[base]` (the variant layer). Everything after is the same for every generator: each combination is
//! resolved into a run config, so its run ids, skipping, resumption and retries work the same
//! whatever generated it. A generator must be deterministic: a combination may depend only on the
//! spec (a random search's trial `i` only on its seed and `i`, so that raising the trial count keeps
//! the earlier trials and their runs).
//!
//! Generators: `grid` (every `[[variant]]` crossed with every `[grid]` point) and `search` (a
//! `[search]`'s trials inside each of grid's combinations, see `super::search`).
//!
//! To add a generator: a file here with a unit struct implementing [`PlanGenerator`] and its tests,
//! one arm in [`Strategy`] with its `mod` line, and the spec's way of choosing it (read in
//! `parse.rs` into [`super::Spec::strategy`]).

pub mod grid;
pub mod search;

use super::error::Diagnostic;
use super::parse::{Entry, Spec};
use super::value::Origin;
use crate::named::named_enum;

/// The most runs (combinations x seeds) a spec may plan: each run carries its resolved config (about
/// 10 kB), and planning is linear in their number (100,000 runs take about 1 GB). A generator that
/// would make more refuses before it allocates them, and so does `plan` before it resolves them.
pub const MAX_RUNS: u128 = 250_000;

/// One point of a sweep, before defaults and seeds.
#[derive(Clone, Debug)]
pub struct Combination {
    /// The name its runs go by in plans, tables and reports (`cls,color_space=lab`).
    pub name: String,
    /// The name of the `[[variant]]` it comes from, which `[[exclude]] name` also matches.
    pub variant: Option<String>,
    /// The values set on top of `[base]`, later ones winning: a variant's own, then a grid point's.
    pub entries: Vec<Entry>,
    /// Where it was defined, for errors about the whole combination (two that train the same runs).
    pub origin: Origin,
    /// The search trial it is, if a search made it.
    pub trial: Option<Trial>,
}

/// A trial of a search: the combination it was sampled inside, its number and its sampled values.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Trial {
    /// The name of the grid combination (the variant) the trial belongs to.
    pub variant: String,
    pub index: u64,
    /// `(key, value)` of each searched key, in `[search.space]` order.
    pub sampled: Vec<(String, String)>,
}

/// A way of turning a spec into the combinations of its sweep.
pub trait PlanGenerator: Sync {
    /// The combinations of `spec`, in plan order. Problems (values that contradict each other) go to
    /// `errors`, and the combinations are still returned so that every problem is reported at once.
    fn combinations(&self, spec: &Spec, errors: &mut Vec<Diagnostic>) -> Vec<Combination>;
}

named_enum! {
    /// The plan generators a spec can use.
    pub enum Strategy: generator() -> &'static dyn PlanGenerator {
        /// Every `[[variant]]` crossed with every `[grid]` point.
        Grid = "grid" => &grid::Grid,
        /// A `[search]`'s trials inside each of grid's combinations.
        Search = "search" => &search::Search,
    }
}
