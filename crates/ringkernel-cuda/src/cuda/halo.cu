// RingKernel CUDA halo exchange: the tiles of a 2D or 3D grid as persistent blocks.
//
// Included after the generated protocol layout (HaloMessageHeader, K2KRoutingTable) and the
// declaration of RkHaloParams. One block per tile, all resident at once (a cooperative launch),
// running `steps` steps without returning to the host. A step:
//   1. send: every face a neighbour needs is written from the tile into that neighbour's inbox
//      slot (the routing table's `inbox_offset`, in the inbox set of the step's parity), header
//      and payload; after a barrier one thread per route publishes the face by storing the step
//      number into the header's `sequence` with a release at device scope;
//   2. receive: one thread per direction waits (acquire) until the slot's sequence is the step,
//      then checks the whole header (source, direction, extent, element size, flags); a wrong
//      face is never applied: the block records it, raises the abort flag every waiting block
//      watches, and stops. A face that does not come within the timeout does the same;
//   3. apply the faces to the ghost cells (loads through L2: `ld.cg`), compute the interior into
//      the other level, swap.
// Neighbours synchronise pairwise through these sequences only: no grid-wide barrier. Two inbox
// sets (by the step's parity) make a slot safe to overwrite: a tile writes its neighbour's slot
// for step t only after it received the neighbour's face of step t-1, which the neighbour sent
// after applying its faces of step t-2 (the same set).
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

// Status words (device memory, read by the host after the run).
#define RK_HALO_MISMATCHES 0
#define RK_HALO_ABORT 1       // 0 running, 1 wrong face, 2 timed out
#define RK_HALO_TILE 2        // the tile that stopped first
#define RK_HALO_FROM 3        // the direction its face was to arrive from
#define RK_HALO_STEP 4        // the step
#define RK_HALO_SEEN 5        // 8 words: the header it found

typedef unsigned int u32h;
typedef unsigned long long u64h;

__device__ __forceinline__ u32h rk_halo_acquire(const u32h* p) {
    u32h v;
    asm volatile("ld.acquire.gpu.global.u32 %0, [%1];" : "=r"(v) : "l"(p) : "memory");
    return v;
}

__device__ __forceinline__ void rk_halo_release(u32h* p, u32h v) {
    asm volatile("st.release.gpu.global.u32 [%0], %1;" ::"l"(p), "r"(v) : "memory");
}

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

extern "C" __global__ void __launch_bounds__(RK_HALO_THREADS, 2) rk_halo_run(RkHaloParams p) {
    extern __shared__ float rk_halo_smem[];
    __shared__ int offsets[26 * 3];
    __shared__ int deltas[RK_HALO_MAX_POINTS];
    __shared__ u32h face_slot[26];   // byte offset of each arriving face's slot (0xFFFFFFFF: none)
    __shared__ u32h face_source[26];

    const u32h tid = threadIdx.x;
    const u32h tile = blockIdx.x;
    const int* geom = (const int*)rk_halo_ptr(p.geom);
    u32h* status = (u32h*)rk_halo_ptr(p.status);
    unsigned char* inboxes = (unsigned char*)rk_halo_ptr(p.inboxes);
    const K2KRoutingTable* table = (const K2KRoutingTable*)rk_halo_ptr(p.routes) + tile;
    const u32h px = p.padded[0], py = p.padded[1];
    const u32h tx = p.tile[0], ty = p.tile[1], tz = p.tile[2];

    for (u32h i = tid; i < 78u; i += RK_HALO_THREADS) offsets[i] = geom[i];
    for (u32h i = tid; i < p.points; i += RK_HALO_THREADS) {
        const int* q = geom + 104 + 3 * i;
        deltas[i] = (q[2] * (int)py + q[1]) * (int)px + q[0];
    }
    // Which slot each direction's face arrives in, and from which tile.
    if (tid < p.directions) {
        const u32h from = (u32h)geom[78 + tid];
        const int* o = geom + 3 * from;
        const int t[3] = {(int)(tile % table->grid_dim_x), (int)((tile / table->grid_dim_x) % table->grid_dim_y),
                          (int)(tile / (table->grid_dim_x * table->grid_dim_y))};
        const int q[3] = {t[0] + o[0], t[1] + o[1], t[2] + o[2]};
        const bool inside = q[0] >= 0 && q[1] >= 0 && q[2] >= 0 && q[0] < (int)table->grid_dim_x &&
                            q[1] < (int)table->grid_dim_y && q[2] < (int)table->grid_dim_z;
        face_slot[tid] = inside ? tile * p.inbox_stride + tid * p.slot_bytes : 0xFFFFFFFFu;
        face_source[tid] = inside ? ((u32h)q[2] * table->grid_dim_y + (u32h)q[1]) * table->grid_dim_x + (u32h)q[0] : 0u;
    }

    float* global_cur = (float*)rk_halo_ptr(p.cells_current) + (u64h)tile * p.padded_len;
    float* global_next = (float*)rk_halo_ptr(p.cells_other) + (u64h)tile * p.padded_len;
    float* cur = global_cur;
    float* next = global_next;
    if (p.on_chip) {
        cur = rk_halo_smem;
        next = rk_halo_smem + p.padded_len;
        for (u32h i = tid; i < p.padded_len; i += RK_HALO_THREADS) {
            cur[i] = global_cur[i];
            next[i] = global_next[i];
        }
    }
    __syncthreads();

    // The interior's rows: `per_row` threads along x, `rows_at_once` rows per pass.
    const u32h per_row = tx < RK_HALO_THREADS ? tx : RK_HALO_THREADS;
    const u32h rows_at_once = RK_HALO_THREADS / per_row;
    const u32h lane_x = tid % per_row, lane_row = tid / per_row;
    const u32h rows = ty * tz;
    const float weight = __uint_as_float(p.weight_bits);
    const float centre_count = (float)p.points;

    u32h stopped = 0;
    u32h done = 0;
    for (; done < p.steps; ++done) {
        const u32h step = p.first_step + done;
        const u32h set = (step & 1u) * p.set_bytes;
        const bool inject_here = p.inject_tile == tile + 1u && p.inject_step == step;

        // 1. Send.
        for (u32h r = 0; r < table->route_count; ++r) {
            const K2KRouteEntry& route = table->routes[r];
            if (route.is_active != 1u) continue;
            if (inject_here && p.inject_kind == 2u) continue;  // test: the face never comes
            const u32h d = route.direction;
            const int* o = offsets + 3 * d;
            u32h extent[3], origin[3];
            for (int a = 0; a < 3; ++a) {
                const u32h pad = p.pad[a];
                extent[a] = o[a] != 0 ? p.width : p.tile[a];
                origin[a] = pad + (o[a] == 1 ? p.tile[a] - p.width : 0u);
            }
            u32h* slot = (u32h*)(inboxes + set + route.inbox_offset);
            if (tid == 0) {
                slot[0] = tile;
                slot[1] = (inject_here && p.inject_kind == 1u) ? d : (d ^ 1u);  // test: a wrong direction
                slot[2] = extent[0];
                slot[3] = extent[1];
                slot[4] = extent[2];
                slot[5] = 4u;
                slot[7] = 0u;
            }
            float* payload = (float*)(slot + 8);
            const u32h total = extent[0] * extent[1] * extent[2];
            for (u32h k = tid; k < total; k += RK_HALO_THREADS) {
                const u32h x = k % extent[0], y = (k / extent[0]) % extent[1], z = k / (extent[0] * extent[1]);
                payload[k] = cur[((origin[2] + z) * py + origin[1] + y) * px + origin[0] + x];
            }
        }
        __syncthreads();
        if (tid < table->route_count && table->routes[tid].is_active == 1u && !(inject_here && p.inject_kind == 2u)) {
            u32h* slot = (u32h*)(inboxes + set + table->routes[tid].inbox_offset);
            rk_halo_release(slot + 6, step);
        }

        // 2. Receive: one thread per direction waits for its face and checks its header.
        u32h bad = 0;
        if (tid < p.directions && face_slot[tid] != 0xFFFFFFFFu) {
            const u32h* slot = (const u32h*)(inboxes + set + face_slot[tid]);
            const u64h start = rk_halo_now();
            u32h spins = 0;
            while (rk_halo_acquire(slot + 6) != step) {
                if (rk_halo_relaxed(&status[RK_HALO_ABORT]) != 0u) {
                    bad = 1;
                    break;
                }
                if ((++spins & 255u) == 0u && rk_halo_now() - start > (u64h)p.timeout_ms * 1000000ull) {
                    rk_halo_stop(status, 2u, tile, (u32h)geom[78 + tid], step, nullptr);
                    bad = 1;
                    break;
                }
            }
            if (!bad) {
                const u32h from = (u32h)geom[78 + tid];
                const int* o = offsets + 3 * from;
                u32h seen[8];
                for (int i = 0; i < 8; ++i) seen[i] = __ldcg(slot + i);
                const bool good = seen[0] == face_source[tid] && seen[1] == from &&
                                  seen[2] == (o[0] != 0 ? p.width : tx) && seen[3] == (o[1] != 0 ? p.width : ty) &&
                                  seen[4] == (o[2] != 0 ? p.width : tz) && seen[5] == 4u && seen[6] == step &&
                                  seen[7] == 0u;
                if (!good) {
                    atomicAdd(&status[RK_HALO_MISMATCHES], 1u);
                    rk_halo_stop(status, 1u, tile, from, step, seen);
                    bad = 1;
                }
            }
        }
        if (__syncthreads_or(bad)) {
            stopped = 1;
            break;
        }

        // 3. Apply the faces to the ghost cells.
        for (u32h s = 0; s < p.directions; ++s) {
            if (face_slot[s] == 0xFFFFFFFFu) continue;
            const u32h from = (u32h)geom[78 + s];
            const int* o = offsets + 3 * from;
            u32h extent[3], origin[3];
            for (int a = 0; a < 3; ++a) {
                extent[a] = o[a] != 0 ? p.width : p.tile[a];
                origin[a] = o[a] == -1 ? 0u : (o[a] == 1 ? p.pad[a] + p.tile[a] : p.pad[a]);
            }
            const float* payload = (const float*)(inboxes + set + face_slot[s] + 32u);
            const u32h total = extent[0] * extent[1] * extent[2];
            for (u32h k = tid; k < total; k += RK_HALO_THREADS) {
                const u32h x = k % extent[0], y = (k / extent[0]) % extent[1], z = k / (extent[0] * extent[1]);
                cur[((origin[2] + z) * py + origin[1] + y) * px + origin[0] + x] = __ldcg(payload + k);
            }
        }
        __syncthreads();

        // 4. Compute the interior into the other level.
        if (lane_row < rows_at_once) {
            for (u32h row = lane_row; row < rows; row += rows_at_once) {
                const u32h y = row % ty, z = row / ty;
                const u32h base = ((z + p.pad[2]) * py + y + p.pad[1]) * px + p.pad[0];
                for (u32h x = lane_x; x < tx; x += per_row) {
                    const u32h at = base + x;
                    float sum = 0.0f;
                    for (u32h k = 0; k < p.points; ++k) sum = __fadd_rn(sum, cur[(int)at + deltas[k]]);
                    if (p.stencil == 2u) {
                        const float u = cur[at];
                        const float laplacian = __fsub_rn(sum, __fmul_rn(centre_count, u));
                        next[at] = __fadd_rn(__fsub_rn(__fadd_rn(u, u), next[at]), __fmul_rn(weight, laplacian));
                    } else {
                        next[at] = __fmul_rn(sum, weight);
                    }
                }
            }
        }
        __syncthreads();
        float* t = cur;
        cur = next;
        next = t;
        float* g = global_cur;
        global_cur = global_next;
        global_next = g;
    }

    if (p.on_chip) {
        for (u32h i = tid; i < p.padded_len; i += RK_HALO_THREADS) {
            global_cur[i] = cur[i];
            global_next[i] = next[i];
        }
    }
    if (tid == 0 && !stopped) atomicAdd(&status[RK_HALO_SEEN + 8], 1u);  // tiles that ran every step
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
