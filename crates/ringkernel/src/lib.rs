//! # RingKernel
//!
//! Persistent actors on GPUs (and CPUs): each actor keeps its state where it runs, receives
//! messages through lock-free ring queues in memory that host and device share, replies the same
//! way, messages other actors directly (K2K), and timestamps everything with hybrid logical
//! clocks.
//!
//! ```
//! use std::time::Duration;
//! use ringkernel::prelude::*;
//!
//! #[repr(C)]
//! #[derive(Debug, Clone, Copy, PartialEq, bytemuck::Pod, bytemuck::Zeroable, RingMessage)]
//! struct Celsius { value: f64 }
//!
//! #[repr(C)]
//! #[derive(Debug, Clone, Copy, PartialEq, bytemuck::Pod, bytemuck::Zeroable, RingMessage)]
//! struct Fahrenheit { value: f64 }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> ringkernel::Result<()> {
//! let ring = RingKernel::builder()
//!     .backend(Backend::Auto)
//!     .register(KernelSpec::new("convert").cpu(|ctx| {
//!         let c: Celsius = ctx.message()?;
//!         Ok(ctx.reply_message(&Fahrenheit { value: c.value * 9.0 / 5.0 + 32.0 })?)
//!     }))
//!     .build()
//!     .await?;
//! let kernel = ring.launch("convert", LaunchOptions::default().with_auto_activate(true)).await?;
//! let f: Fahrenheit = kernel.call_message(&Celsius { value: 100.0 }, Duration::from_secs(1)).await?;
//! assert_eq!(f, Fahrenheit { value: 212.0 });
//! ring.shutdown().await?;
//! # Ok(())
//! # }
//! ```
//!
//! The built-in kernels `echo` and `counter` ([`kernel::builtin`]) are always registered.
//!
//! ## Backends as features
//!
//! The CPU backend is always built. The GPU backends are Cargo features, all on by default:
//! `cuda` (cudarc, loaded at run time), `wgpu` (Vulkan, Metal, DX12) and `metal` (which brings
//! `wgpu`). A CPU-only build compiles neither cudarc nor wgpu:
//!
//! ```toml
//! [dependencies]
//! # CPU only:
//! ringkernel = { version = "0.1", default-features = false }
//! # or CPU and CUDA:
//! # ringkernel = { version = "0.1", default-features = false, features = ["cuda"] }
//! ```
//!
//! A backend left out of the build is still named by [`Backend`]: asking for it is
//! [`RingKernelError::BackendUnavailable`] saying which feature brings it, and `Auto` never
//! picks it.
//!
//! Waiting operations wait on the Tokio timer inside a Tokio runtime (`#[tokio::main]` enables
//! it); under another executor the CPU backend blocks the waiting thread in short sleeps.

use std::ops::Deref;
use std::sync::Arc;

pub use bytemuck;
pub use ringkernel_core::{
    Result, RingKernelError, codegen, control, error, halo, handler, hlc, ids, kernel, layout, memory, message, queue,
    region, runtime, spec,
};
pub use ringkernel_cpu::{CpuConfig, CpuHaloExchange, CpuRuntime, DeviceModel};
#[cfg(feature = "cuda")]
pub use ringkernel_cuda::floor::Floor as CudaFloor;
/// The CUDA halo exchange's helpers: tiles chosen for a device, the launch-per-step baseline.
#[cfg(feature = "cuda")]
pub use ringkernel_cuda::halo as cuda_halo;
#[cfg(feature = "cuda")]
pub use ringkernel_cuda::{CudaConfig, CudaHaloConfig, CudaHaloExchange, CudaRuntime, DeviceInfo as CudaDeviceInfo};
pub use ringkernel_derive::RingMessage;
/// The host engine every backend's kernels run on (for backend authors).
pub use ringkernel_host as host;
#[cfg(feature = "metal")]
pub use ringkernel_metal::{MetalRuntime, is_metal_available};
#[cfg(feature = "wgpu")]
pub use ringkernel_wgpu::{UnifiedMemory, WgpuConfig, WgpuHaloExchange, WgpuRuntime};

use ringkernel_core::kernel::{KernelRegistry, KernelSpec};
use ringkernel_core::runtime::{Backend, RingKernelRuntime};

/// What most programs need.
pub mod prelude {
    pub use crate::RingKernel;
    pub use ringkernel_core::error::{Result, RingKernelError};
    pub use ringkernel_core::kernel::{HandlerContext, HandlerError, KernelSpec, builtin};
    pub use ringkernel_core::message::{CorrelationId, Envelope, HeaderBuilder, MessageView, Priority, RingMessage};
    pub use ringkernel_core::runtime::{
        Backend, KernelHandle, KernelId, KernelState, LaunchOptions, Outgoing, RingKernelRuntime,
    };
    pub use ringkernel_derive::RingMessage;
}

/// Whether `backend` can run here, and if not, why (a backend left out of this build says which
/// Cargo feature brings it).
///
/// `Auto` is available whenever any concrete backend is.
pub fn backend_status(backend: Backend) -> std::result::Result<(), String> {
    // The reason a backend's probe gives, as it gave it.
    #[allow(dead_code, reason = "unused when every GPU backend is left out of the build")]
    fn reason(error: RingKernelError) -> String {
        match error {
            RingKernelError::BackendUnavailable(reason) => reason,
            other => other.to_string(),
        }
    }
    match backend {
        Backend::Auto | Backend::Cpu => Ok(()),
        #[cfg(not(feature = "metal"))]
        Backend::Metal => Err(left_out(backend)),
        #[cfg(feature = "cuda")]
        Backend::Cuda => CudaRuntime::probe(0).map(|_| ()).map_err(reason),
        #[cfg(feature = "wgpu")]
        Backend::Wgpu => WgpuRuntime::probe(WgpuConfig::default().backends).map(|_| ()).map_err(reason),
        #[cfg(feature = "metal")]
        Backend::Metal if !cfg!(target_vendor = "apple") => Err("Metal runs only on Apple systems (macOS, iOS)".into()),
        #[cfg(feature = "metal")]
        Backend::Metal if ringkernel_metal::is_metal_available() => Ok(()),
        #[cfg(feature = "metal")]
        Backend::Metal => Err("no Metal device was found".into()),
        #[allow(unreachable_patterns, reason = "reachable only when a GPU backend is left out of the build")]
        other => Err(left_out(other)),
    }
}

#[allow(dead_code, reason = "unused when every GPU backend is built")]
fn left_out(backend: Backend) -> String {
    format!(
        "this build of ringkernel leaves the {backend} backend out: enable the `{backend}` feature of the ringkernel crate"
    )
}

/// The backend `Auto` picks: the first available of [`Backend::CONCRETE`] (GPU backends first).
/// A software Vulkan device (Mesa's lavapipe) is not a GPU: `Auto` picks the CPU backend over it
/// (ask for `Backend::Wgpu` explicitly to use it).
pub fn best_backend() -> Backend {
    Backend::CONCRETE
        .into_iter()
        .find(|b| match b {
            #[cfg(feature = "wgpu")]
            Backend::Wgpu => WgpuRuntime::probe(WgpuConfig::default().backends)
                .is_ok_and(|adapter| adapter.device_type != ringkernel_wgpu::wgpu::DeviceType::Cpu),
            other => backend_status(*other).is_ok(),
        })
        .unwrap_or(Backend::Cpu)
}

/// A runtime on one backend, with every kernel of its registry launchable by name.
///
/// It dereferences to [`RingKernelRuntime`]: `launch`, `get_kernel`, `list_kernels`, `metrics`,
/// `shutdown`.
pub struct RingKernel {
    runtime: Arc<dyn RingKernelRuntime>,
}

impl RingKernel {
    /// Starts configuring a runtime.
    pub fn builder() -> RingKernelBuilder {
        RingKernelBuilder::default()
    }

    /// The runtime, to share between tasks.
    pub fn runtime(&self) -> Arc<dyn RingKernelRuntime> {
        self.runtime.clone()
    }
}

impl Deref for RingKernel {
    type Target = dyn RingKernelRuntime;
    fn deref(&self) -> &Self::Target {
        &*self.runtime
    }
}

impl std::fmt::Debug for RingKernel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RingKernel").field("backend", &self.runtime.backend()).finish()
    }
}

/// Configures a [`RingKernel`].
#[derive(Debug)]
pub struct RingKernelBuilder {
    backend: Backend,
    registry: KernelRegistry,
    cpu_config: CpuConfig,
    #[cfg(feature = "cuda")]
    cuda_config: CudaConfig,
    #[cfg(feature = "wgpu")]
    wgpu_config: WgpuConfig,
    error: Option<RingKernelError>,
}

impl Default for RingKernelBuilder {
    fn default() -> Self {
        Self {
            backend: Backend::Auto,
            registry: KernelRegistry::with_builtins(),
            cpu_config: CpuConfig::default(),
            #[cfg(feature = "cuda")]
            cuda_config: CudaConfig::default(),
            #[cfg(feature = "wgpu")]
            wgpu_config: WgpuConfig::default(),
            error: None,
        }
    }
}

impl RingKernelBuilder {
    /// The backend (default `Auto`: the best available).
    pub fn backend(mut self, backend: Backend) -> Self {
        self.backend = backend;
        self
    }

    /// Registers a kernel; a duplicate or invalid name makes [`Self::build`] fail.
    pub fn register(mut self, spec: KernelSpec) -> Self {
        if let Err(error) = self.registry.register(spec) {
            self.error.get_or_insert(error);
        }
        self
    }

    /// Tuning of the CPU backend.
    pub fn cpu_config(mut self, config: CpuConfig) -> Self {
        self.cpu_config = config;
        self
    }

    /// Tuning of the CUDA backend (with the `cuda` feature).
    #[cfg(feature = "cuda")]
    pub fn cuda_config(mut self, config: CudaConfig) -> Self {
        self.cuda_config = config;
        self
    }

    /// Tuning of the wgpu backend (with the `wgpu` feature).
    #[cfg(feature = "wgpu")]
    pub fn wgpu_config(mut self, config: WgpuConfig) -> Self {
        self.wgpu_config = config;
        self
    }

    /// Starts the runtime.
    ///
    /// # Errors
    /// The first registration error, or [`RingKernelError::BackendUnavailable`] with the reason
    /// when the requested backend cannot run here.
    pub async fn build(self) -> Result<RingKernel> {
        if let Some(error) = self.error {
            return Err(error);
        }
        let backend = match self.backend {
            Backend::Auto => best_backend(),
            backend => backend,
        };
        backend_status(backend)
            .map_err(|reason| RingKernelError::BackendUnavailable(format!("{backend}: {reason}")))?;
        let runtime: Arc<dyn RingKernelRuntime> = match backend {
            Backend::Cpu => Arc::new(CpuRuntime::with_config(self.registry, self.cpu_config)),
            #[cfg(feature = "cuda")]
            Backend::Cuda => Arc::new(CudaRuntime::with_config(self.registry, self.cuda_config)?),
            #[cfg(feature = "wgpu")]
            Backend::Wgpu => Arc::new(WgpuRuntime::with_config(self.registry, self.wgpu_config).await?),
            #[cfg(feature = "metal")]
            Backend::Metal => Arc::new(ringkernel_metal::MetalRuntime::with_registry(self.registry).await?),
            #[allow(unreachable_patterns, reason = "reachable only when a GPU backend is left out of the build")]
            other => unreachable!("backend_status refused {other} above"),
        };
        Ok(RingKernel { runtime })
    }
}

/// The README's examples, compiled and run as doctests so that they stay true (they use every
/// backend, so with every backend built).
#[cfg(all(doctest, feature = "cuda", feature = "wgpu", feature = "metal"))]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;
