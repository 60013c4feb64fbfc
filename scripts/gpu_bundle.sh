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
# physical cores.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${OUT:-/tmp/out}"; mkdir -p "$out"
exec > >(tee "$out/cpu_side.log") 2>&1
echo "date: $(date -u +%FT%TZ)"; grep -m1 'model name' /proc/cpuinfo; nproc
lscpu | grep -E 'Model name|Socket|Core|Thread|NUMA node0|L3' || true
# Two CPUs on different cores (not hyperthread siblings).
cpus=$(lscpu -p=CPU,CORE | grep -v '^#' | awk -F, '!seen[$2]++ {print $1}' | sed -n '3p;4p' | paste -sd, -)
echo "pinned to CPUs $cpus"
pin="taskset -c $cpus"
export RINGKERNEL_COMMIT="$(cat "$here/COMMIT")"
echo "== after ($RINGKERNEL_COMMIT)"
$pin "$here/queue_report" --repeats 7 --json "$out/queue_after.json"
$pin "$here/ringkernel" bench --backend cpu --repeats 5 --json "$out/actor_after.json"
$pin "$here/cost_report" --repeats 5 --json "$out/costs.json"
if [ -d "$here/before" ]; then
  export RINGKERNEL_COMMIT="$(cat "$here/before/COMMIT")"
  echo "== before ($RINGKERNEL_COMMIT)"
  $pin "$here/before/queue_report" --repeats 7 --json "$out/queue_before.json"
  $pin "$here/before/ringkernel" bench --backend cpu --repeats 5 --json "$out/actor_before.json"
fi
echo "done"
RUN
chmod +x "$bundle/run_cpu_side.sh"
du -sh "$bundle"
