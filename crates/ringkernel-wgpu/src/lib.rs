//! # ringkernel-wgpu
//!
//! The event-driven RingKernel backend on wgpu: Vulkan (Mesa's lavapipe in CI, NVIDIA's driver on a
//! GPU), Metal and DX12. Actors are WGSL handlers ([`KernelSpec::wgsl`](ringkernel_core::kernel::KernelSpec::wgsl))
//! inside a generated template; a round runs every actor with work (one workgroup each, a loop
//! over up to `WgpuConfig::messages_per_dispatch` messages, or one message per dispatch on drivers
//! that bound loop nests), writes replies and returns. The arena that holds the actors grows with
//! them up to the adapter's largest storage binding. The host half of every kernel is the
//! shared engine (`ringkernel-host`); this crate supplies only its device part. See
//! [`WgpuRuntime`] and the handler ABI at the top of `src/wgsl/actor.wgsl`.

pub mod compile;
mod halo;
mod runtime;

pub use halo::{HALO_WGSL, WgpuHaloExchange, halo_module};

pub use runtime::{
    AdapterSummary, ArenaUsage, DispatchLoop, Faults, SharedDevice, UnifiedMemory, WgpuConfig, WgpuRuntime,
    open_device, read_buffer, shared_device,
};
pub use wgpu;
