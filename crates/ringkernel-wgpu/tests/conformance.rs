//! The conformance suite on wgpu, three times: with staged rings and with unified memory (the
//! arena mapped by the host), each with the adapter's dispatch mode, and staged with the other
//! mode (one dispatch looping over messages where the adapter gets one message per dispatch, as
//! lavapipe does, and the reverse), so that CI runs both modes on lavapipe. Without a Vulkan/Metal/DX12 adapter every test prints why it skipped;
//! with `RINGKERNEL_REQUIRE_WGPU=1` (CI) a missing adapter fails instead.

use std::sync::Arc;

use ringkernel_core::kernel::KernelRegistry;
use ringkernel_core::runtime::RingKernelRuntime;
use ringkernel_wgpu::{DispatchLoop, UnifiedMemory, WgpuConfig, WgpuRuntime};

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
    make_with(registry, WgpuConfig { unified_memory: unified, ..WgpuConfig::default() }).await
}

async fn make_with(
    registry: KernelRegistry,
    config: WgpuConfig,
) -> ringkernel_core::Result<Arc<dyn RingKernelRuntime>> {
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

mod other_dispatch_mode {
    use super::*;

    /// Whether the adapter's own choice is a loop per dispatch.
    async fn adapter_loops() -> ringkernel_core::Result<bool> {
        let probe = WgpuRuntime::with_config(KernelRegistry::new(), WgpuConfig::default()).await?;
        Ok(probe.memory().loop_budget > 1)
    }

    async fn make(registry: KernelRegistry) -> ringkernel_core::Result<Arc<dyn RingKernelRuntime>> {
        let dispatch_loop = if adapter_loops().await? { DispatchLoop::OnePerDispatch } else { DispatchLoop::Loop };
        let config = WgpuConfig { unified_memory: UnifiedMemory::Off, dispatch_loop, ..WgpuConfig::default() };
        super::make_with(registry, config).await
    }

    /// The `slow` kernel spins 60 000 iterations per message: inside a loop over messages that
    /// is past the iterations lavapipe allows one loop nest (why such adapters get one message
    /// per dispatch), so its checks run in the other mode only where loops are the other mode.
    fn skip_slow() -> Option<String> {
        no_adapter().or_else(|| {
            (!pollster::block_on(adapter_loops()).unwrap_or(false))
                .then(|| "the slow kernel's loop in a loop over messages is past this driver's loop bound".into())
        })
    }

    use super::no_adapter;
    ringkernel_conformance::conformance_tests!(make, skip_if = no_adapter, slow_skip_if = skip_slow);
}
