//! The specification's types on Linux: Metal reports itself unavailable, and the very same types
//! run over Vulkan (lavapipe in CI). The MSL templates are checked current and free of the
//! specification's defects.

use std::time::Duration;

use ringkernel_core::error::RingKernelError;
use ringkernel_core::halo::{HaloExchange, Neighbourhood, reference_step};
use ringkernel_core::message::Envelope;
use ringkernel_core::runtime::{Backend, LaunchOptions, RingKernelRuntime};
use ringkernel_metal::*;

fn vulkan_missing(test: &str) -> bool {
    match ringkernel_wgpu::WgpuRuntime::probe(ringkernel_wgpu::wgpu::Backends::VULKAN) {
        Ok(_) => false,
        Err(error) => {
            assert!(std::env::var_os("RINGKERNEL_REQUIRE_WGPU").is_none(), "{error}");
            eprintln!("SKIPPED {test}: {error}");
            true
        }
    }
}

#[tokio::test]
async fn metal_is_unavailable_off_apple_systems() {
    if cfg!(target_vendor = "apple") {
        assert!(is_metal_available(), "an Apple system without a Metal device?");
        return;
    }
    assert!(!is_metal_available());
    match MetalRuntime::new().await {
        Err(RingKernelError::BackendUnavailable(reason)) => assert!(reason.contains("Apple"), "{reason}"),
        Err(other) => panic!("expected BackendUnavailable, got {other}"),
        Ok(_) => panic!("MetalRuntime::new succeeded off Apple systems"),
    }
    assert!(MetalBuffer::new(16).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seed_example_runs_over_vulkan() {
    if vulkan_missing("the_seed_example_runs_over_vulkan") {
        return;
    }
    let runtime = MetalRuntime::over_vulkan(default_registry()).await.unwrap();
    assert_eq!(runtime.backend(), Backend::Metal);
    assert!(!runtime.is_backend_available(Backend::Metal), "Vulkan is not Metal");
    let device = runtime.device();
    assert_eq!(device.api, ringkernel_wgpu::wgpu::Backend::Vulkan);
    let kernel: MetalKernel = runtime.launch("compute", Default::default()).await.unwrap();
    kernel.activate().await.unwrap();
    let reply = kernel.call(Envelope::new(3, *b"metal api"), Duration::from_secs(60)).await.unwrap();
    assert_eq!(reply.payload, b"metal api");
    let counter = runtime.launch("counter", LaunchOptions::default().with_auto_activate(true)).await.unwrap();
    let total = counter
        .call(Envelope::new(0xC001, [5u64.to_le_bytes(), 7u64.to_le_bytes()].concat()), Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(total.payload, 12u64.to_le_bytes());
    runtime.shutdown().await.unwrap();
}

#[tokio::test]
async fn buffers_round_trip_and_refuse_bad_ranges() {
    if vulkan_missing("buffers_round_trip_and_refuse_bad_ranges") {
        return;
    }
    let buffer = MetalBuffer::over_vulkan(10).await.unwrap();
    assert_eq!(buffer.len(), 12);
    buffer.write(4, &[1, 2, 3, 4]).unwrap();
    assert_eq!(buffer.read().unwrap(), [0, 0, 0, 0, 1, 2, 3, 4, 0, 0, 0, 0]);
    assert!(buffer.write(12, &[0; 4]).is_err());
    assert!(buffer.write(2, &[0; 4]).is_err());
    assert!(MetalBuffer::over_vulkan(0).await.is_err());
}

/// Buffers share one device per process (not one device each), are mapped where memory is
/// unified, and a runtime's buffers live on the runtime's own device.
#[tokio::test]
async fn buffers_share_a_device_and_map_unified_memory() {
    if vulkan_missing("buffers_share_a_device_and_map_unified_memory") {
        return;
    }
    let a = MetalBuffer::over_vulkan(64).await.unwrap();
    let b = MetalBuffer::over_vulkan(64).await.unwrap();
    assert!(a.device() == b.device(), "two buffers, one device");
    let runtime = MetalRuntime::over_vulkan(ringkernel_metal::default_registry()).await.unwrap();
    let unified = runtime.device().unified_memory;
    let c = runtime.buffer(64).unwrap();
    assert_eq!(c.is_mapped(), unified, "mapped exactly where the runtime's memory is unified");
    let adapter = ringkernel_wgpu::WgpuRuntime::probe(ringkernel_wgpu::wgpu::Backends::VULKAN).unwrap();
    if matches!(
        adapter.device_type,
        ringkernel_wgpu::wgpu::DeviceType::Cpu | ringkernel_wgpu::wgpu::DeviceType::IntegratedGpu
    ) {
        assert!(a.is_mapped(), "unified memory: no staging");
    }
    for buffer in [&a, &c] {
        let words: Vec<u8> = (0..64u8).collect();
        buffer.write(0, &words).unwrap();
        buffer.write(8, &[9; 8]).unwrap();
        let mut expected = words.clone();
        expected[8..16].fill(9);
        assert_eq!(buffer.read().unwrap(), expected);
    }
}

#[tokio::test]
async fn halo_exchange_over_vulkan_equals_the_reference() {
    if vulkan_missing("halo_exchange_over_vulkan_equals_the_reference") {
        return;
    }
    let config =
        HaloExchangeConfig { grid: [12, 8, 1], tile: [4, 4, 1], halo_width: 1, neighbourhood: Neighbourhood::Moore2D };
    let grid = config.geometry().unwrap();
    let cells: Vec<f32> = (0..grid.cell_count()).map(|i| ((i * 7919) % 1000) as f32 / 13.0).collect();
    let mut halo = MetalHaloExchange::over_vulkan(config).await.unwrap();
    halo.upload(&cells).unwrap();
    halo.step(2).unwrap();
    let expected = reference_step(&grid, &reference_step(&grid, &cells));
    let got = halo.download().unwrap();
    assert!(got.iter().zip(&expected).all(|(a, b)| a.to_bits() == b.to_bits()));
    let stats: HaloExchangeStats = halo.stats();
    assert_eq!(stats.steps, 2);
    assert_eq!(stats.messages, 2 * grid.step_traffic().0);
    let bad = HaloExchangeConfig { halo_width: 9, ..config };
    assert!(MetalHaloExchange::over_vulkan(bad).await.is_err());
}

#[test]
fn layouts_are_the_protocols() {
    assert_eq!(size_of::<MetalK2KInboxHeader>(), 64);
    assert_eq!(size_of::<MetalK2KRouteEntry>(), 32);
    assert_eq!(size_of::<MetalK2KRoutingTable>(), 864);
    assert_eq!(size_of::<MetalHaloMessage>(), 32);
}

fn check_snapshot(path: &str, current: &str, committed: &str) {
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(format!("{}/{path}", env!("CARGO_MANIFEST_DIR")), current).unwrap();
        return;
    }
    assert!(
        current == committed,
        "{path} is stale: regenerate with UPDATE_SNAPSHOTS=1 cargo test -p ringkernel-metal --test metal"
    );
}

#[test]
fn msl_templates_are_current_and_free_of_the_seeds_defects() {
    let actor = ringkernel_wgpu::compile::actor_msl().unwrap();
    let halo = ringkernel_wgpu::compile::halo_msl().unwrap();
    check_snapshot("msl/ring_kernel.metal", &actor, RING_KERNEL_MSL_TEMPLATE);
    check_snapshot("msl/k2k_halo_exchange.metal", &halo, K2K_HALO_EXCHANGE_MSL_TEMPLATE);
    for (name, msl) in [("actor", &actor), ("halo", &halo)] {
        assert!(msl.contains("kernel void"), "{name}: a kernel entry point");
        for banned in [
            "atomic_ulong",
            "atomic_long",
            "memory_order_acquire",
            "memory_order_release",
            "memory_order_seq_cst",
            "memory_order_acq_rel",
        ] {
            assert!(!msl.contains(banned), "{name} contains {banned}");
        }
        for line in msl.lines().filter(|l| l.contains("threadgroup")) {
            assert!(!line.contains("device "), "{name}: threadgroup memory passed as device memory: {line}");
        }
    }
    assert!(halo.contains("halo_send") && halo.contains("halo_apply") && halo.contains("halo_compute"));
    assert!(halo.contains("memory_order_relaxed"), "the halo's error counter is a relaxed 32-bit atomic");
}
