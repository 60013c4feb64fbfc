//! The `ringkernel` binary as a user runs it.

use std::process::Command;

fn ringkernel(args: &[&str]) -> (bool, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_ringkernel")).args(args).output().expect("the binary runs");
    let text = String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr);
    (output.status.success(), text)
}

#[test]
fn info_lists_every_backend() {
    let (ok, text) = ringkernel(&["info"]);
    assert!(ok, "{text}");
    for backend in ["cpu", "cuda", "wgpu", "metal"] {
        assert!(text.contains(backend), "{backend} missing from:\n{text}");
    }
    assert!(text.contains("auto ->"), "{text}");
}

/// A headless Linux machine (a container, a CI runner) has no `XDG_RUNTIME_DIR`: looking for a
/// wgpu adapter must not make Mesa's device-select layer look for a Wayland display (libwayland
/// then prints `error: XDG_RUNTIME_DIR is invalid or not set in the environment.`).
#[test]
fn info_is_quiet_without_a_display_server() {
    let output = Command::new(env!("CARGO_BIN_EXE_ringkernel"))
        .arg("info")
        .env_remove("XDG_RUNTIME_DIR")
        .env_remove("WAYLAND_DISPLAY")
        .output()
        .expect("the binary runs");
    let text = String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{text}");
    assert!(!text.contains("XDG_RUNTIME_DIR"), "{text}");
}

#[test]
fn demo_checks_every_reply() {
    let (ok, text) = ringkernel(&["demo", "--backend", "cpu", "--actors", "3", "--messages", "3000"]);
    assert!(ok, "{text}");
    assert!(text.contains("3000 replies checked"), "{text}");
    assert!(text.contains("every reply correct"), "{text}");
    assert!(text.contains("p50") && text.contains("p99"), "{text}");
}

#[test]
fn an_absent_backend_fails_with_the_reason() {
    if ringkernel::backend_status(ringkernel::runtime::Backend::Cuda).is_ok() {
        return; // a build with CUDA: nothing to check here
    }
    let (ok, text) = ringkernel(&["demo", "--backend", "cuda", "--messages", "10"]);
    assert!(!ok, "exit status must report the failure:\n{text}");
    assert!(text.contains("backend unavailable: cuda"), "{text}");
    let (ok, text) = ringkernel(&["demo", "--backend", "vulkan"]);
    assert!(!ok);
    assert!(text.contains("unknown backend `vulkan`"), "{text}");
}

#[test]
fn demo_refuses_meaningless_counts_and_ends_with_a_wave() {
    for args in [
        &["demo", "--backend", "cpu", "--messages", "0"][..],
        &["demo", "--backend", "cpu", "--actors", "0"],
        &["demo", "--backend", "cpu", "--actors", "4", "--messages", "3"],
        &["demo", "--backend", "cpu", "--timeout-s", "0"],
    ] {
        let (ok, text) = ringkernel(args);
        assert!(!ok, "{args:?} must fail:\n{text}");
        assert!(!text.contains("NaN"), "{text}");
    }
    let out = std::env::temp_dir().join(format!("rk-cli-demo-{}", std::process::id()));
    let (ok, text) =
        ringkernel(&["demo", "--backend", "cpu", "--actors", "3", "--messages", "10", "--out", out.to_str().unwrap()]);
    assert!(ok, "{text}");
    assert!(text.contains("10 replies checked"), "{text}");
    assert!(text.contains("picture of the wave"), "{text}");
    assert!(out.join("wave.png").metadata().unwrap().len() > 1000);
    let _ = std::fs::remove_dir_all(out);
}

#[test]
fn stencil_writes_pictures_and_a_summary_that_match_the_reference() {
    let out = std::env::temp_dir().join(format!("rk-cli-stencil-{}", std::process::id()));
    let dir = out.to_str().unwrap();
    let (ok, text) = ringkernel(&["stencil", "--backend", "cpu", "--grid", "64x48", "--steps", "30", "--out", dir]);
    assert!(ok, "{text}");
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["backend"], "cpu");
    assert_eq!(summary["kind"], "jacobi");
    assert_eq!(summary["grid"], serde_json::json!([64, 48, 1]));
    assert_eq!(summary["steps"], 30);
    assert_eq!(summary["check"], "full");
    assert_eq!(summary["max_abs_diff"], 0.0);
    assert!(summary["gcells_per_s"].as_f64().unwrap() > 0.0);
    for image in ["field_0000000.png", "field_0000030.png"] {
        let bytes = std::fs::read(out.join(image)).unwrap();
        assert_eq!(&bytes[1..4], b"PNG", "{image}");
    }
    // A 3D wave, sampled check, three frames.
    let (ok, text) = ringkernel(&[
        "stencil",
        "--backend",
        "cpu",
        "--grid",
        "16x12x10",
        "--steps",
        "9",
        "--kind",
        "wave",
        "--c2",
        "0.2",
        "--check",
        "sampled",
        "--frames",
        "3",
        "--out",
        dir,
    ]);
    assert!(ok, "{text}");
    for image in ["field_0000003.png", "field_0000006.png", "field_0000009.png"] {
        assert!(out.join(image).exists(), "{image}: {text}");
    }
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["max_abs_diff"], 0.0, "{summary}");
    let _ = std::fs::remove_dir_all(out);
}

#[test]
fn stencil_refuses_bad_input_by_name() {
    let dir = std::env::temp_dir().join(format!("rk-cli-stencil-bad-{}", std::process::id()));
    let dir = dir.to_str().unwrap();
    for (args, says) in [
        (vec!["--grid", "0x5"], "zero extent"),
        (vec!["--grid", "64"], "NxM"),
        (vec!["--steps", "0"], "0 is not in"),
        (vec!["--grid", "10x10", "--tile", "3x3"], "does not divide"),
        (vec!["--kind", "wave", "--c2", "0.9"], "Courant"),
        (vec!["--kind", "wave", "--c2", "NaN"], "Courant"),
        (vec!["--frames", "0"], "0 is not in"),
        (vec!["--frames", "5", "--steps", "3"], "more than --steps"),
        (vec!["--kind", "jacobi", "--c2", "0.3"], "Jacobi takes none"),
    ] {
        let mut all = vec!["stencil", "--backend", "cpu", "--out", dir];
        all.extend(args.iter());
        let (ok, text) = ringkernel(&all);
        assert!(!ok, "{args:?} must fail:\n{text}");
        assert!(text.contains(says), "{args:?}: expected `{says}` in:\n{text}");
    }
    let (ok, text) = ringkernel(&["stencil", "--backend", "metal", "--out", dir]);
    assert!(!ok);
    assert!(text.contains("cpu, wgpu or cuda"), "{text}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn bench_refuses_meaningless_counts() {
    for (flag, value, says) in [
        ("--repeats", "0", "0 is not in 1..=10000"),
        ("--rounds", "0", "0 is not in 1.."),
        ("--messages", "0", "0 is not in 1.."),
        ("--capacity", "0", "0 is not in 2.."),
        ("--block-size", "48", "48 is not a multiple of 32"),
        ("--block-size", "0", "0 is not a multiple of 32"),
    ] {
        let (ok, text) = ringkernel(&["bench", "--backend", "cpu", flag, value]);
        assert!(!ok, "{flag} {value} must fail:\n{text}");
        assert!(text.contains(says), "{flag} {value}: expected `{says}` in {text}");
    }
    let (ok, text) = ringkernel(&["bench-stencil", "--repeats", "0"]);
    assert!(!ok, "{text}");
    for (cases, says) in [
        ("nope", "unknown case"),
        ("a=64x64:10:8x8:9", "nothing after the tile"),
        ("a=64x64:0", "steps must be positive"),
        ("3d_64,3d_64", "named twice"),
        ("=64x64:10", "needs a name"),
    ] {
        let (ok, text) = ringkernel(&["bench-stencil", "--cases", cases]);
        assert!(!ok && text.contains(says), "{cases}: expected `{says}` in {text}");
    }
}
