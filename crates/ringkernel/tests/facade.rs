//! The facade: backend choice, registration errors, derived messages.

use std::time::Duration;

use ringkernel::prelude::*;

#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, bytemuck::Pod, bytemuck::Zeroable, RingMessage)]
struct Named {
    value: u32,
}

#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, bytemuck::Pod, bytemuck::Zeroable, RingMessage)]
#[ring_message(type_id = 0x1234_5678)]
struct Explicit {
    value: u32,
}

#[test]
fn derived_type_ids_are_stable_and_overridable() {
    assert_eq!(Named::MESSAGE_TYPE, ringkernel::message::message_type_id("Named"));
    assert_eq!(Explicit::MESSAGE_TYPE, 0x1234_5678);
}

#[tokio::test]
async fn auto_picks_an_available_backend_and_absent_ones_explain_why() {
    let ring = RingKernel::builder().build().await.unwrap();
    assert_eq!(ring.backend(), ringkernel::best_backend());
    for backend in [Backend::Cuda, Backend::Wgpu, Backend::Metal] {
        if ringkernel::backend_status(backend).is_err() {
            let error = RingKernel::builder().backend(backend).build().await.unwrap_err();
            match error {
                RingKernelError::BackendUnavailable(reason) => assert!(reason.starts_with(backend.name()), "{reason}"),
                other => panic!("expected BackendUnavailable, got {other:?}"),
            }
        }
    }
}

#[tokio::test]
async fn duplicate_registration_fails_the_build() {
    let error = RingKernel::builder().register(builtin::echo()).build().await.unwrap_err();
    assert!(error.to_string().contains("already registered"), "{error}");
}

#[tokio::test]
async fn derived_messages_travel_through_a_kernel() {
    let ring = RingKernel::builder()
        .backend(Backend::Cpu)
        .register(KernelSpec::new("inc").cpu(|ctx| {
            let named: Named = ctx.message()?;
            Ok(ctx.reply_message(&Explicit { value: named.value + 1 })?)
        }))
        .build()
        .await
        .unwrap();
    let kernel = ring.launch("inc", LaunchOptions::default().with_auto_activate(true)).await.unwrap();
    let reply: Explicit = kernel.call_message(&Named { value: 41 }, Duration::from_secs(5)).await.unwrap();
    assert_eq!(reply.value, 42);
    let wrong = kernel.call_message::<Explicit, Explicit>(&Explicit { value: 1 }, Duration::from_secs(5)).await;
    assert!(matches!(wrong, Err(RingKernelError::HandlerError { .. })), "{wrong:?}");
    ring.shutdown().await.unwrap();
}

/// A backend left out of the build (`default-features = false`) is refused by name, saying which
/// feature brings it; `Auto` never picks it.
#[tokio::test]
async fn backends_left_out_of_the_build_say_which_feature_brings_them() {
    let left_out: Vec<Backend> = [
        (Backend::Cuda, cfg!(feature = "cuda")),
        (Backend::Wgpu, cfg!(feature = "wgpu")),
        (Backend::Metal, cfg!(feature = "metal")),
    ]
    .into_iter()
    .filter_map(|(backend, built)| (!built).then_some(backend))
    .collect();
    for backend in &left_out {
        let reason = ringkernel::backend_status(*backend).unwrap_err();
        assert!(reason.contains(&format!("`{backend}` feature")), "{reason}");
        let error = RingKernel::builder().backend(*backend).build().await.unwrap_err();
        assert!(matches!(&error, RingKernelError::BackendUnavailable(text) if text.contains("feature")), "{error}");
        assert_ne!(ringkernel::best_backend(), *backend);
    }
    if left_out.len() == 3 {
        assert_eq!(ringkernel::best_backend(), Backend::Cpu, "a CPU-only build runs on the CPU");
        let ring = RingKernel::builder().build().await.unwrap();
        let echo = ring.launch(builtin::ECHO, LaunchOptions::default().with_auto_activate(true)).await.unwrap();
        let reply = echo.call(Envelope::new(1, *b"cpu only"), Duration::from_secs(5)).await.unwrap();
        assert_eq!(reply.payload, b"cpu only");
        ring.shutdown().await.unwrap();
    }
}
