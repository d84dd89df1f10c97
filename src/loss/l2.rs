//! The squared error, the regression loss of Zhang et al.'s and Iizuka et al.'s baselines.

use burn::tensor::Tensor;

use super::{LossParams, RegressionLoss};

/// `r^2` per value.
#[derive(Debug)]
pub struct L2;

impl RegressionLoss for L2 {
    fn per_value(&self, residual: Tensor<4>, _: &LossParams) -> Tensor<4> {
        residual.powi_scalar(2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flex::test_support::values;
    use crate::loss::tests::column;

    #[test]
    fn squares_each_value() {
        let params = LossParams { huber_delta: 1.0 };
        assert_eq!(values(L2.per_value(column(&[-2.0, 0.5, 0.0]), &params)), [4.0, 0.25, 0.0]);
    }
}
