//! # ringkernel-core
//!
//! The protocol every RingKernel backend speaks, with no GPU dependency:
//!
//! * [`layout`] — the `#[repr(C)]` structs shared by host and device code, with compile-time
//!   layout assertions; [`codegen`] writes their C (CUDA), MSL and WGSL declarations;
//! * [`message`] — message ids, priorities, and the validating slot codec;
//! * [`hlc`] — hybrid logical clocks;
//! * [`region`], [`control`], [`queue`] — shared memory, control blocks, and the lock-free SPSC
//!   rings and MPSC K2K inboxes built on them;
//! * [`kernel`] — kernel specs by name, the CPU handler context, and the built-in kernels;
//! * [`error`] and [`runtime`] — the errors and the runtime API that backends implement.

#![cfg_attr(docsrs, feature(doc_auto_cfg))]

pub mod codegen;
pub mod control;
pub mod error;
pub mod hlc;
pub mod kernel;
#[macro_use]
pub mod layout;
pub mod message;
pub mod queue;
pub mod region;
pub mod runtime;
mod sync;

pub use error::{Result, RingKernelError};
