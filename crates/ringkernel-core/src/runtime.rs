//! The runtime API every backend implements.
//!
//! [`RingKernelRuntime`] launches kernels by registered name and hands back [`KernelHandle`]s;
//! behind each handle is a [`KernelControl`]: the shared host engine ([`crate::engine`],
//! re-exported by `ringkernel-host`) for every backend, which a handle calls directly. Only the facade chooses among backends; this module never names one's internals.
//!
//! Two ways to move messages: [`Envelope`]s (owned header and payload: simple, one allocation per
//! message), and the zero-copy path — [`KernelHandle::send_with`] writes payloads straight into
//! input slots through [`Outgoing`], [`KernelHandle::receive_with`] lends each reply as a
//! [`MessageView`] borrowed from a private copy. The envelope methods are built on the same path.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::error::{MessageError, Result, RingKernelError};
pub use crate::ids::{Backend, KernelId, KernelState, UnknownBackend};
use crate::layout::{MAX_QUEUE_CAPACITY, MESSAGE_HEADER_BYTES, MessageHeader, RingGeometry};
use crate::memory::KernelLayout;
use crate::message::{CorrelationId, Envelope, HeaderBuilder, MessageView, RingMessage, seal_slot};

/// How to launch a kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LaunchOptions {
    /// Input ring capacity in slots (power of two).
    pub input_capacity: u32,
    /// Output ring capacity in slots (power of two).
    pub output_capacity: u32,
    /// K2K inbox capacity in slots (power of two, at least 2): how many messages other kernels
    /// may have queued for this one.
    pub inbox_capacity: u32,
    /// Payload bytes per slot (rounded up to a multiple of 16).
    pub slot_payload_bytes: u32,
    /// Threads per block / workgroup on GPU backends.
    pub block_size: u32,
    /// Start processing immediately (`Active`) instead of waiting for `activate`.
    pub auto_activate: bool,
    /// Initial actor state bytes (backend default if `None`).
    pub initial_state: Option<Vec<u8>>,
}

impl Default for LaunchOptions {
    fn default() -> Self {
        Self {
            input_capacity: 1024,
            output_capacity: 1024,
            inbox_capacity: 1024,
            slot_payload_bytes: 256,
            block_size: 128,
            auto_activate: false,
            initial_state: None,
        }
    }
}

impl LaunchOptions {
    /// Sets every queue capacity: input, output and K2K inbox (an inbox needs at least 2 slots, so
    /// a capacity of 1 gives it 2).
    pub fn with_queue_capacity(mut self, capacity: u32) -> Self {
        self.input_capacity = capacity;
        self.output_capacity = capacity;
        self.inbox_capacity = capacity.max(2);
        self
    }

    /// Sets the K2K inbox capacity alone.
    pub fn with_inbox_capacity(mut self, capacity: u32) -> Self {
        self.inbox_capacity = capacity;
        self
    }

    /// Sets the payload bytes per slot.
    pub fn with_slot_payload_bytes(mut self, bytes: u32) -> Self {
        self.slot_payload_bytes = bytes;
        self
    }

    /// Sets the block size.
    pub fn with_block_size(mut self, threads: u32) -> Self {
        self.block_size = threads;
        self
    }

    /// Starts the kernel active.
    pub fn with_auto_activate(mut self, on: bool) -> Self {
        self.auto_activate = on;
        self
    }

    /// Sets the initial state bytes.
    pub fn with_initial_state(mut self, state: impl Into<Vec<u8>>) -> Self {
        self.initial_state = Some(state.into());
        self
    }

    /// Checks every value; the error names the option and the value.
    pub fn validate(&self) -> Result<()> {
        self.kernel_layout()?;
        if self.block_size == 0 || self.block_size > 1024 {
            return Err(RingKernelError::InvalidConfig {
                field: "block_size",
                reason: format!("must be between 1 and 1024 threads, got {}", self.block_size),
            });
        }
        Ok(())
    }

    fn geometry(field: &'static str, capacity: u32, payload: u32) -> Result<RingGeometry> {
        RingGeometry::for_messages(capacity, payload).map_err(|e| match e {
            RingKernelError::InvalidConfig { reason, field: inner } => RingKernelError::InvalidConfig {
                field: if inner == "capacity" { field } else { "slot_payload_bytes" },
                reason: if inner == "capacity" {
                    format!("must be a power of two between 1 and {MAX_QUEUE_CAPACITY}, got {capacity}")
                } else {
                    reason
                },
            },
            other => other,
        })
    }

    /// The input ring's geometry.
    pub fn input_geometry(&self) -> Result<RingGeometry> {
        Self::geometry("input_capacity", self.input_capacity, self.slot_payload_bytes)
    }

    /// The output ring's geometry.
    pub fn output_geometry(&self) -> Result<RingGeometry> {
        Self::geometry("output_capacity", self.output_capacity, self.slot_payload_bytes)
    }

    /// The K2K inbox's geometry (slots as large as the input ring's).
    pub fn inbox_geometry(&self) -> Result<RingGeometry> {
        let capacity = self.inbox_capacity;
        if capacity < 2 || !capacity.is_power_of_two() || capacity > MAX_QUEUE_CAPACITY {
            return Err(RingKernelError::InvalidConfig {
                field: "inbox_capacity",
                reason: format!("must be a power of two between 2 and {MAX_QUEUE_CAPACITY}, got {capacity}"),
            });
        }
        RingGeometry::new(capacity, self.input_geometry()?.slot_bytes())
    }

    /// Where everything of a kernel launched with these options lies in its memory.
    pub fn kernel_layout(&self) -> Result<KernelLayout> {
        KernelLayout::new(self.input_geometry()?, self.output_geometry()?, Some(self.inbox_geometry()?))
    }
}

/// Counters and latency of one kernel.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KernelMetrics {
    /// Messages accepted into the input queue.
    pub messages_sent: u64,
    /// Messages the kernel handled.
    pub messages_processed: u64,
    /// Messages refused or skipped (full queue, invalid, expired).
    pub messages_rejected: u64,
    /// Messages accepted but not yet handled.
    pub messages_in_flight: u64,
    /// Replies taken from the output queue.
    pub replies_received: u64,
    /// Errors seen.
    pub errors: u64,
    /// Round-trip latency percentiles in µs (`call` only), if any were measured.
    pub latency_p50_us: Option<f64>,
    /// 99th percentile of the same.
    pub latency_p99_us: Option<f64>,
}

/// Totals across a runtime.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RuntimeMetrics {
    /// Kernels launched since start.
    pub kernels_launched: u64,
    /// Kernels currently active.
    pub kernels_active: u64,
    /// Messages accepted across kernels.
    pub messages_sent: u64,
    /// Messages handled across kernels.
    pub messages_processed: u64,
    /// Messages refused or skipped across kernels.
    pub messages_rejected: u64,
    /// Errors across kernels.
    pub errors: u64,
}

/// One message being written straight into a slot of a kernel's input ring: the zero-copy send
/// path of [`KernelHandle::send_with`]. Set the header fields you need (the type at least), write
/// the payload in place, and return; the engine stamps the source, destination and timestamp,
/// checks the header, computes the checksum if flagged, and seals the slot.
pub struct Outgoing<'a> {
    header: MessageHeader,
    slot: &'a mut [u8],
    payload_bytes: usize,
}

impl<'a> Outgoing<'a> {
    /// A message to be written into `slot` (a whole slot: header area, then payload area), with a
    /// fresh header: message type 0, a new message id, normal priority, no payload.
    #[inline]
    pub fn new(slot: &'a mut [u8]) -> Self {
        Self { header: HeaderBuilder::new(0).build(), slot, payload_bytes: 0 }
    }

    /// A message to be written into `slot` whose header starts as `header` (an envelope's, say).
    #[inline]
    pub fn with_header(slot: &'a mut [u8], header: &MessageHeader) -> Self {
        Self { header: *header, slot, payload_bytes: 0 }
    }

    /// The header so far.
    #[inline]
    pub fn header(&self) -> &MessageHeader {
        &self.header
    }

    /// The header, to set any field (flags, priority, deadline, correlation id, …). Source,
    /// destination, timestamp, payload size and checksum are overwritten when the slot is sealed.
    #[inline]
    pub fn header_mut(&mut self) -> &mut MessageHeader {
        &mut self.header
    }

    /// Sets the message type.
    #[inline]
    pub fn set_message_type(&mut self, message_type: u32) -> &mut Self {
        self.header.message_type = message_type;
        self
    }

    /// Sets the correlation id.
    #[inline]
    pub fn set_correlation_id(&mut self, id: CorrelationId) -> &mut Self {
        self.header.correlation_id = id.to_words();
        self
    }

    /// Bytes of payload the slot can carry.
    #[inline]
    pub fn payload_capacity(&self) -> usize {
        self.slot.len().saturating_sub(MESSAGE_HEADER_BYTES)
    }

    /// Payload bytes written so far.
    #[inline]
    pub fn payload_bytes(&self) -> usize {
        self.payload_bytes
    }

    /// Sets the payload length to `len` and lends the payload area to write it. The area holds
    /// whatever an earlier message left there: write all `len` bytes.
    ///
    /// # Errors
    /// [`MessageError::PayloadTooLarge`] when `len` exceeds [`Self::payload_capacity`].
    #[inline]
    pub fn payload_mut(&mut self, len: usize) -> std::result::Result<&mut [u8], MessageError> {
        if len > self.payload_capacity() {
            return Err(MessageError::PayloadTooLarge {
                payload_bytes: u32::try_from(len).unwrap_or(u32::MAX),
                capacity_bytes: self.payload_capacity(),
            });
        }
        self.payload_bytes = len;
        Ok(&mut self.slot[MESSAGE_HEADER_BYTES..MESSAGE_HEADER_BYTES + len])
    }

    /// Copies `bytes` in as the payload.
    ///
    /// # Errors
    /// As [`Self::payload_mut`].
    #[inline]
    pub fn write_payload(&mut self, bytes: &[u8]) -> std::result::Result<(), MessageError> {
        self.payload_mut(bytes.len())?.copy_from_slice(bytes);
        Ok(())
    }

    /// Writes a typed message: its type and its bytes.
    ///
    /// # Errors
    /// As [`Self::payload_mut`].
    #[inline]
    pub fn write_message<M: RingMessage>(&mut self, message: &M) -> std::result::Result<(), MessageError> {
        self.header.message_type = M::MESSAGE_TYPE;
        self.write_payload(bytemuck::bytes_of(message))
    }

    /// For backends: the header, the slot and the payload length, to stamp and seal.
    pub fn into_parts(self) -> (MessageHeader, &'a mut [u8], usize) {
        (self.header, self.slot, self.payload_bytes)
    }

    /// For backends: checks the header as a reader would and writes it over the payload in the
    /// slot (see [`seal_slot`]), in place.
    ///
    /// # Errors
    /// Any error of [`seal_slot`]; the slot's header is then untouched.
    #[inline]
    pub fn seal(&mut self) -> std::result::Result<(), MessageError> {
        seal_slot(self.slot, &self.header, self.payload_bytes)
    }
}

impl fmt::Debug for Outgoing<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Outgoing")
            .field("message_type", &self.header.message_type)
            .field("payload_bytes", &self.payload_bytes)
            .field("payload_capacity", &self.payload_capacity())
            .finish()
    }
}

/// Fills the `i`-th message of a [`KernelHandle::send_with`] batch.
pub type FillFn<'f> = dyn FnMut(usize, &mut Outgoing<'_>) -> Result<()> + Send + 'f;
/// Looks at one received message of [`KernelHandle::receive_with`].
pub type VisitFn<'f> = dyn FnMut(MessageView<'_>) + Send + 'f;

/// What a backend implements for one launched kernel. Users hold a [`KernelHandle`] instead.
///
/// Its waiting methods are `async_trait` methods: each call through `dyn KernelControl` pays a
/// dynamic dispatch and a boxed future. On the CPU polling model that was 3–4 % of a `call()`
/// (median 3.5 % at p50, 5.8 % at p99 on the H200 machine's host; BENCHMARKS.md), past the 3 %
/// a trait's indirection may cost on the message path. Storing the future in place instead of
/// boxing it was measured no faster (the allocation is not the cost), so the hot path goes around
/// the trait: every backend's kernels are the host engine's
/// ([`HostKernel`](crate::engine::HostKernel)), and a [`KernelHandle`] made by
/// [`KernelHandle::engine`] calls the engine's `call`, `send`, `receive` and `receive_timeout`
/// directly. The trait stays for what is not on the message path and for implementations other
/// than the engine's.
#[async_trait]
pub trait KernelControl: Send + Sync {
    /// The kernel's name.
    fn id(&self) -> &KernelId;
    /// Its current state.
    fn state(&self) -> KernelState;
    /// Starts or resumes processing.
    async fn activate(&self) -> Result<()>;
    /// Pauses processing; queue and state stay.
    async fn deactivate(&self) -> Result<()>;
    /// Drains what was accepted, stops, and releases resources.
    async fn terminate(&self) -> Result<()>;
    /// Queues a message; [`RingKernelError::QueueFull`] if there is no room.
    async fn send(&self, envelope: Envelope) -> Result<()>;
    /// Queues a message, waiting at most `timeout` for room.
    async fn send_timeout(&self, envelope: Envelope, timeout: Duration) -> Result<()>;
    /// Queues one slot's bytes exactly as given (header and payload, no stamping or checks), as a
    /// producer in another language would write them. The kernel validates them like any slot.
    async fn send_raw(&self, slot: &[u8]) -> Result<()>;
    /// Queues as many of `envelopes` as there is room for, in order, with one wake-up of the
    /// kernel, and returns how many were queued (0 when the queue is full). Every envelope is
    /// checked first: an invalid one fails the whole batch before anything is queued.
    async fn send_batch(&self, envelopes: &[Envelope]) -> Result<usize>;
    /// Writes up to `count` messages straight into the input ring: `fill(i, message)` for each,
    /// then one clock reading, one publication and one wake-up for the batch. Returns how many were
    /// queued (fewer than `count`, possibly 0, when the ring has less room). If `fill` fails or
    /// leaves an invalid header for any message, nothing of the batch is queued.
    fn send_with(&self, count: usize, fill: &mut FillFn<'_>) -> Result<usize>;
    /// Hands up to `max` messages that are already there to `visit`, in order, each borrowed from a
    /// private copy (no envelope, no allocation); returns how many. Never waits.
    fn try_receive_with(&self, max: usize, visit: &mut VisitFn<'_>) -> Result<usize>;
    /// Waits at most `timeout` for at least one message, then works as
    /// [`Self::try_receive_with`].
    async fn receive_with(&self, max: usize, timeout: Duration, visit: &mut VisitFn<'_>) -> Result<usize>;
    /// Waits for the next message from the kernel.
    async fn receive(&self) -> Result<Envelope>;
    /// Waits at most `timeout` for the next message.
    async fn receive_timeout(&self, timeout: Duration) -> Result<Envelope>;
    /// Waits at most `timeout` for at least one message, then returns every message already
    /// there, up to `max`, in order.
    async fn receive_batch(&self, max: usize, timeout: Duration) -> Result<Vec<Envelope>>;
    /// Sends and waits for the reply with the same correlation id.
    async fn call(&self, envelope: Envelope, timeout: Duration) -> Result<Envelope>;
    /// The kernel's metrics.
    fn metrics(&self) -> KernelMetrics;
    /// Messages that were accepted but never handed to the handler because the kernel failed;
    /// each is returned once.
    fn take_unprocessed(&self) -> Vec<Envelope>;
}

/// A launched kernel. Cheap to clone; every clone controls the same kernel.
///
/// Its waiting operations (`call`, `receive*`, `send_timeout`, `deactivate`, `terminate`) are
/// plain futures. Inside a Tokio runtime they sleep on Tokio's timer, so the runtime needs it
/// enabled (`enable_time` or `enable_all` on the builder; `#[tokio::main]` and `#[tokio::test]`
/// do it): without it, Tokio panics with "timers are disabled". Under any other executor they
/// block their thread in short sleeps instead.
#[derive(Clone)]
pub struct KernelHandle {
    inner: Arc<dyn KernelControl>,
    /// The same kernel as the host engine's own type, when it is one (every backend of this
    /// workspace): `call`, `send`, `receive` and `receive_timeout` then call the engine directly.
    /// Through the trait object they pay a dynamic dispatch and a boxed future, 3–4 % of a CPU
    /// polling `call()` (BENCHMARKS.md, `dispatch_report`).
    #[cfg(not(loom))]
    engine: Option<Arc<crate::engine::HostKernel>>,
}

impl KernelHandle {
    /// Wraps a backend's kernel.
    #[inline]
    pub fn new(inner: Arc<dyn KernelControl>) -> Self {
        Self {
            inner,
            #[cfg(not(loom))]
            engine: None,
        }
    }

    /// Wraps a kernel run by the host engine: its hot calls go to the engine directly.
    #[cfg(not(loom))]
    #[inline]
    pub fn engine(kernel: Arc<crate::engine::HostKernel>) -> Self {
        Self { inner: kernel.clone(), engine: Some(kernel) }
    }

    /// The kernel's name.
    pub fn id(&self) -> &KernelId {
        self.inner.id()
    }

    /// Its current state.
    pub fn state(&self) -> KernelState {
        self.inner.state()
    }

    /// Starts or resumes processing.
    pub async fn activate(&self) -> Result<()> {
        self.inner.activate().await
    }

    /// Pauses processing; queue and state stay.
    pub async fn deactivate(&self) -> Result<()> {
        self.inner.deactivate().await
    }

    /// Drains what was accepted, stops, and releases resources. On a kernel that has already
    /// stopped, terminated or failed, it returns `Ok` (there is nothing left to stop): a failure
    /// stays visible in [`Self::state`], and what it left unhandled in [`Self::take_unprocessed`].
    pub async fn terminate(&self) -> Result<()> {
        self.inner.terminate().await
    }

    /// Queues a message; [`RingKernelError::QueueFull`] if there is no room.
    pub fn send(&self, envelope: Envelope) -> impl Future<Output = Result<()>> + Send + '_ {
        // The engine's own future, or the backend's through the trait (lazy: nothing happens
        // until it is polled).
        #[cfg(not(loom))]
        if let Some(engine) = &self.engine {
            return Either::Engine { future: engine.send_direct(envelope) };
        }
        Either::through_trait(self.inner.send(envelope))
    }

    /// Queues a message, waiting at most `timeout` for room.
    pub fn send_timeout(&self, envelope: Envelope, timeout: Duration) -> impl Future<Output = Result<()>> + Send + '_ {
        // The backend's future itself (lazy: nothing happens until it is polled), not wrapped
        // in another: one state machine less to build and move on every message.
        self.inner.send_timeout(envelope, timeout)
    }

    /// Queues one slot's bytes exactly as given; the kernel validates them like any slot.
    pub async fn send_raw(&self, slot: &[u8]) -> Result<()> {
        self.inner.send_raw(slot).await
    }

    /// Queues as many of `envelopes` as fit, in order, with one wake-up; returns how many.
    pub async fn send_batch(&self, envelopes: &[Envelope]) -> Result<usize> {
        self.inner.send_batch(envelopes).await
    }

    /// Waits at most `timeout` for a message, then returns all that are there, up to `max`.
    pub async fn receive_batch(&self, max: usize, timeout: Duration) -> Result<Vec<Envelope>> {
        self.inner.receive_batch(max, timeout).await
    }

    /// Writes up to `count` messages straight into the input ring (the zero-copy send path):
    /// `fill(i, message)` sets each message's type (and any other header field) and writes its
    /// payload in place. One clock reading, one publication and one wake-up for the batch. Returns
    /// how many were queued: fewer than `count`, possibly 0, when the ring has less room. If `fill`
    /// fails or leaves an invalid header, nothing of the batch is queued.
    ///
    /// `fill` runs while this kernel's input ring is held, so other senders to this kernel wait
    /// for it: keep it short and never block in it. Sending to this same kernel from inside `fill`
    /// is refused with an error. Sending to *another* kernel works, but two closures that wait on
    /// each other's kernels (a `fill` of A sending to B on one thread while a `fill` of B sends
    /// to A on another) deadlock, as two mutexes taken in opposite orders would.
    ///
    /// ```
    /// # use ringkernel_core::runtime::KernelHandle;
    /// # fn demo(kernel: &KernelHandle) -> ringkernel_core::Result<()> {
    /// let queued = kernel.send_with(64, |i, message| {
    ///     message.set_message_type(1);
    ///     message.payload_mut(8)?.copy_from_slice(&(i as u64).to_le_bytes());
    ///     Ok(())
    /// })?;
    /// # let _ = queued; Ok(()) }
    /// ```
    pub fn send_with(
        &self,
        count: usize,
        mut fill: impl FnMut(usize, &mut Outgoing<'_>) -> Result<()> + Send,
    ) -> Result<usize> {
        self.inner.send_with(count, &mut fill)
    }

    /// Hands up to `max` messages already there to `visit`, in order, each borrowed from a private
    /// copy (no envelope, no allocation); returns how many. Never waits. `visit` runs while this
    /// kernel's output ring is held (calls and receives of this kernel wait for it), so keep it
    /// short; receiving from or calling this kernel inside `visit` is refused with an error, and
    /// the caveat of [`Self::send_with`] about closures of two kernels applies.
    pub fn try_receive_with(&self, max: usize, mut visit: impl FnMut(MessageView<'_>) + Send) -> Result<usize> {
        self.inner.try_receive_with(max, &mut visit)
    }

    /// Waits at most `timeout` for at least one message, then hands up to `max` to `visit` as
    /// [`Self::try_receive_with`] does.
    pub async fn receive_with(
        &self,
        max: usize,
        timeout: Duration,
        mut visit: impl FnMut(MessageView<'_>) + Send,
    ) -> Result<usize> {
        self.inner.receive_with(max, timeout, &mut visit).await
    }

    /// Queues a typed message.
    pub async fn send_message<M: RingMessage>(&self, message: &M) -> Result<()> {
        self.send(Envelope::from_message(message)).await
    }

    /// Waits for the next message from the kernel.
    pub fn receive(&self) -> impl Future<Output = Result<Envelope>> + Send + '_ {
        #[cfg(not(loom))]
        if let Some(engine) = &self.engine {
            return Either::Engine { future: engine.receive_direct(None) };
        }
        Either::through_trait(self.inner.receive())
    }

    /// Waits at most `timeout` for the next message.
    pub fn receive_timeout(&self, timeout: Duration) -> impl Future<Output = Result<Envelope>> + Send + '_ {
        #[cfg(not(loom))]
        if let Some(engine) = &self.engine {
            return Either::Engine { future: engine.receive_direct(Some(timeout)) };
        }
        Either::through_trait(self.inner.receive_timeout(timeout))
    }

    /// Sends and waits at most `timeout` for the reply with the same correlation id (a message
    /// with the `REPLY` flag; anything else the handler emits goes to `receive`). The send does
    /// not wait: with no room in the input ring the call fails at once with
    /// [`RingKernelError::QueueFull`]. If the call ends without its reply (a timeout, an error, the
    /// future dropped), a reply that arrives later is delivered to `receive`.
    pub fn call(&self, envelope: Envelope, timeout: Duration) -> impl Future<Output = Result<Envelope>> + Send + '_ {
        // The engine's own future when the kernel is the engine's (static, not boxed), else the
        // backend's through the trait. Lazy: nothing happens until it is polled.
        #[cfg(not(loom))]
        if let Some(engine) = &self.engine {
            return Either::Engine { future: engine.call_direct(envelope, timeout) };
        }
        Either::through_trait(self.inner.call(envelope, timeout))
    }

    /// Sends a typed message and waits at most `timeout` for the typed reply `R`.
    pub async fn call_message<M: RingMessage, R: RingMessage>(&self, message: &M, timeout: Duration) -> Result<R> {
        let reply = self.call(Envelope::from_message(message), timeout).await?;
        Ok(reply.to_message::<R>()?)
    }

    /// The kernel's metrics.
    pub fn metrics(&self) -> KernelMetrics {
        self.inner.metrics()
    }

    /// Messages accepted but never handled because the kernel failed; each is returned once.
    pub fn take_unprocessed(&self) -> Vec<Envelope> {
        self.inner.take_unprocessed()
    }
}

pin_project_lite::pin_project! {
    /// The future of a [`KernelHandle`] method: the engine's own, or a backend's through the trait.
    #[project = EitherProjection]
    enum Either<E, T> {
        Engine { #[pin] future: E },
        Trait { #[pin] future: T },
    }
}

#[cfg(not(loom))]
impl<E, T> Either<E, T> {
    #[inline]
    fn through_trait(future: T) -> Self {
        Either::Trait { future }
    }
}

#[cfg(loom)]
impl<T: Future> Either<std::future::Pending<T::Output>, T> {
    fn through_trait(future: T) -> Self {
        Either::Trait { future }
    }
}

impl<E, T> Future for Either<E, T>
where
    E: Future,
    T: Future<Output = E::Output>,
{
    type Output = E::Output;

    #[inline]
    fn poll(self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<Self::Output> {
        match self.project() {
            EitherProjection::Engine { future } => future.poll(cx),
            EitherProjection::Trait { future } => future.poll(cx),
        }
    }
}

impl fmt::Debug for KernelHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KernelHandle").field("id", self.id()).field("state", &self.state()).finish()
    }
}

/// A backend's runtime: launches kernels and reports on them.
#[async_trait]
pub trait RingKernelRuntime: Send + Sync {
    /// The backend this runtime drives.
    fn backend(&self) -> Backend;

    /// Whether `backend` can run on this machine.
    fn is_backend_available(&self, backend: Backend) -> bool;

    /// Launches the kernel registered as `kernel_id`.
    ///
    /// # Errors
    /// [`RingKernelError::KernelNotFound`] (listing the registered names) for an unknown name;
    /// [`RingKernelError::InvalidConfig`] for bad options.
    async fn launch(&self, kernel_id: &str, options: LaunchOptions) -> Result<KernelHandle>;

    /// The handle of a launched kernel.
    fn get_kernel(&self, kernel_id: &KernelId) -> Option<KernelHandle>;

    /// Every launched kernel.
    fn list_kernels(&self) -> Vec<KernelId>;

    /// Totals across kernels.
    fn metrics(&self) -> RuntimeMetrics;

    /// Terminates every kernel and releases the backend.
    async fn shutdown(&self) -> Result<()>;
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn launch_options_validation_names_the_option() {
        LaunchOptions::default().validate().unwrap();
        let err = LaunchOptions::default().with_queue_capacity(1000).validate().unwrap_err().to_string();
        assert!(err.contains("input_capacity") && err.contains("1000"), "{err}");
        let err = LaunchOptions { output_capacity: 0, ..Default::default() }.validate().unwrap_err().to_string();
        assert!(err.contains("output_capacity") && err.contains("got 0"), "{err}");
        let err = LaunchOptions::default().with_block_size(0).validate().unwrap_err().to_string();
        assert!(err.contains("block_size"), "{err}");
        let geometry = LaunchOptions::default().with_slot_payload_bytes(100).input_geometry().unwrap();
        assert_eq!(geometry.slot_bytes(), 256 + 112);
        let err = LaunchOptions::default().with_inbox_capacity(1).validate().unwrap_err().to_string();
        assert!(err.contains("inbox_capacity") && err.contains("got 1"), "{err}");
        assert_eq!(LaunchOptions::default().with_queue_capacity(8).inbox_capacity, 8);
    }

    /// A handle forwards to its backend.
    #[test]
    fn handle_forwards_to_the_backend() {
        struct Fixed(KernelId);
        #[async_trait]
        impl KernelControl for Fixed {
            fn id(&self) -> &KernelId {
                &self.0
            }
            fn state(&self) -> KernelState {
                KernelState::Deactivated
            }
            async fn activate(&self) -> Result<()> {
                Err(RingKernelError::InvalidState {
                    kernel: self.0.to_string(),
                    operation: "activate",
                    state: KernelState::Failed,
                })
            }
            async fn deactivate(&self) -> Result<()> {
                Ok(())
            }
            async fn terminate(&self) -> Result<()> {
                Ok(())
            }
            async fn send(&self, _envelope: Envelope) -> Result<()> {
                Err(RingKernelError::QueueFull { queue: "input ring", capacity: 1 })
            }
            async fn send_timeout(&self, _envelope: Envelope, timeout: Duration) -> Result<()> {
                Err(RingKernelError::Timeout { operation: "room in the input ring", waited: timeout })
            }
            async fn send_raw(&self, _slot: &[u8]) -> Result<()> {
                Ok(())
            }
            async fn send_batch(&self, envelopes: &[Envelope]) -> Result<usize> {
                Ok(envelopes.len())
            }
            fn send_with(&self, count: usize, fill: &mut FillFn<'_>) -> Result<usize> {
                let mut slot = vec![0u8; 300];
                for i in 0..count {
                    fill(i, &mut Outgoing::new(&mut slot))?;
                }
                Ok(count)
            }
            fn try_receive_with(&self, _max: usize, _visit: &mut VisitFn<'_>) -> Result<usize> {
                Ok(0)
            }
            async fn receive_with(&self, _max: usize, timeout: Duration, _visit: &mut VisitFn<'_>) -> Result<usize> {
                Err(RingKernelError::Timeout { operation: "receive", waited: timeout })
            }
            async fn receive_batch(&self, _max: usize, timeout: Duration) -> Result<Vec<Envelope>> {
                Err(RingKernelError::Timeout { operation: "receive", waited: timeout })
            }
            fn take_unprocessed(&self) -> Vec<Envelope> {
                vec![]
            }
            async fn receive(&self) -> Result<Envelope> {
                Ok(Envelope::new(1, b"r".to_vec()))
            }
            async fn receive_timeout(&self, timeout: Duration) -> Result<Envelope> {
                Err(RingKernelError::Timeout { operation: "receive", waited: timeout })
            }
            async fn call(&self, envelope: Envelope, _timeout: Duration) -> Result<Envelope> {
                Ok(envelope)
            }
            fn metrics(&self) -> KernelMetrics {
                KernelMetrics { messages_sent: 5, ..Default::default() }
            }
        }
        let handle = KernelHandle::new(Arc::new(Fixed(KernelId::from("k"))));
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        let mut poll = |f: std::pin::Pin<Box<dyn std::future::Future<Output = Result<Envelope>> + Send + '_>>| {
            let mut f = f;
            match f.as_mut().poll(&mut cx) {
                std::task::Poll::Ready(r) => r,
                std::task::Poll::Pending => panic!("ready immediately"),
            }
        };
        assert_eq!(poll(Box::pin(handle.receive())).unwrap().payload, b"r");
        assert!(matches!(
            poll(Box::pin(handle.receive_timeout(Duration::from_millis(3)))),
            Err(RingKernelError::Timeout { .. })
        ));
        let echoed = poll(Box::pin(handle.call(Envelope::new(9, vec![1]), Duration::from_secs(1)))).unwrap();
        assert_eq!(echoed.header.message_type, 9);
        assert_eq!(handle.metrics().messages_sent, 5);
        let mut lengths = Vec::new();
        let queued = handle
            .send_with(3, |i, message| {
                message.set_message_type(9).write_payload(&vec![1; i])?;
                lengths.push(message.payload_bytes());
                Ok(())
            })
            .unwrap();
        assert_eq!((queued, lengths), (3, vec![0, 1, 2]));
        assert_eq!(handle.state(), KernelState::Deactivated);
        assert_eq!(format!("{handle:?}"), "KernelHandle { id: KernelId(\"k\"), state: Deactivated }");
    }
}

#[cfg(all(test, not(loom)))]
mod outgoing_tests {
    use super::*;
    use crate::message::seal_slot;

    #[test]
    fn an_outgoing_message_writes_in_place_and_refuses_what_does_not_fit() {
        let mut slot = vec![0u8; MESSAGE_HEADER_BYTES + 16];
        let mut message = Outgoing::new(&mut slot);
        assert_eq!(message.payload_capacity(), 16);
        assert!(matches!(message.payload_mut(17), Err(MessageError::PayloadTooLarge { .. })));
        message.set_message_type(4).set_correlation_id(CorrelationId(9));
        message.write_payload(b"abc").unwrap();
        let (header, slot, len) = message.into_parts();
        seal_slot(slot, &header, len).unwrap();
        let decoded = crate::message::decode_slot(slot).unwrap();
        assert_eq!((decoded.header.message_type, decoded.payload), (4, &b"abc"[..]));
        assert_eq!(decoded.header.correlation_id(), CorrelationId(9));
    }
}
