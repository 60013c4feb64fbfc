//! [`KernelTable`]: a runtime's kernels by id — what every backend's `RingKernelRuntime` needs
//! beside launching a kernel: refusing a second live kernel under one id, finding and listing
//! kernels, totalling their metrics, shutting them all down.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use ringkernel_core::error::{Result, RingKernelError};
use ringkernel_core::message::HOST_KERNEL_ID;
use ringkernel_core::runtime::{KernelControl, KernelHandle, KernelId, KernelState, RuntimeMetrics};

use crate::HostKernel;

/// A runtime's kernels by id, how many it has launched, and the kernel numbers it handed out.
#[derive(Default)]
pub struct KernelTable {
    kernels: Mutex<BTreeMap<KernelId, Arc<HostKernel>>>,
    launched: AtomicU64,
    /// Kernel numbers handed out (the last one handed out: numbers start at 1).
    numbers: AtomicU32,
}

impl KernelTable {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// A kernel number never handed out before by this table (1, 2, …; never
    /// [`HOST_KERNEL_ID`], never reused), for the launch of `kernel`.
    ///
    /// # Errors
    /// [`RingKernelError::CapacityExhausted`] naming `kernel` once every number is used.
    pub fn take_number(&self, kernel: &KernelId) -> Result<u32> {
        self.numbers
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| (n + 1 < HOST_KERNEL_ID).then_some(n + 1))
            .map(|n| n + 1)
            .map_err(|_| RingKernelError::CapacityExhausted {
                kernel: kernel.to_string(),
                what: "kernel numbers of this runtime",
                limit: u64::from(HOST_KERNEL_ID - 1),
                advice: "numbers are never reused; create a new runtime",
            })
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<KernelId, Arc<HostKernel>>> {
        crate::lock(&self.kernels)
    }

    /// Launches `kernel_id` with `start` unless a kernel of that id still runs, and hands back its
    /// host half. The table stays locked while `start` runs, so two launches of one id cannot both
    /// start.
    ///
    /// # Errors
    /// [`RingKernelError::InvalidConfig`] naming the id when it is taken by a live kernel;
    /// whatever `start` returns.
    pub fn launch_kernel(
        &self,
        kernel_id: &str,
        start: impl FnOnce(KernelId) -> Result<Arc<HostKernel>>,
    ) -> Result<Arc<HostKernel>> {
        let id = KernelId::from(kernel_id);
        let mut kernels = self.lock();
        if let Some(existing) = kernels.get(&id)
            && !existing.state().is_final()
        {
            return Err(RingKernelError::InvalidConfig {
                field: "kernel_id",
                reason: format!(
                    "`{id}` is already running; terminate it first, or launch another instance as `{}#2`",
                    id.spec_name()
                ),
            });
        }
        let kernel = start(id.clone())?;
        kernels.insert(id, kernel.clone());
        self.launched.fetch_add(1, Ordering::Relaxed);
        Ok(kernel)
    }

    /// The kernel of `kernel_id`, if it was launched.
    pub fn get(&self, kernel_id: &KernelId) -> Option<KernelHandle> {
        self.lock().get(kernel_id).map(|kernel| KernelHandle::engine(kernel.clone()))
    }

    /// Every launched kernel's id, sorted.
    pub fn ids(&self) -> Vec<KernelId> {
        self.lock().keys().cloned().collect()
    }

    fn all(&self) -> Vec<Arc<HostKernel>> {
        self.lock().values().cloned().collect()
    }

    /// The runtime's metrics: launches, active kernels, and every kernel's counters added up.
    pub fn metrics(&self) -> RuntimeMetrics {
        let mut totals =
            RuntimeMetrics { kernels_launched: self.launched.load(Ordering::Relaxed), ..Default::default() };
        for kernel in self.all() {
            let metrics = kernel.metrics();
            totals.kernels_active += u64::from(kernel.state() == KernelState::Active);
            totals.messages_sent += metrics.messages_sent;
            totals.messages_processed += metrics.messages_processed;
            totals.messages_rejected += metrics.messages_rejected;
            totals.errors += metrics.errors;
        }
        totals
    }

    /// Terminates every kernel: asks them all first, so that they drain in parallel, then waits
    /// for each.
    ///
    /// # Errors
    /// The first kernel's terminate error.
    pub async fn shutdown(&self) -> Result<()> {
        let kernels = self.all();
        for kernel in &kernels {
            kernel.request_terminate();
        }
        for kernel in kernels {
            kernel.terminate().await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_numbers_start_at_one_and_are_never_reused_or_the_hosts() {
        let table = KernelTable::new();
        let id = KernelId::from("echo#7");
        assert_eq!((table.take_number(&id).unwrap(), table.take_number(&id).unwrap()), (1, 2));
        table.numbers.store(HOST_KERNEL_ID - 2, Ordering::Relaxed);
        assert_eq!(table.take_number(&id).unwrap(), HOST_KERNEL_ID - 1);
        for _ in 0..3 {
            match table.take_number(&id) {
                Err(RingKernelError::CapacityExhausted { kernel, what, limit, .. }) => {
                    assert_eq!((kernel.as_str(), limit), ("echo#7", u64::from(HOST_KERNEL_ID - 1)));
                    assert!(what.contains("kernel numbers"), "{what}");
                }
                other => panic!("expected CapacityExhausted, got {other:?}"),
            }
        }
    }
}
