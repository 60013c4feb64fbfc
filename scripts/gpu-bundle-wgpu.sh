#!/usr/bin/env bash
# Builds the wgpu backend's GPU suite into target/gpu-bundle-wgpu: stripped release test binaries
# (wgpu conformance, halo exchange, smoke; the metal crate's tests over Vulkan), the CLI, the Vulkan
# loader packages (the GPU machine has NVIDIA's Vulkan driver but no loader) and a run script:
#
#   scripts/gpu-bundle-wgpu.sh
#   bash target/gpu-bundle-wgpu/run_wgpu.sh          # on the GPU machine (root: it unpacks the loader)
#
# (With the tool library's device runner: carry ["target/gpu-bundle-wgpu"], command
#  "bash target/gpu-bundle-wgpu/run_wgpu.sh"; logs and JSON go to $OUT.)
# The loader packages come from .gl/ (see the device README: apt-get download libvulkan1 …), or
# are downloaded here when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
bundle=target/gpu-bundle-wgpu
rm -rf "$bundle" && mkdir -p "$bundle/gl"
# Thin LTO: the wgpu stack is large and GPU round trips are tens of microseconds.
export CARGO_PROFILE_RELEASE_LTO=thin CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 CARGO_TARGET_DIR=target/wgpu-release
cargo test --release -p ringkernel-wgpu -p ringkernel-metal --no-run --message-format=json 2>/dev/null |
  python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["kind"] == ["test"]:
        print(m["target"]["name"], m["executable"])
' | while read -r name exe; do cp "$exe" "$bundle/test_$name"; strip "$bundle/test_$name"; done
cargo build --release -p ringkernel-cli
cp "$CARGO_TARGET_DIR/release/ringkernel" "$bundle/" && strip "$bundle/ringkernel"
git rev-parse --short HEAD > "$bundle/COMMIT"
if ! ls .gl/libvulkan1_*.deb >/dev/null 2>&1; then
  mkdir -p .gl /tmp/amd64/partial
  o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64'
  apt-get $o update >/dev/null && (cd .gl && apt-get $o download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2)
fi
# NVIDIA's ICD (libGLX_nvidia) needs the GL dispatch libraries too.
cp .gl/*.deb "$bundle/gl/"
cat > "$bundle/run_wgpu.sh" <<'RUN'
#!/usr/bin/env bash
# The wgpu backend on NVIDIA's Vulkan driver: info, smoke, the conformance suite, the halo
# exchange against the CPU reference, the metal crate over Vulkan, then the benchmark (bare submit +
# readback in the same run).
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${OUT:-/tmp/out}"; mkdir -p "$out"
exec > >(tee "$out/wgpu.log") 2>&1
for f in "$here"/gl/*.deb; do dpkg -x "$f" /; done; ldconfig
for icd in /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json /usr/share/vulkan/icd.d/nvidia_icd.json /etc/vulkan/icd.d/nvidia_icd.json; do
  [ -f "$icd" ] && export VK_DRIVER_FILES="$icd" && break
done
export XDG_RUNTIME_DIR=/tmp RINGKERNEL_REQUIRE_WGPU=1 RUST_BACKTRACE=1
export RINGKERNEL_COMMIT="$(cat "$here/COMMIT")" RINGKERNEL_DATE="$(date -u +%F)"
echo "date: $(date -u +%FT%TZ) commit: $RINGKERNEL_COMMIT icd: ${VK_DRIVER_FILES:-none}"
nvidia-smi --query-gpu=name,driver_version --format=csv 2>/dev/null || true
grep -m1 'model name' /proc/cpuinfo; nproc
status=0
step() { echo; echo "==> $*"; }
step "ringkernel info"; "$here/ringkernel" info || status=1
step "tests: smoke"; timeout 120 "$here/test_smoke" --test-threads=1 --nocapture 2>&1 || { echo "!!! smoke FAILED"; status=1; }
step "tests: conformance"; timeout 300 "$here/test_conformance" --test-threads=1 2>&1 || { echo "!!! conformance FAILED"; status=1; }
step "tests: halo"; timeout 120 "$here/test_halo" 2>&1 || { echo "!!! halo FAILED"; status=1; }
step "tests: metal over vulkan"; timeout 120 "$here/test_metal" --test-threads=1 2>&1 || { echo "!!! metal FAILED"; status=1; }
step "bench --backend wgpu"
timeout 300 "$here/ringkernel" bench --backend wgpu --repeats ${REPEATS:-5} --rounds ${ROUNDS:-2000} \
  --messages ${MESSAGES:-400000} --actors ${ACTORS:-8} --json "$out/wgpu-h100.json" || status=1
echo; echo "run_wgpu.sh: status $status"
exit $status
RUN
chmod +x "$bundle/run_wgpu.sh"
du -sh "$bundle"
