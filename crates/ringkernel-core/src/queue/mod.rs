//! Lock-free queues over shared memory.
//!
//! * [`spsc`] — the host ↔ kernel rings: one producer, one consumer, indices in a
//!   [`ControlBlock`](crate::layout::ControlBlock).
//! * [`mpsc`] — bounded kernel-to-kernel inboxes: many producers, one consumer, a sequence word per
//!   slot. Full is an error, never an overwrite.
//!
//! Both queues use one vocabulary: `try_push` / `try_pop` move one message, `len` counts the
//! messages a consumer can take. Both protocols are model-checked with loom
//! (`tests/loom_queue.rs`).
//!
//! The other end of a queue may be a GPU or another process, not Rust code, so both ends treat it
//! as untrusted: every index read from the peer is checked (a violation is an [`IndexViolation`],
//! after which the end refuses every operation: it never panics and never overwrites), and a
//! consumer reads slots only through [`SharedSlot`], which copies bytes out through raw pointers
//! and never makes a reference to memory the peer writes.

pub mod mpsc;
pub mod spsc;

use std::marker::PhantomData;

use crate::error::RingKernelError;
use crate::layout::{MESSAGE_HEADER_BYTES, MESSAGE_HEADER_HOT_BYTES, MESSAGE_HEADER_USED_BYTES, MessageHeader};
use crate::message::{HeaderPart, SlotBuffer};

/// A push found no free slot; nothing was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueFull {
    /// Capacity of the queue in slots.
    pub capacity: u32,
}

impl QueueFull {
    /// The runtime error for this, naming the queue.
    pub fn into_error(self, queue: &'static str) -> RingKernelError {
        RingKernelError::QueueFull { queue, capacity: self.capacity }
    }
}

impl std::fmt::Display for QueueFull {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "queue full: all {} slots in use", self.capacity)
    }
}

impl std::error::Error for QueueFull {}

/// The peer wrote an index (or a slot sequence word) that the protocol cannot produce. The end
/// that saw it refuses every later operation with the same violation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexViolation {
    /// Which word: `"head"`, `"tail"` or `"sequence"`.
    pub index: &'static str,
    /// The value read.
    pub found: u32,
    /// Lowest valid value (in wrapping order).
    pub low: u32,
    /// Highest valid value (in wrapping order).
    pub high: u32,
    /// Capacity of the queue.
    pub capacity: u32,
}

impl IndexViolation {
    /// The runtime error for this: the kernel faulted.
    pub fn into_error(self, kernel: &str, queue: &str) -> RingKernelError {
        RingKernelError::KernelFault { kernel: kernel.to_string(), reason: format!("{queue}: {self}") }
    }
}

impl std::fmt::Display for IndexViolation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the peer wrote {} = {}, outside the valid range {}..={} (capacity {}); the queue is stopped",
            self.index, self.found, self.low, self.high, self.capacity
        )
    }
}

impl std::error::Error for IndexViolation {}

/// Why a push wrote nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushError {
    /// Every slot holds an unconsumed message: retry later.
    Full(QueueFull),
    /// The peer broke the protocol; the queue is stopped.
    Corrupt(IndexViolation),
}

impl PushError {
    /// The runtime error for this, naming the queue and the kernel it belongs to.
    pub fn into_error(self, kernel: &str, queue: &'static str) -> RingKernelError {
        match self {
            PushError::Full(full) => full.into_error(queue),
            PushError::Corrupt(violation) => violation.into_error(kernel, queue),
        }
    }
}

impl From<QueueFull> for PushError {
    fn from(full: QueueFull) -> Self {
        PushError::Full(full)
    }
}

impl std::fmt::Display for PushError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PushError::Full(full) => full.fmt(f),
            PushError::Corrupt(violation) => violation.fmt(f),
        }
    }
}

impl std::error::Error for PushError {}

/// Why a pop read nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PopError {
    /// No message is published yet.
    Empty,
    /// The peer broke the protocol; the queue is stopped.
    Corrupt(IndexViolation),
}

impl std::fmt::Display for PopError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PopError::Empty => f.write_str("queue empty"),
            PopError::Corrupt(violation) => violation.fmt(f),
        }
    }
}

impl std::error::Error for PopError {}

/// Read access to one published slot in shared memory, lent by a consumer for the length of one
/// pop. It hands out copies, never references: the peer may be a device that rewrites the slot,
/// and a reference would let the compiler assume it cannot change.
#[derive(Debug, Clone, Copy)]
pub struct SharedSlot<'a> {
    ptr: *const u8,
    len: usize,
    _slot: PhantomData<&'a [u8]>,
}

impl SharedSlot<'_> {
    /// # Safety
    /// `ptr` is valid for reads of `len` bytes for the lifetime `'a`, through raw-pointer copies.
    pub(crate) unsafe fn new(ptr: *const u8, len: usize) -> Self {
        Self { ptr, len, _slot: PhantomData }
    }

    /// Bytes in the slot.
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the slot has no bytes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Copies `dst.len()` bytes starting at `offset` into `dst`, or fewer where the slot ends;
    /// returns how many were copied.
    #[inline]
    pub fn read(&self, offset: usize, dst: &mut [u8]) -> usize {
        let count = dst.len().min(self.len.saturating_sub(offset));
        if count > 0 {
            // SAFETY: `offset + count <= len`, so the source lies inside the slot, which is valid for
            // reads (constructor's contract); `dst` is a distinct, writable Rust buffer.
            unsafe { std::ptr::copy_nonoverlapping(self.ptr.add(offset), dst.as_mut_ptr(), count) };
        }
        count
    }

    /// The little-endian word at `offset` (0 past the end of the slot).
    #[inline]
    pub fn read_u32(&self, offset: usize) -> u32 {
        let mut word = [0u8; 4];
        self.read(offset, &mut word);
        u32::from_le_bytes(word)
    }

    /// A copy of the whole slot.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut bytes = vec![0u8; self.len];
        self.read(0, &mut bytes);
        bytes
    }

    /// Copies a message out into `buffer`: the header's `part`, then exactly the payload that the
    /// copied header claims (clamped to what the slot and the buffer can hold, so a lying header
    /// costs nothing and fails validation). Decode the buffer afterwards, never the slot.
    #[inline]
    pub fn copy_message_into(&self, buffer: &mut SlotBuffer, part: HeaderPart) {
        let bytes = buffer.as_mut_slice();
        let len = bytes.len();
        let header_bytes = match part {
            HeaderPart::Hot => MESSAGE_HEADER_HOT_BYTES,
            HeaderPart::Used => MESSAGE_HEADER_USED_BYTES,
        };
        let copied = self.read(0, &mut bytes[..header_bytes.min(len)]);
        // What was not copied reads as zero, not as a previous message's bytes.
        bytes[copied..MESSAGE_HEADER_USED_BYTES.min(len)].fill(0);
        if copied < MESSAGE_HEADER_HOT_BYTES || bytes.len() < MESSAGE_HEADER_BYTES {
            return;
        }
        let at = std::mem::offset_of!(MessageHeader, payload_bytes);
        let claimed = u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes")) as usize;
        let end = MESSAGE_HEADER_BYTES.saturating_add(claimed).min(bytes.len()).min(self.len);
        if end > MESSAGE_HEADER_BYTES {
            self.read(MESSAGE_HEADER_BYTES, &mut bytes[MESSAGE_HEADER_BYTES..end]);
        }
    }
}

/// Wrapping-order range check: whether `value` lies in `low..=high` walking forward from `low`.
pub(crate) fn in_window(value: u32, low: u32, high: u32) -> bool {
    value.wrapping_sub(low) <= high.wrapping_sub(low)
}

/// One end's view of an index the peer writes: the last value accepted, and the violation that
/// stopped this end, if any.
pub(crate) struct PeerIndex<'a> {
    pub(crate) name: &'static str,
    pub(crate) cached: &'a mut u32,
    pub(crate) poisoned: &'a mut Option<IndexViolation>,
}

impl PeerIndex<'_> {
    /// Accepts `found` if it lies in `cached..=high` (it may only move forward, and never past
    /// `high`); otherwise records the first violation, which poisons this end.
    pub(crate) fn accept(self, found: u32, high: u32, capacity: u32) {
        if in_window(found, *self.cached, high) {
            *self.cached = found;
        } else if self.poisoned.is_none() {
            *self.poisoned = Some(IndexViolation { index: self.name, found, low: *self.cached, high, capacity });
        }
    }
}
