//! [`CudaHaloExchange`]: the halo exchange on persistent CUDA blocks (`cuda/halo.cu`), one block
//! per tile, all resident at once, running many steps per launch; neighbours synchronise pairwise
//! through the faces' sequence numbers in device memory, never through a grid-wide barrier; a
//! tile stays in shared memory across the steps of a run when both of its levels fit there.

use std::sync::Arc;
use std::time::{Duration, Instant};

use cudarc::driver::sys;
use ringkernel_core::error::{Result, RingKernelError};
use ringkernel_core::halo::{HaloExchange, HaloExchangeStats, HaloGrid, OFFSETS, check_cells, opposite, split_tiles};

use crate::compile::{arch_name, compile, halo_source};
use crate::driver::{Context, DeviceBuffer, DeviceInfo, Module, Stream, check};
use crate::layout::{RkHaloParams, words};

/// Threads per tile block (`RK_HALO_THREADS` in `cuda/halo.cu`).
pub const HALO_THREADS: u32 = 512;
/// Most stencil points the kernel takes (`RK_HALO_MAX_POINTS`).
pub const MAX_POINTS: usize = 512;
/// Words of the status buffer.
const STATUS_WORDS: usize = 32;
/// Status words: the phase profile (three u64).
const STATUS_PROFILE: usize = 16;
/// Status word: tiles that ran every step of the last run.
const STATUS_COMPLETED: usize = 13;

/// How a [`CudaHaloExchange`] runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CudaHaloConfig {
    /// CUDA device ordinal.
    pub device: i32,
    /// How long a tile waits for a neighbour's face before it stops the run with a
    /// `KernelFault` (a neighbour that never sends is a bug, never a slow step).
    pub face_timeout: Duration,
    /// Keep tiles in shared memory across a run's steps: `None` when both levels fit and every
    /// tile can still be resident (the default), `Some(false)` never, `Some(true)` always (an
    /// error when they do not fit).
    pub on_chip: Option<bool>,
}

impl Default for CudaHaloConfig {
    fn default() -> Self {
        Self { device: 0, face_timeout: Duration::from_secs(5), on_chip: None }
    }
}

/// A fault the kernel injects, for tests of the error paths (see [`CudaHaloExchange::inject`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InjectedFault {
    /// The tile sends faces whose header names the wrong direction at this step.
    WrongDirection {
        /// The tile.
        tile: u32,
        /// The step (counted from the last upload).
        step: u32,
    },
    /// The tile sends no faces at this step (its neighbours time out).
    Silent {
        /// The tile.
        tile: u32,
        /// The step (counted from the last upload).
        step: u32,
    },
}

/// The tiles of a grid as persistent blocks on one GPU.
pub struct CudaHaloExchange {
    grid: HaloGrid,
    config: CudaHaloConfig,
    context: Arc<Context>,
    stream: Arc<Stream>,
    _module: Module,
    run: sys::CUfunction,
    cells: [DeviceBuffer; 2],
    inboxes: DeviceBuffer,
    routes: DeviceBuffer,
    geom: DeviceBuffer,
    status: DeviceBuffer,
    /// The face tables (see `RkHaloParams::tables`) and per-tile counts.
    tables: DeviceBuffer,
    counts: DeviceBuffer,
    table_stride: u32,
    /// Which of `cells` holds the current level.
    current: usize,
    /// Steps since the last upload (the faces' sequence numbers).
    step: u32,
    on_chip: bool,
    tables_on_chip: bool,
    shared_bytes: u32,
    stats: HaloExchangeStats,
    /// Set when a run stopped: the grid is then unspecified until the next upload.
    broken: Option<String>,
    inject: Option<InjectedFault>,
    profile: Option<HaloPhases>,
}

/// Where one tile's steps spent their time in the last run, as its first thread saw it
/// (`%globaltimer`, averaged over the run's steps): a tile in the middle of the grid.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct HaloPhases {
    /// The tile.
    pub tile: u32,
    /// Steps of the run.
    pub steps: u32,
    /// Writing its faces into the neighbours' inboxes (this thread's share), ns per step.
    pub send_ns: f64,
    /// From then until every thread of the block had its faces (waiting for the neighbours
    /// included), ns per step.
    pub receive_ns: f64,
    /// Computing the interior, until the block's barrier, ns per step.
    pub compute_ns: f64,
}

// SAFETY: the function handle is used with the context bound, by one caller at a time (&mut self).
unsafe impl Send for CudaHaloExchange {}

impl std::fmt::Debug for CudaHaloExchange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CudaHaloExchange")
            .field("grid", &self.grid)
            .field("device", &self.context.info().name)
            .field("on_chip", &self.on_chip)
            .finish()
    }
}

fn invalid(field: &'static str, reason: String) -> RingKernelError {
    RingKernelError::InvalidConfig { field, reason }
}

impl CudaHaloExchange {
    /// A zeroed grid on device 0 with the default configuration.
    ///
    /// # Errors
    /// See [`CudaHaloExchange::with_config`].
    pub fn new(grid: HaloGrid) -> Result<Self> {
        Self::with_config(grid, CudaHaloConfig::default())
    }

    /// A zeroed grid on `config.device`.
    ///
    /// # Errors
    /// [`RingKernelError::BackendUnavailable`] without a GPU, driver or NVRTC;
    /// [`RingKernelError::InvalidConfig`] naming the limit when the tiles cannot all be resident
    /// at once (every tile is a block that waits for its neighbours), the stencil has more than
    /// [`MAX_POINTS`] points, on-chip tiles were demanded and do not fit, or the inboxes exceed
    /// 32-bit offsets; the driver's refusal (out of memory).
    pub fn with_config(grid: HaloGrid, config: CudaHaloConfig) -> Result<Self> {
        if grid.stencil_points().len() > MAX_POINTS {
            return Err(invalid(
                "halo_width",
                format!(
                    "the CUDA halo exchange takes stencils of at most {MAX_POINTS} points, this one has {}",
                    grid.stencil_points().len()
                ),
            ));
        }
        if config.face_timeout.is_zero() {
            return Err(invalid("face_timeout", "the face timeout must be positive".into()));
        }
        // Slots, inboxes and tables in u64 first: their u32 forms are used only when they fit.
        let dirs = grid.neighbourhood().directions();
        let face_sum: u64 =
            dirs.iter().map(|&d| 8 + grid.face_extent(d).iter().map(|&n| u64::from(n)).product::<u64>()).sum();
        let max_face: u64 =
            dirs.iter().map(|&d| grid.face_extent(d).iter().map(|&n| u64::from(n)).product::<u64>()).max().unwrap_or(0);
        let set_bytes = (8 * (8 + max_face) * dirs.len() as u64).next_multiple_of(128) * u64::from(grid.tile_count());
        if 2 * set_bytes > u64::from(u32::MAX) || face_sum > u64::from(u32::MAX) / 16 {
            return Err(invalid(
                "grid",
                format!(
                    "{} tiles need {} inbox bytes, more than 32-bit offsets reach",
                    grid.tile_count(),
                    2 * set_bytes
                ),
            ));
        }
        let context = Context::new(config.device)?;
        let info = context.info().clone();
        let module = load_module(&context)?;
        let run = module.function("rk_halo_run")?;

        // Shared memory: both levels of a tile when they fit beside the kernel's static arrays.
        let level_bytes = grid.padded_len() as u64 * 4;
        let mut optin = 0;
        check(
            // SAFETY: out-parameter call with the context bound (Context::new binds it).
            unsafe {
                sys::cuDeviceGetAttribute(
                    &mut optin,
                    sys::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN,
                    config.device,
                )
            },
            "cuDeviceGetAttribute",
        )?;
        let mut static_bytes = 0;
        check(
            // SAFETY: a loaded function; out-parameter call.
            unsafe {
                sys::cuFuncGetAttribute(
                    &mut static_bytes,
                    sys::CUfunction_attribute::CU_FUNC_ATTRIBUTE_SHARED_SIZE_BYTES,
                    run,
                )
            },
            "cuFuncGetAttribute",
        )?;
        let room = u64::try_from(optin - static_bytes).unwrap_or(0);
        let fits = 2 * level_bytes <= room;
        let on_chip = match config.on_chip {
            // On chip only if every tile can still be resident with it; else global memory.
            None if fits => {
                set_dynamic_shared(run, (2 * level_bytes) as u32)?;
                grid.tile_count() <= resident_blocks(run, (2 * level_bytes) as u32, &info)?
            }
            None => false,
            Some(false) => false,
            Some(true) if fits => true,
            Some(true) => {
                return Err(invalid(
                    "on_chip",
                    format!(
                        "a tile's two levels take {} bytes of shared memory, {} has {room} for a block",
                        2 * level_bytes,
                        info.name
                    ),
                ));
            }
        };
        let mut shared_bytes = if on_chip { (2 * level_bytes) as u32 } else { 0 };
        // The face tables too, when they fit and cost no resident tiles.
        let table_bytes = 16 * u64::from(table_stride(&grid));
        let mut tables_on_chip = false;
        if on_chip && 2 * level_bytes + table_bytes <= room {
            let with_tables = (2 * level_bytes + table_bytes) as u32;
            set_dynamic_shared(run, with_tables)?;
            if grid.tile_count() <= resident_blocks(run, with_tables, &info)? {
                shared_bytes = with_tables;
                tables_on_chip = true;
            }
        }
        if shared_bytes > 0 {
            set_dynamic_shared(run, shared_bytes)?;
        }
        let resident = resident_blocks(run, shared_bytes, &info)?;
        if grid.tile_count() > resident {
            return Err(invalid(
                "tile",
                format!(
                    "{} tiles cannot all be resident at once on {}: {resident} blocks of {HALO_THREADS} threads{} can \
                     (every tile is a block that waits for its neighbours); use larger tiles",
                    grid.tile_count(),
                    info.name,
                    if on_chip { format!(" and {shared_bytes} bytes of shared memory") } else { String::new() }
                ),
            ));
        }

        let stream = Arc::new(Stream::new(&context)?);
        let cell_bytes = level_bytes as usize * grid.tile_count() as usize;
        let cells = [DeviceBuffer::zeroed(&stream, cell_bytes)?, DeviceBuffer::zeroed(&stream, cell_bytes)?];
        let inboxes = DeviceBuffer::zeroed(&stream, 2 * set_bytes as usize)?;
        // The core's routes, with the slots of the CUDA inbox (8-byte pairs).
        let tables: Vec<u8> = (0..grid.tile_count())
            .flat_map(|t| {
                let mut table = grid.routing_table(t);
                table.inbox_stride = ll_inbox_stride(&grid);
                for route in &mut table.routes[..table.route_count as usize] {
                    let slot = grid.slot_of(opposite(route.direction)).expect("neighbourhoods are symmetric");
                    route.inbox_offset = route.dest_threadgroup * ll_inbox_stride(&grid) + slot * ll_slot_bytes(&grid);
                }
                bytemuck::bytes_of(&table).to_vec()
            })
            .collect();
        let routes = DeviceBuffer::zeroed(&stream, tables.len())?;
        routes.upload(&tables)?;
        let mut geom: Vec<i32> = OFFSETS.iter().flatten().copied().collect();
        let directions = grid.neighbourhood().directions();
        geom.extend((0..26).map(|i| directions.get(i).map_or(-1, |&d| d as i32)));
        geom.extend(grid.stencil_points().iter().flatten());
        let geom_bytes: Vec<u8> = geom.iter().flat_map(|v| v.to_le_bytes()).collect();
        let geom_buffer = DeviceBuffer::zeroed(&stream, geom_bytes.len())?;
        geom_buffer.upload(&geom_bytes)?;
        let status = DeviceBuffer::zeroed(&stream, STATUS_WORDS * 4)?;
        let (face_tables, face_counts, table_stride) = face_tables(&grid);
        let tables_buffer = DeviceBuffer::zeroed(&stream, face_tables.len() * 4)?;
        tables_buffer.upload(bytemuck::cast_slice(&face_tables))?;
        let counts = DeviceBuffer::zeroed(&stream, face_counts.len() * 4)?;
        counts.upload(bytemuck::cast_slice(&face_counts))?;
        stream.synchronize("uploading the halo exchange's tables")?;
        let mut exchange = Self {
            grid,
            config,
            context,
            stream,
            _module: module,
            run,
            cells,
            inboxes,
            routes,
            geom: geom_buffer,
            status,
            tables: tables_buffer,
            counts,
            table_stride,
            current: 0,
            step: 0,
            on_chip,
            tables_on_chip,
            shared_bytes,
            stats: HaloExchangeStats::default(),
            broken: None,
            inject: None,
            profile: None,
        };
        exchange.reset_inboxes()?;
        Ok(exchange)
    }

    /// The device.
    pub fn device(&self) -> &DeviceInfo {
        self.context.info()
    }

    /// Whether tiles stay in shared memory across a run's steps.
    pub fn on_chip(&self) -> bool {
        self.on_chip
    }

    /// How many tile blocks can be resident at once on `device` when each takes `on_chip_bytes`
    /// of dynamic shared memory (0: tiles in global memory): the most tiles a
    /// [`CudaHaloExchange`] may have.
    ///
    /// # Errors
    /// As [`CudaHaloExchange::with_config`], for the device.
    pub fn resident_tiles(device: i32, on_chip_bytes: u32) -> Result<u32> {
        let context = Context::new(device)?;
        let info = context.info().clone();
        let module = load_module(&context)?;
        let run = module.function("rk_halo_run")?;
        if on_chip_bytes > 0 {
            set_dynamic_shared(run, on_chip_bytes)?;
        }
        resident_blocks(run, on_chip_bytes, &info)
    }

    /// Makes the kernel inject `fault` in the next runs (tests of the error paths), or stops
    /// injecting (`None`).
    #[doc(hidden)]
    pub fn inject(&mut self, fault: Option<InjectedFault>) {
        self.inject = fault;
    }

    /// Fills both inbox sets with 0xFF bytes: no slot holds a sequence a step will wait for.
    fn reset_inboxes(&mut self) -> Result<()> {
        self.stream.bind()?;
        check(
            // SAFETY: the inbox buffer's own size, ordered on its stream.
            unsafe { sys::cuMemsetD8Async(self.inboxes.address(), 0xFF, self.inboxes.bytes(), self.stream.raw()) },
            "cuMemsetD8Async",
        )?;
        self.stream.synchronize("clearing the halo inboxes")?;
        Ok(())
    }

    fn params(&self, steps: u32) -> RkHaloParams {
        let g = &self.grid;
        let (injected_tile, inject_step, inject_kind) = match self.inject {
            None => (0, 0, 0),
            Some(InjectedFault::WrongDirection { tile, step }) => (tile + 1, step, 1),
            Some(InjectedFault::Silent { tile, step }) => (tile + 1, step, 2),
        };
        RkHaloParams {
            tile: g.tile(),
            tiles: g.tile_count(),
            padded: g.padded(),
            padded_len: g.padded_len() as u32,
            pad: [g.pad(0), g.pad(1), g.pad(2)],
            width: g.width(),
            directions: g.neighbourhood().directions().len() as u32,
            slot_bytes: ll_slot_bytes(g),
            inbox_stride: ll_inbox_stride(g),
            first_step: self.step,
            steps,
            points: g.stencil_points().len() as u32,
            weight_bits: g.stencil_weight().to_bits(),
            stencil: g.stencil().code(),
            on_chip: u32::from(self.on_chip) | u32::from(self.tables_on_chip) << 1,
            set_bytes: ll_inbox_stride(g) * g.tile_count(),
            timeout_ms: self.config.face_timeout.as_millis().clamp(1, u128::from(u32::MAX)) as u32,
            inject_tile: injected_tile,
            inject_step,
            inject_kind,
            cells_current: words(self.cells[self.current].address()),
            cells_other: words(self.cells[self.current ^ 1].address()),
            inboxes: words(self.inboxes.address()),
            routes: words(self.routes.address()),
            geom: words(self.geom.address()),
            status: words(self.status.address()),
            profile_tile: self.profile_tile(),
            table_stride: self.table_stride,
            tables: words(self.tables.address()),
            counts: words(self.counts.address()),
        }
    }

    /// A tile in the middle of the grid (all its neighbours there).
    fn profile_tile(&self) -> u32 {
        let n = self.grid.tiles();
        self.grid.tile_id([n[0] / 2, n[1] / 2, n[2] / 2])
    }

    /// The phase profile of the last run that completed.
    pub fn phases(&self) -> Option<HaloPhases> {
        self.profile
    }

    fn read_status(&self) -> Result<[u32; STATUS_WORDS]> {
        let mut status = [0u32; STATUS_WORDS];
        // SAFETY: `status` is STATUS_WORDS words, the buffer as many.
        unsafe { self.status.download_to(status.as_mut_ptr().cast(), STATUS_WORDS * 4)? };
        Ok(status)
    }

    /// One launch of `steps` steps, waited for.
    fn run(&mut self, steps: u32) -> Result<()> {
        let mut params = self.params(steps);
        let zero = [0u8; STATUS_WORDS * 4];
        self.status.upload(&zero)?;
        let mut args = [(&mut params as *mut RkHaloParams).cast::<std::ffi::c_void>()];
        self.stream.bind()?;
        // SAFETY: `rk_halo_run` takes one RkHaloParams by value; every address in it is a buffer
        // of this exchange sized for the grid. A cooperative launch refuses a grid whose blocks
        // cannot all be resident (checked at creation too).
        let launched = unsafe {
            sys::cuLaunchCooperativeKernel(
                self.run,
                self.grid.tile_count(),
                1,
                1,
                HALO_THREADS,
                1,
                1,
                self.shared_bytes,
                self.stream.raw(),
                args.as_mut_ptr(),
            )
        };
        check(launched, "launching the halo exchange")?;
        // Whatever goes wrong from here leaves the grid unspecified.
        self.broken = Some("a run did not finish".into());
        self.stream.synchronize("running the halo exchange")?;
        let status = self.read_status()?;
        if status[1] != 0 {
            const FIELDS: [&str; 8] =
                ["source", "direction", "width", "height", "depth", "element size", "sequence", "flags"];
            let reason = match status[1] {
                1 => format!(
                    "tile {} found a face other than the one expected from direction {} at step {} (its header's {} is \
                     {}, expected {}); no cell was computed from it and the run stopped",
                    status[2],
                    status[3],
                    status[4],
                    FIELDS.get(status[5] as usize).unwrap_or(&"?"),
                    status[6],
                    status[7]
                ),
                _ => format!(
                    "tile {} waited more than {:?} for its face from direction {} at step {}; the run stopped",
                    status[2], self.config.face_timeout, status[3], status[4]
                ),
            };
            self.stats.mismatches += u64::from(status[0]);
            self.broken = Some(reason.clone());
            return Err(RingKernelError::KernelFault { kernel: "cuda halo exchange".into(), reason });
        }
        if status[STATUS_COMPLETED] != self.grid.tile_count() {
            let reason = format!(
                "{} of {} tiles finished the run without a reported fault",
                status[STATUS_COMPLETED],
                self.grid.tile_count()
            );
            self.broken = Some(reason.clone());
            return Err(RingKernelError::KernelFault { kernel: "cuda halo exchange".into(), reason });
        }
        let word = |i: usize| f64::from(status[i]) + f64::from(status[i + 1]) * 4_294_967_296.0;
        let per_step = |i: usize| word(STATUS_PROFILE + 2 * i) / f64::from(steps);
        self.profile = Some(HaloPhases {
            tile: self.profile_tile(),
            steps,
            send_ns: per_step(0),
            receive_ns: per_step(1),
            compute_ns: per_step(2),
        });
        if steps % 2 == 1 {
            self.current ^= 1;
        }
        self.step += steps;
        self.broken = None;
        Ok(())
    }
}

/// The face tables of every tile (`RkHaloParams::tables`: send from, send to, receive from,
/// receive to, each `tiles × stride` words), the per-tile counts (sent, received), and the
/// stride: the kernel then moves each pair without working out where it belongs.
fn face_tables(grid: &HaloGrid) -> (Vec<u32>, Vec<u32>, u32) {
    let directions = grid.neighbourhood().directions();
    let stride = table_stride(grid);
    let tiles = grid.tile_count() as usize;
    let plane = tiles * stride as usize;
    let mut tables = vec![0u32; 4 * plane];
    let mut counts = vec![0u32; 2 * tiles];
    let slot_pairs = ll_slot_bytes(grid) / 8;
    let stride_pairs = ll_inbox_stride(grid) / 8;
    let cells = |origin: [u32; 3], extent: [u32; 3]| {
        (0..extent[2]).flat_map(move |z| {
            (0..extent[1]).flat_map(move |y| (0..extent[0]).map(move |x| [origin[0] + x, origin[1] + y, origin[2] + z]))
        })
    };
    for tile in 0..grid.tile_count() {
        let base = tile as usize * stride as usize;
        let mut sent = 0usize;
        let table = grid.routing_table(tile);
        for (r, route) in table.routes[..table.route_count as usize].iter().enumerate() {
            let d = route.direction;
            let slot = grid.slot_of(opposite(d)).expect("neighbourhoods are symmetric");
            let to = route.dest_threadgroup * stride_pairs + slot * slot_pairs;
            for k in 0..8 {
                tables[base + sent] = 0x8000_0000 | (r as u32) << 3 | k;
                tables[plane + base + sent] = to + k;
                sent += 1;
            }
            for (e, c) in cells(grid.send_origin(d), grid.face_extent(d)).enumerate() {
                tables[base + sent] = grid.padded_index(c) as u32;
                tables[plane + base + sent] = to + 8 + e as u32;
                sent += 1;
            }
        }
        let mut received = 0usize;
        for (s, &from) in directions.iter().enumerate() {
            if grid.neighbour(tile, from).is_none() {
                continue;
            }
            let at = tile * stride_pairs + s as u32 * slot_pairs;
            for k in 0..8 {
                tables[2 * plane + base + received] = at + k;
                tables[3 * plane + base + received] = 0x8000_0000 | (s as u32) << 3 | k;
                received += 1;
            }
            for (e, c) in cells(grid.ghost_origin(from), grid.face_extent(from)).enumerate() {
                tables[2 * plane + base + received] = at + 8 + e as u32;
                tables[3 * plane + base + received] = grid.padded_index(c) as u32;
                received += 1;
            }
        }
        counts[2 * tile as usize] = sent as u32;
        counts[2 * tile as usize + 1] = received as u32;
    }
    (tables, counts, stride)
}

/// Entries per tile of each face table: every direction's header and face.
fn table_stride(grid: &HaloGrid) -> u32 {
    grid.neighbourhood().directions().iter().map(|&d| 8 + grid.face_extent(d).iter().product::<u32>()).sum()
}

/// Lets `run` take `bytes` of dynamic shared memory.
fn set_dynamic_shared(run: sys::CUfunction, bytes: u32) -> Result<()> {
    check(
        // SAFETY: a loaded function; the driver refuses sizes beyond the device's limit.
        unsafe {
            sys::cuFuncSetAttribute(
                run,
                sys::CUfunction_attribute::CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
                bytes as i32,
            )
        },
        "cuFuncSetAttribute",
    )?;
    Ok(())
}

/// Bytes of a CUDA inbox slot: the header's 8 words and the largest face, each word as a
/// (word, sequence) pair of 8 bytes.
fn ll_slot_bytes(grid: &HaloGrid) -> u32 {
    8 * (8 + grid.max_face_elements())
}

/// Bytes of one tile's CUDA inbox: a slot per direction, rounded up to 128.
fn ll_inbox_stride(grid: &HaloGrid) -> u32 {
    (ll_slot_bytes(grid) * grid.neighbourhood().directions().len() as u32).next_multiple_of(128)
}

/// The halo module (NVRTC, cached per process), loaded into `context`.
fn load_module(context: &Context) -> Result<Module> {
    let (major, minor) = context.info().compute_capability;
    let ptx = compile("ringkernel_halo", &halo_source(), arch_name(major, minor))?;
    Ok(Module::load(context, &ptx)?)
}

/// Blocks of `run` with `shared_bytes` of dynamic shared memory resident at once on the device.
fn resident_blocks(run: sys::CUfunction, shared_bytes: u32, info: &DeviceInfo) -> Result<u32> {
    let mut per_sm = 0;
    // SAFETY: a loaded function; out-parameter call.
    let r = unsafe {
        sys::cuOccupancyMaxActiveBlocksPerMultiprocessor(&mut per_sm, run, HALO_THREADS as i32, shared_bytes as usize)
    };
    check(r, "cuOccupancyMaxActiveBlocksPerMultiprocessor")?;
    Ok(per_sm.max(0) as u32 * info.multiprocessors.max(0) as u32)
}

impl HaloExchange for CudaHaloExchange {
    fn grid(&self) -> &HaloGrid {
        &self.grid
    }

    fn upload(&mut self, cells: &[f32]) -> Result<()> {
        check_cells(&self.grid, cells)?;
        // Until the upload has finished, the device holds neither the old grid nor the new one.
        self.broken = Some("an upload did not finish".into());
        let tiles = self.grid.load_tiles(cells);
        // Both levels: a wave starts at rest.
        for buffer in &self.cells {
            buffer.upload(bytemuck::cast_slice(&tiles))?;
        }
        self.stream.synchronize("uploading the halo grid")?;
        self.reset_inboxes()?;
        self.current = 0;
        self.step = 0;
        self.broken = None;
        Ok(())
    }

    fn step(&mut self, steps: u32) -> Result<()> {
        if let Some(reason) = &self.broken {
            return Err(RingKernelError::KernelFault {
                kernel: "cuda halo exchange".into(),
                reason: format!("{reason}; the grid is unspecified until the next upload"),
            });
        }
        if steps == 0 {
            return Ok(());
        }
        // Sequence numbers are u32 and 0xFFFFFFFF marks an empty slot.
        if u64::from(self.step) + u64::from(steps) >= u64::from(u32::MAX) {
            return Err(invalid(
                "steps",
                format!(
                    "{steps} steps after {} would wrap the faces' 32-bit sequence numbers; upload the grid again to \
                     restart them",
                    self.step
                ),
            ));
        }
        let start = Instant::now();
        self.run(steps)?;
        let (messages, bytes) = self.grid.step_traffic();
        self.stats.steps += u64::from(steps);
        self.stats.messages += messages * u64::from(steps);
        self.stats.bytes += bytes * u64::from(steps);
        self.stats.elapsed_ns += start.elapsed().as_nanos() as u64;
        Ok(())
    }

    fn download(&mut self) -> Result<Vec<f32>> {
        if let Some(reason) = &self.broken {
            return Err(RingKernelError::KernelFault {
                kernel: "cuda halo exchange".into(),
                reason: format!("{reason}; the grid is unspecified until the next upload"),
            });
        }
        let buffer = &self.cells[self.current];
        let mut values = vec![0f32; buffer.bytes() / 4];
        // SAFETY: `values` holds the buffer's bytes.
        unsafe { buffer.download_to(values.as_mut_ptr().cast(), values.len() * 4)? };
        Ok(self.grid.store_tiles(&values))
    }

    fn stats(&self) -> HaloExchangeStats {
        self.stats
    }
}

/// A grid of `cells` with tiles chosen for `device`: as many tiles as can be resident at once
/// (on chip when a tile's two levels fit in shared memory, as [`CudaHaloExchange`] decides).
///
/// # Errors
/// A geometry the core refuses; the device's absence.
pub fn auto_grid(
    cells: [u32; 3],
    width: u32,
    neighbourhood: ringkernel_core::halo::Neighbourhood,
    stencil: ringkernel_core::halo::Stencil,
    device: i32,
) -> Result<HaloGrid> {
    let mut max_tiles = CudaHaloExchange::resident_tiles(device, 0)?;
    let mut optin = 0;
    Context::new(device)?;
    check(
        // SAFETY: out-parameter call; the driver is initialised (Context::new).
        unsafe {
            sys::cuDeviceGetAttribute(
                &mut optin,
                sys::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN,
                device,
            )
        },
        "cuDeviceGetAttribute",
    )?;
    for _ in 0..8 {
        let tile = split_tiles(cells, width, neighbourhood.is_3d(), max_tiles);
        let grid = HaloGrid::new(cells, tile, width, neighbourhood)?.with_stencil(stencil)?;
        // Shared memory of both levels, with room for the kernel's own arrays (~3 KiB).
        let bytes = 2 * grid.padded_len() as u64 * 4;
        if bytes + 4096 > u64::try_from(optin).unwrap_or(0) {
            return Ok(grid);
        }
        let resident = CudaHaloExchange::resident_tiles(device, bytes as u32)?;
        if grid.tile_count() <= resident {
            return Ok(grid);
        }
        max_tiles = resident.max(1);
    }
    let tile = split_tiles(cells, width, neighbourhood.is_3d(), max_tiles);
    HaloGrid::new(cells, tile, width, neighbourhood)?.with_stencil(stencil)
}

/// The baseline a user would write without persistent actors: the same Jacobi sweep (von Neumann
/// neighbourhood of width 1, the same sum order and weight, zeros outside the grid), one thread
/// per cell, one kernel launch per step — enqueued back to back, or captured into a CUDA Graph.
pub struct PlainJacobi {
    context: Arc<Context>,
    stream: Arc<Stream>,
    _module: Module,
    kernel: sys::CUfunction,
    cells: [DeviceBuffer; 2],
    grid: [u32; 3],
    weight: f32,
    current: usize,
}

// SAFETY: handles are used with the context bound, by one caller at a time (&mut self).
unsafe impl Send for PlainJacobi {}

impl PlainJacobi {
    /// A zeroed grid of `grid` cells (z = 1 in 2D) on `device`.
    ///
    /// # Errors
    /// The device's absence; the driver's refusal.
    pub fn new(grid: [u32; 3], device: i32) -> Result<Self> {
        let context = Context::new(device)?;
        let module = load_module(&context)?;
        let kernel = module.function("rk_plain_jacobi")?;
        let stream = Arc::new(Stream::new(&context)?);
        let bytes = grid.iter().map(|&n| n as usize).product::<usize>() * 4;
        let cells = [DeviceBuffer::zeroed(&stream, bytes)?, DeviceBuffer::zeroed(&stream, bytes)?];
        let weight = if grid[2] > 1 { 1.0 / 6.0 } else { 0.25 };
        Ok(Self { context, stream, _module: module, kernel, cells, grid, weight, current: 0 })
    }

    /// Loads the grid (x fastest).
    ///
    /// # Errors
    /// [`RingKernelError::InvalidConfig`] for a wrong length; the driver's refusal.
    pub fn upload(&mut self, cells: &[f32]) -> Result<()> {
        if cells.len() * 4 != self.cells[0].bytes() {
            return Err(invalid("cells", format!("{} values for a grid of {:?}", cells.len(), self.grid)));
        }
        self.cells[0].upload(bytemuck::cast_slice(cells))?;
        self.stream.synchronize("uploading the plain grid")?;
        self.current = 0;
        Ok(())
    }

    fn enqueue(&mut self, steps: u32) -> Result<()> {
        let block = if self.grid[2] > 1 { [32u32, 4, 2] } else { [32, 8, 1] };
        let blocks = [0, 1, 2].map(|a| self.grid[a].div_ceil(block[a]));
        for _ in 0..steps {
            let (mut input, mut output) = (self.cells[self.current].address(), self.cells[self.current ^ 1].address());
            let (mut nx, mut ny, mut nz, mut weight) = (self.grid[0], self.grid[1], self.grid[2], self.weight);
            let mut params: [*mut std::ffi::c_void; 6] = [
                (&mut input as *mut u64).cast(),
                (&mut output as *mut u64).cast(),
                (&mut nx as *mut u32).cast(),
                (&mut ny as *mut u32).cast(),
                (&mut nz as *mut u32).cast(),
                (&mut weight as *mut f32).cast(),
            ];
            check(
                // SAFETY: `rk_plain_jacobi(const float*, float*, u32, u32, u32, float)`; both buffers
                // hold the grid; the parameters outlive the call (the driver copies them).
                unsafe {
                    sys::cuLaunchKernel(
                        self.kernel,
                        blocks[0],
                        blocks[1],
                        blocks[2],
                        block[0],
                        block[1],
                        block[2],
                        0,
                        self.stream.raw(),
                        params.as_mut_ptr(),
                        std::ptr::null_mut(),
                    )
                },
                "cuLaunchKernel",
            )?;
            self.current ^= 1;
        }
        Ok(())
    }

    /// Runs `steps` steps as `steps` launches enqueued back to back, then waits; the wall time.
    ///
    /// # Errors
    /// The driver's refusal.
    pub fn run_launches(&mut self, steps: u32) -> Result<Duration> {
        self.stream.bind()?;
        let start = Instant::now();
        self.enqueue(steps)?;
        self.stream.synchronize("running the plain stencil")?;
        Ok(start.elapsed())
    }

    /// Captures `steps` launches into a CUDA Graph (not timed), then launches it and waits; the
    /// wall time of the launch and the wait.
    ///
    /// # Errors
    /// The driver's refusal.
    pub fn run_graph(&mut self, steps: u32) -> Result<Duration> {
        self.stream.bind()?;
        let stream = self.stream.raw();
        let mut graph = std::ptr::null_mut();
        let mut exec = std::ptr::null_mut();
        let before = self.current;
        // SAFETY: capture on our own stream in relaxed mode; the template is destroyed once
        // instantiated, the executable graph after its launch completed.
        unsafe {
            check(
                sys::cuStreamBeginCapture_v2(stream, sys::CUstreamCaptureMode::CU_STREAM_CAPTURE_MODE_RELAXED),
                "cuStreamBeginCapture",
            )?;
            let recorded = self.enqueue(steps);
            let ended = check(sys::cuStreamEndCapture(stream, &mut graph), "cuStreamEndCapture");
            recorded?;
            ended?;
            check(sys::cuGraphInstantiateWithFlags(&mut exec, graph, 0), "cuGraphInstantiate")?;
            let _ = sys::cuGraphDestroy(graph);
        }
        // Capturing recorded the launches without running them.
        let after = self.current;
        self.current = before;
        let start = Instant::now();
        // SAFETY: an instantiated graph on our own stream.
        let launched = check(unsafe { sys::cuGraphLaunch(exec, stream) }, "cuGraphLaunch");
        let synced = self.stream.synchronize("running the plain stencil's graph");
        let elapsed = start.elapsed();
        // SAFETY: the launch has completed (or failed).
        unsafe {
            let _ = sys::cuGraphExecDestroy(exec);
        }
        launched?;
        synced?;
        self.current = after;
        Ok(elapsed)
    }

    /// Reads the grid back.
    ///
    /// # Errors
    /// The driver's refusal.
    pub fn download(&mut self) -> Result<Vec<f32>> {
        let buffer = &self.cells[self.current];
        let mut values = vec![0f32; buffer.bytes() / 4];
        // SAFETY: `values` holds the buffer's bytes.
        unsafe { buffer.download_to(values.as_mut_ptr().cast(), values.len() * 4)? };
        Ok(values)
    }

    /// Device-to-device copy bandwidth: one buffer copied into the other `rounds` times, bytes
    /// read plus written per second (GB/s), the median round.
    ///
    /// # Errors
    /// The driver's refusal.
    pub fn copy_gbps(&mut self, rounds: usize) -> Result<f64> {
        let bytes = self.cells[0].bytes();
        let mut rates = Vec::with_capacity(rounds);
        for _ in 0..rounds.max(1) {
            self.stream.bind()?;
            let start = Instant::now();
            check(
                // SAFETY: two buffers of `bytes` each, ordered on their stream.
                unsafe {
                    sys::cuMemcpyDtoDAsync_v2(
                        self.cells[1].address(),
                        self.cells[0].address(),
                        bytes,
                        self.stream.raw(),
                    )
                },
                "cuMemcpyDtoDAsync",
            )?;
            self.stream.synchronize("copying device memory")?;
            rates.push(2.0 * bytes as f64 / start.elapsed().as_secs_f64() / 1e9);
        }
        rates.sort_by(f64::total_cmp);
        let _ = &self.context;
        Ok(rates[rates.len() / 2])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ringkernel_core::halo::Neighbourhood;

    /// The face tables move every face word to where the core's exchange puts it: one step's
    /// sends and receives through the tables fill every tile's ghost cells exactly as
    /// `send_faces` + `apply_faces` do, for every neighbourhood.
    #[test]
    fn face_tables_move_faces_where_the_core_does() {
        for (g, t, w, n) in [
            ([16, 12, 1], [4, 4, 1], 1, Neighbourhood::VonNeumann2D),
            ([20, 10, 1], [5, 5, 1], 2, Neighbourhood::Moore2D),
            ([12, 6, 6], [4, 3, 3], 2, Neighbourhood::VonNeumann3D),
            ([12, 8, 4], [4, 4, 2], 2, Neighbourhood::Moore3D),
        ] {
            let grid = HaloGrid::new(g, t, w, n).unwrap();
            let cells: Vec<f32> = (0..grid.cell_count()).map(|i| i as f32 * 0.5 - 7.0).collect();
            let tiles: Vec<Vec<f32>> = (0..grid.tile_count()).map(|t| grid.load_tile(t, &cells)).collect();
            // The core's exchange.
            let mut inboxes = vec![0u8; (grid.inbox_stride() * grid.tile_count()) as usize];
            let mut want = tiles.clone();
            for (tile, padded) in tiles.iter().enumerate() {
                grid.send_faces(tile as u32, padded, 0, &mut inboxes);
            }
            for (tile, padded) in want.iter_mut().enumerate() {
                grid.apply_faces(tile as u32, padded, 0, &inboxes).unwrap();
            }
            // Through the tables: words into an inbox set of pairs, then into the ghosts.
            let (tables, counts, stride) = face_tables(&grid);
            let plane = grid.tile_count() as usize * stride as usize;
            let mut set = vec![u32::MAX; (ll_inbox_stride(&grid) / 8 * grid.tile_count()) as usize];
            let mut got = tiles.clone();
            for (tile, padded) in tiles.iter().enumerate() {
                let base = tile * stride as usize;
                for i in 0..counts[2 * tile] as usize {
                    let (from, to) = (tables[base + i], tables[plane + base + i] as usize);
                    set[to] = if from & 0x8000_0000 != 0 { from } else { padded[from as usize].to_bits() };
                }
            }
            for (tile, padded) in got.iter_mut().enumerate() {
                let base = tile * stride as usize;
                for i in 0..counts[2 * tile + 1] as usize {
                    let (from, to) = (tables[2 * plane + base + i] as usize, tables[3 * plane + base + i]);
                    assert_ne!(set[from], u32::MAX, "{n:?}: tile {tile} reads a pair nobody wrote");
                    if to & 0x8000_0000 == 0 {
                        padded[to as usize] = f32::from_bits(set[from]);
                    } else {
                        assert!(set[from] & 0x8000_0000 != 0, "{n:?}: a header pair holds a cell");
                    }
                }
            }
            for (tile, (a, b)) in got.iter().zip(&want).enumerate() {
                assert!(a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits()), "{n:?}: tile {tile}");
            }
        }
    }
}
