//! [`CudaRuntime`]: a resident pool of actor blocks, the monitor that watches it, and launches that
//! hand each kernel's host half to the engine.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use cudarc::driver::sys::{self, CUresult};
use ringkernel_core::control::SharedControl;
use ringkernel_core::error::{Result, RingKernelError, codes};
use ringkernel_core::hlc::{HlcConfig, HybridClock};
use ringkernel_core::layout::termination;
use ringkernel_core::memory::KernelMemory;
use ringkernel_core::region::Region;
use ringkernel_core::runtime::{Backend, KernelHandle, KernelId, LaunchOptions, RingKernelRuntime, RuntimeMetrics};
use ringkernel_core::spec::KernelRegistry;
use ringkernel_host::{Doorbell, HostConfig, HostKernel, KernelParts, KernelTable};

use crate::actor::{ActorShared, CudaActor, NAME_BYTES, RkArgs, fnv1a};
use crate::compile::{PROBES, arch_name, compile, pool_source};
use crate::driver::{Context, DeviceInfo, Module, PinnedRegion, check, create_stream, describe};

/// Entries of the device-side route table (`RK_ROUTE_CAPACITY`): the most actor slots a pool has.
pub const MAX_ACTORS: usize = 256;
/// Bytes of one route entry (`RkRoute`).
const ROUTE_BYTES: usize = 64;
/// Bytes of one pool slot (`RkSlot`) and the offset of its `args`.
const SLOT_BYTES: usize = 256;
const SLOT_ARGS_OFFSET: usize = 64;
const SLOT_IDLE: u32 = 0;
const SLOT_ASSIGNED: u32 = 1;

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
    /// Threads of every actor block (`LaunchOptions::block_size` must equal it): a multiple of 32
    /// from 32 to 1024. Default 128.
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

/// A cached compile error, handed to each launch of that kernel.
fn clone_error(error: &RingKernelError) -> RingKernelError {
    match error {
        RingKernelError::Compile { kernel, log } => {
            RingKernelError::Compile { kernel: kernel.clone(), log: log.clone() }
        }
        other => RingKernelError::BackendUnavailable(other.to_string()),
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Messages an actor reads per round trip: `RK_BATCH` = threads / 8.
fn batch(threads: u32) -> usize {
    (threads / 8) as usize
}

/// Each registered kernel's handler index in the pool module, or its compile error.
type Kinds = HashMap<String, std::result::Result<u32, RingKernelError>>;

/// A running actor (or one that ended and is not yet tidied up), as the monitor sees it.
struct Track {
    id: KernelId,
    slot: usize,
    /// Device memory: state, inbox, scratch.
    buffers: [u64; 3],
    /// Where the inbox is copied back to (in the kernel's pinned region) and its size.
    inbox_mirror: usize,
    inbox_bytes: usize,
    shared: Arc<ActorShared>,
    /// The pinned region may be reused once set.
    reusable: Arc<AtomicBool>,
    control: SharedControl,
}

// SAFETY: the addresses are used only with the context bound, under the tracks lock; the mirror
// lies in a pinned block that is not reused before `reusable` is set.
unsafe impl Send for Track {}

/// The resident pool: one kernel of `slots` blocks, launched when the runtime starts.
struct Pool {
    stream: sys::CUstream,
    /// `RkSlot`s in pinned, mapped memory.
    slots: PinnedRegion,
    capacity: usize,
    threads: u32,
    used: Mutex<Vec<bool>>,
}

impl Pool {
    fn word(&self, slot: usize, offset: usize) -> &AtomicU32 {
        // SAFETY: slot < capacity, and the region holds `capacity` 256-byte slots, 64-byte aligned;
        // these words are only accessed atomically, here and by the pool kernel.
        unsafe { &*self.slots.as_ptr().add(slot * SLOT_BYTES + offset).cast::<AtomicU32>() }
    }

    fn state(&self, slot: usize) -> u32 {
        self.word(slot, 0).load(Ordering::Acquire)
    }
}

/// The floor probes' functions and the clock probe's target.
pub(crate) struct Probes {
    _module: Module,
    pub(crate) clock: sys::CUfunction,
    pub(crate) empty: sys::CUfunction,
    pub(crate) offload: sys::CUfunction,
    pub(crate) pingpong: sys::CUfunction,
    target: PinnedRegion,
}

// SAFETY: function handles may be used from any thread with the context bound.
unsafe impl Send for Probes {}
// SAFETY: as above.
unsafe impl Sync for Probes {}

struct Inner {
    context: Arc<Context>,
    registry: KernelRegistry,
    config: CudaConfig,
    kernels: KernelTable,
    host_clock: Arc<HybridClock>,
    next_number: AtomicU32,
    /// Device memory: MAX_ACTORS route entries (entry = slot).
    routes: u64,
    /// Each registered kernel's handler index in the pool module, or its compile error.
    kinds: Kinds,
    _module: Module,
    /// The pool and its actors, shared with the monitor (which outlives the runtime while actors
    /// whose handles were kept still run).
    watch: Arc<Watch>,
    probes: Probes,
    clock_offset_ns: i64,
    /// Launch preparation (allocations and copies of a new actor's memory).
    admin: Mutex<sys::CUstream>,
}

/// What the monitor watches: the pool, its actors, and the stream it tidies up with.
struct Watch {
    context: Arc<Context>,
    pool: Pool,
    tracks: Mutex<Vec<Track>>,
    /// The monitor's copies and frees.
    tidy: sys::CUstream,
}

// SAFETY: the stream handle is used only with the context bound; the rest sits behind locks.
unsafe impl Send for Watch {}
// SAFETY: as above.
unsafe impl Sync for Watch {}

// SAFETY: raw handles (streams, device pointers) are used only with the context bound, and the
// mutable state sits behind locks.
unsafe impl Send for Inner {}
// SAFETY: as above.
unsafe impl Sync for Inner {}

/// The CUDA backend's runtime: one CUDA context and one resident pool of actor blocks.
///
/// Dropping it without [`RingKernelRuntime::shutdown`] stops every kernel whose handles are all
/// gone; the context is destroyed once nothing uses it.
pub struct CudaRuntime {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for CudaRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CudaRuntime").field("device", self.inner.context.info()).finish()
    }
}

fn unavailable(reason: String) -> RingKernelError {
    RingKernelError::BackendUnavailable(format!("cuda: {reason}"))
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
                        .map(|h| h.join().unwrap_or_else(|_| Err(unavailable("NVRTC panicked".into()))))
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
        if threads < 32 || !threads.is_multiple_of(32) || threads > 1024 {
            return Err(RingKernelError::InvalidConfig {
                field: "block_size",
                reason: format!("the cuda backend runs whole warps: a multiple of 32 from 32 to 1024, got {threads}"),
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
        context.bind().map_err(unavailable)?;
        let (major, minor) = context.info().compute_capability;
        let arch = arch_name(major, minor);
        let (ptx, kinds) = compile_pool(&registry, threads, config.profile, arch)?;
        let module = Module::load(&context, &ptx).map_err(unavailable)?;
        let pool_function = module.function("rk_pool_main").map_err(unavailable)?;
        let probes_ptx = compile("ringkernel_probes", PROBES, arch)?;
        let probes_module = Module::load(&context, &probes_ptx).map_err(unavailable)?;
        let probes = Probes {
            clock: probes_module.function("rk_probe_clock").map_err(unavailable)?,
            empty: probes_module.function("rk_probe_empty").map_err(unavailable)?,
            offload: probes_module.function("rk_probe_offload").map_err(unavailable)?,
            pingpong: probes_module.function("rk_probe_pingpong").map_err(unavailable)?,
            target: context.pinned(64, Arc::new(AtomicBool::new(false)))?,
            _module: probes_module,
        };

        // Can every slot be resident at once?
        let mut per_sm = 0;
        // SAFETY: a loaded function; out-parameter call.
        let r =
            unsafe { sys::cuOccupancyMaxActiveBlocksPerMultiprocessor(&mut per_sm, pool_function, threads as i32, 0) };
        check(r, "cuOccupancyMaxActiveBlocksPerMultiprocessor").map_err(unavailable)?;
        let resident = per_sm.max(0) as usize * context.info().multiprocessors.max(0) as usize;
        if slots > resident {
            return Err(RingKernelError::InvalidConfig {
                field: "actor_slots",
                reason: format!(
                    "{slots} actor blocks of {threads} threads cannot be resident at once on {}: {resident} can \
                     ({per_sm} per SM × {} SMs); a block that is not resident would never run its actor",
                    context.info().name,
                    context.info().multiprocessors
                ),
            });
        }

        let admin = create_stream(&context).map_err(unavailable)?;
        let tidy = create_stream(&context).map_err(unavailable)?;
        let pool_stream = create_stream(&context).map_err(unavailable)?;
        let mut routes = 0u64;
        let bytes = MAX_ACTORS * ROUTE_BYTES;
        // SAFETY: the context is current; nothing runs yet, so synchronous calls wait for nothing.
        unsafe {
            check(sys::cuMemAlloc_v2(&mut routes, bytes), "cuMemAlloc (route table)").map_err(unavailable)?;
            check(sys::cuMemsetD8_v2(routes, 0, bytes), "cuMemset (route table)").map_err(unavailable)?;
        }
        let clock_offset_ns = clock_offset(&probes, admin)?;
        let pool_slots = context.pinned(slots * SLOT_BYTES, Arc::new(AtomicBool::new(false)))?;
        let mut slots_address = pool_slots.device_address(0);
        let mut params = [(&mut slots_address as *mut u64).cast::<std::ffi::c_void>()];
        // SAFETY: `rk_pool_main` takes one pointer to `slots` RkSlots of zeroed (idle) pinned
        // memory, which lives as long as the context (the pool holds it). A cooperative launch
        // fails rather than start a grid that cannot be resident at once.
        let r = unsafe {
            sys::cuLaunchCooperativeKernel(
                pool_function,
                slots as u32,
                1,
                1,
                threads,
                1,
                1,
                0,
                pool_stream,
                params.as_mut_ptr(),
            )
        };
        check(r, "launching the actor pool").map_err(unavailable)?;
        let pool_done = Arc::new(AtomicBool::new(false));
        context.track(pool_stream, pool_done);

        let host_clock =
            HybridClock::new(HlcConfig::new(config.host_node_id).with_max_offset_ns(config.max_clock_offset_ns));
        let inner = Arc::new(Inner {
            context: context.clone(),
            registry,
            config,
            kernels: KernelTable::new(),
            host_clock: Arc::new(host_clock),
            next_number: AtomicU32::new(1),
            routes,
            kinds,
            _module: module,
            watch: Arc::new(Watch {
                context,
                pool: Pool {
                    stream: pool_stream,
                    slots: pool_slots,
                    capacity: slots,
                    threads,
                    used: Mutex::new(vec![false; slots]),
                },
                tracks: Mutex::new(Vec::new()),
                tidy,
            }),
            probes,
            clock_offset_ns,
            admin: Mutex::new(admin),
        });
        let (weak, watch) = (Arc::downgrade(&inner), inner.watch.clone());
        std::thread::Builder::new()
            .name("rk-cuda-monitor".into())
            .spawn(move || monitor(weak, watch))
            .map_err(|error| unavailable(format!("could not start the monitor thread: {error}")))?;
        Ok(Self { inner })
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
        self.inner.context.info()
    }

    /// The kernels this runtime can launch.
    pub fn registry(&self) -> &KernelRegistry {
        &self.inner.registry
    }

    /// Actor slots of the pool (how many actors can run at once).
    pub fn actor_slots(&self) -> usize {
        self.inner.watch.pool.capacity
    }

    /// With [`CudaConfig::profile`]: the SM cycles a running actor has spent, summed over its
    /// messages from the host, in each phase of its message path — `[poll, read, check, handler,
    /// publish, k2k_send, messages]` (the poll that found the message; the batch read over the bus;
    /// validation and stamping; the handler, replies included; the publish behind a system fence;
    /// all of its K2K sends; the count of messages, from the host and over K2K). `None` for an
    /// actor not running; without
    /// profiling, all zero.
    pub fn profile(&self, kernel: &KernelId) -> Option<[u64; 7]> {
        let watch = &self.inner.watch;
        let tracks = lock(&watch.tracks);
        let track = tracks.iter().find(|track| &track.id == kernel)?;
        let mut out = [0u64; 7];
        for (i, value) in out.iter_mut().enumerate() {
            // SAFETY: the slot's reserved words (bytes 8..64) hold 7 u64 the actor writes; read
            // volatile (the device writes them), aligned to 8.
            *value = unsafe {
                std::ptr::read_volatile(
                    watch.pool.slots.as_ptr().add(track.slot * SLOT_BYTES + 8 + 8 * i).cast::<u64>(),
                )
            };
        }
        Some(out)
    }

    /// The floor probes in this runtime's context (for benchmarks).
    ///
    /// # Errors
    /// [`RingKernelError::BackendUnavailable`] when the probes' memory or stream cannot be made.
    pub fn floor(&self) -> Result<crate::floor::Floor> {
        let probes = &self.inner.probes;
        crate::floor::Floor::new(self.inner.context.clone(), [probes.empty, probes.offload, probes.pingpong])
    }

    /// The hardware error that lost this runtime's context, if one did; a lost runtime launches
    /// nothing more.
    pub fn lost(&self) -> Option<String> {
        self.inner.context.poisoned()
    }
}

/// Offset from the GPU's `%globaltimer` to the host's wall clock (ns since the Unix epoch): the
/// sample with the shortest launch-to-sync window of seven.
fn clock_offset(probes: &Probes, stream: sys::CUstream) -> Result<i64> {
    let target = probes.target.device_address(0);
    let mut best: Option<(u128, i64)> = None;
    for _ in 0..7 {
        let mut argument = target;
        let mut params = [(&mut argument as *mut u64).cast::<std::ffi::c_void>()];
        let before = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_nanos();
        // SAFETY: the probe takes one pointer to 8 writable bytes of pinned, mapped memory; we wait.
        let r = unsafe {
            sys::cuLaunchKernel(probes.clock, 1, 1, 1, 1, 1, 1, 0, stream, params.as_mut_ptr(), std::ptr::null_mut())
        };
        check(r, "launching the clock probe").map_err(unavailable)?;
        // SAFETY: waits for the probe on this stream only.
        check(unsafe { sys::cuStreamSynchronize(stream) }, "the clock probe").map_err(unavailable)?;
        let after = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_nanos();
        // SAFETY: the probe wrote 8 bytes there and has finished.
        let gpu = unsafe { std::ptr::read_volatile(probes.target.as_ptr().cast::<u64>()) };
        let window = after - before;
        let offset = ((before + after) / 2) as i64 - gpu as i64;
        if best.is_none_or(|(w, _)| window < w) {
            best = Some((window, offset));
        }
    }
    Ok(best.map_or(0, |(_, offset)| offset))
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Idle blocks exit; a block still running an actor (whose handle was kept) exits when the
        // actor ends. The route table and the pool's memory go with the context, which waits for
        // the pool kernel: actors still running use them.
        for slot in 0..self.watch.pool.capacity {
            self.watch.pool.word(slot, 4).store(1, Ordering::Release);
        }
        if self.context.bind().is_ok() {
            let admin = *lock(&self.admin);
            // SAFETY: the admin stream is idle (launches hold the runtime); destroying it returns at once.
            unsafe {
                let _ = sys::cuStreamDestroy_v2(admin);
            }
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        if self.context.bind().is_ok() {
            // SAFETY: the monitor, the only user of this stream, has stopped.
            unsafe {
                let _ = sys::cuStreamDestroy_v2(self.tidy);
            }
        }
    }
}

/// Watches the pool: an actor that ended gets its inbox copied back and its device memory freed,
/// and its slot is free again; a hardware error (the context is lost) fails every actor. Runs
/// until the runtime is gone and every actor has ended.
fn monitor(inner: Weak<Inner>, watch: Arc<Watch>) {
    loop {
        watch.poll();
        let ended = inner.strong_count() == 0 && (lock(&watch.tracks).is_empty() || watch.context.poisoned().is_some());
        if ended {
            return;
        }
        std::thread::sleep(Duration::from_micros(500));
    }
}

impl Watch {
    fn poll(&self) {
        if self.context.poisoned().is_some() {
            return;
        }
        let mut tracks = lock(&self.tracks);
        let mut pool_ended = false;
        let lost = match self.context.bind() {
            Err(reason) => Some(reason),
            // SAFETY: querying enqueues nothing.
            Ok(()) => match unsafe { sys::cuStreamQuery(self.pool.stream) } {
                CUresult::CUDA_ERROR_NOT_READY => None,
                CUresult::CUDA_SUCCESS => {
                    // Normal once the runtime is gone (its blocks exit when idle); otherwise the
                    // actors it still ran are failed below.
                    pool_ended = true;
                    None
                }
                error => Some(describe("the GPU", error)),
            },
        };
        if let Some(reason) = lost {
            tracing::error!(%reason, "the CUDA context was lost; every actor of the runtime fails");
            self.context.poison(reason);
            for track in tracks.drain(..) {
                if track.control.termination() == termination::RUNNING {
                    let block = track.control.block();
                    block.last_error.store(codes::HANDLER_FAULT, Ordering::Relaxed);
                    block.report_stopped(termination::FAILED);
                }
                *lock(&track.shared.copied) = Some(Ok(()));
                track.shared.finished.store(true, Ordering::Release);
            }
            return;
        }
        tracks.retain(|track| {
            if pool_ended && track.control.termination() == termination::RUNNING {
                let block = track.control.block();
                block.last_error.store(codes::HANDLER_FAULT, Ordering::Relaxed);
                block.report_stopped(termination::FAILED);
            }
            let ended = (pool_ended || self.pool.state(track.slot) == SLOT_IDLE)
                && track.control.termination() != termination::RUNNING;
            if ended {
                self.finish(track);
            }
            !ended
        });
    }

    /// An actor ended: copy its inbox back (the host takes back what was never received), free
    /// its device memory, free its slot.
    fn finish(&self, track: &Track) {
        let copied = if track.control.termination() == termination::FAILED {
            // SAFETY: the actor ended; the mirror is `inbox_bytes` of pinned memory kept alive (the
            // engine holds the region; the pool does not reuse it before `reusable`).
            unsafe {
                let r = sys::cuMemcpyDtoHAsync_v2(
                    track.inbox_mirror as *mut std::ffi::c_void,
                    track.buffers[1],
                    track.inbox_bytes,
                    self.tidy,
                );
                check(r, "copying the K2K inbox back")
                    .and_then(|()| check(sys::cuStreamSynchronize(self.tidy), "copying the K2K inbox back"))
            }
        } else {
            // A drained kernel left nothing in its inbox.
            Ok(())
        };
        *lock(&track.shared.copied) = Some(copied);
        self.release(&track.buffers);
        track.shared.finished.store(true, Ordering::Release);
        track.reusable.store(true, Ordering::Release);
        lock(&self.pool.used)[track.slot] = false;
    }

    fn release(&self, buffers: &[u64; 3]) {
        // SAFETY: nothing uses these any more; stream-ordered frees on the monitor's stream.
        unsafe {
            for &buffer in buffers {
                if buffer != 0 {
                    let _ = sys::cuMemFreeAsync(buffer, self.tidy);
                }
            }
        }
    }
}

impl Inner {
    fn start(&self, id: KernelId, options: &LaunchOptions) -> Result<Arc<HostKernel>> {
        options.validate()?;
        if let Some(reason) = self.context.poisoned() {
            return Err(unavailable(format!("this runtime's GPU context was lost ({reason}); create a new runtime")));
        }
        let threads = self.watch.pool.threads;
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
        let number = self.next_number.fetch_add(1, Ordering::Relaxed);
        if number == ringkernel_core::message::HOST_KERNEL_ID {
            return Err(RingKernelError::InvalidConfig {
                field: "kernel",
                reason: "this runtime has used every kernel number; create a new runtime".into(),
            });
        }

        // Memory: everything fallible first, before anything runs.
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
        let host_base = control.block() as *const _ as *mut u8;
        let inbox_mirror = host_base.wrapping_add(layout.inbox_offset());
        let slot = {
            let mut used = lock(&self.watch.pool.used);
            let free = used.iter().position(|used| !used);
            if let Some(free) = free {
                used[free] = true;
            }
            free
        };
        let Some(slot) = slot else {
            reusable.store(true, Ordering::Release);
            let running = lock(&self.watch.tracks).len();
            return Err(RingKernelError::InvalidConfig {
                field: "kernel",
                reason: format!(
                    "all {} actor slots of the pool are in use ({running} actors run or are ending); terminate one, or \
                     start the runtime with more CudaConfig::actor_slots",
                    self.watch.pool.capacity
                ),
            });
        };
        let scratch_bytes =
            batch(threads) * (layout.input().slot_bytes() as usize).max(inbox_layout.geometry().slot_bytes() as usize);
        let state_bytes = state.bytes().len();
        let sizes = [state_bytes.max(16), inbox_layout.stride(), scratch_bytes];
        let mut buffers = [0u64; 3];
        let abandon = |buffers: &[u64; 3]| {
            self.watch.release(buffers);
            lock(&self.watch.pool.used)[slot] = false;
            reusable.store(true, Ordering::Release);
        };
        let prepared = {
            let admin = lock(&self.admin);
            let stream = *admin;
            // SAFETY: the context is bound below; every allocation and copy is stream-ordered on
            // the admin stream, and the host sources outlive the copies (we synchronise).
            self.context.bind().and_then(|()| unsafe {
                for (buffer, size) in buffers.iter_mut().zip(sizes) {
                    check(sys::cuMemAllocAsync(buffer, size, stream), "cuMemAllocAsync")?;
                }
                check(sys::cuMemsetD8Async(buffers[0], 0, sizes[0], stream), "cuMemsetD8Async")?;
                if state_bytes > 0 {
                    let r = sys::cuMemcpyHtoDAsync_v2(buffers[0], state.bytes().as_ptr().cast(), state_bytes, stream);
                    check(r, "copying the state")?;
                }
                let r = sys::cuMemcpyHtoDAsync_v2(buffers[1], inbox_mirror.cast_const().cast(), sizes[1], stream);
                check(r, "copying the inbox")?;
                check(sys::cuMemsetD8Async(buffers[2], 0, sizes[2], stream), "cuMemsetD8Async")?;
                check(sys::cuStreamSynchronize(stream), "preparing the actor's memory")
            })
        };
        if let Err(reason) = prepared {
            abandon(&buffers);
            tracing::warn!(%reason, "device memory for an actor");
            return Err(RingKernelError::AllocationFailed {
                what: "an actor's state, inbox and scratch on the GPU",
                bytes: sizes.iter().sum(),
            });
        }
        let shared = Arc::new(ActorShared::default());
        let actor =
            Arc::new(CudaActor { context: self.context.clone(), control: control.clone(), shared: shared.clone() });
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
                ..HostConfig::default()
            },
            auto_activate: options.auto_activate,
        });
        let kernel = match kernel {
            Ok(kernel) => kernel,
            Err(error) => {
                abandon(&buffers);
                return Err(error);
            }
        };

        let name = id.as_str().as_bytes();
        let mut name_field = [0u8; NAME_BYTES];
        let kept = name.len().min(NAME_BYTES);
        name_field[..kept].copy_from_slice(&name[..kept]);
        let heartbeat = self.config.watchdog.map_or(Duration::from_millis(100), |limit| {
            (limit / 4).clamp(Duration::from_micros(20), Duration::from_millis(100))
        });
        let args = RkArgs {
            control: base,
            input: base + layout.input_offset() as u64,
            output: base + layout.output_offset() as u64,
            state: buffers[0],
            inbox: buffers[1],
            routes: self.routes,
            scratch: buffers[2],
            clock_offset_ns: self.clock_offset_ns,
            max_offset_ns: self.config.max_clock_offset_ns.unwrap_or(0),
            heartbeat_ns: heartbeat.as_nanos() as u64,
            state_bytes: state_bytes as u32,
            route_index: slot as u32,
            number,
            name_hash: fnv1a(name),
            name_len: name.len() as u32,
            kind,
            name: name_field,
        };
        lock(&self.watch.tracks).push(Track {
            id: id.clone(),
            slot,
            buffers,
            inbox_mirror: inbox_mirror as usize,
            inbox_bytes: inbox_layout.stride(),
            shared,
            reusable,
            control: control.clone(),
        });
        // Assign the slot: the arguments, then (release) the state its block polls.
        // SAFETY: the slot is ours (marked used) and idle; its block reads `args` only after it
        // sees ASSIGNED (acquire). The bytes are written through the region's pointer.
        unsafe {
            let target = self.watch.pool.slots.as_ptr().add(slot * SLOT_BYTES + SLOT_ARGS_OFFSET).cast::<RkArgs>();
            std::ptr::write_volatile(target, args);
        }
        self.watch.pool.word(slot, 0).store(SLOT_ASSIGNED, Ordering::Release);

        // Started once the actor's first heartbeat lands.
        let deadline = Instant::now() + self.config.start_timeout;
        while control.block().heartbeat.load(Ordering::Acquire) == 0 {
            if let Some(reason) = self.context.poisoned() {
                return Err(RingKernelError::KernelFault { kernel: id.to_string(), reason });
            }
            if Instant::now() > deadline {
                kernel.request_terminate();
                return Err(RingKernelError::KernelFault {
                    kernel: id.to_string(),
                    reason: format!("its pool block did not pick it up within {:?}", self.config.start_timeout),
                });
            }
            std::thread::sleep(Duration::from_micros(20));
        }
        Ok(kernel)
    }
}

#[async_trait]
impl RingKernelRuntime for CudaRuntime {
    fn backend(&self) -> Backend {
        Backend::Cuda
    }

    fn is_backend_available(&self, backend: Backend) -> bool {
        matches!(backend, Backend::Cuda | Backend::Auto) && self.inner.context.poisoned().is_none()
    }

    async fn launch(&self, kernel_id: &str, options: LaunchOptions) -> Result<KernelHandle> {
        self.inner.kernels.launch(kernel_id, |id| self.inner.start(id, &options))
    }

    fn get_kernel(&self, kernel_id: &KernelId) -> Option<KernelHandle> {
        self.inner.kernels.get(kernel_id)
    }

    fn list_kernels(&self) -> Vec<KernelId> {
        self.inner.kernels.ids()
    }

    fn metrics(&self) -> RuntimeMetrics {
        self.inner.kernels.metrics()
    }

    async fn shutdown(&self) -> Result<()> {
        self.inner.kernels.shutdown().await
    }
}
