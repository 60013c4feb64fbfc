//! Who a message is: its 128-bit id, the correlation id that ties a reply to its request, its
//! priority, and the kernel number that means "the host".

use std::cell::Cell;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::MessageError;

/// Kernel id used in headers for the host side.
pub const HOST_KERNEL_ID: u32 = u32::MAX;

/// A per-process random 64-bit value, drawn once from the operating system.
fn process_nonce() -> u64 {
    static NONCE: OnceLock<u64> = OnceLock::new();
    *NONCE.get_or_init(|| {
        getrandom::u64().unwrap_or_else(|_| {
            // No OS randomness (rare sandboxes): fall back to time, pid and an address, which
            // still differ between processes.
            let time = crate::hlc::PhysicalClock::now_ns(&crate::hlc::SystemClock);
            let local = 0u8;
            time ^ (u64::from(std::process::id()) << 32) ^ (&local as *const u8 as u64).rotate_left(17)
        })
    })
}

/// Sequence numbers are handed to each thread in blocks of this many, so that threads that
/// generate ids do not contend on one shared counter (a cache line bouncing between the host and
/// every actor thread on every message).
pub(crate) const SEQUENCE_BLOCK: u64 = 1 << 16;

/// The next number of this thread's block, taking a fresh block from `counter` when it runs out.
/// Blocks never overlap, so numbers are unique across threads.
fn next_in_block(counter: &AtomicU64, block: &'static std::thread::LocalKey<Cell<(u64, u64)>>) -> u64 {
    block.with(|cell| {
        let (mut next, mut end) = cell.get();
        if next == end {
            next = counter.fetch_add(SEQUENCE_BLOCK, Ordering::Relaxed);
            end = next + SEQUENCE_BLOCK;
        }
        cell.set((next + 1, end));
        next
    })
}

/// A 128-bit message id, unique across threads and processes.
///
/// The high 64 bits are a random number drawn once per process, the low 64 bits a process-wide
/// counter (handed to threads in blocks). Two processes collide only if they draw the same 64-bit
/// random number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct MessageId(pub u128);

impl MessageId {
    /// A fresh id.
    #[inline]
    pub fn generate() -> Self {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        thread_local! { static BLOCK: Cell<(u64, u64)> = const { Cell::new((0, 0)) }; }
        let sequence = next_in_block(&COUNTER, &BLOCK);
        Self((u128::from(process_nonce()) << 64) | u128::from(sequence))
    }

    /// The four little-endian words stored in a header.
    #[inline]
    pub fn to_words(self) -> [u32; 4] {
        let v = self.0;
        [v as u32, (v >> 32) as u32, (v >> 64) as u32, (v >> 96) as u32]
    }

    /// The id stored in a header's words.
    #[inline]
    pub fn from_words(words: [u32; 4]) -> Self {
        Self(
            u128::from(words[0]) | u128::from(words[1]) << 32 | u128::from(words[2]) << 64 | u128::from(words[3]) << 96,
        )
    }
}

impl std::fmt::Display for MessageId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

/// Ties a reply to its request. 0 means "none".
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct CorrelationId(pub u64);

impl CorrelationId {
    /// No correlation.
    pub const NONE: Self = Self(0);

    /// A fresh, non-zero id, unique within this process and unlikely to repeat across processes.
    #[inline]
    pub fn generate() -> Self {
        static COUNTER: AtomicU64 = AtomicU64::new(1);
        thread_local! { static BLOCK: Cell<(u64, u64)> = const { Cell::new((0, 0)) }; }
        let sequence = next_in_block(&COUNTER, &BLOCK);
        // Odd multiplier: a bijection on u64, so distinct sequences give distinct ids.
        let id = sequence.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ process_nonce();
        Self(if id == 0 { process_nonce() | 1 } else { id })
    }

    /// The `[low, high]` words stored in a header.
    #[inline]
    pub fn to_words(self) -> [u32; 2] {
        split_u64(self.0)
    }

    /// The id stored in a header's words.
    #[inline]
    pub fn from_words(words: [u32; 2]) -> Self {
        Self(join_u64(words))
    }
}

/// Message priority: one scale, 0 (lowest) to [`Priority::MAX`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[repr(u32)]
pub enum Priority {
    /// Background work.
    Low = 0,
    /// The default.
    #[default]
    Normal = 1,
    /// Ahead of normal traffic.
    High = 2,
    /// Control traffic.
    Critical = 3,
}

impl Priority {
    /// Largest numeric priority.
    pub const MAX: u32 = Priority::Critical as u32;

    /// Every priority with its name (used by the layout generator).
    pub const NAMED: &[(&str, u32)] = &[
        ("LOW", Priority::Low as u32),
        ("NORMAL", Priority::Normal as u32),
        ("HIGH", Priority::High as u32),
        ("CRITICAL", Priority::Critical as u32),
    ];
}

impl TryFrom<u32> for Priority {
    type Error = MessageError;
    fn try_from(value: u32) -> Result<Self, MessageError> {
        match value {
            0 => Ok(Priority::Low),
            1 => Ok(Priority::Normal),
            2 => Ok(Priority::High),
            3 => Ok(Priority::Critical),
            _ => Err(MessageError::InvalidPriority { value, max: Priority::MAX }),
        }
    }
}

/// `[low, high]` words of a 64-bit value, as headers store them.
pub(crate) fn split_u64(v: u64) -> [u32; 2] {
    [v as u32, (v >> 32) as u32]
}

/// The 64-bit value of `[low, high]` words.
pub(crate) fn join_u64(words: [u32; 2]) -> u64 {
    u64::from(words[0]) | u64::from(words[1]) << 32
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn message_ids_are_unique_across_threads() {
        // More than one block per thread outside miri, so block hand-over is covered too.
        let per_thread = if cfg!(miri) { 50 } else { SEQUENCE_BLOCK as usize + 10_000 };
        let handles: Vec<_> = (0..4)
            .map(|_| std::thread::spawn(move || (0..per_thread).map(|_| MessageId::generate()).collect::<Vec<_>>()))
            .collect();
        let mut all: Vec<_> = handles.into_iter().flat_map(|h| h.join().unwrap()).collect();
        let n = all.len();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), n);
        // The high half is the process nonce: the same for every id of this process.
        assert!(all.windows(2).all(|w| w[0].0 >> 64 == w[1].0 >> 64));
        assert_ne!(CorrelationId::generate(), CorrelationId::generate());
        assert_ne!(CorrelationId::generate(), CorrelationId::NONE);
    }

    /// Ids drawn in two processes differ: the test re-runs itself as a child process, which prints
    /// the ids it draws.
    #[test]
    #[cfg_attr(miri, ignore = "miri cannot spawn processes")]
    fn message_ids_are_unique_across_processes() {
        const CHILD: &str = "RINGKERNEL_PRINT_MESSAGE_IDS";
        const NAME: &str = "message::identity::tests::message_ids_are_unique_across_processes";
        if std::env::var_os(CHILD).is_some() {
            for _ in 0..3 {
                println!("ID:{}", MessageId::generate());
            }
            return;
        }
        let output = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", NAME, "--nocapture", "--test-threads=1"])
            .env(CHILD, "1")
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        let stdout = String::from_utf8_lossy(&output.stdout);
        let child: Vec<u128> = stdout
            .lines()
            // The harness may print its own text on the same line before ours.
            .filter_map(|l| l.find("ID:").map(|at| &l[at + 3..]))
            .map(|hex| u128::from_str_radix(hex.get(..32).unwrap_or(hex), 16).unwrap())
            .collect();
        assert_eq!(child.len(), 3, "child printed: {stdout}");
        let ours: Vec<u128> = (0..3).map(|_| MessageId::generate().0).collect();
        assert_ne!(child[0] >> 64, ours[0] >> 64, "both processes drew the same nonce");
        for id in &child {
            assert!(!ours.contains(id));
        }
    }
}
