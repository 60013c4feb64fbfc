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
