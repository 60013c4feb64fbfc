//! `ringkernel bench-stencil`: the persistent CUDA halo exchange (Jacobi sweep) against what a
//! user would write without it — one kernel launch per step, and the same launches captured into
//! a CUDA Graph — and a device-to-device copy for the bandwidth ceiling, in one run.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::Args;
use ringkernel::cuda_halo::{PlainJacobi, auto_grid};
use ringkernel::halo::{HaloExchange, HaloGrid, Neighbourhood, Stencil};
use ringkernel_bench::{machine_description, median};
use serde_json::json;

use crate::stencil::{Check, check_result};

#[derive(Args)]
pub(crate) struct BenchStencilArgs {
    /// Cases, comma-separated: 2d_16384, 3d_512, 3d_64 (or NAME=NxM[xK]:STEPS[:TILE] for another
    /// grid, TILE = tile cells NxM[xK]; tiles are chosen for the device otherwise).
    #[arg(long, default_value = "2d_16384,3d_512,3d_64")]
    cases: String,
    /// Timed runs of each case; figures are medians.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=1000))]
    repeats: u32,
    /// Writes the results as JSON to this path.
    #[arg(long)]
    json: Option<String>,
}

/// A case: its key, grid, steps per timed run and tile (None: chosen for the device).
type Case = (String, [u32; 3], u32, Option<[u32; 3]>);

fn parse_case(text: &str) -> Result<Case, String> {
    match text {
        "2d_16384" => Ok((text.into(), [16384, 16384, 1], 200, None)),
        "3d_512" => Ok((text.into(), [512, 512, 512], 200, None)),
        "3d_64" => Ok((text.into(), [64, 64, 64], 5000, None)),
        other => {
            let (name, rest) = other.split_once('=').ok_or_else(|| format!("unknown case `{other}`"))?;
            let mut parts = rest.split(':');
            let grid = crate::stencil::parse_extent(parts.next().unwrap_or(""))?;
            let steps = parts.next().ok_or_else(|| format!("`{other}`: NAME=NxM[xK]:STEPS[:TILE]"))?;
            let steps: u32 = steps.parse().map_err(|_| format!("`{steps}` is not a step count"))?;
            if steps == 0 {
                return Err(format!("`{other}`: steps must be positive"));
            }
            let tile = parts.next().map(crate::stencil::parse_extent).transpose()?;
            if parts.next().is_some() {
                return Err(format!("`{other}`: NAME=NxM[xK]:STEPS[:TILE], nothing after the tile"));
            }
            if name.is_empty() {
                return Err(format!("`{other}`: the case needs a name"));
            }
            Ok((name.into(), grid, steps, tile))
        }
    }
}

fn random_cells(n: usize) -> Vec<f32> {
    let mut x = 0x9e37_79b9u32;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x % 10_000) as f32 / 100.0
        })
        .collect()
}

fn max_diff(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(x, y)| f64::from((x - y).abs())).fold(0.0, f64::max)
}

fn us(d: Duration, steps: u32) -> f64 {
    d.as_secs_f64() * 1e6 / f64::from(steps)
}

pub(crate) fn run(args: BenchStencilArgs) -> Result<(), Box<dyn std::error::Error>> {
    let cases: Vec<_> = args.cases.split(',').map(|c| parse_case(c.trim())).collect::<Result<_, _>>()?;
    for (i, case) in cases.iter().enumerate() {
        if cases[..i].iter().any(|c| c.0 == case.0) {
            return Err(format!("case `{}` is named twice", case.0).into());
        }
    }
    let device = ringkernel::CudaRuntime::probe(0)?;
    println!("device: {device}");
    let mut results = serde_json::Map::new();
    let mut wrong = Vec::new();
    let mut copy_rates = Vec::new();
    for (name, cells, steps, tile) in cases {
        let neighbourhood = if cells[2] > 1 { Neighbourhood::VonNeumann3D } else { Neighbourhood::VonNeumann2D };
        let grid = match tile {
            Some(tile) => HaloGrid::new(cells, tile, 1, neighbourhood)?.with_stencil(Stencil::Jacobi)?,
            None => auto_grid(cells, 1, neighbourhood, Stencil::Jacobi, 0)?,
        };
        let mut halo = ringkernel::CudaHaloExchange::new(grid)?;
        let mut plain = PlainJacobi::new(cells, 0)?;
        let copy = plain.copy_gbps(20)?;
        copy_rates.push(copy);
        let start = random_cells(grid.cell_count());
        // Correctness first: a short run of each, against the CPU reference and each other.
        let check_steps = 20;
        halo.upload(&start)?;
        halo.step(check_steps)?;
        let persistent = halo.download()?;
        plain.upload(&start)?;
        plain.run_launches(check_steps)?;
        let launched = plain.download()?;
        plain.upload(&start)?;
        plain.run_graph(check_steps)?;
        let graphed = plain.download()?;
        let checked = check_result(&grid, &start, &persistent, check_steps, Check::Auto);
        let launch_vs = max_diff(&persistent, &launched).max(max_diff(&persistent, &graphed));
        // Timed runs.
        let (mut own, mut launch, mut graph) = (Vec::new(), Vec::new(), Vec::new());
        halo.step(steps.min(100))?; // warm-up
        plain.run_launches(steps.min(100))?;
        for _ in 0..args.repeats {
            let began = std::time::Instant::now();
            halo.step(steps)?;
            own.push(us(began.elapsed(), steps));
            launch.push(us(plain.run_launches(steps)?, steps));
            graph.push(us(plain.run_graph(steps)?, steps));
        }
        let phases = halo.phases();
        let (own_us, launch_us, graph_us) = (median(&mut own), median(&mut launch), median(&mut graph));
        let gcells = grid.cell_count() as f64 / own_us / 1e3;
        println!(
            "{name}: {:?} in {} tiles of {:?} ({}), {steps} steps × {}: persistent {own_us:.3} µs/step ({gcells:.1} \
             Gcells/s = {:.0} GB/s at 8 B/cell, {:.2} of copy {copy:.0} GB/s), launch per step {launch_us:.3} µs \
             ({:.2}×), graph {graph_us:.3} µs ({:.2}×); CPU reference ({}): max |diff| {:?}; vs launch/graph {launch_vs}",
            cells,
            grid.tile_count(),
            grid.tile(),
            if halo.on_chip() { "on chip" } else { "in global memory" },
            args.repeats,
            gcells * 8.0,
            gcells * 8.0 / copy,
            own_us / launch_us,
            own_us / graph_us,
            checked.how,
            checked.max_abs_diff,
        );
        if checked.max_abs_diff != Some(0.0) || launch_vs != 0.0 {
            wrong.push(format!(
                "{name}: the persistent result differs from the CPU reference by {:?} ({}) and from the plain kernels by \
                 {launch_vs}",
                checked.max_abs_diff, checked.how
            ));
        }
        if let Some(ph) = phases {
            println!(
                "  phases of tile {} (last run, ns per step): send {:.0}, receive (waiting included) {:.0}, compute {:.0}",
                ph.tile, ph.send_ns, ph.receive_ns, ph.compute_ns
            );
        }
        results.insert(
            name,
            json!({
                "grid": cells,
                "tile": grid.tile(),
                "tiles": grid.tile_count(),
                "on_chip": halo.on_chip(),
                "steps_per_run": steps,
                "repeats": args.repeats,
                "gcells_per_s": gcells,
                "effective_gbps": gcells * 8.0,
                "fraction_of_copy": gcells * 8.0 / copy,
                "us_per_step": own_us,
                "launch_us_per_step": launch_us,
                "graph_us_per_step": graph_us,
                "vs_launch": own_us / launch_us,
                "vs_graph": own_us / graph_us,
                "copy_gbps": copy,
                "max_abs_diff": checked.max_abs_diff,
                "check": checked.how,
                "check_steps": check_steps,
                "launch_graph_max_abs_diff": launch_vs,
                "phases_ns": phases.map(|ph| json!({
                    "tile": ph.tile, "send": ph.send_ns, "receive": ph.receive_ns, "compute": ph.compute_ns
                })),
                "us_per_step_runs": own,
                "launch_us_per_step_runs": launch,
                "graph_us_per_step_runs": graph,
            }),
        );
    }
    let json = json!({
        "machine": machine_description(),
        "device": device.to_string(),
        "date": std::env::var("RINGKERNEL_DATE").unwrap_or_else(|_| {
            format!("unix {}", SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0))
        }),
        "commit": std::env::var("RINGKERNEL_COMMIT").unwrap_or_else(|_| "unknown".into()),
        "copy_gbps": median(&mut copy_rates),
        "cases": results,
    });
    if let Some(path) = args.json {
        std::fs::write(&path, serde_json::to_string_pretty(&json)? + "\n")?;
        println!("wrote {path}");
    }
    if !wrong.is_empty() {
        return Err(wrong.join("; ").into());
    }
    Ok(())
}
