#!/usr/bin/env bash
# Builds what a GPU machine runs (it has the NVIDIA driver and CUDA, but no Rust) into one folder,
# target/gpu-bundle: stripped release binaries, the C floor probes of ../shared/bench, and one run
# script. The target picks what goes in:
#
#   scripts/gpu-bundle.sh cuda   # the CUDA backend: NVRTC, GPU tests, conformance, demo, bench
#   scripts/gpu-bundle.sh wgpu   # the wgpu backend on NVIDIA's Vulkan driver (+ the Vulkan loader)
#   scripts/gpu-bundle.sh host   # CPU-side figures on the GPU machine's host (queues, engine costs)
#   scripts/gpu-bundle.sh dispatch # what KernelHandle's dynamic dispatch costs a CPU polling call()
#   scripts/gpu-bundle.sh stencil # the CUDA halo exchange: its tests, `ringkernel stencil`, bench-stencil
#   scripts/gpu-bundle.sh all    # all four
#   bash target/gpu-bundle/run.sh                 # there: runs what the bundle holds; logs to $OUT
#
# (With the tool library's device runner: carry ["target/gpu-bundle"], command
#  "bash target/gpu-bundle/run.sh".)
#
# BEFORE=DIR adds the `ringkernel` (and, for host, `queue_report`; for dispatch, `dispatch_report`) binaries of DIR, built at an
# earlier commit (DIR/COMMIT names it): the run measures them in the same command, for before and
# after figures. Knobs of the run script (environment): REPEATS, ACTORS, HOST_THREADS, PROFILE_RUN,
# ALSO_BLOCK_SIZE, SOAK_SECS (cuda); REPEATS, ROUNDS, MESSAGES, ACTORS (wgpu); REPEATS, STENCIL_CASES,
# STENCIL_QUICK=1 (tests and bench only), STENCIL_NO_BENCH=1 (no bench-stencil) (stencil).
set -euo pipefail
cd "$(dirname "$0")/.."
# Several targets may be named at once (`scripts/gpu-bundle.sh stencil wgpu`).
target="$*"
for t in $target; do
  case "$t" in
    cuda | wgpu | host | stencil | dispatch | all) ;;
    *)
      echo "usage: scripts/gpu-bundle.sh cuda|wgpu|host|stencil|all ...   (BEFORE=DIR for before/after binaries)" >&2
      exit 2
      ;;
  esac
done
[ -n "$target" ] || { echo "usage: scripts/gpu-bundle.sh cuda|wgpu|host|stencil|all ..." >&2; exit 2; }
want() { [[ " $target " == *" all "* || " $target " == *" $1 "* ]]; }
bundle=target/gpu-bundle
rm -rf "$bundle" && mkdir -p "$bundle"

# Copies the test binaries cargo builds for the packages after $1 into the bundle as
# test_<$1>_<name>.
copy_tests() {
  local prefix="$1"; shift
  cargo test --release "$@" --no-run --message-format=json 2>/dev/null |
    python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["kind"] == ["test"]:
        print(m["target"]["name"], m["executable"])
' | while read -r name exe; do cp "$exe" "$bundle/test_${prefix}_$name"; strip "$bundle/test_${prefix}_$name"; done
}

cargo build --release -p ringkernel-cli -p ringkernel-bench --bins
for bin in ringkernel queue_report cost_report dispatch_report; do cp "target/release/$bin" "$bundle/" && strip "$bundle/$bin"; done
if want cuda || want stencil; then copy_tests cuda -p ringkernel-cuda; fi
if want wgpu || want stencil; then
  copy_tests wgpu -p ringkernel-wgpu -p ringkernel-metal
  # NVIDIA's Vulkan driver is there, its loader is not: carry the loader and GL dispatch packages
  # (from .gl/, see the device README, or downloaded here).
  if ! ls .gl/libvulkan1_*.deb >/dev/null 2>&1; then
    mkdir -p .gl /tmp/amd64/partial
    o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64'
    apt-get $o update >/dev/null && (cd .gl && apt-get $o download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2)
  fi
  mkdir -p "$bundle/gl" && cp .gl/*.deb "$bundle/gl/"
fi
git rev-parse --short HEAD > "$bundle/COMMIT"
echo "$target" > "$bundle/TARGET"
if [ -d ../shared/bench ]; then cp ../shared/bench/*.cu "$bundle/" 2>/dev/null || true; fi
if [ -n "${BEFORE:-}" ]; then
  mkdir -p "$bundle/before"
  for bin in ringkernel queue_report dispatch_report; do
    if [ -f "$BEFORE/$bin" ]; then cp "$BEFORE/$bin" "$bundle/before/" && strip "$bundle/before/$bin"; fi
  done
  cp "$BEFORE/COMMIT" "$bundle/before/COMMIT"
fi
cp scripts/gpu-run.sh "$bundle/run.sh"
chmod +x "$bundle/run.sh"
du -sh "$bundle"
