//! Fuzzes the decoder the engine and the actors use: arbitrary bytes are published into a real ring
//! slot (as a lying peer would write them), copied out of shared memory with `copy_message_into`
//! (hot line only, and the whole used header), and validated with `SlotBuffer::view`. It must never
//! panic; what it accepts must be consistent, agree with `decode_slot` on the same copy, and never
//! claim bytes beyond the slot.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringkernel_core::layout::{MESSAGE_HEADER_BYTES, RingGeometry};
use ringkernel_core::message::{decode_slot, encode_slot, HeaderBuilder, HeaderPart, SlotBuffer};
use ringkernel_core::queue::spsc;

fuzz_target!(|data: &[u8]| {
    // First byte: payload capacity in 16-byte units (0..=15); the rest is written into the slot.
    let (capacity, bytes) = match data.split_first() {
        Some((c, rest)) => (u32::from(*c % 16) * 16, rest),
        None => (0, data),
    };
    let geometry = RingGeometry::for_messages(2, capacity).expect("valid geometry");
    let slot_bytes = geometry.slot_bytes() as usize;
    let (mut tx, mut rx) = spsc::channel(geometry).expect("a small ring");
    let written = bytes.len().min(slot_bytes);
    tx.try_push(|slot| slot[..written].copy_from_slice(&bytes[..written])).expect("room");
    // A full, valid earlier message of 0xA5 bytes: its bytes must never leak into the next one.
    let mut earlier = vec![0u8; slot_bytes];
    let header = HeaderBuilder::new(9).build();
    encode_slot(&mut earlier, &header, &vec![0xA5; capacity as usize]).expect("fits");
    for part in [HeaderPart::Hot, HeaderPart::Used] {
        let mut buffer = SlotBuffer::new(slot_bytes).expect("a small buffer");
        let (mut etx, mut erx) = spsc::channel(geometry).expect("a small ring");
        etx.try_push(|slot| slot.copy_from_slice(&earlier)).expect("room");
        erx.try_pop(|slot| slot.copy_message_into(&mut buffer, HeaderPart::Used)).expect("published");
        rx.try_pop(|slot| slot.copy_message_into(&mut buffer, part)).expect("published");
        tx.try_push(|slot| slot[..written].copy_from_slice(&bytes[..written])).expect("room");
        let viewed = buffer.view();
        let decoded = decode_slot(buffer.as_slice());
        match (viewed, decoded) {
            (Ok(view), Ok(decoded)) => {
                assert_eq!(view.payload, decoded.payload);
                assert_eq!(*view.header, decoded.header);
                assert_eq!(view.payload.len(), view.header.payload_bytes as usize);
                assert!(MESSAGE_HEADER_BYTES + view.payload.len() <= slot_bytes);
                // The payload is the slot's, byte for byte (never the stale 0xA5 filling).
                let mut expected = vec![0u8; view.payload.len()];
                for (i, byte) in expected.iter_mut().enumerate() {
                    *byte = bytes.get(MESSAGE_HEADER_BYTES + i).copied().unwrap_or(0);
                }
                assert_eq!(view.payload, &expected[..]);
                if part == HeaderPart::Hot {
                    assert_eq!(view.header.message_id, [0; 4], "outside the hot line: not read");
                }
            }
            (Err(a), Err(b)) => assert_eq!(a, b),
            (a, b) => panic!("view and decode_slot disagree: {a:?} / {b:?}"),
        }
    }
});
