//! Host-side access to a kernel's [`ControlBlock`]: creation, lifecycle flags, the device's
//! counters widened to 64 bits, and the device HLC state read through its seqlock.

use std::ptr::NonNull;
use std::sync::Arc;

use crate::error::{Result, RingKernelError};
use crate::hlc::HlcTimestamp;
use crate::layout::{ControlBlock, DeviceType, RingGeometry};
use crate::region::Owner;
#[cfg(not(loom))]
use crate::region::Region;
use crate::sync::{AtomicU32, Ordering, fence};

/// What the host writes into a control block before the kernel starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ControlConfig {
    /// Geometry of the host → kernel ring.
    pub input: RingGeometry,
    /// Geometry of the kernel → host ring.
    pub output: RingGeometry,
    /// Numeric kernel id.
    pub kernel_id: u32,
    /// HLC node id of the kernel.
    pub node_id: u32,
}

impl ControlBlock {
    fn configure(&mut self, config: &ControlConfig) {
        self.input_capacity = config.input.capacity();
        self.input_slot_bytes = config.input.slot_bytes();
        self.output_capacity = config.output.capacity();
        self.output_slot_bytes = config.output.slot_bytes();
        self.kernel_id = config.kernel_id;
        self.node_id = config.node_id;
    }

    /// The input ring's geometry as recorded here.
    pub fn input_geometry(&self) -> Result<RingGeometry> {
        RingGeometry::new(self.input_capacity, self.input_slot_bytes)
    }

    /// The output ring's geometry as recorded here.
    pub fn output_geometry(&self) -> Result<RingGeometry> {
        RingGeometry::new(self.output_capacity, self.output_slot_bytes)
    }

    /// Device side: publishes the kernel's HLC state (seqlock write; one writer only).
    pub fn store_device_hlc(&self, ts: HlcTimestamp) {
        let sequence = self.hlc_sequence.load(Ordering::Relaxed);
        self.hlc_sequence.store(sequence.wrapping_add(1), Ordering::Relaxed);
        fence(Ordering::Release);
        self.hlc_physical_lo.store(ts.physical_ns as u32, Ordering::Relaxed);
        self.hlc_physical_hi.store((ts.physical_ns >> 32) as u32, Ordering::Relaxed);
        self.hlc_logical.store(ts.logical, Ordering::Relaxed);
        self.hlc_sequence.store(sequence.wrapping_add(2), Ordering::Release);
    }

    /// Host side: reads the kernel's HLC state consistently (seqlock read), stamped with the
    /// kernel's node id.
    pub fn device_hlc(&self) -> HlcTimestamp {
        loop {
            let before = self.hlc_sequence.load(Ordering::Acquire);
            if before % 2 == 1 {
                crate::sync::spin_hint();
                continue;
            }
            let lo = self.hlc_physical_lo.load(Ordering::Relaxed);
            let hi = self.hlc_physical_hi.load(Ordering::Relaxed);
            let logical = self.hlc_logical.load(Ordering::Relaxed);
            fence(Ordering::Acquire);
            if self.hlc_sequence.load(Ordering::Relaxed) == before {
                return HlcTimestamp::new(u64::from(lo) | u64::from(hi) << 32, logical, self.node_id);
            }
            crate::sync::spin_hint();
        }
    }
}

/// A shared, host-accessible [`ControlBlock`] and whatever keeps its memory alive.
///
/// Cloning gives another handle to the same block.
#[derive(Clone)]
pub struct SharedControl {
    ptr: NonNull<ControlBlock>,
    _owner: Owner,
}

// SAFETY: a `ControlBlock` is atomics plus words that are written only before the handle exists;
// sharing it between threads is exactly what it is for.
unsafe impl Send for SharedControl {}
// SAFETY: as above.
unsafe impl Sync for SharedControl {}

impl SharedControl {
    /// A fresh control block on the heap, configured.
    pub fn new(config: ControlConfig) -> Self {
        let mut block = Box::new(<ControlBlock as DeviceType>::zeroed());
        block.configure(&config);
        let block: Arc<ControlBlock> = Arc::from(block);
        let ptr = NonNull::from(&*block);
        Self { ptr, _owner: block }
    }

    /// Writes a configured, zeroed control block at `offset` in `region` and returns a handle.
    ///
    /// # Errors
    /// [`RingKernelError::InvalidConfig`] if the block does not fit or the offset is not a multiple
    /// of 64.
    ///
    /// # Safety
    /// For as long as any handle lives, those 128 bytes of the region are accessed only as a
    /// `ControlBlock` (through handles or by device code following the protocol), and no device
    /// code touches them during this call.
    #[cfg(not(loom))]
    pub unsafe fn init_in_region(region: Arc<dyn Region>, offset: usize, config: ControlConfig) -> Result<Self> {
        let start = crate::region::subrange(
            &*region,
            offset,
            size_of::<ControlBlock>(),
            align_of::<ControlBlock>(),
            "control block offset",
        )?;
        let ptr = start.cast::<ControlBlock>();
        // SAFETY: in bounds and aligned (checked above); nobody else accesses the bytes during
        // this call (caller's promise); all-zero is a valid ControlBlock, then `configure` sets
        // plain words through the unique reference.
        unsafe {
            ptr.as_ptr().write(bytemuck::Zeroable::zeroed());
            (*ptr.as_ptr()).configure(&config);
        }
        Ok(Self { ptr, _owner: region })
    }

    /// The block.
    pub fn block(&self) -> &ControlBlock {
        // SAFETY: `ptr` points at a live, initialised ControlBlock kept alive by `_owner`; after
        // initialisation only its atomics are written.
        unsafe { self.ptr.as_ref() }
    }

    /// Asks the kernel to process messages.
    pub fn activate(&self) {
        self.block().is_active.store(1, Ordering::Release);
    }

    /// Asks the kernel to stop processing (queue and state stay).
    pub fn deactivate(&self) {
        self.block().is_active.store(0, Ordering::Release);
    }

    /// Asks the kernel to drain and stop.
    pub fn request_terminate(&self) {
        self.block().should_terminate.store(1, Ordering::Release);
    }

    /// Whether the kernel reported that it stopped.
    pub fn has_terminated(&self) -> bool {
        self.block().has_terminated.load(Ordering::Acquire) != 0
    }

    pub(crate) fn index_pair(&self, side: RingSide) -> (&AtomicU32, &AtomicU32) {
        let block = self.block();
        match side {
            RingSide::Input => (&block.input_head, &block.input_tail),
            RingSide::Output => (&block.output_head, &block.output_tail),
        }
    }

    pub(crate) fn geometry(&self, side: RingSide) -> Result<RingGeometry> {
        match side {
            RingSide::Input => self.block().input_geometry(),
            RingSide::Output => self.block().output_geometry(),
        }
    }
}

impl std::fmt::Debug for SharedControl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("SharedControl").field(self.block()).finish()
    }
}

/// Which ring of a control block: host → kernel (`Input`) or kernel → host (`Output`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RingSide {
    /// Host produces, kernel consumes; indices `input_head` / `input_tail`.
    Input,
    /// Kernel produces, host consumes; indices `output_head` / `output_tail`.
    Output,
}

/// Widens a wrapping 32-bit device counter to 64 bits. Read it at least once per 2^32 increments
/// (hours at the fastest device rates) and it never loses a count.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WideCounter {
    last_raw: u32,
    total: u64,
}

impl WideCounter {
    /// Folds in a new raw reading and returns the 64-bit total.
    pub fn update(&mut self, raw: u32) -> u64 {
        self.total += u64::from(raw.wrapping_sub(self.last_raw));
        self.last_raw = raw;
        self.total
    }

    /// The total as of the last update.
    pub fn total(&self) -> u64 {
        self.total
    }
}

/// Invalid ring geometry recorded in a control block.
pub(crate) fn geometry_mismatch(side: RingSide, recorded: RingGeometry, expected: RingGeometry) -> RingKernelError {
    RingKernelError::InvalidConfig {
        field: "ring geometry",
        reason: format!(
            "{side:?} ring: control block records {recorded:?} but the slots were laid out for {expected:?}"
        ),
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::region::HeapRegion;

    fn config() -> ControlConfig {
        ControlConfig {
            input: RingGeometry::new(8, 288).unwrap(),
            output: RingGeometry::new(16, 320).unwrap(),
            kernel_id: 3,
            node_id: 9,
        }
    }

    #[test]
    fn new_and_in_region_record_the_configuration() {
        let owned = SharedControl::new(config());
        let region: Arc<dyn Region> = Arc::new(HeapRegion::zeroed(256, 64).unwrap());
        // SAFETY: the region is fresh and used only for this control block.
        let placed = unsafe { SharedControl::init_in_region(region.clone(), 128, config()) }.unwrap();
        for control in [&owned, &placed] {
            let block = control.block();
            assert_eq!(block.input_geometry().unwrap(), config().input);
            assert_eq!(block.output_geometry().unwrap(), config().output);
            assert_eq!((block.kernel_id, block.node_id), (3, 9));
        }
        // The placed block really lives in the region, at the offset.
        let bytes = region.as_ptr();
        // SAFETY: reading a plain word written before any sharing.
        let capacity = unsafe { bytes.add(128 + 16).cast::<u32>().read() };
        assert_eq!(capacity, 8);
        // SAFETY: fresh region.
        let misaligned = unsafe { SharedControl::init_in_region(region, 32, config()) };
        assert!(misaligned.is_err());
    }

    #[test]
    fn lifecycle_flags() {
        let control = SharedControl::new(config());
        control.activate();
        assert_eq!(control.block().is_active.load(Ordering::Relaxed), 1);
        control.deactivate();
        assert_eq!(control.block().is_active.load(Ordering::Relaxed), 0);
        control.request_terminate();
        assert!(!control.has_terminated());
        control.block().has_terminated.store(1, Ordering::Release);
        assert!(control.has_terminated());
    }

    #[test]
    fn wide_counter_survives_wraparound() {
        let mut counter = WideCounter::default();
        assert_eq!(counter.update(10), 10);
        assert_eq!(counter.update(u32::MAX), u64::from(u32::MAX));
        assert_eq!(counter.update(4), u64::from(u32::MAX) + 5);
        assert_eq!(counter.total(), u64::from(u32::MAX) + 5);
    }

    #[test]
    fn device_hlc_reads_are_never_torn() {
        let control = SharedControl::new(config());
        let writer = control.clone();
        let rounds: u64 = if cfg!(miri) { 50 } else { 100_000 };
        let handle = std::thread::spawn(move || {
            for i in 1..=rounds {
                // Both halves and the logical part change together, so a torn read is visible.
                let value = i * 0x1_0000_0001;
                writer.block().store_device_hlc(HlcTimestamp::new(value, i as u32, 0));
            }
        });
        let mut last = 0;
        while !handle.is_finished() || last < rounds * 0x1_0000_0001 {
            let ts = control.block().device_hlc();
            assert_eq!(ts.physical_ns % 0x1_0000_0001, 0, "torn read {ts:?}");
            assert_eq!(ts.physical_ns / 0x1_0000_0001, u64::from(ts.logical), "torn read {ts:?}");
            assert!(ts.physical_ns >= last);
            assert_eq!(ts.node_id, 9);
            last = ts.physical_ns;
        }
        handle.join().unwrap();
    }
}
