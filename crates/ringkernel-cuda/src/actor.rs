//! One actor as the host engine sees it: a block of the resident pool, with its state, K2K inbox
//! and scratch in device memory.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use ringkernel_core::control::SharedControl;
use ringkernel_core::error::{Result, RingKernelError};
use ringkernel_core::layout::termination;
use ringkernel_host::Device;

use crate::driver::Context;

/// An actor's arguments (in its pool slot), as `RkArgs` in `cuda/prelude.cuh` declares them.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub(crate) struct RkArgs {
    pub control: u64,
    pub input: u64,
    pub output: u64,
    pub state: u64,
    pub inbox: u64,
    pub routes: u64,
    pub scratch: u64,
    pub clock_offset_ns: i64,
    pub max_offset_ns: u64,
    pub heartbeat_ns: u64,
    pub state_bytes: u32,
    pub route_index: u32,
    pub number: u32,
    pub name_hash: u32,
    pub name_len: u32,
    pub kind: u32,
    pub name: [u8; NAME_BYTES],
}

/// Bytes of a kernel name a route entry keeps (longer names match by hash, length and prefix).
pub(crate) const NAME_BYTES: usize = 32;

const _: () = assert!(size_of::<RkArgs>() == 136, "RkArgs must match the CUDA declaration");

/// FNV-1a, as `rk_fnv1a` computes it on the device.
pub(crate) fn fnv1a(bytes: &[u8]) -> u32 {
    bytes.iter().fold(2_166_136_261u32, |hash, byte| (hash ^ u32::from(*byte)).wrapping_mul(16_777_619))
}

/// What the monitor and the engine's device share about one actor kernel.
#[derive(Default)]
pub(crate) struct ActorShared {
    /// Set by the monitor once the kernel ended (or the context was lost) and its inbox was
    /// copied back.
    pub(crate) finished: AtomicBool,
    /// How copying the inbox back went (`None` until it was tried; `Some(Ok)` also when there
    /// was nothing to copy).
    pub(crate) copied: Mutex<Option<std::result::Result<(), String>>>,
}

/// The device side of one kernel. Its device memory belongs to the runtime's monitor, which
/// copies the inbox back and frees it once the actor has ended.
pub(crate) struct CudaActor {
    pub(crate) context: Arc<Context>,
    pub(crate) control: SharedControl,
    pub(crate) shared: Arc<ActorShared>,
}

// SAFETY: the kernel's last write is `has_terminated` (`rk_stop`), made after it left the route
// table (no K2K sender can still be writing into its inbox: `rk_leave_routes` waits for them) and
// after publishing the exact `input_head` and inbox `head` of what it consumed. A kernel that a
// hardware fault killed writes nothing more at all; the host then writes `RK_FAILED` for it.
unsafe impl Device for CudaActor {
    fn wake(&self) {
        // The kernel polls its control block and rings.
    }

    fn sync_from_device(&self) -> Result<()> {
        if self.control.termination() == termination::RUNNING {
            return Ok(());
        }
        // The kernel reported its stop and is ending; the monitor notices within a millisecond and
        // copies the inbox back into its host mirror.
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.shared.finished.load(Ordering::Acquire) {
            if self.context.poisoned().is_some() {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(RingKernelError::KernelFault {
                    kernel: "cuda".into(),
                    reason: "the kernel reported its stop but did not end within 10 s".into(),
                });
            }
            std::thread::sleep(Duration::from_micros(50));
        }
        match &*self.shared.copied.lock().unwrap_or_else(PoisonError::into_inner) {
            Some(Err(reason)) => Err(RingKernelError::KernelFault { kernel: "cuda".into(), reason: reason.clone() }),
            _ => Ok(()),
        }
    }

    fn fault_detail(&self) -> Option<String> {
        self.context.poisoned().map(|error| {
            format!(
                "the GPU context was lost ({error}); every actor of this runtime stopped, and K2K messages still \
                 in device memory cannot be read back (the message an actor was handling when it stopped is \
                 returned with the unhandled ones, though it may already have sent some replies). Create a new \
                 runtime to go on"
            )
        })
    }
}
