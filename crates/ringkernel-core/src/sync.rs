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

/// Orders every earlier store (write-combined ones included) before every later one: what a
/// producer into write-combined or device-mapped memory issues before publishing an index. A
/// release store alone does not order write-combined stores on x86-64.
#[inline]
pub(crate) fn store_fence() {
    #[cfg(all(target_arch = "x86_64", not(miri), not(loom)))]
    // SAFETY: `sfence` has no preconditions; SSE is part of the x86-64 baseline.
    unsafe {
        std::arch::x86_64::_mm_sfence();
    }
    #[cfg(not(all(target_arch = "x86_64", not(miri), not(loom))))]
    fence(Ordering::SeqCst);
}

/// Asks the CPU to bring the cache line holding `ptr` close, for reading or (where the CPU has
/// `prefetchw`) for writing. A hint: it never faults and changes no memory, so any address is
/// fine. A no-op off x86-64 and under miri and loom.
#[inline(always)]
pub(crate) fn prefetch(ptr: *const u8, for_write: bool) {
    #[cfg(all(target_arch = "x86_64", not(miri), not(loom)))]
    {
        use std::arch::x86_64::{_MM_HINT_ET0, _MM_HINT_T0, _mm_prefetch};
        // SAFETY: prefetch instructions are hints; they do not fault on any address and do not
        // change memory. SSE (for `prefetcht0`) is part of the x86-64 baseline, and `prefetchw`
        // executes as a no-op on CPUs without it.
        unsafe {
            if for_write {
                _mm_prefetch::<_MM_HINT_ET0>(ptr.cast());
            } else {
                _mm_prefetch::<_MM_HINT_T0>(ptr.cast());
            }
        }
    }
    #[cfg(not(all(target_arch = "x86_64", not(miri), not(loom))))]
    let _ = (ptr, for_write);
}
