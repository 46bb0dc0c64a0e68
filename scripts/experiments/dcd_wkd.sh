#!/usr/bin/env bash
# Issue 5: a small student (mobile ResNet, ngf 8: about 1/33 of a ResNet-9 ngf 32 teacher's MACs)
# distilled with none / ka / mse / dcd / wkd / dcd+wkd / ka+wkd, the same iteration budget and
# seeds, on edges2shapes (pix2pix) and shapes2stripes (CycleGAN, A->B) at 64x64. Prints one
# JSON line per run: PSNR / SSIM against the truth and against the teacher.
#
# Usage: scripts/experiments/dcd_wkd.sh WORK_DIR
#   env: TEACHER_E2S, TEACHER_S2S  teacher generator files (pix2pix G; CycleGAN G_A), trained by
#                                  scripts/experiments/teachers.sh (ResNet-9 ngf 32)
#        DATA_E2S, DATA_S2S        their datasets; GANLITE, THREADS, SEEDS, EPOCHS, PARALLEL,
#        TASKS ("pix2pix cyclegan"), METHODS
set -euo pipefail
GANLITE=${GANLITE:-build/ganlite}
WORK=${1:?usage: $0 WORK_DIR}
: "${TEACHER_E2S:?set TEACHER_E2S to the pix2pix teacher generator file}"
: "${TEACHER_S2S:?set TEACHER_S2S to the CycleGAN teacher G_A file}"
: "${DATA_E2S:?set DATA_E2S}" "${DATA_S2S:?set DATA_S2S}"
THREADS=${THREADS:-1}
SEEDS=${SEEDS:-"1 2"}
EPOCHS=${EPOCHS:-2}        # constant-lr epochs of 100 batches of 4; half as many decay epochs follow
PARALLEL=${PARALLEL:-1}    # runs at once (each uses THREADS threads)
METHODS=${METHODS:-"none ka mse dcd wkd dcd+wkd ka+wkd"}
TASKS=${TASKS:-"pix2pix cyclegan"}
mkdir -p "$WORK"

# One run: TASK METHOD SEED
run_one() {
  local task=$1 method=$2 seed=$3 data teacher
  if [ "$task" = pix2pix ]; then data=$DATA_E2S teacher=$TEACHER_E2S; else data=$DATA_S2S teacher=$TEACHER_S2S; fi
  local out=$WORK/${task}_${method/+/_}_s$seed extra=()
  [[ $method == *dcd* ]] && extra=(--teacher-ndf 64)   # the teacher D that DCD trains online
  [ -f "$out/checkpoints/latest_net_G.safetensors" ] && return 0
  rm -rf "$out"
  "$GANLITE" distill --task "$task" --method "$method" --teacher "$teacher" \
    --student-arch mobile_resnet --student-ngf 8 --data "$data" --batch-size 4 --load-size 72 --crop-size 64 \
    --ndf 32 "${extra[@]}" --n-epochs "$EPOCHS" --n-epochs-decay $((EPOCHS / 2)) --seed "$seed" \
    --save-latest-freq 0 --save-epoch-freq 0 --sample-freq 0 --log-freq 25 --threads "$THREADS" --workers 1 \
    --json --out "$out" > "$out.json" 2> "$out.log"
}
export -f run_one
export GANLITE WORK THREADS EPOCHS DATA_E2S DATA_S2S TEACHER_E2S TEACHER_S2S

for task in $TASKS; do
  for seed in $SEEDS; do
    for method in $METHODS; do echo "$task $method $seed"; done
  done
done | xargs -P "$PARALLEL" -L 1 bash -c 'run_one "$@"' _

# Scores of every final student (test split): against the truth and against its teacher
"$GANLITE" profile --model "$TEACHER_E2S" --input-size 64 --json | jq -c '{teacher: "resnet ngf32", macs, params}'
"$GANLITE" profile --arch mobile_resnet --ngf 8 --input-size 64 --json | jq -c '{student: "mobile_resnet ngf8", macs, params}'
for task in $TASKS; do
  if [ "$task" = pix2pix ]; then data=$DATA_E2S teacher=$TEACHER_E2S; else data=$DATA_S2S teacher=$TEACHER_S2S; fi
  for seed in $SEEDS; do
    for method in $METHODS; do
      run=${task}_${method/+/_}_s$seed
      "$GANLITE" distill --score "$WORK/$run/checkpoints/latest_net_G.safetensors" --teacher "$teacher" \
        --task "$task" --data "$data" --load-size 64 --crop-size 64 --threads "$THREADS" --json |
        jq -c --arg run "$run" --argjson secs "$(jq '.wall_seconds' "$WORK/$run.json")" \
          '{run: $run, train_seconds: $secs, vs_truth, vs_teacher, teacher_vs_truth}'
    done
  done
done
