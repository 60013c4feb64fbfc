//! Typed messages: a plain-old-data payload with a stable message type id.

use super::report::ErrorReport;
use crate::error::MessageError;

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
