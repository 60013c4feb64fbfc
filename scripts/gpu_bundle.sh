#!/usr/bin/env bash
# Builds everything the device machine runs into target/gpu-bundle (stripped release binaries, the
# floor probes, a run script), so one `run` call measures everything in one go:
#
#   scripts/gpu_bundle.sh [BEFORE_DIR]
#   then, on the device:  carry ["target/gpu-bundle"],  command "bash target/gpu-bundle/run_cpu_side.sh"
#
# BEFORE_DIR (optional) holds `ringkernel` and `queue_report` built at an earlier commit (with a
# COMMIT file): they run in the same command, on the same cores, for before/after ratios.
# The device machine has no Rust: everything is built here. Logs and JSON go to $OUT.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p ringkernel-cli -p ringkernel-bench --bins
bundle=target/gpu-bundle
rm -rf "$bundle" && mkdir -p "$bundle"
for bin in ringkernel queue_report cost_report; do
  cp "target/release/$bin" "$bundle/" && strip "$bundle/$bin"
done
git rev-parse --short HEAD > "$bundle/COMMIT"
if [ -d ../shared/bench ]; then cp ../shared/bench/*.cu "$bundle/" 2>/dev/null || true; fi
if [ -n "${1:-}" ]; then
  mkdir -p "$bundle/before"
  for bin in ringkernel queue_report; do cp "$1/$bin" "$bundle/before/" && strip "$bundle/before/$bin"; done
  cp "$1/COMMIT" "$bundle/before/COMMIT"
fi
cat > "$bundle/run_cpu_side.sh" <<'RUN'
#!/usr/bin/env bash
# CPU-side figures on the device machine's host: queues, actor round trips and streaming, engine
# costs; every figure against baselines measured in the same run, pinned to two CPUs on different
# cores. Before and after alternate over three rounds: this host's vCPUs, like the developer VM's,
# switch between placements (round trips of ~80 ns and ~550 ns) from one minute to the next.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${OUT:-/tmp/out}"; mkdir -p "$out"
runs="$(mktemp -d)"
exec > >(tee "$out/cpu_side.log") 2>&1
echo "date: $(date -u +%FT%TZ)"; grep -m1 'model name' /proc/cpuinfo; nproc
lscpu | grep -E 'Model name|Socket|Core|Thread|NUMA node0|L3' || true
# Two CPUs on different cores (not hyperthread siblings, as far as the guest can tell).
cpus=$(lscpu -p=CPU,CORE | grep -v '^#' | awk -F, '!seen[$2]++ {print $1}' | sed -n '3p;4p' | paste -sd, -)
echo "pinned to CPUs $cpus"
pin="taskset -c $cpus"
after="$(cat "$here/COMMIT")"
for round in 1 2 3; do
  echo "== round $round: after ($after)"
  RINGKERNEL_COMMIT="$after" $pin "$here/queue_report" --repeats 3 --json "$runs/queue_after_$round.json"
  RINGKERNEL_COMMIT="$after" $pin "$here/ringkernel" bench --backend cpu --repeats 3 --json "$runs/actor_after_$round.json"
  if [ -d "$here/before" ]; then
    before="$(cat "$here/before/COMMIT")"
    echo "== round $round: before ($before)"
    RINGKERNEL_COMMIT="$before" $pin "$here/before/queue_report" --repeats 3 --json "$runs/queue_before_$round.json"
    RINGKERNEL_COMMIT="$before" $pin "$here/before/ringkernel" bench --backend cpu --repeats 3 --json "$runs/actor_before_$round.json"
  fi
done
RINGKERNEL_COMMIT="$after" $pin "$here/cost_report" --repeats 5 --json "$runs/costs.json"
# The hardware floor of a host <-> GPU slot round trip, in the same run (for the device backends).
if command -v nvcc >/dev/null && [ -f "$here/slot_floor.cu" ]; then
  echo "== slot_floor (CUDA C, no framework)"
  nvcc -O3 -arch=sm_90 -std=c++17 "$here/slot_floor.cu" -o "$runs/slot_floor" && timeout 300 "$runs/slot_floor" | tee "$runs/slot_floor.txt"
  rm -f "$runs/slot_floor"
fi
tar -C "$runs" -cf "$out/results.tar" .
echo "done"
RUN
chmod +x "$bundle/run_cpu_side.sh"
du -sh "$bundle"
