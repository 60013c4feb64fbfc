//! End-to-end actor benchmarks through the public API: `call()` round trips and pipelined
//! streaming through the built-in `echo` kernel — with envelopes and through the zero-copy path —
//! with the same-run baselines of the queue benchmarks (rtrb ping-pong and throughput between two
//! threads).
//!
//! [`slot_ping_pong`] sits between the two: the same slots an actor exchanges (a 256-byte header,
//! validated, then the payload) over two bare SPSC rings, with no runtime around them. It shows
//! how much of a `call()` is the message format and how much is the runtime (clocks, routing,
//! locks, async).
//!
//! Used by `ringkernel bench`.

use std::time::{Duration, Instant};

use ringkernel::layout::RingGeometry;
use ringkernel::message::{HeaderPart, SlotBuffer, write_slot};
use ringkernel::prelude::*;
use ringkernel::queue::spsc;

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

    /// The echo kernel.
    pub fn handle(&self) -> &KernelHandle {
        &self.echo
    }

    /// Runs a future on the bench's Tokio runtime.
    pub fn block_on<F: std::future::Future>(&self, future: F) -> F::Output {
        self.tokio.block_on(future)
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
                expect_in_order(&self.echo.receive_timeout(TIMEOUT).await?, received)?;
                received += 1;
            }
            Ok(start.elapsed())
        })
    }

    /// [`Self::stream`] through the zero-copy path: `send_with` of one message (its payload written
    /// straight into the slot) and `receive_with` of one (a borrowed view of a private copy). No
    /// allocation per message.
    pub fn stream_zero_copy(&self, messages: u64, window: u64) -> Result<Duration> {
        self.tokio.block_on(async {
            let start = Instant::now();
            let (mut sent, mut received) = (0u64, 0u64);
            while received < messages {
                // Pipelined like `stream`: fill the window one message at a time, then take one.
                while sent < messages && sent - received < window {
                    if self.send_sequence(sent, 1)? == 0 {
                        break;
                    }
                    sent += 1;
                }
                self.receive_in_order(1, &mut received).await?;
            }
            Ok(start.elapsed())
        })
    }

    /// The zero-copy path in batches: `send_with` of up to `batch` messages (one clock reading,
    /// one publication, one wake-up per batch) and `receive_with` of up to `batch`.
    pub fn stream_zero_copy_batched(&self, messages: u64, window: u64, batch: usize) -> Result<Duration> {
        self.tokio.block_on(async {
            let start = Instant::now();
            let (mut sent, mut received) = (0u64, 0u64);
            while received < messages {
                let room = (messages - sent).min(window - (sent - received)).min(batch as u64) as usize;
                sent += self.send_sequence(sent, room)? as u64;
                self.receive_in_order(batch, &mut received).await?;
            }
            Ok(start.elapsed())
        })
    }

    /// Zero-copy send of up to `count` messages carrying the sequence numbers from `first` on;
    /// returns how many were queued.
    fn send_sequence(&self, first: u64, count: usize) -> Result<usize> {
        self.echo.send_with(count, |i, message| {
            message.set_message_type(1);
            message.payload_mut(PAYLOAD_BYTES)?.copy_from_slice(&(first + i as u64).to_le_bytes());
            Ok(())
        })
    }

    /// Zero-copy receive of up to `max` replies, each checked to carry sequence number
    /// `*received` (which it advances).
    async fn receive_in_order(&self, max: usize, received: &mut u64) -> Result<()> {
        let mut out_of_order = None;
        self.echo
            .receive_with(max, TIMEOUT, |reply| {
                if reply.payload != received.to_le_bytes() {
                    out_of_order.get_or_insert(*received);
                }
                *received += 1;
            })
            .await?;
        match out_of_order {
            None => Ok(()),
            Some(expected) => Err(RingKernelError::KernelFault {
                kernel: "echo".into(),
                reason: format!("streamed reply {expected} carried another payload"),
            }),
        }
    }

    /// [`Self::stream`] with `send_batch` and `receive_batch` of up to `batch` messages.
    pub fn stream_batched(&self, messages: u64, window: u64, batch: usize) -> Result<Duration> {
        self.tokio.block_on(async {
            let start = Instant::now();
            let (mut sent, mut received) = (0u64, 0u64);
            let mut envelopes = Vec::with_capacity(batch);
            while received < messages {
                let room = (messages - sent).min(window - (sent - received)).min(batch as u64);
                envelopes.clear();
                envelopes.extend((sent..sent + room).map(|i| Envelope::new(1, i.to_le_bytes())));
                sent += self.echo.send_batch(&envelopes).await? as u64;
                for reply in self.echo.receive_batch(batch, TIMEOUT).await? {
                    expect_in_order(&reply, received)?;
                    received += 1;
                }
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

/// Checks that a streamed reply carries the sequence number `expected`.
fn expect_in_order(reply: &Envelope, expected: u64) -> Result<()> {
    if reply.payload == expected.to_le_bytes() {
        return Ok(());
    }
    Err(RingKernelError::KernelFault {
        kernel: "echo".into(),
        reason: format!("streamed reply {expected} carried {:?}", reply.payload),
    })
}

/// Two-thread ping-pong of encoded message slots (header + `PAYLOAD_BYTES` payload) over two SPSC
/// rings, with the runtime's codec path and nothing else: the caller builds a header, writes the
/// payload into the slot and seals the header over it; the echo thread copies the slot's hot line
/// and payload out, validates the copy, and writes a reply the same way; the caller copies the
/// reply out, validates it and makes an envelope of it (as `call` returns). No clock, no routing,
/// no locks, no async. Returns per-round-trip ns. Panics if a reply does not carry its request's
/// payload.
pub fn slot_ping_pong(rounds: usize) -> Vec<u64> {
    let geometry = RingGeometry::for_messages(1024, PAYLOAD_BYTES as u32).expect("valid geometry");
    let (mut request_tx, mut request_rx) = spsc::channel(geometry).expect("a small ring fits in memory");
    let (mut reply_tx, mut reply_rx) = spsc::channel(geometry).expect("a small ring fits in memory");
    let slot_bytes = geometry.slot_bytes() as usize;
    let echo = std::thread::spawn(move || {
        let mut buffer = SlotBuffer::new(slot_bytes).expect("a slot fits in memory");
        let mut handled = 0;
        while handled < rounds {
            if request_rx.try_pop(|slot| slot.copy_message_into(&mut buffer, HeaderPart::Hot)).is_err() {
                std::hint::spin_loop();
                continue;
            }
            let request = buffer.decode().expect("valid request");
            let header = request.header.reply(request.header.message_type);
            let payload = request.payload;
            while reply_tx.try_push(|out| write_slot(out, &header, payload).expect("payload fits")).is_err() {
                std::hint::spin_loop();
            }
            handled += 1;
        }
    });
    let mut buffer = SlotBuffer::new(slot_bytes).expect("a slot fits in memory");
    let mut times = Vec::with_capacity(rounds);
    for i in 0..rounds as u64 {
        let payload = i.to_le_bytes();
        let start = Instant::now();
        let header = HeaderBuilder::new(1).build();
        request_tx.try_push(|slot| write_slot(slot, &header, &payload).expect("payload fits")).expect("one in flight");
        while reply_rx.try_pop(|slot| slot.copy_message_into(&mut buffer, HeaderPart::Used)).is_err() {
            std::hint::spin_loop();
        }
        let echoed = Envelope::from_decoded(&buffer.decode().expect("valid reply"));
        times.push(start.elapsed().as_nanos() as u64);
        assert_eq!(echoed.payload, payload, "reply {i} carries its request's payload");
    }
    echo.join().expect("echo thread panicked");
    times
}
