//! The hardware's floor, measured in the runtime's own context so that `ringkernel bench` can
//! quote every actor figure as a ratio to it: a raw flag bounced through mapped host memory by a
//! persistent thread (no protocol at all), an empty kernel launch + sync, a one-node CUDA Graph
//! launch + sync, and the traditional offload of one 64-byte message (a graph of copy in, kernel,
//! copy out, launched and synced).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Instant;

use cudarc::driver::sys;
use ringkernel_core::error::{Result, RingKernelError};
use ringkernel_core::region::Region;

use crate::driver::{Context, PinnedRegion, check, create_stream};

/// The floor probes of one runtime's context.
pub struct Floor {
    context: Arc<Context>,
    empty: sys::CUfunction,
    offload: sys::CUfunction,
    pingpong: sys::CUfunction,
    stream: sys::CUstream,
    pinned: PinnedRegion,
    device: u64,
}

// SAFETY: handles are used with the context bound, by one caller at a time (&mut self).
unsafe impl Send for Floor {}

fn unavailable(reason: String) -> RingKernelError {
    RingKernelError::BackendUnavailable(format!("cuda: {reason}"))
}

impl Floor {
    /// `functions`: the probes' empty, offload and ping-pong kernels, loaded with the runtime
    /// (code cannot be loaded while actors run).
    pub(crate) fn new(context: Arc<Context>, functions: [sys::CUfunction; 3]) -> Result<Self> {
        let [empty, offload, pingpong] = functions;
        let stream = create_stream(&context).map_err(unavailable)?;
        let pinned = context.pinned(4096, Arc::new(AtomicBool::new(false)))?;
        let mut device = 0;
        // SAFETY: the context is current (create_stream bound it); 128 bytes of device memory.
        check(unsafe { sys::cuMemAllocAsync(&mut device, 128, stream) }, "cuMemAllocAsync").map_err(unavailable)?;
        Ok(Self { context, empty, offload, pingpong, stream, pinned, device })
    }

    fn word(&self, index: usize) -> &AtomicU32 {
        // SAFETY: the pinned block is 4096 bytes, 64-byte aligned, and lives as long as self; the
        // words are only accessed atomically here and by the probe kernel.
        unsafe { &*self.pinned.as_ptr().cast::<AtomicU32>().add(index) }
    }

    /// Round trips of a flag: the host stores a sequence number, one persistent GPU thread sees it
    /// (acquire, system scope) and stores it back into another line; the host spins until it sees
    /// it. Nanoseconds per round trip.
    pub fn flag_round_trips(&mut self, rounds: usize) -> Result<Vec<u64>> {
        self.context.bind().map_err(unavailable)?;
        self.word(0).store(0, Ordering::SeqCst);
        self.word(16).store(0, Ordering::SeqCst);
        let mut flags = self.pinned.device_address(0);
        let mut params = [(&mut flags as *mut u64).cast::<std::ffi::c_void>()];
        let (function, stream) = (self.pingpong, self.stream);
        // SAFETY: the probe takes one pointer to the pinned block, which outlives it (we wait).
        let r = unsafe {
            sys::cuLaunchKernel(function, 1, 1, 1, 32, 1, 1, 0, stream, params.as_mut_ptr(), std::ptr::null_mut())
        };
        check(r, "launching the ping-pong probe").map_err(unavailable)?;
        let mut times = Vec::with_capacity(rounds);
        let mut failure = None;
        for i in 1..=rounds as u32 {
            let start = Instant::now();
            self.word(0).store(i, Ordering::Release);
            let mut spins = 0u64;
            while self.word(16).load(Ordering::Acquire) != i {
                spins += 1;
                if spins.is_multiple_of(1 << 20) && start.elapsed().as_secs() > 5 {
                    failure = Some(format!("the ping-pong probe stopped answering at round {i}"));
                    break;
                }
                std::hint::spin_loop();
            }
            if failure.is_some() {
                break;
            }
            times.push(start.elapsed().as_nanos() as u64);
        }
        self.word(0).store(u32::MAX, Ordering::Release);
        // SAFETY: waits for the probe on its own stream only.
        check(unsafe { sys::cuStreamSynchronize(self.stream) }, "the ping-pong probe").map_err(unavailable)?;
        match failure {
            Some(reason) => Err(unavailable(reason)),
            None => Ok(times),
        }
    }

    /// Enqueues the empty kernel on the stream (or records it, while capturing).
    fn launch_empty(&self) -> std::result::Result<(), String> {
        let (function, stream) = (self.empty, self.stream);
        // SAFETY: a kernel without parameters on our own stream.
        let r = unsafe {
            sys::cuLaunchKernel(function, 1, 1, 1, 32, 1, 1, 0, stream, std::ptr::null_mut(), std::ptr::null_mut())
        };
        check(r, "cuLaunchKernel")
    }

    /// Nanoseconds of each of `rounds` times `enqueue` + a sync of the stream.
    fn time_synced(
        &self,
        rounds: usize,
        enqueue: impl Fn(&Self) -> std::result::Result<(), String>,
    ) -> Result<Vec<u64>> {
        self.context.bind().map_err(unavailable)?;
        let mut times = Vec::with_capacity(rounds);
        for _ in 0..rounds {
            let start = Instant::now();
            enqueue(self).map_err(unavailable)?;
            // SAFETY: waits for our own stream only.
            check(unsafe { sys::cuStreamSynchronize(self.stream) }, "cuStreamSynchronize").map_err(unavailable)?;
            times.push(start.elapsed().as_nanos() as u64);
        }
        Ok(times)
    }

    /// Empty kernel launch + stream sync, nanoseconds each.
    pub fn launch_round_trips(&mut self, rounds: usize) -> Result<Vec<u64>> {
        self.time_synced(rounds, Self::launch_empty)
    }

    /// Captures `record` on the stream into an executable graph.
    fn capture(&mut self, record: impl FnOnce(&Self) -> std::result::Result<(), String>) -> Result<sys::CUgraphExec> {
        self.context.bind().map_err(unavailable)?;
        let mut graph = std::ptr::null_mut();
        let mut exec = std::ptr::null_mut();
        // SAFETY: capture in relaxed mode on our own stream (other threads' calls are unaffected);
        // the graph is instantiated, then the template destroyed.
        unsafe {
            check(
                sys::cuStreamBeginCapture_v2(self.stream, sys::CUstreamCaptureMode::CU_STREAM_CAPTURE_MODE_RELAXED),
                "cuStreamBeginCapture",
            )
            .map_err(unavailable)?;
            let recorded = record(self);
            let ended = check(sys::cuStreamEndCapture(self.stream, &mut graph), "cuStreamEndCapture");
            recorded.and(ended).map_err(unavailable)?;
            check(sys::cuGraphInstantiateWithFlags(&mut exec, graph, 0), "cuGraphInstantiate").map_err(unavailable)?;
            let _ = sys::cuGraphDestroy(graph);
        }
        Ok(exec)
    }

    fn graph_round_trips(&mut self, exec: sys::CUgraphExec, rounds: usize) -> Result<Vec<u64>> {
        // SAFETY: an instantiated graph on our own stream.
        let times =
            self.time_synced(rounds, |floor| check(unsafe { sys::cuGraphLaunch(exec, floor.stream) }, "cuGraphLaunch"));
        // SAFETY: no launch of it is pending any more.
        unsafe {
            let _ = sys::cuGraphExecDestroy(exec);
        }
        times
    }

    /// A one-node CUDA Graph (the empty kernel) launched + synced, nanoseconds each.
    pub fn graph_launch_round_trips(&mut self, rounds: usize) -> Result<Vec<u64>> {
        let exec = self.capture(Self::launch_empty)?;
        self.graph_round_trips(exec, rounds)
    }

    /// The traditional offload of one 64-byte message: a graph of a 64-byte copy in, a kernel
    /// that answers it, and a 64-byte copy out, launched and synced; nanoseconds each.
    pub fn offload_round_trips(&mut self, rounds: usize) -> Result<Vec<u64>> {
        let host_in = self.pinned.as_ptr().wrapping_add(1024);
        let host_out = self.pinned.as_ptr().wrapping_add(2048);
        let exec = self.capture(|floor| {
            let (mut input, mut output) = (floor.device, floor.device + 64);
            let mut params = [
                (&mut input as *mut u64).cast::<std::ffi::c_void>(),
                (&mut output as *mut u64).cast::<std::ffi::c_void>(),
            ];
            // SAFETY: recorded into the capture; host buffers are pinned and outlive the graph.
            unsafe {
                check(sys::cuMemcpyHtoDAsync_v2(floor.device, host_in.cast(), 64, floor.stream), "copy in")?;
                check(
                    sys::cuLaunchKernel(
                        floor.offload,
                        1,
                        1,
                        1,
                        32,
                        1,
                        1,
                        0,
                        floor.stream,
                        params.as_mut_ptr(),
                        std::ptr::null_mut(),
                    ),
                    "cuLaunchKernel",
                )?;
                check(sys::cuMemcpyDtoHAsync_v2(host_out.cast(), floor.device + 64, 64, floor.stream), "copy out")
            }
        })?;
        let times = self.graph_round_trips(exec, rounds)?;
        // The kernel adds one to each word: check that the offload really ran.
        // SAFETY: 64 bytes of pinned memory, the graph has completed.
        let first = unsafe { std::ptr::read_volatile(host_out.cast::<u32>()) };
        // SAFETY: as above.
        let sent = unsafe { std::ptr::read_volatile(host_in.cast::<u32>()) };
        if first != sent.wrapping_add(1) {
            return Err(unavailable(format!("the offload graph returned {first}, expected {}", sent.wrapping_add(1))));
        }
        Ok(times)
    }
}

impl Drop for Floor {
    fn drop(&mut self) {
        if self.context.bind().is_ok() {
            // SAFETY: stream-ordered free after everything of ours; the stream goes when idle.
            unsafe {
                let _ = sys::cuMemFreeAsync(self.device, self.stream);
                let _ = sys::cuStreamDestroy_v2(self.stream);
            }
        }
    }
}
