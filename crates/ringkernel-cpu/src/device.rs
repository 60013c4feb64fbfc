//! The CPU backend's [`Device`]: an actor thread, woken by unparking it (threaded actors) or not at
//! all (polling actors, which look at their memory on their own, as a GPU kernel does).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock, PoisonError};
use std::thread::{JoinHandle, Thread};
use std::time::Duration;

use ringkernel_host::Device;

/// One actor thread, as the engine and the K2K directory see it.
///
/// Waking it is Dekker's pattern between a hot side (every send) and a cold one (an actor about to
/// sleep): the actor raises `sleeping`, issues a process-wide barrier (`membarrier(2)` via
/// `membarrier2`), looks for work once more and only then parks; a waker publishes its work, keeps
/// the compiler from reordering, and unparks only if it sees `sleeping`. Either the actor sees the
/// work or the waker sees the actor asleep, and a busy actor costs its wakers one plain load.
pub(crate) struct ActorThread {
    /// Set once the thread runs; a wake-up before that is not needed (the actor reads the control
    /// block when it starts).
    thread: OnceLock<Thread>,
    handle: Mutex<Option<JoinHandle<()>>>,
    sleeping: AtomicBool,
    polling: bool,
}

impl ActorThread {
    pub(crate) fn new(polling: bool) -> Self {
        Self { thread: OnceLock::new(), handle: Mutex::new(None), sleeping: AtomicBool::new(false), polling }
    }

    pub(crate) fn started(&self, handle: JoinHandle<()>) {
        let _ = self.thread.set(handle.thread().clone());
        *self.handle.lock().unwrap_or_else(PoisonError::into_inner) = Some(handle);
    }

    /// Makes the actor look at its memory: unparks it if it sleeps. Call after publishing the work.
    pub(crate) fn notify(&self) {
        if self.polling {
            return;
        }
        membarrier2::light();
        if self.sleeping.load(Ordering::Relaxed)
            && let Some(thread) = self.thread.get()
        {
            thread.unpark();
        }
    }

    /// Called by the actor itself: sleeps at most `timeout` unless `has_work` (asked after the
    /// actor announced that it sleeps) says otherwise. A polling actor just naps.
    pub(crate) fn sleep(&self, timeout: Duration, nap: Duration, mut has_work: impl FnMut() -> bool) {
        if self.polling {
            std::thread::sleep(nap);
            return;
        }
        self.sleeping.store(true, Ordering::Relaxed);
        membarrier2::heavy();
        if !has_work() {
            std::thread::park_timeout(timeout);
        }
        self.sleeping.store(false, Ordering::Relaxed);
    }
}

// SAFETY: the actor's last write to the kernel's memory is `report_stopped` (it drops its ring ends
// first), and it leaves the K2K directory, under the directory's write lock, before that: once the
// host sees the stop, nothing touches the memory or can still reach the inbox.
unsafe impl Device for ActorThread {
    fn wake(&self) {
        self.notify();
    }

    fn rings_doorbell(&self) -> bool {
        !self.polling
    }

    fn release(&self) {
        let handle = self.handle.lock().unwrap_or_else(PoisonError::into_inner).take();
        if let Some(handle) = handle
            && handle.join().is_err()
        {
            tracing::error!("an actor thread panicked outside its handler");
        }
    }
}
