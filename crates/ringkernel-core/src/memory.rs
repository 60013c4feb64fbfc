//! One kernel's shared memory, laid out once: the control block, the input ring, the output ring
//! and (optionally) the K2K inbox, carved out of one [`Region`] by [`KernelMemory::carve`], which
//! hands back typed ends. No backend repeats the offset arithmetic or the `unsafe` that attaching
//! protocols to raw memory needs.
//!
//! ```text
//! 0                          ControlBlock (128 B)
//! input_offset()             input ring: capacity × slot_bytes
//! output_offset()            output ring, at a multiple of 64
//! inbox_offset()             K2K inbox (header, sequence words, slots), at a multiple of 64
//! bytes()                    end
//! ```
//!
//! ```
//! use ringkernel_core::layout::RingGeometry;
//! use ringkernel_core::memory::{KernelLayout, KernelMemory};
//!
//! let ring = RingGeometry::for_messages(8, 32)?;
//! let layout = KernelLayout::new(ring, ring, Some(RingGeometry::new(4, ring.slot_bytes())?))?;
//! let (host, device) = KernelMemory::allocate(layout, 7, 7)?.split();
//! let (mut input, mut output) = (host.input, device.input);
//! input.push_bytes(b"hello")?;
//! assert_eq!(output.try_pop(|slot| slot.read_u32(0)), Ok(u32::from_le_bytes(*b"hell")));
//! # Ok::<(), ringkernel_core::error::RingKernelError>(())
//! ```

#[cfg(not(loom))]
use std::sync::Arc;

#[cfg(not(loom))]
use crate::control::{ControlConfig, RingSide, SharedControl};
use crate::error::{Result, RingKernelError};
use crate::layout::{ControlBlock, K2KInboxLayout, RingGeometry};
#[cfg(not(loom))]
use crate::queue::mpsc::{Inbox, InboxReceiver, InboxReclaim, InboxSender};
#[cfg(not(loom))]
use crate::queue::spsc::{Consumer, Producer, Ring};
use crate::region::REGION_ALIGN_BYTES;
#[cfg(not(loom))]
use crate::region::{HeapRegion, Region};

/// Where each part of a kernel's memory lies, validated, with overflow-checked sizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KernelLayout {
    input: RingGeometry,
    output: RingGeometry,
    inbox: Option<K2KInboxLayout>,
    output_offset: usize,
    inbox_offset: usize,
    bytes: usize,
}

impl KernelLayout {
    /// The layout of a kernel with these rings and, if `inbox` is given, a K2K inbox.
    ///
    /// # Errors
    /// [`RingKernelError::InvalidConfig`] for an inbox of fewer than 2 slots, or when the total
    /// does not fit the address space.
    pub fn new(input: RingGeometry, output: RingGeometry, inbox: Option<RingGeometry>) -> Result<Self> {
        let inbox = inbox.map(K2KInboxLayout::new).transpose()?;
        let too_large = || RingKernelError::InvalidConfig {
            field: "queue capacity",
            reason: format!(
                "the rings ({} + {} bytes) and inbox of one kernel exceed the address space",
                input.bytes(),
                output.bytes()
            ),
        };
        let align = |offset: usize| offset.checked_next_multiple_of(REGION_ALIGN_BYTES).ok_or_else(too_large);
        let input_end = Self::INPUT_OFFSET.checked_add(input.bytes()).ok_or_else(too_large)?;
        let output_offset = align(input_end)?;
        let output_end = output_offset.checked_add(output.bytes()).ok_or_else(too_large)?;
        let inbox_offset = align(output_end)?;
        let bytes = match inbox {
            Some(inbox) => inbox_offset.checked_add(inbox.stride()).ok_or_else(too_large)?,
            None => inbox_offset,
        };
        if bytes > isize::MAX as usize {
            return Err(too_large());
        }
        Ok(Self { input, output, inbox, output_offset, inbox_offset, bytes })
    }

    /// Offset of the control block.
    pub const CONTROL_OFFSET: usize = 0;
    /// Offset of the input ring's first slot (right after the control block).
    pub const INPUT_OFFSET: usize = size_of::<ControlBlock>();

    /// The input ring's geometry.
    pub fn input(&self) -> RingGeometry {
        self.input
    }

    /// The output ring's geometry.
    pub fn output(&self) -> RingGeometry {
        self.output
    }

    /// The inbox's layout, if the kernel has one.
    pub fn inbox(&self) -> Option<K2KInboxLayout> {
        self.inbox
    }

    /// Offset of the input ring's first slot.
    pub fn input_offset(&self) -> usize {
        Self::INPUT_OFFSET
    }

    /// Offset of the output ring's first slot.
    pub fn output_offset(&self) -> usize {
        self.output_offset
    }

    /// Offset of the inbox (equal to [`Self::bytes`] when there is none).
    pub fn inbox_offset(&self) -> usize {
        self.inbox_offset
    }

    /// Bytes the whole layout needs.
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

/// A kernel's memory, carved: the control block initialised, the rings and inbox attached.
/// (Not under loom, whose atomics cannot live in raw memory; the protocols it attaches are
/// model-checked on their own.)
#[cfg(not(loom))]
pub struct KernelMemory {
    layout: KernelLayout,
    region: Arc<dyn Region>,
    control: SharedControl,
    input: Ring,
    output: Ring,
    inbox: Option<Inbox>,
}

#[cfg(not(loom))]
impl KernelMemory {
    /// Allocates a zeroed heap region for `layout` and carves it.
    ///
    /// # Errors
    /// [`RingKernelError::AllocationFailed`] when the memory is not there (the process carries
    /// on); otherwise as [`KernelMemory::carve`].
    pub fn allocate(layout: KernelLayout, kernel_id: u32, node_id: u32) -> Result<Self> {
        let region = HeapRegion::zeroed(layout.bytes(), REGION_ALIGN_BYTES).map_err(|error| match error {
            RingKernelError::AllocationFailed { bytes, .. } => {
                RingKernelError::AllocationFailed { what: "a kernel's rings and inbox", bytes }
            }
            other => other,
        })?;
        // A fresh heap region is zero already (and lazily so: its pages cost nothing until used).
        Self::lay_out(region, layout, kernel_id, node_id, false)
    }

    /// Lays `layout` out in `region`, which it takes over: zeroes the region (so every slot's
    /// header padding is zero once and for all), writes the configured control block, initialises
    /// the inbox, and attaches the rings.
    ///
    /// # Errors
    /// [`RingKernelError::InvalidConfig`] when the region is smaller than `layout.bytes()`.
    pub fn carve(region: impl Region, layout: KernelLayout, kernel_id: u32, node_id: u32) -> Result<Self> {
        Self::lay_out(region, layout, kernel_id, node_id, true)
    }

    fn lay_out(region: impl Region, layout: KernelLayout, kernel_id: u32, node_id: u32, zero: bool) -> Result<Self> {
        if region.len() < layout.bytes() {
            return Err(RingKernelError::InvalidConfig {
                field: "region",
                reason: format!("{} bytes cannot hold a kernel layout of {} bytes", region.len(), layout.bytes()),
            });
        }
        if zero {
            // SAFETY: the region is valid for writes of `len()` bytes (Region's contract) and we
            // own it: nobody else holds it yet.
            unsafe { std::ptr::write_bytes(region.as_ptr(), 0, layout.bytes()) };
        }
        let region: Arc<dyn Region> = Arc::new(region);
        let config = ControlConfig { input: layout.input, output: layout.output, kernel_id, node_id };
        // SAFETY: the region is ours alone (taken by value above); the control block, the two rings
        // and the inbox occupy disjoint ranges (KernelLayout's offsets); each protocol is attached
        // exactly once.
        let (control, input, output, inbox) = unsafe {
            let control = SharedControl::init_in_region(region.clone(), KernelLayout::CONTROL_OFFSET, config)?;
            let input = Ring::attach(control.clone(), RingSide::Input, region.clone(), layout.input_offset())?;
            let output = Ring::attach(control.clone(), RingSide::Output, region.clone(), layout.output_offset())?;
            let inbox = match layout.inbox {
                Some(inbox) => Some(Inbox::init_in_region(region.clone(), layout.inbox_offset(), inbox.geometry())?),
                None => None,
            };
            (control, input, output, inbox)
        };
        Ok(Self { layout, region, control, input, output, inbox })
    }

    /// The region the kernel lives in, for a device agent that moves the kernel's memory as
    /// bytes (the wgpu pump copies published input slots to the GPU and replies back): its
    /// pointer covers all `layout().bytes()` bytes. Whoever uses it follows the protocols: it
    /// reads input slots only below the published tail, writes output slots only between the
    /// published tail and the consumer's head plus capacity, and touches the inbox only while no
    /// host side does (after the kernel stopped).
    pub fn region(&self) -> Arc<dyn Region> {
        self.region.clone()
    }

    /// The layout.
    pub fn layout(&self) -> KernelLayout {
        self.layout
    }

    /// The control block.
    pub fn control(&self) -> &SharedControl {
        &self.control
    }

    /// The host's ends and the device's ends. A GPU backend keeps only the host's: device code
    /// plays the other part in the same memory.
    pub fn split(self) -> (HostEnds, DeviceEnds) {
        let (input_producer, input_consumer) = self.input.split();
        let (output_producer, output_consumer) = self.output.split();
        let (inbox_reclaim, inbox) = match self.inbox {
            Some(inbox) => {
                let reclaim = inbox.reclaim_handle();
                (Some(reclaim), Some(inbox.split()))
            }
            None => (None, None),
        };
        (
            HostEnds { control: self.control.clone(), input: input_producer, output: output_consumer, inbox_reclaim },
            DeviceEnds { control: self.control, input: input_consumer, output: output_producer, inbox },
        )
    }
}

#[cfg(not(loom))]
impl std::fmt::Debug for KernelMemory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KernelMemory").field("layout", &self.layout).finish()
    }
}

/// What the host holds of a kernel's memory.
#[cfg(not(loom))]
#[derive(Debug)]
pub struct HostEnds {
    /// The control block.
    pub control: SharedControl,
    /// The input ring's producing end.
    pub input: Producer,
    /// The output ring's consuming end.
    pub output: Consumer,
    /// Takes back unreceived K2K messages once the kernel stopped, if it has an inbox.
    pub inbox_reclaim: Option<InboxReclaim>,
}

/// What the device side (an actor thread) holds of a kernel's memory.
#[cfg(not(loom))]
#[derive(Debug)]
pub struct DeviceEnds {
    /// The control block.
    pub control: SharedControl,
    /// The input ring's consuming end.
    pub input: Consumer,
    /// The output ring's producing end.
    pub output: Producer,
    /// The inbox: a sender to hand to other kernels and the receiver, if the kernel has one.
    pub inbox: Option<(InboxSender, InboxReceiver)>,
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::layout::MESSAGE_HEADER_BYTES;
    use crate::message::{HeaderBuilder, HeaderPart, SlotBuffer, encode_slot};

    #[test]
    fn layout_offsets_are_aligned_and_disjoint() {
        let input = RingGeometry::for_messages(4, 20).unwrap();
        let output = RingGeometry::for_messages(8, 100).unwrap();
        let inbox = RingGeometry::new(2, input.slot_bytes()).unwrap();
        let layout = KernelLayout::new(input, output, Some(inbox)).unwrap();
        assert_eq!(layout.input_offset(), 128);
        assert!(layout.output_offset() >= 128 + input.bytes() && layout.output_offset().is_multiple_of(64));
        assert!(
            layout.inbox_offset() >= layout.output_offset() + output.bytes()
                && layout.inbox_offset().is_multiple_of(64)
        );
        assert_eq!(layout.bytes(), layout.inbox_offset() + layout.inbox().unwrap().stride());
        let no_inbox = KernelLayout::new(input, output, None).unwrap();
        assert_eq!(no_inbox.bytes(), no_inbox.inbox_offset());
        assert!(KernelLayout::new(input, output, Some(RingGeometry::new(1, 16).unwrap())).is_err());
    }

    #[test]
    #[cfg(target_pointer_width = "64")]
    fn a_layout_too_large_for_the_address_space_is_refused() {
        // Each ring is just under 2^62 bytes: two fit the address space, three do not.
        let huge = RingGeometry::new(1 << 30, 0xFFFF_FFF0).unwrap();
        assert!(KernelLayout::new(huge, huge, None).is_ok());
        let err = KernelLayout::new(huge, huge, Some(huge)).unwrap_err().to_string();
        assert!(err.contains("exceed the address space"), "{err}");
    }

    #[test]
    fn carving_wires_both_ends_through_the_same_memory() {
        let ring = RingGeometry::for_messages(4, 16).unwrap();
        let layout = KernelLayout::new(ring, ring, Some(RingGeometry::new(2, ring.slot_bytes()).unwrap())).unwrap();
        let memory = KernelMemory::allocate(layout, 3, 9).unwrap();
        assert_eq!((memory.control().block().kernel_id, memory.control().block().node_id), (3, 9));
        let (mut host, mut device) = memory.split();
        let header = HeaderBuilder::new(5).build();
        host.input.try_push(|slot| encode_slot(slot, &header, b"in").unwrap()).unwrap();
        let mut buffer = SlotBuffer::new(ring.slot_bytes() as usize).unwrap();
        device.input.try_pop(|slot| slot.copy_message_into(&mut buffer, HeaderPart::Hot)).unwrap();
        assert_eq!(buffer.decode().unwrap().payload, b"in");
        device.output.try_push(|slot| encode_slot(slot, &header, b"out").unwrap()).unwrap();
        host.output.try_pop(|slot| slot.copy_message_into(&mut buffer, HeaderPart::Used)).unwrap();
        let decoded = buffer.decode().unwrap();
        assert_eq!((decoded.payload, decoded.header.message_id()), (&b"out"[..], header.message_id()));
        let (sender, mut receiver) = device.inbox.take().unwrap();
        sender.push_bytes(1, &[7; MESSAGE_HEADER_BYTES]).unwrap();
        assert_eq!(receiver.try_pop(|slot| slot.read_u32(0)), Ok(0x0707_0707));
        assert!(host.inbox_reclaim.is_some());
    }

    #[test]
    fn a_region_too_small_is_refused() {
        let ring = RingGeometry::for_messages(4, 16).unwrap();
        let layout = KernelLayout::new(ring, ring, None).unwrap();
        let region = HeapRegion::zeroed(layout.bytes() - 64, 64).unwrap();
        let err = KernelMemory::carve(region, layout, 1, 1).unwrap_err().to_string();
        assert!(err.contains("cannot hold"), "{err}");
    }

    #[test]
    #[cfg_attr(miri, ignore = "miri reports huge allocations as unsupported instead of failing them")]
    fn memory_the_machine_cannot_hold_is_a_typed_error() {
        let ring = RingGeometry::for_messages(1 << 30, 256).unwrap();
        let layout = KernelLayout::new(ring, ring, None).unwrap();
        let err = KernelMemory::allocate(layout, 1, 1).unwrap_err();
        assert!(matches!(err, RingKernelError::AllocationFailed { .. }), "{err}");
    }
}
