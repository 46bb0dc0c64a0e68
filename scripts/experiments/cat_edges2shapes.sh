#!/usr/bin/env bash
# CAT on edges2shapes (issue 4): an inception teacher (ngf 32, BatchNorm), pruned to ~1/10 of
# its MACs at 64x64, then the student distilled with KA and with feature MSE, and the same
# student architecture trained from scratch without distillation; same iteration budget, seeds
# 1 and 2. Prints one JSON line per student (PSNR / SSIM vs truth and vs the teacher).
#
# Usage: scripts/experiments/cat_edges2shapes.sh [WORK_DIR]   (env: GANLITE, THREADS, budgets below)
set -euo pipefail
GANLITE=${GANLITE:-build/ganlite}
WORK=${1:-runs/cat_edges2shapes}
THREADS=${THREADS:-2}
TEACHER_EPOCHS=${TEACHER_EPOCHS:-4}   # constant-lr epochs; as many decay epochs follow
STUDENT_EPOCHS=${STUDENT_EPOCHS:-3}
NGF=${NGF:-32}                         # teacher width (CAT: 64 at 256x256)
BATCH=${BATCH:-4}                     # KA needs >= 2 images per batch
SEEDS=${SEEDS:-"1 2"}
MAC_FRACTION=${MAC_FRACTION:-10}     # student budget: 1/MAC_FRACTION of the teacher's MACs
MIN_CHANNELS=${MIN_CHANNELS:-16}     # 8 for an ngf 16 teacher, whose 1/10 needs layers under 16 wide
mkdir -p "$WORK"
common=(--task pix2pix --data "$WORK/data" --batch-size "$BATCH" --load-size 64 --crop-size 64 --ndf 64
        --save-latest-freq 0 --save-epoch-freq 0 --sample-freq 0 --log-freq 25 --threads "$THREADS" --workers 1 -q)

# (a) data: 400 train / 100 test pairs at 64x64
[ -d "$WORK/data" ] || "$GANLITE" make-dataset --kind edges2shapes --count 400 --test-count 100 --size 64 --seed 1 \
  -q --out "$WORK/data"

# (b) teacher: CAT's inception generator, ngf $NGF (32 by default), BatchNorm (pix2pix teachers)
if [ ! -f "$WORK/teacher/checkpoints/latest_net_G.safetensors" ]; then
  "$GANLITE" train "${common[@]}" --arch inception --ngf "$NGF" --norm batch --seed 1 \
    --n-epochs "$TEACHER_EPOCHS" --n-epochs-decay "$TEACHER_EPOCHS" --out "$WORK/teacher" --json > "$WORK/teacher.json"
fi
TEACHER=$WORK/teacher/checkpoints/latest_net_G.safetensors

# (c) prune to 1/MAC_FRACTION of the teacher's MACs at 64x64, once keeping only the architecture (CAT's
# code re-initialises) and once inheriting the teacher's surviving weights (methods.md 3.1)
TEACHER_MACS=$("$GANLITE" profile --model "$TEACHER" --input-size 64 --json | jq -r '.macs')
STUDENT=$WORK/student.safetensors
[ -f "$STUDENT" ] || "$GANLITE" prune --teacher "$TEACHER" --target-macs $((TEACHER_MACS / MAC_FRACTION)) --input-size 64 \
  --min-channels "$MIN_CHANNELS" --reinit \
  --out "$STUDENT" --json > "$WORK/prune.json"
STUDENT_INHERIT=$WORK/student_inherit.safetensors
[ -f "$STUDENT_INHERIT" ] || "$GANLITE" prune --teacher "$TEACHER" --target-macs $((TEACHER_MACS / MAC_FRACTION)) --input-size 64 \
  --min-channels "$MIN_CHANNELS" --inherit-weights --out "$STUDENT_INHERIT" --json > "$WORK/prune_inherit.json"

# (d) the students, same budget: KA, MSE, scratch (no distillation), and KA from inherited weights
for seed in $SEEDS; do
  for method in ka mse ka_inherit; do
    run=$WORK/${method}_s$seed
    student=$STUDENT
    [ "$method" = ka_inherit ] && student=$STUDENT_INHERIT
    [ -f "$run/checkpoints/latest_net_G.safetensors" ] ||
      "$GANLITE" distill "${common[@]}" --method "${method%_inherit}" --teacher "$TEACHER" --student "$student" \
        --seed "$seed" --n-epochs "$STUDENT_EPOCHS" --n-epochs-decay "$STUDENT_EPOCHS" --out "$run" --json > "$run.json"
  done
  run=$WORK/scratch_s$seed
  [ -f "$run/checkpoints/latest_net_G.safetensors" ] ||
    "$GANLITE" train "${common[@]}" --arch-from "$STUDENT" --seed "$seed" \
      --n-epochs "$STUDENT_EPOCHS" --n-epochs-decay "$STUDENT_EPOCHS" --out "$run" --json > "$run.json"
done

# Scores: every student's final generator against the truth and the teacher (test split)
jq -c '{macs_before, macs_after, params_before, params_after, widths}' "$WORK/prune.json"
for run in $(for seed in $SEEDS; do echo ka_s$seed ka_inherit_s$seed mse_s$seed scratch_s$seed; done); do
  "$GANLITE" distill --score "$WORK/$run/checkpoints/latest_net_G.safetensors" --teacher "$TEACHER" \
    --task pix2pix --data "$WORK/data" --load-size 64 --crop-size 64 --threads "$THREADS" --json |
    jq -c --arg run "$run" --argjson secs "$(jq '.wall_seconds' "$WORK/$run.json")" \
      '{run: $run, train_seconds: $secs, vs_truth, vs_teacher, teacher_vs_truth}'
done
