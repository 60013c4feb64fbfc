//! The first thing to try: echo and counter round trips on whatever adapter is there.

use std::time::Duration;

use ringkernel_core::kernel::KernelRegistry;
use ringkernel_core::message::Envelope;
use ringkernel_core::runtime::{LaunchOptions, RingKernelRuntime};
use ringkernel_wgpu::{WgpuConfig, WgpuRuntime};

/// Whether to skip: no adapter (a failure when RINGKERNEL_REQUIRE_WGPU is set).
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_round_trip() {
    if no_adapter("echo_round_trip") {
        return;
    }
    let unified = if std::env::var_os("RK_STAGED").is_some() {
        ringkernel_wgpu::UnifiedMemory::Off
    } else {
        ringkernel_wgpu::UnifiedMemory::Auto
    };
    let runtime = WgpuRuntime::with_config(
        KernelRegistry::with_builtins(),
        WgpuConfig { unified_memory: unified, ..WgpuConfig::default() },
    )
    .await
    .unwrap();
    eprintln!("adapter: {:?}", runtime.adapter());
    let t = std::time::Instant::now();
    let echo = runtime.launch("echo", LaunchOptions::default().with_auto_activate(true)).await.unwrap();
    eprintln!("launch took {:?}", t.elapsed());
    let t = std::time::Instant::now();
    let reply = echo.call(Envelope::new(7, *b"hello gpu"), Duration::from_secs(120)).await.unwrap();
    assert_eq!(reply.payload, b"hello gpu");
    eprintln!("first call took {:?}", t.elapsed());
    runtime.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_of_messages_is_drained_in_few_dispatches() {
    if no_adapter("smoke") {
        return;
    }
    let runtime = WgpuRuntime::new(KernelRegistry::with_builtins()).await.unwrap();
    let echo = runtime.launch("echo", LaunchOptions::default()).await.unwrap();
    for i in 0..100u32 {
        echo.send(Envelope::new(1, i.to_le_bytes())).await.unwrap();
    }
    echo.activate().await.unwrap();
    for i in 0..100u32 {
        assert_eq!(echo.receive_timeout(Duration::from_secs(30)).await.unwrap().payload, i.to_le_bytes());
    }
    runtime.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_handlers_still_batch() {
    if no_adapter("smoke") {
        return;
    }
    let mut registry = KernelRegistry::with_builtins();
    registry
        .register(ringkernel_core::kernel::KernelSpec::new("spin").wgsl(
            "fn rk_handle() {\n    var x = rk_payload_len() + 1u;\n    for (var i = 0u; i < SPIN; i += 1u) {\n        x = x * 1664525u + 1013904223u;\n    }\n    rk_out_word(0u, x);\n    if (rk_reply(1u, 4u) != RK_OK) {\n        rk_error(RK_SEND_REASON);\n    }\n}\nconst SPIN: u32 = 60000u;\n",
        ))
        .unwrap();
    let runtime = WgpuRuntime::new(registry).await.unwrap();
    let spin = runtime.launch("spin", LaunchOptions::default()).await.unwrap();
    for i in 0..200u32 {
        spin.send(Envelope::new(1, i.to_le_bytes())).await.unwrap();
    }
    let t = std::time::Instant::now();
    spin.activate().await.unwrap();
    for i in 0..200u32 {
        spin.receive_timeout(Duration::from_secs(30)).await.unwrap_or_else(|e| panic!("reply {i}: {e}"));
    }
    eprintln!("200 spins took {:?}", t.elapsed());
    runtime.shutdown().await.unwrap();
}
