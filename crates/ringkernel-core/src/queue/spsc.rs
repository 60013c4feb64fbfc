//! Single-producer single-consumer ring of fixed-size slots.
//!
//! The protocol, shared with device code:
//!
//! * `tail` is written only by the producer, `head` only by the consumer; both are free-running
//!   `u32` counters in a [`ControlBlock`](crate::layout::ControlBlock); `tail - head` (wrapping) is
//!   the number of published slots, never more than the capacity;
//! * the producer writes slot `tail & mask`, then stores `tail + 1` with release ordering (after a
//!   store fence when the memory is write-combined); the consumer loads `tail` with acquire
//!   ordering, reads slot `head & mask`, then stores `head + 1` with release ordering, which hands
//!   the slot back;
//! * each side caches the other's index and rereads it only when the cached value says the ring is
//!   full (producer) or empty (consumer), which keeps cross-core (or cross-PCIe) traffic low;
//! * every index read from the peer is checked: the producer accepts a `head` only between its
//!   last reading and its own `tail`, the consumer a `tail` only between its last reading and
//!   `head + capacity`. Anything else is an [`IndexViolation`]; the end then refuses every
//!   operation (no panic, no overwrite);
//! * the host consumer hands slots back in batches: it publishes `head` once a quarter of the ring
//!   has been consumed, whenever it finds the ring empty, when a read chunk is released, and when
//!   it is dropped. The producer may therefore see up to a quarter of the ring as still in use while
//!   the consumer is busy, never less than that; messages themselves are delivered as soon as `tail`
//!   is published. (Publishing `head` after every message made per-message throughput between two
//!   CPU cores swing between 17 and 80 M msg/s from run to run: see BENCHMARKS.md.)
//!
//! [`Producer`] and [`Consumer`] are not `Clone`: "single" is a property of the types. A producer
//! writes its reserved slot through `&mut [u8]` (nobody else may touch it until it is published);
//! a consumer reads published slots through [`SharedSlot`] copies only.
//!
//! ```
//! use ringkernel_core::layout::RingGeometry;
//! use ringkernel_core::queue::spsc;
//!
//! let (mut producer, mut consumer) = spsc::channel(RingGeometry::new(4, 64)?)?;
//! producer.push_bytes(b"ping")?;
//! let got = consumer.try_pop(|slot| slot.to_vec()[..4].to_vec());
//! assert_eq!(got.as_deref(), Ok(&b"ping"[..]));
//! # Ok::<(), ringkernel_core::error::RingKernelError>(())
//! ```

use std::ptr::NonNull;
use std::sync::Arc;

use super::{IndexViolation, PeerIndex, PopError, PushError, QueueFull, SharedSlot};
use crate::control::{ControlConfig, RingSide, SharedControl, geometry_mismatch};
use crate::error::{MessageError, Result, RingKernelError};
use crate::layout::RingGeometry;
use crate::region::{HeapRegion, Owner, Region};
use crate::sync::{AccessTracker, AtomicU32, Ordering};

/// What both ends of a ring share.
struct RingState {
    control: SharedControl,
    side: RingSide,
    slots: NonNull<u8>,
    _slots_owner: Owner,
    geometry: RingGeometry,
    /// The producer fences its slot writes before publishing (write-combined memory).
    store_fence: bool,
    trackers: Box<[AccessTracker]>,
}

// SAFETY: the slot memory is only touched under the SPSC protocol (one producer, one consumer,
// hand-over through release/acquire on the indices); the control block is atomics.
unsafe impl Send for RingState {}
// SAFETY: as above.
unsafe impl Sync for RingState {}

impl RingState {
    fn indices(&self) -> (&AtomicU32, &AtomicU32) {
        self.control.index_pair(self.side)
    }

    fn mask(&self) -> u32 {
        self.geometry.capacity() - 1
    }

    /// Pointer to the slot that counter value `index` maps to.
    fn slot_ptr(&self, index: u32) -> *mut u8 {
        let slot = (index & self.mask()) as usize;
        // SAFETY: `slot < capacity`, and the slot array holds `capacity * slot_bytes` bytes
        // (checked when the ring was attached).
        unsafe { self.slots.as_ptr().add(slot * self.geometry.slot_bytes() as usize) }
    }

    fn tracker(&self, index: u32) -> &AccessTracker {
        #[cfg(loom)]
        return &self.trackers[(index & self.mask()) as usize];
        // Outside loom trackers are zero-sized: one instance stands for every slot.
        #[cfg(not(loom))]
        {
            let _ = index;
            &self.trackers[0]
        }
    }

    /// A read-only view of the slot at `index`.
    fn shared_slot(&self, index: u32) -> SharedSlot<'_> {
        // SAFETY: the slot lies inside the ring's memory, valid for reads while the ring lives.
        unsafe { SharedSlot::new(self.slot_ptr(index), self.geometry.slot_bytes() as usize) }
    }
}

/// Trackers only matter under loom; outside it one zero-sized tracker stands for every slot, so a
/// ring of 2^30 slots does not loop 2^30 times to build them.
fn new_trackers(capacity: u32) -> Box<[AccessTracker]> {
    let count = if cfg!(loom) { capacity as usize } else { 1 };
    (0..count).map(|_| AccessTracker::new()).collect()
}

/// A ring attached to memory, not yet split into its ends.
pub struct Ring {
    shared: Arc<RingState>,
}

impl Ring {
    /// Attaches to the ring whose indices are `side` of `control` and whose slots start at
    /// `slots_offset` in `slots`. The geometry is the one recorded in the control block. Most code
    /// gets its rings from [`crate::memory::KernelMemory`] instead, which lays everything out.
    ///
    /// # Errors
    /// [`RingKernelError::InvalidConfig`] if the recorded geometry is invalid, or the slots do not
    /// fit in the region, or the offset is not a multiple of 16.
    ///
    /// # Safety
    /// While the ring and its ends live: the slot bytes are accessed only through this protocol;
    /// no other `Ring` is attached to the same indices; and outside this process (a device) at most
    /// the peer of the end(s) taken from this ring runs.
    pub unsafe fn attach(
        control: SharedControl,
        side: RingSide,
        slots: Arc<dyn Region>,
        slots_offset: usize,
    ) -> Result<Self> {
        let geometry = control.geometry(side)?;
        let start = crate::region::subrange(
            &*slots,
            slots_offset,
            geometry.bytes(),
            crate::layout::SLOT_ALIGN_BYTES,
            "slots offset",
        )?;
        let store_fence = slots.kind().needs_store_fence();
        Ok(Self {
            shared: Arc::new(RingState {
                control,
                side,
                slots: start,
                _slots_owner: slots,
                geometry,
                store_fence,
                trackers: new_trackers(geometry.capacity()),
            }),
        })
    }

    /// Both ends, for a ring whose producer and consumer both live in this process.
    pub fn split(self) -> (Producer, Consumer) {
        (Producer::new(self.shared.clone()), Consumer::new(self.shared))
    }

    /// The producing end only (the consumer is device code).
    pub fn into_producer(self) -> Producer {
        Producer::new(self.shared)
    }

    /// The consuming end only (the producer is device code).
    pub fn into_consumer(self) -> Consumer {
        Consumer::new(self.shared)
    }
}

/// A fresh ring in heap memory with its own control block (the input side), split into its ends.
///
/// # Errors
/// [`RingKernelError::AllocationFailed`] when the slots do not fit in memory.
pub fn channel(geometry: RingGeometry) -> Result<(Producer, Consumer)> {
    let control = SharedControl::new(ControlConfig { input: geometry, output: geometry, kernel_id: 0, node_id: 0 });
    let slots: Arc<dyn Region> = Arc::new(HeapRegion::zeroed(geometry.bytes(), 64)?);
    // SAFETY: fresh memory and a fresh control block, used by nothing else; both ends are
    // returned together.
    let ring = unsafe { Ring::attach(control, RingSide::Input, slots, 0) }?;
    Ok(ring.split())
}

/// Checks that a control block's recorded geometry is the one a caller laid slots out for.
pub fn check_geometry(control: &SharedControl, side: RingSide, expected: RingGeometry) -> Result<()> {
    let recorded = control.geometry(side)?;
    if recorded == expected { Ok(()) } else { Err(geometry_mismatch(side, recorded, expected)) }
}

/// The producing end. Not `Clone`.
pub struct Producer {
    shared: Arc<RingState>,
    /// Our own tail (we are its only writer).
    tail: u32,
    /// Last head we read; the real one is never behind it.
    cached_head: u32,
    /// Set once the consumer broke the protocol; every operation then fails with it.
    poisoned: Option<IndexViolation>,
}

impl Producer {
    fn new(shared: Arc<RingState>) -> Self {
        let (head, tail) = shared.indices();
        let tail = tail.load(Ordering::Relaxed);
        let cached_head = head.load(Ordering::Acquire);
        let mut producer = Self { shared, tail, cached_head: tail, poisoned: None };
        producer.accept_head(cached_head);
        producer
    }

    /// Capacity in slots.
    pub fn capacity(&self) -> u32 {
        self.shared.geometry.capacity()
    }

    /// Bytes per slot.
    pub fn slot_bytes(&self) -> usize {
        self.shared.geometry.slot_bytes() as usize
    }

    /// The control block holding this ring's indices.
    pub fn control(&self) -> &SharedControl {
        &self.shared.control
    }

    /// The free-running position the next pushed slot will have (its index is the position
    /// modulo the capacity): what a [`slot_check`](mod@crate::message::slot_check) covers.
    pub fn position(&self) -> u32 {
        self.tail
    }

    /// Checks a `head` read from the consumer: it may only have moved forward, and never past our
    /// tail. A violation poisons the producer.
    fn accept_head(&mut self, head: u32) {
        let capacity = self.capacity();
        PeerIndex { name: "head", cached: &mut self.cached_head, poisoned: &mut self.poisoned }
            .accept(head, self.tail, capacity);
    }

    /// The violation that stopped this producer, if any.
    pub fn violation(&self) -> Option<IndexViolation> {
        self.poisoned
    }

    /// Whether this producer fences its slot writes before publishing them (its slots live in
    /// write-combined or device-mapped memory).
    pub fn fences_before_publish(&self) -> bool {
        self.shared.store_fence
    }

    /// Free slots right now (rereads the consumer's index).
    ///
    /// # Errors
    /// The [`IndexViolation`] if the consumer broke the protocol.
    pub fn free_slots(&mut self) -> std::result::Result<u32, IndexViolation> {
        let head = self.shared.indices().0.load(Ordering::Acquire);
        self.accept_head(head);
        match self.poisoned {
            Some(violation) => Err(violation),
            None => Ok(self.capacity() - self.tail.wrapping_sub(self.cached_head)),
        }
    }

    /// Free slots, rereading the consumer's index only if fewer than `wanted` look free.
    #[inline]
    fn reserve(&mut self, wanted: u32) -> std::result::Result<u32, PushError> {
        if let Some(violation) = self.poisoned {
            return Err(PushError::Corrupt(violation));
        }
        let free = self.capacity() - self.tail.wrapping_sub(self.cached_head);
        if free >= wanted { Ok(free) } else { self.free_slots().map_err(PushError::Corrupt) }
    }

    /// Publishes everything up to `tail`.
    #[inline]
    fn publish(&mut self, tail: u32) {
        self.tail = tail;
        if self.shared.store_fence {
            crate::sync::store_fence();
        }
        self.shared.indices().1.store(tail, Ordering::Release);
    }

    /// Fills the next slot with `write` and publishes it.
    ///
    /// # Errors
    /// [`PushError::Full`] if no slot is free, [`PushError::Corrupt`] if the consumer broke the
    /// protocol; `write` is then not called.
    #[inline]
    pub fn try_push<R>(&mut self, write: impl FnOnce(&mut [u8]) -> R) -> std::result::Result<R, PushError> {
        if self.reserve(1)? == 0 {
            return Err(PushError::Full(QueueFull { capacity: self.capacity() }));
        }
        let shared = &*self.shared;
        let ptr = shared.slot_ptr(self.tail);
        let result = shared.tracker(self.tail).write(|| {
            // SAFETY: the slot is free (tail - head < capacity), so the consumer will not read it
            // until we publish; we are the only producer; the slot is `slot_bytes` long.
            let slot = unsafe { std::slice::from_raw_parts_mut(ptr, shared.geometry.slot_bytes() as usize) };
            write(slot)
        });
        self.publish(self.tail.wrapping_add(1));
        Ok(result)
    }

    /// Hints the CPU to take ownership now of the cache lines at `byte_offsets` of the slot the
    /// next push will fill, so that the push does not wait for them to be taken from the consumer
    /// core. Call it right after a push, while waiting for other work. Only a hint: it reads and
    /// writes nothing.
    #[inline]
    pub fn prefetch_next_for_write(&self, byte_offsets: &[usize]) {
        let ptr = self.shared.slot_ptr(self.tail);
        for &offset in byte_offsets {
            if offset < self.slot_bytes() {
                crate::sync::prefetch(ptr.wrapping_add(offset), true);
            }
        }
    }

    /// Copies `bytes` into the start of the next slot, zeroes the rest of it, and publishes it.
    ///
    /// # Errors
    /// [`RingKernelError::QueueFull`] if no slot is free; [`RingKernelError::InvalidMessage`] if
    /// `bytes` is longer than a slot; [`RingKernelError::KernelFault`] if the consumer broke the
    /// protocol.
    pub fn push_bytes(&mut self, bytes: &[u8]) -> Result<()> {
        if bytes.len() > self.slot_bytes() {
            return Err(MessageError::PayloadTooLarge {
                payload_bytes: u32::try_from(bytes.len()).unwrap_or(u32::MAX),
                capacity_bytes: self.slot_bytes(),
            }
            .into());
        }
        self.try_push(|slot| {
            slot[..bytes.len()].copy_from_slice(bytes);
            slot[bytes.len()..].fill(0);
        })
        .map_err(|error| error.into_error("ring", "ring"))
    }

    /// Reserves exactly `count` free slots to fill and publish together.
    ///
    /// # Errors
    /// [`PushError::Full`] if fewer than `count` slots are free; [`PushError::Corrupt`] as for
    /// [`Producer::try_push`].
    pub fn write_chunk(&mut self, count: u32) -> std::result::Result<WriteChunk<'_>, PushError> {
        if self.reserve(count)? < count {
            return Err(PushError::Full(QueueFull { capacity: self.capacity() }));
        }
        Ok(WriteChunk { producer: self, len: count })
    }

    /// Reserves as many free slots as there are, up to `max` (possibly none).
    ///
    /// # Errors
    /// [`PushError::Corrupt`] if the consumer broke the protocol.
    pub fn write_chunk_up_to(&mut self, max: u32) -> std::result::Result<WriteChunk<'_>, PushError> {
        let len = self.reserve(max)?.min(max);
        Ok(WriteChunk { producer: self, len })
    }

    /// Takes back what the consumer never read: visits every published slot between the
    /// consumer's `head` and our `tail`, oldest first, then marks them consumed. Call it only once
    /// the consumer has stopped for good (a device that reported termination): it plays the
    /// consumer's part. Returns how many slots it visited.
    ///
    /// # Errors
    /// The [`IndexViolation`] if the consumer's `head` is not between its last known value and our
    /// tail; nothing is visited then.
    pub fn take_unconsumed(
        &mut self,
        mut visit: impl FnMut(SharedSlot<'_>),
    ) -> std::result::Result<u32, IndexViolation> {
        self.free_slots()?;
        let count = self.tail.wrapping_sub(self.cached_head);
        for i in 0..count {
            let index = self.cached_head.wrapping_add(i);
            self.shared.tracker(index).read(|| visit(self.shared.shared_slot(index)));
        }
        self.cached_head = self.tail;
        self.shared.indices().0.store(self.tail, Ordering::Release);
        Ok(count)
    }
}

/// Reserved, unpublished slots of a [`Producer`]. Dropping it publishes nothing.
pub struct WriteChunk<'a> {
    producer: &'a mut Producer,
    len: u32,
}

impl WriteChunk<'_> {
    /// Number of reserved slots.
    pub fn len(&self) -> u32 {
        self.len
    }

    /// Whether no slot was reserved.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The free-running position of the `i`-th reserved slot (see [`Producer::position`]).
    pub fn position(&self, i: u32) -> u32 {
        self.producer.tail.wrapping_add(i)
    }

    /// The `i`-th reserved slot.
    ///
    /// # Panics
    /// If `i >= len()`.
    pub fn slot_mut(&mut self, i: u32) -> &mut [u8] {
        assert!(i < self.len, "slot {i} of a {}-slot chunk", self.len);
        let shared = &*self.producer.shared;
        let index = self.producer.tail.wrapping_add(i);
        shared.tracker(index).write(|| ());
        // SAFETY: reserved and unpublished, so only we access it; `&mut self` prevents two live
        // borrows of the same slot.
        unsafe { std::slice::from_raw_parts_mut(shared.slot_ptr(index), shared.geometry.slot_bytes() as usize) }
    }

    /// Publishes the first `count` slots (clamped to `len()`).
    pub fn commit(self, count: u32) {
        let count = count.min(self.len);
        let producer = self.producer;
        producer.publish(producer.tail.wrapping_add(count));
    }

    /// Publishes every reserved slot.
    pub fn commit_all(self) {
        let len = self.len;
        self.commit(len);
    }
}

/// The consuming end. Not `Clone`.
pub struct Consumer {
    shared: Arc<RingState>,
    /// Our own head (we are its only writer).
    head: u32,
    /// The head value last stored in shared memory (at most `head`).
    published_head: u32,
    /// Publish `head` once this many consumed slots are unpublished.
    publish_every: u32,
    /// Last tail we read; the real one is never behind it.
    cached_tail: u32,
    /// Set once the producer broke the protocol; every operation then fails with it.
    poisoned: Option<IndexViolation>,
}

impl Consumer {
    fn new(shared: Arc<RingState>) -> Self {
        let (head, tail) = shared.indices();
        let head = head.load(Ordering::Relaxed);
        let publish_every = (shared.geometry.capacity() / 4).max(1);
        let tail = tail.load(Ordering::Acquire);
        let mut consumer =
            Self { shared, head, published_head: head, publish_every, cached_tail: head, poisoned: None };
        consumer.accept_tail(tail);
        consumer
    }

    /// Capacity in slots.
    pub fn capacity(&self) -> u32 {
        self.shared.geometry.capacity()
    }

    /// Bytes per slot.
    pub fn slot_bytes(&self) -> usize {
        self.shared.geometry.slot_bytes() as usize
    }

    /// The control block holding this ring's indices.
    pub fn control(&self) -> &SharedControl {
        &self.shared.control
    }

    /// The violation that stopped this consumer, if any.
    pub fn violation(&self) -> Option<IndexViolation> {
        self.poisoned
    }

    /// Checks a `tail` read from the producer: it may only have moved forward, and never more than
    /// a ring ahead of our head. A violation poisons the consumer.
    fn accept_tail(&mut self, tail: u32) {
        let capacity = self.capacity();
        PeerIndex { name: "tail", cached: &mut self.cached_tail, poisoned: &mut self.poisoned }.accept(
            tail,
            self.head.wrapping_add(capacity),
            capacity,
        );
    }

    /// Sets how many consumed slots may stay unpublished before `head` is stored (clamped to
    /// `1..=capacity`; the default is a quarter of the capacity). 1 hands every slot back at once,
    /// which costs per-message throughput between CPU cores but lets a producer that polls for
    /// space see it immediately. The ring empty, a chunk released or the consumer dropped always
    /// publishes.
    pub fn set_release_batch(&mut self, slots: u32) {
        self.publish_every = slots.clamp(1, self.capacity());
    }

    /// How many slots this consumer has handed back to the producer so far (a free-running count
    /// of its `head` publications). A caller whose producer may be waiting for room compares it
    /// before and after reading, and wakes the producer when it moved.
    pub fn handed_back(&self) -> u32 {
        self.published_head
    }

    /// Published slots right now (rereads the producer's index).
    ///
    /// # Errors
    /// The [`IndexViolation`] if the producer broke the protocol.
    pub fn len(&mut self) -> std::result::Result<u32, IndexViolation> {
        let tail = self.shared.indices().1.load(Ordering::Acquire);
        self.accept_tail(tail);
        match self.poisoned {
            Some(violation) => Err(violation),
            None => Ok(self.cached_tail.wrapping_sub(self.head)),
        }
    }

    /// Whether no slot is published right now (a corrupt ring reads as empty).
    pub fn is_empty(&mut self) -> bool {
        self.len().map_or(true, |len| len == 0)
    }

    #[inline]
    fn ready(&mut self, wanted: u32) -> std::result::Result<u32, PopError> {
        if let Some(violation) = self.poisoned {
            return Err(PopError::Corrupt(violation));
        }
        let ready = self.cached_tail.wrapping_sub(self.head);
        if ready >= wanted {
            return Ok(ready);
        }
        let ready = self.len().map_err(PopError::Corrupt)?;
        if ready == 0 {
            // About to report "empty": hand back everything consumed, so that at rest the shared
            // head is exact (hosts read it for queue depth and drain) and the producer sees every
            // free slot. (Progress never depends on this: a producer can only be stuck on a full
            // ring, and consuming a whole ring always reaches the batch size.)
            self.publish_head();
        }
        Ok(ready)
    }

    /// Stores `head` into shared memory, handing consumed slots back to the producer.
    fn publish_head(&mut self) {
        if self.published_head != self.head {
            self.published_head = self.head;
            self.shared.indices().0.store(self.head, Ordering::Release);
        }
    }

    /// Reads the oldest slot with `read` and hands it back to the producer.
    ///
    /// # Errors
    /// [`PopError::Empty`] if nothing is published; [`PopError::Corrupt`] if the producer broke
    /// the protocol. `read` is then not called.
    #[inline]
    pub fn try_pop<R>(&mut self, read: impl FnOnce(SharedSlot<'_>) -> R) -> std::result::Result<R, PopError> {
        if self.ready(1)? == 0 {
            return Err(PopError::Empty);
        }
        let shared = &*self.shared;
        let head = self.head;
        // The slot is published (head < tail, seen with acquire) and the producer will not touch
        // it until we advance head.
        let result = shared.tracker(head).read(|| read(shared.shared_slot(head)));
        self.head = head.wrapping_add(1);
        if self.head.wrapping_sub(self.published_head) >= self.publish_every {
            self.publish_head();
        }
        Ok(result)
    }

    /// Reads the oldest slot with `read`, which is also given the slot's free-running position and
    /// says whether the slot is complete: only then (`Some`) is it handed back to the producer.
    /// `None` leaves it for a later look — for a producer whose writes may land after its tail (a
    /// device that publishes without a fence and lets the reader check each slot).
    ///
    /// # Errors
    /// [`PopError::Empty`] if nothing is published or the oldest slot is not complete yet;
    /// [`PopError::Corrupt`] if the producer broke the protocol.
    #[inline]
    pub fn try_pop_complete<R>(
        &mut self,
        read: impl FnOnce(SharedSlot<'_>, u32) -> Option<R>,
    ) -> std::result::Result<R, PopError> {
        if self.ready(1)? == 0 {
            return Err(PopError::Empty);
        }
        let shared = &*self.shared;
        let head = self.head;
        // As in try_pop: published, and untouched by the producer until we advance head.
        let Some(result) = shared.tracker(head).read(|| read(shared.shared_slot(head), head)) else {
            return Err(PopError::Empty);
        };
        self.head = head.wrapping_add(1);
        if self.head.wrapping_sub(self.published_head) >= self.publish_every {
            self.publish_head();
        }
        Ok(result)
    }

    /// Hints the CPU to fetch the cache lines at `byte_offsets` of the slot after the one the next
    /// pop reads, if that slot is already known to be published: while one message is handled,
    /// the next one's lines travel from the producer's core (or over the bus). Only a hint: it
    /// reads nothing the protocol cares about and writes nothing.
    #[inline]
    pub fn prefetch_following(&self, byte_offsets: &[usize]) {
        if self.cached_tail.wrapping_sub(self.head) >= 2 {
            let ptr = self.shared.slot_ptr(self.head.wrapping_add(1));
            for &offset in byte_offsets {
                if offset < self.slot_bytes() {
                    crate::sync::prefetch(ptr.wrapping_add(offset), false);
                }
            }
        }
    }

    /// Borrows up to `max` published slots to read together.
    ///
    /// # Errors
    /// [`PopError::Corrupt`] if the producer broke the protocol (an empty ring is an empty chunk).
    pub fn read_chunk(&mut self, max: u32) -> std::result::Result<ReadChunk<'_>, PopError> {
        let len = self.ready(max)?.min(max);
        Ok(ReadChunk { consumer: self, len })
    }
}

/// Published slots lent by a [`Consumer`]. Dropping it releases nothing.
pub struct ReadChunk<'a> {
    consumer: &'a mut Consumer,
    len: u32,
}

impl ReadChunk<'_> {
    /// Number of slots lent.
    pub fn len(&self) -> u32 {
        self.len
    }

    /// Whether no slot was available.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The `i`-th slot, oldest first.
    ///
    /// # Panics
    /// If `i >= len()`.
    pub fn slot(&self, i: u32) -> SharedSlot<'_> {
        assert!(i < self.len, "slot {i} of a {}-slot chunk", self.len);
        let shared = &*self.consumer.shared;
        let index = self.consumer.head.wrapping_add(i);
        shared.tracker(index).read(|| ());
        // Published and not yet released, so the producer does not write it.
        shared.shared_slot(index)
    }

    /// Hands the first `count` slots (clamped to `len()`) back to the producer.
    pub fn release(self, count: u32) {
        let count = count.min(self.len);
        let consumer = self.consumer;
        consumer.head = consumer.head.wrapping_add(count);
        consumer.publish_head();
    }

    /// Hands every lent slot back.
    pub fn release_all(self) {
        let len = self.len;
        self.release(len);
    }
}

impl Drop for Consumer {
    fn drop(&mut self) {
        self.publish_head();
    }
}

impl std::fmt::Debug for Producer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Producer").field("geometry", &self.shared.geometry).field("tail", &self.tail).finish()
    }
}

impl std::fmt::Debug for Consumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consumer").field("geometry", &self.shared.geometry).field("head", &self.head).finish()
    }
}

impl From<QueueFull> for RingKernelError {
    fn from(full: QueueFull) -> Self {
        full.into_error("ring")
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::region::MemoryKind;

    fn geometry(capacity: u32) -> RingGeometry {
        RingGeometry::new(capacity, 64).unwrap()
    }

    fn first(slot: SharedSlot<'_>) -> u8 {
        let mut byte = [0u8];
        slot.read(0, &mut byte);
        byte[0]
    }

    fn word(slot: SharedSlot<'_>) -> u32 {
        slot.read_u32(0)
    }

    #[test]
    fn an_incomplete_slot_is_left_for_a_later_look() {
        let (mut tx, mut rx) = channel(geometry(4)).unwrap();
        assert_eq!(rx.try_pop_complete(|_, _| Some(())), Err(PopError::Empty));
        for i in 0..4u8 {
            tx.try_push(|slot| slot[0] = 7 + i).unwrap();
        }
        // Not complete yet: nothing is consumed, and the same slot comes back with its position.
        for _ in 0..2 {
            let look = rx.try_pop_complete(|slot, position| {
                assert_eq!((first(slot), position), (7, 0));
                None::<u8>
            });
            assert_eq!(look, Err(PopError::Empty));
        }
        assert!(tx.try_push(|_| ()).is_err(), "the slot looked at is still the consumer's");
        for i in 0..4u8 {
            assert_eq!(rx.try_pop_complete(|slot, position| Some((first(slot), position))), Ok((7 + i, u32::from(i))));
        }
        assert_eq!(rx.try_pop_complete(|_, _| Some(())), Err(PopError::Empty));
        // Positions run on across the wrap.
        tx.try_push(|slot| slot[0] = 11).unwrap();
        assert_eq!(rx.try_pop_complete(|slot, position| Some((first(slot), position))), Ok((11, 4)));
    }

    #[test]
    fn fifo_order_and_full_pushback() {
        let (mut tx, mut rx) = channel(geometry(4)).unwrap();
        for i in 0..4u8 {
            tx.try_push(|slot| slot[0] = i).unwrap();
        }
        assert_eq!(
            tx.try_push(|_| unreachable!("not called when full")),
            Err(PushError::Full(QueueFull { capacity: 4 }))
        );
        assert!(matches!(tx.push_bytes(b"x"), Err(RingKernelError::QueueFull { capacity: 4, .. })));
        for i in 0..4u8 {
            assert_eq!(rx.try_pop(first), Ok(i));
        }
        assert_eq!(rx.try_pop(first), Err(PopError::Empty));
    }

    #[test]
    fn oversized_push_is_rejected_with_sizes_and_short_pushes_zero_the_rest() {
        let (mut tx, mut rx) = channel(geometry(2)).unwrap();
        let err = tx.push_bytes(&[0u8; 65]).unwrap_err().to_string();
        assert!(err.contains("65") && err.contains("64"), "{err}");
        tx.push_bytes(&[0xff; 64]).unwrap();
        tx.push_bytes(&[]).unwrap();
        assert_eq!(rx.try_pop(|s| s.to_vec()), Ok(vec![0xff; 64]));
        tx.push_bytes(b"ab").unwrap();
        // The third push reuses the first slot: what the shorter message does not cover is zero.
        assert_eq!(rx.try_pop(|s| s.to_vec()), Ok(vec![0; 64]));
        let mut expected = vec![0u8; 64];
        expected[..2].copy_from_slice(b"ab");
        assert_eq!(rx.try_pop(|s| s.to_vec()), Ok(expected));
    }

    #[test]
    fn indices_wrap_around_u32() {
        let (tx, rx) = channel(geometry(2)).unwrap();
        let (head, tail) = tx.shared.indices();
        head.store(u32::MAX - 1, Ordering::Relaxed);
        tail.store(u32::MAX - 1, Ordering::Relaxed);
        let (mut tx, mut rx) = (Producer::new(tx.shared.clone()), Consumer::new(rx.shared.clone()));
        for round in 0..10u32 {
            tx.try_push(|s| s[..4].copy_from_slice(&round.to_le_bytes())).unwrap();
            tx.try_push(|s| s[..4].copy_from_slice(&(round + 100).to_le_bytes())).unwrap();
            assert!(tx.try_push(|_| ()).is_err());
            assert_eq!(rx.try_pop(word), Ok(round));
            assert_eq!(rx.try_pop(word), Ok(round + 100));
        }
    }

    #[test]
    fn consumer_hands_slots_back_in_quarters_and_when_empty() {
        let (mut tx, mut rx) = channel(geometry(8)).unwrap();
        let head = |tx: &Producer| tx.shared.indices().0.load(Ordering::Acquire);
        for i in 0..8u8 {
            tx.try_push(|s| s[0] = i).unwrap();
        }
        assert_eq!(rx.try_pop(first), Ok(0));
        assert_eq!(head(&tx), 0, "one slot is less than a quarter: not yet published");
        assert!(tx.try_push(|_| ()).is_err(), "the producer still sees the ring full");
        assert_eq!(rx.try_pop(first), Ok(1));
        assert_eq!(head(&tx), 2, "a quarter (2 of 8) consumed: published");
        tx.try_push(|s| s[0] = 8).unwrap();
        for i in 2..9u8 {
            assert_eq!(rx.try_pop(first), Ok(i));
        }
        assert_eq!(head(&tx), 8);
        assert_eq!(rx.try_pop(first), Err(PopError::Empty));
        assert_eq!(head(&tx), 9, "finding the ring empty publishes everything consumed");
        tx.try_push(|s| s[0] = 9).unwrap();
        assert_eq!(rx.try_pop(first), Ok(9));
        drop(rx);
        assert_eq!(head(&tx), 10, "dropping the consumer publishes");
    }

    #[test]
    fn chunks_publish_only_what_is_committed() {
        let (mut tx, mut rx) = channel(geometry(8)).unwrap();
        let mut chunk = tx.write_chunk(5).unwrap();
        for i in 0..5 {
            chunk.slot_mut(i)[0] = i as u8;
        }
        chunk.commit(3);
        assert_eq!(rx.len(), Ok(3));
        // Dropped without commit: nothing published.
        let _ = tx.write_chunk(2).unwrap();
        assert_eq!(rx.len(), Ok(3));
        assert!(tx.write_chunk(6).is_err());
        assert_eq!(tx.write_chunk_up_to(100).unwrap().len(), 5);
        let chunk = rx.read_chunk(10).unwrap();
        assert_eq!(chunk.len(), 3);
        assert_eq!((first(chunk.slot(0)), first(chunk.slot(2))), (0, 2));
        chunk.release(2);
        assert_eq!(rx.try_pop(first), Ok(2));
        assert!(rx.read_chunk(4).unwrap().is_empty());
    }

    #[test]
    fn attach_checks_bounds_and_reports_geometry_mismatch() {
        let geometry = geometry(4);
        let control = SharedControl::new(ControlConfig { input: geometry, output: geometry, kernel_id: 0, node_id: 0 });
        let small: Arc<dyn Region> = Arc::new(HeapRegion::zeroed(64 * 3, 64).unwrap());
        // SAFETY: fresh memory; fails before any access.
        let err = unsafe { Ring::attach(control.clone(), RingSide::Input, small, 0) }.err().unwrap();
        assert!(err.to_string().contains("overrun"), "{err}");
        let err = check_geometry(&control, RingSide::Output, RingGeometry::new(8, 64).unwrap()).unwrap_err();
        assert!(err.to_string().contains("Output ring"), "{err}");
        check_geometry(&control, RingSide::Input, geometry).unwrap();
    }

    /// A consumer that writes a `head` past the tail, or moves it backwards, stops the producer
    /// with an error naming the values: it never overwrites a slot and never panics.
    #[test]
    fn a_lying_consumer_stops_the_producer() {
        // Past the tail, behind the last reading, far ahead.
        for bad_head in [5u32, u32::MAX, 100] {
            let (mut tx, _rx) = channel(geometry(4)).unwrap();
            for i in 0..4u8 {
                tx.try_push(|s| s[0] = i).unwrap();
            }
            let before: Vec<u8> = (0..4).map(|i| tx.shared.shared_slot(i).read_u32(0) as u8).collect();
            tx.shared.indices().0.store(bad_head, Ordering::Release);
            let err = tx.try_push(|_| unreachable!("never writes")).unwrap_err();
            let PushError::Corrupt(violation) = err else { panic!("expected a violation, got {err:?}") };
            assert_eq!((violation.index, violation.low, violation.high), ("head", 0, 4));
            assert!(violation.to_string().contains("outside the valid range 0..=4"), "{violation}");
            assert_eq!(tx.try_push(|_| ()), Err(PushError::Corrupt(violation)), "stays stopped");
            let after: Vec<u8> = (0..4).map(|i| tx.shared.shared_slot(i).read_u32(0) as u8).collect();
            assert_eq!(before, after, "nothing overwritten");
        }
    }

    /// A producer that claims more than a ring of messages, or moves its tail backwards, stops the
    /// consumer.
    #[test]
    fn a_lying_producer_stops_the_consumer() {
        let (mut tx, mut rx) = channel(geometry(4)).unwrap();
        tx.try_push(|s| s[0] = 1).unwrap();
        assert_eq!(rx.try_pop(first), Ok(1));
        tx.shared.indices().1.store(1 + 5, Ordering::Release);
        let Err(PopError::Corrupt(violation)) = rx.try_pop(first) else { panic!("expected a violation") };
        assert_eq!((violation.index, violation.found, violation.low, violation.high), ("tail", 6, 1, 5));
        assert!(rx.len().is_err() && rx.read_chunk(1).is_err());
        let (_tx, mut rx) = channel(geometry(4)).unwrap();
        rx.shared.indices().1.store(u32::MAX, Ordering::Release);
        assert!(matches!(rx.try_pop(first), Err(PopError::Corrupt(IndexViolation { index: "tail", .. }))));
    }

    #[test]
    fn the_producer_takes_back_what_a_stopped_consumer_left() {
        let (mut tx, mut rx) = channel(geometry(4)).unwrap();
        for i in 0..3u8 {
            tx.try_push(|s| s[0] = i).unwrap();
        }
        assert_eq!(rx.try_pop(first), Ok(0));
        drop(rx);
        let mut left = Vec::new();
        assert_eq!(tx.take_unconsumed(|slot| left.push(first(slot))), Ok(2));
        assert_eq!(left, [1, 2]);
        assert_eq!(tx.free_slots(), Ok(4), "the taken slots are free again");
        assert_eq!(tx.take_unconsumed(|_| unreachable!()), Ok(0));
    }

    #[test]
    fn write_combined_slots_are_fenced_before_publication() {
        struct WriteCombined(HeapRegion);
        // SAFETY: delegates to a heap region; claims write-combining only to exercise the fence.
        unsafe impl Region for WriteCombined {
            fn as_ptr(&self) -> *mut u8 {
                self.0.as_ptr()
            }
            fn len(&self) -> usize {
                self.0.len()
            }
            fn kind(&self) -> MemoryKind {
                MemoryKind::WriteCombined
            }
        }
        let geometry = geometry(2);
        let control = SharedControl::new(ControlConfig { input: geometry, output: geometry, kernel_id: 0, node_id: 0 });
        let slots: Arc<dyn Region> = Arc::new(WriteCombined(HeapRegion::zeroed(128, 64).unwrap()));
        // SAFETY: fresh memory used only by this ring.
        let (mut tx, mut rx) = unsafe { Ring::attach(control, RingSide::Input, slots, 0) }.unwrap().split();
        assert!(tx.fences_before_publish());
        tx.try_push(|s| s[0] = 7).unwrap();
        assert_eq!(rx.try_pop(first), Ok(7));
        assert!(!channel(geometry).unwrap().0.fences_before_publish());
    }

    #[test]
    fn two_threads_move_every_message_in_order() {
        let count: u32 = if cfg!(miri) { 200 } else { 200_000 };
        let (mut tx, mut rx) = channel(geometry(16)).unwrap();
        let producer = std::thread::spawn(move || {
            let mut i = 0u32;
            while i < count {
                // Alternate single pushes and chunks.
                if i.is_multiple_of(3) {
                    let mut chunk = tx.write_chunk_up_to(4.min(count - i)).unwrap();
                    let n = chunk.len();
                    for k in 0..n {
                        chunk.slot_mut(k)[..4].copy_from_slice(&(i + k).to_le_bytes());
                    }
                    chunk.commit_all();
                    i += n;
                } else if tx.try_push(|s| s[..4].copy_from_slice(&i.to_le_bytes())).is_ok() {
                    i += 1;
                }
                if i.is_multiple_of(64) {
                    std::thread::yield_now();
                }
            }
        });
        let mut expected = 0u32;
        while expected < count {
            let chunk = rx.read_chunk(3).unwrap();
            let n = chunk.len();
            for k in 0..n {
                assert_eq!(word(chunk.slot(k)), expected);
                expected += 1;
            }
            chunk.release_all();
            if n == 0 {
                std::thread::yield_now();
            }
        }
        producer.join().unwrap();
        assert_eq!(rx.len(), Ok(0));
    }
}
