//! # ringkernel-cuda
//!
//! The CUDA backend of RingKernel: every actor is **persistent** — one thread block of a resident
//! pool kernel, launched once per runtime — and polls its control block and input ring in pinned host
//! memory mapped into the GPU, keeps its state in device memory, writes replies straight into the
//! host's output ring, and exchanges K2K messages with other actors through bounded inboxes in
//! device memory. The host half of every kernel is `ringkernel-host`'s engine; this crate supplies
//! the device: memory, compilation, launch, and fault detection.
//!
//! The crate always builds: cudarc loads `libcuda` and `libnvrtc` at run time. Without them (or
//! without a GPU), [`CudaRuntime::new`] returns [`RingKernelError::BackendUnavailable`](ringkernel_core::error::RingKernelError::BackendUnavailable) saying
//! why and [`CudaRuntime::is_available`] is false.
//!
//! ## Device handlers
//!
//! A kernel's CUDA handler ([`KernelSpec::cuda`](ringkernel_core::spec::KernelSpec::cuda)) is one
//! function, `__device__ void rk_handle(RkContext& ctx)`, called for each valid message in order by
//! every thread of the actor's block (`CudaConfig::block_size` threads, a multiple of 32; a
//! launch's `LaunchOptions::block_size` must match). The
//! whole ABI — the context's fields and `rk_reply`, `rk_emit`, `rk_send_to`, `rk_send_to_number`,
//! `rk_error`, `rk_fail` — is documented at the top of [`compile::PRELUDE`]. It is compiled with
//! NVRTC when the runtime starts, for the device's architecture, cached per source; a compile error is
//! [`RingKernelError::Compile`](ringkernel_core::error::RingKernelError::Compile) with NVRTC's log, whose line numbers are those of the handler
//! source (`echo.cu(3): error: …`).
//!
//! ```no_run
//! use std::time::Duration;
//! use ringkernel_core::kernel::{KernelRegistry, builtin};
//! use ringkernel_core::message::Envelope;
//! use ringkernel_core::runtime::{LaunchOptions, RingKernelRuntime};
//! use ringkernel_cuda::CudaRuntime;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> ringkernel_core::Result<()> {
//! let runtime = CudaRuntime::new(KernelRegistry::with_builtins())?;
//! let counter = runtime.launch(builtin::COUNTER, LaunchOptions::default().with_auto_activate(true)).await?;
//! let reply = counter.call(Envelope::new(builtin::COUNTER_ADD, 5u64.to_le_bytes()), Duration::from_secs(1)).await?;
//! assert_eq!(reply.payload, 5u64.to_le_bytes());
//! runtime.shutdown().await?;
//! # Ok(())
//! # }
//! ```
//!
//! ## How actors map onto the GPU
//!
//! A **resident pool**: when the runtime starts, one cooperative kernel of
//! [`CudaConfig::actor_slots`] blocks (128 by default, `CudaConfig::block_size` handler threads and
//! two service warps each) is launched and stays resident for the runtime's life; the occupancy API checks first that every
//! block fits at once, and the runtime refuses to start with an error saying how many do. Launching
//! an actor writes its arguments into a free slot in pinned memory; the slot's idle block picks
//! them up and runs the persistent actor loop until the actor terminates or fails, then waits for
//! the next. A launch beyond the slots is refused with the count.
//!
//! Why not one persistent kernel per actor, each on its own stream: streams share the device's
//! hardware queues (at most 32), work queued behind a kernel that never ends waits forever, and on
//! an H100 the 35th such actor never started (BENCHMARKS.md). And code cannot be loaded into a
//! context while persistent kernels run, so every registered CUDA handler is compiled into one
//! module (each in its own namespace) before the pool starts; a handler that does not compile is
//! left out and its launch returns the compile error. Nothing here waits for the whole device:
//! device memory is allocated and freed stream-ordered, pinned memory is pooled.
//!
//! ## One actor's block
//!
//! Three roles share the block (`cuda/loop.cuh`): the **bus warp** reads the host's memory — each
//! round trip brings the control block's host line and, speculatively, the next input slot, which
//! it accepts by the slot check the host writes with it
//! ([`slot_check`](mod@ringkernel_core::message::slot_check)), so a message costs one read over the bus; the
//! **inbox warp** watches the K2K inbox in device memory the same way, so K2K traffic never waits
//! behind the bus; the **handler threads** take messages from both in batches: the first warp
//! checks and stamps each message and writes replies (16-byte stores across its lanes), the
//! handler runs on all of them between two barriers, and a batch is published once, with plain
//! stores: every reply carries a whole-slot check the host verifies before reading it
//! (`HostConfig::output_slot_checks`), every K2K slot one its receiver verifies, so no fence is on
//! the message path (a device-scope fence only for K2K payloads over 64 bytes). The reason,
//! measured on an H200 (`bench/probes/traffic.cu`): a fence waits for reads of host memory in
//! flight, a system release costs ~1 300 cycles alone and ~16 000–260 000 while 8–128 other
//! blocks poll host memory. Where a fence remains, the service warps stop reading while the batch
//! it publishes is handled, unless the batch is long.
//!
//! ## Faults
//!
//! A handler's `rk_fail` stops its actor alone (`KernelState::Failed`; the host takes back what it
//! had not handled). A hardware fault (a trap, an illegal address) loses the whole CUDA context: a
//! monitor thread notices as soon as the driver reports it (3.4 s after a `trap` on an H100 with
//! driver 580), marks every actor of the runtime failed with `KernelFault` naming the CUDA error,
//! and `take_unprocessed` returns what each had accepted from the host. K2K messages in device
//! memory are then lost, and the fault says so. Each runtime has its own context, but that driver
//! refuses new contexts for the rest of the process after such a fault: `CudaRuntime::new` then
//! returns `BackendUnavailable` saying to restart the process. A watchdog (2 s by default) may
//! answer a waiting call before the driver does, with its own `KernelFault`.

//!
//! ## Halo exchange
//!
//! [`CudaHaloExchange`] runs `ringkernel_core::halo`'s tiled stencils (mean, Jacobi, wave) on
//! persistent blocks: one block per tile, all resident at once, many steps per launch. Faces travel
//! through device memory as (word, step) pairs, so that each word is checked on arrival and no fence
//! is needed; neighbours wait for each other pairwise, never for the whole grid; a wrong or missing
//! face stops the run with a `KernelFault` naming the tile, the direction and the step, before any
//! cell is computed from it. Results equal the CPU reference bit for bit (`cuda/halo.cu`).
//! [`halo::PlainJacobi`] is the launch-per-step baseline `ringkernel bench-stencil` measures it
//! against.

pub mod compile;
pub mod driver;
pub mod floor;
pub mod halo;

mod actor;
mod launch;
mod layout;
mod monitor;
mod pool;
mod runtime;

pub use driver::{DeviceInfo, DriverError};
pub use halo::{CudaHaloConfig, CudaHaloExchange};
pub use runtime::{CudaConfig, CudaRuntime};
