//! Fuzzes the slot decoder with arbitrary bytes: it must never panic, and whatever it accepts
//! must be self-consistent and survive a re-encode unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringkernel_core::layout::MESSAGE_HEADER_BYTES;
use ringkernel_core::message::{decode_slot, decode_slot_at, encode_slot, Envelope};

fuzz_target!(|data: &[u8]| {
    // The first 8 bytes choose "now" for the deadline check; the rest is the slot.
    let (now, slot) = match data.split_first_chunk::<8>() {
        Some((now, slot)) => (u64::from_le_bytes(*now), slot),
        None => (0, data),
    };
    let _ = decode_slot_at(slot, now);
    let _ = Envelope::decode_from(slot);
    if let Ok(decoded) = decode_slot(slot) {
        assert_eq!(decoded.payload.len(), decoded.header.payload_bytes as usize);
        assert!(MESSAGE_HEADER_BYTES + decoded.payload.len() <= slot.len());
        // Re-encoding what was accepted gives a slot that decodes to the same message.
        let mut again = vec![0u8; slot.len()];
        encode_slot(&mut again, &decoded.header, decoded.payload).expect("accepted message fits its own slot");
        let redecoded = decode_slot(&again).expect("re-encoded message is valid");
        let mut expected = decoded.header;
        if expected.flags & ringkernel_core::layout::flags::CHECKSUM == 0 {
            // Without the flag the checksum word carries no meaning; the encoder writes 0.
            expected.checksum = 0;
        }
        assert_eq!(redecoded.header, expected);
        assert_eq!(redecoded.payload, decoded.payload);
    }
});
