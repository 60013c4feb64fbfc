//! # ringkernel-host
//!
//! The host half of every RingKernel kernel, written once: stamping and encoding sends, pushing
//! into the input ring, matching replies to calls by correlation id (only messages with the
//! `REPLY` flag answer a call), routing everything else to `receive`, timeouts, batches, the
//! zero-copy paths, the lifecycle, metrics, and taking back what a failed kernel never handled.
//! [`HostKernel`] implements [`KernelControl`](ringkernel_core::runtime::KernelControl) for every
//! backend; a backend supplies only a [`Device`] (how to wake the device, how to sync staged
//! memory, how to let go of it), in the spirit of wgpu-hal under wgpu-core.
//!
//! The engine learns everything about the device from the control block and the rings — its
//! state from `has_terminated` and `control_ack`, its progress from the ring indices, its
//! counters, heartbeat and last error from the device line — never from a Rust channel, lock or
//! thread handle. A device that breaks the protocol (an index out of range) fails its kernel with
//! a [`RingKernelError::KernelFault`](ringkernel_core::error::RingKernelError::KernelFault) naming
//! the values; it never panics the host and never makes it overwrite a slot.
//!
//! The CPU backend (`ringkernel-cpu`) runs an actor thread per kernel behind a [`Device`] that
//! unparks it; its polling device model (a thread that talks to the host only through memory, as a
//! GPU does) runs the whole conformance suite through this same engine.
//!
//! The engine itself is `ringkernel_core::engine`, re-exported here: it lives beside
//! `KernelHandle` so that a handle calls it directly, without a dynamic dispatch and a boxed
//! future per call. Around the engine, [`Runtime`] is the runtime skeleton every backend shares: launching (the
//! same checks, errors and order everywhere), finding, listing, metrics and shutdown, over a
//! small [`DeviceBackend`] trait; [`delegate_runtime!`] makes a backend's public runtime type
//! forward to it.

mod runtime;
mod table;

pub use ringkernel_core::engine::{Device, Doorbell, HostConfig, HostKernel, KernelParts, OUTPUT_SLOT_PATIENCE, lock};
pub use runtime::{
    Allocation, DeviceBackend, HEARTBEAT_PERIOD, HostSettings, Launch, MIN_HEARTBEAT_PERIOD, Runtime, StartDevice,
    heartbeat_period, lost_device,
};
pub use table::KernelTable;

/// What [`delegate_runtime!`] expands to refers to; not part of the API.
#[doc(hidden)]
pub mod __private {
    pub use async_trait::async_trait;
    pub use ringkernel_core::error::Result;
    pub use ringkernel_core::runtime::{
        Backend, KernelHandle, KernelId, LaunchOptions, RingKernelRuntime, RuntimeMetrics,
    };
}
