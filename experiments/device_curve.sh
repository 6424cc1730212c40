#!/usr/bin/env bash
# The learning curve's seeds on a GPU machine, one process per seed at once (MiniLM at batch 16 leaves it mostly
# idle), each from the kept NLI base and with the cpu profile's recipe, so its cells join the same grid. Each process
# writes its own results folder (no two write one file); they come back in $OUT/curve.tgz, and here
#   tar xzf curve.tgz && python -m experiments.curve --merge results/device/curve_seed*
#   on the device:  source .device/unpack.sh && SEEDS="5 6 7 8 9" bash experiments/device_curve.sh
#   here, to test:  PATH=.venv/bin:$PATH PROFILE=smoke SEEDS="0 1" SIZES="2 4 8" OUT=/tmp/out \
#                   bash experiments/device_curve.sh
set -u
PROFILE=${PROFILE:-cpu}  # the recipe, not the machine: every cell of the grid has the same settings
SEEDS=${SEEDS:-"5 6 7 8 9"}
SIZES=${SIZES:+--sizes $SIZES}  # default: vf.curve.CURVE_SIZES
LIMIT=${LIMIT:-480}  # seconds each process may take, so that the files come back within the call's limit
OUT=${OUT:?set OUT}
R=results/device
mkdir -p "$R/logs" "$OUT"
export OMP_NUM_THREADS=1 TOKENIZERS_PARALLELISM=false PYTHONUNBUFFERED=1
RESULTS=$(python3 -c "import utils; print(utils.get_config('$PROFILE').results_dir)")
for s in $SEEDS; do
  mkdir -p "$R/curve_seed$s/study/curve" && cp -r "$RESULTS/study/curve/base" "$R/curve_seed$s/study/curve/"
  timeout "$LIMIT" python3 -m experiments.curve --profile "$PROFILE" --seeds "$s" $SIZES \
    --set results_dir="$R/curve_seed$s" models_dir="$R/models_seed$s" > "$R/logs/curve_seed$s.log" 2>&1 &
done
wait
tail -n 4 "$R"/logs/*.log > "$OUT/run.log"
# the kept base's weights stay behind: they are the ones here already (base.json names their digest)
tar czf "$OUT/curve.tgz" --exclude="*.safetensors" $(for s in $SEEDS; do echo "$R/curve_seed$s/study/curve"; done) \
  "$R/logs"
