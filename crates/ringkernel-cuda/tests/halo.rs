//! The CUDA halo exchange equals the CPU reference bit for bit on the same cases as the wgpu
//! backend's halo tests (2D 4 and 8 neighbours, 3D 6 and 26, widths 1 and 2), for every stencil,
//! with tiles on chip and in global memory; a wrong or missing face stops the run with a typed
//! error and is never applied. Skipped (with the reason) without a GPU unless
//! `RINGKERNEL_REQUIRE_CUDA=1`.

use std::time::Duration;

use ringkernel_conformance::halo::{assert_bits, random_cells};
use ringkernel_core::error::RingKernelError;
use ringkernel_core::halo::{HaloExchange, HaloGrid, Neighbourhood, Stencil, reference_steps};
use ringkernel_cuda::halo::InjectedFault;
use ringkernel_cuda::{CudaHaloConfig, CudaHaloExchange, CudaRuntime};

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

fn gpu(test: &str) -> bool {
    match CudaRuntime::probe(0) {
        Ok(_) => true,
        Err(error) if std::env::var_os("RINGKERNEL_REQUIRE_CUDA").is_some() => {
            panic!("RINGKERNEL_REQUIRE_CUDA is set but the cuda backend is unavailable: {error}")
        }
        Err(error) => {
            eprintln!("SKIPPED {test}: {error}");
            false
        }
    }
}

fn config(on_chip: bool) -> CudaHaloConfig {
    CudaHaloConfig { on_chip: Some(on_chip), ..CudaHaloConfig::default() }
}

#[test]
fn cuda_exchange_equals_reference_on_chip_and_off() {
    if !gpu("cuda_exchange_equals_reference_on_chip_and_off") {
        return;
    }
    for on_chip in [true, false] {
        for (i, &(g, t, w, n)) in CASES.iter().enumerate() {
            let grid = HaloGrid::new(g, t, w, n).unwrap();
            let cells = random_cells(grid.cell_count(), 11 + i as u32);
            let mut halo = CudaHaloExchange::with_config(grid, config(on_chip)).unwrap();
            assert_eq!(halo.on_chip(), on_chip);
            halo.upload(&cells).unwrap();
            halo.step(1).unwrap();
            let what = format!("cuda on_chip={on_chip} {n:?} {g:?}/{t:?} w{w}");
            assert_bits(&halo.download().unwrap(), &reference_steps(&grid, &cells, 1), &format!("{what} step 1"));
            // An even and an odd run: the levels' parity is kept across launches.
            halo.step(2).unwrap();
            halo.step(3).unwrap();
            assert_bits(&halo.download().unwrap(), &reference_steps(&grid, &cells, 6), &what);
            let stats = halo.stats();
            assert_eq!((stats.steps, stats.mismatches), (6, 0));
            assert_eq!(stats.messages, grid.step_traffic().0 * 6);
        }
    }
}

#[test]
fn cuda_stencils_equal_reference() {
    if !gpu("cuda_stencils_equal_reference") {
        return;
    }
    for stencil in [Stencil::Jacobi, Stencil::Wave { c2: 0.25 }] {
        for (g, t, n) in [
            ([32, 24, 1], [8, 6, 1], Neighbourhood::VonNeumann2D),
            ([16, 16, 12], [4, 8, 4], Neighbourhood::VonNeumann3D),
        ] {
            let grid = HaloGrid::new(g, t, 1, n).unwrap().with_stencil(stencil).unwrap();
            let cells = random_cells(grid.cell_count(), 5);
            for on_chip in [true, false] {
                let mut halo = CudaHaloExchange::with_config(grid, config(on_chip)).unwrap();
                halo.upload(&cells).unwrap();
                halo.step(7).unwrap();
                halo.step(4).unwrap();
                assert_bits(
                    &halo.download().unwrap(),
                    &reference_steps(&grid, &cells, 11),
                    &format!("cuda {stencil:?} {n:?} on_chip={on_chip}"),
                );
            }
        }
    }
}

#[test]
fn a_wrong_face_stops_the_run_before_any_cell_is_computed_from_it() {
    if !gpu("a_wrong_face_stops_the_run_before_any_cell_is_computed_from_it") {
        return;
    }
    let grid = HaloGrid::new([16, 16, 1], [4, 4, 1], 1, Neighbourhood::Moore2D).unwrap();
    let cells = random_cells(grid.cell_count(), 3);
    let mut halo = CudaHaloExchange::new(grid).unwrap();
    halo.upload(&cells).unwrap();
    halo.inject(Some(InjectedFault::WrongDirection { tile: 5, step: 2 }));
    let error = halo.step(10).unwrap_err();
    let RingKernelError::KernelFault { reason, .. } = &error else { panic!("{error:?}") };
    assert!(reason.contains("other than the one expected") && reason.contains("step 2"), "{reason}");
    // Tile 5 sent `direction` = its own side instead of the receiver's: the header's direction.
    assert!(reason.contains("header's direction"), "{reason}");
    assert!(halo.stats().mismatches >= 1);
    assert_eq!(halo.stats().steps, 0, "a stopped run counts no steps");
    // The grid is unspecified now: stepping or reading it says so until the next upload.
    let again = halo.step(1).unwrap_err();
    assert!(again.to_string().contains("upload"), "{again}");
    let read = halo.download().unwrap_err();
    assert!(read.to_string().contains("upload"), "{read}");
    halo.inject(None);
    halo.upload(&cells).unwrap();
    halo.step(3).unwrap();
    assert_bits(&halo.download().unwrap(), &reference_steps(&grid, &cells, 3), "after the fault");
}

#[test]
fn a_missing_face_times_out_with_a_typed_error() {
    if !gpu("a_missing_face_times_out_with_a_typed_error") {
        return;
    }
    let grid = HaloGrid::new([16, 16, 4], [4, 4, 2], 1, Neighbourhood::VonNeumann3D).unwrap();
    let config = CudaHaloConfig { face_timeout: Duration::from_millis(200), ..CudaHaloConfig::default() };
    let mut halo = CudaHaloExchange::with_config(grid, config).unwrap();
    halo.upload(&random_cells(grid.cell_count(), 9)).unwrap();
    halo.inject(Some(InjectedFault::Silent { tile: 0, step: 1 }));
    let started = std::time::Instant::now();
    let error = halo.step(5).unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    assert!(matches!(error, RingKernelError::KernelFault { .. }), "{error:?}");
    let text = error.to_string();
    // Tile 0's neighbours wait for its step-1 faces; a tile two hops away may wait for theirs at
    // step 2 at the same time. Whichever times out first names itself, the side and the step.
    assert!(text.contains("waited more than 200ms"), "{text}");
    assert!(text.contains("at step 1") || text.contains("at step 2"), "{text}");
    assert!(text.contains("for its face from direction"), "{text}");
}

#[test]
fn tiles_too_large_for_residency_on_chip_run_from_global_memory() {
    if !gpu("tiles_too_large_for_residency_on_chip_run_from_global_memory") {
        return;
    }
    // 256 tiles of 128² (two levels: 135 KB of shared memory each): on chip only one fits per
    // SM, too few for 256 tiles; by default they run from global memory instead.
    let grid = HaloGrid::new([2048, 2048, 1], [128, 128, 1], 1, Neighbourhood::VonNeumann2D).unwrap();
    let mut halo = CudaHaloExchange::new(grid).unwrap();
    assert!(!halo.on_chip());
    let cells = random_cells(grid.cell_count(), 4);
    halo.upload(&cells).unwrap();
    halo.step(2).unwrap();
    assert_bits(&halo.download().unwrap(), &reference_steps(&grid, &cells, 2), "2048² from global memory");
}

#[test]
fn limits_are_named() {
    if !gpu("limits_are_named") {
        return;
    }
    // More tiles than can be resident at once.
    let grid = HaloGrid::new([4096, 4096, 1], [16, 16, 1], 1, Neighbourhood::VonNeumann2D).unwrap();
    let error = CudaHaloExchange::new(grid).unwrap_err();
    assert!(error.to_string().contains("resident"), "{error}");
    // On-chip tiles demanded that do not fit in shared memory.
    let grid = HaloGrid::new([1024, 1024, 1], [512, 512, 1], 1, Neighbourhood::VonNeumann2D).unwrap();
    let error = CudaHaloExchange::with_config(grid, config(true)).unwrap_err();
    assert!(error.to_string().contains("shared memory"), "{error}");
    // Odd input.
    let mut halo =
        CudaHaloExchange::new(HaloGrid::new([8, 8, 1], [4, 4, 1], 1, Neighbourhood::Moore2D).unwrap()).unwrap();
    assert!(halo.upload(&[0.0; 7]).unwrap_err().to_string().contains("7 values"));
    halo.step(0).unwrap();
    assert_eq!(halo.stats().steps, 0);
}
