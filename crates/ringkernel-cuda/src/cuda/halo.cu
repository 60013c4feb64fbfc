// RingKernel CUDA halo exchange: the tiles of a 2D or 3D grid as persistent blocks.
//
// Included after the generated protocol layout (HaloMessageHeader, K2KRoutingTable) and the
// declaration of RkHaloParams. One block per tile, all resident at once (a cooperative launch),
// running `steps` steps without returning to the host. A step:
//   1. send: every face a neighbour needs goes from the tile into that neighbour's inbox slot (in
//      the inbox set of the step's parity) as (word, step) pairs, one 8-byte store each: eight
//      header words (source, direction, extent, element size, sequence, flags), then the payload.
//      No fence: each pair carries its own sequence (NCCL's LL protocol). A fence per face cost
//      more than the rest of a small step (BENCHMARKS.md);
//   2. receive: every thread waits for its share of each arriving face's pairs until their step
//      is this step, checks the header's words, and writes the payload into the ghost cells. A
//      wrong header word stops the run before any cell is computed from that face: the block
//      records it and raises the abort flag every waiting thread watches. A face that does not
//      come within the timeout stops the run the same way;
//   3. compute the interior into the other level; swap.
// Neighbours synchronise pairwise through these sequences only: no grid-wide barrier. Two inbox
// sets (by the step's parity) make a slot safe to overwrite: a tile writes its neighbour's slot
// for step t only after it received the neighbour's face of step t-1, which the neighbour sent
// after it had read (and used) its faces of step t-2 from the same set.
//
// The tile lives in shared memory across all steps when both levels fit (`on_chip`), else in
// global memory. The update is the host's (ringkernel_core::halo::apply_stencil): the points
// summed in the host's order, then `sum * weight`, or for the wave
// ((u + u) - previous) + c2 * (sum - n * u), with round-to-nearest intrinsics so that no
// multiply-add is fused and the result equals the CPU's bit for bit.

#ifndef RK_HALO_THREADS
#define RK_HALO_THREADS 512
#endif
#define RK_HALO_MAX_POINTS 512u
// Rows ahead of its loads a thread prefetches into L2 (tiles in global memory).
#define RK_HALO_PREFETCH_ROWS 16u
// Pairs a thread loads before it looks at any of them.
#define RK_HALO_AHEAD 2

// Status words (device memory, read by the host after the run).
#define RK_HALO_MISMATCHES 0
#define RK_HALO_ABORT 1       // 0 running, 1 wrong face, 2 timed out
#define RK_HALO_TILE 2        // the tile that stopped first
#define RK_HALO_FROM 3        // the direction its face was to arrive from
#define RK_HALO_STEP 4        // the step
#define RK_HALO_SEEN 5        // 8 words: the header word index, the value found, the value expected
#define RK_HALO_COMPLETED 13  // tiles that ran every step
#define RK_HALO_PROFILE 16    // profile_tile's thread 0, ns summed over the run's steps (u64 each):
                              // sending, receiving (until every thread of the block has its
                              // faces), computing (until the block's barrier)

typedef unsigned int u32h;
typedef unsigned long long u64h;

__device__ __forceinline__ u32h rk_halo_relaxed(const u32h* p) {
    u32h v;
    asm volatile("ld.relaxed.gpu.global.u32 %0, [%1];" : "=r"(v) : "l"(p) : "memory");
    return v;
}

__device__ __forceinline__ u64h rk_halo_now() {
    u64h t;
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
    return t;
}

__device__ __forceinline__ void* rk_halo_ptr(const unsigned int words[2]) {
    return (void*)(((u64h)words[1] << 32) | (u64h)words[0]);
}

// Records the first stop of the run (later ones only count).
__device__ void rk_halo_stop(u32h* status, u32h code, u32h tile, u32h from, u32h step, const u32h* seen) {
    if (atomicCAS(&status[RK_HALO_ABORT], 0u, code) == 0u) {
        status[RK_HALO_TILE] = tile;
        status[RK_HALO_FROM] = from;
        status[RK_HALO_STEP] = step;
        for (int i = 0; i < 8; ++i) {
            status[RK_HALO_SEEN + i] = seen ? seen[i] : 0xFFFFFFFFu;
        }
        __threadfence();
    }
}

// One cell's update from its points' values `v` (in the host's order), as the host computes it.
template <int NP>
__device__ __forceinline__ float rk_halo_update(const float (&v)[NP], u32h stencil, float weight, float centre,
                                                float previous, float count) {
    float sum = 0.0f;
#pragma unroll
    for (int k = 0; k < NP; ++k) sum = __fadd_rn(sum, v[k]);
    if (stencil == 2u) {
        const float laplacian = __fsub_rn(sum, __fmul_rn(count, centre));
        return __fadd_rn(__fsub_rn(__fadd_rn(centre, centre), previous), __fmul_rn(weight, laplacian));
    }
    return __fmul_rn(sum, weight);
}

// Loads from the tile: shared memory, or global memory through L1 (`ld.global.ca`: the block's
// own writes of the previous step are visible to it after the barrier).
template <bool ON_CHIP>
__device__ __forceinline__ float rk_halo_load(const float* p) {
    if (ON_CHIP) return *p;
    return __ldca(p);
}

// The interior of `cur` into `next`: each thread walks down a column of rows (x fixed), several
// rows in flight, so that enough loads are outstanding to keep memory busy. NP > 0: that many
// points, their offsets in registers; NP == 0: any count, offsets from shared memory.
template <bool ON_CHIP, int NP, bool WAVE>
__device__ void rk_halo_compute(const RkHaloParams& p, const float* __restrict__ cur, float* __restrict__ next,
                                const int* deltas, u32h lane_x, u32h lane_row, u32h per_row, u32h rows_at_once) {
    const u32h tx = p.tile[0], ty = p.tile[1];
    const u32h px = p.padded[0], py = p.padded[1];
    const u32h rows = ty * p.tile[2];
    const float weight = __uint_as_float(p.weight_bits);
    const float count = (float)p.points;
    if (lane_row >= rows_at_once) return;
    constexpr int N = NP > 0 ? NP : 1;
    int d[N];
#pragma unroll
    for (int k = 0; k < N; ++k) d[k] = NP > 0 ? deltas[k] : 0;
    // B rows at a time: every load of the B rows is issued before the first store (the stores
    // go through a generic pointer that the compiler cannot prove apart from the loads).
    constexpr int B = NP == 0 ? 1 : (N <= 5 ? 4 : 2);
    const u32h step_rows = rows_at_once * B;
    for (u32h x = lane_x; x < tx; x += per_row) {
        for (u32h row0 = lane_row; row0 < rows; row0 += step_rows) {
            float v[B][N];
            float centre[B], previous[B];
            u32h at[B];
            if (!ON_CHIP) {
                // Rows further down into L2 ahead of their loads: more of memory's latency hidden
                // than the registers of B rows allow.
                const u32h ahead = row0 + RK_HALO_PREFETCH_ROWS * rows_at_once;
                if (ahead < rows) {
                    const u32h y = ahead % ty, z = ahead / ty;
                    const float* q = cur + ((z + p.pad[2]) * py + y + p.pad[1]) * px + p.pad[0] + x;
                    asm volatile("prefetch.global.L2 [%0];" ::"l"(q));
                }
            }
#pragma unroll
            for (int b = 0; b < B; ++b) {
                const u32h row = row0 + b * rows_at_once;
                const u32h r = row < rows ? row : lane_row;  // past the end: a harmless reload
                const u32h y = r % ty, z = r / ty;
                at[b] = ((z + p.pad[2]) * py + y + p.pad[1]) * px + p.pad[0] + x;
                centre[b] = WAVE ? rk_halo_load<ON_CHIP>(cur + at[b]) : 0.0f;
                previous[b] = WAVE ? rk_halo_load<ON_CHIP>(next + at[b]) : 0.0f;
                if (NP > 0) {
#pragma unroll
                    for (int k = 0; k < N; ++k) v[b][k] = rk_halo_load<ON_CHIP>(cur + (int)at[b] + d[k]);
                } else {
                    float sum = 0.0f;
                    for (u32h k = 0; k < p.points; ++k) {
                        sum = __fadd_rn(sum, rk_halo_load<ON_CHIP>(cur + (int)at[b] + deltas[k]));
                    }
                    // The sum is complete: adding it to 0 again changes no bit (a -0 sum aside,
                    // which the host's sum from 0 turns into +0 as well).
                    v[b][0] = sum;
                }
            }
#pragma unroll
            for (int b = 0; b < B; ++b) {
                if (row0 + b * rows_at_once < rows) {
                    next[at[b]] = rk_halo_update<N>(v[b], WAVE ? 2u : 0u, weight, centre[b], previous[b], count);
                }
            }
        }
    }
}

template <bool ON_CHIP, bool WAVE>
__device__ void rk_halo_compute_points(const RkHaloParams& p, const float* cur, float* next, const int* deltas,
                                       u32h lane_x, u32h lane_row, u32h per_row, u32h rows_at_once) {
    switch (p.points) {
    case 4: rk_halo_compute<ON_CHIP, 4, WAVE>(p, cur, next, deltas, lane_x, lane_row, per_row, rows_at_once); break;
    case 5: rk_halo_compute<ON_CHIP, 5, WAVE>(p, cur, next, deltas, lane_x, lane_row, per_row, rows_at_once); break;
    case 6: rk_halo_compute<ON_CHIP, 6, WAVE>(p, cur, next, deltas, lane_x, lane_row, per_row, rows_at_once); break;
    case 7: rk_halo_compute<ON_CHIP, 7, WAVE>(p, cur, next, deltas, lane_x, lane_row, per_row, rows_at_once); break;
    default: rk_halo_compute<ON_CHIP, 0, WAVE>(p, cur, next, deltas, lane_x, lane_row, per_row, rows_at_once); break;
    }
}

template <bool ON_CHIP>
__device__ void rk_halo_compute_any(const RkHaloParams& p, const float* cur, float* next, const int* deltas,
                                    u32h lane_x, u32h lane_row, u32h per_row, u32h rows_at_once) {
    if (p.stencil == 2u) {
        rk_halo_compute_points<ON_CHIP, true>(p, cur, next, deltas, lane_x, lane_row, per_row, rows_at_once);
    } else {
        rk_halo_compute_points<ON_CHIP, false>(p, cur, next, deltas, lane_x, lane_row, per_row, rows_at_once);
    }
}

// Word `k` of a face's header (HaloMessageHeader: source, direction, width, height, depth,
// element size, sequence, flags), without an array in local memory.
__device__ __forceinline__ u32h rk_halo_header_word(u32h k, u32h source, u32h direction, const u32h (&extent)[3],
                                                    u32h step) {
    switch (k) {
    case 0: return source;
    case 1: return direction;
    case 2: return extent[0];
    case 3: return extent[1];
    case 4: return extent[2];
    case 5: return 4u;
    case 6: return step;
    default: return 0u;
    }
}

__device__ __forceinline__ void rk_halo_put(u64h* at, u32h word, u32h step) {
    const u64h pair = ((u64h)step << 32) | (u64h)word;
    // No "memory" clobber: the LL protocol orders nothing, and a clobber would make the compiler
    // reload everything it holds from memory after each store.
    asm volatile("st.relaxed.gpu.global.u64 [%0], %1;" ::"l"(at), "l"(pair));
}

__device__ __forceinline__ u64h rk_halo_get(const u64h* at) {
    u64h pair;
    asm volatile("ld.relaxed.gpu.global.u64 %0, [%1];" : "=l"(pair) : "l"(at));
    return pair;
}

extern "C" __global__ void __launch_bounds__(RK_HALO_THREADS, 2) rk_halo_run(RkHaloParams p) {
    extern __shared__ float rk_halo_smem[];
    __shared__ int offsets[26 * 3];
    __shared__ int deltas[RK_HALO_MAX_POINTS];
    __shared__ u32h face_source[26];
    __shared__ u32h route_direction[26];  // the tile's active routes, in table order

    const u32h tid = threadIdx.x;
    const u32h tile = blockIdx.x;
    const int* geom = (const int*)rk_halo_ptr(p.geom);
    u32h* status = (u32h*)rk_halo_ptr(p.status);
    unsigned char* inboxes = (unsigned char*)rk_halo_ptr(p.inboxes);
    const K2KRoutingTable* table = (const K2KRoutingTable*)rk_halo_ptr(p.routes) + tile;
    const u32h px = p.padded[0], py = p.padded[1];
    const u32h tx = p.tile[0];
    // This tile's face tables (built by the host, read-only here).
    const u32h* tables = (const u32h*)rk_halo_ptr(p.tables);
    const u64h plane = (u64h)p.tiles * p.table_stride;
    const u32h* send_from = tables + (u64h)tile * p.table_stride;
    const u32h* send_to = send_from + plane;
    const u32h* recv_from = send_from + 2 * plane;
    const u32h* recv_to = send_from + 3 * plane;
    if (p.on_chip & 2u) {
        // The tables fit beside the levels: read them from shared memory on every step.
        u32h* copy = (u32h*)(rk_halo_smem + ((p.on_chip & 1u) ? 2 * p.padded_len : 0u));
        for (u32h i = tid; i < p.table_stride; i += RK_HALO_THREADS) {
            copy[i] = send_from[i];
            copy[p.table_stride + i] = send_to[i];
            copy[2 * p.table_stride + i] = recv_from[i];
            copy[3 * p.table_stride + i] = recv_to[i];
        }
        send_from = copy;
        send_to = copy + p.table_stride;
        recv_from = copy + 2 * p.table_stride;
        recv_to = copy + 3 * p.table_stride;
    }
    const u32h send_count = __ldg((const u32h*)rk_halo_ptr(p.counts) + 2 * tile);
    const u32h recv_count = __ldg((const u32h*)rk_halo_ptr(p.counts) + 2 * tile + 1);

    for (u32h i = tid; i < 78u; i += RK_HALO_THREADS) offsets[i] = geom[i];
    for (u32h i = tid; i < p.points; i += RK_HALO_THREADS) {
        const int* q = geom + 104 + 3 * i;
        deltas[i] = (q[2] * (int)py + q[1]) * (int)px + q[0];
    }
    // From which tile each direction's face arrives (its header's source).
    if (tid < p.directions) {
        const u32h from = (u32h)geom[78 + tid];
        const int* o = geom + 3 * from;
        const int t[3] = {(int)(tile % table->grid_dim_x), (int)((tile / table->grid_dim_x) % table->grid_dim_y),
                          (int)(tile / (table->grid_dim_x * table->grid_dim_y))};
        const int q[3] = {t[0] + o[0], t[1] + o[1], t[2] + o[2]};
        const bool inside = q[0] >= 0 && q[1] >= 0 && q[2] >= 0 && q[0] < (int)table->grid_dim_x &&
                            q[1] < (int)table->grid_dim_y && q[2] < (int)table->grid_dim_z;
        face_source[tid] = inside ? ((u32h)q[2] * table->grid_dim_y + (u32h)q[1]) * table->grid_dim_x + (u32h)q[0] : 0u;
    }
    if (tid == 0) {
        u32h n = 0;
        for (u32h r = 0; r < table->route_count; ++r) {
            if (table->routes[r].is_active != 1u) continue;
            route_direction[n] = table->routes[r].direction;
            ++n;
        }
    }
    __syncthreads();

    float* global_cur = (float*)rk_halo_ptr(p.cells_current) + (u64h)tile * p.padded_len;
    float* global_next = (float*)rk_halo_ptr(p.cells_other) + (u64h)tile * p.padded_len;
    float* cur = global_cur;
    float* next = global_next;
    if (p.on_chip & 1u) {
        cur = rk_halo_smem;
        next = rk_halo_smem + p.padded_len;
        for (u32h i = tid; i < p.padded_len; i += RK_HALO_THREADS) {
            cur[i] = global_cur[i];
            next[i] = global_next[i];
        }
    }
    __syncthreads();

    // The interior's columns: `per_row` threads along x, `rows_at_once` rows side by side.
    const u32h per_row = tx < RK_HALO_THREADS ? tx : RK_HALO_THREADS;
    const u32h rows_at_once = RK_HALO_THREADS / per_row;
    const u32h lane_x = tid % per_row, lane_row = tid / per_row;
    const u64h timeout_ns = (u64h)p.timeout_ms * 1000000ull;

    u32h stopped = 0;
    const bool profiling = tile == p.profile_tile && tid == 0;
    u64h phase[3] = {0, 0, 0};
    for (u32h done = 0; done < p.steps; ++done) {
        const u64h t0 = profiling ? rk_halo_now() : 0;
        const u32h step = p.first_step + done;
        const u32h set = (step & 1u) * p.set_bytes;
        u64h* pairs_of_set = (u64h*)(inboxes + set);
        const bool inject_here = p.inject_tile == tile + 1u && p.inject_step == step;

        // 1. Send: every word of every face as a (word, step) pair in one 8-byte store, so that
        //    the receiver checks each word on its own and no fence is needed. The header first
        //    (8 pairs), then the payload.
        const u32h sends = (inject_here && p.inject_kind == 2u) ? 0u : send_count;  // test: no faces
        for (u32h i = tid; i < sends; i += RK_HALO_THREADS) {
            const u32h from = send_from[i];
            u32h word;
            if (from & 0x80000000u) {
                const u32h r = (from >> 3) & 0xFFFFFu, k = from & 7u;
                const u32h d = route_direction[r];
                const int* o = offsets + 3 * d;
                const u32h extent[3] = {o[0] != 0 ? p.width : p.tile[0], o[1] != 0 ? p.width : p.tile[1],
                                        o[2] != 0 ? p.width : p.tile[2]};
                word = rk_halo_header_word(k, tile, (inject_here && p.inject_kind == 1u) ? d : (d ^ 1u), extent, step);
            } else {
                word = __float_as_uint(cur[from]);
            }
            rk_halo_put(pairs_of_set + send_to[i], word, step);
        }

        const u64h t1 = profiling ? rk_halo_now() : 0;

        // 2. Receive: the pairs of all arriving faces, numbered one after the other, are shared
        //    out over the threads; each thread loads RK_HALO_AHEAD of its pairs before it looks at
        //    any (one memory round trip for all of them), waits for those not there yet, checks
        //    the header's words and writes the payload's into the ghost cells.
        u32h bad = 0;
        for (u32h base = tid; base < recv_count && !bad; base += RK_HALO_THREADS * RK_HALO_AHEAD) {
            u64h got[RK_HALO_AHEAD];
            const u64h* where[RK_HALO_AHEAD];
            u32h to[RK_HALO_AHEAD];
#pragma unroll
            for (int b = 0; b < RK_HALO_AHEAD; ++b) {
                const u32h i = base + b * RK_HALO_THREADS;
                where[b] = nullptr;
                if (i < recv_count) {
                    where[b] = pairs_of_set + recv_from[i];
                    to[b] = recv_to[i];
                    got[b] = rk_halo_get(where[b]);
                }
            }
#pragma unroll
            for (int b = 0; b < RK_HALO_AHEAD; ++b) {
                if (where[b] == nullptr || bad) continue;
                u64h pair = got[b];
                if ((u32h)(pair >> 32) != step) {
                    const u64h start = rk_halo_now();
                    u32h spins = 0;
                    while ((u32h)(pair >> 32) != step) {
                        if ((++spins & 255u) == 0u) {
                            if (rk_halo_relaxed(&status[RK_HALO_ABORT]) != 0u) {
                                bad = 1;
                                break;
                            }
                            if (rk_halo_now() - start > timeout_ns) {
                                // The direction is that of the slot: found from the pair's place.
                                const u32h slot = (u32h)((where[b] - pairs_of_set) * 8u - tile * p.inbox_stride) / p.slot_bytes;
                                rk_halo_stop(status, 2u, tile, (u32h)geom[78 + slot], step, nullptr);
                                bad = 1;
                                break;
                            }
                        }
                        pair = rk_halo_get(where[b]);
                    }
                    if (bad) break;
                }
                const u32h word = (u32h)pair;
                if (to[b] & 0x80000000u) {
                    const u32h s = (to[b] >> 3) & 0xFFFFFu, k = to[b] & 7u;
                    const u32h from = (u32h)geom[78 + s];
                    const int* o = offsets + 3 * from;
                    const u32h extent[3] = {o[0] != 0 ? p.width : p.tile[0], o[1] != 0 ? p.width : p.tile[1],
                                            o[2] != 0 ? p.width : p.tile[2]};
                    const u32h expected = rk_halo_header_word(k, face_source[s], from, extent, step);
                    if (word != expected) {
                        const u32h seen[8] = {k, word, expected, 0u, 0u, 0u, 0u, 0u};
                        atomicAdd(&status[RK_HALO_MISMATCHES], 1u);
                        rk_halo_stop(status, 1u, tile, from, step, seen);
                        bad = 1;
                    }
                } else {
                    cur[to[b]] = __uint_as_float(word);
                }
            }
        }
        // A face written into the ghost cells is read only after this barrier, and only if every
        // thread found every pair of every face right.
        if (__syncthreads_or(bad)) {
            stopped = 1;
            break;
        }
        const u64h t2 = profiling ? rk_halo_now() : 0;

        // 3. Compute the interior into the other level.
        if (p.on_chip & 1u) {
            rk_halo_compute_any<true>(p, cur, next, deltas, lane_x, lane_row, per_row, rows_at_once);
        } else {
            rk_halo_compute_any<false>(p, cur, next, deltas, lane_x, lane_row, per_row, rows_at_once);
        }
        __syncthreads();
        if (profiling) {
            const u64h t3 = rk_halo_now();
            phase[0] += t1 - t0;
            phase[1] += t2 - t1;
            phase[2] += t3 - t2;
        }
        float* t = cur;
        cur = next;
        next = t;
        float* g = global_cur;
        global_cur = global_next;
        global_next = g;
    }

    if (p.on_chip & 1u) {
        for (u32h i = tid; i < p.padded_len; i += RK_HALO_THREADS) {
            global_cur[i] = cur[i];
            global_next[i] = next[i];
        }
    }
    if (tid == 0 && !stopped) atomicAdd(&status[RK_HALO_COMPLETED], 1u);
    if (profiling) {
        u64h* profile = (u64h*)(status + RK_HALO_PROFILE);
        for (int i = 0; i < 3; ++i) profile[i] = phase[i];
    }
}

// The same arithmetic written plainly, one thread per cell, one launch per step (the baseline of
// `ringkernel bench-stencil`): the Jacobi sweep of the von Neumann neighbourhood of width 1,
// points summed in the host's order (z, y, x ascending; zeros outside the grid), times `weight`.
extern "C" __global__ void rk_plain_jacobi(const float* in, float* out, u32h nx, u32h ny, u32h nz, float weight) {
    const u32h x = blockIdx.x * blockDim.x + threadIdx.x;
    const u32h y = blockIdx.y * blockDim.y + threadIdx.y;
    const u32h z = blockIdx.z * blockDim.z + threadIdx.z;
    if (x >= nx || y >= ny || z >= nz) return;
    const u64h plane = (u64h)nx * ny;
    const u64h i = z * plane + (u64h)y * nx + x;
    float sum = 0.0f;
    if (nz > 1) sum = __fadd_rn(sum, z > 0 ? in[i - plane] : 0.0f);
    sum = __fadd_rn(sum, y > 0 ? in[i - nx] : 0.0f);
    sum = __fadd_rn(sum, x > 0 ? in[i - 1] : 0.0f);
    sum = __fadd_rn(sum, x + 1 < nx ? in[i + 1] : 0.0f);
    sum = __fadd_rn(sum, y + 1 < ny ? in[i + nx] : 0.0f);
    if (nz > 1) sum = __fadd_rn(sum, z + 1 < nz ? in[i + plane] : 0.0f);
    out[i] = __fmul_rn(sum, weight);
}
