// design.cu - design probes for the CUDA actor loop (issue 14): what one poll of host memory, one
// system fence and one hop through L2 cost in the shapes the loop would use. Not part of the
// benchmark; it decided the loop's shape (BENCHMARKS.md, "CUDA actor loop, design probes").
// Build: nvcc -O3 -arch=sm_90 -std=c++17 design.cu -o design && ./design
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>
#include <cuda_runtime.h>
#define CK(x) do { cudaError_t e = (x); if (e != cudaSuccess) { printf("CUDA %s line %d\n", cudaGetErrorString(e), __LINE__); exit(1);} } while (0)
using clk = std::chrono::steady_clock;

// ---- the seal: sum over words of fmix32(word ^ key(index)), the position as word 0 -------------
__host__ __device__ inline uint32_t fmix32(uint32_t h) {
  h ^= h >> 16; h *= 0x85EBCA6Bu; h ^= h >> 13; h *= 0xC2B2AE35u; h ^= h >> 16; return h;
}
__host__ __device__ inline uint32_t seal_term(uint32_t word, uint32_t index) { return fmix32(word ^ (0x9E3779B9u * (index + 1u))); }
static uint32_t host_seal(uint32_t position, const uint32_t* hot, const uint32_t* payload, uint32_t payload_bytes) {
  uint32_t h = seal_term(position, 0);
  for (uint32_t i = 0; i < 16; i++) h += seal_term(hot[i], 1 + i);
  uint32_t n = std::min(payload_bytes, 64u);
  for (uint32_t i = 0; i * 4 < n; i++) {
    uint32_t w = payload[i];
    if (n - i * 4 < 4) w &= (1u << (8 * (n - i * 4))) - 1u;
    h += seal_term(w, 17 + i);
  }
  return h;
}

__device__ __forceinline__ uint4 ld_sys(const void* p) {
  uint4 v; asm volatile("ld.relaxed.sys.v4.u32 {%0,%1,%2,%3}, [%4];" : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w) : "l"(p) : "memory"); return v;
}
__device__ __forceinline__ void st_sys(void* p, uint4 v) {
  asm volatile("st.relaxed.sys.v4.u32 [%0], {%1,%2,%3,%4};" :: "l"(p), "r"(v.x), "r"(v.y), "r"(v.z), "r"(v.w) : "memory");
}
__device__ __forceinline__ void st_sys32(uint32_t* p, uint32_t v) { asm volatile("st.relaxed.sys.u32 [%0], %1;" :: "l"(p), "r"(v) : "memory"); }
__device__ __forceinline__ void st_rel_sys32(uint32_t* p, uint32_t v) { asm volatile("st.release.sys.u32 [%0], %1;" :: "l"(p), "r"(v) : "memory"); }
__device__ __forceinline__ uint4 ld_gpu(const void* p) {
  uint4 v; asm volatile("ld.relaxed.gpu.v4.u32 {%0,%1,%2,%3}, [%4];" : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w) : "l"(p) : "memory"); return v;
}
__device__ __forceinline__ uint32_t ld_gpu32(const uint32_t* p) { uint32_t v; asm volatile("ld.relaxed.gpu.u32 %0, [%1];" : "=r"(v) : "l"(p) : "memory"); return v; }
__device__ __forceinline__ void st_gpu(void* p, uint4 v) {
  asm volatile("st.relaxed.gpu.v4.u32 [%0], {%1,%2,%3,%4};" :: "l"(p), "r"(v.x), "r"(v.y), "r"(v.z), "r"(v.w) : "memory");
}
__device__ __forceinline__ void st_gpu32(uint32_t* p, uint32_t v) { asm volatile("st.relaxed.gpu.u32 [%0], %1;" :: "l"(p), "r"(v) : "memory"); }
__device__ __forceinline__ uint64_t gtimer() { uint64_t t; asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t)); return t; }

// ---- E1: slot echo through host memory, the loop's shape ---------------------------------------
// ctl: 32 words (host line 0..15: word 2 = input tail; device line 16..31: word 18 = output tail).
// Slots of 320 B: hot line [0,64), seal at byte 84, payload [256,320). One warp; each poll reads
// the control line, the hot line, the seal's 16 bytes and the payload line (13 lanes, one round
// trip). DEPTH polls are kept in flight, issued `gap` ns apart. FENCE: 0 fence.sc.sys, 1
// fence.acq_rel.sys, 2 st.release.sys of the tail, 3 none (incorrect; measures the fence).
__device__ __forceinline__ const void* poll_address(int lane, const uint32_t* ctl, const uint8_t* slot) {
  if (lane < 4) return reinterpret_cast<const uint8_t*>(ctl) + 16 * lane;
  if (lane < 8) return slot + 16 * (lane - 4);
  if (lane == 8) return slot + 80;
  if (lane < 13) return slot + 256 + 16 * (lane - 9);
  return nullptr;
}
template <int FENCE, int DEPTH, bool TWO>
__global__ void e1_echo(uint32_t* ctl, const uint8_t* in, uint8_t* out, uint32_t mask, uint32_t n, uint32_t gap_ns,
                        unsigned long long* stats) {
  const int lane = threadIdx.x;
  uint32_t head = 0;
  uint4 r[DEPTH];
  uint32_t pos[DEPTH];
  unsigned long long torn = 0, polls = 0;
#pragma unroll
  for (int d = 0; d < DEPTH; d++) {
    pos[d] = head;
    const void* a = poll_address(lane, ctl, in + (size_t)(head & mask) * 320);
    r[d] = a ? ld_sys(a) : make_uint4(0, 0, 0, 0);
    uint64_t t = gtimer(); while (gtimer() - t < gap_ns) {}
  }
  while (head < n) {
#pragma unroll
    for (int d = 0; d < DEPTH; d++) {
      uint4 v = r[d];
      polls++;
      uint32_t tail = __shfl_sync(0xffffffffu, v.z, 0);
      bool fresh = pos[d] == head && tail != head;
      if (fresh && TWO) {  // the two-read shape: the slot again, now that the tail covers it
        const void* a = poll_address(lane, ctl, in + (size_t)(head & mask) * 320);
        v = (a && lane >= 4) ? ld_sys(a) : v;
      }
      if (fresh) {
        uint32_t bytes = __shfl_sync(0xffffffffu, v.x, 5);
        uint32_t stored = __shfl_sync(0xffffffffu, v.y, 8);
        uint32_t part = 0;
        uint32_t w[4] = {v.x, v.y, v.z, v.w};
        if (lane >= 4 && lane < 8) {
          for (int k = 0; k < 4; k++) part += seal_term(w[k], 1 + (lane - 4) * 4 + k);
        } else if (lane >= 9 && lane < 13) {
          uint32_t nb = bytes < 64 ? bytes : 64;
          for (int k = 0; k < 4; k++) {
            uint32_t i = (lane - 9) * 4 + k;
            if (i * 4 < nb) {
              uint32_t x = w[k];
              if (nb - i * 4 < 4) x &= (1u << (8 * (nb - i * 4))) - 1u;
              part += seal_term(x, 17 + i);
            }
          }
        } else if (lane == 0) {
          part = seal_term(head, 0);
        }
        for (int o = 16; o; o >>= 1) part += __shfl_xor_sync(0xffffffffu, part, o);
        if (part == stored) {
          uint8_t* slot = out + (size_t)(head & mask) * 320;
          if (lane >= 4 && lane < 8) st_sys(slot + 16 * (lane - 4), v);
          if (lane >= 8 && lane < 12) st_sys(slot + 64 + 16 * (lane - 8), make_uint4(head, 0, 0, 0));
          if (lane >= 9 && lane < 13) st_sys(slot + 256 + 16 * (lane - 9), make_uint4(v.x + 1, v.y + 1, v.z + 1, v.w + 1));
          __syncwarp();
          if (lane == 0) {
            st_sys32(ctl + 17, head + 1);  // input head
            if (FENCE == 0) { asm volatile("fence.sc.sys;" ::: "memory"); st_sys32(ctl + 18, head + 1); }
            if (FENCE == 1) { asm volatile("fence.acq_rel.sys;" ::: "memory"); st_sys32(ctl + 18, head + 1); }
            if (FENCE == 2) st_rel_sys32(ctl + 18, head + 1);
            if (FENCE == 3) st_sys32(ctl + 18, head + 1);
          }
          __syncwarp();
          head++;
          if (head == n) break;
        } else {
          torn++;
        }
      }
      pos[d] = head;
      const void* a = poll_address(lane, ctl, in + (size_t)(head & mask) * 320);
      r[d] = a ? ld_sys(a) : make_uint4(0, 0, 0, 0);
    }
  }
  if (lane == 0) { stats[0] = torn; stats[1] = polls; }
}

struct Pinned { void* h; void* d; };
static Pinned pinned(size_t bytes) {
  Pinned p; CK(cudaHostAlloc(&p.h, bytes, cudaHostAllocMapped)); memset(p.h, 0, bytes); CK(cudaHostGetDevicePointer(&p.d, p.h, 0)); return p;
}
static void report(const char* name, std::vector<double>& v, const char* extra = "") {
  std::sort(v.begin(), v.end());
  printf("%-64s p50 %7.0f ns  p99 %7.0f ns  min %7.0f %s\n", name, v[v.size() / 2], v[v.size() * 99 / 100], v[0], extra);
  fflush(stdout);
}

template <int FENCE, int DEPTH, bool TWO = false>
static void e1(const char* name, uint32_t gap_ns) {
  const uint32_t N = 20000, W = 2000, CAP = 8;
  Pinned ctl = pinned(128), in = pinned(320 * CAP), out = pinned(320 * CAP), st = pinned(64);
  e1_echo<FENCE, DEPTH, TWO><<<1, 32>>>((uint32_t*)ctl.d, (const uint8_t*)in.d, (uint8_t*)out.d, CAP - 1, N, gap_ns, (unsigned long long*)st.d);
  CK(cudaGetLastError());
  auto* c = (uint32_t*)ctl.h;
  auto* tail = reinterpret_cast<std::atomic<uint32_t>*>(c + 2);
  auto* otail = reinterpret_cast<std::atomic<uint32_t>*>(c + 18);
  std::vector<double> v; uint64_t bad = 0;
  for (uint32_t i = 0; i < N; i++) {
    auto a = clk::now();
    uint8_t* slot = (uint8_t*)in.h + (i % CAP) * 320;
    uint32_t* hot = (uint32_t*)slot;
    uint32_t* pay = (uint32_t*)(slot + 256);
    hot[0] = 0x484D4B52u; hot[1] = 2; hot[2] = 1; hot[3] = 7; hot[4] = 64; hot[5] = 0;
    hot[6] = i * 2654435761u; hot[7] = i; hot[8] = 0xFFFFFFFFu; hot[9] = 1; hot[10] = i * 3; hot[11] = 0; hot[12] = i; hot[13] = 0;
    hot[14] = 0; hot[15] = 0;
    for (int k = 0; k < 16; k++) pay[k] = i * 16 + k;
    ((uint32_t*)slot)[21] = host_seal(i, hot, pay, 64);
    tail->store(i + 1, std::memory_order_release);
    auto t0 = clk::now();
    while (otail->load(std::memory_order_acquire) != i + 1) {
      if (std::chrono::duration<double>(clk::now() - t0).count() > 2.0) { printf("%s: stuck at %u\n", name, i); exit(1); }
    }
    uint32_t* rp = (uint32_t*)((uint8_t*)out.h + (i % CAP) * 320 + 256);
    for (int k = 0; k < 16; k++) if (rp[k] != i * 16 + k + 1) bad++;
    if (i >= W) v.push_back(std::chrono::duration<double, std::nano>(clk::now() - a).count());
  }
  CK(cudaDeviceSynchronize());
  char extra[128];
  auto* s = (unsigned long long*)st.h;
  snprintf(extra, sizeof extra, "bad %llu torn %llu polls/msg %.1f", (unsigned long long)bad, s[0], double(s[1]) / N);
  report(name, v, extra);
  cudaFreeHost(ctl.h); cudaFreeHost(in.h); cudaFreeHost(out.h); cudaFreeHost(st.h);
}


// ---- E5: the same echo with the roles of the actor loop: warp 1 polls the bus, warp 0 replies ---
// MODE 0: the bus warp keeps polling while warp 0 writes the reply and releases the tail.
// MODE 1: the bus warp stops polling until warp 0 has published (no read in flight meanwhile).
// MODE 2: warp 0 writes the reply and hands the publish to the bus warp (fence + tail there).
template <int MODE>
__global__ void e5_roles(uint32_t* ctl, const uint8_t* in, uint8_t* out, uint32_t mask, uint32_t n) {
  __shared__ volatile uint32_t ready, published, publish_request;
  __shared__ __align__(16) uint4 entry[8];
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  if (threadIdx.x == 0) { ready = 0; published = 0; publish_request = 0; }
  __syncthreads();
  if (warp == 1) {
    uint32_t head = 0;
    while (head < n) {
      if (MODE == 1 && published != head) continue;  // wait for the publish before the next poll
      if (MODE == 2 && publish_request != published) {
        // Publish for warp 0: its reply stores, then (fence) the tail.
        __threadfence_block();
        if (lane == 0) { asm volatile("fence.acq_rel.sys;" ::: "memory"); st_sys32(ctl + 18, publish_request); }
        __syncwarp();
        published = publish_request;
        continue;
      }
      if (ready != published) continue;  // the handoff slot is busy
      const void* a = poll_address(lane, ctl, in + (size_t)(head & mask) * 320);
      uint4 v = a ? ld_sys(a) : make_uint4(0, 0, 0, 0);
      uint32_t tail = __shfl_sync(0xffffffffu, v.z, 0);
      if (tail == head) continue;
      uint32_t bytes = __shfl_sync(0xffffffffu, v.x, 5), stored = __shfl_sync(0xffffffffu, v.y, 8);
      uint32_t part = 0, w[4] = {v.x, v.y, v.z, v.w};
      if (lane >= 4 && lane < 8) for (int k = 0; k < 4; k++) part += seal_term(w[k], 1 + (lane - 4) * 4 + k);
      else if (lane >= 9 && lane < 13) { uint32_t nb = bytes < 64 ? bytes : 64; for (int k = 0; k < 4; k++) { uint32_t i = (lane - 9) * 4 + k; if (i * 4 < nb) part += seal_term(w[k], 17 + i); } }
      else if (lane == 0) part = seal_term(head, 0);
      for (int o = 16; o; o >>= 1) part += __shfl_xor_sync(0xffffffffu, part, o);
      if (part != stored) continue;
      if (lane >= 4 && lane < 8) entry[lane - 4] = v;
      if (lane >= 9 && lane < 13) entry[4 + lane - 9] = v;
      __syncwarp();
      __threadfence_block();
      head++;
      if (lane == 0) ready = head;
    }
    return;
  }
  uint32_t done = 0;
  while (done < n) {
    while (ready == done) {}
    __threadfence_block();
    uint8_t* slot = out + (size_t)(done & mask) * 320;
    if (lane < 4) st_sys(slot + 16 * lane, entry[lane]);
    if (lane >= 4 && lane < 8) st_sys(slot + 64 + 16 * (lane - 4), make_uint4(done, 0, 0, 0));
    if (lane >= 8 && lane < 12) { uint4 p = entry[4 + lane - 8]; st_sys(slot + 256 + 16 * (lane - 8), make_uint4(p.x + 1, p.y + 1, p.z + 1, p.w + 1)); }
    __syncwarp();
    done++;
    if (MODE == 2) {
      __threadfence_block();
      if (lane == 0) publish_request = done;
      while (published != done) {}
    } else {
      if (lane == 0) { st_sys32(ctl + 17, done); st_rel_sys32(ctl + 18, done); }
      __syncwarp();
      if (lane == 0) published = done;
    }
  }
}

template <int MODE>
static void e5(const char* name) {
  const uint32_t N = 20000, W = 2000, CAP = 8;
  Pinned ctl = pinned(128), in = pinned(320 * CAP), out = pinned(320 * CAP);
  e5_roles<MODE><<<1, 64>>>((uint32_t*)ctl.d, (const uint8_t*)in.d, (uint8_t*)out.d, CAP - 1, N);
  CK(cudaGetLastError());
  auto* c = (uint32_t*)ctl.h;
  auto* tail = reinterpret_cast<std::atomic<uint32_t>*>(c + 2);
  auto* otail = reinterpret_cast<std::atomic<uint32_t>*>(c + 18);
  std::vector<double> v; uint64_t bad = 0;
  for (uint32_t i = 0; i < N; i++) {
    auto a = clk::now();
    uint8_t* slot = (uint8_t*)in.h + (i % CAP) * 320;
    uint32_t* hot = (uint32_t*)slot;
    uint32_t* pay = (uint32_t*)(slot + 256);
    hot[0] = 0x484D4B52u; hot[1] = 2; hot[2] = 1; hot[3] = 7; hot[4] = 64; hot[5] = 0;
    hot[6] = i * 2654435761u; hot[7] = i; hot[8] = 0xFFFFFFFFu; hot[9] = 1; hot[10] = i * 3; hot[11] = 0; hot[12] = i; hot[13] = 0;
    hot[14] = 0; hot[15] = 0;
    for (int k = 0; k < 16; k++) pay[k] = i * 16 + k;
    ((uint32_t*)slot)[21] = host_seal(i, hot, pay, 64);
    tail->store(i + 1, std::memory_order_release);
    auto t0 = clk::now();
    while (otail->load(std::memory_order_acquire) != i + 1) {
      if (std::chrono::duration<double>(clk::now() - t0).count() > 2.0) { printf("%s: stuck at %u\n", name, i); exit(1); }
    }
    uint32_t* rp = (uint32_t*)((uint8_t*)out.h + (i % CAP) * 320 + 256);
    for (int k = 0; k < 16; k++) if (rp[k] != i * 16 + k + 1) bad++;
    if (i >= W) v.push_back(std::chrono::duration<double, std::nano>(clk::now() - a).count());
  }
  CK(cudaDeviceSynchronize());
  char extra[64]; snprintf(extra, sizeof extra, "bad %llu", (unsigned long long)bad);
  report(name, v, extra);
  cudaFreeHost(ctl.h); cudaFreeHost(in.h); cudaFreeHost(out.h);
}

// ---- E2: flag floors ----------------------------------------------------------------------------
__global__ void flag_volatile(volatile uint32_t* in, volatile uint32_t* out, uint32_t n) {
  for (uint32_t i = 1; i <= n; i++) { while (*in != i) {} __threadfence_system(); *out = i; }
}
__global__ void flag_acqrel(uint32_t* in, uint32_t* out, uint32_t n) {
  for (uint32_t i = 1; i <= n; i++) {
    uint32_t v;
    do { asm volatile("ld.acquire.sys.u32 %0, [%1];" : "=r"(v) : "l"(in) : "memory"); } while (v != i);
    asm volatile("st.release.sys.u32 [%0], %1;" :: "l"(out), "r"(i) : "memory");
  }
}
template <bool ACQREL>
static void e2(const char* name) {
  const uint32_t N = 20000;
  Pinned p = pinned(256);
  if (ACQREL) flag_acqrel<<<1, 1>>>((uint32_t*)p.d, (uint32_t*)p.d + 32, N);
  else flag_volatile<<<1, 1>>>((volatile uint32_t*)p.d, (volatile uint32_t*)p.d + 32, N);
  CK(cudaGetLastError());
  auto* in = reinterpret_cast<std::atomic<uint32_t>*>(p.h);
  auto* out = reinterpret_cast<std::atomic<uint32_t>*>((uint32_t*)p.h + 32);
  std::vector<double> v;
  for (uint32_t i = 1; i <= N; i++) {
    auto a = clk::now(); in->store(i, std::memory_order_release);
    while (out->load(std::memory_order_acquire) != i) {}
    if (i > 2000) v.push_back(std::chrono::duration<double, std::nano>(clk::now() - a).count());
  }
  CK(cudaDeviceSynchronize());
  report(name, v);
  cudaFreeHost(p.h);
}

// ---- E3: two persistent blocks through L2 --------------------------------------------------------
// mem: per direction d (0: A->B, 1: B->A) at d*1024: seq word (own 128 B line), claim word (+128),
// slot of 192 B at +256 (hot line, line with the seal at byte 84, payload line).
// MODE 0: flag only (the K2K floor). 1: slot, fence, seq; receiver polls seq then reads the slot.
// 2: as 1, receiver reads seq and slot in one batch and accepts by seal. 3: 1 + claim (atom.add).
// 4: 2 + claim. 5: 2 with fence.sc.gpu instead of fence.acq_rel.gpu.
template <int MODE>
__device__ __forceinline__ void k2k_send(uint8_t* dir, uint32_t i, int lane) {
  uint32_t* seq = (uint32_t*)dir;
  if (MODE == 0) { if (lane == 0) st_gpu32(seq, i); return; }
  if (MODE == 3 || MODE == 4) {
    uint32_t claimed = 0;
    if (lane == 0) asm volatile("atom.relaxed.gpu.add.u32 %0, [%1], 1;" : "=r"(claimed) : "l"(dir + 128) : "memory");
    claimed = __shfl_sync(0xffffffffu, claimed, 0);
    if (claimed + 1 != i) asm volatile("trap;");
  }
  uint8_t* slot = dir + 256;
  uint32_t hot[16];
  for (int k = 0; k < 16; k++) hot[k] = i * 31 + k;
  uint32_t pay[16];
  for (int k = 0; k < 16; k++) pay[k] = i * 16 + k;
  if (lane < 4) st_gpu(slot + 16 * lane, make_uint4(hot[4 * lane], hot[4 * lane + 1], hot[4 * lane + 2], hot[4 * lane + 3]));
  if (lane == 4) {
    uint32_t h = seal_term(i, 0);
    for (int k = 0; k < 16; k++) h += seal_term(hot[k], 1 + k);
    for (int k = 0; k < 16; k++) h += seal_term(pay[k], 17 + k);
    st_gpu(slot + 80, make_uint4(0, h, 0, 0));
  }
  if (lane >= 8 && lane < 12) {
    int j = lane - 8;
    st_gpu(slot + 128 + 16 * j, make_uint4(pay[4 * j], pay[4 * j + 1], pay[4 * j + 2], pay[4 * j + 3]));
  }
  __syncwarp();
  if (lane == 0) {
    if (MODE == 5) asm volatile("fence.sc.gpu;" ::: "memory"); else asm volatile("fence.acq_rel.gpu;" ::: "memory");
    st_gpu32(seq, i);
  }
  __syncwarp();
}
template <int MODE>
__device__ __forceinline__ void k2k_receive(uint8_t* dir, uint32_t i, int lane) {
  uint32_t* seq = (uint32_t*)dir;
  uint8_t* slot = dir + 256;
  if (MODE == 0) { if (lane == 0) while (ld_gpu32(seq) != i) {} __syncwarp(); return; }
  if (MODE == 1 || MODE == 3) {
    if (lane == 0) { while (ld_gpu32(seq) != i) {} asm volatile("fence.acq_rel.gpu;" ::: "memory"); }
    __syncwarp();
    uint4 v = make_uint4(0, 0, 0, 0);
    if (lane >= 8 && lane < 12) v = ld_gpu(slot + 128 + 16 * (lane - 8));
    if (lane >= 8 && lane < 12 && v.x != i * 16 + 4 * (lane - 8)) asm volatile("trap;");
    return;
  }
  // one read: seq + slot lines, accept by seal
  while (true) {
    uint4 v = make_uint4(0, 0, 0, 0);
    if (lane < 4) v = ld_gpu(slot + 16 * lane);
    else if (lane == 4) v = ld_gpu(slot + 80);
    else if (lane >= 8 && lane < 12) v = ld_gpu(slot + 128 + 16 * (lane - 8));
    else if (lane == 12) v = ld_gpu(seq);
    uint32_t s = __shfl_sync(0xffffffffu, v.x, 12);
    uint32_t stored = __shfl_sync(0xffffffffu, v.y, 4);
    uint32_t part = 0;
    uint32_t w[4] = {v.x, v.y, v.z, v.w};
    if (lane < 4) for (int k = 0; k < 4; k++) part += seal_term(w[k], 1 + 4 * lane + k);
    if (lane >= 8 && lane < 12) for (int k = 0; k < 4; k++) part += seal_term(w[k], 17 + 4 * (lane - 8) + k);
    if (lane == 12) part = seal_term(i, 0);
    for (int o = 16; o; o >>= 1) part += __shfl_xor_sync(0xffffffffu, part, o);
    if (s == i && part == stored) break;
  }
}
template <int MODE>
__global__ void e3_k2k(uint8_t* mem, uint32_t n, unsigned long long* times) {
  const int lane = threadIdx.x;
  uint8_t* ab = mem;
  uint8_t* ba = mem + 1024;
  if (blockIdx.x == 0) {
    for (uint32_t i = 1; i <= n; i++) {
      uint64_t t = gtimer();
      k2k_send<MODE>(ab, i, lane);
      k2k_receive<MODE>(ba, i, lane);
      if (lane == 0) times[i - 1] = gtimer() - t;
    }
  } else {
    for (uint32_t i = 1; i <= n; i++) {
      k2k_receive<MODE>(ab, i, lane);
      k2k_send<MODE>(ba, i, lane);
    }
  }
}
template <int MODE>
static void e3(const char* name) {
  const uint32_t N = 20000;
  uint8_t* mem; CK(cudaMalloc(&mem, 2048)); CK(cudaMemset(mem, 0, 2048));
  unsigned long long* times; CK(cudaMalloc(&times, N * 8));
  e3_k2k<MODE><<<2, 32>>>(mem, N, times);
  CK(cudaGetLastError()); CK(cudaDeviceSynchronize());
  std::vector<unsigned long long> h(N); CK(cudaMemcpy(h.data(), times, N * 8, cudaMemcpyDeviceToHost));
  std::vector<double> v; for (uint32_t i = 2000; i < N; i++) v.push_back((double)h[i]);
  report(name, v);
  cudaFree(mem); cudaFree(times);
}

// ---- E4: one poll of host memory, timed on the device (lanes reading 16 B each) ----------------
__global__ void e4_poll(const uint8_t* host, uint32_t lanes, uint32_t n, unsigned long long* out) {
  uint32_t acc = 0;
  uint64_t t = gtimer();
  for (uint32_t i = 0; i < n; i++) {
    uint4 v = threadIdx.x < lanes ? ld_sys(host + 16 * threadIdx.x) : make_uint4(0, 0, 0, 0);
    acc += __shfl_sync(0xffffffffu, v.x, 0) + v.y;
  }
  if (threadIdx.x == 0) { out[0] = gtimer() - t; out[1] = acc; }
}
static void e4(uint32_t lanes) {
  Pinned p = pinned(4096), o = pinned(64);
  const uint32_t N = 20000;
  e4_poll<<<1, 32>>>((const uint8_t*)p.d, lanes, N, (unsigned long long*)o.d);
  CK(cudaGetLastError()); CK(cudaDeviceSynchronize());
  printf("E4 one poll of host memory, %2u lanes x 16 B: %7.0f ns each (mean of %u)\n", lanes, double(((unsigned long long*)o.h)[0]) / N, N);
  cudaFreeHost(p.h); cudaFreeHost(o.h);
}

int main(int argc, char** argv) {
  CK(cudaSetDeviceFlags(cudaDeviceMapHost));
  cudaDeviceProp prop; CK(cudaGetDeviceProperties(&prop, 0));
  printf("device: %s, %d SMs\n", prop.name, prop.multiProcessorCount);
  if (argc > 1 && strcmp(argv[1], "roles") == 0) {
    for (int rep = 0; rep < 2; rep++) {
      e1<2, 1>("E1 one warp, release.sys (reference)", 0);
      e5<0>("E5 bus warp keeps polling, warp 0 releases");
      e5<1>("E5 bus warp pauses until published");
      e5<2>("E5 bus warp publishes (fence + tail)");
    }
    return 0;
  }
  for (int rep = 0; rep < 2; rep++) {
    printf("-- repeat %d\n", rep);
    e2<false>("E2 flag floor, volatile + fence");
    e2<true>("E2 flag floor, acquire/release");
    e4(1); e4(4); e4(13); e4(32);
    e1<0, 1>("E1 slot echo, 1 read/poll, fence.sc.sys, depth 1", 0);
    e1<0, 1, true>("E1 slot echo, 2 reads (tail, then slot), fence.sc.sys", 0);
    e1<1, 1>("E1 slot echo, fence.acq_rel.sys, depth 1", 0);
    e1<2, 1>("E1 slot echo, st.release.sys tail, depth 1", 0);
    e1<3, 1>("E1 slot echo, no fence (incorrect), depth 1", 0);
    e1<0, 2>("E1 slot echo, fence.sc.sys, depth 2, gap 400 ns", 400);
    e1<0, 3>("E1 slot echo, fence.sc.sys, depth 3, gap 300 ns", 300);
    e1<0, 4>("E1 slot echo, fence.sc.sys, depth 4, gap 200 ns", 200);
    e1<1, 3>("E1 slot echo, fence.acq_rel.sys, depth 3, gap 300 ns", 300);
    e3<0>("E3 K2K floor: flag through L2, 2 blocks");
    e3<1>("E3 K2K msg: slot+fence+seq, poll seq then read (2 reads)");
    e3<2>("E3 K2K msg: one read (seq+slot, seal)");
    e3<3>("E3 K2K msg: claim + 2 reads");
    e3<4>("E3 K2K msg: claim + one read");
    e3<5>("E3 K2K msg: one read, fence.sc.gpu");
  }
  return 0;
}
