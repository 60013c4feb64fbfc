//! The persistent actor loop: one OS thread per kernel, over the same control block and rings
//! that a GPU kernel uses.
//!
//! Each pass reads the host-written flags of the control block; while active it handles up to
//! [`BATCH`] messages from the input ring and then from the K2K inbox, in order. Counters reach the
//! device-written line with each reply (see `Counters`); heartbeat and clock every few hundred
//! passes and before parking. When there is nothing to do it spins
//! for [`crate::CpuConfig::spin_before_park`], then parks until a send, a K2K message or a state
//! change unparks it (or a heartbeat period passes).
//!
//! Termination drains everything accepted before it stops; a handler panic turns the kernel
//! `Failed` and returns every message it had accepted but not handled to the host.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use ringkernel_core::error::{RingKernelError, codes};
use ringkernel_core::hlc::{HlcTimestamp, HybridClock, PhysicalClock, SystemClock};
use ringkernel_core::kernel::{CpuHandler, Destination, HandlerContext, HandlerIo, StateBuffer};
use ringkernel_core::layout::{MESSAGE_HEADER_BYTES, MessageHeader, flags};
use ringkernel_core::message::Envelope;
use ringkernel_core::message::{ErrorReport, HOST_KERNEL_ID, check_header, decode_slot, encode_slot};
use ringkernel_core::queue::mpsc::InboxReceiver;
use ringkernel_core::queue::spsc::{Consumer, Producer};
use ringkernel_core::runtime::KernelState;

use crate::directory::Directory;
use crate::shared::{Shared, lock};

/// Messages handled from one queue before looking at the other and at the flags.
pub(crate) const BATCH: u32 = 64;
/// How long a parked actor sleeps before it refreshes its heartbeat.
const HEARTBEAT_PERIOD: Duration = Duration::from_millis(100);
/// Longest sleep of an actor waiting for room in its output ring (the host wakes it sooner when
/// it drains).
const OUTPUT_FULL_BACKOFF: Duration = Duration::from_millis(1);

/// What a handler's sends go through: the output ring, the K2K directory, the kernel's clock.
pub(crate) struct Io {
    shared: Arc<Shared>,
    output: Producer,
    directory: Arc<Directory>,
    clock: HybridClock,
    /// Messages handed to the handler so far, and the count last stored in the control block.
    /// The store is made just before a reply is published, in the same cache line as the output
    /// tail, so that it costs no extra line transfer and a host that sees the reply sees the count.
    processed: u32,
    published_processed: u32,
}

impl HandlerIo for Io {
    fn deliver(
        &mut self,
        destination: Destination<'_>,
        mut header: MessageHeader,
        payload: &[u8],
    ) -> ringkernel_core::Result<()> {
        header.source_kernel = self.shared.number;
        header.set_timestamp(self.clock.tick_exclusive());
        match destination {
            Destination::Host => self.write_to_host(header, payload),
            Destination::Kernel(_) | Destination::KernelNumber(_) => {
                header.flags |= flags::K2K;
                self.directory.send(destination, self.shared.number, &mut header, payload)
            }
        }
    }
}

impl Io {
    pub(crate) fn new(shared: Arc<Shared>, output: Producer, directory: Arc<Directory>, clock: HybridClock) -> Self {
        Self { shared, output, directory, clock, processed: 0, published_processed: 0 }
    }

    fn publish_processed(&mut self) {
        if self.published_processed != self.processed {
            self.published_processed = self.processed;
            self.shared.control.block().messages_processed.store(self.processed, Ordering::Release);
        }
    }

    /// Writes into the output ring, waiting while it is full: the host drains it in `call`,
    /// `receive` and `terminate`, so waiting is back-pressure, not a deadlock.
    fn write_to_host(&mut self, mut header: MessageHeader, payload: &[u8]) -> ringkernel_core::Result<()> {
        header.dest_kernel = HOST_KERNEL_ID;
        check_header(&header, payload.len(), self.output.slot_bytes() - MESSAGE_HEADER_BYTES)?;
        self.publish_processed();
        let mut full_since: Option<Instant> = None;
        loop {
            match self.output.try_push(|slot| encode_slot(slot, &header, payload)) {
                Ok(encoded) => {
                    encoded.expect("header and payload size were checked before claiming the slot");
                    self.shared.output_signal.notify();
                    self.output.prefetch_next_for_write(&crate::shared::MESSAGE_LINES);
                    return Ok(());
                }
                Err(full) => {
                    if self.shared.detached.load(Ordering::Acquire) {
                        return Err(full.into_error("output ring (no host handle is left to read it)"));
                    }
                    self.shared.output_signal.notify();
                    let since = *full_since.get_or_insert_with(Instant::now);
                    if since.elapsed() < self.shared.config.spin_before_park {
                        std::hint::spin_loop();
                        continue;
                    }
                    // Tell the host to wake us when it drains, then check once more before
                    // sleeping (the host checks the flag after it publishes the new head).
                    self.shared.output_blocked.store(true, Ordering::SeqCst);
                    if self.output.free_slots() == 0 {
                        std::thread::park_timeout(OUTPUT_FULL_BACKOFF);
                    }
                    self.shared.output_blocked.store(false, Ordering::Relaxed);
                }
            }
        }
    }
}

/// The actor's own counters, published to the control block's device line.
///
/// The host polls `output_tail` in that same line while it waits for a reply, so every store
/// there can cost a cache-line transfer. Per message the actor stores only what a host that has
/// seen the reply must also see (`messages_processed`, and the error counters when they change);
/// heartbeat and clock are published every [`PUBLISH_EVERY`] passes and before parking.
#[derive(Default)]
struct Counters {
    processed: u32,
    rejected: u32,
    errors: u32,
    heartbeat: u32,
    passes: u32,
}

/// Loop passes between heartbeat and clock publications while busy.
const PUBLISH_EVERY: u32 = 256;

/// Everything but the queues it reads, so that a handler can run while a slot is borrowed.
struct Core {
    io: Io,
    state: StateBuffer,
    handler: Arc<CpuHandler>,
    counters: Counters,
    /// The clock after the last message received.
    last_event: HlcTimestamp,
    /// Set when the handler panicked; the loop then fails the kernel.
    fault: Option<String>,
}

pub(crate) struct Actor {
    input: Consumer,
    inbox: InboxReceiver,
    core: Core,
}

impl Actor {
    pub(crate) fn new(
        input: Consumer,
        inbox: InboxReceiver,
        io: Io,
        state: StateBuffer,
        handler: Arc<CpuHandler>,
    ) -> Self {
        Self {
            input,
            inbox,
            core: Core {
                io,
                state,
                handler,
                counters: Counters::default(),
                last_event: HlcTimestamp::default(),
                fault: None,
            },
        }
    }

    fn shared(&self) -> &Shared {
        &self.core.io.shared
    }

    /// The persistent loop; returns when the kernel has terminated or failed.
    pub(crate) fn run(mut self) {
        loop {
            let block = self.shared().control.block();
            if block.should_terminate.load(Ordering::Acquire) != 0 {
                return self.terminate();
            }
            let active = block.is_active.load(Ordering::Acquire) != 0;
            let mut handled = 0;
            if active {
                handled = self.drain(BATCH);
                if self.core.fault.is_some() {
                    return self.fail();
                }
            }
            self.core.counters.passes = self.core.counters.passes.wrapping_add(1);
            if self.core.counters.passes.is_multiple_of(PUBLISH_EVERY) {
                self.core.publish_state();
            }
            if handled == 0 {
                self.idle(active);
            }
        }
    }

    /// Handles up to `max` messages from the input ring, then up to `max` from the inbox.
    fn drain(&mut self, max: u32) -> u32 {
        let mut handled = 0;
        let core = &mut self.core;
        while handled < max && core.fault.is_none() {
            if self.input.try_pop(|slot| core.handle_slot(slot)).is_none() {
                break;
            }
            handled += 1;
        }
        let from_input = handled;
        while handled < from_input.saturating_add(max) && core.fault.is_none() {
            if self.inbox.try_recv(|slot| core.handle_slot(slot)).is_none() {
                break;
            }
            handled += 1;
        }
        if from_input > 0 {
            core.io.shared.input_signal.notify();
        }
        handled
    }

    fn has_work(&mut self, was_active: bool) -> bool {
        let block = self.shared().control.block();
        if block.should_terminate.load(Ordering::Acquire) != 0 {
            return true;
        }
        let active = block.is_active.load(Ordering::Acquire) != 0;
        active != was_active || (active && (self.input.available() > 0 || !self.inbox.is_empty()))
    }

    /// Spins, then parks until woken or a heartbeat period passes.
    fn idle(&mut self, active: bool) {
        // The clock is read only after a first round of checks, which usually finds the next
        // message: a reading per message would cost about as much as the checks.
        let mut spin_until = None;
        loop {
            for _ in 0..64 {
                if self.has_work(active) {
                    return;
                }
                std::hint::spin_loop();
            }
            let now = Instant::now();
            if now >= *spin_until.get_or_insert(now + self.shared().config.spin_before_park) {
                break;
            }
        }
        self.core.publish_state();
        std::thread::park_timeout(HEARTBEAT_PERIOD);
    }

    /// Leaves the K2K directory, handles everything accepted, and reports `Terminated`.
    fn terminate(mut self) {
        let number = self.shared().number;
        self.core.io.directory.remove(number);
        // The host stopped accepting sends before it raised the flag, and nobody can reach the
        // inbox any more, so once both queues read empty they stay empty.
        loop {
            let handled = self.drain(u32::MAX);
            if self.core.fault.is_some() {
                return self.fail();
            }
            if handled == 0 {
                break;
            }
        }
        self.core.publish_state();
        let shared = self.core.io.shared.clone();
        shared.control.block().has_terminated.store(1, Ordering::Release);
        drop(self);
        shared.set_state(KernelState::Terminated);
        shared.output_signal.notify();
        shared.input_signal.notify();
    }

    /// Stops accepting, returns every message accepted but not handled, reports `Failed`.
    ///
    /// All of it happens under the host lock, so no send can slip in, and a host that sees
    /// `Failed` also sees every returned message and the final counts.
    fn fail(mut self) {
        let reason = self.core.fault.take().unwrap_or_default();
        let shared = self.core.io.shared.clone();
        {
            let _no_sends = lock(&shared.host);
            self.core.io.directory.remove(shared.number);
            let mut returned = Vec::new();
            let mut rejected = 0;
            let mut take = |decoded: Result<Envelope, _>| match decoded {
                Ok(envelope) => returned.push(envelope),
                Err(_) => rejected += 1,
            };
            while let Some(decoded) = self.input.try_pop(Envelope::decode_from) {
                take(decoded);
            }
            while let Some(decoded) = self.inbox.try_recv(Envelope::decode_from) {
                take(decoded);
            }
            self.core.counters.rejected = self.core.counters.rejected.wrapping_add(rejected);
            self.core.publish_counters();
            self.core.publish_state();
            let block = shared.control.block();
            block.last_error.store(codes::HANDLER_FAULT, Ordering::Relaxed);
            block.has_terminated.store(1, Ordering::Release);
            shared.returned.fetch_add(returned.len() as u64, Ordering::Relaxed);
            lock(&shared.unprocessed).extend(returned);
            *lock(&shared.fault) = Some(reason);
            shared.set_state(KernelState::Failed);
        }
        drop(self);
        shared.output_signal.notify();
        shared.input_signal.notify();
    }
}

impl Core {
    /// Validates one slot and runs the handler on it; never panics.
    fn handle_slot(&mut self, slot: &[u8]) {
        let decoded = match decode_slot(slot) {
            Ok(decoded) => decoded,
            Err(error) => {
                // The header cannot be trusted, so there is nobody to answer: count it.
                tracing::warn!(kernel = %self.io.shared.id, %error, "skipped an invalid slot");
                return self.reject(error.code());
            }
        };
        let header = decoded.header;
        if let Some(deadline_ns) = header.deadline_ns() {
            let now_ns = SystemClock.now_ns();
            if now_ns > deadline_ns {
                let error = ringkernel_core::error::MessageError::DeadlineExpired { deadline_ns, now_ns };
                self.reject(error.code());
                return self.report(&header, ErrorReport::from_message_error(&error));
            }
        }
        let received_at = match self.io.clock.update_exclusive(header.timestamp()) {
            Ok(received_at) => received_at,
            Err(error) => {
                let values = match error {
                    RingKernelError::ClockSkew { remote_ns, local_ns, .. } => [remote_ns, local_ns],
                    _ => [0, 0],
                };
                self.reject(codes::CLOCK_SKEW);
                return self
                    .report(&header, ErrorReport { code: codes::CLOCK_SKEW, values, reason: error.to_string() });
            }
        };
        let shared = self.io.shared.clone();
        self.last_event = received_at;
        // Counted before the handler runs and published with its first reply (see `Io`), so that
        // a host that has seen the reply also sees the count.
        self.counters.processed = self.counters.processed.wrapping_add(1);
        self.io.processed = self.counters.processed;
        let handler = &self.handler;
        let mut ctx = HandlerContext::new(
            &shared.id,
            &header,
            decoded.payload,
            received_at,
            self.state.bytes_mut(),
            &mut self.io,
        );
        let outcome = catch_unwind(AssertUnwindSafe(|| handler(&mut ctx)));
        self.io.publish_processed();
        match outcome {
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                self.error(codes::HANDLER_ERROR);
                self.report(&header, ErrorReport { code: codes::HANDLER_ERROR, values: [0, 0], reason: error.0 });
            }
            Err(panic) => {
                let reason = match (panic.downcast_ref::<&str>(), panic.downcast_ref::<String>()) {
                    (Some(text), _) => format!("handler panicked: {text}"),
                    (_, Some(text)) => format!("handler panicked: {text}"),
                    _ => "handler panicked".to_string(),
                };
                self.error(codes::HANDLER_FAULT);
                self.report(
                    &header,
                    ErrorReport { code: codes::HANDLER_FAULT, values: [0, 0], reason: reason.clone() },
                );
                self.fault = Some(reason);
            }
        }
    }

    fn reject(&mut self, code: u32) {
        self.counters.rejected = self.counters.rejected.wrapping_add(1);
        self.error(code);
    }

    /// Counts an error and publishes it before any report of it can reach the host.
    fn error(&mut self, code: u32) {
        self.counters.errors = self.counters.errors.wrapping_add(1);
        self.io.shared.control.block().last_error.store(code, Ordering::Relaxed);
        self.publish_counters();
    }

    /// Tells the sender of `request` why it was not handled. An error report is never answered
    /// with another (two kernels would bounce reports forever); it is only counted.
    fn report(&mut self, request: &MessageHeader, report: ErrorReport) {
        if request.is_error() {
            tracing::warn!(kernel = %self.io.shared.id, reason = %report.reason, "could not handle an error report");
            return;
        }
        let mut header = request.reply(ErrorReport::MESSAGE_TYPE);
        header.flags |= flags::ERROR;
        let destination = Destination::sender_of(request);
        let mut payload = report.encode();
        payload.truncate(self.io.output.slot_bytes() - MESSAGE_HEADER_BYTES);
        if let Err(error) = self.io.deliver(destination, header, &payload) {
            self.counters.errors = self.counters.errors.wrapping_add(1);
            tracing::warn!(kernel = %self.io.shared.id, %error, "could not deliver an error report");
        }
    }

    /// Stores the counters into the control block.
    fn publish_counters(&mut self) {
        self.io.publish_processed();
        let block = self.io.shared.control.block();
        block.messages_rejected.store(self.counters.rejected, Ordering::Release);
        block.error_count.store(self.counters.errors, Ordering::Release);
    }

    /// Stores the heartbeat and the clock of the last event into the control block.
    fn publish_state(&mut self) {
        let block = self.io.shared.control.block();
        self.counters.heartbeat = self.counters.heartbeat.wrapping_add(1);
        block.heartbeat.store(self.counters.heartbeat, Ordering::Relaxed);
        block.store_device_hlc(self.last_event);
    }
}
