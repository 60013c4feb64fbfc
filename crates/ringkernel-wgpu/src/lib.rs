//! # ringkernel-wgpu
//!
//! The event-driven RingKernel backend on wgpu: Vulkan (Mesa's lavapipe in CI, NVIDIA's driver on a
//! GPU), Metal and DX12. Actors are WGSL handlers ([`KernelSpec::wgsl`](ringkernel_core::kernel::KernelSpec::wgsl))
//! inside a generated template; a dispatch of one workgroup per actor drains what is queued
//! (bounded work per dispatch), writes replies and returns. The host half of every kernel is the
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
