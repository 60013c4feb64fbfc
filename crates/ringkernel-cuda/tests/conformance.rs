//! The conformance suite on the CUDA backend. Without a GPU every check prints why it was skipped,
//! unless `RINGKERNEL_REQUIRE_CUDA=1` says that a GPU must be there (the GPU bundle sets it).
//! Run the checks one at a time on a GPU (`-- --test-threads=1`): each test has its own runtime
//! and context, and persistent kernels of several contexts only time-slice.

use std::sync::Arc;

use ringkernel_core::kernel::KernelRegistry;
use ringkernel_core::runtime::RingKernelRuntime;
use ringkernel_cuda::CudaRuntime;

fn skip_without_gpu() -> Option<String> {
    match CudaRuntime::probe(0) {
        Ok(_) => None,
        Err(error) if std::env::var_os("RINGKERNEL_REQUIRE_CUDA").is_some() => {
            panic!("RINGKERNEL_REQUIRE_CUDA is set but the cuda backend is unavailable: {error}")
        }
        Err(error) => Some(error.to_string()),
    }
}

async fn make(registry: KernelRegistry) -> ringkernel_core::Result<Arc<dyn RingKernelRuntime>> {
    Ok(Arc::new(CudaRuntime::new(registry)?))
}

ringkernel_conformance::conformance_tests!(make, skip_if = skip_without_gpu);
