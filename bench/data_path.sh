#!/usr/bin/env bash
# The data path of photo folders against the training step (issue 16), every part of
# benches/data_path.rs: a folder of JPEGs made from ../shared/photos (random crops, re-encoded; in
# /tmp, never committed), then images/s of the data path at 64 and 224 px on 1 and 2 threads, the
# reduced-size JPEG decode against a full one, the time to open a folder of a million files (empty
# files: only the scan is timed), and the step's images/s at the same sizes. Not part of CI.
#
# Usage: bench/data_path.sh ; environment: JPEGS (/tmp/sweep-jpegs), COUNT (3000), MILLION
#        (/tmp/sweep-million; MILLION= skips it), THREADS (1,2), PHOTOS (/work/shared/photos).
set -euo pipefail
cd "$(dirname "$0")/.."

JPEGS=${JPEGS:-/tmp/sweep-jpegs}
COUNT=${COUNT:-3000}
MILLION=${MILLION-/tmp/sweep-million}
THREADS=${THREADS:-1,2}
bench() { cargo bench -q --bench data_path -- "$@" | grep '^RESULT\|^wrote'; }

cargo bench --bench data_path --no-run
echo "load: $(uptime)"
[ -d "$JPEGS" ] || bench make "$JPEGS" --count "$COUNT"
for size in 64 224; do
  for augment in none resized; do
    bench data "$JPEGS" --size "$size" --augment "$augment" --threads "$THREADS" --batches 8
  done
  bench decode "$JPEGS" --size "$size" --files 400
done
if [ -n "$MILLION" ]; then
  # 1000 class folders of 1000 empty .JPEG files: the scan and the cached list, not decoding.
  [ -d "$MILLION" ] || python3 -c "
import os, sys
for c in range(1000):
    d = f'$MILLION/n{c:08d}'
    os.makedirs(d, exist_ok=True)
    for i in range(1000):
        os.close(os.open(f'{d}/n{c:08d}_{i}.JPEG', os.O_CREAT | os.O_WRONLY, 0o644))
"
  sleep 3   # let the folders settle past the cache's 2-second rule
  bench open "$MILLION"
fi
RAYON_NUM_THREADS=2 bench step --size 64 --batch 32 --steps 3
RAYON_NUM_THREADS=2 bench step --size 224 --batch 8 --steps 2
echo "load: $(uptime)"
