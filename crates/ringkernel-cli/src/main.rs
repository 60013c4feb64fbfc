//! `ringkernel`: what backends this machine has, a demo that checks every reply, and end-to-end
//! benchmarks against same-run baselines.
#![recursion_limit = "256"]

mod bench;
mod bench_cuda;
mod bench_stencil;
mod bench_wgpu;
mod demo;
mod stencil;
mod vulkan_floor;

use clap::{Parser, Subcommand};
use ringkernel::runtime::Backend;

#[derive(Parser)]
#[command(name = "ringkernel", version, about = "Persistent GPU actors: info, demo, bench, stencil")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Lists the backends and whether each can run here.
    Info,
    /// Launches actors on the best available backend, sends messages, checks every reply, and
    /// prints round-trip percentiles and throughput. Exits non-zero on any lost or wrong reply.
    Demo(demo::DemoArgs),
    /// Measures actor round trips and streaming throughput against rtrb in the same run.
    Bench(bench::BenchArgs),
    /// Runs a Jacobi sweep or a wave on tiles with halo exchange, checks it against the CPU
    /// reference, and writes PNG pictures of the field and summary.json.
    Stencil(stencil::StencilArgs),
    /// Measures the persistent CUDA stencil against launch-per-step, a CUDA Graph and a
    /// device-to-device copy in the same run.
    BenchStencil(bench_stencil::BenchStencilArgs),
}

/// Parses a backend name for clap.
pub(crate) fn parse_backend(name: &str) -> Result<Backend, String> {
    name.parse().map_err(|e: ringkernel::runtime::UnknownBackend| e.to_string())
}

fn info() {
    println!("ringkernel {}", env!("CARGO_PKG_VERSION"));
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    for backend in Backend::CONCRETE {
        match ringkernel::backend_status(backend) {
            Ok(()) if backend == Backend::Cpu => {
                println!("  {:<6} available   one thread per actor; {cores} logical cores", backend.name())
            }
            Ok(()) if backend == Backend::Cuda => match ringkernel::CudaRuntime::probe(0) {
                Ok(device) => println!("  {:<6} available   {device}", backend.name()),
                Err(error) => println!("  {:<6} unavailable: {error}", backend.name()),
            },
            Ok(()) if backend == Backend::Wgpu => {
                match ringkernel::WgpuRuntime::probe(ringkernel::WgpuConfig::default().backends) {
                    Ok(a) => println!(
                        "  {:<6} available   {} ({:?}, {:?}, {})",
                        backend.name(),
                        a.name,
                        a.backend,
                        a.device_type,
                        a.driver
                    ),
                    Err(error) => println!("  {:<6} unavailable: {error}", backend.name()),
                }
            }
            Ok(()) => println!("  {:<6} available", backend.name()),
            Err(reason) => println!("  {:<6} unavailable: {reason}", backend.name()),
        }
    }
    println!("auto -> {}", ringkernel::best_backend());
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Info => {
            info();
            Ok(())
        }
        Command::Demo(args) => demo::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Stencil(args) => stencil::run(args),
        Command::BenchStencil(args) => bench_stencil::run(args),
    };
    match outcome {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}
