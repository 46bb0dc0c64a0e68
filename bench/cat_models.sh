# Sourced by the bench scripts: makes WORK/teacher.safetensors, a CAT inception teacher (ngf 64,
# BatchNorm, 43.5G MACs at 256x256) initialised by one training iteration at 32x32 (weights do not
# depend on the image size) with trained-looking BatchNorm statistics from bench/perturb_norms.py
# so that pruning is not degenerate, and WORK/student.safetensors, its one-step-pruned 2.6G
# student. Speed does not depend on how well the weights are trained. Needs $ganlite, $py, $work.
make_cat_models() {
  [ -f "$work/student.safetensors" ] && return 0
  local threads_flag=()
  [ -n "${1:-}" ] && threads_flag=(--threads "$1")
  "$ganlite" make-dataset --kind edges2shapes --count 4 --test-count 1 --size 32 --seed 1 --out "$work/data" --force -q
  "$ganlite" train --task pix2pix --data "$work/data" --arch inception --ngf 64 --norm batch --load-size 32 \
    --crop-size 32 --batch-size 2 --max-iters 1 --no-validate "${threads_flag[@]}" --out "$work/teacher_run" -q
  "$py" bench/perturb_norms.py "$work/teacher_run/checkpoints/latest_net_G.safetensors" "$work/teacher.safetensors"
  "$ganlite" prune --teacher "$work/teacher.safetensors" --target-macs 2.6G --input-size 256 \
    --out "$work/student.safetensors" -q
}
