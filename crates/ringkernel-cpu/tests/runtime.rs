//! CPU-backend behaviour beyond the shared conformance suite.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use ringkernel_core::error::RingKernelError;
use ringkernel_core::kernel::{KernelRegistry, KernelSpec, builtin};
use ringkernel_core::message::Envelope;
use ringkernel_core::runtime::{KernelState, LaunchOptions, RingKernelRuntime};
use ringkernel_cpu::{CpuConfig, CpuRuntime};

fn active() -> LaunchOptions {
    LaunchOptions::default().with_auto_activate(true)
}

/// Without a Tokio runtime (here a bare `block_on` that never registers a timer), waiting falls
/// back to sleeping instead of panicking, and timeouts still fire.
#[test]
fn works_outside_a_tokio_runtime() {
    let runtime = CpuRuntime::with_config(
        KernelRegistry::with_builtins(),
        CpuConfig { spin_before_park: Duration::ZERO, ..CpuConfig::default() },
    );
    block_on(async {
        let echo = runtime.launch(builtin::ECHO, active()).await.unwrap();
        let reply = echo.call(Envelope::new(1, *b"plain"), Duration::from_secs(10)).await.unwrap();
        assert_eq!(reply.payload, b"plain");
        let waited = echo.receive_timeout(Duration::from_millis(5)).await;
        assert!(waited.is_err());
        runtime.shutdown().await.unwrap();
        assert_eq!(echo.state(), KernelState::Terminated);
    });
}

/// A handler that replies more often than the output ring has slots blocks until the host drains,
/// and loses nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_output_ring_pushes_back_on_the_kernel() {
    let mut registry = KernelRegistry::new();
    registry
        .register(KernelSpec::new("burst").cpu(|ctx| {
            for i in 0..100u32 {
                ctx.emit(2, &i.to_le_bytes())?;
            }
            Ok(())
        }))
        .unwrap();
    let runtime = CpuRuntime::new(registry);
    let burst = runtime.launch("burst", active().with_queue_capacity(8)).await.unwrap();
    burst.send(Envelope::new(1, vec![])).await.unwrap();
    for i in 0..100u32 {
        let message = burst.receive_timeout(Duration::from_secs(10)).await.unwrap();
        assert_eq!(message.payload, i.to_le_bytes(), "in order, none lost");
    }
    runtime.shutdown().await.unwrap();
}

/// Dropping every handle and the runtime stops the kernel's thread after it handled what it had.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_every_handle_stops_the_kernel() {
    let handled = Arc::new(AtomicUsize::new(0));
    let seen = handled.clone();
    let mut registry = KernelRegistry::new();
    registry
        .register(KernelSpec::new("count").cpu(move |_ctx| {
            seen.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }))
        .unwrap();
    let runtime = CpuRuntime::new(registry);
    let kernel = runtime.launch("count", LaunchOptions::default()).await.unwrap();
    for _ in 0..10 {
        kernel.send(Envelope::new(1, vec![])).await.unwrap();
    }
    drop(kernel);
    drop(runtime);
    let start = std::time::Instant::now();
    while handled.load(Ordering::SeqCst) < 10 {
        assert!(start.elapsed() < Duration::from_secs(10), "accepted messages are still handled");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    // The handler closure (and with it this Arc) is dropped when the actor thread exits.
    while Arc::strong_count(&handled) > 1 {
        assert!(start.elapsed() < Duration::from_secs(10), "the actor thread exits");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Received messages carry the header's hot line: `message_id` reads 0 and `dest_kernel` is the
/// host, unless `read_message_ids` asks for the extra cache line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_ids_of_received_messages_are_read_only_when_asked() {
    use ringkernel_core::message::{HOST_KERNEL_ID, MessageId};
    for read_message_ids in [false, true] {
        let runtime = CpuRuntime::with_config(
            KernelRegistry::with_builtins(),
            CpuConfig { read_message_ids, ..CpuConfig::default() },
        );
        let echo = runtime.launch(builtin::ECHO, active()).await.unwrap();
        let mut ids = Vec::new();
        for i in 0..3u8 {
            let reply = echo.call(Envelope::new(1, vec![i]), Duration::from_secs(10)).await.unwrap();
            assert_eq!(reply.header.dest_kernel, HOST_KERNEL_ID);
            ids.push(reply.header.message_id());
        }
        if read_message_ids {
            assert!(ids.iter().all(|id| *id != MessageId(0)), "{ids:?}");
            ids.dedup();
            assert_eq!(ids.len(), 3, "each reply has its own id");
        } else {
            assert!(ids.iter().all(|id| *id == MessageId(0)), "{ids:?}");
        }
        runtime.shutdown().await.unwrap();
    }
}

/// A timestamp forged at the end of representable time (accepted: no maximum clock offset) does
/// not kill the kernel or wrap its clock back to 1970.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_timestamp_at_the_end_of_time_is_survived() {
    use ringkernel_core::hlc::HlcTimestamp;
    use ringkernel_core::layout::MESSAGE_HEADER_BYTES;
    use ringkernel_core::message::{HeaderBuilder, encode_slot};
    let runtime = CpuRuntime::with_config(
        KernelRegistry::with_builtins(),
        CpuConfig { max_clock_offset_ns: None, ..CpuConfig::default() },
    );
    let echo = runtime.launch(builtin::ECHO, active()).await.unwrap();
    let mut slot = vec![0u8; MESSAGE_HEADER_BYTES + 8];
    let header = HeaderBuilder::new(1).timestamp(HlcTimestamp::new(u64::MAX, u32::MAX, 9)).build();
    encode_slot(&mut slot, &header, b"forged!!").unwrap();
    echo.send_raw(&slot).await.unwrap();
    assert_eq!(echo.receive_timeout(Duration::from_secs(10)).await.unwrap().payload, b"forged!!");
    let reply = echo.call(Envelope::new(1, *b"after"), Duration::from_secs(10)).await.unwrap();
    assert_eq!(reply.payload, b"after");
    assert_eq!(echo.state(), KernelState::Active);
    runtime.shutdown().await.unwrap();
}

/// A minimal executor: polls on the calling thread and parks between polls.
fn block_on<F: std::future::Future>(future: F) -> F::Output {
    struct ThreadWaker(std::thread::Thread);
    impl std::task::Wake for ThreadWaker {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Arc::new(ThreadWaker(std::thread::current())).into();
    let mut cx = std::task::Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        if let std::task::Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
        std::thread::park_timeout(Duration::from_millis(1));
    }
}

/// A registry with `stuck`: a handler that sleeps for `STUCK_FOR` before it replies.
fn with_stuck_kernel() -> KernelRegistry {
    let mut registry = KernelRegistry::with_builtins();
    registry
        .register(KernelSpec::new("stuck").cpu(|ctx| {
            std::thread::sleep(STUCK_FOR);
            let (message_type, payload) = (ctx.message_type(), ctx.payload().to_vec());
            Ok(ctx.reply(message_type, &payload)?)
        }))
        .unwrap();
    registry
}

const STUCK_FOR: Duration = Duration::from_secs(1);

/// The watchdog fires while a caller sleeps (a hung handler rings no doorbell), on both device
/// models, long before the call's own timeout, and also for a call with no deadline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watchdog_fires_while_the_caller_sleeps() {
    for config in [CpuConfig::default(), CpuConfig::polling()] {
        let model = format!("{:?}", config.device_model);
        let watchdog = Duration::from_millis(50);
        let runtime = CpuRuntime::with_config(with_stuck_kernel(), CpuConfig { watchdog: Some(watchdog), ..config });
        let stuck = runtime.launch("stuck", active()).await.unwrap();
        for timeout in [Duration::from_secs(2), Duration::MAX] {
            let started = std::time::Instant::now();
            let result = stuck.call(Envelope::new(1, vec![1]), timeout).await;
            let waited = started.elapsed();
            assert!(
                matches!(&result, Err(RingKernelError::KernelFault { reason, .. }) if reason.contains("no heartbeat")),
                "{model}: {result:?}"
            );
            assert!(waited < STUCK_FOR * 4 / 5, "{model}: the watchdog fired after {waited:?}");
        }
        // The waits failed, the kernel did not: once the handler is done with both messages,
        // their replies (their calls were abandoned) arrive through `receive`.
        assert_eq!(stuck.state(), KernelState::Active, "{model}");
        tokio::time::sleep(STUCK_FOR * 2 + Duration::from_millis(300)).await;
        for _ in 0..2 {
            let late = stuck.receive_timeout(Duration::from_secs(5)).await.unwrap();
            assert_eq!(late.payload, vec![1], "{model}");
        }
        runtime.shutdown().await.unwrap();
    }
}

/// A quiet kernel is not a hung one: with a short watchdog, waits on an idle kernel (threaded
/// actors park) end in their own timeout, not in a fault.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_watchdog_leaves_idle_kernels_alone() {
    for config in [CpuConfig::default(), CpuConfig::polling()] {
        let model = format!("{:?}", config.device_model);
        let runtime = CpuRuntime::with_config(
            KernelRegistry::with_builtins(),
            CpuConfig { watchdog: Some(Duration::from_millis(20)), ..config },
        );
        let echo = runtime.launch(builtin::ECHO, active()).await.unwrap();
        let waited = echo.receive_timeout(Duration::from_millis(400)).await;
        assert!(matches!(waited, Err(RingKernelError::Timeout { .. })), "{model}: {waited:?}");
        echo.deactivate().await.unwrap();
        let waited = echo.call(Envelope::new(1, vec![3]), Duration::from_millis(300)).await;
        assert!(matches!(waited, Err(RingKernelError::Timeout { .. })), "{model}: {waited:?}");
        echo.activate().await.unwrap();
        assert_eq!(echo.receive_timeout(Duration::from_secs(5)).await.unwrap().payload, vec![3], "{model}");
        runtime.shutdown().await.unwrap();
    }
}
