// costs.cu - what single operations cost inside a block whose other warps poll, as the CUDA actor
// loop runs them (issue 14, second design probe). SM cycles, timed on the device with clock64.
// Build: nvcc -O3 -arch=sm_90 -std=c++17 costs.cu -o costs && ./costs
#include <cstdio>
#include <cstdint>
#include <cstring>
#include <cuda_runtime.h>
#define CK(x) do { cudaError_t e = (x); if (e != cudaSuccess) { printf("CUDA %s line %d\n", cudaGetErrorString(e), __LINE__); exit(1);} } while (0)

__device__ __forceinline__ uint4 ld_sys(const void* p) {
  uint4 v; asm volatile("ld.relaxed.sys.v4.u32 {%0,%1,%2,%3}, [%4];" : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w) : "l"(p) : "memory"); return v;
}
__device__ __forceinline__ void st_sys(void* p, uint4 v) {
  asm volatile("st.relaxed.sys.v4.u32 [%0], {%1,%2,%3,%4};" :: "l"(p), "r"(v.x), "r"(v.y), "r"(v.z), "r"(v.w) : "memory");
}
__device__ __forceinline__ uint32_t ld_gpu(const uint32_t* p) { uint32_t v; asm volatile("ld.relaxed.gpu.u32 %0, [%1];" : "=r"(v) : "l"(p) : "memory"); return v; }
__device__ __forceinline__ void rel_sys(uint32_t* p, uint32_t v) { asm volatile("st.release.sys.u32 [%0], %1;" :: "l"(p), "r"(v) : "memory"); }
__device__ __forceinline__ uint64_t gtimer() { uint64_t t; asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t)); return t; }

__shared__ uint32_t table[8][256];
__shared__ volatile uint32_t stop_flag;

// Warp 0 measures; warp 1 does `background`: 0 nothing, 1 polls host memory (one read in flight),
// 2 polls L2. out[k] = cycles of experiment k averaged over R repetitions.
template <int BACKGROUND>
__global__ void costs(uint8_t* host, uint32_t* dev, unsigned long long* out) {
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  for (int i = threadIdx.x; i < 8 * 256; i += blockDim.x) (&table[0][0])[i] = i * 2654435761u;
  if (threadIdx.x == 0) stop_flag = 0;
  __syncthreads();
  const int R = 2000;
  if (warp == 1) {
    uint32_t acc = 0;
    while (!stop_flag) {
      if (BACKGROUND == 1) { uint4 v = ld_sys(host + 2048 + 16 * lane); acc += __shfl_sync(~0u, v.x, 0); }
      if (BACKGROUND == 2) { acc += __shfl_sync(~0u, ld_gpu(dev + 64 + lane), 0); }
    }
    if (acc == 12345) dev[0] = acc;
    return;
  }
  if (warp != 0) return;
  unsigned long long t;
  uint32_t sink = 0;
  // 0: st.release.sys after 10 sys 16-B stores (a reply, then its tail)
  t = clock64();
  for (int r = 0; r < R; r++) {
    if (lane < 10) st_sys(host + 512 + 16 * lane, make_uint4(r, r, r, r));
    __syncwarp();
    if (lane == 0) rel_sys(reinterpret_cast<uint32_t*>(host + 1024), r);
    __syncwarp();
  }
  if (lane == 0) out[0] = (clock64() - t) / R;
  // 1: fence.cta right after 10 sys stores
  t = clock64();
  for (int r = 0; r < R; r++) {
    if (lane < 10) st_sys(host + 512 + 16 * lane, make_uint4(r, r, r, r));
    __syncwarp();
    if (lane == 0) __threadfence_block();
    __syncwarp();
  }
  if (lane == 0) out[1] = (clock64() - t) / R;
  // 2: 10 sys stores alone
  t = clock64();
  for (int r = 0; r < R; r++) {
    if (lane < 10) st_sys(host + 512 + 16 * lane, make_uint4(r, r, r, r));
    __syncwarp();
  }
  if (lane == 0) out[2] = (clock64() - t) / R;
  // 3: %globaltimer read (dependent chain)
  t = clock64();
  uint64_t g = 0;
  for (int r = 0; r < R; r++) g += gtimer() & 1;
  if (lane == 0) out[3] = (clock64() - t) / R;
  sink += (uint32_t)g;
  // 4: a slicing-by-8 CRC of 64 B by lane 0 over shared tables (8 steps)
  t = clock64();
  uint32_t crc = 0;
  for (int r = 0; r < R; r++) {
    if (lane == 0) {
      for (int i = 0; i < 8; i++) {
        uint32_t one = crc ^ (r + i), two = r * i;
        crc = table[7][one & 255] ^ table[6][(one >> 8) & 255] ^ table[5][(one >> 16) & 255] ^ table[4][one >> 24] ^
              table[3][two & 255] ^ table[2][(two >> 8) & 255] ^ table[1][(two >> 16) & 255] ^ table[0][two >> 24];
      }
    }
    __syncwarp();
  }
  if (lane == 0) out[4] = (clock64() - t) / R;
  sink += crc;
  // 5: fence.acq_rel.sys with nothing outstanding
  t = clock64();
  for (int r = 0; r < R; r++) { if (lane == 0) asm volatile("fence.acq_rel.sys;" ::: "memory"); __syncwarp(); }
  if (lane == 0) out[5] = (clock64() - t) / R;
  // 6: one poll of host memory (13 lanes), the bus warp's round trip
  t = clock64();
  for (int r = 0; r < R / 10; r++) { uint4 v = lane < 13 ? ld_sys(host + 16 * lane) : make_uint4(0,0,0,0); sink += __shfl_sync(~0u, v.x, 0); }
  if (lane == 0) out[6] = (clock64() - t) / (R / 10);
  // 7: st.release.sys of one word with nothing else outstanding
  t = clock64();
  for (int r = 0; r < R; r++) { if (lane == 0) rel_sys(reinterpret_cast<uint32_t*>(host + 1024), r); __syncwarp(); }
  if (lane == 0) out[7] = (clock64() - t) / R;
  // 8: 5 relaxed sys word stores then st.release.sys (counters, then the tail)
  t = clock64();
  for (int r = 0; r < R; r++) {
    if (lane == 0) { for (int k = 0; k < 5; k++) asm volatile("st.relaxed.sys.u32 [%0], %1;" :: "l"(host + 1100 + 4 * k), "r"(r) : "memory"); rel_sys(reinterpret_cast<uint32_t*>(host + 1024), r); }
    __syncwarp();
  }
  if (lane == 0) out[8] = (clock64() - t) / R;
  if (lane == 0) { stop_flag = 1; if (sink == 7) dev[1] = sink; }
}

template <int B>
static void run(const char* name, uint8_t* hd, uint32_t* dev, unsigned long long* out, unsigned long long* hout) {
  costs<B><<<1, 64>>>(hd, dev, out);
  CK(cudaGetLastError()); CK(cudaDeviceSynchronize());
  const char* what[] = {"release.sys after 10 sys stores", "fence.cta after 10 sys stores", "10 sys stores",
                        "globaltimer read", "CRC 64 B, lane 0, shared tables", "fence.acq_rel.sys, nothing out",
                        "one bus poll (13 lanes)", "release.sys alone", "5 sys stores + release.sys"};
  printf("-- other warp: %s\n", name);
  for (int k = 0; k < 9; k++) printf("  %-40s %6llu cycles\n", what[k], hout[k]);
}

int main() {
  uint8_t* h; CK(cudaHostAlloc((void**)&h, 4096, cudaHostAllocMapped)); memset(h, 0, 4096);
  uint8_t* hd; CK(cudaHostGetDevicePointer((void**)&hd, h, 0));
  unsigned long long* ho; CK(cudaHostAlloc((void**)&ho, 4096, cudaHostAllocMapped));
  unsigned long long* od; CK(cudaHostGetDevicePointer((void**)&od, ho, 0));
  uint32_t* dev; CK(cudaMalloc(&dev, 4096)); CK(cudaMemset(dev, 0, 4096));
  for (int rep = 0; rep < 2; rep++) {
    run<0>("idle", hd, dev, od, ho);
    run<1>("polls host memory", hd, dev, od, ho);
    run<2>("polls L2", hd, dev, od, ho);
  }
  return 0;
}
