//! The paths and signatures the seed specification imports exist and fit together: a runtime for
//! an absent backend, written the way `ringkernel-metal`'s fallback is specified, compiles and
//! behaves against this crate.

use async_trait::async_trait;
use ringkernel_core::error::{Result, RingKernelError};
use ringkernel_core::runtime::{Backend, KernelHandle, KernelId, LaunchOptions, RingKernelRuntime, RuntimeMetrics};

struct AbsentRuntime;

impl AbsentRuntime {
    async fn new() -> Result<Self> {
        Err(RingKernelError::BackendUnavailable("Metal requires macOS with the metal feature".to_string()))
    }
}

#[async_trait]
impl RingKernelRuntime for AbsentRuntime {
    fn backend(&self) -> Backend {
        Backend::Metal
    }

    fn is_backend_available(&self, _backend: Backend) -> bool {
        false
    }

    async fn launch(&self, _kernel_id: &str, _options: LaunchOptions) -> Result<KernelHandle> {
        Err(RingKernelError::BackendUnavailable("Metal".to_string()))
    }

    fn get_kernel(&self, _kernel_id: &KernelId) -> Option<KernelHandle> {
        None
    }

    fn list_kernels(&self) -> Vec<KernelId> {
        vec![]
    }

    fn metrics(&self) -> RuntimeMetrics {
        RuntimeMetrics::default()
    }

    async fn shutdown(&self) -> Result<()> {
        Ok(())
    }
}

fn block_on<F: std::future::Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match future.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(output) => output,
        std::task::Poll::Pending => panic!("these futures complete immediately"),
    }
}

#[test]
fn seed_runtime_surface_compiles_and_reports_unavailability() {
    let err = block_on(AbsentRuntime::new()).err().expect("absent backend");
    assert_eq!(err.to_string(), "backend unavailable: Metal requires macOS with the metal feature");

    let runtime: Box<dyn RingKernelRuntime> = Box::new(AbsentRuntime);
    assert_eq!(runtime.backend(), Backend::Metal);
    assert!(!runtime.is_backend_available(Backend::Metal));
    assert!(matches!(
        block_on(runtime.launch("compute", Default::default())),
        Err(RingKernelError::BackendUnavailable(_))
    ));
    assert!(runtime.get_kernel(&KernelId::from("compute")).is_none());
    assert!(runtime.list_kernels().is_empty());
    assert_eq!(runtime.metrics(), RuntimeMetrics::default());
    block_on(runtime.shutdown()).unwrap();
}
