//! The kernels the suite launches, by name. Backends other than `cpu` give the same names the same
//! behaviour in their own languages.

use ringkernel_core::hlc::HlcTimestamp;
use ringkernel_core::kernel::{HandlerError, KernelRegistry, KernelSpec};
use ringkernel_core::message::{RingMessage, message_type_id};
use ringkernel_core::runtime::KernelId;

/// Echoes, but panics on the payload `b"panic"`.
pub const PANICKER: &str = "panicker";
/// Echoes, but returns a handler error on the payload `b"bad"`.
pub const FALLIBLE: &str = "fallible";
/// First stage of the K2K pipeline: records its timestamps and forwards to [`STAGE2`].
pub const STAGE1: &str = "stage1";
/// Second stage: records its timestamps and emits the record to the host; refuses values at or
/// above [`STAGE2_LIMIT`].
pub const STAGE2: &str = "stage2";
/// Forwards each message to [`SINK`] over K2K, then acknowledges the caller with an empty reply.
pub const RELAY: &str = "relay";
/// Emits every message it receives to the host.
pub const SINK: &str = "sink";
/// Emits a progress message carrying the request's correlation id (not a reply), then replies
/// with the payload: a call must get the reply, `receive` the progress message.
pub const PROGRESS: &str = "progress";
/// Message type of `progress`'s progress messages.
pub const PROGRESS_NOTE: u32 = 0x0000_9001;
/// Busy-waits [`SLOW_HANDLER_US`] µs, then echoes: keeps messages queued while the test acts.
pub const SLOW: &str = "slow";
/// How long `slow` works on each message.
pub const SLOW_HANDLER_US: u64 = 200;
/// Works on each message for as long as its payload's first `u32` says (milliseconds; a handler
/// without a clock, WGSL, works through as much arithmetic as its loop limit allows instead),
/// then echoes: holds a kernel in the middle of a message while the test queues more behind it.
pub const HOLD: &str = "hold";

/// Stage 2 refuses values at or above this (its error report then travels back over K2K).
pub const STAGE2_LIMIT: u64 = 1_000_000;
/// Message type of pipeline records.
pub const PIPELINE_RECORD: u32 = message_type_id("ringkernel_conformance::PipelineRecord");

impl RingMessage for PipelineRecord {
    const MESSAGE_TYPE: u32 = PIPELINE_RECORD;
}

/// A typed request the suite sends to `echo`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct Probe {
    /// Which sender.
    pub sender: u32,
    /// Sequence number within the sender.
    pub sequence: u32,
    /// Arbitrary data.
    pub value: u64,
}

impl RingMessage for Probe {
    const MESSAGE_TYPE: u32 = message_type_id("ringkernel_conformance::Probe");
}

/// What the pipeline records at each hop: timestamps as sent and as received.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct PipelineRecord {
    /// The host's send timestamp, as stage 1 saw it in the header.
    pub host_sent: HlcTimestamp,
    /// Stage 1's clock after receiving.
    pub stage1_received: HlcTimestamp,
    /// Stage 1's send timestamp, as stage 2 saw it in the header.
    pub stage1_sent: HlcTimestamp,
    /// Stage 2's clock after receiving.
    pub stage2_received: HlcTimestamp,
    /// The value carried through, doubled by stage 1 and incremented by stage 2.
    pub value: u64,
    /// Padding to a multiple of 16 bytes.
    pub reserved: u64,
}

fn echo_unless(
    trigger: &'static [u8],
    fault: fn(),
) -> impl Fn(&mut ringkernel_core::kernel::HandlerContext<'_>) -> Result<(), HandlerError> {
    move |ctx| {
        if ctx.payload() == trigger {
            fault();
            return Err(HandlerError(format!("refused payload {:?}", String::from_utf8_lossy(trigger))));
        }
        let (message_type, payload) = (ctx.message_type(), ctx.payload());
        Ok(ctx.reply(message_type, payload)?)
    }
}

/// CUDA C versions of the suite's kernels (the `cuda` backend's handler ABI), beside the CPU
/// closures below. Constants the kernels need are prepended as `#define`s by [`cuda_source`].
pub mod cuda {
    /// Echoes; fails the actor on the payload `panic` (the CPU kernel panics).
    pub const PANICKER: &str = r#"
__device__ bool rk_payload_is(const RkContext& ctx, const char* text, unsigned int len) {
    if (ctx.payload_bytes != len) return false;
    for (unsigned int i = 0; i < len; ++i) if (ctx.payload[i] != (unsigned char)text[i]) return false;
    return true;
}
__device__ void rk_handle(RkContext& ctx) {
    if (rk_payload_is(ctx, "panic", 5)) {
        rk_fail(ctx, "handler failed: asked to panic");
        return;
    }
    if (rk_reply(ctx, ctx.message_type, ctx.payload, ctx.payload_bytes) != RK_OK) rk_error(ctx, nullptr);
}
"#;

    /// Echoes; refuses the payload `bad` with a handler error.
    pub const FALLIBLE: &str = r#"
__device__ void rk_handle(RkContext& ctx) {
    if (ctx.payload_bytes == 3 && ctx.payload[0] == 'b' && ctx.payload[1] == 'a' && ctx.payload[2] == 'd') {
        rk_error(ctx, "refused payload \"bad\"");
        return;
    }
    if (rk_reply(ctx, ctx.message_type, ctx.payload, ctx.payload_bytes) != RK_OK) rk_error(ctx, nullptr);
}
"#;

    /// The pipeline record as device code sees it.
    pub const PIPELINE_RECORD_DECL: &str = r#"
struct RkStamp { unsigned long long physical; unsigned int logical; unsigned int node; };
struct PipelineRecord {
    RkStamp host_sent, stage1_received, stage1_sent, stage2_received;
    unsigned long long value, reserved;
};
static_assert(sizeof(PipelineRecord) == 80, "PipelineRecord is 80 bytes");
__device__ RkStamp rk_stamp(RkTimestamp t) { RkStamp s; s.physical = t.physical; s.logical = t.logical; s.node = t.node; return s; }
"#;

    /// Stage 1: records its timestamps, doubles the value, forwards to `stage2`.
    pub const STAGE1: &str = r#"
__device__ void rk_handle(RkContext& ctx) {
    __shared__ PipelineRecord record;
    if (ctx.payload_bytes != sizeof(PipelineRecord)) {
        rk_error(ctx, "payload does not match the 80-byte PipelineRecord");
        return;
    }
    if (threadIdx.x == 0) {
        memcpy(&record, ctx.payload, sizeof(PipelineRecord));
        record.host_sent = rk_stamp(rk_header_timestamp(ctx.header));
        record.stage1_received = rk_stamp(ctx.received_at);
        record.value *= 2;
    }
    __syncthreads();
    if (rk_send_to(ctx, "stage2", PIPELINE_RECORD_TYPE, &record, sizeof(PipelineRecord)) != RK_OK) rk_error(ctx, nullptr);
}
"#;

    /// Stage 2: refuses values at or above the limit, else records and emits to the host.
    pub const STAGE2: &str = r#"
__device__ void rk_handle(RkContext& ctx) {
    __shared__ PipelineRecord record;
    if (ctx.payload_bytes != sizeof(PipelineRecord)) {
        rk_error(ctx, "payload does not match the 80-byte PipelineRecord");
        return;
    }
    if (threadIdx.x == 0) memcpy(&record, ctx.payload, sizeof(PipelineRecord));
    __syncthreads();
    if (record.value >= STAGE2_LIMIT) {
        rk_error(ctx, "value is over the limit");
        return;
    }
    if (threadIdx.x == 0) {
        record.stage1_sent = rk_stamp(rk_header_timestamp(ctx.header));
        record.stage2_received = rk_stamp(ctx.received_at);
        record.value += 1;
    }
    __syncthreads();
    if (rk_emit(ctx, PIPELINE_RECORD_TYPE, &record, sizeof(PipelineRecord)) != RK_OK) rk_error(ctx, nullptr);
}
"#;

    /// Forwards to `sink` over K2K, then acknowledges with an empty reply.
    pub const RELAY: &str = r#"
__device__ void rk_handle(RkContext& ctx) {
    if (rk_send_to(ctx, "sink", ctx.message_type, ctx.payload, ctx.payload_bytes) != RK_OK) {
        rk_error(ctx, nullptr);
        return;
    }
    if (rk_reply(ctx, ctx.message_type, nullptr, 0) != RK_OK) rk_error(ctx, nullptr);
}
"#;

    /// Emits every message to the host.
    pub const SINK: &str = r#"
__device__ void rk_handle(RkContext& ctx) {
    if (rk_emit(ctx, ctx.message_type, ctx.payload, ctx.payload_bytes) != RK_OK) rk_error(ctx, nullptr);
}
"#;

    /// Emits a progress note, then replies with the payload.
    pub const PROGRESS: &str = r#"
__device__ void rk_handle(RkContext& ctx) {
    if (rk_emit(ctx, PROGRESS_NOTE, "working", 7) != RK_OK) { rk_error(ctx, nullptr); return; }
    if (rk_reply(ctx, ctx.message_type, ctx.payload, ctx.payload_bytes) != RK_OK) rk_error(ctx, nullptr);
}
"#;

    /// Busy-waits the payload's first u32 in milliseconds, then echoes.
    pub const HOLD: &str = r#"
__device__ void rk_handle(RkContext& ctx) {
    unsigned int ms = 0;
    if (ctx.payload_bytes >= 4) memcpy(&ms, ctx.payload, 4);
    unsigned long long start = rk_globaltimer();
    while (rk_globaltimer() - start < ms * 1000000ull) { }
    __syncthreads();
    if (rk_reply(ctx, ctx.message_type, ctx.payload, ctx.payload_bytes) != RK_OK) rk_error(ctx, nullptr);
}
"#;

    /// Busy-waits `SLOW_HANDLER_US`, then echoes.
    pub const SLOW: &str = r#"
__device__ void rk_handle(RkContext& ctx) {
    unsigned long long start = rk_globaltimer();
    while (rk_globaltimer() - start < SLOW_HANDLER_US * 1000ull) { }
    __syncthreads();
    if (rk_reply(ctx, ctx.message_type, ctx.payload, ctx.payload_bytes) != RK_OK) rk_error(ctx, nullptr);
}
"#;
}

/// WGSL versions of the suite's kernels (the `wgpu`/`metal` handler ABI in `ringkernel-wgpu`),
/// beside the CPU closures below. Constants they use are prepended by [`wgsl_source`].
pub mod wgsl {
    /// Echoes; fails the actor on the payload `panic` (the CPU kernel panics).
    pub const PANICKER: &str = r#"
fn rk_handle() {
    if (rk_payload_is("panic")) {
        rk_fail("handler failed: asked to panic");
        return;
    }
    if (rk_reply(rk_message_type(), rk_out_payload()) != RK_OK) {
        rk_error(RK_SEND_REASON);
    }
}
"#;

    /// Echoes; refuses the payload `bad` with a handler error.
    pub const FALLIBLE: &str = r#"
fn rk_handle() {
    if (rk_payload_is("bad")) {
        rk_error("refused payload \"bad\"");
        return;
    }
    if (rk_reply(rk_message_type(), rk_out_payload()) != RK_OK) {
        rk_error(RK_SEND_REASON);
    }
}
"#;

    /// Stage 1: records its timestamps, doubles the value, forwards to `stage2`.
    pub const STAGE1: &str = r#"
fn rk_handle() {
    if (rk_payload_len() != 80u) {
        rk_error("payload does not match the 80-byte PipelineRecord");
        return;
    }
    let len = rk_out_payload();
    rk_out_stamp(0u, rk_header_stamp());
    rk_out_stamp(4u, rk_received_at());
    let value = vec2<u32>(rk_payload_word(16u), rk_payload_word(17u));
    let doubled = rk_add64(value, value);
    rk_out_word(16u, doubled.x);
    rk_out_word(17u, doubled.y);
    if (rk_send_to("stage2", PIPELINE_RECORD_TYPE, len) != RK_OK) {
        rk_error(RK_SEND_REASON);
    }
}
"#;

    /// Stage 2: refuses values at or above the limit, else records and emits to the host.
    pub const STAGE2: &str = r#"
fn rk_handle() {
    if (rk_payload_len() != 80u) {
        rk_error("payload does not match the 80-byte PipelineRecord");
        return;
    }
    let value = vec2<u32>(rk_payload_word(16u), rk_payload_word(17u));
    if (value.y != 0u || value.x >= STAGE2_LIMIT) {
        rk_error("value is over the limit");
        return;
    }
    let len = rk_out_payload();
    rk_out_stamp(8u, rk_header_stamp());
    rk_out_stamp(12u, rk_received_at());
    let next = rk_add64(value, vec2<u32>(1u, 0u));
    rk_out_word(16u, next.x);
    rk_out_word(17u, next.y);
    if (rk_emit(PIPELINE_RECORD_TYPE, len) != RK_OK) {
        rk_error(RK_SEND_REASON);
    }
}
"#;

    /// Forwards to `sink` over K2K, then acknowledges with an empty reply.
    pub const RELAY: &str = r#"
fn rk_handle() {
    if (rk_send_to("sink", rk_message_type(), rk_out_payload()) != RK_OK) {
        rk_error(RK_SEND_REASON);
        return;
    }
    if (rk_reply(rk_message_type(), 0u) != RK_OK) {
        rk_error(RK_SEND_REASON);
    }
}
"#;

    /// Emits every message to the host.
    pub const SINK: &str = r#"
fn rk_handle() {
    if (rk_emit(rk_message_type(), rk_out_payload()) != RK_OK) {
        rk_error(RK_SEND_REASON);
    }
}
"#;

    /// Emits a progress note, then replies with the payload.
    pub const PROGRESS: &str = r#"
fn rk_handle() {
    if (rk_emit(PROGRESS_NOTE, rk_out_lit("working")) != RK_OK) {
        rk_error(RK_SEND_REASON);
        return;
    }
    if (rk_reply(rk_message_type(), rk_out_payload()) != RK_OK) {
        rk_error(RK_SEND_REASON);
    }
}
"#;

    /// Works through dependent arithmetic in proportion to the payload's first word (WGSL has no
    /// clock; one loop nest stays under lavapipe's limit), then echoes.
    pub const HOLD: &str = r#"
fn rk_hold_step(x: u32) -> u32 {
    // A multiply-add chain alone is affine and compilers fold it into one; the xor-shift keeps
    // every step a step.
    var y = x;
    y = (y * 1664525u + 1013904223u) ^ (y >> 13u); y = (y * 1664525u + 1013904223u) ^ (y >> 13u);
    y = (y * 1664525u + 1013904223u) ^ (y >> 13u); y = (y * 1664525u + 1013904223u) ^ (y >> 13u);
    y = (y * 1664525u + 1013904223u) ^ (y >> 13u); y = (y * 1664525u + 1013904223u) ^ (y >> 13u);
    y = (y * 1664525u + 1013904223u) ^ (y >> 13u); y = (y * 1664525u + 1013904223u) ^ (y >> 13u);
    y = (y * 1664525u + 1013904223u) ^ (y >> 13u); y = (y * 1664525u + 1013904223u) ^ (y >> 13u);
    y = (y * 1664525u + 1013904223u) ^ (y >> 13u); y = (y * 1664525u + 1013904223u) ^ (y >> 13u);
    y = (y * 1664525u + 1013904223u) ^ (y >> 13u); y = (y * 1664525u + 1013904223u) ^ (y >> 13u);
    y = (y * 1664525u + 1013904223u) ^ (y >> 13u); y = (y * 1664525u + 1013904223u) ^ (y >> 13u);
    return y;
}
fn rk_hold_quad(x: u32) -> u32 {
    return rk_hold_step(rk_hold_step(rk_hold_step(rk_hold_step(x))));
}
fn rk_handle() {
    var x = rk_payload_len() + 1u;
    var iterations = SLOW_SPIN_ITERATIONS;
    if (rk_payload_len() >= 4u) {
        iterations = min(rk_payload_word(0u) * HOLD_ITERATIONS_PER_MS, SLOW_SPIN_ITERATIONS);
    }
    for (var i = 0u; i < iterations; i += 1u) {
        x = rk_hold_quad(rk_hold_quad(rk_hold_quad(rk_hold_quad(x))));
        x = rk_hold_quad(rk_hold_quad(rk_hold_quad(rk_hold_quad(x))));
        x = rk_hold_quad(rk_hold_quad(rk_hold_quad(rk_hold_quad(x))));
        x = rk_hold_quad(rk_hold_quad(rk_hold_quad(rk_hold_quad(x))));
    }
    rk_set_state_word(0u, x);
    if (rk_reply(rk_message_type(), rk_out_payload()) != RK_OK) {
        rk_error(RK_SEND_REASON);
    }
}
"#;

    /// Works a while (WGSL has no clock: a fixed amount of dependent arithmetic), then echoes.
    pub const SLOW: &str = r#"
fn rk_handle() {
    var x = rk_payload_len() + 1u;
    for (var i = 0u; i < SLOW_SPIN_ITERATIONS; i += 1u) {
        x = x * 1664525u + 1013904223u;
    }
    rk_set_state_word(0u, x);
    if (rk_reply(rk_message_type(), rk_out_payload()) != RK_OK) {
        rk_error(RK_SEND_REASON);
    }
}
"#;
}

/// Iterations of `hold`'s WGSL loop per millisecond asked for (at most [`SLOW_SPIN_ITERATIONS`]);
/// each iteration is 1 024 dependent multiply-add-xor-shift steps.
pub const HOLD_ITERATIONS_PER_MS: u32 = 1_000;

/// Iterations `slow`'s WGSL handler spins (it has no clock to wait on). Under 65 535: lavapipe cuts
/// a loop nest there.
pub const SLOW_SPIN_ITERATIONS: u32 = 60_000;

/// A suite kernel's WGSL source: the constants it uses, then its handler.
pub fn wgsl_source(handler: &str) -> String {
    format!(
        "const PIPELINE_RECORD_TYPE: u32 = 0x{PIPELINE_RECORD:08x}u;\nconst STAGE2_LIMIT: u32 = {STAGE2_LIMIT}u;\n\
         const PROGRESS_NOTE: u32 = 0x{PROGRESS_NOTE:08x}u;\nconst SLOW_SPIN_ITERATIONS: u32 = {SLOW_SPIN_ITERATIONS}u;\n\
         const HOLD_ITERATIONS_PER_MS: u32 = {HOLD_ITERATIONS_PER_MS}u;\n{handler}"
    )
}

/// A suite kernel's CUDA C source: the constants it uses, then its handler.
pub fn cuda_source(handler: &str) -> String {
    format!(
        "#define PIPELINE_RECORD_TYPE 0x{PIPELINE_RECORD:08x}u\n#define STAGE2_LIMIT {STAGE2_LIMIT}ull\n\
         #define PROGRESS_NOTE 0x{PROGRESS_NOTE:08x}u\n#define SLOW_HANDLER_US {SLOW_HANDLER_US}ull\n{}{handler}",
        cuda::PIPELINE_RECORD_DECL
    )
}

/// The built-in kernels plus the suite's own.
pub fn registry() -> KernelRegistry {
    let mut registry = KernelRegistry::with_builtins();
    let specs = [
        KernelSpec::new(PANICKER)
            .cuda(cuda_source(cuda::PANICKER))
            .wgsl(wgsl_source(wgsl::PANICKER))
            .cpu(echo_unless(b"panic", || panic!("asked to panic"))),
        KernelSpec::new(FALLIBLE)
            .cuda(cuda_source(cuda::FALLIBLE))
            .wgsl(wgsl_source(wgsl::FALLIBLE))
            .cpu(echo_unless(b"bad", || {})),
        KernelSpec::new(STAGE1).cuda(cuda_source(cuda::STAGE1)).wgsl(wgsl_source(wgsl::STAGE1)).cpu(|ctx| {
            let mut record: PipelineRecord = ctx.payload_as()?;
            record.host_sent = ctx.header().timestamp();
            record.stage1_received = ctx.received_at();
            record.value *= 2;
            Ok(ctx.send_to(&KernelId::from(STAGE2), PIPELINE_RECORD, bytemuck::bytes_of(&record))?)
        }),
        KernelSpec::new(STAGE2).cuda(cuda_source(cuda::STAGE2)).wgsl(wgsl_source(wgsl::STAGE2)).cpu(|ctx| {
            let mut record: PipelineRecord = ctx.payload_as()?;
            if record.value >= STAGE2_LIMIT {
                return Err(HandlerError(format!("value {} is over the limit", record.value)));
            }
            record.stage1_sent = ctx.header().timestamp();
            record.stage2_received = ctx.received_at();
            record.value += 1;
            Ok(ctx.emit(PIPELINE_RECORD, bytemuck::bytes_of(&record))?)
        }),
        KernelSpec::new(RELAY).cuda(cuda_source(cuda::RELAY)).wgsl(wgsl_source(wgsl::RELAY)).cpu(|ctx| {
            let (message_type, payload) = (ctx.message_type(), ctx.payload());
            ctx.send_to(&KernelId::from(SINK), message_type, payload)?;
            Ok(ctx.reply(message_type, &[])?)
        }),
        KernelSpec::new(SINK).cuda(cuda_source(cuda::SINK)).wgsl(wgsl_source(wgsl::SINK)).cpu(|ctx| {
            let (message_type, payload) = (ctx.message_type(), ctx.payload());
            Ok(ctx.emit(message_type, payload)?)
        }),
        KernelSpec::new(PROGRESS).cuda(cuda_source(cuda::PROGRESS)).wgsl(wgsl_source(wgsl::PROGRESS)).cpu(|ctx| {
            let (message_type, payload) = (ctx.message_type(), ctx.payload());
            ctx.emit(PROGRESS_NOTE, b"working")?;
            Ok(ctx.reply(message_type, payload)?)
        }),
        KernelSpec::new(HOLD).cuda(cuda_source(cuda::HOLD)).wgsl(wgsl_source(wgsl::HOLD)).cpu(|ctx| {
            let ms = ctx.payload().get(..4).map_or(0, |word| u32::from_le_bytes(word.try_into().expect("4 bytes")));
            let start = std::time::Instant::now();
            while start.elapsed() < std::time::Duration::from_millis(u64::from(ms)) {
                std::hint::spin_loop();
            }
            let (message_type, payload) = (ctx.message_type(), ctx.payload());
            Ok(ctx.reply(message_type, payload)?)
        }),
        KernelSpec::new(SLOW).cuda(cuda_source(cuda::SLOW)).wgsl(wgsl_source(wgsl::SLOW)).cpu(|ctx| {
            let start = std::time::Instant::now();
            while start.elapsed() < std::time::Duration::from_micros(SLOW_HANDLER_US) {
                std::hint::spin_loop();
            }
            let (message_type, payload) = (ctx.message_type(), ctx.payload());
            Ok(ctx.reply(message_type, payload)?)
        }),
    ];
    for spec in specs {
        registry.register(spec).expect("suite kernel names are distinct");
    }
    registry
}
