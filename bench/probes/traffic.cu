// traffic.cu - does host-memory polling by other blocks slow one block's own work? (issue 14,
// third design probe). Block 0 times, in SM cycles: a chain of dependent shared-memory loads, a
// CRC32C of 64 bytes by one thread, and a release store after ten 16-byte stores to host memory,
// while N other blocks each poll host memory (one read in flight, `gap` ns between reads).
// Build: nvcc -O3 -arch=sm_90 -std=c++17 traffic.cu -o traffic && ./traffic
#include <cstdio>
#include <cstdint>
#include <cstring>
#include <cuda_runtime.h>
#define CK(x) do { cudaError_t e = (x); if (e != cudaSuccess) { printf("CUDA %s line %d\n", cudaGetErrorString(e), __LINE__); exit(1);} } while (0)
__shared__ uint32_t chain[1024];
__shared__ uint32_t table[16][256];
__global__ void traffic(uint8_t* host, volatile uint32_t* stop, unsigned long long* out, uint32_t gap) {
  if (blockIdx.x != 0) {
    if (threadIdx.x != 0) return;
    uint32_t acc = 0;
    while (*stop == 0) {
      uint32_t v; asm volatile("ld.relaxed.sys.u32 %0, [%1];" : "=r"(v) : "l"(host + 2048 + 64 * (blockIdx.x % 16)) : "memory");
      acc += v;
      if (gap) __nanosleep(gap);
    }
    if (acc == 7) out[63] = acc;
    return;
  }
  for (int i = threadIdx.x; i < 1024; i += blockDim.x) chain[i] = (i * 97 + 13) % 1024;
  for (int i = threadIdx.x; i < 16 * 256; i += blockDim.x) (&table[0][0])[i] = i * 2654435761u;
  __syncthreads();
  if (threadIdx.x != 0) return;
  // Let the pollers start.
  unsigned long long t0; asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t0));
  while (true) { unsigned long long t; asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t)); if (t - t0 > 2000000) break; }
  const int R = 1000;
  unsigned long long t = clock64();
  uint32_t p = 0;
  for (int r = 0; r < R; r++) for (int k = 0; k < 100; k++) p = chain[p];
  out[0] = (clock64() - t) / (100ull * R);
  t = clock64();
  uint32_t crc = 0;
  for (int r = 0; r < R; r++) for (int i = 0; i < 4; i++) {
    uint32_t a = crc ^ (r + i), b = r * i, c = a + b, d = a ^ b;
#define W(w, k) (table[(k) + 3][(w) & 255] ^ table[(k) + 2][((w) >> 8) & 255] ^ table[(k) + 1][((w) >> 16) & 255] ^ table[(k)][(w) >> 24])
    crc = W(a, 12) ^ W(b, 8) ^ W(c, 4) ^ W(d, 0);
  }
  out[1] = (clock64() - t) / R;
  t = clock64();
  for (int r = 0; r < R; r++) {
    for (int k = 0; k < 10; k++) asm volatile("st.relaxed.sys.v4.u32 [%0], {%1,%1,%1,%1};" :: "l"(host + 16 * k), "r"(r) : "memory");
    asm volatile("st.release.sys.u32 [%0], %1;" :: "l"(host + 1024), "r"(r) : "memory");
  }
  out[2] = (clock64() - t) / R;
  out[3] = p + crc;
  *stop = 1;
}
int main() {
  CK(cudaSetDeviceFlags(cudaDeviceMapHost));
  uint8_t* h; CK(cudaHostAlloc((void**)&h, 8192, cudaHostAllocMapped)); memset(h, 0, 8192);
  uint8_t* hd; CK(cudaHostGetDevicePointer((void**)&hd, h, 0));
  unsigned long long* ho; CK(cudaHostAlloc((void**)&ho, 4096, cudaHostAllocMapped));
  unsigned long long* od; CK(cudaHostGetDevicePointer((void**)&od, ho, 0));
  uint32_t* hs; CK(cudaHostAlloc((void**)&hs, 64, cudaHostAllocMapped));
  uint32_t* ds; CK(cudaHostGetDevicePointer((void**)&ds, hs, 0));
  printf("%8s %8s %14s %14s %14s\n", "pollers", "gap ns", "LDS chain", "CRC 64 B", "release.sys");
  for (int rep = 0; rep < 2; rep++)
    for (uint32_t n : {0u, 8u, 32u, 128u})
      for (uint32_t gap : {0u, 2000u, 10000u}) {
        if (n == 0 && gap != 0) continue;
        *hs = 0;
        traffic<<<1 + n, 128>>>(hd, ds, od, gap);
        CK(cudaGetLastError()); CK(cudaDeviceSynchronize());
        printf("%8u %8u %14llu %14llu %14llu\n", n, gap, ho[0], ho[1], ho[2]);
      }
  return 0;
}
