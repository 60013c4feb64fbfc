//! `ringkernel bench --backend cuda`: every figure beside the hardware's floor, measured in the
//! same run on the same GPU and context: a raw flag ping-pong through mapped host memory, empty
//! launch + sync, a one-node CUDA Graph, the 64-byte offload graph; then RingKernel `call()` with a
//! 64-byte payload (full header, HLC, checksum on), streaming over several actors, and a device-side
//! K2K round trip between two actors.

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ringkernel::CudaRuntime;
use ringkernel::message::HeaderBuilder;
use ringkernel::prelude::*;
use ringkernel_bench::{machine_description, median, quantile};
use serde_json::json;

use crate::bench::BenchArgs;

const TIMEOUT: Duration = Duration::from_secs(30);
/// Payload of the round-trip and streaming messages.
const PAYLOAD: usize = 64;
/// Messages per zero-copy batch when streaming.
const STREAM_BATCH: usize = 64;
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

pub(crate) fn call_round_trips(
    tokio: &tokio::runtime::Runtime,
    echo: &KernelHandle,
    rounds: usize,
) -> Result<Vec<u64>> {
    tokio.block_on(async {
        let mut times = Vec::with_capacity(rounds);
        let mut payload = [0u8; PAYLOAD];
        for i in 0..rounds as u64 {
            payload[..8].copy_from_slice(&i.to_le_bytes());
            let request = Envelope::with_header(HeaderBuilder::new(1).checksum(true).build(), payload.to_vec());
            let start = Instant::now();
            let reply = echo.call(request, TIMEOUT).await?;
            times.push(start.elapsed().as_nanos() as u64);
            if reply.payload != payload {
                return Err(RingKernelError::KernelFault {
                    kernel: "echo".into(),
                    reason: format!("reply {i} differs"),
                });
            }
        }
        Ok(times)
    })
}

/// Streams `per_actor` 64-byte messages through each actor, one host thread per actor, zero-copy
/// batches of 64; returns messages per second over all of them.
pub(crate) fn stream(actors: &[KernelHandle], per_actor: u64, window: u64) -> Result<f64> {
    let barrier = Arc::new(Barrier::new(actors.len() + 1));
    let threads: Vec<_> = actors
        .iter()
        .cloned()
        .map(|actor| {
            let barrier = barrier.clone();
            std::thread::spawn(move || -> Result<()> {
                let tokio = tokio::runtime::Builder::new_current_thread().enable_time().build().expect("tokio");
                barrier.wait();
                tokio.block_on(async {
                    let (mut sent, mut received) = (0u64, 0u64);
                    let mut wrong = None;
                    while received < per_actor {
                        let room = (per_actor - sent).min(window - (sent - received)).min(STREAM_BATCH as u64) as usize;
                        sent += actor.send_with(room, |i, message| {
                            message.set_message_type(1);
                            message.payload_mut(PAYLOAD)?[..8].copy_from_slice(&(sent + i as u64).to_le_bytes());
                            Ok(())
                        })? as u64;
                        actor
                            .receive_with(STREAM_BATCH, TIMEOUT, |reply| {
                                if reply.payload.len() != PAYLOAD || reply.payload[..8] != received.to_le_bytes() {
                                    wrong.get_or_insert(received);
                                }
                                received += 1;
                            })
                            .await?;
                    }
                    match wrong {
                        None => Ok(()),
                        Some(at) => Err(RingKernelError::KernelFault {
                            kernel: "echo".into(),
                            reason: format!("streamed reply {at} out of order or wrong"),
                        }),
                    }
                })
            })
        })
        .collect();
    barrier.wait();
    let start = Instant::now();
    for thread in threads {
        thread.join().map_err(|_| RingKernelError::KernelFault {
            kernel: "echo".into(),
            reason: "a streaming thread panicked".into(),
        })??;
    }
    Ok((per_actor * actors.len() as u64) as f64 / start.elapsed().as_secs_f64())
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

    eprintln!("warming up");
    floor.flag_round_trips(rounds / 10)?;
    floor.launch_round_trips(rounds / 10)?;
    floor.graph_launch_round_trips(rounds / 10)?;
    floor.offload_round_trips(rounds / 10)?;
    call_round_trips(&tokio, &echo, rounds / 10)?;
    stream(&streamers, per_actor / 10, window)?;
    k2k_round_trips(&tokio, &ping)?;

    let (mut flag, mut launch, mut graph, mut offload, mut call, mut k2k) = (
        Latency::default(),
        Latency::default(),
        Latency::default(),
        Latency::default(),
        Latency::default(),
        Latency::default(),
    );
    let mut rates = Vec::new();
    for repeat in 0..args.repeats {
        flag.push(floor.flag_round_trips(rounds)?);
        launch.push(floor.launch_round_trips(rounds)?);
        graph.push(floor.graph_launch_round_trips(rounds)?);
        offload.push(floor.offload_round_trips(rounds)?);
        call.push(call_round_trips(&tokio, &echo, rounds)?);
        rates.push(stream(&streamers, per_actor, window)?);
        k2k.push(k2k_round_trips(&tokio, &ping)?);
        eprintln!("repeat {}/{} done", repeat + 1, args.repeats);
    }
    let metrics = echo.metrics();
    if profile {
        // Cycles per message in each phase, converted at the peak SM clock (the clock sat at its
        // peak in every sample of the runs recorded in BENCHMARKS.md).
        let ghz = f64::from(device.clock_khz) / 1e6;
        for (name, id) in [("echo (call round trips)", "echo"), ("k2k_ping", "k2k_ping")] {
            if let Some(p) = runtime.profile(&id.into()) {
                let n = p[6].max(1) as f64;
                let ns = |c: u64| c as f64 / n / ghz;
                println!(
                    "device profile, {name}, {} messages, ns per message: poll {:.0}, read {:.0}, check {:.0}, handler {:.0} (K2K sends {:.0}), publish {:.0}",
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

    let (f50, f99) = flag.medians();
    let (l50, l99) = launch.medians();
    let (g50, g99) = graph.medians();
    let (o50, o99) = offload.medians();
    let (c50, c99) = call.medians();
    let (k50, k99) = k2k.medians();
    let rate = median(&mut rates.clone());
    println!(
        "{} repeats of {rounds} round trips, medians; {device}; actor blocks of {} threads",
        args.repeats, args.block_size
    );
    println!("{:<52} {:>10} {:>8} {:>10} {:>8}", "round trip", "p50", "x floor", "p99", "x floor");
    let row = |name: &str, p50: f64, p99: f64| {
        println!("{name:<52} {:>8.0}ns {:>8.2} {:>8.0}ns {:>8.2}", p50, p50 / f50, p99, p99 / f99)
    };
    row("flag ping-pong through mapped memory (floor)", f50, f99);
    row("empty kernel launch + sync", l50, l99);
    row("one-node CUDA Graph launch + sync", g50, g99);
    row("offload graph: 64 B copy in + kernel + copy out", o50, o99);
    row("RingKernel call(), 64 B, header + HLC + checksum", c50, c99);
    row("device K2K round trip, actor to actor", k50, k99);
    println!("call() is {:.2}x faster than the offload graph (p50)", o50 / c50);
    println!(
        "streaming: {:.2} M messages/s, 64 B payloads, {} actors, one host thread each, batches of {STREAM_BATCH}",
        rate / 1e6,
        args.actors
    );
    println!(
        "echo metrics: {} sent, {} processed, {} rejected, {} errors",
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
            "launch_p50_ns": l50, "launch_p99_ns": l99,
            "graph_p50_ns": g50, "graph_p99_ns": g99,
            "offload_graph_p50_ns": o50, "offload_graph_p99_ns": o99,
            "roundtrip_p50_ns": c50, "roundtrip_p99_ns": c99,
            "roundtrip_p50_ratio_to_floor": c50 / f50,
            "roundtrip_speedup_over_offload_graph_p50": o50 / c50,
            "stream_msgs_per_s": rate,
            "stream_actors": args.actors,
            "block_size": args.block_size,
            "stream_payload_bytes": PAYLOAD,
            "stream_batch": STREAM_BATCH,
            "k2k_roundtrip_p50_ns": k50, "k2k_roundtrip_p99_ns": k99,
            "samples": {
                "floor_p50_ns": flag.p50, "launch_p50_ns": launch.p50, "graph_p50_ns": graph.p50,
                "offload_graph_p50_ns": offload.p50, "roundtrip_p50_ns": call.p50, "roundtrip_p99_ns": call.p99,
                "stream_msgs_per_s": rates, "k2k_roundtrip_p50_ns": k2k.p50, "k2k_roundtrip_p99_ns": k2k.p99,
            },
        });
        std::fs::write(path, serde_json::to_string_pretty(&record)? + "\n")?;
        eprintln!("wrote {path}");
    }
    Ok(())
}
