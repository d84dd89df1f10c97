//! Losses kept on the device and read back together: reading a loss (`into_scalar`) waits for the
//! device to finish everything queued before it, so reading one per step stops a lazy, fused GPU
//! backend from running ahead of the host. The trainer reads its window every
//! [`super::trainer::LOSS_READ_EVERY`] steps and at the end of the epoch, validation once at the end
//! of the pass. The values come back in the order they were pushed and are added up on the host in
//! f64 exactly as a read per step would, so every logged number is the same.

use anyhow::Result;
use burn::tensor::Tensor;

/// A batch's mean loss, still on the device, with what the host needs to account for it.
struct Pending {
    loss: Tensor<1>,
    /// Images in the batch: the loss's weight in the epoch's mean.
    images: usize,
    /// The batch's 0-based step in its pass.
    step: usize,
}

/// One read-back loss.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ReadLoss {
    pub value: f64,
    pub images: usize,
    pub step: usize,
}

/// The losses pushed since the last read.
#[derive(Default)]
pub struct DeviceLosses {
    pending: Vec<Pending>,
}

impl DeviceLosses {
    /// Keeps `loss` (a one-element tensor, the mean over `images` images of step `step`), detached
    /// from the autodiff graph so the window holds no graph alive.
    pub fn push(&mut self, loss: Tensor<1>, images: usize, step: usize) {
        self.pending.push(Pending { loss: loss.detach(), images, step });
    }

    /// Losses waiting to be read.
    pub fn waiting(&self) -> usize {
        self.pending.len()
    }

    /// Reads every pending loss in one transfer (one device sync), oldest first, and empties the window.
    pub fn read(&mut self) -> Result<Vec<ReadLoss>> {
        if self.pending.is_empty() {
            return Ok(Vec::new());
        }
        let pending = std::mem::take(&mut self.pending);
        let tensors: Vec<Tensor<1>> = pending.iter().map(|p| p.loss.clone()).collect();
        let values = Tensor::cat(tensors, 0).into_data().try_to_vec::<f32>()?;
        Ok(pending
            .iter()
            .zip(values)
            .map(|(p, v)| ReadLoss { value: v as f64, images: p.images, step: p.step })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Device;

    #[test]
    fn a_read_gives_back_every_loss_in_order_with_its_weight_and_step() {
        let device = Device::flex();
        let mut losses = DeviceLosses::default();
        assert!(losses.read().unwrap().is_empty());
        for (step, (value, images)) in [(0.5f32, 8), (f32::NAN, 8), (0.25, 3)].into_iter().enumerate() {
            losses.push(Tensor::from_floats([value], &device), images, step);
        }
        assert_eq!(losses.waiting(), 3);
        let read = losses.read().unwrap();
        assert_eq!(losses.waiting(), 0);
        assert_eq!((read[0].value, read[0].images, read[0].step), (0.5, 8, 0));
        assert!(read[1].value.is_nan() && read[1].step == 1);
        assert_eq!((read[2].value, read[2].images, read[2].step), (0.25, 3, 2));
    }
}
