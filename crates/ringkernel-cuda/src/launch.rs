//! Launching an actor: its memory (pinned rings and control block for the host engine; state,
//! inbox and scratch in device memory), its host half, and its hand-over to an idle pool block.
//! Nothing here waits for the block: `wait_started` awaits its first heartbeat afterwards.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use ringkernel_core::error::{Result, RingKernelError};
use ringkernel_core::memory::KernelMemory;
use ringkernel_core::runtime::{KernelControl, KernelId, LaunchOptions};
use ringkernel_host::{Doorbell, HostConfig, HostKernel, KernelParts};

use crate::actor::{ActorShared, CudaActor};
use crate::driver::DeviceBuffer;
use crate::layout::{RkArgs, fnv1a, name_words, words};
use crate::monitor::Track;
use crate::runtime::{Inner, unavailable};

/// Gives a claimed pool slot back unless the launch got as far as handing it to its block.
struct SlotClaim<'a> {
    inner: &'a Inner,
    slot: usize,
    reusable: Arc<AtomicBool>,
    kept: bool,
}

impl Drop for SlotClaim<'_> {
    fn drop(&mut self) {
        if !self.kept {
            self.inner.watch.pool.release(self.slot);
            self.reusable.store(true, Ordering::Release);
        }
    }
}

impl Inner {
    /// Prepares kernel `id` and hands it to an idle pool block. Everything fallible happens
    /// before the hand-over; a failure gives back what it took.
    pub(crate) fn start(&self, id: KernelId, options: &LaunchOptions) -> Result<Arc<HostKernel>> {
        options.validate()?;
        if let Some(error) = self.context.poisoned() {
            return Err(unavailable(format!("this runtime's GPU context was lost ({error}); create a new runtime")));
        }
        let threads = self.watch.pool.threads();
        if options.block_size != threads {
            return Err(RingKernelError::InvalidConfig {
                field: "block_size",
                reason: format!(
                    "the cuda backend's actor pool runs blocks of {threads} threads (CudaConfig::block_size), got {}",
                    options.block_size
                ),
            });
        }
        let spec = self.registry.resolve(&id)?;
        let kind = match self.kinds.get(spec.name()) {
            Some(Ok(kind)) => *kind,
            Some(Err(error)) => return Err(clone_error(error)),
            None => {
                return Err(RingKernelError::InvalidConfig {
                    field: "kernel",
                    reason: format!("`{}` has no cuda handler; give it one with KernelSpec::cuda", spec.name()),
                });
            }
        };
        let state = spec.launch_state(options.initial_state.as_deref())?;
        let layout = options.kernel_layout()?;
        let inbox_layout = layout.inbox().ok_or_else(|| RingKernelError::InvalidConfig {
            field: "inbox_capacity",
            reason: "the cuda backend needs a K2K inbox".into(),
        })?;
        let number = self.kernels.take_number()?;

        // Host memory: the control block, rings and the inbox's mirror, carved by the one layout.
        let reusable = Arc::new(AtomicBool::new(false));
        let region = self.context.pinned(layout.bytes(), reusable.clone())?;
        let base = region.device_address(0);
        let memory = match KernelMemory::carve(region, layout, number, number) {
            Ok(memory) => memory,
            Err(error) => {
                reusable.store(true, Ordering::Release);
                return Err(error);
            }
        };
        let (host_ends, device_ends) = memory.split();
        drop(device_ends);
        let control = host_ends.control.clone();
        let inbox_mirror = (control.block() as *const _ as *mut u8).wrapping_add(layout.inbox_offset());
        let Some(slot) = self.watch.pool.claim() else {
            reusable.store(true, Ordering::Release);
            return Err(RingKernelError::InvalidConfig {
                field: "kernel",
                reason: format!(
                    "all {} actor slots of the pool are in use ({} actors run or are ending); terminate one, or \
                     start the runtime with more CudaConfig::actor_slots",
                    self.watch.pool.capacity(),
                    self.watch.running()
                ),
            });
        };
        let mut claim = SlotClaim { inner: self, slot, reusable: reusable.clone(), kept: false };

        // Device memory: state, inbox (a copy of the carved one), one message of scratch.
        let scratch_bytes = (layout.input().slot_bytes() as usize).max(inbox_layout.geometry().slot_bytes() as usize);
        let allocate = || -> std::result::Result<_, crate::driver::DriverError> {
            let state_buffer = DeviceBuffer::zeroed(&self.admin, state.bytes().len().max(16))?;
            state_buffer.upload(state.bytes())?;
            let inbox = DeviceBuffer::zeroed(&self.admin, inbox_layout.stride())?;
            // SAFETY: the mirror is `stride()` bytes of the carved region, alive (held by the host
            // ends) until the copy below has been waited for.
            let mirror = unsafe { std::slice::from_raw_parts(inbox_mirror.cast_const(), inbox_layout.stride()) };
            inbox.upload(mirror)?;
            let scratch = DeviceBuffer::zeroed(&self.admin, scratch_bytes)?;
            self.admin.synchronize("preparing the actor's memory")?;
            Ok((state_buffer, inbox, scratch))
        };
        let (state_buffer, inbox, scratch) = allocate().map_err(|error| {
            tracing::warn!(%error, "device memory for an actor");
            RingKernelError::AllocationFailed {
                what: "an actor's state, inbox and scratch on the GPU",
                bytes: state.bytes().len() + inbox_layout.stride() + scratch_bytes,
            }
        })?;

        let shared = Arc::new(ActorShared::default());
        let actor = Arc::new(CudaActor { id: id.to_string(), context: self.context.clone(), shared: shared.clone() });
        let kernel = HostKernel::new(KernelParts {
            id: id.clone(),
            number,
            memory: host_ends,
            device: actor,
            doorbell: Arc::new(Doorbell::new()),
            clock: self.host_clock.clone(),
            config: HostConfig {
                spin_before_park: self.config.spin_before_park,
                watchdog: self.config.watchdog,
                read_message_ids: self.config.read_message_ids,
                // The bus warp reads a slot in the same round trip as the tail, and publishes
                // replies without a system-scope fence.
                input_slot_checks: true,
                output_slot_checks: true,
                ..HostConfig::default()
            },
            auto_activate: options.auto_activate,
        })?;

        let name = id.as_str().as_bytes();
        let heartbeat = self.config.watchdog.map_or(Duration::from_millis(100), |limit| {
            (limit / 4).clamp(Duration::from_micros(20), Duration::from_millis(100))
        });
        let args = RkArgs {
            control: words(base),
            input: words(base + layout.input_offset() as u64),
            output: words(base + layout.output_offset() as u64),
            state: words(state_buffer.address()),
            inbox: words(inbox.address()),
            routes: words(self.watch.routes.address()),
            scratch: words(scratch.address()),
            clock_offset_ns: words(self.clock_offset_ns as u64),
            max_offset_ns: words(self.config.max_clock_offset_ns.unwrap_or(0)),
            heartbeat_ns: words(heartbeat.as_nanos() as u64),
            state_bytes: state.bytes().len() as u32,
            route_index: slot as u32,
            number,
            name_hash: fnv1a(name),
            name_len: name.len() as u32,
            kind,
            name: name_words(name),
        };
        self.watch.tracks.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(Track {
            id,
            slot,
            state: state_buffer,
            scratch,
            inbox,
            inbox_mirror,
            shared,
            reusable,
            control,
        });
        claim.kept = true;
        self.watch.pool.assign(slot, &args);
        Ok(kernel)
    }

    /// Waits (without blocking a thread) until the kernel's block has picked it up: its first
    /// heartbeat.
    pub(crate) async fn wait_started(&self, kernel: &HostKernel) -> Result<()> {
        match kernel.wait_until_running(self.config.start_timeout).await {
            Err(RingKernelError::Timeout { .. }) => {
                kernel.request_terminate();
                Err(RingKernelError::KernelFault {
                    kernel: kernel.id().to_string(),
                    reason: format!("its pool block did not pick it up within {:?}", self.config.start_timeout),
                })
            }
            other => other,
        }
    }
}

/// A cached compile error, handed to each launch of that kernel.
fn clone_error(error: &RingKernelError) -> RingKernelError {
    match error {
        RingKernelError::Compile { kernel, log } => {
            RingKernelError::Compile { kernel: kernel.clone(), log: log.clone() }
        }
        other => RingKernelError::BackendUnavailable(other.to_string()),
    }
}
