//! `ringkernel bench --backend cuda`: every figure beside the hardware's floor, measured in the
//! same run on the same GPU and context: a raw flag ping-pong through mapped host memory, a
//! 320-byte slot echoed with one read per poll, two blocks bouncing a word through global memory,
//! raw host → GPU → host rings of 320-byte slots, empty launch + sync, a one-node CUDA Graph, the
//! 64-byte offload graph; then RingKernel `call()` with a 64-byte payload (full header, HLC,
//! checksum on), streaming over several actors, and a device-side K2K round trip between two
//! actors.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ringkernel::CudaRuntime;
use ringkernel::prelude::*;
use ringkernel_bench::device::{PAYLOAD, STREAM_BATCH, call_round_trips, default_host_threads, stream};
use ringkernel_bench::{machine_description, median, quantile};
use serde_json::json;

use crate::bench::BenchArgs;

const TIMEOUT: Duration = Duration::from_secs(30);
/// K2K round trips per measurement (the ping actor keeps one sample each).
const K2K_ROUNDS: u32 = 2000;

const SAMPLES: u32 = 0x6B32_6B03;
const SUMMARY: u32 = 0x6B32_6B04;

/// Starts on a host message carrying a round count, then bounces `PING`s off `k2k_pong` and keeps
/// each round trip's SM cycles; at the end emits the samples and the run's duration in both
/// `%globaltimer` ns and cycles (to convert cycles to ns with this run's own clock).
const K2K_PING: &str = r#"
#define K2K_SAMPLES 2048
struct PingState {
    unsigned long long cycle0, first_cycle, first_global, reserved;
    unsigned int total, count, pad0, pad1;
    unsigned int samples[K2K_SAMPLES];
};
__device__ void rk_handle(RkContext& ctx) {
    PingState* st = reinterpret_cast<PingState*>(ctx.state);
    __shared__ unsigned int round;
    __shared__ int done;
    if (ctx.header->source_kernel == RK_HOST_KERNEL_ID) {
        if (threadIdx.x == 0) {
            unsigned int n = 0;
            if (ctx.payload_bytes >= 4) memcpy(&n, ctx.payload, 4);
            if (n > K2K_SAMPLES) n = K2K_SAMPLES;
            if (n == 0) n = 1;
            st->total = n;
            st->count = 0;
            st->cycle0 = clock64();
            st->first_cycle = st->cycle0;
            st->first_global = rk_globaltimer();
            round = 0;
        }
        __syncthreads();
        if (rk_send_to(ctx, "k2k_pong", 0x6B326B01u, &round, 4) != RK_OK) rk_error(ctx, nullptr);
        return;
    }
    if (threadIdx.x == 0) {
        unsigned long long now = clock64();
        st->samples[st->count] = (unsigned int)(now - st->cycle0);
        st->count += 1;
        st->cycle0 = now;
        round = st->count;
        done = st->count >= st->total;
    }
    __syncthreads();
    if (!done) {
        if (rk_send_to(ctx, "k2k_pong", 0x6B326B01u, &round, 4) != RK_OK) rk_error(ctx, nullptr);
        return;
    }
    __shared__ unsigned long long summary[2];
    if (threadIdx.x == 0) {
        summary[0] = rk_globaltimer() - st->first_global;
        summary[1] = clock64() - st->first_cycle;
    }
    __syncthreads();
    for (unsigned int at = 0; at < st->total; at += 200) {
        unsigned int n = st->total - at < 200 ? st->total - at : 200;
        rk_emit(ctx, 0x6B326B03u, st->samples + at, n * 4);
    }
    rk_emit(ctx, 0x6B326B04u, summary, 16);
}
"#;

/// Answers every `PING` to its sender (over K2K: the sender is a kernel).
const K2K_PONG: &str = r#"
__device__ void rk_handle(RkContext& ctx) {
    if (rk_reply(ctx, 0x6B326B02u, ctx.payload, ctx.payload_bytes) != RK_OK) rk_error(ctx, nullptr);
}
"#;

fn registry() -> Result<ringkernel::kernel::KernelRegistry> {
    let mut registry = ringkernel::kernel::KernelRegistry::with_builtins();
    registry.register(KernelSpec::new("k2k_ping").cuda(K2K_PING).with_state_bytes(vec![0u8; 48 + 4 * 2048]))?;
    registry.register(KernelSpec::new("k2k_pong").cuda(K2K_PONG))?;
    Ok(registry)
}

#[derive(Default)]
struct Latency {
    p50: Vec<f64>,
    p99: Vec<f64>,
}

impl Latency {
    fn push(&mut self, mut times: Vec<u64>) {
        self.p50.push(quantile(&mut times, 0.50) as f64);
        self.p99.push(quantile(&mut times, 0.99) as f64);
    }
    fn medians(&mut self) -> (f64, f64) {
        (median(&mut self.p50), median(&mut self.p99))
    }
}

/// One K2K measurement: round-trip times in ns between two device actors.
fn k2k_round_trips(tokio: &tokio::runtime::Runtime, ping: &KernelHandle) -> Result<Vec<u64>> {
    tokio.block_on(async {
        ping.send(Envelope::new(1, K2K_ROUNDS.to_le_bytes())).await?;
        let mut cycles = Vec::with_capacity(K2K_ROUNDS as usize);
        loop {
            let message = ping.receive_timeout(TIMEOUT).await?;
            match message.header.message_type {
                SAMPLES => cycles
                    .extend(message.payload.chunks_exact(4).map(|c| u32::from_le_bytes(c.try_into().unwrap()) as u64)),
                SUMMARY => {
                    let ns = u64::from_le_bytes(message.payload[..8].try_into().unwrap()) as f64;
                    let total_cycles = u64::from_le_bytes(message.payload[8..16].try_into().unwrap()) as f64;
                    let per_cycle = ns / total_cycles.max(1.0);
                    return Ok(cycles.into_iter().map(|c| (c as f64 * per_cycle) as u64).collect());
                }
                other => {
                    return Err(RingKernelError::KernelFault {
                        kernel: "k2k_ping".into(),
                        reason: format!(
                            "unexpected message type 0x{other:08x}: {:?}",
                            String::from_utf8_lossy(&message.payload)
                        ),
                    });
                }
            }
        }
    })
}

pub(crate) fn run(args: &BenchArgs) -> Result<(), Box<dyn std::error::Error>> {
    let profile = std::env::var_os("RINGKERNEL_PROFILE").is_some();
    let config = ringkernel::CudaConfig { block_size: args.block_size, profile, ..ringkernel::CudaConfig::default() };
    let runtime = CudaRuntime::with_config(registry()?, config)?;
    let device = runtime.device().clone();
    eprintln!("cuda bench on {device}");
    let tokio = tokio::runtime::Builder::new_current_thread().enable_time().build()?;
    let mut floor = runtime.floor()?;
    let rounds = args.rounds.min(20_000);
    let active = LaunchOptions::default().with_auto_activate(true).with_block_size(args.block_size);
    let (echo, streamers, ping) = tokio.block_on(async {
        let echo = runtime.launch("echo", active.clone().with_slot_payload_bytes(PAYLOAD as u32)).await?;
        let mut streamers = Vec::new();
        for i in 0..args.actors {
            let options = active.clone().with_queue_capacity(args.capacity).with_slot_payload_bytes(PAYLOAD as u32);
            streamers.push(runtime.launch(&format!("echo#stream{i}"), options).await?);
        }
        runtime.launch("k2k_pong", active.clone().with_slot_payload_bytes(64)).await?;
        let ping = runtime.launch("k2k_ping", active.clone().with_slot_payload_bytes(1024)).await?;
        Ok::<_, RingKernelError>((echo, streamers, ping))
    })?;
    let per_actor = (args.messages / u64::from(args.actors.max(1))).max(STREAM_BATCH as u64);
    let window = u64::from(args.capacity);
    let host_threads = args.host_threads.map_or_else(|| default_host_threads(streamers.len()), |t| t as usize);
    // The raw rings' floor: as many rings as actors, as many host threads, as many messages.
    let stream_floor = |floor: &mut ringkernel::CudaFloor, messages: u64| {
        floor.stream_messages_per_s(streamers.len(), host_threads, args.capacity.next_power_of_two(), messages)
    };

    eprintln!("warming up");
    floor.flag_round_trips(rounds / 10)?;
    floor.slot_echo_round_trips(rounds / 10)?;
    floor.k2k_round_trips(K2K_ROUNDS as usize)?;
    stream_floor(&mut floor, per_actor / 10)?;
    floor.launch_round_trips(rounds / 10)?;
    floor.graph_launch_round_trips(rounds / 10)?;
    floor.offload_round_trips(rounds / 10)?;
    call_round_trips(&tokio, &echo, rounds / 10)?;
    stream(&streamers, host_threads, per_actor / 10, window)?;
    k2k_round_trips(&tokio, &ping)?;

    let mut latency: [Latency; 7] = Default::default();
    let [flag, slot_echo, k2k_floor, launch, graph, offload, call] = &mut latency;
    let mut k2k = Latency::default();
    let (mut rates, mut floor_rates) = (Vec::new(), Vec::new());
    for repeat in 0..args.repeats {
        flag.push(floor.flag_round_trips(rounds)?);
        slot_echo.push(floor.slot_echo_round_trips(rounds)?);
        k2k_floor.push(floor.k2k_round_trips(K2K_ROUNDS as usize)?);
        floor_rates.push(stream_floor(&mut floor, per_actor)?);
        launch.push(floor.launch_round_trips(rounds)?);
        graph.push(floor.graph_launch_round_trips(rounds)?);
        offload.push(floor.offload_round_trips(rounds)?);
        call.push(call_round_trips(&tokio, &echo, rounds)?);
        rates.push(stream(&streamers, host_threads, per_actor, window)?);
        k2k.push(k2k_round_trips(&tokio, &ping)?);
        eprintln!(
            "repeat {}/{}: call p50 {:.0} ns (slot echo {:.0}), K2K p50 {:.0} ns (floor {:.0}), stream {:.2} M msg/s (floor {:.2})",
            repeat + 1,
            args.repeats,
            call.p50[repeat],
            slot_echo.p50[repeat],
            k2k.p50[repeat],
            k2k_floor.p50[repeat],
            rates[repeat] / 1e6,
            floor_rates[repeat] / 1e6
        );
    }
    let metrics = echo.metrics();
    let read_paths = runtime.read_paths(echo.id());
    if profile {
        // Cycles per message in each phase, converted at the peak SM clock (the clock sat at its
        // peak in every sample of the runs recorded in BENCHMARKS.md).
        let ghz = f64::from(device.clock_khz) / 1e6;
        for (name, id) in [("echo (call round trips)", "echo"), ("k2k_ping", "k2k_ping")] {
            if let Some(p) = runtime.profile(&id.into()) {
                let n = p[6].max(1) as f64;
                let ns = |c: u64| c as f64 / n / ghz;
                println!(
                    "device profile, {name}, {} messages, ns per message: bus round trip {:.0}, handoff {:.0}, check {:.0}, handler {:.0} (K2K sends {:.0}), publish {:.0}",
                    p[6],
                    ns(p[0]),
                    ns(p[1]),
                    ns(p[2]),
                    ns(p[3]),
                    ns(p[5]),
                    ns(p[4])
                );
            }
        }
    }
    tokio.block_on(runtime.shutdown())?;
    drop(floor);

    let [flag, slot_echo, k2k_floor, launch, graph, offload, call] = &mut latency;
    let (f50, f99) = flag.medians();
    let (s50, s99) = slot_echo.medians();
    let (kf50, kf99) = k2k_floor.medians();
    let (l50, l99) = launch.medians();
    let (g50, g99) = graph.medians();
    let (o50, o99) = offload.medians();
    let (c50, c99) = call.medians();
    let (k50, k99) = k2k.medians();
    let rate = median(&mut rates.clone());
    let floor_rate = median(&mut floor_rates.clone());
    println!(
        "{} repeats of {rounds} round trips, medians; {device}; actor blocks of {} threads",
        args.repeats, args.block_size
    );
    println!("{:<56} {:>10} {:>8} {:>10} {:>8}", "round trip", "p50", "x floor", "p99", "x floor");
    let row = |name: &str, p50: f64, p99: f64| {
        println!("{name:<56} {:>8.0}ns {:>8.2} {:>8.0}ns {:>8.2}", p50, p50 / f50, p99, p99 / f99)
    };
    row("flag ping-pong through mapped memory (floor)", f50, f99);
    row("320 B slot echo, one read per poll (no protocol)", s50, s99);
    row("empty kernel launch + sync", l50, l99);
    row("one-node CUDA Graph launch + sync", g50, g99);
    row("offload graph: 64 B copy in + kernel + copy out", o50, o99);
    row("RingKernel call(), 64 B, header + HLC + checksum", c50, c99);
    println!(
        "call(): {:.2}x the slot echo, {:.2}x faster than the offload graph (p50); p99/p50 {:.2}",
        c50 / s50,
        o50 / c50,
        c99 / c50
    );
    println!(
        "K2K: block-to-block floor {kf50:.0} / {kf99:.0} ns; RingKernel actor round trip {k50:.0} / {k99:.0} ns (p50 / p99) = {:.2}x the floor; p99/p50 {:.2}",
        k50 / kf50,
        k99 / k50
    );
    println!(
        "streaming: {:.2} M messages/s (64 B payloads, {} actors, {host_threads} host threads, batches of {STREAM_BATCH}); raw rings of 320 B slots: {:.2} M msg/s; ratio {:.2}",
        rate / 1e6,
        args.actors,
        floor_rate / 1e6,
        rate / floor_rate
    );
    println!(
        "echo metrics: {} sent, {} processed, {} rejected, {} errors; bus reads (checked in one round trip, read again): {read_paths:?}",
        metrics.messages_sent, metrics.messages_processed, metrics.messages_rejected, metrics.errors
    );
    if let Some(path) = &args.json {
        let record = json!({
            "benchmark": "cuda_end_to_end",
            "machine": format!("{device}; host {}", machine_description()),
            "date": std::env::var("RINGKERNEL_DATE").unwrap_or_else(|_| SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs().to_string()).unwrap_or_default()),
            "commit": std::env::var("RINGKERNEL_COMMIT").unwrap_or_else(|_| "unknown".into()),
            "repeats": args.repeats,
            "round_trips_per_repeat": rounds,
            "floor_p50_ns": f50, "floor_p99_ns": f99,
            "slot_echo_p50_ns": s50, "slot_echo_p99_ns": s99,
            "k2k_floor_p50_ns": kf50, "k2k_floor_p99_ns": kf99,
            "stream_floor_msgs_per_s": floor_rate,
            "launch_p50_ns": l50, "launch_p99_ns": l99,
            "graph_p50_ns": g50, "graph_p99_ns": g99,
            "offload_graph_p50_ns": o50, "offload_graph_p99_ns": o99,
            "roundtrip_p50_ns": c50, "roundtrip_p99_ns": c99,
            "roundtrip_p50_ratio_to_floor": c50 / f50,
            "roundtrip_p50_ratio_to_slot_echo": c50 / s50,
            "roundtrip_speedup_over_offload_graph_p50": o50 / c50,
            "stream_msgs_per_s": rate,
            "stream_ratio_to_floor": rate / floor_rate,
            "stream_actors": args.actors,
            "stream_host_threads": host_threads,
            "block_size": args.block_size,
            "stream_payload_bytes": PAYLOAD,
            "stream_batch": STREAM_BATCH,
            "k2k_roundtrip_p50_ns": k50, "k2k_roundtrip_p99_ns": k99,
            "k2k_roundtrip_p50_ratio_to_floor": k50 / kf50,
            "bus_reads_checked_confirmed": read_paths,
            "samples": {
                "floor_p50_ns": flag.p50, "slot_echo_p50_ns": slot_echo.p50, "k2k_floor_p50_ns": k2k_floor.p50,
                "stream_floor_msgs_per_s": floor_rates, "launch_p50_ns": launch.p50, "graph_p50_ns": graph.p50,
                "offload_graph_p50_ns": offload.p50, "roundtrip_p50_ns": call.p50, "roundtrip_p99_ns": call.p99,
                "stream_msgs_per_s": rates, "k2k_roundtrip_p50_ns": k2k.p50, "k2k_roundtrip_p99_ns": k2k.p99,
            },
        });
        std::fs::write(path, serde_json::to_string_pretty(&record)? + "\n")?;
        eprintln!("wrote {path}");
    }
    Ok(())
}
