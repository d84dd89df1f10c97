//! Cross-entropy against a target distribution over the chroma bins (Zhang et al. 2016, eq. 2): with
//! a soft-encoded target it spreads credit over the bins near the true colour.

use burn::tensor::Tensor;
use burn::tensor::activation::log_softmax;

use super::ClassificationLoss;

/// `-sum_q target_q log softmax(logits)_q` per pixel.
#[derive(Debug)]
pub struct CrossEntropy;

impl ClassificationLoss for CrossEntropy {
    fn per_pixel(&self, logits: Tensor<4>, target: Tensor<4>) -> Tensor<4> {
        (log_softmax(logits, 1) * target).sum_dim(1).neg()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loss::tests::{column, values};

    #[test]
    fn is_the_negative_log_likelihood_of_a_one_hot_target() {
        // Logits (0, ln 3): softmax (1/4, 3/4); a one-hot target on the second bin costs -ln(3/4).
        let loss = values(CrossEntropy.per_pixel(column(&[0.0, 3.0f32.ln()]), column(&[0.0, 1.0])));
        assert_eq!(loss.len(), 1);
        assert!((loss[0] - (4.0f32 / 3.0).ln()).abs() < 1e-6, "{loss:?}");
    }
}
