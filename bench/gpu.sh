#!/usr/bin/env bash
# The GPU benchmark (issues 3 and 12), in one go on one GPU (under 8 minutes on an H100/H200), back to
# back: the PyTorch eager reference (same model, batch 64, Adam, loss read every 20 steps as sweep's
# trainer does), sweep on `--device cuda:0` and on `--device wgpu:0` (bench/gpu.toml: 3 epochs of 100
# steps; a run's rate is the mean of epochs 2-3, epoch 1 compiles and tunes the kernels and is printed
# with its ratio to the later ones), a second cuda run in the same results folder (the shared kernel
# caches: its epoch 1 against its later epochs, target at most 1.2x), and packed sweeps of eight runs
# (bench/gpu_packed.toml) with --per-device 1, 2, 4 and 8: per-run and aggregate images/s, and each
# figure's ratio to PyTorch. Copy the RESULT lines into bench/RESULTS.md with the date and the card.
#
# Prepare on a machine with cargo (the GPU machine needs neither cargo nor a network; at most 64 MiB
# can be sent to it):
#   cargo build --release --features cuda,wgpu && mkdir -p .gpu && cp target/release/sweep .gpu/ \
#     && strip .gpu/sweep && xz -k -9 .gpu/sweep       # there: xz -d .gpu/sweep.xz
# and, when the GPU machine lacks the Vulkan loader, its .deb files in .gl/ (see bench/README.md).
# CUDA needs libcuda.so.1 (the driver) and libnvrtc.so of a CUDA 12 or 13 install on the library path.
# Run there: bench/gpu.sh [standard|packed|models|all]   (default all = standard + packed; environment: SWEEP (.gpu/sweep),
# PYTHON (python3), OUT (/tmp/gpu-check))
#   standard: PyTorch, sweep cuda, sweep wgpu, the cache check;
#   packed:   the packed sweeps;
#   models:   bench/gpu_models.toml, the backbone, hypercolumn and classification models' images/s
#             (mean of epochs 2-3 of each variant), which the specs' GPU costs are computed from.
set -uo pipefail
cd "$(dirname "$0")/.."
WHAT=${1:-all}
case "$WHAT" in standard|packed|models|all) ;; *) echo "usage: bench/gpu.sh [standard|packed|models|all]" >&2; exit 2;; esac
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
[ -f .gpu/sweep.xz ] && [ ! -x "$SWEEP" ] && xz -dk .gpu/sweep.xz
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader || true
echo "cpu threads: $(nproc)"

# The mean images/s of epochs 2-3 (column 10 of metrics.csv) of one run.
later_epochs_rate() { awk -F, 'NR > 2 && NR <= 4 {s += $10; n++} END {if (n) printf "%.1f", s / n}' "$1"; }

# Epoch 1's seconds over the mean of the later epochs' (column 11 of metrics.csv) of one run.
first_epoch_ratio() { awk -F, 'NR == 2 {f = $11} NR > 2 {s += $11; n++} END {if (n) printf "%.2f", f / (s / n)}' "$1"; }
ratio() { echo "$1 $2" | awk '{if ($2 > 0) printf "%.3f", $1 / $2; else print "n/a"}'; }

# One sweep run of bench/gpu.toml on device $1 into results folder $2; prints its RESULT line.
sweep_on() {
  local device=$1 results=$2 label=$3
  rm -rf "$results/gpu-check"
  timeout 300 "$SWEEP" run bench/gpu.toml --device "$device" --results "$results" 2>&1 | tail -8
  local metrics
  metrics=$(ls "$results"/gpu-check/*/metrics.csv 2>/dev/null | head -1)
  if [ -z "$metrics" ]; then
    echo "RESULT gpu sweep($label) failed; its log:"
    tail -30 "$results"/gpu-check/*/log.txt 2>/dev/null
    return 1
  fi
  cp "$metrics" "$OUT/metrics-$label.csv"
  local rate
  rate=$(later_epochs_rate "$metrics")
  echo "RESULT gpu sweep($label) ${rate} img/s (epochs 2-3), ratio to PyTorch $(ratio "$rate" "$torch"); epoch 1 took $(first_epoch_ratio "$metrics")x a later epoch"
}

standard() {
  "$PYTHON" bench/pytorch_reference.py --device cuda --threads "$(nproc)" --steps 300 --warmup 20 --loss-every 20 2>&1 | tee "$OUT/torch.txt"
  torch=$(awk '/^RESULT torch_train_img_per_s/ {print $3}' "$OUT/torch.txt")
  echo "RESULT gpu PyTorch(cuda, eager) ${torch} img/s"
  rm -rf "$OUT/cuda" "$OUT/wgpu"
  sweep_on cuda:0 "$OUT/cuda" cuda
  # The same run again in the same results folder: its kernels come from results/.cubecl/.
  sweep_on cuda:0 "$OUT/cuda" cuda-cached
  sweep_on wgpu:0 "$OUT/wgpu" wgpu
}

# Eight runs with --per-device K on cuda:0, in one results folder (so they share the kernel caches,
# warmed by a first K=1 pass being the first); per-run rate = mean of epoch 2 over the runs, aggregate
# = the images of all runs' epochs over the sweep's wall time.
packed() {
  local images=$((8 * 2 * 6400))
  for k in 1 2 4 8; do
    rm -rf "$OUT/packed/gpu-packed"
    local start end
    start=$(date +%s.%N)
    timeout 600 "$SWEEP" run bench/gpu_packed.toml --devices cuda:0 --per-device "$k" \
      --results "$OUT/packed" 2>&1 | tail -3
    end=$(date +%s.%N)
    local per_run
    per_run=$(cat "$OUT"/packed/gpu-packed/*/metrics.csv 2>/dev/null | awk -F, '$1 == 2 {s += $10; n++} END {if (n) printf "%.1f", s / n}')
    local aggregate
    aggregate=$(echo "$images $start $end" | awk '{printf "%.1f", $1 / ($3 - $2)}')
    echo "RESULT gpu packed --per-device $k: per run ${per_run:-n/a} img/s, aggregate ${aggregate} img/s over 8 runs in $(echo "$start $end" | awk '{printf "%.0f", $2 - $1}') s, aggregate/PyTorch $(ratio "$aggregate" "${torch:-0}")"
  done
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
  packed) torch=${TORCH_IMG_PER_S:-0}; packed ;;
  models) models ;;
  all) standard; packed ;;
esac
