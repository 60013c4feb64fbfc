//! The CPU backend's [`Device`]: an actor thread, woken by unparking it (threaded actors) or not at
//! all (polling actors, which look at their memory on their own, as a GPU kernel does).

use std::sync::{Mutex, OnceLock, PoisonError};
use std::thread::{JoinHandle, Thread};

use ringkernel_host::Device;

/// One actor thread as the engine sees it.
pub(crate) struct ActorThread {
    /// Set once the thread runs; a wake-up before that is not needed (the actor reads the control
    /// block when it starts).
    thread: OnceLock<Thread>,
    handle: Mutex<Option<JoinHandle<()>>>,
    polling: bool,
}

impl ActorThread {
    pub(crate) fn new(polling: bool) -> Self {
        Self { thread: OnceLock::new(), handle: Mutex::new(None), polling }
    }

    pub(crate) fn started(&self, handle: JoinHandle<()>) {
        let _ = self.thread.set(handle.thread().clone());
        *self.handle.lock().unwrap_or_else(PoisonError::into_inner) = Some(handle);
    }

    pub(crate) fn thread(&self) -> Option<Thread> {
        (!self.polling).then(|| self.thread.get().cloned()).flatten()
    }
}

// SAFETY: the actor's last write to the kernel's memory is `report_stopped` (it drops its ring ends
// first), and it leaves the K2K directory, under the directory's write lock, before that: once the
// host sees the stop, nothing touches the memory or can still reach the inbox.
unsafe impl Device for ActorThread {
    fn wake(&self) {
        if !self.polling
            && let Some(thread) = self.thread.get()
        {
            thread.unpark();
        }
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
