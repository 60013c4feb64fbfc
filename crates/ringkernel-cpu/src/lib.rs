//! # ringkernel-cpu
//!
//! The CPU backend of RingKernel: every actor is an OS thread running the persistent loop over
//! the same control block, input and output rings and K2K inbox that GPU backends share with their
//! devices, here laid out in one heap region per kernel
//! ([`KernelMemory`]). It is always available and is the
//! reference semantics that the conformance suite holds every other backend to.
//!
//! This crate holds no send, call or receive logic of its own: the host half of every kernel is
//! `ringkernel-host`'s engine, and this crate supplies the actor thread and how to wake it.
//! [`DeviceModel::Polling`] runs the same actor as a GPU-like device — no wake-ups, no doorbell,
//! nothing shared with the host but the kernel's memory — so that the conformance suite proves that
//! a device which only polls memory plugs into the engine.
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
//! Waiting operations (`call`, `receive`, `send_timeout`, `deactivate`, `terminate`) spin briefly,
//! then wait on the Tokio timer when they run inside a Tokio runtime (which needs its timer
//! enabled, as `#[tokio::main]` does); under any other executor they block their thread in short
//! sleeps.

mod actor;
mod device;
mod directory;
mod halo;

pub use halo::CpuHaloExchange;

use std::sync::Arc;
use std::time::Duration;

use ringkernel_core::error::{Result, RingKernelError};
use ringkernel_core::handler::CpuHandler;
use ringkernel_core::hlc::{HlcConfig, HybridClock};
use ringkernel_core::memory::KernelMemory;
use ringkernel_core::message::SlotBuffer;
use ringkernel_core::runtime::Backend;
use ringkernel_core::spec::{KernelRegistry, KernelSpec};
use ringkernel_host::{Allocation, DeviceBackend, Doorbell, HostKernel, Launch, Runtime, StartDevice};

use actor::{Actor, ActorParts, Wakeups};
use device::ActorThread;
use directory::{Directory, Route};

/// How actor threads meet the host.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum DeviceModel {
    /// The host unparks an actor when it sends; the actor rings a doorbell when it replies, so
    /// neither side polls while idle. The default.
    #[default]
    Threads,
    /// A GPU-like device: the actor and the host share nothing but the kernel's memory — no
    /// unpark, no doorbell, no channel, no lock. The actor polls its control block and rings
    /// (sleeping briefly when idle); the host polls the output ring and the device line. Slower
    /// to wake; meant for tests that prove a polling device plugs into the engine.
    Polling,
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
    /// How actors meet the host.
    pub device_model: DeviceModel,
    /// If set, waits on a kernel fail once its heartbeat has not moved for this long (see
    /// [`HostConfig::watchdog`](ringkernel_host::HostConfig::watchdog)): a handler that runs longer than this makes the wait fail with
    /// `KernelFault`. Idle actors beat at least four times per limit (every 100 ms without a
    /// watchdog, every 20 µs at most often), so a quiet kernel never looks hung. Off by default:
    /// handlers may run long.
    pub watchdog: Option<Duration>,
    /// Whether received messages carry their `message_id` (one more cache line per message; see
    /// [`HostConfig::read_message_ids`](ringkernel_host::HostConfig::read_message_ids)). Off by default.
    pub read_message_ids: bool,
}

impl Default for CpuConfig {
    fn default() -> Self {
        Self {
            spin_before_park: Duration::from_micros(50),
            host_node_id: 0,
            max_clock_offset_ns: Some(HlcConfig::DEFAULT_MAX_OFFSET_NS),
            device_model: DeviceModel::Threads,
            watchdog: None,
            read_message_ids: false,
        }
    }
}

impl CpuConfig {
    /// The defaults with [`DeviceModel::Polling`].
    pub fn polling() -> Self {
        Self { device_model: DeviceModel::Polling, ..Self::default() }
    }
}

/// The CPU backend's runtime.
///
/// Dropping it without [`RingKernelRuntime::shutdown`](ringkernel_core::runtime::RingKernelRuntime::shutdown)
/// stops every kernel whose handles are all gone (each still handles what it had accepted);
/// kernels with live handles keep running until those handles terminate them or drop.
pub struct CpuRuntime {
    runtime: Runtime<Cpu>,
}

ringkernel_host::delegate_runtime!(CpuRuntime => runtime);

impl CpuRuntime {
    /// A runtime that launches the kernels of `registry`, with the default [`CpuConfig`].
    pub fn new(registry: KernelRegistry) -> Self {
        Self::with_config(registry, CpuConfig::default())
    }

    /// A runtime with explicit tuning.
    pub fn with_config(registry: KernelRegistry, config: CpuConfig) -> Self {
        let host = ringkernel_host::host_settings!(config);
        let polling = config.device_model == DeviceModel::Polling;
        Self { runtime: Runtime::new(Cpu { polling, directory: Arc::default() }, registry, host) }
    }

    /// Whether the CPU backend can run here: always.
    pub fn is_available() -> bool {
        true
    }

    /// The kernels this runtime can launch.
    pub fn registry(&self) -> &KernelRegistry {
        self.runtime.registry()
    }

    /// Launches `kernel_id` and hands back its host half itself rather than a
    /// [`KernelHandle`](ringkernel_core::runtime::KernelHandle): the engine's own methods, for
    /// `ringkernel-bench`'s `dispatch_report`, which compares a handle's call, a call through the
    /// `KernelControl` trait object and the engine's own.
    ///
    /// # Errors
    /// As [`RingKernelRuntime::launch`](ringkernel_core::runtime::RingKernelRuntime::launch).
    pub async fn launch_host_kernel(
        &self,
        kernel_id: &str,
        options: ringkernel_core::runtime::LaunchOptions,
    ) -> Result<Arc<HostKernel>> {
        self.runtime.launch_kernel(kernel_id, &options).await
    }
}

/// What the runtime skeleton runs CPU kernels with: an actor thread per kernel.
struct Cpu {
    polling: bool,
    directory: Arc<Directory>,
}

impl DeviceBackend for Cpu {
    type Program = Arc<CpuHandler>;
    type Start = StartActor;
    const HANDLER: &'static str = "cpu";

    fn kind(&self) -> Backend {
        Backend::Cpu
    }

    fn program(&self, spec: &KernelSpec) -> Option<Result<Arc<CpuHandler>>> {
        spec.cpu_handler().cloned().map(Ok)
    }

    fn allocate(&self, launch: Launch<'_, Arc<CpuHandler>>) -> Result<Allocation<StartActor>> {
        let Launch { id, number, program: handler, state, layout, host, .. } = launch;
        // Every allocation comes first, fallibly: memory the machine cannot hold is an error and
        // nothing has started.
        let memory = KernelMemory::allocate(layout, number, number)?;
        let scratch = SlotBuffer::new(layout.input().slot_bytes() as usize)?;
        let (host_ends, mut device_ends) = memory.split();
        let (sender, inbox) = device_ends.inbox.take().expect("launch layouts have an inbox");
        let doorbell = Arc::new(Doorbell::new());
        let thread = Arc::new(ActorThread::new(self.polling));
        let actor = Actor::new(ActorParts {
            id: id.clone(),
            number,
            ends: device_ends,
            inbox,
            directory: self.directory.clone(),
            clock: HybridClock::new(HlcConfig::new(number).with_max_offset_ns(host.max_clock_offset_ns)),
            wakeups: Wakeups {
                doorbell: (!self.polling).then(|| doorbell.clone()),
                thread: thread.clone(),
                spin_before_park: host.config.spin_before_park,
                heartbeat_period: ringkernel_host::heartbeat_period(host.config.watchdog),
            },
            state,
            handler,
            scratch,
        });
        let route = Route { id, number, sender, actor: thread.clone() };
        let start = StartActor { actor, thread: thread.clone(), route, directory: self.directory.clone() };
        Ok(Allocation { memory: host_ends, device: thread, doorbell, config: host.config.clone(), start })
    }
}

/// A CPU kernel's actor, made but not running: its thread starts, and it joins the K2K directory.
struct StartActor {
    actor: Actor,
    thread: Arc<ActorThread>,
    route: Route,
    directory: Arc<Directory>,
}

impl StartDevice for StartActor {
    fn start(self, _kernel: &Arc<HostKernel>) -> Result<()> {
        let StartActor { actor, thread, route, directory } = self;
        let handle = std::thread::Builder::new()
            .name(format!("rk-cpu-{}", route.id))
            .spawn(move || actor.run_reporting_panics())
            .map_err(|error| RingKernelError::KernelFault {
                kernel: route.id.to_string(),
                reason: format!("could not start its thread: {error}"),
            })?;
        thread.started(handle);
        directory.insert(route);
        Ok(())
    }
}
