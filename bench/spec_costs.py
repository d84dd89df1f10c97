"""What each spec in experiments/ costs on this machine, measured rather than guessed.

For every spec, every variant trains for short epochs (`--set train_images=N`, one seed) on
synthetic 32x32 images, at the spec's own model sizes; the training rate of the last epoch
(images_per_s of metrics.csv) and the last pretraining / judge epoch (their metrics.csv) are then
scaled to the spec's real size: its data set's training images x its epochs x its seeds. Prints a
Markdown table.

On a GPU, give `--epochs 2`: the first epoch compiles the kernels and is not representative.

Usage: python3 bench/spec_costs.py [--sweep target/release/sweep] [--device cpu] [--images 256]
                                   [--epochs 1] [SPEC ...]
"""

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile

TRAIN_IMAGES = {"cifar100": 50_000, "cifar10": 50_000, "synthetic": 5_000}


def run(cmd):
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{out.stdout}{out.stderr}")
    return out.stdout


def epoch_seconds(folder):
    """Seconds of the last epoch of each classifier (pretrained backbone or judge) under folder."""
    seconds = {}
    if not os.path.isdir(folder):
        return seconds
    for name in os.listdir(folder):
        path = os.path.join(folder, name, "metrics.csv")
        if os.path.isfile(path):
            rows = list(csv.DictReader(open(path)))
            seconds[name] = float(rows[-1]["seconds"])
    return seconds


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sweep", default="target/release/sweep")
    p.add_argument("--device", default="cpu", help="sweep's --device: cpu, wgpu:0, cuda:0")
    p.add_argument("--images", type=int, default=256, help="training images of each measured epoch")
    p.add_argument("--epochs", type=int, default=1, help="epochs trained; the last one is measured")
    p.add_argument("specs", nargs="*")
    args = p.parse_args()
    specs = args.specs or sorted(os.path.join("experiments", f) for f in os.listdir("experiments") if f.endswith(".toml"))
    print("| spec | variant | runs | img/s here | training images (all runs, all epochs) | estimated hours |")
    print("| --- | --- | --- | --- | --- | --- |")
    for spec in specs:
        planned = json.loads(run([args.sweep, "plan", spec, "--json"]))
        runs = planned["runs"]
        e = args.epochs
        sets = [f"train_images={args.images}", "val_images=32", f"epochs={e}", "sweep.seeds=[0]", "dataset=synthetic"]
        if any(r["config"].get("backbone.pretrain") == "classification" for r in runs):
            sets.append(f"backbone.pretrain_epochs={e}")
        if any(r["config"].get("judge.arch", "none") != "none" for r in runs):
            sets.append(f"judge.epochs={e}")
        with tempfile.TemporaryDirectory() as results:
            cmd = [args.sweep, "run", spec, "--results", results, "--device", args.device]
            for s in sets:
                cmd += ["--set", s]
            run(cmd)
            total_hours = 0.0
            by_variant = {}
            for r in runs:
                by_variant.setdefault(r["variant"], []).append(r)
            name = planned["sweep"]
            index = json.load(open(os.path.join(results, name, "plan.json")))
            measured = {}
            for entry in index["runs"]:
                rows = list(csv.DictReader(open(os.path.join(results, name, entry["id"], "metrics.csv"))))
                measured[entry["variant"]] = float(rows[-1]["images_per_s"])
            for variant, vruns in by_variant.items():
                cfg = vruns[0]["config"]
                train = cfg["train_images"] or TRAIN_IMAGES[cfg["dataset"]]
                images = train * cfg["epochs"] * len(vruns)
                hours = images / measured[variant] / 3600
                total_hours += hours
                print(f"| {os.path.basename(spec)} | {variant} | {len(vruns)} | {measured[variant]:.1f} | {images:,} | {hours:.2f} |")
            for kind, key in ((".pretrain", "backbone.pretrain_epochs"), (".judge", "judge.epochs")):
                for _, secs in epoch_seconds(os.path.join(results, kind)).items():
                    cfg = next(r["config"] for r in runs if key in r["config"])
                    train = cfg["train_images"] or TRAIN_IMAGES[cfg["dataset"]]
                    hours = secs / args.images * train * cfg[key] / 3600
                    total_hours += hours
                    print(f"| {os.path.basename(spec)} | {kind[1:]} ({cfg[key]} epochs, shared) | 1 | {args.images / secs:.1f} | {train * cfg[key]:,} | {hours:.2f} |")
            print(f"| **{os.path.basename(spec)}** | **all** | {len(runs)} | | | **{total_hours:.2f}** |")
            sys.stdout.flush()


if __name__ == "__main__":
    main()
