//! The slot check: one word that lets a device read a host → device slot in the same round trip
//! as the ring's tail and still know that what it read is the message the host published there,
//! whole.
//!
//! A GPU reading host memory pays about a microsecond per round trip over the bus. Reading the
//! tail first and the slot after it costs two; reading both at once costs one, but the slot may
//! then be read before the host finished writing it, or still hold the message of the previous
//! lap. The host therefore writes, with every input slot, a check word over the slot's ring
//! position, its header's hot line and its first payload line ([`slot_check`]); the device accepts
//! a slot read together with a tail that covers it only if the word matches what it read, and
//! reads it again otherwise (the tail it has seen proves the slot published, so the second read
//! is the two-round-trip path, never a wrong message).
//!
//! What it catches, by construction: the previous lap's message (or a zeroed slot) always fails,
//! because the position enters through a bijective term and everything else is unchanged; a slot
//! whose lines were read at different moments (some written, some not) fails unless the changed
//! words' terms happen to cancel, a chance of about 2⁻³² per such read — and such reads happen only
//! in the few nanoseconds between the host's slot writes and its tail store. It is not a
//! checksum of the payload ([`flags::CHECKSUM`](crate::layout::flags::CHECKSUM) is, and is still
//! verified) and not a defence against a hostile host.
//!
//! The function is a sum of independent per-word terms, so that a warp computes it in parallel,
//! one word per lane, and reduces with shuffles. Device code mirrors it exactly (the CUDA
//! template's `rk_slot_check_term`; a test compiles that with the host compiler and compares).

use crate::layout::{MESSAGE_HEADER_BYTES, MESSAGE_HEADER_HOT_BYTES, MessageHeader};

/// Payload bytes a slot check covers: the first payload line (a device reads the rest of a
/// longer payload only after it has seen the tail, which orders it).
pub const SLOT_CHECK_PAYLOAD_BYTES: usize = 64;

/// Key of word `index`: a multiple of the golden-ratio constant, so that equal words at different
/// places give different terms.
const KEY_STEP: u32 = 0x9E37_79B9;

/// A bijection of 32-bit words with good avalanche (MurmurHash3's finaliser).
#[inline]
const fn mix(mut h: u32) -> u32 {
    h ^= h >> 16;
    h = h.wrapping_mul(0x85EB_CA6B);
    h ^= h >> 13;
    h = h.wrapping_mul(0xC2B2_AE35);
    h ^ (h >> 16)
}

/// The term of word `index` (0: the position, 1–16: the hot line's words, 17–32: the payload's).
#[inline]
pub const fn slot_check_term(word: u32, index: u32) -> u32 {
    mix(word ^ KEY_STEP.wrapping_mul(index + 1))
}

/// The check word of the slot at ring position `position` (the producer's free-running counter):
/// the wrapping sum of the terms of the position, the 16 words of the header's hot line, and the
/// words of the first `min(payload_bytes, SLOT_CHECK_PAYLOAD_BYTES, capacity)` payload bytes (a
/// last partial word with its missing bytes read as zero), `payload_bytes` being the hot line's.
/// A slot shorter than a header gives the check of its position alone.
pub fn slot_check(position: u32, slot: &[u8]) -> u32 {
    check_covering(position, slot, SLOT_CHECK_PAYLOAD_BYTES)
}

/// [`slot_check`] over the whole payload (`min(payload_bytes, capacity)` bytes), for a reader that
/// reads the whole slot at once: a host reading an output ring whose device publishes the tail
/// without a fence (`ControlBlock::output_slot_checks`). Equal to [`slot_check`] for payloads of
/// at most [`SLOT_CHECK_PAYLOAD_BYTES`].
pub fn whole_slot_check(position: u32, slot: &[u8]) -> u32 {
    check_covering(position, slot, usize::MAX)
}

/// Whether the slot carries the [`whole_slot_check`] of position `position`.
pub fn whole_slot_check_matches(position: u32, slot: &[u8]) -> bool {
    slot.len() >= MESSAGE_HEADER_BYTES && stored_check(slot) == whole_slot_check(position, slot)
}

/// Writes the [`whole_slot_check`] of a slot whose every other byte is final.
pub fn write_whole_slot_check(position: u32, slot: &mut [u8]) {
    if slot.len() >= MESSAGE_HEADER_BYTES {
        let check = whole_slot_check(position, slot);
        let at = std::mem::offset_of!(MessageHeader, slot_check);
        slot[at..at + 4].copy_from_slice(&check.to_le_bytes());
    }
}

/// The check word a slot carries.
fn stored_check(slot: &[u8]) -> u32 {
    let at = std::mem::offset_of!(MessageHeader, slot_check);
    u32::from_le_bytes(slot[at..at + 4].try_into().expect("4 bytes"))
}

fn check_covering(position: u32, slot: &[u8], payload_limit: usize) -> u32 {
    let word = |offset: usize| u32::from_le_bytes(slot[offset..offset + 4].try_into().expect("4 bytes"));
    let mut check = slot_check_term(position, 0);
    if slot.len() < MESSAGE_HEADER_BYTES {
        return check;
    }
    for i in 0..MESSAGE_HEADER_HOT_BYTES / 4 {
        check = check.wrapping_add(slot_check_term(word(4 * i), 1 + i as u32));
    }
    let payload_bytes = word(std::mem::offset_of!(MessageHeader, payload_bytes)) as usize;
    let covered = payload_bytes.min(payload_limit).min(slot.len() - MESSAGE_HEADER_BYTES);
    for i in 0..covered.div_ceil(4) {
        let at = MESSAGE_HEADER_BYTES + 4 * i;
        let mut bytes = [0u8; 4];
        let present = (covered - 4 * i).min(4);
        bytes[..present].copy_from_slice(&slot[at..at + present]);
        check = check.wrapping_add(slot_check_term(u32::from_le_bytes(bytes), 17 + i as u32));
    }
    check
}

/// Writes the check word of a slot whose every other byte is final, at ring position `position`.
/// A slot shorter than a header is left as it is.
pub fn write_slot_check(position: u32, slot: &mut [u8]) {
    if slot.len() < MESSAGE_HEADER_BYTES {
        return;
    }
    let check = slot_check(position, slot);
    let at = std::mem::offset_of!(MessageHeader, slot_check);
    slot[at..at + 4].copy_from_slice(&check.to_le_bytes());
}

/// Whether the slot carries the check word of position `position`.
pub fn slot_check_matches(position: u32, slot: &[u8]) -> bool {
    slot.len() >= MESSAGE_HEADER_BYTES && stored_check(slot) == slot_check(position, slot)
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::message::{HeaderBuilder, encode_slot};
    use proptest::prelude::*;

    fn slot(payload: &[u8], capacity: usize) -> Vec<u8> {
        let mut slot = vec![0u8; MESSAGE_HEADER_BYTES + capacity];
        encode_slot(&mut slot, &HeaderBuilder::new(7).checksum(true).build(), payload).unwrap();
        slot
    }

    #[test]
    fn a_written_check_matches_its_position_only() {
        let mut s = slot(b"hello", 64);
        write_slot_check(41, &mut s);
        assert!(slot_check_matches(41, &s));
        assert!(!slot_check_matches(42, &s));
        // The previous lap of an 8-slot ring, or the next.
        assert!(!slot_check_matches(33, &s) && !slot_check_matches(49, &s));
    }

    #[test]
    fn the_words_it_covers_and_those_it_does_not() {
        let mut s = slot(&[5u8; 100], 128);
        write_slot_check(7, &mut s);
        let base = s.clone();
        // Every byte of the hot line and of the first payload line is covered...
        for at in (0..MESSAGE_HEADER_HOT_BYTES).chain(MESSAGE_HEADER_BYTES..MESSAGE_HEADER_BYTES + 64) {
            let mut torn = base.clone();
            torn[at] ^= 0x40;
            assert!(!slot_check_matches(7, &torn), "byte {at} is covered");
        }
        // ...the rest of the header and the payload past its first line are not (the device reads
        // those only after the tail).
        for at in [64, 80, 90, 255, MESSAGE_HEADER_BYTES + 64, MESSAGE_HEADER_BYTES + 99] {
            let mut other = base.clone();
            other[at] ^= 0x40;
            let check_at = std::mem::offset_of!(MessageHeader, slot_check);
            if !(check_at..check_at + 4).contains(&at) {
                assert!(slot_check_matches(7, &other), "byte {at} is not covered");
            }
        }
    }

    #[test]
    fn bytes_past_the_payload_do_not_count() {
        let mut a = slot(b"abc", 64);
        let mut b = a.clone();
        b[MESSAGE_HEADER_BYTES + 3..MESSAGE_HEADER_BYTES + 64].fill(0xEE);
        write_slot_check(1, &mut a);
        write_slot_check(1, &mut b);
        assert_eq!(slot_check(1, &a), slot_check(1, &b));
    }

    #[test]
    fn the_whole_slot_check_covers_every_payload_byte() {
        let mut s = slot(&[9u8; 200], 256);
        write_whole_slot_check(5, &mut s);
        assert!(whole_slot_check_matches(5, &s) && !whole_slot_check_matches(6, &s));
        for at in [0, 63, MESSAGE_HEADER_BYTES, MESSAGE_HEADER_BYTES + 64, MESSAGE_HEADER_BYTES + 199] {
            let mut torn = s.clone();
            torn[at] ^= 1;
            assert!(!whole_slot_check_matches(5, &torn), "byte {at} is covered");
        }
        // Up to one payload line, both checks are the same word.
        let small = slot(b"sixty-four or less", 64);
        assert_eq!(slot_check(3, &small), whole_slot_check(3, &small));
    }

    #[test]
    fn a_payload_size_beyond_the_slot_is_clamped() {
        let mut s = vec![0u8; MESSAGE_HEADER_BYTES + 16];
        s[16..20].copy_from_slice(&u32::MAX.to_le_bytes());
        write_slot_check(3, &mut s);
        assert!(slot_check_matches(3, &s));
        assert_eq!(slot_check(9, &[0u8; 10]), slot_check_term(9, 0));
    }

    proptest! {
        /// Any one word changed (a line read before the host wrote it) fails the check.
        #[test]
        fn any_single_changed_word_fails(
            payload in proptest::collection::vec(any::<u8>(), 0..64),
            position in any::<u32>(),
            word in 0usize..32,
            flip in 1u32..,
        ) {
            let mut s = slot(&payload, 64);
            write_slot_check(position, &mut s);
            let at = if word < 16 { 4 * word } else { MESSAGE_HEADER_BYTES + 4 * (word - 16) };
            let covered = word < 16 || 4 * (word - 16) < payload.len();
            let mut torn = s.clone();
            let old = u32::from_le_bytes(torn[at..at + 4].try_into().unwrap());
            // Only bytes inside the payload count: flip the first one, which is inside.
            torn[at..at + 4].copy_from_slice(&(old ^ (flip & 0xFF).max(1)).to_le_bytes());
            prop_assert_eq!(slot_check_matches(position, &torn), !covered);
        }

        /// The previous lap's complete message at the same slot never passes for the current one.
        #[test]
        fn a_stale_lap_never_passes(payload in proptest::collection::vec(any::<u8>(), 0..64), position in any::<u32>(), lap in 1u32..1024) {
            let mut s = slot(&payload, 64);
            write_slot_check(position, &mut s);
            prop_assert!(!slot_check_matches(position.wrapping_add(lap.wrapping_mul(8)), &s));
        }
    }
}
