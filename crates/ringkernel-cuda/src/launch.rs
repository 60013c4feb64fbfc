//! The CUDA backend under the runtime skeleton ([`DeviceBackend`]): an actor's memory (pinned
//! rings and control block for the host engine; state, inbox and scratch in device memory), and
//! its hand-over to an idle pool block once the host half exists. Nothing here waits for the
//! block: [`DeviceBackend::started`] awaits its first heartbeat afterwards.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use ringkernel_core::error::{Result, RingKernelError};
use ringkernel_core::memory::KernelMemory;
use ringkernel_core::runtime::{Backend, KernelControl, LaunchOptions};
use ringkernel_core::spec::KernelSpec;
use ringkernel_host::{Allocation, DeviceBackend, Doorbell, HostKernel, Launch, StartDevice};

use crate::actor::{ActorShared, CudaActor};
use crate::driver::DeviceBuffer;
use crate::layout::{RkArgs, fnv1a, name_words, words};
use crate::monitor::{Track, Watch};
use crate::runtime::Cuda;

/// An actor ready for its pool block. Dropped unstarted, it gives its claimed slot and its
/// pinned region back (its device memory goes with its track).
pub(crate) struct StartBlock {
    watch: Arc<Watch>,
    slot: usize,
    reusable: Arc<AtomicBool>,
    args: RkArgs,
    track: Option<Track>,
}

impl Drop for StartBlock {
    fn drop(&mut self) {
        if self.track.is_some() {
            self.watch.pool.release(self.slot);
            self.reusable.store(true, Ordering::Release);
        }
    }
}

impl StartDevice for StartBlock {
    fn start(mut self, _kernel: &Arc<HostKernel>) -> Result<()> {
        let track = self.track.take().expect("a block starts once");
        ringkernel_host::lock(&self.watch.tracks).push(track);
        self.watch.pool.assign(self.slot, &self.args);
        Ok(())
    }
}

impl DeviceBackend for Cuda {
    type Program = u32;
    type Start = StartBlock;
    const HANDLER: &'static str = "cuda";

    fn kind(&self) -> Backend {
        Backend::Cuda
    }

    fn lost(&self) -> Option<String> {
        self.context.poisoned().map(|error| format!("its GPU context was lost: {error}"))
    }

    fn check_options(&self, options: &LaunchOptions) -> Result<()> {
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
        Ok(())
    }

    /// The kernel's handler index in the pool module, or its compile error.
    fn program(&self, spec: &KernelSpec) -> Option<Result<u32>> {
        self.kinds.get(spec.name()).map(|kind| kind.as_ref().copied().map_err(clone_error))
    }

    /// Prepares the kernel's memory and claims an idle pool block. Everything fallible happens
    /// here; a failure (or a launch failing later) gives back what it took.
    fn allocate(&self, launch: Launch<'_, u32>) -> Result<Allocation<StartBlock>> {
        let Launch { id, number, program: kind, state, layout, inbox: inbox_layout, host, .. } = launch;
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
            return Err(RingKernelError::CapacityExhausted {
                kernel: id.to_string(),
                what: "actor slots of the pool (actors running or ending)",
                limit: self.watch.pool.capacity() as u64,
                advice: "terminate one, or start the runtime with more CudaConfig::actor_slots",
            });
        };

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
        let buffers = allocate().map_err(|error| {
            tracing::warn!(%error, "device memory for an actor");
            RingKernelError::AllocationFailed {
                what: "an actor's state, inbox and scratch on the GPU",
                bytes: state.bytes().len() + inbox_layout.stride() + scratch_bytes,
            }
        });
        let (state_buffer, inbox, scratch) = match buffers {
            Ok(buffers) => buffers,
            Err(error) => {
                self.watch.pool.release(slot);
                reusable.store(true, Ordering::Release);
                return Err(error);
            }
        };

        let shared = Arc::new(ActorShared::default());
        let device = Arc::new(CudaActor { id: id.to_string(), context: self.context.clone(), shared: shared.clone() });
        let name = id.as_str().as_bytes();
        let heartbeat = ringkernel_host::heartbeat_period(host.config.watchdog);
        let args = RkArgs {
            control: words(base),
            input: words(base + layout.input_offset() as u64),
            output: words(base + layout.output_offset() as u64),
            state: words(state_buffer.address()),
            inbox: words(inbox.address()),
            routes: words(self.watch.routes.address()),
            scratch: words(scratch.address()),
            clock_offset_ns: words(self.clock_offset_ns as u64),
            max_offset_ns: words(host.max_clock_offset_ns.unwrap_or(0)),
            heartbeat_ns: words(heartbeat.as_nanos() as u64),
            state_bytes: state.bytes().len() as u32,
            route_index: slot as u32,
            number,
            name_hash: fnv1a(name),
            name_len: name.len() as u32,
            kind,
            name: name_words(name),
        };
        let track = Track {
            id,
            slot,
            state: state_buffer,
            scratch,
            inbox,
            inbox_mirror,
            shared,
            reusable: reusable.clone(),
            control,
        };
        let start = StartBlock { watch: self.watch.clone(), slot, reusable, args, track: Some(track) };
        // The device rings no doorbell: waiters poll.
        Ok(Allocation {
            memory: host_ends,
            device,
            doorbell: Arc::new(Doorbell::new()),
            config: host.config.clone(),
            start,
        })
    }

    /// Waits (without blocking a thread) until the kernel's block has picked it up: its first
    /// heartbeat.
    async fn started(&self, kernel: &Arc<HostKernel>) -> Result<()> {
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
