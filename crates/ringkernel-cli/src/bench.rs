//! `ringkernel bench`: actor round trips and streaming, with rtrb measured in the same run.

use std::time::{SystemTime, UNIX_EPOCH};

use clap::Args;
use clap::builder::TypedValueParser as _;
use ringkernel::runtime::Backend;
use ringkernel_bench::actor::{EchoBench, PAYLOAD_BYTES, slot_ping_pong};
use ringkernel_bench::{Queue, machine_description, median, ping_pong, quantile, throughput};
use serde_json::json;

/// Messages per `send_batch` / `receive_batch` in the batched streaming row.
const BATCH: usize = 64;

#[derive(Args)]
pub(crate) struct BenchArgs {
    /// Backend: auto, cpu, cuda, wgpu or metal.
    #[arg(long, default_value = "cpu", value_parser = crate::parse_backend)]
    backend: Backend,
    /// Repeats; every figure is the median over them.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=10_000).map(|v| v as usize))]
    pub(crate) repeats: usize,
    /// Round trips per repeat (actor and baselines alike).
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..).map(|v| v as usize))]
    pub(crate) rounds: usize,
    /// Messages streamed per repeat.
    #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) messages: u64,
    /// Queue capacity of the actor (also its streaming window).
    #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u32).range(2..))]
    pub(crate) capacity: u32,
    /// Writes the results as JSON to this path.
    #[arg(long)]
    pub(crate) json: Option<String>,
    /// CUDA: threads per actor block (a multiple of 32).
    #[arg(long, default_value_t = 128, value_parser = parse_block_size)]
    pub(crate) block_size: u32,
    /// GPU backends: streaming actors.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub(crate) actors: u32,
    /// GPU backends: host threads driving the streaming actors (each drives its share of them);
    /// default: one per actor, at most half of this machine's cores.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub(crate) host_threads: Option<u32>,
}

/// A CUDA block size: a multiple of 32 from 32 to 1024.
fn parse_block_size(text: &str) -> Result<u32, String> {
    let value: u32 = text.parse().map_err(|_| format!("`{text}` is not a whole number"))?;
    if value == 0 || !value.is_multiple_of(32) || value > 1024 {
        return Err(format!("{value} is not a multiple of 32 from 32 to 1024"));
    }
    Ok(value)
}

#[derive(Default)]
struct Series {
    p50_ns: Vec<f64>,
    p99_ns: Vec<f64>,
    mmsg_per_s: Vec<f64>,
}

impl Series {
    fn push_times(&mut self, mut times: Vec<u64>) {
        self.p50_ns.push(quantile(&mut times, 0.50) as f64);
        self.p99_ns.push(quantile(&mut times, 0.99) as f64);
    }
}

pub(crate) fn run(args: BenchArgs) -> Result<(), Box<dyn std::error::Error>> {
    if args.repeats == 0 || args.rounds == 0 || args.messages == 0 {
        return Err("--repeats, --rounds and --messages must be positive".into());
    }
    if args.backend == Backend::Cuda {
        return crate::bench_cuda::run(&args);
    }
    if args.backend == Backend::Wgpu {
        return crate::bench_wgpu::run(&args);
    }
    let bench = EchoBench::new(args.backend, args.capacity)?;
    let backend = bench.backend();
    eprintln!("backend {backend}; warming up");
    bench.call_round_trips(args.rounds / 10)?;
    bench.stream(args.messages / 10, u64::from(args.capacity))?;
    bench.stream_zero_copy_batched(args.messages / 10, u64::from(args.capacity), BATCH)?;
    ping_pong(Queue::Rtrb, args.rounds / 10);
    slot_ping_pong(args.rounds / 10);

    let (mut actor, mut rtrb, mut spsc, mut slots) =
        (Series::default(), Series::default(), Series::default(), Series::default());
    let mut batched_mmsg_per_s = Vec::new();
    let (mut envelope_mmsg_per_s, mut envelope_batched_mmsg_per_s) = (Vec::new(), Vec::new());
    for repeat in 0..args.repeats {
        rtrb.push_times(ping_pong(Queue::Rtrb, args.rounds));
        spsc.push_times(ping_pong(Queue::RingKernel, args.rounds));
        slots.push_times(slot_ping_pong(args.rounds));
        actor.push_times(bench.call_round_trips(args.rounds)?);
        let elapsed = throughput(Queue::Rtrb, args.messages);
        rtrb.mmsg_per_s.push(args.messages as f64 / elapsed.as_secs_f64() / 1e6);
        let rate = |elapsed: std::time::Duration| args.messages as f64 / elapsed.as_secs_f64() / 1e6;
        let window = u64::from(args.capacity);
        actor.mmsg_per_s.push(rate(bench.stream_zero_copy(args.messages, window)?));
        batched_mmsg_per_s.push(rate(bench.stream_zero_copy_batched(args.messages, window, BATCH)?));
        envelope_mmsg_per_s.push(rate(bench.stream(args.messages, window)?));
        envelope_batched_mmsg_per_s.push(rate(bench.stream_batched(args.messages, window, BATCH)?));
        eprintln!("repeat {}/{} done", repeat + 1, args.repeats);
    }
    let metrics = bench.metrics();
    bench.shutdown()?;

    let m = |v: &mut Vec<f64>| median(v);
    let (a50, a99, atp) = (m(&mut actor.p50_ns), m(&mut actor.p99_ns), m(&mut actor.mmsg_per_s));
    let btp = m(&mut batched_mmsg_per_s);
    let (etp, ebtp) = (m(&mut envelope_mmsg_per_s), m(&mut envelope_batched_mmsg_per_s));
    let (r50, r99, rtp) = (m(&mut rtrb.p50_ns), m(&mut rtrb.p99_ns), m(&mut rtrb.mmsg_per_s));
    let (s50, s99) = (m(&mut spsc.p50_ns), m(&mut spsc.p99_ns));
    let (f50, f99) = (m(&mut slots.p50_ns), m(&mut slots.p99_ns));
    println!(
        "{} repeats, medians; actor: `echo` on {backend}, {PAYLOAD_BYTES}-byte payloads in 256-byte-header slots; baselines: 64-byte messages between two threads",
        args.repeats
    );
    println!("{:<36} {:>10} {:>8} {:>10} {:>8}", "round trip", "p50", "x rtrb", "p99", "x rtrb");
    println!("{:<36} {:>8.0}ns {:>8.2} {:>8.0}ns {:>8.2}", "rtrb ping-pong (baseline)", r50, 1.0, r99, 1.0);
    println!("{:<36} {:>8.0}ns {:>8.2} {:>8.0}ns {:>8.2}", "ringkernel spsc ping-pong", s50, s50 / r50, s99, s99 / r99);
    println!(
        "{:<36} {:>8.0}ns {:>8.2} {:>8.0}ns {:>8.2}",
        "message slots over spsc, no runtime",
        f50,
        f50 / r50,
        f99,
        f99 / r99
    );
    println!("{:<36} {:>8.0}ns {:>8.2} {:>8.0}ns {:>8.2}", "actor call()", a50, a50 / r50, a99, a99 / r99);
    println!("{:<36} {:>10} {:>8.2} {:>10} {:>8.2}", "  actor call() / message slots", "", a50 / f50, "", a99 / f99);
    println!("{:<36} {:>10} {:>8}", "throughput", "Mmsg/s", "x rtrb");
    println!("{:<36} {:>10.2} {:>8.2}", "rtrb two threads (baseline)", rtp, 1.0);
    println!("{:<36} {:>10.2} {:>8.3}", "actor streaming, zero-copy, 1 by 1", atp, atp / rtp);
    println!("{:<36} {:>10.2} {:>8.3}", "actor streaming, zero-copy, by 64", btp, btp / rtp);
    println!("{:<36} {:>10.2} {:>8.3}", "actor streaming, envelopes, 1 by 1", etp, etp / rtp);
    println!("{:<36} {:>10.2} {:>8.3}", "actor streaming, envelopes, by 64", ebtp, ebtp / rtp);
    println!(
        "kernel metrics: {} sent, {} processed, {} rejected, {} in flight, {} errors",
        metrics.messages_sent,
        metrics.messages_processed,
        metrics.messages_rejected,
        metrics.messages_in_flight,
        metrics.errors
    );

    if let Some(path) = args.json {
        let record = json!({
            "benchmark": "actor_echo_end_to_end",
            "unix_time_s": SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0),
            "machine": machine_description(),
            "commit": std::env::var("RINGKERNEL_COMMIT").unwrap_or_else(|_| "unknown".into()),
            "backend": backend.name(),
            "repeats": args.repeats,
            "round_trips_per_repeat": args.rounds,
            "messages_streamed_per_repeat": args.messages,
            "actor_queue_capacity": args.capacity,
            "actor_payload_bytes": PAYLOAD_BYTES,
            "baseline": "rtrb (64-byte messages, two threads, same run)",
            "results": {
                "rtrb_ping_pong": {"p50_ns": r50, "p99_ns": r99},
                "ringkernel_spsc_ping_pong": {"p50_ns": s50, "p99_ns": s99, "p50_ratio_to_rtrb": s50 / r50, "p99_ratio_to_rtrb": s99 / r99},
                "message_slots_ping_pong": {"p50_ns": f50, "p99_ns": f99, "p50_ratio_to_rtrb": f50 / r50, "p99_ratio_to_rtrb": f99 / r99},
                "actor_call": {"p50_ns": a50, "p99_ns": a99, "p50_ratio_to_rtrb": a50 / r50, "p99_ratio_to_rtrb": a99 / r99, "p50_ratio_to_message_slots": a50 / f50, "p99_ratio_to_message_slots": a99 / f99},
                "rtrb_throughput_mmsg_per_s": rtp,
                "actor_streaming_mmsg_per_s": atp,
                "actor_streaming_ratio_to_rtrb": atp / rtp,
                "actor_streaming_batched_mmsg_per_s": btp,
                "actor_streaming_batched_ratio_to_rtrb": btp / rtp,
                "actor_streaming_api": "zero-copy: send_with / receive_with (one message at a time; batched: up to streaming_batch)",
                "actor_streaming_envelope_mmsg_per_s": etp,
                "actor_streaming_envelope_ratio_to_rtrb": etp / rtp,
                "actor_streaming_envelope_batched_mmsg_per_s": ebtp,
                "actor_streaming_envelope_batched_ratio_to_rtrb": ebtp / rtp,
                "actor_streaming_envelope_api": "Envelope: send / receive_timeout (batched: send_batch / receive_batch)",
                "streaming_batch": BATCH,
                "samples": {
                    "actor_call_p50_ns": actor.p50_ns, "actor_call_p99_ns": actor.p99_ns,
                    "rtrb_p50_ns": rtrb.p50_ns, "rtrb_p99_ns": rtrb.p99_ns,
                    "message_slots_p50_ns": slots.p50_ns, "message_slots_p99_ns": slots.p99_ns,
                    "actor_streaming_mmsg_per_s": actor.mmsg_per_s, "rtrb_mmsg_per_s": rtrb.mmsg_per_s,
                    "actor_streaming_batched_mmsg_per_s": batched_mmsg_per_s,
                    "actor_streaming_envelope_mmsg_per_s": envelope_mmsg_per_s,
                    "actor_streaming_envelope_batched_mmsg_per_s": envelope_batched_mmsg_per_s,
                },
            },
        });
        std::fs::write(&path, serde_json::to_string_pretty(&record)? + "\n")?;
        eprintln!("wrote {path}");
    }
    Ok(())
}
