//! End-to-end actor benchmarks through the public API: `call()` round trips and pipelined
//! streaming through the built-in `echo` kernel, with the same-run baselines of the queue
//! benchmarks (rtrb ping-pong and throughput between two threads).
//!
//! Used by `ringkernel bench` and by the criterion bench.

use std::time::{Duration, Instant};

use ringkernel::prelude::*;

/// Payload of every benchmark message: one `u64` sequence number.
pub const PAYLOAD_BYTES: usize = 8;

const TIMEOUT: Duration = Duration::from_secs(30);

/// A runtime on `backend` with an active `echo` kernel, driven from a current-thread Tokio
/// runtime on the calling thread (so the host side is one thread, like the rtrb baseline's).
pub struct EchoBench {
    tokio: tokio::runtime::Runtime,
    ring: RingKernel,
    echo: KernelHandle,
}

impl EchoBench {
    /// Starts the runtime and the kernel.
    pub fn new(backend: Backend, queue_capacity: u32) -> Result<Self> {
        let tokio = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .map_err(|e| RingKernelError::BackendUnavailable(format!("cannot start a Tokio runtime: {e}")))?;
        let (ring, echo) = tokio.block_on(async {
            let ring = RingKernel::builder().backend(backend).build().await?;
            let options = LaunchOptions::default()
                .with_queue_capacity(queue_capacity)
                .with_slot_payload_bytes(16)
                .with_auto_activate(true);
            let echo = ring.launch(builtin::ECHO, options).await?;
            Ok::<_, RingKernelError>((ring, echo))
        })?;
        Ok(Self { tokio, ring, echo })
    }

    /// The backend in use.
    pub fn backend(&self) -> Backend {
        self.ring.backend()
    }

    /// `rounds` calls, one at a time; the time of each in ns. Every reply is checked.
    pub fn call_round_trips(&self, rounds: usize) -> Result<Vec<u64>> {
        self.tokio.block_on(async {
            let mut times = Vec::with_capacity(rounds);
            for i in 0..rounds as u64 {
                let request = Envelope::new(1, i.to_le_bytes());
                let start = Instant::now();
                let reply = self.echo.call(request, TIMEOUT).await?;
                times.push(start.elapsed().as_nanos() as u64);
                if reply.payload != i.to_le_bytes() {
                    return Err(RingKernelError::KernelFault {
                        kernel: "echo".into(),
                        reason: format!("reply {i} carried {:?}", reply.payload),
                    });
                }
            }
            Ok(times)
        })
    }

    /// Streams `messages` through the kernel with up to `window` in flight (sends are
    /// pipelined; replies are received in order and checked). Returns the elapsed time.
    pub fn stream(&self, messages: u64, window: u64) -> Result<Duration> {
        self.tokio.block_on(async {
            let start = Instant::now();
            let (mut sent, mut received) = (0u64, 0u64);
            while received < messages {
                while sent < messages && sent - received < window {
                    match self.echo.send(Envelope::new(1, sent.to_le_bytes())).await {
                        Ok(()) => sent += 1,
                        Err(RingKernelError::QueueFull { .. }) => break,
                        Err(e) => return Err(e),
                    }
                }
                let reply = self.echo.receive_timeout(TIMEOUT).await?;
                if reply.payload != received.to_le_bytes() {
                    return Err(RingKernelError::KernelFault {
                        kernel: "echo".into(),
                        reason: format!("streamed reply {received} carried {:?}", reply.payload),
                    });
                }
                received += 1;
            }
            Ok(start.elapsed())
        })
    }

    /// The kernel's metrics.
    pub fn metrics(&self) -> ringkernel::runtime::KernelMetrics {
        self.echo.metrics()
    }

    /// Terminates the kernel and the runtime.
    pub fn shutdown(self) -> Result<()> {
        self.tokio.block_on(self.ring.shutdown())
    }
}
