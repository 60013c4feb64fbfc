//! Waiting operations take part in Tokio's cooperative scheduling: a task that loops over calls
//! whose replies are already there when it looks (so no call ever has to wait) still lets the
//! other tasks of its runtime run.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use ringkernel_core::hlc::{HlcConfig, HybridClock};
use ringkernel_core::layout::RingGeometry;
use ringkernel_core::memory::{DeviceEnds, KernelLayout, KernelMemory};
use ringkernel_core::message::{Envelope, HeaderPart, SlotBuffer, write_slot};
use ringkernel_core::runtime::{KernelHandle, KernelId};
use ringkernel_host::{Device, Doorbell, HostConfig, HostKernel, KernelParts};

/// A device that answers inside `wake`: every reply is in the output ring before the call looks.
struct InlineEcho {
    ends: Mutex<(DeviceEnds, SlotBuffer)>,
}

// SAFETY: it never reports a stop, and touches the kernel's memory only inside `wake`.
unsafe impl Device for InlineEcho {
    fn wake(&self) {
        let mut guard = self.ends.lock().unwrap_or_else(PoisonError::into_inner);
        let (ends, buffer) = &mut *guard;
        while ends.input.try_pop(|slot| slot.copy_message_into(buffer, HeaderPart::Hot)).is_ok() {
            let request = buffer.view().expect("the engine writes valid slots");
            let reply = request.header.reply(request.header.message_type);
            let payload = request.payload;
            ends.output.try_push(|slot| write_slot(slot, &reply, payload).expect("fits")).expect("room for the reply");
        }
    }
}

fn inline_echo() -> KernelHandle {
    let ring = RingGeometry::for_messages(64, 16).unwrap();
    let layout = KernelLayout::new(ring, ring, None).unwrap();
    let (host, device) = KernelMemory::allocate(layout, 5, 5).unwrap().split();
    let buffer = SlotBuffer::new(ring.slot_bytes() as usize).unwrap();
    let kernel = HostKernel::new(KernelParts {
        id: KernelId::from("inline-echo"),
        number: 5,
        memory: host,
        device: Arc::new(InlineEcho { ends: Mutex::new((device, buffer)) }),
        doorbell: Arc::new(Doorbell::new()),
        clock: Arc::new(HybridClock::new(HlcConfig::new(0))),
        config: HostConfig::default(),
        auto_activate: true,
    })
    .unwrap();
    KernelHandle::engine(kernel)
}

/// Runs `operation` `ROUNDS` times on one task of a current-thread runtime beside a ticker task;
/// returns how often the ticker ran before the loop ended.
async fn ticks_during<F, Fut>(mut operation: F) -> u64
where
    F: FnMut(u64) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    const ROUNDS: u64 = 4096;
    let ticks = Arc::new(AtomicU64::new(0));
    let ticker = tokio::spawn({
        let ticks = ticks.clone();
        async move {
            loop {
                ticks.fetch_add(1, Ordering::Relaxed);
                tokio::task::yield_now().await;
            }
        }
    });
    let looped = tokio::spawn({
        let ticks = ticks.clone();
        async move {
            // Let the ticker be scheduled first, then count only what it does during the loop.
            tokio::task::yield_now().await;
            let before = ticks.load(Ordering::Relaxed);
            for n in 0..ROUNDS {
                operation(n).await;
            }
            ticks.load(Ordering::Relaxed) - before
        }
    });
    let ticked = looped.await.unwrap();
    ticker.abort();
    ticked
}

#[tokio::test(flavor = "current_thread")]
async fn a_loop_of_calls_that_never_wait_still_yields() {
    let echo = inline_echo();
    let ticked = ticks_during(move |n| {
        let echo = echo.clone();
        async move {
            let reply = echo.call(Envelope::new(1, n.to_le_bytes()), Duration::from_secs(5)).await.unwrap();
            assert_eq!(reply.payload, n.to_le_bytes());
        }
    })
    .await;
    // Tokio's budget is 128 units per poll: 4096 calls give the ticker about 32 turns.
    assert!(ticked >= 16, "the ticker ran {ticked} times during 4096 calls");
}

#[tokio::test(flavor = "current_thread")]
async fn a_loop_of_sends_and_receives_still_yields() {
    let echo = inline_echo();
    let ticked = ticks_during(move |n| {
        let echo = echo.clone();
        async move {
            echo.send(Envelope::new(1, n.to_le_bytes())).await.unwrap();
            let reply = echo.receive_timeout(Duration::from_secs(5)).await.unwrap();
            assert_eq!(reply.payload, n.to_le_bytes());
        }
    })
    .await;
    assert!(ticked >= 16, "the ticker ran {ticked} times during 4096 send + receive");
}
