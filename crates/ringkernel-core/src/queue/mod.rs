//! Lock-free queues over shared memory.
//!
//! * [`spsc`] — the host ↔ kernel rings: one producer, one consumer, indices in a
//!   [`ControlBlock`](crate::layout::ControlBlock).
//! * [`mpsc`] — bounded kernel-to-kernel inboxes: many producers, one consumer, a sequence word per
//!   slot. Full is an error, never an overwrite.
//!
//! Both protocols are model-checked with loom (`tests/loom_queue.rs`).

pub mod mpsc;
pub mod spsc;

use crate::error::RingKernelError;

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
