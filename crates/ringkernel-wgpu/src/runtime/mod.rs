//! [`WgpuRuntime`]: one wgpu device, one arena buffer holding every actor's memory (growing as
//! actors launch, shrinking as they end), and a pump thread that turns the host engine's
//! wake-ups into batched dispatches.
//!
//! The host engine owns each kernel's memory in host RAM (the same layout as every backend). The
//! pump is the device's agent. Each job has its module:
//!
//! - [`abi`]: what Rust and WGSL share (params, the host line, route entries), declared once;
//! - [`arena`]: where each actor's block lives in the arena, and how long the arena must be;
//! - [`gpu`]: the instance, the device, pipelines, buffer mapping with a deadline;
//! - [`pump`]: the thread, its state, and failing every actor when the device or the thread fails;
//! - [`round`]: one round: uploads, dispatches, readback, publishing in the protocol's order.
//!
//! With unified memory (an adapter whose storage buffers the host can map: integrated GPUs, Apple
//! Silicon, lavapipe) the arena itself is mapped to read a round's results: no readback copy.

pub(crate) mod abi;
mod arena;
mod gpu;
mod pump;
mod round;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ringkernel_core::error::{Result, RingKernelError};
use ringkernel_core::hlc::HlcConfig;
use ringkernel_core::kernel::{KernelRegistry, KernelSpec};
use ringkernel_core::layout::MESSAGE_HEADER_BYTES;
use ringkernel_core::memory::KernelMemory;
use ringkernel_core::runtime::Backend;
pub(crate) use ringkernel_host::lock;
use ringkernel_host::{Allocation, Device, DeviceBackend, Doorbell, HostKernel, Launch, Runtime, StartDevice};

use crate::compile::{self, fnv1a};
use abi::WgpuRoute;
use arena::{ARENA_ALIGN, Arena};
use gpu::{Gpu, PARAMS_ALIGN, PARAMS_BYTES};
pub use pump::Faults;
use pump::{Actor, ActorShared, Pump, PumpState};

pub(crate) use gpu::instance;

/// Whether the rings live in memory both sides map.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UnifiedMemory {
    /// Mapped when the adapter can map storage buffers cheaply (integrated GPU, CPU device,
    /// Apple Silicon); staged otherwise.
    #[default]
    Auto,
    /// Always staged: results come back through a readback buffer.
    Off,
    /// Mapped, or `new` fails with `BackendUnavailable` naming what the adapter lacks.
    Require,
}

/// How a dispatch handles an actor's messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DispatchLoop {
    /// By the adapter: one message per dispatch on drivers that bound the iterations of a loop
    /// nest (Mesa's llvmpipe/lavapipe cuts every nest at 65 535, so a loop around the handler
    /// would let one message's loops starve the next one's); a loop elsewhere.
    #[default]
    Auto,
    /// One dispatch per message: per actor and round, as many dispatches as it has known work
    /// (input, waiting K2K messages, parked outputs), at most `messages_per_dispatch`.
    OnePerDispatch,
    /// One dispatch per actor per round that loops over up to `messages_per_dispatch` messages.
    Loop,
}

/// Settings of a [`WgpuRuntime`].
#[derive(Debug, Clone)]
pub struct WgpuConfig {
    /// Which wgpu backends may provide the adapter.
    pub backends: wgpu::Backends,
    /// Adapter preference.
    pub power_preference: wgpu::PowerPreference,
    /// Unified memory or staging.
    pub unified_memory: UnifiedMemory,
    /// Initial bytes of the arena buffer that holds the route table and every actor's rings,
    /// inbox, state and scratch. The arena doubles as actors launch, up to the adapter's largest
    /// storage binding and buffer (or [`WgpuConfig::arena_limit`]), and shrinks back as they end.
    /// At least 64 KiB and more than the route table (64 bytes per [`WgpuConfig::max_actors`]);
    /// rounded up to the arena's alignment.
    pub arena_bytes: u64,
    /// The most bytes the arena may grow to; `None`: the adapter's largest storage binding and
    /// buffer. At least [`WgpuConfig::arena_bytes`] and at most that adapter limit.
    pub arena_limit: Option<u64>,
    /// Actors that may run at once (route table entries).
    pub max_actors: u32,
    /// Messages an actor handles at most per round (bounded work, so that no GPU watchdog fires).
    pub messages_per_dispatch: u32,
    /// Output slots read back per actor after a round: an actor takes no new message in a round
    /// once it wrote this many (a message in hand still writes into the ring while it has room;
    /// the pump then copies the rest back too).
    pub outputs_per_dispatch: u32,
    /// Outputs (replies, emits, error reports) one message may park when the output ring is full:
    /// the device finishes the message, keeps them in device memory and moves them into the ring
    /// once the host made room, before it starts another message. One more is refused with
    /// `OUTPUT_FULL` (the handler sees the error; it is counted), never dropped silently.
    pub outputs_per_message: u32,
    /// Loop or one message per dispatch.
    pub dispatch_loop: DispatchLoop,
    /// How long one round may take on the GPU. Past it every actor fails with a reason naming this
    /// setting (a handler that loops without end), instead of hanging its callers. A duration past
    /// what the clock can count (`Duration::MAX`) means no limit: then a handler that never ends
    /// hangs its callers, and dropping the runtime waits for it.
    pub round_timeout: Duration,
    /// The host clock's node id.
    pub host_node_id: u32,
    /// Largest clock lead of a sender that devices accept.
    pub max_clock_offset_ns: Option<u64>,
    /// How long a waiting host spins before it sleeps on the doorbell (a round trip through
    /// the GPU takes tens of microseconds at least, so the default spins past one).
    pub spin_before_park: Duration,
    /// How long the pump thread spins for the next wake-up after its last round before it
    /// sleeps (a caller's next message often follows its reply within microseconds).
    /// `Duration::MAX`: it never sleeps (one CPU core kept busy).
    pub pump_spin: Duration,
    /// The host engine's watchdog. Off by default: an idle actor is not dispatched, so its
    /// heartbeat moves only while it has work.
    pub watchdog: Option<Duration>,
    /// Whether received messages carry their `message_id`.
    pub read_message_ids: bool,
    /// Fault injection for the crate's tests.
    #[doc(hidden)]
    pub faults: Faults,
}

impl Default for WgpuConfig {
    fn default() -> Self {
        Self {
            backends: wgpu::Backends::VULKAN | wgpu::Backends::METAL | wgpu::Backends::DX12,
            power_preference: wgpu::PowerPreference::HighPerformance,
            unified_memory: UnifiedMemory::Auto,
            arena_bytes: 32 << 20,
            arena_limit: None,
            max_actors: 1024,
            messages_per_dispatch: 128,
            outputs_per_dispatch: 256,
            outputs_per_message: 4,
            dispatch_loop: DispatchLoop::Auto,
            round_timeout: Duration::from_secs(30),
            host_node_id: 0,
            max_clock_offset_ns: Some(HlcConfig::DEFAULT_MAX_OFFSET_NS),
            spin_before_park: Duration::from_micros(250),
            pump_spin: Duration::from_micros(100),
            watchdog: None,
            read_message_ids: false,
            faults: Faults::default(),
        }
    }
}

/// What the runtime's adapter is.
#[derive(Debug, Clone)]
pub struct AdapterSummary {
    /// Adapter name.
    pub name: String,
    /// wgpu backend (Vulkan, Metal, Dx12).
    pub backend: wgpu::Backend,
    /// Integrated, discrete, CPU…
    pub device_type: wgpu::DeviceType,
    /// Driver name and version.
    pub driver: String,
    /// Whether the rings are mapped (unified memory) rather than staged.
    pub unified_memory: bool,
}

/// How much of its device memory a runtime uses ([`WgpuRuntime::memory`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArenaUsage {
    /// Bytes the arena holds now (the launched actors' blocks included).
    pub arena_bytes: u64,
    /// Bytes of the arena's buffer on the device: it follows `arena_bytes` at the pump's next
    /// round (grown before a new actor's first round, shrunk once actors ended).
    pub buffer_bytes: u64,
    /// Bytes in actors' blocks and the route table.
    pub used_bytes: u64,
    /// The most bytes the arena may grow to.
    pub limit_bytes: u64,
    /// Actors running (launched and not yet stopped).
    pub actors: usize,
    /// Messages one dispatch handles in a loop (1: one message per dispatch).
    pub loop_budget: u32,
}

/// Bytes of one route table entry.
pub(crate) const ROUTE_BYTES: u64 = size_of::<WgpuRoute>() as u64;
/// `RK_SCRATCH_RESERVED` words of `actor.wgsl`.
const SCRATCH_RESERVED_BYTES: u64 = 176 * 4;
/// Scratch bytes an actor needs beyond the reserved words for its largest outgoing payload
/// besides its rings' slots: an error report (its header and a reason of up to 256 bytes).
const ERROR_REPORT_SCRATCH: u64 = 24 + 256;

/// The device side of one kernel: the pump does its work.
struct WgpuActor {
    pump: Arc<Pump>,
    shared: Arc<ActorShared>,
}

// SAFETY: the pump stores `has_terminated` for a kernel only after the dispatch that stopped it
// completed, its inbox was copied back into the host region and its `input_head` was published;
// it removes the actor in the same step and never touches its memory again. K2K senders are
// other dispatches, which find no route to it from the dispatch on that stopped it (the pump
// clears the route on the device before the next round too). A failing runtime (lost device,
// wgpu error, a panic on the pump thread, dropped) copies the inboxes back where the device still
// answers, publishes the last `input_head` and stores `RK_FAILED` with nothing more to come.
unsafe impl Device for WgpuActor {
    fn wake(&self) {
        self.pump.wake();
    }

    fn rings_doorbell(&self) -> bool {
        true
    }

    fn fault_detail(&self) -> Option<String> {
        lock(&self.shared.fault).clone()
    }
}

/// The wgpu backend's runtime: event-driven actors on one adapter (Vulkan, Metal or DX12).
///
/// Every kernel with a WGSL handler ([`KernelSpec::wgsl`](ringkernel_core::kernel::KernelSpec::wgsl))
/// is compiled when the runtime starts (a WGSL error is [`RingKernelError::Compile`] with naga's
/// message and the line in the handler); launching a kernel without one is an error naming it.
/// Its pipeline is built at the kernel's first launch, on the launching thread: running actors
/// go on meanwhile.
pub struct WgpuRuntime {
    runtime: Runtime<Wgpu>,
}

ringkernel_host::delegate_runtime!(WgpuRuntime => runtime);

/// The wgpu backend under the runtime skeleton: the device's agent (the pump) and every WGSL
/// kernel's module.
struct Wgpu {
    /// What the runtime reports as its backend: `Wgpu`, or `Metal` under a `MetalRuntime`.
    kind: Backend,
    /// Every WGSL kernel's validated module.
    modules: HashMap<String, compile::Assembled>,
    pump: Arc<Pump>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    adapter: AdapterSummary,
    limits: wgpu::Limits,
}

/// Whether the adapter's driver bounds loop nests (Mesa's llvmpipe).
fn bounds_loops(info: &wgpu::AdapterInfo) -> bool {
    let text = format!("{} {} {}", info.name, info.driver, info.driver_info).to_ascii_lowercase();
    text.contains("llvmpipe") || text.contains("lavapipe")
}

impl WgpuRuntime {
    /// A runtime on the best adapter of Vulkan, Metal or DX12, with the default [`WgpuConfig`].
    ///
    /// # Errors
    /// [`RingKernelError::BackendUnavailable`] when no adapter is there; [`RingKernelError::Compile`]
    /// when a registered WGSL handler does not compile.
    pub async fn new(registry: KernelRegistry) -> Result<Self> {
        Self::with_config(registry, WgpuConfig::default()).await
    }

    /// Whether an adapter of the default backends is present (looks, creates nothing lasting).
    pub fn is_available() -> bool {
        Self::probe(wgpu::Backends::VULKAN | wgpu::Backends::METAL | wgpu::Backends::DX12).is_ok()
    }

    /// The adapter the given backends would give, or why there is none.
    ///
    /// # Errors
    /// [`RingKernelError::BackendUnavailable`] with the reason.
    pub fn probe(backends: wgpu::Backends) -> Result<AdapterSummary> {
        let instance = instance(backends);
        let adapter = pollster::block_on(instance.request_adapter(&wgpu::RequestAdapterOptions::default()))
            .map_err(|e| RingKernelError::BackendUnavailable(format!("no wgpu adapter for {backends:?}: {e}")))?;
        Ok(summary(&adapter, false))
    }

    /// A runtime with explicit settings.
    ///
    /// # Errors
    /// As [`WgpuRuntime::new`]; [`RingKernelError::InvalidConfig`] naming the field for settings
    /// the adapter cannot meet or that mean nothing: zero budgets, a zero `round_timeout`, an
    /// `arena_bytes` under 64 KiB or over the adapter's largest storage binding, an `arena_limit`
    /// outside `arena_bytes..=` that binding, more `max_actors` than a binding holds the route
    /// table or the dispatch parameters of.
    /// A launch whose block no arena can hold is refused when it launches (naming
    /// `outputs_per_message` when the park is most of it).
    pub async fn with_config(registry: KernelRegistry, config: WgpuConfig) -> Result<Self> {
        for (field, value) in [
            ("max_actors", config.max_actors),
            ("messages_per_dispatch", config.messages_per_dispatch),
            ("outputs_per_dispatch", config.outputs_per_dispatch),
            ("outputs_per_message", config.outputs_per_message),
        ] {
            if value == 0 {
                return Err(RingKernelError::InvalidConfig { field, reason: "must be at least 1".into() });
            }
        }
        if config.round_timeout.is_zero() {
            return Err(RingKernelError::InvalidConfig {
                field: "round_timeout",
                reason: "must be longer than zero".into(),
            });
        }
        let instance = instance(config.backends);
        let adapter = instance
            .request_adapter(&wgpu::RequestAdapterOptions {
                power_preference: config.power_preference,
                ..Default::default()
            })
            .await
            .map_err(|e| {
                RingKernelError::BackendUnavailable(format!("no wgpu adapter for {:?}: {e}", config.backends))
            })?;
        let info = adapter.get_info();
        let mappable = adapter.features().contains(wgpu::Features::MAPPABLE_PRIMARY_BUFFERS);
        let uma = matches!(info.device_type, wgpu::DeviceType::IntegratedGpu | wgpu::DeviceType::Cpu);
        let unified = match config.unified_memory {
            UnifiedMemory::Off => false,
            UnifiedMemory::Auto => mappable && uma,
            UnifiedMemory::Require if mappable => true,
            UnifiedMemory::Require => {
                return Err(RingKernelError::BackendUnavailable(format!(
                    "adapter `{}` cannot map storage buffers (no MAPPABLE_PRIMARY_BUFFERS): unified memory is not available",
                    info.name
                )));
            }
        };
        let limits = adapter.limits();
        let max_binding = limits.max_storage_buffer_binding_size.min(limits.max_buffer_size);
        // Word offsets in the shader are u32: 16 GiB at most.
        let max_binding = max_binding.min(1 << 34) / ARENA_ALIGN * ARENA_ALIGN;
        let route_bytes = ROUTE_BYTES * u64::from(config.max_actors);
        // (u64::MAX, "as large as it gets", is refused below by name rather than overflowing here.)
        let arena_bytes = config.arena_bytes.checked_next_multiple_of(ARENA_ALIGN).unwrap_or(u64::MAX);
        let config = WgpuConfig { arena_bytes, ..config };
        let reserved = route_bytes.next_multiple_of(ARENA_ALIGN);
        // Each actor has a route entry in the arena and a dispatch's params in the params buffer.
        let params_buffer = params_buffer_bytes(config.max_actors);
        let params_binding = params_binding_bytes(config.max_actors);
        if reserved + ARENA_ALIGN > max_binding
            || params_buffer > limits.max_buffer_size
            || params_binding > limits.max_storage_buffer_binding_size
        {
            return Err(RingKernelError::InvalidConfig {
                field: "max_actors",
                reason: format!(
                    "{}: the route table ({route_bytes} bytes) or the dispatch parameters ({params_buffer} bytes, \
                     {params_binding} bound) of that many actors do not fit the adapter's largest storage binding \
                     ({} bytes) or buffer ({} bytes)",
                    config.max_actors, limits.max_storage_buffer_binding_size, limits.max_buffer_size
                ),
            });
        }
        if config.arena_bytes > max_binding || config.arena_bytes < (1 << 16).max(reserved + ARENA_ALIGN) {
            return Err(RingKernelError::InvalidConfig {
                field: "arena_bytes",
                reason: format!(
                    "{} bytes: must hold the route table of {} actors ({reserved} bytes) and be at least 64 KiB and at \
                     most the adapter's largest storage binding, {max_binding} bytes",
                    config.arena_bytes, config.max_actors
                ),
            });
        }
        let limit = match config.arena_limit {
            None => max_binding,
            Some(limit) if limit >= config.arena_bytes && limit <= max_binding => limit,
            Some(limit) => {
                return Err(RingKernelError::InvalidConfig {
                    field: "arena_limit",
                    reason: format!(
                        "{limit} bytes: must lie between arena_bytes ({}) and the adapter's largest storage binding, \
                         {max_binding} bytes",
                        config.arena_bytes
                    ),
                });
            }
        };
        let features = if unified { wgpu::Features::MAPPABLE_PRIMARY_BUFFERS } else { wgpu::Features::empty() };
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("ringkernel"),
                required_features: features,
                required_limits: limits.clone(),
                ..Default::default()
            })
            .await
            .map_err(|e| {
                RingKernelError::BackendUnavailable(format!("adapter `{}` refused a device: {e}", info.name))
            })?;

        // Compile every WGSL handler now (naga first, for typed errors with the user's lines).
        let mut modules = HashMap::new();
        for spec in registry.specs() {
            if let Some(source) = spec.wgsl_source() {
                let module = compile::actor_module(spec.name(), source)?;
                module.validate()?;
                modules.insert(spec.name().to_string(), module);
            }
        }
        let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
        let bind_group_layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("rk actor"),
            entries: &[
                storage_entry(0, false),
                wgpu::BindGroupLayoutEntry {
                    binding: 1,
                    visibility: wgpu::ShaderStages::COMPUTE,
                    ty: wgpu::BindingType::Buffer {
                        ty: wgpu::BufferBindingType::Storage { read_only: true },
                        has_dynamic_offset: true,
                        min_binding_size: std::num::NonZeroU64::new(PARAMS_BYTES),
                    },
                    count: None,
                },
                storage_entry(2, true),
                storage_entry(3, true),
            ],
        });
        let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("rk actor"),
            bind_group_layouts: &[Some(&bind_group_layout)],
            ..Default::default()
        });
        let crc_table = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("rk crc32c table"),
            size: 1024,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        queue.write_buffer(&crc_table, 0, bytemuck::cast_slice(&gpu::crc32c_table()));
        let gpu = Gpu {
            device,
            queue,
            bind_group_layout,
            pipeline_layout,
            unified,
            round_timeout: config.round_timeout,
            crc_table,
            hung: std::sync::atomic::AtomicBool::new(false),
        };
        let buffer = round::new_arena_buffer(&gpu, config.arena_bytes);
        let params = gpu.buffer("rk params", params_buffer_bytes(config.max_actors), wgpu::BufferUsages::STORAGE);
        if let Some(error) = scope.pop().await {
            return Err(RingKernelError::BackendUnavailable(format!(
                "the adapter refused the runtime's buffers or layouts: {error}"
            )));
        }
        let summary = summary(&adapter, unified);
        let loop_budget = match config.dispatch_loop {
            DispatchLoop::OnePerDispatch => 1,
            DispatchLoop::Loop => config.messages_per_dispatch,
            DispatchLoop::Auto if bounds_loops(&info) => 1,
            DispatchLoop::Auto => config.messages_per_dispatch,
        };
        let state = PumpState {
            arena: Arena::new(reserved, config.arena_bytes, limit),
            buffer,
            next_buffer: None,
            params,
            pipelines: Vec::new(),
            built: HashMap::new(),
            actors: BTreeMap::new(),
            routes: vec![false; config.max_actors as usize],
            cleared_routes: Vec::new(),
            next_actor: 0,
            round: 0,
            lost: None,
            upload: None,
            readback: None,
        };
        let pump = Pump::new(gpu, state, config.clone(), loop_budget);
        let runner = pump.clone();
        let thread = std::thread::Builder::new()
            .name("rk-wgpu-pump".into())
            .spawn(move || runner.run())
            .map_err(|e| RingKernelError::BackendUnavailable(format!("could not start the wgpu pump thread: {e}")))?;
        let host = ringkernel_host::host_settings!(config);
        let wgpu =
            Wgpu { kind: Backend::Wgpu, modules, pump, thread: Mutex::new(Some(thread)), adapter: summary, limits };
        Ok(Self { runtime: Runtime::new(wgpu, registry, host) })
    }

    fn wgpu(&self) -> &Wgpu {
        self.runtime.backend()
    }

    /// This runtime, reporting itself as the Metal backend: `backend()` is `Metal`, and it serves
    /// `Metal` and `Auto` only on a Metal adapter. What `ringkernel_metal::MetalRuntime` runs on;
    /// not meant for other use.
    #[doc(hidden)]
    pub fn serving_as_metal(mut self) -> Self {
        self.runtime.backend_mut().kind = Backend::Metal;
        self
    }

    /// The adapter this runtime runs on.
    pub fn adapter(&self) -> &AdapterSummary {
        &self.wgpu().adapter
    }

    /// The adapter's limits as the device was created with.
    pub fn limits(&self) -> &wgpu::Limits {
        &self.wgpu().limits
    }

    /// The kernels this runtime can launch.
    pub fn registry(&self) -> &KernelRegistry {
        self.runtime.registry()
    }

    /// How much device memory the actors use, and how far the arena may grow.
    pub fn memory(&self) -> ArenaUsage {
        let pump = &self.wgpu().pump;
        let state = lock(&pump.state);
        ArenaUsage {
            arena_bytes: state.arena.len(),
            buffer_bytes: state.buffer.size(),
            used_bytes: state.arena.used(),
            limit_bytes: state.arena.limit(),
            actors: state.actors.len(),
            loop_budget: pump.loop_budget,
        }
    }
}

impl Wgpu {
    /// The pipeline of kernel `name`, built on this thread the first time (without the pump's
    /// lock: a driver's shader compiler can take seconds, lavapipe's LLVM does).
    fn pipeline(&self, name: &str, module: &compile::Assembled) -> Result<usize> {
        if let Some(&index) = lock(&self.pump.state).built.get(name) {
            return Ok(index);
        }
        if let Some(hook) = &self.pump.config.faults.before_pipeline_build {
            hook(name);
        }
        let pipeline = Arc::new(self.pump.gpu.build_pipeline(module)?);
        let mut state = lock(&self.pump.state);
        if let Some(&index) = state.built.get(name) {
            return Ok(index); // another launch built it meanwhile
        }
        let bind_group = self.pump.gpu.bind_group(
            &pipeline,
            &state.buffer,
            &state.params,
            params_binding_bytes(self.pump.config.max_actors),
        );
        state.pipelines.push((pipeline, bind_group));
        let index = state.pipelines.len() - 1;
        state.built.insert(name.to_string(), index);
        Ok(index)
    }
}

/// A kernel's place on the device (its route entry and arena block), given back unless the
/// actor was committed.
struct Reservation {
    pump: Arc<Pump>,
    route_index: u32,
    base: u64,
    block_bytes: u64,
    kept: bool,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if !self.kept {
            let mut state = lock(&self.pump.state);
            state.arena.release(self.base, self.block_bytes);
            state.routes[self.route_index as usize] = false;
        }
    }
}

/// An actor ready for the pump: committed, its memory is uploaded in the pump's next round.
struct CommitActor {
    reservation: Reservation,
    actor: Actor,
}

impl StartDevice for CommitActor {
    fn start(self, _kernel: &Arc<HostKernel>) -> Result<()> {
        let CommitActor { mut reservation, actor } = self;
        let pump = reservation.pump.clone();
        let mut state = lock(&pump.state);
        if let Some(reason) = state.lost.clone() {
            drop(state);
            return Err(ringkernel_host::lost_device(&actor.id.as_str().into(), &reason));
        }
        let key = state.next_actor;
        state.next_actor += 1;
        state.actors.insert(key, actor);
        reservation.kept = true;
        drop(state);
        pump.wake();
        Ok(())
    }
}

impl DeviceBackend for Wgpu {
    /// The kernel's pipeline, by index.
    type Program = usize;
    type Start = CommitActor;
    const HANDLER: &'static str = "wgsl";

    fn kind(&self) -> Backend {
        self.kind
    }

    fn serves(&self, backend: Backend) -> bool {
        let metal = self.adapter.backend == wgpu::Backend::Metal;
        if self.lost().is_some() {
            return false;
        }
        match backend {
            Backend::Auto => self.kind == Backend::Wgpu || metal,
            Backend::Wgpu => self.kind == Backend::Wgpu,
            Backend::Metal => metal,
            _ => false,
        }
    }

    fn lost(&self) -> Option<String> {
        lock(&self.pump.state).lost.clone()
    }

    /// The kernel's pipeline, built on the launching thread the first time (outside the kernel
    /// table's lock: a driver may take seconds).
    fn program(&self, spec: &KernelSpec) -> Option<Result<usize>> {
        self.modules.get(spec.name()).map(|module| self.pipeline(spec.name(), module))
    }

    fn allocate(&self, launch: Launch<'_, usize>) -> Result<Allocation<CommitActor>> {
        let Launch { id, number, spec, program: pipeline, state, layout, inbox, host, .. } = launch;
        let config = &self.pump.config;
        let state_bytes = state.bytes().len() as u64;
        let payloads = [
            u64::from(layout.output().slot_bytes()) - MESSAGE_HEADER_BYTES as u64,
            u64::from(inbox.geometry().slot_bytes()) - MESSAGE_HEADER_BYTES as u64,
            ERROR_REPORT_SCRATCH,
        ];
        let scratch_bytes = SCRATCH_RESERVED_BYTES + payloads.iter().max().copied().unwrap_or(0).next_multiple_of(16);
        let park_bytes = u64::from(config.outputs_per_message) * u64::from(layout.output().slot_bytes());
        let block_bytes = layout.bytes() as u64 + state_bytes.next_multiple_of(16) + scratch_bytes + park_bytes;
        // What no arena of this adapter can hold is refused before any memory is touched.
        let limit = lock(&self.pump.state).arena.limit();
        if block_bytes > limit && park_bytes > block_bytes - park_bytes {
            return Err(RingKernelError::InvalidConfig {
                field: "outputs_per_message",
                reason: format!(
                    "`{id}` would need {block_bytes} bytes of GPU memory, {park_bytes} of them to park {} outputs of \
                     {} bytes per message, more than the arena may hold ({limit} bytes): lower \
                     WgpuConfig::outputs_per_message",
                    config.outputs_per_message,
                    layout.output().slot_bytes()
                ),
            });
        }
        if block_bytes > limit {
            return Err(RingKernelError::AllocationFailed {
                what: "an actor's block in the wgpu arena (larger than the adapter's largest storage binding or \
                       WgpuConfig::arena_limit: use smaller queues or payloads)",
                bytes: usize::try_from(block_bytes).unwrap_or(usize::MAX),
            });
        }
        let memory = KernelMemory::allocate(layout, number, number)?;
        let region = memory.region();
        let (host_ends, device_ends) = memory.split();
        drop(device_ends);
        let control = host_ends.control.clone();
        let doorbell = Arc::new(Doorbell::new());
        let shared = Arc::new(ActorShared::default());
        // Reserve a route and the block; nothing reaches the device until the actor is
        // committed below (the pump uploads it in its next round).
        let (route_index, base) = {
            let mut state = lock(&self.pump.state);
            if let Some(reason) = &state.lost {
                return Err(ringkernel_host::lost_device(&id, reason));
            }
            let route_index =
                state.routes.iter().position(|used| !used).ok_or_else(|| RingKernelError::CapacityExhausted {
                    kernel: id.to_string(),
                    what: "route entries of this runtime (one per running actor)",
                    limit: state.routes.len() as u64,
                    advice: "terminate an actor, or raise WgpuConfig::max_actors",
                })? as u32;
            let base = state.arena.alloc(block_bytes).map_err(|refused| RingKernelError::InvalidConfig {
                field: "arena_limit",
                reason: format!(
                    "`{id}` needs {} bytes of GPU memory for its rings, inbox, state and scratch; the arena holds {} \
                     bytes in use and may grow to {} bytes (the adapter's largest storage binding, or \
                     WgpuConfig::arena_limit): use smaller queues or fewer actors",
                    refused.bytes, refused.used, refused.limit
                ),
            })?;
            // A grown arena: make its buffer now, so that a device out of memory refuses this
            // launch (the pump copies the arena into it before its next round).
            let len = state.arena.len();
            if len > state.buffer.size() && state.next_buffer.as_ref().map(wgpu::Buffer::size) != Some(len) {
                let scope = self.pump.gpu.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
                let buffer = round::new_arena_buffer(&self.pump.gpu, len);
                if let Some(error) = pollster::block_on(scope.pop()) {
                    tracing::warn!("growing the wgpu arena to {len} bytes for `{id}` failed: {error}");
                    state.arena.release(base, block_bytes);
                    return Err(RingKernelError::AllocationFailed {
                        what: "a grown wgpu arena (the device is out of memory)",
                        bytes: usize::try_from(len).unwrap_or(usize::MAX),
                    });
                }
                state.next_buffer = Some(buffer);
            }
            state.routes[route_index as usize] = true;
            (route_index, base)
        };
        let reservation = Reservation { pump: self.pump.clone(), route_index, base, block_bytes, kept: false };
        if let Some(fail) = &config.faults.fail_launch
            && fail(id.as_str())
        {
            drop(reservation);
            return Err(RingKernelError::KernelFault {
                kernel: id.to_string(),
                reason: "injected launch failure".into(),
            });
        }
        // The kernel's memory as laid out on the host, its state, a zeroed scratch area.
        // SAFETY: the region is `layout.bytes()` long and nobody else uses it yet.
        let bytes = unsafe { std::slice::from_raw_parts(region.as_ptr(), layout.bytes()) };
        let mut block = bytes.to_vec();
        block.extend_from_slice(state.bytes());
        block.resize(block_bytes as usize, 0);
        let name = id.as_str().as_bytes();
        let mut route = WgpuRoute {
            used: 1,
            number,
            name_hash: fnv1a(name),
            name_len: name.len() as u32,
            inbox: ((base + layout.inbox_offset() as u64) / 4) as u32,
            ..WgpuRoute::default()
        };
        bytemuck::bytes_of_mut(&mut route.name)[..name.len().min(32)].copy_from_slice(&name[..name.len().min(32)]);
        let actor = Actor {
            id: id.to_string(),
            control,
            region,
            doorbell: doorbell.clone(),
            pipeline,
            layout,
            base,
            block_bytes,
            route_index,
            route,
            state_bytes: state_bytes as u32,
            pending: Some(block),
            uploaded_tail: 0,
            device_input_head: 0,
            device_output_tail: 0,
            control_ack: 0,
            inbox_waiting: 0,
            parked: 0,
            sends_k2k: spec.wgsl_source().is_some_and(|source| source.contains("rk_send_to")),
            shared: shared.clone(),
        };
        Ok(Allocation {
            memory: host_ends,
            device: Arc::new(WgpuActor { pump: self.pump.clone(), shared }),
            doorbell,
            config: host.config.clone(),
            start: CommitActor { reservation, actor },
        })
    }
}

/// Bytes a dispatch's params binding covers: every actor's params (one dispatch may run all).
pub(crate) fn params_binding_bytes(max_actors: u32) -> u64 {
    PARAMS_BYTES * u64::from(max_actors)
}

/// Bytes of the params buffer: each dispatch's params start at a multiple of [`PARAMS_ALIGN`]
/// (at most one alignment gap per actor), and the last binding may start at the last offset.
fn params_buffer_bytes(max_actors: u32) -> u64 {
    u64::from(max_actors) * (PARAMS_BYTES + PARAMS_ALIGN) + params_binding_bytes(max_actors) + PARAMS_ALIGN
}

fn storage_entry(binding: u32, read_only: bool) -> wgpu::BindGroupLayoutEntry {
    wgpu::BindGroupLayoutEntry {
        binding,
        visibility: wgpu::ShaderStages::COMPUTE,
        ty: wgpu::BindingType::Buffer {
            ty: wgpu::BufferBindingType::Storage { read_only },
            has_dynamic_offset: false,
            min_binding_size: None,
        },
        count: None,
    }
}

fn summary(adapter: &wgpu::Adapter, unified: bool) -> AdapterSummary {
    let info = adapter.get_info();
    AdapterSummary {
        name: info.name,
        backend: info.backend,
        device_type: info.device_type,
        driver: format!("{} {}", info.driver, info.driver_info),
        unified_memory: unified,
    }
}

impl Drop for Wgpu {
    fn drop(&mut self) {
        self.pump.shutdown.store(true, std::sync::atomic::Ordering::Release);
        self.pump.wake();
        if let Some(thread) = lock(&self.thread).take() {
            let _ = thread.join();
        }
        // Nothing runs the kernels any more: those still running fail (their callers get errors,
        // not hangs; `take_unprocessed` returns what they never handled, K2K inboxes included).
        self.pump.lose("the WgpuRuntime was dropped while the kernel ran".into());
    }
}

/// A device and its queue, shared: what buffers outside a runtime live on.
#[derive(Debug, Clone)]
pub struct SharedDevice {
    /// The device.
    pub device: wgpu::Device,
    /// Its queue.
    pub queue: wgpu::Queue,
    /// Whether storage buffers may also be mapped by the host (unified memory: integrated GPUs,
    /// Apple Silicon, lavapipe), so that reads and writes need no staging copy.
    pub mappable: bool,
}

/// The process's shared device on the best adapter of `backends`: opened once, then handed to
/// every caller (buffers made by separate calls live on one device). With unified memory it can
/// map storage buffers.
///
/// # Errors
/// [`RingKernelError::BackendUnavailable`] without an adapter or device.
pub async fn shared_device(backends: wgpu::Backends) -> Result<SharedDevice> {
    static DEVICES: Mutex<Vec<(wgpu::Backends, SharedDevice)>> = Mutex::new(Vec::new());
    if let Some((_, device)) = lock(&DEVICES).iter().find(|(b, _)| *b == backends) {
        return Ok(device.clone());
    }
    let adapter = fastest_adapter(backends).await?;
    let info = adapter.get_info();
    let mappable = adapter.features().contains(wgpu::Features::MAPPABLE_PRIMARY_BUFFERS)
        && matches!(info.device_type, wgpu::DeviceType::IntegratedGpu | wgpu::DeviceType::Cpu);
    let (device, queue) = adapter
        .request_device(&wgpu::DeviceDescriptor {
            label: Some("ringkernel shared"),
            required_features: if mappable {
                wgpu::Features::MAPPABLE_PRIMARY_BUFFERS
            } else {
                wgpu::Features::empty()
            },
            required_limits: adapter.limits(),
            ..Default::default()
        })
        .await
        .map_err(|e| RingKernelError::BackendUnavailable(format!("adapter `{}` refused a device: {e}", info.name)))?;
    let shared = SharedDevice { device, queue, mappable };
    let mut devices = lock(&DEVICES);
    if let Some((_, device)) = devices.iter().find(|(b, _)| *b == backends) {
        return Ok(device.clone()); // another caller opened it meanwhile
    }
    devices.push((backends, shared.clone()));
    Ok(shared)
}

impl WgpuRuntime {
    /// The runtime's own device, for buffers that live beside its actors. wgpu reports errors
    /// per device: a validation error made on it (outside an error scope) fails the runtime's
    /// actors too, with wgpu's message.
    pub fn shared_device(&self) -> SharedDevice {
        let gpu = &self.wgpu().pump.gpu;
        SharedDevice { device: gpu.device.clone(), queue: gpu.queue.clone(), mappable: gpu.unified }
    }
}

/// The high-performance adapter of `backends`, or why there is none.
///
/// # Errors
/// [`RingKernelError::BackendUnavailable`] naming the backends and wgpu's reason.
pub(crate) async fn fastest_adapter(backends: wgpu::Backends) -> Result<wgpu::Adapter> {
    instance(backends)
        .request_adapter(&wgpu::RequestAdapterOptions {
            power_preference: wgpu::PowerPreference::HighPerformance,
            ..Default::default()
        })
        .await
        .map_err(|e| RingKernelError::BackendUnavailable(format!("no wgpu adapter for {backends:?}: {e}")))
}

/// A device and queue on the best adapter of `backends` (for buffers and kernels outside a
/// runtime).
///
/// # Errors
/// [`RingKernelError::BackendUnavailable`] without an adapter or device.
pub async fn open_device(backends: wgpu::Backends) -> Result<(wgpu::Device, wgpu::Queue)> {
    let adapter = fastest_adapter(backends).await?;
    adapter
        .request_device(&wgpu::DeviceDescriptor {
            label: Some("ringkernel"),
            required_limits: adapter.limits(),
            ..Default::default()
        })
        .await
        .map_err(|e| RingKernelError::BackendUnavailable(format!("the adapter refused a device: {e}")))
}

/// Copies `buffer` (which must allow COPY_SRC) into a readback buffer and returns its bytes,
/// waiting with wgpu's map callback.
///
/// # Errors
/// [`RingKernelError::KernelFault`] when the map fails (a lost device).
pub fn read_buffer(device: &wgpu::Device, queue: &wgpu::Queue, buffer: &wgpu::Buffer) -> Result<Vec<u8>> {
    let staging = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("rk readback"),
        size: buffer.size(),
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    let mut encoder = device.create_command_encoder(&wgpu::CommandEncoderDescriptor::default());
    encoder.copy_buffer_to_buffer(buffer, 0, &staging, 0, buffer.size());
    queue.submit([encoder.finish()]);
    let (tx, rx) = std::sync::mpsc::channel();
    staging.slice(..).map_async(wgpu::MapMode::Read, move |result| {
        let _ = tx.send(result);
    });
    let fault = |reason: String| RingKernelError::KernelFault { kernel: "wgpu buffer".into(), reason };
    device.poll(wgpu::PollType::wait_indefinitely()).map_err(|e| fault(format!("waiting for the GPU: {e}")))?;
    rx.recv()
        .map_err(|_| fault("the buffer map did not complete".into()))?
        .map_err(|e| fault(format!("mapping a buffer: {e}")))?;
    let out =
        staging.slice(..).get_mapped_range().map_err(|e| fault(format!("reading a mapped buffer: {e}")))?.to_vec();
    staging.unmap();
    Ok(out)
}
