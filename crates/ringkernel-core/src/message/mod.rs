//! Messages: who they are ([`identity`]), their headers ([`header`]), the validating slot codec
//! ([`codec`]), owned envelopes ([`envelope`]), error reports ([`report`]) and typed messages
//! ([`typed`]). Everything is re-exported here.
//!
//! A slot is a [`MessageHeader`](crate::layout::MessageHeader) followed by a payload area.
//! [`encode_slot`] writes one; [`decode_slot`] and [`decode_slot_at`] read one back and validate
//! every field a corrupt or hostile writer could get wrong, returning a
//! [`MessageError`](crate::error::MessageError) that names the problem.
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

pub mod codec;
pub mod envelope;
pub mod header;
pub mod identity;
pub mod report;
pub mod slot_check;
pub mod typed;

pub use codec::{
    DecodedSlot, HeaderPart, MessageView, SlotBuffer, check_header, crc32c, decode_slot, decode_slot_at, encode_slot,
    payload_capacity, seal_slot, write_slot,
};
pub use envelope::Envelope;
pub use header::HeaderBuilder;
pub use identity::{CorrelationId, HOST_KERNEL_ID, MessageId, Priority};
pub use report::ErrorReport;
pub use slot_check::{
    SLOT_CHECK_PAYLOAD_BYTES, slot_check, slot_check_matches, slot_check_term, whole_slot_check,
    whole_slot_check_matches, write_slot_check, write_whole_slot_check,
};
pub use typed::{RingMessage, message_type_id};
