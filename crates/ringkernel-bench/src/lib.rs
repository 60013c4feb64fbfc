//! Queue benchmarks shared by the criterion bench (`benches/queue.rs`) and the report binary
//! (`queue_report`), so that both measure exactly the same code.
//!
//! Every scenario moves 64-byte messages between two threads:
//!
//! * **throughput** — one thread pushes `n` messages, the other pops them; time until the last pop;
//! * **ping-pong** — a request ring and a reply ring; the echo thread returns each message; the
//!   caller times each round trip.
//!
//! The same scenarios run over RingKernel's SPSC ring (per item and in chunks), rtrb, and
//! crossbeam's `ArrayQueue`, in the same process, so that ratios compare like with like.

pub mod actor;
pub mod costs;
pub mod device;

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ringkernel_core::layout::RingGeometry;
use ringkernel_core::queue::{SharedSlot, spsc};

/// Bytes per message.
pub const MESSAGE_BYTES: usize = 64;
/// Ring capacity used by every queue.
pub const CAPACITY: usize = 1024;
/// Messages per chunk for the chunked variant.
pub const CHUNK: u32 = 64;

/// A queue implementation under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Queue {
    /// `ringkernel_core::queue::spsc`, one `try_push`/`try_pop` per message.
    RingKernel,
    /// `ringkernel_core::queue::spsc`, `write_chunk_up_to`/`read_chunk` of up to 64 messages.
    RingKernelChunked,
    /// `rtrb::RingBuffer<[u8; 64]>`, `push`/`pop` per message.
    Rtrb,
    /// `rtrb::RingBuffer<Aligned64>`: the same bytes in a 64-byte-aligned type, so that no
    /// message straddles two cache lines (as RingKernel's slots never do).
    RtrbAligned,
    /// `crossbeam_queue::ArrayQueue<[u8; 64]>`, `push`/`pop` per message.
    CrossbeamArrayQueue,
}

/// A 64-byte message aligned to a cache line.
#[derive(Debug, Clone, Copy)]
#[repr(C, align(64))]
pub struct Aligned64(pub [u8; MESSAGE_BYTES]);

impl Queue {
    /// Every queue, baseline last.
    pub const ALL: [Queue; 5] =
        [Queue::RingKernel, Queue::RingKernelChunked, Queue::Rtrb, Queue::RtrbAligned, Queue::CrossbeamArrayQueue];

    /// Short name.
    pub fn name(self) -> &'static str {
        match self {
            Queue::RingKernel => "ringkernel_spsc",
            Queue::RingKernelChunked => "ringkernel_spsc_chunked",
            Queue::Rtrb => "rtrb",
            Queue::RtrbAligned => "rtrb_aligned64",
            Queue::CrossbeamArrayQueue => "crossbeam_array_queue",
        }
    }
}

fn message(i: u64) -> [u8; MESSAGE_BYTES] {
    let mut m = [0u8; MESSAGE_BYTES];
    m[..8].copy_from_slice(&i.to_le_bytes());
    m
}

fn sequence(bytes: &[u8]) -> u64 {
    u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes"))
}

/// Copies a slot into an owned message (what a `pop` returning `[u8; 64]` does).
#[inline]
fn copy_out(slot: SharedSlot<'_>) -> [u8; MESSAGE_BYTES] {
    let mut message = [0u8; MESSAGE_BYTES];
    slot.read(0, &mut message);
    black_box(message)
}

/// A fresh ring of [`CAPACITY`] 64-byte slots.
fn ring() -> (spsc::Producer, spsc::Consumer) {
    spsc::channel(geometry()).expect("a small ring fits in memory")
}

fn geometry() -> RingGeometry {
    RingGeometry::new(CAPACITY as u32, MESSAGE_BYTES as u32).expect("valid geometry")
}

/// Moves `n` messages from one thread to another; returns the elapsed time. Panics if any message
/// is lost, duplicated or reordered.
pub fn throughput(queue: Queue, n: u64) -> Duration {
    match queue {
        Queue::RingKernel => {
            let (mut tx, mut rx) = ring();
            run_pair(
                move || {
                    for i in 0..n {
                        let m = message(i);
                        while tx.try_push(|slot| slot.copy_from_slice(&m)).is_err() {
                            std::hint::spin_loop();
                        }
                    }
                },
                move || {
                    let mut expected = 0;
                    while expected < n {
                        // Copy the whole message out, as rtrb's and crossbeam's `pop` do.
                        if let Ok(m) = rx.try_pop(copy_out) {
                            assert_eq!(sequence(&m), expected);
                            expected += 1;
                        } else {
                            std::hint::spin_loop();
                        }
                    }
                },
            )
        }
        Queue::RingKernelChunked => {
            let (mut tx, mut rx) = ring();
            run_pair(
                move || {
                    let mut i = 0;
                    while i < n {
                        let mut chunk =
                            tx.write_chunk_up_to(CHUNK.min((n - i) as u32)).expect("a well-behaved consumer");
                        let len = chunk.len();
                        for k in 0..len {
                            chunk.slot_mut(k).copy_from_slice(&message(i + u64::from(k)));
                        }
                        chunk.commit_all();
                        i += u64::from(len);
                        if len == 0 {
                            std::hint::spin_loop();
                        }
                    }
                },
                move || {
                    let mut expected = 0;
                    while expected < n {
                        let chunk = rx.read_chunk(CHUNK).expect("a well-behaved producer");
                        let len = chunk.len();
                        for k in 0..len {
                            assert_eq!(sequence(&copy_out(chunk.slot(k))), expected);
                            expected += 1;
                        }
                        chunk.release_all();
                        if len == 0 {
                            std::hint::spin_loop();
                        }
                    }
                },
            )
        }
        Queue::Rtrb => rtrb_throughput::<[u8; MESSAGE_BYTES]>(n),
        Queue::RtrbAligned => rtrb_throughput::<Aligned64>(n),
        Queue::CrossbeamArrayQueue => {
            let queue = Arc::new(crossbeam_queue::ArrayQueue::<[u8; MESSAGE_BYTES]>::new(CAPACITY));
            let rx = Arc::clone(&queue);
            run_pair(
                move || {
                    for i in 0..n {
                        let mut m = message(i);
                        while let Err(back) = queue.push(m) {
                            m = back;
                            std::hint::spin_loop();
                        }
                    }
                },
                move || {
                    let mut expected = 0;
                    while expected < n {
                        if let Some(m) = rx.pop() {
                            assert_eq!(sequence(&m), expected);
                            expected += 1;
                        } else {
                            std::hint::spin_loop();
                        }
                    }
                },
            )
        }
    }
}

/// Runs `producer` on a new thread and `consumer` on this one; times from start to the consumer's
/// end.
fn run_pair(producer: impl FnOnce() + Send + 'static, consumer: impl FnOnce()) -> Duration {
    let start = Instant::now();
    let handle = std::thread::spawn(producer);
    consumer();
    let elapsed = start.elapsed();
    handle.join().expect("producer panicked");
    elapsed
}

/// Two-thread ping-pong: `rounds` round trips, each timed. Returns the per-round-trip times in ns.
/// Panics if a reply does not match its request.
pub fn ping_pong(queue: Queue, rounds: usize) -> Vec<u64> {
    match queue {
        Queue::RingKernel | Queue::RingKernelChunked => {
            // A ping-pong carries one message at a time, so chunks change nothing: both names run
            // the per-item path.
            let (mut req_tx, mut req_rx) = ring();
            let (mut rep_tx, mut rep_rx) = ring();
            let echo = std::thread::spawn(move || {
                for _ in 0..rounds {
                    let m = loop {
                        if let Ok(m) = req_rx.try_pop(copy_out) {
                            break m;
                        }
                        std::hint::spin_loop();
                    };
                    while rep_tx.try_push(|slot| slot.copy_from_slice(&m)).is_err() {
                        std::hint::spin_loop();
                    }
                }
            });
            let mut times = Vec::with_capacity(rounds);
            for i in 0..rounds as u64 {
                let m = message(i);
                let start = Instant::now();
                req_tx.try_push(|slot| slot.copy_from_slice(&m)).expect("one in flight");
                let seq = loop {
                    if let Ok(m) = rep_rx.try_pop(copy_out) {
                        break sequence(&m);
                    }
                    std::hint::spin_loop();
                };
                times.push(start.elapsed().as_nanos() as u64);
                assert_eq!(seq, i);
            }
            echo.join().expect("echo panicked");
            times
        }
        Queue::Rtrb => rtrb_ping_pong::<[u8; MESSAGE_BYTES]>(rounds),
        Queue::RtrbAligned => rtrb_ping_pong::<Aligned64>(rounds),
        Queue::CrossbeamArrayQueue => {
            let req = Arc::new(crossbeam_queue::ArrayQueue::<[u8; MESSAGE_BYTES]>::new(CAPACITY));
            let rep = Arc::new(crossbeam_queue::ArrayQueue::<[u8; MESSAGE_BYTES]>::new(CAPACITY));
            let (req2, rep2) = (Arc::clone(&req), Arc::clone(&rep));
            let echo = std::thread::spawn(move || {
                for _ in 0..rounds {
                    let m = loop {
                        if let Some(m) = req2.pop() {
                            break m;
                        }
                        std::hint::spin_loop();
                    };
                    rep2.push(m).expect("one in flight");
                }
            });
            let mut times = Vec::with_capacity(rounds);
            for i in 0..rounds as u64 {
                let m = message(i);
                let start = Instant::now();
                req.push(m).expect("one in flight");
                let m = loop {
                    if let Some(m) = rep.pop() {
                        break m;
                    }
                    std::hint::spin_loop();
                };
                times.push(start.elapsed().as_nanos() as u64);
                assert_eq!(sequence(&m), i);
            }
            echo.join().expect("echo panicked");
            times
        }
    }
}

/// A 64-byte message type that rtrb carries by value.
trait Message64: Copy + Send + 'static {
    fn wrap(bytes: [u8; MESSAGE_BYTES]) -> Self;
    fn bytes(&self) -> &[u8; MESSAGE_BYTES];
}

impl Message64 for [u8; MESSAGE_BYTES] {
    fn wrap(bytes: [u8; MESSAGE_BYTES]) -> Self {
        bytes
    }
    fn bytes(&self) -> &[u8; MESSAGE_BYTES] {
        self
    }
}

impl Message64 for Aligned64 {
    fn wrap(bytes: [u8; MESSAGE_BYTES]) -> Self {
        Aligned64(bytes)
    }
    fn bytes(&self) -> &[u8; MESSAGE_BYTES] {
        &self.0
    }
}

/// Throughput over one rtrb ring of `T`.
fn rtrb_throughput<T: Message64>(n: u64) -> Duration {
    let (mut tx, mut rx) = rtrb::RingBuffer::<T>::new(CAPACITY);
    run_pair(
        move || {
            for i in 0..n {
                let mut m = T::wrap(message(i));
                while let Err(rtrb::PushError::Full(back)) = tx.push(m) {
                    m = back;
                    std::hint::spin_loop();
                }
            }
        },
        move || {
            let mut expected = 0;
            while expected < n {
                if let Ok(m) = rx.pop() {
                    assert_eq!(sequence(m.bytes()), expected);
                    expected += 1;
                } else {
                    std::hint::spin_loop();
                }
            }
        },
    )
}

/// Ping-pong over two rtrb rings of `T`.
fn rtrb_ping_pong<T: Message64>(rounds: usize) -> Vec<u64> {
    let (mut req_tx, mut req_rx) = rtrb::RingBuffer::<T>::new(CAPACITY);
    let (mut rep_tx, mut rep_rx) = rtrb::RingBuffer::<T>::new(CAPACITY);
    let echo = std::thread::spawn(move || {
        for _ in 0..rounds {
            let m = loop {
                if let Ok(m) = req_rx.pop() {
                    break m;
                }
                std::hint::spin_loop();
            };
            if rep_tx.push(m).is_err() {
                panic!("reply ring full with one message in flight");
            }
        }
    });
    let mut times = Vec::with_capacity(rounds);
    for i in 0..rounds as u64 {
        let m = T::wrap(message(i));
        let start = Instant::now();
        if req_tx.push(m).is_err() {
            panic!("request ring full with one message in flight");
        }
        let m = loop {
            if let Ok(m) = rep_rx.pop() {
                break m;
            }
            std::hint::spin_loop();
        };
        times.push(start.elapsed().as_nanos() as u64);
        assert_eq!(sequence(m.bytes()), i);
    }
    echo.join().expect("echo panicked");
    times
}

/// The `q`-quantile (0..=1) of `values` (sorted in place), nearest rank.
pub fn quantile(values: &mut [u64], q: f64) -> u64 {
    assert!(!values.is_empty(), "quantile of nothing");
    values.sort_unstable();
    let rank = ((q * values.len() as f64).ceil() as usize).clamp(1, values.len());
    black_box(values[rank - 1])
}

/// Median of floats (sorted in place).
pub fn median(values: &mut [f64]) -> f64 {
    assert!(!values.is_empty(), "median of nothing");
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len() % 2 == 1 { values[mid] } else { (values[mid - 1] + values[mid]) / 2.0 }
}

/// CPU model and core count, from /proc/cpuinfo where it exists.
pub fn machine_description() -> String {
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    format!("{model}, {cores} logical cores available")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_queue_moves_every_message_in_order() {
        for queue in Queue::ALL {
            throughput(queue, 10_000);
            assert_eq!(ping_pong(queue, 200).len(), 200);
        }
    }

    #[test]
    fn quantiles_use_nearest_rank() {
        let mut v: Vec<u64> = (1..=100).collect();
        assert_eq!(quantile(&mut v, 0.5), 50);
        assert_eq!(quantile(&mut v, 0.99), 99);
        assert_eq!(quantile(&mut v, 1.0), 100);
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 2.0, 3.0]), 2.5);
    }
}
