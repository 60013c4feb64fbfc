//! The context a CPU handler runs in: the message, the actor's state, and the ways to send.

use std::fmt;

use crate::error::{Result, RingKernelError};
use crate::hlc::HlcTimestamp;
use crate::ids::KernelId;
use crate::layout::MessageHeader;
use crate::message::{HOST_KERNEL_ID, RingMessage};

/// A CPU handler: called once per message, in order, on the actor's own thread.
pub type CpuHandler = dyn Fn(&mut HandlerContext<'_>) -> std::result::Result<(), HandlerError> + Send + Sync;

/// An error a handler returns for one message. The caller gets it as
/// [`RingKernelError::HandlerError`]; the kernel keeps running.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandlerError(pub String);

impl fmt::Display for HandlerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for HandlerError {}

impl From<RingKernelError> for HandlerError {
    fn from(error: RingKernelError) -> Self {
        Self(error.to_string())
    }
}

impl From<crate::error::MessageError> for HandlerError {
    fn from(error: crate::error::MessageError) -> Self {
        Self(error.to_string())
    }
}

impl From<&str> for HandlerError {
    fn from(reason: &str) -> Self {
        Self(reason.to_string())
    }
}

impl From<String> for HandlerError {
    fn from(reason: String) -> Self {
        Self(reason)
    }
}

/// Where a handler's message goes.
#[derive(Debug, Clone, Copy)]
pub enum Destination<'a> {
    /// The kernel's output ring, read by the host.
    Host,
    /// Another kernel's K2K inbox, by id.
    Kernel(&'a KernelId),
    /// Another kernel's K2K inbox, by the number in message headers.
    KernelNumber(u32),
}

impl Destination<'_> {
    /// Where an answer to `message` goes: the host, or the kernel that sent it over K2K.
    pub fn sender_of(message: &MessageHeader) -> Self {
        match message.source_kernel {
            HOST_KERNEL_ID => Destination::Host,
            kernel => Destination::KernelNumber(kernel),
        }
    }
}

/// What a backend provides to a running CPU handler.
pub trait HandlerIo {
    /// Stamps `header` (timestamp, source) and delivers it with `payload`, waiting for room in the
    /// output ring (`Host`) or failing with [`RingKernelError::QueueFull`] when a K2K inbox is
    /// full (waiting there could deadlock two kernels that send to each other).
    fn deliver(&mut self, destination: Destination<'_>, header: MessageHeader, payload: &[u8]) -> Result<()>;
}

/// The message being handled, the actor's state, and ways to send.
pub struct HandlerContext<'a> {
    kernel: &'a KernelId,
    header: &'a MessageHeader,
    payload: &'a [u8],
    received_at: HlcTimestamp,
    state: &'a mut [u8],
    io: &'a mut dyn HandlerIo,
}

impl<'a> HandlerContext<'a> {
    /// Called by backends for each message.
    pub fn new(
        kernel: &'a KernelId,
        header: &'a MessageHeader,
        payload: &'a [u8],
        received_at: HlcTimestamp,
        state: &'a mut [u8],
        io: &'a mut dyn HandlerIo,
    ) -> Self {
        Self { kernel, header, payload, received_at, state, io }
    }

    /// The kernel running the handler.
    pub fn kernel_id(&self) -> &KernelId {
        self.kernel
    }

    /// The message's header.
    pub fn header(&self) -> &'a MessageHeader {
        self.header
    }

    /// The message's type.
    pub fn message_type(&self) -> u32 {
        self.header.message_type
    }

    /// The message's payload.
    pub fn payload(&self) -> &'a [u8] {
        self.payload
    }

    /// The payload as a plain-old-data value of exactly its size.
    pub fn payload_as<T: bytemuck::Pod>(&self) -> std::result::Result<T, HandlerError> {
        if self.payload.len() != size_of::<T>() {
            return Err(HandlerError(format!(
                "expected a {}-byte payload, got {} bytes",
                size_of::<T>(),
                self.payload.len()
            )));
        }
        Ok(bytemuck::pod_read_unaligned(self.payload))
    }

    /// The payload as the typed message `M` (type and size checked).
    pub fn message<M: RingMessage>(&self) -> std::result::Result<M, HandlerError> {
        Ok(M::from_parts(self.header.message_type, self.payload)?)
    }

    /// The kernel's clock after receiving this message: later than the sender's timestamp.
    pub fn received_at(&self) -> HlcTimestamp {
        self.received_at
    }

    /// The actor's state bytes.
    pub fn state_bytes(&mut self) -> &mut [u8] {
        self.state
    }

    /// The actor's state as a plain-old-data value (the state must have exactly its size; backends
    /// align it to [`StateBuffer::ALIGN`](crate::spec::StateBuffer::ALIGN) bytes).
    pub fn state<T: bytemuck::Pod>(&mut self) -> std::result::Result<&mut T, HandlerError> {
        let bytes = self.state.len();
        bytemuck::try_from_bytes_mut(self.state).map_err(|e| {
            HandlerError(format!("state of {bytes} bytes cannot be viewed as a {}-byte value: {e}", size_of::<T>()))
        })
    }

    /// Replies to the sender (the host, or the kernel that sent it over K2K) with the same
    /// correlation id.
    pub fn reply(&mut self, message_type: u32, payload: &[u8]) -> Result<()> {
        let header = self.header.reply(message_type);
        self.io.deliver(Destination::sender_of(self.header), header, payload)
    }

    /// Replies with a typed message.
    pub fn reply_message<M: RingMessage>(&mut self, message: &M) -> Result<()> {
        self.reply(M::MESSAGE_TYPE, bytemuck::bytes_of(message))
    }

    /// Sends a message to the host (the kernel's output ring), carrying this message's
    /// correlation id; not marked as a reply.
    pub fn emit(&mut self, message_type: u32, payload: &[u8]) -> Result<()> {
        let header = self.forward_header(message_type);
        self.io.deliver(Destination::Host, header, payload)
    }

    /// Sends a message to another kernel's K2K inbox, carrying this message's correlation id.
    ///
    /// # Errors
    /// [`RingKernelError::KernelNotFound`] or [`RingKernelError::InvalidState`] if the kernel is
    /// not running, [`RingKernelError::QueueFull`] if its inbox is full.
    pub fn send_to(&mut self, kernel: &KernelId, message_type: u32, payload: &[u8]) -> Result<()> {
        let header = self.forward_header(message_type);
        self.io.deliver(Destination::Kernel(kernel), header, payload)
    }

    /// Sends a typed message to another kernel.
    pub fn send_message_to<M: RingMessage>(&mut self, kernel: &KernelId, message: &M) -> Result<()> {
        self.send_to(kernel, M::MESSAGE_TYPE, bytemuck::bytes_of(message))
    }

    fn forward_header(&self, message_type: u32) -> MessageHeader {
        crate::message::HeaderBuilder::new(message_type)
            .correlation_id(self.header.correlation_id())
            .priority(self.header.priority())
            .build()
    }
}
