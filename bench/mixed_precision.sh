#!/usr/bin/env bash
# Mixed-precision training (issue 17): fp32 against `--precision bf16` on the CPU, pix2pix on
# edges2shapes 64x64 (docs/results.md, "Mixed-precision training (issue 17)").
#   speed:   iterations/s of the same training, fp32 and bf16 runs alternated (the machine may be
#            shared), from metrics.jsonl's wall_seconds between steps SPEED_FROM and SPEED_ITERS
#            (start-up and the first steps left out);
#   quality: PSNR / SSIM against the truth on the 100 test images after QUALITY_ITERS iterations,
#            fp32 and bf16, seeds 1 and 2 (`ganlite distill --score`).
# Usage: bench/mixed_precision.sh WORK_DIR [GANLITE]   (env: THREADS, NICE, SPEED_NGF, QUALITY_NGF,
#        SPEED_ITERS, SPEED_FROM, SPEED_ROUNDS, QUALITY_ITERS, SEEDS, QUALITY_PRECISIONS, SKIP_SPEED,
#        SKIP_QUALITY)
# Needs a CPU with native bf16 (avx512_bf16 / amx_bf16); `ganlite train` refuses bf16 otherwise.
set -euo pipefail
work=${1:?usage: bench/mixed_precision.sh WORK_DIR [GANLITE]}
ganlite=${2:-build/ganlite}
threads=${THREADS:-1}
nice_level=${NICE:-10}
speed_ngf=${SPEED_NGF:-32}
quality_ngf=${QUALITY_NGF:-16}
speed_iters=${SPEED_ITERS:-60}
speed_from=${SPEED_FROM:-10}
speed_rounds=${SPEED_ROUNDS:-2}
quality_iters=${QUALITY_ITERS:-400}
seeds=${SEEDS:-"1 2"}
quality_precisions=${QUALITY_PRECISIONS:-"fp32 bf16"}
mkdir -p "$work"
data="$work/edges2shapes"
[ -d "$data/train" ] || "$ganlite" make-dataset --kind edges2shapes --count 400 --test-count 100 --size 64 \
  --seed 1 --out "$data" --force -q

# train PRECISION SEED NGF ITERS OUT: pix2pix ResNet-9 at 64x64, batch 1, constant lr (one epoch).
train() {
  rm -rf "$5"
  nice -n "$nice_level" "$ganlite" train --task pix2pix --data "$data" --arch resnet --ngf "$3" \
    --load-size 64 --crop-size 64 --batch-size 1 --n-epochs 1 --n-epochs-decay 0 --max-iters "$4" \
    --seed "$2" --threads "$threads" --workers 1 --log-freq 10 --sample-freq 0 --no-validate \
    --precision "$1" --out "$5" -q
}

# Iterations/s between two logged steps of a run's metrics.jsonl.
rate() {
  python3 - "$1" "$speed_from" "$speed_iters" <<'EOF'
import json, sys
rows = {j["step"]: j["wall_seconds"] for j in map(json.loads, open(sys.argv[1]))}
a, b = int(sys.argv[2]), int(sys.argv[3])
print(f"{(b - a) / (rows[b] - rows[a]):.3f}")
EOF
}

echo "# $(date -u +%FT%TZ) $(uptime)"
if [ -z "${SKIP_SPEED:-}" ]; then
  echo "## speed: ResNet-9 ngf $speed_ngf, batch 1, threads $threads, it/s over steps $speed_from-$speed_iters"
  for round in $(seq 1 "$speed_rounds"); do
    for precision in fp32 bf16; do
      out="$work/speed_${precision}_$round"
      train "$precision" 1 "$speed_ngf" "$speed_iters" "$out"
      echo "speed round $round $precision $(rate "$out/metrics.jsonl") it/s  load: $(cut -d' ' -f1-3 /proc/loadavg)"
    done
  done
fi
if [ -z "${SKIP_QUALITY:-}" ]; then
  echo "## quality: ResNet-9 ngf $quality_ngf, $quality_iters iterations, batch 1, threads $threads"
  for seed in $seeds; do
    for precision in $quality_precisions; do
      out="$work/quality_${precision}_seed$seed"
      start=$(date +%s)
      train "$precision" "$seed" "$quality_ngf" "$quality_iters" "$out"
      seconds=$(( $(date +%s) - start ))
      g="$out/checkpoints/latest_net_G.safetensors"
      score=$(nice -n "$nice_level" "$ganlite" distill --score "$g" --teacher "$g" --task pix2pix --data "$data" \
        --load-size 64 --crop-size 64 --threads "$threads" --json -q)
      echo "quality seed $seed $precision ${seconds}s $(python3 -c 'import json,sys; t = json.loads(sys.argv[1])["vs_truth"]; print("psnr %.2f ssim %.3f" % (t["psnr"], t["ssim"]))' "$score")"
    done
  done
fi
echo "# done $(date -u +%FT%TZ) $(uptime)"
