//! The conformance suite on wgpu, twice: with staged rings and with unified memory (the arena
//! mapped by the host). Without a Vulkan/Metal/DX12 adapter every test prints why it skipped;
//! with `RINGKERNEL_REQUIRE_WGPU=1` (CI) a missing adapter fails instead.

use std::sync::Arc;

use ringkernel_core::kernel::KernelRegistry;
use ringkernel_core::runtime::RingKernelRuntime;
use ringkernel_wgpu::{UnifiedMemory, WgpuConfig, WgpuRuntime};

fn no_adapter() -> Option<String> {
    match WgpuRuntime::probe(WgpuConfig::default().backends) {
        Ok(_) => None,
        Err(error) if std::env::var_os("RINGKERNEL_REQUIRE_WGPU").is_some() => {
            panic!("RINGKERNEL_REQUIRE_WGPU is set but {error}")
        }
        Err(error) => Some(error.to_string()),
    }
}

async fn make(registry: KernelRegistry, unified: UnifiedMemory) -> ringkernel_core::Result<Arc<dyn RingKernelRuntime>> {
    let config = WgpuConfig { unified_memory: unified, ..WgpuConfig::default() };
    Ok(Arc::new(WgpuRuntime::with_config(registry, config).await?))
}

mod staged {
    use super::*;
    async fn make(registry: KernelRegistry) -> ringkernel_core::Result<Arc<dyn RingKernelRuntime>> {
        super::make(registry, UnifiedMemory::Off).await
    }
    use super::no_adapter;
    ringkernel_conformance::conformance_tests!(make, skip_if = no_adapter);
}

mod unified {
    use super::*;
    fn skip() -> Option<String> {
        no_adapter().or_else(|| {
            let summary = WgpuRuntime::probe(WgpuConfig::default().backends).ok()?;
            (!matches!(
                summary.device_type,
                ringkernel_wgpu::wgpu::DeviceType::Cpu | ringkernel_wgpu::wgpu::DeviceType::IntegratedGpu
            ))
            .then(|| format!("adapter `{}` has no unified memory", summary.name))
        })
    }
    async fn make(registry: KernelRegistry) -> ringkernel_core::Result<Arc<dyn RingKernelRuntime>> {
        super::make(registry, UnifiedMemory::Require).await
    }
    ringkernel_conformance::conformance_tests!(make, skip_if = skip);
}
