#!/usr/bin/env bash
# The GPU check (issue 3, section 6): sweep's standard model trained through the `wgpu` feature and
# the PyTorch reference on CUDA, on the same machine, back to back. Prints both images/s and their
# ratio. sweep's rate is the mean of epochs 2-3 of bench/gpu.toml (epoch 1 compiles the shaders);
# PyTorch's is the mean of 300 steps after 20 warm-up steps, each ended by a device synchronisation.
#
# Prepare on a machine with cargo (the GPU machine may have neither cargo nor internet):
#   cargo build --release --features wgpu && mkdir -p .gpu && cp target/release/sweep .gpu/ && strip .gpu/sweep
# and, when the GPU machine lacks the Vulkan loader, its .deb files in .gl/ (see bench/README.md).
# Run there: bench/gpu.sh [standard|models|all]   (default all; environment: SWEEP (.gpu/sweep),
# PYTHON (python3), OUT (/tmp/gpu-check))
#   standard: the check above;
#   models:   bench/gpu_models.toml, the backbone, hypercolumn and classification models' images/s
#             (mean of epochs 2-3 of each variant), which the specs' GPU costs are computed from.
set -uo pipefail
cd "$(dirname "$0")/.."
WHAT=${1:-all}
case "$WHAT" in standard|models|all) ;; *) echo "usage: bench/gpu.sh [standard|models|all]" >&2; exit 2;; esac
OUT=${OUT:-/tmp/gpu-check}
SWEEP=${SWEEP:-.gpu/sweep}
PYTHON=${PYTHON:-python3}
mkdir -p "$OUT"

if [ -d .gl ] && ! ldconfig -p | grep -q libvulkan.so.1; then
  for f in .gl/*.deb; do dpkg -x "$f" /; done
  ldconfig
fi
icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
[ -f "$icd" ] && export VK_DRIVER_FILES=$icd
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader || true
echo "cpu threads: $(nproc)"

# The mean images/s of epochs 2-3 (column 10 of metrics.csv) of one run.
later_epochs_rate() { awk -F, 'NR > 2 && NR <= 4 {s += $10; n++} END {if (n) printf "%.1f", s / n}' "$1"; }

standard() {
  "$PYTHON" bench/pytorch_reference.py --device cuda --threads "$(nproc)" --steps 300 --warmup 20 2>&1 | tee "$OUT/torch.txt"
  torch=$(awk '/^RESULT torch_train_img_per_s/ {print $3}' "$OUT/torch.txt")

  rm -rf "$OUT/results"
  timeout 300 "$SWEEP" run bench/gpu.toml --device wgpu:0 --results "$OUT/results" 2>&1 | tail -25
  metrics=$(ls "$OUT"/results/gpu-check/*/metrics.csv 2>/dev/null | head -1)
  if [ -z "$metrics" ]; then
    echo "sweep produced no metrics.csv; its log:"
    cat "$OUT"/results/gpu-check/*/log.txt 2>/dev/null | tail -30
    exit 1
  fi
  cp "$metrics" "$OUT/sweep-metrics.csv"
  cat "$metrics"
  grep "waited for data" "$(dirname "$metrics")/log.txt" || true
  sweep=$(later_epochs_rate "$metrics")
  echo "RESULT gpu sweep(wgpu) ${sweep} img/s, PyTorch(cuda) ${torch} img/s, ratio $(echo "$sweep $torch" | awk '{printf "%.3f", $1 / $2}')"
}

models() {
  rm -rf "$OUT/results"
  timeout "${MODELS_TIMEOUT:-500}" "$SWEEP" run bench/gpu_models.toml --device wgpu:0 --results "$OUT/results" 2>&1 | tail -25
  for metrics in "$OUT"/results/gpu-models/*/metrics.csv; do
    [ -f "$metrics" ] || continue
    variant=$(sed -n 's/.*"variant": "\(.*\)".*/\1/p' "$(dirname "$metrics")/status.json")
    cp "$metrics" "$OUT/models-${variant:-unknown}.csv"
    echo "RESULT gpu model ${variant:-unknown}: $(later_epochs_rate "$metrics") img/s (epochs 2-3), epoch 1 $(awk -F, 'NR == 2 {print $10}' "$metrics") img/s"
  done
}

case "$WHAT" in
  standard) standard ;;
  models) models ;;
  all) standard; models ;;
esac
