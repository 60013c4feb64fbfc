//! [`CudaRuntime`]: one CUDA context, the resident pool of actor blocks (`pool`), the monitor that
//! watches it (`monitor`), and launches that hand each kernel's host half to the engine
//! (`launch`).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ringkernel_core::error::{Result, RingKernelError};
use ringkernel_core::hlc::HlcConfig;
use ringkernel_core::region::Region;
use ringkernel_core::runtime::KernelId;
use ringkernel_core::spec::KernelRegistry;
use ringkernel_host::Runtime;

use crate::compile::{arch_name, compile, pool_source};
use crate::driver::{Context, DeviceBuffer, DeviceInfo, Module, Stream};
use crate::floor::{Floor, Probes};
use crate::layout::RkRoute;
use crate::monitor::Watch;
use crate::pool::Pool;

/// Entries of the device-side route table (`RK_ROUTE_CAPACITY`): the most actor slots a pool has.
pub const MAX_ACTORS: usize = 256;

/// Tuning of the CUDA backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CudaConfig {
    /// CUDA device ordinal.
    pub device: i32,
    /// How long a host waiting for a reply spins before it sleeps in short polls (the device
    /// rings no doorbell). GPU round trips take a few microseconds, so the default spins 200 µs.
    pub spin_before_park: Duration,
    /// Node id of the host's hybrid clock (kernels use their kernel number).
    pub host_node_id: u32,
    /// Largest accepted clock offset of a received timestamp, host and device (`None`: any).
    pub max_clock_offset_ns: Option<u64>,
    /// If set, waits on a kernel fail with `KernelFault` once its heartbeat has not moved for this
    /// long (a device handler stuck in a loop), so that no call, receive or terminate hangs on a
    /// hung GPU. Idle actors beat four times per limit at least (every 100 ms at most rarely).
    /// Default: 2 s; `None` lets handlers run as long as they like.
    pub watchdog: Option<Duration>,
    /// Whether received messages carry their `message_id` (see `HostConfig::read_message_ids`).
    pub read_message_ids: bool,
    /// How long `launch` waits for a kernel to start running on the GPU.
    pub start_timeout: Duration,
    /// Handler threads of every actor block (`LaunchOptions::block_size` must equal it): a
    /// multiple of 32 from 32 to 960 (each block also runs two service warps). Default 128.
    pub block_size: u32,
    /// Compile the actor loop with `RK_PROFILE`: each actor adds up the SM cycles of each phase of
    /// its message path, read with [`CudaRuntime::profile`]. For measurements; off by default.
    pub profile: bool,
    /// Actor slots of the resident pool: how many actors run at once (at most 256). Every slot
    /// is a block that stays resident for the runtime's life; the runtime refuses to start if
    /// the GPU cannot hold them all at once. Default 128.
    pub actor_slots: u32,
}

impl Default for CudaConfig {
    fn default() -> Self {
        Self {
            device: 0,
            spin_before_park: Duration::from_micros(200),
            host_node_id: 0,
            max_clock_offset_ns: Some(HlcConfig::DEFAULT_MAX_OFFSET_NS),
            watchdog: Some(Duration::from_secs(2)),
            read_message_ids: false,
            start_timeout: Duration::from_secs(10),
            block_size: 128,
            profile: false,
            actor_slots: 128,
        }
    }
}

/// Each registered kernel's handler index in the pool module, or its compile error.
pub(crate) type Kinds = HashMap<String, std::result::Result<u32, RingKernelError>>;

/// The CUDA backend under the runtime skeleton: what a runtime holds beside its kernel table;
/// launches (`launch.rs`) and the monitor work on it.
pub(crate) struct Cuda {
    pub(crate) context: Arc<Context>,
    pub(crate) config: CudaConfig,
    /// Each registered kernel's handler index in the pool module, or its compile error.
    pub(crate) kinds: Kinds,
    _module: Module,
    /// The pool and its actors, shared with the monitor (which outlives the runtime while actors
    /// whose handles were kept still run).
    pub(crate) watch: Arc<Watch>,
    probes: Arc<Probes>,
    pub(crate) clock_offset_ns: i64,
    /// Where a new actor's memory is allocated, initialised and (on failure) copied back from.
    pub(crate) admin: Arc<Stream>,
    /// Alive while the runtime is: the monitor ends once it is gone and every actor ended.
    _alive: Arc<()>,
}

/// The CUDA backend's runtime: one CUDA context and one resident pool of actor blocks.
///
/// Dropping it without [`RingKernelRuntime::shutdown`](ringkernel_core::runtime::RingKernelRuntime::shutdown) stops every kernel whose handles are all
/// gone; the context is destroyed once nothing uses it.
pub struct CudaRuntime {
    runtime: Runtime<Cuda>,
}

ringkernel_host::delegate_runtime!(CudaRuntime => runtime);

impl std::fmt::Debug for CudaRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CudaRuntime").field("device", self.cuda().context.info()).finish()
    }
}

/// Compiles every registered CUDA handler into one pool module. A handler that does not compile
/// is left out (its launches return its compile error); the others still run.
fn compile_pool(
    registry: &KernelRegistry,
    threads: u32,
    profile: bool,
    arch: &'static str,
) -> Result<(Arc<cudarc::nvrtc::Ptx>, Kinds)> {
    let mut kernels: Vec<(String, String)> = registry
        .specs()
        .filter_map(|spec| spec.cuda_source().map(|source| (spec.name().to_string(), source.to_string())))
        .collect();
    let mut failed = HashMap::new();
    loop {
        let pairs: Vec<(&str, &str)> = kernels.iter().map(|(n, s)| (n.as_str(), s.as_str())).collect();
        let defines = if profile { "#define RK_PROFILE 1\n" } else { "" };
        let source = format!("{defines}#define RK_THREADS {threads}\n{}", pool_source(&pairs));
        match compile("ringkernel_pool", &source, arch) {
            Ok(ptx) => {
                let mut kinds: Kinds = failed;
                for (kind, (name, _)) in kernels.iter().enumerate() {
                    kinds.insert(name.clone(), Ok(kind as u32));
                }
                return Ok((ptx, kinds));
            }
            Err(RingKernelError::Compile { .. }) if !kernels.is_empty() => {
                // Find the handlers that do not compile on their own (in parallel), drop them.
                let alone: Vec<Result<Arc<cudarc::nvrtc::Ptx>>> = std::thread::scope(|scope| {
                    let handles: Vec<_> = kernels
                        .iter()
                        .map(|(name, source)| {
                            scope.spawn(move || {
                                let one = format!("#define RK_THREADS {threads}\n{}", pool_source(&[(name, source)]));
                                compile(name, &one, arch)
                            })
                        })
                        .collect();
                    handles
                        .into_iter()
                        .map(|h| {
                            h.join()
                                .unwrap_or_else(|_| Err(RingKernelError::BackendUnavailable("NVRTC panicked".into())))
                        })
                        .collect()
                });
                let before = kernels.len();
                let mut kept = Vec::new();
                for ((name, source), result) in kernels.into_iter().zip(alone) {
                    match result {
                        Err(error @ RingKernelError::Compile { .. }) => {
                            failed.insert(name, Err(error));
                        }
                        Err(other) => return Err(other),
                        Ok(_) => kept.push((name, source)),
                    }
                }
                if kept.len() == before {
                    // Each compiles alone but not together (a macro or global name clash).
                    let names: Vec<&str> = kept.iter().map(|(n, _)| n.as_str()).collect();
                    return Err(RingKernelError::Compile {
                        kernel: names.join(", "),
                        log: "these handlers compile one by one but not in one module: a macro or a global \
                              (non-namespaced) name clashes between them"
                            .into(),
                    });
                }
                kernels = kept;
            }
            Err(other) => return Err(other),
        }
    }
}

impl CudaRuntime {
    /// A runtime on device 0 with the default [`CudaConfig`].
    ///
    /// # Errors
    /// [`RingKernelError::BackendUnavailable`] saying why when there is no driver, no GPU, or the
    /// driver refuses; [`RingKernelError::InvalidConfig`] when the pool cannot be resident.
    pub fn new(registry: KernelRegistry) -> Result<Self> {
        Self::with_config(registry, CudaConfig::default())
    }

    /// A runtime with explicit tuning: compiles every registered CUDA handler into one module
    /// (NVRTC, cached per process), measures the GPU clock's offset to the host's, and launches
    /// the resident pool of [`CudaConfig::actor_slots`] blocks. Code cannot be loaded into a
    /// context while persistent kernels run (CUDA's lazy-loading notes describe the deadlock), so
    /// everything is loaded here, before the pool starts.
    ///
    /// # Errors
    /// As [`CudaRuntime::new`].
    pub fn with_config(registry: KernelRegistry, config: CudaConfig) -> Result<Self> {
        let threads = config.block_size;
        if threads < 32 || !threads.is_multiple_of(32) || threads > 1024 - crate::pool::SERVICE_THREADS {
            return Err(RingKernelError::InvalidConfig {
                field: "block_size",
                reason: format!(
                    "the cuda backend runs whole warps, and two service warps beside them: a multiple of 32 from 32 \
                     to {}, got {threads}",
                    1024 - crate::pool::SERVICE_THREADS
                ),
            });
        }
        let slots = config.actor_slots as usize;
        if slots == 0 || slots > MAX_ACTORS {
            return Err(RingKernelError::InvalidConfig {
                field: "actor_slots",
                reason: format!("must be between 1 and {MAX_ACTORS}, got {slots}"),
            });
        }
        let context = Context::new(config.device)?;
        context.bind()?;
        let (major, minor) = context.info().compute_capability;
        let arch = arch_name(major, minor);
        let (ptx, kinds) = compile_pool(&registry, threads, config.profile, arch)?;
        let module = Module::load(&context, &ptx)?;
        let pool_function = module.function("rk_pool_main")?;
        let probes = Arc::new(Probes::load(&context, arch)?);
        let admin = Arc::new(Stream::new(&context)?);
        let routes = DeviceBuffer::zeroed(&admin, MAX_ACTORS * size_of::<RkRoute>())?;
        let clock_offset_ns = clock_offset(&context, &probes, &admin)?;
        admin.synchronize("preparing the route table")?;
        let pool = Pool::launch(&context, pool_function, threads, slots)?;
        // The bus warp reads a slot in the same round trip as the tail, and publishes replies
        // without a system-scope fence: both sides check slots.
        let host = ringkernel_host::host_settings!(config, input_slot_checks: true, output_slot_checks: true);
        let alive = Arc::new(());
        let watch = Arc::new(Watch { context: context.clone(), pool, routes, tracks: Default::default() });
        watch.spawn(Arc::downgrade(&alive)).map_err(|error| {
            RingKernelError::BackendUnavailable(format!("could not start the monitor thread: {error}"))
        })?;
        let cuda =
            Cuda { context, config, kinds, _module: module, watch, probes, clock_offset_ns, admin, _alive: alive };
        Ok(Self { runtime: Runtime::new(cuda, registry, host) })
    }

    fn cuda(&self) -> &Cuda {
        self.runtime.backend()
    }

    /// Whether the CUDA backend can run here (a driver and a GPU that maps host memory).
    pub fn is_available() -> bool {
        crate::driver::probe(0).is_ok()
    }

    /// The GPU of device `ordinal`, or why there is none.
    ///
    /// # Errors
    /// [`RingKernelError::BackendUnavailable`] with the reason.
    pub fn probe(ordinal: i32) -> Result<DeviceInfo> {
        crate::driver::probe(ordinal)
    }

    /// The GPU this runtime runs on.
    pub fn device(&self) -> &DeviceInfo {
        self.cuda().context.info()
    }

    /// The kernels this runtime can launch.
    pub fn registry(&self) -> &KernelRegistry {
        self.runtime.registry()
    }

    /// Actor slots of the pool (how many actors can run at once).
    pub fn actor_slots(&self) -> usize {
        self.cuda().watch.pool.capacity()
    }

    /// With [`CudaConfig::profile`]: the SM cycles a running actor has spent in each phase of its
    /// message path, summed over its messages — `[bus, handoff, check, handler, publish, k2k_send,
    /// messages]`: the bus warp's round trips that brought host messages (per round trip, not per
    /// message); the wait of a queued message before the handler threads took it; validation and
    /// stamping; the handler, replies included; the batch's publish (the input head and output
    /// tail as plain stores — the host accepts each reply by its slot check — and the sequences of
    /// its K2K sends, behind a device-scope fence only for payloads over 64 bytes); all of its K2K
    /// sends; the count of messages handled, from the host and over K2K.
    /// `None` for an actor not running; without profiling, all zero.
    pub fn profile(&self, kernel: &KernelId) -> Option<[u64; 7]> {
        let watch = &self.cuda().watch;
        watch.with_track(kernel, |track| watch.pool.profile(track.slot))
    }

    /// How a running actor's bus warp read the messages it took from the host so far:
    /// `(checked, confirmed)`: read in the same round trip as the tail and accepted by their slot
    /// check, or read again once the tail was known (a check that failed, or the rest of a burst;
    /// a second round trip). Updated whenever the actor goes idle; wrapping counts. `None` for an
    /// actor not running.
    pub fn read_paths(&self, kernel: &KernelId) -> Option<(u32, u32)> {
        let watch = &self.cuda().watch;
        watch.with_track(kernel, |track| watch.pool.read_paths(track.slot))
    }

    /// The floor probes in this runtime's context (for benchmarks).
    ///
    /// # Errors
    /// [`RingKernelError::BackendUnavailable`] when the probes' memory or stream cannot be made.
    pub fn floor(&self) -> Result<Floor> {
        Floor::new(self.cuda().context.clone(), self.cuda().probes.clone())
    }

    /// The hardware error that lost this runtime's context, if one did; a lost runtime launches
    /// nothing more.
    pub fn lost(&self) -> Option<String> {
        self.cuda().context.poisoned().map(|error| error.to_string())
    }
}

/// Offset from the GPU's `%globaltimer` to the host's wall clock (ns since the Unix epoch): the
/// sample with the shortest launch-to-sync window of seven.
fn clock_offset(context: &Arc<Context>, probes: &Probes, stream: &Stream) -> Result<i64> {
    let target = context.pinned(64, Arc::new(std::sync::atomic::AtomicBool::new(false)))?;
    let mut best: Option<(u128, i64)> = None;
    for _ in 0..7 {
        let mut argument = target.device_address(0);
        let before = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_nanos();
        crate::floor::launch(probes.clock, 1, 1, stream, &mut [(&mut argument as *mut u64).cast()])?;
        stream.synchronize("the clock probe")?;
        let after = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_nanos();
        // SAFETY: the probe wrote 8 bytes there and has finished.
        let gpu = unsafe { std::ptr::read_volatile(target.as_ptr().cast::<u64>()) };
        let window = after - before;
        let offset = ((before + after) / 2) as i64 - gpu as i64;
        if best.is_none_or(|(w, _)| window < w) {
            best = Some((window, offset));
        }
    }
    Ok(best.map_or(0, |(_, offset)| offset))
}

impl Drop for Cuda {
    fn drop(&mut self) {
        // Idle blocks exit; a block still running an actor (whose handle was kept) exits when the
        // actor ends. The pool waits for its kernel when the monitor lets go of it.
        self.watch.pool.shut_down();
    }
}
