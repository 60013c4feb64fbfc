//! One round of the pump: for every actor with work, upload the input the host published since
//! the last round and the host's line of its control block; dispatch it (one dispatch that loops
//! over up to `messages_per_dispatch` messages, or, where the driver bounds loop nests, a dispatch
//! of one message for each message it is known to have, up to that many); read back its report,
//! inbox header and the output slots it may have filled; then copy replies into the host's output
//! ring and publish the device's line in the protocol's order.
//!
//! A round is three steps, so that the pump's lock is not held while the GPU works:
//! [`submit`] (under the lock: every upload in one staging write, the dispatches and the readback
//! copies in one command buffer), [`wait`] (no lock: the map callback, bounded by
//! `WgpuConfig::round_timeout`), [`publish`] (under the lock). A K2K message written in one
//! dispatch is read in a later one (the next actor's in the same pass, or the next round).

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::{SystemTime, UNIX_EPOCH};

use core::mem::offset_of;

use ringkernel_core::control::DeviceStop;
use ringkernel_core::hlc::HlcTimestamp;
use ringkernel_core::layout::{ControlBlock, K2KInboxHeader, terminate_request, termination};

use super::abi::{
    READBACK_FIXED, SCRATCH_REPORT_BYTES, WgpuHostLine, WgpuParams, WgpuRoute, control_word, inbox_waiting, report,
};
use super::gpu::{PARAMS_ALIGN, PARAMS_BYTES};
use super::params_binding_bytes;
use super::pump::{Actor, Pump, PumpState};
use super::{ROUTE_BYTES, lock};

/// Where an upload goes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Target {
    Arena,
    Params,
}

/// Every upload of a round, gathered into one staging write.
#[derive(Default)]
struct Uploads {
    bytes: Vec<u8>,
    /// (target, offset there, offset in `bytes`, length)
    copies: Vec<(Target, u64, u64, u64)>,
}

impl Uploads {
    fn push(&mut self, target: Target, offset: u64, bytes: &[u8]) {
        debug_assert!(offset.is_multiple_of(4) && bytes.len().is_multiple_of(4), "copies move whole words");
        self.copies.push((target, offset, self.bytes.len() as u64, bytes.len() as u64));
        self.bytes.extend_from_slice(bytes);
    }

    /// Writes the staging buffer and records the copies out of it.
    fn record(self, pump: &Pump, state: &mut PumpState, encoder: &mut wgpu::CommandEncoder) {
        if self.copies.is_empty() {
            return;
        }
        let size = (self.bytes.len() as u64).next_multiple_of(4);
        let upload = match &state.upload {
            Some(buffer) if buffer.size() >= size => buffer.clone(),
            _ => {
                let buffer =
                    pump.gpu.buffer("rk upload", size.next_power_of_two().max(4096), wgpu::BufferUsages::COPY_SRC);
                state.upload = Some(buffer.clone());
                buffer
            }
        };
        pump.gpu.queue.write_buffer(&upload, 0, &self.bytes);
        for (target, offset, from, len) in self.copies {
            let to = if target == Target::Arena { &state.buffer } else { &state.params };
            encoder.copy_buffer_to_buffer(&upload, from, to, offset, len);
        }
    }
}

/// One dispatched actor of a round.
pub(crate) struct Planned {
    key: u64,
    output_from: u32,
    /// Output slots read back with the round.
    output_slots: u32,
    /// Free output slots when the round was planned (the most the device may fill).
    room: u32,
    readback_at: u64,
    dispatches: u32,
    /// Where its inbox header comes back, copied after the whole pass (while K2K senders run: one
    /// dispatched after it may have written to it since its report).
    inbox_at: Option<u64>,
}

/// A submitted round.
pub(crate) struct Round {
    planned: Vec<Planned>,
    /// Actors not dispatched, whose inbox header comes back: (key, readback offset).
    idle: Vec<(u64, u64)>,
    /// (arena offset, readback offset, length)
    ranges: Vec<(u64, u64, u64)>,
    readback_bytes: u64,
    /// The staged readback buffer; `None` with unified memory (the arena is mapped).
    staged: Option<wgpu::Buffer>,
    arena: wgpu::Buffer,
    index: wgpu::SubmissionIndex,
}

/// Grows (or shrinks) the arena buffer to the allocator's length: a copy of what lives in it into
/// a new buffer (the one a launch prepared when it grew the arena), in a submission of its own
/// that is waited for, and new bind groups. Only the pump calls it, between rounds; until the
/// copy completed, the old buffer stays the arena (what a failure copies inboxes back from).
fn fit_arena(pump: &Pump, state: &mut PumpState) -> Result<(), String> {
    let len = state.arena.len();
    if state.buffer.size() == len {
        return Ok(());
    }
    let buffer = match state.next_buffer.take() {
        Some(buffer) if buffer.size() == len => buffer,
        _ => {
            // A shrink: if the device cannot make the smaller buffer, keep the larger one.
            let scope = pump.gpu.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
            let buffer = new_arena_buffer(&pump.gpu, len);
            if pollster::block_on(scope.pop()).is_some() {
                return Ok(());
            }
            buffer
        }
    };
    let mut encoder =
        pump.gpu.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("rk arena resize") });
    encoder.copy_buffer_to_buffer(&state.buffer, 0, &buffer, 0, len.min(state.buffer.size()));
    let index = pump.gpu.queue.submit([encoder.finish()]);
    pump.gpu.wait_for(index)?;
    tracing::debug!("wgpu arena: {} -> {len} bytes", state.buffer.size());
    state.buffer = buffer;
    let params_bytes = params_binding_bytes(pump.config.max_actors);
    let bind_groups: Vec<wgpu::BindGroup> = state
        .pipelines
        .iter()
        .map(|(p, _)| pump.gpu.bind_group(p, &state.buffer, &state.params, params_bytes))
        .collect();
    for ((_, group), new) in state.pipelines.iter_mut().zip(bind_groups) {
        *group = new;
    }
    Ok(())
}

/// An arena buffer of `len` bytes.
pub(crate) fn new_arena_buffer(gpu: &super::gpu::Gpu, len: u64) -> wgpu::Buffer {
    let mut usage = wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC;
    if gpu.unified {
        usage |= wgpu::BufferUsages::MAP_READ;
    }
    gpu.buffer("rk arena", len, usage)
}

/// The host's line of an actor's control block, loaded once in the protocol's order (the
/// sequence before the flags it covers, the tail before the slots it publishes): what a round
/// decides on is exactly what it uploads.
struct Snapshot {
    sequence: u32,
    active: u32,
    terminate: u32,
    tail: u32,
    output_head: u32,
    /// Free output slots as of `output_head`.
    room: u32,
    wants: bool,
}

impl Snapshot {
    /// Loads the line and decides whether the actor can make progress now (the same rule for
    /// planning a round and for "another round").
    fn of(actor: &Actor) -> Self {
        let block = actor.control.block();
        let sequence = block.control_sequence.load(Ordering::Acquire);
        let active = block.is_active.load(Ordering::Relaxed);
        let terminate = block.should_terminate.load(Ordering::Relaxed);
        let tail = block.input_tail.load(Ordering::Acquire);
        let output_head = block.output_head.load(Ordering::Acquire);
        let capacity = actor.layout.output().capacity();
        let room = capacity - actor.device_output_tail.wrapping_sub(output_head).min(capacity);
        let can_work = terminate == terminate_request::DRAIN_DETACHED || room >= 1;
        let wants = sequence != actor.control_ack
            || (terminate != 0 && can_work)
            || (actor.parked != 0 && can_work)
            || (active != 0 && (tail != actor.device_input_head || actor.inbox_waiting > 0) && can_work);
        Self { sequence, active, terminate, tail, output_head, room, wants }
    }
}

/// Plans a round, uploads and submits it. `None` when no actor has work (pending uploads are
/// submitted anyway).
pub(crate) fn submit(pump: &Pump, state: &mut PumpState) -> Result<Option<Round>, String> {
    let config = &pump.config;
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0);
    fit_arena(pump, state)?;
    let mut encoder =
        pump.gpu.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("rk round") });
    let mut uploads = Uploads::default();
    for route in std::mem::take(&mut state.cleared_routes) {
        uploads.push(Target::Arena, ROUTE_BYTES * u64::from(route), bytemuck::bytes_of(&WgpuRoute::default()));
    }
    let route_capacity = state.route_high_water();
    state.round = state.round.wrapping_add(1).max(1);
    let round = state.round;
    // Idle actors' inbox headers come back only while some actor can send K2K (otherwise no
    // inbox fills on the device).
    let k2k = state.actors.values().any(|actor| actor.sends_k2k);
    let mut planned: Vec<Planned> = Vec::new();
    let mut params_of: Vec<WgpuParams> = Vec::new();
    let mut idle: Vec<(u64, u64)> = Vec::new();
    let mut readback_bytes = 0u64;
    for (&key, actor) in state.actors.iter_mut() {
        if let Some(block) = actor.pending.take() {
            uploads.push(Target::Arena, actor.base, &block);
            uploads.push(Target::Arena, ROUTE_BYTES * u64::from(actor.route_index), bytemuck::bytes_of(&actor.route));
        }
        let snapshot = Snapshot::of(actor);
        let Snapshot { sequence, active, terminate, tail, output_head, room, wants } = snapshot;
        if !wants {
            // Not dispatched: only its inbox header comes back (another actor may send to it).
            if k2k {
                idle.push((key, readback_bytes));
                readback_bytes += size_of::<K2KInboxHeader>() as u64;
            }
            continue;
        }
        let block = actor.control.block();
        let input = actor.layout.input();
        let output = actor.layout.output();
        // New input slots, as published (the acquire of the tail above orders these reads).
        let mut at = actor.uploaded_tail;
        let slot_bytes = u64::from(input.slot_bytes());
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
            uploads.push(Target::Arena, actor.base + offset, bytes);
            at = at.wrapping_add(run as u32);
        }
        actor.uploaded_tail = tail;
        let line = WgpuHostLine {
            is_active: active,
            should_terminate: terminate,
            input_tail: tail,
            output_head,
            input_capacity: input.capacity(),
            input_slot_bytes: input.slot_bytes(),
            output_capacity: output.capacity(),
            output_slot_bytes: output.slot_bytes(),
            kernel_id: block.kernel_id,
            node_id: block.node_id,
            control_sequence: sequence,
            ..WgpuHostLine::default()
        };
        uploads.push(Target::Arena, actor.base, bytemuck::bytes_of(&line));
        let scratch_at = actor.scratch_at();
        let output_slot = u64::from(output.slot_bytes());
        let park_at = actor.base + actor.block_bytes - u64::from(config.outputs_per_message) * output_slot;
        // The device takes no new message once it wrote `outputs_per_dispatch` outputs this round;
        // the host reads back as many slots as the ring can take of those.
        let out_budget = config.outputs_per_dispatch.min(room.max(1));
        // A loop takes up to the whole budget when the inbox or the park may hold work (a K2K
        // sender dispatched before it in this pass may add to the inbox); one message per
        // dispatch (where loops are bounded) gets as many dispatches as there is known work:
        // input, K2K messages waiting, one for the park, within the budget (a dispatch with
        // nothing to do returns at once; K2K messages sent to it during this pass wait for the
        // next round, which their inbox header, read back after the pass, asks for).
        let queued = tail.wrapping_sub(actor.device_input_head).min(input.capacity());
        let inactive = active == 0 && terminate == 0;
        let work = if inactive {
            1
        } else if actor.inbox_waiting > 0 || actor.parked != 0 {
            config.messages_per_dispatch
        } else {
            queued.max(1)
        };
        let known = queued.saturating_add(actor.inbox_waiting).saturating_add(u32::from(actor.parked != 0));
        let dispatches =
            if pump.loop_budget > 1 || inactive { 1 } else { known.clamp(1, config.messages_per_dispatch) };
        let params = WgpuParams {
            control: (actor.base / 4) as u32,
            input: ((actor.base + actor.layout.input_offset() as u64) / 4) as u32,
            output: ((actor.base + actor.layout.output_offset() as u64) / 4) as u32,
            inbox: ((actor.base + actor.layout.inbox_offset() as u64) / 4) as u32,
            state: ((actor.base + actor.layout.bytes() as u64) / 4) as u32,
            state_bytes: actor.state_bytes,
            scratch: (scratch_at / 4) as u32,
            number: block.kernel_id,
            routes: 0,
            route_capacity,
            route_index: actor.route_index,
            now_lo: now as u32,
            now_hi: (now >> 32) as u32,
            max_offset_lo: pump.max_clock_offset_ns as u32,
            max_offset_hi: (pump.max_clock_offset_ns >> 32) as u32,
            in_budget: config.messages_per_dispatch,
            out_budget: config.outputs_per_dispatch,
            park_capacity: config.outputs_per_message,
            scratch_words: ((park_at - scratch_at) / 4) as u32,
            zero: 0,
            park: (park_at / 4) as u32,
            loop_budget: pump.loop_budget.min(work.max(1)),
            round,
            ..WgpuParams::default()
        };
        params_of.push(params);
        let readback_at = readback_bytes;
        readback_bytes += READBACK_FIXED + u64::from(out_budget) * output_slot;
        let inbox_at = k2k.then(|| {
            readback_bytes += size_of::<K2KInboxHeader>() as u64;
            readback_bytes - size_of::<K2KInboxHeader>() as u64
        });
        planned.push(Planned {
            key,
            output_from: actor.device_output_tail,
            output_slots: out_budget,
            room,
            readback_at,
            dispatches,
            inbox_at,
        });
    }
    // Dispatch groups: while no running actor can send K2K, every actor of one kernel runs in one
    // dispatch (a workgroup each); otherwise each actor has a dispatch of its own, so that a K2K
    // message one writes is read by a later dispatch (the boundary is the fence).
    let batch = !state.actors.values().any(|actor| actor.sends_k2k);
    let mut groups: Vec<(usize, Vec<usize>)> = Vec::new(); // (pipeline, indices into planned)
    for (i, plan) in planned.iter().enumerate() {
        let pipeline = state.actors[&plan.key].pipeline;
        match groups.iter_mut().find(|(p, _)| batch && *p == pipeline) {
            Some((_, members)) => members.push(i),
            None => groups.push((pipeline, vec![i])),
        }
    }
    let mut offsets = Vec::with_capacity(groups.len());
    let mut at = 0u64;
    for (_, members) in &groups {
        offsets.push(at);
        for (n, &i) in members.iter().enumerate() {
            uploads.push(Target::Params, at + n as u64 * PARAMS_BYTES, bytemuck::bytes_of(&params_of[i]));
        }
        at = (at + members.len() as u64 * PARAMS_BYTES).next_multiple_of(PARAMS_ALIGN);
    }
    uploads.record(pump, state, &mut encoder);
    if planned.is_empty() {
        // Nothing to dispatch: the uploads (launches, cleared routes) still go out, so that the
        // device sees them before any later round.
        pump.gpu.queue.submit([encoder.finish()]);
        return Ok(None);
    }
    {
        let mut pass = encoder
            .begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some("rk actors"), timestamp_writes: None });
        for ((pipeline, members), offset) in groups.iter().zip(&offsets) {
            let (pipeline, bind_group) = &state.pipelines[*pipeline];
            pass.set_pipeline(&pipeline.pipeline);
            pass.set_bind_group(0, bind_group, &[*offset as u32]);
            let dispatches = members.iter().map(|&i| planned[i].dispatches).max().unwrap_or(1);
            for _ in 0..dispatches {
                pass.dispatch_workgroups(members.len() as u32, 1, 1);
            }
        }
    }
    let mut ranges: Vec<(u64, u64, u64)> = Vec::new();
    for plan in &planned {
        let actor = &state.actors[&plan.key];
        ranges.push((actor.scratch_at() + SCRATCH_REPORT_BYTES, plan.readback_at, READBACK_FIXED));
        if let Some(at) = plan.inbox_at {
            ranges.push((actor.base + actor.layout.inbox_offset() as u64, at, size_of::<K2KInboxHeader>() as u64));
        }
        output_ranges(actor, plan.output_from, plan.output_slots, plan.readback_at + READBACK_FIXED, &mut ranges);
    }
    for &(key, at) in &idle {
        let actor = &state.actors[&key];
        ranges.push((actor.base + actor.layout.inbox_offset() as u64, at, size_of::<K2KInboxHeader>() as u64));
    }
    if pump.config.faults.gpu_error.swap(false, Ordering::AcqRel) {
        // A copy past the end of the arena: wgpu refuses it (a validation error).
        let end = state.buffer.size();
        encoder.copy_buffer_to_buffer(&state.buffer, end - 4, &state.buffer, 0, 256);
    }
    let staged = if pump.gpu.unified {
        None
    } else {
        let buffer = readback_buffer(pump, state, readback_bytes);
        for &(from, to, len) in &ranges {
            encoder.copy_buffer_to_buffer(&state.buffer, from, &buffer, to, len);
        }
        Some(buffer)
    };
    let index = pump.gpu.queue.submit([encoder.finish()]);
    Ok(Some(Round { planned, idle, ranges, readback_bytes, staged, arena: state.buffer.clone(), index }))
}

/// The arena ranges of `count` output slots from `from` (wrapping), read back to `to` onwards.
fn output_ranges(actor: &Actor, from: u32, count: u32, to: u64, ranges: &mut Vec<(u64, u64, u64)>) {
    let output = actor.layout.output();
    let slot = u64::from(output.slot_bytes());
    let mut done = 0u32;
    while done < count {
        let index = from.wrapping_add(done) & (output.capacity() - 1);
        let run = (output.capacity() - index).min(count - done);
        ranges.push((
            actor.base + actor.layout.output_offset() as u64 + u64::from(index) * slot,
            to + u64::from(done) * slot,
            u64::from(run) * slot,
        ));
        done += run;
    }
}

fn readback_buffer(pump: &Pump, state: &mut PumpState, bytes: u64) -> wgpu::Buffer {
    let bytes = bytes.next_multiple_of(256).max(256);
    match &state.readback {
        Some(buffer) if buffer.size() >= bytes => buffer.clone(),
        _ => {
            let buffer = pump.gpu.buffer("rk readback", bytes.next_power_of_two(), wgpu::BufferUsages::MAP_READ);
            state.readback = Some(buffer.clone());
            buffer
        }
    }
}

/// Waits for a submitted round (no lock held) and returns what it read back.
pub(crate) fn wait(pump: &Pump, round: &Round) -> Result<Vec<u8>, String> {
    let mut readback = vec![0u8; round.readback_bytes as usize];
    match &round.staged {
        Some(buffer) => pump.gpu.map_read(buffer, Some(round.index.clone()), |view| {
            readback.copy_from_slice(&view[..round.readback_bytes as usize]);
        })?,
        None => pump.gpu.map_read(&round.arena, Some(round.index.clone()), |view| {
            for &(from, to, len) in &round.ranges {
                readback[to as usize..(to + len) as usize].copy_from_slice(&view[from as usize..(from + len) as usize]);
            }
        })?,
    }
    Ok(readback)
}

/// Copies `ranges` of the arena (offset, readback offset, length) into one buffer: a second,
/// small transfer after a round (outputs beyond what the round read back, inboxes of actors
/// that stopped). Waits for the GPU under the lock, but no dispatch is in flight.
fn fetch(pump: &Pump, state: &mut PumpState, ranges: &[(u64, u64, u64)]) -> Result<Vec<u8>, String> {
    let bytes = ranges.iter().map(|&(_, to, len)| to + len).max().unwrap_or(0);
    let mut out = vec![0u8; bytes as usize];
    if bytes == 0 {
        return Ok(out);
    }
    if pump.gpu.unified {
        let arena = state.buffer.clone();
        pump.gpu.map_read(&arena, None, |view| {
            for &(from, to, len) in ranges {
                out[to as usize..(to + len) as usize].copy_from_slice(&view[from as usize..(from + len) as usize]);
            }
        })?;
    } else {
        let buffer = pump.gpu.buffer("rk fetch", bytes.next_multiple_of(4), wgpu::BufferUsages::MAP_READ);
        let mut encoder =
            pump.gpu.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("rk fetch") });
        for &(from, to, len) in ranges {
            encoder.copy_buffer_to_buffer(&state.buffer, from, &buffer, to, len);
        }
        let index = pump.gpu.queue.submit([encoder.finish()]);
        pump.gpu.map_read(&buffer, Some(index), |view| out.copy_from_slice(&view[..bytes as usize]))?;
    }
    Ok(out)
}

/// How a dispatched actor came out of the round.
enum Outcome {
    Running,
    /// It stopped (the device's `has_terminated` code, or FAILED with the host's reason).
    Stopped {
        code: u32,
        reason: Option<String>,
    },
}

/// Publishes a completed round. Returns whether another round has work.
pub(crate) fn publish(pump: &Pump, state: &mut PumpState, round: Round, readback: &[u8]) -> Result<bool, String> {
    for &(key, at) in &round.idle {
        if let Some(actor) = state.actors.get_mut(&key) {
            actor.inbox_waiting = inbox_waiting(&readback[at as usize..]);
        }
    }
    // First pass: what each actor reported, and what must still be fetched.
    let mut outcomes = Vec::with_capacity(round.planned.len());
    let mut extra: Vec<(u64, u64, u64)> = Vec::new();
    let mut extra_at: Vec<Option<u64>> = Vec::with_capacity(round.planned.len());
    let mut extra_bytes = 0u64;
    let mut inbox_at: Vec<Option<u64>> = Vec::with_capacity(round.planned.len());
    for plan in &round.planned {
        let actor = &state.actors[&plan.key];
        let reported = report(&readback[plan.readback_at as usize..]);
        let mut output_tail = reported.output_tail;
        if let Some(hook) = &pump.config.faults.extra_outputs {
            output_tail = output_tail.wrapping_add(hook(&actor.id));
        }
        let written = output_tail.wrapping_sub(plan.output_from);
        let code = reported.has_terminated;
        let outcome = if written > plan.room {
            Outcome::Stopped {
                code: termination::FAILED,
                reason: Some(format!(
                    "the device reported {written} new output slots, more than the {} free in the ring: the \
                     actor's memory on the GPU cannot be trusted",
                    plan.room
                )),
            }
        } else if code != termination::RUNNING {
            Outcome::Stopped { code, reason: None }
        } else {
            Outcome::Running
        };
        // Outputs past what the round read back (a message in hand wrote more than the budget).
        if matches!(outcome, Outcome::Running | Outcome::Stopped { reason: None, .. }) && written > plan.output_slots {
            extra_at.push(Some(extra_bytes));
            let count = written - plan.output_slots;
            output_ranges(actor, plan.output_from.wrapping_add(plan.output_slots), count, extra_bytes, &mut extra);
            extra_bytes += u64::from(count) * u64::from(actor.layout.output().slot_bytes());
        } else {
            extra_at.push(None);
        }
        if matches!(outcome, Outcome::Stopped { .. }) {
            let stride = actor.layout.inbox().expect("wgpu launches have an inbox").stride() as u64;
            inbox_at.push(Some(extra_bytes));
            extra.push((actor.base + actor.layout.inbox_offset() as u64, extra_bytes, stride));
            extra_bytes += stride;
        } else {
            inbox_at.push(None);
        }
        outcomes.push(outcome);
    }
    let fetched = if extra.is_empty() { Vec::new() } else { fetch(pump, state, &extra)? };
    // Second pass: publish, in the protocol's order.
    for (i, plan) in round.planned.iter().enumerate() {
        let at = plan.readback_at as usize;
        let reported = report(&readback[at..]);
        let actor = state.actors.get_mut(&plan.key).expect("a planned actor stays until its round is published");
        let block = actor.control.block();
        let failed_by_host = matches!(&outcomes[i], Outcome::Stopped { reason: Some(_), .. });
        if !failed_by_host {
            let output = actor.layout.output();
            let slot = output.slot_bytes() as usize;
            let output_tail = reported.output_tail;
            let written = output_tail.wrapping_sub(plan.output_from);
            for n in 0..written {
                let index = plan.output_from.wrapping_add(n) & (output.capacity() - 1);
                let from = if n < plan.output_slots {
                    &readback[at + READBACK_FIXED as usize + n as usize * slot..][..slot]
                } else {
                    let base = extra_at[i].expect("fetched") as usize;
                    &fetched[base + (n - plan.output_slots) as usize * slot..][..slot]
                };
                let to = actor.layout.output_offset() + index as usize * slot;
                // SAFETY: slot `index` lies between the published output tail and the consumer's
                // head plus capacity (the device wrote at most the free slots, checked above), so
                // the consumer does not read it until the tail store below.
                unsafe { std::ptr::copy_nonoverlapping(from.as_ptr(), actor.host_base().add(to), slot) };
            }
            block.messages_processed.store(reported.messages_processed, Ordering::Relaxed);
            block.messages_rejected.store(reported.messages_rejected, Ordering::Relaxed);
            block.error_count.store(reported.error_count, Ordering::Relaxed);
            block.last_error.store(reported.last_error, Ordering::Relaxed);
            block.heartbeat.store(reported.heartbeat, Ordering::Relaxed);
            let physical = u64::from(reported.hlc_physical_lo) | (u64::from(reported.hlc_physical_hi) << 32);
            let logical = reported.hlc_logical;
            if physical != 0 || logical != 0 {
                block.store_device_hlc(HlcTimestamp::new(physical, logical, block.node_id));
            }
            block.output_tail.store(output_tail, Ordering::Release);
            actor.device_output_tail = output_tail;
        }
        block.input_head.store(reported.input_head, Ordering::Release);
        actor.device_input_head = reported.input_head;
        block.control_ack.store(reported.control_ack, Ordering::Release);
        actor.control_ack = reported.control_ack;
        actor.inbox_waiting = match plan.inbox_at {
            Some(at) => inbox_waiting(&readback[at as usize..]),
            None => reported.inbox_tail.wrapping_sub(reported.inbox_head),
        };
        actor.parked = reported.parked;
    }
    for (i, plan) in round.planned.iter().enumerate() {
        if let Outcome::Stopped { code, reason } = &outcomes[i] {
            let stride = state.actors[&plan.key].layout.inbox().expect("inbox").stride();
            let at = inbox_at[i].expect("fetched") as usize;
            finish(state, plan.key, *code, reason.clone(), &fetched[at..at + stride]);
        } else if let Some(actor) = state.actors.get(&plan.key) {
            actor.doorbell.ring();
        }
    }
    // Another round if some actor still has work it can do now.
    Ok(state.actors.values().any(|actor| Snapshot::of(actor).wants) || state.arena.len() != state.buffer.size())
}

/// An actor stopped: copy its inbox back (the engine takes back what was never handled), free
/// its route and arena block, then publish the stop (with the host's reason when the host
/// stopped it).
fn finish(state: &mut PumpState, key: u64, code: u32, reason: Option<String>, inbox: &[u8]) {
    let actor = state.actors.remove(&key).expect("stopping actor");
    // SAFETY: the inbox lies inside the kernel's region; nothing on the host touches it while the
    // kernel runs (wgpu kernels have no host-side K2K senders), and the engine reads it only after
    // the stop published below.
    unsafe {
        std::ptr::copy_nonoverlapping(inbox.as_ptr(), actor.host_base().add(actor.layout.inbox_offset()), inbox.len());
    }
    let failed_by_host = reason.is_some();
    if let Some(reason) = reason {
        tracing::error!("wgpu kernel `{}` stopped: {reason}", actor.id);
        *lock(&actor.shared.fault) = Some(reason);
    }
    state.arena.release(actor.base, actor.block_bytes);
    state.routes[actor.route_index as usize] = false;
    state.cleared_routes.push(actor.route_index);
    // The stop as the device reported it (an undefined word stays undefined: the engine then
    // trusts nothing of it), or a failure on its behalf.
    if failed_by_host {
        actor.control.block().fail_for_device(ringkernel_core::error::codes::HANDLER_FAULT);
    } else {
        actor.control.block().report_stop(DeviceStop::from_word(code));
    }
    actor.doorbell.ring();
}

/// Copies every running actor's K2K inbox back into its host region and returns the input head
/// the device last stored for each (a round may have run that was never published): the runtime
/// is failing, and `take_unprocessed` must return exactly what was never handled.
pub(crate) fn rescue(pump: &Pump, state: &mut PumpState) -> Result<HashMap<u64, u32>, String> {
    let mut ranges = Vec::new();
    let mut at = 0u64;
    let mut places = Vec::new();
    for (&key, actor) in &state.actors {
        if actor.pending.is_some() {
            continue; // never uploaded: the host region is already what the device would hold
        }
        let stride = actor.layout.inbox().expect("inbox").stride() as u64;
        ranges.push((actor.base, at, size_of::<ControlBlock>() as u64));
        ranges.push((actor.base + actor.layout.inbox_offset() as u64, at + size_of::<ControlBlock>() as u64, stride));
        places.push((key, at, stride));
        at += size_of::<ControlBlock>() as u64 + stride;
    }
    let fetched = fetch(pump, state, &ranges)?;
    let mut heads = HashMap::new();
    for (key, at, stride) in places {
        let actor = &state.actors[&key];
        let record = &fetched[at as usize..];
        heads.insert(key, control_word(record, offset_of!(ControlBlock, input_head)));
        let inbox = &record[size_of::<ControlBlock>()..size_of::<ControlBlock>() + stride as usize];
        // SAFETY: as in `finish`: the engine reads the inbox only after the stop is published.
        unsafe {
            std::ptr::copy_nonoverlapping(
                inbox.as_ptr(),
                actor.host_base().add(actor.layout.inbox_offset()),
                stride as usize,
            );
        }
    }
    Ok(heads)
}
