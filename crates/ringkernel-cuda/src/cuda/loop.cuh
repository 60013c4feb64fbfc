// RingKernel CUDA actor runtime, part 2 of 2: the persistent actor loop (after the user's handler).
//
// One block of RK_THREADS threads per actor. Each pass: thread 0 reads the control sequence
// (relaxed) and the input tail (acquire) in one round trip over the bus; new messages are read in
// batches, the first 64 bytes of header and payload of up to RK_BATCH messages in one round trip,
// into private device memory; each is validated, timestamped and handed to the handler in order;
// replies are written straight into the host's output ring; counters, clock, input head and
// output tail are published once per batch behind one system fence. K2K messages come from the
// actor's inbox in device memory. Terminate drains everything accepted; a failing handler stops
// the actor with RK_FAILED after publishing exactly what it consumed.

#define RK_ERROR_REPORT_TYPE 0xFFFFFFFEu
// Passes spent spinning before an idle actor naps 2 µs between looks (~200 µs of passes).
#define RK_IDLE_SPIN_PASSES 200u
#define RK_HOST_POLL_EVERY 16u
// Passes after a K2K message during which the host's line is read every RK_HOST_POLL_EVERY.
#define RK_INBOX_HOT_PASSES 256u
// Passes a busy actor may leave K2K-only counters unpublished.
#define RK_K2K_PUBLISH_PASSES 64u
// Busy passes between looks at the clock for the heartbeat.
#define RK_CLOCK_EVERY 256u

__shared__ __align__(16) unsigned char rk_report_buffer[sizeof(ErrorReportHeader) + RK_REASON_BYTES];

// Tells the sender of `req` why it was not handled (never answers an error report).
__device__ __noinline__ void rk_report(RkActor& s, RkContext& ctx, const MessageHeader* req, rk_u32 code, rk_u64 v0, rk_u64 v1,
                          const char* reason) {
    if (req->flags & RK_FLAG_ERROR) return;
    __shared__ rk_u32 len;
    if (threadIdx.x == 0) {
        ErrorReportHeader* fixed = reinterpret_cast<ErrorReportHeader*>(rk_report_buffer);
        fixed->code = code;
        fixed->_reserved = 0u;
        rk_split(fixed->value0, v0);
        rk_split(fixed->value1, v1);
        rk_u32 n = 0;
        while (reason && reason[n] != 0 && n < RK_REASON_BYTES) {
            rk_report_buffer[sizeof(ErrorReportHeader) + n] = (unsigned char)reason[n];
            ++n;
        }
        len = (rk_u32)sizeof(ErrorReportHeader) + n;
        rk_u32 capacity = s.out_slot_bytes - RK_MESSAGE_HEADER_BYTES;
        if (req->source_kernel == RK_HOST_KERNEL_ID && len > capacity) len = capacity;
        rk_new_header(s, &rk_out_header, RK_ERROR_REPORT_TYPE, rk_join(req->correlation_id), req->priority,
                      RK_FLAG_REPLY | RK_FLAG_ERROR | (req->flags & RK_FLAG_CHECKSUM));
    }
    __syncthreads();
    rk_u32 result = rk_deliver(s, ctx, nullptr, req->source_kernel, rk_report_buffer, len);
    if (result != RK_OK && threadIdx.x == 0) s.errors += 1u;
    __syncthreads();
}

__device__ void rk_count_error(RkActor& s, rk_u32 code, bool rejected) {
    if (threadIdx.x == 0) {
        if (rejected) s.rejected += 1u;
        s.errors += 1u;
        s.last_error = code;
    }
    __syncthreads();
}

// Checks a copied header as the host's decoder does; returns RK_OK or the RK_ERROR_* code.
__device__ __noinline__ rk_u32 rk_check(const MessageHeader* h, const unsigned char* payload, rk_u32 capacity) {
    if (h->magic != RK_MESSAGE_MAGIC) return RK_ERROR_BAD_MAGIC;
    if (h->version != RK_PROTOCOL_VERSION) return RK_ERROR_UNSUPPORTED_VERSION;
    if (h->flags & ~RK_FLAGS_ALL) return RK_ERROR_UNKNOWN_FLAGS;
    if (h->priority > RK_PRIORITY_MAX) return RK_ERROR_INVALID_PRIORITY;
    if (h->payload_bytes > capacity) return RK_ERROR_PAYLOAD_TOO_LARGE;
    if ((h->flags & RK_FLAG_CHECKSUM) && rk_crc32c(payload, h->payload_bytes) != h->checksum)
        return RK_ERROR_CHECKSUM_MISMATCH;
    return RK_OK;
}

// Validates, stamps and handles one message whose copy starts at `copy`. Block-cooperative.
__device__ __noinline__ void rk_handle_copy(RkActor& s, unsigned char* copy, rk_u32 capacity) {
    RK_PROF_T(t_check);
#ifdef RK_PROFILE
    if (threadIdx.x == 0) s.prof[6] += 1u;
#endif
    RkContext& ctx = rk_ctx;
    const MessageHeader* h = reinterpret_cast<const MessageHeader*>(copy);
    __shared__ rk_u32 verdict;
    __shared__ rk_u64 now_ns;
    if (threadIdx.x == 0) {
        verdict = rk_check(h, copy + RK_MESSAGE_HEADER_BYTES, capacity);
        rk_u64 deadline = rk_join(h->deadline_ns);
        now_ns = 0;
        if (verdict == RK_OK && deadline != 0) {
            now_ns = rk_wall_ns(s);
            if (now_ns > deadline) verdict = RK_ERROR_DEADLINE_EXPIRED;
        }
        if (verdict == RK_OK && s.a.max_offset_ns != 0 && rk_join(h->timestamp_physical_ns) > s.batch_wall + s.a.max_offset_ns)
            verdict = RK_ERROR_CLOCK_SKEW;
    }
    __syncthreads();
    rk_u32 v = verdict;
    if (v == RK_ERROR_DEADLINE_EXPIRED) {
        rk_count_error(s, v, true);
        rk_report(s, ctx, h, v, rk_join(h->deadline_ns), now_ns, "deadline expired before handling");
        return;
    }
    if (v == RK_ERROR_CLOCK_SKEW) {
        rk_count_error(s, v, true);
        rk_report(s, ctx, h, v, rk_join(h->timestamp_physical_ns), s.batch_wall, "the sender's clock is too far ahead");
        return;
    }
    if (v != RK_OK) {  // nothing in it can be trusted, so nobody to answer: counted
        rk_count_error(s, v, true);
        return;
    }
    if (threadIdx.x == 0) {
        ctx.header = h;
        ctx.payload = copy + RK_MESSAGE_HEADER_BYTES;
        ctx.payload_bytes = h->payload_bytes;
        ctx.message_type = h->message_type;
        ctx.received_at = rk_update(s, rk_header_timestamp(h));
        ctx.state = s.a.state;
        ctx.state_bytes = s.a.state_bytes;
        ctx.kernel_number = s.a.number;
        ctx.outcome = RK_OK;
        ctx.send_error = RK_OK;
        ctx.reason[0] = 0;
        ctx.send_reason[0] = 0;
        s.processed += 1u;
    }
    __syncthreads();
    RK_PROF_ADD(2, t_check);
    RK_PROF_T(t_handler);
    rk_dispatch(s.a.kind, ctx);
    __syncthreads();
    RK_PROF_ADD(3, t_handler);
    rk_u32 outcome = ctx.outcome;
    if (outcome != RK_OK) {
        rk_count_error(s, outcome, false);
        rk_report(s, ctx, h, outcome, 0, 0, ctx.reason);
        if (outcome == RK_ERROR_HANDLER_FAULT && threadIdx.x == 0) s.failed = 1u;
        __syncthreads();
    }
}

// Reads the host's flags if they changed and acknowledges them. Thread 0.
__device__ __noinline__ void rk_poll_control(RkActor& s, rk_u32 sequence_seen) {
    if (sequence_seen == s.control_sequence) return;
    ControlBlock* c = s.a.control;
    rk_u32 sequence = rk_ld_acquire_sys(&c->control_sequence);
    s.active = rk_ld_relaxed_sys(&c->is_active);
    s.terminate = rk_ld_relaxed_sys(&c->should_terminate);
    s.control_sequence = sequence;
    rk_st_release_sys(&c->control_ack, sequence);
}

// Handles up to RK_BATCH messages of the input ring (tail already read). Returns how many.
// Reads chunk `chunk` (0-3: the header's hot line, 4-7: the payload's first 64 bytes) of input
// slot `index` into the scratch copy `m`. One 16-byte load over the bus.
__device__ __forceinline__ void rk_read_chunk(RkActor& s, rk_u32 index, rk_u32 m, rk_u32 chunk) {
    rk_u32 slot_bytes = s.in_slot_bytes;
    rk_u32 capacity = slot_bytes - RK_MESSAGE_HEADER_BYTES;
    rk_u32 offset = chunk < 4u ? chunk * 16u : RK_MESSAGE_HEADER_BYTES + (chunk - 4u) * 16u;
    if (chunk >= 4u && (chunk - 4u) * 16u >= capacity) return;
    const unsigned char* slot = s.a.input + (size_t)(index & (s.in_capacity - 1u)) * slot_bytes;
    const uint4* from = reinterpret_cast<const uint4*>(slot + offset);
    uint4 value;
    asm volatile("ld.relaxed.sys.v4.u32 {%0,%1,%2,%3}, [%4];"
                 : "=r"(value.x), "=r"(value.y), "=r"(value.z), "=r"(value.w) : "l"(from) : "memory");
    *reinterpret_cast<uint4*>(s.a.scratch + (size_t)m * slot_bytes + offset) = value;
}

__device__ __noinline__ rk_u32 rk_drain_input(RkActor& s, rk_u32 tail) {
    RK_PROF_T(t_read);
    __shared__ rk_u32 count;
    if (threadIdx.x == 0) {
        rk_u32 available = tail - s.in_head;
        if (available > s.in_capacity) available = s.in_capacity;  // a host bug; never read past a lap
        count = available < RK_BATCH ? available : RK_BATCH;
        if (count != 0) s.batch_wall = rk_wall_ns(s);
    }
    __syncthreads();
    rk_u32 n = count;
    if (n == 0) return 0;
    rk_u32 first = s.in_head;  // s.in_head advances as messages are handled
    rk_u32 slot_bytes = s.in_slot_bytes;
    rk_u32 capacity = slot_bytes - RK_MESSAGE_HEADER_BYTES;
    // One round trip: 4 × 16 B of header hot line and up to 4 × 16 B of payload per message,
    // read after the acquire of the tail (ordered by the barrier that follows it).
    {
        rk_u32 m = threadIdx.x / 8u, chunk = threadIdx.x % 8u;
        if (m < n) rk_read_chunk(s, first + m, m, chunk);
    }
    __syncthreads();
    RK_PROF_ADD(1, t_read);
    for (rk_u32 m = 0; m < n; ++m) {
        unsigned char* copy = s.a.scratch + (size_t)m * slot_bytes;
        rk_u32 payload = reinterpret_cast<const MessageHeader*>(copy)->payload_bytes;
        if (payload > 64u) {  // the rest of a large payload, bounded by the slot
            rk_u32 end = payload < capacity ? payload : capacity;
            const unsigned char* slot = s.a.input + (size_t)((first + m) & (s.in_capacity - 1u)) * slot_bytes;
            rk_u32 rest = ((end - 64u) + 15u) & ~15u;
            rk_copy(copy + RK_MESSAGE_HEADER_BYTES + 64u, slot + RK_MESSAGE_HEADER_BYTES + 64u, rest);
            __syncthreads();
        }
        rk_handle_copy(s, copy, capacity);
        if (threadIdx.x == 0) s.in_head += 1u;
        __syncthreads();
        if (s.failed) return m + 1u;
    }
    return n;
}

// Handles up to RK_BATCH messages of the K2K inbox. Returns how many.
__device__ __noinline__ rk_u32 rk_drain_inbox(RkActor& s) {
    K2KInboxHeader* ib = s.a.inbox;
    __shared__ rk_u32 ready;
    rk_u32 handled = 0;
    rk_u32 capacity = s.inbox_slot_bytes - RK_MESSAGE_HEADER_BYTES;
    while (handled < RK_BATCH) {
        if (threadIdx.x == 0) {
            rk_u32 pos = s.inbox_head;
            ready = rk_ld_acquire_gpu(&rk_inbox_sequences(ib)[pos & (s.inbox_capacity - 1u)]) == pos + 1u;
            if (ready && handled == 0) s.batch_wall = rk_wall_ns(s);
        }
        __syncthreads();
        if (!ready) break;
        unsigned char* slot = rk_inbox_slot(ib, s.inbox_head);
        rk_u32 payload = reinterpret_cast<const MessageHeader*>(slot)->payload_bytes;
        rk_u32 len = RK_MESSAGE_HEADER_BYTES + (((payload < capacity ? payload : capacity) + 15u) & ~15u);
        rk_copy(s.a.scratch, slot, len);
        __syncthreads();
        rk_handle_copy(s, s.a.scratch, capacity);
        if (threadIdx.x == 0) {
            rk_u32 pos = s.inbox_head;
            rk_st_release_gpu(&rk_inbox_sequences(ib)[pos & (s.inbox_capacity - 1u)], pos + s.inbox_capacity);
            s.inbox_head = pos + 1u;
            rk_st_release_gpu(&ib->head, s.inbox_head);
        }
        __syncthreads();
        handled += 1u;
        if (s.failed) break;
    }
    return handled;
}

// Stops accepting K2K messages and waits until no sender is still writing into the inbox.
__device__ __noinline__ void rk_leave_routes(RkActor& s) {
    if (threadIdx.x == 0) {
        RkRoute* r = &s.a.routes[s.a.route_index];
        rk_st_release_gpu(&r->alive, 0u);
        rk_fence_sc_gpu();
        while (rk_ld_acquire_gpu(&r->in_flight) != 0u) __nanosleep(100);
    }
    __syncthreads();
}

__device__ __noinline__ void rk_stop(RkActor& s, rk_u32 code) {
    if (threadIdx.x == 0 && code == RK_FAILED) s.last_error = RK_ERROR_HANDLER_FAULT;
    __syncthreads();
    rk_publish(s);
    if (threadIdx.x == 0) {
        rk_publish_clock(s);
        s.heartbeat += 1u;
        rk_st_relaxed_sys(&s.a.control->heartbeat, s.heartbeat);
        __threadfence_system();
        rk_st_release_sys(&s.a.control->has_terminated, code);
    }
}

// Runs one actor until it terminated or failed.
__device__ __noinline__ void rk_actor_run(const RkArgs& args) {
    RkActor& s = rk_actor_state;
    rk_crc32c_init();
    for (rk_u32 i = threadIdx.x; i < RK_MESSAGE_HEADER_BYTES / 4u; i += blockDim.x)
        reinterpret_cast<rk_u32*>(&rk_out_header)[i] = 0u;
    if (threadIdx.x == 0) {
        s.a = args;
        ControlBlock* c = args.control;
        s.in_capacity = c->input_capacity;
        s.in_slot_bytes = c->input_slot_bytes;
        s.out_capacity = c->output_capacity;
        s.out_slot_bytes = c->output_slot_bytes;
        s.inbox_capacity = args.inbox->capacity;
        s.inbox_slot_bytes = args.inbox->slot_bytes;
        s.in_head = rk_ld_relaxed_sys(&c->input_head);
        s.out_tail = rk_ld_relaxed_sys(&c->output_tail);
        s.out_head_seen = rk_ld_acquire_sys(&c->output_head);
        s.inbox_head = rk_ld_relaxed_gpu(&args.inbox->head);
        s.processed = s.rejected = s.errors = s.last_error = s.dropped_output = 0u;
        s.pending_outputs = 0u;
        s.heartbeat = 0u;
        s.message_counter = 0u;
        s.clock.physical = 0u;
        s.clock.logical = 0u;
        s.clock.node = args.number;
        s.control_sequence = 0u;
        s.hlc_sequence = rk_ld_relaxed_sys(&c->hlc_sequence) & ~1u;
        s.active = 0u;
        s.terminate = RK_TERMINATE_NONE;
        s.failed = 0u;
        s.dirty = 0u;
        s.route_cache_valid = 0u;
        s.slot = reinterpret_cast<RkSlot*>(reinterpret_cast<unsigned char*>(const_cast<RkArgs*>(&args)) - 64);
        for (int i = 0; i < 7; ++i) s.prof[i] = 0u;
        // Publish the route: K2K senders find this actor from here on.
        RkRoute* r = &args.routes[args.route_index];
        r->number = args.number;
        r->name_hash = args.name_hash;
        r->inbox = (rk_u64)args.inbox;
        r->payload_capacity = s.inbox_slot_bytes - RK_MESSAGE_HEADER_BYTES;
        r->name_len = args.name_len;
        for (rk_u32 i = 0; i < RK_NAME_BYTES; ++i) r->name[i] = args.name[i];
        // `in_flight` is not reset: a sender that looked at this entry's previous actor may
        // still be undoing its increment (the route table starts zeroed).
        __threadfence();
        rk_st_release_gpu(&r->alive, 1u);
        // Started: the host's launch waits for the first heartbeat.
        s.heartbeat = 1u;
        rk_st_release_sys(&c->heartbeat, 1u);
    }
    __syncthreads();

    __shared__ rk_u32 tail;
    // %globaltimer is read only where a time is needed (a batch's stamps, heartbeats every
    // RK_CLOCK_EVERY idle passes): pass counters pace everything else.
    rk_u64 last_beat = rk_globaltimer();
    // While K2K traffic flows, the host's line (a round trip over the bus, ~1 µs) is read only
    // every RK_HOST_POLL_EVERY passes, so that the inbox is looked at far more often.
    rk_u32 hot_passes = 0, idle_passes = 0, unpublished_passes = 0;
    rk_u32 pass = 0;
    __shared__ rk_u32 poll_host, publish_now;
    if (threadIdx.x == 0) tail = 0;
    while (true) {
        RK_PROF_T(t_pass);
        if (threadIdx.x == 0) {
            pass += 1u;
            poll_host = (hot_passes == 0u || pass % RK_HOST_POLL_EVERY == 0u) ? 1u : 0u;
            if (hot_passes != 0u) hot_passes -= 1u;
        }
        __syncthreads();
        // One round trip: thread 0 reads the host's control sequence and input tail.
        if (poll_host && threadIdx.x == 0) {
            ControlBlock* c = s.a.control;
            rk_u32 sequence = rk_ld_relaxed_sys(&c->control_sequence);
            tail = rk_ld_acquire_sys(&c->input_tail);
            rk_poll_control(s, sequence);
        }
        __syncthreads();
        RK_PROF_T(t_polled);
        if (s.terminate != RK_TERMINATE_NONE) break;
        rk_u32 handled = 0, from_host = 0;
        if (s.active) {
            from_host = rk_drain_input(s, tail);
            handled = from_host;
            if (!s.failed) {
                rk_u32 k2k = rk_drain_inbox(s);
                if (k2k != 0 && threadIdx.x == 0) {
                    hot_passes = RK_INBOX_HOT_PASSES;
                    s.dirty = 1u;
                }
                handled += k2k;
            }
        }
        // The host must see replies and freed input slots at once; counters of K2K-only work
        // can wait a few passes (a system fence costs about a microsecond).
        if (threadIdx.x == 0) {
            unpublished_passes = s.dirty ? unpublished_passes + 1u : 0u;
            publish_now = s.pending_outputs != 0 || from_host != 0 || s.failed ||
                          (s.dirty && (handled == 0 || unpublished_passes >= RK_K2K_PUBLISH_PASSES));
            if (publish_now) {
                s.dirty = 0u;
                unpublished_passes = 0u;
            }
        }
        __syncthreads();
#ifdef RK_PROFILE
        if (from_host != 0 && threadIdx.x == 0) s.prof[0] += (rk_u64)(t_polled - t_pass);
#endif
        RK_PROF_T(t_publish);
        if (publish_now) rk_publish(s);
        if (publish_now) RK_PROF_ADD(4, t_publish);
        if (s.failed) {
            rk_leave_routes(s);
            rk_stop(s, RK_FAILED);
            return;
        }
        if (threadIdx.x == 0) {
            idle_passes = handled != 0 ? 0u : idle_passes + 1u;
            if (pass % RK_CLOCK_EVERY == 0u || (handled == 0 && idle_passes % 16u == 0u)) {
                rk_u64 now = rk_globaltimer();
                if (now - last_beat >= s.a.heartbeat_ns) {
                    s.heartbeat += 1u;
                    rk_st_relaxed_sys(&s.a.control->heartbeat, s.heartbeat);
                    if (handled == 0) rk_publish_clock(s);
                    last_beat = now;
                }
            }
            if (idle_passes > RK_IDLE_SPIN_PASSES) __nanosleep(2000);
        }
        __syncthreads();
    }

    // Terminate: no more K2K senders, then handle everything accepted, then report.
    rk_leave_routes(s);
    while (true) {
        if (threadIdx.x == 0) tail = rk_ld_acquire_sys(&s.a.control->input_tail);
        __syncthreads();
        rk_u32 handled = rk_drain_input(s, tail);
        if (!s.failed) handled += rk_drain_inbox(s);
        if (handled != 0 || s.pending_outputs != 0) rk_publish(s);
        if (s.failed) {
            rk_stop(s, RK_FAILED);
            return;
        }
        if (handled == 0) break;
        if (threadIdx.x == 0) {
            rk_u64 now = rk_globaltimer();
            if (now - last_beat >= s.a.heartbeat_ns) {
                s.heartbeat += 1u;
                rk_st_relaxed_sys(&s.a.control->heartbeat, s.heartbeat);
                last_beat = now;
            }
        }
        __syncthreads();
    }
    rk_stop(s, RK_TERMINATED);
}

// The resident pool: one block per actor slot. An idle block polls its slot (backing off to
// RK_POOL_IDLE_MAX_NS between looks), runs the actor assigned to it, and marks the slot idle again.
#define RK_POOL_IDLE_MAX_NS 100000u
extern "C" __global__ void __launch_bounds__(RK_THREADS) rk_pool_main(RkSlot* slots) {
    RkSlot* slot = &slots[blockIdx.x];
    __shared__ rk_u32 command;
    while (true) {
        if (threadIdx.x == 0) {
            rk_u32 nap = 500u;
            while (true) {
                if (rk_ld_acquire_sys(&slot->state) == RK_SLOT_ASSIGNED) { command = 1u; break; }
                if (rk_ld_relaxed_sys(&slot->shutdown) != 0u) { command = 0u; break; }
                __nanosleep(nap);
                if (nap < RK_POOL_IDLE_MAX_NS) nap *= 2u;
            }
            if (command == 1u) rk_st_relaxed_sys(&slot->state, RK_SLOT_RUNNING);
        }
        __syncthreads();
        if (command == 0u) return;
        rk_actor_run(slot->args);
        __syncthreads();
        if (threadIdx.x == 0) {
            __threadfence_system();
            rk_st_release_sys(&slot->state, RK_SLOT_IDLE);
        }
        __syncthreads();
    }
}
