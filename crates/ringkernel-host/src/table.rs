//! [`KernelTable`]: a runtime's kernels by id — what every backend's `RingKernelRuntime` needs
//! beside launching a kernel: refusing a second live kernel under one id, finding and listing
//! kernels, totalling their metrics, shutting them all down.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

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
    /// [`HOST_KERNEL_ID`], never reused), for a launch to give its kernel.
    ///
    /// # Errors
    /// [`RingKernelError::InvalidConfig`] once every number is used: create a new runtime.
    pub fn take_number(&self) -> Result<u32> {
        self.numbers
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| (n + 1 < HOST_KERNEL_ID).then_some(n + 1))
            .map(|n| n + 1)
            .map_err(|_| RingKernelError::InvalidConfig {
                field: "kernel",
                reason: "this runtime has used every kernel number; create a new runtime".into(),
            })
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<KernelId, Arc<HostKernel>>> {
        self.kernels.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Launches `kernel_id` with `start` unless a kernel of that id still runs. The table stays
    /// locked while `start` runs, so two launches of one id cannot both start.
    ///
    /// # Errors
    /// [`RingKernelError::InvalidConfig`] naming the id when it is taken by a live kernel;
    /// whatever `start` returns.
    pub fn launch(
        &self,
        kernel_id: &str,
        start: impl FnOnce(KernelId) -> Result<Arc<HostKernel>>,
    ) -> Result<KernelHandle> {
        self.launch_kernel(kernel_id, start).map(|kernel| KernelHandle::new(kernel))
    }

    /// [`KernelTable::launch`], handing back the host half itself (for a backend that still has
    /// to wait for its device to start, after the table's lock is released).
    ///
    /// # Errors
    /// As [`KernelTable::launch`].
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
        self.lock().get(kernel_id).map(|kernel| KernelHandle::new(kernel.clone() as Arc<dyn KernelControl>))
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
        assert_eq!((table.take_number().unwrap(), table.take_number().unwrap()), (1, 2));
        table.numbers.store(HOST_KERNEL_ID - 2, Ordering::Relaxed);
        assert_eq!(table.take_number().unwrap(), HOST_KERNEL_ID - 1);
        for _ in 0..3 {
            let error = table.take_number().unwrap_err();
            assert!(error.to_string().contains("used every kernel number"), "{error}");
        }
    }
}
