//! `ringkernel stencil`: a Jacobi sweep or a wave on persistent tiles with halo exchange (CPU
//! threads, WGSL workgroups or persistent CUDA blocks), checked against the CPU reference, with
//! PNG pictures of the field and a `summary.json`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use ringkernel::halo::{HaloExchange, HaloGrid, Neighbourhood, Stencil, reference_at, reference_steps, split_tiles};
use ringkernel::runtime::Backend;
use serde_json::json;

/// Which operator to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum Kind {
    /// Jacobi sweep for Laplace's equation: 5-point in 2D, 7-point in 3D.
    Jacobi,
    /// The wave equation (two time levels), from two drops at rest.
    Wave,
}

/// How the result is checked against the CPU reference.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum Check {
    /// The whole grid when that costs at most ~10^9 point updates, else sampled (or none when
    /// not even one sampled cell is affordable; the summary says so).
    Auto,
    /// Every cell: the reference steps the whole grid on one CPU thread.
    Full,
    /// Up to 32 cells (corners and the centre among them), each from the cells that can reach
    /// it: as many as ~4·10⁹ point updates allow; an error when not even one is affordable.
    Sampled,
    /// No check.
    None,
}

#[derive(Args)]
pub(crate) struct StencilArgs {
    /// Backend: auto (as `Backend::Auto` picks: cuda, else a hardware wgpu adapter, else cpu),
    /// cpu, wgpu or cuda.
    #[arg(long, default_value = "auto", value_parser = crate::parse_backend)]
    backend: Backend,
    /// Grid cells: NxM (2D) or NxMxK (3D).
    #[arg(long, default_value = "256x256", value_parser = parse_extent)]
    grid: [u32; 3],
    /// Tile cells (must divide the grid); default: chosen for the backend.
    #[arg(long, value_parser = parse_extent)]
    tile: Option<[u32; 3]>,
    /// Steps.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=1_000_000_000))]
    steps: u32,
    /// The operator.
    #[arg(long, value_enum, default_value = "jacobi")]
    kind: Kind,
    /// Wave only: the squared Courant number (c·dt/dx)², at most 1/2 in 2D and 1/3 in 3D
    /// (default 0.25 in 2D, 0.2 in 3D).
    #[arg(long)]
    c2: Option<f32>,
    /// The check against the CPU reference.
    #[arg(long, value_enum, default_value = "auto")]
    check: Check,
    /// Pictures after the start: evenly spaced over the steps, the last after the last step.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1000))]
    frames: u32,
    /// Folder for the PNG pictures and summary.json (created if missing).
    #[arg(long)]
    out: PathBuf,
}

/// `NxM` or `NxMxK`, each at least 1.
pub(crate) fn parse_extent(text: &str) -> Result<[u32; 3], String> {
    let parts: Vec<&str> = text.split(['x', 'X']).collect();
    if !(2..=3).contains(&parts.len()) {
        return Err(format!("`{text}` is not NxM or NxMxK"));
    }
    let mut extent = [1u32; 3];
    for (axis, part) in parts.iter().enumerate() {
        let value: u32 = part.trim().parse().map_err(|_| format!("`{part}` in `{text}` is not a whole number"))?;
        if value == 0 {
            return Err(format!("`{text}` has a zero extent"));
        }
        extent[axis] = value;
    }
    if parts.len() == 3 && extent[2] == 1 {
        return Err(format!("`{text}`: a 3D grid needs a depth of at least 2 (write NxM for 2D)"));
    }
    Ok(extent)
}

/// The field at the start: two Gaussian drops (heights 1 and 0.7) off the centre.
pub(crate) fn initial_field(grid: [u32; 3]) -> Vec<f32> {
    let [nx, ny, nz] = grid.map(f64::from);
    let sigma = (nx.min(ny).min(if grid[2] > 1 { nz } else { f64::MAX }) / 40.0).max(1.0);
    let drops = [([0.35, 0.4, 0.5], 1.0), ([0.68, 0.62, 0.45], 0.7)];
    let mut cells = Vec::with_capacity(grid.iter().map(|&n| n as usize).product());
    for z in 0..grid[2] {
        for y in 0..grid[1] {
            for x in 0..grid[0] {
                let v: f64 = drops
                    .iter()
                    .map(|(c, h)| {
                        let dx = f64::from(x) - c[0] * nx;
                        let dy = f64::from(y) - c[1] * ny;
                        let dz = if grid[2] > 1 { f64::from(z) - c[2] * nz } else { 0.0 };
                        h * (-(dx * dx + dy * dy + dz * dz) / (2.0 * sigma * sigma)).exp()
                    })
                    .sum();
                cells.push(v as f32);
            }
        }
    }
    cells
}

/// What [`open`] gives: the exchange, the device's name, the backend it runs on.
pub(crate) type Opened = (Box<dyn HaloExchange>, String, Backend);

/// A halo exchange on `backend` with tiles chosen for it.
pub(crate) fn open(
    backend: Backend,
    cells: [u32; 3],
    tile: Option<[u32; 3]>,
    stencil: Stencil,
) -> Result<Opened, Box<dyn std::error::Error>> {
    let neighbourhood = if cells[2] > 1 { Neighbourhood::VonNeumann3D } else { Neighbourhood::VonNeumann2D };
    let fixed = |max_tiles: u32| -> Result<HaloGrid, Box<dyn std::error::Error>> {
        let tile = tile.unwrap_or_else(|| split_tiles(cells, 1, neighbourhood.is_3d(), max_tiles));
        Ok(HaloGrid::new(cells, tile, 1, neighbourhood)?.with_stencil(stencil)?)
    };
    match backend {
        Backend::Cpu => {
            let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as u32;
            let grid = fixed(4 * cores)?;
            Ok((Box::new(ringkernel::CpuHaloExchange::new(grid)), format!("{cores} CPU threads"), backend))
        }
        Backend::Wgpu => {
            // One workgroup of 64 threads per tile: a few thousand tiles keep a GPU busy.
            let grid = fixed(4096)?;
            let halo = pollster::block_on(ringkernel::WgpuHaloExchange::new(
                grid,
                ringkernel::WgpuConfig::default().backends,
            ))?;
            let name = halo.adapter().to_string();
            Ok((Box::new(halo), name, backend))
        }
        Backend::Cuda => {
            let grid = match tile {
                Some(_) => fixed(u32::MAX)?,
                None => ringkernel::cuda_halo::auto_grid(cells, 1, neighbourhood, stencil, 0)?,
            };
            let halo = ringkernel::CudaHaloExchange::new(grid)?;
            let name = halo.device().name.clone();
            Ok((Box::new(halo), name, backend))
        }
        Backend::Auto => {
            // As `Backend::Auto` picks (a software Vulkan device is not picked); on Apple GPUs the
            // halo exchange is wgpu's, over Metal.
            let best = match ringkernel::best_backend() {
                Backend::Metal => Backend::Wgpu,
                other => other,
            };
            open(best, cells, tile, stencil)
        }
        other => Err(format!(
            "the halo exchange runs on cpu, wgpu or cuda, not {other} (on Apple GPUs it is wgpu's, through Metal)"
        )
        .into()),
    }
}

fn stencil_of(kind: Kind, c2: Option<f32>, three_d: bool) -> Result<Stencil, String> {
    match (kind, c2) {
        (Kind::Jacobi, Some(_)) => Err("--c2 is the wave's Courant number; Jacobi takes none".into()),
        (Kind::Jacobi, None) => Ok(Stencil::Jacobi),
        (Kind::Wave, c2) => Ok(Stencil::Wave { c2: c2.unwrap_or(if three_d { 0.2 } else { 0.25 }) }),
    }
}

/// The colour scale of a picture: values from `low` to `high`.
#[derive(Clone, Copy)]
pub(crate) struct Scale {
    low: f32,
    high: f32,
    diverging: bool,
}

impl Scale {
    /// A scale for a field that starts as `cells`: symmetric around zero for the wave (it swings
    /// both ways), from zero to the highest value for Jacobi (it only smooths).
    pub(crate) fn for_field(cells: &[f32], kind: Kind) -> Self {
        let top = cells.iter().fold(0.0f32, |m, v| m.max(v.abs())).max(f32::MIN_POSITIVE);
        match kind {
            // The wave's peaks fall as it spreads: a tighter scale shows the ripples.
            Kind::Wave => Scale { low: -top / 3.0, high: top / 3.0, diverging: true },
            Kind::Jacobi => Scale { low: 0.0, high: top, diverging: false },
        }
    }

    fn colour(&self, value: f32) -> [u8; 3] {
        let t = ((value - self.low) / (self.high - self.low)).clamp(0.0, 1.0);
        let t = if t.is_nan() { 0.0 } else { t };
        // Piecewise-linear approximations of coolwarm and magma.
        let stops: &[[f32; 3]] = if self.diverging {
            &[[59.0, 76.0, 192.0], [221.0, 221.0, 221.0], [180.0, 4.0, 38.0]]
        } else {
            &[[0.0, 0.0, 4.0], [80.0, 18.0, 123.0], [182.0, 54.0, 121.0], [251.0, 136.0, 97.0], [252.0, 253.0, 191.0]]
        };
        let x = t * (stops.len() - 1) as f32;
        let i = (x.floor() as usize).min(stops.len() - 2);
        let f = x - i as f32;
        [0, 1, 2].map(|c| (stops[i][c] + (stops[i + 1][c] - stops[i][c]) * f).round() as u8)
    }
}

/// Writes the field (the mid-depth plane of a 3D grid) as a PNG of at most 1024 pixels a side
/// (nearest cell), with the colour bar on the right (low at the bottom).
pub(crate) fn write_png(
    path: &Path,
    cells: &[f32],
    grid: [u32; 3],
    scale: Scale,
) -> Result<(), Box<dyn std::error::Error>> {
    let plane = grid[2] / 2;
    let (nx, ny) = (grid[0] as usize, grid[1] as usize);
    let stride = nx.max(ny).div_ceil(1024);
    let (w, h) = (nx.div_ceil(stride), ny.div_ceil(stride));
    const GAP: usize = 6;
    const BAR: usize = 20;
    let width = w + GAP + BAR;
    let height = h.max(32);
    let mut pixels = vec![255u8; width * height * 3];
    let base = plane as usize * nx * ny;
    for py in 0..h {
        for px in 0..w {
            let v = cells[base + py * stride * nx + px * stride];
            let at = (py * width + px) * 3;
            pixels[at..at + 3].copy_from_slice(&scale.colour(v));
        }
    }
    for py in 0..height {
        let t = 1.0 - py as f32 / (height - 1) as f32;
        let colour = scale.colour(scale.low + t * (scale.high - scale.low));
        for px in w + GAP..width {
            let at = (py * width + px) * 3;
            pixels[at..at + 3].copy_from_slice(&colour);
        }
    }
    let file = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut encoder = png::Encoder::new(file, width as u32, height as u32);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.add_text_chunk(
        "Comment".into(),
        format!("ringkernel stencil; colour bar from {} (bottom) to {} (top)", scale.low, scale.high),
    )?;
    let mut writer = encoder.write_header()?;
    writer.write_image_data(&pixels)?;
    writer.finish()?;
    Ok(())
}

/// What a check against the CPU reference found.
pub(crate) struct Checked {
    pub(crate) how: String,
    pub(crate) max_abs_diff: Option<f64>,
    /// A check was asked for and could not be afforded.
    pub(crate) skipped: bool,
}

/// Compares `got` (after `steps` steps from `start`) with the CPU reference as `check` says.
pub(crate) fn check_result(grid: &HaloGrid, start: &[f32], got: &[f32], steps: u32, check: Check) -> Checked {
    let points = grid.stencil_points().len() as f64;
    let full_cost = grid.cell_count() as f64 * f64::from(steps) * points;
    let mode = match check {
        Check::Auto if full_cost <= 1e9 => Check::Full,
        Check::Auto => Check::Sampled,
        other => other,
    };
    let diff = |a: f32, b: f32| f64::from((a - b).abs());
    match mode {
        Check::Full => {
            let want = reference_steps(grid, start, steps);
            let max = got.iter().zip(&want).map(|(a, b)| diff(*a, *b)).fold(0.0, f64::max);
            Checked { how: "full".into(), max_abs_diff: Some(max), skipped: false }
        }
        Check::Sampled => {
            let g = grid.grid();
            let dims = if grid.neighbourhood().is_3d() { 3 } else { 2 };
            // Cost of one sample: its window (2·steps+1 per axis, clipped) times the steps.
            let window: f64 = (0..dims).map(|a| f64::from(g[a]).min(2.0 * f64::from(steps) + 1.0)).product();
            let per_sample = window * f64::from(steps) * points;
            let samples = ((4e9 / per_sample) as usize).min(32);
            if samples == 0 {
                return Checked {
                    how: format!(
                        "none: even one sampled cell would cost {per_sample:.1e} point updates; run fewer steps"
                    ),
                    max_abs_diff: None,
                    skipped: true,
                };
            }
            let mut rng = 0x2545_f491u32;
            let mut next = |n: u32| {
                rng ^= rng << 13;
                rng ^= rng >> 17;
                rng ^= rng << 5;
                rng % n
            };
            let top = [g[0] - 1, g[1] - 1, g[2] - 1];
            let mut cells: Vec<[u32; 3]> =
                vec![[0, 0, 0], top, [g[0] / 2, g[1] / 2, g[2] / 2], [top[0], 0, top[2]], [0, top[1], 0]];
            while cells.len() < samples.max(5) {
                cells.push([next(g[0]), next(g[1]), next(g[2])]);
            }
            cells.truncate(samples.max(1));
            let want = reference_at(grid, start, steps, &cells);
            let max = cells
                .iter()
                .zip(&want)
                .map(|(c, w)| {
                    let i = (c[2] as usize * g[1] as usize + c[1] as usize) * g[0] as usize + c[0] as usize;
                    diff(got[i], *w)
                })
                .fold(0.0, f64::max);
            Checked { how: format!("sampled: {} cells", cells.len()), max_abs_diff: Some(max), skipped: false }
        }
        _ => Checked { how: "none".into(), max_abs_diff: None, skipped: false },
    }
}

/// The largest difference a backend may show: none on the CPU and CUDA (the same operations in
/// the same order, no fused multiply-add) and for the mean and Jacobi everywhere; float rounding
/// for the wave in WGSL (a driver may fuse its multiply-adds), relative to the field's largest
/// starting value.
pub(crate) fn tolerance(stencil: Stencil, backend: Backend, start: &[f32], steps: u32) -> f64 {
    match stencil {
        Stencil::Wave { .. } if backend == Backend::Wgpu => {
            let top = start.iter().fold(0.0f32, |m, v| m.max(v.abs()));
            f64::from(top) * 1e-6 * f64::from(steps).max(1.0)
        }
        _ => 0.0,
    }
}

pub(crate) fn run(args: StencilArgs) -> Result<(), Box<dyn std::error::Error>> {
    let stencil = stencil_of(args.kind, args.c2, args.grid[2] > 1)?;
    if args.frames > args.steps {
        return Err(format!(
            "--frames {} is more than --steps {}: a picture needs a step of its own",
            args.frames, args.steps
        )
        .into());
    }
    let (mut halo, device, backend) = open(args.backend, args.grid, args.tile, stencil)?;
    let grid = *halo.grid();
    std::fs::create_dir_all(&args.out).map_err(|e| format!("cannot create {}: {e}", args.out.display()))?;
    let dims = if args.grid[2] > 1 {
        format!("{}x{}x{}", args.grid[0], args.grid[1], args.grid[2])
    } else {
        format!("{}x{}", args.grid[0], args.grid[1])
    };
    println!(
        "{} {dims}, {} steps on {backend} ({device}): {} tiles of {:?}",
        stencil.name(),
        args.steps,
        grid.tile_count(),
        grid.tile()
    );
    let start = initial_field(args.grid);
    let scale = Scale::for_field(&start, args.kind);
    let mut images = Vec::new();
    let first = args.out.join("field_0000000.png");
    write_png(&first, &start, args.grid, scale)?;
    images.push(first);
    halo.upload(&start)?;

    let bar = ProgressBar::new(u64::from(args.steps));
    bar.set_style(ProgressStyle::with_template("{bar:40} {pos}/{len} steps  {per_sec}  eta {eta}")?);
    let mut elapsed = Duration::ZERO;
    let mut done = 0u32;
    let mut result = start.clone();
    for frame in 1..=args.frames {
        let until = (u64::from(args.steps) * u64::from(frame) / u64::from(args.frames)) as u32;
        // Several launches per frame so that the bar moves; each runs many steps.
        let chunk = (args.steps / 50).max(1);
        while done < until {
            let n = chunk.min(until - done);
            let began = std::time::Instant::now();
            halo.step(n)?;
            elapsed += began.elapsed();
            done += n;
            bar.set_position(u64::from(done));
        }
        result = halo.download()?;
        let path = args.out.join(format!("field_{done:07}.png"));
        write_png(&path, &result, args.grid, scale)?;
        images.push(path);
    }
    bar.finish_and_clear();
    let seconds = elapsed.as_secs_f64();
    let gcells = grid.cell_count() as f64 * f64::from(args.steps) / seconds / 1e9;
    let checked = check_result(&grid, &start, &result, args.steps, args.check);
    let summary = json!({
        "backend": backend.to_string(),
        "device": device,
        "kind": stencil.name(),
        "c2": match stencil { Stencil::Wave { c2 } => Some(c2), _ => None },
        "grid": args.grid,
        "tile": grid.tile(),
        "tiles": grid.tile_count(),
        "steps": args.steps,
        "seconds": seconds,
        "gcells_per_s": gcells,
        "check": checked.how,
        "max_abs_diff": checked.max_abs_diff,
        "colour_scale": [scale.low, scale.high],
        "images": images.iter().map(|p| p.file_name().map(|n| n.to_string_lossy().to_string())).collect::<Vec<_>>(),
        "faces_sent": halo.stats().messages,
        "mismatches": halo.stats().mismatches,
    });
    let summary_path = args.out.join("summary.json");
    std::fs::write(&summary_path, serde_json::to_string_pretty(&summary)? + "\n")?;
    println!("{:.3} s of steps: {gcells:.3} Gcell updates/s", seconds);
    match checked.max_abs_diff {
        Some(diff) => println!("check against the CPU reference ({}): max |difference| {diff:e}", checked.how),
        None => println!("check against the CPU reference: {}", checked.how),
    }
    println!("pictures: {} .. {}", images[0].display(), images[images.len() - 1].display());
    println!("summary: {}", summary_path.display());
    if checked.skipped && args.check != Check::Auto {
        return Err(format!("the {:?} check asked for was not done: {}", args.check, checked.how).into());
    }
    if let Some(diff) = checked.max_abs_diff {
        let allowed = tolerance(stencil, backend, &start, args.steps);
        if diff > allowed {
            return Err(format!("the result differs from the CPU reference by {diff:e} (allowed {allowed:e})").into());
        }
    }
    Ok(())
}

/// The demo's last act: a short 2D wave on `backend` (the CPU when it has no halo exchange),
/// checked against the reference; returns the picture's path.
pub(crate) fn demo_wave(backend: Backend, out: &Path) -> Result<PathBuf, Box<dyn std::error::Error>> {
    let cells = [256, 256, 1];
    let steps = 300;
    let stencil = Stencil::Wave { c2: 0.25 };
    let backend = match backend {
        Backend::Cpu | Backend::Cuda | Backend::Wgpu => backend,
        _ => Backend::Cpu,
    };
    let (mut halo, device, backend) = open(backend, cells, None, stencil)?;
    let start = initial_field(cells);
    halo.upload(&start)?;
    let began = std::time::Instant::now();
    halo.step(steps)?;
    let seconds = began.elapsed().as_secs_f64();
    let result = halo.download()?;
    let grid = *halo.grid();
    let checked = check_result(&grid, &start, &result, steps, Check::Full);
    let diff = checked.max_abs_diff.unwrap_or(f64::INFINITY);
    if diff > tolerance(stencil, backend, &start, steps) {
        return Err(format!("the demo's wave differs from the CPU reference by {diff:e}").into());
    }
    std::fs::create_dir_all(out).map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    let path = out.join("wave.png");
    write_png(&path, &result, cells, Scale::for_field(&start, Kind::Wave))?;
    println!(
        "wave 256x256, {steps} steps on {backend} ({device}): {:.2} ms, max |difference| from the CPU reference {diff:e}",
        seconds * 1e3
    );
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extents_parse_and_refuse_nonsense() {
        assert_eq!(parse_extent("256x128"), Ok([256, 128, 1]));
        assert_eq!(parse_extent("64x64x32"), Ok([64, 64, 32]));
        for bad in ["", "256", "0x5", "5x0", "axb", "1x2x3x4", "-1x4", "64x64x1", "4x 4x"] {
            assert!(parse_extent(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn an_unaffordable_sampled_check_says_so() {
        let grid = HaloGrid::new([64, 64, 1], [32, 32, 1], 1, Neighbourhood::VonNeumann2D).unwrap();
        let cells = vec![0.0; grid.cell_count()];
        let checked = check_result(&grid, &cells, &cells, 1_000_000_000, Check::Sampled);
        assert!(checked.skipped && checked.max_abs_diff.is_none(), "{}", checked.how);
        let checked = check_result(&grid, &cells, &cells, 3, Check::Sampled);
        assert_eq!((checked.skipped, checked.max_abs_diff), (false, Some(0.0)));
    }

    #[test]
    fn colour_scales_cover_their_range() {
        let s = Scale { low: -1.0, high: 1.0, diverging: true };
        assert_eq!(s.colour(-5.0), [59, 76, 192]);
        assert_eq!(s.colour(0.0), [221, 221, 221]);
        assert_eq!(s.colour(1.0), [180, 4, 38]);
        assert_eq!(s.colour(f32::NAN), [59, 76, 192]);
    }
}
