//! # ringkernel-core
//!
//! The protocol every RingKernel backend speaks, with no GPU dependency:
//!
//! * [`layout`] — the `#[repr(C)]` structs shared by host and device code, with compile-time
//!   layout assertions; [`codegen`] writes their C (CUDA), MSL and WGSL declarations;
//! * [`message`] — message identities, headers, the validating slot codec, envelopes;
//! * [`hlc`] — hybrid logical clocks;
//! * [`region`], [`control`], [`queue`], [`memory`] — shared memory and its kinds, control blocks,
//!   the lock-free SPSC rings and MPSC K2K inboxes built on them, and the one function that lays a
//!   kernel's memory out;
//! * [`spec`] and [`handler`] — kernel specs by name, the built-in kernels, and the context a CPU
//!   handler runs in (both also reachable as [`kernel`]);
//! * [`ids`], [`error`] and [`runtime`] — names and states, errors, and the runtime API that
//!   backends implement.
//!
//! Dependencies point one way: `ids` is a leaf; the protocol files (`layout`, `message`, `queue`,
//! `memory`) import nothing async; only `runtime` knows about futures.

#![cfg_attr(docsrs, feature(doc_auto_cfg))]

pub mod aligned;
pub mod codegen;
pub mod control;
#[cfg(not(loom))]
pub mod engine;
pub mod error;
pub mod halo;
pub mod handler;
pub mod hlc;
pub mod ids;
#[macro_use]
pub mod layout;
pub mod memory;
pub mod message;
pub mod queue;
pub mod region;
pub mod runtime;
pub mod spec;
mod sync;
pub mod wake;

/// Kernels by name and the handler context: [`spec`] and [`handler`] under the path earlier
/// versions used (`ringkernel_core::kernel::{KernelSpec, builtin, HandlerContext, …}`).
pub mod kernel {
    pub use crate::handler::*;
    pub use crate::spec::*;
}

pub use error::{Result, RingKernelError};
