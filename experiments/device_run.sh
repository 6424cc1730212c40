#!/usr/bin/env bash
# One GPU session's work: the study (one process per seed) and the USB-stage levers, all at once. MiniLM at batch 16
# leaves an H100/H200 mostly idle, so a dozen runs share it. Everything lands in $OUT/results.tgz and $OUT/run.log.
#   on the device:  source .device/unpack.sh && bash experiments/device_run.sh
#   a second call:  SEEDS="5 6 7 8 9" CONTROL_SEEDS="0 1 2 3 4" LEVERS="" SOLO_LIMIT=0 bash experiments/device_run.sh
#   here, to test:  PROFILE=smoke SEEDS=0 LEVERS="usb_ep1" OUT=/tmp/out bash experiments/device_run.sh
set -u
PROFILE=${PROFILE:-gpu}
SEEDS=${SEEDS:-"0 1 2 3 4"}
LEVERS=${LEVERS:-"usb_ep1 usb_ep2 usb_ep3 usb_ep5 usb_ep1_lr2e-4 usb_ep2_lr1e-4 usb_ep3_lr1e-4 usb_ep3_no_evidence usb_ep3_len128"}
LIMIT=${LIMIT:-450}  # seconds each run may take, so that the files come back within the call's limit
OUT=${OUT:?set OUT}
R=results/device
mkdir -p "$R/logs" "$OUT"
export OMP_NUM_THREADS=1 TOKENIZERS_PARALLELISM=false PYTHONUNBUFFERED=1

declare -A SETTINGS=(
  [usb_ep1]="ood_epochs=1" [usb_ep2]="ood_epochs=2" [usb_ep3]="ood_epochs=3" [usb_ep5]="ood_epochs=5"
  [usb_ep1_lr2e-4]="ood_epochs=1 ood_lr=2e-4" [usb_ep2_lr1e-4]="ood_epochs=2 ood_lr=1e-4"
  [usb_ep3_lr1e-4]="ood_epochs=3 ood_lr=1e-4" [usb_ep3_no_evidence]="ood_epochs=3 ood_evidence=False"
  [usb_ep3_len128]="ood_epochs=3 max_length=128"
)
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null || echo "no GPU"
  python3 -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__)"
} > "$R/environment.txt"
start=$(date +%s)
for s in $SEEDS; do
  timeout "$LIMIT" python3 -m experiments.study --profile "$PROFILE" --seeds "$s" --resamples 10 \
    --set results_dir="$R/study_seed$s" > "$R/logs/study_seed$s.log" 2>&1 &
done
for s in ${CONTROL_SEEDS:-}; do  # the shuffled-label control alone, for seeds whose other runs exist already
  timeout "$LIMIT" python3 -m experiments.study --profile "$PROFILE" --seeds "$s" --resamples 10 \
    --conditions "shuffled_usb_then_fib" --set results_dir="$R/control_seed$s" > "$R/logs/control_seed$s.log" 2>&1 &
done
for name in $LEVERS; do
  timeout "$LIMIT" python3 -m experiments.levers "$name" --stage usb --profile "$PROFILE" \
    --set results_dir="$R/lever_$name" ${SETTINGS[$name]} > "$R/logs/lever_$name.log" 2>&1 &
done
wait
echo "all parallel runs ended after $(( $(date +%s) - start )) s" | tee -a "$R/environment.txt"
# one usb_then_fib run alone, for its wall time without the others beside it
[ "${SOLO_LIMIT:-150}" = 0 ] && { tar czf "$OUT/results.tgz" "$R"; exit 0; }
solo=$(date +%s)
timeout "${SOLO_LIMIT:-150}" python3 -m experiments.study --profile "$PROFILE" --seeds 0 --conditions usb_then_fib \
  --resamples 10 --set results_dir="$R/solo" > "$R/logs/solo.log" 2>&1
echo "solo usb_then_fib (fresh process, model load and evaluation included): $(( $(date +%s) - solo )) s" \
  | tee -a "$R/environment.txt"
tail -n 3 "$R"/logs/*.log > "$OUT/run.log"
tar czf "$OUT/results.tgz" "$R"
