//! The host engine: the host half of every kernel, written once for every backend (re-exported,
//! with the runtime skeleton around it, by `ringkernel-host`).
//!
//! [`HostKernel`] stamps and encodes sends, pushes into the input ring, matches replies to calls
//! by correlation id (only messages with the `REPLY` flag answer a call), routes everything else
//! to `receive`, handles timeouts, batches, the zero-copy paths, the lifecycle and metrics, and
//! takes back what a failed kernel never handled. It implements
//! [`KernelControl`](crate::runtime::KernelControl) for every backend; a backend supplies only a
//! [`Device`] (how to wake the device, how to sync staged memory, how to let go of it), in the
//! spirit of wgpu-hal under wgpu-core.
//!
//! The engine learns everything about the device from the control block and the rings — its
//! state from `has_terminated` and `control_ack`, its progress from the ring indices, its
//! counters, heartbeat and last error from the device line — never from a Rust channel, lock or
//! thread handle. A device that breaks the protocol (an index out of range) fails its kernel with
//! a [`RingKernelError::KernelFault`](crate::error::RingKernelError::KernelFault) naming the
//! values; it never panics the host and never makes it overwrite a slot.
//!
//! It lives in this crate, beside [`KernelHandle`](crate::runtime::KernelHandle), so that a handle
//! calls it directly — no dynamic dispatch, no boxed future per call — while other
//! [`KernelControl`](crate::runtime::KernelControl) implementations still plug in as trait
//! objects.

mod device;
mod kernel;
mod lifecycle;
mod wait;

use std::sync::{Mutex, MutexGuard, PoisonError};

pub use device::{Device, Doorbell};
pub use kernel::{HostConfig, HostKernel, KernelParts, OUTPUT_SLOT_PATIENCE};

/// Locks `mutex`, going on past a panic of an earlier holder. Every lock of the engine and the
/// runtimes guards data that stays consistent when a holder panics (nothing is published
/// halfway), so poisoning carries no information there.
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
