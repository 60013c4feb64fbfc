//! `ringkernel bench --backend wgpu`: `call()` round trips and batched streaming through the wgpu
//! event-driven engine, beside a bare wgpu submit + readback of the same size and the same round
//! trip through Vulkan directly (`ash`, [`crate::vulkan_floor`]), all measured in the same run on
//! the same machine: the table shows what the engine costs over wgpu, and what wgpu costs over
//! the driver.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use ringkernel::prelude::*;
use ringkernel::{WgpuConfig, WgpuRuntime};
use ringkernel_bench::device::{call_round_trips, default_host_threads, stream};
use ringkernel_bench::{machine_description, median, quantile};
use ringkernel_wgpu::wgpu;
use serde_json::json;

use crate::bench::BenchArgs;

/// Bytes a bare round trip moves each way: one slot (256-byte header + 64-byte payload).
pub(crate) const SLOT_BYTES: u64 = 320;

pub(crate) const BARE_WGSL: &str = r#"
@group(0) @binding(0) var<storage, read> src: array<u32>;
@group(0) @binding(1) var<storage, read_write> dst: array<u32>;
@compute @workgroup_size(1)
fn main() {
    for (var i = 0u; i < arrayLength(&src); i += 1u) {
        dst[i] = src[i];
    }
}
"#;

/// The floor: write a slot, dispatch one workgroup that copies it, copy it to a readback buffer,
/// submit, wait for the map callback, read it. Returns round-trip times in ns.
fn bare_round_trips(rounds: usize) -> Result<Vec<u64>> {
    let (device, queue) = pollster::block_on(ringkernel_wgpu::open_device(WgpuConfig::default().backends))?;
    let buffer = |usage| {
        device.create_buffer(&wgpu::BufferDescriptor {
            label: None,
            size: SLOT_BYTES,
            usage,
            mapped_at_creation: false,
        })
    };
    let src = buffer(wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST);
    let dst = buffer(wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC);
    let readback = buffer(wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST);
    let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
        label: None,
        source: wgpu::ShaderSource::Wgsl(BARE_WGSL.into()),
    });
    let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
        label: None,
        layout: None,
        module: &module,
        entry_point: Some("main"),
        compilation_options: Default::default(),
        cache: None,
    });
    let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: None,
        layout: &pipeline.get_bind_group_layout(0),
        entries: &[
            wgpu::BindGroupEntry { binding: 0, resource: src.as_entire_binding() },
            wgpu::BindGroupEntry { binding: 1, resource: dst.as_entire_binding() },
        ],
    });
    let mut times = Vec::with_capacity(rounds);
    let mut slot = vec![0u8; SLOT_BYTES as usize];
    for i in 0..rounds as u64 {
        slot[..8].copy_from_slice(&i.to_le_bytes());
        let start = Instant::now();
        queue.write_buffer(&src, 0, &slot);
        let mut encoder = device.create_command_encoder(&wgpu::CommandEncoderDescriptor::default());
        {
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor::default());
            pass.set_pipeline(&pipeline);
            pass.set_bind_group(0, &bind_group, &[]);
            pass.dispatch_workgroups(1, 1, 1);
        }
        encoder.copy_buffer_to_buffer(&dst, 0, &readback, 0, SLOT_BYTES);
        queue.submit([encoder.finish()]);
        let (tx, rx) = std::sync::mpsc::channel();
        readback.slice(..).map_async(wgpu::MapMode::Read, move |r| {
            let _ = tx.send(r);
        });
        device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| RingKernelError::KernelFault { kernel: "bare".into(), reason: e.to_string() })?;
        rx.recv()
            .map_err(|e| RingKernelError::KernelFault { kernel: "bare".into(), reason: e.to_string() })?
            .map_err(|e| RingKernelError::KernelFault { kernel: "bare".into(), reason: e.to_string() })?;
        let same = readback.slice(..).get_mapped_range().map(|view| view[..8] == slot[..8]).unwrap_or(false);
        readback.unmap();
        times.push(start.elapsed().as_nanos() as u64);
        if !same {
            return Err(RingKernelError::KernelFault {
                kernel: "bare".into(),
                reason: format!("round {i} read back other bytes"),
            });
        }
    }
    Ok(times)
}

pub(crate) fn run(args: &BenchArgs) -> Result<(), Box<dyn std::error::Error>> {
    let tokio = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let mut config = WgpuConfig::default();
    if let Ok(mode) = std::env::var("RINGKERNEL_WGPU_UNIFIED") {
        config.unified_memory = match mode.as_str() {
            "off" => ringkernel::UnifiedMemory::Off,
            "require" => ringkernel::UnifiedMemory::Require,
            _ => ringkernel::UnifiedMemory::Auto,
        };
    }
    let runtime_config = config.clone();
    let runtime =
        tokio.block_on(WgpuRuntime::with_config(ringkernel::kernel::KernelRegistry::with_builtins(), config))?;
    let loop_budget = runtime.memory().loop_budget;
    let adapter = runtime.adapter().clone();
    eprintln!(
        "wgpu: {} ({:?}, {:?}, {}), unified memory: {}",
        adapter.name, adapter.backend, adapter.device_type, adapter.driver, adapter.unified_memory
    );
    let options = LaunchOptions::default().with_auto_activate(true).with_queue_capacity(args.capacity);
    let echo = tokio.block_on(runtime.launch("echo", options.clone()))?;
    let streamers: Vec<KernelHandle> = (0..args.actors)
        .map(|i| tokio.block_on(runtime.launch(&format!("echo#s{i}"), options.clone())))
        .collect::<ringkernel::Result<_>>()?;
    let per_actor = (args.messages / u64::from(args.actors)).max(1);
    let host_threads = args.host_threads.map_or_else(|| default_host_threads(streamers.len()), |t| t as usize);
    eprintln!("warming up (first dispatches compile the pipeline)");
    call_round_trips(&tokio, &echo, (args.rounds / 10).max(10))?;
    bare_round_trips((args.rounds / 10).max(10))?;
    // The Vulkan floor, where the adapter is a Vulkan one (no floor on Metal or DX12).
    let mut vulkan = match adapter.backend {
        wgpu::Backend::Vulkan => match crate::vulkan_floor::VulkanFloor::new() {
            Ok(mut floor) => {
                eprintln!("vulkan floor on {}", floor.device_name());
                floor.round_trips((args.rounds / 10).max(10))?;
                Some(floor)
            }
            Err(error) => {
                eprintln!("no Vulkan floor: {error}");
                None
            }
        },
        _ => None,
    };
    let (mut vk50, mut vk99) = (vec![], vec![]);
    let (mut bare50, mut bare99, mut rt50, mut rt99, mut tput) = (vec![], vec![], vec![], vec![], vec![]);
    for repeat in 0..args.repeats {
        if let Some(floor) = vulkan.as_mut() {
            let mut times = floor.round_trips(args.rounds)?;
            vk50.push(quantile(&mut times, 0.5) as f64);
            vk99.push(quantile(&mut times, 0.99) as f64);
        }
        let mut bare = bare_round_trips(args.rounds)?;
        bare50.push(quantile(&mut bare, 0.5) as f64);
        bare99.push(quantile(&mut bare, 0.99) as f64);
        let mut calls = call_round_trips(&tokio, &echo, args.rounds)?;
        rt50.push(quantile(&mut calls, 0.5) as f64);
        rt99.push(quantile(&mut calls, 0.99) as f64);
        tput.push(stream(&streamers, host_threads, per_actor, u64::from(args.capacity))?);
        eprintln!(
            "repeat {repeat}: bare {:.1} us, call {:.1} us p50 / {:.1} us p99, batch {:.3} M msg/s",
            bare50[repeat] / 1e3,
            rt50[repeat] / 1e3,
            rt99[repeat] / 1e3,
            tput[repeat] / 1e6
        );
    }
    let (b50, b99, c50, c99, t) =
        (median(&mut bare50), median(&mut bare99), median(&mut rt50), median(&mut rt99), median(&mut tput));
    println!(
        "wgpu on {} ({:?}), unified memory {}, medians of {} repeats:",
        adapter.name, adapter.backend, adapter.unified_memory, args.repeats
    );
    let (v50, v99) = if vk50.is_empty() { (None, None) } else { (Some(median(&mut vk50)), Some(median(&mut vk99))) };
    if let (Some(v50), Some(v99)) = (v50, v99) {
        println!("  Vulkan submit + readback (ash)   p50 {:>9.1} us  p99 {:>9.1} us", v50 / 1e3, v99 / 1e3);
    }
    println!(
        "  bare wgpu submit + readback ({SLOT_BYTES} B)  p50 {:>9.1} us  p99 {:>9.1} us{}",
        b50 / 1e3,
        b99 / 1e3,
        v50.map(|v| format!("  ({:.2}x Vulkan p50)", b50 / v)).unwrap_or_default()
    );
    println!(
        "  call() echo, 64 B payload       p50 {:>9.1} us  p99 {:>9.1} us  ({:.2}x bare p50)",
        c50 / 1e3,
        c99 / 1e3,
        c50 / b50
    );
    println!("  batch streaming, {} actors      {:>9.3} M msg/s", args.actors, t / 1e6);
    tokio.block_on(runtime.shutdown())?;
    if let Some(path) = &args.json {
        let record = json!({
            "backend": "wgpu",
            "machine": format!("{} ({:?}, {:?}, driver {}); host {}", adapter.name, adapter.backend, adapter.device_type, adapter.driver, machine_description()),
            "date": std::env::var("RINGKERNEL_DATE").unwrap_or_else(|_| SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs().to_string()).unwrap_or_default()),
            "commit": std::env::var("RINGKERNEL_COMMIT").unwrap_or_else(|_| "unknown".into()),
            "unified_memory": adapter.unified_memory,
            "repeats": args.repeats,
            "rounds": args.rounds,
            "vulkan_roundtrip_p50_ns": v50,
            "vulkan_roundtrip_p99_ns": v99,
            "bare_over_vulkan_p50": v50.map(|v| b50 / v),
            "bare_roundtrip_p50_ns": b50,
            "bare_roundtrip_p99_ns": b99,
            "roundtrip_p50_ns": c50,
            "roundtrip_p99_ns": c99,
            "roundtrip_over_bare_p50": c50 / b50,
            "batch_msgs_per_s": t,
            "batch_actors": args.actors,
            "batch_capacity": args.capacity,
            "messages_per_dispatch": runtime_config.messages_per_dispatch,
            "loop_budget": loop_budget,
        });
        std::fs::write(path, serde_json::to_string_pretty(&record)? + "\n")?;
    }
    Ok(())
}
