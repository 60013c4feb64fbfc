//! Every CUDA template and kernel compiles under NVRTC for sm_90, with no GPU needed.
//!
//! Without NVRTC these tests print why they were skipped, unless `RINGKERNEL_REQUIRE_NVRTC=1` says
//! that it must be there (CI sets it after installing `nvidia-cuda-nvrtc`). With
//! `RINGKERNEL_PTXAS=/path/to/ptxas`, the PTX is also assembled for sm_90, which checks every
//! inline-assembly instruction the way the driver will.

use ringkernel_core::error::RingKernelError;
use ringkernel_cuda::compile::{PROBES, actor_source, compile, nvrtc_available, pool_source};

fn nvrtc_or_skip(test: &str) -> bool {
    if nvrtc_available() {
        return true;
    }
    if std::env::var_os("RINGKERNEL_REQUIRE_NVRTC").is_some() {
        panic!("RINGKERNEL_REQUIRE_NVRTC is set but libnvrtc.so.13 cannot be loaded (LD_LIBRARY_PATH?)");
    }
    eprintln!("SKIPPED {test}: NVRTC (libnvrtc.so.13) is not installed");
    false
}

fn assemble(name: &str, ptx: &str) {
    let Some(ptxas) = std::env::var_os("RINGKERNEL_PTXAS") else { return };
    let dir = std::env::temp_dir().join(format!("rk-ptxas-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let input = dir.join("kernel.ptx");
    std::fs::write(&input, ptx).unwrap();
    let output = std::process::Command::new(ptxas)
        .args(["-arch=sm_90", "-o"])
        .arg(dir.join("kernel.cubin"))
        .arg(&input)
        .output()
        .expect("ptxas runs");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(output.status.success(), "ptxas rejects `{name}`: {}", String::from_utf8_lossy(&output.stderr));
}

#[test]
fn every_registered_cuda_kernel_compiles_for_sm_90() {
    if !nvrtc_or_skip("every_registered_cuda_kernel_compiles_for_sm_90") {
        return;
    }
    let registry = ringkernel_conformance::registry();
    let mut compiled = Vec::new();
    for spec in registry.specs() {
        let source = spec.cuda_source().unwrap_or_else(|| panic!("`{}` has no CUDA handler", spec.name()));
        // Every kernel with the default block; the smallest block once (the template is shared).
        let blocks: &[u32] = if spec.name() == "echo" { &[32, 128] } else { &[128] };
        for &threads in blocks {
            let full = format!("#define RK_THREADS {threads}\n{}", actor_source(spec.name(), source));
            let ptx = compile(spec.name(), &full, "sm_90")
                .unwrap_or_else(|e| panic!("`{}` ({threads} threads) does not compile: {e}", spec.name()))
                .to_src();
            assert!(ptx.contains(".entry rk_pool_main"), "{}", spec.name());
            // The bus protocol: acquire loads and release stores at system scope, device-scope
            // atomics and fences for the inboxes.
            // One read per poll: 16-byte relaxed loads of host memory; one release per publish.
            for needle in
                ["ld.acquire.sys", "st.release.sys", "atom.relaxed.gpu.cas", "fence.sc.gpu", "ld.relaxed.sys.v4.u32"]
            {
                assert!(ptx.contains(needle), "`{}` lacks {needle}", spec.name());
            }
            // The inline assembly is the template's, the same in every kernel: assemble one.
            if threads == 128 && spec.name() == "echo" {
                assemble(spec.name(), &ptx);
            }
        }
        compiled.push(spec.name().to_string());
    }
    assert_eq!(
        compiled,
        ["counter", "echo", "fallible", "hold", "panicker", "progress", "relay", "sink", "slow", "stage1", "stage2"],
        "every kernel of the suite has a CUDA version"
    );
}

#[test]
fn the_whole_suite_compiles_as_one_pool_module() {
    if !nvrtc_or_skip("the_whole_suite_compiles_as_one_pool_module") {
        return;
    }
    // A runtime compiles every registered handler into one module, each in its own namespace:
    // helpers with the same name in several kernels must not clash.
    let registry = ringkernel_conformance::registry();
    let kernels: Vec<(&str, &str)> = registry.specs().filter_map(|s| s.cuda_source().map(|c| (s.name(), c))).collect();
    let source = format!("#define RK_THREADS 128\n{}", pool_source(&kernels));
    let ptx = compile("pool", &source, "sm_90").unwrap_or_else(|e| panic!("the suite's pool module: {e}")).to_src();
    assert!(ptx.contains(".entry rk_pool_main"));
    // And with the phase profile compiled in (CudaConfig::profile).
    let profiled = format!("#define RK_PROFILE 1\n{source}");
    let ptx = compile("pool", &profiled, "sm_90").unwrap_or_else(|e| panic!("the profiled pool module: {e}")).to_src();
    assert!(ptx.contains(".entry rk_pool_main"));
    assert_eq!(kernels.len(), 11);
}

#[test]
fn probes_compile() {
    if !nvrtc_or_skip("probes_compile") {
        return;
    }
    let ptx = compile("probes", PROBES, "sm_90").expect("the floor probes compile").to_src();
    for entry in ["rk_probe_empty", "rk_probe_offload", "rk_probe_clock", "rk_probe_pingpong"] {
        assert!(ptx.contains(&format!(".entry {entry}")), "{entry}");
    }
    assemble("probes", &ptx);
}

#[test]
fn a_broken_handler_is_a_compile_error_with_the_users_line_numbers() {
    if !nvrtc_or_skip("a_broken_handler_is_a_compile_error_with_the_users_line_numbers") {
        return;
    }
    let handler = "__device__ void rk_handle(RkContext& ctx) {\n    int x = 1;\n    rk_reply(ctx, 1, &x, sizeof(x)) + undefined_name;\n}\n";
    let full = format!("#define RK_THREADS 128\n{}", actor_source("broken", handler));
    match compile("broken", &full, "sm_90") {
        Err(RingKernelError::Compile { kernel, log }) => {
            assert_eq!(kernel, "broken");
            assert!(log.contains("broken.cu(3)"), "the log points at line 3 of the handler: {log}");
            assert!(log.contains("undefined_name"), "{log}");
        }
        other => panic!("expected a compile error, got {:?}", other.map(|_| "PTX")),
    }
    let nul = compile("nul", "__device__ void f() {}\0", "sm_90");
    assert!(matches!(nul, Err(RingKernelError::Compile { .. })), "a NUL byte is an error, not a panic");
}

#[test]
fn the_halo_exchange_compiles_for_sm_90() {
    if !nvrtc_or_skip("the_halo_exchange_compiles_for_sm_90") {
        return;
    }
    let ptx = compile("ringkernel_halo", &ringkernel_cuda::compile::halo_source(), "sm_90")
        .unwrap_or_else(|e| panic!("the halo exchange does not compile: {e}"))
        .to_src();
    for needle in [
        ".entry rk_halo_run",
        ".entry rk_plain_jacobi",
        "st.relaxed.gpu.global.u64",
        "ld.relaxed.gpu.global.u64",
        "ld.global.ca",
    ] {
        assert!(ptx.contains(needle), "the halo module lacks {needle}");
    }
    // RINGKERNEL_PTX_DUMP=FILE keeps the PTX (for `ptxas -v` or reading).
    if let Some(path) = std::env::var_os("RINGKERNEL_PTX_DUMP") {
        std::fs::write(path, &ptx).unwrap();
    }
    // No fused multiply-add may form: every backend must compute the same bits.
    assert!(!ptx.contains("fma.rn.f32"), "the halo module fuses a multiply-add");
    assemble("halo", &ptx);
}
