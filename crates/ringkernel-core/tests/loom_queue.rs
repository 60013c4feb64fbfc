//! loom model checks of the queue protocols: every interleaving of the real `spsc` and `mpsc`
//! code, with slot accesses tracked so that a producer and a consumer touching one slot without a
//! happens-before edge fails the check.
//!
//! Run: `RUSTFLAGS="--cfg loom" cargo test -p ringkernel-core --release --test loom_queue`
//! (CI sets no preemption bound, so the search is exhaustive; about 90 s on 2 cores).
#![cfg(loom)]

use loom::thread;
use ringkernel_core::layout::RingGeometry;
use ringkernel_core::queue::{PopError, SharedSlot, mpsc, spsc};

fn word(slot: SharedSlot<'_>) -> u32 {
    slot.read_u32(0)
}

fn byte(slot: SharedSlot<'_>) -> u8 {
    slot.read_u32(0) as u8
}

/// Pushes `1..=count` on a new thread, retrying while the ring is full, and receives them here,
/// checking the order; then checks that nothing more arrives.
fn push_and_receive_in_order(mut tx: spsc::Producer, mut rx: spsc::Consumer, count: u32) {
    let producer = thread::spawn(move || {
        for value in 1..=count {
            while tx.try_push(|slot| slot[..4].copy_from_slice(&value.to_le_bytes())).is_err() {
                thread::yield_now();
            }
        }
    });
    let mut expected = 1;
    while expected <= count {
        match rx.try_pop(word) {
            Ok(value) => {
                assert_eq!(value, expected);
                expected += 1;
            }
            Err(PopError::Empty) => thread::yield_now(),
            Err(error) => panic!("{error}"),
        }
    }
    producer.join().unwrap();
    assert_eq!(rx.try_pop(word), Err(PopError::Empty));
}

/// One producer pushes three values through a two-slot ring (so it must wrap and meet "full");
/// the consumer receives all three, in order.
#[test]
fn spsc_delivers_in_order_across_wraparound() {
    loom::model(|| {
        let (tx, rx) = spsc::channel(RingGeometry::new(2, 16).unwrap()).unwrap();
        push_and_receive_in_order(tx, rx, 3);
    });
}

/// The consumer publishes `head` only every 2 messages (here: the whole ring) or when it finds the
/// ring empty. Pushing 4 values through 2 slots, the producer never overwrites an unread slot and
/// every value arrives in order.
#[test]
fn spsc_batched_head_publication_never_deadlocks_or_overwrites() {
    loom::model(|| {
        let (tx, mut rx) = spsc::channel(RingGeometry::new(2, 16).unwrap()).unwrap();
        rx.set_release_batch(2);
        push_and_receive_in_order(tx, rx, 4);
    });
}

/// Chunked writes and reads follow the same protocol: a chunk's slots become visible together.
#[test]
fn spsc_chunks_publish_atomically() {
    loom::model(|| {
        let (mut tx, mut rx) = spsc::channel(RingGeometry::new(2, 16).unwrap()).unwrap();
        let producer = thread::spawn(move || {
            let mut chunk = tx.write_chunk(2).unwrap();
            chunk.slot_mut(0)[..4].copy_from_slice(&10u32.to_le_bytes());
            chunk.slot_mut(1)[..4].copy_from_slice(&11u32.to_le_bytes());
            chunk.commit_all();
        });
        let mut seen = Vec::new();
        while seen.len() < 2 {
            let chunk = rx.read_chunk(2).unwrap();
            // Never half a chunk: the commit publishes both slots with one store.
            assert!(chunk.is_empty() || chunk.len() == 2);
            for i in 0..chunk.len() {
                seen.push(word(chunk.slot(i)));
            }
            chunk.release_all();
            thread::yield_now();
        }
        producer.join().unwrap();
        assert_eq!(seen, [10, 11]);
    });
}

/// Two producers race for a two-slot inbox. Every accepted message arrives exactly once, each
/// producer's in its order; a refused send (full) is never delivered and never overwrites.
#[test]
fn mpsc_two_producers_no_loss_no_overwrite() {
    loom::model(|| {
        let (tx, mut rx) = mpsc::channel(RingGeometry::new(2, 16).unwrap()).unwrap();
        let producers: Vec<_> = (0..2u32)
            .map(|p| {
                let tx = tx.clone();
                thread::spawn(move || {
                    let mut accepted = Vec::new();
                    for i in 0..2u32 {
                        let value = p * 10 + i;
                        if tx.try_push(p, |slot| slot[..4].copy_from_slice(&value.to_le_bytes())).is_ok() {
                            accepted.push(value);
                        }
                    }
                    accepted
                })
            })
            .collect();
        drop(tx);
        let mut received = Vec::new();
        // Receive concurrently with the producers for a while…
        for _ in 0..2 {
            if let Ok(value) = rx.try_pop(word) {
                received.push(value);
            }
            thread::yield_now();
        }
        let accepted: Vec<Vec<u32>> = producers.into_iter().map(|h| h.join().unwrap()).collect();
        // …then drain: every claimed slot is published once its producer has returned.
        while let Ok(value) = rx.try_pop(word) {
            received.push(value);
        }
        for (p, values) in accepted.iter().enumerate() {
            let from_p: Vec<u32> = received.iter().copied().filter(|v| v / 10 == p as u32).collect();
            assert_eq!(&from_p, values, "producer {p}");
        }
        assert_eq!(received.len(), accepted.iter().map(Vec::len).sum::<usize>());
        // With 2 slots and at most 2 receives in flight, at least 2 of the 4 sends fit.
        assert!(received.len() >= 2);
    });
}

/// A full inbox refuses the send, and space freed by the consumer is reusable on the next lap.
/// (With one slot this model failed: "published on lap n" equals "free on lap n + 1", so inboxes
/// now require at least two slots.)
#[test]
fn mpsc_full_then_reuse_after_receive() {
    loom::model(|| {
        let (tx, mut rx) = mpsc::channel(RingGeometry::new(2, 16).unwrap()).unwrap();
        tx.try_push(0, |slot| slot[0] = 1).unwrap();
        tx.try_push(0, |slot| slot[0] = 2).unwrap();
        let tx2 = tx.clone();
        let producer = thread::spawn(move || {
            while tx2.try_push(1, |slot| slot[0] = 3).is_err() {
                thread::yield_now();
            }
        });
        let first = loop {
            if let Ok(v) = rx.try_pop(byte) {
                break v;
            }
            thread::yield_now();
        };
        assert_eq!(first, 1, "the queued message is never overwritten");
        producer.join().unwrap();
        assert_eq!(rx.try_pop(byte), Ok(2));
        assert_eq!(rx.try_pop(byte), Ok(3));
    });
}

/// The control handshake: once the host has seen the device acknowledge a deactivation, the device
/// handles nothing more. The device polls the control block before each message, as every
/// backend's loop does; the host deactivates and waits for the acknowledgement.
#[test]
fn control_handshake_stops_the_device_before_deactivate_returns() {
    use loom::sync::Arc;
    use loom::sync::atomic::{AtomicU32, Ordering};
    use ringkernel_core::control::{ControlConfig, SharedControl};

    loom::model(|| {
        let geometry = RingGeometry::new(2, 16).unwrap();
        let control = SharedControl::new(ControlConfig { input: geometry, output: geometry, kernel_id: 1, node_id: 1 });
        control.activate();
        let handled = Arc::new(AtomicU32::new(0));
        let device = {
            let (control, handled) = (control.clone(), handled.clone());
            thread::spawn(move || {
                let mut seen = 0;
                let mut active = false;
                for _ in 0..3 {
                    if let Some(flags) = control.block().poll_control(seen) {
                        seen = flags.sequence;
                        active = flags.active;
                        control.block().acknowledge(flags.sequence);
                    }
                    if active {
                        // "Handle a message".
                        handled.fetch_add(1, Ordering::Relaxed);
                    }
                    thread::yield_now();
                }
                // Like every device loop, it keeps polling until it has seen the latest change.
                while let Some(flags) = control.block().poll_control(seen) {
                    seen = flags.sequence;
                    control.block().acknowledge(flags.sequence);
                }
            })
        };
        let sequence = control.deactivate();
        while !control.acknowledged(sequence) {
            thread::yield_now();
        }
        let at_return = handled.load(Ordering::Relaxed);
        device.join().unwrap();
        assert_eq!(handled.load(Ordering::Relaxed), at_return, "handled a message after deactivate returned");
    });
}

/// The wgpu pump's wake-up: a waker never leaves the waiter asleep, whether it wakes before the
/// waiter spins, while it spins, or after it decided to sleep (loom reports a deadlock if a
/// wake-up is lost).
#[test]
fn wake_flag_never_loses_a_wake_up() {
    use loom::sync::Arc;
    use ringkernel_core::wake::WakeFlag;

    loom::model(|| {
        let flag = Arc::new(WakeFlag::new());
        let waiter = {
            let flag = flag.clone();
            thread::spawn(move || {
                let mut spins = 1;
                flag.wait(
                    || {
                        spins -= 1;
                        spins >= 0
                    },
                    || false,
                );
            })
        };
        flag.wake();
        waiter.join().unwrap();
    });
}
