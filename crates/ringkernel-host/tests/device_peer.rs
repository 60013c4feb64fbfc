//! The engine against a device played by the test through the kernel's memory alone — the control
//! block and the rings, as a GPU would — including a device that lies.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use ringkernel_core::error::RingKernelError;
use ringkernel_core::hlc::{HlcConfig, HybridClock};
use ringkernel_core::layout::{RingGeometry, termination};
use ringkernel_core::memory::{DeviceEnds, KernelLayout, KernelMemory};
use ringkernel_core::message::{Envelope, HeaderPart, SlotBuffer, write_slot};
use ringkernel_core::runtime::{KernelControl, KernelHandle, KernelId, KernelState};
use ringkernel_host::{Device, Doorbell, HostConfig, HostKernel, KernelParts};

/// A device that needs no wake-up: the test drives it.
struct Scripted;

// SAFETY: the tests stop touching the kernel's memory once they report a stop.
unsafe impl Device for Scripted {
    fn wake(&self) {}
}

const CAPACITY: u32 = 8;

/// An active kernel `peer` (with a K2K inbox) over the scripted device; the test plays the device
/// through the returned ends.
fn kernel(config: HostConfig) -> (KernelHandle, Arc<HostKernel>, DeviceEnds) {
    kernel_over(Arc::new(Scripted), config, true)
}

fn kernel_over(
    device: Arc<dyn Device>,
    config: HostConfig,
    active: bool,
) -> (KernelHandle, Arc<HostKernel>, DeviceEnds) {
    let (handle, kernel, ends, _) = kernel_in_region(device, config, active);
    (handle, kernel, ends)
}

/// As `kernel_over`, in a region this test allocates: also returns the region's start (with the
/// allocation's provenance), for a test that writes a slot behind the rings' back, as a device may.
fn kernel_in_region(
    device: Arc<dyn Device>,
    config: HostConfig,
    active: bool,
) -> (KernelHandle, Arc<HostKernel>, DeviceEnds, *mut u8) {
    use ringkernel_core::region::{HeapRegion, REGION_ALIGN_BYTES, Region};
    let ring = RingGeometry::for_messages(CAPACITY, 32).unwrap();
    let layout = KernelLayout::new(ring, ring, Some(RingGeometry::new(4, ring.slot_bytes()).unwrap())).unwrap();
    let region = HeapRegion::zeroed(layout.bytes(), REGION_ALIGN_BYTES).unwrap();
    let base = region.as_ptr();
    let (host, device_ends) = KernelMemory::carve(region, layout, 5, 5).unwrap().split();
    let kernel = HostKernel::new(KernelParts {
        id: KernelId::from("peer"),
        number: 5,
        memory: host,
        device,
        doorbell: Arc::new(Doorbell::new()),
        clock: Arc::new(HybridClock::new(HlcConfig::new(0))),
        config,
        auto_activate: active,
    })
    .unwrap();
    (KernelHandle::engine(kernel.clone()), kernel, device_ends, base)
}

fn quick() -> HostConfig {
    HostConfig {
        spin_before_park: Duration::from_micros(10),
        poll_interval: Duration::from_micros(100),
        ..HostConfig::default()
    }
}

/// Plays the device for one message: takes the oldest request, answers with its payload.
fn answer_one(device: &mut DeviceEnds, buffer: &mut SlotBuffer) -> bool {
    if device.input.try_pop(|slot| slot.copy_message_into(buffer, HeaderPart::Hot)).is_err() {
        return false;
    }
    let request = buffer.decode().expect("the host writes valid slots");
    let reply = request.header.reply(request.header.message_type);
    let payload = request.payload.to_vec();
    device
        .output
        .try_push(|slot| {
            write_slot(slot, &reply, &payload).unwrap();
        })
        .unwrap();
    true
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_that_only_touches_memory_answers_calls() {
    let (handle, _, mut device) = kernel(quick());
    let responder = std::thread::spawn(move || {
        let mut buffer = SlotBuffer::new(device.input.slot_bytes()).unwrap();
        let mut answered = 0;
        while answered < 100 {
            if answer_one(&mut device, &mut buffer) {
                answered += 1;
            } else {
                std::thread::yield_now();
            }
        }
        device
    });
    for i in 0..100u32 {
        let reply = handle.call(Envelope::new(2, i.to_le_bytes()), Duration::from_secs(10)).await.unwrap();
        assert_eq!(reply.payload, i.to_le_bytes());
    }
    let device = responder.join().unwrap();
    assert_eq!(handle.state(), KernelState::Active);
    device.control.block().report_stopped(termination::TERMINATED);
    assert_eq!(handle.state(), KernelState::Terminated);
}

#[tokio::test]
async fn a_device_that_claims_more_output_than_the_ring_holds_fails_the_kernel() {
    let (handle, _, device) = kernel(quick());
    device.control.block().output_tail.store(CAPACITY + 5, Ordering::Release);
    let error = handle.receive_timeout(Duration::from_millis(100)).await.unwrap_err();
    match &error {
        RingKernelError::KernelFault { kernel, reason } => {
            assert_eq!(kernel, "peer");
            assert!(reason.contains("output ring") && reason.contains("tail = 13"), "{reason}");
            assert!(reason.contains("0..=8"), "names the valid range: {reason}");
        }
        other => panic!("expected KernelFault, got {other:?}"),
    }
    assert_eq!(handle.state(), KernelState::Failed);
    assert!(matches!(handle.send(Envelope::new(1, vec![])).await, Err(RingKernelError::KernelFault { .. })));
    assert!(handle.take_unprocessed().is_empty(), "a lying device's memory is not trusted");
    assert!(device.control.has_terminated() || device.control.block().should_terminate.load(Ordering::Acquire) != 0);
}

#[tokio::test]
async fn a_device_that_moves_input_head_past_the_tail_fails_the_kernel_without_overwriting() {
    let (handle, _, device) = kernel(quick());
    for i in 0..CAPACITY {
        handle.send(Envelope::new(1, i.to_le_bytes())).await.unwrap();
    }
    device.control.block().input_head.store(CAPACITY + 3, Ordering::Release);
    match handle.send(Envelope::new(1, *b"more")).await {
        Err(RingKernelError::KernelFault { reason, .. }) => {
            assert!(reason.contains("input ring") && reason.contains("head = 11"), "{reason}")
        }
        other => panic!("expected KernelFault, got {other:?}"),
    }
    assert_eq!(handle.metrics().messages_sent, u64::from(CAPACITY), "nothing was written past the violation");
    assert_eq!(handle.state(), KernelState::Failed);
}

#[tokio::test]
async fn a_device_stop_code_no_version_defines_reads_as_failed_and_is_not_trusted() {
    let (handle, _, device) = kernel(quick());
    handle.send(Envelope::new(1, *b"queued")).await.unwrap();
    device.control.block().report_stopped(7);
    assert_eq!(handle.state(), KernelState::Failed);
    match handle.send(Envelope::new(1, vec![])).await {
        Err(RingKernelError::KernelFault { reason, .. }) => assert!(reason.contains("stop code 7"), "{reason}"),
        other => panic!("expected KernelFault, got {other:?}"),
    }
    assert!(handle.take_unprocessed().is_empty(), "nothing is taken back from a device that broke the contract");
}

/// A device whose memory cannot be synchronised has failed: the send that found out says so.
#[tokio::test]
async fn a_failed_sync_fails_the_kernel_instead_of_losing_the_message() {
    struct Unsyncable;
    // SAFETY: never reports a stop.
    unsafe impl Device for Unsyncable {
        fn wake(&self) {}
        fn sync_to_device(&self) -> ringkernel_core::Result<()> {
            Err(RingKernelError::BackendUnavailable("the staging copy failed".into()))
        }
    }
    let (handle, _, _device) = kernel_over(Arc::new(Unsyncable), quick(), false);
    match handle.send(Envelope::new(1, vec![])).await {
        Err(RingKernelError::KernelFault { reason, .. }) => assert!(reason.contains("staging copy failed"), "{reason}"),
        other => panic!("expected KernelFault, got {other:?}"),
    }
    assert_eq!(handle.state(), KernelState::Failed);
}

/// With the watchdog on, a call to a device whose heartbeat stopped fails as a fault, not a
/// timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watchdog_covers_calls_too() {
    let config = HostConfig { watchdog: Some(Duration::from_millis(50)), ..quick() };
    let (handle, _, _device) = kernel(config);
    match handle.call(Envelope::new(1, vec![]), Duration::from_secs(30)).await {
        Err(RingKernelError::KernelFault { reason, .. }) => assert!(reason.contains("the reply"), "{reason}"),
        other => panic!("expected KernelFault, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deactivate_returns_only_once_the_device_acknowledged() {
    let (handle, kernel, device) = kernel(quick());
    let deactivating = {
        let handle = handle.clone();
        tokio::spawn(async move { handle.deactivate().await })
    };
    tokio::time::sleep(Duration::from_millis(30)).await;
    assert!(!deactivating.is_finished(), "no acknowledgement yet");
    let block = device.control.block();
    let flags = block.poll_control(0).expect("activation and deactivation were announced");
    assert!(!flags.active);
    block.acknowledge(flags.sequence);
    deactivating.await.unwrap().unwrap();
    assert_eq!(kernel.state(), KernelState::Deactivated);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watchdog_turns_a_silent_device_into_an_error() {
    let config = HostConfig { watchdog: Some(Duration::from_millis(50)), ..quick() };
    let (handle, _, _device) = kernel(config);
    let started = std::time::Instant::now();
    match handle.deactivate().await {
        Err(RingKernelError::KernelFault { reason, .. }) => assert!(reason.contains("no heartbeat"), "{reason}"),
        other => panic!("expected KernelFault, got {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn what_a_failed_device_never_handled_is_taken_back_in_order() {
    let (handle, _, mut device) = kernel(quick());
    for i in 0..4u32 {
        handle.send(Envelope::new(1, i.to_le_bytes())).await.unwrap();
    }
    // The device handles one message, then faults: it lets go of its rings, then reports.
    let mut buffer = SlotBuffer::new(device.input.slot_bytes()).unwrap();
    device.input.try_pop(|slot| slot.copy_message_into(&mut buffer, HeaderPart::Hot)).unwrap();
    let block = device.control.block();
    block.messages_processed.store(1, Ordering::Release);
    block.last_error.store(ringkernel_core::error::codes::HANDLER_FAULT, Ordering::Release);
    let DeviceEnds { control, input, output, inbox } = device;
    drop((input, output, inbox));
    control.block().report_stopped(termination::FAILED);

    assert_eq!(handle.state(), KernelState::Failed);
    let returned: Vec<Vec<u8>> = handle.take_unprocessed().into_iter().map(|e| e.payload).collect();
    let expected: Vec<Vec<u8>> = (1..4u32).map(|i| i.to_le_bytes().to_vec()).collect();
    assert_eq!(returned, expected);
    assert!(handle.take_unprocessed().is_empty(), "returned once");
    let metrics = handle.metrics();
    assert_eq!((metrics.messages_sent, metrics.messages_processed, metrics.messages_in_flight), (4, 1, 0));
    match handle.call(Envelope::new(1, vec![]), Duration::from_secs(1)).await {
        Err(RingKernelError::KernelFault { reason, .. }) => assert!(reason.contains("HANDLER_FAULT"), "{reason}"),
        other => panic!("expected KernelFault, got {other:?}"),
    }
    handle.terminate().await.expect("terminating a failed kernel releases it");
}

/// With `input_slot_checks`, every input slot the host publishes carries the check word of its
/// ring position — envelopes, zero-copy batches and raw slots alike, across laps — and the control
/// block says so; without it, the word stays zero.
#[tokio::test]
async fn input_slots_carry_the_check_of_their_position() {
    use ringkernel_core::layout::{MESSAGE_HEADER_BYTES, MessageHeader};
    use ringkernel_core::message::{HeaderBuilder, encode_slot, slot_check_matches};
    let check_at = std::mem::offset_of!(MessageHeader, slot_check);
    for checked in [true, false] {
        let (handle, kernel, mut device) = kernel(HostConfig { input_slot_checks: checked, ..quick() });
        assert_eq!(kernel.control().block().input_slot_checks.load(Ordering::Acquire), u32::from(checked));
        let mut raw = vec![0u8; MESSAGE_HEADER_BYTES + 8];
        encode_slot(&mut raw, &HeaderBuilder::new(9).build(), b"raw!").unwrap();
        let mut position = 0u32;
        // Three laps of the 8-slot ring, each through all three ways of sending.
        for lap in 0..3u32 {
            for i in 0..6u32 {
                handle.send(Envelope::new(1, (lap * 10 + i).to_le_bytes())).await.unwrap();
            }
            handle.send_raw(&raw).await.unwrap();
            let sent = handle
                .send_with(1, |_, message| {
                    message.set_message_type(2);
                    message.write_payload(&lap.to_le_bytes())?;
                    Ok(())
                })
                .unwrap();
            assert_eq!(sent, 1);
            for _ in 0..CAPACITY {
                device
                    .input
                    .try_pop(|slot| {
                        let bytes = slot.to_vec();
                        if checked {
                            assert!(slot_check_matches(position, &bytes), "slot at position {position}");
                            assert!(!slot_check_matches(position.wrapping_sub(CAPACITY), &bytes));
                        } else {
                            assert_eq!(bytes[check_at..check_at + 4], [0; 4], "no check word without the option");
                        }
                    })
                    .unwrap();
                position += 1;
            }
        }
    }
}

/// With `output_slot_checks`, a reply whose tail is published before its last bytes land is not
/// read until its whole-slot check matches (the call waits, then gets it complete); a slot whose
/// check never matches fails the kernel, naming the slot, instead of being read torn.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    miri,
    ignore = "plays a device whose writes land while the host looks at the slot: a data race in Rust's model, \
              not for a device"
)]
async fn output_slots_are_read_only_once_their_check_matches() {
    use ringkernel_core::layout::{MESSAGE_HEADER_BYTES, MessageHeader};
    use ringkernel_core::message::{whole_slot_check, write_whole_slot_check};
    let check_at = std::mem::offset_of!(MessageHeader, slot_check);
    let (handle, kernel, mut device, base) =
        kernel_in_region(Arc::new(Scripted), HostConfig { output_slot_checks: true, ..quick() }, true);
    assert_eq!(kernel.control().block().output_slot_checks.load(Ordering::Acquire), 1);
    let ring = RingGeometry::for_messages(CAPACITY, 32).unwrap();
    let layout = KernelLayout::new(ring, ring, Some(RingGeometry::new(4, ring.slot_bytes()).unwrap())).unwrap();
    let slot_bytes = ring.slot_bytes() as usize;
    // The device's reply to message `n`, written into output position `n` with a check word that
    // is `check_delta` off (its last bytes "not landed yet").
    let answer = |device: &mut DeviceEnds, check_delta: u32| {
        let mut buffer = SlotBuffer::new(slot_bytes).unwrap();
        // The call's task sends it (a while under miri).
        let waiting = std::time::Instant::now();
        while device.input.try_pop(|slot| slot.copy_message_into(&mut buffer, HeaderPart::Hot)).is_err() {
            assert!(waiting.elapsed() < Duration::from_secs(60), "the call never sent its request");
            std::thread::sleep(Duration::from_millis(1));
        }
        let request = buffer.decode().unwrap();
        let reply = request.header.reply(request.header.message_type);
        let payload = request.payload.to_vec();
        let position = device.output.position();
        device
            .output
            .try_push(|slot| {
                write_slot(slot, &reply, &payload).unwrap();
                write_whole_slot_check(position, slot);
                let bad =
                    u32::from_le_bytes(slot[check_at..check_at + 4].try_into().unwrap()).wrapping_add(check_delta);
                slot[check_at..check_at + 4].copy_from_slice(&bad.to_le_bytes());
            })
            .unwrap();
        position
    };
    let slot_at =
        |position: u32| base.wrapping_add(layout.output_offset() + (position % CAPACITY) as usize * slot_bytes);

    // Published incomplete, completed 50 ms later: the call waits for it.
    let call = tokio::spawn({
        let handle = handle.clone();
        async move { handle.call(Envelope::new(3, *b"late"), Duration::from_secs(5)).await }
    });
    tokio::time::sleep(Duration::from_millis(5)).await;
    let position = answer(&mut device, 1);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!call.is_finished(), "an incomplete slot was read");
    // SAFETY: the slot is the device's to write until the host consumes it, which it has not.
    unsafe {
        let slot = std::slice::from_raw_parts_mut(slot_at(position), MESSAGE_HEADER_BYTES + 32);
        let check = whole_slot_check(position, slot);
        slot[check_at..check_at + 4].copy_from_slice(&check.to_le_bytes());
    }
    assert_eq!(call.await.unwrap().unwrap().payload, b"late");

    // Never completed: the kernel fails with the slot named, within the patience and a little.
    let started = std::time::Instant::now();
    let call = tokio::spawn({
        let handle = handle.clone();
        async move { handle.call(Envelope::new(3, *b"torn"), Duration::from_secs(10)).await }
    });
    tokio::time::sleep(Duration::from_millis(5)).await;
    let position = answer(&mut device, 7);
    match call.await.unwrap() {
        Err(RingKernelError::KernelFault { reason, .. }) => {
            assert!(reason.contains(&format!("output slot {position} never became complete")), "{reason}")
        }
        other => panic!("expected the kernel to fail on a slot that never completes, got {other:?}"),
    }
    let slack = if cfg!(miri) { Duration::from_secs(60) } else { Duration::from_secs(2) };
    assert!(started.elapsed() < ringkernel_host::OUTPUT_SLOT_PATIENCE + slack);
    assert_eq!(handle.state(), KernelState::Failed);
}
