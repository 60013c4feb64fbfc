//! # ringkernel-cpu
//!
//! The CPU backend of RingKernel: every actor is an OS thread running the persistent loop over
//! the same [`ControlBlock`], input and output rings and
//! K2K inboxes that GPU backends share with their devices, here in heap memory. It is always
//! available and is the reference semantics that the conformance suite holds every other
//! backend to.
//!
//! ```
//! use std::time::Duration;
//! use ringkernel_core::kernel::{KernelRegistry, builtin};
//! use ringkernel_core::message::Envelope;
//! use ringkernel_core::runtime::{LaunchOptions, RingKernelRuntime};
//! use ringkernel_cpu::CpuRuntime;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> ringkernel_core::Result<()> {
//! let runtime = CpuRuntime::new(KernelRegistry::with_builtins());
//! let counter = runtime.launch(builtin::COUNTER, LaunchOptions::default().with_auto_activate(true)).await?;
//! let reply = counter.call(Envelope::new(builtin::COUNTER_ADD, 5u64.to_le_bytes()), Duration::from_secs(1)).await?;
//! assert_eq!(reply.payload, 5u64.to_le_bytes());
//! runtime.shutdown().await?;
//! # Ok(())
//! # }
//! ```
//!
//! Waiting operations (`call`, `receive`, `send_timeout`, `terminate`) spin briefly, then wait on
//! the Tokio timer when they run inside a Tokio runtime (which needs its timer enabled, as
//! `#[tokio::main]` does); under any other executor they block their thread in short sleeps.

mod directory;
mod host;
mod kernel;
mod shared;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use ringkernel_core::control::{ControlConfig, RingSide, SharedControl};
use ringkernel_core::error::{Result, RingKernelError};
use ringkernel_core::hlc::{HlcConfig, HybridClock};
use ringkernel_core::kernel::KernelRegistry;
use ringkernel_core::layout::{ControlBlock, RingGeometry};
use ringkernel_core::queue::mpsc;
use ringkernel_core::queue::spsc::Ring;
use ringkernel_core::region::{HeapRegion, Region};
use ringkernel_core::runtime::{
    Backend, KernelControl, KernelHandle, KernelId, KernelState, LaunchOptions, RingKernelRuntime, RuntimeMetrics,
};

pub use shared::CpuConfig;

use directory::{Directory, Route};
use host::CpuKernel;
use shared::{Shared, lock};

/// The CPU backend's runtime.
///
/// Dropping it without [`RingKernelRuntime::shutdown`] stops every kernel whose handles are all
/// gone (each still handles what it had accepted); kernels with live handles keep running until
/// those handles terminate them or drop.
pub struct CpuRuntime {
    registry: KernelRegistry,
    config: CpuConfig,
    kernels: Mutex<BTreeMap<KernelId, Arc<CpuKernel>>>,
    directory: Arc<Directory>,
    host_clock: Arc<HybridClock>,
    next_number: AtomicU32,
    launched: AtomicU64,
}

impl CpuRuntime {
    /// A runtime that launches the kernels of `registry`, with the default [`CpuConfig`].
    pub fn new(registry: KernelRegistry) -> Self {
        Self::with_config(registry, CpuConfig::default())
    }

    /// A runtime with explicit tuning.
    pub fn with_config(registry: KernelRegistry, config: CpuConfig) -> Self {
        let host_clock =
            HybridClock::new(HlcConfig::new(config.host_node_id).with_max_offset_ns(config.max_clock_offset_ns));
        Self {
            registry,
            config,
            kernels: Mutex::new(BTreeMap::new()),
            directory: Arc::default(),
            host_clock: Arc::new(host_clock),
            next_number: AtomicU32::new(1),
            launched: AtomicU64::new(0),
        }
    }

    /// Whether the CPU backend can run here: always.
    pub fn is_available() -> bool {
        true
    }

    /// The kernels this runtime can launch.
    pub fn registry(&self) -> &KernelRegistry {
        &self.registry
    }

    fn start(&self, id: KernelId, options: &LaunchOptions) -> Result<Arc<CpuKernel>> {
        options.validate()?;
        let spec = self.registry.resolve(&id)?;
        let handler = spec.cpu_handler().cloned().ok_or_else(|| RingKernelError::InvalidConfig {
            field: "kernel",
            reason: format!("`{}` has no cpu handler; give it one with KernelSpec::cpu", spec.name()),
        })?;
        let state = spec.launch_state(options.initial_state.as_deref())?;
        let (input, output) = (options.input_geometry()?, options.output_geometry()?);
        let number = self.next_number.fetch_add(1, Ordering::Relaxed);
        if number == ringkernel_core::message::HOST_KERNEL_ID {
            return Err(RingKernelError::InvalidConfig {
                field: "kernel",
                reason: "this runtime has used every kernel number; create a new runtime".into(),
            });
        }

        // One region laid out as a device mapping would be: control block, input slots, output slots.
        let control_bytes = size_of::<ControlBlock>();
        let input_offset = control_bytes;
        let output_offset = input_offset + input.bytes();
        let region: Arc<dyn Region> = Arc::new(HeapRegion::zeroed(output_offset + output.bytes(), 64)?);
        let config = ControlConfig { input, output, kernel_id: number, node_id: number };
        // SAFETY: fresh memory, used only through the control block, the two rings attached
        // below (one each, at disjoint offsets) and no device code.
        let (control, (input_producer, input_consumer), (output_producer, output_consumer)) = unsafe {
            let control = SharedControl::init_in_region(region.clone(), 0, config)?;
            let input_ring = Ring::attach(control.clone(), RingSide::Input, region.clone(), input_offset)?;
            let output_ring = Ring::attach(control.clone(), RingSide::Output, region, output_offset)?;
            (control, input_ring.split(), output_ring.split())
        };
        let inbox_geometry = RingGeometry::new(options.input_capacity.max(2), input.slot_bytes())?;
        let (inbox_sender, inbox_receiver) = mpsc::channel(inbox_geometry)?;

        let initial = if options.auto_activate { KernelState::Active } else { KernelState::Launched };
        if options.auto_activate {
            control.activate();
        }
        let shared = Arc::new(Shared::new(
            id.clone(),
            number,
            control,
            self.config.clone(),
            initial,
            input_producer,
            output_consumer,
            self.host_clock.clone(),
        ));
        let clock = HybridClock::new(HlcConfig::new(number).with_max_offset_ns(self.config.max_clock_offset_ns));
        let io = kernel::Io::new(shared.clone(), output_producer, self.directory.clone(), clock);
        let actor = kernel::Actor::new(input_consumer, inbox_receiver, io, state, handler);
        let thread =
            std::thread::Builder::new().name(format!("rk-cpu-{id}")).spawn(move || actor.run()).map_err(|error| {
                RingKernelError::KernelFault {
                    kernel: id.to_string(),
                    reason: format!("could not start its thread: {error}"),
                }
            })?;
        shared.thread.set(thread.thread().clone()).expect("set once, here");
        self.directory.insert(Route { id, number, sender: inbox_sender, thread: thread.thread().clone() });
        Ok(Arc::new(CpuKernel { shared, thread: Mutex::new(Some(thread)) }))
    }
}

#[async_trait]
impl RingKernelRuntime for CpuRuntime {
    fn backend(&self) -> Backend {
        Backend::Cpu
    }

    fn is_backend_available(&self, backend: Backend) -> bool {
        matches!(backend, Backend::Cpu | Backend::Auto)
    }

    async fn launch(&self, kernel_id: &str, options: LaunchOptions) -> Result<KernelHandle> {
        let id = KernelId::from(kernel_id);
        let mut kernels = lock(&self.kernels);
        if let Some(existing) = kernels.get(&id)
            && !existing.shared.state().is_final()
        {
            return Err(RingKernelError::InvalidConfig {
                field: "kernel_id",
                reason: format!(
                    "`{id}` is already running; terminate it first, or launch another instance as `{}#2`",
                    id.spec_name()
                ),
            });
        }
        let kernel = self.start(id.clone(), &options)?;
        kernels.insert(id, kernel.clone());
        self.launched.fetch_add(1, Ordering::Relaxed);
        Ok(KernelHandle::new(kernel))
    }

    fn get_kernel(&self, kernel_id: &KernelId) -> Option<KernelHandle> {
        lock(&self.kernels).get(kernel_id).map(|kernel| KernelHandle::new(kernel.clone() as Arc<dyn KernelControl>))
    }

    fn list_kernels(&self) -> Vec<KernelId> {
        lock(&self.kernels).keys().cloned().collect()
    }

    fn metrics(&self) -> RuntimeMetrics {
        let kernels: Vec<Arc<CpuKernel>> = lock(&self.kernels).values().cloned().collect();
        let mut totals =
            RuntimeMetrics { kernels_launched: self.launched.load(Ordering::Relaxed), ..Default::default() };
        for kernel in kernels {
            let metrics = kernel.metrics();
            totals.kernels_active += u64::from(kernel.state() == KernelState::Active);
            totals.messages_sent += metrics.messages_sent;
            totals.messages_processed += metrics.messages_processed;
            totals.messages_rejected += metrics.messages_rejected;
            totals.errors += metrics.errors;
        }
        totals
    }

    async fn shutdown(&self) -> Result<()> {
        let kernels: Vec<Arc<CpuKernel>> = lock(&self.kernels).values().cloned().collect();
        // Ask every kernel first so that they drain in parallel, then wait for each.
        for kernel in &kernels {
            kernel.request_terminate();
        }
        for kernel in kernels {
            kernel.terminate().await?;
        }
        Ok(())
    }
}
