//! One actor as the host engine sees it: a block of the resident pool. Its stop is reported by
//! the runtime's monitor once the block has left it and a failed actor's inbox has been copied
//! back, so nothing here waits.

use std::sync::{Arc, Mutex, PoisonError};

use ringkernel_core::error::{Result, RingKernelError};
use ringkernel_host::Device;

use crate::driver::Context;

/// What the monitor and the engine's device share about one actor.
#[derive(Default)]
pub(crate) struct ActorShared {
    /// Why copying a failed actor's inbox back failed, if it did: its mirror is then not trusted.
    pub(crate) copy_error: Mutex<Option<String>>,
}

/// The device side of one kernel.
pub(crate) struct CudaActor {
    pub(crate) id: String,
    pub(crate) context: Arc<Context>,
    pub(crate) shared: Arc<ActorShared>,
}

// SAFETY: `has_terminated` is written by the runtime's monitor on the device's behalf, only once
// the actor's block has left the actor: after it published the exact `input_head` and inbox `head`
// of what it consumed, left the route table (no K2K sender can still be writing into its inbox)
// and, for a failed actor, after its inbox was copied back into the host's mirror. A kernel that a
// hardware fault killed writes nothing more at all; the monitor then writes `RK_FAILED` for it.
unsafe impl Device for CudaActor {
    fn wake(&self) {
        // The kernel polls its control block and rings.
    }

    fn sync_from_device(&self) -> Result<()> {
        // The monitor copied the inbox back before it reported the stop: nothing to wait for.
        match &*self.shared.copy_error.lock().unwrap_or_else(PoisonError::into_inner) {
            Some(reason) => Err(RingKernelError::KernelFault { kernel: self.id.clone(), reason: reason.clone() }),
            None => Ok(()),
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
