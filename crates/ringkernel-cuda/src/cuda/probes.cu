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

// --- The floors of the three paths an actor uses, with no protocol at all --------------------

__device__ __forceinline__ uint4 rk_probe_ld_sys(const void* p) {
    uint4 v;
    asm volatile("ld.relaxed.sys.v4.u32 {%0,%1,%2,%3}, [%4];" : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w) : "l"(p) : "memory");
    return v;
}
__device__ __forceinline__ void rk_probe_st_sys(void* p, uint4 v) {
    asm volatile("st.relaxed.sys.v4.u32 [%0], {%1,%2,%3,%4};" : : "l"(p), "r"(v.x), "r"(v.y), "r"(v.z), "r"(v.w) : "memory");
}
__device__ __forceinline__ void rk_probe_release_sys(unsigned int* p, unsigned int v) {
    asm volatile("st.release.sys.u32 [%0], %1;" : : "l"(p), "r"(v) : "memory");
}
__device__ __forceinline__ unsigned int rk_probe_ld_gpu(const unsigned int* p) {
    unsigned int v;
    asm volatile("ld.relaxed.gpu.u32 %0, [%1];" : "=r"(v) : "l"(p) : "memory");
    return v;
}

// A 320-byte slot (a line of which is a sequence number, then the payload's 64 bytes at 256)
// echoed by one warp: each poll reads the slot's first line and payload line in one round trip
// and accepts it when the sequence is the next one and the words of the payload add up to the
// sum the host put in the first line; the reply (payload + 1 per word) goes to `out`, its
// sequence last behind a release store. Stops at sequence 0xFFFFFFFF.
// in/out: [0] sequence, [1] payload word sum; [256, 320) payload.
extern "C" __global__ void rk_probe_slot_echo(const unsigned char* in, unsigned char* out) {
    const unsigned int lane = threadIdx.x;
    for (unsigned int want = 1;; ++want) {
        uint4 v = make_uint4(0u, 0u, 0u, 0u);
        while (true) {
            if (lane == 0u) v = rk_probe_ld_sys(in);
            else if (lane >= 1u && lane < 5u) v = rk_probe_ld_sys(in + 256u + 16u * (lane - 1u));
            unsigned int seq = __shfl_sync(0xFFFFFFFFu, v.x, 0), sum = __shfl_sync(0xFFFFFFFFu, v.y, 0);
            if (seq == 0xFFFFFFFFu) return;
            unsigned int part = (lane >= 1u && lane < 5u) ? v.x + v.y + v.z + v.w : 0u;
            for (int o = 16; o > 0; o >>= 1) part += __shfl_xor_sync(0xFFFFFFFFu, part, o);
            if (seq == want && part == sum) break;
        }
        if (lane >= 1u && lane < 5u) rk_probe_st_sys(out + 256u + 16u * (lane - 1u), make_uint4(v.x + 1u, v.y + 1u, v.z + 1u, v.w + 1u));
        __syncwarp();
        if (lane == 0u) rk_probe_release_sys(reinterpret_cast<unsigned int*>(out), want);
        __syncwarp();
    }
}

// Two persistent blocks bounce a word through global memory (each in its own 128-byte line):
// block 0 stores i, block 1 sees it and stores i back; block 0 times each round trip.
extern "C" __global__ void rk_probe_k2k(unsigned int* lines, unsigned int rounds, unsigned long long* times) {
    if (threadIdx.x != 0) return;
    unsigned int* ping = lines;
    unsigned int* pong = lines + 32;
    for (unsigned int i = 1; i <= rounds; ++i) {
        if (blockIdx.x == 0) {
            unsigned long long start;
            asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(start));
            asm volatile("st.relaxed.gpu.u32 [%0], %1;" : : "l"(ping), "r"(i) : "memory");
            while (rk_probe_ld_gpu(pong) != i) { }
            unsigned long long end;
            asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(end));
            times[i - 1] = end - start;
        } else {
            while (rk_probe_ld_gpu(ping) != i) { }
            asm volatile("st.relaxed.gpu.u32 [%0], %1;" : : "l"(pong), "r"(i) : "memory");
        }
    }
}

// Raw rings host -> GPU -> host of 320-byte slots, no protocol: block b serves ring pair b at
// `base + b * ring_bytes`: a host line (input tail, stop, output head), a device line (output
// tail) 64 bytes on, then `capacity` input slots and `capacity` output slots from byte 256. Per
// round trip the block reads what the tail published (up to 16 slots: first line and payload
// line), writes each one's echo (first line as is, payload + 1 per word) into the output ring,
// and publishes the output tail with one release store.
extern "C" __global__ void rk_probe_stream(unsigned char* base, unsigned int ring_bytes, unsigned int capacity) {
    unsigned char* ring = base + (size_t)blockIdx.x * ring_bytes;
    unsigned int* host = reinterpret_cast<unsigned int*>(ring);
    unsigned int* device = reinterpret_cast<unsigned int*>(ring + 64);
    unsigned char* in = ring + 256;
    unsigned char* out = in + (size_t)capacity * 320u;
    const unsigned int lane = threadIdx.x, mask = capacity - 1u, chunk = lane % 8u;
    unsigned int head = 0u, out_tail = 0u;
    while (true) {
        uint4 line = lane == 0u ? rk_probe_ld_sys(host) : make_uint4(0u, 0u, 0u, 0u);
        const unsigned int tail = __shfl_sync(0xFFFFFFFFu, line.x, 0);
        const unsigned int stop = __shfl_sync(0xFFFFFFFFu, line.y, 0);
        const unsigned int out_head = __shfl_sync(0xFFFFFFFFu, line.z, 0);
        unsigned int n = tail - head, room = capacity - (out_tail - out_head);
        if (n > room) n = room;
        if (n > 16u) n = 16u;
        if (n == 0u) {
            if (stop != 0u && tail == head) return;
            continue;
        }
        asm volatile("fence.acq_rel.sys;" : : : "memory");
        uint4 r[4];
#pragma unroll
        for (unsigned int round = 0; round < 4u; ++round) {
            const unsigned int m = round * 4u + lane / 8u;
            r[round] = make_uint4(0u, 0u, 0u, 0u);
            if (m < n) {
                const unsigned char* slot = in + (size_t)((head + m) & mask) * 320u;
                r[round] = rk_probe_ld_sys(chunk < 4u ? slot + 16u * chunk : slot + 256u + 16u * (chunk - 4u));
            }
        }
#pragma unroll
        for (unsigned int round = 0; round < 4u; ++round) {
            const unsigned int m = round * 4u + lane / 8u;
            if (m < n) {
                unsigned char* slot = out + (size_t)((out_tail + m) & mask) * 320u;
                uint4 v = r[round];
                if (chunk >= 4u) v = make_uint4(v.x + 1u, v.y + 1u, v.z + 1u, v.w + 1u);
                rk_probe_st_sys(chunk < 4u ? slot + 16u * chunk : slot + 256u + 16u * (chunk - 4u), v);
            }
        }
        __syncwarp();
        head += n;
        out_tail += n;
        if (lane == 0u) rk_probe_release_sys(device, out_tail);
        __syncwarp();
    }
}
