//! How host tasks wait for the device: spin while answers come fast, then sleep until the
//! doorbell rings (or, for a device without one, poll at an interval), until a deadline.
//!
//! Inside a Tokio runtime the sleeping half awaits the doorbell and the Tokio timer; outside one
//! (another executor, a bare `block_on`) it blocks the calling thread in short sleeps instead of
//! panicking.

use std::pin::pin;
use std::time::{Duration, Instant};

use crate::error::{Result, RingKernelError};

use super::device::Doorbell;

/// Longest sleep between checks when waiting outside a Tokio runtime.
const NO_RUNTIME_SLEEP: Duration = Duration::from_micros(200);

/// Takes part in the runtime's cooperative scheduling: spends one unit of the current task's
/// Tokio budget and yields to the runtime once the budget is gone (Tokio gives each task 128 units
/// per poll). An operation that completes without waiting calls this, so that a loop of fast
/// calls lets the other tasks of its worker run now and then. Costs a thread-local access; outside
/// a Tokio runtime it does nothing.
pub(crate) async fn cooperate() {
    tokio::task::coop::consume_budget().await;
}

/// The waiting policy of one kernel.
pub(crate) struct Waiter<'a> {
    pub(crate) doorbell: &'a Doorbell,
    /// Spin this long before sleeping.
    pub(crate) spin: Duration,
    /// `None`: the device rings the doorbell, so sleep until it does. `Some(interval)`: nobody
    /// rings it for device events, so wake at least this often to look.
    pub(crate) poll_interval: Option<Duration>,
}

impl Waiter<'_> {
    /// Calls `poll` until it returns a result or `timeout` passes (then a
    /// [`RingKernelError::Timeout`] naming `operation`).
    ///
    /// The spinning half runs right here, with no state of its own across an await; the sleeping
    /// half is a separate boxed future, made only when spinning did not do. (The future of every
    /// waiting operation is held by the caller's, or boxed by the trait; keeping the sleeping
    /// machinery out of it keeps it small, and the common case never pays for the rest.)
    pub(crate) async fn wait<T>(
        &self,
        timeout: Option<Duration>,
        operation: &'static str,
        mut poll: impl FnMut() -> Option<Result<T>> + Send,
    ) -> Result<T>
    where
        T: Send,
    {
        let started = match self.spin(timeout, &mut poll) {
            Ok(result) => {
                // Done without waiting: a loop of such operations would never give its worker
                // back, so each spends a unit of the task's budget and yields once it is gone.
                cooperate().await;
                return result;
            }
            Err(started) => started,
        };
        Box::pin(self.sleep(started, timeout, operation, poll)).await
    }

    /// Polls for the spinning time; `Err(start)` when it ran out (the time it started counting).
    fn spin<T>(
        &self,
        timeout: Option<Duration>,
        poll: &mut impl FnMut() -> Option<Result<T>>,
    ) -> std::result::Result<Result<T>, Instant> {
        // The clock is read only once a first round of polls came up empty: most answers arrive
        // within it, and each reading costs about as much as a poll. The timeout therefore counts
        // from that first reading, a few microseconds late at most.
        let mut started = None;
        loop {
            for _ in 0..64 {
                if let Some(result) = poll() {
                    return Ok(result);
                }
                std::hint::spin_loop();
            }
            let now = Instant::now();
            let started = *started.get_or_insert(now);
            let passed = now.duration_since(started);
            if passed >= self.spin || timeout.is_some_and(|t| passed >= t) {
                return Err(started);
            }
        }
    }

    /// The sleeping half of [`Self::wait`].
    async fn sleep<T>(
        &self,
        started: Instant,
        timeout: Option<Duration>,
        operation: &'static str,
        mut poll: impl FnMut() -> Option<Result<T>>,
    ) -> Result<T> {
        // A timeout too long to add to the clock (`Duration::MAX`, say) means no deadline.
        let deadline = timeout.and_then(|t| started.checked_add(t));
        let timed_out = || RingKernelError::Timeout { operation, waited: timeout.unwrap_or_default() };
        if tokio::runtime::Handle::try_current().is_err() {
            return self.wait_without_tokio(deadline, timed_out, poll);
        }
        loop {
            let mut notified = pin!(self.doorbell.notified());
            notified.as_mut().enable();
            let _waiting = self.doorbell.register();
            if let Some(result) = poll() {
                return result;
            }
            let now = Instant::now();
            if deadline.is_some_and(|deadline| now >= deadline) {
                return Err(timed_out());
            }
            let wake_at = match (deadline, self.poll_interval) {
                (Some(deadline), Some(interval)) => Some(deadline.min(now + interval)),
                (Some(deadline), None) => Some(deadline),
                (None, Some(interval)) => Some(now + interval),
                (None, None) => None,
            };
            match wake_at {
                None => notified.await,
                Some(at) => {
                    let _ = tokio::time::timeout_at(at.into(), notified).await;
                }
            }
        }
    }

    /// The sleeping half of [`Self::wait`] outside a Tokio runtime: short sleeps on this thread.
    fn wait_without_tokio<T>(
        &self,
        deadline: Option<Instant>,
        timed_out: impl Fn() -> RingKernelError,
        mut poll: impl FnMut() -> Option<Result<T>>,
    ) -> Result<T> {
        loop {
            if let Some(result) = poll() {
                return result;
            }
            let now = Instant::now();
            let step = match deadline {
                Some(deadline) if now >= deadline => return Err(timed_out()),
                Some(deadline) => (deadline - now).min(NO_RUNTIME_SLEEP),
                None => NO_RUNTIME_SLEEP,
            };
            std::thread::sleep(step);
        }
    }
}
