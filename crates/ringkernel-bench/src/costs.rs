//! The per-message costs the host engine removed, each measured on its own, in one run, against
//! the variant that pays it (used by the `cost_report` binary):
//!
//! * **wall clock** — HLC stamping with a wall-clock read per message (`tick`) against one per
//!   batch of 64 (`tick_many`);
//! * **allocation** — an [`Envelope`] built and read back per message (two heap allocations)
//!   against writing into a slot and reading a [`MessageView`]
//!   (none);
//! * **padding** — the general encoder, which checks the 172 padding bytes of every header, against
//!   sealing a slot of a ring zeroed once at creation;
//! * **header lines** — between two threads, a consumer that copies the whole used header (the hot
//!   line plus `message_id`: three cache lines per small message) against one that copies the hot
//!   line (two);
//! * **engine** — one thread, a device answering inside `wake()`: the host engine's own CPU time per
//!   `call()`, per send + receive, and per message of a zero-copy batch, with no cross-core traffic.

use std::hint::black_box;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ringkernel::hlc::{HlcConfig, HybridClock};
use ringkernel::host::{Device, Doorbell, HostConfig, HostKernel, KernelParts};
use ringkernel::layout::{MESSAGE_HEADER_BYTES, MessageHeader, RingGeometry};
use ringkernel::memory::{DeviceEnds, KernelLayout, KernelMemory};
use ringkernel::message::{HeaderPart, SlotBuffer, decode_slot, encode_slot, seal_slot, write_slot};
use ringkernel::prelude::*;
use ringkernel::queue::spsc;

/// Nanoseconds per operation of `f` run `n` times.
fn per_op(n: u64, mut f: impl FnMut(u64)) -> f64 {
    let start = Instant::now();
    for i in 0..n {
        f(i);
    }
    start.elapsed().as_nanos() as f64 / n as f64
}

/// HLC stamps: (per message with a clock read each, per message within batches of 64).
pub fn wall_clock(n: u64) -> (f64, f64) {
    let clock = HybridClock::new(HlcConfig::new(1));
    let each = per_op(n, |_| {
        black_box(clock.tick());
    });
    let batched = per_op(n / 64, |_| {
        let first = clock.tick_many(64);
        for i in 0..64 {
            black_box(first.plus_logical(i));
        }
    }) / 64.0;
    (each, batched)
}

/// One message through a ring and back out, on one thread, as the engine moves it (payload
/// written into the slot, header sealed over it, hot line and payload copied out and validated):
/// (starting from an [`Envelope`] and ending in one, zero-copy throughout).
pub fn allocation(n: u64) -> (f64, f64) {
    let geometry = RingGeometry::for_messages(64, 16).expect("valid geometry");
    let (mut tx, mut rx) = spsc::channel(geometry).expect("a small ring fits in memory");
    let mut buffer = SlotBuffer::new(geometry.slot_bytes() as usize).expect("a slot fits in memory");
    let mut through = |header: &MessageHeader, payload: &[u8], buffer: &mut SlotBuffer| {
        tx.try_push(|slot| {
            write_slot(slot, header, payload).expect("fits");
        })
        .expect("room");
        rx.try_pop(|slot| slot.copy_message_into(buffer, HeaderPart::Hot)).expect("published");
    };
    let envelopes = per_op(n, |i| {
        let request = Envelope::new(1, i.to_le_bytes());
        through(&request.header, &request.payload, &mut buffer);
        let received = Envelope::from_view(&buffer.view().expect("valid"));
        black_box(received.payload[0]);
    });
    let template = HeaderBuilder::new(1).build();
    let zero_copy = per_op(n, |i| {
        through(&template, &i.to_le_bytes(), &mut buffer);
        black_box(buffer.view().expect("valid").payload[0]);
    });
    (envelopes, zero_copy)
}

/// Writing a header and payload into a slot: (encoder checking the padding, sealing a clean slot).
pub fn padding(n: u64) -> (f64, f64) {
    let mut slot = vec![0u8; MESSAGE_HEADER_BYTES + 16];
    let header = HeaderBuilder::new(1).build();
    let checked = per_op(n, |i| {
        encode_slot(&mut slot, &header, &i.to_le_bytes()).expect("fits");
        black_box(&slot);
    });
    let sealed = per_op(n, |i| {
        slot[MESSAGE_HEADER_BYTES..MESSAGE_HEADER_BYTES + 8].copy_from_slice(&i.to_le_bytes());
        seal_slot(&mut slot, &header, 8).expect("fits");
        black_box(&slot);
    });
    black_box(decode_slot(&slot).is_ok());
    (checked, sealed)
}

/// Messages between two threads, M msg/s: (consumer copies the used header, the hot line only).
pub fn header_lines(n: u64) -> (f64, f64) {
    let run = |part: HeaderPart| {
        let geometry = RingGeometry::for_messages(1024, 16).expect("valid geometry");
        let (mut tx, mut rx) = spsc::channel(geometry).expect("a small ring fits in memory");
        let header = HeaderBuilder::new(1).build();
        let start = Instant::now();
        let producer = std::thread::spawn(move || {
            for i in 0..n {
                while tx
                    .try_push(|slot| {
                        slot[MESSAGE_HEADER_BYTES..MESSAGE_HEADER_BYTES + 8].copy_from_slice(&i.to_le_bytes());
                        seal_slot(slot, &header, 8).expect("fits");
                    })
                    .is_err()
                {
                    std::hint::spin_loop();
                }
            }
        });
        let mut buffer = SlotBuffer::new(geometry.slot_bytes() as usize).expect("a slot fits in memory");
        let mut received = 0;
        while received < n {
            if rx.try_pop(|slot| slot.copy_message_into(&mut buffer, part)).is_ok() {
                let view = buffer.view().expect("valid");
                assert_eq!(view.payload, received.to_le_bytes());
                received += 1;
            } else {
                std::hint::spin_loop();
            }
        }
        producer.join().expect("producer finished");
        n as f64 / start.elapsed().as_secs_f64() / 1e6
    };
    (run(HeaderPart::Used), run(HeaderPart::Hot))
}

/// A device that answers inside `wake()`, on the caller's thread: what is left of a round trip is
/// the host engine's own work (plus this echo's).
struct InlineEcho {
    ends: Mutex<(DeviceEnds, SlotBuffer)>,
}

// SAFETY: it never reports a stop, and touches the kernel's memory only inside `wake`.
unsafe impl Device for InlineEcho {
    fn wake(&self) {
        let mut guard = self.ends.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let (ends, buffer) = &mut *guard;
        while ends.input.try_pop(|slot| slot.copy_message_into(buffer, HeaderPart::Hot)).is_ok() {
            let request = buffer.view().expect("the engine writes valid slots");
            let reply = request.header.reply(request.header.message_type);
            let payload = request.payload;
            ends.output
                .try_push(|slot| {
                    write_slot(slot, &reply, payload).expect("fits");
                })
                .expect("room for the reply");
        }
    }
}

/// The engine's CPU time, one thread, device inline: ns per (call, send + receive, zero-copy
/// message in batches of 64).
pub fn engine(n: u64) -> (f64, f64, f64) {
    let ring = RingGeometry::for_messages(1024, 16).expect("valid geometry");
    let layout = KernelLayout::new(ring, ring, None).expect("valid layout");
    let (host, device) = KernelMemory::allocate(layout, 5, 5).expect("fits in memory").split();
    let buffer = SlotBuffer::new(ring.slot_bytes() as usize).expect("a slot fits in memory");
    let kernel = HostKernel::new(KernelParts {
        id: KernelId::from("inline-echo"),
        number: 5,
        memory: host,
        device: Arc::new(InlineEcho { ends: Mutex::new((device, buffer)) }),
        doorbell: Arc::new(Doorbell::new()),
        clock: Arc::new(HybridClock::new(HlcConfig::new(0))),
        config: HostConfig::default(),
        auto_activate: true,
    })
    .expect("fits in memory");
    let handle = KernelHandle::engine(kernel);
    let tokio = tokio::runtime::Builder::new_current_thread().enable_time().build().expect("a Tokio runtime");
    let timeout = Duration::from_secs(1);
    tokio.block_on(async {
        let start = Instant::now();
        for i in 0..n {
            let reply = handle.call(Envelope::new(1, i.to_le_bytes()), timeout).await.expect("echo answers");
            assert_eq!(reply.payload, i.to_le_bytes());
        }
        let call = start.elapsed().as_nanos() as f64 / n as f64;
        let start = Instant::now();
        for i in 0..n {
            handle.send(Envelope::new(1, i.to_le_bytes())).await.expect("room");
            let reply = handle.receive_timeout(timeout).await.expect("echo answers");
            assert_eq!(reply.payload, i.to_le_bytes());
        }
        let send_receive = start.elapsed().as_nanos() as f64 / n as f64;
        let start = Instant::now();
        let (mut sent, mut received) = (0u64, 0u64);
        while received < n {
            let first = sent;
            sent += handle
                .send_with((n - sent).min(64) as usize, |i, message| {
                    message.set_message_type(1);
                    message.payload_mut(8)?.copy_from_slice(&(first + i as u64).to_le_bytes());
                    Ok(())
                })
                .expect("room") as u64;
            handle
                .receive_with(64, timeout, |reply| {
                    assert_eq!(reply.payload, received.to_le_bytes());
                    received += 1;
                })
                .await
                .expect("echo answers");
        }
        let zero_copy = start.elapsed().as_nanos() as f64 / n as f64;
        (call, send_receive, zero_copy)
    })
}
