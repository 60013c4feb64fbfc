// Floor probes, compiled by NVRTC like the actors: the hardware's own round trip without any
// protocol (a flag bounced through mapped host memory by one persistent thread), an empty kernel
// for launch + sync, and a 64-byte "offload" kernel for the copy-in/kernel/copy-out graph.
extern "C" __global__ void rk_probe_empty() {}

extern "C" __global__ void rk_probe_offload(const unsigned int* in, unsigned int* out) {
    if (threadIdx.x < 16) out[threadIdx.x] = in[threadIdx.x] + 1u;
}

extern "C" __global__ void rk_probe_clock(unsigned long long* out) {
    unsigned long long t;
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
    out[0] = t;
}

// flags[0]: host -> device sequence; flags[16]: device -> host echo (another 64-byte line).
// Stops when it sees 0xFFFFFFFF.
extern "C" __global__ void rk_probe_pingpong(volatile unsigned int* flags) {
    if (threadIdx.x != 0) return;
    unsigned int last = 0;
    while (true) {
        unsigned int v;
        asm volatile("ld.acquire.sys.u32 %0, [%1];" : "=r"(v) : "l"(flags) : "memory");
        if (v == last) continue;
        if (v == 0xFFFFFFFFu) break;
        last = v;
        asm volatile("st.release.sys.u32 [%0], %1;" : : "l"(flags + 16), "r"(v) : "memory");
    }
}
