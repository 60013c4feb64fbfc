#!/usr/bin/env bash
# The run script of a GPU bundle (scripts/gpu-bundle.sh copies it in as run.sh): runs what the
# bundle holds (its TARGET file: one or more of cuda, wgpu, host, stencil, dispatch, or all), one step at a time with time limits so
# that a hang names itself, and writes logs and JSON under $OUT. Exits non-zero if any step failed.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${OUT:-/tmp/out}"; mkdir -p "$out"
target="$(cat "$here/TARGET")"
want() { [[ " $target " == *" all "* || " $target " == *" $1 "* ]]; }
exec > >(tee "$out/gpu.log") 2>&1
export RUST_BACKTRACE=1 RINGKERNEL_COMMIT="$(cat "$here/COMMIT")" RINGKERNEL_DATE="$(date -u +%F)"
# The before binaries (BEFORE= of gpu-bundle.sh) report their own commit.
before_commit="$(cat "$here/before/COMMIT" 2>/dev/null || echo none)"
for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib; do
  [ -d "$d" ] && export LD_LIBRARY_PATH="$d:${LD_LIBRARY_PATH:-}"
done
echo "date: $(date -u +%FT%TZ) commit: $RINGKERNEL_COMMIT target: $target"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm --format=csv 2>/dev/null || true
grep -m1 'model name' /proc/cpuinfo; nproc
status=0
step() { echo; echo "==> $*"; }
fail() { echo "!!! $1 FAILED"; status=1; }
step "ringkernel info"; "$here/ringkernel" info || fail info

if want cuda; then
  export RINGKERNEL_REQUIRE_CUDA=1 RINGKERNEL_REQUIRE_NVRTC=1
  if command -v nvcc >/dev/null 2>&1 && [ -f "$here/slot_floor.cu" ]; then
    step "C floor probes (nvcc, their own process)"
    (cd /tmp && nvcc -O3 -arch=sm_90 -std=c++17 "$here/slot_floor.cu" -o slot_floor && timeout 120 ./slot_floor) || echo "slot_floor failed"
  fi
  step "tests: nvrtc"; timeout 180 "$here/test_cuda_nvrtc" --test-threads=4 2>&1 || fail nvrtc
  step "tests: template"; timeout 60 "$here/test_cuda_template" 2>&1 || fail template
  # The GPU-only tests one by one, each with its own time limit.
  for t in $("$here/test_cuda_gpu" --list 2>/dev/null | sed -n 's/: test$//p'); do
    step "tests: gpu $t"
    RINGKERNEL_SOAK_SECS="${SOAK_SECS:-10}" timeout $((120 + ${SOAK_SECS:-10})) "$here/test_cuda_gpu" --exact "$t" --nocapture 2>&1 ||
      fail "gpu $t"
  done
  # The conformance suite one check per process, so that a hang names itself and costs one limit.
  for t in $("$here/test_cuda_conformance" --list 2>/dev/null | sed -n 's/: test$//p'); do
    step "tests: cuda conformance $t"
    timeout 90 "$here/test_cuda_conformance" --exact "$t" 2>&1 || fail "cuda conformance $t"
  done
  step "demo (auto backend)"; timeout 120 "$here/ringkernel" demo --messages 20000 || fail demo
  bench() { # name json [extra args...]
    local name="$1" json="$2"; shift 2
    timeout 420 "$@" bench --backend cuda --repeats "${REPEATS:-5}" --rounds 20000 --messages 4000000 \
      --actors "${ACTORS:-16}" ${HOST_THREADS:+--host-threads "$HOST_THREADS"} --json "$out/$json" || fail "$name"
  }
  step "bench --backend cuda (SM clock sampled every 500 ms into gpu_clocks.log)"
  (nvidia-smi --query-gpu=timestamp,clocks.sm,clocks.mem,utilization.gpu,power.draw --format=csv -lms 500 > "$out/gpu_clocks.log" 2>&1 &
   echo $! > /tmp/rk_smi.pid)
  bench "cuda bench" cuda-h100.json "$here/ringkernel"
  if [ -x "$here/before/ringkernel" ]; then
    step "bench --backend cuda, before: $(cat "$here/before/COMMIT") (same run)"
    RINGKERNEL_COMMIT="$before_commit" timeout 420 "$here/before/ringkernel" bench --backend cuda --repeats "${REPEATS:-5}" --rounds 20000 \
      --messages 2000000 --actors 8 --json "$out/cuda-before.json" || fail "cuda bench before"
  fi
  if [ -n "${PROFILE_RUN:-}" ]; then
    step "bench --backend cuda with the device phase profile (RK_PROFILE; slower, for the breakdown only)"
    RINGKERNEL_PROFILE=1 REPEATS=2 bench "cuda profile" cuda-profile.json "$here/ringkernel"
    if [ -x "$here/before/ringkernel" ]; then
      RINGKERNEL_PROFILE=1 RINGKERNEL_COMMIT="$before_commit" timeout 300 "$here/before/ringkernel" bench --backend cuda --repeats 2 --rounds 20000 \
        --messages 500000 --actors 8 --json "$out/cuda-before-profile.json" || fail "cuda profile before"
    fi
  fi
  if [ -n "${ALSO_BLOCK_SIZE:-}" ]; then
    step "bench --backend cuda, actor blocks of $ALSO_BLOCK_SIZE threads"
    bench "cuda bench, block $ALSO_BLOCK_SIZE" "cuda-block$ALSO_BLOCK_SIZE.json" "$here/ringkernel" --block-size "$ALSO_BLOCK_SIZE"
  fi
  kill "$(cat /tmp/rk_smi.pid)" 2>/dev/null || true
  echo "SM clock while the bench ran (MHz): $(awk -F', ' 'NR>1 {print $2}' "$out/gpu_clocks.log" | sort | uniq -c | sort -rn | head -5 | tr '\n' ';')"
fi

# NVIDIA's Vulkan driver is there, its loader is not: the bundle carries it (gl/).
vulkan_setup() {
  for f in "$here"/gl/*.deb; do dpkg -x "$f" /; done; ldconfig
  for icd in /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json /usr/share/vulkan/icd.d/nvidia_icd.json /etc/vulkan/icd.d/nvidia_icd.json; do
    [ -f "$icd" ] && export VK_DRIVER_FILES="$icd" && break
  done
  export XDG_RUNTIME_DIR=/tmp RINGKERNEL_REQUIRE_WGPU=1
  echo "vulkan icd: ${VK_DRIVER_FILES:-none}"
}

if want wgpu; then
  vulkan_setup
  step "info without XDG_RUNTIME_DIR (a headless machine: no display-server messages)"
  env -u XDG_RUNTIME_DIR "$here/ringkernel" info > "$out/info-headless.txt" 2>&1 || fail "info"
  cat "$out/info-headless.txt"; ! grep -q XDG_RUNTIME_DIR "$out/info-headless.txt" || fail "info printed XDG_RUNTIME_DIR messages"
  step "tests: wgpu smoke"; timeout 120 "$here/test_wgpu_smoke" --test-threads=1 --nocapture 2>&1 || fail "wgpu smoke"
  step "tests: wgpu faults and capacity (${WGPU_ACTORS:-256} actors)"
  RINGKERNEL_WGPU_ACTORS="${WGPU_ACTORS:-256}" timeout 300 "$here/test_wgpu_faults" --test-threads=1 --nocapture 2>&1 \
    || fail "wgpu faults"
  step "tests: wgpu conformance"; timeout 400 "$here/test_wgpu_conformance" --test-threads=1 2>&1 || fail "wgpu conformance"
  step "tests: halo"; timeout 120 "$here/test_wgpu_halo" 2>&1 || fail halo
  step "tests: metal over vulkan"; timeout 120 "$here/test_wgpu_metal" --test-threads=1 2>&1 || fail metal
  # Before and after in the same run, alternating, so that drift hits both alike.
  for pass in 1 2; do
    if [ -x "$here/before/ringkernel" ]; then
      step "bench --backend wgpu, before ($(cat "$here/before/COMMIT")), pass $pass"
      RINGKERNEL_COMMIT="$before_commit" timeout 300 "$here/before/ringkernel" bench --backend wgpu --repeats "${REPEATS:-3}" --rounds "${ROUNDS:-2000}" \
        --messages "${MESSAGES:-400000}" --actors "${ACTORS:-8}" --json "$out/wgpu-before-$pass.json" || fail "wgpu bench before"
    fi
    step "bench --backend wgpu, pass $pass"
    timeout 300 "$here/ringkernel" bench --backend wgpu --repeats "${REPEATS:-3}" --rounds "${ROUNDS:-2000}" \
      --messages "${MESSAGES:-400000}" --actors "${ACTORS:-8}" --json "$out/wgpu-after-$pass.json" || fail "wgpu bench"
  done
  step "bench --backend wgpu, 64 streaming actors"
  timeout 300 "$here/ringkernel" bench --backend wgpu --repeats "${REPEATS:-3}" --rounds 500 \
    --messages "${MESSAGES_64:-2000000}" --actors 64 --json "$out/wgpu-after-64actors.json" || fail "wgpu bench 64 actors"
fi

if want stencil; then
  export RINGKERNEL_REQUIRE_CUDA=1 RINGKERNEL_REQUIRE_NVRTC=1
  step "tests: nvrtc (the halo module among them)"; timeout 180 "$here/test_cuda_nvrtc" --test-threads=4 2>&1 || fail nvrtc
  halo_tests="$("$here/test_cuda_halo" --list 2>/dev/null | sed -n 's/: test$//p')"
  [ -n "$halo_tests" ] || fail "listing the cuda halo tests"
  for t in $halo_tests; do
    step "tests: cuda halo $t"; timeout 300 "$here/test_cuda_halo" --exact "$t" --nocapture 2>&1 || fail "cuda halo $t"
  done
  if [ -z "${STENCIL_QUICK:-}" ]; then
  step "stencil: 2D wave 1024x1024 on cuda, pictures, checked in full"
  timeout 300 "$here/ringkernel" stencil --backend cuda --grid 1024x1024 --steps 1200 --kind wave --c2 0.25 \
    --frames 3 --check full --out "$out/stencil-wave-cuda" || fail "stencil wave"
  step "stencil: 3D Jacobi 128x128x128 on cuda, checked in full"
  timeout 300 "$here/ringkernel" stencil --backend cuda --grid 128x128x128 --steps 100 --kind jacobi \
    --check full --out "$out/stencil-jacobi3d-cuda" || fail "stencil jacobi 3d"
  step "stencil: 2D Jacobi 16384x16384 on cuda, sampled check"
  timeout 300 "$here/ringkernel" stencil --backend cuda --grid 16384x16384 --steps 200 --check sampled \
    --out "$out/stencil-jacobi-16k-cuda" || fail "stencil jacobi 16k"
  step "stencil: 2D Jacobi 1024x1024 on cuda, checked in full"
  timeout 300 "$here/ringkernel" stencil --backend cuda --grid 1024x1024 --steps 200 --check full \
    --out "$out/stencil-jacobi2d-cuda" || fail "stencil jacobi 2d"
  if [ -x "$here/test_wgpu_halo" ]; then
    if ! want wgpu; then  # (the wgpu section ran them otherwise)
      vulkan_setup
      step "tests: wgpu halo (NVIDIA's Vulkan driver)"; timeout 120 "$here/test_wgpu_halo" 2>&1 || fail "wgpu halo"
    fi
    step "stencil: 2D wave 1024x1024 on wgpu, checked in full"
    timeout 300 "$here/ringkernel" stencil --backend wgpu --grid 1024x1024 --steps 1200 --kind wave --c2 0.25 \
      --check full --out "$out/stencil-wave-wgpu" || fail "stencil wave wgpu"
  fi
  step "demo on cuda (ends with a wave)"
  timeout 120 "$here/ringkernel" demo --backend cuda --messages 20000 --out "$out/stencil-demo" || fail "demo"
  fi # STENCIL_QUICK
  if [ -z "${STENCIL_NO_BENCH:-}" ]; then
  step "bench-stencil (persistent vs launch per step vs CUDA Graph vs copy)"
  timeout 500 "$here/ringkernel" bench-stencil --repeats "${REPEATS:-5}" ${STENCIL_CASES:+--cases "$STENCIL_CASES"} \
    --json "$out/stencil-cuda.json" || fail "bench-stencil"
  fi
  # Pictures and summaries in one file (the runner brings back few files).
  if ls -d "$out"/stencil-*/ >/dev/null 2>&1; then (cd "$out" && tar -cf stencil-runs.tar stencil-*/ && rm -rf stencil-*/); fi
fi

if want host; then
  # CPU-side figures on this host: queues, actor round trips and streaming, engine costs, pinned to
  # two CPUs on different cores; before and after alternate over three rounds (vCPU placements
  # change from minute to minute).
  runs="$(mktemp -d)"
  cpus=$(lscpu -p=CPU,CORE | grep -v '^#' | awk -F, '!seen[$2]++ {print $1}' | sed -n '3p;4p' | paste -sd, -)
  echo "pinned to CPUs $cpus"
  pin="taskset -c $cpus"
  for round in 1 2 3; do
    step "host round $round: after ($RINGKERNEL_COMMIT)"
    $pin "$here/queue_report" --repeats 3 --json "$runs/queue_after_$round.json" || fail "queue_report"
    $pin "$here/ringkernel" bench --backend cpu --repeats 3 --json "$runs/actor_after_$round.json" || fail "cpu bench"
    if [ -x "$here/before/queue_report" ]; then
      before="$(cat "$here/before/COMMIT")"
      step "host round $round: before ($before)"
      RINGKERNEL_COMMIT="$before" $pin "$here/before/queue_report" --repeats 3 --json "$runs/queue_before_$round.json" || fail "queue_report before"
      RINGKERNEL_COMMIT="$before" $pin "$here/before/ringkernel" bench --backend cpu --repeats 3 --json "$runs/actor_before_$round.json" || fail "cpu bench before"
    fi
  done
  $pin "$here/cost_report" --repeats 5 --json "$runs/costs.json" || fail cost_report
  tar -C "$runs" -cf "$out/host-results.tar" .
fi
if want host || want dispatch; then
  # KernelControl's async_trait methods: a call through KernelHandle (dynamic dispatch, boxed
  # future) against the engine's own call, on the CPU polling model, alternating in one process.
  cpus=$(lscpu -p=CPU,CORE | grep -v '^#' | awk -F, '!seen[$2]++ {print $1}' | sed -n '3p;4p' | paste -sd, -)
  # With a before binary (BEFORE=), the two alternate over three rounds in this one run.
  for round in 1 2 3; do
    step "dispatch_report, round $round (pinned to CPUs $cpus)"
    taskset -c "$cpus" "$here/dispatch_report" --repeats "${DISPATCH_REPEATS:-9}" --json "$out/dispatch-after-$round.json" ||
      fail dispatch_report
    if [ -x "$here/before/dispatch_report" ]; then
      step "dispatch_report before ($before_commit), round $round"
      RINGKERNEL_COMMIT="$before_commit" taskset -c "$cpus" "$here/before/dispatch_report" \
        --repeats "${DISPATCH_REPEATS:-9}" --json "$out/dispatch-before-$round.json" || fail "dispatch_report before"
    fi
  done
fi
echo; echo "run.sh ($target): status $status"
exit $status
