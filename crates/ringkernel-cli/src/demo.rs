//! `ringkernel demo`: echo and counter actors, every reply checked.

use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use ringkernel::prelude::*;

#[derive(Args)]
pub(crate) struct DemoArgs {
    /// Backend: auto, cpu, cuda, wgpu or metal.
    #[arg(long, default_value = "auto", value_parser = crate::parse_backend)]
    backend: Backend,
    /// Actors to launch (alternately echo and counter).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=64))]
    actors: u32,
    /// Messages in all, spread evenly over the actors (at least one per actor).
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..))]
    messages: u64,
    /// Seconds to wait for any one reply before calling it lost.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    timeout_s: u64,
    /// Folder for the closing wave simulation's picture.
    #[arg(long, default_value_os_t = std::env::temp_dir().join("ringkernel-demo"))]
    out: std::path::PathBuf,
}

/// What one actor's driver saw.
#[derive(Default)]
struct Tally {
    round_trips_ns: Vec<u64>,
    wrong: Vec<String>,
}

/// A small deterministic generator (xorshift64*), so a failing run can be replayed.
fn next(state: &mut u64) -> u64 {
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    state.wrapping_mul(0x2545_f491_4f6c_dd1d)
}

async fn drive(
    kernel: KernelHandle,
    is_counter: bool,
    messages: u64,
    seed: u64,
    timeout: Duration,
    bar: ProgressBar,
) -> Tally {
    let mut tally = Tally::default();
    let mut rng = seed;
    let mut expected_total = 0u64;
    for i in 0..messages {
        let (request, expected) = if is_counter {
            let values: Vec<u64> = (0..1 + next(&mut rng) % 4).map(|_| next(&mut rng) >> 8).collect();
            expected_total = values.iter().fold(expected_total, |a, v| a.wrapping_add(*v));
            let payload: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
            (Envelope::new(builtin::COUNTER_ADD, payload), expected_total.to_le_bytes().to_vec())
        } else {
            let payload: Vec<u8> = (0..next(&mut rng) % 200).map(|_| next(&mut rng) as u8).collect();
            (Envelope::new(7, payload.clone()), payload)
        };
        let start = Instant::now();
        match kernel.call(request, timeout).await {
            Ok(reply) if reply.payload == expected => tally.round_trips_ns.push(start.elapsed().as_nanos() as u64),
            Ok(reply) => tally.wrong.push(format!("{} message {i}: wrong reply {:?}", kernel.id(), reply.payload)),
            Err(error) => tally.wrong.push(format!("{} message {i}: {error}", kernel.id())),
        }
        bar.inc(1);
    }
    tally
}

/// The `q` quantile of round trips in µs, by the same rule as `ringkernel bench`; NaN if none.
fn percentile_us(times: &mut [u64], q: f64) -> f64 {
    if times.is_empty() {
        return f64::NAN;
    }
    ringkernel_bench::quantile(times, q) as f64 / 1000.0
}

pub(crate) fn run(args: DemoArgs) -> Result<(), Box<dyn std::error::Error>> {
    if args.messages < u64::from(args.actors) {
        return Err(format!(
            "--messages {} is fewer than --actors {}: every actor needs at least one message",
            args.messages, args.actors
        )
        .into());
    }
    let backend = actors(&args)?;
    let picture = crate::stencil::demo_wave(backend, &args.out)?;
    println!("picture of the wave: {}", picture.display());
    Ok(())
}

/// The actor part of the demo; returns the backend it ran on.
fn actors(args: &DemoArgs) -> Result<Backend, Box<dyn std::error::Error>> {
    let tokio = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    tokio.block_on(async {
        let ring = Arc::new(RingKernel::builder().backend(args.backend).build().await?);
        println!("backend: {} ({} actors, {} messages)", ring.backend(), args.actors, args.messages);
        // The first `messages % actors` actors take one more: exactly `messages` in all.
        let total = args.messages;
        let share =
            |actor: u32| total / u64::from(args.actors) + u64::from(u64::from(actor) < total % u64::from(args.actors));
        let bar = ProgressBar::new(total);
        bar.set_style(ProgressStyle::with_template("{bar:40} {pos}/{len} replies checked  {per_sec}  eta {eta}")?);
        let timeout = Duration::from_secs(args.timeout_s);
        let mut drivers = Vec::new();
        let mut kernels = Vec::new();
        for actor in 0..args.actors {
            let is_counter = actor % 2 == 1;
            let name = if is_counter { builtin::COUNTER } else { builtin::ECHO };
            let kernel =
                ring.launch(&format!("{name}#{actor}"), LaunchOptions::default().with_auto_activate(true)).await?;
            kernels.push(kernel.clone());
            let seed = 0x9e37_79b9_7f4a_7c15 ^ u64::from(actor);
            drivers.push(tokio::spawn(drive(kernel, is_counter, share(actor), seed, timeout, bar.clone())));
        }
        let started = Instant::now();
        let mut times = Vec::with_capacity(total as usize);
        let mut wrong = Vec::new();
        for driver in drivers {
            let tally = driver.await?;
            times.extend(tally.round_trips_ns);
            wrong.extend(tally.wrong);
        }
        let elapsed = started.elapsed();
        bar.finish_and_clear();
        ring.shutdown().await?;
        let lost: u64 = kernels.iter().map(|k| k.metrics().messages_in_flight).sum();

        println!(
            "{} replies checked in {:.2} s: {:.0} round trips/s across {} actors",
            times.len(),
            elapsed.as_secs_f64(),
            times.len() as f64 / elapsed.as_secs_f64(),
            args.actors
        );
        println!(
            "round trip p50 {:.2} µs, p99 {:.2} µs",
            percentile_us(&mut times, 0.50),
            percentile_us(&mut times, 0.99)
        );
        for kernel in &kernels {
            let m = kernel.metrics();
            println!(
                "  {:<12} {:?}: {} sent, {} processed, {} rejected, {} errors",
                kernel.id().as_str(),
                kernel.state(),
                m.messages_sent,
                m.messages_processed,
                m.messages_rejected,
                m.errors
            );
        }
        if !wrong.is_empty() || lost > 0 || times.len() as u64 != total {
            for line in wrong.iter().take(10) {
                eprintln!("  {line}");
            }
            return Err(format!(
                "{} of {total} replies were wrong or missing, {lost} messages left unprocessed",
                total - times.len() as u64
            )
            .into());
        }
        println!("every reply correct");
        Ok(ring.backend())
    })
}
