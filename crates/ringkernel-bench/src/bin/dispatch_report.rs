//! What a call through `KernelControl`'s trait object costs on the CPU polling model's `call()`,
//! and what a [`KernelHandle`] pays now. Three paths to the same `echo` kernel, alternating in
//! blocks within each repeat (the order rotates) so that drift hits them alike:
//!
//! - **handle**: [`KernelHandle::call`] as the runtime hands it out — the host engine's own call,
//!   reached without a dynamic dispatch or a boxed future;
//! - **trait**: a handle made with [`KernelHandle::new`] over `Arc<dyn KernelControl>` — a dynamic
//!   dispatch and an `async_trait` boxed future per call (what every handle paid before issue 17,
//!   plus the handle's check for an engine kernel);
//! - **direct**: `HostKernel::call_direct` on the engine itself, the floor of the three.
//!
//! Prints the medians over repeats of each block's p50 and p99 and the ratios to the direct call,
//! and optionally writes JSON.
//!
//! ```text
//! cargo run --release -p ringkernel-bench --bin dispatch_report -- [--repeats 9] [--calls 20000] [--json PATH]
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ringkernel::host::HostKernel;
use ringkernel::prelude::*;
use ringkernel::runtime::KernelControl;
use ringkernel::{CpuConfig, CpuRuntime};
use ringkernel_bench::{machine_description, median};
use serde_json::json;

const TIMEOUT: Duration = Duration::from_secs(10);
const PATHS: [&str; 3] = ["handle", "trait", "direct"];

/// Per-call latencies (ns) of `calls` calls, each checked.
async fn time_calls(calls: usize, mut call: impl AsyncFnMut(Envelope) -> Result<Envelope>) -> Vec<f64> {
    let mut samples = Vec::with_capacity(calls);
    for i in 0..calls as u64 {
        let started = Instant::now();
        let reply = call(Envelope::new(1, i.to_le_bytes())).await.expect("echo answers");
        samples.push(started.elapsed().as_nanos() as f64);
        assert_eq!(reply.payload, i.to_le_bytes(), "echo returned another message");
    }
    samples
}

fn quantile(samples: &mut [f64], q: f64) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[((samples.len() - 1) as f64 * q).round() as usize]
}

fn main() {
    let mut repeats = 9usize;
    let mut calls = 20_000usize;
    let mut json_path = None;
    let mut args = std::env::args().skip(1);
    let positive = |value: Option<String>| value.and_then(|v| v.parse().ok()).filter(|n: &usize| *n > 0);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--repeats" => repeats = positive(args.next()).unwrap_or_else(|| usage()),
            "--calls" => calls = positive(args.next()).unwrap_or_else(|| usage()),
            "--json" => json_path = Some(args.next().unwrap_or_else(|| usage())),
            _ => usage(),
        }
    }
    let tokio = tokio::runtime::Builder::new_current_thread().enable_time().build().expect("a Tokio runtime");
    let runtime = CpuRuntime::with_config(ringkernel::kernel::KernelRegistry::with_builtins(), CpuConfig::polling());
    let options = LaunchOptions::default().with_queue_capacity(64).with_slot_payload_bytes(16).with_auto_activate(true);
    let kernel: Arc<HostKernel> =
        tokio.block_on(runtime.launch_host_kernel(builtin::ECHO, options)).expect("echo launches");
    let handle = runtime.get_kernel(&builtin::ECHO.into()).expect("the runtime lists it");
    let through_trait = KernelHandle::new(kernel.clone() as Arc<dyn KernelControl>);
    let run = |path: usize| {
        tokio.block_on(async {
            match path {
                0 => time_calls(calls, async |envelope| handle.call(envelope, TIMEOUT).await).await,
                1 => time_calls(calls, async |envelope| through_trait.call(envelope, TIMEOUT).await).await,
                _ => time_calls(calls, async |envelope| kernel.call_direct(envelope, TIMEOUT).await).await,
            }
        })
    };
    for path in 0..PATHS.len() {
        run(path); // warm-up
    }
    let mut p50 = [vec![], vec![], vec![]];
    let mut p99 = [vec![], vec![], vec![]];
    for repeat in 0..repeats {
        // Each path goes first, second and third in turn, after each of the others.
        for k in 0..PATHS.len() {
            let step = if repeat % 2 == 0 { k } else { PATHS.len() - 1 - k };
            let path = (repeat / 2 + step) % PATHS.len();
            let mut samples = run(path);
            p50[path].push(quantile(&mut samples, 0.5));
            p99[path].push(quantile(&mut samples, 0.99));
        }
        eprintln!(
            "repeat {}/{repeats}: p50 handle {:.0} trait {:.0} direct {:.0} ns; p99 {:.0} {:.0} {:.0} ns",
            repeat + 1,
            p50[0][repeat],
            p50[1][repeat],
            p50[2][repeat],
            p99[0][repeat],
            p99[1][repeat],
            p99[2][repeat]
        );
    }
    tokio.block_on(runtime.shutdown()).expect("shutdown");
    let m50: Vec<f64> = p50.iter().map(|s| median(&mut s.clone())).collect();
    let m99: Vec<f64> = p99.iter().map(|s| median(&mut s.clone())).collect();
    println!("CPU polling model, echo call(), {repeats} repeats x {calls} calls, medians, {}", machine_description());
    for (i, what) in [
        "KernelHandle::call (the engine, directly)",
        "KernelHandle over dyn KernelControl (boxed future)",
        "HostKernel::call_direct",
    ]
    .iter()
    .enumerate()
    {
        println!(
            "{what:<52} p50 {:>6.0} ns ({:.3}x direct), p99 {:>6.0} ns ({:.3}x direct)",
            m50[i],
            m50[i] / m50[2],
            m99[i],
            m99[i] / m99[2]
        );
    }
    if let Some(path) = json_path {
        let record = json!({
            "benchmark": "kernel_control_dispatch",
            "backend": "cpu (DeviceModel::Polling)",
            "unix_time_s": SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0),
            "machine": machine_description(),
            "commit": std::env::var("RINGKERNEL_COMMIT").unwrap_or_else(|_| "unknown".into()),
            "repeats": repeats,
            "calls_per_block": calls,
            "handle_p50_ns": m50[0], "handle_p99_ns": m99[0],
            "trait_p50_ns": m50[1], "trait_p99_ns": m99[1],
            "direct_p50_ns": m50[2], "direct_p99_ns": m99[2],
            "handle_over_direct_p50": m50[0] / m50[2], "handle_over_direct_p99": m99[0] / m99[2],
            "trait_over_direct_p50": m50[1] / m50[2], "trait_over_direct_p99": m99[1] / m99[2],
            "samples": {
                "handle_p50_ns": p50[0], "trait_p50_ns": p50[1], "direct_p50_ns": p50[2],
                "handle_p99_ns": p99[0], "trait_p99_ns": p99[1], "direct_p99_ns": p99[2],
            },
        });
        std::fs::write(&path, serde_json::to_string_pretty(&record).expect("serialisable") + "\n")
            .unwrap_or_else(|e| panic!("cannot write {path}: {e}"));
        eprintln!("wrote {path}");
    }
}

fn usage() -> ! {
    eprintln!("usage: dispatch_report [--repeats N] [--calls N] [--json PATH]");
    std::process::exit(2)
}
