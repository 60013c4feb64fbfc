//! The pump: the thread that is the device's agent. Woken by the host engine, it runs rounds
//! (see [`super::round`]) until no actor has work, without holding its lock while the GPU works,
//! and fails every running actor, with the reason, when the device, wgpu or the thread itself
//! fails.

use std::collections::{BTreeMap, HashMap};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use ringkernel_core::control::SharedControl;
use ringkernel_core::memory::KernelLayout;
use ringkernel_core::region::Region;
use ringkernel_core::wake::WakeFlag;
use ringkernel_host::Doorbell;

use super::abi::WgpuRoute;
use super::arena::Arena;
use super::gpu::{ErrorSlot, Gpu, Pipeline};
use super::{WgpuConfig, lock};

/// One running actor as the pump sees it.
pub(crate) struct Actor {
    /// Its kernel id.
    pub id: String,
    pub control: SharedControl,
    /// The kernel's memory on the host, as bytes (`KernelMemory::region`): the pump reads
    /// published input slots from it and writes replies and the inbox into it.
    pub region: Arc<dyn Region>,
    pub doorbell: Arc<Doorbell>,
    /// Index into [`PumpState::pipelines`].
    pub pipeline: usize,
    pub layout: KernelLayout,
    /// Byte offset of its block in the arena (its kernel memory first, then state, scratch, park).
    pub base: u64,
    pub block_bytes: u64,
    pub route_index: u32,
    pub route: WgpuRoute,
    pub state_bytes: u32,
    /// Its block as launched, until the pump uploads it (with its route).
    pub pending: Option<Vec<u8>>,
    /// Input slots uploaded so far (free-running).
    pub uploaded_tail: u32,
    /// The device's view after the last round.
    pub device_input_head: u32,
    pub device_output_tail: u32,
    pub control_ack: u32,
    /// K2K messages waiting in its inbox (as of the last round).
    pub inbox_waiting: u32,
    /// Outputs the device parked because the ring was full (as of the last round).
    pub parked: u32,
    /// Whether its handler can send K2K messages (`rk_send_to…`): while any such actor runs,
    /// every actor gets a dispatch of its own (a K2K message is read a dispatch later).
    pub sends_k2k: bool,
    pub shared: Arc<ActorShared>,
}

impl Actor {
    /// The start of the kernel's host region (its control block is at offset 0).
    pub(crate) fn host_base(&self) -> *mut u8 {
        self.region.as_ptr()
    }

    /// Byte offset of its scratch area in the arena.
    pub(crate) fn scratch_at(&self) -> u64 {
        self.base + self.layout.bytes() as u64 + u64::from(self.state_bytes).next_multiple_of(16)
    }
}

/// What the pump tells a kernel's host half beyond the control block.
#[derive(Default)]
pub(crate) struct ActorShared {
    pub fault: Mutex<Option<String>>,
}

/// Everything the pump and the launches share, behind one lock (never held while the GPU runs a
/// round).
pub(crate) struct PumpState {
    pub arena: Arena,
    /// The arena buffer ([`Arena::len`] may differ until the next round resizes it).
    pub buffer: wgpu::Buffer,
    /// The grown arena buffer a launch made (so that running out of device memory refuses that
    /// launch), until the pump copies the arena into it.
    pub next_buffer: Option<wgpu::Buffer>,
    pub params: wgpu::Buffer,
    /// Each built kernel's pipeline and its bind group over the current arena buffer.
    pub pipelines: Vec<(Arc<Pipeline>, wgpu::BindGroup)>,
    /// Pipeline index of each kernel name.
    pub built: HashMap<String, usize>,
    pub actors: BTreeMap<u64, Actor>,
    pub routes: Vec<bool>,
    /// Route entries to clear on the device before the next round (actors that ended).
    pub cleared_routes: Vec<u32>,
    pub next_actor: u64,
    /// Rounds submitted (the device starts each round's output count when it sees a new one).
    pub round: u32,
    pub lost: Option<String>,
    /// Staging and readback buffers, reused while large enough.
    pub upload: Option<wgpu::Buffer>,
    pub readback: Option<wgpu::Buffer>,
}

impl PumpState {
    /// One past the highest route entry in use.
    pub(crate) fn route_high_water(&self) -> u32 {
        self.routes.iter().rposition(|&used| used).map_or(0, |i| i as u32 + 1)
    }
}

/// A hook called with a kernel's name or id.
pub type NameHook<T> = Arc<dyn Fn(&str) -> T + Send + Sync>;

/// Test-only fault injection at the points the defects were found (hidden from the docs).
#[doc(hidden)]
#[derive(Clone, Default)]
pub struct Faults {
    /// Called on the launching thread right before a pipeline is built.
    pub before_pipeline_build: Option<NameHook<()>>,
    /// Output slots to add to what the device reports for a kernel id (a device bug).
    pub extra_outputs: Option<NameHook<u32>>,
    /// Called on the pump thread after a round was submitted (may panic).
    pub after_submit: Option<Arc<dyn Fn() + Send + Sync>>,
    /// When set, the next round records an invalid copy (a real wgpu validation error).
    pub gpu_error: Arc<AtomicBool>,
    /// Makes a launch fail after its memory and route were reserved, before it is running.
    pub fail_launch: Option<NameHook<bool>>,
}

impl std::fmt::Debug for Faults {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Faults").finish_non_exhaustive()
    }
}

pub(crate) struct Pump {
    pub gpu: Gpu,
    pub state: Mutex<PumpState>,
    /// Set by every `wake` (the host engine's, a launch's, wgpu's error callbacks, shutdown).
    wakeup: WakeFlag,
    pub shutdown: AtomicBool,
    pub config: WgpuConfig,
    pub max_clock_offset_ns: u64,
    /// Messages one dispatch handles in a loop (1: one message per dispatch).
    pub loop_budget: u32,
    /// Errors wgpu reported outside any call.
    pub errors: Arc<ErrorSlot>,
}

impl Pump {
    pub(crate) fn new(gpu: Gpu, state: PumpState, config: WgpuConfig, loop_budget: u32) -> Arc<Self> {
        let errors = Arc::new(ErrorSlot::default());
        let pump = Arc::new(Self {
            gpu,
            state: Mutex::new(state),
            wakeup: WakeFlag::new(),
            shutdown: AtomicBool::new(false),
            max_clock_offset_ns: config.max_clock_offset_ns.unwrap_or(0),
            config,
            loop_budget,
            errors,
        });
        // wgpu's default for an error outside an error scope is a panic on whichever thread made
        // the call; here it fails the kernels, with wgpu's message, at the end of the round.
        let (slot, weak) = (pump.errors.clone(), Arc::downgrade(&pump));
        pump.gpu.device.on_uncaptured_error(Arc::new(move |error| {
            slot.set(format!("wgpu reported an error: {error}"));
            if let Some(pump) = weak.upgrade() {
                pump.wake();
            }
        }));
        let (slot, weak) = (pump.errors.clone(), Arc::downgrade(&pump));
        pump.gpu.device.set_device_lost_callback(move |reason, message| {
            slot.set(format!("the wgpu device was lost ({reason:?}): {message}"));
            if let Some(pump) = weak.upgrade() {
                pump.wake();
            }
        });
        pump
    }

    pub(crate) fn wake(&self) {
        self.wakeup.wake();
    }

    /// The thread's body. A panic anywhere in it (not only in a round) fails every running actor
    /// with the panic's message and ends the thread (the runtime refuses launches after it).
    pub(crate) fn run(self: Arc<Self>) {
        if let Err(panic) = std::panic::catch_unwind(AssertUnwindSafe(|| self.serve())) {
            self.lose(format!("the wgpu pump thread panicked: {}", panic_message(&panic)));
        }
    }

    fn serve(&self) {
        loop {
            // Spin a while for the next wake-up (a caller's next message usually comes within
            // microseconds of its reply), then sleep.
            // (No end when the spin is longer than the clock can count.)
            let spin_until = Instant::now().checked_add(self.config.pump_spin);
            self.wakeup.wait(
                || spin_until.is_none_or(|until| Instant::now() < until),
                || self.shutdown.load(Ordering::Acquire),
            );
            if self.shutdown.load(Ordering::Acquire) {
                return;
            }
            // Rounds until no actor has work the device can do without the host.
            while !self.shutdown.load(Ordering::Acquire) {
                let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| self.cycle()));
                let failure = match outcome {
                    Ok(Ok(true)) => None,
                    Ok(Ok(false)) => break,
                    Ok(Err(reason)) => Some(reason),
                    Err(panic) => Some(format!("the wgpu pump thread panicked: {}", panic_message(&panic))),
                };
                // wgpu's own report first: it is the cause of what a later call then refused.
                let failure = match (failure, self.errors.take()) {
                    (Some(failure), Some(error)) => Some(format!("{error} (then: {failure})")),
                    (failure, error) => failure.or(error),
                };
                if let Some(reason) = failure {
                    self.lose(reason);
                    break;
                }
            }
            if let Some(reason) = self.errors.take() {
                self.lose(reason);
            }
        }
    }

    /// One round, its lock released while the GPU works. Returns whether another has work.
    fn cycle(&self) -> std::result::Result<bool, String> {
        let round = {
            let mut state = lock(&self.state);
            if state.lost.is_some() {
                return Ok(false);
            }
            match super::round::submit(self, &mut state)? {
                Some(round) => round,
                None => return Ok(false),
            }
        };
        if let Some(hook) = &self.config.faults.after_submit {
            hook();
        }
        let readback = super::round::wait(self, &round)?;
        if let Some(reason) = self.errors.take() {
            return Err(reason);
        }
        let mut state = lock(&self.state);
        super::round::publish(self, &mut state, round, &readback)
    }

    /// Every running actor fails with `reason`. Their K2K inboxes are copied back first where
    /// the device still answers (so that `take_unprocessed` returns what they never handled).
    pub(crate) fn lose(&self, reason: String) {
        let mut state = lock(&self.state);
        if state.lost.is_some() {
            return;
        }
        if !state.actors.is_empty() {
            tracing::error!("wgpu kernels stopped: {reason}");
        }
        // The device's view of each actor (its input head and K2K inbox), unless the GPU may
        // still be running a round (then nothing more is waited for).
        let rescued = if self.gpu.hung.load(Ordering::Acquire) {
            Err("the GPU did not finish its last round".to_string())
        } else {
            std::panic::catch_unwind(AssertUnwindSafe(|| super::round::rescue(self, &mut state)))
                .unwrap_or_else(|panic| Err(format!("the copy panicked: {}", panic_message(&panic))))
        };
        state.lost = Some(reason.clone());
        let (detail, heads) = match rescued {
            Ok(heads) => (reason, heads),
            Err(why) => (
                format!("{reason} (K2K messages waiting in its inbox could not be copied back: {why})"),
                HashMap::new(),
            ),
        };
        let actors = std::mem::take(&mut state.actors);
        for (key, actor) in actors {
            *lock(&actor.shared.fault) = Some(detail.clone());
            let block = actor.control.block();
            let input_head = heads.get(&key).copied().unwrap_or(actor.device_input_head);
            block.input_head.store(input_head, Ordering::Release);
            block.fail_for_device(ringkernel_core::error::codes::HANDLER_FAULT);
            actor.doorbell.ring();
        }
    }
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(text) = panic.downcast_ref::<&str>() {
        (*text).to_string()
    } else if let Some(text) = panic.downcast_ref::<String>() {
        text.clone()
    } else {
        "(no message)".into()
    }
}
