//! Message identities, priorities, and the slot codec.
//!
//! A slot is a [`MessageHeader`] followed by a payload area. [`encode_slot`] writes one;
//! [`decode_slot`] and [`decode_slot_at`] read one back and validate every field a corrupt or
//! hostile writer could get wrong, returning a [`MessageError`] that names the problem. Nothing here
//! panics on any input.
//!
//! ```
//! use ringkernel_core::message::{decode_slot, encode_slot, HeaderBuilder};
//!
//! let mut slot = vec![0u8; 256 + 64];
//! let header = HeaderBuilder::new(42).checksum(true).build();
//! encode_slot(&mut slot, &header, b"hello")?;
//! let decoded = decode_slot(&slot)?;
//! assert_eq!(decoded.payload, b"hello");
//! assert_eq!(decoded.header.message_type, 42);
//! # Ok::<(), ringkernel_core::error::MessageError>(())
//! ```

use std::cell::Cell;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{MessageError, RingKernelError, codes};
use crate::hlc::HlcTimestamp;
use crate::layout::{
    ErrorReportHeader, MESSAGE_HEADER_BYTES, MESSAGE_HEADER_USED_BYTES, MESSAGE_MAGIC, MessageHeader, PROTOCOL_VERSION,
    flags,
};

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
const SEQUENCE_BLOCK: u64 = 1 << 16;

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
    pub fn generate() -> Self {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        thread_local! { static BLOCK: Cell<(u64, u64)> = const { Cell::new((0, 0)) }; }
        let sequence = next_in_block(&COUNTER, &BLOCK);
        Self((u128::from(process_nonce()) << 64) | u128::from(sequence))
    }

    /// The four little-endian words stored in a header.
    pub fn to_words(self) -> [u32; 4] {
        let v = self.0;
        [v as u32, (v >> 32) as u32, (v >> 64) as u32, (v >> 96) as u32]
    }

    /// The id stored in a header's words.
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
    pub fn generate() -> Self {
        static COUNTER: AtomicU64 = AtomicU64::new(1);
        thread_local! { static BLOCK: Cell<(u64, u64)> = const { Cell::new((0, 0)) }; }
        let sequence = next_in_block(&COUNTER, &BLOCK);
        // Odd multiplier: a bijection on u64, so distinct sequences give distinct ids.
        let id = sequence.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ process_nonce();
        Self(if id == 0 { process_nonce() | 1 } else { id })
    }

    /// The `[low, high]` words stored in a header.
    pub fn to_words(self) -> [u32; 2] {
        split_u64(self.0)
    }

    /// The id stored in a header's words.
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

fn split_u64(v: u64) -> [u32; 2] {
    [v as u32, (v >> 32) as u32]
}

fn join_u64(words: [u32; 2]) -> u64 {
    u64::from(words[0]) | u64::from(words[1]) << 32
}

impl MessageHeader {
    /// The message id.
    pub fn message_id(&self) -> MessageId {
        MessageId::from_words(self.message_id)
    }

    /// The correlation id.
    pub fn correlation_id(&self) -> CorrelationId {
        CorrelationId::from_words(self.correlation_id)
    }

    /// The send timestamp.
    pub fn timestamp(&self) -> HlcTimestamp {
        HlcTimestamp::new(join_u64(self.timestamp_physical_ns), self.timestamp_logical, self.timestamp_node)
    }

    /// Sets the send timestamp.
    pub fn set_timestamp(&mut self, ts: HlcTimestamp) {
        self.timestamp_physical_ns = split_u64(ts.physical_ns);
        self.timestamp_logical = ts.logical;
        self.timestamp_node = ts.node_id;
    }

    /// The deadline in ns since the Unix epoch, if any.
    pub fn deadline_ns(&self) -> Option<u64> {
        match join_u64(self.deadline_ns) {
            0 => None,
            d => Some(d),
        }
    }

    /// Sets or clears the deadline.
    pub fn set_deadline_ns(&mut self, deadline_ns: Option<u64>) {
        self.deadline_ns = split_u64(deadline_ns.unwrap_or(0));
    }

    /// The priority (validated headers always have a valid one; others read as `Normal`).
    pub fn priority(&self) -> Priority {
        Priority::try_from(self.priority).unwrap_or_default()
    }

    /// Whether this header is a reply.
    pub fn is_reply(&self) -> bool {
        self.flags & flags::REPLY != 0
    }

    /// Whether this message reports an error (its payload is an [`ErrorReport`]).
    pub fn is_error(&self) -> bool {
        self.flags & flags::ERROR != 0
    }

    /// A reply header to this message: same correlation id, source and destination swapped, a
    /// new message id, the `REPLY` flag set. Timestamp, payload size and checksum are set by the
    /// sender.
    pub fn reply(&self, message_type: u32) -> MessageHeader {
        HeaderBuilder::new(message_type)
            .correlation_id(self.correlation_id())
            .source_kernel(self.dest_kernel)
            .dest_kernel(self.source_kernel)
            .priority(self.priority())
            .flags(flags::REPLY | (self.flags & flags::CHECKSUM))
            .build()
    }
}

/// Builds a valid [`MessageHeader`].
#[derive(Debug, Clone)]
pub struct HeaderBuilder {
    header: MessageHeader,
}

impl HeaderBuilder {
    /// A header for `message_type` with a fresh message id, from the host, normal priority.
    pub fn new(message_type: u32) -> Self {
        let mut header: MessageHeader = bytemuck::Zeroable::zeroed();
        header.magic = MESSAGE_MAGIC;
        header.version = PROTOCOL_VERSION;
        header.message_type = message_type;
        header.message_id = MessageId::generate().to_words();
        header.source_kernel = HOST_KERNEL_ID;
        header.dest_kernel = HOST_KERNEL_ID;
        header.priority = Priority::Normal as u32;
        Self { header }
    }

    /// Sets the message id (normally generated).
    pub fn message_id(mut self, id: MessageId) -> Self {
        self.header.message_id = id.to_words();
        self
    }

    /// Sets the correlation id.
    pub fn correlation_id(mut self, id: CorrelationId) -> Self {
        self.header.correlation_id = id.to_words();
        self
    }

    /// Sets the sending kernel.
    pub fn source_kernel(mut self, kernel: u32) -> Self {
        self.header.source_kernel = kernel;
        self
    }

    /// Sets the destination kernel.
    pub fn dest_kernel(mut self, kernel: u32) -> Self {
        self.header.dest_kernel = kernel;
        self
    }

    /// Sets the priority.
    pub fn priority(mut self, priority: Priority) -> Self {
        self.header.priority = priority as u32;
        self
    }

    /// Sets the send timestamp.
    pub fn timestamp(mut self, ts: HlcTimestamp) -> Self {
        self.header.set_timestamp(ts);
        self
    }

    /// Sets the deadline (ns since the Unix epoch).
    pub fn deadline_ns(mut self, deadline_ns: u64) -> Self {
        self.header.set_deadline_ns(Some(deadline_ns));
        self
    }

    /// Asks [`encode_slot`] to store a CRC32C of the payload, which decoders then verify.
    pub fn checksum(mut self, on: bool) -> Self {
        if on {
            self.header.flags |= flags::CHECKSUM;
        } else {
            self.header.flags &= !flags::CHECKSUM;
        }
        self
    }

    /// Replaces the flags word (bits outside [`flags::ALL`] make the header invalid).
    pub fn flags(mut self, flags: u32) -> Self {
        self.header.flags = flags;
        self
    }

    /// The header.
    pub fn build(self) -> MessageHeader {
        self.header
    }
}

const CRC32C: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI);

/// CRC32C (Castagnoli) of `bytes`, as stored in [`MessageHeader::checksum`].
pub fn crc32c(bytes: &[u8]) -> u32 {
    CRC32C.checksum(bytes)
}

/// Writes `header` and `payload` into `slot`: sets `payload_bytes`, and `checksum` when the header
/// has [`flags::CHECKSUM`]. Bytes of the slot past the payload are left as they were.
///
/// # Errors
/// [`MessageError::SlotTooSmall`], or any error of [`check_header`]; the slot is then untouched.
pub fn encode_slot(slot: &mut [u8], header: &MessageHeader, payload: &[u8]) -> Result<(), MessageError> {
    check_header(header, payload.len(), payload_capacity(slot.len())?)?;
    let mut header = *header;
    header.payload_bytes = payload.len() as u32;
    header.checksum = if header.flags & flags::CHECKSUM != 0 { crc32c(payload) } else { 0 };
    slot[..MESSAGE_HEADER_USED_BYTES].copy_from_slice(&bytemuck::bytes_of(&header)[..MESSAGE_HEADER_USED_BYTES]);
    // Reading the padding keeps its lines shared; writing them only when needed keeps them from
    // travelling to the reader with every message (see `MESSAGE_HEADER_USED_BYTES`).
    let padding = &mut slot[MESSAGE_HEADER_USED_BYTES..MESSAGE_HEADER_BYTES];
    // An OR over all bytes (no early exit) compiles to a few vector instructions.
    if padding.iter().fold(0u8, |any, byte| any | byte) != 0 {
        padding.fill(0);
    }
    slot[MESSAGE_HEADER_BYTES..MESSAGE_HEADER_BYTES + payload.len()].copy_from_slice(payload);
    Ok(())
}

/// Checks what a reader validates in a header before its payload: magic, version, flags,
/// priority, and that `payload_bytes` fits a slot's `capacity_bytes`. Senders call it before
/// committing a slot so that bad input is refused where it comes from.
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

fn payload_capacity(slot_len: usize) -> Result<usize, MessageError> {
    slot_len
        .checked_sub(MESSAGE_HEADER_BYTES)
        .ok_or(MessageError::SlotTooSmall { len: slot_len, header_bytes: MESSAGE_HEADER_BYTES })
}

/// A validated slot: a copy of its header and a view of its payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodedSlot<'a> {
    /// The header (copied: slot memory may be unaligned or shared).
    pub header: MessageHeader,
    /// Exactly `header.payload_bytes` bytes.
    pub payload: &'a [u8],
}

/// Reads and validates a slot: length, magic, version, flags, priority, payload bounds and (when
/// flagged) checksum. Does not look at the deadline; see [`decode_slot_at`].
pub fn decode_slot(slot: &[u8]) -> Result<DecodedSlot<'_>, MessageError> {
    let capacity_bytes = payload_capacity(slot.len())?;
    if capacity_bytes > 0 {
        // The payload's first line is fetched while the header is checked, not after.
        crate::sync::prefetch(slot[MESSAGE_HEADER_BYTES..].as_ptr(), false);
    }
    // Only the used prefix is read; the padding is reserved and reads as zero whatever it holds.
    let mut header: MessageHeader = bytemuck::Zeroable::zeroed();
    bytemuck::bytes_of_mut(&mut header)[..MESSAGE_HEADER_USED_BYTES]
        .copy_from_slice(&slot[..MESSAGE_HEADER_USED_BYTES]);
    let payload_bytes = header.payload_bytes as usize;
    check_header(&header, payload_bytes, capacity_bytes)?;
    let payload = &slot[MESSAGE_HEADER_BYTES..MESSAGE_HEADER_BYTES + payload_bytes];
    if header.flags & flags::CHECKSUM != 0 {
        let computed = crc32c(payload);
        if computed != header.checksum {
            return Err(MessageError::ChecksumMismatch { expected: header.checksum, computed });
        }
    }
    Ok(DecodedSlot { header, payload })
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

/// An owned message: header and payload, for APIs that hand messages across threads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// The header; `payload_bytes` and `checksum` are filled in when the envelope is encoded.
    pub header: MessageHeader,
    /// The payload.
    pub payload: Vec<u8>,
}

impl Envelope {
    /// An envelope of `message_type` carrying `payload`, with a fresh message id.
    pub fn new(message_type: u32, payload: impl Into<Vec<u8>>) -> Self {
        Self { header: HeaderBuilder::new(message_type).build(), payload: payload.into() }
    }

    /// An envelope with a prepared header.
    pub fn with_header(header: MessageHeader, payload: impl Into<Vec<u8>>) -> Self {
        Self { header, payload: payload.into() }
    }

    /// Writes it into a slot (see [`encode_slot`]).
    pub fn encode_into(&self, slot: &mut [u8]) -> Result<(), MessageError> {
        encode_slot(slot, &self.header, &self.payload)
    }

    /// Reads and validates one from a slot (see [`decode_slot`]).
    pub fn decode_from(slot: &[u8]) -> Result<Self, MessageError> {
        let decoded = decode_slot(slot)?;
        Ok(Self { header: decoded.header, payload: decoded.payload.to_vec() })
    }
}

impl Envelope {
    /// The error this envelope reports, if its `ERROR` flag is set.
    pub fn error_report(&self) -> Option<ErrorReport> {
        self.header.is_error().then(|| ErrorReport::decode(&self.payload))
    }

    /// The envelope itself, or the error it reports as a [`RingKernelError`] naming `kernel`.
    pub fn into_result(self, kernel: &str) -> Result<Self, RingKernelError> {
        match self.error_report() {
            Some(report) => Err(report.into_error(kernel)),
            None => Ok(self),
        }
    }

    /// An envelope of the typed message `message`.
    pub fn from_message<M: RingMessage>(message: &M) -> Self {
        Self::new(M::MESSAGE_TYPE, bytemuck::bytes_of(message))
    }

    /// The payload as the typed message `M`, after checking type and size.
    pub fn to_message<M: RingMessage>(&self) -> Result<M, MessageError> {
        M::from_parts(self.header.message_type, &self.payload)
    }
}

/// Why a kernel did not handle a message, sent back in place of a reply (the `ERROR` flag set,
/// the same correlation id, type [`ErrorReport::MESSAGE_TYPE`]).
///
/// Payload layout: an [`ErrorReportHeader`] (`code`, reserved, two `[low, high]` values; declared
/// for device code by the layout generator too), then the reason as UTF-8. `code` is one of
/// [`crate::error::codes`]; the values are the code's numbers (for a deadline: the deadline and
/// the time it was checked).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorReport {
    /// What went wrong, one of [`crate::error::codes`].
    pub code: u32,
    /// Numbers that go with the code.
    pub values: [u64; 2],
    /// Human-readable detail.
    pub reason: String,
}

impl ErrorReport {
    /// The message type of error reports.
    pub const MESSAGE_TYPE: u32 = 0xFFFF_FFFE;
    /// Bytes before the reason text: one [`ErrorReportHeader`].
    pub const FIXED_BYTES: usize = size_of::<ErrorReportHeader>();

    /// The report of a message that was not handled because of `error`.
    pub fn from_message_error(error: &MessageError) -> Self {
        let values = match *error {
            MessageError::DeadlineExpired { deadline_ns, now_ns } => [deadline_ns, now_ns],
            _ => [0, 0],
        };
        Self { code: error.code(), values, reason: error.to_string() }
    }

    /// The payload bytes: an [`ErrorReportHeader`] and the reason.
    pub fn encode(&self) -> Vec<u8> {
        let mut fixed: ErrorReportHeader = bytemuck::Zeroable::zeroed();
        fixed.code = self.code;
        fixed.value0 = split_u64(self.values[0]);
        fixed.value1 = split_u64(self.values[1]);
        let mut bytes = Vec::with_capacity(Self::FIXED_BYTES + self.reason.len());
        bytes.extend_from_slice(bytemuck::bytes_of(&fixed));
        bytes.extend_from_slice(self.reason.as_bytes());
        bytes
    }

    /// Reads a report. A payload cut short by a small slot keeps what fits: the code needs 4
    /// bytes, each value 8 more; missing values read as 0 and a missing reason as empty. A payload
    /// too short for the code reads as a handler error saying so.
    pub fn decode(payload: &[u8]) -> Self {
        if payload.len() < 4 {
            return Self {
                code: codes::HANDLER_ERROR,
                values: [0, 0],
                reason: format!("malformed error report of {} bytes", payload.len()),
            };
        }
        let mut fixed: ErrorReportHeader = bytemuck::Zeroable::zeroed();
        let present = payload.len().min(Self::FIXED_BYTES);
        bytemuck::bytes_of_mut(&mut fixed)[..present].copy_from_slice(&payload[..present]);
        Self {
            code: fixed.code,
            values: [join_u64(fixed.value0), join_u64(fixed.value1)],
            reason: String::from_utf8_lossy(payload.get(Self::FIXED_BYTES..).unwrap_or_default()).into_owned(),
        }
    }

    /// The report as the error a caller of `kernel` receives.
    pub fn into_error(self, kernel: &str) -> RingKernelError {
        match self.code {
            codes::DEADLINE_EXPIRED => {
                MessageError::DeadlineExpired { deadline_ns: self.values[0], now_ns: self.values[1] }.into()
            }
            codes::CLOCK_SKEW => {
                RingKernelError::ClockSkew { remote_ns: self.values[0], local_ns: self.values[1], max_offset_ns: 0 }
            }
            codes::HANDLER_FAULT => RingKernelError::KernelFault { kernel: kernel.to_string(), reason: self.reason },
            code => RingKernelError::HandlerError {
                kernel: kernel.to_string(),
                reason: match codes::name(code) {
                    Some(name) if code != codes::HANDLER_ERROR => format!("{} ({name})", self.reason),
                    _ => self.reason,
                },
            },
        }
    }
}

/// A typed message: a plain-old-data payload with a stable message type id.
///
/// Derive it with `#[derive(RingMessage)]` from `ringkernel-derive` (re-exported by the
/// `ringkernel` facade), or implement it by hand:
///
/// ```
/// use ringkernel_core::message::{Envelope, RingMessage};
///
/// #[repr(C)]
/// #[derive(Debug, Clone, Copy, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
/// struct Add { value: u64 }
/// impl RingMessage for Add { const MESSAGE_TYPE: u32 = 0xC001; }
///
/// let envelope = Envelope::from_message(&Add { value: 5 });
/// assert_eq!(envelope.to_message::<Add>()?, Add { value: 5 });
/// # Ok::<(), ringkernel_core::error::MessageError>(())
/// ```
pub trait RingMessage: bytemuck::Pod {
    /// The stable type id carried in `MessageHeader::message_type`.
    const MESSAGE_TYPE: u32;

    /// Reads the message from a header's type and a payload, checking both.
    fn from_parts(message_type: u32, payload: &[u8]) -> Result<Self, MessageError> {
        if message_type != Self::MESSAGE_TYPE {
            return Err(MessageError::WrongMessageType { expected: Self::MESSAGE_TYPE, found: message_type });
        }
        if payload.len() != size_of::<Self>() {
            return Err(MessageError::PayloadSizeMismatch { expected: size_of::<Self>(), found: payload.len() });
        }
        Ok(bytemuck::pod_read_unaligned(payload))
    }
}

/// A stable 32-bit message type id from a type name (FNV-1a), as `#[derive(RingMessage)]` uses
/// when no id is given. Ids below `0x1000` and the [`ErrorReport`] type are never produced.
pub const fn message_type_id(name: &str) -> u32 {
    let bytes = name.as_bytes();
    let mut hash: u32 = 0x811c_9dc5;
    let mut i = 0;
    while i < bytes.len() {
        hash ^= bytes[i] as u32;
        hash = hash.wrapping_mul(0x0100_0193);
        i += 1;
    }
    if hash < 0x1000 || hash == ErrorReport::MESSAGE_TYPE { hash | 0x8000_0000 } else { hash }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
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
        let good = slot_with(b"abcd", true, 16);
        type Corruption = Box<dyn Fn(&mut Vec<u8>)>;
        let cases: Vec<(Corruption, u32)> = vec![
            (Box::new(|s| s.truncate(100)), crate::error::codes::SLOT_TOO_SMALL),
            (Box::new(|s| write_word(s, 0, 0)), crate::error::codes::BAD_MAGIC),
            (Box::new(|s| write_word(s, 4, 2)), crate::error::codes::UNSUPPORTED_VERSION),
            (Box::new(|s| write_word(s, 8, flags::CHECKSUM | 0x100)), crate::error::codes::UNKNOWN_FLAGS),
            (Box::new(|s| write_word(s, 48, 4)), crate::error::codes::INVALID_PRIORITY),
            (Box::new(|s| write_word(s, 52, 17)), crate::error::codes::PAYLOAD_TOO_LARGE),
            (Box::new(|s| s[256] ^= 1), crate::error::codes::CHECKSUM_MISMATCH),
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
        const NAME: &str = "message::tests::message_ids_are_unique_across_processes";
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

    #[test]
    fn reply_mirrors_the_request() {
        let request = HeaderBuilder::new(1)
            .correlation_id(CorrelationId(77))
            .source_kernel(HOST_KERNEL_ID)
            .dest_kernel(3)
            .checksum(true)
            .build();
        let reply = request.reply(2);
        assert!(reply.is_reply());
        assert_eq!(reply.correlation_id(), CorrelationId(77));
        assert_eq!((reply.source_kernel, reply.dest_kernel), (3, HOST_KERNEL_ID));
        assert_ne!(reply.message_id(), request.message_id());
        assert_eq!(reply.flags & flags::CHECKSUM, flags::CHECKSUM);
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

    /// Readers ignore the reserved padding; writers leave zero padding untouched and clear any
    /// other, so a slot once written by a foreign producer is clean again after its next use.
    #[test]
    fn header_padding_is_reserved() {
        let header = HeaderBuilder::new(3).build();
        let mut slot = vec![0u8; MESSAGE_HEADER_BYTES + 16];
        encode_slot(&mut slot, &header, b"abc").unwrap();
        slot[MESSAGE_HEADER_USED_BYTES..MESSAGE_HEADER_BYTES].fill(0xee);
        let decoded = decode_slot(&slot).unwrap();
        assert_eq!(decoded.header.message_type, 3);
        assert_eq!(bytemuck::bytes_of(&decoded.header)[MESSAGE_HEADER_USED_BYTES..], [0u8; 168]);
        encode_slot(&mut slot, &header, b"abc").unwrap();
        assert!(slot[MESSAGE_HEADER_USED_BYTES..MESSAGE_HEADER_BYTES].iter().all(|b| *b == 0));
        assert_eq!(MESSAGE_HEADER_USED_BYTES, std::mem::offset_of!(MessageHeader, deadline_ns) + 8);
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

    fn report_bytes_for_test() -> Vec<u8> {
        ErrorReport::from_message_error(&MessageError::DeadlineExpired { deadline_ns: 10, now_ns: 25 }).encode()
    }

    #[test]
    fn error_reports_round_trip_into_typed_errors() {
        let expired = MessageError::DeadlineExpired { deadline_ns: 10, now_ns: 25 };
        let report = ErrorReport::from_message_error(&expired);
        let mut header = HeaderBuilder::new(ErrorReport::MESSAGE_TYPE).flags(flags::ERROR | flags::REPLY).build();
        header.correlation_id = CorrelationId(5).to_words();
        let envelope = Envelope::with_header(header, report.encode());
        assert_eq!(envelope.error_report(), Some(report));
        match envelope.into_result("k") {
            Err(RingKernelError::InvalidMessage(e)) => assert_eq!(e, expired),
            other => panic!("{other:?}"),
        }
        let handler = ErrorReport { code: codes::HANDLER_ERROR, values: [0, 0], reason: "odd input".into() };
        let err = handler.clone().into_error("k").to_string();
        assert_eq!(err, "kernel `k` handler failed: odd input");
        assert_eq!(ErrorReport::decode(&handler.encode()), handler);
        assert_eq!(ErrorReport::decode(b"abc").code, codes::HANDLER_ERROR);
        // Cut to a 16-byte slot: the code and the first value survive.
        let cut = ErrorReport::decode(&report_bytes_for_test()[..16]);
        assert_eq!((cut.code, cut.values, cut.reason.as_str()), (codes::DEADLINE_EXPIRED, [10, 0], ""));
        assert!(Envelope::new(1, vec![]).into_result("k").is_ok());
    }

    #[repr(C)]
    #[derive(Debug, Clone, Copy, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
    struct Pair {
        a: u32,
        b: u32,
    }
    impl RingMessage for Pair {
        const MESSAGE_TYPE: u32 = message_type_id("Pair");
    }

    #[test]
    fn typed_messages_check_type_and_size() {
        let envelope = Envelope::from_message(&Pair { a: 1, b: 2 });
        assert_eq!(envelope.to_message::<Pair>().unwrap(), Pair { a: 1, b: 2 });
        let wrong_type = Envelope::new(7, envelope.payload.clone());
        assert!(matches!(wrong_type.to_message::<Pair>(), Err(MessageError::WrongMessageType { found: 7, .. })));
        let short = Envelope::new(Pair::MESSAGE_TYPE, vec![0; 3]);
        assert_eq!(short.to_message::<Pair>(), Err(MessageError::PayloadSizeMismatch { expected: 8, found: 3 }));
        assert_eq!(message_type_id("Pair"), message_type_id("Pair"));
        assert_ne!(message_type_id("Pair"), message_type_id("Pear"));
        assert!(message_type_id("") >= 0x1000);
    }
}
