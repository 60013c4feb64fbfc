//! The checks. Each takes a fresh runtime built from [`crate::registry`] and panics with a message
//! naming what differed from the reference behaviour.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use ringkernel_core::error::{MessageError, RingKernelError};
use ringkernel_core::hlc::{PhysicalClock, SystemClock};
use ringkernel_core::kernel::builtin::{COUNTER, COUNTER_ADD, COUNTER_TOTAL, ECHO};
use ringkernel_core::layout::{MESSAGE_HEADER_BYTES, MessageHeader, flags};
use ringkernel_core::message::{CorrelationId, Envelope, HeaderBuilder, encode_slot};
use ringkernel_core::runtime::{Backend, KernelHandle, KernelId, KernelState, LaunchOptions, RingKernelRuntime};

use crate::kernels::{
    FALLIBLE, HOLD, PANICKER, PIPELINE_RECORD, PROGRESS, PROGRESS_NOTE, PipelineRecord, Probe, RELAY, SINK, SLOW,
    STAGE1, STAGE2, STAGE2_LIMIT,
};

/// Generous: CI machines are slow and shared, and a conformance failure must not be a timing flake.
const TIMEOUT: Duration = Duration::from_secs(20);

type Runtime = Arc<dyn RingKernelRuntime>;

fn active() -> LaunchOptions {
    LaunchOptions::default().with_auto_activate(true)
}

async fn launch(runtime: &Runtime, id: &str, options: LaunchOptions) -> KernelHandle {
    runtime.launch(id, options).await.unwrap_or_else(|e| panic!("launching `{id}` failed: {e}"))
}

fn add(values: &[u64]) -> Envelope {
    Envelope::new(COUNTER_ADD, values.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>())
}

fn total(reply: &Envelope) -> u64 {
    assert_eq!(reply.header.message_type, COUNTER_TOTAL, "counter replies with COUNTER_TOTAL");
    u64::from_le_bytes(reply.payload.as_slice().try_into().expect("counter total is 8 bytes"))
}

/// A deterministic pseudo-random sequence (xorshift64*), so a failure can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound
    }
}

/// Polls `condition` until it holds or [`TIMEOUT`] passes.
async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while !condition() {
        assert!(start.elapsed() < TIMEOUT, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Launch → Active ⇄ Deactivated → Terminating → Terminated; illegal steps are typed errors;
/// a deactivated kernel keeps its queue and state.
pub async fn lifecycle(runtime: Runtime) {
    let counter = launch(&runtime, COUNTER, LaunchOptions::default()).await;
    assert_eq!(counter.state(), KernelState::Launched);
    counter.send(add(&[1])).await.expect("a launched kernel accepts messages");
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(counter.metrics().messages_processed, 0, "a launched kernel does not process before activate");
    counter.activate().await.unwrap();
    assert_eq!(counter.state(), KernelState::Active);
    assert_eq!(total(&counter.receive_timeout(TIMEOUT).await.unwrap()), 1);
    assert!(matches!(counter.activate().await, Err(RingKernelError::InvalidState { state: KernelState::Active, .. })));

    counter.deactivate().await.unwrap();
    assert_eq!(counter.state(), KernelState::Deactivated);
    counter.send(add(&[10])).await.expect("a deactivated kernel keeps accepting into its queue");
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(counter.metrics().messages_processed, 1, "a deactivated kernel does not process");
    assert_eq!(counter.metrics().messages_in_flight, 1);
    counter.activate().await.unwrap();
    assert_eq!(total(&counter.receive_timeout(TIMEOUT).await.unwrap()), 11, "state survives deactivation");

    counter.terminate().await.unwrap();
    assert_eq!(counter.state(), KernelState::Terminated);
    counter.terminate().await.expect("terminating twice is harmless");
    for result in [counter.activate().await, counter.send(add(&[1])).await] {
        assert!(
            matches!(result, Err(RingKernelError::InvalidState { state: KernelState::Terminated, .. })),
            "{result:?}"
        );
    }
    assert!(matches!(
        counter.receive_timeout(Duration::from_millis(10)).await,
        Err(RingKernelError::InvalidState { .. })
    ));
    let metrics = counter.metrics();
    assert_eq!((metrics.messages_sent, metrics.messages_processed, metrics.messages_in_flight), (2, 2, 0));
}

/// Launching an unknown name lists the registered names.
pub async fn unknown_kernel_lists_registered_names(runtime: Runtime) {
    let error = runtime.launch("ecko", active()).await.expect_err("unknown kernels do not launch");
    match &error {
        RingKernelError::KernelNotFound { requested, registered } => {
            assert_eq!(requested, "ecko");
            assert!(registered.iter().any(|n| n == ECHO) && registered.iter().any(|n| n == COUNTER), "{error}");
        }
        other => panic!("expected KernelNotFound, got {other:?}"),
    }
    let bad = runtime.launch(ECHO, LaunchOptions::default().with_queue_capacity(1000)).await;
    assert!(matches!(bad, Err(RingKernelError::InvalidConfig { field: "input_capacity", .. })), "{bad:?}");
}

/// One live kernel per id; `name#instance` launches another instance of `name`.
pub async fn duplicate_launch_is_refused_and_instances_are_allowed(runtime: Runtime) {
    let first = launch(&runtime, ECHO, active()).await;
    let again = runtime.launch(ECHO, active()).await;
    assert!(matches!(again, Err(RingKernelError::InvalidConfig { field: "kernel_id", .. })), "{again:?}");
    let second = launch(&runtime, "echo#2", active()).await;
    for (handle, text) in [(&first, "one"), (&second, "two")] {
        let reply = handle.call(Envelope::new(3, text.as_bytes()), TIMEOUT).await.unwrap();
        assert_eq!(reply.payload, text.as_bytes());
    }
    first.terminate().await.unwrap();
    let relaunched = launch(&runtime, ECHO, active()).await;
    assert_eq!(relaunched.call(Envelope::new(1, *b"x"), TIMEOUT).await.unwrap().payload, b"x");
}

/// Echo returns exactly what it got; counter keeps the exact running total, on random inputs.
pub async fn echo_and_counter_on_random_messages(runtime: Runtime) {
    let echo = launch(&runtime, ECHO, active().with_slot_payload_bytes(512)).await;
    let counter = launch(&runtime, COUNTER, active()).await;
    let mut rng = Rng(0x5eed_0001);
    let mut expected_total = 0u64;
    for i in 0..500 {
        let length = rng.below(513) as usize;
        let payload: Vec<u8> = (0..length).map(|_| rng.next() as u8).collect();
        let message_type = rng.next() as u32 & 0x7fff_ffff;
        let checksum = rng.below(2) == 0;
        let header = HeaderBuilder::new(message_type).checksum(checksum).build();
        let reply = echo.call(Envelope::with_header(header, payload.clone()), TIMEOUT).await.unwrap();
        assert_eq!(reply.payload, payload, "echo payload, message {i}");
        assert_eq!(reply.header.message_type, message_type, "echo type, message {i}");
        assert!(reply.header.is_reply());

        let values: Vec<u64> = (0..rng.below(9)).map(|_| rng.next()).collect();
        expected_total = values.iter().fold(expected_total, |a, v| a.wrapping_add(*v));
        assert_eq!(total(&counter.call(add(&values), TIMEOUT).await.unwrap()), expected_total, "message {i}");
    }
    let too_big = echo.send(Envelope::new(1, vec![0u8; 513])).await;
    assert!(
        matches!(too_big, Err(RingKernelError::InvalidMessage(MessageError::PayloadTooLarge { .. }))),
        "{too_big:?}"
    );
}

/// Messages from one sender are handled and answered in the order sent, with several senders at once.
pub async fn per_sender_order_is_kept(runtime: Runtime) {
    const SENDERS: u32 = 4;
    const PER_SENDER: u32 = 2_000;
    let echo = launch(&runtime, ECHO, active().with_queue_capacity(64)).await;
    let mut tasks = Vec::new();
    for sender in 0..SENDERS {
        let echo = echo.clone();
        tasks.push(tokio::spawn(async move {
            for sequence in 0..PER_SENDER {
                let probe = Probe { sender, sequence, value: 0 };
                echo.send_timeout(Envelope::from_message(&probe), TIMEOUT).await.unwrap();
            }
        }));
    }
    let mut next = vec![0u32; SENDERS as usize];
    for _ in 0..SENDERS * PER_SENDER {
        let reply = echo.receive_timeout(TIMEOUT).await.unwrap();
        let probe: Probe = reply.to_message().unwrap();
        assert_eq!(probe.sequence, next[probe.sender as usize], "sender {} out of order", probe.sender);
        next[probe.sender as usize] += 1;
    }
    for task in tasks {
        task.await.unwrap();
    }
    assert!(next.iter().all(|n| *n == PER_SENDER));
}

/// Concurrent calls each get the reply with their own correlation id.
pub async fn concurrent_calls_get_their_own_replies(runtime: Runtime) {
    let echo = launch(&runtime, ECHO, active().with_queue_capacity(16)).await;
    let mut tasks = Vec::new();
    for task in 0..8u32 {
        let echo = echo.clone();
        tasks.push(tokio::spawn(async move {
            for sequence in 0..300u32 {
                let probe = Probe { sender: task, sequence, value: u64::from(task) << 32 | u64::from(sequence) };
                let reply = loop {
                    match echo.call(Envelope::from_message(&probe), TIMEOUT).await {
                        Err(RingKernelError::QueueFull { .. }) => tokio::task::yield_now().await,
                        other => break other.unwrap(),
                    }
                };
                assert_eq!(reply.to_message::<Probe>().unwrap(), probe, "call got another call's reply");
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let metrics = echo.metrics();
    assert_eq!(metrics.messages_processed, 2_400);
    assert!(metrics.latency_p50_us.is_some() && metrics.latency_p99_us >= metrics.latency_p50_us);
    assert!(
        matches!(echo.receive_timeout(Duration::from_millis(10)).await, Err(RingKernelError::Timeout { .. })),
        "no reply is left over"
    );
}

/// A call that times out leaves nothing behind: its late reply is not lost but goes to `receive`.
pub async fn late_reply_of_a_timed_out_call_is_receivable(runtime: Runtime) {
    let echo = launch(&runtime, ECHO, LaunchOptions::default()).await;
    let timed_out = echo.call(Envelope::new(1, *b"late"), Duration::from_millis(10)).await;
    assert!(matches!(timed_out, Err(RingKernelError::Timeout { .. })), "{timed_out:?}");
    echo.activate().await.unwrap();
    let late = echo.receive_timeout(TIMEOUT).await.unwrap();
    assert_eq!(late.payload, b"late");
    assert!(late.header.is_reply());
    let next = echo.call(Envelope::new(1, *b"next"), TIMEOUT).await.unwrap();
    assert_eq!(next.payload, b"next", "the next call gets its own reply");
}

/// Typed calls: the reply type is checked.
pub async fn typed_messages_round_trip(runtime: Runtime) {
    let echo = launch(&runtime, ECHO, active()).await;
    let probe = Probe { sender: 1, sequence: 2, value: 3 };
    let back: Probe = echo.call_message(&probe, TIMEOUT).await.unwrap();
    assert_eq!(back, probe);
    let wrong = echo.call_message::<Probe, PipelineRecord>(&probe, TIMEOUT).await;
    assert!(matches!(wrong, Err(RingKernelError::InvalidMessage(MessageError::WrongMessageType { .. }))), "{wrong:?}");
}

/// Host → stage1 → (K2K) → stage2 → host: every hop's timestamp is later than the one before.
pub async fn k2k_pipeline_preserves_causality(runtime: Runtime) {
    let stage2 = launch(&runtime, STAGE2, active()).await;
    let stage1 = launch(&runtime, STAGE1, active()).await;
    for value in 0..200u64 {
        let correlation = CorrelationId::generate();
        let header = HeaderBuilder::new(PIPELINE_RECORD).correlation_id(correlation).build();
        let record = PipelineRecord { value, ..Default::default() };
        stage1.send(Envelope::with_header(header, bytemuck::bytes_of(&record).to_vec())).await.unwrap();
        let out = stage2.receive_timeout(TIMEOUT).await.unwrap();
        assert_eq!(out.header.correlation_id(), correlation, "K2K keeps the correlation id");
        let record: PipelineRecord = bytemuck::pod_read_unaligned(&out.payload);
        assert_eq!(record.value, value * 2 + 1);
        let chain = [
            record.host_sent,
            record.stage1_received,
            record.stage1_sent,
            record.stage2_received,
            out.header.timestamp(),
        ];
        assert!(chain.windows(2).all(|w| w[0] < w[1]), "HLC order broken across hops: {chain:?}");
    }
    // Stage 2 refuses a value: its error report goes back to stage 1 over K2K, which cannot
    // parse it and counts that, and nobody answers an error report with another (no ping-pong).
    let record = PipelineRecord { value: STAGE2_LIMIT, ..Default::default() };
    stage1.send(Envelope::new(PIPELINE_RECORD, bytemuck::bytes_of(&record).to_vec())).await.unwrap();
    eventually("stage 1 has seen stage 2's error report", || stage1.metrics().messages_processed == 202).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let (m1, m2) = (stage1.metrics(), stage2.metrics());
    assert_eq!((m1.messages_processed, m1.errors), (202, 1), "stage 1: {m1:?}");
    assert_eq!((m2.messages_processed, m2.errors), (201, 1), "stage 2: {m2:?}");
    assert_eq!((stage1.state(), stage2.state()), (KernelState::Active, KernelState::Active));

    // A K2K send to a kernel that is not running is an error for the sender, not a silent drop.
    stage2.terminate().await.unwrap();
    let header = HeaderBuilder::new(PIPELINE_RECORD).build();
    let record = PipelineRecord::default();
    let result = stage1.call(Envelope::with_header(header, bytemuck::bytes_of(&record).to_vec()), TIMEOUT).await;
    match result {
        Err(RingKernelError::HandlerError { reason, .. }) => assert!(reason.contains(STAGE2), "{reason}"),
        other => panic!("expected a handler error naming {STAGE2}, got {other:?}"),
    }
}

/// Several kernels send to one over K2K at once, into a small inbox: every send the relay saw
/// succeed arrives exactly once and in the relay's order; every one that found the inbox full
/// reaches its caller as an error. Nothing is dropped silently.
pub async fn k2k_fan_in_loses_nothing(runtime: Runtime) {
    const RELAYS: u32 = 3;
    const PER_RELAY: u32 = 400;
    let sink = launch(&runtime, SINK, LaunchOptions::default().with_queue_capacity(8)).await;
    let refusals = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for relay in 0..RELAYS {
        let handle = launch(&runtime, &format!("{RELAY}#{relay}"), active()).await;
        let refusals = refusals.clone();
        tasks.push(tokio::spawn(async move {
            let mut delivered = Vec::new();
            let mut refused = 0;
            for sequence in 0..PER_RELAY {
                if sequence % 20 == 19 {
                    // Paced, so that the relays are still sending while the sink drains.
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                let probe = Probe { sender: relay, sequence, value: 0 };
                match handle.call(Envelope::from_message(&probe), TIMEOUT).await {
                    Ok(_) => delivered.push(sequence),
                    Err(RingKernelError::HandlerError { reason, .. }) if reason.contains("queue full") => {
                        refused += 1;
                        refusals.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                    Err(other) => panic!("relay {relay}: unexpected {other}"),
                }
            }
            (delivered, refused)
        }));
    }
    // The sink starts only once its inbox has filled and refused a send; from then on the relays
    // and the sink run concurrently.
    eventually("the sink's inbox refuses a send", || refusals.load(std::sync::atomic::Ordering::Relaxed) > 0).await;
    sink.activate().await.unwrap();
    // Receive while the relays still send: the sink's output ring is as small as its inbox.
    let mut received: Vec<Vec<u32>> = vec![Vec::new(); RELAYS as usize];
    let record = |received: &mut Vec<Vec<u32>>, probe: Probe| received[probe.sender as usize].push(probe.sequence);
    while !tasks.iter().all(|task| task.is_finished()) {
        if let Ok(message) = sink.receive_timeout(Duration::from_millis(5)).await {
            record(&mut received, message.to_message().unwrap());
        }
    }
    let mut delivered = Vec::new();
    let mut refused = 0;
    for task in tasks {
        let (sent, full) = task.await.unwrap();
        delivered.push(sent);
        refused += full;
    }
    let expected: usize = delivered.iter().map(Vec::len).sum();
    assert_eq!(expected + refused, (RELAYS * PER_RELAY) as usize);
    assert!(refused > 0 && expected > 16, "both paths ran: {expected} delivered, {refused} refused");
    while received.iter().map(Vec::len).sum::<usize>() < expected {
        record(&mut received, sink.receive_timeout(TIMEOUT).await.unwrap().to_message().unwrap());
    }
    assert_eq!(received, delivered, "each acknowledged send arrived once, in order");
    assert!(
        matches!(sink.receive_timeout(Duration::from_millis(20)).await, Err(RingKernelError::Timeout { .. })),
        "and nothing else arrived"
    );
}

/// A full input queue refuses with `QueueFull` (nothing written); `send_timeout` waits for room
/// or times out; nothing accepted is dropped.
pub async fn full_queue_pushes_back(runtime: Runtime) {
    let counter = launch(&runtime, COUNTER, LaunchOptions::default().with_queue_capacity(4)).await;
    for _ in 0..4 {
        counter.send(add(&[1])).await.unwrap();
    }
    let full = counter.send(add(&[100])).await;
    assert!(matches!(full, Err(RingKernelError::QueueFull { capacity: 4, .. })), "{full:?}");
    let waited = counter.send_timeout(add(&[100]), Duration::from_millis(30)).await;
    assert!(matches!(waited, Err(RingKernelError::Timeout { .. })), "{waited:?}");
    assert_eq!(counter.metrics().messages_rejected, 2);

    let sender = {
        let counter = counter.clone();
        tokio::spawn(async move { counter.send_timeout(add(&[1]), TIMEOUT).await })
    };
    tokio::time::sleep(Duration::from_millis(10)).await;
    counter.activate().await.unwrap();
    sender.await.unwrap().expect("send_timeout gets room once the kernel runs");
    let mut last = 0;
    for _ in 0..5 {
        last = total(&counter.receive_timeout(TIMEOUT).await.unwrap());
    }
    assert_eq!(last, 5, "the refused messages were not applied and the accepted ones all were");
}

/// Batches: as many as fit are queued, in order; an invalid envelope fails the batch before
/// anything is queued; `receive_batch` returns what is there, in order.
pub async fn batches_keep_order_and_push_back(runtime: Runtime) {
    let echo = launch(&runtime, ECHO, LaunchOptions::default().with_queue_capacity(8)).await;
    let batch: Vec<Envelope> = (0..20u32).map(|i| Envelope::new(1, i.to_le_bytes())).collect();
    assert_eq!(echo.send_batch(&batch).await.unwrap(), 8, "only what fits is queued");
    assert_eq!(echo.send_batch(&batch[8..]).await.unwrap(), 0, "a full queue takes none");
    let mut invalid = batch[..2].to_vec();
    invalid.push(Envelope::new(1, vec![0u8; 100_000]));
    assert!(matches!(echo.send_batch(&invalid).await, Err(RingKernelError::InvalidMessage(_))));
    assert_eq!(echo.metrics().messages_sent, 8, "the invalid batch queued nothing");
    echo.activate().await.unwrap();
    let mut received = Vec::new();
    while received.len() < 8 {
        received.extend(echo.receive_batch(3, TIMEOUT).await.unwrap().into_iter().map(|e| e.payload));
        assert!(received.len() <= 8);
    }
    let expected: Vec<Vec<u8>> = (0..8u32).map(|i| i.to_le_bytes().to_vec()).collect();
    assert_eq!(received, expected);
    // The kernel now drains while the batch goes in, so at least a queue's worth fits.
    let queued = echo.send_batch(&batch[8..]).await.unwrap();
    assert!((8..=12).contains(&queued), "room again after the kernel drained: {queued}");
    let mut more = Vec::new();
    while more.len() < queued {
        more.extend(echo.receive_batch(64, TIMEOUT).await.unwrap().into_iter().map(|e| e.payload));
    }
    let expected: Vec<Vec<u8>> = (8..8 + queued as u32).map(|i| i.to_le_bytes().to_vec()).collect();
    assert_eq!(more, expected);
    assert_eq!(echo.receive_batch(0, TIMEOUT).await.unwrap().len(), 0);
}

/// An expired message is not handled; the caller gets `DeadlineExpired`.
pub async fn deadline_expiry_is_reported_not_handled(runtime: Runtime) {
    let counter = launch(&runtime, COUNTER, active()).await;
    let past = SystemClock.now_ns() - 1_000_000;
    let header = HeaderBuilder::new(COUNTER_ADD).deadline_ns(past).build();
    let result = counter.call(Envelope::with_header(header, 7u64.to_le_bytes()), TIMEOUT).await;
    assert!(
        matches!(result, Err(RingKernelError::InvalidMessage(MessageError::DeadlineExpired { deadline_ns, .. })) if deadline_ns == past),
        "{result:?}"
    );
    let future = SystemClock.now_ns() + 60_000_000_000;
    let header = HeaderBuilder::new(COUNTER_ADD).deadline_ns(future).build();
    let reply = counter.call(Envelope::with_header(header, 5u64.to_le_bytes()), TIMEOUT).await.unwrap();
    assert_eq!(total(&reply), 5, "the expired message was not applied");
    let metrics = counter.metrics();
    assert_eq!((metrics.messages_processed, metrics.messages_rejected), (1, 1));
}

/// Corrupt slots are skipped and counted; the kernel keeps working.
pub async fn bad_slot_data_is_counted_and_skipped(runtime: Runtime) {
    let echo = launch(&runtime, ECHO, active()).await;
    let slot_bytes = MESSAGE_HEADER_BYTES + 64;
    let mut good = vec![0u8; slot_bytes];
    encode_slot(&mut good, &HeaderBuilder::new(1).checksum(true).build(), b"payload").unwrap();
    let mut bad_magic = good.clone();
    bad_magic[0] ^= 0xff;
    let mut bad_checksum = good.clone();
    bad_checksum[MESSAGE_HEADER_BYTES] ^= 1;
    let mut bad_length = good.clone();
    let length_at = std::mem::offset_of!(MessageHeader, payload_bytes);
    bad_length[length_at..length_at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
    for slot in [&bad_magic, &bad_checksum, &bad_length, &vec![0xa5; 300]] {
        echo.send_raw(slot).await.unwrap();
    }
    let reply = echo.call(Envelope::new(2, *b"still alive"), TIMEOUT).await.unwrap();
    assert_eq!(reply.payload, b"still alive");
    eventually("the corrupt slots are counted", || echo.metrics().messages_rejected == 4).await;
    let metrics = echo.metrics();
    assert_eq!((metrics.messages_processed, metrics.errors), (1, 4), "{metrics:?}");
    assert!(echo.send_raw(&vec![0; 100_000]).await.is_err(), "a slot longer than the ring's slots is refused");
}

/// A handler error reaches the caller; the kernel keeps running.
pub async fn handler_error_is_returned_and_kernel_continues(runtime: Runtime) {
    let kernel = launch(&runtime, FALLIBLE, active()).await;
    let result = kernel.call(Envelope::new(1, *b"bad"), TIMEOUT).await;
    match result {
        Err(RingKernelError::HandlerError { kernel, reason }) => {
            assert_eq!(kernel, FALLIBLE);
            assert!(reason.contains("refused"), "{reason}");
        }
        other => panic!("expected HandlerError, got {other:?}"),
    }
    assert_eq!(kernel.call(Envelope::new(1, *b"ok"), TIMEOUT).await.unwrap().payload, b"ok");
    assert_eq!(kernel.state(), KernelState::Active);
    assert_eq!(kernel.metrics().errors, 1);
}

/// A panicking handler fails only its own kernel; its callers get errors, not hangs; what it had
/// accepted but not handled is returned.
pub async fn handler_panic_is_isolated(runtime: Runtime) {
    let echo = launch(&runtime, ECHO, active()).await;
    let panicker = launch(&runtime, PANICKER, LaunchOptions::default()).await;
    // Queue the poison and messages behind it while the kernel is not yet running.
    let poisoned = {
        let panicker = panicker.clone();
        tokio::spawn(async move { panicker.call(Envelope::new(1, *b"panic"), TIMEOUT).await })
    };
    eventually("the poison is queued", || panicker.metrics().messages_sent == 1).await;
    let mut waiting = Vec::new();
    for i in 0..3u8 {
        let panicker = panicker.clone();
        waiting.push(tokio::spawn(async move { panicker.call(Envelope::new(1, vec![i]), TIMEOUT).await }));
    }
    eventually("the followers are queued", || panicker.metrics().messages_sent == 4).await;
    panicker.activate().await.unwrap();

    match poisoned.await.unwrap() {
        Err(RingKernelError::KernelFault { reason, .. }) => assert!(reason.contains("asked to panic"), "{reason}"),
        other => panic!("expected KernelFault, got {other:?}"),
    }
    for call in waiting {
        let result = call.await.unwrap();
        assert!(matches!(result, Err(RingKernelError::KernelFault { .. })), "pending call: {result:?}");
    }
    assert_eq!(panicker.state(), KernelState::Failed);
    // The followers were queued concurrently, so in any order.
    let mut returned: Vec<Vec<u8>> = panicker.take_unprocessed().into_iter().map(|e| e.payload).collect();
    returned.sort();
    assert_eq!(returned, [vec![0], vec![1], vec![2]], "every accepted, unhandled message is returned");
    assert!(panicker.take_unprocessed().is_empty(), "returned once");
    assert!(matches!(panicker.send(Envelope::new(1, *b"x")).await, Err(RingKernelError::KernelFault { .. })));
    let metrics = panicker.metrics();
    assert_eq!((metrics.messages_sent, metrics.messages_processed, metrics.messages_in_flight), (4, 1, 0));

    assert_eq!(echo.call(Envelope::new(1, *b"fine"), TIMEOUT).await.unwrap().payload, b"fine");
    panicker.terminate().await.expect("terminating a failed kernel releases it");
}

/// Terminate handles every accepted message, even with the kernel deactivated or busy, and every
/// reply can still be received afterwards.
pub async fn terminate_with_messages_in_flight_loses_nothing(runtime: Runtime) {
    for start_active in [false, true] {
        let id = if start_active { "counter#busy" } else { "counter#idle" };
        let counter =
            launch(&runtime, id, LaunchOptions::default().with_queue_capacity(256).with_auto_activate(start_active))
                .await;
        let mut accepted = 0u64;
        for value in 1..=200u64 {
            counter.send(add(&[value])).await.unwrap();
            accepted += 1;
        }
        counter.terminate().await.unwrap();
        assert_eq!(counter.state(), KernelState::Terminated);
        let metrics = counter.metrics();
        assert_eq!(metrics.messages_sent, accepted);
        assert_eq!(metrics.messages_processed, accepted, "{id}: every accepted message was handled");
        assert_eq!(metrics.messages_in_flight, 0);
        let mut totals = Vec::new();
        while let Ok(reply) = counter.receive_timeout(Duration::from_millis(50)).await {
            totals.push(total(&reply));
        }
        assert_eq!(totals.len() as u64, accepted, "{id}: every reply is receivable after terminate");
        assert_eq!(totals.last(), Some(&(200 * 201 / 2)));
    }
}

/// The runtime lists its kernels, finds them by id and totals their metrics.
pub async fn runtime_lists_and_totals(runtime: Runtime) {
    let echo = launch(&runtime, ECHO, active()).await;
    let counter = launch(&runtime, COUNTER, active()).await;
    echo.call(Envelope::new(1, *b"a"), TIMEOUT).await.unwrap();
    counter.call(add(&[2]), TIMEOUT).await.unwrap();
    let mut listed = runtime.list_kernels();
    listed.sort();
    assert_eq!(listed, [KernelId::from(COUNTER), KernelId::from(ECHO)]);
    assert_eq!(runtime.get_kernel(&KernelId::from(ECHO)).unwrap().id(), echo.id());
    assert!(runtime.get_kernel(&KernelId::from("nope")).is_none());
    let totals = runtime.metrics();
    assert_eq!((totals.kernels_launched, totals.kernels_active), (2, 2));
    assert_eq!((totals.messages_sent, totals.messages_processed), (2, 2));
    let by_id: HashMap<_, _> = [(echo.id().clone(), echo.metrics().messages_sent)].into();
    assert_eq!(by_id[echo.id()], 1);
}

/// `send_raw` refuses a slot shorter than a header (an empty one included) with a typed error and
/// queues nothing; a raw slot shorter than the ring's slots has the rest zeroed, so a header that
/// claims more payload than was given never picks up the bytes of an earlier message.
pub async fn raw_slots_are_checked_and_never_replay_stale_bytes(runtime: Runtime) {
    // One slot, so that every message reuses the same memory.
    let echo = launch(&runtime, ECHO, active().with_queue_capacity(1).with_slot_payload_bytes(16)).await;
    let stale = echo.call(Envelope::new(1, [0xAA; 16]), TIMEOUT).await.unwrap();
    assert_eq!(stale.payload, [0xAA; 16]);
    for short in [&[][..], &[0x11; 100][..], &[0u8; MESSAGE_HEADER_BYTES - 1][..]] {
        let result = echo.send_raw(short).await;
        assert!(
            matches!(result, Err(RingKernelError::InvalidMessage(MessageError::SlotTooSmall { len, .. })) if len == short.len()),
            "a {}-byte raw slot: {result:?}",
            short.len()
        );
    }
    assert_eq!(echo.metrics().messages_sent, 1, "the refused raw slots queued nothing");
    // A header claiming 16 payload bytes, sent without them: the kernel reads zeros, not 0xAA.
    let mut raw = vec![0u8; MESSAGE_HEADER_BYTES + 16];
    let header = HeaderBuilder::new(2).correlation_id(CorrelationId(0x5107)).build();
    encode_slot(&mut raw, &header, &[0x55; 16]).unwrap();
    raw.truncate(MESSAGE_HEADER_BYTES);
    echo.send_raw(&raw).await.unwrap();
    let reply = echo.receive_timeout(TIMEOUT).await.unwrap();
    assert_eq!(reply.header.correlation_id(), CorrelationId(0x5107));
    assert_eq!(reply.payload, [0u8; 16], "the rest of a short raw slot is zero, not the last message's bytes");
    assert!(echo.send_raw(&vec![0; MESSAGE_HEADER_BYTES + 17]).await.is_err(), "longer than a slot");
    let metrics = echo.metrics();
    assert_eq!(metrics.messages_sent, 2);
    assert_eq!(metrics.messages_rejected, 4, "every refused raw slot is counted: {metrics:?}");
}

/// A handler that emits a message carrying the request's correlation id before replying: `call`
/// returns the reply (the `REPLY` flag set), and the emitted message goes to `receive`.
pub async fn a_call_returns_its_reply_not_an_earlier_message_with_its_id(runtime: Runtime) {
    let kernel = launch(&runtime, PROGRESS, active()).await;
    for i in 0..50u32 {
        let reply = kernel.call(Envelope::new(7, i.to_le_bytes()), TIMEOUT).await.unwrap();
        assert!(reply.header.is_reply(), "call {i} returned a non-reply: {:?}", reply.header);
        assert_eq!((reply.header.message_type, reply.payload.as_slice()), (7, &i.to_le_bytes()[..]));
        let note = kernel.receive_timeout(TIMEOUT).await.unwrap();
        assert_eq!((note.header.message_type, note.payload.as_slice()), (PROGRESS_NOTE, &b"working"[..]));
        assert_eq!(note.header.correlation_id(), reply.header.correlation_id(), "the note carries the call's id");
        assert_eq!(note.header.flags & flags::REPLY, 0);
    }
    assert!(matches!(kernel.receive_timeout(Duration::from_millis(10)).await, Err(RingKernelError::Timeout { .. })));
}

/// Once `deactivate` has returned, the kernel handles nothing more until `activate`, even with
/// many messages queued; everything queued is handled after `activate`, in order.
pub async fn deactivate_stops_handling_before_it_returns(runtime: Runtime) {
    const QUEUED: u32 = 200;
    for round in 0..3u32 {
        let slow = launch(&runtime, &format!("{SLOW}#{round}"), active().with_queue_capacity(256)).await;
        for i in 0..QUEUED {
            slow.send(Envelope::new(1, i.to_le_bytes())).await.unwrap();
        }
        // Let it work on the queue for a while, then stop it mid-stream.
        tokio::time::sleep(Duration::from_millis(2 + u64::from(round) * 3)).await;
        slow.deactivate().await.unwrap();
        let at_return = slow.metrics().messages_processed;
        tokio::time::sleep(Duration::from_millis(30)).await;
        let later = slow.metrics().messages_processed;
        assert_eq!(later, at_return, "round {round}: handled {} messages after deactivate returned", later - at_return);
        assert!(at_return < u64::from(QUEUED), "round {round}: the test needs messages still queued");
        slow.activate().await.unwrap();
        for i in 0..QUEUED {
            let reply = slow.receive_timeout(TIMEOUT).await.unwrap();
            assert_eq!(reply.payload, i.to_le_bytes(), "round {round}: in order, none lost");
        }
        slow.terminate().await.unwrap();
    }
    // A kernel blocked in the middle of a message on a full output ring: deactivate drains that
    // ring while it waits, so the kernel can finish the message and acknowledge; every reply
    // stays receivable. Eight messages queued, four output slots: the fifth reply blocks.
    let options = LaunchOptions { input_capacity: 8, output_capacity: 4, ..LaunchOptions::default() };
    let echo = launch(&runtime, &format!("{ECHO}#blocked"), options).await;
    for i in 0..8u32 {
        echo.send(Envelope::new(1, i.to_le_bytes())).await.unwrap();
    }
    echo.activate().await.unwrap();
    eventually("the kernel is in the middle of its fifth message", || echo.metrics().messages_processed >= 5).await;
    tokio::time::timeout(TIMEOUT, echo.deactivate())
        .await
        .expect("deactivate returns while the output ring is full")
        .unwrap();
    echo.activate().await.unwrap();
    for i in 0..8u32 {
        assert_eq!(echo.receive_timeout(TIMEOUT).await.unwrap().payload, i.to_le_bytes());
    }
}

/// A pause that pauses: while a handler is in the middle of one message, more are queued behind it
/// and `deactivate` is called; none of them is handled before the kernel is activated again, and
/// then all of them are, in order. (A deactivate takes effect before any message the kernel had not
/// yet taken from its ring when the request arrived: kernels look at the control line before
/// each message or batch.)
pub async fn deactivate_takes_effect_before_queued_messages(runtime: Runtime) {
    const QUEUED: u32 = 10;
    // Handlers with a clock hold for HOLD_MS; WGSL has none and works through as much arithmetic
    // as one loop nest allows (about 100 ms on lavapipe), so the queue follows it more closely
    // there. The settle lets the kernel take the held message before the others are queued.
    const HOLD_MS: u32 = 400;
    let clockless = matches!(runtime.backend(), Backend::Wgpu | Backend::Metal);
    let settle = if clockless { Duration::from_millis(15) } else { Duration::from_millis(50) };
    // The first word is the hold time: the queued ones (and the warm-up) ask for none.
    let queued = |i: u32| (u64::from(1000 + i) << 32).to_le_bytes();
    for round in 0..2u32 {
        let hold = launch(&runtime, &format!("{HOLD}#{round}"), active()).await;
        // One message first: a kernel's first dispatch may take a while on an event-driven
        // backend (its pipeline's first use), and the held message should find it running.
        hold.call(Envelope::new(2, 0u64.to_le_bytes()), TIMEOUT).await.unwrap();
        eventually("the warm-up is counted", || hold.metrics().messages_processed >= 1).await;
        let handled = || hold.metrics().messages_processed - 1;
        let held = tokio::spawn({
            let hold = hold.clone();
            async move { hold.call(Envelope::new(1, HOLD_MS.to_le_bytes()), TIMEOUT).await }
        });
        tokio::time::sleep(settle).await;
        for i in 0..QUEUED {
            hold.send(Envelope::new(2, queued(i))).await.unwrap();
        }
        hold.deactivate().await.unwrap();
        let at_return = handled();
        assert!(
            at_return <= 1,
            "round {round}: {at_return} messages handled by the time deactivate returned; only the one in hand may be"
        );
        // Kernels with a clock have surely taken the held message by now. Without one, the
        // kernel's dispatches follow its queue: it may not have taken the held message either
        // when the deactivate arrived, and then that one waits for activate too, first in line.
        tokio::time::sleep(Duration::from_millis(30)).await;
        let taken = !clockless || handled() == 1 || held.is_finished();
        let mut held = Some(held);
        if taken {
            let reply =
                held.take().unwrap().await.expect("the held call's task").expect("the held message is answered");
            assert_eq!(reply.payload, HOLD_MS.to_le_bytes());
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
        let later = handled();
        assert_eq!(
            later,
            u64::from(taken),
            "round {round}: {} queued messages were handled while deactivated",
            later - u64::from(taken)
        );
        assert_eq!(hold.state(), KernelState::Deactivated);
        hold.activate().await.unwrap();
        if let Some(held) = held {
            let reply = held.await.expect("the held call's task").expect("the held message is answered after activate");
            assert_eq!(reply.payload, HOLD_MS.to_le_bytes());
        }
        for i in 0..QUEUED {
            let reply = hold.receive_timeout(TIMEOUT).await.unwrap();
            assert_eq!(reply.payload, queued(i), "round {round}: in order, none lost");
        }
        hold.terminate().await.unwrap();
    }
}

/// A good async citizen at any speed: more tasks looping over `call()` than the runtime has
/// workers (the suite's runtimes have two) must not starve another task of the same runtime, even
/// when every reply arrives before the call would have to wait.
pub async fn looping_callers_leave_room_for_other_tasks(runtime: Runtime) {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    const CALLERS: usize = 3;
    let stop = Arc::new(AtomicBool::new(false));
    let (calls, ticks) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let mut tasks = Vec::new();
    for caller in 0..CALLERS {
        let kernel = launch(&runtime, &format!("{ECHO}#loop{caller}"), active()).await;
        let (stop, calls) = (stop.clone(), calls.clone());
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let reply = kernel.call(Envelope::new(1, n.to_le_bytes()), TIMEOUT).await.unwrap();
                assert_eq!(reply.payload, n.to_le_bytes());
                n += 1;
                calls.fetch_add(1, Ordering::Relaxed);
            }
            kernel.terminate().await.unwrap();
        }));
    }
    let ticker = tokio::spawn({
        let (stop, ticks) = (stop.clone(), ticks.clone());
        async move {
            while !stop.load(Ordering::Relaxed) {
                ticks.fetch_add(1, Ordering::Relaxed);
                tokio::task::yield_now().await;
            }
        }
    });
    // This test's body runs on its own thread (the runtime's `block_on`), not on a worker.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let ticked = ticks.load(Ordering::Relaxed);
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await.expect("a caller task");
    }
    ticker.await.expect("the ticker task");
    assert!(calls.load(Ordering::Relaxed) > 0, "the callers made no call");
    assert!(ticked >= 10, "another task ran only {ticked} times in 800 ms beside {CALLERS} looping callers");
}

/// Options that validation accepts but memory cannot hold fail the launch with a typed error; the
/// runtime stays usable.
pub async fn launch_options_memory_cannot_hold_are_typed_errors(runtime: Runtime) {
    let huge_queue = LaunchOptions::default().with_queue_capacity(1 << 30).with_slot_payload_bytes(256);
    let huge_slot = LaunchOptions::default().with_slot_payload_bytes(1 << 31);
    for (what, options) in [("2^30 slots of 256 bytes", huge_queue), ("2 GiB payloads", huge_slot)] {
        options.validate().unwrap_or_else(|e| panic!("{what}: validation accepts it ({e})"));
        match runtime.launch(ECHO, options).await {
            Err(RingKernelError::AllocationFailed { bytes, .. }) => assert!(bytes > 1 << 32, "{what}: {bytes}"),
            other => panic!("{what}: expected AllocationFailed, got {other:?}"),
        }
    }
    let echo = launch(&runtime, ECHO, active()).await;
    assert_eq!(echo.call(Envelope::new(1, *b"ok"), TIMEOUT).await.unwrap().payload, b"ok");
}

/// The zero-copy path: `send_with` writes payloads in place (a failing or invalid message queues
/// nothing of its batch), `receive_with` lends each reply in order and refuses to be re-entered.
pub async fn zero_copy_sends_and_receives(runtime: Runtime) {
    let echo = launch(&runtime, ECHO, LaunchOptions::default().with_queue_capacity(16)).await;
    let queued = echo
        .send_with(20, |i, message| {
            message.set_message_type(3);
            message.payload_mut(8)?.copy_from_slice(&(i as u64).to_le_bytes());
            Ok(())
        })
        .unwrap();
    assert_eq!(queued, 16, "as many as fit");
    assert_eq!(echo.send_with(4, |_, _| unreachable!("no room")).unwrap(), 0);
    echo.activate().await.unwrap();
    let mut next = 0u64;
    while next < 16 {
        let got = echo
            .receive_with(5, TIMEOUT, |reply| {
                assert_eq!(reply.payload, next.to_le_bytes(), "in order");
                assert!(reply.header.is_reply());
                next += 1;
            })
            .await
            .unwrap();
        assert!((1..=5).contains(&got));
    }
    // A failing fill, or a header no reader would accept, queues nothing of the batch.
    let failing = echo.send_with(3, |i, message| {
        message.write_payload(b"x")?;
        if i == 2 { Err(RingKernelError::InvalidConfig { field: "test", reason: "stop".into() }) } else { Ok(()) }
    });
    assert!(matches!(failing, Err(RingKernelError::InvalidConfig { field: "test", .. })), "{failing:?}");
    let invalid = echo.send_with(2, |i, message| {
        message.header_mut().priority = if i == 1 { 99 } else { 1 };
        Ok(())
    });
    assert!(matches!(invalid, Err(RingKernelError::InvalidMessage(MessageError::InvalidPriority { .. }))));
    let too_big = echo.send_with(1, |_, message| Ok(message.write_payload(&[0; 100_000])?));
    assert!(matches!(too_big, Err(RingKernelError::InvalidMessage(MessageError::PayloadTooLarge { .. }))));
    assert_eq!(echo.metrics().messages_sent, 16, "nothing of the failed batches was queued");
    // Receiving from, sending to or changing the state of the kernel inside its own fill would
    // deadlock: errors instead, and the batch is not queued. Reading its state is fine.
    let inner = echo.clone();
    let nested = echo.send_with(1, |_, message| {
        assert!(matches!(inner.state(), KernelState::Active));
        let _ = inner.metrics();
        let receive = inner.try_receive_with(1, |_| ());
        assert!(
            matches!(&receive, Err(RingKernelError::Reentrant { kernel, operation: "receive from", inside: "send_with fill" }) if kernel == "echo"),
            "{receive:?}"
        );
        let send = inner.send_with(1, |_, _| Ok(()));
        assert!(
            matches!(&send, Err(RingKernelError::Reentrant { kernel, inside: "send_with fill", .. }) if kernel == "echo"),
            "{send:?}"
        );
        message.write_payload(b"fill")?;
        Ok(())
    });
    assert_eq!(nested.unwrap(), 1);
    assert_eq!(echo.receive_timeout(TIMEOUT).await.unwrap().payload, b"fill");
    // "Wait forever" spelled as the longest duration works (it is no deadline).
    let reply = echo.call(Envelope::new(5, *b"max"), Duration::MAX).await.unwrap();
    assert_eq!(reply.payload, b"max");
    // Receiving from inside a visitor would deadlock: it is an error instead.
    echo.send(Envelope::new(4, *b"one")).await.unwrap();
    echo.send(Envelope::new(4, *b"two")).await.unwrap();
    let inner = echo.clone();
    let mut nested = None;
    echo.receive_with(1, TIMEOUT, |_| nested = Some(inner.try_receive_with(1, |_| ()))).await.unwrap();
    assert!(
        matches!(&nested, Some(Err(RingKernelError::Reentrant { inside: "receive_with visitor", .. }))),
        "{nested:?}"
    );
    let message = nested.unwrap().unwrap_err().to_string();
    assert!(message.contains("`echo`") && message.contains("deadlock"), "{message}");
    let second = echo.receive_timeout(TIMEOUT).await.unwrap();
    assert_eq!(second.payload, b"two", "the refused nested receive took nothing");
    assert_eq!(echo.try_receive_with(8, |_| unreachable!("nothing left")).unwrap(), 0);
}
