//! Reading and building [`MessageHeader`]s.

use super::identity::{CorrelationId, HOST_KERNEL_ID, MessageId, Priority, join_u64, split_u64};
use crate::hlc::HlcTimestamp;
use crate::layout::{MESSAGE_MAGIC, MessageHeader, PROTOCOL_VERSION, flags};

impl MessageHeader {
    /// The message id.
    #[inline]
    pub fn message_id(&self) -> MessageId {
        MessageId::from_words(self.message_id)
    }

    /// The correlation id.
    #[inline]
    pub fn correlation_id(&self) -> CorrelationId {
        CorrelationId::from_words(self.correlation_id)
    }

    /// The send timestamp.
    #[inline]
    pub fn timestamp(&self) -> HlcTimestamp {
        HlcTimestamp::new(join_u64(self.timestamp_physical_ns), self.timestamp_logical, self.timestamp_node)
    }

    /// Sets the send timestamp.
    #[inline]
    pub fn set_timestamp(&mut self, ts: HlcTimestamp) {
        self.timestamp_physical_ns = split_u64(ts.physical_ns);
        self.timestamp_logical = ts.logical;
        self.timestamp_node = ts.node_id;
    }

    /// The deadline in ns since the Unix epoch, if any.
    #[inline]
    pub fn deadline_ns(&self) -> Option<u64> {
        match join_u64(self.deadline_ns) {
            0 => None,
            d => Some(d),
        }
    }

    /// Sets or clears the deadline.
    #[inline]
    pub fn set_deadline_ns(&mut self, deadline_ns: Option<u64>) {
        self.deadline_ns = split_u64(deadline_ns.unwrap_or(0));
    }

    /// The priority (validated headers always have a valid one; others read as `Normal`).
    #[inline]
    pub fn priority(&self) -> Priority {
        Priority::try_from(self.priority).unwrap_or_default()
    }

    /// Whether this header is a reply.
    #[inline]
    pub fn is_reply(&self) -> bool {
        self.flags & flags::REPLY != 0
    }

    /// Whether this message reports an error (its payload is an `ErrorReport`).
    #[inline]
    pub fn is_error(&self) -> bool {
        self.flags & flags::ERROR != 0
    }

    /// A reply header to this message: same correlation id, source and destination swapped, a
    /// new message id, the `REPLY` flag set. Timestamp, payload size and checksum are set by the
    /// sender.
    #[inline]
    pub fn reply(&self, message_type: u32) -> MessageHeader {
        let mut reply = HeaderBuilder::new(message_type).build();
        reply.correlation_id = self.correlation_id;
        reply.source_kernel = self.dest_kernel;
        reply.dest_kernel = self.source_kernel;
        reply.priority = self.priority() as u32;
        reply.flags = flags::REPLY | (self.flags & flags::CHECKSUM);
        reply
    }
}

/// Builds a valid [`MessageHeader`].
#[derive(Debug, Clone)]
pub struct HeaderBuilder {
    header: MessageHeader,
}

impl HeaderBuilder {
    /// A header for `message_type` with a fresh message id, from the host, normal priority.
    #[inline]
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
    #[inline]
    pub fn message_id(mut self, id: MessageId) -> Self {
        self.header.message_id = id.to_words();
        self
    }

    /// Sets the correlation id.
    #[inline]
    pub fn correlation_id(mut self, id: CorrelationId) -> Self {
        self.header.correlation_id = id.to_words();
        self
    }

    /// Sets the sending kernel.
    #[inline]
    pub fn source_kernel(mut self, kernel: u32) -> Self {
        self.header.source_kernel = kernel;
        self
    }

    /// Sets the destination kernel.
    #[inline]
    pub fn dest_kernel(mut self, kernel: u32) -> Self {
        self.header.dest_kernel = kernel;
        self
    }

    /// Sets the priority.
    #[inline]
    pub fn priority(mut self, priority: Priority) -> Self {
        self.header.priority = priority as u32;
        self
    }

    /// Sets the send timestamp.
    #[inline]
    pub fn timestamp(mut self, ts: HlcTimestamp) -> Self {
        self.header.set_timestamp(ts);
        self
    }

    /// Sets the deadline (ns since the Unix epoch).
    #[inline]
    pub fn deadline_ns(mut self, deadline_ns: u64) -> Self {
        self.header.set_deadline_ns(Some(deadline_ns));
        self
    }

    /// Asks the encoder to store a CRC32C of the payload, which decoders then verify.
    #[inline]
    pub fn checksum(mut self, on: bool) -> Self {
        if on {
            self.header.flags |= flags::CHECKSUM;
        } else {
            self.header.flags &= !flags::CHECKSUM;
        }
        self
    }

    /// Replaces the flags word (bits outside [`flags::ALL`] make the header invalid).
    #[inline]
    pub fn flags(mut self, flags: u32) -> Self {
        self.header.flags = flags;
        self
    }

    /// The header.
    #[inline]
    pub fn build(self) -> MessageHeader {
        self.header
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

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
}
