//! Runs the queue scenarios several times each, interleaved, and prints (and optionally writes as
//! JSON) medians of throughput and round-trip p50/p99, each as a ratio to rtrb measured in the
//! same run.
//!
//! ```text
//! cargo run --release -p ringkernel-bench --bin queue_report -- [--repeats 7] [--json PATH]
//! ```

use std::time::{SystemTime, UNIX_EPOCH};

use ringkernel_bench::{CAPACITY, MESSAGE_BYTES, Queue, machine_description, median, ping_pong, quantile, throughput};
use serde_json::json;

const MESSAGES: u64 = 1 << 21;
const ROUNDS: usize = 200_000;

struct Args {
    repeats: usize,
    json: Option<String>,
}

fn parse_args() -> Args {
    let mut args = Args { repeats: 7, json: None };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--repeats" => {
                args.repeats = it.next().and_then(|v| v.parse().ok()).filter(|&n| n > 0).unwrap_or_else(|| {
                    eprintln!("--repeats needs a positive integer");
                    std::process::exit(2)
                })
            }
            "--json" => {
                args.json = Some(it.next().unwrap_or_else(|| {
                    eprintln!("--json needs a path");
                    std::process::exit(2)
                }))
            }
            other => {
                eprintln!("unknown argument `{other}`; usage: queue_report [--repeats N] [--json PATH]");
                std::process::exit(2)
            }
        }
    }
    args
}

#[derive(Default)]
struct Samples {
    throughput_mmsg_s: Vec<f64>,
    p50_ns: Vec<f64>,
    p99_ns: Vec<f64>,
}

fn main() {
    let args = parse_args();
    let mut samples: Vec<Samples> = Queue::ALL.iter().map(|_| Samples::default()).collect();
    // Warm-up, then interleave queues within each repeat so drift hits all of them alike.
    for queue in Queue::ALL {
        throughput(queue, MESSAGES / 8);
        ping_pong(queue, ROUNDS / 10);
    }
    for repeat in 0..args.repeats {
        for (queue, s) in Queue::ALL.iter().zip(samples.iter_mut()) {
            let elapsed = throughput(*queue, MESSAGES);
            s.throughput_mmsg_s.push(MESSAGES as f64 / elapsed.as_secs_f64() / 1e6);
            let mut times = ping_pong(*queue, ROUNDS);
            s.p50_ns.push(quantile(&mut times, 0.50) as f64);
            s.p99_ns.push(quantile(&mut times, 0.99) as f64);
        }
        eprintln!("repeat {}/{} done", repeat + 1, args.repeats);
    }
    let rtrb = Queue::ALL.iter().position(|q| *q == Queue::Rtrb).expect("rtrb is a baseline");
    let spread: Vec<(f64, f64)> = samples
        .iter()
        .map(|s| {
            let min = s.throughput_mmsg_s.iter().copied().fold(f64::INFINITY, f64::min);
            let max = s.throughput_mmsg_s.iter().copied().fold(0.0, f64::max);
            (min, max)
        })
        .collect();
    let summary: Vec<(Queue, f64, f64, f64)> = Queue::ALL
        .iter()
        .zip(samples.iter_mut())
        .map(|(q, s)| (*q, median(&mut s.throughput_mmsg_s), median(&mut s.p50_ns), median(&mut s.p99_ns)))
        .collect();
    let (_, base_tp, base_p50, base_p99) = summary[rtrb];
    println!(
        "{} repeats; medians; {MESSAGE_BYTES}-byte messages, capacity {CAPACITY}, {MESSAGES} messages per throughput run, {ROUNDS} round trips per ping-pong run",
        args.repeats
    );
    println!(
        "{:<26} {:>10} {:>13} {:>9} {:>10} {:>9} {:>10} {:>9}",
        "queue", "Mmsg/s", "(min-max)", "x rtrb", "RTT p50", "x rtrb", "RTT p99", "x rtrb"
    );
    for ((q, tp, p50, p99), (min, max)) in summary.iter().zip(&spread) {
        println!(
            "{:<26} {:>10.1} {:>13} {:>9.2} {:>8.0}ns {:>9.2} {:>8.0}ns {:>9.2}",
            q.name(),
            tp,
            format!("({min:.0}-{max:.0})"),
            tp / base_tp,
            p50,
            p50 / base_p50,
            p99,
            p99 / base_p99
        );
    }
    if let Some(path) = args.json {
        let results: Vec<_> = summary
            .iter()
            .zip(&spread)
            .map(|((q, tp, p50, p99), (min, max))| {
                json!({
                    "queue": q.name(),
                    "throughput_mmsg_per_s_median": tp,
                    "throughput_mmsg_per_s_min": min,
                    "throughput_mmsg_per_s_max": max,
                    "throughput_ratio_to_rtrb": tp / base_tp,
                    "round_trip_p50_ns_median": p50,
                    "round_trip_p50_ratio_to_rtrb": p50 / base_p50,
                    "round_trip_p99_ns_median": p99,
                    "round_trip_p99_ratio_to_rtrb": p99 / base_p99,
                })
            })
            .collect();
        let record = json!({
            "benchmark": "spsc_queue_64B",
            "unix_time_s": SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0),
            "machine": machine_description(),
            "commit": std::env::var("RINGKERNEL_COMMIT").unwrap_or_else(|_| "unknown".into()),
            "repeats": args.repeats,
            "message_bytes": MESSAGE_BYTES,
            "capacity": CAPACITY,
            "throughput_messages_per_run": MESSAGES,
            "ping_pong_round_trips_per_run": ROUNDS,
            "baseline": "rtrb",
            "results": results,
        });
        std::fs::write(&path, serde_json::to_string_pretty(&record).expect("serialisable") + "\n")
            .unwrap_or_else(|e| panic!("cannot write {path}: {e}"));
        eprintln!("wrote {path}");
    }
}
