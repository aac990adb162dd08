#!/usr/bin/env bash
# Peak resident memory of one process running one episode with both 256 px cameras, on the
# assets set up in the current harness home (run `python -m evalharness setup` first), for
# one task of each scene style. The largest figure is WORKER_PEAK_BYTES in
# evalharness/engine/worker_budget.py. Usage: MUJOCO_GL=egl scripts/worker_peak_rss.sh [python]
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${1:-python}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
# tabletop (spatial, object, goal), living room (libero_10 0), kitchen (libero_90 0), study (libero_90 ${STUDY})
STUDY=$($PY -c "from envs.libero.catalog import suite_tasks; print(next(t.index for t in suite_tasks('libero_90') if t.name.startswith('STUDY')))")
for t in libero_spatial:0 libero_object:0 libero_goal:0 libero_10:0 libero_90:0 "libero_90:$STUDY"; do
  suite=${t%:*}; task=${t#*:}
  /usr/bin/time -f "$suite $task: %M KB peak RSS, %e s" "$PY" -m evalharness "suite=$suite" "suite.tasks=[$task]" \
    suite.episodes_per_task=1 suite.max_steps=40 runner.workers=0 policy=zero video=none "output_dir=$out/$suite-$task" > /dev/null
done
