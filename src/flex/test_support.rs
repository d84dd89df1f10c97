//! What the tests of the CPU fast paths (model, loss) share: a tensor's values, and a comparison of the fast path's
//! numbers with burn's own within a tolerance relative to the largest of burn's.

use burn::tensor::Tensor;

pub fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().try_to_vec::<f32>().unwrap()
}

/// `ours` equals `burns` element by element within `tol` times burn's largest magnitude.
pub fn assert_close(what: &str, ours: &[f32], burns: &[f32], tol: f32) {
    assert_eq!(ours.len(), burns.len(), "{what}: lengths");
    let scale = burns.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-3);
    for (i, (x, y)) in ours.iter().zip(burns).enumerate() {
        assert!((x - y).abs() <= tol * scale, "{what}[{i}]: ours {x} vs burn {y} (scale {scale})");
    }
}
