//! What `KernelControl`'s `async_trait` methods cost on the CPU polling model's `call()`: the same
//! kernel called through a [`KernelHandle`] (a dynamic dispatch and a boxed future per call) and
//! through the engine's own `HostKernel::call_direct` (a static call, the future in the caller's),
//! alternating in blocks within each repeat so that drift hits both alike. Prints the medians over
//! repeats of each block's p50 and p99 and the ratio handle / direct, and optionally writes JSON.
//!
//! ```text
//! cargo run --release -p ringkernel-bench --bin dispatch_report -- [--repeats 7] [--calls 20000] [--json PATH]
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ringkernel::host::HostKernel;
use ringkernel::prelude::*;
use ringkernel::{CpuConfig, CpuRuntime};
use ringkernel_bench::{machine_description, median};
use serde_json::json;

const TIMEOUT: Duration = Duration::from_secs(10);

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
    let mut repeats = 7usize;
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
    let handle = KernelHandle::new(kernel.clone());
    let through_handle = || time_calls(calls, async |envelope| handle.call(envelope, TIMEOUT).await);
    let direct = || time_calls(calls, async |envelope| kernel.call_direct(envelope, TIMEOUT).await);
    // Warm-up of both paths.
    tokio.block_on(async {
        through_handle().await;
        direct().await;
    });
    let (mut handle_p50, mut handle_p99, mut direct_p50, mut direct_p99) = (vec![], vec![], vec![], vec![]);
    for repeat in 0..repeats {
        // Alternate which path goes first.
        let (mut a, mut b) = tokio.block_on(async {
            if repeat % 2 == 0 {
                let a = through_handle().await;
                (a, direct().await)
            } else {
                let b = direct().await;
                (through_handle().await, b)
            }
        });
        handle_p50.push(quantile(&mut a, 0.5));
        handle_p99.push(quantile(&mut a, 0.99));
        direct_p50.push(quantile(&mut b, 0.5));
        direct_p99.push(quantile(&mut b, 0.99));
        eprintln!(
            "repeat {}/{repeats}: handle p50 {:.0} ns p99 {:.0} ns, direct p50 {:.0} ns p99 {:.0} ns",
            repeat + 1,
            handle_p50[repeat],
            handle_p99[repeat],
            direct_p50[repeat],
            direct_p99[repeat]
        );
    }
    tokio.block_on(runtime.shutdown()).expect("shutdown");
    let medians = [&mut handle_p50, &mut handle_p99, &mut direct_p50, &mut direct_p99]
        .map(|samples| median(&mut samples.clone()));
    let [hp50, hp99, dp50, dp99] = medians;
    println!("CPU polling model, echo call(), {repeats} repeats x {calls} calls, medians, {}", machine_description());
    println!("through KernelHandle (dyn, boxed future): p50 {hp50:.0} ns, p99 {hp99:.0} ns");
    println!("HostKernel::call_direct (static, unboxed): p50 {dp50:.0} ns, p99 {dp99:.0} ns");
    println!("handle / direct: p50 {:.3}, p99 {:.3}", hp50 / dp50, hp99 / dp99);
    if let Some(path) = json_path {
        let record = json!({
            "benchmark": "kernel_control_dispatch",
            "backend": "cpu (DeviceModel::Polling)",
            "unix_time_s": SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0),
            "machine": machine_description(),
            "commit": std::env::var("RINGKERNEL_COMMIT").unwrap_or_else(|_| "unknown".into()),
            "repeats": repeats,
            "calls_per_block": calls,
            "handle_p50_ns": hp50, "handle_p99_ns": hp99,
            "direct_p50_ns": dp50, "direct_p99_ns": dp99,
            "handle_over_direct_p50": hp50 / dp50, "handle_over_direct_p99": hp99 / dp99,
            "samples": {
                "handle_p50_ns": handle_p50, "handle_p99_ns": handle_p99,
                "direct_p50_ns": direct_p50, "direct_p99_ns": direct_p99,
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
