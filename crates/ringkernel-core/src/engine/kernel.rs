//! [`HostKernel`]: the host half of one kernel, for every backend.

use std::cell::Cell;
use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::control::{DeviceStop, SharedControl, WideCounter};
use crate::error::{MessageError, Result, RingKernelError, codes};
use crate::hlc::{HlcTimestamp, HybridClock, PhysicalClock, SystemClock};
use crate::layout::{MESSAGE_HEADER_BYTES, MessageHeader, SLOT_READ_LINES, SLOT_WRITE_LINES};
use crate::memory::HostEnds;
use crate::message::{
    CorrelationId, Envelope, ErrorReport, HOST_KERNEL_ID, HeaderPart, MessageView, SlotBuffer, check_header,
    whole_slot_check, write_slot, write_slot_check,
};
use crate::queue::mpsc::InboxReclaim;
use crate::queue::spsc::{Consumer, Producer};
use crate::queue::{IndexViolation, PopError, PushError, SharedSlot};
use crate::runtime::{FillFn, KernelControl, KernelId, KernelMetrics, KernelState, Outgoing, VisitFn};
use async_trait::async_trait;
use crossbeam_utils::CachePadded;
use hdrhistogram::Histogram;

use super::device::{Device, Doorbell};
use super::lifecycle::{AtomicPhase, HostPhase, kernel_state};
use super::lock;
use super::wait::{Waiter, cooperate};

/// Writes the words of a sealed host → kernel slot that the engine owns: source (the host),
/// destination and send timestamp.
fn stamp(slot: &mut [u8], destination: u32, timestamp: HlcTimestamp) {
    let mut word = |offset: usize, value: u32| slot[offset..offset + 4].copy_from_slice(&value.to_le_bytes());
    word(std::mem::offset_of!(MessageHeader, source_kernel), HOST_KERNEL_ID);
    word(std::mem::offset_of!(MessageHeader, dest_kernel), destination);
    let physical = std::mem::offset_of!(MessageHeader, timestamp_physical_ns);
    word(physical, timestamp.physical_ns as u32);
    word(physical + 4, (timestamp.physical_ns >> 32) as u32);
    word(std::mem::offset_of!(MessageHeader, timestamp_logical), timestamp.logical);
    word(std::mem::offset_of!(MessageHeader, timestamp_node), timestamp.node_id);
}

/// The shortest interval at which a sleeping waiter looks at the heartbeat for the watchdog.
const WATCHDOG_MIN_TICK: Duration = Duration::from_micros(100);

/// Calls whose latency is always recorded; after them, one in [`LATENCY_SAMPLE_EVERY`].
const LATENCY_SAMPLE_ALL: u64 = 1024;
/// The sampling period of latency records after the first [`LATENCY_SAMPLE_ALL`] calls.
const LATENCY_SAMPLE_EVERY: u64 = 8;

/// Tuning of the engine's waits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostConfig {
    /// How long a waiting host task spins before it sleeps. Spinning keeps round trips in the
    /// sub-microsecond range while traffic flows; sleeping frees the core when it stops.
    pub spin_before_park: Duration,
    /// For a device that does not ring the doorbell: how often a sleeping waiter looks again
    /// (inside Tokio the timer rounds it up to its 1 ms resolution).
    pub poll_interval: Duration,
    /// If set, a wait on the device (a reply, a message, room in the input ring, a deactivation,
    /// termination) fails with [`RingKernelError::KernelFault`] once the control block's heartbeat
    /// has not moved for this long; sleeping waiters wake a few times per period to check it. The
    /// wait fails, the kernel is left as it is: terminate it, or wait again. Off by default: a
    /// handler may legitimately run for a long time.
    ///
    /// The limit must be longer than the heartbeat period of an idle device, or quiet kernels
    /// fault: the CPU backend beats at least four times per limit, and each device backend says
    /// what its devices do.
    pub watchdog: Option<Duration>,
    /// Whether received messages carry their `message_id`. It sits outside the header's hot line,
    /// so reading it costs one more cache line (or PCIe read) per message: about 10% of a `call()`
    /// round trip on the developer VM (BENCHMARKS.md). Off by default: received messages then read
    /// `message_id` as 0 (their `dest_kernel` is always the host's).
    pub read_message_ids: bool,
    /// Whether every input slot carries its slot check ([`slot_check`](mod@crate::message::slot_check),
    /// announced in the control block's `input_slot_checks`), for a device that reads a slot in
    /// the same round trip as the ring's tail (the CUDA backend). Costs the host one hash over the
    /// slot's hot line and first 64 payload bytes per message; off by default.
    pub input_slot_checks: bool,
    /// Whether the host checks every output slot's whole-slot check
    /// ([`crate::message::whole_slot_check`], announced in the control block's
    /// `output_slot_checks`) before it reads the slot, for a device that publishes `output_tail`
    /// without a fence (the CUDA backend: a system-scope fence there costs microseconds). A slot
    /// whose check does not match yet is looked at again; one that never matches fails the kernel
    /// after [`OUTPUT_SLOT_PATIENCE`]. Costs the host one hash over the header and payload per
    /// message; off by default.
    pub output_slot_checks: bool,
}

/// How long an output slot may stay incomplete (its check word not matching) before the kernel
/// fails with the slot named: far longer than any write takes to land.
pub const OUTPUT_SLOT_PATIENCE: Duration = Duration::from_secs(1);

impl Default for HostConfig {
    fn default() -> Self {
        Self {
            spin_before_park: Duration::from_micros(50),
            poll_interval: Duration::from_micros(200),
            watchdog: None,
            read_message_ids: false,
            input_slot_checks: false,
            output_slot_checks: false,
        }
    }
}

/// Everything the engine needs to run the host half of one kernel.
pub struct KernelParts {
    /// The kernel's name.
    pub id: KernelId,
    /// Its number in message headers.
    pub number: u32,
    /// The host's ends of its memory (from [`crate::memory::KernelMemory::split`]).
    pub memory: HostEnds,
    /// The backend's part.
    pub device: Arc<dyn Device>,
    /// The doorbell the device rings (if it does; see [`Device::rings_doorbell`]).
    pub doorbell: Arc<Doorbell>,
    /// The host's clock, shared by the kernels of a runtime.
    pub clock: Arc<HybridClock>,
    /// Tuning.
    pub config: HostConfig,
    /// Start active (the engine announces it before the device runs).
    pub auto_activate: bool,
}

/// Correlation ids are random 64-bit values already, so the pending-call map uses them as their
/// own hash instead of running SipHash per call.
#[derive(Default)]
struct CorrelationHasher(u64);

impl Hasher for CorrelationHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 = (self.0 << 8 | u64::from(*byte)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_u64(&mut self, value: u64) {
        self.0 = value;
    }
}

/// The host's end of the input ring, behind one lock (which also orders sends against the
/// lifecycle: a send that sees an accepting state under it lands before the device's final drain).
struct InputSide {
    producer: Producer,
    inbox_reclaim: Option<InboxReclaim>,
}

/// The host's end of the output ring and what its messages are routed to, behind one lock.
struct OutputSide {
    consumer: Consumer,
    /// The private copy every message is decoded from.
    scratch: SlotBuffer,
    /// Calls waiting for a reply, by correlation id; `Some` once another task's drain found it.
    pending: HashMap<u64, Option<Box<Envelope>>, BuildHasherDefault<CorrelationHasher>>,
    /// Messages nobody is calling for, in arrival order, for `receive`.
    unclaimed: VecDeque<Envelope>,
    /// With output slot checks: the oldest slot's position and when it was first seen incomplete.
    incomplete_since: Option<(u32, Instant)>,
}

/// Counters written under the lock of their side (a load and a store, no read-modify-write), or
/// with `fetch_add` where no lock is held; read by `metrics` without any lock.
#[derive(Default)]
struct Stats {
    sent: AtomicU64,
    refused: AtomicU64,
    received: AtomicU64,
    undecodable: AtomicU64,
    returned: AtomicU64,
    returned_invalid: AtomicU64,
}

fn bump(counter: &AtomicU64, by: u64) {
    counter.store(counter.load(Ordering::Relaxed) + by, Ordering::Relaxed);
}

/// Widens the control block's 32-bit device counters.
#[derive(Default)]
struct Widened {
    processed: WideCounter,
    rejected: WideCounter,
    errors: WideCounter,
}

thread_local! {
    /// The kernel whose `receive_with` visitor runs on this thread: its output lock is held.
    static VISITING: Cell<usize> = const { Cell::new(0) };
    /// The kernel whose `send_with` fill runs on this thread: its input lock is held.
    static FILLING: Cell<usize> = const { Cell::new(0) };
}

/// Marks this thread as running user code of `kernel` under one of its locks until dropped.
struct InUserCode {
    slot: &'static std::thread::LocalKey<Cell<usize>>,
    previous: usize,
}

impl InUserCode {
    fn enter(slot: &'static std::thread::LocalKey<Cell<usize>>, kernel: usize) -> Self {
        Self { slot, previous: slot.with(|s| s.replace(kernel)) }
    }
}

impl Drop for InUserCode {
    fn drop(&mut self) {
        self.slot.with(|s| s.set(self.previous));
    }
}

/// The host half of one kernel: sends into its input ring, routes what it writes to its output
/// ring to waiting calls or to `receive`, drives its lifecycle through the control block, keeps
/// its metrics, and takes back what a stopped device never handled. Implements
/// [`KernelControl`] for every backend; the backend supplies only a [`Device`].
pub struct HostKernel {
    id: KernelId,
    number: u32,
    control: SharedControl,
    device: Arc<dyn Device>,
    doorbell: Arc<Doorbell>,
    clock: Arc<HybridClock>,
    config: HostConfig,
    /// What `pull` copies out of the output ring (see [`HostConfig::read_message_ids`]).
    receive_part: HeaderPart,
    input_capacity_bytes: usize,
    /// Slots of the input ring.
    input_capacity: u32,
    lifecycle: CachePadded<AtomicPhase>,
    input: CachePadded<Mutex<InputSide>>,
    output: CachePadded<Mutex<OutputSide>>,
    stats: CachePadded<Stats>,
    /// Drains that moved at least one message (lets waiters skip polls that cannot succeed).
    drains: CachePadded<AtomicU64>,
    /// With output slot checks: the oldest output slot was published but not complete at the
    /// last look (waiters must look again although nothing else changed).
    incomplete: AtomicBool,
    latency: Mutex<Histogram<u64>>,
    /// Calls made so far (decides which are timed for the latency histogram).
    calls: AtomicU64,
    widened: Mutex<Widened>,
    fault: Mutex<Option<String>>,
    /// The device's stop was handled: sends closed, leftovers taken back.
    settled: AtomicBool,
    unprocessed: Mutex<Vec<Envelope>>,
    released: AtomicBool,
}

impl HostKernel {
    /// The host half of a kernel whose memory and device are ready. Announces `auto_activate`
    /// through the control block before returning, so a device that starts afterwards sees it.
    ///
    /// # Errors
    /// [`RingKernelError::AllocationFailed`] if the private slot buffer cannot be allocated.
    pub fn new(parts: KernelParts) -> Result<Arc<Self>> {
        let KernelParts { id, number, memory, device, doorbell, clock, config, auto_activate } = parts;
        let HostEnds { control, input, output, inbox_reclaim } = memory;
        let scratch = SlotBuffer::new(output.slot_bytes())?;
        // The output consumer hands slots back per quarter of the ring (and whenever it finds the
        // ring empty), not per message: `output_head` sits in the line the device polls, and a
        // store there right before the next locked instruction (the clock's lock, say) stalls the
        // host until the line has moved (~200 ns on the developer VM). `pull` wakes a device that
        // sleeps for room whenever slots go back.
        let input_capacity_bytes = input.slot_bytes() - MESSAGE_HEADER_BYTES;
        let input_capacity = input.capacity();
        if config.input_slot_checks {
            control.announce_input_slot_checks();
        }
        if config.output_slot_checks {
            control.announce_output_slot_checks();
        }
        let initial = if auto_activate {
            control.activate();
            HostPhase::Active
        } else {
            HostPhase::Launched
        };
        Ok(Arc::new(Self {
            id,
            number,
            control,
            device,
            doorbell,
            clock,
            receive_part: if config.read_message_ids { HeaderPart::Used } else { HeaderPart::Hot },
            config,
            input_capacity_bytes,
            input_capacity,
            lifecycle: CachePadded::new(AtomicPhase::new(initial)),
            input: CachePadded::new(Mutex::new(InputSide { producer: input, inbox_reclaim })),
            output: CachePadded::new(Mutex::new(OutputSide {
                consumer: output,
                scratch,
                pending: HashMap::default(),
                unclaimed: VecDeque::new(),
                incomplete_since: None,
            })),
            stats: CachePadded::default(),
            drains: CachePadded::default(),
            incomplete: AtomicBool::new(false),
            latency: Mutex::new(Histogram::new_with_bounds(1, 3_600_000_000_000, 3).expect("valid histogram bounds")),
            calls: AtomicU64::new(0),
            widened: Mutex::default(),
            fault: Mutex::new(None),
            settled: AtomicBool::new(false),
            unprocessed: Mutex::new(Vec::new()),
            released: AtomicBool::new(false),
        }))
    }

    /// [`KernelControl::call`] called on the engine itself, without a dynamic dispatch or a boxed
    /// future: what a [`KernelHandle`](crate::runtime::KernelHandle) of an engine kernel runs
    /// (`ringkernel-bench`'s `dispatch_report` compares the paths; BENCHMARKS.md has the figures).
    ///
    /// # Errors
    /// As [`KernelControl::call`].
    pub async fn call_direct(&self, envelope: Envelope, timeout: Duration) -> Result<Envelope> {
        // Everything before the first await is synchronous and leaves nothing large alive across it:
        // the boxed future of a call stays small.
        let (correlation, sent_at) = self.start_call(envelope)?;
        let mut pending = PendingCall { kernel: self, correlation, answered: false };
        let mut last_seen = None;
        let mut watchdog = self.watchdog("the reply");
        let reply = self
            .waiter()
            .wait(Some(timeout), "the reply", || {
                match self.changed_since(&mut last_seen) {
                    Ok(true) => {}
                    Ok(false) => return watchdog.check(self),
                    Err(error) => return Some(Err(error)),
                }
                // Read before draining: a device publishes its last output before it stops.
                let state = self.raw_state();
                let mut out = match self.lock_output() {
                    Ok(out) => out,
                    Err(error) => return Some(Err(error)),
                };
                // Ours from another task's drain, or from this one.
                let found = match out.pending.get_mut(&correlation).and_then(Option::take) {
                    Some(reply) => Some(reply),
                    None => match self.pull(&mut out, Some(correlation), 0, None) {
                        Ok(pulled) => pulled.reply,
                        Err(error) => return Some(Err(error)),
                    },
                };
                match found {
                    Some(reply) => {
                        out.pending.remove(&correlation);
                        Some(Ok(reply))
                    }
                    None if state.is_final() => {
                        drop(out);
                        self.settle();
                        Some(Err(self.not_running("await a reply from", state)))
                    }
                    None => None,
                }
            })
            .await?;
        pending.answered = true;
        self.record_latency(sent_at);
        if let Some(report) = reply.error_report() {
            return Err(report.into_error(self.id.as_str()));
        }
        Ok(*reply)
    }

    /// [`KernelControl::send`] called on the engine itself (what a
    /// [`KernelHandle`](crate::runtime::KernelHandle) of an engine kernel runs).
    ///
    /// # Errors
    /// As [`KernelControl::send`].
    pub async fn send_direct(&self, envelope: Envelope) -> Result<()> {
        let sent = match self.try_send_envelope(&envelope)? {
            Some(_) => Ok(()),
            None => Err(self.refuse(self.full_error())),
        };
        cooperate().await;
        sent
    }

    /// [`KernelControl::receive`] (`timeout` `None`) or [`KernelControl::receive_timeout`] called
    /// on the engine itself (what a [`KernelHandle`](crate::runtime::KernelHandle) of an engine
    /// kernel runs).
    ///
    /// # Errors
    /// As [`KernelControl::receive_timeout`].
    pub async fn receive_direct(&self, timeout: Option<Duration>) -> Result<Envelope> {
        self.receive_envelope(timeout).await
    }

    /// The kernel's number in message headers.
    pub fn number(&self) -> u32 {
        self.number
    }

    /// The control block.
    pub fn control(&self) -> &SharedControl {
        &self.control
    }

    /// Waits until the device has beaten once (it runs the kernel), without blocking a thread:
    /// spins briefly, then sleeps through the engine's waiter.
    ///
    /// # Errors
    /// [`RingKernelError::Timeout`] after `timeout`; the kernel's own error if it stopped first.
    pub async fn wait_until_running(&self, timeout: Duration) -> Result<()> {
        self.waiter()
            .wait(Some(timeout), "the kernel to start on its device", || {
                if self.heartbeat() != 0 {
                    return Some(Ok(()));
                }
                let state = self.raw_state();
                state.is_final().then(|| {
                    self.settle();
                    Err(self.not_running("start", state))
                })
            })
            .await
    }

    /// Asks the kernel to drain and stop without waiting (unless it is already stopping or
    /// stopped); `terminate` waits. A runtime's shutdown asks every kernel first, so that they
    /// drain in parallel.
    pub fn request_terminate(&self) {
        // The only refusal is "already terminating, terminated or failed": nothing to do then.
        let _ = self.transition("terminate", KernelState::Terminating);
    }

    fn waiter(&self) -> Waiter<'_> {
        // A device without a doorbell is looked at every poll interval. With the watchdog on, a
        // sleeping waiter also wakes a few times per watchdog period to look at the heartbeat: a
        // hung device rings no doorbell.
        let polling = (!self.device.rings_doorbell()).then_some(self.config.poll_interval);
        let watching = self.config.watchdog.map(|limit| (limit / 4).max(WATCHDOG_MIN_TICK));
        let poll_interval = match (polling, watching) {
            (Some(polling), Some(watching)) => Some(polling.min(watching)),
            (polling, watching) => polling.or(watching),
        };
        Waiter { doorbell: &self.doorbell, spin: self.config.spin_before_park, poll_interval }
    }

    // ----- state -----------------------------------------------------------------------------

    /// The state without handling a device stop (safe to call under either lock).
    fn raw_state(&self) -> KernelState {
        kernel_state(self.lifecycle.load(), self.control.stop())
    }

    /// The state, after handling a device stop seen for the first time.
    fn current_state(&self) -> KernelState {
        let state = self.raw_state();
        if state.is_final() {
            self.settle();
        }
        state
    }

    fn fault_reason(&self) -> String {
        lock(&self.fault).clone().or_else(|| self.device.fault_detail()).unwrap_or_else(|| {
            let code = self.control.block().last_error.load(Ordering::Acquire);
            format!("the kernel stopped with error code {code} ({})", codes::name(code).unwrap_or("unknown code"))
        })
    }

    fn record_fault(&self, reason: String) {
        lock(&self.fault).get_or_insert(reason);
    }

    /// The error for an operation that needs a live kernel.
    fn not_running(&self, operation: &'static str, state: KernelState) -> RingKernelError {
        match state {
            KernelState::Failed => {
                RingKernelError::KernelFault { kernel: self.id.to_string(), reason: self.fault_reason() }
            }
            state => RingKernelError::InvalidState { kernel: self.id.to_string(), operation, state },
        }
    }

    /// The device broke the protocol (an index out of range): the kernel fails, its memory is not
    /// trusted any more (nothing is taken back from it), and the device is asked to stop.
    fn fail_protocol(&self, violation: IndexViolation, queue: &'static str) -> RingKernelError {
        let error = violation.into_error(self.id.as_str(), queue);
        if let RingKernelError::KernelFault { reason, .. } = &error {
            tracing::error!(kernel = %self.id, %reason, "the device broke the ring protocol");
            self.record_fault(reason.clone());
        }
        self.fault();
        error
    }

    /// The kernel fails on the host's side (its memory is not trusted any more): waiters wake,
    /// and the device is asked to stop.
    fn fault(&self) {
        self.lifecycle.store(HostPhase::Faulted);
        self.control.request_terminate(true);
        self.device.wake();
        self.doorbell.ring();
    }

    /// Handles the device's stop once: no more sends, and whatever it accepted but never handled
    /// (left in the input ring and the inbox) is taken back for [`KernelControl::take_unprocessed`].
    fn settle(&self) {
        if self.settled.load(Ordering::Acquire) {
            return;
        }
        // From inside a `send_with` fill of this kernel the input lock is held: settle later.
        let Ok(mut input) = self.lock_input() else { return };
        if self.settled.load(Ordering::Relaxed) {
            return;
        }
        // Only a device that reported a defined stop keeps the `Device` contract; a lying one (a
        // protocol fault, an undefined stop code) or memory that cannot be read back is not
        // trusted, and nothing is taken back from it.
        let stop = self.control.stop();
        let mut trusted = self.lifecycle.load() != HostPhase::Faulted && stop.is_defined_stop();
        if let DeviceStop::Undefined(code) = stop {
            self.record_fault(format!(
                "the device reported stop code {code}, which no protocol version defines; its memory is not trusted"
            ));
        }
        if trusted && let Err(error) = self.device.sync_from_device() {
            tracing::error!(kernel = %self.id, %error, "could not read the stopped device's memory back");
            self.record_fault(format!("could not read the stopped device's memory back: {error}"));
            trusted = false;
        }
        let mut returned = Vec::new();
        let mut invalid = 0;
        if trusted {
            let mut buffer = match SlotBuffer::new(input.producer.slot_bytes()) {
                Ok(buffer) => Some(buffer),
                Err(error) => {
                    tracing::error!(kernel = %self.id, %error, "cannot take back unhandled messages");
                    None
                }
            };
            if let Some(buffer) = buffer.as_mut() {
                let mut take = |slot: SharedSlot<'_>| {
                    slot.copy_message_into(buffer, HeaderPart::Used);
                    match buffer.decode() {
                        Ok(decoded) => returned.push(Envelope::from_decoded(&decoded)),
                        Err(_) => invalid += 1,
                    }
                };
                if let Err(violation) = input.producer.take_unconsumed(&mut take) {
                    tracing::error!(kernel = %self.id, %violation, "input ring corrupt: nothing taken back");
                }
                if let Some(reclaim) = input.inbox_reclaim.as_mut() {
                    // SAFETY: the device reported that it stopped, and the `Device` contract says
                    // that it then never touches the kernel's memory again and that nothing can
                    // still write into its inbox.
                    unsafe { reclaim.take_unreceived(&mut take) };
                }
            }
        }
        if self.control.stop() == DeviceStop::Failed && lock(&self.fault).is_none() {
            let reason = self.fault_reason();
            self.record_fault(reason);
        }
        self.stats.returned.fetch_add(returned.len() as u64, Ordering::Relaxed);
        self.stats.returned_invalid.fetch_add(invalid, Ordering::Relaxed);
        lock(&self.unprocessed).extend(returned);
        self.settled.store(true, Ordering::Release);
        drop(input);
        self.doorbell.ring();
    }

    /// Makes the host's writes visible to the device and wakes it. A device whose memory cannot be
    /// synchronised has failed: the kernel faults (its memory is not trusted any more).
    fn wake(&self) -> Result<()> {
        if let Err(error) = self.device.sync_to_device() {
            let reason = format!("could not make host writes visible to the device: {error}");
            tracing::error!(kernel = %self.id, %reason);
            self.record_fault(reason.clone());
            self.fault();
            return Err(RingKernelError::KernelFault { kernel: self.id.to_string(), reason });
        }
        self.device.wake();
        Ok(())
    }

    /// Moves to `next` if the lifecycle allows it and tells the device; returns the control
    /// sequence whose acknowledgement means the device acts on it.
    fn transition(&self, operation: &'static str, next: KernelState) -> Result<u32> {
        let sequence = {
            let _input = self.lock_input()?;
            let host = self.lifecycle.load();
            let current = self.raw_state();
            let Some(phase) = HostPhase::requested(next).filter(|_| current.can_become(next)) else {
                return Err(self.not_running(operation, current));
            };
            // A protocol fault found meanwhile (outside this lock) is final: never overwrite it.
            if !self.lifecycle.replace(host, phase) {
                return Err(self.not_running(operation, self.raw_state()));
            }
            match next {
                KernelState::Active => self.control.activate(),
                KernelState::Deactivated => self.control.deactivate(),
                _ => self.control.request_terminate(false),
            }
        };
        self.wake()?;
        self.doorbell.ring();
        Ok(sequence)
    }

    /// Waits for the device: `done` says when, `operation` names it in a timeout. Fails when the
    /// watchdog is on and the heartbeat stops.
    async fn wait_on_device(
        &self,
        operation: &'static str,
        mut done: impl FnMut() -> Option<Result<()>> + Send,
    ) -> Result<()> {
        let mut watchdog = self.watchdog(operation);
        self.waiter().wait(None, operation, || done().or_else(|| watchdog.check(self))).await
    }

    fn watchdog(&self, operation: &'static str) -> Watchdog {
        Watchdog { limit: self.config.watchdog, operation, beat: self.heartbeat(), since: None }
    }

    fn heartbeat(&self) -> u32 {
        self.control.block().heartbeat.load(Ordering::Relaxed)
    }

    // ----- sending ---------------------------------------------------------------------------

    /// Refuses a send unless the kernel accepts messages. Called under the input lock.
    fn check_accepting(&self) -> Result<()> {
        // Host-side state only: reading the device line here would cost a cache-line transfer (or a
        // PCIe read) per send. A device that stopped on its own is noticed on the next wait, a full
        // ring, or `state()`; what lands in its ring meanwhile is taken back (`settle`).
        if self.lifecycle.load().accepts() && !self.settled.load(Ordering::Acquire) {
            return Ok(());
        }
        let state = self.raw_state();
        if matches!(state, KernelState::Terminating) || state.is_final() {
            return Err(self.not_running("send to", state));
        }
        Ok(())
    }

    /// The zero-copy send: fills up to `count` reserved slots, stamps them from one clock reading,
    /// publishes them together. Returns how many and the wall-clock reading used.
    fn send_filled(&self, count: usize, fill: &mut FillFn<'_>) -> Result<(usize, u64)> {
        let mut input = self.lock_input()?;
        self.check_accepting()?;
        let wanted = u32::try_from(count).unwrap_or(u32::MAX);
        let mut chunk = match input.producer.write_chunk_up_to(wanted) {
            Ok(chunk) => chunk,
            Err(PushError::Corrupt(violation)) => return Err(self.fail_protocol(violation, "input ring")),
            Err(PushError::Full(_)) => unreachable!("write_chunk_up_to reserves what there is"),
        };
        let reserved = chunk.len();
        if reserved == 0 {
            // A full ring may be a device that stopped: say so rather than "full".
            return self.stopped().map_or(Ok((0, 0)), Err);
        }
        let (first, wall) = self.clock.tick_many_reading(reserved);
        for i in 0..reserved {
            let mut message = Outgoing::new(chunk.slot_mut(i));
            let filled = {
                let _filling = InUserCode::enter(&FILLING, self.address());
                fill(i as usize, &mut message)
            };
            if let Err(error) = filled {
                return Err(self.refuse(error));
            }
            let header = message.header_mut();
            header.source_kernel = HOST_KERNEL_ID;
            header.dest_kernel = self.number;
            // Stamped under the lock, from one reading: timestamps increase in queue order.
            header.set_timestamp(first.plus_logical(u64::from(i)));
            if let Err(error) = message.seal() {
                return Err(self.refuse(error));
            }
            if self.config.input_slot_checks {
                let position = chunk.position(i);
                write_slot_check(position, chunk.slot_mut(i));
            }
        }
        chunk.commit_all();
        bump(&self.stats.sent, u64::from(reserved));
        input.producer.prefetch_next_for_write(&SLOT_WRITE_LINES);
        drop(input);
        self.wake()?;
        Ok((reserved as usize, wall))
    }

    /// Queues one envelope; `Ok(None)` when the ring is full. Returns the wall-clock reading of
    /// the send.
    fn try_send_envelope(&self, envelope: &Envelope) -> Result<Option<u64>> {
        let mut input = self.lock_input()?;
        self.check_accepting()?;
        self.check_envelope(envelope)?;
        // The envelope's header goes straight into the slot (its used bytes), then the words the
        // engine owns are written over it: no copy of the whole 256-byte header on the way.
        let position = input.producer.position();
        let pushed = input.producer.try_push(|slot| {
            let (timestamp, wall) = self.clock.tick_many_reading(1);
            write_slot(slot, &envelope.header, &envelope.payload).expect("the envelope was checked");
            stamp(slot, self.number, timestamp);
            if self.config.input_slot_checks {
                write_slot_check(position, slot);
            }
            wall
        });
        let wall = match pushed {
            Ok(wall) => wall,
            Err(PushError::Full(_)) => return self.stopped().map_or(Ok(None), Err),
            Err(PushError::Corrupt(violation)) => return Err(self.fail_protocol(violation, "input ring")),
        };
        bump(&self.stats.sent, 1);
        input.producer.prefetch_next_for_write(&SLOT_WRITE_LINES);
        drop(input);
        self.wake()?;
        Ok(Some(wall))
    }

    /// `send_raw` without the await: queues a raw slot as given (its tail zeroed).
    fn send_raw_now(&self, slot: &[u8]) -> Result<()> {
        let mut input = self.lock_input()?;
        self.check_accepting()?;
        if slot.len() < MESSAGE_HEADER_BYTES {
            // Not even a header: refused, and nothing is queued (a shorter write would leave the
            // rest of the slot holding whatever message used it last).
            return Err(self.refuse(MessageError::SlotTooSmall { len: slot.len(), header_bytes: MESSAGE_HEADER_BYTES }));
        }
        if slot.len() > input.producer.slot_bytes() {
            return Err(self.refuse(MessageError::PayloadTooLarge {
                payload_bytes: u32::try_from(slot.len()).unwrap_or(u32::MAX),
                capacity_bytes: input.producer.slot_bytes(),
            }));
        }
        let position = input.producer.position();
        let checked = self.config.input_slot_checks;
        match input.producer.try_push(|target| {
            target[..slot.len()].copy_from_slice(slot);
            target[slot.len()..].fill(0);
            // The check word is the host's, not the message's: a raw slot gets one too.
            if checked {
                write_slot_check(position, target);
            }
        }) {
            Ok(()) => {}
            Err(PushError::Full(full)) => {
                return Err(self.refuse(self.stopped().unwrap_or_else(|| full.into_error("input ring"))));
            }
            Err(PushError::Corrupt(violation)) => return Err(self.fail_protocol(violation, "input ring")),
        }
        bump(&self.stats.sent, 1);
        drop(input);
        self.wake()
    }

    /// Counts a refused send and returns its error.
    fn refuse(&self, error: impl Into<RingKernelError>) -> RingKernelError {
        self.stats.refused.fetch_add(1, Ordering::Relaxed);
        error.into()
    }

    fn full_error(&self) -> RingKernelError {
        RingKernelError::QueueFull { queue: "input ring", capacity: self.input_capacity }
    }

    /// Why a send found the input ring full when the device has stopped (then nothing will ever
    /// make room); `None` when the ring is merely full.
    fn stopped(&self) -> Option<RingKernelError> {
        let state = self.raw_state();
        state.is_final().then(|| self.not_running("send to", state))
    }

    /// Checks an envelope as a reader would, before it is queued.
    fn check_envelope(&self, envelope: &Envelope) -> Result<()> {
        check_header(&envelope.header, envelope.payload.len(), self.input_capacity_bytes).map_err(|e| self.refuse(e))
    }

    // ----- receiving -------------------------------------------------------------------------

    fn address(&self) -> usize {
        self as *const Self as usize
    }

    /// The output lock, unless this thread already runs user code of this kernel under a lock:
    /// a `receive_with` visitor holds it already, and a `send_with` fill holds the input lock,
    /// which is taken after the output lock elsewhere. Either would deadlock; both are errors.
    fn lock_output(&self) -> Result<MutexGuard<'_, OutputSide>> {
        if VISITING.with(Cell::get) == self.address() {
            return Err(self.reentered("receive from", "receive_with visitor"));
        }
        if FILLING.with(Cell::get) == self.address() {
            return Err(self.reentered("receive from", "send_with fill"));
        }
        Ok(lock(&self.output))
    }

    /// The input lock, unless a `send_with` fill of this kernel runs on this thread (it holds it).
    fn lock_input(&self) -> Result<MutexGuard<'_, InputSide>> {
        if FILLING.with(Cell::get) == self.address() {
            return Err(self.reentered("send to or change the state of", "send_with fill"));
        }
        Ok(lock(&self.input))
    }

    fn reentered(&self, operation: &'static str, inside: &'static str) -> RingKernelError {
        RingKernelError::Reentrant { kernel: self.id.to_string(), operation, inside }
    }

    /// Runs a `receive_with` visitor with this kernel marked as being visited on this thread.
    fn visit(&self, visit: &mut VisitFn<'_>, message: MessageView<'_>) {
        let _visiting = InUserCode::enter(&VISITING, self.address());
        visit(message);
    }

    /// Reads messages out of the output ring and routes them: a reply to `call` is returned (and
    /// reading stops there), replies other calls wait for go to them, everything else goes to
    /// `visit` (while nothing older is queued, up to `max`) or into the queue for `receive`.
    fn pull(
        &self,
        out: &mut OutputSide,
        call: Option<u64>,
        max: usize,
        mut visit: Option<&mut VisitFn<'_>>,
    ) -> Result<Pulled> {
        self.device.sync_from_device()?;
        let OutputSide { consumer, scratch, pending, unclaimed, incomplete_since } = out;
        let (part, checks) = (self.receive_part, self.config.output_slot_checks);
        let mut pulled = Pulled::default();
        if let Some(visit) = visit.as_deref_mut() {
            while pulled.visited < max {
                let Some(envelope) = unclaimed.pop_front() else { break };
                self.visit(visit, MessageView { header: &envelope.header, payload: &envelope.payload });
                pulled.visited += 1;
            }
        }
        let mut newest: Option<HlcTimestamp> = None;
        let (mut moved, mut routed) = (0u64, 0u64);
        let handed_back = consumer.handed_back();
        loop {
            if pulled.reply.is_some() || (visit.is_some() && pulled.visited >= max) {
                break;
            }
            let mut incomplete = None;
            let popped = consumer.try_pop_complete(|slot, position| {
                slot.copy_message_into(scratch, part);
                // The check covers what was copied (hot line and payload); the device may publish
                // its tail before the slot's last writes land.
                let complete = !checks
                    || slot.read_u32(std::mem::offset_of!(MessageHeader, slot_check))
                        == whole_slot_check(position, scratch.as_slice());
                if !complete {
                    incomplete = Some(position);
                }
                complete.then_some(())
            });
            self.incomplete.store(incomplete.is_some(), Ordering::Relaxed);
            if let Some(position) = incomplete {
                match *incomplete_since {
                    Some((seen, since)) if seen == position => {
                        if since.elapsed() > OUTPUT_SLOT_PATIENCE {
                            let reason = format!(
                                "output slot {position} never became complete: its check word still does not match \
                                 after {OUTPUT_SLOT_PATIENCE:?}"
                            );
                            tracing::error!(kernel = %self.id, %reason, "the device broke the output protocol");
                            self.record_fault(reason.clone());
                            self.fault();
                            return Err(RingKernelError::KernelFault { kernel: self.id.to_string(), reason });
                        }
                    }
                    _ => *incomplete_since = Some((position, Instant::now())),
                }
            }
            match popped {
                Ok(()) => {
                    *incomplete_since = None;
                    moved += 1;
                    consumer.prefetch_following(&SLOT_READ_LINES);
                    if self.receive_part == HeaderPart::Hot {
                        // Not read from the slot, but known: everything in the output ring is for
                        // the host.
                        scratch.set_dest_kernel(HOST_KERNEL_ID);
                    }
                }
                Err(PopError::Empty) => break,
                Err(PopError::Corrupt(violation)) => return Err(self.fail_protocol(violation, "output ring")),
            }
            let decoded = match scratch.view() {
                Ok(decoded) => decoded,
                Err(error) => {
                    bump(&self.stats.undecodable, 1);
                    tracing::error!(kernel = %self.id, %error, "undecodable message in the output ring");
                    continue;
                }
            };
            let header = decoded.header;
            newest = newest.max(Some(header.timestamp()));
            if header.is_error() {
                self.note_error_report(&decoded);
            }
            let correlation = header.correlation_id().0;
            if header.is_reply() && correlation != CorrelationId::NONE.0 {
                if call == Some(correlation) {
                    pulled.reply = Some(Box::new(Envelope::from_view(&decoded)));
                    continue;
                }
                if let Some(waiting @ None) = pending.get_mut(&correlation) {
                    *waiting = Some(Box::new(Envelope::from_view(&decoded)));
                    routed += 1;
                    continue;
                }
            }
            match visit.as_deref_mut() {
                Some(visit) if unclaimed.is_empty() => {
                    self.visit(visit, decoded);
                    pulled.visited += 1;
                }
                _ => {
                    unclaimed.push_back(Envelope::from_view(&decoded));
                    routed += 1;
                }
            }
        }
        if moved > 0 {
            bump(&self.stats.received, moved);
            // Written only under the output lock: a store, not a read-modify-write.
            self.drains.store(self.drains.load(Ordering::Relaxed) + 1, Ordering::Release);
            if let Some(newest) = newest
                && let Err(error) = self.clock.observe(newest)
            {
                tracing::warn!(kernel = %self.id, %error, "kernel timestamp rejected by the host clock");
            }
            if routed > 0 {
                // Another task may wait for what this drain routed.
                self.doorbell.ring();
            }
        }
        if consumer.handed_back() != handed_back {
            // Slots went back to the device: one waiting for room in a full output ring can go on.
            self.device.wake();
        }
        Ok(pulled)
    }

    /// Moves everything in the output ring to the waiting calls and the `receive` queue.
    fn drain_for_others(&self) -> Result<()> {
        let mut out = self.lock_output()?;
        self.pull(&mut out, None, 0, None).map(drop)
    }

    /// A fault report carries the reason the kernel failed: keep it for later errors.
    fn note_error_report(&self, decoded: &MessageView<'_>) {
        let report = ErrorReport::decode(decoded.payload);
        if report.code == codes::HANDLER_FAULT {
            self.record_fault(report.reason);
        }
    }

    /// Whether anything a waiter looks at changed since `last_seen` (which it updates): a poll that
    /// sees the same output tail, drain count, stop code and state as the last one skips the locks.
    fn changed_since(&self, last_seen: &mut Option<Snapshot>) -> Result<bool> {
        self.device.sync_from_device()?;
        let seen = self.snapshot();
        Ok(last_seen.replace(seen) != Some(seen) || self.incomplete.load(Ordering::Relaxed))
    }

    /// What a waiting poll compares to skip a drain that cannot find anything new.
    fn snapshot(&self) -> Snapshot {
        Snapshot {
            output_tail: self.control.block().output_tail.load(Ordering::Acquire),
            drains: self.drains.load(Ordering::Acquire),
            stop: self.control.stop(),
            phase: self.lifecycle.load(),
            settled: self.settled.load(Ordering::Acquire),
        }
    }

    /// `try_receive_with`, plus the state read before draining: a device publishes its last output
    /// before it reports stopping, so a final state read first means nothing more will come.
    fn receive_now(&self, max: usize, visit: &mut VisitFn<'_>) -> Result<(usize, KernelState)> {
        let state = self.raw_state();
        if max == 0 {
            return Ok((0, state));
        }
        let mut out = self.lock_output()?;
        let pulled = self.pull(&mut out, None, max, Some(visit))?;
        Ok((pulled.visited, state))
    }

    /// Waits at most `timeout` until `receive_now` hands over at least one message.
    async fn receive_waiting(&self, max: usize, timeout: Option<Duration>, visit: &mut VisitFn<'_>) -> Result<usize> {
        if max == 0 {
            return Ok(0);
        }
        let mut last_seen = None;
        let mut watchdog = self.watchdog("a message from the kernel");
        self.waiter()
            .wait(timeout, "a message from the kernel", || {
                match self.changed_since(&mut last_seen) {
                    Ok(true) => {}
                    Ok(false) => return watchdog.check(self),
                    Err(error) => return Some(Err(error)),
                }
                match self.receive_now(max, visit) {
                    Ok((0, state)) if state.is_final() => {
                        self.settle();
                        Some(Err(self.not_running("receive from", state)))
                    }
                    Ok((0, _)) => None,
                    Ok((visited, _)) => Some(Ok(visited)),
                    Err(error) => Some(Err(error)),
                }
            })
            .await
    }

    async fn receive_envelope(&self, timeout: Option<Duration>) -> Result<Envelope> {
        // Boxed while it travels through the waiting layers (a 280-byte move less at each).
        let mut received: Option<Box<Envelope>> = None;
        self.receive_waiting(1, timeout, &mut |message| received = Some(Box::new(Envelope::from_view(&message))))
            .await?;
        Ok(*received.expect("one message was visited"))
    }

    /// The synchronous start of a call: gives it a correlation id, registers it and sends.
    /// Returns the correlation id and the wall-clock reading of the send.
    fn start_call(&self, mut envelope: Envelope) -> Result<(u64, u64)> {
        if envelope.header.correlation_id() == CorrelationId::NONE {
            envelope.header.correlation_id = CorrelationId::generate().to_words();
        }
        let correlation = envelope.header.correlation_id().0;
        let sent_at = {
            // Registered before the send, under the same lock as drains, so that no drain can miss
            // it. (Lock order: output, then input; nothing takes them the other way round.)
            let mut out = self.lock_output()?;
            if out.pending.contains_key(&correlation) {
                return Err(RingKernelError::InvalidConfig {
                    field: "correlation_id",
                    reason: format!("{correlation} is already awaited by another call"),
                });
            }
            match self.try_send_envelope(&envelope)? {
                Some(wall) => {
                    out.pending.insert(correlation, None);
                    wall
                }
                None => return Err(self.refuse(self.full_error())),
            }
        };
        Ok((correlation, sent_at))
    }

    /// Records a call's round trip in the latency histogram: every call up to the
    /// [`LATENCY_SAMPLE_ALL`]-th, then one in [`LATENCY_SAMPLE_EVERY`] (reading the clock and
    /// taking the histogram's lock cost about as much as a tenth of a round trip).
    fn record_latency(&self, sent_wall_ns: u64) {
        // A load and a store, not a read-modify-write: concurrent calls may count one call twice,
        // which only shifts which calls are sampled.
        let call = self.calls.load(Ordering::Relaxed);
        self.calls.store(call + 1, Ordering::Relaxed);
        if call >= LATENCY_SAMPLE_ALL && !call.is_multiple_of(LATENCY_SAMPLE_EVERY) {
            return;
        }
        let elapsed_ns = SystemClock.now_ns().saturating_sub(sent_wall_ns).max(1);
        let _ = lock(&self.latency).record(elapsed_ns);
    }
}

/// Turns a device whose heartbeat stopped into an error while a host task waits on it (see
/// [`HostConfig::watchdog`]); does nothing when the watchdog is off.
struct Watchdog {
    limit: Option<Duration>,
    operation: &'static str,
    beat: u32,
    /// When the heartbeat was last seen to move (read lazily: the first check starts the clock).
    since: Option<Instant>,
}

impl Watchdog {
    fn check<T>(&mut self, kernel: &HostKernel) -> Option<Result<T>> {
        let limit = self.limit?;
        let beat = kernel.heartbeat();
        let now = Instant::now();
        if beat != self.beat || self.since.is_none() {
            (self.beat, self.since) = (beat, Some(now));
            return None;
        }
        let since = self.since?;
        // The wait fails; the kernel itself is left as it is (the caller decides: terminate it,
        // or wait again), so a later failure of the device reports its own reason.
        (now.duration_since(since) > limit).then(|| {
            let reason = format!("no heartbeat for {limit:?} while waiting for {}", self.operation);
            tracing::warn!(kernel = %kernel.id, %reason);
            Err(RingKernelError::KernelFault { kernel: kernel.id.to_string(), reason })
        })
    }
}

/// What a waiting poll compares with its last look: see [`HostKernel::changed_since`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Snapshot {
    /// The device's output tail.
    output_tail: u32,
    /// Drains that moved a message.
    drains: u64,
    /// The device's report of a stop.
    stop: DeviceStop,
    /// The host's phase.
    phase: HostPhase,
    /// Whether the device's stop was handled.
    settled: bool,
}

/// What one pull produced.
#[derive(Default)]
struct Pulled {
    /// The reply the caller asked for (boxed: it travels through several layers of waiting).
    reply: Option<Box<Envelope>>,
    /// Messages handed to the visitor.
    visited: usize,
}

/// Removes a call's entry if the call ends without its reply (an error, a timeout, or its future
/// dropped); a reply that arrives for an abandoned call goes to `receive`, so it is not lost.
struct PendingCall<'a> {
    kernel: &'a HostKernel,
    correlation: u64,
    answered: bool,
}

impl Drop for PendingCall<'_> {
    fn drop(&mut self) {
        if self.answered {
            return;
        }
        let mut out = lock(&self.kernel.output);
        if let Some(Some(reply)) = out.pending.remove(&self.correlation) {
            out.unclaimed.push_back(*reply);
            // A receiver that skips polls while nothing changed must see this.
            let drains = &self.kernel.drains;
            drains.store(drains.load(Ordering::Relaxed) + 1, Ordering::Release);
            drop(out);
            self.kernel.doorbell.ring();
        }
    }
}

impl Drop for HostKernel {
    /// The last handle is gone: nobody can read replies or terminate the kernel any more, so ask
    /// it to stop (it still handles what it had accepted, dropping output that finds no room).
    fn drop(&mut self) {
        if !self.raw_state().is_final() {
            self.control.request_terminate(true);
            // A failed sync has nobody left to report to; the device was asked to stop anyway.
            let _ = self.wake();
        }
    }
}

#[async_trait]
impl KernelControl for HostKernel {
    fn id(&self) -> &KernelId {
        &self.id
    }

    fn state(&self) -> KernelState {
        self.current_state()
    }

    async fn activate(&self) -> Result<()> {
        self.transition("activate", KernelState::Active).map(|_| ())
    }

    async fn deactivate(&self) -> Result<()> {
        let sequence = self.transition("deactivate", KernelState::Deactivated)?;
        // Returns once the device acknowledged: from then on it handles nothing until activated.
        // Waiting drains the output ring, so a device blocked on a full ring in the middle of a
        // message can finish it and acknowledge; what it wrote stays receivable.
        self.wait_on_device("the kernel to acknowledge deactivation", || {
            if self.control.acknowledged(sequence) || self.control.has_terminated() {
                return Some(Ok(()));
            }
            self.drain_for_others().err().map(Err)
        })
        .await
    }

    async fn terminate(&self) -> Result<()> {
        match self.transition("terminate", KernelState::Terminating) {
            Ok(_) => {}
            // Already terminating or stopped: wait for (or confirm) the end.
            Err(_) if matches!(self.raw_state(), KernelState::Terminating) || self.raw_state().is_final() => {}
            Err(error) => return Err(error),
        }
        // Waiting also drains the output ring, so a device blocked on a full ring can finish;
        // what it holds stays receivable.
        self.wait_on_device("termination", || {
            if let Err(error) = self.device.sync_from_device() {
                return Some(Err(error));
            }
            let stopped = self.raw_state().is_final();
            if let Err(error) = self.drain_for_others() {
                return Some(Err(error));
            }
            stopped.then_some(Ok(()))
        })
        .await?;
        self.settle();
        // Only a device that reported its stop is let go of (a faulted one may still run: it was
        // asked to stop, and a later terminate releases it once it has).
        if self.control.has_terminated() && !self.released.swap(true, Ordering::AcqRel) {
            self.device.release();
        }
        Ok(())
    }

    async fn send(&self, envelope: Envelope) -> Result<()> {
        self.send_direct(envelope).await
    }

    async fn send_timeout(&self, envelope: Envelope, timeout: Duration) -> Result<()> {
        let mut watchdog = self.watchdog("room in the input ring");
        self.waiter()
            .wait(Some(timeout), "room in the input ring", || match self.try_send_envelope(&envelope) {
                Ok(Some(_)) => Some(Ok(())),
                Ok(None) => watchdog.check(self),
                Err(error) => Some(Err(error)),
            })
            .await
            .inspect_err(|error| {
                if matches!(error, RingKernelError::Timeout { .. }) {
                    self.stats.refused.fetch_add(1, Ordering::Relaxed);
                }
            })
    }

    async fn send_raw(&self, slot: &[u8]) -> Result<()> {
        self.send_raw_now(slot)?;
        cooperate().await;
        Ok(())
    }

    async fn send_batch(&self, envelopes: &[Envelope]) -> Result<usize> {
        {
            let _input = self.lock_input()?;
            self.check_accepting()?;
        }
        for envelope in envelopes {
            self.check_envelope(envelope)?;
        }
        let (sent, _) = self.send_filled(envelopes.len(), &mut |i, message| {
            *message.header_mut() = envelopes[i].header;
            message.write_payload(&envelopes[i].payload)?;
            Ok(())
        })?;
        cooperate().await;
        Ok(sent)
    }

    fn send_with(&self, count: usize, fill: &mut FillFn<'_>) -> Result<usize> {
        self.send_filled(count, fill).map(|(sent, _)| sent)
    }

    fn try_receive_with(&self, max: usize, visit: &mut VisitFn<'_>) -> Result<usize> {
        self.receive_now(max, visit).map(|(visited, _)| visited)
    }

    async fn receive_with(&self, max: usize, timeout: Duration, visit: &mut VisitFn<'_>) -> Result<usize> {
        self.receive_waiting(max, Some(timeout), visit).await
    }

    async fn receive(&self) -> Result<Envelope> {
        self.receive_envelope(None).await
    }

    async fn receive_timeout(&self, timeout: Duration) -> Result<Envelope> {
        self.receive_envelope(Some(timeout)).await
    }

    async fn receive_batch(&self, max: usize, timeout: Duration) -> Result<Vec<Envelope>> {
        let mut batch = Vec::new();
        self.receive_waiting(max, Some(timeout), &mut |message| batch.push(Envelope::from_view(&message))).await?;
        Ok(batch)
    }

    // Written out rather than `async fn`: the engine's own future is boxed as it is, not inside a
    // second state machine that only awaits it.
    fn call<'life0, 'async_trait>(
        &'life0 self,
        envelope: Envelope,
        timeout: Duration,
    ) -> std::pin::Pin<Box<dyn Future<Output = Result<Envelope>> + Send + 'async_trait>>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(self.call_direct(envelope, timeout))
    }

    fn metrics(&self) -> KernelMetrics {
        self.current_state();
        let block = self.control.block();
        let (processed, device_rejected, device_errors) = {
            let mut widened = lock(&self.widened);
            (
                widened.processed.update(block.messages_processed.load(Ordering::Acquire)),
                widened.rejected.update(block.messages_rejected.load(Ordering::Acquire)),
                widened.errors.update(block.error_count.load(Ordering::Acquire)),
            )
        };
        let stats = &*self.stats;
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        let (sent, returned, returned_invalid) =
            (load(&stats.sent), load(&stats.returned), load(&stats.returned_invalid));
        let latency = lock(&self.latency);
        let quantile = |q: f64| (!latency.is_empty()).then(|| latency.value_at_quantile(q) as f64 / 1000.0);
        KernelMetrics {
            messages_sent: sent,
            messages_processed: processed,
            messages_rejected: device_rejected + load(&stats.refused) + returned_invalid,
            messages_in_flight: sent.saturating_sub(processed + device_rejected + returned + returned_invalid),
            replies_received: load(&stats.received),
            errors: device_errors + load(&stats.undecodable),
            latency_p50_us: quantile(0.5),
            latency_p99_us: quantile(0.99),
        }
    }

    fn take_unprocessed(&self) -> Vec<Envelope> {
        self.current_state();
        std::mem::take(&mut *lock(&self.unprocessed))
    }
}

impl std::fmt::Debug for HostKernel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostKernel").field("id", &self.id).field("state", &self.raw_state()).finish()
    }
}
