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

mod device;
mod engine;
mod table;
mod wait;

pub use device::{Device, Doorbell};
pub use engine::{HostConfig, HostKernel, KernelParts, OUTPUT_SLOT_PATIENCE};
pub use table::KernelTable;
