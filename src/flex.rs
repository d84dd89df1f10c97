//! Access to the data of burn's flex (CPU) tensors for sweep's own CPU operations: the conv, batch
//! norm and pool of `model` and the cross-entropy of `loss`, which read and write `f32` slices
//! directly instead of composing burn's tensor operations.

use burn::backend::flex::FlexTensor;

/// `t` with contiguous storage (itself when it already is).
pub fn contiguous(t: &FlexTensor) -> FlexTensor {
    if t.as_slice::<f32>().is_some() { t.clone() } else { t.to_contiguous() }
}

/// The `f32` values of a tensor made contiguous by [`contiguous`].
pub fn slice(t: &FlexTensor) -> &[f32] {
    t.as_slice::<f32>().expect("made contiguous f32 by `contiguous`")
}

#[cfg(test)]
pub mod test_support;
