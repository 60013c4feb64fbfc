//! The halo exchange, in WGSL on the adapter and on CPU threads, equals the CPU reference stencil
//! over the whole grid bit for bit: random data, several grid and tile sizes, widths 1 and 2,
//! 2D (4 and 8 neighbours) and 3D (6 and 26).

use ringkernel_conformance::halo::{assert_bits, random_cells};
use ringkernel_core::halo::{HaloExchange, HaloGrid, Neighbourhood, Stencil, reference_steps};
use ringkernel_cpu::CpuHaloExchange;
use ringkernel_wgpu::{WgpuConfig, WgpuHaloExchange, WgpuRuntime};

const CASES: &[([u32; 3], [u32; 3], u32, Neighbourhood)] = &[
    ([16, 12, 1], [4, 4, 1], 1, Neighbourhood::VonNeumann2D),
    ([16, 12, 1], [8, 6, 1], 2, Neighbourhood::VonNeumann2D),
    ([12, 12, 1], [4, 3, 1], 1, Neighbourhood::Moore2D),
    ([20, 10, 1], [5, 5, 1], 2, Neighbourhood::Moore2D),
    ([8, 8, 8], [4, 4, 4], 1, Neighbourhood::VonNeumann3D),
    ([12, 6, 6], [4, 3, 3], 2, Neighbourhood::VonNeumann3D),
    ([8, 8, 8], [4, 4, 4], 1, Neighbourhood::Moore3D),
    ([12, 8, 4], [4, 4, 2], 2, Neighbourhood::Moore3D),
];
const STEPS: u32 = 3;

#[test]
fn cpu_exchange_equals_reference() {
    for (i, &(g, t, w, n)) in CASES.iter().enumerate() {
        let grid = HaloGrid::new(g, t, w, n).unwrap();
        let cells = random_cells(grid.cell_count(), 7 + i as u32);
        let mut halo = CpuHaloExchange::new(grid);
        halo.upload(&cells).unwrap();
        halo.step(STEPS).unwrap();
        assert_bits(
            &halo.download().unwrap(),
            &reference_steps(&grid, &cells, STEPS),
            &format!("cpu {n:?} {g:?}/{t:?} w{w}"),
        );
        assert_eq!(halo.stats().steps, u64::from(STEPS));
        assert_eq!(halo.stats().messages, grid.step_traffic().0 * u64::from(STEPS));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wgsl_exchange_equals_reference() {
    if let Err(error) = WgpuRuntime::probe(WgpuConfig::default().backends) {
        assert!(std::env::var_os("RINGKERNEL_REQUIRE_WGPU").is_none(), "{error}");
        eprintln!("SKIPPED wgsl_exchange_equals_reference: {error}");
        return;
    }
    for (i, &(g, t, w, n)) in CASES.iter().enumerate() {
        let grid = HaloGrid::new(g, t, w, n).unwrap();
        let cells = random_cells(grid.cell_count(), 11 + i as u32);
        let mut halo = WgpuHaloExchange::new(grid, WgpuConfig::default().backends).await.unwrap();
        halo.upload(&cells).unwrap();
        halo.step(1).unwrap();
        assert_bits(
            &halo.download().unwrap(),
            &reference_steps(&grid, &cells, 1),
            &format!("wgsl {n:?} {g:?}/{t:?} w{w} step 1"),
        );
        halo.step(STEPS - 1).unwrap();
        assert_bits(
            &halo.download().unwrap(),
            &reference_steps(&grid, &cells, STEPS),
            &format!("wgsl {n:?} {g:?}/{t:?} w{w}"),
        );
        assert_eq!(halo.stats().mismatches, 0);
    }
}

/// The stencils of `ringkernel stencil`: Jacobi bit for bit everywhere; the wave bit for bit on
/// the CPU and within float rounding in WGSL (a driver may fuse its multiply-adds).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jacobi_and_wave_equal_reference() {
    let wgpu = match WgpuRuntime::probe(WgpuConfig::default().backends) {
        Ok(_) => true,
        Err(error) => {
            assert!(std::env::var_os("RINGKERNEL_REQUIRE_WGPU").is_none(), "{error}");
            eprintln!("SKIPPED the WGSL half of jacobi_and_wave_equal_reference: {error}");
            false
        }
    };
    for stencil in [Stencil::Jacobi, Stencil::Wave { c2: 0.25 }] {
        for (g, t, n) in [
            ([24, 16, 1], [6, 4, 1], Neighbourhood::VonNeumann2D),
            ([12, 8, 8], [4, 4, 2], Neighbourhood::VonNeumann3D),
        ] {
            let grid = HaloGrid::new(g, t, 1, n).unwrap().with_stencil(stencil).unwrap();
            let cells = random_cells(grid.cell_count(), 21);
            let want = reference_steps(&grid, &cells, 9);
            let mut cpu = CpuHaloExchange::new(grid);
            cpu.upload(&cells).unwrap();
            cpu.step(4).unwrap();
            cpu.step(5).unwrap();
            assert_bits(&cpu.download().unwrap(), &want, &format!("cpu {stencil:?} {n:?}"));
            if !wgpu {
                continue;
            }
            let mut halo = WgpuHaloExchange::new(grid, WgpuConfig::default().backends).await.unwrap();
            halo.upload(&cells).unwrap();
            halo.step(4).unwrap();
            halo.step(5).unwrap();
            let got = halo.download().unwrap();
            if matches!(stencil, Stencil::Jacobi) {
                assert_bits(&got, &want, &format!("wgsl {stencil:?} {n:?}"));
            } else {
                let top = cells.iter().fold(0.0f32, |m, v| m.max(v.abs()));
                let worst = got.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
                assert!(worst <= top * 1e-5, "wgsl wave differs by {worst} (values up to {top})");
            }
        }
    }
}

#[test]
fn wrong_cell_counts_are_typed_errors() {
    let grid = HaloGrid::new([8, 8, 1], [4, 4, 1], 1, Neighbourhood::Moore2D).unwrap();
    let mut halo = CpuHaloExchange::new(grid);
    let error = halo.upload(&[0.0; 10]).unwrap_err();
    assert!(error.to_string().contains("10 values"), "{error}");
}
