//! The host side of one CPU kernel: sends into its input ring, routes what it writes to its
//! output ring to waiting calls or to `receive`, and drives its lifecycle.

use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use ringkernel_core::error::{Result, RingKernelError};
use ringkernel_core::layout::MESSAGE_HEADER_BYTES;
use ringkernel_core::message::{CorrelationId, Envelope, HOST_KERNEL_ID, check_header, encode_slot};
use ringkernel_core::runtime::{KernelControl, KernelId, KernelMetrics, KernelState};

use crate::shared::{HostSide, MESSAGE_LINES, Shared, Signal, lock};

/// Longest sleep between checks when waiting outside a Tokio runtime.
const NO_RUNTIME_SLEEP: Duration = Duration::from_micros(200);

/// One launched CPU kernel, as the runtime and its handles see it.
pub(crate) struct CpuKernel {
    pub(crate) shared: Arc<Shared>,
    pub(crate) thread: std::sync::Mutex<Option<JoinHandle<()>>>,
}

impl Drop for CpuKernel {
    /// The last handle is gone: nobody can read replies or terminate the kernel any more, so stop
    /// it (it still handles what it had accepted) and let its thread exit.
    fn drop(&mut self) {
        self.shared.detached.store(true, Ordering::Release);
        self.request_terminate();
    }
}

impl CpuKernel {
    /// The error for an operation that needs a live kernel.
    fn not_running(&self, operation: &'static str, state: KernelState) -> RingKernelError {
        match state {
            KernelState::Failed => {
                RingKernelError::KernelFault { kernel: self.shared.id.to_string(), reason: self.shared.fault_reason() }
            }
            state => RingKernelError::InvalidState { kernel: self.shared.id.to_string(), operation, state },
        }
    }

    /// Moves to `next` if the lifecycle allows it, and tells the kernel.
    pub(crate) fn transition(&self, operation: &'static str, next: KernelState) -> Result<()> {
        let shared = &self.shared;
        {
            let _host = lock(&shared.host);
            let current = shared.state();
            if !current.can_become(next) {
                return Err(self.not_running(operation, current));
            }
            shared.set_state(next);
            match next {
                KernelState::Active => shared.control.activate(),
                KernelState::Deactivated => shared.control.deactivate(),
                KernelState::Terminating => shared.control.request_terminate(),
                _ => {}
            }
        }
        shared.wake_kernel();
        Ok(())
    }

    /// Asks the kernel to drain and stop, unless it is already stopping or stopped.
    pub(crate) fn request_terminate(&self) {
        // The only refusal is "already terminating, terminated or failed": nothing to do then.
        let _ = self.transition("terminate", KernelState::Terminating);
    }

    /// Stamps and writes one message into the input ring without waiting; the caller holds the
    /// host lock and wakes the kernel afterwards. A full ring counts as a refusal only if
    /// `count_full` (a send that will wait and retry is not refused yet).
    fn send_locked(&self, host: &mut HostSide, envelope: &Envelope, count_full: bool) -> Result<()> {
        self.check_sendable(host, std::slice::from_ref(envelope))?;
        self.push_locked(host, envelope, count_full)
    }

    /// Whether the kernel accepts messages, and every envelope is one a reader would accept.
    fn check_sendable(&self, host: &mut HostSide, envelopes: &[Envelope]) -> Result<()> {
        let state = self.shared.state();
        if matches!(state, KernelState::Terminating) || state.is_final() {
            return Err(self.not_running("send to", state));
        }
        let capacity = host.producer.slot_bytes() - MESSAGE_HEADER_BYTES;
        for envelope in envelopes {
            if let Err(error) = check_header(&envelope.header, envelope.payload.len(), capacity) {
                host.refused += 1;
                return Err(error.into());
            }
        }
        Ok(())
    }

    /// Stamps and writes one checked envelope.
    fn push_locked(&self, host: &mut HostSide, envelope: &Envelope, count_full: bool) -> Result<()> {
        let shared = &self.shared;
        let mut header = envelope.header;
        header.source_kernel = HOST_KERNEL_ID;
        header.dest_kernel = shared.number;
        // Stamped under the lock so that timestamps increase in queue order.
        header.set_timestamp(shared.host_clock.tick());
        match host.producer.try_push(|slot| encode_slot(slot, &header, &envelope.payload)) {
            Ok(encoded) => encoded.expect("header and payload size were checked before claiming the slot"),
            Err(full) => {
                host.refused += u64::from(count_full);
                return Err(full.into_error("input ring"));
            }
        }
        host.sent += 1;
        host.producer.prefetch_next_for_write(&MESSAGE_LINES);
        Ok(())
    }

    /// [`Self::send_locked`] under the lock, then wakes the kernel.
    fn try_send(&self, envelope: &Envelope, count_full: bool) -> Result<()> {
        self.send_locked(&mut lock(&self.shared.host), envelope, count_full)?;
        self.shared.wake_kernel();
        Ok(())
    }

    /// Moves what is in the output ring to the waiting calls or the `receive` queue. A message
    /// with the correlation id `want` is returned instead, and draining stops there (what follows
    /// stays in the ring for the next drain).
    fn drain_output(&self, host: &mut HostSide, want: Option<u64>) -> Option<Envelope> {
        let shared = &self.shared;
        let mut moved = 0u32;
        let mut found = None;
        while let Some(decoded) = host.consumer.try_pop(Envelope::decode_from) {
            let envelope = match decoded {
                Ok(envelope) => envelope,
                Err(error) => {
                    host.errors += 1;
                    tracing::error!(kernel = %shared.id, %error, "undecodable message in the output ring");
                    continue;
                }
            };
            host.received += 1;
            if let Err(error) = shared.host_clock.update(envelope.header.timestamp()) {
                tracing::warn!(kernel = %shared.id, %error, "kernel timestamp rejected by the host clock");
            }
            let correlation = envelope.header.correlation_id().0;
            moved += 1;
            if correlation != CorrelationId::NONE.0 && want == Some(correlation) {
                found = Some(envelope);
                break;
            }
            match host.pending.get_mut(&correlation) {
                Some(waiting @ None) if correlation != CorrelationId::NONE.0 => *waiting = Some(Box::new(envelope)),
                _ => host.unclaimed.push_back(envelope),
            }
        }
        if moved > 0 {
            shared.drains.fetch_add(1, Ordering::Release);
        }
        // A kernel waits for room only when its ring was full, and then this drain moved at least
        // a quarter of it (the consumer hands slots back per quarter). Smaller drains skip the
        // fence; a wake-up missed anyway costs the kernel at most its 1 ms back-off, never a hang.
        if moved >= host.consumer.capacity().div_ceil(4) {
            std::sync::atomic::fence(Ordering::SeqCst);
            if shared.output_blocked.load(Ordering::Relaxed) {
                shared.wake_kernel();
            }
        }
        found
    }

    /// Drains the output ring and asks `check` whether the wait is over. `check` also gets the
    /// state read *before* draining: a kernel publishes its last output before its final state,
    /// so a final state seen here means nothing more will arrive.
    fn poll_output<T>(
        &self,
        want: Option<u64>,
        check: &mut impl FnMut(KernelState, &mut HostSide, Option<Envelope>) -> Option<Result<T>>,
    ) -> Option<Result<T>> {
        let state = self.shared.state();
        let mut host = lock(&self.shared.host);
        let found = self.drain_output(&mut host, want);
        check(state, &mut host, found)
    }

    /// Spins for the configured time, then waits on `signal`, until `poll` returns a result or
    /// `timeout` passes.
    async fn wait<T>(
        &self,
        signal: &Signal,
        timeout: Option<Duration>,
        operation: &'static str,
        mut poll: impl FnMut() -> Option<Result<T>>,
    ) -> Result<T> {
        // The clock is read only once a first round of polls came up empty: most replies arrive
        // within it, and each reading costs about as much as a poll. The timeout therefore counts
        // from that first reading, a few microseconds late at most.
        let mut started = None;
        'spin: loop {
            for _ in 0..64 {
                if let Some(result) = poll() {
                    return result;
                }
                std::hint::spin_loop();
            }
            let now = Instant::now();
            let started = *started.get_or_insert(now);
            if now >= started + self.shared.config.spin_before_park || timeout.is_some_and(|t| now >= started + t) {
                break 'spin;
            }
        }
        let deadline = timeout.map(|t| started.unwrap_or_else(Instant::now) + t);
        if tokio::runtime::Handle::try_current().is_err() {
            // Not inside a Tokio runtime (another executor, or `block_on` of a plain future):
            // wait by sleeping in short steps instead of on the Tokio timer.
            return self.wait_without_tokio(deadline, timeout, operation, poll);
        }
        loop {
            let mut notified = pin!(signal.notified());
            notified.as_mut().enable();
            let _waiting = signal.register();
            if let Some(result) = poll() {
                return result;
            }
            match deadline {
                None => notified.await,
                Some(deadline) => {
                    if Instant::now() >= deadline {
                        return Err(RingKernelError::Timeout { operation, waited: timeout.unwrap_or_default() });
                    }
                    let _ = tokio::time::timeout_at(deadline.into(), notified).await;
                }
            }
        }
    }

    /// The waiting half of [`Self::wait`] for callers outside a Tokio runtime: it blocks the
    /// calling thread in sleeps of at most [`NO_RUNTIME_SLEEP`].
    fn wait_without_tokio<T>(
        &self,
        deadline: Option<Instant>,
        timeout: Option<Duration>,
        operation: &'static str,
        mut poll: impl FnMut() -> Option<Result<T>>,
    ) -> Result<T> {
        loop {
            if let Some(result) = poll() {
                return result;
            }
            let now = Instant::now();
            let step = match deadline {
                Some(deadline) if now >= deadline => {
                    return Err(RingKernelError::Timeout { operation, waited: timeout.unwrap_or_default() });
                }
                Some(deadline) => (deadline - now).min(NO_RUNTIME_SLEEP),
                None => NO_RUNTIME_SLEEP,
            };
            std::thread::sleep(step);
        }
    }

    /// Waits for output that `check` accepts.
    ///
    /// `check` can only change its answer after a drain moved something or the state changed, so
    /// a poll that sees the same output tail, drain count and state as the last one skips the lock.
    async fn wait_output<T>(
        &self,
        timeout: Option<Duration>,
        operation: &'static str,
        want: Option<u64>,
        mut check: impl FnMut(KernelState, &mut HostSide, Option<Envelope>) -> Option<Result<T>>,
    ) -> Result<T> {
        let shared = &self.shared;
        let mut last_seen = None;
        self.wait(&shared.output_signal, timeout, operation, || {
            let seen = (
                shared.control.block().output_tail.load(Ordering::Acquire),
                shared.drains.load(Ordering::Acquire),
                shared.state(),
            );
            if last_seen == Some(seen) {
                return None;
            }
            last_seen = Some(seen);
            self.poll_output(want, &mut check)
        })
        .await
    }

    /// `receive` with an optional timeout.
    async fn next_message(&self, timeout: Option<Duration>) -> Result<Envelope> {
        self.wait_output(timeout, "a message from the kernel", None, |state, host, _| {
            match host.unclaimed.pop_front() {
                Some(envelope) => Some(Ok(envelope)),
                None if state.is_final() => Some(Err(self.not_running("receive from", state))),
                None => None,
            }
        })
        .await
    }
}

/// Removes a call's entry if the call ends without its reply (an error, a timeout, or its future
/// dropped); a reply that arrives for an abandoned call goes to `receive`, so it is not lost.
struct PendingCall<'a> {
    shared: &'a Shared,
    correlation: u64,
    /// The entry was already removed with its reply.
    answered: bool,
}

impl Drop for PendingCall<'_> {
    fn drop(&mut self) {
        if self.answered {
            return;
        }
        let mut host = lock(&self.shared.host);
        if let Some(Some(reply)) = host.pending.remove(&self.correlation) {
            host.unclaimed.push_back(*reply);
        }
    }
}

#[async_trait]
impl KernelControl for CpuKernel {
    fn id(&self) -> &KernelId {
        &self.shared.id
    }

    fn state(&self) -> KernelState {
        self.shared.state()
    }

    async fn activate(&self) -> Result<()> {
        self.transition("activate", KernelState::Active)
    }

    async fn deactivate(&self) -> Result<()> {
        self.transition("deactivate", KernelState::Deactivated)
    }

    async fn terminate(&self) -> Result<()> {
        self.request_terminate();
        // Waiting also drains the output ring, so a kernel blocked on a full ring can finish.
        self.wait_output(None, "termination", None, |state, _, _| state.is_final().then_some(Ok(()))).await?;
        let thread = lock(&self.thread).take();
        if let Some(thread) = thread
            && thread.join().is_err()
        {
            tracing::error!(kernel = %self.shared.id, "actor thread panicked outside a handler");
        }
        Ok(())
    }

    async fn send(&self, envelope: Envelope) -> Result<()> {
        self.try_send(&envelope, true)
    }

    async fn send_timeout(&self, envelope: Envelope, timeout: Duration) -> Result<()> {
        self.wait(&self.shared.input_signal, Some(timeout), "room in the input ring", || {
            match self.try_send(&envelope, false) {
                Err(RingKernelError::QueueFull { .. }) => None,
                other => Some(other),
            }
        })
        .await
        .inspect_err(|error| {
            if matches!(error, RingKernelError::Timeout { .. }) {
                lock(&self.shared.host).refused += 1;
            }
        })
    }

    async fn send_raw(&self, slot: &[u8]) -> Result<()> {
        let shared = &self.shared;
        {
            let mut host = lock(&shared.host);
            self.check_sendable(&mut host, &[])?;
            host.producer.push_bytes(slot).inspect_err(|_| host.refused += 1)?;
            host.sent += 1;
        }
        shared.wake_kernel();
        Ok(())
    }

    async fn send_batch(&self, envelopes: &[Envelope]) -> Result<usize> {
        let mut sent = 0;
        {
            let mut host = lock(&self.shared.host);
            self.check_sendable(&mut host, envelopes)?;
            for envelope in envelopes {
                match self.push_locked(&mut host, envelope, false) {
                    Ok(()) => sent += 1,
                    Err(RingKernelError::QueueFull { .. }) => break,
                    Err(other) => return Err(other),
                }
            }
        }
        if sent > 0 {
            self.shared.wake_kernel();
        }
        Ok(sent)
    }

    async fn receive_batch(&self, max: usize, timeout: Duration) -> Result<Vec<Envelope>> {
        if max == 0 {
            return Ok(Vec::new());
        }
        self.wait_output(Some(timeout), "a message from the kernel", None, |state, host, _| {
            if host.unclaimed.is_empty() {
                return state.is_final().then(|| Err(self.not_running("receive from", state)));
            }
            let take = host.unclaimed.len().min(max);
            Some(Ok(host.unclaimed.drain(..take).collect()))
        })
        .await
    }

    async fn receive(&self) -> Result<Envelope> {
        self.next_message(None).await
    }

    async fn receive_timeout(&self, timeout: Duration) -> Result<Envelope> {
        self.next_message(Some(timeout)).await
    }

    async fn call(&self, mut envelope: Envelope, timeout: Duration) -> Result<Envelope> {
        let started = Instant::now();
        if envelope.header.correlation_id() == CorrelationId::NONE {
            envelope.header.correlation_id = CorrelationId::generate().to_words();
        }
        let correlation = envelope.header.correlation_id().0;
        {
            let mut host = lock(&self.shared.host);
            if host.pending.contains_key(&correlation) {
                return Err(RingKernelError::InvalidConfig {
                    field: "correlation_id",
                    reason: format!("{correlation} is already awaited by another call"),
                });
            }
            // Registered under the same lock as the send, so no drain can miss it.
            self.send_locked(&mut host, &envelope, true)?;
            host.pending.insert(correlation, None);
        }
        self.shared.wake_kernel();
        let mut pending = PendingCall { shared: &self.shared, correlation, answered: false };
        let reply = self
            .wait_output(Some(timeout), "the reply", Some(correlation), |state, host, found| {
                // Ours from this drain, or from another caller's drain before it.
                let reply = match found.or_else(|| host.pending.get_mut(&correlation)?.take().map(|reply| *reply)) {
                    Some(reply) => reply,
                    None if state.is_final() => return Some(Err(self.not_running("await a reply from", state))),
                    None => return None,
                };
                host.pending.remove(&correlation);
                let elapsed_ns = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX).max(1);
                let _ = host.latency.record(elapsed_ns);
                Some(Ok(reply))
            })
            .await?;
        pending.answered = true;
        reply.into_result(self.shared.id.as_str())
    }

    fn metrics(&self) -> KernelMetrics {
        let shared = &self.shared;
        let block = shared.control.block();
        let (processed, device_rejected, device_errors) = {
            let mut widened = lock(&shared.widened);
            (
                widened.processed.update(block.messages_processed.load(Ordering::Acquire)),
                widened.rejected.update(block.messages_rejected.load(Ordering::Acquire)),
                widened.errors.update(block.error_count.load(Ordering::Acquire)),
            )
        };
        let returned = shared.returned.load(Ordering::Relaxed);
        let host = lock(&shared.host);
        let quantile = |q: f64| (!host.latency.is_empty()).then(|| host.latency.value_at_quantile(q) as f64 / 1000.0);
        KernelMetrics {
            messages_sent: host.sent,
            messages_processed: processed,
            messages_rejected: device_rejected + host.refused,
            messages_in_flight: host.sent.saturating_sub(processed + device_rejected + returned),
            replies_received: host.received,
            errors: device_errors + host.errors,
            latency_p50_us: quantile(0.5),
            latency_p99_us: quantile(0.99),
        }
    }

    fn take_unprocessed(&self) -> Vec<Envelope> {
        std::mem::take(&mut *lock(&self.shared.unprocessed))
    }
}
