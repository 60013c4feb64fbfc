//! [`Runtime`]: what every backend does to launch, find, list, account for and shut down its
//! kernels, written once over a small [`DeviceBackend`] trait — the way wgpu-core is written once
//! over `hal::Api`. A backend supplies only what differs: which handler of a
//! [`KernelSpec`] it runs, how to allocate a kernel's memory and prepare its device half, and how
//! to start that half once the host half exists.
//!
//! A launch runs the same steps on every backend, with the same errors:
//!
//! 1. the options are checked ([`LaunchOptions::validate`], then the backend's own rules);
//! 2. the kernel's spec is resolved, and the backend's program for it taken (a spec without one is
//!    an error naming the kernel and the `KernelSpec` method that gives it one) — outside the
//!    kernel table's lock, since a driver may compile for seconds;
//! 3. under the table's lock (two launches of one id cannot both start): the launch state, the
//!    memory layout, a kernel number; the backend allocates ([`DeviceBackend::allocate`]); the
//!    host half is made ([`HostKernel::new`], which announces `auto_activate` before the device
//!    runs); the backend starts the device half ([`StartDevice::start`]);
//! 4. outside the lock, the backend may wait for its device to pick the kernel up
//!    ([`DeviceBackend::started`]).
//!
//! A failure in steps 1–3 gives back what the earlier steps took (an unstarted
//! [`DeviceBackend::Start`] releases its memory when it drops) and leaves the kernel's id free. A
//! device that does not pick the kernel up in step 4 fails the launch: the kernel, asked to
//! terminate, stays listed (holding its id) until its device reports the stop, which gives its
//! device part back.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use ringkernel_core::error::{Result, RingKernelError};
use ringkernel_core::hlc::{HlcConfig, HybridClock};
use ringkernel_core::layout::K2KInboxLayout;
use ringkernel_core::memory::{HostEnds, KernelLayout};
use ringkernel_core::runtime::{Backend, KernelHandle, KernelId, LaunchOptions, RingKernelRuntime, RuntimeMetrics};
use ringkernel_core::spec::{KernelRegistry, KernelSpec, StateBuffer};

use crate::{Device, Doorbell, HostConfig, HostKernel, KernelParts, KernelTable};

/// Longest heartbeat period of an idle device, and the period without a watchdog.
pub const HEARTBEAT_PERIOD: Duration = Duration::from_millis(100);
/// Shortest heartbeat period of an idle device (a very short watchdog).
pub const MIN_HEARTBEAT_PERIOD: Duration = Duration::from_micros(20);

/// How often an idle device beats: four times per watchdog limit at least, so that a quiet
/// kernel never looks hung to [`HostConfig::watchdog`]; every [`HEARTBEAT_PERIOD`] without one,
/// never more often than every [`MIN_HEARTBEAT_PERIOD`]. Every backend's devices follow it.
pub fn heartbeat_period(watchdog: Option<Duration>) -> Duration {
    watchdog.map_or(HEARTBEAT_PERIOD, |limit| (limit / 4).clamp(MIN_HEARTBEAT_PERIOD, HEARTBEAT_PERIOD))
}

/// The error of a launch refused because its runtime lost its device (`reason`): what the skeleton
/// returns before a launch, and what a backend returns when it finds the loss later in the same
/// launch.
pub fn lost_device(kernel: &KernelId, reason: &str) -> RingKernelError {
    RingKernelError::BackendUnavailable(format!(
        "cannot launch `{kernel}`: this runtime lost its device ({reason}); create a new runtime"
    ))
}

/// The host's settings of a runtime: the engine's tuning of every kernel and the host clock's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostSettings {
    /// The engine's tuning, given to every kernel's host half.
    pub config: HostConfig,
    /// Node id of the host's hybrid clock (kernels use their kernel number).
    pub node_id: u32,
    /// Largest accepted clock offset of a received timestamp (`None`: any).
    pub max_clock_offset_ns: Option<u64>,
}

/// The [`HostSettings`] of a backend's config, which names the settings the engine and the host
/// clock take as every backend's config does (`spin_before_park`, `watchdog`,
/// `read_message_ids`, `host_node_id`, `max_clock_offset_ns`); more [`HostConfig`] fields may
/// follow as `field: value`.
///
/// ```ignore
/// let host = ringkernel_host::host_settings!(config, input_slot_checks: true);
/// ```
#[macro_export]
macro_rules! host_settings {
    ($config:expr $(, $field:ident: $value:expr)* $(,)?) => {{
        let config = &$config;
        $crate::HostSettings {
            config: $crate::HostConfig {
                spin_before_park: config.spin_before_park,
                watchdog: config.watchdog,
                read_message_ids: config.read_message_ids,
                $($field: $value,)*
                ..$crate::HostConfig::default()
            },
            node_id: config.host_node_id,
            max_clock_offset_ns: config.max_clock_offset_ns,
        }
    }};
}

/// One launch, as the backend's [`DeviceBackend::allocate`] gets it: everything the skeleton
/// resolved and checked.
pub struct Launch<'a, P> {
    /// The kernel's id (`name` or `name#instance`).
    pub id: KernelId,
    /// Its number in message headers (never reused by this runtime).
    pub number: u32,
    /// Its spec.
    pub spec: &'a KernelSpec,
    /// The backend's program for it ([`DeviceBackend::program`]).
    pub program: P,
    /// Its initial state (the spec's, or the launch options' override).
    pub state: StateBuffer,
    /// Where its control block, rings and inbox lie in its memory.
    pub layout: KernelLayout,
    /// Its K2K inbox (every launch has one).
    pub inbox: K2KInboxLayout,
    /// The launch options.
    pub options: &'a LaunchOptions,
    /// The runtime's host settings.
    pub host: &'a HostSettings,
}

/// What a backend's allocation hands the skeleton: the host's ends of the kernel's memory, the
/// device half's face towards the engine, and the start of the device half.
pub struct Allocation<S> {
    /// The host's ends of the kernel's memory.
    pub memory: HostEnds,
    /// What the engine calls to wake and sync the device.
    pub device: Arc<dyn Device>,
    /// The doorbell the device rings (a fresh one when it rings none).
    pub doorbell: Arc<Doorbell>,
    /// The engine's tuning for this kernel (the runtime's, or adjusted by the backend).
    pub config: HostConfig,
    /// Starts the device half once the host half exists.
    pub start: S,
}

/// The device half of a kernel, allocated but not running. Dropping it unstarted gives back
/// what the allocation took.
pub trait StartDevice: Send {
    /// Starts the device half of `kernel` (spawns its thread, hands it to a pool block, commits
    /// it to the next round).
    ///
    /// # Errors
    /// What stops the device from starting; the launch fails with it, and the host half is
    /// dropped.
    fn start(self, kernel: &Arc<HostKernel>) -> Result<()>;
}

/// A backend under the [`Runtime`] skeleton: what differs between CPU, CUDA and wgpu.
pub trait DeviceBackend: Send + Sync + 'static {
    /// What this backend runs a kernel with (a CPU handler, a handler index in a compiled module,
    /// a pipeline).
    type Program: Send;
    /// A kernel's device half, allocated but not started.
    type Start: StartDevice;

    /// The handler a [`KernelSpec`] needs for this backend, named as its `KernelSpec` method
    /// (`"cpu"`, `"cuda"`, `"wgsl"`).
    const HANDLER: &'static str;

    /// Which backend this is (what [`RingKernelRuntime::backend`] reports).
    fn kind(&self) -> Backend;

    /// Whether this runtime serves `backend` ([`RingKernelRuntime::is_backend_available`]).
    /// Default: its own kind and `Auto`, while it has not [`lost`](DeviceBackend::lost) its
    /// device.
    fn serves(&self, backend: Backend) -> bool {
        (backend == self.kind() || backend == Backend::Auto) && self.lost().is_none()
    }

    /// Why this runtime launches nothing any more (its device was lost), if it does not. A launch
    /// is then refused with [`RingKernelError::BackendUnavailable`] naming the kernel and this
    /// reason. Default: never.
    fn lost(&self) -> Option<String> {
        None
    }

    /// The backend's own rules on launch options, beyond [`LaunchOptions::validate`].
    ///
    /// # Errors
    /// [`RingKernelError::InvalidConfig`] naming the option.
    fn check_options(&self, options: &LaunchOptions) -> Result<()> {
        let _ = options;
        Ok(())
    }

    /// The program of `spec`: `None` when it has no handler for this backend; an error when it
    /// has one that cannot run (it does not compile). Called outside the kernel table's lock.
    fn program(&self, spec: &KernelSpec) -> Option<Result<Self::Program>>;

    /// Allocates the kernel's memory and prepares its device half; nothing runs on the device yet.
    /// Called under the kernel table's lock.
    ///
    /// # Errors
    /// What the kernel cannot get (memory, a pool slot, a route); nothing is kept.
    fn allocate(&self, launch: Launch<'_, Self::Program>) -> Result<Allocation<Self::Start>>;

    /// Waits until the device half runs, after the table's lock is released (the CUDA backend
    /// waits for a pool block to pick the kernel up). Default: it runs once started.
    fn started(&self, kernel: &Arc<HostKernel>) -> impl Future<Output = Result<()>> + Send {
        let _ = kernel;
        std::future::ready(Ok(()))
    }
}

/// A runtime: a registry of kernels, a table of launched ones, the host clock, over one backend.
/// Implements [`RingKernelRuntime`]; a backend's public runtime wraps it and forwards with
/// [`delegate_runtime!`](crate::delegate_runtime).
pub struct Runtime<B: DeviceBackend> {
    backend: B,
    registry: KernelRegistry,
    kernels: KernelTable,
    clock: Arc<HybridClock>,
    host: HostSettings,
}

impl<B: DeviceBackend> Runtime<B> {
    /// A runtime over `backend` that launches the kernels of `registry`.
    pub fn new(backend: B, registry: KernelRegistry, host: HostSettings) -> Self {
        let clock = HybridClock::new(HlcConfig::new(host.node_id).with_max_offset_ns(host.max_clock_offset_ns));
        Self { backend, registry, kernels: KernelTable::new(), clock: Arc::new(clock), host }
    }

    /// The backend.
    pub fn backend(&self) -> &B {
        &self.backend
    }

    /// The backend, to change before the runtime is shared.
    pub fn backend_mut(&mut self) -> &mut B {
        &mut self.backend
    }

    /// The kernels this runtime can launch.
    pub fn registry(&self) -> &KernelRegistry {
        &self.registry
    }

    /// The host's clock, shared by every kernel of this runtime.
    pub fn clock(&self) -> &Arc<HybridClock> {
        &self.clock
    }

    /// The host settings.
    pub fn host(&self) -> &HostSettings {
        &self.host
    }

    /// The launched kernels.
    pub fn kernels(&self) -> &KernelTable {
        &self.kernels
    }

    /// Launches `kernel_id` and returns its host half itself (for backend authors and
    /// benchmarks; [`RingKernelRuntime::launch`] wraps it in a [`KernelHandle`]).
    ///
    /// # Errors
    /// [`RingKernelError::InvalidConfig`] for bad options or an id in use,
    /// [`RingKernelError::BackendUnavailable`] once the runtime lost its device,
    /// [`RingKernelError::KernelNotFound`], an `InvalidConfig` naming the kernel when its spec has
    /// no handler for this backend, and whatever the backend's allocation and start return.
    pub async fn launch_kernel(&self, kernel_id: &str, options: &LaunchOptions) -> Result<Arc<HostKernel>> {
        options.validate()?;
        self.backend.check_options(options)?;
        let requested = KernelId::from(kernel_id);
        if let Some(reason) = self.backend.lost() {
            return Err(lost_device(&requested, &reason));
        }
        let spec = self.registry.resolve(&requested)?;
        let program = self.backend.program(spec).unwrap_or_else(|| {
            Err(RingKernelError::InvalidConfig {
                field: "kernel",
                reason: format!(
                    "`{}` has no {handler} handler; give it one with KernelSpec::{handler}",
                    spec.name(),
                    handler = B::HANDLER
                ),
            })
        })?;
        let kernel = self.kernels.launch_kernel(kernel_id, |id| {
            let state = spec.launch_state(options.initial_state.as_deref())?;
            let layout = options.kernel_layout()?;
            let inbox = layout.inbox().ok_or_else(|| RingKernelError::InvalidConfig {
                field: "inbox_capacity",
                reason: format!("`{id}` needs a K2K inbox"),
            })?;
            let number = self.kernels.take_number(&id)?;
            let launch =
                Launch { id: id.clone(), number, spec, program, state, layout, inbox, options, host: &self.host };
            let Allocation { memory, device, doorbell, config, start } = self.backend.allocate(launch)?;
            let kernel = HostKernel::new(KernelParts {
                id,
                number,
                memory,
                device,
                doorbell,
                clock: self.clock.clone(),
                config,
                auto_activate: options.auto_activate,
            })?;
            start.start(&kernel)?;
            Ok(kernel)
        })?;
        self.backend.started(&kernel).await?;
        Ok(kernel)
    }
}

#[async_trait]
impl<B: DeviceBackend> RingKernelRuntime for Runtime<B> {
    fn backend(&self) -> Backend {
        self.backend.kind()
    }

    fn is_backend_available(&self, backend: Backend) -> bool {
        self.backend.serves(backend)
    }

    async fn launch(&self, kernel_id: &str, options: LaunchOptions) -> Result<KernelHandle> {
        self.launch_kernel(kernel_id, &options).await.map(KernelHandle::engine)
    }

    fn get_kernel(&self, kernel_id: &KernelId) -> Option<KernelHandle> {
        self.kernels.get(kernel_id)
    }

    fn list_kernels(&self) -> Vec<KernelId> {
        self.kernels.ids()
    }

    fn metrics(&self) -> RuntimeMetrics {
        self.kernels.metrics()
    }

    async fn shutdown(&self) -> Result<()> {
        self.kernels.shutdown().await
    }
}

/// Implements [`RingKernelRuntime`] for a backend's public runtime type by forwarding every
/// method to one of its fields (a [`Runtime`], or another runtime that implements it): the
/// forwarding is written here once, not per backend.
///
/// ```ignore
/// pub struct CpuRuntime { runtime: Runtime<Cpu> }
/// ringkernel_host::delegate_runtime!(CpuRuntime => runtime);
/// ```
#[macro_export]
macro_rules! delegate_runtime {
    ($runtime:ty => $field:ident) => {
        #[$crate::__private::async_trait]
        impl $crate::__private::RingKernelRuntime for $runtime {
            fn backend(&self) -> $crate::__private::Backend {
                $crate::__private::RingKernelRuntime::backend(&self.$field)
            }

            fn is_backend_available(&self, backend: $crate::__private::Backend) -> bool {
                $crate::__private::RingKernelRuntime::is_backend_available(&self.$field, backend)
            }

            async fn launch(
                &self,
                kernel_id: &str,
                options: $crate::__private::LaunchOptions,
            ) -> $crate::__private::Result<$crate::__private::KernelHandle> {
                $crate::__private::RingKernelRuntime::launch(&self.$field, kernel_id, options).await
            }

            fn get_kernel(&self, kernel_id: &$crate::__private::KernelId) -> Option<$crate::__private::KernelHandle> {
                $crate::__private::RingKernelRuntime::get_kernel(&self.$field, kernel_id)
            }

            fn list_kernels(&self) -> Vec<$crate::__private::KernelId> {
                $crate::__private::RingKernelRuntime::list_kernels(&self.$field)
            }

            fn metrics(&self) -> $crate::__private::RuntimeMetrics {
                $crate::__private::RingKernelRuntime::metrics(&self.$field)
            }

            async fn shutdown(&self) -> $crate::__private::Result<()> {
                $crate::__private::RingKernelRuntime::shutdown(&self.$field).await
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heartbeats_come_four_times_per_watchdog_limit_within_bounds() {
        assert_eq!(heartbeat_period(None), HEARTBEAT_PERIOD);
        assert_eq!(heartbeat_period(Some(Duration::from_millis(200))), Duration::from_millis(50));
        assert_eq!(heartbeat_period(Some(Duration::from_secs(60))), HEARTBEAT_PERIOD);
        assert_eq!(heartbeat_period(Some(Duration::from_micros(1))), MIN_HEARTBEAT_PERIOD);
        assert_eq!(heartbeat_period(Some(Duration::ZERO)), MIN_HEARTBEAT_PERIOD);
    }
}
