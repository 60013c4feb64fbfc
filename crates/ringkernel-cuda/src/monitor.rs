//! The monitor: a thread that watches the pool for the runtime. An actor whose block has left it
//! gets its inbox copied back (if it failed), its device memory freed and its slot freed, and only
//! then is its stop reported in the control block, so that the host engine never waits for any of
//! it. A hardware error (the context is lost) fails every actor of the runtime.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use ringkernel_core::control::DeviceStop;
use ringkernel_core::control::SharedControl;
use ringkernel_core::error::codes;
use ringkernel_core::runtime::KernelId;
use ringkernel_host::lock;

use crate::actor::ActorShared;
use crate::driver::{Context, DeviceBuffer, DriverError};
use crate::pool::Pool;

/// How often the monitor looks.
const PERIOD: Duration = Duration::from_micros(500);

/// A running actor (or one that ended and is not yet tidied up), as the monitor sees it.
pub(crate) struct Track {
    pub(crate) id: KernelId,
    pub(crate) slot: usize,
    /// Device memory: state, scratch — and the inbox, copied back from before it is freed.
    pub(crate) state: DeviceBuffer,
    pub(crate) scratch: DeviceBuffer,
    pub(crate) inbox: DeviceBuffer,
    /// Where the inbox is copied back to: its place in the kernel's pinned region (the host
    /// engine's mirror, from which it takes back what was never received).
    pub(crate) inbox_mirror: *mut u8,
    pub(crate) shared: Arc<ActorShared>,
    /// The pinned region may be reused once set.
    pub(crate) reusable: Arc<AtomicBool>,
    pub(crate) control: SharedControl,
}

// SAFETY: the mirror pointer lies in a pinned block that is not reused before `reusable` is set,
// and is written only by the monitor, under the tracks lock.
unsafe impl Send for Track {}

/// What the monitor watches: the pool and its actors. It outlives the runtime while actors whose
/// handles were kept still run; dropping it waits for the pool kernel (the `pool` field drops
/// first), then frees the route table those actors used.
pub(crate) struct Watch {
    pub(crate) context: Arc<Context>,
    pub(crate) pool: Pool,
    /// Device memory: `MAX_ACTORS` route entries (entry = slot), read by every running actor.
    pub(crate) routes: DeviceBuffer,
    pub(crate) tracks: Mutex<Vec<Track>>,
}

impl Watch {
    /// Starts the monitor thread. It runs until `runtime` is gone and every actor has ended.
    ///
    /// # Errors
    /// When the thread cannot be spawned.
    pub(crate) fn spawn(self: &Arc<Self>, runtime: Weak<()>) -> std::io::Result<()> {
        let watch = self.clone();
        std::thread::Builder::new().name("rk-cuda-monitor".into()).spawn(move || {
            loop {
                watch.poll();
                let done = runtime.strong_count() == 0
                    && (lock(&watch.tracks).is_empty() || watch.context.poisoned().is_some());
                if done {
                    return;
                }
                std::thread::sleep(PERIOD);
            }
        })?;
        Ok(())
    }

    /// The track of a running actor.
    pub(crate) fn with_track<T>(&self, kernel: &KernelId, f: impl FnOnce(&Track) -> T) -> Option<T> {
        lock(&self.tracks).iter().find(|track| &track.id == kernel).map(f)
    }

    fn poll(&self) {
        if self.context.poisoned().is_some() {
            return;
        }
        let mut tracks = lock(&self.tracks);
        let (lost, pool_ended) = match self.context.bind().and_then(|()| self.pool.ended()) {
            Err(error) => (Some(error), false),
            // Normal once the runtime is gone (its blocks exit when idle); otherwise the actors
            // it still ran are failed below.
            Ok(ended) => (None, ended),
        };
        if let Some(error) = lost {
            tracing::error!(%error, "the CUDA context was lost; every actor of the runtime fails");
            self.context.poison(error);
            for track in tracks.drain(..) {
                track.control.block().fail_for_device(codes::HANDLER_FAULT);
                // The buffers go with the lost context; freeing them there only returns errors.
                std::mem::forget((track.state, track.scratch, track.inbox));
            }
            return;
        }
        let mut index = 0;
        while index < tracks.len() {
            let track = &tracks[index];
            if pool_ended {
                // The pool ended under it (it cannot run any more): it failed.
                track.control.block().fail_for_device(codes::HANDLER_FAULT);
                self.pool.release(track.slot);
                tracks.swap_remove(index);
            } else if self.pool.is_idle(track.slot) {
                let track = tracks.swap_remove(index);
                self.finish(track);
            } else {
                index += 1;
            }
        }
    }

    /// An actor's block has left it: copy its inbox back if it failed (the host takes back what
    /// was never received; a drained actor left none), free its device memory and its slot, and
    /// report its stop.
    fn finish(&self, track: Track) {
        let stop = DeviceStop::from_word(self.pool.stop_code(track.slot));
        if stop != DeviceStop::Terminated {
            // SAFETY: the mirror is `inbox.bytes()` of pinned memory in the kernel's region, which
            // the engine holds and the pool does not reuse before `reusable`; the actor ended.
            let copied = unsafe { track.inbox.download_to(track.inbox_mirror, track.inbox.bytes()) };
            if let Err(error) = copied {
                *lock(&track.shared.copy_error) = Some(describe_copy(error));
            }
        }
        let Track { slot, state, scratch, inbox, reusable, control, .. } = track;
        drop((state, scratch, inbox));
        self.pool.release(slot);
        // The device's stop, relayed: its last word, after everything else it wrote (a block that
        // left with an undefined stop word failed).
        control.block().relay_stop(stop, codes::HANDLER_FAULT);
        reusable.store(true, Ordering::Release);
    }
}

fn describe_copy(error: DriverError) -> String {
    format!("copying the K2K inbox back failed: {error}")
}
