//! The hardware's floor, measured in the runtime's own context so that `ringkernel bench` can
//! quote every actor figure as a ratio to it: a raw flag bounced through mapped host memory by a
//! persistent thread (no protocol at all), a 320-byte slot echoed by a persistent warp with one
//! read of host memory per poll, two persistent blocks bouncing a word through global memory,
//! raw host → GPU → host rings of 320-byte slots, an empty kernel launch + sync, a one-node CUDA
//! Graph launch + sync, and the traditional offload of one 64-byte message (a graph of copy in,
//! kernel, copy out, launched and synced).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use cudarc::driver::sys;
use ringkernel_core::error::{Result, RingKernelError};
use ringkernel_core::region::Region;

use crate::compile::{PROBES, compile};
use crate::driver::{Context, DeviceBuffer, DriverError, Module, PinnedRegion, Stream, check};

/// The probe kernels, loaded with the runtime (code cannot be loaded while actors run).
pub(crate) struct Probes {
    _module: Module,
    pub(crate) clock: sys::CUfunction,
    empty: sys::CUfunction,
    offload: sys::CUfunction,
    pingpong: sys::CUfunction,
    slot_echo: sys::CUfunction,
    k2k: sys::CUfunction,
    stream: sys::CUfunction,
}

// SAFETY: function handles may be used from any thread with the context bound.
unsafe impl Send for Probes {}
// SAFETY: as above.
unsafe impl Sync for Probes {}

impl Probes {
    /// Compiles (NVRTC, cached) and loads the probes for `arch`.
    ///
    /// # Errors
    /// A compile error, or the driver's refusal.
    pub(crate) fn load(context: &Context, arch: &'static str) -> Result<Self> {
        let ptx = compile("ringkernel_probes", PROBES, arch)?;
        let module = Module::load(context, &ptx)?;
        Ok(Self {
            clock: module.function("rk_probe_clock")?,
            empty: module.function("rk_probe_empty")?,
            offload: module.function("rk_probe_offload")?,
            pingpong: module.function("rk_probe_pingpong")?,
            slot_echo: module.function("rk_probe_slot_echo")?,
            k2k: module.function("rk_probe_k2k")?,
            stream: module.function("rk_probe_stream")?,
            _module: module,
        })
    }
}

/// The floor probes of one runtime's context.
pub struct Floor {
    context: Arc<Context>,
    probes: Arc<Probes>,
    stream: Arc<Stream>,
    pinned: PinnedRegion,
    device: DeviceBuffer,
}

// SAFETY: handles are used with the context bound, by one caller at a time (&mut self).
unsafe impl Send for Floor {}

/// Launches a probe on `stream` (parameters as `cuLaunchKernel` takes them).
pub(crate) fn launch(
    function: sys::CUfunction,
    blocks: u32,
    threads: u32,
    stream: &Stream,
    params: &mut [*mut std::ffi::c_void],
) -> std::result::Result<(), DriverError> {
    stream.bind()?;
    let params = if params.is_empty() { std::ptr::null_mut() } else { params.as_mut_ptr() };
    // SAFETY: the caller passes the kernel's parameters, whose memory outlives the launch.
    check(
        unsafe {
            sys::cuLaunchKernel(function, blocks, 1, 1, threads, 1, 1, 0, stream.raw(), params, std::ptr::null_mut())
        },
        "cuLaunchKernel",
    )
}

impl Floor {
    pub(crate) fn new(context: Arc<Context>, probes: Arc<Probes>) -> Result<Self> {
        let stream = Arc::new(Stream::new(&context)?);
        let pinned = context.pinned(4096, Arc::new(AtomicBool::new(false)))?;
        let device = DeviceBuffer::zeroed(&stream, 128)?;
        Ok(Self { context, probes, stream, pinned, device })
    }

    fn word(&self, index: usize) -> &AtomicU32 {
        // SAFETY: the pinned block is 4096 bytes, 64-byte aligned, and lives as long as self; the
        // words are only accessed atomically here and by the probe kernels.
        unsafe { &*self.pinned.as_ptr().cast::<AtomicU32>().add(index) }
    }

    /// Round trips of a flag: the host stores a sequence number, one persistent GPU thread sees it
    /// (acquire, system scope) and stores it back into another line; the host spins until it sees
    /// it. Nanoseconds per round trip.
    ///
    /// # Errors
    /// [`RingKernelError::BackendUnavailable`] when the probe cannot run or stops answering.
    pub fn flag_round_trips(&mut self, rounds: usize) -> Result<Vec<u64>> {
        self.word(0).store(0, Ordering::SeqCst);
        self.word(16).store(0, Ordering::SeqCst);
        let mut flags = self.pinned.device_address(0);
        launch(self.probes.pingpong, 1, 32, &self.stream, &mut [(&mut flags as *mut u64).cast()])?;
        let times = self.host_round_trips(rounds, "the ping-pong probe", |floor, i| {
            floor.word(0).store(i, Ordering::Release);
            while floor.word(16).load(Ordering::Acquire) != i {
                std::hint::spin_loop();
            }
            true
        });
        self.word(0).store(u32::MAX, Ordering::Release);
        self.stream.synchronize("the ping-pong probe")?;
        times
    }

    /// Round trips of a 320-byte slot through a persistent warp that reads the slot's first line
    /// and payload line in one round trip per poll and accepts it by its sequence and the sum of
    /// its payload words, then writes the payload + 1 back with its sequence behind one release
    /// store (`rk_probe_slot_echo`): the bus's own cost of a one-read message echo, no protocol.
    /// Nanoseconds per round trip; every reply is checked.
    ///
    /// # Errors
    /// [`RingKernelError::BackendUnavailable`] when the probe cannot run, stops answering, or
    /// answers wrong.
    pub fn slot_echo_round_trips(&mut self, rounds: usize) -> Result<Vec<u64>> {
        // The block: input slot at 0, output slot at 1024 (320 bytes each).
        for i in (0..1024).step_by(1) {
            self.word(i).store(0, Ordering::Relaxed);
        }
        let (mut input, mut output) = (self.pinned.device_address(0), self.pinned.device_address(1024));
        launch(
            self.probes.slot_echo,
            1,
            32,
            &self.stream,
            &mut [(&mut input as *mut u64).cast(), (&mut output as *mut u64).cast()],
        )?;
        let mut wrong = None;
        let times = self.host_round_trips(rounds, "the slot echo probe", |floor, i| {
            let mut sum = 0u32;
            for k in 0..16u32 {
                let word = i.wrapping_mul(16).wrapping_add(k);
                floor.word(64 + k as usize).store(word, Ordering::Relaxed);
                sum = sum.wrapping_add(word);
            }
            floor.word(1).store(sum, Ordering::Relaxed);
            floor.word(0).store(i, Ordering::Release);
            while floor.word(256).load(Ordering::Acquire) != i {
                std::hint::spin_loop();
            }
            for k in 0..16u32 {
                let got = floor.word(256 + 64 + k as usize).load(Ordering::Relaxed);
                if got != i.wrapping_mul(16).wrapping_add(k).wrapping_add(1) && wrong.is_none() {
                    wrong = Some(format!("the slot echo probe answered {got} for word {k} of round {i}"));
                }
            }
            true
        });
        self.word(0).store(u32::MAX, Ordering::Release);
        self.stream.synchronize("the slot echo probe")?;
        match wrong {
            Some(reason) => Err(RingKernelError::BackendUnavailable(reason)),
            None => times,
        }
    }

    /// Times `round(self, i)` for i = 1..=rounds; a round that does not come back within 5 s
    /// fails with `probe` named.
    fn host_round_trips(
        &self,
        rounds: usize,
        probe: &str,
        mut round: impl FnMut(&Self, u32) -> bool,
    ) -> Result<Vec<u64>> {
        let mut times = Vec::with_capacity(rounds);
        let limit = Instant::now() + Duration::from_secs(5 + rounds as u64 / 10_000);
        for i in 1..=rounds as u32 {
            let start = Instant::now();
            round(self, i);
            times.push(start.elapsed().as_nanos() as u64);
            if Instant::now() > limit {
                return Err(RingKernelError::BackendUnavailable(format!(
                    "{probe} is too slow: round {i} of {rounds} after the time limit"
                )));
            }
        }
        Ok(times)
    }

    /// Round trips of a word between two persistent blocks through global memory
    /// (`rk_probe_k2k`), timed on the device: the floor of a K2K hop. Nanoseconds each.
    ///
    /// # Errors
    /// [`RingKernelError::BackendUnavailable`] when the probe cannot run.
    pub fn k2k_round_trips(&mut self, rounds: usize) -> Result<Vec<u64>> {
        let lines = DeviceBuffer::zeroed(&self.stream, 256)?;
        let times = DeviceBuffer::zeroed(&self.stream, rounds * 8)?;
        let (mut lines_address, mut rounds_arg, mut times_address) = (lines.address(), rounds as u32, times.address());
        launch(
            self.probes.k2k,
            2,
            32,
            &self.stream,
            &mut [
                (&mut lines_address as *mut u64).cast(),
                (&mut rounds_arg as *mut u32).cast(),
                (&mut times_address as *mut u64).cast(),
            ],
        )?;
        self.stream.synchronize("the K2K floor probe")?;
        let mut out = vec![0u64; rounds];
        // SAFETY: `rounds` u64s of writable host memory; the buffer holds as many.
        unsafe { times.download_to(out.as_mut_ptr().cast(), rounds * 8)? };
        Ok(out)
    }

    /// Raw rings host → GPU → host of 320-byte slots, no protocol (`rk_probe_stream`): `rings`
    /// ring pairs of `capacity` slots, one GPU block each, driven by `host_threads` host threads
    /// (each keeps its rings full and checks every echo), `messages` per ring. Returns messages
    /// per second over all rings.
    ///
    /// # Errors
    /// [`RingKernelError::BackendUnavailable`] when the probe cannot run, stalls, or answers wrong;
    /// [`RingKernelError::InvalidConfig`] for a capacity that is not a power of two.
    pub fn stream_messages_per_s(
        &mut self,
        rings: usize,
        host_threads: usize,
        capacity: u32,
        messages: u64,
    ) -> Result<f64> {
        if !capacity.is_power_of_two() || rings == 0 || host_threads == 0 {
            return Err(RingKernelError::InvalidConfig {
                field: "stream floor",
                reason: format!("{rings} rings, {host_threads} threads, capacity {capacity} (a power of two)"),
            });
        }
        let ring_bytes = 256 + 2 * 320 * capacity as usize;
        let region = self.context.pinned(ring_bytes * rings, Arc::new(AtomicBool::new(false)))?;
        let mut base = region.device_address(0);
        let (mut ring_bytes_arg, mut capacity_arg) = (ring_bytes as u32, capacity);
        let host = region.as_ptr() as usize;
        launch(
            self.probes.stream,
            rings as u32,
            32,
            &self.stream,
            &mut [
                (&mut base as *mut u64).cast(),
                (&mut ring_bytes_arg as *mut u32).cast(),
                (&mut capacity_arg as *mut u32).cast(),
            ],
        )?;
        let word = move |ring: usize, byte: usize| -> &'static AtomicU32 {
            // SAFETY: inside the region (kept alive until the probe ended, below), 4-aligned; the
            // words are accessed atomically here and by the probe.
            unsafe { &*((host + ring * ring_bytes + byte) as *const AtomicU32) }
        };
        let started = Instant::now();
        let failure: Option<String> = std::thread::scope(|scope| {
            let workers: Vec<_> = (0..host_threads)
                .map(|t| {
                    scope.spawn(move || -> Option<String> {
                        let mine: Vec<usize> = (t..rings).step_by(host_threads).collect();
                        let mut sent = vec![0u32; mine.len()];
                        let mut received = vec![0u32; mine.len()];
                        let deadline = Instant::now() + Duration::from_secs(60);
                        while received.iter().any(|r| u64::from(*r) < messages) {
                            if Instant::now() > deadline {
                                return Some("the stream floor probe stalled".into());
                            }
                            for (k, &ring) in mine.iter().enumerate() {
                                // Fill what the device has echoed (its output tail bounds its input head).
                                let echoed = word(ring, 64).load(Ordering::Acquire);
                                let mut published = false;
                                while sent[k].wrapping_sub(received[k]) < capacity
                                    && u64::from(sent[k]) < messages
                                    && sent[k].wrapping_sub(echoed) < capacity
                                {
                                    let slot = 256 + 320 * (sent[k] & (capacity - 1)) as usize;
                                    word(ring, slot).store(sent[k], Ordering::Relaxed);
                                    for w in 0..16 {
                                        word(ring, slot + 256 + 4 * w)
                                            .store(sent[k].wrapping_add(w as u32), Ordering::Relaxed);
                                    }
                                    sent[k] += 1;
                                    published = true;
                                }
                                if published {
                                    word(ring, 0).store(sent[k], Ordering::Release);
                                }
                                let mut consumed = false;
                                while received[k] != echoed {
                                    let slot = 256 + 320 * (capacity + (received[k] & (capacity - 1))) as usize;
                                    let first = word(ring, slot + 256).load(Ordering::Relaxed);
                                    if word(ring, slot).load(Ordering::Relaxed) != received[k]
                                        || first != received[k].wrapping_add(1)
                                    {
                                        return Some(format!(
                                            "the stream floor probe echoed slot {} wrong",
                                            received[k]
                                        ));
                                    }
                                    received[k] += 1;
                                    consumed = true;
                                }
                                if consumed {
                                    word(ring, 8).store(received[k], Ordering::Release);
                                }
                            }
                        }
                        None
                    })
                })
                .collect();
            workers
                .into_iter()
                .find_map(|worker| worker.join().unwrap_or_else(|_| Some("a floor thread panicked".into())))
        });
        let seconds = started.elapsed().as_secs_f64();
        for ring in 0..rings {
            word(ring, 4).store(1, Ordering::Release);
        }
        self.stream.synchronize("the stream floor probe")?;
        drop(region);
        match failure {
            Some(reason) => Err(RingKernelError::BackendUnavailable(reason)),
            None => Ok((messages * rings as u64) as f64 / seconds),
        }
    }

    /// Enqueues the empty kernel on the stream (or records it, while capturing).
    fn launch_empty(&self) -> std::result::Result<(), DriverError> {
        launch(self.probes.empty, 1, 32, &self.stream, &mut [])
    }

    /// Nanoseconds of each of `rounds` times `enqueue` + a sync of the stream.
    fn time_synced(
        &self,
        rounds: usize,
        enqueue: impl Fn(&Self) -> std::result::Result<(), DriverError>,
    ) -> Result<Vec<u64>> {
        let mut times = Vec::with_capacity(rounds);
        for _ in 0..rounds {
            let start = Instant::now();
            enqueue(self)?;
            self.stream.synchronize("cuStreamSynchronize")?;
            times.push(start.elapsed().as_nanos() as u64);
        }
        Ok(times)
    }

    /// Empty kernel launch + stream sync, nanoseconds each.
    ///
    /// # Errors
    /// The driver's refusal.
    pub fn launch_round_trips(&mut self, rounds: usize) -> Result<Vec<u64>> {
        self.time_synced(rounds, Self::launch_empty)
    }

    /// Captures `record` on the stream into an executable graph.
    fn capture(
        &mut self,
        record: impl FnOnce(&Self) -> std::result::Result<(), DriverError>,
    ) -> Result<sys::CUgraphExec> {
        self.stream.bind()?;
        let mut graph = std::ptr::null_mut();
        let mut exec = std::ptr::null_mut();
        let stream = self.stream.raw();
        // SAFETY: capture in relaxed mode on our own stream (other threads' calls are unaffected);
        // the graph is instantiated, then the template destroyed.
        unsafe {
            check(
                sys::cuStreamBeginCapture_v2(stream, sys::CUstreamCaptureMode::CU_STREAM_CAPTURE_MODE_RELAXED),
                "cuStreamBeginCapture",
            )?;
            let recorded = record(self);
            let ended = check(sys::cuStreamEndCapture(stream, &mut graph), "cuStreamEndCapture");
            recorded.and(ended)?;
            check(sys::cuGraphInstantiateWithFlags(&mut exec, graph, 0), "cuGraphInstantiate")?;
            let _ = sys::cuGraphDestroy(graph);
        }
        Ok(exec)
    }

    fn graph_round_trips(&mut self, exec: sys::CUgraphExec, rounds: usize) -> Result<Vec<u64>> {
        let times = self.time_synced(rounds, |floor| {
            // SAFETY: an instantiated graph on our own stream.
            let launched = unsafe { sys::cuGraphLaunch(exec, floor.stream.raw()) };
            check(launched, "cuGraphLaunch")
        });
        // SAFETY: no launch of it is pending any more.
        unsafe {
            let _ = sys::cuGraphExecDestroy(exec);
        }
        times
    }

    /// A one-node CUDA Graph (the empty kernel) launched + synced, nanoseconds each.
    ///
    /// # Errors
    /// The driver's refusal.
    pub fn graph_launch_round_trips(&mut self, rounds: usize) -> Result<Vec<u64>> {
        let exec = self.capture(Self::launch_empty)?;
        self.graph_round_trips(exec, rounds)
    }

    /// The traditional offload of one 64-byte message: a graph of a 64-byte copy in, a kernel
    /// that answers it, and a 64-byte copy out, launched and synced; nanoseconds each.
    ///
    /// # Errors
    /// The driver's refusal, or a graph that did not compute the answer.
    pub fn offload_round_trips(&mut self, rounds: usize) -> Result<Vec<u64>> {
        let host_in = self.pinned.as_ptr().wrapping_add(2048);
        let host_out = self.pinned.as_ptr().wrapping_add(3072);
        let device = self.device.address();
        let exec = self.capture(|floor| {
            let (mut input, mut output) = (device, device + 64);
            let stream = floor.stream.raw();
            // SAFETY: recorded into the capture; host buffers are pinned and outlive the graph.
            unsafe { check(sys::cuMemcpyHtoDAsync_v2(device, host_in.cast(), 64, stream), "copy in")? };
            launch(
                floor.probes.offload,
                1,
                32,
                &floor.stream,
                &mut [(&mut input as *mut u64).cast(), (&mut output as *mut u64).cast()],
            )?;
            // SAFETY: as above.
            unsafe { check(sys::cuMemcpyDtoHAsync_v2(host_out.cast(), device + 64, 64, stream), "copy out") }
        })?;
        let times = self.graph_round_trips(exec, rounds)?;
        // The kernel adds one to each word: check that the offload really ran.
        // SAFETY: 64 bytes of pinned memory, the graph has completed.
        let first = unsafe { std::ptr::read_volatile(host_out.cast::<u32>()) };
        // SAFETY: as above.
        let sent = unsafe { std::ptr::read_volatile(host_in.cast::<u32>()) };
        if first != sent.wrapping_add(1) {
            return Err(RingKernelError::BackendUnavailable(format!(
                "the offload graph returned {first}, expected {}",
                sent.wrapping_add(1)
            )));
        }
        Ok(times)
    }
}
