//! [`Envelope`]: an owned message (header and payload), for APIs that hand messages across
//! threads or keep them for later.

use super::codec::{DecodedSlot, MessageView, decode_slot, encode_slot};
use super::header::HeaderBuilder;
use super::report::ErrorReport;
use super::typed::RingMessage;
use crate::error::{MessageError, RingKernelError};
use crate::layout::MessageHeader;

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

    /// Reads and validates one from a slot in private memory (see [`decode_slot`]).
    pub fn decode_from(slot: &[u8]) -> Result<Self, MessageError> {
        Ok(Self::from_decoded(&decode_slot(slot)?))
    }

    /// An owned copy of a decoded slot.
    pub fn from_decoded(decoded: &DecodedSlot<'_>) -> Self {
        Self { header: decoded.header, payload: decoded.payload.to_vec() }
    }

    /// An owned copy of a lent message.
    #[inline]
    pub fn from_view(view: &MessageView<'_>) -> Self {
        Self { header: *view.header, payload: view.payload.to_vec() }
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

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::error::codes;
    use crate::layout::flags;
    use crate::message::{CorrelationId, message_type_id};

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
