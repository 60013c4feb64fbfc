//! [`WgpuRuntime`]: one wgpu device, one arena buffer holding every actor's memory, and a pump
//! thread that turns the host engine's wake-ups into batched dispatches.
//!
//! The host engine owns each kernel's memory in host RAM (the same layout as every backend). The
//! pump is the device's agent: when woken it takes, for every actor with work, the input the host
//! published since the last round and the host's control line; uploads them into the actor's
//! copy of that memory in the arena; records up to `messages_per_dispatch` dispatches per actor
//! (one workgroup, one message each) into one compute pass; copies back each actor's control block, inbox header and the output slots the
//! dispatch may have written; submits; waits for wgpu's completion callback (the buffer map); then
//! copies replies into the host's output ring, publishes the device line of the control block
//! with the orders the protocol asks for, and rings the kernels' doorbells. A K2K message written
//! in one round is read in a later dispatch (the next actor's in the same pass, or the next round).
//!
//! With unified memory (an adapter whose storage buffers the host can map: integrated GPUs, Apple
//! Silicon, lavapipe) the arena itself is mapped for those copies: no staging buffer, no copy pass.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use ringkernel_core::error::{Result, RingKernelError};
use ringkernel_core::hlc::{HlcConfig, HlcTimestamp, HybridClock};
use ringkernel_core::kernel::KernelRegistry;
use ringkernel_core::layout::{ControlBlock, MESSAGE_HEADER_BYTES, termination};
use ringkernel_core::memory::{KernelLayout, KernelMemory};
use ringkernel_core::runtime::{Backend, KernelHandle, KernelId, LaunchOptions, RingKernelRuntime, RuntimeMetrics};
use ringkernel_host::{Device, Doorbell, HostConfig, HostKernel, KernelParts, KernelTable};

use crate::compile::{self, fnv1a};

/// Whether the rings live in memory both sides map.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UnifiedMemory {
    /// Mapped when the adapter can map storage buffers cheaply (integrated GPU, CPU device,
    /// Apple Silicon); staged otherwise.
    #[default]
    Auto,
    /// Always staged: uploads through the queue, downloads through a readback buffer.
    Off,
    /// Mapped, or `new` fails with `BackendUnavailable` naming what the adapter lacks.
    Require,
}

/// Settings of a [`WgpuRuntime`].
#[derive(Debug, Clone)]
pub struct WgpuConfig {
    /// Which wgpu backends may provide the adapter.
    pub backends: wgpu::Backends,
    /// Adapter preference.
    pub power_preference: wgpu::PowerPreference,
    /// Unified memory or staging.
    pub unified_memory: UnifiedMemory,
    /// Bytes of the arena buffer that holds every actor's rings, inbox, state and scratch, and
    /// the route table (bounded by the adapter's largest storage binding).
    pub arena_bytes: u64,
    /// Actors that may run at once (route table entries).
    pub max_actors: u32,
    /// Messages an actor handles at most per round: one per dispatch, this many dispatches per
    /// actor in one compute pass (bounded work, so that no GPU watchdog fires).
    pub messages_per_dispatch: u32,
    /// Output slots one dispatch may fill at most per actor (bounds what is copied back).
    pub outputs_per_dispatch: u32,
    /// Outputs (replies, emits, error reports) one message may park when the output ring is full:
    /// the device finishes the message, keeps them in device memory and moves them into the ring
    /// once the host made room, before it starts another message. One more is refused with
    /// `OUTPUT_FULL` (the handler sees the error; it is counted), never dropped silently.
    pub outputs_per_message: u32,
    /// The host clock's node id.
    pub host_node_id: u32,
    /// Largest clock lead of a sender that devices accept.
    pub max_clock_offset_ns: Option<u64>,
    /// How long a waiting host spins before it sleeps on the doorbell.
    pub spin_before_park: Duration,
    /// The host engine's watchdog. Off by default: an idle actor is not dispatched, so its
    /// heartbeat moves only while it has work.
    pub watchdog: Option<Duration>,
    /// Whether received messages carry their `message_id`.
    pub read_message_ids: bool,
}

impl Default for WgpuConfig {
    fn default() -> Self {
        Self {
            backends: wgpu::Backends::VULKAN | wgpu::Backends::METAL | wgpu::Backends::DX12,
            power_preference: wgpu::PowerPreference::HighPerformance,
            unified_memory: UnifiedMemory::Auto,
            arena_bytes: 32 << 20,
            max_actors: 64,
            messages_per_dispatch: 64,
            outputs_per_dispatch: 256,
            outputs_per_message: 4,
            host_node_id: 0,
            max_clock_offset_ns: Some(HlcConfig::DEFAULT_MAX_OFFSET_NS),
            spin_before_park: Duration::from_micros(50),
            watchdog: None,
            read_message_ids: false,
        }
    }
}

/// What the runtime's adapter is.
#[derive(Debug, Clone)]
pub struct AdapterSummary {
    /// Adapter name.
    pub name: String,
    /// wgpu backend (Vulkan, Metal, Dx12).
    pub backend: wgpu::Backend,
    /// Integrated, discrete, CPU…
    pub device_type: wgpu::DeviceType,
    /// Driver name and version.
    pub driver: String,
    /// Whether the rings are mapped (unified memory) rather than staged.
    pub unified_memory: bool,
}

const ROUTE_BYTES: u64 = 64;
const PARAMS_STRIDE: u64 = 256;
/// Bytes of `RkParams` in `actor.wgsl`.
const PARAMS_BYTES: u64 = 96;
/// `RK_SCRATCH_RESERVED` words of `actor.wgsl`.
const SCRATCH_RESERVED_BYTES: u64 = 160 * 4;
const ARENA_ALIGN: u64 = 256;
/// Bytes read back per dispatched actor before its output slots: control block, inbox header,
/// the first 16 bytes of its scratch (message counter, parked outputs).
const READBACK_FIXED: u64 = 208;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn unavailable(reason: impl Into<String>) -> RingKernelError {
    RingKernelError::BackendUnavailable(reason.into())
}

/// First-fit allocator over the arena.
#[derive(Debug)]
struct Arena {
    /// Free ranges (offset, len), sorted by offset.
    free: Vec<(u64, u64)>,
}

impl Arena {
    fn new(start: u64, end: u64) -> Self {
        Self { free: vec![(start, end - start)] }
    }

    fn alloc(&mut self, bytes: u64) -> Option<u64> {
        let bytes = bytes.next_multiple_of(ARENA_ALIGN);
        let i = self.free.iter().position(|&(_, len)| len >= bytes)?;
        let (offset, len) = self.free[i];
        if len == bytes {
            self.free.remove(i);
        } else {
            self.free[i] = (offset + bytes, len - bytes);
        }
        Some(offset)
    }

    fn release(&mut self, offset: u64, bytes: u64) {
        let bytes = bytes.next_multiple_of(ARENA_ALIGN);
        let i = self.free.partition_point(|&(o, _)| o < offset);
        self.free.insert(i, (offset, bytes));
        let mut merged: Vec<(u64, u64)> = Vec::with_capacity(self.free.len());
        for &(o, l) in &self.free {
            match merged.last_mut() {
                Some((mo, ml)) if *mo + *ml == o => *ml += l,
                _ => merged.push((o, l)),
            }
        }
        self.free = merged;
    }
}

/// One running actor as the pump sees it.
struct Actor {
    control: ringkernel_core::control::SharedControl,
    doorbell: Arc<Doorbell>,
    pipeline: usize,
    layout: KernelLayout,
    /// Byte offset of its block in the arena (its kernel memory first, then state, then scratch).
    base: u64,
    block_bytes: u64,
    route_index: u32,
    state_bytes: u32,
    /// Input slots uploaded so far (free-running).
    uploaded_tail: u32,
    /// The device's view after the last round.
    device_input_head: u32,
    device_output_tail: u32,
    control_ack: u32,
    inbox_pending: bool,
    /// Outputs the device parked because the ring was full (as of the last round).
    parked: u32,
    stopped: bool,
    shared: Arc<ActorShared>,
}

#[derive(Default)]
struct ActorShared {
    fault: Mutex<Option<String>>,
}

impl Actor {
    fn host_base(&self) -> *mut u8 {
        self.control.block() as *const ControlBlock as *mut u8
    }
}

struct Gpu {
    device: wgpu::Device,
    queue: wgpu::Queue,
    arena: wgpu::Buffer,
    params: wgpu::Buffer,
    pipelines: Vec<(wgpu::ComputePipeline, wgpu::BindGroup)>,
    /// Pipeline index of each kernel name, once built (at its first launch).
    built: HashMap<String, usize>,
    bind_group_layout: wgpu::BindGroupLayout,
    pipeline_layout: wgpu::PipelineLayout,
    /// The params slot of warm-up dispatches.
    warm_slot: u32,
    readback: Option<wgpu::Buffer>,
    unified: bool,
}

/// Everything the pump and the launches share, behind one lock.
struct PumpState {
    gpu: Gpu,
    arena: Arena,
    actors: HashMap<u64, Actor>,
    routes: Vec<bool>,
    next_actor: u64,
    lost: Option<String>,
    now_offset: u64,
}

struct Pump {
    state: Mutex<PumpState>,
    wake: Mutex<bool>,
    wakeup: Condvar,
    shutdown: AtomicBool,
    config: WgpuConfig,
    max_clock_offset_ns: u64,
}

impl Pump {
    fn wake(&self) {
        *lock(&self.wake) = true;
        self.wakeup.notify_one();
    }

    fn run(self: Arc<Self>) {
        loop {
            {
                let mut woken = lock(&self.wake);
                while !*woken && !self.shutdown.load(Ordering::Acquire) {
                    woken = self.wakeup.wait(woken).unwrap_or_else(PoisonError::into_inner);
                }
                *woken = false;
            }
            if self.shutdown.load(Ordering::Acquire) {
                return;
            }
            // Rounds until no actor has work the device can do without the host. The lock is
            // taken per round, so that launches and drop get in between under sustained traffic.
            while !self.shutdown.load(Ordering::Acquire) {
                let mut state = lock(&self.state);
                match self.round(&mut state) {
                    Ok(true) => {}
                    Ok(false) => break,
                    Err(error) => {
                        self.lose(&mut state, error);
                        break;
                    }
                }
            }
        }
    }

    /// The device was lost (or a copy failed): every actor fails with the reason.
    fn lose(&self, state: &mut PumpState, reason: String) {
        if state.actors.values().any(|a| !a.stopped) {
            tracing::error!("wgpu kernels stopped: {reason}");
        }
        state.lost = Some(reason.clone());
        for actor in state.actors.values_mut() {
            if !actor.stopped {
                *lock(&actor.shared.fault) = Some(reason.clone());
                actor.stopped = true;
                actor.control.block().has_terminated.store(termination::FAILED, Ordering::Release);
                actor.doorbell.ring();
            }
        }
    }

    /// One round: uploads, dispatches, downloads. Returns whether another round has work.
    fn round(&self, state: &mut PumpState) -> std::result::Result<bool, String> {
        let now =
            SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0) + state.now_offset;
        let config = &self.config;
        struct Planned {
            key: u64,
            output_from: u32,
            output_slots: u32,
            readback_at: u64,
            dispatches: u32,
        }
        let mut planned: Vec<Planned> = Vec::new();
        let mut keys: Vec<u64> = state.actors.iter().filter(|(_, a)| !a.stopped).map(|(k, _)| *k).collect();
        keys.sort_unstable();
        let PumpState { gpu, actors, arena, routes, .. } = state;
        let mut readback_bytes = 0u64;
        let mut any_wants = false;
        let mut idle: Vec<(u64, u64)> = Vec::new();
        let mut uploads: Vec<(u64, Vec<u8>)> = Vec::new();
        let mut param_uploads: Vec<(u64, Vec<u8>)> = Vec::new();
        for key in keys {
            let actor = actors.get_mut(&key).expect("listed");
            let block = actor.control.block();
            let sequence = block.control_sequence.load(Ordering::Acquire);
            let active = block.is_active.load(Ordering::Relaxed);
            let terminate = block.should_terminate.load(Ordering::Relaxed);
            let tail = block.input_tail.load(Ordering::Acquire);
            let output_head = block.output_head.load(Ordering::Acquire);
            let input = actor.layout.input();
            let output = actor.layout.output();
            let input_pending = tail != actor.device_input_head;
            let room = output.capacity() - actor.device_output_tail.wrapping_sub(output_head).min(output.capacity());
            let detached = terminate == ringkernel_core::layout::terminate_request::DRAIN_DETACHED;
            let can_work = detached || room >= 1;
            let wants = sequence != actor.control_ack
                || (terminate != 0 && can_work)
                || (actor.parked != 0 && can_work)
                || ((active != 0) && (input_pending || actor.inbox_pending) && can_work);
            if !wants {
                // Not dispatched: only its inbox header comes back (another actor may send to it).
                idle.push((key, readback_bytes));
                readback_bytes += 64;
                continue;
            }
            any_wants = true;

            // New input slots, as published (the acquire of the tail above orders these reads).
            let mut at = actor.uploaded_tail;
            let slot_bytes = input.slot_bytes() as u64;
            while at != tail {
                let index = u64::from(at & (input.capacity() - 1));
                let run = (u64::from(input.capacity()) - index).min(u64::from(tail.wrapping_sub(at)));
                let offset = actor.layout.input_offset() as u64 + index * slot_bytes;
                // SAFETY: these slots lie inside the kernel's region and were published by the
                // producer (the tail was loaded with acquire); nobody writes them until the device
                // hands them back through input_head, which happens after this copy.
                let bytes = unsafe {
                    std::slice::from_raw_parts(actor.host_base().add(offset as usize), (run * slot_bytes) as usize)
                };
                uploads.push((actor.base + offset, bytes.to_vec()));
                at = at.wrapping_add(run as u32);
            }
            actor.uploaded_tail = tail;
            // The host's line, as of this snapshot.
            let mut line = [0u32; 16];
            line[0] = active;
            line[1] = terminate;
            line[2] = tail;
            line[3] = output_head;
            line[4] = input.capacity();
            line[5] = input.slot_bytes();
            line[6] = output.capacity();
            line[7] = output.slot_bytes();
            line[8] = block.kernel_id;
            line[9] = block.node_id;
            line[10] = sequence;
            uploads.push((actor.base, bytemuck_bytes(&line)));
            // Params.
            let state_at = actor.base + actor.layout.bytes() as u64;
            let state_bytes = u64::from(actor.state_bytes);
            let scratch_at = state_at + state_bytes.next_multiple_of(16);
            let output_slot = u64::from(actor.layout.output().slot_bytes());
            let park_at = actor.base + actor.block_bytes - u64::from(config.outputs_per_message) * output_slot;
            let scratch_bytes = park_at - scratch_at;
            let inbox = actor.layout.inbox().expect("wgpu launches have an inbox");
            let _ = inbox;
            let out_budget = config.outputs_per_dispatch.min(room.max(1));
            let params: [u32; 24] = [
                (actor.base / 4) as u32,
                ((actor.base + actor.layout.input_offset() as u64) / 4) as u32,
                ((actor.base + actor.layout.output_offset() as u64) / 4) as u32,
                ((actor.base + actor.layout.inbox_offset() as u64) / 4) as u32,
                (state_at / 4) as u32,
                state_bytes as u32,
                (scratch_at / 4) as u32,
                block.kernel_id,
                0,
                config.max_actors,
                actor.route_index,
                now as u32,
                (now >> 32) as u32,
                self.max_clock_offset_ns as u32,
                (self.max_clock_offset_ns >> 32) as u32,
                config.messages_per_dispatch,
                out_budget,
                config.outputs_per_message,
                (scratch_bytes / 4) as u32,
                0,
                (park_at / 4) as u32,
                0,
                0,
                0,
            ];
            param_uploads.push((PARAMS_STRIDE * u64::from(actor.route_index), bytemuck_bytes(&params)));
            // What to copy back: the control block, the inbox header, the output slots it may fill.
            let output_slots = out_budget.min(room);
            let readback_at = readback_bytes;
            readback_bytes += READBACK_FIXED + u64::from(output_slots) * u64::from(output.slot_bytes());
            // One message per dispatch: as many as there is input (all of the budget when the
            // inbox may hold messages; a dispatch with nothing to do returns at once).
            let queued = tail.wrapping_sub(actor.device_input_head).min(input.capacity());
            let work = if active == 0 && terminate == 0 {
                1
            } else if actor.inbox_pending || actor.parked != 0 {
                config.messages_per_dispatch
            } else {
                queued.max(1)
            };
            let dispatches = work.clamp(1, config.messages_per_dispatch);
            // The round's output count starts at zero.
            uploads.push((scratch_at + 12, 0u32.to_le_bytes().to_vec()));
            planned.push(Planned { key, output_from: actor.device_output_tail, output_slots, readback_at, dispatches });
        }
        // Only actors with work are dispatched; the others' inbox headers come back so that a K2K
        // message sent to them this round gets them dispatched next round. None has work: nothing
        // is submitted.
        if !any_wants {
            return Ok(false);
        }
        // Uploads: params through the queue; the arena through the queue or the mapping.
        for (offset, bytes) in &param_uploads {
            gpu.queue.write_buffer(&gpu.params, *offset, bytes);
        }
        let arena_uploads = uploads;
        if gpu.unified {
            map_write(&gpu.device, &gpu.arena, &arena_uploads)?;
        } else {
            for (offset, bytes) in &arena_uploads {
                gpu.queue.write_buffer(&gpu.arena, *offset, bytes);
            }
        }
        let mut encoder =
            gpu.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("rk round") });
        {
            let mut pass = encoder
                .begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some("rk actors"), timestamp_writes: None });
            for plan in &planned {
                let actor = &actors[&plan.key];
                let (pipeline, bind_group) = &gpu.pipelines[actor.pipeline];
                pass.set_pipeline(pipeline);
                pass.set_bind_group(0, bind_group, &[(PARAMS_STRIDE * u64::from(actor.route_index)) as u32]);
                for _ in 0..plan.dispatches {
                    pass.dispatch_workgroups(1, 1, 1);
                }
            }
        }
        let ranges: Vec<(u64, u64, u64)> = planned
            .iter()
            .flat_map(|plan| {
                let actor = &actors[&plan.key];
                let output = actor.layout.output();
                let scratch_at =
                    actor.base + actor.layout.bytes() as u64 + u64::from(actor.state_bytes).next_multiple_of(16);
                let mut r = vec![
                    (actor.base, plan.readback_at, 128),
                    (actor.base + actor.layout.inbox_offset() as u64, plan.readback_at + 128, 64),
                    (scratch_at, plan.readback_at + 192, 16),
                ];
                let mut done = 0u32;
                while done < plan.output_slots {
                    let index = plan.output_from.wrapping_add(done) & (output.capacity() - 1);
                    let run = (output.capacity() - index).min(plan.output_slots - done);
                    r.push((
                        actor.base
                            + actor.layout.output_offset() as u64
                            + u64::from(index) * u64::from(output.slot_bytes()),
                        plan.readback_at + READBACK_FIXED + u64::from(done) * u64::from(output.slot_bytes()),
                        u64::from(run) * u64::from(output.slot_bytes()),
                    ));
                    done += run;
                }
                r
            })
            .chain(idle.iter().map(|&(key, at)| {
                let actor = &actors[&key];
                (actor.base + actor.layout.inbox_offset() as u64, at, 64)
            }))
            .collect();
        let mut readback = vec![0u8; readback_bytes as usize];
        if gpu.unified {
            gpu.queue.submit([encoder.finish()]);
            map_read(&gpu.device, &gpu.arena, |view| {
                for &(from, to, len) in &ranges {
                    readback[to as usize..(to + len) as usize]
                        .copy_from_slice(&view[from as usize..(from + len) as usize]);
                }
            })?;
        } else {
            let buffer = readback_buffer(gpu, readback_bytes);
            for &(from, to, len) in &ranges {
                encoder.copy_buffer_to_buffer(&gpu.arena, from, &buffer, to, len);
            }
            gpu.queue.submit([encoder.finish()]);
            map_read(&gpu.device, &buffer, |view| {
                readback.copy_from_slice(&view[..readback_bytes as usize]);
            })?;
        }
        if std::env::var_os("RK_WGPU_TRACE").is_some() {
            for plan in &planned {
                let at = plan.readback_at as usize;
                let w: Vec<u32> =
                    readback[at..at + 192].chunks_exact(4).map(|c| u32::from_le_bytes(c.try_into().unwrap())).collect();
                eprintln!("rk-wgpu: actor {} control {:?} inbox {:?}", plan.key, &w[..32], &w[32..40]);
            }
        }
        for &(key, at) in &idle {
            let actor = actors.get_mut(&key).expect("idle actor");
            let word = |i: usize| {
                u32::from_le_bytes(readback[at as usize + i * 4..at as usize + i * 4 + 4].try_into().expect("4 bytes"))
            };
            actor.inbox_pending = word(2) != word(5);
        }
        // Publish, in the protocol's order.
        let mut more = false;
        let mut stopped = Vec::new();
        for plan in &planned {
            let actor = actors.get_mut(&plan.key).expect("planned");
            let at = plan.readback_at as usize;
            let words: &[u8] = &readback[at..at + READBACK_FIXED as usize];
            let word = |i: usize| u32::from_le_bytes(words[i * 4..i * 4 + 4].try_into().expect("4 bytes"));
            let has_terminated = word(16);
            let input_head = word(17);
            let output_tail = word(18);
            let output = actor.layout.output();
            let written = output_tail.wrapping_sub(plan.output_from);
            let block = actor.control.block();
            if written > plan.output_slots {
                let reason = format!(
                    "the dispatch reported {written} new output slots, more than the {} it was given",
                    plan.output_slots
                );
                *lock(&actor.shared.fault) = Some(reason);
                actor.stopped = true;
                block.has_terminated.store(termination::FAILED, Ordering::Release);
                actor.doorbell.ring();
                continue;
            }
            for i in 0..written {
                let index = plan.output_from.wrapping_add(i) & (output.capacity() - 1);
                let from = at + READBACK_FIXED as usize + (i as usize) * output.slot_bytes() as usize;
                let to = actor.layout.output_offset() + index as usize * output.slot_bytes() as usize;
                // SAFETY: slot `index` lies between the published output tail and the consumer's
                // head plus capacity (the device wrote at most the free slots it was given), so
                // the consumer does not read it until the tail store below.
                unsafe {
                    std::ptr::copy_nonoverlapping(
                        readback.as_ptr().add(from),
                        actor.host_base().add(to),
                        output.slot_bytes() as usize,
                    );
                }
            }
            block.messages_processed.store(word(19), Ordering::Relaxed);
            block.messages_rejected.store(word(20), Ordering::Relaxed);
            block.error_count.store(word(21), Ordering::Relaxed);
            block.last_error.store(word(22), Ordering::Relaxed);
            block.heartbeat.store(word(23), Ordering::Relaxed);
            let physical = u64::from(word(25)) | (u64::from(word(26)) << 32);
            if physical != 0 || word(27) != 0 {
                block.store_device_hlc(HlcTimestamp::new(physical, word(27), block.node_id));
            }
            block.input_head.store(input_head, Ordering::Release);
            block.output_tail.store(output_tail, Ordering::Release);
            block.control_ack.store(word(28), Ordering::Release);
            actor.device_input_head = input_head;
            actor.device_output_tail = output_tail;
            actor.control_ack = word(28);
            let inbox_tail = word(32 + 2);
            let inbox_head = word(32 + 5);
            actor.inbox_pending = inbox_tail != inbox_head;
            actor.parked = word(48 + 2);
            if has_terminated != termination::RUNNING {
                stopped.push(plan.key);
            }
        }
        for key in stopped {
            let at = planned.iter().find(|p| p.key == key).expect("planned").readback_at;
            let (base, bytes, route) = self.finish(gpu, actors, key, &readback, &at)?;
            arena.release(base, bytes);
            routes[route as usize] = false;
        }
        for plan in &planned {
            if let Some(actor) = actors.get(&plan.key) {
                actor.doorbell.ring();
            }
        }
        // Another round if some actor still has work it can do now.
        for actor in actors.values().filter(|a| !a.stopped) {
            let block = actor.control.block();
            let tail = block.input_tail.load(Ordering::Acquire);
            let output_head = block.output_head.load(Ordering::Acquire);
            let output = actor.layout.output();
            let room = output.capacity() - actor.device_output_tail.wrapping_sub(output_head).min(output.capacity());
            let terminate = block.should_terminate.load(Ordering::Relaxed);
            let detached = terminate == ringkernel_core::layout::terminate_request::DRAIN_DETACHED;
            let can_work = detached || room >= 1;
            let active = block.is_active.load(Ordering::Relaxed) != 0 || terminate != 0;
            if block.control_sequence.load(Ordering::Acquire) != actor.control_ack
                || (can_work && actor.parked != 0)
                || (active && can_work && (tail != actor.device_input_head || actor.inbox_pending))
            {
                more = true;
            }
        }
        Ok(more)
    }

    /// An actor stopped: copy its inbox back (the engine takes back what was never handled),
    /// free its route and arena block, then publish the stop.
    fn finish(
        &self,
        gpu: &mut Gpu,
        actors: &mut HashMap<u64, Actor>,
        key: u64,
        readback: &[u8],
        readback_at: &u64,
    ) -> std::result::Result<(u64, u64, u32), String> {
        let actor = actors.get_mut(&key).expect("stopping actor");
        let inbox = actor.layout.inbox().expect("wgpu launches have an inbox");
        let stride = inbox.stride() as u64;
        let from = actor.base + actor.layout.inbox_offset() as u64;
        let mut bytes = vec![0u8; stride as usize];
        if gpu.unified {
            map_read(&gpu.device, &gpu.arena, |view| {
                bytes.copy_from_slice(&view[from as usize..(from + stride) as usize]);
            })?;
        } else {
            let buffer = readback_buffer(gpu, stride);
            let mut encoder =
                gpu.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("rk inbox") });
            encoder.copy_buffer_to_buffer(&gpu.arena, from, &buffer, 0, stride);
            gpu.queue.submit([encoder.finish()]);
            map_read(&gpu.device, &buffer, |view| bytes.copy_from_slice(&view[..stride as usize]))?;
        }
        // SAFETY: the inbox lies inside the kernel's region; nothing on the host touches it while
        // the kernel runs (wgpu kernels have no host-side K2K senders), and the engine reads it
        // only after the stop published below.
        unsafe {
            std::ptr::copy_nonoverlapping(
                bytes.as_ptr(),
                actor.host_base().add(actor.layout.inbox_offset()),
                stride as usize,
            );
        }
        let code =
            u32::from_le_bytes(readback[*readback_at as usize + 64..*readback_at as usize + 68].try_into().expect("4"));
        actor.stopped = true;
        actor.control.block().has_terminated.store(code, Ordering::Release);
        actor.doorbell.ring();
        let freed = (actor.base, actor.block_bytes, actor.route_index);
        actors.remove(&key);
        Ok(freed)
    }
}

fn bytemuck_bytes(words: &[u32]) -> Vec<u8> {
    words.iter().flat_map(|w| w.to_le_bytes()).collect()
}

fn readback_buffer(gpu: &mut Gpu, bytes: u64) -> wgpu::Buffer {
    let bytes = bytes.next_multiple_of(256).max(256);
    match &gpu.readback {
        Some(buffer) if buffer.size() >= bytes => buffer.clone(),
        _ => {
            let buffer = gpu.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("rk readback"),
                size: bytes.next_power_of_two(),
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            });
            gpu.readback = Some(buffer.clone());
            buffer
        }
    }
}

/// Maps `buffer` (whole) in `mode` and waits for wgpu's callback (polling the device blocks until
/// the GPU work before it is done and the callback ran).
fn map_wait(device: &wgpu::Device, buffer: &wgpu::Buffer, mode: wgpu::MapMode) -> std::result::Result<(), String> {
    let done: Arc<Mutex<Option<std::result::Result<(), wgpu::BufferAsyncError>>>> = Arc::default();
    let signal = done.clone();
    buffer.slice(..).map_async(mode, move |result| *lock(&signal) = Some(result));
    device.poll(wgpu::PollType::wait_indefinitely()).map_err(|e| format!("waiting for the GPU: {e}"))?;

    match lock(&done).take() {
        Some(Ok(())) => Ok(()),
        Some(Err(e)) => Err(format!("mapping a buffer: {e}")),
        None => Err("the GPU finished but the buffer map did not complete".into()),
    }
}

/// Maps `buffer` for reading, hands its bytes to `f`, unmaps.
pub(crate) fn map_read(
    device: &wgpu::Device,
    buffer: &wgpu::Buffer,
    f: impl FnOnce(&[u8]),
) -> std::result::Result<(), String> {
    map_wait(device, buffer, wgpu::MapMode::Read)?;
    {
        let view = buffer.slice(..).get_mapped_range().map_err(|e| format!("reading a mapped buffer: {e}"))?;
        f(&view);
    }
    buffer.unmap();
    Ok(())
}

/// Maps `buffer` for writing, writes each `(offset, bytes)`, unmaps.
fn map_write(
    device: &wgpu::Device,
    buffer: &wgpu::Buffer,
    writes: &[(u64, Vec<u8>)],
) -> std::result::Result<(), String> {
    map_wait(device, buffer, wgpu::MapMode::Write)?;
    {
        let mut view = buffer.slice(..).get_mapped_range_mut().map_err(|e| format!("writing a mapped buffer: {e}"))?;
        for (offset, bytes) in writes {
            view.slice(*offset as usize..*offset as usize + bytes.len()).copy_from_slice(bytes);
        }
    }
    buffer.unmap();
    Ok(())
}

/// The device side of one kernel: the pump does its work.
struct WgpuActor {
    pump: Arc<Pump>,
    shared: Arc<ActorShared>,
}

// SAFETY: the pump stores `has_terminated` for a kernel only after the dispatch that stopped it
// completed, its inbox was copied back into the host region and its `input_head` was published;
// it removes the actor in the same step and never touches its memory again. K2K senders are
// other dispatches, which find no route to it from the dispatch on that stopped it. A lost device
// stores `RK_FAILED` with nothing more to come.
unsafe impl Device for WgpuActor {
    fn wake(&self) {
        self.pump.wake();
    }

    fn rings_doorbell(&self) -> bool {
        true
    }

    fn fault_detail(&self) -> Option<String> {
        lock(&self.shared.fault).clone()
    }
}

/// The wgpu backend's runtime: event-driven actors on one adapter (Vulkan, Metal or DX12).
///
/// Every kernel with a WGSL handler ([`KernelSpec::wgsl`](ringkernel_core::kernel::KernelSpec::wgsl))
/// is compiled when the runtime starts (a WGSL error is [`RingKernelError::Compile`] with naga's
/// message and the line in the handler); launching a kernel without one is an error naming it.
pub struct WgpuRuntime {
    registry: KernelRegistry,
    /// Every WGSL kernel's validated module; its pipeline is built at its first launch (a
    /// driver's shader compiler can take seconds per pipeline: lavapipe's LLVM does).
    modules: HashMap<String, compile::Assembled>,
    kernels: KernelTable,
    pump: Arc<Pump>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    clock: Arc<HybridClock>,
    adapter: AdapterSummary,
    limits: wgpu::Limits,
}

impl WgpuRuntime {
    /// A runtime on the best adapter of Vulkan, Metal or DX12, with the default [`WgpuConfig`].
    ///
    /// # Errors
    /// [`RingKernelError::BackendUnavailable`] when no adapter is there; [`RingKernelError::Compile`]
    /// when a registered WGSL handler does not compile.
    pub async fn new(registry: KernelRegistry) -> Result<Self> {
        Self::with_config(registry, WgpuConfig::default()).await
    }

    /// Whether an adapter of the default backends is present (looks, creates nothing lasting).
    pub fn is_available() -> bool {
        Self::probe(wgpu::Backends::VULKAN | wgpu::Backends::METAL | wgpu::Backends::DX12).is_ok()
    }

    /// The adapter the given backends would give, or why there is none.
    ///
    /// # Errors
    /// [`RingKernelError::BackendUnavailable`] with the reason.
    pub fn probe(backends: wgpu::Backends) -> Result<AdapterSummary> {
        let instance = instance(backends);
        let adapter = pollster::block_on(instance.request_adapter(&wgpu::RequestAdapterOptions::default()))
            .map_err(|e| unavailable(format!("no wgpu adapter for {backends:?}: {e}")))?;
        Ok(summary(&adapter, false))
    }

    /// A runtime with explicit settings.
    ///
    /// # Errors
    /// As [`WgpuRuntime::new`]; [`RingKernelError::InvalidConfig`] for settings the adapter
    /// cannot meet (an arena larger than its largest storage binding, zero budgets).
    pub async fn with_config(registry: KernelRegistry, config: WgpuConfig) -> Result<Self> {
        for (field, value) in [
            ("max_actors", config.max_actors),
            ("messages_per_dispatch", config.messages_per_dispatch),
            ("outputs_per_dispatch", config.outputs_per_dispatch),
            ("outputs_per_message", config.outputs_per_message),
        ] {
            if value == 0 {
                return Err(RingKernelError::InvalidConfig { field, reason: "must be at least 1".into() });
            }
        }
        let instance = instance(config.backends);
        let adapter = instance
            .request_adapter(&wgpu::RequestAdapterOptions {
                power_preference: config.power_preference,
                ..Default::default()
            })
            .await
            .map_err(|e| unavailable(format!("no wgpu adapter for {:?}: {e}", config.backends)))?;
        let info = adapter.get_info();
        let mappable = adapter.features().contains(wgpu::Features::MAPPABLE_PRIMARY_BUFFERS);
        let uma = matches!(info.device_type, wgpu::DeviceType::IntegratedGpu | wgpu::DeviceType::Cpu);
        let unified = match config.unified_memory {
            UnifiedMemory::Off => false,
            UnifiedMemory::Auto => mappable && uma,
            UnifiedMemory::Require if mappable => true,
            UnifiedMemory::Require => {
                return Err(unavailable(format!(
                    "adapter `{}` cannot map storage buffers (no MAPPABLE_PRIMARY_BUFFERS): unified memory is not available",
                    info.name
                )));
            }
        };
        let limits = adapter.limits();
        let max_binding = limits.max_storage_buffer_binding_size.min(limits.max_buffer_size);
        if config.arena_bytes > max_binding || config.arena_bytes < 1 << 16 {
            return Err(RingKernelError::InvalidConfig {
                field: "arena_bytes",
                reason: format!(
                    "{} bytes: must be between 64 KiB and the adapter's largest storage binding, {max_binding} bytes",
                    config.arena_bytes
                ),
            });
        }
        let features = if unified { wgpu::Features::MAPPABLE_PRIMARY_BUFFERS } else { wgpu::Features::empty() };
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("ringkernel"),
                required_features: features,
                required_limits: limits.clone(),
                ..Default::default()
            })
            .await
            .map_err(|e| unavailable(format!("adapter `{}` refused a device: {e}", info.name)))?;

        // Compile every WGSL handler now (naga first, for typed errors with the user's lines).
        let mut sources = Vec::new();
        for spec in registry.specs() {
            if let Some(source) = spec.wgsl_source() {
                let module = compile::actor_module(spec.name(), source)?;
                module.validate()?;
                sources.push((spec.name().to_string(), module));
            }
        }
        let route_bytes = ROUTE_BYTES * u64::from(config.max_actors);
        if route_bytes.next_multiple_of(ARENA_ALIGN) + 2 * ARENA_ALIGN > config.arena_bytes {
            return Err(RingKernelError::InvalidConfig {
                field: "max_actors",
                reason: format!(
                    "{} route entries do not fit an arena of {} bytes",
                    config.max_actors, config.arena_bytes
                ),
            });
        }
        let mut usage = wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::COPY_SRC;
        if unified {
            usage |= wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::MAP_WRITE;
        }
        let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
        let arena = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("rk arena"),
            size: config.arena_bytes,
            usage,
            mapped_at_creation: false,
        });
        let params = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("rk params"),
            size: PARAMS_STRIDE * (u64::from(config.max_actors) + 1),
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("rk actor"),
            entries: &[
                wgpu::BindGroupLayoutEntry {
                    binding: 0,
                    visibility: wgpu::ShaderStages::COMPUTE,
                    ty: wgpu::BindingType::Buffer {
                        ty: wgpu::BufferBindingType::Storage { read_only: false },
                        has_dynamic_offset: false,
                        min_binding_size: None,
                    },
                    count: None,
                },
                wgpu::BindGroupLayoutEntry {
                    binding: 1,
                    visibility: wgpu::ShaderStages::COMPUTE,
                    ty: wgpu::BindingType::Buffer {
                        ty: wgpu::BufferBindingType::Uniform,
                        has_dynamic_offset: true,
                        min_binding_size: std::num::NonZeroU64::new(PARAMS_BYTES),
                    },
                    count: None,
                },
                wgpu::BindGroupLayoutEntry {
                    binding: 2,
                    visibility: wgpu::ShaderStages::COMPUTE,
                    ty: wgpu::BindingType::Buffer {
                        ty: wgpu::BufferBindingType::Storage { read_only: true },
                        has_dynamic_offset: false,
                        min_binding_size: None,
                    },
                    count: None,
                },
            ],
        });
        let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("rk actor"),
            bind_group_layouts: &[Some(&layout)],
            ..Default::default()
        });
        let modules: HashMap<String, compile::Assembled> = sources.into_iter().collect();
        if let Some(error) = scope.pop().await {
            return Err(RingKernelError::Compile { kernel: "wgpu pipelines".into(), log: error.to_string() });
        }
        let summary = summary(&adapter, unified);
        // After the routes: a control block that says "terminated", for warm-up dispatches.
        let warm_control = route_bytes.next_multiple_of(ARENA_ALIGN);
        let arena_alloc = Arena::new(warm_control + ARENA_ALIGN, config.arena_bytes);
        let mut stopped = [0u32; 32];
        stopped[16] = termination::TERMINATED;
        let mut warm_params = [0u32; 24];
        warm_params[0] = (warm_control / 4) as u32;
        if unified {
            map_write(&device, &arena, &[(warm_control, bytemuck_bytes(&stopped))])
                .map_err(|reason| unavailable(format!("the arena cannot be written: {reason}")))?;
        } else {
            queue.write_buffer(&arena, warm_control, &bytemuck_bytes(&stopped));
        }
        queue.write_buffer(&params, PARAMS_STRIDE * u64::from(config.max_actors), &bytemuck_bytes(&warm_params));
        let gpu = Gpu {
            device,
            queue,
            arena,
            params,
            pipelines: Vec::new(),
            built: HashMap::new(),
            bind_group_layout: layout,
            pipeline_layout,
            warm_slot: config.max_actors,
            readback: None,
            unified,
        };
        let pump = Arc::new(Pump {
            state: Mutex::new(PumpState {
                gpu,
                arena: arena_alloc,
                actors: HashMap::new(),
                routes: vec![false; config.max_actors as usize],
                next_actor: 0,
                lost: None,
                now_offset: 0,
            }),
            wake: Mutex::new(false),
            wakeup: Condvar::new(),
            shutdown: AtomicBool::new(false),
            max_clock_offset_ns: config.max_clock_offset_ns.unwrap_or(0),
            config: config.clone(),
        });
        let runner = pump.clone();
        let thread = std::thread::Builder::new()
            .name("rk-wgpu-pump".into())
            .spawn(move || runner.run())
            .map_err(|e| unavailable(format!("could not start the wgpu pump thread: {e}")))?;
        let clock =
            HybridClock::new(HlcConfig::new(config.host_node_id).with_max_offset_ns(config.max_clock_offset_ns));
        Ok(Self {
            registry,
            modules,
            kernels: KernelTable::new(),
            pump,
            thread: Mutex::new(Some(thread)),
            clock: Arc::new(clock),
            adapter: summary,
            limits,
        })
    }

    /// The adapter this runtime runs on.
    pub fn adapter(&self) -> &AdapterSummary {
        &self.adapter
    }

    /// The adapter's limits as the device was created with.
    pub fn limits(&self) -> &wgpu::Limits {
        &self.limits
    }

    /// The kernels this runtime can launch.
    pub fn registry(&self) -> &KernelRegistry {
        &self.registry
    }

    fn start(&self, id: KernelId, options: &LaunchOptions) -> Result<Arc<HostKernel>> {
        options.validate()?;
        let spec = self.registry.resolve(&id)?;
        let module = self.modules.get(spec.name()).ok_or_else(|| RingKernelError::InvalidConfig {
            field: "kernel",
            reason: format!("`{}` has no wgsl handler; give it one with KernelSpec::wgsl", spec.name()),
        })?;
        let state = spec.launch_state(options.initial_state.as_deref())?;
        let layout = options.kernel_layout()?;
        let inbox = layout.inbox().ok_or_else(|| RingKernelError::InvalidConfig {
            field: "inbox_capacity",
            reason: "the wgpu backend needs a K2K inbox".into(),
        })?;
        let number = self.kernels.take_number()?;
        let state_bytes = state.bytes().len() as u64;
        let payloads = [
            u64::from(layout.output().slot_bytes()) - MESSAGE_HEADER_BYTES as u64,
            u64::from(inbox.geometry().slot_bytes()) - MESSAGE_HEADER_BYTES as u64,
            24 + 256,
        ];
        let scratch_bytes = SCRATCH_RESERVED_BYTES + payloads.iter().max().copied().unwrap_or(0).next_multiple_of(16);
        let park_bytes = u64::from(self.pump.config.outputs_per_message) * u64::from(layout.output().slot_bytes());
        let block_bytes = layout.bytes() as u64 + state_bytes.next_multiple_of(16) + scratch_bytes + park_bytes;
        // The arena bounds what one actor may hold: refuse before touching any memory.
        if block_bytes > self.pump.config.arena_bytes {
            return Err(RingKernelError::AllocationFailed {
                what: "an actor's block in the wgpu arena (WgpuConfig::arena_bytes)",
                bytes: usize::try_from(block_bytes).unwrap_or(usize::MAX),
            });
        }
        let memory = KernelMemory::allocate(layout, number, number)?;
        let (host_ends, device_ends) = memory.split();
        drop(device_ends);
        let control = host_ends.control.clone();
        let doorbell = Arc::new(Doorbell::new());
        let shared = Arc::new(ActorShared::default());
        {
            let mut guard = lock(&self.pump.state);
            let st = &mut *guard;
            if let Some(reason) = &st.lost {
                return Err(RingKernelError::KernelFault {
                    kernel: id.to_string(),
                    reason: format!("the wgpu device was lost ({reason}); create a new runtime"),
                });
            }
            let pipeline = match st.gpu.built.get(spec.name()) {
                Some(&index) => index,
                None => build_pipeline(&mut st.gpu, module)?,
            };
            let route_index = st.routes.iter().position(|used| !used).ok_or_else(|| RingKernelError::InvalidConfig {
                field: "max_actors",
                reason: format!("{} actors already run on this runtime (WgpuConfig::max_actors)", st.routes.len()),
            })? as u32;
            let base = st.arena.alloc(block_bytes).ok_or(RingKernelError::AllocationFailed {
                what: "an actor's block in the wgpu arena (raise WgpuConfig::arena_bytes or use smaller queues)",
                bytes: block_bytes as usize,
            })?;
            // The kernel's memory as laid out on the host, its state, a zeroed scratch area, and
            // its route.
            let host_base = control.block() as *const ControlBlock as *const u8;
            // SAFETY: the region is `layout.bytes()` long and nobody else uses it yet.
            let region = unsafe { std::slice::from_raw_parts(host_base, layout.bytes()) };
            let mut block = region.to_vec();
            block.extend_from_slice(state.bytes());
            block.resize(block_bytes as usize, 0);
            let name = id.as_str().as_bytes();
            let mut route = [0u32; 16];
            route[0] = 1;
            route[1] = number;
            route[2] = fnv1a(name);
            route[3] = name.len() as u32;
            route[4] = ((base + layout.inbox_offset() as u64) / 4) as u32;
            let mut route_bytes = bytemuck_bytes(&route);
            for (i, b) in name.iter().take(32).enumerate() {
                route_bytes[32 + i] = *b;
            }
            let uploads = [(base, block), (ROUTE_BYTES * u64::from(route_index), route_bytes)];
            let gpu = &st.gpu;
            if gpu.unified {
                map_write(&gpu.device, &gpu.arena, &uploads)
                    .map_err(|reason| RingKernelError::KernelFault { kernel: id.to_string(), reason })?;
            } else {
                for (offset, bytes) in &uploads {
                    gpu.queue.write_buffer(&gpu.arena, *offset, bytes);
                }
            }
            st.routes[route_index as usize] = true;
            let key = st.next_actor;
            st.next_actor += 1;
            st.actors.insert(
                key,
                Actor {
                    control: control.clone(),
                    doorbell: doorbell.clone(),
                    pipeline,
                    layout,
                    base,
                    block_bytes,
                    route_index,
                    state_bytes: state_bytes as u32,
                    uploaded_tail: 0,
                    device_input_head: 0,
                    device_output_tail: 0,
                    control_ack: 0,
                    inbox_pending: false,
                    parked: 0,
                    stopped: false,
                    shared: shared.clone(),
                },
            );
        }
        let kernel = HostKernel::new(KernelParts {
            id,
            number,
            memory: host_ends,
            device: Arc::new(WgpuActor { pump: self.pump.clone(), shared }),
            doorbell,
            clock: self.clock.clone(),
            config: HostConfig {
                spin_before_park: self.pump.config.spin_before_park,
                watchdog: self.pump.config.watchdog,
                read_message_ids: self.pump.config.read_message_ids,
                ..HostConfig::default()
            },
            auto_activate: options.auto_activate,
        })?;
        self.pump.wake();
        Ok(kernel)
    }
}

/// Builds `module`'s pipeline and bind group; returns its index.
fn build_pipeline(gpu: &mut Gpu, module: &compile::Assembled) -> Result<usize> {
    let name = module.kernel.as_str();
    let device = &gpu.device;
    let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
    let shader = device.create_shader_module(wgpu::ShaderModuleDescriptor {
        label: Some(name),
        source: wgpu::ShaderSource::Wgsl(module.text.as_str().into()),
    });
    let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
        label: Some(name),
        layout: Some(&gpu.pipeline_layout),
        module: &shader,
        entry_point: Some(compile::ACTOR_ENTRY),
        compilation_options: Default::default(),
        cache: None,
    });
    let lits_bytes: Vec<u8> = module.literals.iter().flat_map(|w| w.to_le_bytes()).collect();
    let lits = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("rk literals"),
        size: lits_bytes.len() as u64,
        usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    gpu.queue.write_buffer(&lits, 0, &lits_bytes);
    let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: Some(name),
        layout: &gpu.bind_group_layout,
        entries: &[
            wgpu::BindGroupEntry { binding: 0, resource: gpu.arena.as_entire_binding() },
            wgpu::BindGroupEntry {
                binding: 1,
                resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                    buffer: &gpu.params,
                    offset: 0,
                    size: std::num::NonZeroU64::new(PARAMS_BYTES),
                }),
            },
            wgpu::BindGroupEntry { binding: 2, resource: lits.as_entire_binding() },
        ],
    });
    if let Some(error) = pollster::block_on(scope.pop()) {
        return Err(RingKernelError::Compile {
            kernel: name.to_string(),
            log: format!("the driver refused the pipeline: {error}"),
        });
    }
    // One dispatch on a control block that says "terminated" (it returns at once): drivers that
    // compile lazily (lavapipe) compile now, inside `launch`, not inside a caller's timeout.
    let mut encoder = device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("rk warm-up") });
    {
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor::default());
        pass.set_pipeline(&pipeline);
        pass.set_bind_group(0, &bind_group, &[(PARAMS_STRIDE * u64::from(gpu.warm_slot)) as u32]);
        pass.dispatch_workgroups(1, 1, 1);
    }
    gpu.queue.submit([encoder.finish()]);
    device.poll(wgpu::PollType::wait_indefinitely()).map_err(|e| RingKernelError::KernelFault {
        kernel: name.to_string(),
        reason: format!("the warm-up dispatch did not complete: {e}"),
    })?;
    let index = gpu.pipelines.len();
    gpu.pipelines.push((pipeline, bind_group));
    gpu.built.insert(name.to_string(), index);
    Ok(index)
}

/// The process's wgpu instance for `backends`: created once and shared by every runtime, probe
/// and halo exchange (some drivers, NVIDIA's Vulkan among them, stop creating instances after a
/// few dozen in one process).
pub(crate) fn instance(backends: wgpu::Backends) -> wgpu::Instance {
    static INSTANCES: Mutex<Vec<(wgpu::Backends, wgpu::Instance)>> = Mutex::new(Vec::new());
    let mut instances = lock(&INSTANCES);
    if let Some((_, instance)) = instances.iter().find(|(b, _)| *b == backends) {
        return instance.clone();
    }
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor {
        backends,
        ..wgpu::InstanceDescriptor::new_without_display_handle()
    });
    instances.push((backends, instance.clone()));
    instance
}

fn summary(adapter: &wgpu::Adapter, unified: bool) -> AdapterSummary {
    let info = adapter.get_info();
    AdapterSummary {
        name: info.name,
        backend: info.backend,
        device_type: info.device_type,
        driver: format!("{} {}", info.driver, info.driver_info),
        unified_memory: unified,
    }
}

impl Drop for WgpuRuntime {
    fn drop(&mut self) {
        self.pump.shutdown.store(true, Ordering::Release);
        self.pump.wake();
        if let Some(thread) = lock(&self.thread).take() {
            let _ = thread.join();
        }
        // Nothing runs the kernels any more: those still running fail (their callers get errors,
        // not hangs; `take_unprocessed` returns what they never handled).
        let mut state = lock(&self.pump.state);
        self.pump.lose(&mut state, "the WgpuRuntime was dropped while the kernel ran".into());
    }
}

#[async_trait]
impl RingKernelRuntime for WgpuRuntime {
    fn backend(&self) -> Backend {
        Backend::Wgpu
    }

    fn is_backend_available(&self, backend: Backend) -> bool {
        match backend {
            Backend::Wgpu | Backend::Auto => true,
            Backend::Metal => self.adapter.backend == wgpu::Backend::Metal,
            _ => false,
        }
    }

    async fn launch(&self, kernel_id: &str, options: LaunchOptions) -> Result<KernelHandle> {
        self.kernels.launch(kernel_id, |id| self.start(id, &options))
    }

    fn get_kernel(&self, kernel_id: &KernelId) -> Option<KernelHandle> {
        self.kernels.get(kernel_id)
    }

    fn list_kernels(&self) -> Vec<KernelId> {
        self.kernels.ids()
    }

    fn metrics(&self) -> RuntimeMetrics {
        self.kernels.metrics()
    }

    async fn shutdown(&self) -> Result<()> {
        self.kernels.shutdown().await
    }
}

/// A device and queue on the best adapter of `backends` (for buffers and kernels outside a
/// runtime).
///
/// # Errors
/// [`RingKernelError::BackendUnavailable`] without an adapter or device.
pub async fn open_device(backends: wgpu::Backends) -> Result<(wgpu::Device, wgpu::Queue)> {
    let adapter = instance(backends)
        .request_adapter(&wgpu::RequestAdapterOptions {
            power_preference: wgpu::PowerPreference::HighPerformance,
            ..Default::default()
        })
        .await
        .map_err(|e| unavailable(format!("no wgpu adapter for {backends:?}: {e}")))?;
    adapter
        .request_device(&wgpu::DeviceDescriptor {
            label: Some("ringkernel"),
            required_limits: adapter.limits(),
            ..Default::default()
        })
        .await
        .map_err(|e| unavailable(format!("the adapter refused a device: {e}")))
}

/// Copies `buffer` (which must allow COPY_SRC) into a readback buffer and returns its bytes,
/// waiting with wgpu's map callback.
///
/// # Errors
/// [`RingKernelError::KernelFault`] when the map fails (a lost device).
pub fn read_buffer(device: &wgpu::Device, queue: &wgpu::Queue, buffer: &wgpu::Buffer) -> Result<Vec<u8>> {
    let staging = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("rk readback"),
        size: buffer.size(),
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    let mut encoder = device.create_command_encoder(&wgpu::CommandEncoderDescriptor::default());
    encoder.copy_buffer_to_buffer(buffer, 0, &staging, 0, buffer.size());
    queue.submit([encoder.finish()]);
    let mut out = Vec::new();
    map_read(device, &staging, |view| out = view.to_vec())
        .map_err(|reason| RingKernelError::KernelFault { kernel: "wgpu buffer".into(), reason })?;
    Ok(out)
}
