//! What the device backends' benchmarks share (`ringkernel bench --backend cuda|wgpu`): timed
//! `call()` round trips of an echo actor, and zero-copy streaming through several echo actors
//! driven by a few host threads. Every reply is checked.

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use ringkernel::message::HeaderBuilder;
use ringkernel::prelude::*;

/// How long a round trip or a stalled stream may take before the run fails.
pub const TIMEOUT: Duration = Duration::from_secs(30);

/// Payload bytes of the round-trip and streaming messages.
pub const PAYLOAD: usize = 64;
/// Messages per zero-copy batch when streaming.
pub const STREAM_BATCH: usize = 64;

fn wrong(kernel: &str, reason: String) -> RingKernelError {
    RingKernelError::KernelFault { kernel: kernel.into(), reason }
}

/// `rounds` sequential `call()`s of `echo` with a 64-byte payload (full header, HLC stamps and a
/// CRC32C checksum on both hops), each timed on its own; nanoseconds each.
///
/// # Errors
/// The first failed call, or a reply that differs from its request.
pub fn call_round_trips(tokio: &tokio::runtime::Runtime, echo: &KernelHandle, rounds: usize) -> Result<Vec<u64>> {
    tokio.block_on(async {
        let mut times = Vec::with_capacity(rounds);
        let mut payload = [0u8; PAYLOAD];
        for i in 0..rounds as u64 {
            payload[..8].copy_from_slice(&i.to_le_bytes());
            let request = Envelope::with_header(HeaderBuilder::new(1).checksum(true).build(), payload.to_vec());
            let start = Instant::now();
            let reply = echo.call(request, TIMEOUT).await?;
            times.push(start.elapsed().as_nanos() as u64);
            if reply.payload != payload {
                return Err(wrong(echo.id().as_str(), format!("reply {i} differs")));
            }
        }
        Ok(times)
    })
}

/// One actor's stream as a host thread drives it.
struct Lane {
    actor: KernelHandle,
    sent: u64,
    received: u64,
    wrong: Option<u64>,
}

/// Streams `per_actor` 64-byte messages through each of `actors` (echo actors) from
/// `host_threads` threads, each driving its share of the actors round-robin: zero-copy batches of
/// up to [`STREAM_BATCH`] with at most `window` messages in flight per actor, every reply checked
/// for order and content. Returns messages per second over all actors.
///
/// # Errors
/// A failed send or receive, a reply out of order or wrong, or a stream that stalls for
/// [`TIMEOUT`].
pub fn stream(actors: &[KernelHandle], host_threads: usize, per_actor: u64, window: u64) -> Result<f64> {
    let host_threads = host_threads.clamp(1, actors.len().max(1));
    let barrier = Arc::new(Barrier::new(host_threads + 1));
    let threads: Vec<_> = (0..host_threads)
        .map(|t| {
            let mine: Vec<KernelHandle> = actors.iter().skip(t).step_by(host_threads).cloned().collect();
            let barrier = barrier.clone();
            std::thread::spawn(move || -> Result<()> {
                let mut lanes: Vec<Lane> =
                    mine.into_iter().map(|actor| Lane { actor, sent: 0, received: 0, wrong: None }).collect();
                barrier.wait();
                let mut last_progress = Instant::now();
                while lanes.iter().any(|lane| lane.received < per_actor) {
                    let mut progress = false;
                    for lane in &mut lanes {
                        let room =
                            (per_actor - lane.sent).min(window - (lane.sent - lane.received)).min(STREAM_BATCH as u64);
                        if room > 0 {
                            let first = lane.sent;
                            let sent = lane.actor.send_with(room as usize, |i, message| {
                                message.set_message_type(1);
                                message.payload_mut(PAYLOAD)?[..8].copy_from_slice(&(first + i as u64).to_le_bytes());
                                Ok(())
                            })? as u64;
                            lane.sent += sent;
                            progress |= sent > 0;
                        }
                        let Lane { actor, received, wrong, .. } = lane;
                        let got = actor.try_receive_with(STREAM_BATCH, |reply| {
                            if reply.payload.len() != PAYLOAD || reply.payload[..8] != received.to_le_bytes() {
                                wrong.get_or_insert(*received);
                            }
                            *received += 1;
                        })?;
                        progress |= got > 0;
                    }
                    if progress {
                        last_progress = Instant::now();
                    } else if last_progress.elapsed() > TIMEOUT {
                        return Err(wrong("stream", format!("no progress for {TIMEOUT:?}")));
                    } else {
                        std::hint::spin_loop();
                    }
                }
                match lanes.iter().find_map(|lane| lane.wrong.map(|at| (lane.actor.id().clone(), at))) {
                    None => Ok(()),
                    Some((id, at)) => Err(wrong(id.as_str(), format!("streamed reply {at} out of order or wrong"))),
                }
            })
        })
        .collect();
    barrier.wait();
    let start = Instant::now();
    for thread in threads {
        thread.join().map_err(|_| wrong("stream", "a streaming thread panicked".into()))??;
    }
    Ok((per_actor * actors.len() as u64) as f64 / start.elapsed().as_secs_f64())
}

/// Host threads a streaming run uses by default for `actors` actors: one per actor, at most half
/// of this machine's cores (the rest run the engine's other work and the OS).
pub fn default_host_threads(actors: usize) -> usize {
    let cores = std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get);
    actors.min((cores / 2).max(1))
}
