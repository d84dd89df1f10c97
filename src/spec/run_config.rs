//! The closed choices of a run's config that no lower layer implements (the task, the optimizer,
//! the learning-rate schedule, the pretraining mode), and typed access to a resolved config.

use toml::Value;

use super::value::Flat;
use crate::loss::{Family, Loss};
use crate::named::{Named, named_enum};

named_enum! {
    /// What the network predicts: the chroma itself, or a distribution over chroma bins.
    pub enum Task {
        /// Regress the two chroma channels.
        Regression = "regression",
        /// Classify each pixel over quantized chroma bins (Zhang et al. 2016).
        Classification = "classification",
    }
}

impl Task {
    /// The loss a run of this task trains with when its spec names none.
    pub fn default_loss(self) -> Loss {
        match self {
            Task::Regression => Loss::L2,
            Task::Classification => Loss::CrossEntropy,
        }
    }

    /// The task whose outputs `loss` scores.
    pub fn of(loss: Loss) -> Task {
        match loss.family() {
            Family::Regression(_) => Task::Regression,
            Family::Classification(_) => Task::Classification,
        }
    }

    /// The losses that fit this task, in [`Loss`]'s order.
    pub fn losses(self) -> Vec<Loss> {
        Loss::ALL.into_iter().filter(|&l| Task::of(l) == self).collect()
    }
}

named_enum! {
    /// The `optimizer` key.
    pub enum Optimizer {
        Adam = "adam",
        /// Adam with decoupled weight decay.
        AdamW = "adamw",
        /// SGD with momentum.
        Sgd = "sgd",
    }
}

named_enum! {
    /// The `lr_schedule` key.
    pub enum LrSchedule {
        Constant = "constant",
        /// Times `lr_gamma` every `lr_step_epochs`.
        Step = "step",
        /// Cosine annealing to `lr_min` over the run.
        Cosine = "cosine",
    }
}

named_enum! {
    /// The `backbone.pretrain` key: how a backbone without torchvision weights starts.
    pub enum Pretrain {
        /// From scratch, trained with the colorizer.
        None = "none",
        /// First trained alone as a classifier of the data set's labels on gray images.
        Classification = "classification",
    }
}

/// A closed choice's value.
pub fn choice<T: Named>(flat: &Flat, key: &str) -> T {
    T::parse(flat.text(key)).unwrap_or_else(|| missing(key))
}

/// Typed getters of resolved values. The values were checked against the schema when the config was
/// resolved, so a wrong type or a missing key here is a bug in sweep, not in the user's spec.
impl Flat {
    pub fn int(&self, key: &str) -> i64 {
        self.value(key).and_then(Value::as_integer).unwrap_or_else(|| missing(key))
    }
    pub fn float(&self, key: &str) -> f64 {
        self.value(key).and_then(Value::as_float).unwrap_or_else(|| missing(key))
    }
    pub fn text(&self, key: &str) -> &str {
        self.str(key).unwrap_or_else(|| missing(key))
    }
    pub fn flag(&self, key: &str) -> bool {
        self.bool(key).unwrap_or_else(|| missing(key))
    }
    pub fn ints(&self, key: &str) -> Vec<usize> {
        let list = self.value(key).and_then(Value::as_array).unwrap_or_else(|| missing(key));
        list.iter().map(|v| v.as_integer().unwrap_or_else(|| missing(key)) as usize).collect()
    }
    pub fn floats(&self, key: &str) -> Vec<f64> {
        let list = self.value(key).and_then(Value::as_array).unwrap_or_else(|| missing(key));
        list.iter().map(|v| v.as_float().unwrap_or_else(|| missing(key))).collect()
    }
}

fn missing(key: &str) -> ! {
    panic!("resolved config lacks a valid `{key}` (a bug in sweep's schema handling)")
}
