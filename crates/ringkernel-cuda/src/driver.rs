//! A thin, owned layer over the CUDA driver API (through cudarc's `sys` bindings, loaded
//! dynamically): one context per runtime, streams, pinned mapped host memory, device memory,
//! modules, events. Every call binds the context to the calling thread first. Nothing here
//! synchronises the whole device: persistent kernels never end on their own, so a call that waits
//! for all work (`cuMemFree`, `cuMemFreeHost`, `cuCtxSynchronize`) would wait forever. Device memory
//! is allocated and freed stream-ordered; pinned memory is pooled and returned to the driver only
//! when the context goes.

use std::ffi::{CStr, CString, c_void};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use cudarc::driver::sys::{self, CUresult};
use ringkernel_core::error::{Result, RingKernelError};
use ringkernel_core::region::{MemoryKind, Region};

/// What a failed driver call says: the call and the error's name (`CUDA_ERROR_ILLEGAL_ADDRESS`).
pub fn describe(what: &str, code: CUresult) -> String {
    let mut name: *const std::ffi::c_char = std::ptr::null();
    // SAFETY: cuGetErrorName writes a pointer to a static string (or leaves it null).
    let known = unsafe { sys::cuGetErrorName(code, &mut name) } == CUresult::CUDA_SUCCESS && !name.is_null();
    // SAFETY: a non-null name points to a NUL-terminated static string.
    let name = if known { unsafe { CStr::from_ptr(name) }.to_string_lossy().into_owned() } else { format!("{code:?}") };
    format!("{what} failed with {name}")
}

/// A driver call that failed: which call, and the driver's result code (kept, not only its text,
/// so that callers can tell a lost context from a refusal).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DriverError {
    /// The call (`cuMemAllocAsync`) or what it was for.
    pub call: &'static str,
    /// The driver's result.
    pub code: CUresult,
}

impl DriverError {
    /// Whether the error loses the context for good (a trap, an illegal address, …): every later
    /// call in it fails the same way.
    pub fn is_sticky(&self) -> bool {
        matches!(
            self.code,
            CUresult::CUDA_ERROR_LAUNCH_FAILED
                | CUresult::CUDA_ERROR_ILLEGAL_ADDRESS
                | CUresult::CUDA_ERROR_ILLEGAL_INSTRUCTION
                | CUresult::CUDA_ERROR_MISALIGNED_ADDRESS
                | CUresult::CUDA_ERROR_HARDWARE_STACK_ERROR
                | CUresult::CUDA_ERROR_INVALID_PC
        )
    }
}

impl std::fmt::Display for DriverError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&describe(self.call, self.code))
    }
}

impl std::error::Error for DriverError {}

impl From<DriverError> for RingKernelError {
    fn from(error: DriverError) -> Self {
        RingKernelError::BackendUnavailable(error.to_string())
    }
}

/// `Ok` for `CUDA_SUCCESS`, else the typed error of `call`.
pub(crate) fn check(code: CUresult, call: &'static str) -> std::result::Result<(), DriverError> {
    if code == CUresult::CUDA_SUCCESS { Ok(()) } else { Err(DriverError { call, code }) }
}

fn fault(call: &'static str, code: CUresult) -> RingKernelError {
    DriverError { call, code }.into()
}

/// The GPU a runtime runs on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceInfo {
    /// CUDA device ordinal.
    pub ordinal: i32,
    /// Its name (`NVIDIA H100 80GB HBM3`).
    pub name: String,
    /// Compute capability, major and minor.
    pub compute_capability: (i32, i32),
    /// Streaming multiprocessors.
    pub multiprocessors: i32,
    /// Device memory in bytes.
    pub memory_bytes: usize,
    /// Driver API version (`13000` for CUDA 13.0).
    pub driver_version: i32,
    /// Peak SM clock in kHz.
    pub clock_khz: i32,
}

impl std::fmt::Display for DeviceInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (major, minor) = self.compute_capability;
        write!(
            f,
            "{} (device {}, compute capability {major}.{minor}, {} SMs, {} GiB, driver API {}.{})",
            self.name,
            self.ordinal,
            self.multiprocessors,
            self.memory_bytes >> 30,
            self.driver_version / 1000,
            self.driver_version % 1000 / 10
        )
    }
}

/// Whether libcuda can be loaded (cudarc panics on first use when it cannot).
pub fn driver_present() -> bool {
    // SAFETY: only tries to load the library by name.
    unsafe { sys::is_culib_present() }
}

/// Initialises the driver once and describes device `ordinal`.
///
/// # Errors
/// [`RingKernelError::BackendUnavailable`] saying why: no driver library, no device, a driver
/// error.
pub fn probe(ordinal: i32) -> Result<DeviceInfo> {
    if !driver_present() {
        return Err(RingKernelError::BackendUnavailable(
            "the NVIDIA driver library (libcuda.so) is not installed on this machine".into(),
        ));
    }
    static INIT: OnceLock<CUresult> = OnceLock::new();
    let init = *INIT.get_or_init(|| {
        // The pool, the launch, monitor and probe streams share the device's hardware queues (8
        // by default): ask for the most there are, unless the user chose.
        if std::env::var_os("CUDA_DEVICE_MAX_CONNECTIONS").is_none() {
            // SAFETY: set once, before the driver reads it at cuInit; RingKernel reads no other
            // variable concurrently (a program that reads its environment from other threads at
            // this moment should set the variable itself).
            unsafe { std::env::set_var("CUDA_DEVICE_MAX_CONNECTIONS", "32") };
        }
        // SAFETY: cuInit may be called any number of times; the library is present.
        unsafe { sys::cuInit(0) }
    });
    if init != CUresult::CUDA_SUCCESS {
        return Err(fault("cuInit", init));
    }
    let mut count = 0;
    // SAFETY: plain out-parameter calls on an initialised driver.
    unsafe {
        let r = sys::cuDeviceGetCount(&mut count);
        if r != CUresult::CUDA_SUCCESS {
            return Err(fault("cuDeviceGetCount", r));
        }
        if ordinal < 0 || ordinal >= count {
            return Err(RingKernelError::BackendUnavailable(format!(
                "no CUDA device {ordinal} (this machine has {count})"
            )));
        }
        let mut device = 0;
        let r = sys::cuDeviceGet(&mut device, ordinal);
        if r != CUresult::CUDA_SUCCESS {
            return Err(fault("cuDeviceGet", r));
        }
        let attribute = |attribute| {
            let mut value = 0;
            let _ = sys::cuDeviceGetAttribute(&mut value, attribute, device);
            value
        };
        use sys::CUdevice_attribute::*;
        let mut name = [0 as std::ffi::c_char; 256];
        let _ = sys::cuDeviceGetName(name.as_mut_ptr(), name.len() as i32, device);
        let mut memory_bytes = 0usize;
        let _ = sys::cuDeviceTotalMem_v2(&mut memory_bytes, device);
        let mut driver_version = 0;
        let _ = sys::cuDriverGetVersion(&mut driver_version);
        if attribute(CU_DEVICE_ATTRIBUTE_CAN_MAP_HOST_MEMORY) == 0 {
            return Err(RingKernelError::BackendUnavailable(format!(
                "CUDA device {ordinal} cannot map host memory, which the rings need"
            )));
        }
        Ok(DeviceInfo {
            ordinal,
            name: CStr::from_ptr(name.as_ptr()).to_string_lossy().into_owned(),
            compute_capability: (
                attribute(CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR),
                attribute(CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR),
            ),
            multiprocessors: attribute(CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT),
            clock_khz: attribute(CU_DEVICE_ATTRIBUTE_CLOCK_RATE),
            memory_bytes,
            driver_version,
        })
    }
}

/// A pinned block handed back by a region, reusable once its actor's kernel has finished.
struct PooledBlock {
    host: *mut u8,
    device: u64,
    len: usize,
    reusable: Arc<AtomicBool>,
}

/// One CUDA context, owned by a runtime (and kept alive by everything allocated in it).
pub struct Context {
    raw: sys::CUcontext,
    info: DeviceInfo,
    /// Set once a sticky error has lost the context: the hardware error.
    poisoned: Mutex<Option<DriverError>>,
    pool: Mutex<Vec<PooledBlock>>,
    /// Set when a persistent kernel did not end: the context (and its memory) is then leaked
    /// rather than freed under a kernel that may still use it.
    leaked: AtomicBool,
}

// SAFETY: a CUDA context may be used from any thread (each call binds it first); the raw pointers
// in the pool are owned by the context and only touched under its locks.
unsafe impl Send for Context {}
// SAFETY: as above.
unsafe impl Sync for Context {}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context").field("device", &self.info.name).finish()
    }
}

impl Context {
    /// A new context on device `ordinal` (its own, not the primary one: a runtime whose context a
    /// hardware fault lost can be replaced by a new runtime in the same process).
    ///
    /// # Errors
    /// [`RingKernelError::BackendUnavailable`] with the reason.
    pub fn new(ordinal: i32) -> Result<Arc<Self>> {
        let info = probe(ordinal)?;
        let mut device = 0;
        let mut raw = std::ptr::null_mut();
        // SAFETY: the driver is initialised (probe); out-parameters are valid.
        unsafe {
            let r = sys::cuDeviceGet(&mut device, ordinal);
            if r != CUresult::CUDA_SUCCESS {
                return Err(fault("cuDeviceGet", r));
            }
            // Whatever was current here (a lost context, say) is not the parent of this one.
            let _ = sys::cuCtxSetCurrent(std::ptr::null_mut());
            let flags = sys::CUctx_flags::CU_CTX_MAP_HOST as u32;
            let mut r = sys::cuCtxCreate_v4(&mut raw, std::ptr::null_mut(), flags, device);
            if r != CUresult::CUDA_SUCCESS {
                // A hardware fault of an earlier context can linger in the device's primary
                // context; resetting it (it holds nothing of ours) lets a new context start.
                let _ = sys::cuDevicePrimaryCtxReset_v2(device);
                let _ = sys::cuCtxSetCurrent(std::ptr::null_mut());
                r = sys::cuCtxCreate_v4(&mut raw, std::ptr::null_mut(), flags, device);
            }
            if r != CUresult::CUDA_SUCCESS {
                let error = DriverError { call: "cuCtxCreate", code: r };
                let mut reason = error.to_string();
                if error.is_sticky() {
                    reason.push_str(
                        ": a hardware fault earlier in this process still poisons the device for it (the driver \
                         refuses new contexts after one, even once the lost context is destroyed); restart the process",
                    );
                }
                return Err(RingKernelError::BackendUnavailable(reason));
            }
        }
        Ok(Arc::new(Self {
            raw,
            info,
            poisoned: Mutex::new(None),
            pool: Mutex::new(Vec::new()),
            leaked: AtomicBool::new(false),
        }))
    }

    /// The device.
    pub fn info(&self) -> &DeviceInfo {
        &self.info
    }

    /// Binds the context to the calling thread.
    ///
    /// # Errors
    /// The driver's refusal.
    pub fn bind(&self) -> std::result::Result<(), DriverError> {
        // SAFETY: the context lives as long as self.
        check(unsafe { sys::cuCtxSetCurrent(self.raw) }, "cuCtxSetCurrent")
    }

    /// The hardware error that lost this context, if one did.
    pub fn poisoned(&self) -> Option<DriverError> {
        *self.poisoned.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn poison(&self, error: DriverError) {
        self.poisoned.lock().unwrap_or_else(PoisonError::into_inner).get_or_insert(error);
    }

    /// Pinned host memory of at least `len` bytes, mapped into the device, cached on the host
    /// (not write-combined: the host reads the output ring and the device line), zeroed.
    /// `reusable` is set once nothing on the device uses it any more.
    pub(crate) fn pinned(self: &Arc<Self>, len: usize, reusable: Arc<AtomicBool>) -> Result<PinnedRegion> {
        let len = len.max(64).next_multiple_of(4096);
        let reused = {
            let mut pool = self.pool.lock().unwrap_or_else(PoisonError::into_inner);
            let found = pool
                .iter()
                .enumerate()
                .filter(|(_, b)| b.len >= len && b.len <= len.saturating_mul(2) && b.reusable.load(Ordering::Acquire))
                .min_by_key(|(_, b)| b.len)
                .map(|(i, _)| i);
            found.map(|i| pool.swap_remove(i))
        };
        let (host, device, len) = match reused {
            Some(block) => {
                // SAFETY: the block is ours again (its kernel finished) and `block.len` long.
                unsafe { std::ptr::write_bytes(block.host, 0, block.len) };
                (block.host, block.device, block.len)
            }
            None => {
                self.bind()?;
                let mut host: *mut c_void = std::ptr::null_mut();
                let flags = sys::CU_MEMHOSTALLOC_DEVICEMAP | sys::CU_MEMHOSTALLOC_PORTABLE;
                // SAFETY: out-parameter call; the context is current.
                let r = unsafe { sys::cuMemHostAlloc(&mut host, len, flags) };
                if r != CUresult::CUDA_SUCCESS || host.is_null() {
                    return Err(RingKernelError::AllocationFailed { what: "a kernel's pinned rings", bytes: len });
                }
                let mut device = 0;
                // SAFETY: `host` was just allocated with DEVICEMAP.
                let r = unsafe { sys::cuMemHostGetDevicePointer_v2(&mut device, host, 0) };
                if r != CUresult::CUDA_SUCCESS {
                    self.pool.lock().unwrap_or_else(PoisonError::into_inner).push(PooledBlock {
                        host: host.cast(),
                        device: 0,
                        len,
                        reusable: Arc::new(AtomicBool::new(false)),
                    });
                    return Err(fault("cuMemHostGetDevicePointer", r));
                }
                // SAFETY: freshly allocated, `len` bytes.
                unsafe { std::ptr::write_bytes(host.cast::<u8>(), 0, len) };
                (host.cast::<u8>(), device, len)
            }
        };
        Ok(PinnedRegion { context: self.clone(), host, device, len, reusable })
    }

    /// Keeps the context (and its memory) alive for the rest of the process: a persistent
    /// kernel in it did not end, and freeing memory under it could corrupt what it writes.
    pub(crate) fn leak(&self) {
        self.leaked.store(true, Ordering::Release);
    }
}

impl Drop for Context {
    fn drop(&mut self) {
        // Everything allocated here is gone (regions, buffers and streams hold the context), and
        // the pool has ended (its owner waited for it) unless the context was leaked.
        if self.leaked.load(Ordering::Acquire) {
            tracing::error!("a CUDA kernel did not stop; its context (and memory) is leaked");
            return;
        }
        // SAFETY: nothing of this context is in use any more; destroying it (current or not) frees
        // every allocation. A lost context must be destroyed for the device to take a new one.
        let r = unsafe { sys::cuCtxDestroy_v2(self.raw) };
        if r != CUresult::CUDA_SUCCESS {
            tracing::error!(error = %describe("cuCtxDestroy", r), "could not destroy a CUDA context");
        }
    }
}

/// Pinned, mapped host memory holding one kernel's control block, rings and inbox mirror.
pub struct PinnedRegion {
    context: Arc<Context>,
    host: *mut u8,
    device: u64,
    len: usize,
    reusable: Arc<AtomicBool>,
}

// SAFETY: the memory is plain host memory; the protocols on top synchronise access.
unsafe impl Send for PinnedRegion {}
// SAFETY: as above.
unsafe impl Sync for PinnedRegion {}

impl PinnedRegion {
    /// The device address of byte `offset`.
    pub fn device_address(&self, offset: usize) -> u64 {
        self.device + offset as u64
    }
}

// SAFETY: cuMemHostAlloc returns page-aligned memory valid for `len` bytes, writable, for as long
// as the block lives (it returns to the pool, not to the driver, when the region drops); only the
// protocols carved on top and the device access it.
unsafe impl Region for PinnedRegion {
    fn as_ptr(&self) -> *mut u8 {
        self.host
    }
    fn len(&self) -> usize {
        self.len
    }
    fn kind(&self) -> MemoryKind {
        MemoryKind::PinnedHost
    }
}

impl Drop for PinnedRegion {
    fn drop(&mut self) {
        self.context.pool.lock().unwrap_or_else(PoisonError::into_inner).push(PooledBlock {
            host: self.host,
            device: self.device,
            len: self.len,
            reusable: self.reusable.clone(),
        });
    }
}

/// A non-blocking stream of one context (never synchronises with other streams), destroyed when
/// dropped (the driver lets queued work finish first).
pub struct Stream {
    context: Arc<Context>,
    raw: sys::CUstream,
}

// SAFETY: a stream handle may be used from any thread with its context bound (every call binds).
unsafe impl Send for Stream {}
// SAFETY: as above; the driver serialises work enqueued from several threads.
unsafe impl Sync for Stream {}

impl Stream {
    /// A new stream.
    ///
    /// # Errors
    /// The driver's refusal.
    pub fn new(context: &Arc<Context>) -> std::result::Result<Self, DriverError> {
        context.bind()?;
        let mut raw = std::ptr::null_mut();
        let flags = sys::CUstream_flags::CU_STREAM_NON_BLOCKING as u32;
        // SAFETY: out-parameter call; the context is current.
        check(unsafe { sys::cuStreamCreate(&mut raw, flags) }, "cuStreamCreate")?;
        Ok(Self { context: context.clone(), raw })
    }

    /// The raw handle, for calls that enqueue onto it (with the context bound).
    pub(crate) fn raw(&self) -> sys::CUstream {
        self.raw
    }

    /// Binds the stream's context to the calling thread.
    pub(crate) fn bind(&self) -> std::result::Result<(), DriverError> {
        self.context.bind()
    }

    /// Waits for everything enqueued so far (never the whole device).
    ///
    /// # Errors
    /// The first error of the work waited for, or the context's loss.
    pub(crate) fn synchronize(&self, call: &'static str) -> std::result::Result<(), DriverError> {
        self.bind()?;
        // SAFETY: waits for this stream only.
        check(unsafe { sys::cuStreamSynchronize(self.raw) }, call)
    }

    /// Whether the stream's work has finished: `Ok(true)` done, `Ok(false)` still running.
    ///
    /// # Errors
    /// The error the work ended with (a lost context).
    pub(crate) fn finished(&self) -> std::result::Result<bool, DriverError> {
        self.bind()?;
        // SAFETY: querying enqueues nothing.
        match unsafe { sys::cuStreamQuery(self.raw) } {
            CUresult::CUDA_SUCCESS => Ok(true),
            CUresult::CUDA_ERROR_NOT_READY => Ok(false),
            code => Err(DriverError { call: "the GPU", code }),
        }
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        if self.context.bind().is_ok() {
            // SAFETY: nothing of ours enqueues onto it any more; destroying returns at once.
            unsafe {
                let _ = sys::cuStreamDestroy_v2(self.raw);
            }
        }
    }
}

/// Device memory, allocated and freed stream-ordered on one stream (a free never waits for the
/// whole device, which persistent kernels keep busy).
pub struct DeviceBuffer {
    stream: Arc<Stream>,
    address: u64,
    bytes: usize,
}

// SAFETY: a device address is plain data; it is used with the context bound.
unsafe impl Send for DeviceBuffer {}
// SAFETY: as above.
unsafe impl Sync for DeviceBuffer {}

impl DeviceBuffer {
    /// `bytes` of device memory, zeroed, ordered on `stream`.
    ///
    /// # Errors
    /// The driver's refusal (out of memory, a lost context).
    pub(crate) fn zeroed(stream: &Arc<Stream>, bytes: usize) -> std::result::Result<Self, DriverError> {
        stream.bind()?;
        let mut address = 0;
        // SAFETY: out-parameter call on a stream of the current context.
        check(unsafe { sys::cuMemAllocAsync(&mut address, bytes, stream.raw) }, "cuMemAllocAsync")?;
        let buffer = Self { stream: stream.clone(), address, bytes };
        // SAFETY: `bytes` of device memory just allocated, ordered on the same stream.
        check(unsafe { sys::cuMemsetD8Async(address, 0, bytes, stream.raw) }, "cuMemsetD8Async")?;
        Ok(buffer)
    }

    /// The device address.
    pub fn address(&self) -> u64 {
        self.address
    }

    /// Its size in bytes.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Copies `data` (at most `bytes()`) to its start, ordered on its stream; the caller keeps
    /// `data` alive until the stream has passed the copy.
    ///
    /// # Errors
    /// The driver's refusal.
    pub(crate) fn upload(&self, data: &[u8]) -> std::result::Result<(), DriverError> {
        let bytes = data.len().min(self.bytes);
        self.stream.bind()?;
        // SAFETY: host memory valid for `bytes`, kept alive by the caller until synchronised.
        check(
            unsafe { sys::cuMemcpyHtoDAsync_v2(self.address, data.as_ptr().cast(), bytes, self.stream.raw) },
            "cuMemcpyHtoDAsync",
        )
    }

    /// Copies its first `bytes` into host memory at `to` and waits for the copy.
    ///
    /// # Safety
    /// `to` is valid for writes of `bytes` bytes, and `bytes <= self.bytes()`.
    pub(crate) unsafe fn download_to(&self, to: *mut u8, bytes: usize) -> std::result::Result<(), DriverError> {
        self.stream.bind()?;
        // SAFETY: the caller's promise about `to`; the buffer holds `bytes`.
        let copied = unsafe { sys::cuMemcpyDtoHAsync_v2(to.cast(), self.address, bytes, self.stream.raw) };
        check(copied, "cuMemcpyDtoHAsync")?;
        self.stream.synchronize("copying device memory back")
    }
}

impl Drop for DeviceBuffer {
    fn drop(&mut self) {
        if self.stream.bind().is_ok() {
            // SAFETY: nothing uses the memory any more (its owner says so by dropping it); the
            // free is ordered after everything enqueued on the stream.
            unsafe {
                let _ = sys::cuMemFreeAsync(self.address, self.stream.raw);
            }
        }
    }
}

/// A loaded module and its functions.
pub(crate) struct Module {
    raw: sys::CUmodule,
}

// SAFETY: module handles may be used from any thread of the process with the context bound.
unsafe impl Send for Module {}
// SAFETY: as above.
unsafe impl Sync for Module {}

impl Module {
    pub(crate) fn load(context: &Context, ptx: &cudarc::nvrtc::Ptx) -> std::result::Result<Self, DriverError> {
        context.bind()?;
        // NVRTC's PTX never holds a NUL byte; one would be an invalid image.
        let image = CString::new(ptx.to_src())
            .map_err(|_| DriverError { call: "cuModuleLoadData", code: CUresult::CUDA_ERROR_INVALID_IMAGE })?;
        let mut raw = std::ptr::null_mut();
        // SAFETY: `image` is a NUL-terminated PTX string.
        check(unsafe { sys::cuModuleLoadData(&mut raw, image.as_ptr().cast()) }, "cuModuleLoadData")?;
        Ok(Self { raw })
    }

    /// A function, loaded now (not lazily at its first launch, which could wait on kernels that
    /// never end).
    pub(crate) fn function(&self, name: &str) -> std::result::Result<sys::CUfunction, DriverError> {
        let name = CString::new(name)
            .map_err(|_| DriverError { call: "cuModuleGetFunction", code: CUresult::CUDA_ERROR_INVALID_VALUE })?;
        let mut function = std::ptr::null_mut();
        // SAFETY: the module is loaded; out-parameter call.
        check(unsafe { sys::cuModuleGetFunction(&mut function, self.raw, name.as_ptr()) }, "cuModuleGetFunction")?;
        // SAFETY: a valid function handle.
        check(unsafe { sys::cuFuncLoad(function) }, "cuFuncLoad")?;
        Ok(function)
    }
}
