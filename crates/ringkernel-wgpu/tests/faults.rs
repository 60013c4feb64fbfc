//! The wgpu runtime under faults, each injected at the point that matters (`WgpuConfig::faults`)
//! or produced for real (a handler that outlasts the round timeout, a wgpu validation error), and
//! its capacity: as many actors as the adapter holds, in one runtime.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ringkernel_conformance::kernels::{HOLD, PANICKER, RELAY, SINK};
use ringkernel_core::error::RingKernelError;
use ringkernel_core::kernel::{KernelRegistry, KernelSpec};
use ringkernel_core::message::Envelope;
use ringkernel_core::runtime::{KernelHandle, KernelState, LaunchOptions, RingKernelRuntime};
use ringkernel_wgpu::{DispatchLoop, WgpuConfig, WgpuRuntime};

const TIMEOUT: Duration = Duration::from_secs(60);

fn no_adapter(test: &str) -> bool {
    match WgpuRuntime::probe(WgpuConfig::default().backends) {
        Ok(_) => false,
        Err(error) => {
            assert!(std::env::var_os("RINGKERNEL_REQUIRE_WGPU").is_none(), "{error}");
            eprintln!("SKIPPED {test}: {error}");
            true
        }
    }
}

async fn runtime(config: WgpuConfig) -> WgpuRuntime {
    WgpuRuntime::with_config(ringkernel_conformance::registry(), config).await.unwrap()
}

fn active() -> LaunchOptions {
    LaunchOptions::default().with_auto_activate(true)
}

async fn echo_works(kernel: &KernelHandle) {
    let reply = kernel.call(Envelope::new(3, *b"still here"), TIMEOUT).await.unwrap();
    assert_eq!(reply.payload, b"still here");
}

fn fault_reason(result: ringkernel_core::Result<Envelope>) -> String {
    match result {
        Err(RingKernelError::KernelFault { reason, .. }) => reason,
        other => panic!("expected a KernelFault, got {other:?}"),
    }
}

/// Defect 1: building a pipeline (seconds on lavapipe) held the pump's lock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pipeline_build_does_not_stall_running_actors() {
    if no_adapter("pipeline build") {
        return;
    }
    let (release, gate) = std::sync::mpsc::channel::<()>();
    let gate = Mutex::new(gate);
    let entered = Arc::new(AtomicBool::new(false));
    let mut config = WgpuConfig::default();
    let flag = entered.clone();
    config.faults.before_pipeline_build = Some(Arc::new(move |name: &str| {
        if name == "counter" {
            flag.store(true, Ordering::Release);
            let _ = ringkernel_wgpu_test_lock(&gate).recv_timeout(Duration::from_secs(120));
        }
    }));
    let runtime = Arc::new(runtime(config).await);
    let echo = runtime.launch("echo", active()).await.unwrap();
    echo_works(&echo).await;
    let launching = {
        let runtime = runtime.clone();
        tokio::spawn(async move { runtime.launch("counter", active()).await })
    };
    while !entered.load(Ordering::Acquire) {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    // The build of `counter` is paused inside `launch`: `echo` still answers.
    for _ in 0..5 {
        tokio::time::timeout(Duration::from_secs(20), echo_works(&echo))
            .await
            .expect("a running actor answers while another kernel's pipeline builds");
    }
    release.send(()).unwrap();
    let counter = launching.await.unwrap().unwrap();
    counter.call(Envelope::new(0xC001, 5u64.to_le_bytes()), TIMEOUT).await.unwrap();
}

fn ringkernel_wgpu_test_lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Defect 2: a device that reports more outputs than the ring had free failed the actor but
/// left its input head, inbox, route and block behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_reporting_more_outputs_than_room_fails_that_actor_cleanly() {
    if no_adapter("excess outputs") {
        return;
    }
    let mut config = WgpuConfig { max_actors: 2, ..WgpuConfig::default() };
    config.faults.extra_outputs = Some(Arc::new(|id: &str| if id == "echo#bad" { 100_000 } else { 0 }));
    let runtime = runtime(config).await;
    let echo = runtime.launch("echo", active()).await.unwrap();
    echo_works(&echo).await;
    let baseline = runtime.memory();
    let bad = runtime.launch("echo#bad", LaunchOptions::default()).await.unwrap();
    for i in 0..3u8 {
        bad.send(Envelope::new(1, vec![i])).await.unwrap();
    }
    bad.activate().await.unwrap();
    let deadline = Instant::now() + TIMEOUT;
    while bad.state() != KernelState::Failed {
        assert!(Instant::now() < deadline, "the actor did not fail");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let reason = fault_reason(bad.call(Envelope::new(1, *b"x"), Duration::from_secs(5)).await);
    assert!(reason.contains("more than the"), "{reason}");
    // The device consumed the three messages: none comes back as unprocessed (no duplicates).
    let back = bad.take_unprocessed();
    assert!(back.is_empty(), "handled messages came back: {back:?}");
    // Its block and route are free again; the other actor is untouched.
    assert_eq!(runtime.memory().used_bytes, baseline.used_bytes);
    assert_eq!(runtime.memory().actors, 1);
    echo_works(&echo).await;
    let again = runtime.launch("echo#again", active()).await.expect("the route was given back");
    echo_works(&again).await;
}

/// Defect 3: dropping the runtime (or losing the device) did not copy K2K inboxes back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_runtime_returns_k2k_messages_waiting_in_an_inbox() {
    if no_adapter("drop with inbox") {
        return;
    }
    let runtime = runtime(WgpuConfig::default()).await;
    let sink = runtime.launch(SINK, LaunchOptions::default()).await.unwrap();
    let relay = runtime.launch(RELAY, active()).await.unwrap();
    relay.call(Envelope::new(9, *b"to the sink"), TIMEOUT).await.unwrap();
    drop(runtime);
    assert_eq!(sink.state(), KernelState::Failed);
    let back = sink.take_unprocessed();
    assert_eq!(back.len(), 1, "{back:?}");
    assert_eq!((back[0].header.message_type, back[0].payload.as_slice()), (9, &b"to the sink"[..]));
}

/// Defect 4: when the round's output budget, not the ring, ran out, outputs were refused as
/// OUTPUT_FULL ("ring full").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_writing_more_than_the_round_budget_loses_nothing() {
    if no_adapter("output budget") {
        return;
    }
    let mut registry = KernelRegistry::with_builtins();
    registry
        .register(KernelSpec::new("triple").wgsl(
            "fn rk_handle() {\n    for (var i = 0u; i < 3u; i += 1u) {\n        rk_out_word(0u, i);\n        \
             if (rk_emit(7u, 4u) != RK_OK) {\n            rk_error(RK_SEND_REASON);\n        }\n    }\n}\n",
        ))
        .unwrap();
    let config = WgpuConfig { outputs_per_dispatch: 1, outputs_per_message: 1, ..WgpuConfig::default() };
    let runtime = WgpuRuntime::with_config(registry, config).await.unwrap();
    let triple = runtime.launch("triple", LaunchOptions::default()).await.unwrap();
    for _ in 0..4 {
        triple.send(Envelope::new(1, *b"go")).await.unwrap();
    }
    triple.activate().await.unwrap();
    for n in 0..12u32 {
        let out = triple.receive_timeout(TIMEOUT).await.unwrap();
        assert_eq!((out.header.message_type, out.payload.as_slice()), (7, &(n % 3).to_le_bytes()[..]), "output {n}");
    }
    assert_eq!(triple.metrics().errors, 0, "no output was refused");
}

/// Defect 5: outputs parked when a handler failed (its fault report among them) were never
/// flushed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_handler_s_parked_outputs_and_fault_report_arrive() {
    if no_adapter("parked fault report") {
        return;
    }
    let runtime = runtime(WgpuConfig::default()).await;
    let options = LaunchOptions { output_capacity: 4, ..LaunchOptions::default() };
    let panicker = runtime.launch(PANICKER, options).await.unwrap();
    for i in 0..4u8 {
        panicker.send(Envelope::new(1, vec![i])).await.unwrap();
    }
    // The four replies fill the ring; the fault report of the fifth message is parked.
    let poisoned = {
        let panicker = panicker.clone();
        tokio::spawn(async move { panicker.call(Envelope::new(1, *b"panic"), TIMEOUT).await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    panicker.activate().await.unwrap();
    let reason = fault_reason(poisoned.await.unwrap());
    assert!(reason.contains("asked to panic"), "the device's report arrived: {reason}");
    for i in 0..4u8 {
        assert_eq!(panicker.receive_timeout(TIMEOUT).await.unwrap().payload, [i]);
    }
    assert_eq!(panicker.state(), KernelState::Failed);
}

/// Defect 6: the input ring was always read before the K2K inbox.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sustained_host_input_does_not_starve_k2k_messages() {
    if no_adapter("k2k starvation") {
        return;
    }
    let runtime = runtime(WgpuConfig::default()).await;
    let sink = runtime.launch(SINK, LaunchOptions::default()).await.unwrap();
    let relay = runtime.launch(RELAY, active()).await.unwrap();
    relay.call(Envelope::new(2, *b"k2k"), TIMEOUT).await.unwrap();
    for i in 0..20u8 {
        sink.send(Envelope::new(1, vec![i])).await.unwrap();
    }
    sink.activate().await.unwrap();
    let order: Vec<u32> = {
        let mut order = Vec::new();
        for _ in 0..21 {
            order.push(sink.receive_timeout(TIMEOUT).await.unwrap().header.message_type);
        }
        order
    };
    let at = order.iter().position(|&t| t == 2).expect("the K2K message was handled");
    assert!(at <= 1, "the K2K message waited behind {at} host messages: {order:?}");
}

/// Defect 7: a panic on the pump thread ended it without failing the kernels.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_on_the_pump_thread_fails_every_actor_and_wakes_waiters() {
    if no_adapter("pump panic") {
        return;
    }
    let armed = Arc::new(AtomicBool::new(false));
    let mut config = WgpuConfig::default();
    let trigger = armed.clone();
    config.faults.after_submit = Some(Arc::new(move || {
        if trigger.load(Ordering::Acquire) {
            panic!("injected pump failure");
        }
    }));
    let runtime = runtime(config).await;
    let echo = runtime.launch("echo", active()).await.unwrap();
    let idle = runtime.launch("echo#idle", active()).await.unwrap();
    echo_works(&echo).await;
    let waiter = {
        let idle = idle.clone();
        tokio::spawn(async move { idle.receive_timeout(TIMEOUT).await })
    };
    armed.store(true, Ordering::Release);
    let started = Instant::now();
    let reason = fault_reason(echo.call(Envelope::new(1, *b"x"), TIMEOUT).await);
    assert!(reason.contains("injected pump failure"), "{reason}");
    assert!(waiter.await.unwrap().is_err(), "the idle actor's waiter woke with an error");
    assert!(started.elapsed() < Duration::from_secs(20), "waiters woke at once, not at their timeouts");
    assert_eq!(idle.state(), KernelState::Failed);
}

/// Defect 7: a wgpu validation error on the pump thread.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wgpu_error_on_the_pump_thread_fails_every_actor_with_its_message() {
    if no_adapter("wgpu error") {
        return;
    }
    let config = WgpuConfig::default();
    let trigger = config.faults.gpu_error.clone();
    let runtime = runtime(config).await;
    let echo = runtime.launch("echo", active()).await.unwrap();
    echo_works(&echo).await;
    trigger.store(true, Ordering::Release);
    let reason = fault_reason(echo.call(Envelope::new(1, *b"x"), TIMEOUT).await);
    assert!(reason.contains("wgpu reported an error"), "{reason}");
    let refused = runtime.launch("echo#late", active()).await.map(|_| ()).unwrap_err();
    assert!(refused.to_string().contains("wgpu reported an error"), "{refused}");
}

/// Defect 8: a round that never finished held the lock and hung every caller.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_round_past_its_timeout_fails_the_actors_instead_of_hanging() {
    if no_adapter("round timeout") {
        return;
    }
    // Far longer than an echo round even on a loaded machine, far shorter than eight of `hold`'s
    // longest messages (60 000 iterations of 1 024 dependent steps each: tens of milliseconds
    // apiece on lavapipe, more on a GPU's single invocation).
    let config = WgpuConfig { round_timeout: Duration::from_millis(250), ..WgpuConfig::default() };
    let runtime = runtime(config).await;
    let echo = runtime.launch("echo", active()).await.unwrap();
    echo_works(&echo).await;
    echo.terminate().await.unwrap();
    let hold = runtime.launch(HOLD, LaunchOptions::default()).await.unwrap();
    for _ in 0..16 {
        hold.send(Envelope::new(1, 1_000u32.to_le_bytes())).await.unwrap();
    }
    let started = Instant::now();
    hold.activate().await.ok();
    // While the GPU works on the round, the runtime is not locked: a launch (its pipeline is
    // built) either succeeds or is refused because the runtime failed, at once.
    let launch = tokio::time::timeout(Duration::from_secs(5), runtime.launch("echo#during", active())).await;
    assert!(launch.is_ok(), "a launch waited for the GPU");
    let result = hold.receive_timeout(TIMEOUT).await;
    assert!(result.is_err(), "{result:?}");
    assert_eq!(hold.state(), KernelState::Failed);
    let reason = fault_reason(hold.call(Envelope::new(1, *b"x"), Duration::from_secs(1)).await);
    assert!(reason.contains("round_timeout"), "{reason}");
    assert!(started.elapsed() < Duration::from_secs(30), "failed at the round timeout, not a caller's");
    drop(runtime); // does not hang on the GPU work still running
}

/// Defect 9: a launch that failed after its memory was reserved leaked the block and route.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_launch_failing_late_gives_back_its_memory_and_route() {
    if no_adapter("late launch failure") {
        return;
    }
    let mut config = WgpuConfig { max_actors: 2, ..WgpuConfig::default() };
    config.faults.fail_launch = Some(Arc::new(|id: &str| id.starts_with("echo#fail")));
    let runtime = runtime(config).await;
    let baseline = runtime.memory();
    for i in 0..5 {
        let error = runtime.launch(&format!("echo#fail{i}"), active()).await.map(|_| ()).unwrap_err();
        assert!(error.to_string().contains("injected"), "{error}");
    }
    assert_eq!(runtime.memory(), baseline);
    let a = runtime.launch("echo#a", active()).await.unwrap();
    let b = runtime.launch("echo#b", active()).await.unwrap();
    echo_works(&a).await;
    echo_works(&b).await;
    let full = runtime.launch("echo#c", active()).await.map(|_| ()).unwrap_err();
    assert!(
        matches!(&full, RingKernelError::CapacityExhausted { kernel, limit: 2, .. } if kernel == "echo#c"),
        "{full:?}"
    );
    assert!(full.to_string().contains("max_actors"), "{full}");
}

/// Capacity: default-size actors until the adapter's memory or bindings refuse, at least
/// `RINGKERNEL_WGPU_ACTORS` (64 by default; the GPU bundle asks for 256), all answering; the
/// arena grows as they launch and shrinks as they end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn as_many_default_actors_as_asked_all_answer() {
    if no_adapter("capacity") {
        return;
    }
    let wanted: usize = std::env::var("RINGKERNEL_WGPU_ACTORS").ok().and_then(|v| v.parse().ok()).unwrap_or(64);
    let runtime = runtime(WgpuConfig::default()).await;
    let initial = runtime.memory();
    let mut kernels = Vec::new();
    for i in 0..wanted {
        let kernel = runtime
            .launch(&format!("counter#{i}"), active())
            .await
            .unwrap_or_else(|e| panic!("actor {i} of {wanted}: {e} ({:?})", runtime.memory()));
        kernels.push(kernel);
    }
    let grown = runtime.memory();
    eprintln!("{wanted} actors: {grown:?} (started at {} bytes)", initial.arena_bytes);
    assert!(grown.arena_bytes > initial.arena_bytes, "the arena grew");
    assert_eq!(grown.actors, wanted);
    for (i, kernel) in kernels.iter().enumerate() {
        let reply = kernel.call(Envelope::new(0xC001, (i as u64).to_le_bytes()), TIMEOUT).await.unwrap();
        assert_eq!(reply.payload.len(), 8, "actor {i}");
    }
    for kernel in &kernels {
        kernel.terminate().await.unwrap();
    }
    let deadline = Instant::now() + TIMEOUT;
    while runtime.memory().actors != 0 {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(runtime.memory().arena_bytes, initial.arena_bytes, "{:?}", runtime.memory());
    // The buffer on the device shrinks too (the pump resizes it between rounds).
    while runtime.memory().buffer_bytes != initial.buffer_bytes {
        assert!(Instant::now() < deadline, "the buffer stayed at {:?}", runtime.memory());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(grown.buffer_bytes <= grown.arena_bytes);
}

/// A launch that does not fit names the limit that refused it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_launch_past_the_arena_limit_names_the_limit() {
    if no_adapter("arena limit") {
        return;
    }
    let config = WgpuConfig { arena_bytes: 4 << 20, arena_limit: Some(8 << 20), ..WgpuConfig::default() };
    let runtime = runtime(config).await;
    let mut launched = Vec::new();
    let error = loop {
        match runtime.launch(&format!("echo#{}", launched.len()), active()).await {
            Ok(kernel) => launched.push(kernel),
            Err(error) => break error,
        }
        assert!(launched.len() < 100, "an 8 MiB arena cannot hold 100 default actors");
    };
    assert!(!launched.is_empty());
    let text = error.to_string();
    assert!(text.contains("arena_limit") && text.contains("8388608"), "{text}");
    for kernel in &launched {
        echo_works(kernel).await;
    }
}

/// A K2K message written in a round after its receiver's dispatch (the receiver comes first in
/// the pass) is seen and handled in a later round, with nothing else happening: the receiver's
/// inbox is read back after the whole pass, not from its own report.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_k2k_message_sent_after_its_receiver_ran_in_the_same_round_is_handled() {
    if no_adapter("k2k after the receiver's dispatch") {
        return;
    }
    let runtime = runtime(WgpuConfig::default()).await;
    // Launch order is dispatch order: the sink runs before the relay in a round.
    let sink = runtime.launch(SINK, active()).await.unwrap();
    let relay = runtime.launch(RELAY, active()).await.unwrap();
    let hold = runtime.launch(HOLD, active()).await.unwrap();
    // A long round keeps the pump busy while both get their message, so that both are
    // dispatched in the next round.
    hold.send(Envelope::new(1, 100u32.to_le_bytes())).await.unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    sink.send(Envelope::new(1, *b"from the host")).await.unwrap();
    relay.call(Envelope::new(2, *b"through the relay"), TIMEOUT).await.unwrap();
    let mut got = Vec::new();
    for _ in 0..2 {
        let message = sink.receive_timeout(Duration::from_secs(10)).await.expect("both messages reach the host");
        got.push((message.header.message_type, message.payload));
    }
    got.sort();
    assert_eq!(got, vec![(1, b"from the host".to_vec()), (2, b"through the relay".to_vec())]);
}

/// Odd settings a user may try are refused with the field they got wrong, before anything runs;
/// "as large as it gets" (`u64::MAX`) is one of them, not an overflow.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn odd_settings_are_refused_by_name() {
    if no_adapter("odd settings") {
        return;
    }
    let base = WgpuConfig::default;
    let cases: Vec<(&str, WgpuConfig)> = vec![
        ("max_actors", WgpuConfig { max_actors: 0, ..base() }),
        ("messages_per_dispatch", WgpuConfig { messages_per_dispatch: 0, ..base() }),
        ("outputs_per_dispatch", WgpuConfig { outputs_per_dispatch: 0, ..base() }),
        ("outputs_per_message", WgpuConfig { outputs_per_message: 0, ..base() }),
        ("round_timeout", WgpuConfig { round_timeout: Duration::ZERO, ..base() }),
        ("arena_bytes", WgpuConfig { arena_bytes: 0, ..base() }),
        ("arena_bytes", WgpuConfig { arena_bytes: (64 << 10) - 1024, ..base() }),
        ("arena_bytes", WgpuConfig { arena_bytes: u64::MAX, ..base() }),
        // The route table of u32::MAX actors does not fit any adapter's binding.
        ("max_actors", WgpuConfig { max_actors: u32::MAX, ..base() }),
        ("arena_limit", WgpuConfig { arena_bytes: 4 << 20, arena_limit: Some(1 << 20), ..base() }),
        ("arena_limit", WgpuConfig { arena_limit: Some(u64::MAX), ..base() }),
    ];
    for (field, config) in cases {
        match WgpuRuntime::with_config(ringkernel_conformance::registry(), config.clone()).await {
            Err(RingKernelError::InvalidConfig { field: named, reason }) => {
                assert_eq!(named, field, "{config:?}: {reason}");
                assert!(!reason.is_empty());
            }
            Err(other) => panic!("{config:?}: expected InvalidConfig {{ {field} }}, got {other}"),
            Ok(_) => panic!("{config:?} was accepted; expected InvalidConfig {{ {field} }}"),
        }
    }
    // More actors than the dispatch parameters' binding holds (96 bytes each), though their
    // route table (64 bytes each) would fit: refused naming max_actors, not left to wgpu.
    let binding = runtime(base()).await.limits().max_storage_buffer_binding_size;
    let many = u32::try_from(binding / 96 + 1).unwrap_or(u32::MAX);
    let config = WgpuConfig { max_actors: many, ..base() };
    match WgpuRuntime::with_config(ringkernel_conformance::registry(), config).await {
        Err(RingKernelError::InvalidConfig { field, reason }) => assert_eq!(field, "max_actors", "{reason}"),
        other => panic!("{many} actors: expected InvalidConfig {{ max_actors }}, got {:?}", other.map(|_| ())),
    }
    // The smallest valid settings run: one actor, one message and one output per round.
    let tiny = WgpuConfig {
        max_actors: 1,
        messages_per_dispatch: 1,
        outputs_per_dispatch: 1,
        outputs_per_message: 1,
        arena_bytes: 64 << 10,
        ..base()
    };
    let runtime = runtime(tiny).await;
    assert_eq!(runtime.memory().arena_bytes, 64 << 10);
    let kernel = runtime.launch("echo", active()).await.unwrap();
    assert!(runtime.memory().arena_bytes > 64 << 10, "the arena grew for the actor: {:?}", runtime.memory());
    for round in 0..3u8 {
        let reply = kernel.call(Envelope::new(3, vec![round; 40]), TIMEOUT).await.unwrap();
        assert_eq!(reply.payload, vec![round; 40]);
    }
    let second = runtime.launch("echo#2", active()).await.map(|_| ()).unwrap_err().to_string();
    assert!(second.contains("max_actors"), "{second}");
}

/// Settings past what a user means literally: `Duration::MAX` is "no limit" (the pump never
/// sleeps, a round has no deadline), a budget of a million messages in one-message-per-dispatch
/// mode dispatches only the work there is (one K2K message is one dispatch, not a million), and a
/// park too large for the arena is refused naming `outputs_per_message`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_without_limits_mean_no_limit() {
    if no_adapter("settings without limits") {
        return;
    }
    let config = WgpuConfig {
        pump_spin: Duration::MAX,
        round_timeout: Duration::MAX,
        dispatch_loop: DispatchLoop::OnePerDispatch,
        messages_per_dispatch: 1_000_000,
        ..WgpuConfig::default()
    };
    let runtime = runtime(config).await;
    let sink = runtime.launch(SINK, active()).await.unwrap();
    let relay = runtime.launch(RELAY, active()).await.unwrap();
    for round in 0..3u8 {
        let started = Instant::now();
        relay.call(Envelope::new(2, vec![round; 12]), TIMEOUT).await.unwrap();
        let message = sink.receive_timeout(Duration::from_secs(20)).await.expect("the K2K message arrives");
        assert_eq!(message.payload, vec![round; 12]);
        // A million empty dispatches take minutes on lavapipe; the work there is takes well
        // under a second.
        assert!(started.elapsed() < Duration::from_secs(20), "{:?}", started.elapsed());
    }
    drop(runtime);

    // (A million parked outputs are ~0.5 GB: more than lavapipe's largest binding, not more than
    // an H200's 2 GiB, so the arena is limited to 64 MiB here.)
    let park = WgpuConfig { outputs_per_message: 1_000_000, arena_limit: Some(64 << 20), ..WgpuConfig::default() };
    let parking = self::runtime(park).await;
    match parking.launch("echo", active()).await.map(|_| ()) {
        Err(RingKernelError::InvalidConfig { field, reason }) => {
            assert_eq!(field, "outputs_per_message", "{reason}");
        }
        other => panic!("expected InvalidConfig {{ outputs_per_message }}, got {other:?}"),
    }
    let usage = parking.memory();
    assert_eq!(usage.actors, 0, "{usage:?}");
}
