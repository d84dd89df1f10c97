//! The Huber loss: squared for small residuals, linear for large ones (threshold `huber_delta`).

use burn::tensor::Tensor;

use super::{LossParams, RegressionLoss};

/// `0.5 a^2` for `a = |r| <= delta`, `delta (a - delta / 2)` above.
#[derive(Debug)]
pub struct Huber;

impl RegressionLoss for Huber {
    fn per_value(&self, residual: Tensor<4>, params: &LossParams) -> Tensor<4> {
        let delta = params.huber_delta;
        // q = min(a, delta) gives both pieces: 0.5 q^2 + delta (a - q).
        let a = residual.abs();
        let q = a.clone().clamp_max(delta);
        q.clone().powi_scalar(2).mul_scalar(0.5) + (a - q).mul_scalar(delta)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flex::test_support::values;
    use crate::loss::tests::column;

    #[test]
    fn is_quadratic_below_delta_and_linear_above() {
        let params = LossParams { huber_delta: 0.5 };
        // 0.5 * 0.2^2 = 0.02; 0.5 * (2 - 0.25) = 0.875; and continuous at delta: 0.5 * 0.5^2 = 0.125.
        let got = values(Huber.per_value(column(&[0.2, -2.0, 0.5]), &params));
        for (g, want) in got.iter().zip([0.02, 0.875, 0.125]) {
            assert!((g - want).abs() < 1e-6, "{got:?}");
        }
    }
}
