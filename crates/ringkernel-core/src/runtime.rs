//! The runtime API every backend implements.
//!
//! [`RingKernelRuntime`] launches kernels by registered name and hands back [`KernelHandle`]s;
//! each backend implements [`KernelControl`] behind the handle. Only the facade chooses among
//! backends; this module never names one's internals.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::error::{Result, RingKernelError};
use crate::layout::{MAX_QUEUE_CAPACITY, RingGeometry};
use crate::message::{Envelope, RingMessage};

/// A compute backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Backend {
    /// The best backend available at run time.
    #[default]
    Auto,
    /// One OS thread per actor; always available; the reference semantics.
    Cpu,
    /// Persistent kernels on NVIDIA GPUs.
    Cuda,
    /// Event-driven dispatches on Vulkan, DX12 or Metal through wgpu.
    Wgpu,
    /// Apple GPUs.
    Metal,
}

impl Backend {
    /// Every concrete backend, in the order `Auto` prefers them.
    pub const CONCRETE: [Backend; 4] = [Backend::Cuda, Backend::Metal, Backend::Wgpu, Backend::Cpu];

    /// Lower-case name, as accepted by [`FromStr`].
    pub fn name(self) -> &'static str {
        match self {
            Backend::Auto => "auto",
            Backend::Cpu => "cpu",
            Backend::Cuda => "cuda",
            Backend::Wgpu => "wgpu",
            Backend::Metal => "metal",
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Backend {
    type Err = RingKernelError;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "auto" => Ok(Backend::Auto),
            "cpu" => Ok(Backend::Cpu),
            "cuda" => Ok(Backend::Cuda),
            "wgpu" => Ok(Backend::Wgpu),
            "metal" => Ok(Backend::Metal),
            _ => Err(RingKernelError::InvalidConfig {
                field: "backend",
                reason: format!("unknown backend `{s}`; expected one of auto, cpu, cuda, wgpu, metal"),
            }),
        }
    }
}

/// The name a kernel was launched under.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KernelId(String);

impl KernelId {
    /// A kernel id.
    pub fn new(name: impl Into<String>) -> Self {
        Self(name.into())
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The registered kernel this id launches: the part before
    /// [`crate::kernel::INSTANCE_SEPARATOR`] (`"counter#2"` launches `counter`).
    pub fn spec_name(&self) -> &str {
        self.0.split(crate::kernel::INSTANCE_SEPARATOR).next().unwrap_or_default()
    }
}

impl fmt::Display for KernelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for KernelId {
    fn from(name: &str) -> Self {
        Self::new(name)
    }
}

impl From<String> for KernelId {
    fn from(name: String) -> Self {
        Self(name)
    }
}

/// Lifecycle: `Launched → Active ⇄ Deactivated → Terminating → Terminated`, or `Failed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KernelState {
    /// Resources exist; not processing yet.
    Launched,
    /// Processing messages.
    Active,
    /// Paused: queue and state kept, nothing processed.
    Deactivated,
    /// Draining what was accepted before stopping.
    Terminating,
    /// Stopped; every accepted message was processed or returned.
    Terminated,
    /// Stopped by a fault (handler panic, device error, watchdog).
    Failed,
}

impl KernelState {
    /// Whether the kernel has stopped for good.
    pub fn is_final(self) -> bool {
        matches!(self, KernelState::Terminated | KernelState::Failed)
    }

    /// Whether moving to `next` is a legal lifecycle step.
    pub fn can_become(self, next: KernelState) -> bool {
        use KernelState::*;
        match (self, next) {
            (_, Failed) => !self.is_final(),
            (Launched, Active) | (Active, Deactivated) | (Deactivated, Active) => true,
            (Launched | Active | Deactivated, Terminating) => true,
            (Terminating, Terminated) => true,
            _ => false,
        }
    }
}

/// How to launch a kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LaunchOptions {
    /// Input ring capacity in slots (power of two).
    pub input_capacity: u32,
    /// Output ring capacity in slots (power of two).
    pub output_capacity: u32,
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
            slot_payload_bytes: 256,
            block_size: 128,
            auto_activate: false,
            initial_state: None,
        }
    }
}

impl LaunchOptions {
    /// Sets both queue capacities.
    pub fn with_queue_capacity(mut self, capacity: u32) -> Self {
        self.input_capacity = capacity;
        self.output_capacity = capacity;
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
        self.input_geometry()?;
        self.output_geometry()?;
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

/// What a backend implements for one launched kernel. Users hold a [`KernelHandle`] instead.
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
#[derive(Clone)]
pub struct KernelHandle {
    inner: Arc<dyn KernelControl>,
}

impl KernelHandle {
    /// Wraps a backend's kernel.
    pub fn new(inner: Arc<dyn KernelControl>) -> Self {
        Self { inner }
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

    /// Drains what was accepted, stops, and releases resources.
    pub async fn terminate(&self) -> Result<()> {
        self.inner.terminate().await
    }

    /// Queues a message; [`RingKernelError::QueueFull`] if there is no room.
    pub async fn send(&self, envelope: Envelope) -> Result<()> {
        self.inner.send(envelope).await
    }

    /// Queues a message, waiting at most `timeout` for room.
    pub async fn send_timeout(&self, envelope: Envelope, timeout: Duration) -> Result<()> {
        self.inner.send_timeout(envelope, timeout).await
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

    /// Queues a typed message.
    pub async fn send_message<M: RingMessage>(&self, message: &M) -> Result<()> {
        self.inner.send(Envelope::from_message(message)).await
    }

    /// Waits for the next message from the kernel.
    pub async fn receive(&self) -> Result<Envelope> {
        self.inner.receive().await
    }

    /// Waits at most `timeout` for the next message.
    pub async fn receive_timeout(&self, timeout: Duration) -> Result<Envelope> {
        self.inner.receive_timeout(timeout).await
    }

    /// Sends and waits at most `timeout` for the reply with the same correlation id.
    pub async fn call(&self, envelope: Envelope, timeout: Duration) -> Result<Envelope> {
        self.inner.call(envelope, timeout).await
    }

    /// Sends a typed message and waits at most `timeout` for the typed reply `R`.
    pub async fn call_message<M: RingMessage, R: RingMessage>(&self, message: &M, timeout: Duration) -> Result<R> {
        let reply = self.inner.call(Envelope::from_message(message), timeout).await?;
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
    fn backend_names_round_trip_and_unknown_names_are_explained() {
        for backend in [Backend::Auto, Backend::Cpu, Backend::Cuda, Backend::Wgpu, Backend::Metal] {
            assert_eq!(backend.name().parse::<Backend>().unwrap(), backend);
            assert_eq!(backend.to_string(), backend.name());
        }
        assert_eq!("CUDA".parse::<Backend>().unwrap(), Backend::Cuda);
        let err = "vulkan".parse::<Backend>().unwrap_err().to_string();
        assert!(err.contains("`vulkan`") && err.contains("wgpu"), "{err}");
    }

    #[test]
    fn lifecycle_transitions() {
        use KernelState::*;
        assert!(Launched.can_become(Active));
        assert!(Active.can_become(Deactivated) && Deactivated.can_become(Active));
        assert!(Deactivated.can_become(Terminating) && Terminating.can_become(Terminated));
        assert!(Active.can_become(Failed));
        assert!(!Terminated.can_become(Active));
        assert!(!Terminated.can_become(Failed));
        assert!(!Launched.can_become(Terminated), "must pass through Terminating (drain)");
        assert!(Failed.is_final() && Terminated.is_final() && !Active.is_final());
    }

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
        assert_eq!(handle.state(), KernelState::Deactivated);
        assert_eq!(format!("{handle:?}"), "KernelHandle { id: KernelId(\"k\"), state: Deactivated }");
    }
}
