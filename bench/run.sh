#!/usr/bin/env bash
# sweep's training step against the PyTorch reference, back to back on the same thread count
# (issue 3, section 6). Prints both images/s and their ratio for every round, then the medians.
# Not part of CI: it needs torch (see bench/README.md).
#
# Usage: bench/run.sh [ROUNDS] ; environment: THREADS (2), STEPS (20), WARMUP (3),
#        PYTHON (python3, with torch importable), PARTS (extra bench parts after the rounds, e.g.
#        "data ops infer"; ops and infer run PyTorch's side too).
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${1:-3}
THREADS=${THREADS:-2}
STEPS=${STEPS:-20}
WARMUP=${WARMUP:-3}
PYTHON=${PYTHON:-python3}

"$PYTHON" -c 'import torch' || { echo "torch is not importable by $PYTHON: see bench/README.md" >&2; exit 1; }
cargo bench --bench train_step --no-run
echo "load: $(uptime)"

sweep_rates=()
torch_rates=()
ratios=()
for round in $(seq 1 "$ROUNDS"); do
  load=$(cut -d' ' -f1 /proc/loadavg)
  out=$(RAYON_NUM_THREADS=$THREADS cargo bench -q --bench train_step -- step --steps "$STEPS" --warmup "$WARMUP")
  [ "$round" = 1 ] && echo "sweep: $(echo "$out" | grep '^threads:')"
  s=$(echo "$out" | awk '/^RESULT sweep_train_img_per_s/ {print $3}')
  t=$(OMP_NUM_THREADS=$THREADS "$PYTHON" bench/pytorch_reference.py --threads "$THREADS" --steps "$STEPS" \
        --warmup "$WARMUP" 2>/dev/null | awk '/^RESULT torch_train_img_per_s/ {print $3}')
  r=$(echo "$s $t" | awk '{printf "%.3f", $1 / $2}')
  sweep_rates+=("$s")
  torch_rates+=("$t")
  ratios+=("$r")
  echo "round $round (load $load): sweep $s img/s, PyTorch $t img/s, ratio $r"
done

median() { printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
ms=$(median "${sweep_rates[@]}")
mt=$(median "${torch_rates[@]}")
echo "median of $ROUNDS rounds, $THREADS threads: sweep $ms img/s, PyTorch $mt img/s, ratio $(median "${ratios[@]}") (median of the rounds' ratios)"
echo "load: $(uptime)"

if [ -n "${PARTS:-}" ]; then
  # shellcheck disable=SC2086 # PARTS is a list of words
  RAYON_NUM_THREADS=$THREADS cargo bench -q --bench train_step -- $PARTS --steps "$STEPS" --warmup "$WARMUP"
  case " $PARTS " in *" ops "*) OMP_NUM_THREADS=$THREADS "$PYTHON" bench/pytorch_reference.py --threads "$THREADS" --ops 2>/dev/null ;; esac
  case " $PARTS " in *" infer "*) OMP_NUM_THREADS=$THREADS "$PYTHON" bench/pytorch_reference.py --threads "$THREADS" --infer \
      --steps "$STEPS" --warmup "$WARMUP" 2>/dev/null | grep '^RESULT' ;; esac
fi
