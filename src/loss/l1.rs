//! The absolute error: less pulled towards the mean colour by rare large errors than L2.

use burn::tensor::Tensor;

use super::{LossParams, RegressionLoss};

/// `|r|` per value.
#[derive(Debug)]
pub struct L1;

impl RegressionLoss for L1 {
    fn per_value(&self, residual: Tensor<4>, _: &LossParams) -> Tensor<4> {
        residual.abs()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flex::test_support::values;
    use crate::loss::tests::column;

    #[test]
    fn takes_the_absolute_value() {
        let params = LossParams { huber_delta: 1.0 };
        assert_eq!(values(L1.per_value(column(&[-2.0, 0.5, 0.0]), &params)), [2.0, 0.5, 0.0]);
    }
}
