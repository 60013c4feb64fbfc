//! Bounded multi-producer single-consumer inbox with a sequence word per slot (after Dmitry
//! Vyukov's bounded queue), the protocol of kernel-to-kernel (K2K) messages.
//!
//! Memory is laid out as [`K2KInboxLayout`] says: a [`K2KInboxHeader`], one `u32` sequence word
//! per slot, then the slots. Slot `i`'s sequence starts at `i`. With `pos` a free-running counter:
//!
//! * a producer reads `pos = tail` and the sequence `s` of slot `pos & mask`. If `s == pos` the slot
//!   is free for this lap: it claims it by advancing `tail` from `pos` to `pos + 1` (compare and
//!   swap), writes the slot, and publishes it by storing `pos + 1` into the sequence (release). If
//!   `s` is one lap behind (`pos - capacity` or `pos - capacity + 1`) the slot still holds last
//!   lap's message: the inbox is **full** and the push fails — it never overwrites. If `s` is
//!   ahead, another producer got there first: it rereads `tail` and retries;
//! * the consumer, at `head`, waits for the sequence to read `head + 1` (acquire), reads the slot,
//!   then frees it for the next lap by storing `head + capacity`.
//!
//! Messages are delivered in the order their slots were claimed; a producer that has claimed but
//! not yet published holds back later messages until it publishes.
//!
//! **Who may produce.** Producers claim slots with compare-and-swap on `tail`. That is safe when
//! every producer is on the host, or every producer is on the device; host and device producers
//! into the same inbox are safe only where the device's atomics are coherent with the host's (CUDA
//! reports it as `hostNativeAtomicSupported`; PCIe atomics otherwise). The CPU backend's inboxes
//! have host-only producers (its actor threads); GPU backends keep K2K inside the device.
//!
//! **Untrusted words.** Values that no producer or consumer following the protocol can write (a
//! sequence word neither free, claimed nor published for the current lap, a `tail` more than a
//! lap ahead of `head`) are an [`IndexViolation`]: the end stops instead of spinning or overwriting.
//!
//! ```
//! use ringkernel_core::layout::RingGeometry;
//! use ringkernel_core::queue::mpsc;
//!
//! let (sender, mut receiver) = mpsc::channel(RingGeometry::new(2, 16)?)?;
//! let other = sender.clone();
//! sender.push_bytes(1, b"a")?;
//! other.push_bytes(2, b"b")?;
//! assert!(sender.push_bytes(1, b"c").is_err()); // full: refused, not overwritten
//! assert_eq!(receiver.try_pop(|slot| slot.read_u32(0) as u8), Ok(b'a'));
//! assert_eq!(receiver.try_pop(|slot| slot.read_u32(0) as u8), Ok(b'b'));
//! # Ok::<(), ringkernel_core::error::RingKernelError>(())
//! ```

use std::ptr::NonNull;
use std::sync::Arc;

use super::{IndexViolation, PopError, PushError, QueueFull, SharedSlot, in_window};
use crate::error::{MessageError, Result};
use crate::layout::{K2KInboxHeader, K2KInboxLayout, RingGeometry};
use crate::region::{HeapRegion, Owner, Region};
use crate::sync::{AccessTracker, AtomicU32, Ordering};

struct InboxState {
    header: NonNull<K2KInboxHeader>,
    sequences: NonNull<AtomicU32>,
    slots: NonNull<u8>,
    layout: K2KInboxLayout,
    _owners: Vec<Owner>,
    trackers: Box<[AccessTracker]>,
}

// SAFETY: header and sequence words are atomics (plus words fixed before sharing); slot bytes are
// handed over through the sequence words with release/acquire, so a slot has one accessor at a time.
unsafe impl Send for InboxState {}
// SAFETY: as above.
unsafe impl Sync for InboxState {}

impl InboxState {
    fn header(&self) -> &K2KInboxHeader {
        // SAFETY: initialised before sharing and kept alive by `_owners`.
        unsafe { self.header.as_ref() }
    }

    fn geometry(&self) -> RingGeometry {
        self.layout.geometry()
    }

    fn capacity(&self) -> u32 {
        self.geometry().capacity()
    }

    fn mask(&self) -> u32 {
        self.capacity() - 1
    }

    fn sequence(&self, pos: u32) -> &AtomicU32 {
        let index = (pos & self.mask()) as usize;
        // SAFETY: `index < capacity` and there are `capacity` initialised sequence words.
        unsafe { &*self.sequences.as_ptr().add(index) }
    }

    fn slot_ptr(&self, pos: u32) -> *mut u8 {
        let index = (pos & self.mask()) as usize;
        // SAFETY: `index < capacity`; the slot array holds `capacity * slot_bytes` bytes.
        unsafe { self.slots.as_ptr().add(index * self.geometry().slot_bytes() as usize) }
    }

    fn shared_slot(&self, pos: u32) -> SharedSlot<'_> {
        // SAFETY: the slot lies inside the inbox's memory, valid for reads while it lives.
        unsafe { SharedSlot::new(self.slot_ptr(pos), self.geometry().slot_bytes() as usize) }
    }

    fn tracker(&self, pos: u32) -> &AccessTracker {
        #[cfg(loom)]
        return &self.trackers[(pos & self.mask()) as usize];
        #[cfg(not(loom))]
        {
            let _ = pos;
            &self.trackers[0]
        }
    }

    fn new_trackers(geometry: RingGeometry) -> Box<[AccessTracker]> {
        let count = if cfg!(loom) { geometry.capacity() as usize } else { 1 };
        (0..count).map(|_| AccessTracker::new()).collect()
    }

    fn violation(&self, index: &'static str, found: u32, low: u32, high: u32) -> IndexViolation {
        IndexViolation { index, found, low, high, capacity: self.capacity() }
    }
}

/// An initialised inbox, not yet split into its ends.
pub struct Inbox {
    shared: Arc<InboxState>,
}

impl Inbox {
    /// Initialises an inbox at `offset` in `region` (header, sequence words) and returns it. The
    /// inbox occupies [`K2KInboxLayout::stride`] bytes. Most code gets its inbox from
    /// [`crate::memory::KernelMemory`] instead, which lays everything out.
    ///
    /// # Errors
    /// [`crate::error::RingKernelError::InvalidConfig`] if it does not fit or `offset` is not a
    /// multiple of 64.
    ///
    /// # Safety
    /// While the inbox and its ends live, those bytes are accessed only through this protocol,
    /// no other `Inbox` is initialised over them, and no device code touches them during this call.
    #[cfg(not(loom))]
    pub unsafe fn init_in_region(region: Arc<dyn Region>, offset: usize, geometry: RingGeometry) -> Result<Self> {
        let layout = K2KInboxLayout::new(geometry)?;
        let start = crate::region::subrange(&*region, offset, layout.stride(), 64, "inbox offset")?;
        let header = start.cast::<K2KInboxHeader>();
        // SAFETY: every offset below is inside the `stride` bytes checked above and 4-aligned;
        // nobody else accesses the memory during this call (caller's promise), and all-zero is a
        // valid header and sequence word.
        let (sequences, slots) = unsafe {
            let mut zero: K2KInboxHeader = bytemuck::Zeroable::zeroed();
            zero.capacity = geometry.capacity();
            zero.slot_bytes = geometry.slot_bytes();
            header.as_ptr().write(zero);
            let sequences = start.add(layout.sequences_offset()).cast::<AtomicU32>();
            for i in 0..geometry.capacity() {
                sequences.as_ptr().add(i as usize).write(AtomicU32::new(i));
            }
            (sequences, start.add(layout.slots_offset()))
        };
        Ok(Self {
            shared: Arc::new(InboxState {
                header,
                sequences,
                slots,
                layout,
                _owners: vec![region],
                trackers: InboxState::new_trackers(geometry),
            }),
        })
    }

    /// Loom's atomics must be constructed, so under loom header and sequence words are owned Rust
    /// values and only the slots live in a region. The protocol code is the same.
    #[cfg(loom)]
    fn new_owned(geometry: RingGeometry) -> Result<Self> {
        use crate::layout::DeviceType;
        let layout = K2KInboxLayout::new(geometry)?;
        let mut header = Box::new(K2KInboxHeader::zeroed());
        header.capacity = geometry.capacity();
        header.slot_bytes = geometry.slot_bytes();
        let header: Arc<K2KInboxHeader> = Arc::from(header);
        let sequences: Arc<[AtomicU32]> = (0..geometry.capacity()).map(AtomicU32::new).collect();
        let slots = Arc::new(HeapRegion::zeroed(geometry.bytes(), 64)?);
        Ok(Self {
            shared: Arc::new(InboxState {
                header: NonNull::from(&*header),
                sequences: NonNull::from(&sequences[0]),
                slots: NonNull::new(slots.as_ptr()).expect("regions are non-null"),
                layout,
                _owners: vec![header, Arc::new(sequences), slots],
                trackers: InboxState::new_trackers(geometry),
            }),
        })
    }

    /// Both ends.
    pub fn split(self) -> (InboxSender, InboxReceiver) {
        let receiver = InboxReceiver::new(self.shared.clone());
        (InboxSender { shared: self.shared }, receiver)
    }

    /// The sending end only (the receiver is device code).
    pub fn into_sender(self) -> InboxSender {
        InboxSender { shared: self.shared }
    }

    /// The receiving end only (the senders are device code).
    pub fn into_receiver(self) -> InboxReceiver {
        InboxReceiver::new(self.shared)
    }

    /// A handle that takes back unreceived messages once the inbox is out of use (see
    /// [`InboxReclaim::take_unreceived`]).
    pub fn reclaim_handle(&self) -> InboxReclaim {
        InboxReclaim { shared: self.shared.clone() }
    }
}

/// A fresh inbox in heap memory, split into its ends.
///
/// # Errors
/// [`crate::error::RingKernelError::InvalidConfig`] if the geometry has fewer than 2 slots;
/// [`crate::error::RingKernelError::AllocationFailed`] if it does not fit in memory.
pub fn channel(geometry: RingGeometry) -> Result<(InboxSender, InboxReceiver)> {
    #[cfg(not(loom))]
    let inbox = {
        let layout = K2KInboxLayout::new(geometry)?;
        let region: Arc<dyn Region> = Arc::new(HeapRegion::zeroed(layout.stride(), 64)?);
        // SAFETY: fresh memory used by nothing else.
        unsafe { Inbox::init_in_region(region, 0, geometry) }?
    };
    #[cfg(loom)]
    let inbox = Inbox::new_owned(geometry)?;
    Ok(inbox.split())
}

/// A sending end. `Clone` it for every producer.
#[derive(Clone)]
pub struct InboxSender {
    shared: Arc<InboxState>,
}

impl InboxSender {
    /// Capacity in slots.
    pub fn capacity(&self) -> u32 {
        self.shared.capacity()
    }

    /// Bytes per slot.
    pub fn slot_bytes(&self) -> usize {
        self.shared.geometry().slot_bytes() as usize
    }

    /// Claims a slot, fills it with `write`, and publishes it; `source` is recorded as the last
    /// sender.
    ///
    /// # Errors
    /// [`PushError::Full`] if every slot holds an unconsumed message (the header's
    /// `full_rejections` counter is then incremented); [`PushError::Corrupt`] if a sequence word
    /// holds a value the protocol cannot produce. `write` is not called in either case.
    pub fn try_push<R>(&self, source: u32, write: impl FnOnce(&mut [u8]) -> R) -> std::result::Result<R, PushError> {
        let shared = &*self.shared;
        let header = shared.header();
        let capacity = shared.capacity();
        let mut pos = header.tail.load(Ordering::Relaxed);
        loop {
            let sequence = shared.sequence(pos).load(Ordering::Acquire);
            // Capacity <= 2^30, so the lap difference always fits an i32.
            let lap = sequence.wrapping_sub(pos) as i32;
            if lap == 0 {
                match header.tail.compare_exchange_weak(pos, pos.wrapping_add(1), Ordering::Relaxed, Ordering::Relaxed)
                {
                    Ok(_) => break,
                    Err(current) => pos = current,
                }
            } else if lap < 0 {
                // Last lap's message, published (pos - capacity + 1) or still being written
                // (pos - capacity): full. Anything further behind no protocol step writes.
                let previous_lap = pos.wrapping_sub(capacity);
                if !in_window(sequence, previous_lap, previous_lap.wrapping_add(1)) {
                    return Err(PushError::Corrupt(shared.violation(
                        "sequence",
                        sequence,
                        previous_lap,
                        pos.wrapping_add(capacity),
                    )));
                }
                header.full_rejections.fetch_add(1, Ordering::Relaxed);
                return Err(PushError::Full(QueueFull { capacity }));
            } else {
                // Another producer claimed `pos` (and the tail moved past it): look again.
                let tail = header.tail.load(Ordering::Relaxed);
                if tail == pos {
                    return Err(PushError::Corrupt(shared.violation(
                        "sequence",
                        sequence,
                        pos.wrapping_sub(capacity),
                        pos,
                    )));
                }
                pos = tail;
            }
            crate::sync::spin_hint();
        }
        let ptr = shared.slot_ptr(pos);
        let result = shared.tracker(pos).write(|| {
            // SAFETY: we claimed this slot for this lap (CAS on tail) and the consumer freed it
            // (sequence == pos, seen with acquire); nobody else touches it until we publish.
            let slot = unsafe { std::slice::from_raw_parts_mut(ptr, shared.geometry().slot_bytes() as usize) };
            write(slot)
        });
        header.last_source.store(source, Ordering::Relaxed);
        shared.sequence(pos).store(pos.wrapping_add(1), Ordering::Release);
        Ok(result)
    }

    /// Copies `bytes` into the start of a slot, zeroes the rest, and publishes it.
    ///
    /// # Errors
    /// [`crate::error::RingKernelError::QueueFull`] if full;
    /// [`crate::error::RingKernelError::InvalidMessage`] if `bytes` is longer than a slot;
    /// [`crate::error::RingKernelError::KernelFault`] if the inbox is corrupt.
    pub fn push_bytes(&self, source: u32, bytes: &[u8]) -> Result<()> {
        if bytes.len() > self.slot_bytes() {
            return Err(MessageError::PayloadTooLarge {
                payload_bytes: u32::try_from(bytes.len()).unwrap_or(u32::MAX),
                capacity_bytes: self.slot_bytes(),
            }
            .into());
        }
        self.try_push(source, |slot| {
            slot[..bytes.len()].copy_from_slice(bytes);
            slot[bytes.len()..].fill(0);
        })
        .map_err(|error| error.into_error("inbox", "k2k inbox"))
    }
}

/// The receiving end. Not `Clone`.
pub struct InboxReceiver {
    shared: Arc<InboxState>,
    head: u32,
    poisoned: Option<IndexViolation>,
}

impl InboxReceiver {
    fn new(shared: Arc<InboxState>) -> Self {
        let head = shared.header().head.load(Ordering::Relaxed);
        Self { shared, head, poisoned: None }
    }

    /// Capacity in slots.
    pub fn capacity(&self) -> u32 {
        self.shared.capacity()
    }

    /// Reads the oldest published message with `read` and frees its slot.
    ///
    /// # Errors
    /// [`PopError::Empty`] if the inbox is empty or the oldest claimed slot is still being
    /// written; [`PopError::Corrupt`] if its sequence word holds a value the protocol cannot
    /// produce (the receiver then stays stopped).
    pub fn try_pop<R>(&mut self, read: impl FnOnce(SharedSlot<'_>) -> R) -> std::result::Result<R, PopError> {
        if let Some(violation) = self.poisoned {
            return Err(PopError::Corrupt(violation));
        }
        let shared = &*self.shared;
        let pos = self.head;
        let sequence = shared.sequence(pos).load(Ordering::Acquire);
        if sequence != pos.wrapping_add(1) {
            if sequence == pos {
                return Err(PopError::Empty);
            }
            let violation = shared.violation("sequence", sequence, pos, pos.wrapping_add(1));
            self.poisoned = Some(violation);
            return Err(PopError::Corrupt(violation));
        }
        // Published for this lap (sequence == pos + 1, seen with acquire); producers will not
        // claim it again until we store pos + capacity.
        let result = shared.tracker(pos).read(|| read(shared.shared_slot(pos)));
        shared.sequence(pos).store(pos.wrapping_add(self.capacity()), Ordering::Release);
        self.head = pos.wrapping_add(1);
        shared.header().head.store(self.head, Ordering::Release);
        Ok(result)
    }

    /// Messages claimed but not yet received (including any still being written).
    ///
    /// # Errors
    /// An [`IndexViolation`] if the shared `tail` is more than a lap ahead of `head`.
    pub fn len(&self) -> std::result::Result<u32, IndexViolation> {
        let tail = self.shared.header().tail.load(Ordering::Acquire);
        let len = tail.wrapping_sub(self.head);
        if len > self.capacity() {
            return Err(self.shared.violation("tail", tail, self.head, self.head.wrapping_add(self.capacity())));
        }
        Ok(len)
    }

    /// Whether nothing is claimed (a corrupt inbox reads as empty).
    pub fn is_empty(&self) -> bool {
        self.len().map_or(true, |len| len == 0)
    }

    /// Pushes refused so far because the inbox was full (wrapping counter).
    pub fn full_rejections(&self) -> u32 {
        self.shared.header().full_rejections.load(Ordering::Relaxed)
    }

    /// Id of the most recent sender.
    pub fn last_source(&self) -> u32 {
        self.shared.header().last_source.load(Ordering::Relaxed)
    }
}

/// Takes back the messages an inbox's owner never received, once nobody uses the inbox any more
/// (the owner stopped and no producer can reach it). See [`InboxReclaim::take_unreceived`].
pub struct InboxReclaim {
    shared: Arc<InboxState>,
}

impl InboxReclaim {
    /// Visits every published, unreceived message from the shared `head` on, oldest first, and
    /// frees its slot. Stops at the first slot that is not published (a producer that claimed a
    /// slot and never published it leaves the rest where they are). Returns how many it visited.
    ///
    /// # Safety
    /// No receiver and no producer uses the inbox during this call or afterwards: the owner
    /// stopped (and dropped its receiver), and no producer can still reach the inbox. Otherwise
    /// this reads slots that a producer may be writing.
    pub unsafe fn take_unreceived(&mut self, mut visit: impl FnMut(SharedSlot<'_>)) -> u32 {
        let shared = &*self.shared;
        let header = shared.header();
        let mut pos = header.head.load(Ordering::Acquire);
        let mut count = 0;
        while count < shared.capacity() && shared.sequence(pos).load(Ordering::Acquire) == pos.wrapping_add(1) {
            shared.tracker(pos).read(|| visit(shared.shared_slot(pos)));
            shared.sequence(pos).store(pos.wrapping_add(shared.capacity()), Ordering::Release);
            pos = pos.wrapping_add(1);
            count += 1;
        }
        header.head.store(pos, Ordering::Release);
        count
    }
}

impl std::fmt::Debug for InboxSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InboxSender").field("layout", &self.shared.layout).finish()
    }
}

impl std::fmt::Debug for InboxReceiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InboxReceiver").field("layout", &self.shared.layout).field("head", &self.head).finish()
    }
}

impl std::fmt::Debug for InboxReclaim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InboxReclaim").field("layout", &self.shared.layout).finish()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    fn read_u32(slot: SharedSlot<'_>) -> u32 {
        slot.read_u32(0)
    }

    #[test]
    fn full_is_refused_and_counted_never_overwritten() {
        let (tx, mut rx) = channel(RingGeometry::new(4, 16).unwrap()).unwrap();
        for i in 0..4u32 {
            tx.try_push(7, |s| s[..4].copy_from_slice(&i.to_le_bytes())).unwrap();
        }
        assert_eq!(tx.try_push(7, |_| unreachable!()), Err(PushError::Full(QueueFull { capacity: 4 })));
        assert!(tx.push_bytes(7, b"x").is_err());
        assert_eq!(rx.full_rejections(), 2);
        assert_eq!(rx.len(), Ok(4));
        assert_eq!(rx.last_source(), 7);
        for i in 0..4u32 {
            assert_eq!(rx.try_pop(read_u32), Ok(i));
        }
        assert_eq!(rx.try_pop(read_u32), Err(PopError::Empty));
        assert!(rx.is_empty());
        // Space again after the consumer freed slots, across many laps.
        for lap in 0..100u32 {
            tx.try_push(1, |s| s[..4].copy_from_slice(&lap.to_le_bytes())).unwrap();
            assert_eq!(rx.try_pop(read_u32), Ok(lap));
        }
    }

    #[test]
    fn inbox_in_a_shared_region_uses_the_documented_layout() {
        let geometry = RingGeometry::new(4, 32).unwrap();
        let layout = K2KInboxLayout::new(geometry).unwrap();
        let region: Arc<dyn Region> = Arc::new(HeapRegion::zeroed(layout.stride() * 2, 64).unwrap());
        // SAFETY: fresh region; the two inboxes do not overlap.
        let second = unsafe { Inbox::init_in_region(region.clone(), layout.stride(), geometry) }.unwrap();
        let (tx, _rx) = second.split();
        tx.push_bytes(5, &[0xAB; 32]).unwrap();
        let base = region.as_ptr();
        // SAFETY: reading words of the region after the send completed on this thread.
        unsafe {
            let inbox = base.add(layout.stride());
            assert_eq!(inbox.cast::<u32>().read(), 4, "capacity at offset 0");
            assert_eq!(inbox.add(4).cast::<u32>().read(), 32, "slot_bytes at offset 4");
            assert_eq!(inbox.add(8).cast::<u32>().read(), 1, "tail at offset 8");
            assert_eq!(inbox.add(layout.sequences_offset()).cast::<u32>().read(), 1, "slot 0 published");
            assert_eq!(inbox.add(layout.sequences_offset() + 4).cast::<u32>().read(), 1, "slot 1 free for lap 0");
            assert_eq!(*inbox.add(layout.slots_offset()), 0xAB);
        }
        // SAFETY: fresh region (the first inbox's bytes), but it would overrun past the end.
        let err = unsafe { Inbox::init_in_region(region, layout.stride() + 64, geometry) }.err().unwrap();
        assert!(err.to_string().contains("overrun"), "{err}");
    }

    /// Sequence words that no protocol step writes stop the end that reads them; they never make
    /// it spin or overwrite.
    #[test]
    fn corrupt_sequence_words_stop_the_inbox() {
        let (tx, mut rx) = channel(RingGeometry::new(4, 16).unwrap()).unwrap();
        // Slot 0's sequence far ahead while the tail has not moved: a producer would otherwise
        // reread the tail forever.
        tx.shared.sequence(0).store(9, Ordering::Release);
        let Err(PushError::Corrupt(violation)) = tx.try_push(1, |_| ()) else { panic!("expected a violation") };
        assert_eq!((violation.index, violation.found), ("sequence", 9));
        let Err(PopError::Corrupt(_)) = rx.try_pop(read_u32) else { panic!("expected a violation") };
        assert!(matches!(rx.try_pop(read_u32), Err(PopError::Corrupt(_))), "stays stopped");
        // A tail more than a lap ahead of the head.
        let (tx, rx) = channel(RingGeometry::new(4, 16).unwrap()).unwrap();
        tx.shared.header().tail.store(100, Ordering::Release);
        assert!(rx.len().is_err() && rx.is_empty());
        // A sequence word far behind: neither full nor free.
        let (tx, _rx) = channel(RingGeometry::new(4, 16).unwrap()).unwrap();
        tx.shared.sequence(0).store(u32::MAX - 20, Ordering::Release);
        assert!(matches!(tx.try_push(1, |_| ()), Err(PushError::Corrupt(_))));
    }

    #[test]
    fn unreceived_messages_are_taken_back_once_the_inbox_is_out_of_use() {
        let (tx, mut rx) = channel(RingGeometry::new(4, 16).unwrap()).unwrap();
        let mut reclaim = InboxReclaim { shared: tx.shared.clone() };
        for i in 0..3u32 {
            tx.try_push(1, |s| s[..4].copy_from_slice(&i.to_le_bytes())).unwrap();
        }
        assert_eq!(rx.try_pop(read_u32), Ok(0));
        drop((tx, rx));
        let mut left = Vec::new();
        // SAFETY: both ends were dropped above; nothing else uses the inbox.
        let taken = unsafe { reclaim.take_unreceived(|slot| left.push(read_u32(slot))) };
        assert_eq!((taken, left), (2, vec![1, 2]));
        // SAFETY: as above.
        assert_eq!(unsafe { reclaim.take_unreceived(|_| unreachable!()) }, 0);
    }

    #[test]
    fn many_producers_deliver_everything_once_in_per_producer_order() {
        let producers = 3u32;
        let per_producer: u32 = if cfg!(miri) { 100 } else { 50_000 };
        let (tx, mut rx) = channel(RingGeometry::new(8, 16).unwrap()).unwrap();
        let handles: Vec<_> = (0..producers)
            .map(|p| {
                let tx = tx.clone();
                std::thread::spawn(move || {
                    let mut full = 0u64;
                    for i in 0..per_producer {
                        let value = (p << 24) | i;
                        while tx.try_push(p, |s| s[..4].copy_from_slice(&value.to_le_bytes())).is_err() {
                            full += 1;
                            std::thread::yield_now();
                        }
                    }
                    full
                })
            })
            .collect();
        drop(tx);
        let mut next = vec![0u32; producers as usize];
        let mut received = 0;
        while received < producers * per_producer {
            match rx.try_pop(read_u32) {
                Ok(value) => {
                    let (p, i) = ((value >> 24) as usize, value & 0xFF_FFFF);
                    assert_eq!(i, next[p], "producer {p} out of order");
                    next[p] += 1;
                    received += 1;
                }
                Err(_) => std::thread::yield_now(),
            }
        }
        let full_retries: u64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
        assert_eq!(rx.full_rejections() as u64, full_retries % (1 << 32));
        assert_eq!(rx.try_pop(read_u32), Err(PopError::Empty));
    }
}
