//! Atomics and cells, swapped for loom's under `--cfg loom` so that the queue protocols can be
//! model-checked without changing their code.

#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{AtomicU32, Ordering, fence};

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicU32, Ordering, fence};

/// Zero-cost stand-in for `loom::cell::UnsafeCell<()>`: loom records every slot access through one
/// of these so that it can prove that producer and consumer never touch a slot at the same time.
/// Outside loom it does nothing.
#[cfg(not(loom))]
#[derive(Debug, Default)]
pub(crate) struct AccessTracker;

#[cfg(not(loom))]
impl AccessTracker {
    pub(crate) fn new() -> Self {
        Self
    }
    #[inline(always)]
    pub(crate) fn write<R>(&self, f: impl FnOnce() -> R) -> R {
        f()
    }
    #[inline(always)]
    pub(crate) fn read<R>(&self, f: impl FnOnce() -> R) -> R {
        f()
    }
}

#[cfg(loom)]
#[derive(Debug, Default)]
pub(crate) struct AccessTracker(loom::cell::UnsafeCell<()>);

#[cfg(loom)]
impl AccessTracker {
    pub(crate) fn new() -> Self {
        Self(loom::cell::UnsafeCell::new(()))
    }
    pub(crate) fn write<R>(&self, f: impl FnOnce() -> R) -> R {
        self.0.with_mut(|_| f())
    }
    pub(crate) fn read<R>(&self, f: impl FnOnce() -> R) -> R {
        self.0.with(|_| f())
    }
}

/// Spin hint that also yields to loom's scheduler.
#[inline]
pub(crate) fn spin_hint() {
    #[cfg(loom)]
    loom::thread::yield_now();
    #[cfg(not(loom))]
    std::hint::spin_loop();
}
