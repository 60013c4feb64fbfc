//! The persistent actor loop: one OS thread per kernel, playing the device's part over the same
//! control block and rings a GPU kernel uses. It talks to the host only through that memory: it
//! reads the host's flags (and acknowledges them), consumes the input ring, produces into the
//! output ring, and reports its counters, heartbeat, clock and stop in the device line. The host
//! engine reads nothing else.
//!
//! Each pass looks at the control block; while active it handles up to [`BATCH`] messages from the
//! input ring and then from the K2K inbox, in order, with one wall-clock reading per batch, and
//! stops a batch before its next message as soon as the host changes its flags.
//! Counters reach the device line with each reply (see `Io`); heartbeat and clock every few
//! hundred passes and before idling. When there is nothing to do it spins for
//! `CpuConfig::spin_before_park`, then parks until a send, a K2K message or a control change
//! unparks it (a polling actor sleeps briefly and looks again instead: nobody wakes it).
//!
//! Termination drains everything accepted before it stops; a handler panic stops the kernel with
//! `RK_FAILED`, leaving what it had accepted but not handled in its rings for the host to take back.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use ringkernel_core::control::SharedControl;
use ringkernel_core::error::{MessageError, RingKernelError, codes};
use ringkernel_core::handler::{CpuHandler, Destination, HandlerContext, HandlerIo};
use ringkernel_core::hlc::{HlcTimestamp, HybridClock, PhysicalClock, SystemClock};
use ringkernel_core::layout::{
    MESSAGE_HEADER_BYTES, MessageHeader, SLOT_READ_LINES, SLOT_WRITE_LINES, flags, terminate_request, termination,
};
use ringkernel_core::memory::DeviceEnds;
use ringkernel_core::message::{ErrorReport, HOST_KERNEL_ID, HeaderPart, SlotBuffer, check_header, write_slot};
use ringkernel_core::queue::mpsc::InboxReceiver;
use ringkernel_core::queue::spsc::{Consumer, Producer};
use ringkernel_core::queue::{PopError, PushError};
use ringkernel_core::runtime::KernelId;
use ringkernel_core::spec::StateBuffer;
use ringkernel_host::Doorbell;

use crate::device::ActorThread;
use crate::directory::Directory;

/// Messages handled from one queue before looking at the other and at the control block.
pub(crate) const BATCH: u32 = 64;
/// How long an idle polling actor sleeps between looks (a GPU kernel would `__nanosleep`).
const POLL_SLEEP: Duration = Duration::from_micros(50);
/// Longest sleep of an actor waiting for room in its output ring (the host wakes a threaded actor
/// sooner when it drains).
const OUTPUT_FULL_BACKOFF: Duration = Duration::from_micros(500);
/// Loop passes between heartbeat and clock publications while busy.
const PUBLISH_EVERY: u32 = 256;

/// How the actor meets the host.
#[derive(Clone)]
pub(crate) struct Wakeups {
    /// Rung after publishing output, consuming input, acknowledging a control change, stopping.
    /// `None` for a polling actor.
    pub(crate) doorbell: Option<Arc<Doorbell>>,
    /// This actor's thread: how it sleeps (and how others wake it).
    pub(crate) thread: Arc<ActorThread>,
    pub(crate) spin_before_park: Duration,
    /// Longest time an idle actor leaves its heartbeat unchanged ([`ringkernel_host::heartbeat_period`]).
    pub(crate) heartbeat_period: Duration,
}

impl Wakeups {
    fn ring(&self) {
        if let Some(doorbell) = &self.doorbell {
            doorbell.ring();
        }
    }
}

/// What a handler's sends go through: the output ring, the K2K directory, the kernel's clock.
pub(crate) struct Io {
    id: KernelId,
    number: u32,
    control: SharedControl,
    output: Producer,
    directory: Arc<Directory>,
    clock: HybridClock,
    wakeups: Wakeups,
    /// The wall-clock reading of the current batch (every event of a batch is stamped from it; the
    /// HLC's logical counter keeps those stamps unique).
    batch_wall_ns: u64,
    /// A reading made while idling, at most a few polls old, that the next batch uses instead of
    /// reading the clock on the message's critical path.
    idle_wall_ns: Option<u64>,
    /// Messages handed to the handler so far, and the count last stored in the control block.
    /// The store is made just before a reply is published, in the same cache line as the output
    /// tail, so that it costs no extra line transfer and a host that sees the reply sees the count.
    processed: u32,
    published_processed: u32,
    /// Errors of this kind counted here, published by the core.
    dropped_output: u32,
}

impl HandlerIo for Io {
    fn deliver(
        &mut self,
        destination: Destination<'_>,
        mut header: MessageHeader,
        payload: &[u8],
    ) -> ringkernel_core::Result<()> {
        header.source_kernel = self.number;
        header.set_timestamp(self.clock.tick_exclusive_at(self.batch_wall_ns));
        match destination {
            Destination::Host => self.write_to_host(header, payload),
            Destination::Kernel(_) | Destination::KernelNumber(_) => {
                header.flags |= flags::K2K;
                self.directory.send(destination, self.number, &mut header, payload)
            }
        }
    }
}

impl Io {
    fn publish_processed(&mut self) {
        if self.published_processed != self.processed {
            self.published_processed = self.processed;
            self.control.block().messages_processed.store(self.processed, Ordering::Release);
        }
    }

    /// Whether the host said that nobody reads the output ring any more.
    fn host_detached(&self) -> bool {
        self.control.block().should_terminate.load(Ordering::Acquire) == terminate_request::DRAIN_DETACHED
    }

    /// Writes into the output ring (payload straight into the slot, then the header sealed over
    /// it), waiting while it is full: the host drains it in `call`, `receive` and `terminate`, so
    /// waiting is back-pressure, not a deadlock.
    fn write_to_host(&mut self, mut header: MessageHeader, payload: &[u8]) -> ringkernel_core::Result<()> {
        header.dest_kernel = HOST_KERNEL_ID;
        check_header(&header, payload.len(), self.output.slot_bytes() - MESSAGE_HEADER_BYTES)?;
        self.publish_processed();
        let mut full_since: Option<Instant> = None;
        loop {
            let pushed = self.output.try_push(|slot| write_slot(slot, &header, payload));
            match pushed {
                Ok(sealed) => {
                    sealed.expect("header and payload size were checked before claiming the slot");
                    self.wakeups.ring();
                    self.output.prefetch_next_for_write(&SLOT_WRITE_LINES);
                    return Ok(());
                }
                Err(PushError::Corrupt(violation)) => {
                    return Err(violation.into_error(self.id.as_str(), "output ring"));
                }
                Err(PushError::Full(full)) => {
                    if self.host_detached() {
                        self.dropped_output = self.dropped_output.wrapping_add(1);
                        return Err(full.into_error("output ring (no host handle is left to read it)"));
                    }
                    self.wakeups.ring();
                    let since = *full_since.get_or_insert_with(Instant::now);
                    if since.elapsed() < self.wakeups.spin_before_park {
                        std::hint::spin_loop();
                    } else {
                        // Still alive while blocked: a host watchdog must not mistake back-pressure
                        // for a hang.
                        let block = self.control.block();
                        block
                            .heartbeat
                            .store(block.heartbeat.load(Ordering::Relaxed).wrapping_add(1), Ordering::Relaxed);
                        // The host wakes a sleeping actor when it hands slots back.
                        let thread = self.wakeups.thread.clone();
                        let output = &mut self.output;
                        thread.sleep(OUTPUT_FULL_BACKOFF, POLL_SLEEP, || {
                            output.free_slots().map_or(true, |free| free > 0)
                        });
                    }
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
/// heartbeat and clock are published every [`PUBLISH_EVERY`] passes and before idling.
#[derive(Default)]
struct Counters {
    rejected: u32,
    errors: u32,
    heartbeat: u32,
    passes: u32,
}

/// Everything but the queues it reads, so that a handler can run while a queue is borrowed.
struct Core {
    /// The kernel's name, lent to each handler call.
    id: KernelId,
    io: Io,
    state: StateBuffer,
    handler: Arc<CpuHandler>,
    counters: Counters,
    /// The clock after the last message received.
    last_event: HlcTimestamp,
    /// Set when the handler panicked; the loop then fails the kernel.
    fault: Option<String>,
    /// The control sequence the current drain acts on; it stops before the next message once
    /// the host's differs (`None`: the terminate drain, which never stops early).
    interruptible: Option<u32>,
}

/// The host's flags as last acknowledged.
#[derive(Clone, Copy)]
struct Flags {
    sequence: u32,
    active: bool,
    terminate: u32,
}

pub(crate) struct Actor {
    input: Consumer,
    inbox: InboxReceiver,
    flags: Flags,
    /// The private copy each message is decoded from (never the shared slot).
    scratch: SlotBuffer,
    core: Core,
}

/// What an actor is made of.
pub(crate) struct ActorParts {
    pub(crate) id: KernelId,
    pub(crate) number: u32,
    pub(crate) ends: DeviceEnds,
    pub(crate) inbox: InboxReceiver,
    pub(crate) directory: Arc<Directory>,
    pub(crate) clock: HybridClock,
    pub(crate) wakeups: Wakeups,
    pub(crate) state: StateBuffer,
    pub(crate) handler: Arc<CpuHandler>,
    pub(crate) scratch: SlotBuffer,
}

impl Actor {
    pub(crate) fn new(parts: ActorParts) -> Self {
        let ActorParts { id, number, ends, inbox, directory, clock, wakeups, state, handler, scratch } = parts;
        let DeviceEnds { control, input, output, .. } = ends;
        let io = Io {
            id: id.clone(),
            number,
            control,
            output,
            directory,
            clock,
            wakeups,
            batch_wall_ns: 0,
            idle_wall_ns: None,
            processed: 0,
            published_processed: 0,
            dropped_output: 0,
        };
        Self {
            input,
            inbox,
            flags: Flags { sequence: 0, active: false, terminate: terminate_request::NONE },
            scratch,
            core: Core {
                id,
                io,
                state,
                handler,
                counters: Counters::default(),
                last_event: HlcTimestamp::default(),
                fault: None,
                interruptible: None,
            },
        }
    }

    fn control(&self) -> &SharedControl {
        &self.core.io.control
    }

    /// Reads the host's flags if they changed, and acknowledges them: from here on the actor acts
    /// only on the new ones (the current message, if any, has been handled).
    fn poll_control(&mut self) {
        if let Some(flags) = self.control().block().poll_control(self.flags.sequence) {
            self.flags = Flags { sequence: flags.sequence, active: flags.active, terminate: flags.terminate };
            self.control().block().acknowledge(flags.sequence);
            self.core.io.wakeups.ring();
        }
    }

    /// The persistent loop; returns when the kernel has terminated or failed.
    pub(crate) fn run(mut self) {
        loop {
            self.poll_control();
            if self.flags.terminate != terminate_request::NONE {
                return self.terminate();
            }
            let mut handled = 0;
            if self.flags.active {
                handled = self.drain(BATCH, Some(self.flags.sequence));
                if self.core.fault.is_some() {
                    return self.fail();
                }
            }
            self.core.counters.passes = self.core.counters.passes.wrapping_add(1);
            if self.core.counters.passes.is_multiple_of(PUBLISH_EVERY) {
                self.core.publish_state();
            }
            if handled == 0 {
                self.idle();
            }
        }
    }

    /// Handles up to `max` messages from the input ring, then up to `max` from the inbox, with one
    /// wall-clock reading for all of them (the idle loop's last one, if it just made one).
    ///
    /// With `interruptible` (the control sequence the actor acts on), it stops before the next
    /// message as soon as the host has changed its flags: a deactivate takes effect before any
    /// message not yet taken when it arrived (a handler may hold a message for long while more
    /// queue up behind it). The terminate drain passes `None`: it handles everything accepted.
    fn drain(&mut self, max: u32, interruptible: Option<u32>) -> u32 {
        let Actor { input, inbox, scratch, core, .. } = self;
        let mut batch_wall = core.io.idle_wall_ns.take();
        core.interruptible = interruptible;
        let from_input = core.drain_queue(scratch, max, &mut batch_wall, "input ring", |scratch| {
            let popped = input.try_pop(|slot| slot.copy_message_into(scratch, HeaderPart::Hot));
            if popped.is_ok() {
                input.prefetch_following(&SLOT_READ_LINES);
            }
            popped
        });
        let from_inbox = core.drain_queue(scratch, max, &mut batch_wall, "k2k inbox", |scratch| {
            inbox.try_pop(|slot| slot.copy_message_into(scratch, HeaderPart::Hot))
        });
        if from_input > 0 {
            // Room in the input ring for a host waiting to send.
            core.io.wakeups.ring();
        }
        from_input + from_inbox
    }

    fn has_work(&mut self) -> bool {
        if self.control().block().poll_control(self.flags.sequence).is_some() {
            return true;
        }
        self.flags.active && (!self.input.is_empty() || !self.inbox.is_empty())
    }

    /// Spins, then parks until woken or a heartbeat period passes (or, polling, sleeps briefly).
    ///
    /// While spinning it reads the wall clock every few polls: idle time is free, and the next
    /// batch stamps its messages from the last reading instead of reading the clock (35 ns on the
    /// developer VM) on the message's critical path. The reading is at most a few polls old; the
    /// HLC stays strictly ordered whatever the reading, only its physical part lags by that much.
    fn idle(&mut self) {
        let spin = self.core.io.wakeups.spin_before_park;
        let beat = self.core.io.wakeups.heartbeat_period.as_nanos() as u64;
        let mut spin_until = None;
        let mut beat_at: Option<u64> = None;
        loop {
            for _ in 0..8 {
                if self.has_work() {
                    return;
                }
                std::hint::spin_loop();
            }
            let wall = SystemClock.now_ns();
            self.core.io.idle_wall_ns = Some(wall);
            let until = *spin_until.get_or_insert(wall.saturating_add(spin.as_nanos() as u64));
            // A long spin (a large `spin_before_park`) still beats, for the host's watchdog.
            let next_beat = *beat_at.get_or_insert(wall.saturating_add(beat));
            if wall >= next_beat {
                self.core.publish_state();
                beat_at = Some(wall.saturating_add(beat));
            }
            // A wall clock that steps back by more than a second ends the spin rather than
            // stretching it.
            if wall >= until || wall < until.saturating_sub(spin.as_nanos() as u64 + 1_000_000_000) {
                break;
            }
        }
        self.core.io.idle_wall_ns = None;
        self.core.publish_state();
        let thread = self.core.io.wakeups.thread.clone();
        let period = self.core.io.wakeups.heartbeat_period;
        thread.sleep(period, POLL_SLEEP.min(period), || self.has_work());
    }

    /// Leaves the K2K directory, handles everything accepted, and reports `RK_TERMINATED`.
    fn terminate(mut self) {
        self.core.io.directory.remove(self.core.io.number);
        // The host stopped accepting sends before it raised the flag, and nobody can reach the
        // inbox any more, so once both queues read empty they stay empty.
        loop {
            let handled = self.drain(u32::MAX, None);
            if self.core.fault.is_some() {
                return self.fail();
            }
            if handled == 0 {
                break;
            }
        }
        self.stop(termination::TERMINATED);
    }

    /// Leaves the directory and reports `RK_FAILED`: what was accepted but not handled stays in
    /// the input ring and the inbox, where the host takes it back.
    fn fail(mut self) {
        let reason = self.core.fault.take().unwrap_or_default();
        tracing::error!(kernel = %self.core.io.id, %reason, "kernel failed");
        self.core.io.directory.remove(self.core.io.number);
        self.control().block().last_error.store(codes::HANDLER_FAULT, Ordering::Relaxed);
        self.stop(termination::FAILED);
    }

    /// Runs the loop; a panic outside any handler (a bug in the loop itself) still ends in a
    /// reported failure, so that no host waits forever: the actor leaves the directory, lets go of
    /// its rings while unwinding, and reports `RK_FAILED`.
    pub(crate) fn run_reporting_panics(self) {
        let control = self.core.io.control.clone();
        let directory = self.core.io.directory.clone();
        let (id, number) = (self.core.id.clone(), self.core.io.number);
        let wakeups = self.core.io.wakeups.clone();
        if std::panic::catch_unwind(AssertUnwindSafe(|| self.run())).is_err() {
            tracing::error!(kernel = %id, "the actor loop panicked outside a handler; the kernel failed");
            directory.remove(number);
            let block = control.block();
            block.fail_for_device(codes::HANDLER_FAULT);
            wakeups.ring();
        }
    }

    /// Publishes the final counters and clock, lets go of the rings (handing consumed slots
    /// back), then reports `code` as the very last write.
    fn stop(mut self, code: u32) {
        self.core.publish_counters();
        self.core.publish_state();
        let Actor { input, inbox, core, .. } = self;
        let Core { io, .. } = core;
        let Io { control, output, wakeups, .. } = io;
        drop((input, inbox, output));
        control.block().report_stopped(code);
        wakeups.ring();
    }
}

impl Core {
    /// Handles up to `max` messages that `pop` copies into `scratch`, one at a time, stamping them
    /// from `batch_wall` (read from the clock at the first message if the batch has no reading).
    fn drain_queue(
        &mut self,
        scratch: &mut SlotBuffer,
        max: u32,
        batch_wall: &mut Option<u64>,
        queue: &str,
        mut pop: impl FnMut(&mut SlotBuffer) -> Result<(), PopError>,
    ) -> u32 {
        let mut handled = 0;
        while handled < max && self.fault.is_none() {
            // One relaxed load of a word the host writes only on a control change (its line also
            // carries `input_tail`, which this loop reads anyway).
            if let Some(seen) = self.interruptible
                && self.io.control.block().control_sequence.load(Ordering::Relaxed) != seen
            {
                break;
            }
            match pop(scratch) {
                Ok(()) => {}
                Err(PopError::Empty) => break,
                Err(PopError::Corrupt(violation)) => {
                    self.fault = Some(format!("{queue}: {violation}"));
                    break;
                }
            }
            self.io.batch_wall_ns = *batch_wall.get_or_insert_with(|| SystemClock.now_ns());
            self.handle(scratch);
            handled += 1;
        }
        handled
    }

    /// Validates the copied slot and runs the handler on it; never panics.
    fn handle(&mut self, scratch: &SlotBuffer) {
        let decoded = match scratch.view() {
            Ok(decoded) => decoded,
            Err(error) => {
                // The header cannot be trusted, so there is nobody to answer: count it.
                tracing::warn!(kernel = %self.io.id, %error, "skipped an invalid slot");
                return self.reject(error.code());
            }
        };
        let header = decoded.header;
        if let Some(deadline_ns) = header.deadline_ns() {
            // A fresh reading: the batch's may be older than the deadline's precision needs.
            let now_ns = SystemClock.now_ns();
            if now_ns > deadline_ns {
                let error = MessageError::DeadlineExpired { deadline_ns, now_ns };
                self.reject(error.code());
                return self.report(header, ErrorReport::from_message_error(&error));
            }
        }
        let received_at = match self.io.clock.update_exclusive_at(self.io.batch_wall_ns, header.timestamp()) {
            Ok(received_at) => received_at,
            Err(error) => {
                let values = match error {
                    RingKernelError::ClockSkew { remote_ns, local_ns, .. } => [remote_ns, local_ns],
                    _ => [0, 0],
                };
                self.reject(codes::CLOCK_SKEW);
                return self.report(header, ErrorReport { code: codes::CLOCK_SKEW, values, reason: error.to_string() });
            }
        };
        self.last_event = received_at;
        // Counted before the handler runs and published with its first reply (see `Io`), so that
        // a host that has seen the reply also sees the count.
        self.io.processed = self.io.processed.wrapping_add(1);
        let handler = &self.handler;
        let mut ctx =
            HandlerContext::new(&self.id, header, decoded.payload, received_at, self.state.bytes_mut(), &mut self.io);
        let outcome = catch_unwind(AssertUnwindSafe(|| handler(&mut ctx)));
        self.io.publish_processed();
        match outcome {
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                self.error(codes::HANDLER_ERROR);
                self.report(header, ErrorReport { code: codes::HANDLER_ERROR, values: [0, 0], reason: error.0 });
            }
            Err(panic) => {
                let reason = match (panic.downcast_ref::<&str>(), panic.downcast_ref::<String>()) {
                    (Some(text), _) => format!("handler panicked: {text}"),
                    (_, Some(text)) => format!("handler panicked: {text}"),
                    _ => "handler panicked".to_string(),
                };
                self.error(codes::HANDLER_FAULT);
                self.report(header, ErrorReport { code: codes::HANDLER_FAULT, values: [0, 0], reason: reason.clone() });
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
        self.io.control.block().last_error.store(code, Ordering::Relaxed);
        self.publish_counters();
    }

    /// Tells the sender of `request` why it was not handled. An error report is never answered
    /// with another (two kernels would bounce reports forever); it is only counted.
    fn report(&mut self, request: &MessageHeader, report: ErrorReport) {
        if request.is_error() {
            tracing::warn!(kernel = %self.io.id, reason = %report.reason, "could not handle an error report");
            return;
        }
        let mut header = request.reply(ErrorReport::MESSAGE_TYPE);
        header.flags |= flags::ERROR;
        let destination = Destination::sender_of(request);
        let mut payload = report.encode();
        payload.truncate(self.io.output.slot_bytes() - MESSAGE_HEADER_BYTES);
        if let Err(error) = self.io.deliver(destination, header, &payload) {
            self.counters.errors = self.counters.errors.wrapping_add(1);
            tracing::warn!(kernel = %self.io.id, %error, "could not deliver an error report");
        }
    }

    /// Stores the counters into the control block.
    fn publish_counters(&mut self) {
        self.io.publish_processed();
        let block = self.io.control.block();
        let errors = self.counters.errors.wrapping_add(self.io.dropped_output);
        block.messages_rejected.store(self.counters.rejected, Ordering::Release);
        block.error_count.store(errors, Ordering::Release);
    }

    /// Stores the heartbeat and the clock of the last event into the control block.
    fn publish_state(&mut self) {
        let block = self.io.control.block();
        self.counters.heartbeat = self.counters.heartbeat.wrapping_add(1);
        block.heartbeat.store(self.counters.heartbeat, Ordering::Relaxed);
        block.store_device_hlc(self.last_event);
    }
}
