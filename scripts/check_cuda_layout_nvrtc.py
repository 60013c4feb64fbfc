#!/usr/bin/env python3
"""Compiles the generated CUDA layout header with NVRTC (sm_90) so that its static_asserts
(size, alignment, every field offset) are checked by NVIDIA's own front end, not only by the host
C++ compiler. Needs no GPU: `pip install nvidia-cuda-nvrtc==13.0.88` provides libnvrtc.

Usage: scripts/check_cuda_layout_nvrtc.py [path/to/ringkernel_layout.cuh]
Exit status 0 when the header compiles, 1 when NVRTC rejects it, 2 when NVRTC is missing.
"""
import ctypes
import glob
import os
import sys


def find_nvrtc():
    candidates = []
    for base in sys.path:
        candidates += glob.glob(os.path.join(base, "nvidia", "cu13", "lib", "libnvrtc.so.13"))
        candidates += glob.glob(os.path.join(base, "nvidia", "cuda_nvrtc", "lib", "libnvrtc.so.13"))
    candidates.append("libnvrtc.so.13")
    for path in candidates:
        try:
            # NVRTC dlopens its builtins library by name; loading it first, globally, lets that
            # succeed without LD_LIBRARY_PATH.
            for builtins in glob.glob(os.path.join(os.path.dirname(path), "libnvrtc-builtins.so.*")):
                ctypes.CDLL(builtins, mode=ctypes.RTLD_GLOBAL)
            return ctypes.CDLL(path), path
        except OSError:
            continue
    return None, None


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    header_path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        root, "crates", "ringkernel-core", "generated", "ringkernel_layout.cuh")
    nvrtc, path = find_nvrtc()
    if nvrtc is None:
        print("NVRTC not found: pip install nvidia-cuda-nvrtc==13.0.88", file=sys.stderr)
        return 2
    header = open(header_path, "rb").read()
    # A kernel that touches the structs and every kind of generated atomic helper, so that they
    # are used as device code would use them (NVRTC then checks the inline PTX too).
    source = header + b"""
extern "C" __global__ void rk_layout_probe(ControlBlock* control, MessageHeader* header,
                                           K2KRoutingTable* table, K2KInboxHeader* inbox, unsigned int* out) {
    out[0] = rk_add_ControlBlock_messages_processed(control, 1u);
    out[1] = header->magic == RK_MESSAGE_MAGIC ? table->routes[RK_K2K_MAX_ROUTES - 1].direction : 0u;
    unsigned int tail = rk_load_ControlBlock_input_tail(control);
    rk_store_ControlBlock_input_head(control, tail);
    rk_store_ControlBlock_has_terminated(control, RK_TERMINATED);
    out[2] = rk_cas_K2KInboxHeader_tail(inbox, tail, tail + 1u);
}
"""
    prog = ctypes.c_void_p()
    check = lambda code, what: code == 0 or sys.exit(f"{what} failed with NVRTC status {code}")
    check(nvrtc.nvrtcCreateProgram(ctypes.byref(prog), source, b"ringkernel_layout_check.cu", 0, None, None),
          "nvrtcCreateProgram")
    options = [b"--gpu-architecture=compute_90", b"--std=c++17"]
    option_array = (ctypes.c_char_p * len(options))(*options)
    status = nvrtc.nvrtcCompileProgram(prog, len(options), option_array)
    log_size = ctypes.c_size_t()
    nvrtc.nvrtcGetProgramLogSize(prog, ctypes.byref(log_size))
    log = ctypes.create_string_buffer(log_size.value)
    nvrtc.nvrtcGetProgramLog(prog, log)
    if status != 0:
        print(log.value.decode(errors="replace"), file=sys.stderr)
        print(f"NVRTC ({path}) rejected {header_path}", file=sys.stderr)
        return 1
    ptx_size = ctypes.c_size_t()
    nvrtc.nvrtcGetPTXSize(prog, ctypes.byref(ptx_size))
    ptx = ctypes.create_string_buffer(ptx_size.value)
    nvrtc.nvrtcGetPTX(prog, ptx)
    text = ptx.value.decode(errors="replace")
    for instruction in ("ld.acquire.sys", "st.release.sys", "atom.acq_rel.sys.cas", "atom.relaxed.sys.add"):
        if instruction not in text:
            print(f"the PTX lacks {instruction}: the generated atomic helpers did not compile as intended",
                  file=sys.stderr)
            return 1
    print(f"NVRTC ({path}) compiled {header_path} to {ptx_size.value} bytes of sm_90 PTX; "
          "its size and alignment static_asserts hold (NVRTC has no offsetof; the host-compiler test checks offsets) "
          "and the system-scope acquire/release helpers emit ld.acquire.sys / st.release.sys / atom.*.sys")
    return 0


if __name__ == "__main__":
    sys.exit(main())
