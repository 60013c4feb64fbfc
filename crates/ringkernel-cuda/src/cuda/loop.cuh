// RingKernel CUDA actor runtime, part 2 of 2: the persistent actor loop (after the user's handler).
//
// One block per actor, in three roles:
//
// * the bus warp reads the host's memory: each round trip fetches the control block's host line
//   and, speculatively, the next input slot's hot line, check word and first payload line, so that
//   a message costs one read over the bus (accepted by its slot check when the tail read with it
//   covers it; otherwise, and for the rest of a burst, read again once the tail is known). It puts
//   messages into a queue in shared memory and reports the host's flags and output head;
// * the inbox warp watches the K2K inbox in device memory the same way (sequence word, hot line,
//   check word and payload line in one read), so that K2K traffic never waits behind the bus;
// * the handler threads (RK_THREADS) take messages from both queues in batches, validate, stamp and
//   hand each to the handler, write replies straight into the host's output ring with 16-byte
//   stores, each with its whole-slot check, and publish each batch once with plain stores: the
//   host accepts a reply by its check, a receiver a K2K message by its own (a device-scope fence
//   only for K2K payloads over 64 bytes; a system-scope release only when the host does not check
//   replies). No fence sits on the hot path: one waits for every read of host memory in flight,
//   and other actors' polls keep many in flight (bench/probes/traffic.cu). Warp 0, the lead warp,
//   does the loop's own work; the rest of the handler threads meet it at two barriers per message.
//   They look at the host's flags before every message, so a deactivate takes effect before any
//   message not yet taken.
//
// Terminate drains everything accepted; a failing handler stops the actor with RK_FAILED after
// publishing exactly what it consumed. The service warps leave before the stop is reported.

#undef __syncthreads
#undef __syncthreads_count
#undef __syncthreads_and
#undef __syncthreads_or
#undef blockDim

#define RK_ERROR_REPORT_TYPE 0xFFFFFFFEu
#define RK_STEP_HOST 1u
#define RK_STEP_K2K 2u
#define RK_STEP_TERMINATE 3u
// Bus polls with nothing new before the bus warp naps 2 µs between polls, and before 10 µs.
#define RK_BUS_HOT_POLLS 256u
#define RK_BUS_WARM_POLLS 4096u
// While K2K messages flow (one taken within the last RK_BUS_K2K_QUIET_US µs) or a batch is being
// handled, the bus warp reads the host's memory only every RK_BUS_MAX_GAP_NS.
#define RK_BUS_K2K_QUIET_US 10u
// Messages a batch must still have queued for the bus warp to read meanwhile.
#define RK_BUS_OVERLAP_MIN 4u
#define RK_BUS_MAX_GAP_NS 20000u
// Inbox polls with nothing new before the inbox warp naps 1 µs between polls.
#define RK_INBOX_HOT_POLLS 20000u
// Idle decisions of the handler threads between looks at the clock (heartbeat), and before they
// nap between looks at their queues.
#define RK_CLOCK_EVERY 64u
#define RK_IDLE_SPINS 100000u

__shared__ __align__(16) unsigned char rk_report_buffer[sizeof(ErrorReportHeader) + RK_REASON_BYTES];

// Tells the sender of `req` why it was not handled (never answers an error report). Lead warp.
__device__ __noinline__ void rk_lead_report(RkActor& s, RkContext& ctx, const MessageHeader* req, rk_u32 code, rk_u64 v0,
                                            rk_u64 v1, const char* reason) {
    if (req->flags & RK_FLAG_ERROR) return;
    rk_u32 len = 0;
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
    }
    len = __shfl_sync(0xFFFFFFFFu, len, 0);
    __syncwarp();
    rk_u32 result = rk_lead_send(s, ctx, nullptr, req->source_kernel, RK_ERROR_REPORT_TYPE, rk_join(req->correlation_id),
                                 req->priority, RK_FLAG_REPLY | RK_FLAG_ERROR | (req->flags & RK_FLAG_CHECKSUM),
                                 rk_report_buffer, len);
    if (result != RK_OK && threadIdx.x == 0) s.errors += 1u;
    __syncwarp();
}

// Counts a message that was not handled. Thread 0.
__device__ __forceinline__ void rk_count_error(RkActor& s, rk_u32 code, bool rejected) {
    if (rejected) s.rejected += 1u;
    s.errors += 1u;
    s.last_error = code;
}

// Checks a copied header as the host's decoder does; returns RK_OK or the RK_ERROR_* code.
__device__ __forceinline__ rk_u32 rk_check(const MessageHeader* h, rk_u32 capacity) {
    if (h->magic != RK_MESSAGE_MAGIC) return RK_ERROR_BAD_MAGIC;
    if (h->version != RK_PROTOCOL_VERSION) return RK_ERROR_UNSUPPORTED_VERSION;
    if (h->flags & ~RK_FLAGS_ALL) return RK_ERROR_UNKNOWN_FLAGS;
    if (h->priority > RK_PRIORITY_MAX) return RK_ERROR_INVALID_PRIORITY;
    if (h->payload_bytes > capacity) return RK_ERROR_PAYLOAD_TOO_LARGE;
    return RK_OK;
}

// The slot a queued message came from (for the rest of a payload longer than one line).
__device__ __forceinline__ const unsigned char* rk_source_slot(RkActor& s, bool from_host, rk_u32 position) {
    if (from_host) return s.input + (size_t)(position & (s.in_capacity - 1u)) * s.in_slot_bytes;
    return rk_inbox_slot(s.inbox, s.inbox_capacity, s.inbox_slot_bytes, position);
}

// A message whose payload does not fit the queue entry: the handler threads copy it into the
// scratch first (verdict of rk_prepare, never reported).
#define RK_VERDICT_LARGE 0xFFFFFFFFu

// Checks and stamps the queued message `e` whose payload is at `payload`, and sets up the
// handler's context: magic, version, flags, priority, payload bounds, CRC32C (when flagged),
// deadline, clock skew, then the HLC receive rule. Returns RK_OK, RK_VERDICT_LARGE (payload longer
// than the entry holds: copy it, then call again with the copy), or the RK_ERROR_* code. Thread 0.
__device__ __noinline__ rk_u32 rk_prepare(RkActor& s, RkEntry* e, const unsigned char* payload, rk_u32 capacity) {
    RK_PROF_T(t_check);
    RkContext& ctx = rk_ctx;
    const MessageHeader* h = &e->header;
    rk_u32 v = rk_check(h, capacity);
    if (v == RK_OK && payload == e->payload && h->payload_bytes > 64u) return RK_VERDICT_LARGE;
    if (v == RK_OK && (h->flags & RK_FLAG_CHECKSUM) && rk_crc32c(payload, h->payload_bytes) != h->checksum)
        v = RK_ERROR_CHECKSUM_MISMATCH;
    const rk_u64 deadline = rk_join(h->deadline_ns);
    s.now_ns = 0;
    if (v == RK_OK && deadline != 0) {
        s.now_ns = rk_wall_ns(s);
        if (s.now_ns > deadline) v = RK_ERROR_DEADLINE_EXPIRED;
    }
    const rk_u64 max_offset = rk_join(s.a.max_offset_ns);
    if (v == RK_OK && max_offset != 0 && rk_join(h->timestamp_physical_ns) > s.batch_wall + max_offset) v = RK_ERROR_CLOCK_SKEW;
    if (v == RK_OK) {
        ctx.header = h;
        ctx.payload = payload;
        ctx.payload_bytes = h->payload_bytes;
        ctx.message_type = h->message_type;
        ctx.received_at = rk_update(s, rk_header_timestamp(h));
        ctx.state = rk_ptr<unsigned char>(s.a.state);
        ctx.state_bytes = s.a.state_bytes;
        ctx.kernel_number = s.a.number;
        ctx.outcome = RK_OK;
        ctx.send_error = RK_OK;
        ctx.reason[0] = 0;
        ctx.send_reason[0] = 0;
        s.processed += 1u;
    } else {
        rk_count_error(s, v, true);
    }
    RK_PROF_ADD(2, t_check);
    return v;
}

__device__ rk_u32 rk_next_step(RkActor& s);

// Handles a batch: queued messages of one queue, in order, until it is empty, the batch is full,
// the host changed its flags (outside terminate), or the handler failed. `step` says which queue;
// 0: thread 0 waits for work first (rk_next_step) and picks it. Thread 0 takes and prepares each
// message; the handler threads meet at one barrier before the handler and one after it. Returns
// the step (RK_STEP_TERMINATE: nothing was handled).
__device__ __noinline__ rk_u32 rk_handle_batch(RkActor& s, rk_u32 step) {
    RkContext& ctx = rk_ctx;
    for (rk_u32 n = 0;; ++n) {
        if (threadIdx.x == 0) {
            if (n == 0u) s.step = step != 0u ? step : rk_next_step(s);
            const bool from_host = s.step == RK_STEP_HOST;
            const rk_u32 size = from_host ? RK_HOST_QUEUE : RK_K2K_QUEUE;
            RkEntry* queue = from_host ? rk_host_queue : rk_k2k_queue;
            const rk_u32 capacity = (from_host ? s.in_slot_bytes : s.inbox_slot_bytes) - RK_MESSAGE_HEADER_BYTES;
            rk_u32 ready = rk_ld_shared(from_host ? &rk_link.host_ready : &rk_link.k2k_ready);
            rk_u32 taken = from_host ? s.host_taken : s.k2k_taken;
            bool flags_unchanged = rk_ld_shared(&rk_link.ctl_sequence) == s.control_sequence;
            s.go = s.step != RK_STEP_TERMINATE && n < size && ready != taken && !s.failed &&
                   (flags_unchanged || s.terminate != RK_TERMINATE_NONE);
            if (s.go) {
                if (n == 0u) s.batch_wall = rk_wall_ns(s);  // one clock reading per batch
                __threadfence_block();  // the entry, written before `ready`
                RkEntry* e = &queue[taken % size];
#ifdef RK_PROFILE
                s.prof[1] += (rk_u64)(clock64() - (long long)rk_join(e->header._padding));
                s.prof[6] += 1u;
#endif
                s.entry = e;
                s.capacity = capacity;
                s.verdict = rk_prepare(s, e, e->payload, capacity);
            }
        }
        rk_sync();
        if (!s.go) break;
        const bool host = s.step == RK_STEP_HOST;
        RkEntry* e = s.entry;
        const rk_u32 position = host ? s.in_head : s.inbox_head;
        if (s.verdict == RK_VERDICT_LARGE) {
            // The rest of the payload, from the slot (the tail or sequence that published it was
            // read before; the fence orders these reads after it).
            rk_fence_acq_rel_sys();
            const uint4* from = reinterpret_cast<const uint4*>(rk_source_slot(s, host, position) + RK_MESSAGE_HEADER_BYTES);
            uint4* to = reinterpret_cast<uint4*>(s.scratch);
            const rk_u32 chunks = (e->header.payload_bytes + 15u) / 16u;
            for (rk_u32 i = threadIdx.x; i < chunks; i += RK_THREADS)
                to[i] = host ? rk_ld_relaxed_sys_v4(from + i) : rk_ld_relaxed_gpu_v4(from + i);
            rk_sync();
            if (threadIdx.x == 0) s.verdict = rk_prepare(s, e, s.scratch, s.capacity);
            rk_sync();
        }
        const rk_u32 v = s.verdict;
        const MessageHeader* h = &e->header;
        if (v == RK_OK) {
            RK_PROF_T(t_handler);
            rk_dispatch(s.a.kind, ctx);
            rk_sync();
            RK_PROF_ADD(3, t_handler);
            const rk_u32 outcome = ctx.outcome;
            if (outcome != RK_OK) {
                if (rk_lead()) {
                    if (threadIdx.x == 0) rk_count_error(s, outcome, false);
                    rk_lead_report(s, ctx, h, outcome, 0, 0, ctx.reason);
                    if (outcome == RK_ERROR_HANDLER_FAULT && threadIdx.x == 0) s.failed = 1u;
                }
                rk_sync();
            }
        } else if (rk_lead()) {
            // Expired or too far ahead: the sender learns why. Anything else cannot be trusted,
            // so there is nobody to answer: counted only.
            if (v == RK_ERROR_DEADLINE_EXPIRED)
                rk_lead_report(s, ctx, h, v, rk_join(h->deadline_ns), s.now_ns, "deadline expired before handling");
            else if (v == RK_ERROR_CLOCK_SKEW)
                rk_lead_report(s, ctx, h, v, rk_join(h->timestamp_physical_ns), s.batch_wall,
                               "the sender's clock is too far ahead");
        }
        if (threadIdx.x == 0) {
            if (host) {
                s.in_head += 1u;
                s.host_taken += 1u;
                rk_st_shared(&rk_link.host_taken, s.host_taken);
            } else {
                s.inbox_head += 1u;
                s.k2k_taken += 1u;
                rk_st_shared(&rk_link.k2k_taken, s.k2k_taken);
            }
        }
        if (s.failed) break;
    }
    return s.step;
}

// Whether a batch left something the host or a receiver must be shown. Thread 0.
__device__ __forceinline__ bool rk_unpublished(const RkActor& s) {
    return s.pending_outputs != 0 || s.in_head != s.published_in_head || s.inbox_head != s.published_inbox_head ||
           s.pending_count != 0;
}

// Reads the host's flags as the bus warp last saw them and acknowledges a change. Thread 0.
__device__ __forceinline__ void rk_apply_control(RkActor& s) {
    rk_u32 sequence = rk_ld_shared(&rk_link.ctl_sequence);
    if (sequence == s.control_sequence) return;
    __threadfence_block();
    s.active = rk_ld_shared(&rk_link.ctl_active);
    s.terminate = rk_ld_shared(&rk_link.ctl_terminate);
    s.control_sequence = sequence;
    // From here on the actor acts on these flags only; what it published before is visible first.
    asm volatile("st.release.sys.u32 [%0], %1;" : : "l"(&s.control->control_ack), "r"(sequence) : "memory");
}

// Waits until there is something to do: a batch from a queue, or terminate. Thread 0.
__device__ __noinline__ rk_u32 rk_next_step(RkActor& s) {
    rk_u32 spins = 0;
    while (true) {
        s.steps += 1u;
        if (s.steps % RK_CLOCK_EVERY == 0u) {
            rk_u64 now = rk_globaltimer();
            if (now - s.last_beat >= rk_join(s.a.heartbeat_ns)) {
                rk_beat(s);
                if (spins != 0) rk_publish_clock(s);
                s.last_beat = now;
            }
        }
        rk_apply_control(s);
        if (s.terminate != RK_TERMINATE_NONE) return RK_STEP_TERMINATE;
        if (s.active) {
            bool host = rk_ld_shared(&rk_link.host_ready) != s.host_taken;
            bool k2k = rk_ld_shared(&rk_link.k2k_ready) != s.k2k_taken;
            rk_u32 step = 0u;
            if (host && k2k) {
                s.prefer_k2k ^= 1u;
                step = s.prefer_k2k ? RK_STEP_K2K : RK_STEP_HOST;
            } else if (host) {
                step = RK_STEP_HOST;
            } else if (k2k) {
                step = RK_STEP_K2K;
            }
            if (step != 0u) {
                if (s.entered_count != 0u && ++s.batches_entered >= RK_ROUTE_HOLD_BATCHES) rk_leave_routes(s);
                // No new reads until the batch is published: a fence waits for every read of host
                // memory in flight on this SM (~1 µs more per fence, measured).
                rk_st_shared(&rk_link.busy, 1u);
                if (step == RK_STEP_K2K) rk_st_shared(&rk_link.k2k_at_us, (rk_u32)(rk_globaltimer() >> 10));
                return step;
            }
        }
        spins += 1u;
        if (spins == 64u) {
            // Idle: counters of K2K-only work, and let the actors this one sent to finish their
            // drains whenever they like.
            rk_flush_counters(s);
            if (s.entered_count != 0u) rk_leave_routes(s);
        }
        if (spins > RK_IDLE_SPINS) __nanosleep(500);
    }
}

// Stops accepting K2K messages and waits until no sender is still in this actor's route (every
// sender publishes before it leaves). Thread 0.
__device__ __noinline__ void rk_leave_route(RkActor& s) {
    RkRoute* r = &s.routes[s.a.route_index];
    rk_st_release_gpu(&r->alive, 0u);
    rk_fence_sc_gpu();
    while (rk_ld_acquire_gpu(&r->in_flight) != 0u) __nanosleep(100);
}

// Publishes everything, lets the service warps go, then stores `code` for the runtime's monitor,
// which reports it in the control block once the block has left the actor (and a failed actor's
// inbox has been copied back). Handler threads (the service warps meet them at the block barrier).
__device__ __noinline__ void rk_stop(RkActor& s, rk_u32 code) {
    rk_sync();
    if (threadIdx.x == 0) {
        if (code == RK_FAILED) s.last_error = RK_ERROR_HANDLER_FAULT;
        rk_flush(s);
        rk_leave_routes(s);
        rk_store_counters(s);
        rk_publish_clock(s);
        rk_beat(s);
        rk_st_shared(&rk_link.stop, 1u);
    }
    rk_block_sync();
    if (threadIdx.x == 0) {
        __threadfence_system();
        asm volatile("st.release.sys.u32 [%0], %1;" : : "l"(&s.slot->stop_code), "r"(code) : "memory");
    }
}

// Terminate: no more K2K senders, then everything the host and the senders published is handled,
// then the stop is reported. Handler threads.
__device__ __noinline__ void rk_terminate(RkActor& s) {
    if (threadIdx.x == 0) {
        // Others may be waiting for this actor to leave their routes before they stop.
        rk_leave_routes(s);
        rk_leave_route(s);
        // The host stopped accepting sends before it raised the flag; no sender is in the route.
        s.final_tail = rk_ld_acquire_sys(&s.control->input_tail);
        s.final_k2k = rk_ld_acquire_gpu(&s.inbox->tail);
        rk_st_shared(&rk_link.urgent, 1u);
    }
    rk_sync();
    while (true) {
        if (threadIdx.x == 0) {
            bool host_left = s.in_head != s.final_tail, k2k_left = s.inbox_head != s.final_k2k;
            s.step = 0u;
            if (host_left || k2k_left) {
                // Wait for the service warps to bring the next one.
                rk_u64 since = rk_globaltimer();
                while (s.step == 0u) {
                    if (host_left && rk_ld_shared(&rk_link.host_ready) != s.host_taken) s.step = RK_STEP_HOST;
                    else if (k2k_left && rk_ld_shared(&rk_link.k2k_ready) != s.k2k_taken) s.step = RK_STEP_K2K;
                    else if (rk_globaltimer() - since >= rk_join(s.a.heartbeat_ns)) {
                        rk_beat(s);
                        since = rk_globaltimer();
                    }
                }
            }
        }
        if (threadIdx.x == 0 && s.step != 0u) rk_st_shared(&rk_link.busy, 1u);
        rk_sync();
        if (s.step == 0u) break;
        rk_handle_batch(s, s.step);
        if (threadIdx.x == 0) {
            rk_flush(s);
            rk_st_shared(&rk_link.busy, 0u);
        }
        rk_sync();
        if (s.failed) {
            rk_stop(s, RK_FAILED);
            return;
        }
    }
    rk_stop(s, RK_TERMINATED);
}

// The handler threads' loop: wait for work, handle a batch, publish it.
__device__ void rk_handlers_run(RkActor& s) {
    while (true) {
        if (rk_handle_batch(s, 0u) == RK_STEP_TERMINATE) return rk_terminate(s);
        RK_PROF_T(t_publish);
        if (threadIdx.x == 0) {
            if (rk_unpublished(s)) {
                // No read of host memory in flight while the batch's fences (if any) run.
                const bool fences = rk_flush_fences(s);
                if (fences) {
                    rk_st_shared(&rk_link.draining, 1u);
                    __threadfence_block();
                    while (rk_ld_shared(&rk_link.bus_reading) != 0u) { }
                }
                rk_flush(s);
                if (fences) rk_st_shared(&rk_link.draining, 0u);
            }
            rk_st_shared(&rk_link.busy, 0u);  // the service warps may read again
        }
        RK_PROF_ADD(4, t_publish);
        // No barrier: s.failed was set before the batch's last barrier, and the next batch
        // starts with thread 0's decision and a barrier.
        if (s.failed) {
            if (threadIdx.x == 0) {
                rk_leave_routes(s);
                rk_leave_route(s);
            }
            return rk_stop(s, RK_FAILED);
        }
    }
}

// The bus warp: reads the host's line and input slots over the bus into the host queue.
__device__ __noinline__ void rk_bus_run(RkActor& s) {
    const rk_u32 lane = threadIdx.x & 31u;
    const unsigned char* control = reinterpret_cast<const unsigned char*>(s.control);
    const rk_u32 mask = s.in_capacity - 1u, slot_bytes = s.in_slot_bytes;
    const rk_u32 payload_capacity = slot_bytes - RK_MESSAGE_HEADER_BYTES;
    const bool checked = s.input_checked != 0u;
    rk_u32 next = s.in_head, ready = 0u, sequence_seen = 0u, out_head_seen = s.out_head_seen, idle = 0u;
    rk_u32 checked_reads = 0u, confirmed_reads = 0u;
    rk_u64 last_poll = rk_globaltimer();
    while (rk_ld_shared(&rk_link.stop) == 0u) {
        // A read of host memory in flight makes every fence of this SM wait for it (~1 µs more,
        // measured): no new read while a batch is being handled — unless it still has at least
        // RK_BUS_OVERLAP_MIN messages to go (streaming: the next ones arrive meanwhile), or the
        // handler threads wait on the host — none once its publish is about to start, and none
        // right after K2K traffic, unless the last read is RK_BUS_MAX_GAP_NS old.
        const rk_u32 urgent = rk_ld_shared(&rk_link.urgent);
        if (urgent == 0u) {
            const rk_u64 now = rk_globaltimer();
            const bool busy = rk_ld_shared(&rk_link.busy) != 0u;
            const bool quiet = !busy && (rk_u32)(now >> 10) - rk_ld_shared(&rk_link.k2k_at_us) >= RK_BUS_K2K_QUIET_US;
            const bool overlap = busy && ready - rk_ld_shared(&rk_link.host_taken) >= RK_BUS_OVERLAP_MIN;
            if (!quiet && !overlap && now - last_poll < RK_BUS_MAX_GAP_NS) continue;
            last_poll = now;
        }
        // Announce the read, then look for a publish about to start (its thread does the reverse).
        if (lane == 0u) rk_st_shared(&rk_link.bus_reading, 1u);
        __syncwarp();
        __threadfence_block();
        if (urgent == 0u && rk_ld_shared(&rk_link.draining) != 0u) {
            if (lane == 0u) rk_st_shared(&rk_link.bus_reading, 0u);
            continue;
        }
        const rk_u32 taken = rk_ld_shared(&rk_link.host_taken);
        const rk_u32 room = RK_HOST_QUEUE - (ready - taken);
        const rk_u32 in_head = next - (ready - taken);
        const unsigned char* slot = s.input + (size_t)(next & mask) * slot_bytes;
        // One round trip: the host's line and, speculatively, the next slot's lines.
        const void* address = nullptr;
        if (lane < 4u) address = control + 16u * lane;
        else if (checked && room != 0u) {
            if (lane < 8u) address = slot + 16u * (lane - 4u);
            else if (lane == 8u) address = slot + 80u;
            else if (lane < 13u && 16u * (lane - 9u) < payload_capacity) address = slot + RK_MESSAGE_HEADER_BYTES + 16u * (lane - 9u);
        }
        RK_PROF_T(t_poll);
        uint4 v = address ? rk_ld_relaxed_sys_v4(address) : make_uint4(0u, 0u, 0u, 0u);
        const rk_u32 tail = __shfl_sync(0xFFFFFFFFu, v.z, 0);      // input_tail
        const rk_u32 out_head = __shfl_sync(0xFFFFFFFFu, v.w, 0);  // output_head
        const rk_u32 sequence = __shfl_sync(0xFFFFFFFFu, v.z, 2);  // control_sequence
        bool news = false;
        if (sequence != sequence_seen) {
            // The flags of this change: read once more (the host writes them before the sequence).
            uint4 again = lane == 0u ? rk_ld_relaxed_sys_v4(control) : make_uint4(0u, 0u, 0u, 0u);
            if (lane == 0u) {
                rk_st_shared(&rk_link.ctl_active, again.x);
                rk_st_shared(&rk_link.ctl_terminate, again.y);
                __threadfence_block();
                rk_st_shared(&rk_link.ctl_sequence, sequence);
            }
            sequence_seen = sequence;
            news = true;
        }
        if (out_head != out_head_seen) {
            if (lane == 0u) rk_st_shared(&rk_link.out_head, out_head);
            out_head_seen = out_head;
            news = true;
        }
        // What the host published and nobody has read yet (nothing, if its tail makes no sense).
        const rk_u32 published = tail - in_head;
        const rk_u32 avail = (published <= s.in_capacity && tail - next <= published) ? tail - next : 0u;
        rk_u32 got = 0u;
        if (avail != 0u && room != 0u) {
            if (checked) {
                // Accept the speculative read by its slot check.
                if (rk_poll_read_checks(v, lane, next, payload_capacity)) {
                    RkEntry* e = &rk_host_queue[ready % RK_HOST_QUEUE];
                    if (lane >= 4u && lane < 8u) reinterpret_cast<uint4*>(&e->header)[lane - 4u] = v;
                    if (lane >= 9u && lane < 13u) reinterpret_cast<uint4*>(e->payload)[lane - 9u] = v;
                    got = 1u;
                    checked_reads += 1u;
                }
            }
            // What the tail covers beyond it: up to 16 more slots in one more round trip. With slot
            // checks each is accepted by its own (8 lanes per message: hot line and payload line;
            // the check words in a 17th load); a slot whose check fails, or every slot without
            // checks, is read once more behind a fence that orders it after the tail.
            rk_u32 more = avail - got;
            if (more > room - got) more = room - got;
            if (more > 16u) more = 16u;
            if (more != 0u) {
                const rk_u32 chunk = lane % 8u, group = lane / 8u;
                uint4 r[4];
                rk_u32 failed = 0u;  // bit m: message m needs the fenced read
                if (checked) {
                    uint4 check = make_uint4(0u, 0u, 0u, 0u);
                    if (lane < more) check = rk_ld_relaxed_sys_v4(s.input + (size_t)((next + got + lane) & mask) * slot_bytes + 80u);
#pragma unroll
                    for (rk_u32 round = 0; round < 4u; ++round) {
                        const rk_u32 m = round * 4u + group;
                        r[round] = make_uint4(0u, 0u, 0u, 0u);
                        if (m < more) {
                            const unsigned char* from = s.input + (size_t)((next + got + m) & mask) * slot_bytes;
                            if (chunk < 4u) r[round] = rk_ld_relaxed_sys_v4(from + 16u * chunk);
                            else if (16u * (chunk - 4u) < payload_capacity)
                                r[round] = rk_ld_relaxed_sys_v4(from + RK_MESSAGE_HEADER_BYTES + 16u * (chunk - 4u));
                        }
                    }
#pragma unroll
                    for (rk_u32 round = 0; round < 4u; ++round) {
                        const rk_u32 m = round * 4u + group;
                        // payload_bytes: the hot line's word 4, in chunk 1 of this message's group.
                        const rk_u32 bytes = __shfl_sync(0xFFFFFFFFu, r[round].x, group * 8u + 1u);
                        const rk_u32 covered = rk_slot_check_covered(bytes, payload_capacity);
                        rk_u32 part = rk_slot_check_chunk(r[round], chunk, covered);
                        if (chunk == 0u) part += rk_slot_check_term(next + got + m, 0u);
                        part += __shfl_xor_sync(0xFFFFFFFFu, part, 4);
                        part += __shfl_xor_sync(0xFFFFFFFFu, part, 2);
                        part += __shfl_xor_sync(0xFFFFFFFFu, part, 1);
                        const rk_u32 stored = __shfl_sync(0xFFFFFFFFu, check.y, m < 32u ? m : 0u);
                        const rk_u32 bad = __ballot_sync(0xFFFFFFFFu, m < more && chunk == 0u && part != stored);
                        // Lane 8g (chunk 0) of each group holds its message's verdict.
                        for (rk_u32 g = 0; g < 4u; ++g)
                            if (bad & (1u << (8u * g))) failed |= 1u << (round * 4u + g);
                    }
                } else {
                    failed = more >= 32u ? 0xFFFFFFFFu : (1u << more) - 1u;
                }
                if (failed != 0u) {
                    rk_fence_acq_rel_sys();  // the tail above, then the slots it published
#pragma unroll
                    for (rk_u32 round = 0; round < 4u; ++round) {
                        const rk_u32 m = round * 4u + group;
                        if (m < more && (failed & (1u << m))) {
                            const unsigned char* from = s.input + (size_t)((next + got + m) & mask) * slot_bytes;
                            if (chunk < 4u) r[round] = rk_ld_relaxed_sys_v4(from + 16u * chunk);
                            else if (16u * (chunk - 4u) < payload_capacity)
                                r[round] = rk_ld_relaxed_sys_v4(from + RK_MESSAGE_HEADER_BYTES + 16u * (chunk - 4u));
                        }
                    }
                }
#pragma unroll
                for (rk_u32 round = 0; round < 4u; ++round) {
                    const rk_u32 m = round * 4u + group;
                    if (m < more) {
                        RkEntry* e = &rk_host_queue[(ready + got + m) % RK_HOST_QUEUE];
                        if (chunk < 4u) reinterpret_cast<uint4*>(&e->header)[chunk] = r[round];
                        else reinterpret_cast<uint4*>(e->payload)[chunk - 4u] = r[round];
                    }
                }
                confirmed_reads += more;
                got += more;
            }
        }
        __syncwarp();
        if (lane == 0u) rk_st_shared(&rk_link.bus_reading, 0u);
        if (got != 0u) {
#ifdef RK_PROFILE
            long long now = clock64();
            if (lane == 0u) {
                s.prof[0] += (rk_u64)(now - t_poll);
                for (rk_u32 m = 0; m < got; ++m) rk_split(rk_host_queue[(ready + m) % RK_HOST_QUEUE].header._padding, (rk_u64)now);
            }
#endif
            __syncwarp();
            __threadfence_block();
            ready += got;
            next += got;
            if (lane == 0u) rk_st_shared(&rk_link.host_ready, ready);
            news = true;
        }
        if (news) {
            idle = 0u;
        } else if (rk_ld_shared(&rk_link.urgent) == 0u) {
            if (idle == 0u && lane == 0u) {
                // Gone idle: how the messages so far were read, for the host's diagnostics.
                rk_st_relaxed_sys(&s.slot->checked_reads, checked_reads);
                rk_st_relaxed_sys(&s.slot->confirmed_reads, confirmed_reads);
            }
            idle += 1u;
            if (idle > RK_BUS_WARM_POLLS) __nanosleep(10000);
            else if (idle > RK_BUS_HOT_POLLS) __nanosleep(2000);
        }
    }
}

// The inbox warp: watches the K2K inbox in device memory and puts what arrives into the K2K queue.
__device__ __noinline__ void rk_inbox_run(RkActor& s) {
    const rk_u32 lane = threadIdx.x & 31u;
    K2KInboxHeader* ib = s.inbox;
    const rk_u32 capacity = s.inbox_capacity, slot_bytes = s.inbox_slot_bytes;
    const rk_u32 payload_capacity = slot_bytes - RK_MESSAGE_HEADER_BYTES;
    rk_u32* sequences = rk_inbox_sequences(ib);
    rk_u32 next = s.inbox_head, ready = 0u, idle = 0u;
    while (rk_ld_shared(&rk_link.stop) == 0u) {
        const rk_u32 taken = rk_ld_shared(&rk_link.k2k_taken);
        if (ready - taken >= RK_K2K_QUEUE || rk_ld_shared(&rk_link.busy) != 0u) {
            continue;  // full, or a batch is being handled (its fences wait for reads in flight)
        }
        const unsigned char* slot = rk_inbox_slot(ib, capacity, slot_bytes, next);
        // One round trip through L2: the slot's sequence word, hot line, check word and payload line.
        uint4 v = make_uint4(0u, 0u, 0u, 0u);
        if (lane == 0u) v.x = rk_ld_relaxed_gpu(&sequences[next & (capacity - 1u)]);
        else if (lane >= 4u && lane < 8u) v = rk_ld_relaxed_gpu_v4(slot + 16u * (lane - 4u));
        else if (lane == 8u) v = rk_ld_relaxed_gpu_v4(slot + 80u);
        else if (lane >= 9u && lane < 13u && 16u * (lane - 9u) < payload_capacity)
            v = rk_ld_relaxed_gpu_v4(slot + RK_MESSAGE_HEADER_BYTES + 16u * (lane - 9u));
        const rk_u32 sequence = __shfl_sync(0xFFFFFFFFu, v.x, 0);
        if (sequence != next + 1u) {
            idle += 1u;
            if (idle > RK_INBOX_HOT_POLLS) __nanosleep(1000);
            continue;
        }
        idle = 0u;
        // Senders publish the sequence without a fence: a slot read before all its writes
        // landed fails its check and is read again.
        if (!rk_poll_read_checks(v, lane, next, payload_capacity)) continue;
        RkEntry* e = &rk_k2k_queue[ready % RK_K2K_QUEUE];
        if (lane >= 4u && lane < 8u) reinterpret_cast<uint4*>(&e->header)[lane - 4u] = v;
        if (lane >= 9u && lane < 13u) reinterpret_cast<uint4*>(e->payload)[lane - 9u] = v;
#ifdef RK_PROFILE
        if (lane == 0u) rk_split(e->header._padding, (rk_u64)clock64());
#endif
        __syncwarp();
        __threadfence_block();
        ready += 1u;
        next += 1u;
        if (lane == 0u) rk_st_shared(&rk_link.k2k_ready, ready);
    }
}

// Runs one actor until it terminated or failed. The whole block.
__device__ __noinline__ void rk_actor_run(RkSlot* slot) {
    RkActor& s = rk_actor_state;
    if (threadIdx.x < RK_THREADS) {
        rk_crc32c_init();
        for (rk_u32 i = threadIdx.x; i < RK_MESSAGE_HEADER_BYTES / 4u; i += RK_THREADS)
            reinterpret_cast<rk_u32*>(&rk_out_header)[i] = 0u;
        for (rk_u32 i = threadIdx.x; i < RK_HOST_QUEUE * sizeof(RkEntry) / 4u; i += RK_THREADS)
            reinterpret_cast<rk_u32*>(rk_host_queue)[i] = 0u;
        for (rk_u32 i = threadIdx.x; i < RK_K2K_QUEUE * sizeof(RkEntry) / 4u; i += RK_THREADS)
            reinterpret_cast<rk_u32*>(rk_k2k_queue)[i] = 0u;
    }
    if (threadIdx.x == 0) {
        const RkArgs& args = slot->args;
        s.a = args;
        s.slot = slot;
        s.control = rk_ptr<ControlBlock>(args.control);
        s.input = rk_ptr<unsigned char>(args.input);
        s.output = rk_ptr<unsigned char>(args.output);
        s.inbox = rk_ptr<K2KInboxHeader>(args.inbox);
        s.routes = rk_ptr<RkRoute>(args.routes);
        s.scratch = rk_ptr<unsigned char>(args.scratch);
        ControlBlock* c = s.control;
        s.in_capacity = c->input_capacity;
        s.in_slot_bytes = c->input_slot_bytes;
        s.out_capacity = c->output_capacity;
        s.out_slot_bytes = c->output_slot_bytes;
        s.input_checked = rk_ld_relaxed_sys(&c->input_slot_checks);
        s.output_checked = rk_ld_relaxed_sys(&c->output_slot_checks);
        s.pending_large = 0u;
        s.inbox_capacity = s.inbox->capacity;
        s.inbox_slot_bytes = s.inbox->slot_bytes;
        s.in_head = rk_ld_relaxed_sys(&c->input_head);
        s.published_in_head = s.in_head;
        s.out_tail = rk_ld_relaxed_sys(&c->output_tail);
        s.out_head_seen = rk_ld_acquire_sys(&c->output_head);
        s.inbox_head = rk_ld_relaxed_gpu(&s.inbox->head);
        s.published_inbox_head = s.inbox_head;
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
        s.host_taken = s.k2k_taken = 0u;
        s.prefer_k2k = 0u;
        s.steps = 0u;
        s.entered_count = 0u;
        s.batches_entered = 0u;
        s.pending_count = 0u;
        for (int i = 0; i < 7; ++i) s.prof[i] = 0u;
        rk_link.host_ready = rk_link.k2k_ready = 0u;
        rk_link.host_taken = rk_link.k2k_taken = 0u;
        rk_link.ctl_sequence = 0u;
        rk_link.ctl_active = 0u;
        rk_link.ctl_terminate = RK_TERMINATE_NONE;
        rk_link.out_head = s.out_head_seen;
        rk_link.stop = 0u;
        rk_link.urgent = 0u;
        rk_link.busy = 0u;
        rk_link.draining = 0u;
        rk_link.bus_reading = 0u;
        rk_link.k2k_at_us = 0u;
        s.counters_stored = 0u;
        // Publish the route: K2K senders find this actor from here on.
        RkRoute* r = &s.routes[args.route_index];
        r->number = args.number;
        r->name_hash = args.name_hash;
        r->inbox[0] = args.inbox[0];
        r->inbox[1] = args.inbox[1];
        r->payload_capacity = s.inbox_slot_bytes - RK_MESSAGE_HEADER_BYTES;
        r->name_len = args.name_len;
        for (rk_u32 i = 0; i < RK_NAME_BYTES / 4u; ++i) r->name[i] = args.name[i];
        // `in_flight` is not reset: a sender that looked at this entry's previous actor may
        // still be undoing its increment (the route table starts zeroed).
        __threadfence();
        rk_st_release_gpu(&r->alive, 1u);
        // Started: the host's launch waits for the first heartbeat.
        s.heartbeat = 1u;
        asm volatile("st.release.sys.u32 [%0], %1;" : : "l"(&c->heartbeat), "r"(1u) : "memory");
        s.last_beat = rk_globaltimer();
    }
    rk_block_sync();
    const rk_u32 warp = threadIdx.x / 32u;
    if (warp < RK_HANDLER_WARPS) {
        rk_handlers_run(s);  // ends at the block barrier in rk_stop
    } else {
        if (warp == RK_BUS_WARP) rk_bus_run(s);
        else rk_inbox_run(s);
        rk_block_sync();  // rk_stop's
    }
}

// The resident pool: one block per actor slot. An idle block polls its slot (backing off to
// RK_POOL_IDLE_MAX_NS between looks), runs the actor assigned to it, and marks the slot idle again.
#define RK_POOL_IDLE_MAX_NS 100000u
extern "C" __global__ void __launch_bounds__(RK_BLOCK_THREADS) rk_pool_main(RkSlot* slots) {
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
            if (command == 1u) {
            rk_st_relaxed_sys(&slot->stop_code, 0u);
            rk_st_relaxed_sys(&slot->state, RK_SLOT_RUNNING);
        }
        }
        rk_block_sync();
        if (command == 0u) return;
        rk_actor_run(slot);
        rk_block_sync();
        if (threadIdx.x == 0) {
            __threadfence_system();
            asm volatile("st.release.sys.u32 [%0], %1;" : : "l"(&slot->state), "r"(RK_SLOT_IDLE) : "memory");
        }
        rk_block_sync();
    }
}
