//! What only the CUDA backend has: hardware faults, many resident actors, the occupancy limit, the
//! watchdog on a hung device handler, compile errors through `launch`. Skipped (with the reason)
//! without a GPU unless `RINGKERNEL_REQUIRE_CUDA=1`. Run with `--test-threads=1` on a GPU.

use std::time::Duration;

use ringkernel_core::error::RingKernelError;
use ringkernel_core::kernel::{KernelRegistry, KernelSpec, builtin};
use ringkernel_core::message::Envelope;
use ringkernel_core::runtime::{KernelState, LaunchOptions, RingKernelRuntime};
use ringkernel_cuda::{CudaConfig, CudaRuntime};

const TIMEOUT: Duration = Duration::from_secs(10);

fn gpu(test: &str) -> bool {
    match CudaRuntime::probe(0) {
        Ok(_) => true,
        Err(error) if std::env::var_os("RINGKERNEL_REQUIRE_CUDA").is_some() => {
            panic!("RINGKERNEL_REQUIRE_CUDA is set but the cuda backend is unavailable: {error}")
        }
        Err(error) => {
            eprintln!("SKIPPED {test}: {error}");
            false
        }
    }
}

const TRAPPER: &str = r#"
__device__ void rk_handle(RkContext& ctx) {
    if (ctx.payload_bytes == 4 && ctx.payload[0] == 't' && ctx.payload[1] == 'r' && ctx.payload[2] == 'a' && ctx.payload[3] == 'p') {
        asm volatile("trap;");
    }
    rk_reply(ctx, ctx.message_type, ctx.payload, ctx.payload_bytes);
}
"#;

const SPINNER: &str = r#"
__device__ void rk_handle(RkContext& ctx) {
    if (ctx.payload_bytes == 4 && ctx.payload[0] == 'h') {
        unsigned long long start = rk_globaltimer();
        while (rk_globaltimer() - start < 1500000000ull) { }
    }
    __syncthreads();
    rk_reply(ctx, ctx.message_type, ctx.payload, ctx.payload_bytes);
}
"#;

fn registry() -> KernelRegistry {
    let mut registry = KernelRegistry::with_builtins();
    registry.register(KernelSpec::new("trapper").cuda(TRAPPER)).unwrap();
    registry.register(KernelSpec::new("spinner").cuda(SPINNER)).unwrap();
    registry
        .register(KernelSpec::new("broken").cuda("__device__ void rk_handle(RkContext& ctx) {\n  oops;\n}\n"))
        .unwrap();
    registry.register(KernelSpec::new("cpu_only").cpu(|_| Ok(()))).unwrap();
    registry
}

fn active() -> LaunchOptions {
    LaunchOptions::default().with_auto_activate(true)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hardware_fault_fails_every_actor_and_a_new_runtime_works() {
    if !gpu("a_hardware_fault_fails_every_actor_and_a_new_runtime_works") {
        return;
    }
    // The driver takes a moment to report a trap; a watchdog shorter than that would answer first
    // (with a KernelFault of its own).
    let config = CudaConfig { watchdog: Some(Duration::from_secs(30)), ..CudaConfig::default() };
    let runtime = CudaRuntime::with_config(registry(), config).unwrap();
    let echo = runtime.launch(builtin::ECHO, active()).await.unwrap();
    assert_eq!(echo.call(Envelope::new(1, *b"before"), TIMEOUT).await.unwrap().payload, b"before");
    let trapper = runtime.launch("trapper", LaunchOptions::default()).await.unwrap();
    for payload in [&b"trap"[..], b"one", b"two", b"three"] {
        trapper.send(Envelope::new(1, payload.to_vec())).await.unwrap();
    }
    eprintln!("queued; activating the trapper");
    trapper.activate().await.unwrap_or_else(|e| eprintln!("activate raced the fault: {e}"));
    eprintln!("activated");
    let trapped = std::time::Instant::now();
    let fault = trapper.receive_timeout(Duration::from_secs(20)).await.expect_err("a trapped kernel answers nothing");
    eprintln!("the fault reached the waiting receive after {:?}: {fault}", trapped.elapsed());
    match &fault {
        RingKernelError::KernelFault { reason, .. } => assert!(reason.contains("CUDA_ERROR"), "{reason}"),
        other => panic!("expected KernelFault naming the CUDA error, got {other:?}"),
    }
    assert_eq!(trapper.state(), KernelState::Failed);
    let mut returned: Vec<Vec<u8>> = trapper.take_unprocessed().into_iter().map(|e| e.payload).collect();
    returned.sort();
    assert_eq!(
        returned,
        [b"one".to_vec(), b"three".to_vec(), b"trap".to_vec(), b"two".to_vec()],
        "nothing accepted is lost"
    );
    // The other actor of the lost context fails too, with the same cause.
    let deadline = std::time::Instant::now() + TIMEOUT;
    while echo.state() != KernelState::Failed && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    match echo.call(Envelope::new(1, *b"after"), TIMEOUT).await {
        Err(RingKernelError::KernelFault { reason, .. }) => assert!(reason.contains("CUDA_ERROR"), "{reason}"),
        other => panic!("expected KernelFault, got {other:?}"),
    }
    assert!(runtime.lost().is_some());
    eprintln!("both failed; dropping the lost runtime");
    assert!(matches!(runtime.launch("echo#2", active()).await, Err(RingKernelError::BackendUnavailable(_))));
    drop((echo, trapper));
    drop(runtime);

    eprintln!("dropped; creating a new runtime");
    // What happens next is the driver's choice: on driver 580 / CUDA 13.0 it refuses new
    // contexts for the rest of the process after a hardware fault. Either a new runtime works, or
    // creating one says so plainly.
    match CudaRuntime::new(registry()) {
        Ok(fresh) => {
            let echo = fresh.launch(builtin::ECHO, active()).await.unwrap();
            assert_eq!(echo.call(Envelope::new(1, *b"again"), TIMEOUT).await.unwrap().payload, b"again");
            fresh.shutdown().await.unwrap();
            eprintln!("a new runtime works after the fault");
        }
        Err(RingKernelError::BackendUnavailable(reason)) => {
            assert!(reason.contains("restart the process"), "{reason}");
            eprintln!("the driver refuses a new context after the fault: {reason}");
        }
        Err(other) => panic!("a new runtime after a lost context: {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixty_four_actors_run_launch_and_terminate_independently() {
    if !gpu("sixty_four_actors_run_launch_and_terminate_independently") {
        return;
    }
    let runtime = std::sync::Arc::new(CudaRuntime::new(registry()).unwrap());
    let options = active().with_queue_capacity(64).with_slot_payload_bytes(64);
    let mut handles = Vec::new();
    let started = std::time::Instant::now();
    for i in 0..64 {
        handles.push(runtime.launch(&format!("echo#{i}"), options.clone()).await.unwrap());
        eprintln!("launched echo#{i} at {:?}", started.elapsed());
    }
    let calls = handles.iter().enumerate().map(|(i, h)| {
        let h = h.clone();
        async move { h.call(Envelope::new(1, (i as u32).to_le_bytes()), TIMEOUT).await }
    });
    for (i, reply) in futures_join(calls).await.into_iter().enumerate() {
        assert_eq!(reply.unwrap().payload, (i as u32).to_le_bytes());
    }
    // Half of them stop while the rest keep answering, and new ones start in their place.
    for handle in handles.drain(..32) {
        handle.terminate().await.unwrap();
    }
    for i in 64..96 {
        handles.push(runtime.launch(&format!("echo#{i}"), options.clone()).await.unwrap());
    }
    for (i, handle) in handles.iter().enumerate() {
        let reply = handle.call(Envelope::new(2, (i as u32).to_le_bytes()), TIMEOUT).await.unwrap();
        assert_eq!(reply.payload, (i as u32).to_le_bytes());
    }
    assert_eq!(runtime.list_kernels().len(), 96);
    runtime.shutdown().await.unwrap();
}

async fn futures_join<F>(futures: impl IntoIterator<Item = F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let tasks: Vec<_> = futures.into_iter().map(tokio::spawn).collect();
    let mut out = Vec::new();
    for task in tasks {
        out.push(task.await.unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actors_beyond_the_pool_or_what_can_be_resident_are_refused_with_the_count() {
    if !gpu("actors_beyond_the_pool_or_what_can_be_resident_are_refused_with_the_count") {
        return;
    }
    // A pool larger than the GPU can hold at once never starts (blocks of 960 handler threads and
    // the two service warps: one per SM at most).
    let config = CudaConfig { actor_slots: 256, block_size: 960, ..CudaConfig::default() };
    let error = CudaRuntime::with_config(registry(), config).map(|_| ()).unwrap_err().to_string();
    assert!(error.contains("cannot be resident at once") && error.contains("per SM"), "{error}");

    // A launch beyond the pool's slots is refused with the count; the others keep running.
    let config = CudaConfig { actor_slots: 8, ..CudaConfig::default() };
    let runtime = CudaRuntime::with_config(registry(), config).unwrap();
    let options = active().with_queue_capacity(8).with_slot_payload_bytes(16);
    for i in 0..8 {
        runtime.launch(&format!("echo#{i}"), options.clone()).await.unwrap();
    }
    match runtime.launch("echo#8", options.clone()).await.map(|_| ()) {
        Err(RingKernelError::CapacityExhausted { kernel, what, limit: 8, .. }) => {
            assert_eq!(kernel, "echo#8");
            assert!(what.contains("actor slots"), "{what}");
        }
        other => panic!("expected CapacityExhausted naming echo#8 and 8 slots, got {other:?}"),
    }
    let echo = runtime.get_kernel(&"echo#0".into()).unwrap();
    assert_eq!(echo.call(Envelope::new(1, *b"ok"), TIMEOUT).await.unwrap().payload, b"ok", "the others still run");
    // A slot frees when its actor ends.
    echo.terminate().await.unwrap();
    let deadline = std::time::Instant::now() + TIMEOUT;
    let again = loop {
        match runtime.launch("echo#8", options.clone()).await {
            Ok(handle) => break handle,
            Err(error) if std::time::Instant::now() < deadline => {
                assert!(error.to_string().contains("actor slots"), "{error}");
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            Err(error) => panic!("the slot never came back: {error}"),
        }
    };
    assert_eq!(again.call(Envelope::new(1, *b"new"), TIMEOUT).await.unwrap().payload, b"new");
    runtime.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watchdog_turns_a_hung_device_handler_into_a_fault() {
    if !gpu("the_watchdog_turns_a_hung_device_handler_into_a_fault") {
        return;
    }
    let config = CudaConfig { watchdog: Some(Duration::from_millis(100)), ..CudaConfig::default() };
    let runtime = CudaRuntime::with_config(registry(), config).unwrap();
    let spinner = runtime.launch("spinner", active()).await.unwrap();
    assert_eq!(spinner.call(Envelope::new(1, *b"fine"), TIMEOUT).await.unwrap().payload, b"fine");
    let started = std::time::Instant::now();
    match spinner.call(Envelope::new(1, *b"hang"), TIMEOUT).await {
        Err(RingKernelError::KernelFault { reason, .. }) => assert!(reason.contains("heartbeat"), "{reason}"),
        other => panic!("expected the watchdog's KernelFault, got {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(1), "the watchdog fired after {:?}", started.elapsed());
    // The handler ends after 1.5 s; the actor then carries on.
    tokio::time::sleep(Duration::from_millis(1600)).await;
    assert_eq!(spinner.call(Envelope::new(1, *b"back"), TIMEOUT).await.unwrap().payload, b"back");
    runtime.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn launch_reports_compile_errors_and_missing_handlers() {
    if !gpu("launch_reports_compile_errors_and_missing_handlers") {
        return;
    }
    let runtime = CudaRuntime::new(registry()).unwrap();
    match runtime.launch("broken", active()).await {
        Err(RingKernelError::Compile { kernel, log }) => {
            assert_eq!(kernel, "broken");
            assert!(log.contains("broken.cu(2)"), "{log}");
        }
        other => panic!("expected a compile error, got {:?}", other.map(|_| ())),
    }
    let error = runtime.launch("cpu_only", active()).await.map(|_| ()).unwrap_err().to_string();
    assert!(error.contains("no cuda handler"), "{error}");
    let error = runtime.launch("echo", active().with_block_size(256)).await.map(|_| ()).unwrap_err().to_string();
    assert!(error.contains("blocks of 128 threads"), "{error}");
    let error = CudaRuntime::with_config(registry(), CudaConfig { block_size: 48, ..CudaConfig::default() });
    assert!(error.map(|_| ()).unwrap_err().to_string().contains("multiple of 32"));
    let error = CudaRuntime::with_config(registry(), CudaConfig { block_size: 1024, ..CudaConfig::default() });
    assert!(error.map(|_| ()).unwrap_err().to_string().contains("service warps"), "no room for the service warps");
    let info = runtime.device();
    assert!(info.compute_capability.0 >= 7, "{info}");
    runtime.shutdown().await.unwrap();
}

/// The bus warp reads a message and learns that it is new in one round trip: nearly every call's
/// request is accepted by its slot check, not read a second time once the tail is known.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_are_read_in_one_round_trip() {
    if !gpu("calls_are_read_in_one_round_trip") {
        return;
    }
    let runtime = CudaRuntime::new(registry()).unwrap();
    let echo = runtime.launch(builtin::ECHO, active()).await.unwrap();
    const CALLS: u32 = 2000;
    for i in 0..CALLS {
        let reply = echo.call(Envelope::new(1, i.to_le_bytes()), TIMEOUT).await.unwrap();
        assert_eq!(reply.payload, i.to_le_bytes());
    }
    // The counts are stored when the bus warp goes idle.
    tokio::time::sleep(Duration::from_millis(20)).await;
    let (checked, confirmed) = runtime.read_paths(echo.id()).expect("the actor runs");
    eprintln!("{CALLS} calls: {checked} read in one round trip, {confirmed} read again");
    assert_eq!(checked + confirmed, CALLS, "every request was read once");
    assert!(checked >= CALLS * 9 / 10, "only {checked} of {CALLS} requests were accepted by their slot check");
    runtime.shutdown().await.unwrap();
}

/// A soak as a user would run it: more tasks looping over calls than the runtime has workers
/// (echo and counter actors, every reply checked), one more passing a token through a K2K chain,
/// and a pause in the middle; nothing is lost, every other task keeps running.
/// `RINGKERNEL_SOAK_SECS` sets the length (default 10 s).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_soak_of_looping_callers_and_a_k2k_token_loses_nothing() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    if !gpu("a_soak_of_looping_callers_and_a_k2k_token_loses_nothing") {
        return;
    }
    let seconds: u64 = std::env::var("RINGKERNEL_SOAK_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(10);
    let runtime = Arc::new(CudaRuntime::new(ringkernel_conformance::registry()).unwrap());
    let stop = Arc::new(AtomicBool::new(false));
    let calls = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for caller in 0..6u64 {
        let counter = caller % 2 == 1;
        let name =
            if counter { format!("{}#{caller}", builtin::COUNTER) } else { format!("{}#{caller}", builtin::ECHO) };
        let kernel = runtime.launch(&name, active()).await.unwrap();
        let (stop, calls) = (stop.clone(), calls.clone());
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                if counter {
                    let reply =
                        kernel.call(Envelope::new(builtin::COUNTER_ADD, 1u64.to_le_bytes()), TIMEOUT).await.unwrap();
                    assert_eq!(reply.payload, n.to_le_bytes(), "counter total after {n} adds");
                } else {
                    let payload = ((n * 0x9E37_79B9) ^ caller).to_le_bytes();
                    let reply = kernel.call(Envelope::new(1, payload), TIMEOUT).await.unwrap();
                    assert_eq!(reply.payload, payload, "echo of call {n}");
                }
                calls.fetch_add(1, Ordering::Relaxed);
            }
            n
        }));
    }
    // The token: relay forwards it to sink over K2K (and acknowledges), sink emits it to the host.
    let relay = runtime.launch("relay", active()).await.unwrap();
    let sink = runtime.launch("sink", active()).await.unwrap();
    let tokens = Arc::new(AtomicU64::new(0));
    let token_task = tokio::spawn({
        let (stop, tokens) = (stop.clone(), tokens.clone());
        async move {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                relay.call(Envelope::new(7, n.to_le_bytes()), TIMEOUT).await.unwrap();
                let arrived = sink.receive_timeout(TIMEOUT).await.unwrap();
                assert_eq!(arrived.payload, n.to_le_bytes(), "token {n}");
                tokens.fetch_add(1, Ordering::Relaxed);
            }
        }
    });
    let started = std::time::Instant::now();
    let mut last = (0, 0);
    while started.elapsed() < Duration::from_secs(seconds) {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = (calls.load(Ordering::Relaxed), tokens.load(Ordering::Relaxed));
        assert!(now.0 > last.0 && now.1 > last.1, "calls and tokens keep moving: {last:?} then {now:?}");
        last = now;
    }
    stop.store(true, Ordering::Relaxed);
    let mut total = 0;
    for task in tasks {
        total += task.await.expect("a caller task");
    }
    token_task.await.expect("the token task");
    eprintln!(
        "soak of {seconds} s: {total} calls ({:.0}/s), {} K2K tokens, all checked",
        total as f64 / started.elapsed().as_secs_f64(),
        tokens.load(Ordering::Relaxed)
    );
    runtime.shutdown().await.unwrap();
}
