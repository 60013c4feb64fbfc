//! The conformance suite on the CPU backend.

use std::sync::Arc;

use ringkernel_core::kernel::KernelRegistry;
use ringkernel_core::runtime::RingKernelRuntime;
use ringkernel_cpu::CpuRuntime;

async fn make(registry: KernelRegistry) -> ringkernel_core::Result<Arc<dyn RingKernelRuntime>> {
    Ok(Arc::new(CpuRuntime::new(registry)))
}

ringkernel_conformance::conformance_tests!(make);
