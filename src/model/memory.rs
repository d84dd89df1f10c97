//! The net's memory estimates, from its layers' shapes alone (nothing is allocated or run):
//! [`ColorizationNet::forward_bytes`], what a forward pass of one image holds at its peak (it bounds
//! `sweep colorize --size` and `sweep eval`'s image size), and [`ColorizationNet::training_bytes`],
//! what one training step of a batch holds (parameters, gradients, optimizer state and the batch's
//! activations; `sweep run` prints it and checks it against the machine's memory). The training
//! estimate builds on the forward one: the backward's working set is one layer's gradients at a
//! time, bounded by the forward estimate's widest layer.

use burn::nn::conv::Conv2d;

use super::{ColorizationNet, Fusion, Head, Hypercolumn, LocalFeatures, Output, param_shapes, parameter_count};

/// Bytes of an f32.
const F32: u64 = 4;

/// Floats of `channels` maps of `side` x `side`.
pub(crate) fn maps(channels: usize, side: usize) -> u64 {
    (channels * side * side) as u64
}

/// Floats a 2x2 max pool keeps for the backward, per image: its output of `channels` maps of the
/// pooled `side`, and as many argmax indices of 8 bytes (two floats' worth each).
pub(crate) fn pool_kept(channels: usize, side: usize) -> u64 {
    3 * maps(channels, side)
}

/// `bytes` and a quarter more for the allocator (freed blocks it keeps, rounding of block sizes).
fn with_margin(bytes: u64) -> u64 {
    bytes + bytes / 4
}

/// What one training step of a batch holds, by what holds it ([`ColorizationNet::training_bytes`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TrainingBytes {
    /// Every float tensor of the net, batch norm's running statistics included.
    pub parameters: u64,
    /// One gradient per trainable parameter.
    pub gradients: u64,
    /// The optimizer's state: its floats per trainable parameter.
    pub optimizer: u64,
    /// The batch's maps: those autodiff keeps for the backward, and the backward's working set.
    pub activations: u64,
}

impl TrainingBytes {
    /// The whole step, with a quarter more for the allocator (as [`ColorizationNet::forward_bytes`]).
    pub fn total(&self) -> u64 {
        with_margin(self.parameters + self.gradients + self.optimizer + self.activations)
    }
}

impl ColorizationNet {
    /// An upper estimate of the bytes a forward pass of one `side` x `side` image holds at once:
    /// the widest layer's maps (a conv's input, its output and the normalised or activated output)
    /// as if every layer ran at full resolution (the backbone's by its first conv, whose maps are its
    /// largest), the output twice more (its copy on the host and the decoded chroma), all f32, and a
    /// quarter more for the allocator. The peak memory of `sweep colorize` on the CPU was 45-85% of
    /// it at sides 1024-4096 for the quickstart's classification and regression nets and a VGG-16
    /// fusion net (at small sides the program's own ~60 MB dominate); `--size` is checked against it.
    pub fn forward_bytes(&self, side: usize) -> u64 {
        with_margin(F32 * maps(self.widest_channels(), side))
    }

    /// Channels of the full-resolution maps [`ColorizationNet::forward_bytes`] counts.
    fn widest_channels(&self) -> usize {
        let pairs = |shapes: Vec<(String, Vec<usize>)>| {
            shapes.iter().filter(|(_, s)| s.len() == 4).map(|(_, s)| 2 * s[0] + s[1]).max().unwrap_or(0)
        };
        let mut widest = pairs(param_shapes(&self.local)).max(pairs(param_shapes(&self.head)));
        widest = widest.max(self.fusion.as_ref().map_or(0, |f| pairs(param_shapes(f))));
        widest = widest.max(self.hypercolumn.as_ref().map_or(0, |h| pairs(param_shapes(h))));
        if let Some(bb) = &self.backbone {
            let first = param_shapes(bb).into_iter().find(|(_, s)| s.len() == 4).map_or(0, |(_, s)| s[0]);
            widest = widest.max(3 * first);
        }
        widest + 2 * self.head.output.channels() + 2
    }

    /// An estimate of what one training step of `batch` images of `side` x `side` holds, all f32.
    /// What it counts:
    /// - parameters: every float tensor of the net (batch norm's running statistics included);
    /// - gradients: one per trainable parameter (not the running statistics, nor the parameters of
    ///   a `backbone_frozen` backbone);
    /// - optimizer: `optimizer_slots` floats per trainable parameter (Adam's two moments, SGD's
    ///   velocity);
    /// - activations, per image of the batch: every map the forward makes, each at the resolution
    ///   it is made at, since autodiff keeps each for the backward (a conv its input and output,
    ///   batch norm + ReLU its output, a max pool its output and argmax indices): the input, each
    ///   local block's conv and batch norm outputs and pool, the backbone's maps (unless frozen: no
    ///   gradient flows through it, nothing is kept), the fusion or hypercolumn's concatenated
    ///   input and output, the mix upsampled to full size, the head's conv outputs and activation,
    ///   and three maps of the output's channels for the loss (the target, the log-softmax or the
    ///   difference, and their product); plus the backward's working set, one layer's gradients at
    ///   a time, bounded by the maps [`ColorizationNet::forward_bytes`] counts for one image.
    ///
    /// Not counted: the data set held in memory, the CPU conv's per-thread im2col tiles (a few MB),
    /// the program itself (~60 MB) and a GPU backend's own caches.
    pub fn training_bytes(
        &self,
        batch: usize,
        side: usize,
        optimizer_slots: usize,
        backbone_frozen: bool,
    ) -> TrainingBytes {
        let floats: u64 = param_shapes(self).iter().map(|(_, s)| s.iter().product::<usize>() as u64).sum();
        let frozen = match &self.backbone {
            Some(bb) if backbone_frozen => parameter_count(bb),
            _ => 0,
        };
        let trainable = (parameter_count(self) - frozen) as u64;
        let per_image = self.kept_floats(side, backbone_frozen) + maps(self.widest_channels(), side);
        TrainingBytes {
            parameters: F32 * floats,
            gradients: F32 * trainable,
            optimizer: F32 * optimizer_slots as u64 * trainable,
            activations: F32 * batch as u64 * per_image,
        }
    }

    /// Floats per image that a training step keeps for the backward (see
    /// [`ColorizationNet::training_bytes`]).
    fn kept_floats(&self, side: usize, backbone_frozen: bool) -> u64 {
        let (local, local_side) = local_kept(&self.local, side);
        let backbone = match &self.backbone {
            Some(bb) if !backbone_frozen => bb.kept_floats(side),
            _ => 0,
        };
        let local_channels = self.local.out_channels();
        let (mix, mixed_channels) = match (&self.fusion, &self.hypercolumn) {
            (Some(f), _) => (fusion_kept(f, local_side), out_channels(&f.fuse)),
            (None, Some(h)) => (hypercolumn_kept(h, local_channels, local_side), out_channels(&h.fuse)),
            (None, None) => (0, local_channels),
        };
        let upsampled = if local_side == side { 0 } else { maps(mixed_channels, side) };
        let loss = 3 * maps(self.head.output.channels(), side);
        maps(1, side) + local + backbone + mix + upsampled + head_kept(&self.head, side) + loss
    }
}

/// Output channels of a conv.
fn out_channels(conv: &Conv2d) -> usize {
    conv.weight.lazy_shape()[0]
}

/// The local blocks' kept floats per image (each conv's output and its batch norm + ReLU output,
/// and each pool's), and the side of the local output.
fn local_kept(local: &LocalFeatures, side: usize) -> (u64, usize) {
    let mut side = side;
    let mut floats = 0;
    for block in &local.blocks {
        let channels = out_channels(&block.conv);
        floats += 2 * maps(channels, side);
        if block.pool.is_some() {
            side /= 2;
            floats += pool_kept(channels, side);
        }
    }
    (floats, side)
}

/// Fusion at the local map's `side`: the concatenated input of its 1x1 conv and its output (the
/// global vector's projection is a few floats).
fn fusion_kept(fusion: &Fusion, side: usize) -> u64 {
    let [out, input, _, _] = fusion.fuse.weight.lazy_shape().dims();
    maps(input + out, side)
}

/// Hypercolumn at the local map's `side`: the stages resized to it, their concatenation with the
/// local map, and the 1x1 conv's output.
fn hypercolumn_kept(hypercolumn: &Hypercolumn, local_channels: usize, side: usize) -> u64 {
    let [out, input, _, _] = hypercolumn.fuse.weight.lazy_shape().dims();
    maps(input - local_channels + input + out, side)
}

/// The head at full `side`: each conv's output (its ReLU is applied in place), the output conv's,
/// and the regression activation's.
fn head_kept(head: &Head, side: usize) -> u64 {
    let convs: u64 = head.convs.iter().map(|c| maps(out_channels(c), side)).sum();
    let activation = match head.output {
        Output::Regression(super::Activation::Tanh | super::Activation::Sigmoid) => maps(2, side),
        Output::Regression(super::Activation::Linear) | Output::Classification { .. } => 0,
    };
    convs + maps(head.output.channels(), side) + activation
}
