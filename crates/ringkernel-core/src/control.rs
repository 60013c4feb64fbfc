//! Access to a kernel's [`ControlBlock`]: creation, the control handshake (host flags, sequence
//! and the device's acknowledgement), termination, the device's counters widened to 64 bits, and
//! the device HLC state read through its seqlock.

use std::ptr::NonNull;
use std::sync::Arc;

use crate::error::{Result, RingKernelError};
use crate::hlc::HlcTimestamp;
use crate::layout::{ControlBlock, DeviceType, RingGeometry, terminate_request, termination};
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
    /// kernel's node id. Gives up after [`ControlBlock::HLC_READ_ATTEMPTS`] attempts: a device
    /// that died while writing (the word stays odd) or that writes without pause cannot hang the
    /// host.
    ///
    /// # Errors
    /// [`RingKernelError::KernelFault`] naming the sequence word when no consistent reading came.
    pub fn device_hlc(&self) -> Result<HlcTimestamp> {
        let mut before = 0;
        for _ in 0..Self::HLC_READ_ATTEMPTS {
            before = self.hlc_sequence.load(Ordering::Acquire);
            if before % 2 == 1 {
                crate::sync::spin_hint();
                continue;
            }
            let lo = self.hlc_physical_lo.load(Ordering::Relaxed);
            let hi = self.hlc_physical_hi.load(Ordering::Relaxed);
            let logical = self.hlc_logical.load(Ordering::Relaxed);
            fence(Ordering::Acquire);
            if self.hlc_sequence.load(Ordering::Relaxed) == before {
                return Ok(HlcTimestamp::new(u64::from(lo) | u64::from(hi) << 32, logical, self.node_id));
            }
            crate::sync::spin_hint();
        }
        Err(RingKernelError::KernelFault {
            kernel: format!("#{}", self.kernel_id),
            reason: format!(
                "no consistent read of the device clock in {} attempts (hlc_sequence last read {before})",
                Self::HLC_READ_ATTEMPTS
            ),
        })
    }

    /// How many times [`ControlBlock::device_hlc`] tries before it gives up.
    pub const HLC_READ_ATTEMPTS: u32 = 10_000;

    /// Device side: the host's control flags, if `control_sequence` moved past `last_seen`.
    /// The device acts on them, then calls [`ControlBlock::acknowledge`] with the returned
    /// sequence.
    #[inline]
    pub fn poll_control(&self, last_seen: u32) -> Option<ControlFlags> {
        let sequence = self.control_sequence.load(Ordering::Acquire);
        if sequence == last_seen {
            return None;
        }
        Some(ControlFlags {
            sequence,
            active: self.is_active.load(Ordering::Relaxed) != 0,
            terminate: self.should_terminate.load(Ordering::Relaxed),
        })
    }

    /// Device side: reports that it acts on the flags of `sequence` and handles nothing more
    /// under earlier ones.
    #[inline]
    pub fn acknowledge(&self, sequence: u32) {
        self.control_ack.store(sequence, Ordering::Release);
    }

    /// Device side: reports that the kernel stopped (`RK_TERMINATED` or `RK_FAILED`). Stored last:
    /// a host that reads it sees every counter, ring index and output written before.
    pub fn report_stopped(&self, code: u32) {
        self.has_terminated.store(code, Ordering::Release);
    }

    /// Device side, typed: [`ControlBlock::report_stopped`] with `stop`'s word.
    pub fn report_stop(&self, stop: DeviceStop) {
        self.report_stopped(stop.word());
    }

    /// Fails the kernel on the device's behalf, for a runtime whose device can no longer report
    /// for itself (a lost GPU context, a dead pump or actor thread, a stop the host imposed):
    /// records `code` in `last_error` (what the device stored there before named an earlier,
    /// non-fatal problem, not this one), then stores `RK_FAILED` as the last word. A kernel that
    /// already reported a stop keeps it and its code. Returns whether it failed the kernel now.
    ///
    /// The caller is the only writer of `has_terminated` besides the device, and keeps the host
    /// engine's `Device` contract for it: whatever the device consumed is published in the ring
    /// heads before this.
    pub fn fail_for_device(&self, code: u32) -> bool {
        if self.has_terminated.load(Ordering::Acquire) != termination::RUNNING {
            return false;
        }
        self.last_error.store(code, Ordering::Relaxed);
        self.report_stop(DeviceStop::Failed);
        true
    }

    /// Relays a stop the device reported somewhere else (a CUDA pool block's own word) as its
    /// last word, for a runtime that tidies up after the device first: a failure keeps the
    /// device's own `last_error`, or gets `code` if the device recorded none; any word but
    /// `RK_TERMINATED` counts as a failure.
    pub fn relay_stop(&self, stop: DeviceStop, code: u32) {
        if stop == DeviceStop::Terminated {
            self.report_stop(stop);
            return;
        }
        if self.last_error.load(Ordering::Relaxed) == crate::error::codes::NONE {
            self.last_error.store(code, Ordering::Relaxed);
        }
        self.report_stop(DeviceStop::Failed);
    }
}

/// The device's side of the lifecycle: what it reported in the control block's `has_terminated`
/// word ([`termination`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeviceStop {
    /// `RK_RUNNING`: the kernel runs (or has not started).
    Running,
    /// `RK_TERMINATED`: it drained everything it had accepted and stopped.
    Terminated,
    /// `RK_FAILED`: it stopped on a fault; what it accepted but never handled is still in its
    /// input ring and inbox, for the host to take back.
    Failed,
    /// Any other word: a device that breaks the protocol (nothing is taken back from it).
    Undefined(u32),
}

impl DeviceStop {
    /// The stop a control-block word stands for.
    pub fn from_word(word: u32) -> Self {
        match word {
            termination::RUNNING => Self::Running,
            termination::TERMINATED => Self::Terminated,
            termination::FAILED => Self::Failed,
            other => Self::Undefined(other),
        }
    }

    /// The control-block word of this stop.
    pub fn word(self) -> u32 {
        match self {
            Self::Running => termination::RUNNING,
            Self::Terminated => termination::TERMINATED,
            Self::Failed => termination::FAILED,
            Self::Undefined(word) => word,
        }
    }

    /// Whether the device reported a stop the protocol defines (terminated or failed): only such a
    /// device keeps the promise that it never touches the kernel's memory again.
    pub fn is_defined_stop(self) -> bool {
        matches!(self, Self::Terminated | Self::Failed)
    }
}

/// The host's control flags as the device read them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ControlFlags {
    /// The `control_sequence` they belong to (what the device acknowledges).
    pub sequence: u32,
    /// `is_active`.
    pub active: bool,
    /// `should_terminate`: `RK_TERMINATE_NONE`, `_DRAIN` or `_DRAIN_DETACHED`.
    pub terminate: u32,
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
    #[inline]
    pub fn block(&self) -> &ControlBlock {
        // SAFETY: `ptr` points at a live, initialised ControlBlock kept alive by `_owner`; after
        // initialisation only its atomics are written.
        unsafe { self.ptr.as_ref() }
    }

    /// Host side, before the kernel starts: says that every input slot will carry its slot check
    /// ([`slot_check`](mod@crate::message::slot_check)).
    pub fn announce_input_slot_checks(&self) {
        self.block().input_slot_checks.store(1, Ordering::Release);
    }

    /// Host side, before the kernel starts: says that the host checks every output slot's
    /// whole-slot check ([`crate::message::whole_slot_check`]) before reading it.
    pub fn announce_output_slot_checks(&self) {
        self.block().output_slot_checks.store(1, Ordering::Release);
    }

    /// Host side: asks the kernel to process messages; returns the control sequence to wait for
    /// (see [`SharedControl::acknowledged`]). Host threads may call these at once: every change
    /// counts in the sequence, and the device acts on the flags as they stand at the last one.
    pub fn activate(&self) -> u32 {
        self.block().is_active.store(1, Ordering::Relaxed);
        self.announce()
    }

    /// Host side: asks the kernel to stop processing (queue and state stay); returns the control
    /// sequence whose acknowledgement means it has stopped.
    pub fn deactivate(&self) -> u32 {
        self.block().is_active.store(0, Ordering::Relaxed);
        self.announce()
    }

    /// Host side: asks the kernel to drain and stop; `detached` says that nobody will read the
    /// output ring any more. Returns the control sequence.
    pub fn request_terminate(&self, detached: bool) -> u32 {
        let request = if detached { terminate_request::DRAIN_DETACHED } else { terminate_request::DRAIN };
        self.block().should_terminate.store(request, Ordering::Relaxed);
        self.announce()
    }

    /// Publishes a flag change: increments `control_sequence` with release ordering. A
    /// read-modify-write, so that two host threads announcing at once (a transition, and a fault
    /// found elsewhere) both count. Rare: only on state changes.
    fn announce(&self) -> u32 {
        self.block().control_sequence.fetch_add(1, Ordering::AcqRel).wrapping_add(1)
    }

    /// Whether the device has acknowledged control sequence `sequence` (or a later one).
    #[inline]
    pub fn acknowledged(&self, sequence: u32) -> bool {
        let ack = self.block().control_ack.load(Ordering::Acquire);
        // Sequences are free-running: "at or after" in wrapping order.
        sequence.wrapping_sub(ack) as i32 <= 0
    }

    /// What the device reported about stopping: running, terminated, failed, or an undefined word
    /// a faulty device wrote.
    #[inline]
    pub fn stop(&self) -> DeviceStop {
        DeviceStop::from_word(self.block().has_terminated.load(Ordering::Acquire))
    }

    /// Whether the kernel reported that it stopped (terminated or failed).
    #[inline]
    pub fn has_terminated(&self) -> bool {
        self.stop() != DeviceStop::Running
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
    fn control_handshake() {
        let control = SharedControl::new(config());
        let block = control.block();
        assert_eq!(block.poll_control(0), None, "nothing announced yet");
        let on = control.activate();
        assert!(!control.acknowledged(on));
        let flags = block.poll_control(0).unwrap();
        assert_eq!(flags, ControlFlags { sequence: on, active: true, terminate: terminate_request::NONE });
        block.acknowledge(flags.sequence);
        assert!(control.acknowledged(on));
        let off = control.deactivate();
        assert!(!control.acknowledged(off) && control.acknowledged(on));
        let flags = block.poll_control(on).unwrap();
        assert!(!flags.active);
        block.acknowledge(flags.sequence);
        assert!(control.acknowledged(off));
        let stop = control.request_terminate(true);
        assert_eq!(block.poll_control(off).unwrap().terminate, terminate_request::DRAIN_DETACHED);
        assert!(!control.acknowledged(stop));
        assert!(!control.has_terminated());
        block.report_stopped(termination::FAILED);
        assert!(control.has_terminated());
        assert_eq!(control.stop(), DeviceStop::Failed);
        // Acknowledgements compare in wrapping order.
        block.control_ack.store(u32::MAX, Ordering::Relaxed);
        assert!(control.acknowledged(u32::MAX - 3) && !control.acknowledged(1));
    }

    #[test]
    fn every_device_stop_round_trips_through_its_word() {
        for word in [termination::RUNNING, termination::TERMINATED, termination::FAILED, 3, 7, u32::MAX] {
            let stop = DeviceStop::from_word(word);
            assert_eq!(stop.word(), word);
            assert_eq!(DeviceStop::from_word(stop.word()), stop);
        }
        for stop in [DeviceStop::Running, DeviceStop::Terminated, DeviceStop::Failed, DeviceStop::Undefined(9)] {
            assert_eq!(DeviceStop::from_word(stop.word()), stop);
        }
        assert_eq!(DeviceStop::from_word(2), DeviceStop::Failed);
        assert!(DeviceStop::Terminated.is_defined_stop() && DeviceStop::Failed.is_defined_stop());
        assert!(!DeviceStop::Running.is_defined_stop() && !DeviceStop::Undefined(5).is_defined_stop());
    }

    #[test]
    fn failing_for_the_device_keeps_its_own_error_and_its_own_stop() {
        let control = SharedControl::new(config());
        assert!(control.block().fail_for_device(crate::error::codes::HANDLER_FAULT));
        assert_eq!(control.stop(), DeviceStop::Failed);
        assert_eq!(control.block().last_error.load(Ordering::Relaxed), crate::error::codes::HANDLER_FAULT);
        assert!(!control.block().fail_for_device(7), "a stopped kernel keeps its stop");
        assert_eq!(control.block().last_error.load(Ordering::Relaxed), crate::error::codes::HANDLER_FAULT);

        // An earlier, non-fatal code is not why the kernel failed now.
        let recorded = SharedControl::new(config());
        recorded.block().last_error.store(crate::error::codes::OUTPUT_FULL, Ordering::Relaxed);
        assert!(recorded.block().fail_for_device(crate::error::codes::HANDLER_FAULT));
        assert_eq!(recorded.block().last_error.load(Ordering::Relaxed), crate::error::codes::HANDLER_FAULT);

        // Relayed stops: a failure keeps the device's own code, or gets the generic one; an
        // undefined word is a failure; a clean stop stays clean.
        let relayed = SharedControl::new(config());
        relayed.block().last_error.store(crate::error::codes::OUTPUT_FULL, Ordering::Relaxed);
        relayed.block().relay_stop(DeviceStop::Failed, crate::error::codes::HANDLER_FAULT);
        assert_eq!(relayed.stop(), DeviceStop::Failed);
        assert_eq!(relayed.block().last_error.load(Ordering::Relaxed), crate::error::codes::OUTPUT_FULL);
        let undefined = SharedControl::new(config());
        undefined.block().relay_stop(DeviceStop::Undefined(9), crate::error::codes::HANDLER_FAULT);
        assert_eq!(undefined.stop(), DeviceStop::Failed);
        assert_eq!(undefined.block().last_error.load(Ordering::Relaxed), crate::error::codes::HANDLER_FAULT);
        let clean = SharedControl::new(config());
        clean.block().relay_stop(DeviceStop::Terminated, crate::error::codes::HANDLER_FAULT);
        assert_eq!(clean.stop(), DeviceStop::Terminated);
        assert_eq!(clean.block().last_error.load(Ordering::Relaxed), crate::error::codes::NONE);

        let terminated = SharedControl::new(config());
        terminated.block().report_stop(DeviceStop::Terminated);
        assert!(!terminated.block().fail_for_device(crate::error::codes::HANDLER_FAULT));
        assert_eq!(terminated.stop(), DeviceStop::Terminated);
    }

    #[test]
    fn a_device_clock_that_never_settles_is_an_error_not_a_hang() {
        let control = SharedControl::new(config());
        control.block().hlc_sequence.store(7, Ordering::Relaxed);
        let err = control.block().device_hlc().unwrap_err().to_string();
        assert!(err.contains("hlc_sequence last read 7"), "{err}");
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
            // A writer that never pauses may exhaust the bounded attempts: that is an error, not a
            // torn value, and the next read tries again.
            let Ok(ts) = control.block().device_hlc() else { continue };
            assert_eq!(ts.physical_ns % 0x1_0000_0001, 0, "torn read {ts:?}");
            assert_eq!(ts.physical_ns / 0x1_0000_0001, u64::from(ts.logical), "torn read {ts:?}");
            assert!(ts.physical_ns >= last);
            assert_eq!(ts.node_id, 9);
            last = ts.physical_ns;
        }
        handle.join().unwrap();
    }
}
