//! The slot codec: writing a header and payload into a slot, and reading one back with every check
//! a corrupt or hostile writer could fail. Nothing here panics on any input.
//!
//! Slots in shared memory are never validated in place: a reader first copies the slot into a
//! private [`SlotBuffer`] (the queue's `SharedSlot::copy_message_into`), then decodes the copy, so
//! a peer that rewrites the slot between the check and the use cannot change what was checked.
//! The checksum, too, is computed over the copy.

use super::identity::Priority;
use crate::aligned::AlignedBytes;
use crate::error::{MessageError, Result as RkResult};
use crate::layout::{
    MESSAGE_HEADER_BYTES, MESSAGE_HEADER_USED_BYTES, MESSAGE_MAGIC, MessageHeader, PROTOCOL_VERSION, flags,
};

const CRC32C: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI);

/// CRC32C (Castagnoli) of `bytes`, as stored in [`MessageHeader::checksum`].
pub fn crc32c(bytes: &[u8]) -> u32 {
    CRC32C.checksum(bytes)
}

/// Checks what a reader validates in a header before its payload: magic, version, flags,
/// priority, and that `payload_bytes` fits a slot's `capacity_bytes`. Senders call it before
/// committing a slot so that bad input is refused where it comes from.
#[inline]
pub fn check_header(header: &MessageHeader, payload_bytes: usize, capacity_bytes: usize) -> Result<(), MessageError> {
    if header.magic != MESSAGE_MAGIC {
        return Err(MessageError::BadMagic { found: header.magic, expected: MESSAGE_MAGIC });
    }
    if header.version != PROTOCOL_VERSION {
        return Err(MessageError::UnsupportedVersion { found: header.version, supported: PROTOCOL_VERSION });
    }
    let unknown = header.flags & !flags::ALL;
    if unknown != 0 {
        return Err(MessageError::UnknownFlags { flags: header.flags, unknown });
    }
    Priority::try_from(header.priority)?;
    if payload_bytes > capacity_bytes {
        return Err(MessageError::PayloadTooLarge {
            payload_bytes: u32::try_from(payload_bytes).unwrap_or(u32::MAX),
            capacity_bytes,
        });
    }
    Ok(())
}

/// Payload bytes a slot of `slot_len` bytes can carry.
///
/// # Errors
/// [`MessageError::SlotTooSmall`] when the slot cannot hold a header.
pub fn payload_capacity(slot_len: usize) -> Result<usize, MessageError> {
    slot_len
        .checked_sub(MESSAGE_HEADER_BYTES)
        .ok_or(MessageError::SlotTooSmall { len: slot_len, header_bytes: MESSAGE_HEADER_BYTES })
}

/// Writes the header of a slot whose payload (`payload_bytes` bytes after the header) is already
/// in place: sets `payload_bytes`, and `checksum` (over the payload in the slot) when the header has
/// [`flags::CHECKSUM`]. Writes only the header's used bytes; the padding is left as it is (rings
/// zero it when they are created). This is the zero-copy send path: write the payload straight
/// into the slot, then seal it.
///
/// # Errors
/// [`MessageError::SlotTooSmall`], or any error of [`check_header`]; the slot is then untouched.
#[inline]
pub fn seal_slot(slot: &mut [u8], header: &MessageHeader, payload_bytes: usize) -> Result<(), MessageError> {
    check_header(header, payload_bytes, payload_capacity(slot.len())?)?;
    seal_checked(slot, header, payload_bytes);
    Ok(())
}

/// Copies `payload` into the slot's payload area and seals `header` over it: [`seal_slot`] for a
/// payload that is not in the slot yet. For ring slots (their header padding was zeroed when the
/// ring was created); [`encode_slot`] accepts any buffer.
///
/// # Errors
/// [`MessageError::SlotTooSmall`], or any error of [`check_header`]; the slot is then untouched.
#[inline]
pub fn write_slot(slot: &mut [u8], header: &MessageHeader, payload: &[u8]) -> Result<(), MessageError> {
    check_header(header, payload.len(), payload_capacity(slot.len())?)?;
    slot[MESSAGE_HEADER_BYTES..MESSAGE_HEADER_BYTES + payload.len()].copy_from_slice(payload);
    seal_checked(slot, header, payload.len());
    Ok(())
}

/// [`seal_slot`] once the header has been checked against the slot.
#[inline]
fn seal_checked(slot: &mut [u8], header: &MessageHeader, payload_bytes: usize) {
    let checksum = if header.flags & flags::CHECKSUM != 0 {
        crc32c(&slot[MESSAGE_HEADER_BYTES..MESSAGE_HEADER_BYTES + payload_bytes])
    } else {
        0
    };
    slot[..MESSAGE_HEADER_USED_BYTES].copy_from_slice(&bytemuck::bytes_of(header)[..MESSAGE_HEADER_USED_BYTES]);
    let word =
        |slot: &mut [u8], offset: usize, value: u32| slot[offset..offset + 4].copy_from_slice(&value.to_le_bytes());
    word(slot, std::mem::offset_of!(MessageHeader, payload_bytes), payload_bytes as u32);
    word(slot, std::mem::offset_of!(MessageHeader, checksum), checksum);
}

/// Writes `header` and `payload` into `slot`: sets `payload_bytes`, and `checksum` when the header
/// has [`flags::CHECKSUM`], and zeroes any non-zero header padding (this function accepts any
/// buffer; ring slots are zeroed once when the ring is created and use [`seal_slot`]). Bytes of the
/// slot past the payload are left as they were.
///
/// # Errors
/// [`MessageError::SlotTooSmall`], or any error of [`check_header`]; the slot is then untouched.
pub fn encode_slot(slot: &mut [u8], header: &MessageHeader, payload: &[u8]) -> Result<(), MessageError> {
    write_slot(slot, header, payload)?;
    let padding = &mut slot[MESSAGE_HEADER_USED_BYTES..MESSAGE_HEADER_BYTES];
    // An OR over all bytes (no early exit) compiles to a few vector instructions.
    if padding.iter().fold(0u8, |any, byte| any | byte) != 0 {
        padding.fill(0);
    }
    Ok(())
}

/// A validated slot: a copy of its header and a view of its payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodedSlot<'a> {
    /// The header (copied: slot memory may be unaligned or shared).
    pub header: MessageHeader,
    /// Exactly `header.payload_bytes` bytes.
    pub payload: &'a [u8],
}

/// Reads and validates a slot in private memory: length, magic, version, flags, priority, payload
/// bounds and (when flagged) checksum. Does not look at the deadline; see [`decode_slot_at`].
/// Reads only the header's used bytes; the padding reads as zero whatever it holds.
pub fn decode_slot(slot: &[u8]) -> Result<DecodedSlot<'_>, MessageError> {
    let capacity_bytes = payload_capacity(slot.len())?;
    let mut header: MessageHeader = bytemuck::Zeroable::zeroed();
    bytemuck::bytes_of_mut(&mut header)[..MESSAGE_HEADER_USED_BYTES]
        .copy_from_slice(&slot[..MESSAGE_HEADER_USED_BYTES]);
    let payload = checked_payload(&header, slot, capacity_bytes)?;
    Ok(DecodedSlot { header, payload })
}

/// Checks `header` as a reader would and returns the payload it describes in `slot`, its checksum
/// verified when flagged.
#[inline]
fn checked_payload<'a>(
    header: &MessageHeader,
    slot: &'a [u8],
    capacity_bytes: usize,
) -> Result<&'a [u8], MessageError> {
    let payload_bytes = header.payload_bytes as usize;
    check_header(header, payload_bytes, capacity_bytes)?;
    let payload = &slot[MESSAGE_HEADER_BYTES..MESSAGE_HEADER_BYTES + payload_bytes];
    if header.flags & flags::CHECKSUM != 0 {
        let computed = crc32c(payload);
        if computed != header.checksum {
            return Err(MessageError::ChecksumMismatch { expected: header.checksum, computed });
        }
    }
    Ok(payload)
}

/// [`decode_slot`], then rejects a message whose deadline is before `now_ns` (ns since the Unix
/// epoch) with [`MessageError::DeadlineExpired`].
pub fn decode_slot_at(slot: &[u8], now_ns: u64) -> Result<DecodedSlot<'_>, MessageError> {
    let decoded = decode_slot(slot)?;
    if let Some(deadline_ns) = decoded.header.deadline_ns()
        && now_ns > deadline_ns
    {
        return Err(MessageError::DeadlineExpired { deadline_ns, now_ns });
    }
    Ok(decoded)
}

/// Which part of a header a reader copies out of shared memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderPart {
    /// The 64-byte hot line: everything needed to validate and route. `message_id` and
    /// `dest_kernel` read as zero. A small message then costs two cache lines.
    Hot,
    /// Every used byte, `message_id` and `dest_kernel` included (one more cache line).
    Used,
}

/// A private, 16-byte aligned copy of one slot: what a reader decodes instead of the shared slot.
/// Allocated once per ring end and reused for every message (no allocation per message).
#[derive(Debug, Clone)]
pub struct SlotBuffer {
    bytes: AlignedBytes,
}

impl SlotBuffer {
    /// A buffer for slots of `slot_bytes` bytes.
    ///
    /// # Errors
    /// [`crate::error::RingKernelError::AllocationFailed`] when the memory is not there.
    pub fn new(slot_bytes: usize) -> RkResult<Self> {
        Ok(Self { bytes: AlignedBytes::zeroed(slot_bytes, "a private slot buffer")? })
    }

    /// Bytes per slot.
    pub fn slot_bytes(&self) -> usize {
        self.bytes.len()
    }

    /// The copy.
    pub fn as_slice(&self) -> &[u8] {
        self.bytes.as_slice()
    }

    /// The copy, writable: only the queues' copy-out writes it, so that the header padding stays
    /// zero and a view never shows another message's bytes.
    pub(crate) fn as_mut_slice(&mut self) -> &mut [u8] {
        self.bytes.as_mut_slice()
    }

    /// Sets the copied header's `dest_kernel`: a reader that copied only the hot line but knows
    /// whom the message is for (the host, for everything in an output ring) fills it in.
    pub fn set_dest_kernel(&mut self, kernel: u32) {
        let at = std::mem::offset_of!(MessageHeader, dest_kernel);
        if let Some(word) = self.bytes.as_mut_slice().get_mut(at..at + 4) {
            word.copy_from_slice(&kernel.to_le_bytes());
        }
    }

    /// Validates the copy (see [`decode_slot`]).
    pub fn decode(&self) -> Result<DecodedSlot<'_>, MessageError> {
        decode_slot(self.as_slice())
    }

    /// Validates the copy like [`SlotBuffer::decode`] and lends it as a [`MessageView`], without
    /// copying the header again.
    #[inline]
    pub fn view(&self) -> Result<MessageView<'_>, MessageError> {
        let bytes = self.as_slice();
        let capacity_bytes = payload_capacity(bytes.len())?;
        // The buffer is 64-byte aligned and holds a whole header: its first bytes are one. What
        // was not copied out of the slot (the padding, and `message_id`/`dest_kernel` for a hot-line
        // copy) is zero.
        let header: &MessageHeader = bytemuck::from_bytes(&bytes[..MESSAGE_HEADER_BYTES]);
        let payload = checked_payload(header, bytes, capacity_bytes)?;
        Ok(MessageView { header, payload })
    }
}

/// A validated message lent by reference: its header and payload in a private copy. What the
/// zero-copy receive path ([`crate::runtime::KernelHandle::receive_with`]) hands out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageView<'a> {
    /// The header. A message the host read from an output ring carries only the hot line:
    /// `message_id` reads as 0 there, and `dest_kernel` as the host (`RK_HOST_KERNEL_ID`).
    pub header: &'a MessageHeader,
    /// Exactly `header.payload_bytes` bytes.
    pub payload: &'a [u8],
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::hlc::HlcTimestamp;
    use crate::message::{CorrelationId, Envelope, HeaderBuilder};
    use proptest::prelude::*;

    fn slot_with(payload: &[u8], checksum: bool, capacity: usize) -> Vec<u8> {
        let mut slot = vec![0u8; MESSAGE_HEADER_BYTES + capacity];
        let header = HeaderBuilder::new(7).checksum(checksum).build();
        encode_slot(&mut slot, &header, payload).unwrap();
        slot
    }

    fn write_word(slot: &mut [u8], offset: usize, value: u32) {
        slot[offset..offset + 4].copy_from_slice(&value.to_le_bytes());
    }

    #[test]
    fn round_trip_keeps_every_field() {
        let ts = HlcTimestamp::new(0x1234_5678_9abc_def0, 17, 3);
        let header = HeaderBuilder::new(99)
            .correlation_id(CorrelationId(0xfeed_beef_0000_0001))
            .source_kernel(4)
            .dest_kernel(5)
            .priority(Priority::High)
            .timestamp(ts)
            .deadline_ns(u64::MAX - 1)
            .checksum(true)
            .build();
        let mut slot = vec![0u8; 256 + 16];
        encode_slot(&mut slot, &header, &[1, 2, 3]).unwrap();
        let decoded = decode_slot_at(&slot, 5).unwrap();
        assert_eq!(decoded.payload, &[1, 2, 3]);
        let h = decoded.header;
        assert_eq!(h.message_id(), header.message_id());
        assert_eq!(h.correlation_id(), CorrelationId(0xfeed_beef_0000_0001));
        assert_eq!((h.source_kernel, h.dest_kernel, h.priority()), (4, 5, Priority::High));
        assert_eq!(h.timestamp(), ts);
        assert_eq!(h.deadline_ns(), Some(u64::MAX - 1));
        assert_eq!(h.checksum, crc32c(&[1, 2, 3]));
    }

    #[test]
    fn crc32c_matches_the_standard_check_value() {
        // CRC-32C check value from the Castagnoli / iSCSI specification.
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
    }

    #[test]
    fn every_malformed_field_has_its_own_error() {
        use crate::error::codes;
        let good = slot_with(b"abcd", true, 16);
        let offset = |name: &str| {
            <MessageHeader as crate::layout::DeviceStruct>::DESC.fields.iter().find(|f| f.name == name).unwrap().offset
        };
        type Corruption = Box<dyn Fn(&mut Vec<u8>)>;
        let (magic, version, flags_at, priority, length) =
            (offset("magic"), offset("version"), offset("flags"), offset("priority"), offset("payload_bytes"));
        let cases: Vec<(Corruption, u32)> = vec![
            (Box::new(|s| s.truncate(100)), codes::SLOT_TOO_SMALL),
            (Box::new(move |s| write_word(s, magic, 0)), codes::BAD_MAGIC),
            (Box::new(move |s| write_word(s, version, 1)), codes::UNSUPPORTED_VERSION),
            (Box::new(move |s| write_word(s, flags_at, flags::CHECKSUM | 0x100)), codes::UNKNOWN_FLAGS),
            (Box::new(move |s| write_word(s, priority, 4)), codes::INVALID_PRIORITY),
            (Box::new(move |s| write_word(s, length, 17)), codes::PAYLOAD_TOO_LARGE),
            (Box::new(|s| s[256] ^= 1), codes::CHECKSUM_MISMATCH),
        ];
        for (corrupt, code) in cases {
            let mut slot = good.clone();
            corrupt(&mut slot);
            let err = decode_slot(&slot).unwrap_err();
            assert_eq!(err.code(), code, "{err}");
        }
        assert!(decode_slot(&good).is_ok());
    }

    #[test]
    fn checksum_is_only_checked_when_flagged() {
        let mut slot = slot_with(b"abcd", false, 16);
        slot[256] ^= 0xff;
        assert_eq!(decode_slot(&slot).unwrap().payload[0], b'a' ^ 0xff);
    }

    #[test]
    fn deadline_is_enforced() {
        let mut slot = vec![0u8; 256];
        let header = HeaderBuilder::new(1).deadline_ns(1_000).build();
        encode_slot(&mut slot, &header, &[]).unwrap();
        assert!(decode_slot_at(&slot, 1_000).is_ok());
        assert_eq!(
            decode_slot_at(&slot, 1_001).unwrap_err(),
            MessageError::DeadlineExpired { deadline_ns: 1_000, now_ns: 1_001 }
        );
        // No deadline: never expires.
        let slot = slot_with(b"", false, 0);
        assert!(decode_slot_at(&slot, u64::MAX).is_ok());
    }

    #[test]
    fn encode_refuses_what_does_not_fit_and_leaves_the_slot_alone() {
        let mut slot = vec![0xAAu8; 256 + 16];
        let header = HeaderBuilder::new(1).build();
        let err = encode_slot(&mut slot, &header, &[0u8; 17]).unwrap_err();
        assert_eq!(err, MessageError::PayloadTooLarge { payload_bytes: 17, capacity_bytes: 16 });
        assert!(slot.iter().all(|&b| b == 0xAA));
        let err = encode_slot(&mut [0u8; 10], &header, &[]).unwrap_err();
        assert_eq!(err, MessageError::SlotTooSmall { len: 10, header_bytes: 256 });
    }

    /// The zero-copy path: the payload is written in place, then the header is sealed over it.
    #[test]
    fn sealing_a_slot_checksums_the_payload_in_place() {
        let mut slot = vec![0u8; 256 + 32];
        slot[256..261].copy_from_slice(b"hello");
        let header = HeaderBuilder::new(5).checksum(true).build();
        seal_slot(&mut slot, &header, 5).unwrap();
        let decoded = decode_slot(&slot).unwrap();
        assert_eq!(decoded.payload, b"hello");
        assert_eq!(decoded.header.checksum, crc32c(b"hello"));
        assert!(seal_slot(&mut slot, &header, 33).is_err(), "more payload than the slot holds");
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: if cfg!(miri) { 4 } else { 256 }, ..ProptestConfig::default() })]

        #[test]
        fn encode_then_decode_is_identity(
            payload in proptest::collection::vec(any::<u8>(), 0..200),
            extra in 0usize..64,
            checksum: bool,
            message_type: u32,
            correlation: u64,
            physical: u64,
            logical: u32,
        ) {
            let mut slot = vec![0u8; 256 + payload.len() + extra];
            let header = HeaderBuilder::new(message_type)
                .correlation_id(CorrelationId(correlation))
                .timestamp(HlcTimestamp::new(physical, logical, 1))
                .checksum(checksum)
                .build();
            encode_slot(&mut slot, &header, &payload).unwrap();
            let envelope = Envelope::decode_from(&slot).unwrap();
            prop_assert_eq!(&envelope.payload, &payload);
            prop_assert_eq!(envelope.header.correlation_id(), CorrelationId(correlation));
            prop_assert_eq!(envelope.header.timestamp(), HlcTimestamp::new(physical, logical, 1));
        }

        #[test]
        fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = decode_slot_at(&bytes, 12345);
        }

        #[test]
        fn any_single_bit_flip_in_a_checksummed_payload_is_caught(
            payload in proptest::collection::vec(any::<u8>(), 1..64),
            bit in 0usize..512,
        ) {
            let mut slot = slot_with(&payload, true, 64);
            let bit = bit % (payload.len() * 8);
            slot[256 + bit / 8] ^= 1 << (bit % 8);
            let is_checksum_mismatch = matches!(decode_slot(&slot), Err(MessageError::ChecksumMismatch { .. }));
            prop_assert!(is_checksum_mismatch);
        }
    }

    /// Readers ignore the reserved padding; the general encoder clears any non-zero padding, so a
    /// buffer once written by a foreign producer is clean again after its next use.
    #[test]
    fn header_padding_is_reserved() {
        let header = HeaderBuilder::new(3).build();
        let mut slot = vec![0u8; MESSAGE_HEADER_BYTES + 16];
        encode_slot(&mut slot, &header, b"abc").unwrap();
        slot[MESSAGE_HEADER_USED_BYTES..MESSAGE_HEADER_BYTES].fill(0xee);
        let decoded = decode_slot(&slot).unwrap();
        assert_eq!(decoded.header.message_type, 3);
        let padding = MESSAGE_HEADER_BYTES - MESSAGE_HEADER_USED_BYTES;
        assert_eq!(bytemuck::bytes_of(&decoded.header)[MESSAGE_HEADER_USED_BYTES..], vec![0u8; padding][..]);
        encode_slot(&mut slot, &header, b"abc").unwrap();
        assert!(slot[MESSAGE_HEADER_USED_BYTES..MESSAGE_HEADER_BYTES].iter().all(|b| *b == 0));
    }

    #[test]
    fn check_header_refuses_what_a_reader_would() {
        let good = HeaderBuilder::new(1).build();
        check_header(&good, 16, 16).unwrap();
        assert!(matches!(check_header(&good, 17, 16), Err(MessageError::PayloadTooLarge { .. })));
        let mut bad = good;
        bad.priority = 9;
        assert!(matches!(check_header(&bad, 0, 16), Err(MessageError::InvalidPriority { .. })));
        let mut slot = vec![0u8; MESSAGE_HEADER_BYTES + 16];
        assert!(encode_slot(&mut slot, &bad, b"").is_err(), "encode refuses it too");
        assert!(slot.iter().all(|b| *b == 0), "and writes nothing");
    }
}
