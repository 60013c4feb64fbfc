//! The resident pool: one cooperative kernel of actor blocks, launched when the runtime starts and
//! resident for its life, and the pinned slots through which actors are handed to its blocks.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use ringkernel_host::lock;
use std::time::{Duration, Instant};

use cudarc::driver::sys;
use ringkernel_core::error::{Result, RingKernelError};
use ringkernel_core::region::Region;

use crate::driver::{Context, DriverError, PinnedRegion, Stream, check};
use crate::layout::{RkArgs, RkSlot, slot_state};

/// Threads of the service warps each actor block runs beside its handler threads: the bus warp
/// and the inbox warp (`RK_BLOCK_THREADS - RK_THREADS` in the template).
pub(crate) const SERVICE_THREADS: u32 = 64;

/// How long dropping the pool waits for its kernel to end before it leaks the context.
const END_WAIT: Duration = Duration::from_secs(5);

/// The atomic words of a pool slot the host reads or writes.
#[derive(Clone, Copy)]
enum SlotWord {
    State,
    Shutdown,
    StopCode,
    CheckedReads,
    ConfirmedReads,
    Profile(usize),
}

/// The pool kernel and its slots.
pub(crate) struct Pool {
    context: Arc<Context>,
    stream: Stream,
    /// `RkSlot`s in pinned, mapped memory.
    slots: PinnedRegion,
    capacity: usize,
    /// Handler threads per block.
    threads: u32,
    used: Mutex<Vec<bool>>,
}

impl Pool {
    /// Checks that `capacity` blocks of `threads` handler threads (plus the service warps) can be
    /// resident at once, then launches the pool kernel `function` over zeroed (idle) slots.
    ///
    /// # Errors
    /// [`RingKernelError::InvalidConfig`] saying how many blocks fit when they do not; the
    /// driver's refusal otherwise.
    pub(crate) fn launch(
        context: &Arc<Context>,
        function: sys::CUfunction,
        threads: u32,
        capacity: usize,
    ) -> Result<Self> {
        let block = threads + SERVICE_THREADS;
        let mut per_sm = 0;
        // SAFETY: a loaded function; out-parameter call.
        let r = unsafe { sys::cuOccupancyMaxActiveBlocksPerMultiprocessor(&mut per_sm, function, block as i32, 0) };
        check(r, "cuOccupancyMaxActiveBlocksPerMultiprocessor")?;
        let info = context.info();
        let resident = per_sm.max(0) as usize * info.multiprocessors.max(0) as usize;
        if capacity > resident {
            return Err(RingKernelError::InvalidConfig {
                field: "actor_slots",
                reason: format!(
                    "{capacity} actor blocks of {threads} threads (+{SERVICE_THREADS} service threads) cannot be \
                     resident at once on {}: {resident} can ({per_sm} per SM × {} SMs); a block that is not resident \
                     would never run its actor",
                    info.name, info.multiprocessors
                ),
            });
        }
        let stream = Stream::new(context)?;
        let slots = context.pinned(capacity * size_of::<RkSlot>(), Arc::new(AtomicBool::new(false)))?;
        let mut slots_address = slots.device_address(0);
        let mut params = [(&mut slots_address as *mut u64).cast::<std::ffi::c_void>()];
        // SAFETY: `rk_pool_main` takes one pointer to `capacity` RkSlots of zeroed (idle) pinned
        // memory, which lives as long as the pool (which waits for the kernel when dropped). A
        // cooperative launch fails rather than start a grid that cannot be resident at once.
        let r = unsafe {
            sys::cuLaunchCooperativeKernel(
                function,
                capacity as u32,
                1,
                1,
                block,
                1,
                1,
                0,
                stream.raw(),
                params.as_mut_ptr(),
            )
        };
        check(r, "launching the actor pool")?;
        Ok(Self { context: context.clone(), stream, slots, capacity, threads, used: Mutex::new(vec![false; capacity]) })
    }

    /// Slots (how many actors run at once).
    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    /// Handler threads per block.
    pub(crate) fn threads(&self) -> u32 {
        self.threads
    }

    fn slot(&self, index: usize) -> *mut RkSlot {
        assert!(index < self.capacity, "slot {index} of {}", self.capacity);
        self.slots.as_ptr().cast::<RkSlot>().wrapping_add(index)
    }

    /// An atomic word of slot `index`.
    fn word(&self, index: usize, word: SlotWord) -> &AtomicU32 {
        let slot = self.slot(index);
        // SAFETY: the slot lies in the pinned region (`slot` checks the index), which lives as
        // long as self; every word named here is an AtomicU32 field, which the device accesses
        // atomically too. Only a reference to that field is made, never to the whole slot.
        unsafe {
            &*match word {
                SlotWord::State => std::ptr::addr_of!((*slot).state),
                SlotWord::Shutdown => std::ptr::addr_of!((*slot).shutdown),
                SlotWord::StopCode => std::ptr::addr_of!((*slot).stop_code),
                SlotWord::CheckedReads => std::ptr::addr_of!((*slot).checked_reads),
                SlotWord::ConfirmedReads => std::ptr::addr_of!((*slot).confirmed_reads),
                SlotWord::Profile(i) => std::ptr::addr_of!((*slot).profile[i]),
            }
        }
    }

    /// Takes a free slot, if there is one.
    pub(crate) fn claim(&self) -> Option<usize> {
        let mut used = lock(&self.used);
        let free = used.iter().position(|used| !used)?;
        used[free] = true;
        Some(free)
    }

    /// Gives a slot back (its block is idle again).
    pub(crate) fn release(&self, index: usize) {
        lock(&self.used)[index] = false;
    }

    /// Hands an actor to the idle block of a claimed slot: its arguments, then (release) the state
    /// the block polls.
    pub(crate) fn assign(&self, index: usize, args: &RkArgs) {
        let slot = self.slot(index);
        // SAFETY: the slot is ours (claimed) and its block idle: nothing reads `args` until it sees
        // ASSIGNED (acquire), which is stored below. Written through the region's pointer.
        unsafe { std::ptr::write_volatile(std::ptr::addr_of_mut!((*slot).args), *args) };
        for word in [SlotWord::StopCode, SlotWord::CheckedReads, SlotWord::ConfirmedReads] {
            self.word(index, word).store(0, Ordering::Relaxed);
        }
        self.word(index, SlotWord::State).store(slot_state::ASSIGNED, Ordering::Release);
    }

    /// Whether slot `index`'s block has left its actor (idle again).
    pub(crate) fn is_idle(&self, index: usize) -> bool {
        self.word(index, SlotWord::State).load(Ordering::Acquire) == slot_state::IDLE
    }

    /// How the actor of slot `index` stopped (read once the slot is idle).
    pub(crate) fn stop_code(&self, index: usize) -> u32 {
        self.word(index, SlotWord::StopCode).load(Ordering::Acquire)
    }

    /// The `RK_PROFILE` counters of slot `index`'s actor.
    pub(crate) fn profile(&self, index: usize) -> [u64; 7] {
        std::array::from_fn(|i| {
            let low = self.word(index, SlotWord::Profile(2 * i)).load(Ordering::Relaxed);
            let high = self.word(index, SlotWord::Profile(2 * i + 1)).load(Ordering::Relaxed);
            u64::from(low) | u64::from(high) << 32
        })
    }

    /// How the bus warp of slot `index` read its host messages: `(checked, confirmed)` — in one
    /// round trip, accepted by their slot check; read again once the tail was known. Stored by the
    /// device whenever it goes idle.
    pub(crate) fn read_paths(&self, index: usize) -> (u32, u32) {
        let checked = self.word(index, SlotWord::CheckedReads).load(Ordering::Relaxed);
        let confirmed = self.word(index, SlotWord::ConfirmedReads).load(Ordering::Relaxed);
        (checked, confirmed)
    }

    /// Asks every block to leave once idle (the runtime is gone).
    pub(crate) fn shut_down(&self) {
        for index in 0..self.capacity {
            self.word(index, SlotWord::Shutdown).store(1, Ordering::Release);
        }
    }

    /// Whether the pool kernel has ended (`Err`: the error it ended with, which lost the context).
    pub(crate) fn ended(&self) -> std::result::Result<bool, DriverError> {
        self.stream.finished()
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        // Blocks exit once idle and asked to; an actor whose handles were all dropped was asked to
        // stop. Memory freed under a kernel that still runs could be corrupted, so a pool that does
        // not end in time leaks its context instead.
        self.shut_down();
        let deadline = Instant::now() + END_WAIT;
        loop {
            match self.ended() {
                Ok(true) | Err(_) => return,
                Ok(false) if Instant::now() > deadline => {
                    self.context.leak();
                    return;
                }
                Ok(false) => std::thread::sleep(Duration::from_micros(200)),
            }
        }
    }
}
