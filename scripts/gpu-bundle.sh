#!/usr/bin/env bash
# Builds the CUDA backend's GPU suite into target/gpu-bundle (stripped release binaries, the floor
# probes of ../shared/bench, a run script), so that one command on a GPU machine (no Rust needed,
# CUDA 13 driver + NVRTC) runs the GPU conformance suite, the GPU-only tests, the demo and the
# benchmarks:
#
#   scripts/gpu-bundle.sh
#   bash target/gpu-bundle/run_gpu.sh            # on the GPU machine; logs and JSON go to $OUT
#
# (With the tool library's device runner: carry ["target/gpu-bundle"], command
#  "bash target/gpu-bundle/run_gpu.sh".)
set -euo pipefail
cd "$(dirname "$0")/.."
bundle=target/gpu-bundle
rm -rf "$bundle" && mkdir -p "$bundle"
# Test binaries: cargo prints where it put them.
cargo test --release -p ringkernel-cuda --no-run --message-format=json 2>/dev/null |
  python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["kind"] == ["test"]:
        print(m["target"]["name"], m["executable"])
' | while read -r name exe; do cp "$exe" "$bundle/test_$name"; strip "$bundle/test_$name"; done
cargo build --release -p ringkernel-cli
cp target/release/ringkernel "$bundle/" && strip "$bundle/ringkernel"
git rev-parse --short HEAD > "$bundle/COMMIT"
if [ -d ../shared/bench ]; then cp ../shared/bench/*.cu "$bundle/" 2>/dev/null || true; fi
cat > "$bundle/run_gpu.sh" <<'RUN'
#!/usr/bin/env bash
# The CUDA backend on a GPU: device info, the C floor probes (nvcc, same run), NVRTC templates,
# the conformance suite, the GPU-only tests, the demo, then the benchmark. One test at a time:
# each conformance test has its own runtime and CUDA context, and persistent kernels of several
# contexts only time-slice.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${OUT:-/tmp/out}"; mkdir -p "$out"
exec > >(tee "$out/gpu.log") 2>&1
export RINGKERNEL_REQUIRE_CUDA=1 RINGKERNEL_REQUIRE_NVRTC=1 RUST_BACKTRACE=1
export RINGKERNEL_COMMIT="$(cat "$here/COMMIT")" RINGKERNEL_DATE="$(date -u +%F)"
for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib; do
  [ -d "$d" ] && export LD_LIBRARY_PATH="$d:${LD_LIBRARY_PATH:-}"
done
echo "date: $(date -u +%FT%TZ) commit: $RINGKERNEL_COMMIT"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm --format=csv 2>/dev/null || true
grep -m1 'model name' /proc/cpuinfo; nproc
status=0
step() { echo; echo "==> $*"; }
step "ringkernel info"; "$here/ringkernel" info || status=1
if command -v nvcc >/dev/null 2>&1 && [ -f "$here/gpu_floor.cu" ]; then
  step "C floor probes (nvcc)"
  (cd /tmp && nvcc -O3 -arch=sm_90 -std=c++17 "$here/slot_floor.cu" -o slot_floor && timeout 120 ./slot_floor) || echo "slot_floor failed"
fi
step "tests: nvrtc"
timeout 120 "$here/test_nvrtc" --test-threads=4 2>&1 || { echo "!!! nvrtc FAILED"; status=1; }
# The GPU-only tests one by one, each with its own time limit, so that a hang names itself.
for t in $("$here/test_gpu" --list 2>/dev/null | sed -n 's/: test$//p'); do
  step "tests: gpu $t"
  timeout 90 "$here/test_gpu" --exact "$t" --nocapture 2>&1 || { echo "!!! gpu $t FAILED (exit $?)"; status=1; }
done
step "tests: conformance"
timeout 300 "$here/test_conformance" --test-threads=1 2>&1 || { echo "!!! conformance FAILED (exit $?)"; status=1; }
step "demo (auto backend)"
timeout 120 "$here/ringkernel" demo --messages 20000 || status=1
step "bench --backend cuda (SM clock sampled every 500 ms into gpu_clocks.log)"
(nvidia-smi --query-gpu=timestamp,clocks.sm,clocks.mem,utilization.gpu,power.draw --format=csv -lms 500 > "$out/gpu_clocks.log" 2>&1 &
 echo $! > /tmp/rk_smi.pid)
timeout 400 "$here/ringkernel" bench --backend cuda --repeats ${REPEATS:-5} --rounds 20000 --messages 2000000 \
  --actors ${ACTORS:-8} --json "$out/cuda-h100.json" || status=1
if [ -n "${PROFILE_RUN:-}" ]; then
  step "bench --backend cuda with the device phase profile (RK_PROFILE; slower, for the breakdown only)"
  RINGKERNEL_PROFILE=1 timeout 300 "$here/ringkernel" bench --backend cuda --repeats 3 --rounds 20000 --messages 500000 \
    --actors ${ACTORS:-8} --json "$out/cuda-h100-profile.json" || status=1
fi
if [ -n "${ALSO_BLOCK_SIZE:-}" ]; then
  step "bench --backend cuda, actor blocks of $ALSO_BLOCK_SIZE threads"
  timeout 300 "$here/ringkernel" bench --backend cuda --repeats ${REPEATS:-5} --rounds 20000 --messages 2000000 \
    --actors ${ACTORS:-8} --block-size "$ALSO_BLOCK_SIZE" --json "$out/cuda-h100-block$ALSO_BLOCK_SIZE.json" || status=1
fi
kill "$(cat /tmp/rk_smi.pid)" 2>/dev/null || true
echo "SM clock while the bench ran (MHz): $(awk -F', ' 'NR>1 {print $2}' "$out/gpu_clocks.log" | sort | uniq -c | sort -rn | head -5 | tr '\n' ';')"
echo "exit status $status"
exit $status
RUN
chmod +x "$bundle/run_gpu.sh"
du -sh "$bundle"; ls -la "$bundle"
