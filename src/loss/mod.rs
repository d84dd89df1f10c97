//! Losses: how far a model's output is from its target, one file per loss.
//!
//! A regression loss ([`RegressionLoss`]) penalises each value of the residual, the predicted minus
//! the target chroma (with HSV's hue already wrapped onto the circle); a classification loss
//! ([`ClassificationLoss`]) scores each pixel's logits over the chroma bins against its target
//! distribution. Both give a per-value tensor: the task's objective (`crate::train::objective`)
//! makes the targets, weights the values (hue by saturation, class rebalancing) and averages them,
//! so a loss is only its formula.
//!
//! The module sits below `spec`, which names the losses in the schema (`loss = "..."`), checks that
//! a loss fits its task and decodes it into the run's config.
//!
//! To add a loss: a file here with a unit struct implementing [`RegressionLoss`] (or
//! [`ClassificationLoss`]) and its tests, and one arm in [`Loss`] (`LogCosh = "log_cosh" =>
//! Family::Regression(&log_cosh::LogCosh)`) with its `mod` line. The schema's choice list, the
//! task check and the objective follow from the arm. A loss with a parameter also needs its key in
//! `spec/schema.rs` and a field of [`LossParams`], which `spec/run_config.rs` fills.

pub mod cross_entropy;
pub mod huber;
pub mod l1;
pub mod l2;

use burn::tensor::Tensor;

use crate::named::named_enum;

/// A regression loss: a penalty per value of the residual.
pub trait RegressionLoss: Sync + std::fmt::Debug {
    /// The loss of each value of `residual` (prediction minus target, `[n, 2, h, w]`, in the
    /// activation's units), same shape.
    fn per_value(&self, residual: Tensor<4>, params: &LossParams) -> Tensor<4>;
}

/// A classification loss: a score per pixel of logits over the chroma bins.
pub trait ClassificationLoss: Sync + std::fmt::Debug {
    /// The loss of each pixel, `[n, 1, h, w]`, of `logits` `[n, q, h, w]` against `target`, a
    /// distribution over the q bins at each pixel (soft-encoded or one-hot), same shape as `logits`.
    fn per_pixel(&self, logits: Tensor<4>, target: Tensor<4>) -> Tensor<4>;
}

/// What a loss scores, with its implementation.
#[derive(Clone, Copy, Debug)]
pub enum Family {
    /// Regressed chroma.
    Regression(&'static dyn RegressionLoss),
    /// Logits over chroma bins.
    Classification(&'static dyn ClassificationLoss),
}

named_enum! {
    /// The `loss` a run trains with.
    pub enum Loss: family() -> Family {
        /// Squared error.
        L2 = "l2" => Family::Regression(&l2::L2),
        /// Absolute error.
        L1 = "l1" => Family::Regression(&l1::L1),
        /// Squared below `huber_delta`, linear above.
        Huber = "huber" => Family::Regression(&huber::Huber),
        /// Cross-entropy against the (soft-encoded) target distribution.
        CrossEntropy = "cross_entropy" => Family::Classification(&cross_entropy::CrossEntropy),
    }
}

/// The parameters of the losses that take one, from the run's config. Each applies to its own loss
/// only; the others never read it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LossParams {
    /// Threshold of [`huber::Huber`], in the activation's units.
    pub huber_delta: f32,
}

#[cfg(test)]
pub(crate) mod tests {
    use burn::tensor::{Device, Tensor, TensorData};

    /// `values` as a `[1, values.len(), 1, 1]` tensor on the CPU.
    pub fn column(values: &[f32]) -> Tensor<4> {
        Tensor::from_data(TensorData::new(values.to_vec(), [1, values.len(), 1, 1]), &Device::flex())
    }
}
