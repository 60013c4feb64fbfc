//! Kernel sources: the generated layout header, the actor runtime (`cuda/prelude.cuh`), the user's
//! handler and the actor loop (`cuda/loop.cuh`), compiled with NVRTC for the device's architecture
//! and cached per source.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use cudarc::nvrtc::{CompileError, CompileOptions, Ptx};
use ringkernel_core::codegen::{Language, generate};
use ringkernel_core::error::{Result, RingKernelError};

/// Part 1 of the actor runtime: the handler ABI (included before the user's handler).
pub const PRELUDE: &str = include_str!("cuda/prelude.cuh");
/// Part 2: the persistent actor loop (after the user's handler).
pub const LOOP: &str = include_str!("cuda/loop.cuh");
/// The floor probes: a raw flag ping-pong through mapped memory and an empty kernel.
pub const PROBES: &str = include_str!("cuda/probes.cu");

/// The halo exchange kernel and the plain launch-per-step stencil (`cuda/halo.cu`).
pub const HALO: &str = include_str!("cuda/halo.cu");

/// The halo exchange's translation unit: the layout, its parameters, the kernels.
pub fn halo_source() -> String {
    format!("{}\n{}\n#line 1 \"ringkernel_halo.cu\"\n{HALO}\n", layout_header(), crate::layout::halo_declarations())
}

/// The translation unit of one actor kernel alone (what a compile error is reported against).
/// `#line` directives make compiler messages about the handler name `<kernel>.cu` and count lines
/// from the handler's first line.
pub fn actor_source(kernel: &str, handler: &str) -> String {
    pool_source(&[(kernel, handler)])
}

/// The translation unit of a runtime's pool: the layout, the runtime, every handler in its own
/// namespace (`rk_kernel_<kind>`, kind = position in `kernels`), the dispatch, the loop.
/// `RK_THREADS` must be defined before it.
pub fn pool_source(kernels: &[(&str, &str)]) -> String {
    let mut source = format!(
        "{}\n{}\n#line 1 \"ringkernel_prelude.cuh\"\n{PRELUDE}\n",
        layout_header(),
        crate::layout::declarations()
    );
    for (kind, (kernel, handler)) in kernels.iter().enumerate() {
        let file = format!("{}.cu", kernel.replace(['"', '\\', '\n'], "_"));
        source.push_str(&format!("namespace rk_kernel_{kind} {{\n#line 1 \"{file}\"\n{handler}\n}}\n"));
    }
    source.push_str("#line 1 \"ringkernel_dispatch.cuh\"\n__device__ void rk_dispatch(rk_u32 kind, RkContext& ctx) {\n    switch (kind) {\n");
    for kind in 0..kernels.len() {
        source.push_str(&format!("    case {kind}u: rk_kernel_{kind}::rk_handle(ctx); break;\n"));
    }
    source.push_str("    default: rk_fail(ctx, \"no handler of this kind\"); break;\n    }\n}\n");
    source.push_str(&format!("#line 1 \"ringkernel_loop.cuh\"\n{LOOP}\n"));
    source
}

/// The generated protocol layout (`ringkernel_layout.cuh`).
fn layout_header() -> &'static str {
    static HEADER: OnceLock<String> = OnceLock::new();
    HEADER.get_or_init(|| generate(Language::Cuda))
}

/// Whether NVRTC can be loaded here (cudarc panics on first use when it cannot).
pub fn nvrtc_available() -> bool {
    // SAFETY: only tries to load the library by name; nothing is called.
    unsafe { cudarc::nvrtc::sys::is_culib_present() }
}

/// Compiles `source` (a whole translation unit) for `arch` (such as `sm_90`), cached per
/// source and architecture for the life of the process.
///
/// # Errors
/// [`RingKernelError::BackendUnavailable`] without NVRTC; [`RingKernelError::Compile`] with
/// NVRTC's log when the source does not compile.
pub fn compile(kernel: &str, source: &str, arch: &'static str) -> Result<Arc<Ptx>> {
    type Cache = Mutex<HashMap<(String, &'static str), Arc<Ptx>>>;
    static CACHE: OnceLock<Cache> = OnceLock::new();
    let cache = CACHE.get_or_init(Cache::default);
    let key = (source.to_string(), arch);
    if let Some(ptx) = cache.lock().unwrap_or_else(PoisonError::into_inner).get(&key) {
        return Ok(ptx.clone());
    }
    if !nvrtc_available() {
        return Err(RingKernelError::BackendUnavailable(
            "NVRTC (libnvrtc.so.13) is not installed or not on the library path; install the CUDA 13 \
             toolkit or `pip install nvidia-cuda-nvrtc==13.0.88` and add its nvidia/cu13/lib to LD_LIBRARY_PATH"
                .into(),
        ));
    }
    if source.contains('\0') {
        return Err(RingKernelError::Compile {
            kernel: kernel.to_string(),
            log: "the source contains a NUL byte".into(),
        });
    }
    let options = CompileOptions {
        arch: Some(arch),
        options: vec!["--std=c++17".into(), "-default-device".into(), "--diag-suppress=177,550".into()],
        name: Some(format!("{kernel}.cu")),
        ..Default::default()
    };
    let ptx = cudarc::nvrtc::compile_ptx_with_opts(source, options).map_err(|error| match error {
        CompileError::CompileError { log, .. } => {
            RingKernelError::Compile { kernel: kernel.to_string(), log: log.to_string_lossy().trim().to_string() }
        }
        other => RingKernelError::Compile { kernel: kernel.to_string(), log: format!("NVRTC failed: {other:?}") },
    })?;
    let ptx = Arc::new(ptx);
    cache.lock().unwrap_or_else(PoisonError::into_inner).insert(key, ptx.clone());
    Ok(ptx)
}

/// The `sm_XY` architecture name NVRTC takes for compute capability `major.minor`.
pub fn arch_name(major: i32, minor: i32) -> &'static str {
    match (major, minor) {
        (7, 0) => "sm_70",
        (7, 5) => "sm_75",
        (8, 0) => "sm_80",
        (8, 6) => "sm_86",
        (8, 7) => "sm_87",
        (8, 9) => "sm_89",
        (9, 0) => "sm_90",
        (10, 0) => "sm_100",
        (10, 3) => "sm_103",
        (12, 0) => "sm_120",
        (12, 1) => "sm_121",
        // Newer devices run PTX of the newest architecture NVRTC 13.0 knows.
        _ => "sm_90",
    }
}
