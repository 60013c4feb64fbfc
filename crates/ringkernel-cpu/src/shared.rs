//! What a kernel's host side and its actor thread share.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering, fence};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::thread::Thread;
use std::time::Duration;

use crossbeam_utils::CachePadded;
use hdrhistogram::Histogram;
use ringkernel_core::control::{SharedControl, WideCounter};
use ringkernel_core::hlc::HybridClock;
use ringkernel_core::message::Envelope;
use ringkernel_core::queue::spsc::{Consumer, Producer};
use ringkernel_core::runtime::{KernelId, KernelState};

/// Byte offsets of the cache lines a small message touches in its slot: the two lines of the
/// header's used part and the first payload line (see `MESSAGE_HEADER_USED_BYTES`).
pub(crate) const MESSAGE_LINES: [usize; 3] = [0, 64, ringkernel_core::layout::MESSAGE_HEADER_BYTES];

/// Locks, ignoring poisoning: no lock here is held across user code, so a poisoned lock only
/// means another thread panicked elsewhere and the data is still consistent.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A wake-up from one thread to async waiters that costs the notifier one fence and one load
/// when nobody waits.
///
/// Waiters register, then re-check their condition, then await; notifiers change the condition,
/// then call [`Signal::notify`]. The two SeqCst fences make sure that either the waiter sees the
/// change or the notifier sees the waiter.
#[derive(Default)]
pub(crate) struct Signal {
    waiters: AtomicUsize,
    notify: tokio::sync::Notify,
}

impl Signal {
    pub(crate) fn notify(&self) {
        fence(Ordering::SeqCst);
        if self.waiters.load(Ordering::Relaxed) > 0 {
            self.notify.notify_waiters();
        }
    }

    pub(crate) fn notified(&self) -> tokio::sync::futures::Notified<'_> {
        self.notify.notified()
    }

    /// Counts the caller as a waiter until the guard drops.
    pub(crate) fn register(&self) -> WaiterGuard<'_> {
        self.waiters.fetch_add(1, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        WaiterGuard(self)
    }
}

pub(crate) struct WaiterGuard<'a>(&'a Signal);

impl Drop for WaiterGuard<'_> {
    fn drop(&mut self) {
        self.0.waiters.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Tuning of the CPU backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CpuConfig {
    /// How long an idle actor, and a host waiting for a reply, spin before they park. Spinning
    /// keeps round trips in the sub-microsecond range while traffic flows; parking frees the core
    /// when it stops. Zero parks at once.
    pub spin_before_park: Duration,
    /// Node id of the host's hybrid clock (kernels use their kernel number).
    pub host_node_id: u32,
    /// Largest accepted clock offset of a received timestamp (`None`: unbounded).
    pub max_clock_offset_ns: Option<u64>,
}

impl Default for CpuConfig {
    fn default() -> Self {
        Self {
            spin_before_park: Duration::from_micros(50),
            host_node_id: 0,
            max_clock_offset_ns: Some(ringkernel_core::hlc::HlcConfig::DEFAULT_MAX_OFFSET_NS),
        }
    }
}

/// Everything the host side of one kernel changes per message, behind one lock: the host's ends
/// of both rings, the calls waiting for replies, the messages waiting for `receive`, and the
/// host-side counters. One lock keeps a round trip at two lock acquisitions (send, then the poll
/// that finds the reply); every uncontended lock still costs two atomic read-modify-writes.
pub(crate) struct HostSide {
    /// The host's end of the input ring.
    pub(crate) producer: Producer,
    /// The host's end of the output ring.
    pub(crate) consumer: Consumer,
    /// Calls waiting for a reply, by correlation id; `Some` once another caller's drain found it.
    /// (A call that drains its own reply takes it directly; the box keeps this map's entries
    /// small, so registering a call copies a word, not an envelope.)
    pub(crate) pending: HashMap<u64, Option<Box<Envelope>>, BuildHasherDefault<CorrelationHasher>>,
    /// Messages nobody is calling for, in arrival order, for `receive`.
    pub(crate) unclaimed: VecDeque<Envelope>,
    /// Messages accepted into the input ring.
    pub(crate) sent: u64,
    /// Sends refused (full ring, invalid message).
    pub(crate) refused: u64,
    /// Messages taken from the output ring.
    pub(crate) received: u64,
    /// Output slots that did not decode.
    pub(crate) errors: u64,
    /// Round trips of `call`, in ns.
    pub(crate) latency: Histogram<u64>,
}

/// Correlation ids are random 64-bit values already, so the pending-call map uses them as their
/// own hash instead of running SipHash three times per call.
#[derive(Default)]
pub(crate) struct CorrelationHasher(u64);

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

/// Widens the control block's 32-bit device counters.
#[derive(Default)]
pub(crate) struct Widened {
    pub(crate) processed: WideCounter,
    pub(crate) rejected: WideCounter,
    pub(crate) errors: WideCounter,
}

/// Fields the host writes on every message (locks, counters) each sit in their own cache lines,
/// away from what the actor thread reads on every message (signals, ids, flags): without the
/// padding, each host lock or counter update would invalidate a line the actor is reading, and
/// every round trip would pay for the false sharing.
pub(crate) struct Shared {
    pub(crate) id: KernelId,
    pub(crate) number: u32,
    pub(crate) control: SharedControl,
    pub(crate) config: CpuConfig,
    state: CachePadded<AtomicU8>,
    /// Why the kernel failed.
    pub(crate) fault: Mutex<Option<String>>,
    /// The host side. Its lock also orders state changes against sends: a send that sees an
    /// accepting state under the lock lands before the kernel drains.
    pub(crate) host: CachePadded<Mutex<HostSide>>,
    /// Drains of the output ring that moved at least one message (see `wait_output`).
    pub(crate) drains: CachePadded<AtomicU64>,
    /// The kernel wrote to its output ring or changed state.
    pub(crate) output_signal: CachePadded<Signal>,
    /// The kernel consumed input (room may have appeared).
    pub(crate) input_signal: CachePadded<Signal>,
    pub(crate) thread: OnceLock<Thread>,
    pub(crate) host_clock: Arc<HybridClock>,
    pub(crate) widened: Mutex<Widened>,
    /// Messages returned by a failed kernel (also counted in `returned`).
    pub(crate) unprocessed: Mutex<Vec<Envelope>>,
    pub(crate) returned: AtomicU64,
    /// The kernel waits for room in its output ring and wants to be woken by the next drain.
    pub(crate) output_blocked: AtomicBool,
    /// Every handle and the runtime dropped their reference: nobody will read the output ring.
    pub(crate) detached: AtomicBool,
}

impl Shared {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        id: KernelId,
        number: u32,
        control: SharedControl,
        config: CpuConfig,
        initial: KernelState,
        input: Producer,
        output: Consumer,
        host_clock: Arc<HybridClock>,
    ) -> Self {
        Self {
            id,
            number,
            control,
            config,
            state: CachePadded::new(AtomicU8::new(encode_state(initial))),
            fault: Mutex::new(None),
            host: CachePadded::new(Mutex::new(HostSide {
                producer: input,
                consumer: output,
                pending: HashMap::default(),
                unclaimed: VecDeque::new(),
                sent: 0,
                refused: 0,
                received: 0,
                errors: 0,
                latency: Histogram::new_with_bounds(1, 3_600_000_000_000, 3).expect("valid histogram bounds"),
            })),
            drains: CachePadded::default(),
            output_signal: CachePadded::default(),
            input_signal: CachePadded::default(),
            thread: OnceLock::new(),
            host_clock,
            widened: Mutex::new(Widened::default()),
            unprocessed: Mutex::new(Vec::new()),
            returned: AtomicU64::new(0),
            output_blocked: AtomicBool::new(false),
            detached: AtomicBool::new(false),
        }
    }

    pub(crate) fn state(&self) -> KernelState {
        decode_state(self.state.load(Ordering::Acquire))
    }

    /// Sets the state. Callers that turn a kernel away from accepting input hold `host`.
    pub(crate) fn set_state(&self, state: KernelState) {
        self.state.store(encode_state(state), Ordering::Release);
    }

    pub(crate) fn fault_reason(&self) -> String {
        lock(&self.fault).clone().unwrap_or_else(|| "unknown fault".into())
    }

    pub(crate) fn wake_kernel(&self) {
        if let Some(thread) = self.thread.get() {
            thread.unpark();
        }
    }
}

fn encode_state(state: KernelState) -> u8 {
    match state {
        KernelState::Launched => 0,
        KernelState::Active => 1,
        KernelState::Deactivated => 2,
        KernelState::Terminating => 3,
        KernelState::Terminated => 4,
        KernelState::Failed => 5,
    }
}

fn decode_state(value: u8) -> KernelState {
    match value {
        0 => KernelState::Launched,
        1 => KernelState::Active,
        2 => KernelState::Deactivated,
        3 => KernelState::Terminating,
        4 => KernelState::Terminated,
        _ => KernelState::Failed,
    }
}
