#!/usr/bin/env bash
# Issue 16's experiment: CAT's GauGAN compression at small scale on CPU. A small inception-SPADE
# teacher on labels2scenes at 64x128, its one-step-pruned student at 1/8 of the MACs distilled with
# KA (teacher weights inherited: ganlite's default; and re-initialised: CAT's GauGAN procedure),
# and the same student trained from scratch without a teacher, for each seed; then `ganlite eval`
# of each student against the truth and the teacher (PSNR / SSIM, mIoU by bench/palette_segmenter.py,
# MACs, latency), summarised by bench/gaugan_summary.py. No VGG19 weights here: GAN + feature
# matching only. The scenes are rendered at SIZE x SIZE and read at 64x128 (`--preprocess fixed`).
# Usage: bash bench/gaugan_labels2scenes.sh [BUILD_DIR] [WORK_DIR]
#   COUNT (400), TEST_COUNT (50), SIZE (128), TEACHER_EPOCHS (10 + 10 decay), STUDENT_EPOCHS
#   (5 + 5 decay), SEEDS ("1 2"), THREADS (2; the students train one thread each, side by side).
set -euo pipefail
build=${1:-build}
work=${2:-bench_out/gaugan}
count=${COUNT:-400}
test_count=${TEST_COUNT:-50}
size=${SIZE:-128}
teacher_epochs=${TEACHER_EPOCHS:-10}
student_epochs=${STUDENT_EPOCHS:-5}
seeds=${SEEDS:-1 2}
threads=${THREADS:-2}
ganlite="$(realpath "$build/ganlite")"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
mkdir -p "$work"
cd "$work"
shape=(--preprocess fixed --crop-size 128 --aspect-ratio 2 --batch-size 4 --val-max-images 25 -q)
[ -d data ] || "$ganlite" make-dataset --kind labels2scenes --count "$count" --test-count "$test_count" \
  --size "$size" --out data -q
[ -f teacher/checkpoints/latest_net_G.safetensors ] ||
  "$ganlite" train --task spade --label-nc 6 --data data --arch inception_spade --ngf 16 --norm batch --ndf 32 \
    --n-epochs "$teacher_epochs" --n-epochs-decay "$teacher_epochs" --seed 0 --threads "$threads" --out teacher "${shape[@]}"
teacher=teacher/checkpoints/latest_net_G.safetensors
macs=$("$ganlite" profile --model "$teacher" --json | python3 -c 'import json, sys; print(json.load(sys.stdin)["macs"] // 8)')
"$ganlite" prune --teacher "$teacher" --target-macs "$macs" --out pruned.safetensors -q
"$ganlite" prune --teacher "$teacher" --target-macs "$macs" --reinit --out pruned_reinit.safetensors -q
student_epochs_flags=(--n-epochs "$student_epochs" --n-epochs-decay "$student_epochs" --threads 1)
ka=(--task spade --data data --teacher "$teacher" --method ka --lambda-ka 0.5
    --restore-d teacher/checkpoints/latest_net_D.safetensors)
pids=()
for seed in $seeds; do
  [ -d "ka_s$seed" ] || "$ganlite" distill "${ka[@]}" --student pruned.safetensors --seed "$seed" --out "ka_s$seed" \
    "${student_epochs_flags[@]}" "${shape[@]}" & pids+=($!)
  [ -d "kareinit_s$seed" ] || "$ganlite" distill "${ka[@]}" --student pruned_reinit.safetensors --seed "$seed" \
    --out "kareinit_s$seed" "${student_epochs_flags[@]}" "${shape[@]}" & pids+=($!)
  [ -d "scratch_s$seed" ] || "$ganlite" train --task spade --label-nc 6 --data data --arch-from pruned.safetensors \
    --norm batch --ndf 32 --seed "$seed" --out "scratch_s$seed" "${student_epochs_flags[@]}" "${shape[@]}" & pids+=($!)
done
for pid in "${pids[@]}"; do wait "$pid"; done
/usr/bin/python3 "$here/palette_segmenter.py" data segmenter.pt
for seed in $seeds; do
  for run in "ka_s$seed" "kareinit_s$seed" "scratch_s$seed"; do
    "$ganlite" eval --task spade --data data --teacher "$teacher" --student "$run/checkpoints/latest_net_G.safetensors" \
      --segmenter segmenter.pt --threads "$threads" --out "eval_$run" --json -q > "eval_$run.json"
  done
done
python3 "$here/gaugan_summary.py" eval_*.json
