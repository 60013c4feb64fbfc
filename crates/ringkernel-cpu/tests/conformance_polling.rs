//! The conformance suite on the polling device model: every actor shares nothing with the host but
//! its kernel's memory — no unpark, no doorbell, no channel, no lock — and the host engine learns
//! everything from the control block and the rings, as it must for a GPU. If the suite passes
//! here, a device that only polls memory plugs into the engine.

use std::sync::Arc;

use ringkernel_core::runtime::RingKernelRuntime;
use ringkernel_core::spec::KernelRegistry;
use ringkernel_cpu::{CpuConfig, CpuRuntime};

async fn make(registry: KernelRegistry) -> ringkernel_core::Result<Arc<dyn RingKernelRuntime>> {
    Ok(Arc::new(CpuRuntime::with_config(registry, CpuConfig::polling())))
}

ringkernel_conformance::conformance_tests!(make);
