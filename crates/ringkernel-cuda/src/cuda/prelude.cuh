// RingKernel CUDA actor runtime, part 1 of 2: the handler ABI.
//
// Included after the generated layout header (ringkernel_layout.cuh, plus the pool's own structs)
// and before the user's handler. A handler is one function,
//
//     __device__ void rk_handle(RkContext& ctx);
//
// called for each valid message, in order, by every handler thread of the actor's block
// (RK_THREADS threads). Every rk_* call below is block-cooperative: all handler threads call it,
// with the same arguments, and all get the same result. Data a handler passes to
// rk_reply/rk_emit/rk_send_* may live in the payload, the state, or any memory every thread can
// read.
//
// The block also runs two service warps that never enter a handler: one reads the host's rings
// over the bus, one watches the K2K inbox in device memory. Inside handler code `__syncthreads()`
// (and its _count/_and/_or forms) and `blockDim` therefore mean the handler threads: this header
// redefines them so (a barrier over RK_THREADS threads, blockDim.x == RK_THREADS). threadIdx.x of
// a handler thread is below RK_THREADS. Block-wide cooperative-groups syncs are not supported.
//
// The handler sees:
//   ctx.header        the message header (a private copy in shared memory; message_id and
//                     dest_kernel read as 0)
//   ctx.payload       the payload (a private copy), ctx.payload_bytes long
//   ctx.message_type  the header's message type
//   ctx.received_at   the actor's hybrid logical clock after receiving the message
//   ctx.state         the actor's state in device memory, ctx.state_bytes long (kept between
//                     messages; initialised from the KernelSpec's state)
//   ctx.kernel_number this actor's number (source_kernel of what it sends)
// and can:
//   rk_reply(ctx, type, data, len)           reply to the sender (host or kernel), REPLY flag set
//   rk_emit(ctx, type, data, len)            send to the host, same correlation id, not a reply
//   rk_send_to(ctx, "name", type, data, len) send to another actor's K2K inbox by kernel id
//   rk_send_to_number(ctx, n, type, data, len)  ... by kernel number
//   rk_error(ctx, reason)                    refuse the message: the sender gets a handler error
//                                            with `reason` (nullptr: the last failed send's
//                                            reason); the actor carries on
//   rk_fail(ctx, reason)                     fail the actor (like a panic in a CPU handler): the
//                                            sender gets KernelFault with `reason`, the actor
//                                            stops, the host takes back what it had not handled
// Sends return RK_OK or an RK_ERROR_* code: a full K2K inbox is RK_ERROR_K2K_INBOX_FULL (never a
// drop), an unknown or stopped destination RK_ERROR_HANDLER_ERROR; the reason is kept for
// rk_error(ctx, nullptr). Replies and emits reach the host, and K2K sends their receiver, when the
// batch of messages being handled ends (the loop publishes once per batch); a handler that
// returns has therefore sent everything it sent.

typedef unsigned int rk_u32;
typedef unsigned long long rk_u64;

#ifndef RK_THREADS
#define RK_THREADS 128
#endif
#define RK_OK 0u
#define RK_HANDLER_WARPS (RK_THREADS / 32)
// The bus warp and the inbox warp follow the handler threads.
#define RK_BUS_WARP RK_HANDLER_WARPS
#define RK_INBOX_WARP (RK_HANDLER_WARPS + 1)
#define RK_BLOCK_THREADS (RK_THREADS + 64)
// Messages the bus warp (host) and the inbox warp (K2K) may hold, read but not yet handled.
#define RK_HOST_QUEUE 16u
#define RK_K2K_QUEUE 8u
#define RK_REASON_BYTES 200
#define RK_ROUTE_CAPACITY 256
// Routes an actor may have entered at once, and K2K sends it may have claimed, before it
// publishes them; batches a route stays entered at most.
#define RK_ROUTES_ENTERED 8u
#define RK_K2K_PENDING 16u
#define RK_ROUTE_HOLD_BATCHES 64u
// Barrier ids: 0 is the whole block; 1 the handler threads.
#define RK_HANDLER_BARRIER 1

struct RkTimestamp {
    rk_u64 physical;
    rk_u32 logical;
    rk_u32 node;
};

struct RkContext {
    const MessageHeader* header;
    const unsigned char* payload;
    rk_u32 payload_bytes;
    rk_u32 message_type;
    RkTimestamp received_at;
    unsigned char* state;
    rk_u32 state_bytes;
    rk_u32 kernel_number;
    // Internal: set by rk_* calls, read by the loop.
    rk_u32 outcome;      // RK_OK, RK_ERROR_HANDLER_ERROR (rk_error) or RK_ERROR_HANDLER_FAULT (rk_fail)
    rk_u32 send_error;   // code of the last failed send
    char reason[RK_REASON_BYTES];
    char send_reason[RK_REASON_BYTES];
};

// ---- barriers and memory access ----------------------------------------------------------------
// The handler threads' barrier (what __syncthreads() means in handler code).
__device__ __forceinline__ void rk_sync() { asm volatile("bar.sync %0, %1;" : : "n"(RK_HANDLER_BARRIER), "n"(RK_THREADS) : "memory"); }
__device__ __forceinline__ int rk_sync_count(int predicate) {
    int count;
    asm volatile("{ .reg .pred p; setp.ne.s32 p, %3, 0; bar.red.popc.u32 %0, %1, %2, p; }"
                 : "=r"(count) : "n"(RK_HANDLER_BARRIER), "n"(RK_THREADS), "r"(predicate) : "memory");
    return count;
}
// The whole block (handler threads and service warps).
__device__ __forceinline__ void rk_block_sync() { asm volatile("bar.sync 0;" : : : "memory"); }

__device__ __forceinline__ rk_u32 rk_ld_relaxed_sys(const rk_u32* p) {
    rk_u32 v;
    asm volatile("ld.relaxed.sys.u32 %0, [%1];" : "=r"(v) : "l"(p) : "memory");
    return v;
}
__device__ __forceinline__ void rk_st_relaxed_sys(rk_u32* p, rk_u32 v) {
    asm volatile("st.relaxed.sys.u32 [%0], %1;" : : "l"(p), "r"(v) : "memory");
}
__device__ __forceinline__ uint4 rk_ld_relaxed_sys_v4(const void* p) {
    uint4 v;
    asm volatile("ld.relaxed.sys.v4.u32 {%0,%1,%2,%3}, [%4];"
                 : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w) : "l"(p) : "memory");
    return v;
}
__device__ __forceinline__ void rk_st_relaxed_sys_v4(void* p, uint4 v) {
    asm volatile("st.relaxed.sys.v4.u32 [%0], {%1,%2,%3,%4};" : : "l"(p), "r"(v.x), "r"(v.y), "r"(v.z), "r"(v.w) : "memory");
}
__device__ __forceinline__ rk_u32 rk_ld_acquire_gpu(const rk_u32* p) {
    rk_u32 v;
    asm volatile("ld.acquire.gpu.u32 %0, [%1];" : "=r"(v) : "l"(p) : "memory");
    return v;
}
__device__ __forceinline__ rk_u32 rk_ld_relaxed_gpu(const rk_u32* p) {
    rk_u32 v;
    asm volatile("ld.relaxed.gpu.u32 %0, [%1];" : "=r"(v) : "l"(p) : "memory");
    return v;
}
__device__ __forceinline__ uint4 rk_ld_relaxed_gpu_v4(const void* p) {
    uint4 v;
    asm volatile("ld.relaxed.gpu.v4.u32 {%0,%1,%2,%3}, [%4];"
                 : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w) : "l"(p) : "memory");
    return v;
}
__device__ __forceinline__ void rk_st_release_gpu(rk_u32* p, rk_u32 v) {
    asm volatile("st.release.gpu.u32 [%0], %1;" : : "l"(p), "r"(v) : "memory");
}
__device__ __forceinline__ void rk_st_relaxed_gpu(rk_u32* p, rk_u32 v) {
    asm volatile("st.relaxed.gpu.u32 [%0], %1;" : : "l"(p), "r"(v) : "memory");
}
__device__ __forceinline__ void rk_st_relaxed_gpu_v4(void* p, uint4 v) {
    asm volatile("st.relaxed.gpu.v4.u32 [%0], {%1,%2,%3,%4};" : : "l"(p), "r"(v.x), "r"(v.y), "r"(v.z), "r"(v.w) : "memory");
}
__device__ __forceinline__ rk_u32 rk_add_relaxed_gpu(rk_u32* p, rk_u32 v) {
    rk_u32 old;
    asm volatile("atom.relaxed.gpu.add.u32 %0, [%1], %2;" : "=r"(old) : "l"(p), "r"(v) : "memory");
    return old;
}
__device__ __forceinline__ rk_u32 rk_cas_relaxed_gpu(rk_u32* p, rk_u32 expected, rk_u32 desired) {
    rk_u32 old;
    asm volatile("atom.relaxed.gpu.cas.b32 %0, [%1], %2, %3;" : "=r"(old) : "l"(p), "r"(expected), "r"(desired) : "memory");
    return old;
}
__device__ __forceinline__ rk_u32 rk_add_release_gpu(rk_u32* p, rk_u32 v) {
    rk_u32 old;
    asm volatile("atom.release.gpu.add.u32 %0, [%1], %2;" : "=r"(old) : "l"(p), "r"(v) : "memory");
    return old;
}
__device__ __forceinline__ void rk_fence_sc_gpu() { asm volatile("fence.sc.gpu;" : : : "memory"); }
__device__ __forceinline__ void rk_fence_acq_rel_gpu() { asm volatile("fence.acq_rel.gpu;" : : : "memory"); }
__device__ __forceinline__ void rk_fence_acq_rel_sys() { asm volatile("fence.acq_rel.sys;" : : : "memory"); }
__device__ __forceinline__ rk_u64 rk_globaltimer() {
    rk_u64 t;
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
    return t;
}
// Shared-memory words one warp writes and another reads.
__device__ __forceinline__ rk_u32 rk_ld_shared(const rk_u32* p) { return *reinterpret_cast<const volatile rk_u32*>(p); }
__device__ __forceinline__ void rk_st_shared(rk_u32* p, rk_u32 v) { *reinterpret_cast<volatile rk_u32*>(p) = v; }

// ---- small helpers -----------------------------------------------------------------------------
__device__ __forceinline__ rk_u64 rk_join(const rk_u32 words[2]) { return (rk_u64)words[0] | ((rk_u64)words[1] << 32); }
__device__ __forceinline__ void rk_split(rk_u32 words[2], rk_u64 v) { words[0] = (rk_u32)v; words[1] = (rk_u32)(v >> 32); }
template <typename T>
__device__ __forceinline__ T* rk_ptr(const rk_u32 words[2]) { return reinterpret_cast<T*>(rk_join(words)); }
__device__ __forceinline__ RkTimestamp rk_header_timestamp(const MessageHeader* h) {
    RkTimestamp t;
    t.physical = rk_join(h->timestamp_physical_ns);
    t.logical = h->timestamp_logical;
    t.node = h->timestamp_node;
    return t;
}
__device__ __forceinline__ rk_u32 rk_fnv1a(const char* s, rk_u32 len) {
    rk_u32 h = 2166136261u;
    for (rk_u32 i = 0; i < len; ++i) { h ^= (unsigned char)s[i]; h *= 16777619u; }
    return h;
}
__device__ __forceinline__ rk_u32 rk_strlen(const char* s) {
    rk_u32 n = 0;
    if (s) while (s[n] != 0 && n < 4096) ++n;
    return n;
}
// Appends to a NUL-terminated buffer of RK_REASON_BYTES; returns the new length.
__device__ __noinline__ rk_u32 rk_append(char* buffer, rk_u32 at, const char* text) {
    for (rk_u32 i = 0; text && text[i] != 0 && at + 1 < RK_REASON_BYTES; ++i) buffer[at++] = text[i];
    buffer[at] = 0;
    return at;
}
__device__ __noinline__ rk_u32 rk_append_n(char* buffer, rk_u32 at, const char* text, rk_u32 len) {
    for (rk_u32 i = 0; i < len && at + 1 < RK_REASON_BYTES; ++i) buffer[at++] = text[i];
    buffer[at] = 0;
    return at;
}
__device__ __noinline__ rk_u32 rk_append_u32(char* buffer, rk_u32 at, rk_u32 v) {
    char digits[10];
    int n = 0;
    do { digits[n++] = (char)('0' + v % 10); v /= 10; } while (v != 0);
    while (n > 0 && at + 1 < RK_REASON_BYTES) buffer[at++] = digits[--n];
    buffer[at] = 0;
    return at;
}

// CRC32C (Castagnoli), what RK_FLAG_CHECKSUM covers: slicing-by-16 over tables in shared memory,
// built from the polynomial when the actor starts (rk_crc32c_init, handler threads). Table t maps
// a byte to its CRC followed by t zero bytes.
#define RK_CRC32C_POLY 0x82F63B78u
#define RK_CRC32C_TABLES 16
__shared__ rk_u32 rk_crc_table[RK_CRC32C_TABLES][256];

__device__ void rk_crc32c_init() {
    for (rk_u32 i = threadIdx.x; i < 256u; i += RK_THREADS) {
        rk_u32 c = i;
        for (int k = 0; k < 8; ++k) c = (c >> 1) ^ ((c & 1u) ? RK_CRC32C_POLY : 0u);
        rk_crc_table[0][i] = c;
    }
    rk_sync();
    for (int t = 1; t < RK_CRC32C_TABLES; ++t) {
        for (rk_u32 i = threadIdx.x; i < 256u; i += RK_THREADS) {
            rk_u32 c = rk_crc_table[t - 1][i];
            rk_crc_table[t][i] = (c >> 8) ^ rk_crc_table[0][c & 0xFFu];
        }
        rk_sync();
    }
}

// The CRC register after 4 bytes `w` (little-endian) at table depth `t + 3 .. t`.
#define RK_CRC_WORD(w, t) (rk_crc_table[(t) + 3][(w) & 0xFFu] ^ rk_crc_table[(t) + 2][((w) >> 8) & 0xFFu] ^ \
                           rk_crc_table[(t) + 1][((w) >> 16) & 0xFFu] ^ rk_crc_table[(t)][(w) >> 24])

// One thread. 16-byte aligned data is read sixteen bytes at a time (one dependent step per 16).
__device__ __noinline__ rk_u32 rk_crc32c(const unsigned char* data, rk_u32 len) {
    rk_u32 crc = 0xFFFFFFFFu;
    rk_u32 i = 0;
    if (((size_t)data & 15u) == 0) {
        for (; i + 16u <= len; i += 16u) {
            uint4 w = *reinterpret_cast<const uint4*>(data + i);
            rk_u32 one = w.x ^ crc;
            crc = RK_CRC_WORD(one, 12) ^ RK_CRC_WORD(w.y, 8) ^ RK_CRC_WORD(w.z, 4) ^ RK_CRC_WORD(w.w, 0);
        }
        for (; i + 8u <= len; i += 8u) {
            uint2 w = *reinterpret_cast<const uint2*>(data + i);
            rk_u32 one = w.x ^ crc;
            crc = RK_CRC_WORD(one, 4) ^ RK_CRC_WORD(w.y, 0);
        }
    }
    for (; i < len; ++i) crc = (crc >> 8) ^ rk_crc_table[0][(crc ^ data[i]) & 0xFFu];
    return crc ^ 0xFFFFFFFFu;
}

// The slot check (ringkernel_core::message::slot_check): a wrapping sum of one term per word —
// the ring position (index 0), the hot line's 16 words (1-16), the first payload line's words
// (17-32, the last one's bytes past payload_bytes read as zero). One word per lane, then a sum.
__device__ __host__ __forceinline__ rk_u32 rk_slot_check_term(rk_u32 word, rk_u32 index) {
    rk_u32 h = word ^ (0x9E3779B9u * (index + 1u));
    h ^= h >> 16;
    h *= 0x85EBCA6Bu;
    h ^= h >> 13;
    h *= 0xC2B2AE35u;
    return h ^ (h >> 16);
}
// The payload word `i` (0-15) as the check covers it: bytes past `covered` read as zero.
__device__ __host__ __forceinline__ rk_u32 rk_slot_check_payload_word(rk_u32 word, rk_u32 i, rk_u32 covered) {
    if (4u * i >= covered) return 0u;
    rk_u32 present = covered - 4u * i;
    return present >= 4u ? word : (word & ((1u << (8u * present)) - 1u));
}
// A warp's sum of every lane's `part`.
__device__ __forceinline__ rk_u32 rk_warp_sum(rk_u32 part) {
    for (int offset = 16; offset > 0; offset >>= 1) part += __shfl_xor_sync(0xFFFFFFFFu, part, offset);
    return part;
}
// The payload bytes a slot check covers: the first line's, at most, and no more than the slot holds.
__device__ __forceinline__ rk_u32 rk_slot_check_covered(rk_u32 payload_bytes, rk_u32 payload_capacity) {
    rk_u32 covered = payload_bytes < 64u ? payload_bytes : 64u;
    return covered < payload_capacity ? covered : payload_capacity;
}
// One 16-byte chunk's share of a slot check: chunks 0-3 are the hot line, 4-7 the first payload
// line (of which `covered` bytes count).
__device__ __forceinline__ rk_u32 rk_slot_check_chunk(uint4 v, rk_u32 chunk, rk_u32 covered) {
    const rk_u32 w[4] = {v.x, v.y, v.z, v.w};
    rk_u32 part = 0u;
    for (rk_u32 k = 0; k < 4u; ++k) {
        if (chunk < 4u) {
            part += rk_slot_check_term(w[k], 1u + 4u * chunk + k);
        } else {
            const rk_u32 i = 4u * (chunk - 4u) + k;
            if (4u * i < covered) part += rk_slot_check_term(rk_slot_check_payload_word(w[k], i, covered), 17u + i);
        }
    }
    return part;
}
// Whether a one-read poll of the slot at `position` holds a whole message: lanes 4-7 read its hot
// line, lane 8 the line with its check word, lanes 9-12 its first payload line. Whole warp.
__device__ __forceinline__ bool rk_poll_read_checks(uint4 v, rk_u32 lane, rk_u32 position, rk_u32 payload_capacity) {
    const rk_u32 bytes = __shfl_sync(0xFFFFFFFFu, v.x, 5);   // payload_bytes (hot line word 4)
    const rk_u32 stored = __shfl_sync(0xFFFFFFFFu, v.y, 8);  // slot_check
    const rk_u32 covered = rk_slot_check_covered(bytes, payload_capacity);
    rk_u32 part = 0u;
    if (lane >= 4u && lane < 8u) part = rk_slot_check_chunk(v, lane - 4u, covered);
    else if (lane >= 9u && lane < 13u) part = rk_slot_check_chunk(v, lane - 5u, covered);
    else if (lane == 0u) part = rk_slot_check_term(position, 0u);
    return rk_warp_sum(part) == stored;
}

// ---- the actor's private state, shared by its block -------------------------------------------
// A message as the handler sees it: the header (hot line copied; the rest zero) and the first
// payload line. Longer payloads are copied whole into the actor's scratch.
struct __align__(16) RkEntry {
    MessageHeader header;
    unsigned char payload[64];
};

// What the service warps and the handler threads tell each other (shared memory, volatile).
struct RkLink {
    // Bus warp -> handler threads.
    rk_u32 host_ready;        // host messages put into the host queue (free-running)
    rk_u32 ctl_sequence;      // the host's control sequence, as last read
    rk_u32 ctl_active;        // ... and the flags read with (or after) it
    rk_u32 ctl_terminate;
    rk_u32 out_head;          // the host's output_head, as last read
    // Inbox warp -> handler threads.
    rk_u32 k2k_ready;
    // Handler threads -> service warps.
    rk_u32 host_taken;        // host messages handled (their queue entries are free again)
    rk_u32 k2k_taken;
    rk_u32 stop;              // the actor is ending: the service warps leave
    rk_u32 urgent;            // the handler threads wait on the host: read it without napping
    rk_u32 busy;              // a batch is being handled and not yet published: few new reads
    rk_u32 draining;          // its publish is about to start: no new read at all
    rk_u32 bus_reading;       // the bus warp has a read of host memory in flight
    rk_u32 k2k_at_us;         // %globaltimer / 1024 when the handler threads last took K2K messages
};

// A K2K send claimed and written, whose sequence word is stored when the batch is published.
struct RkPendingSend {
    rk_u32* sequence;
    rk_u32 value;
};

struct RkActor {
    RkArgs a;
    ControlBlock* control;
    unsigned char* input;
    unsigned char* output;
    K2KInboxHeader* inbox;
    RkRoute* routes;
    unsigned char* scratch;
    RkSlot* slot;
    rk_u32 in_capacity, in_slot_bytes, out_capacity, out_slot_bytes, inbox_capacity, inbox_slot_bytes;
    rk_u32 input_checked;     // the host writes slot checks (ControlBlock::input_slot_checks)
    rk_u32 output_checked;    // the host checks output slots (ControlBlock::output_slot_checks)
    rk_u32 pending_large;     // a pending K2K send's payload is longer than its check covers
    rk_u32 in_head, out_tail, out_head_seen, inbox_head;
    rk_u32 published_in_head, published_inbox_head;
    rk_u32 processed, rejected, errors, last_error, heartbeat, dropped_output;
    rk_u32 pending_outputs;   // replies written but not yet published
    rk_u64 message_counter;   // message ids of what this actor sends
    rk_u64 batch_wall;        // wall clock of the current batch
    RkTimestamp clock;        // HLC: last event
    rk_u32 control_sequence, active, terminate;
    rk_u32 hlc_sequence;
    rk_u32 failed;
    rk_u32 result;            // broadcast slot for block-cooperative calls
    rk_u32 step;              // what the handler threads do next (the loop's decision)
    rk_u32 go;                // broadcast: take the next message of the batch
    RkEntry* entry;           // ... which is this one
    rk_u32 capacity;          // ... the payload bytes its slot holds
    rk_u32 verdict;           // ... and what its checks said (rk_prepare)
    rk_u64 now_ns;            // the wall clock its deadline was checked against
    rk_u32 host_taken, k2k_taken;   // entries of each queue handled (== rk_link's copies)
    rk_u32 prefer_k2k;        // which queue goes first when both have messages (alternates)
    rk_u32 steps;             // decisions made (paces the heartbeat while busy)
    rk_u64 last_beat;         // %globaltimer of the last heartbeat
    rk_u32 final_tail, final_k2k;   // terminate: what the host and the senders published, in all
    rk_u32 counters_stored;   // processed + rejected + errors when the counters were last stored
    rk_u32 batches_entered;   // batches since the routes in `entered` were entered
    // Routes entered in this batch (left when it is published) and sends to publish then.
    rk_u32 entered_count;
    rk_u32 entered[RK_ROUTES_ENTERED];
    rk_u32 entered_key[RK_ROUTES_ENTERED];
    rk_u32 entered_by_name[RK_ROUTES_ENTERED];
    rk_u32 pending_count;
    RkPendingSend pending[RK_K2K_PENDING];
    rk_u64 prof[7];           // RK_PROFILE: cycles per phase and messages (see CudaRuntime::profile)
};

__shared__ RkActor rk_actor_state;
__shared__ RkContext rk_ctx;
__shared__ RkLink rk_link;
__shared__ RkEntry rk_host_queue[RK_HOST_QUEUE];
__shared__ RkEntry rk_k2k_queue[RK_K2K_QUEUE];
__shared__ __align__(16) MessageHeader rk_out_header;
__device__ __forceinline__ RkActor& rk_actor() { return rk_actor_state; }

// RK_PROFILE (CudaConfig::profile): SM cycles of each phase of the message path, summed in
// s.prof and stored into the pool slot's profile words with every publish.
#ifdef RK_PROFILE
#define RK_PROF_T(var) long long var = clock64()
#define RK_PROF_ADD(i, since) do { if (threadIdx.x == 0) rk_actor_state.prof[i] += (rk_u64)(clock64() - (since)); } while (0)
#else
#define RK_PROF_T(var)
#define RK_PROF_ADD(i, since) do { } while (0)
#endif

__device__ __forceinline__ rk_u64 rk_wall_ns(const RkActor& s) {
    return (rk_u64)((long long)rk_globaltimer() + (long long)rk_join(s.a.clock_offset_ns));
}

// The HLC send rule: wall clock if it moved past the last timestamp, else the last one bumped.
__device__ __forceinline__ RkTimestamp rk_tick(RkActor& s) {
    if (s.batch_wall > s.clock.physical) {
        s.clock.physical = s.batch_wall;
        s.clock.logical = 0;
    } else if (s.clock.logical == 0xFFFFFFFFu) {
        s.clock.physical += 1;
        s.clock.logical = 0;
    } else {
        s.clock.logical += 1;
    }
    s.clock.node = s.a.number;
    return s.clock;
}

// The receive rule (Kulkarni et al.).
__device__ __forceinline__ RkTimestamp rk_update(RkActor& s, RkTimestamp r) {
    rk_u64 wall = s.batch_wall;
    rk_u64 lp = s.clock.physical;
    rk_u64 p = wall > lp ? wall : lp;
    if (r.physical > p) p = r.physical;
    rk_u32 base;
    bool bump = true;
    if (p == lp && p == r.physical) base = s.clock.logical > r.logical ? s.clock.logical : r.logical;
    else if (p == lp) base = s.clock.logical;
    else if (p == r.physical) base = r.logical;
    else { base = 0; bump = false; }
    if (bump) {
        if (base == 0xFFFFFFFFu) { p += 1; base = 0; } else { base += 1; }
    }
    s.clock.physical = p;
    s.clock.logical = base;
    s.clock.node = s.a.number;
    return s.clock;
}

// ---- K2K inbox layout ---------------------------------------------------------------------------
__device__ __forceinline__ rk_u32* rk_inbox_sequences(K2KInboxHeader* ib) {
    return reinterpret_cast<rk_u32*>(reinterpret_cast<unsigned char*>(ib) + RK_K2K_INBOX_SEQUENCES_OFFSET);
}
__device__ __forceinline__ unsigned char* rk_inbox_slot(K2KInboxHeader* ib, rk_u32 capacity, rk_u32 slot_bytes, rk_u32 pos) {
    rk_u32 slots_offset = (RK_K2K_INBOX_SEQUENCES_OFFSET + 4u * capacity + 63u) & ~63u;
    return reinterpret_cast<unsigned char*>(ib) + slots_offset + (size_t)(pos & (capacity - 1u)) * slot_bytes;
}
// ---- publishing ---------------------------------------------------------------------------------
// What a batch did in device memory, behind one device-scope fence: the sequence words of its K2K
// sends (their slots were written before), and the inbox slots it handled go back to their senders
// (sequence = position + capacity). The routes it entered stay entered (see rk_leave_routes).
// Thread 0.
__device__ __noinline__ void rk_flush_k2k(RkActor& s) {
    const bool released = s.inbox_head != s.published_inbox_head;
    // Receivers read a slot with its sequence and accept it by its slot check, which covers the
    // first payload line: only a longer payload needs its writes ordered before the sequence (a
    // fence waits for every read of host memory in flight on the GPU: microseconds). The slots
    // handled were read to the end before (into shared memory or the scratch).
    if (s.pending_large) rk_fence_acq_rel_gpu();
    for (rk_u32 i = 0; i < s.pending_count; ++i) rk_st_relaxed_gpu(s.pending[i].sequence, s.pending[i].value);
    s.pending_count = 0;
    s.pending_large = 0;
    if (released) {
        rk_u32* seqs = rk_inbox_sequences(s.inbox);
        for (rk_u32 p = s.published_inbox_head; p != s.inbox_head; ++p)
            rk_st_relaxed_gpu(&seqs[p & (s.inbox_capacity - 1u)], p + s.inbox_capacity);
        rk_st_relaxed_gpu(&s.inbox->head, s.inbox_head);
        s.published_inbox_head = s.inbox_head;
    }
}

// Leaves every route this actor entered, after publishing what it sent there (release: a receiver
// that sees no sender in flight sees every send published). A route stays entered from the first
// send to it until the actor goes idle, RK_ROUTE_HOLD_BATCHES batches later, its list is full, or
// the actor stops, so that a stream of sends to one actor enters it once. Thread 0.
__device__ __noinline__ void rk_leave_routes(RkActor& s) {
    rk_flush_k2k(s);
    for (rk_u32 i = 0; i < s.entered_count; ++i) rk_add_release_gpu(&s.routes[s.entered[i]].in_flight, 0xFFFFFFFFu);
    s.entered_count = 0;
    s.batches_entered = 0;
}

// The counters the host reads for metrics (relaxed: they ride on the next release, or become
// visible on their own). Thread 0.
__device__ __forceinline__ void rk_store_counters(RkActor& s) {
    ControlBlock* c = s.control;
    rk_st_relaxed_sys(&c->messages_processed, s.processed);
    rk_st_relaxed_sys(&c->messages_rejected, s.rejected);
    rk_st_relaxed_sys(&c->error_count, s.errors + s.dropped_output);
    rk_st_relaxed_sys(&c->last_error, s.last_error);
#ifdef RK_PROFILE
    for (int i = 0; i < 7; ++i) {
        rk_st_relaxed_sys(&s.slot->profile[2 * i], (rk_u32)s.prof[i]);
        rk_st_relaxed_sys(&s.slot->profile[2 * i + 1], (rk_u32)(s.prof[i] >> 32));
    }
#endif
    s.counters_stored = s.processed + s.rejected + s.errors;
}

// Publishes a batch: its device-memory side (rk_flush_k2k), then what the host must see: counters,
// the input head and the output tail. When the host checks every output slot's whole-slot check,
// these are plain stores — the host reads no slot before its check matches, and the input slots
// handed back were read to the end — so no system-scope fence is paid at all (one costs ~0.6 µs
// alone, and many times that while other blocks read host memory: measured). Otherwise the tail
// goes behind one release store per batch. A batch of K2K messages only leaves its counters for
// later. Thread 0.
__device__ __noinline__ void rk_flush(RkActor& s) {
    rk_flush_k2k(s);
    ControlBlock* c = s.control;
    if (s.pending_outputs != 0 || s.in_head != s.published_in_head) {
        rk_store_counters(s);
        if (s.output_checked) {
            rk_st_relaxed_sys(&c->input_head, s.in_head);
            rk_st_relaxed_sys(&c->output_tail, s.out_tail);
        } else if (s.pending_outputs != 0) {
            rk_st_relaxed_sys(&c->input_head, s.in_head);
            asm volatile("st.release.sys.u32 [%0], %1;" : : "l"(&c->output_tail), "r"(s.out_tail) : "memory");
        } else {
            asm volatile("st.release.sys.u32 [%0], %1;" : : "l"(&c->input_head), "r"(s.in_head) : "memory");
        }
        s.pending_outputs = 0;
    }
    s.published_in_head = s.in_head;
}

// Whether publishing now would pay a fence (and should wait for the bus warp's read in flight).
__device__ __forceinline__ bool rk_flush_fences(const RkActor& s) {
    return s.pending_large || (!s.output_checked && (s.pending_outputs != 0 || s.in_head != s.published_in_head));
}

// Counters of K2K-only work, when they changed: stored while idle, or before stopping. Thread 0.
__device__ __forceinline__ void rk_flush_counters(RkActor& s) {
    if (s.counters_stored != s.processed + s.rejected + s.errors) rk_store_counters(s);
}

// The clock of the last event, under the seqlock (odd while written). Thread 0, while idle and
// when stopping: nothing on the message path reads it.
__device__ __noinline__ void rk_publish_clock(RkActor& s) {
    ControlBlock* c = s.control;
    s.hlc_sequence += 1u;
    rk_st_relaxed_sys(&c->hlc_sequence, s.hlc_sequence);
    __threadfence_system();
    rk_st_relaxed_sys(&c->hlc_physical_lo, (rk_u32)s.clock.physical);
    rk_st_relaxed_sys(&c->hlc_physical_hi, (rk_u32)(s.clock.physical >> 32));
    rk_st_relaxed_sys(&c->hlc_logical, s.clock.logical);
    __threadfence_system();
    s.hlc_sequence += 1u;
    rk_st_relaxed_sys(&c->hlc_sequence, s.hlc_sequence);
}

__device__ __forceinline__ void rk_beat(RkActor& s) {
    s.heartbeat += 1u;
    rk_st_relaxed_sys(&s.control->heartbeat, s.heartbeat);
}

// ---- writing messages (the lead warp) ------------------------------------------------------------
// What the loop does for a handler (replies, emits, K2K sends, error reports) is done by the lead
// warp (the handler threads' first warp) with warp-level synchronisation; the other handler
// threads only meet it at the block barriers of the API call. `rk_lead()` is true in it.
__device__ __forceinline__ bool rk_lead() { return threadIdx.x < 32u; }

// Copies a header's first 96 bytes (the used bytes, then zero through the check word and
// padding) and `len` payload bytes into a slot with 16-byte stores across the lead warp's lanes.
// `sys`: the slot is host memory. Payload bytes past `len` up to the next 16 are written as zero.
__device__ __forceinline__ void rk_lead_store_message(unsigned char* slot, const MessageHeader* h, const unsigned char* data,
                                                      rk_u32 len, bool sys) {
    const rk_u32 header_chunks = 6u;
    const rk_u32 chunks = header_chunks + (len + 15u) / 16u;
    const bool aligned = ((size_t)data & 15u) == 0;
    for (rk_u32 i = threadIdx.x; i < chunks; i += 32u) {
        uint4 v;
        if (i < header_chunks) {
            v = reinterpret_cast<const uint4*>(h)[i];
        } else {
            rk_u32 at = (i - header_chunks) * 16u;
            if (aligned && at + 16u <= len) {
                v = *reinterpret_cast<const uint4*>(data + at);
            } else {
                rk_u32 w[4] = {0u, 0u, 0u, 0u};
                for (rk_u32 b = 0; b < 16u && at + b < len; ++b) w[b / 4u] |= (rk_u32)data[at + b] << (8u * (b % 4u));
                v = make_uint4(w[0], w[1], w[2], w[3]);
            }
        }
        unsigned char* to = i < header_chunks ? slot + 16u * i : slot + RK_MESSAGE_HEADER_BYTES + 16u * (i - header_chunks);
        if (sys) rk_st_relaxed_sys_v4(to, v);
        else rk_st_relaxed_gpu_v4(to, v);
    }
    __syncwarp();
}

// Writes one message into the output ring, waiting while it is full (back-pressure; the host
// drains in call/receive/terminate). Returns RK_OK, or RK_ERROR_OUTPUT_FULL when nobody reads the
// ring any more (terminate with no handle left), or RK_ERROR_PAYLOAD_TOO_LARGE. Lead warp.
__device__ __noinline__ rk_u32 rk_lead_write_output(RkActor& s, MessageHeader* h, const unsigned char* data, rk_u32 len) {
    if (len > s.out_slot_bytes - RK_MESSAGE_HEADER_BYTES) return RK_ERROR_PAYLOAD_TOO_LARGE;
    rk_u32 result = RK_OK;
    if (threadIdx.x == 0) {
        s.out_head_seen = rk_ld_shared(&rk_link.out_head);
        if (s.out_tail - s.out_head_seen >= s.out_capacity) {
            // Full: publish what is pending (so the host can drain it, and sees this message's
            // count), let other actors' drains finish meanwhile, keep beating, and look at the
            // host's head as the bus warp reads it.
            rk_flush(s);
            rk_leave_routes(s);
            rk_st_shared(&rk_link.urgent, 1u);
            rk_u64 last_beat = rk_globaltimer();
            while (s.out_tail - s.out_head_seen >= s.out_capacity) {
                if (rk_ld_shared(&rk_link.ctl_terminate) == RK_TERMINATE_DRAIN_DETACHED) {
                    result = RK_ERROR_OUTPUT_FULL;
                    break;
                }
                rk_u64 now = rk_globaltimer();
                if (now - last_beat > rk_join(s.a.heartbeat_ns) / 2u) {
                    rk_beat(s);
                    last_beat = now;
                }
                __nanosleep(200);
                s.out_head_seen = rk_ld_shared(&rk_link.out_head);
            }
            rk_st_shared(&rk_link.urgent, 0u);
        }
        if (result == RK_OK) {
            h->payload_bytes = len;
            h->checksum = (h->flags & RK_FLAG_CHECKSUM) ? rk_crc32c(data, len) : 0u;
        } else {
            s.dropped_output += 1u;
        }
    }
    result = __shfl_sync(0xFFFFFFFFu, result, 0);
    if (result != RK_OK) return result;
    if (s.output_checked) {
        // The whole-slot check (ringkernel_core::message::whole_slot_check), one word per lane:
        // the host reads the slot only once it matches, so the tail needs no fence.
        const rk_u32 lane = threadIdx.x;
        rk_u32 part = lane < 16u ? rk_slot_check_term(reinterpret_cast<const rk_u32*>(h)[lane], 1u + lane) : 0u;
        const bool aligned = ((size_t)data & 3u) == 0;
        for (rk_u32 i = lane; 4u * i < len; i += 32u) {
            rk_u32 word = 0u;
            if (aligned && 4u * i + 4u <= len) word = reinterpret_cast<const rk_u32*>(data)[i];
            else for (rk_u32 b = 0; b < 4u && 4u * i + b < len; ++b) word |= (rk_u32)data[4u * i + b] << (8u * b);
            part += rk_slot_check_term(word, 17u + i);
        }
        if (lane == 0u) part += rk_slot_check_term(s.out_tail, 0u);
        const rk_u32 check = rk_warp_sum(part);
        if (lane == 0u) h->slot_check = check;
        __syncwarp();
    }
    unsigned char* slot = s.output + (size_t)(s.out_tail & (s.out_capacity - 1u)) * s.out_slot_bytes;
    rk_lead_store_message(slot, h, data, len, true);
    if (threadIdx.x == 0) {
        h->slot_check = 0u;
        s.out_tail += 1u;
        s.pending_outputs += 1u;
    }
    __syncwarp();
    return RK_OK;
}

// ---- K2K (the lead warp) --------------------------------------------------------------------------
__device__ __forceinline__ bool rk_route_is(RkRoute* r, bool by_name, rk_u32 key, rk_u32 name_len) {
    return by_name ? (rk_ld_relaxed_gpu(&r->name_hash) == key && rk_ld_relaxed_gpu(&r->name_len) == name_len)
                   : rk_ld_relaxed_gpu(&r->number) == key;
}

// Finds a running actor by number (name == nullptr) or by name and enters it (in_flight), so that
// it cannot finish its final drain before this actor's sends to it are published; a route entered
// earlier is used again after one look at it (still alive, still that actor). Returns the route's
// index, or RK_ROUTE_CAPACITY. Lead warp: the table is scanned by all lanes in one round trip,
// lane 0 checks the first match and enters.
__device__ __noinline__ rk_u32 rk_lead_route_enter(RkActor& s, const char* name, rk_u32 name_len, rk_u32 number) {
    const bool by_name = name != nullptr;
    const rk_u32 key = by_name ? rk_fnv1a(name, name_len) : number;
    rk_u32 found = RK_ROUTE_CAPACITY;
    if (threadIdx.x == 0) {
        for (rk_u32 i = 0; i < s.entered_count; ++i) {
            if (s.entered_key[i] == key && s.entered_by_name[i] == (rk_u32)by_name) {
                RkRoute* r = &s.routes[s.entered[i]];
                if (rk_ld_relaxed_gpu(&r->alive) == 1u && rk_route_is(r, by_name, key, name_len)) {
                    found = s.entered[i];
                } else {
                    // Stopping (or gone): let its drain finish.
                    rk_leave_routes(s);
                }
                break;
            }
        }
    }
    found = __shfl_sync(0xFFFFFFFFu, found, 0);
    if (found != RK_ROUTE_CAPACITY) return found;
    // Each lane looks at 8 entries: their first 16 bytes (alive, in_flight, number, name_hash) in
    // independent loads, then the name length of a match.
    rk_u32 candidate = RK_ROUTE_CAPACITY;
    uint4 head[RK_ROUTE_CAPACITY / 32];
#pragma unroll
    for (rk_u32 k = 0; k < RK_ROUTE_CAPACITY / 32; ++k) head[k] = rk_ld_relaxed_gpu_v4(&s.routes[threadIdx.x + 32u * k]);
#pragma unroll
    for (rk_u32 k = 0; k < RK_ROUTE_CAPACITY / 32; ++k) {
        const rk_u32 i = threadIdx.x + 32u * k;
        const bool match = head[k].x == 1u && (by_name ? head[k].w == key : head[k].z == key);
        if (match && candidate == RK_ROUTE_CAPACITY && (!by_name || rk_ld_relaxed_gpu(&s.routes[i].name_len) == name_len))
            candidate = i;
    }
    candidate = __reduce_min_sync(0xFFFFFFFFu, candidate);
    if (threadIdx.x == 0 && candidate != RK_ROUTE_CAPACITY) {
        RkRoute* r = &s.routes[candidate];
        bool match = rk_ld_acquire_gpu(&r->alive) == 1u;
        const char* route_name = reinterpret_cast<const char*>(r->name);
        for (rk_u32 k = 0; by_name && match && k < name_len && k < RK_NAME_BYTES; ++k) match = route_name[k] == name[k];
        if (match && s.entered_count == RK_ROUTES_ENTERED) rk_leave_routes(s);  // room in the entered list
        if (match) {
            // Dekker with the owner's final drain: announce, then check that it still accepts.
            rk_add_relaxed_gpu(&r->in_flight, 1u);
            rk_fence_sc_gpu();
            // Still alive, and still the same actor (the entry may have been reused meanwhile:
            // numbers are never reused, names by a relaunch of the same kernel id only).
            if (rk_ld_relaxed_gpu(&r->alive) == 1u && rk_route_is(r, by_name, key, name_len)) {
                s.entered[s.entered_count] = candidate;
                s.entered_key[s.entered_count] = key;
                s.entered_by_name[s.entered_count] = by_name;
                s.entered_count += 1u;
            } else {
                rk_add_release_gpu(&r->in_flight, 0xFFFFFFFFu);
                candidate = RK_ROUTE_CAPACITY;
            }
        } else {
            candidate = RK_ROUTE_CAPACITY;
        }
    }
    return __shfl_sync(0xFFFFFFFFu, candidate, 0);
}

// Sends one message to another actor's inbox: claims a slot, writes it with its slot check (the
// receiver reads sequence and slot in one go), and leaves the sequence to the batch's publish.
// Lead warp.
__device__ __noinline__ rk_u32 rk_lead_k2k_send(RkActor& s, RkContext& ctx, const char* name, rk_u32 number,
                                                MessageHeader* h, const unsigned char* data, rk_u32 len) {
    RK_PROF_T(t_send);
    rk_u32 name_len = rk_strlen(name);
    // Room for this send in the batch's pending list (publishing the others leaves their routes:
    // done before this send enters its own).
    if (threadIdx.x == 0 && s.pending_count == RK_K2K_PENDING) rk_flush_k2k(s);
    __syncwarp();
    const rk_u32 route = rk_lead_route_enter(s, name, name_len, number);
    rk_u32 status = RK_OK, claimed = 0u;
    K2KInboxHeader* ib = nullptr;
    if (threadIdx.x == 0) {
        if (route == RK_ROUTE_CAPACITY) {
            status = RK_ERROR_HANDLER_ERROR;
            rk_u32 at = rk_append(ctx.send_reason, 0, "kernel `");
            if (name) at = rk_append_n(ctx.send_reason, at, name, name_len);
            else { at = rk_append(ctx.send_reason, at, "#"); at = rk_append_u32(ctx.send_reason, at, number); }
            rk_append(ctx.send_reason, at, "` is not running (no running kernel has this id)");
        } else {
            RkRoute* r = &s.routes[route];
            ib = rk_ptr<K2KInboxHeader>(r->inbox);
            rk_u32 slot_bytes = ib->slot_bytes, cap = ib->capacity;
            if (len > slot_bytes - RK_MESSAGE_HEADER_BYTES) {
                status = RK_ERROR_PAYLOAD_TOO_LARGE;
                rk_u32 at = rk_append(ctx.send_reason, 0, "payload of ");
                at = rk_append_u32(ctx.send_reason, at, len);
                at = rk_append(ctx.send_reason, at, " bytes does not fit the K2K inbox slot's ");
                at = rk_append_u32(ctx.send_reason, at, slot_bytes - RK_MESSAGE_HEADER_BYTES);
                rk_append(ctx.send_reason, at, "-byte payload area");
            } else {
                rk_u32* seqs = rk_inbox_sequences(ib);
                rk_u32 pos = rk_ld_relaxed_gpu(&ib->tail);
                while (true) {
                    // The slot is free once its consumer released it (sequence == pos).
                    rk_u32 seq = rk_ld_acquire_gpu(&seqs[pos & (cap - 1u)]);
                    int lap = (int)(seq - pos);
                    if (lap == 0) {
                        // Relaxed: the acquire of the slot's sequence above orders the claim; the
                        // batch's fence orders the slot's contents before its publication.
                        rk_u32 seen = rk_cas_relaxed_gpu(&ib->tail, pos, pos + 1u);
                        if (seen == pos) break;
                        pos = seen;
                    } else if (lap < 0) {
                        rk_add_relaxed_gpu(&ib->full_rejections, 1u);
                        status = RK_ERROR_K2K_INBOX_FULL;
                        rk_u32 at = rk_append(ctx.send_reason, 0, "queue full: K2K inbox of `");
                        if (name) at = rk_append_n(ctx.send_reason, at, name, name_len);
                        else { at = rk_append(ctx.send_reason, at, "#"); at = rk_append_u32(ctx.send_reason, at, number); }
                        at = rk_append(ctx.send_reason, at, "` holds ");
                        at = rk_append_u32(ctx.send_reason, at, cap);
                        rk_append(ctx.send_reason, at, " slots and all are in use");
                        break;
                    } else {
                        pos = rk_ld_relaxed_gpu(&ib->tail);
                    }
                }
                claimed = pos;
                h->dest_kernel = r->number;
                h->payload_bytes = len;
                h->checksum = (h->flags & RK_FLAG_CHECKSUM) ? rk_crc32c(data, len) : 0u;
            }
        }
        if (status != RK_OK) ctx.send_error = status;
    }
    status = __shfl_sync(0xFFFFFFFFu, status, 0);
    if (status == RK_OK) {
        claimed = __shfl_sync(0xFFFFFFFFu, claimed, 0);
        ib = reinterpret_cast<K2KInboxHeader*>(__shfl_sync(0xFFFFFFFFu, (unsigned long long)ib, 0));
        // The slot check, one word per lane.
        const rk_u32 lane = threadIdx.x, covered = len < 64u ? len : 64u;
        rk_u32 part = 0u;
        if (lane < 16u) part = rk_slot_check_term(reinterpret_cast<const rk_u32*>(h)[lane], 1u + lane);
        const rk_u32 p = lane >= 16u ? lane - 16u : 0u;
        if (lane >= 16u && 4u * p < covered) {
            rk_u32 word = 0u;
            for (rk_u32 b = 0; b < 4u && 4u * p + b < covered; ++b) word |= (rk_u32)data[4u * p + b] << (8u * b);
            part = rk_slot_check_term(word, 17u + p);
        }
        if (lane == 0u) part += rk_slot_check_term(claimed, 0u);
        const rk_u32 check = rk_warp_sum(part);
        if (lane == 0u) h->slot_check = check;
        __syncwarp();
        unsigned char* slot = rk_inbox_slot(ib, ib->capacity, ib->slot_bytes, claimed);
        rk_lead_store_message(slot, h, data, len, false);
        if (threadIdx.x == 0) {
            h->slot_check = 0u;
            rk_st_relaxed_gpu(&ib->last_source, s.a.number);
            s.pending[s.pending_count].sequence = &rk_inbox_sequences(ib)[claimed & (ib->capacity - 1u)];
            s.pending[s.pending_count].value = claimed + 1u;
            s.pending_count += 1u;
            if (len > 64u) s.pending_large = 1u;
        }
        __syncwarp();
    }
    RK_PROF_ADD(5, t_send);
    return status;
}

// ---- delivering what a handler sends ----------------------------------------------------------
// A fresh header: magic, version, a message id unique to this actor, source, timestamp. Thread 0.
__device__ __forceinline__ void rk_new_header(RkActor& s, MessageHeader* h, rk_u32 type, rk_u64 correlation, rk_u32 priority,
                                              rk_u32 flags) {
    // Every used field is written; the padding (and the check word) stays zero.
    h->magic = RK_MESSAGE_MAGIC;
    h->version = RK_PROTOCOL_VERSION;
    h->flags = flags;
    h->message_type = type;
    rk_split(h->correlation_id, correlation);
    h->source_kernel = s.a.number;
    h->priority = priority;
    RkTimestamp t = rk_tick(s);
    rk_split(h->timestamp_physical_ns, t.physical);
    h->timestamp_logical = t.logical;
    h->timestamp_node = t.node;
    h->deadline_ns[0] = 0u;
    h->deadline_ns[1] = 0u;
    h->payload_bytes = 0u;
    h->checksum = 0u;
    s.message_counter += 1u;
    h->message_id[0] = (rk_u32)s.message_counter;
    h->message_id[1] = (rk_u32)(s.message_counter >> 32);
    h->message_id[2] = s.a.number;
    h->message_id[3] = 0x524B4344u;  // "DCKR": device-issued
    h->dest_kernel = RK_HOST_KERNEL_ID;
}

// Builds a header (thread 0) and delivers it with `data` to the host (`name` null and `dest` the
// host's id) or to a kernel. Lead warp; returns the same result in every lane.
__device__ __noinline__ rk_u32 rk_lead_send(RkActor& s, RkContext& ctx, const char* name, rk_u32 dest, rk_u32 type,
                                            rk_u64 correlation, rk_u32 priority, rk_u32 flags, const void* data, rk_u32 len) {
    const unsigned char* bytes = reinterpret_cast<const unsigned char*>(data);
    const bool to_host = name == nullptr && dest == RK_HOST_KERNEL_ID;
    if (threadIdx.x == 0) rk_new_header(s, &rk_out_header, type, correlation, priority, to_host ? flags : flags | RK_FLAG_K2K);
    __syncwarp();
    if (!to_host) return rk_lead_k2k_send(s, ctx, name, dest, &rk_out_header, bytes, len);
    rk_u32 result = rk_lead_write_output(s, &rk_out_header, bytes, len);
    if (result != RK_OK && threadIdx.x == 0) {
        ctx.send_error = result;
        rk_u32 at = rk_append(ctx.send_reason, 0, result == RK_ERROR_OUTPUT_FULL
            ? "output ring is full and no host handle is left to read it"
            : "payload does not fit the output ring's slots: ");
        if (result != RK_ERROR_OUTPUT_FULL) rk_append_u32(ctx.send_reason, at, len);
    }
    __syncwarp();
    return result;
}

// The handler API's sends: every handler thread calls them; the lead warp does the work between
// two barriers (the first makes what the handler's threads wrote visible to it, the second gives
// every thread the result and keeps `data` untouched until it is sent).
__device__ __forceinline__ rk_u32 rk_api_send(RkContext& ctx, const char* name, rk_u32 dest, rk_u32 type, rk_u32 flags,
                                              const void* data, rk_u32 len) {
    RkActor& s = rk_actor();
    rk_sync();
    if (rk_lead()) {
        rk_u32 result = rk_lead_send(s, ctx, name, dest, type, rk_join(ctx.header->correlation_id), ctx.header->priority,
                                     flags, data, len);
        if (threadIdx.x == 0) s.result = result;
    }
    rk_sync();
    return s.result;
}

__device__ rk_u32 rk_reply(RkContext& ctx, rk_u32 type, const void* data, rk_u32 len) {
    return rk_api_send(ctx, nullptr, ctx.header->source_kernel, type, RK_FLAG_REPLY | (ctx.header->flags & RK_FLAG_CHECKSUM),
                       data, len);
}

__device__ rk_u32 rk_emit(RkContext& ctx, rk_u32 type, const void* data, rk_u32 len) {
    return rk_api_send(ctx, nullptr, RK_HOST_KERNEL_ID, type, 0u, data, len);
}

__device__ rk_u32 rk_send_to(RkContext& ctx, const char* kernel, rk_u32 type, const void* data, rk_u32 len) {
    return rk_api_send(ctx, kernel, 0u, type, 0u, data, len);
}

__device__ rk_u32 rk_send_to_number(RkContext& ctx, rk_u32 number, rk_u32 type, const void* data, rk_u32 len) {
    return rk_api_send(ctx, nullptr, number, type, 0u, data, len);
}

__device__ void rk_set_outcome(RkContext& ctx, rk_u32 outcome, const char* reason) {
    rk_sync();
    if (threadIdx.x == 0 && ctx.outcome == RK_OK) {
        ctx.outcome = outcome;
        rk_append(ctx.reason, 0, reason ? reason : (ctx.send_error != RK_OK ? ctx.send_reason : "handler error"));
    }
    rk_sync();
}

__device__ void rk_error(RkContext& ctx, const char* reason) { rk_set_outcome(ctx, RK_ERROR_HANDLER_ERROR, reason); }
__device__ void rk_fail(RkContext& ctx, const char* reason) { rk_set_outcome(ctx, RK_ERROR_HANDLER_FAULT, reason); }

// The handlers follow, each in its own namespace (`rk_kernel_<kind>`), then rk_dispatch, which
// calls the actor's one by kind. In handler code, the block is the handler threads.
__device__ void rk_dispatch(rk_u32 kind, RkContext& ctx);
__device__ __forceinline__ int rk_sync_and(int predicate) { return rk_sync_count(predicate) == RK_THREADS; }
__device__ __forceinline__ int rk_sync_or(int predicate) { return rk_sync_count(predicate) != 0; }
#define __syncthreads() rk_sync()
#define __syncthreads_count(predicate) rk_sync_count(predicate)
#define __syncthreads_and(predicate) rk_sync_and(predicate)
#define __syncthreads_or(predicate) rk_sync_or(predicate)
#define blockDim (dim3(RK_THREADS, 1u, 1u))
