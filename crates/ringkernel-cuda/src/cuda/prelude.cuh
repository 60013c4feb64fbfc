// RingKernel CUDA actor runtime, part 1 of 2: the handler ABI.
//
// Included after the generated layout header (ringkernel_layout.cuh) and before the user's
// handler. A handler is one function,
//
//     __device__ void rk_handle(RkContext& ctx);
//
// called for each valid message, in order, by every thread of the actor's block (RK_THREADS
// threads). Every rk_* call below is block-cooperative: all threads call it, with the same
// arguments, and all get the same result. Data a handler passes to rk_reply/rk_emit/rk_send_* may
// live in the payload, the state, or any memory every thread can read.
//
// The handler sees:
//   ctx.header        the message header (a private copy in device memory)
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
// rk_error(ctx, nullptr).

typedef unsigned int rk_u32;
typedef unsigned long long rk_u64;

#ifndef RK_THREADS
#define RK_THREADS 128
#endif
#define RK_OK 0u
// Messages whose first lines are read in one round trip over the bus.
#define RK_BATCH (RK_THREADS / 8)
#define RK_REASON_BYTES 200
#define RK_NAME_BYTES 32
#define RK_ROUTE_CAPACITY 256

struct RkTimestamp {
    rk_u64 physical;
    rk_u32 logical;
    rk_u32 node;
};

// One running actor, as K2K senders see it (device memory; written by the actor itself).
struct RkRoute {
    rk_u32 alive;      // 1 while the actor accepts K2K messages
    rk_u32 in_flight;  // senders between their check of `alive` and their publish
    rk_u32 number;
    rk_u32 name_hash;
    rk_u64 inbox;      // K2KInboxHeader* in device memory
    rk_u32 payload_capacity;
    rk_u32 name_len;
    char name[RK_NAME_BYTES];
};
static_assert(sizeof(RkRoute) == 64, "RkRoute is one 64-byte line");

// Launch arguments (one struct, passed by value).
struct RkArgs {
    ControlBlock* control;          // pinned host memory, mapped
    unsigned char* input;           // input ring slots (mapped)
    unsigned char* output;          // output ring slots (mapped)
    unsigned char* state;           // device memory
    K2KInboxHeader* inbox;          // device memory
    RkRoute* routes;                // device memory, RK_ROUTE_CAPACITY entries
    unsigned char* scratch;         // device memory, RK_BATCH * input slot bytes
    long long clock_offset_ns;      // wall clock = %globaltimer + offset
    rk_u64 max_offset_ns;           // 0: accept any remote clock
    rk_u64 heartbeat_ns;            // longest idle time between heartbeats
    rk_u32 state_bytes;
    rk_u32 route_index;
    rk_u32 number;
    rk_u32 name_hash;
    rk_u32 name_len;
    rk_u32 kind;                    // which handler of the module (rk_dispatch)
    char name[RK_NAME_BYTES];
};
static_assert(sizeof(RkArgs) == 136, "RkArgs must match ringkernel-cuda's RkArgs");

// One actor slot of the resident pool (pinned host memory): the host writes `args`, then
// `state` = RK_SLOT_ASSIGNED; the slot's block runs the actor and sets RK_SLOT_IDLE when it ended.
#define RK_SLOT_IDLE 0u
#define RK_SLOT_ASSIGNED 1u
#define RK_SLOT_RUNNING 2u
struct RkSlot {
    rk_u32 state;
    rk_u32 shutdown;  // host: idle blocks exit
    rk_u32 reserved[14];
    RkArgs args;
    rk_u32 padding[14];
};
static_assert(sizeof(RkSlot) == 256, "RkSlot is 256 bytes");

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

// ---- memory access at the scope the peer needs -------------------------------------------------
__device__ __forceinline__ rk_u32 rk_ld_relaxed_sys(const rk_u32* p) {
    rk_u32 v;
    asm volatile("ld.relaxed.sys.u32 %0, [%1];" : "=r"(v) : "l"(p) : "memory");
    return v;
}
__device__ __forceinline__ void rk_st_relaxed_sys(rk_u32* p, rk_u32 v) {
    asm volatile("st.relaxed.sys.u32 [%0], %1;" : : "l"(p), "r"(v) : "memory");
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
__device__ __forceinline__ void rk_st_release_gpu(rk_u32* p, rk_u32 v) {
    asm volatile("st.release.gpu.u32 [%0], %1;" : : "l"(p), "r"(v) : "memory");
}
__device__ __forceinline__ void rk_st_relaxed_gpu(rk_u32* p, rk_u32 v) {
    asm volatile("st.relaxed.gpu.u32 [%0], %1;" : : "l"(p), "r"(v) : "memory");
}
__device__ __forceinline__ rk_u32 rk_cas_gpu(rk_u32* p, rk_u32 expected, rk_u32 desired) {
    rk_u32 old;
    asm volatile("atom.acq_rel.gpu.cas.b32 %0, [%1], %2, %3;" : "=r"(old) : "l"(p), "r"(expected), "r"(desired) : "memory");
    return old;
}
__device__ __forceinline__ rk_u32 rk_add_gpu(rk_u32* p, rk_u32 v) {
    rk_u32 old;
    asm volatile("atom.acq_rel.gpu.add.u32 %0, [%1], %2;" : "=r"(old) : "l"(p), "r"(v) : "memory");
    return old;
}
__device__ __forceinline__ void rk_fence_sc_gpu() { asm volatile("fence.sc.gpu;" : : : "memory"); }
__device__ __forceinline__ rk_u64 rk_globaltimer() {
    rk_u64 t;
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
    return t;
}

// ---- small helpers -----------------------------------------------------------------------------
__device__ __forceinline__ rk_u64 rk_join(const rk_u32 words[2]) { return (rk_u64)words[0] | ((rk_u64)words[1] << 32); }
__device__ __forceinline__ void rk_split(rk_u32 words[2], rk_u64 v) { words[0] = (rk_u32)v; words[1] = (rk_u32)(v >> 32); }
__device__ __forceinline__ RkTimestamp rk_header_timestamp(const MessageHeader* h) {
    RkTimestamp t;
    t.physical = rk_join(h->timestamp_physical_ns);
    t.logical = h->timestamp_logical;
    t.node = h->timestamp_node;
    return t;
}
__device__ __forceinline__ bool rk_ts_less(RkTimestamp a, RkTimestamp b) {
    if (a.physical != b.physical) return a.physical < b.physical;
    if (a.logical != b.logical) return a.logical < b.logical;
    return a.node < b.node;
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

// CRC32C (Castagnoli), what RK_FLAG_CHECKSUM covers: slicing-by-8 over tables in shared memory,
// built from the polynomial when the actor starts (rk_crc32c_init, block-cooperative).
#define RK_CRC32C_POLY 0x82F63B78u
__shared__ rk_u32 rk_crc_table[8][256];

__device__ void rk_crc32c_init() {
    for (rk_u32 i = threadIdx.x; i < 256u; i += blockDim.x) {
        rk_u32 c = i;
        for (int k = 0; k < 8; ++k) c = (c >> 1) ^ ((c & 1u) ? RK_CRC32C_POLY : 0u);
        rk_crc_table[0][i] = c;
    }
    __syncthreads();
    for (int t = 1; t < 8; ++t) {
        for (rk_u32 i = threadIdx.x; i < 256u; i += blockDim.x) {
            rk_u32 c = rk_crc_table[t - 1][i];
            rk_crc_table[t][i] = (c >> 8) ^ rk_crc_table[0][c & 0xFFu];
        }
        __syncthreads();
    }
}

__device__ __noinline__ rk_u32 rk_crc32c(const unsigned char* data, rk_u32 len) {
    rk_u32 crc = 0xFFFFFFFFu;
    rk_u32 i = 0;
    for (; i + 8u <= len; i += 8u) {
        rk_u32 one = ((rk_u32)data[i] | ((rk_u32)data[i + 1] << 8) | ((rk_u32)data[i + 2] << 16) |
                      ((rk_u32)data[i + 3] << 24)) ^ crc;
        rk_u32 two = (rk_u32)data[i + 4] | ((rk_u32)data[i + 5] << 8) | ((rk_u32)data[i + 6] << 16) |
                     ((rk_u32)data[i + 7] << 24);
        crc = rk_crc_table[7][one & 0xFFu] ^ rk_crc_table[6][(one >> 8) & 0xFFu] ^
              rk_crc_table[5][(one >> 16) & 0xFFu] ^ rk_crc_table[4][one >> 24] ^ rk_crc_table[3][two & 0xFFu] ^
              rk_crc_table[2][(two >> 8) & 0xFFu] ^ rk_crc_table[1][(two >> 16) & 0xFFu] ^ rk_crc_table[0][two >> 24];
    }
    for (; i < len; ++i) crc = (crc >> 8) ^ rk_crc_table[0][(crc ^ data[i]) & 0xFFu];
    return crc ^ 0xFFFFFFFFu;
}

// Block-cooperative copy; 16-byte accesses where both sides allow it.
__device__ void rk_copy(unsigned char* dst, const unsigned char* src, rk_u32 len) {
    if ((((size_t)dst | (size_t)src) & 15u) == 0) {
        rk_u32 vectors = len / 16u;
        for (rk_u32 i = threadIdx.x; i < vectors; i += blockDim.x)
            reinterpret_cast<uint4*>(dst)[i] = reinterpret_cast<const uint4*>(src)[i];
        for (rk_u32 i = vectors * 16u + threadIdx.x; i < len; i += blockDim.x) dst[i] = src[i];
    } else {
        for (rk_u32 i = threadIdx.x; i < len; i += blockDim.x) dst[i] = src[i];
    }
}

// ---- the actor's private state, shared by its block ----------------------------------------------
struct RkActor {
    RkArgs a;
    rk_u32 in_capacity, in_slot_bytes, out_capacity, out_slot_bytes, inbox_capacity, inbox_slot_bytes;
    rk_u32 in_head, out_tail, out_head_seen, inbox_head;
    rk_u32 processed, rejected, errors, last_error, heartbeat, dropped_output;
    rk_u32 pending_outputs;   // replies written but not yet published
    rk_u64 message_counter;   // message ids of what this actor sends
    rk_u64 batch_wall;        // wall clock of the current batch
    RkTimestamp clock;        // HLC: last event
    rk_u32 control_sequence, active, terminate;
    rk_u32 hlc_sequence;
    rk_u32 dirty;             // counters changed and not yet published
    rk_u32 route_cache_valid, route_cache_by_name, route_cache_key, route_cache_index;
    RkSlot* slot;             // this actor's pool slot
    rk_u64 prof[7];           // RK_PROFILE: cycles per phase (poll, read, check, handler, publish, k2k send) and messages
    rk_u32 failed;
    rk_u32 result;            // broadcast slot for block-cooperative calls
};

// RK_PROFILE (CudaConfig::profile): thread 0 adds the SM cycles of each phase of the message path
// to s.prof, published into the pool slot's reserved words with every flush.
#ifdef RK_PROFILE
#define RK_PROF_T(var) long long var = clock64()
#define RK_PROF_ADD(i, since) do { if (threadIdx.x == 0) rk_actor_state.prof[i] += (rk_u64)(clock64() - (since)); } while (0)
#else
#define RK_PROF_T(var)
#define RK_PROF_ADD(i, since) do { } while (0)
#endif

__device__ __forceinline__ rk_u64 rk_wall_ns(const RkActor& s) {
    return (rk_u64)((long long)rk_globaltimer() + s.a.clock_offset_ns);
}

// The HLC send rule: wall clock if it moved past the last timestamp, else the last one bumped.
__device__ __noinline__ RkTimestamp rk_tick(RkActor& s) {
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
__device__ __noinline__ RkTimestamp rk_update(RkActor& s, RkTimestamp r) {
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

// The actor and the current message's context: one of each per block.
__shared__ RkActor rk_actor_state;
__shared__ RkContext rk_ctx;
__device__ __forceinline__ RkActor& rk_actor() { return rk_actor_state; }

// Publishes what the host must see together: counters and input head, then, behind one system
// fence, the output tail. One fence per batch, not per message. Thread 0 only.
__device__ __noinline__ void rk_flush(RkActor& s) {
    ControlBlock* c = s.a.control;
    rk_st_relaxed_sys(&c->messages_processed, s.processed);
    rk_st_relaxed_sys(&c->messages_rejected, s.rejected);
    rk_st_relaxed_sys(&c->error_count, s.errors + s.dropped_output);
    rk_st_relaxed_sys(&c->last_error, s.last_error);
    rk_st_relaxed_sys(&c->input_head, s.in_head);
#ifdef RK_PROFILE
    for (int i = 0; i < 7; ++i) reinterpret_cast<volatile rk_u64*>(&s.slot->reserved[0])[i] = s.prof[i];
#endif
    __threadfence_system();
    rk_st_relaxed_sys(&c->output_tail, s.out_tail);
    s.pending_outputs = 0;
}

// Block-cooperative rk_flush.
__device__ void rk_publish(RkActor& s) {
    __syncthreads();
    if (threadIdx.x == 0) rk_flush(s);
    __syncthreads();
}

// The clock of the last event, under the seqlock (odd while written). Thread 0, while idle and
// when stopping: nothing on the message path reads it.
__device__ __noinline__ void rk_publish_clock(RkActor& s) {
    ControlBlock* c = s.a.control;
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

// Writes one message into the output ring, waiting while it is full (back-pressure; the host
// drains in call/receive/terminate). Returns RK_OK, or RK_ERROR_OUTPUT_FULL when nobody reads the
// ring any more (terminate with no handle left), or RK_ERROR_PAYLOAD_TOO_LARGE.
__device__ __noinline__ rk_u32 rk_write_output(RkActor& s, MessageHeader* h, const unsigned char* data, rk_u32 len) {
    if (len > s.out_slot_bytes - RK_MESSAGE_HEADER_BYTES) return RK_ERROR_PAYLOAD_TOO_LARGE;
    if (threadIdx.x == 0) {
        rk_u32 result = RK_OK;
        rk_u64 last_beat = rk_globaltimer();
        bool first_wait = true;
        while (s.out_tail - s.out_head_seen >= s.out_capacity) {
            s.out_head_seen = rk_ld_acquire_sys(&s.a.control->output_head);
            if (s.out_tail - s.out_head_seen < s.out_capacity) break;
            // Publish what is pending (and the count of the message being handled) so that the
            // host can drain it, and keep beating.
            if (s.pending_outputs != 0 || first_wait) rk_flush(s);
            first_wait = false;
            if (rk_ld_relaxed_sys(&s.a.control->should_terminate) == RK_TERMINATE_DRAIN_DETACHED) {
                result = RK_ERROR_OUTPUT_FULL;
                break;
            }
            rk_u64 now = rk_globaltimer();
            if (now - last_beat > s.a.heartbeat_ns / 2u) {
                s.heartbeat += 1u;
                rk_st_relaxed_sys(&s.a.control->heartbeat, s.heartbeat);
                last_beat = now;
            }
            __nanosleep(200);
        }
        s.result = result;
    }
    __syncthreads();
    rk_u32 result = s.result;
    if (result != RK_OK) {
        if (threadIdx.x == 0) s.dropped_output += 1u;
        __syncthreads();
        return result;
    }
    unsigned char* slot = s.a.output + (size_t)(s.out_tail & (s.out_capacity - 1u)) * s.out_slot_bytes;
    if (threadIdx.x == 0) {
        h->payload_bytes = len;
        h->checksum = (h->flags & RK_FLAG_CHECKSUM) ? rk_crc32c(data, len) : 0u;
    }
    rk_copy(slot + RK_MESSAGE_HEADER_BYTES, data, len);
    __syncthreads();
    // Header: its used bytes (hot line, message id, destination); the padding stays zero.
    rk_copy(slot, reinterpret_cast<const unsigned char*>(h), RK_MESSAGE_HEADER_USED_BYTES);
    __syncthreads();
    if (threadIdx.x == 0) {
        s.out_tail += 1u;
        s.pending_outputs += 1u;
    }
    __syncthreads();
    return RK_OK;
}

// ---- K2K --------------------------------------------------------------------------------------
__device__ __forceinline__ rk_u32* rk_inbox_sequences(K2KInboxHeader* ib) {
    return reinterpret_cast<rk_u32*>(reinterpret_cast<unsigned char*>(ib) + RK_K2K_INBOX_SEQUENCES_OFFSET);
}
__device__ __forceinline__ unsigned char* rk_inbox_slot(K2KInboxHeader* ib, rk_u32 pos) {
    rk_u32 slots_offset = (RK_K2K_INBOX_SEQUENCES_OFFSET + 4u * ib->capacity + 63u) & ~63u;
    return reinterpret_cast<unsigned char*>(ib) + slots_offset + (size_t)(pos & (ib->capacity - 1u)) * ib->slot_bytes;
}

// Finds a running actor by number (name == nullptr) or by name and enters it (in_flight), so
// that it cannot finish its final drain while this send is under way. Block-cooperative: every
// thread looks at a few entries (relaxed), thread 0 checks the first match (acquire) and enters.
__device__ __noinline__ RkRoute* rk_route_enter(RkActor& s, const char* name, rk_u32 name_len, rk_u32 number) {
    __shared__ rk_u32 candidate;
    __shared__ RkRoute* entered;
    rk_u32 hash = name ? rk_fnv1a(name, name_len) : 0u;
    rk_u32 key = name ? hash : number;
    if (threadIdx.x == 0) {
        candidate = 0xFFFFFFFFu;
        entered = nullptr;
        // The last destination first: a stream of sends to one actor skips the scan.
        if (s.route_cache_valid && s.route_cache_by_name == (name != nullptr) && s.route_cache_key == key) {
            RkRoute* r = &s.a.routes[s.route_cache_index];
            bool same = rk_ld_relaxed_gpu(&r->alive) == 1u &&
                        (name ? (rk_ld_relaxed_gpu(&r->name_hash) == hash && rk_ld_relaxed_gpu(&r->name_len) == name_len)
                              : rk_ld_relaxed_gpu(&r->number) == number);
            if (same) candidate = s.route_cache_index;
        }
    }
    __syncthreads();
    bool cached = candidate != 0xFFFFFFFFu;
    __syncthreads();
    for (rk_u32 i = threadIdx.x; !cached && i < RK_ROUTE_CAPACITY; i += blockDim.x) {
        RkRoute* r = &s.a.routes[i];
        if (rk_ld_relaxed_gpu(&r->alive) != 1u) continue;
        bool match = name ? (rk_ld_relaxed_gpu(&r->name_hash) == hash && rk_ld_relaxed_gpu(&r->name_len) == name_len)
                          : (rk_ld_relaxed_gpu(&r->number) == number);
        if (match) atomicMin(&candidate, i);
    }
    __syncthreads();
    if (threadIdx.x == 0 && candidate != 0xFFFFFFFFu) {
        RkRoute* r = &s.a.routes[candidate];
        bool match = rk_ld_acquire_gpu(&r->alive) == 1u;
        for (rk_u32 k = 0; name && match && k < name_len && k < RK_NAME_BYTES; ++k) match = r->name[k] == name[k];
        if (match) {
            // Dekker with the owner's final drain: announce, then check that it still accepts.
            rk_add_gpu(&r->in_flight, 1u);
            rk_fence_sc_gpu();
            // Still alive, and still the same actor (the entry may have been reused meanwhile:
            // numbers are never reused, names by a relaunch of the same kernel id only).
            bool same = rk_ld_relaxed_gpu(&r->alive) == 1u &&
                        (name ? (rk_ld_relaxed_gpu(&r->name_hash) == hash && rk_ld_relaxed_gpu(&r->name_len) == name_len)
                              : rk_ld_relaxed_gpu(&r->number) == number);
            if (same) {
                entered = r;
                s.route_cache_valid = 1u;
                s.route_cache_by_name = name != nullptr;
                s.route_cache_key = key;
                s.route_cache_index = candidate;
            } else {
                rk_add_gpu(&r->in_flight, 0xFFFFFFFFu);
            }
        }
    }
    __syncthreads();
    return entered;
}

// Sends one message to another actor's inbox. Block-cooperative.
__device__ __noinline__ rk_u32 rk_k2k_send(RkActor& s, RkContext& ctx, const char* name, rk_u32 number, MessageHeader* h,
                              const unsigned char* data, rk_u32 len) {
    RK_PROF_T(t_send);
    rk_u32 name_len = rk_strlen(name);
    __shared__ rk_u32 claimed, status;
    RkRoute* route = rk_route_enter(s, name, name_len, number);
    if (threadIdx.x == 0) {
        status = RK_OK;
        if (route == nullptr) {
            status = RK_ERROR_HANDLER_ERROR;
            rk_u32 at = rk_append(ctx.send_reason, 0, "kernel `");
            if (name) at = rk_append_n(ctx.send_reason, at, name, name_len);
            else { at = rk_append(ctx.send_reason, at, "#"); at = rk_append_u32(ctx.send_reason, at, number); }
            rk_append(ctx.send_reason, at, "` is not running (no running kernel has this id)");
        } else {
            K2KInboxHeader* ib = reinterpret_cast<K2KInboxHeader*>(route->inbox);
            if (len > ib->slot_bytes - RK_MESSAGE_HEADER_BYTES) {
                status = RK_ERROR_PAYLOAD_TOO_LARGE;
                rk_u32 at = rk_append(ctx.send_reason, 0, "payload of ");
                at = rk_append_u32(ctx.send_reason, at, len);
                at = rk_append(ctx.send_reason, at, " bytes does not fit the K2K inbox slot's ");
                at = rk_append_u32(ctx.send_reason, at, ib->slot_bytes - RK_MESSAGE_HEADER_BYTES);
                rk_append(ctx.send_reason, at, "-byte payload area");
            } else {
                rk_u32* seqs = rk_inbox_sequences(ib);
                rk_u32 cap = ib->capacity;
                rk_u32 pos = rk_ld_relaxed_gpu(&ib->tail);
                while (true) {
                    rk_u32 seq = rk_ld_acquire_gpu(&seqs[pos & (cap - 1u)]);
                    int lap = (int)(seq - pos);
                    if (lap == 0) {
                        rk_u32 seen = rk_cas_gpu(&ib->tail, pos, pos + 1u);
                        if (seen == pos) break;
                        pos = seen;
                    } else if (lap < 0) {
                        rk_add_gpu(&ib->full_rejections, 1u);
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
                h->dest_kernel = route->number;
                h->payload_bytes = len;
                h->checksum = (h->flags & RK_FLAG_CHECKSUM) ? rk_crc32c(data, len) : 0u;
            }
            if (status != RK_OK) rk_add_gpu(&route->in_flight, 0xFFFFFFFFu);
        }
        if (status != RK_OK) ctx.send_error = status;
    }
    __syncthreads();
    rk_u32 result = status;
    if (result == RK_OK) {
        K2KInboxHeader* ib = reinterpret_cast<K2KInboxHeader*>(route->inbox);
        unsigned char* slot = rk_inbox_slot(ib, claimed);
        rk_copy(slot + RK_MESSAGE_HEADER_BYTES, data, len);
        rk_copy(slot, reinterpret_cast<const unsigned char*>(h), RK_MESSAGE_HEADER_BYTES);
        __syncthreads();
        if (threadIdx.x == 0) {
            rk_st_relaxed_gpu(&ib->last_source, s.a.number);
            rk_st_release_gpu(&rk_inbox_sequences(ib)[claimed & (ib->capacity - 1u)], claimed + 1u);
            rk_add_gpu(&route->in_flight, 0xFFFFFFFFu);
        }
    }
    __syncthreads();
    RK_PROF_ADD(5, t_send);
    return result;
}

// ---- delivering what a handler sends ----------------------------------------------------------
__shared__ __align__(16) MessageHeader rk_out_header;

// A fresh header: magic, version, a message id unique to this actor, source, timestamp.
__device__ __noinline__ void rk_new_header(RkActor& s, MessageHeader* h, rk_u32 type, rk_u64 correlation, rk_u32 priority,
                              rk_u32 flags) {
    // Every used field is written; the padding was zeroed when the actor started.
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

// Delivers `rk_out_header` + data to the host (dest == RK_HOST_KERNEL_ID) or to a kernel.
__device__ __noinline__ rk_u32 rk_deliver(RkActor& s, RkContext& ctx, const char* name, rk_u32 dest, const void* data, rk_u32 len) {
    const unsigned char* bytes = reinterpret_cast<const unsigned char*>(data);
    if (name == nullptr && dest == RK_HOST_KERNEL_ID) {
        rk_u32 result = rk_write_output(s, &rk_out_header, bytes, len);
        if (result != RK_OK && threadIdx.x == 0) {
            ctx.send_error = result;
            rk_u32 at = rk_append(ctx.send_reason, 0, result == RK_ERROR_OUTPUT_FULL
                ? "output ring is full and no host handle is left to read it"
                : "payload does not fit the output ring's slots: ");
            if (result != RK_ERROR_OUTPUT_FULL) rk_append_u32(ctx.send_reason, at, len);
        }
        __syncthreads();
        return result;
    }
    if (threadIdx.x == 0) rk_out_header.flags |= RK_FLAG_K2K;
    __syncthreads();
    return rk_k2k_send(s, ctx, name, dest, &rk_out_header, bytes, len);
}

__device__ rk_u32 rk_reply(RkContext& ctx, rk_u32 type, const void* data, rk_u32 len) {
    RkActor& s = rk_actor();
    const MessageHeader* req = ctx.header;
    if (threadIdx.x == 0)
        rk_new_header(s, &rk_out_header, type, rk_join(req->correlation_id), req->priority,
                      RK_FLAG_REPLY | (req->flags & RK_FLAG_CHECKSUM));
    __syncthreads();
    return rk_deliver(s, ctx, nullptr, req->source_kernel, data, len);
}

__device__ rk_u32 rk_emit(RkContext& ctx, rk_u32 type, const void* data, rk_u32 len) {
    RkActor& s = rk_actor();
    if (threadIdx.x == 0)
        rk_new_header(s, &rk_out_header, type, rk_join(ctx.header->correlation_id), ctx.header->priority, 0u);
    __syncthreads();
    return rk_deliver(s, ctx, nullptr, RK_HOST_KERNEL_ID, data, len);
}

__device__ rk_u32 rk_send_to(RkContext& ctx, const char* kernel, rk_u32 type, const void* data, rk_u32 len) {
    RkActor& s = rk_actor();
    if (threadIdx.x == 0)
        rk_new_header(s, &rk_out_header, type, rk_join(ctx.header->correlation_id), ctx.header->priority, 0u);
    __syncthreads();
    return rk_deliver(s, ctx, kernel, 0u, data, len);
}

__device__ rk_u32 rk_send_to_number(RkContext& ctx, rk_u32 number, rk_u32 type, const void* data, rk_u32 len) {
    RkActor& s = rk_actor();
    if (threadIdx.x == 0)
        rk_new_header(s, &rk_out_header, type, rk_join(ctx.header->correlation_id), ctx.header->priority, 0u);
    __syncthreads();
    if (number == RK_HOST_KERNEL_ID) return rk_deliver(s, ctx, nullptr, RK_HOST_KERNEL_ID, data, len);
    return rk_deliver(s, ctx, nullptr, number, data, len);
}

__device__ void rk_set_outcome(RkContext& ctx, rk_u32 outcome, const char* reason) {
    if (threadIdx.x == 0 && ctx.outcome == RK_OK) {
        ctx.outcome = outcome;
        rk_append(ctx.reason, 0, reason ? reason : (ctx.send_error != RK_OK ? ctx.send_reason : "handler error"));
    }
    __syncthreads();
}

__device__ void rk_error(RkContext& ctx, const char* reason) { rk_set_outcome(ctx, RK_ERROR_HANDLER_ERROR, reason); }
__device__ void rk_fail(RkContext& ctx, const char* reason) { rk_set_outcome(ctx, RK_ERROR_HANDLER_FAULT, reason); }

// The handlers follow, each in its own namespace (`rk_kernel_<kind>`), then rk_dispatch, which
// calls the actor's one by kind.
__device__ void rk_dispatch(rk_u32 kind, RkContext& ctx);
