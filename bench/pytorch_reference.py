"""PyTorch reference of sweep's standard model, the peer of `benches/train_step.rs` (issue 3, section 6).

The network is sweep's default `ModelConfig` layer by layer (src/model/local.rs, src/model/head.rs,
src/model/mod.rs): conv3x3 1->64, BN, ReLU; conv3x3 64->128, BN, ReLU, maxpool 2; conv3x3 128->128,
BN, ReLU; nearest upsample to 32x32; conv3x3 128->64, ReLU; conv3x3 64->64, ReLU; conv1x1 64->2,
tanh. Loss: mean squared error (sweep's l2). Optimizer: Adam, lr 1e-3, betas (0.9, 0.999) and
eps 1e-5 (burn's default epsilon; PyTorch's is 1e-8; it does not change the cost). Batches: random
64x1x32x32 inputs and 64x2x32x32 targets in [-1, 1], made before timing.

Usage: python bench/pytorch_reference.py [--threads 2] [--steps 20] [--warmup 3] [--device cpu|cuda] [--ops | --infer]
--infer times the same model's inference (eval mode, no_grad) on batches of 64, sweep's `infer` part.
On CUDA each timed step ends with a device synchronisation, so a step's time is its full cost.
Lines starting with RESULT are what bench/run.sh parses.
"""

import argparse
import math
import statistics
import time

import torch
from torch import nn
import torch.nn.functional as F


class ColorizationNet(nn.Module):
    """sweep's ColorizationNet with the default config (features = local, no backbone)."""

    def __init__(self):
        super().__init__()
        widths, pool_after = [64, 128, 128], [2]
        self.local = nn.ModuleList()
        in_ch = 1
        for i, w in enumerate(widths):
            block = nn.Sequential(nn.Conv2d(in_ch, w, 3, padding=1), nn.BatchNorm2d(w), nn.ReLU())
            if i + 1 in pool_after:
                block.append(nn.MaxPool2d(2))
            self.local.append(block)
            in_ch = w
        self.head = nn.Sequential(
            nn.Conv2d(in_ch, 64, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(64, 64, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(64, 2, 1),
            nn.Tanh(),
        )

    def forward(self, gray):
        x = gray
        for block in self.local:
            x = block(x)
        x = F.interpolate(x, size=gray.shape[-2:], mode="nearest")
        return self.head(x)


def train(args):
    torch.manual_seed(0)
    device = torch.device(args.device)
    model = ColorizationNet().to(device)
    print(f"model: {sum(p.numel() for p in model.parameters())} parameters, device {device}")
    optim = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-5)
    batches = [
        (torch.rand(64, 1, 32, 32, device=device), torch.rand(64, 2, 32, 32, device=device) * 2 - 1) for _ in range(4)
    ]
    times, pending, t, steps_in_window = [], [], None, 0
    for s in range(args.warmup + args.steps):
        gray, target = batches[s % len(batches)]
        if t is None:
            t = time.perf_counter()
        steps_in_window += 1
        optim.zero_grad(set_to_none=True)
        loss = F.mse_loss(model(gray), target)
        pending.append(loss.detach())
        loss.backward()
        optim.step()
        # Read the losses every --loss-every steps in one transfer, as sweep's trainer does (its
        # LOSS_READ_EVERY); 1 reads each step. Timed per window: a read waits for the device.
        if len(pending) >= args.loss_every:
            assert all(map(math.isfinite, torch.stack(pending).tolist())), f"loss diverged by step {s}"
            pending = []
            if device.type == "cuda":
                torch.cuda.synchronize()
            if s >= args.warmup:
                times.append((time.perf_counter() - t, steps_in_window))
            steps_in_window, t = 0, None
    steps = sum(n for _, n in times)
    per_step = [w / n for w, n in times]
    print(
        f"RESULT torch_train_img_per_s {64 * steps / sum(w for w, _ in times):.2f} "
        f"(mean over {steps} steps, loss read every {args.loss_every}; "
        f"median step {statistics.median(per_step) * 1e3:.1f} ms/batch)"
    )


def infer(args):
    """Inference of the same model in eval mode (running statistics), as sweep's `infer` part."""
    torch.manual_seed(0)
    model = ColorizationNet().eval()
    gray = torch.rand(64, 1, 32, 32)
    times = []
    with torch.no_grad():
        for s in range(args.warmup + args.steps):
            t = time.perf_counter()
            model(gray)
            if s >= args.warmup:
                times.append(time.perf_counter() - t)
    print(
        f"RESULT torch_infer_img_per_s {64 * len(times) / sum(times):.2f} "
        f"(mean over {len(times)} batches of 64; median {statistics.median(times) * 1e3:.1f} ms/batch)"
    )


def time_ms(reps, f):
    f()
    ts = []
    for _ in range(reps):
        t = time.perf_counter()
        f()
        ts.append((time.perf_counter() - t) * 1e3)
    return statistics.median(ts)


def ops():
    """The per-op table of benches/train_step.rs: forward + backward with a sum as the loss."""
    big = (64, 128, 32, 32)

    def fwd_bwd(shape, f):
        x = torch.randn(*shape, requires_grad=True)
        return time_ms(5, lambda: f(x).sum().backward())

    conv = nn.Conv2d(64, 128, 3, padding=1)
    bn = nn.BatchNorm2d(128)
    head = nn.Conv2d(128, 64, 3, padding=1)
    conv_in = torch.randn(64, 64, 32, 32)

    def no_grad(f):
        def run():
            with torch.no_grad():
                f(conv_in)

        return run

    bn_eval = nn.BatchNorm2d(128).eval()
    rows = [
        ("conv 3x3 64->128 (in [64,64,32,32]), forward", time_ms(3, no_grad(conv))),
        ("conv 3x3 64->128, forward + backward", fwd_bwd((64, 64, 32, 32), conv)),
        ("conv + batch norm + relu (a local block), forward + backward", fwd_bwd((64, 64, 32, 32), lambda x: F.relu(bn(conv(x))))),
        ("conv + batch norm + relu, inference", time_ms(3, no_grad(lambda x: F.relu(bn_eval(conv(x)))))),
        ("batch norm (training)", fwd_bwd(big, bn)),
        ("batch norm + relu", fwd_bwd(big, lambda x: F.relu(bn(x)))),
        ("max pool 2x2", fwd_bwd(big, lambda x: F.max_pool2d(x, 2))),
        ("relu", fwd_bwd(big, F.relu)),
        ("tanh", fwd_bwd(big, torch.tanh)),
        ("nearest upsample 16x16 -> 32x32", fwd_bwd((64, 128, 16, 16), lambda x: F.interpolate(x, size=(32, 32)))),
        (
            "nearest upsample 16x16 -> 32x32 + conv 3x3 128->64 + relu (the head's first conv)",
            fwd_bwd((64, 128, 16, 16), lambda x: F.relu(head(F.interpolate(x, size=(32, 32))))),
        ),
        ("sum only (the loss of every row)", fwd_bwd(big, lambda x: x)),
    ]
    print("\n| op, [64, 128, 32, 32] unless said, ms (median of 5) | PyTorch |")
    print("| --- | --- |")
    for name, ms in rows:
        print(f"| {name} | {ms:.1f} |")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--device", default="cpu", help="cpu or cuda (the GPU check of bench/gpu.sh)")
    p.add_argument("--ops", action="store_true", help="print the per-op table instead of training")
    p.add_argument("--loss-every", type=int, default=1, help="read the loss every N steps (sweep trains with 20)")
    p.add_argument("--infer", action="store_true", help="time inference (eval mode) instead of training")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    print(f"torch {torch.__version__}, threads: {torch.get_num_threads()}")
    if args.ops:
        ops()
    elif args.infer:
        infer(args)
    else:
        train(args)


if __name__ == "__main__":
    main()
