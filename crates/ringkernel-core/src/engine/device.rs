//! What a backend gives the engine for one kernel: the [`Device`] trait, and the [`Doorbell`] a
//! device may ring so that waiting hosts need not poll.

use std::sync::atomic::{AtomicUsize, Ordering};

use crate::error::Result;

/// The backend's part of one kernel, in the spirit of wgpu-hal under wgpu-core: how to make the
/// device look at its memory, how to move that memory between host and device views, and how to
/// let go of the device. Everything else — the kernel's status, counters, clock, queues — the
/// engine reads from the control block and the rings, never from a Rust channel, lock or thread
/// handle.
///
/// | | cpu | cuda | wgpu / metal |
/// |---|---|---|---|
/// | `wake` | unpark the actor thread | nothing (the kernel polls) | submit a dispatch |
/// | `sync_*` | nothing | nothing (mapped memory) | copy staged rings |
/// | doorbell | the actor rings it | none: waiters poll | the completion callback rings it |
///
/// # Safety
/// The engine relies on one promise: once the device has stored `RK_TERMINATED` or `RK_FAILED`
/// into the control block's `has_terminated` (as its last write), it never touches the kernel's
/// memory again, and nothing can still write into the kernel's K2K inbox; and before that store the
/// device published the exact `input_head` (and inbox `head`) of what it consumed — a consumer that
/// hands slots back in batches publishes the rest first. The engine then plays the device's part
/// to take back what was accepted but never handled. (A device that writes any other stop code, or
/// breaks the ring protocol, is not trusted: nothing is taken back from it.)
pub unsafe trait Device: Send + Sync + 'static {
    /// The host published input or changed a control flag: make the device look.
    fn wake(&self);

    /// Makes the host's writes to the kernel's memory visible to the device (staged memory: a
    /// copy). Called before [`Device::wake`]. Mapped memory needs nothing (the default).
    ///
    /// # Errors
    /// Whatever the copy reports; the operation that called it fails with it.
    fn sync_to_device(&self) -> Result<()> {
        Ok(())
    }

    /// Brings the device's writes into the host's view (staged memory: a copy) before the engine
    /// reads the output ring. Mapped memory needs nothing (the default).
    ///
    /// # Errors
    /// Whatever the copy reports; the operation that called it fails with it.
    fn sync_from_device(&self) -> Result<()> {
        Ok(())
    }

    /// Whether the device rings the kernel's [`Doorbell`] whenever it publishes output, frees
    /// input slots, acknowledges a control change or stops. If it does not (the default), waiting
    /// hosts poll.
    fn rings_doorbell(&self) -> bool {
        false
    }

    /// Why the device stopped, when it knows better than the control block's `last_error` code (a
    /// GPU backend names the hardware error that lost its context). The engine puts it into the
    /// `KernelFault` of a kernel that failed. `None` (the default): the code says it all.
    fn fault_detail(&self) -> Option<String> {
        None
    }

    /// The device stopped for good: release what it holds (join a thread, free a context). Called
    /// at most once, by `terminate`.
    fn release(&self) {}
}

/// A wake-up from the device side to waiting hosts that costs the ringer one plain load (and a
/// compiler fence) when nobody waits.
///
/// Waiters register, then re-check their condition, then await; ringers change the condition,
/// then [`Doorbell::ring`]. That is Dekker's pattern, which needs a full barrier on both sides
/// between the store and the load. The ringer is on the hot path (every reply), the waiter on the
/// slow one (it has already spun and is about to sleep), so the barrier is asymmetric: the waiter
/// issues a process-wide barrier (`membarrier(2)` where the OS has it, via `membarrier2`), which
/// stands in for the ringer's, and the ringer only keeps the compiler from reordering. Either the
/// waiter sees the change or the ringer sees the waiter. (Without OS support both sides fall back to
/// an ordinary fence.) The engine rings it too, when one host task's drain moved a message that
/// another task waits for.
#[derive(Debug, Default)]
pub struct Doorbell {
    waiters: AtomicUsize,
    notify: tokio::sync::Notify,
}

impl Doorbell {
    /// A doorbell nobody waits on yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Wakes every waiting host task (cheap when there is none).
    pub fn ring(&self) {
        membarrier2::light();
        if self.waiters.load(Ordering::Relaxed) > 0 {
            self.notify.notify_waiters();
        }
    }

    pub(crate) fn notified(&self) -> tokio::sync::futures::Notified<'_> {
        self.notify.notified()
    }

    /// Counts the caller as a waiter until the guard drops.
    pub(crate) fn register(&self) -> WaiterGuard<'_> {
        self.waiters.fetch_add(1, Ordering::SeqCst);
        membarrier2::heavy();
        WaiterGuard(self)
    }
}

pub(crate) struct WaiterGuard<'a>(&'a Doorbell);

impl Drop for WaiterGuard<'_> {
    fn drop(&mut self) {
        self.0.waiters.fetch_sub(1, Ordering::SeqCst);
    }
}
