//! [`WakeFlag`]: how a service thread (the wgpu pump) waits for work: it spins a while, then
//! sleeps on a condition variable; a waker pays for a notification only while it sleeps.
//! Model-checked with loom (`tests/loom_queue.rs`): no wake-up is lost.

#[cfg(not(loom))]
use std::sync::atomic::{AtomicBool, Ordering};
#[cfg(not(loom))]
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

#[cfg(loom)]
use loom::sync::atomic::{AtomicBool, Ordering};
#[cfg(loom)]
use loom::sync::{Condvar, Mutex, MutexGuard};

/// A wake-up flag one thread waits on and any thread sets.
///
/// `wake` stores `pending`, then loads `sleeping`; the waiter stores `sleeping`, then swaps
/// `pending` (all sequentially consistent): one of the two sees the other's store, so either the
/// waiter finds the wake-up before it sleeps or the waker notifies it.
#[derive(Debug, Default)]
pub struct WakeFlag {
    pending: AtomicBool,
    sleeping: AtomicBool,
    woken: Mutex<bool>,
    wakeup: Condvar,
}

impl WakeFlag {
    /// A flag with no wake-up pending.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the flag; notifies the waiter if it sleeps.
    pub fn wake(&self) {
        self.pending.store(true, Ordering::SeqCst);
        if self.sleeping.load(Ordering::SeqCst) {
            *self.lock() = true;
            self.wakeup.notify_one();
        }
    }

    /// Returns once a wake-up is pending (consuming it) or `stop()` holds. Spins (calling
    /// `keep_spinning` between looks) until it returns false, then sleeps. `stop` is checked
    /// before sleeping and after every notification: whoever makes it true must `wake` after.
    pub fn wait(&self, mut keep_spinning: impl FnMut() -> bool, stop: impl Fn() -> bool) {
        while !self.pending.load(Ordering::Acquire) && !stop() && keep_spinning() {
            spin_hint();
        }
        if self.pending.swap(false, Ordering::AcqRel) {
            return;
        }
        let mut woken = self.lock();
        self.sleeping.store(true, Ordering::SeqCst);
        if self.pending.swap(false, Ordering::SeqCst) {
            *woken = true;
        }
        while !*woken && !stop() {
            woken = self.wait_on(woken);
        }
        *woken = false;
        self.sleeping.store(false, Ordering::SeqCst);
        self.pending.store(false, Ordering::Release);
    }

    #[cfg(not(loom))]
    fn lock(&self) -> MutexGuard<'_, bool> {
        self.woken.lock().unwrap_or_else(PoisonError::into_inner)
    }

    #[cfg(not(loom))]
    fn wait_on<'a>(&self, guard: MutexGuard<'a, bool>) -> MutexGuard<'a, bool> {
        self.wakeup.wait(guard).unwrap_or_else(PoisonError::into_inner)
    }

    #[cfg(loom)]
    fn lock(&self) -> MutexGuard<'_, bool> {
        self.woken.lock().unwrap()
    }

    #[cfg(loom)]
    fn wait_on<'a>(&self, guard: MutexGuard<'a, bool>) -> MutexGuard<'a, bool> {
        self.wakeup.wait(guard).unwrap()
    }
}

fn spin_hint() {
    #[cfg(loom)]
    loom::thread::yield_now();
    #[cfg(not(loom))]
    std::hint::spin_loop();
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    #[test]
    fn a_wake_reaches_a_sleeping_waiter_and_one_before_the_wait_is_kept() {
        let flag = Arc::new(WakeFlag::new());
        flag.wake();
        flag.wait(|| false, || false); // returns at once: the wake-up was pending
        let waiter = {
            let flag = flag.clone();
            std::thread::spawn(move || flag.wait(|| false, || false))
        };
        std::thread::sleep(Duration::from_millis(20));
        flag.wake();
        waiter.join().unwrap();
        let started = Instant::now();
        flag.wait(|| started.elapsed() < Duration::from_millis(5), || true);
    }
}
