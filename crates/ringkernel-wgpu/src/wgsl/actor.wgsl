// RingKernel WGSL actor runtime: the event-driven actor loop and the handler ABI.
//
// A module is: the generated protocol layout (ringkernel_layout.wgsl), the host's structs
// (runtime/abi.rs), the literal count the host generates from every "..." in the source, this
// file, then the user's handler. One workgroup (one invocation) runs one actor: it acknowledges
// control changes, handles messages of its input ring and its K2K inbox (up to
// `rk_params.loop_budget`, taking turns), writes replies into its output ring, publishes its
// counters and clock into the control block and returns. A dispatch runs one actor, or, when no
// running actor's kernel can send K2K, every actor of one kernel with work (one workgroup each:
// they share nothing then). The dispatch boundary is the fence: the host reads what a dispatch
// wrote after it completed, and a K2K message written in one dispatch is read in a later one.
// Nothing here needs an atomic: no two invocations ever touch the same words at once.
//
// Handler ABI (the user writes `fn rk_handle()`; string literals become literal ids):
//   rk_message_type(), rk_payload_len(), rk_payload_word(i), rk_payload_byte(i),
//   rk_payload_is("text"), rk_correlation(), rk_source(), rk_header_stamp(), rk_received_at(),
//   rk_kernel_number(), rk_state_len(), rk_state_word(i), rk_set_state_word(i, v),
//   rk_out_word(i, v), rk_out_payload() -> len, rk_out_lit("text") -> len, rk_out_stamp(word, stamp),
//   rk_reply(type, len), rk_emit(type, len), rk_send_to("kernel", type, len),
//   rk_send_to_number(n, type, len)            -> RK_OK or an RK_ERROR_* code,
//   rk_error("reason") / rk_error(RK_SEND_REASON), rk_fail("reason").

@group(0) @binding(0) var<storage, read_write> rk_arena: array<u32>;
// The parameters of the actors of this dispatch: workgroup `i` runs the actor of entry `i`.
@group(0) @binding(1) var<storage, read> rk_dispatch_params: array<WgpuParams>;
// This module's string literals: RK_LIT_COUNT + 1 start offsets, then the hashes, then the bytes.
@group(0) @binding(2) var<storage, read> rk_lits: array<u32>;
// CRC32C (Castagnoli, reflected) of every byte value, for a table-driven checksum.
@group(0) @binding(3) var<storage, read> rk_crc_table: array<u32, 256>;
// This workgroup's actor's parameters, copied from `rk_dispatch_params` first thing.
var<private> rk_params: WgpuParams;

// `WgpuParams`, `WgpuHostLine` and `WgpuRoute` are declared by the host (runtime/abi.rs) before
// this file, with their RK_WGPU_* offset constants.

const RK_OK: u32 = 0u;
const RK_ERROR_REPORT_TYPE: u32 = 0xFFFFFFFEu;
const RK_SEND_REASON: u32 = 0xFFFFFFFFu;
const RK_REASON_WORDS: u32 = 64u;
const RK_ROUTE_WORDS: u32 = RK_WGPU_ROUTE_SIZE / 4u;
const RK_ROUTE_USED: u32 = RK_WGPU_ROUTE_USED_OFFSET / 4u;
const RK_ROUTE_NUMBER: u32 = RK_WGPU_ROUTE_NUMBER_OFFSET / 4u;
const RK_ROUTE_HASH: u32 = RK_WGPU_ROUTE_NAME_HASH_OFFSET / 4u;
const RK_ROUTE_NAME_LEN: u32 = RK_WGPU_ROUTE_NAME_LEN_OFFSET / 4u;
const RK_ROUTE_INBOX: u32 = RK_WGPU_ROUTE_INBOX_OFFSET / 4u;
const RK_ROUTE_NAME: u32 = RK_WGPU_ROUTE_NAME_OFFSET / 4u;
// The actor's scratch area (device memory, words): message counter [0, 2), outputs parked
// because the output ring was full [2], outputs written this round [3], outgoing header
// [4, 25), failing flag [25], turn [26], reason [32, 96), send reason [96, 160), then the outgoing payload. Kept in memory, not
// in private arrays: dynamically indexed private arrays make shader compilers (LLVM in lavapipe)
// very slow and spill anyway.
const RK_SCRATCH_PARKED: u32 = 2u;
// Outputs written this round (the host zeroes it before each round; it bounds what is copied back).
const RK_SCRATCH_OUTPUTS: u32 = 3u;
const RK_SCRATCH_OH: u32 = 4u;
// 1 once a handler failed while its outputs were parked: the actor takes no more messages,
// flushes the park as the host makes room, then stops as FAILED (outputs first, then the stop).
const RK_SCRATCH_FAILING: u32 = 25u;
// Which source the next message comes from when both have one: 0 the input ring, 1 the K2K
// inbox. It alternates, so that sustained host input does not starve K2K traffic (or back).
const RK_SCRATCH_TURN: u32 = 26u;
const RK_SCRATCH_REASON: u32 = 32u;
const RK_SCRATCH_SEND_REASON: u32 = 96u;
// What a dispatch reports to the host (`WgpuReport`, runtime/abi.rs), read back after the round.
const RK_SCRATCH_REPORT: u32 = 160u;
const RK_SCRATCH_RESERVED: u32 = 176u;
// The round whose outputs `RK_SCRATCH_OUTPUTS` counts.
const RK_SCRATCH_ROUND: u32 = 27u;

// Header word indices (offsets / 4).
const RK_H_MAGIC: u32 = 0u;
const RK_H_VERSION: u32 = 1u;
const RK_H_FLAGS: u32 = 2u;
const RK_H_TYPE: u32 = 3u;
const RK_H_PAYLOAD: u32 = 4u;
const RK_H_CHECKSUM: u32 = 5u;
const RK_H_CORRELATION: u32 = 6u;
const RK_H_SOURCE: u32 = 8u;
const RK_H_PRIORITY: u32 = 9u;
const RK_H_TS_PHYSICAL: u32 = 10u;
const RK_H_TS_LOGICAL: u32 = 12u;
const RK_H_TS_NODE: u32 = 13u;
const RK_H_DEADLINE: u32 = 14u;
const RK_H_MESSAGE_ID: u32 = 16u;
const RK_H_DEST: u32 = 20u;
const RK_H_USED_WORDS: u32 = 21u;
const RK_HEADER_WORDS: u32 = 64u;

// Loop bounds read from memory rather than constants: shader compilers fully unroll loops with
// small constant trip counts, and with every helper inlined at every call site that makes
// lavapipe's LLVM take minutes per pipeline. `rk_params.zero` is always 0.
fn rk_n(n: u32) -> u32 {
    return n + rk_params.zero;
}

struct RkStamp {
    physical: vec2<u32>,
    logical: u32,
    node: u32,
}

// ---- actor state for this dispatch ----------------------------------------------------------
var<private> rk_c: u32;
var<private> rk_in_capacity: u32;
var<private> rk_in_slot_words: u32;
var<private> rk_out_capacity: u32;
var<private> rk_out_slot_words: u32;
var<private> rk_in_head: u32;
var<private> rk_out_tail: u32;
var<private> rk_out_head: u32;
var<private> rk_outputs: u32;
var<private> rk_processed: u32;
var<private> rk_rejected: u32;
var<private> rk_errors: u32;
var<private> rk_last_error: u32;
var<private> rk_clock_physical: vec2<u32>;
var<private> rk_clock_logical: u32;
var<private> rk_now: vec2<u32>;
var<private> rk_failed: bool;
var<private> rk_detached: bool;

// ---- the message in hand ----------------------------------------------------------------------
var<private> rk_msg: u32;
var<private> rk_msg_capacity: u32;
var<private> rk_received: RkStamp;
var<private> rk_outcome: u32;
var<private> rk_reason_len: u32;
var<private> rk_send_error: u32;
var<private> rk_send_reason_len: u32;

// ---- 64-bit helpers (vec2: low, high) -------------------------------------------------------
fn rk_gt64(a: vec2<u32>, b: vec2<u32>) -> bool {
    return a.y > b.y || (a.y == b.y && a.x > b.x);
}
fn rk_eq64(a: vec2<u32>, b: vec2<u32>) -> bool {
    return a.x == b.x && a.y == b.y;
}
fn rk_add64(a: vec2<u32>, b: vec2<u32>) -> vec2<u32> {
    let lo = a.x + b.x;
    var carry = 0u;
    if (lo < a.x) {
        carry = 1u;
    }
    return vec2<u32>(lo, a.y + b.y + carry);
}
fn rk_max64(a: vec2<u32>, b: vec2<u32>) -> vec2<u32> {
    if (rk_gt64(a, b)) {
        return a;
    }
    return b;
}
fn rk_load64(word: u32) -> vec2<u32> {
    return vec2<u32>(rk_arena[word], rk_arena[word + 1u]);
}

// ---- bytes --------------------------------------------------------------------------------------
fn rk_byte_at(word_base: u32, i: u32) -> u32 {
    return (rk_arena[word_base + i / 4u] >> (8u * (i % 4u))) & 0xFFu;
}
fn rk_set_byte(word_base: u32, i: u32, b: u32) {
    let w = word_base + i / 4u;
    let shift = 8u * (i % 4u);
    rk_arena[w] = (rk_arena[w] & ~(0xFFu << shift)) | ((b & 0xFFu) << shift);
}
fn rk_lit_len(lit: u32) -> u32 {
    return rk_lits[lit + 1u] - rk_lits[lit];
}
fn rk_lit_hash(lit: u32) -> u32 {
    return rk_lits[RK_LIT_COUNT + 1u + lit];
}
fn rk_lit_byte(lit: u32, i: u32) -> u32 {
    let at = rk_lits[lit] + i;
    return (rk_lits[2u * RK_LIT_COUNT + 1u + at / 4u] >> (8u * (at % 4u))) & 0xFFu;
}

// CRC32C (Castagnoli), bitwise, of `len` bytes from `word_base`.
// A byte at a time through a 256-entry table, four bytes per word loaded.
fn rk_crc32c(word_base: u32, len: u32) -> u32 {
    var crc = 0xFFFFFFFFu;
    let words = len / 4u;
    var w = 0u;
    // Two words loaded at once (one wait for memory per eight bytes).
    for (; w + 2u <= words; w += 2u) {
        let v = rk_arena[word_base + w];
        let u = rk_arena[word_base + w + 1u];
        crc = rk_crc_table[(crc ^ v) & 0xFFu] ^ (crc >> 8u);
        crc = rk_crc_table[(crc ^ (v >> 8u)) & 0xFFu] ^ (crc >> 8u);
        crc = rk_crc_table[(crc ^ (v >> 16u)) & 0xFFu] ^ (crc >> 8u);
        crc = rk_crc_table[(crc ^ (v >> 24u)) & 0xFFu] ^ (crc >> 8u);
        crc = rk_crc_table[(crc ^ u) & 0xFFu] ^ (crc >> 8u);
        crc = rk_crc_table[(crc ^ (u >> 8u)) & 0xFFu] ^ (crc >> 8u);
        crc = rk_crc_table[(crc ^ (u >> 16u)) & 0xFFu] ^ (crc >> 8u);
        crc = rk_crc_table[(crc ^ (u >> 24u)) & 0xFFu] ^ (crc >> 8u);
    }
    for (; w < words; w += 1u) {
        let v = rk_arena[word_base + w];
        crc = rk_crc_table[(crc ^ v) & 0xFFu] ^ (crc >> 8u);
        crc = rk_crc_table[(crc ^ (v >> 8u)) & 0xFFu] ^ (crc >> 8u);
        crc = rk_crc_table[(crc ^ (v >> 16u)) & 0xFFu] ^ (crc >> 8u);
        crc = rk_crc_table[(crc ^ (v >> 24u)) & 0xFFu] ^ (crc >> 8u);
    }
    for (var i = words * 4u; i < len; i += 1u) {
        crc = rk_crc_table[(crc ^ rk_byte_at(word_base, i)) & 0xFFu] ^ (crc >> 8u);
    }
    return ~crc;
}

// ---- copies ------------------------------------------------------------------------------------
// Copies `n` words from `src` to `dst` (dst below src where they overlap), four loads before four
// stores: one invocation waits for memory once per four words, not once per word.
fn rk_copy_words(dst: u32, src: u32, n: u32) {
    var i = 0u;
    for (; i + 4u <= n; i += 4u) {
        let a = rk_arena[src + i];
        let b = rk_arena[src + i + 1u];
        let c = rk_arena[src + i + 2u];
        let d = rk_arena[src + i + 3u];
        rk_arena[dst + i] = a;
        rk_arena[dst + i + 1u] = b;
        rk_arena[dst + i + 2u] = c;
        rk_arena[dst + i + 3u] = d;
    }
    for (; i < n; i += 1u) {
        rk_arena[dst + i] = rk_arena[src + i];
    }
}

// ---- reasons ----------------------------------------------------------------------------------
// The send reason's words are written as its bytes arrive (a new word starts from its first
// byte), so clearing it is only resetting its length.
fn rk_send_reason_clear() {
    rk_send_reason_len = 0u;
}
fn rk_send_reason_byte(b: u32) {
    if (rk_send_reason_len < RK_REASON_WORDS * 4u) {
        let w = rk_params.scratch + RK_SCRATCH_SEND_REASON + rk_send_reason_len / 4u;
        let shift = 8u * (rk_send_reason_len % 4u);
        if (shift == 0u) {
            rk_arena[w] = b & 0xFFu;
        } else {
            rk_arena[w] = rk_arena[w] | ((b & 0xFFu) << shift);
        }
        rk_send_reason_len += 1u;
    }
}
fn rk_send_reason_lit(lit: u32) {
    for (var i = 0u; i < rk_lit_len(lit); i += 1u) {
        rk_send_reason_byte(rk_lit_byte(lit, i));
    }
}
fn rk_send_reason_u32(value: u32) {
    var power = 1u;
    while (value / power >= 10u) {
        power *= 10u;
    }
    while (power > 0u) {
        rk_send_reason_byte(48u + (value / power) % 10u);
        power /= 10u;
    }
}
fn rk_send_reason_kernel(name_lit: u32, number: u32) {
    if (name_lit != RK_SEND_REASON) {
        rk_send_reason_lit(name_lit);
    } else {
        rk_send_reason_byte(35u);
        rk_send_reason_u32(number);
    }
}

// ---- HLC ----------------------------------------------------------------------------------------
fn rk_tick() -> RkStamp {
    if (rk_gt64(rk_now, rk_clock_physical)) {
        rk_clock_physical = rk_now;
        rk_clock_logical = 0u;
    } else if (rk_clock_logical == 0xFFFFFFFFu) {
        rk_clock_physical = rk_add64(rk_clock_physical, vec2<u32>(1u, 0u));
        rk_clock_logical = 0u;
    } else {
        rk_clock_logical += 1u;
    }
    return RkStamp(rk_clock_physical, rk_clock_logical, rk_params.number);
}

// The receive rule (Kulkarni et al.).
fn rk_update(r: RkStamp) -> RkStamp {
    let lp = rk_clock_physical;
    var p = rk_max64(rk_now, lp);
    p = rk_max64(p, r.physical);
    var base = 0u;
    var bump = true;
    if (rk_eq64(p, lp) && rk_eq64(p, r.physical)) {
        base = max(rk_clock_logical, r.logical);
    } else if (rk_eq64(p, lp)) {
        base = rk_clock_logical;
    } else if (rk_eq64(p, r.physical)) {
        base = r.logical;
    } else {
        bump = false;
    }
    if (bump) {
        if (base == 0xFFFFFFFFu) {
            p = rk_add64(p, vec2<u32>(1u, 0u));
            base = 0u;
        } else {
            base += 1u;
        }
    }
    rk_clock_physical = p;
    rk_clock_logical = base;
    return RkStamp(p, base, rk_params.number);
}

// ---- handler ABI: the message in hand -----------------------------------------------------------
fn rk_message_type() -> u32 {
    return rk_arena[rk_msg + RK_H_TYPE];
}
fn rk_payload_len() -> u32 {
    return rk_arena[rk_msg + RK_H_PAYLOAD];
}
fn rk_payload_word(i: u32) -> u32 {
    if (i * 4u >= rk_payload_len()) {
        return 0u;
    }
    return rk_arena[rk_msg + RK_HEADER_WORDS + i];
}
fn rk_payload_byte(i: u32) -> u32 {
    if (i >= rk_payload_len()) {
        return 0u;
    }
    return rk_byte_at(rk_msg + RK_HEADER_WORDS, i);
}
fn rk_payload_is(lit: u32) -> bool {
    let n = rk_lit_len(lit);
    if (rk_payload_len() != n) {
        return false;
    }
    for (var i = 0u; i < n; i += 1u) {
        if (rk_payload_byte(i) != rk_lit_byte(lit, i)) {
            return false;
        }
    }
    return true;
}
fn rk_correlation() -> vec2<u32> {
    return rk_load64(rk_msg + RK_H_CORRELATION);
}
fn rk_source() -> u32 {
    return rk_arena[rk_msg + RK_H_SOURCE];
}
fn rk_header_stamp() -> RkStamp {
    return RkStamp(rk_load64(rk_msg + RK_H_TS_PHYSICAL), rk_arena[rk_msg + RK_H_TS_LOGICAL], rk_arena[rk_msg + RK_H_TS_NODE]);
}
fn rk_received_at() -> RkStamp {
    return rk_received;
}
fn rk_kernel_number() -> u32 {
    return rk_params.number;
}

// ---- handler ABI: state -------------------------------------------------------------------------
fn rk_state_len() -> u32 {
    return rk_params.state_bytes;
}
fn rk_state_word(i: u32) -> u32 {
    if (i * 4u >= rk_params.state_bytes) {
        return 0u;
    }
    return rk_arena[rk_params.state + i];
}
fn rk_set_state_word(i: u32, v: u32) {
    if (i * 4u < rk_params.state_bytes) {
        rk_arena[rk_params.state + i] = v;
    }
}

// ---- handler ABI: the outgoing payload ----------------------------------------------------------
fn rk_out_base() -> u32 {
    return rk_params.scratch + RK_SCRATCH_RESERVED;
}
fn rk_out_capacity_bytes() -> u32 {
    return (rk_params.scratch_words - RK_SCRATCH_RESERVED) * 4u;
}
fn rk_out_word(i: u32, v: u32) {
    if (i * 4u < rk_out_capacity_bytes()) {
        rk_arena[rk_out_base() + i] = v;
    }
}
// Copies the request's payload into the outgoing payload; returns its length.
fn rk_out_payload() -> u32 {
    let len = min(rk_payload_len(), rk_out_capacity_bytes());
    rk_copy_words(rk_out_base(), rk_msg + RK_HEADER_WORDS, (len + 3u) / 4u);
    return len;
}
// Writes a string literal's bytes into the outgoing payload; returns its length.
fn rk_out_lit(lit: u32) -> u32 {
    let n = min(rk_lit_len(lit), rk_out_capacity_bytes());
    for (var i = 0u; i < (n + 3u) / 4u; i += 1u) {
        rk_arena[rk_out_base() + i] = 0u;
    }
    for (var i = 0u; i < n; i += 1u) {
        rk_set_byte(rk_out_base(), i, rk_lit_byte(lit, i));
    }
    return n;
}
// Writes a stamp as the 16-byte HlcTimestamp (physical ns, logical, node) at word `i`.
fn rk_out_stamp(i: u32, t: RkStamp) {
    rk_out_word(i, t.physical.x);
    rk_out_word(i + 1u, t.physical.y);
    rk_out_word(i + 2u, t.logical);
    rk_out_word(i + 3u, t.node);
}

// ---- delivering ---------------------------------------------------------------------------------
fn rk_new_header(message_type: u32, correlation: vec2<u32>, priority: u32, flags: u32) {
    rk_arena[rk_params.scratch + RK_SCRATCH_OH + RK_H_MAGIC] = RK_MESSAGE_MAGIC;
    rk_arena[rk_params.scratch + RK_SCRATCH_OH + RK_H_VERSION] = RK_PROTOCOL_VERSION;
    rk_arena[rk_params.scratch + RK_SCRATCH_OH + RK_H_FLAGS] = flags;
    rk_arena[rk_params.scratch + RK_SCRATCH_OH + RK_H_TYPE] = message_type;
    rk_arena[rk_params.scratch + RK_SCRATCH_OH + RK_H_PAYLOAD] = 0u;
    rk_arena[rk_params.scratch + RK_SCRATCH_OH + RK_H_CHECKSUM] = 0u;
    rk_arena[rk_params.scratch + RK_SCRATCH_OH + RK_H_CORRELATION] = correlation.x;
    rk_arena[rk_params.scratch + RK_SCRATCH_OH + RK_H_CORRELATION + 1u] = correlation.y;
    rk_arena[rk_params.scratch + RK_SCRATCH_OH + RK_H_SOURCE] = rk_params.number;
    rk_arena[rk_params.scratch + RK_SCRATCH_OH + RK_H_PRIORITY] = priority;
    let t = rk_tick();
    rk_arena[rk_params.scratch + RK_SCRATCH_OH + RK_H_TS_PHYSICAL] = t.physical.x;
    rk_arena[rk_params.scratch + RK_SCRATCH_OH + RK_H_TS_PHYSICAL + 1u] = t.physical.y;
    rk_arena[rk_params.scratch + RK_SCRATCH_OH + RK_H_TS_LOGICAL] = t.logical;
    rk_arena[rk_params.scratch + RK_SCRATCH_OH + RK_H_TS_NODE] = t.node;
    rk_arena[rk_params.scratch + RK_SCRATCH_OH + RK_H_DEADLINE] = 0u;
    rk_arena[rk_params.scratch + RK_SCRATCH_OH + RK_H_DEADLINE + 1u] = 0u;
    // The message counter lives in the actor's scratch area (device-only) across dispatches.
    let counter = rk_load64(rk_params.scratch);
    let next = rk_add64(counter, vec2<u32>(1u, 0u));
    rk_arena[rk_params.scratch] = next.x;
    rk_arena[rk_params.scratch + 1u] = next.y;
    rk_arena[rk_params.scratch + RK_SCRATCH_OH + RK_H_MESSAGE_ID] = next.x;
    rk_arena[rk_params.scratch + RK_SCRATCH_OH + RK_H_MESSAGE_ID + 1u] = next.y;
    rk_arena[rk_params.scratch + RK_SCRATCH_OH + RK_H_MESSAGE_ID + 2u] = rk_params.number;
    rk_arena[rk_params.scratch + RK_SCRATCH_OH + RK_H_MESSAGE_ID + 3u] = 0x524B4757u;  // "WGKR": issued by a wgpu device
    rk_arena[rk_params.scratch + RK_SCRATCH_OH + RK_H_DEST] = RK_HOST_KERNEL_ID;
}

// Writes the header in `rk_oh` and `len` bytes src_at `src_at` into the slot at `slot`.
fn rk_write_slot(slot: u32, src_at: u32, len: u32) {
    if ((rk_arena[rk_params.scratch + RK_SCRATCH_OH + RK_H_FLAGS] & RK_FLAG_CHECKSUM) != 0u) {
        rk_arena[rk_params.scratch + RK_SCRATCH_OH + RK_H_CHECKSUM] = rk_crc32c(src_at, len);
    }
    rk_arena[rk_params.scratch + RK_SCRATCH_OH + RK_H_PAYLOAD] = len;
    rk_copy_words(slot + RK_HEADER_WORDS, src_at, (len + 3u) / 4u);
    rk_copy_words(slot, rk_params.scratch + RK_SCRATCH_OH, rk_n(RK_H_USED_WORDS));
}

fn rk_output_room() -> u32 {
    let used = rk_out_tail - rk_out_head;
    var room = 0u;
    if (used < rk_out_capacity) {
        room = rk_out_capacity - used;
    }
    return room;
}

// Output written while the ring is full is parked (up to `park_capacity` slots, in order) and
// moved into the ring by a later dispatch once the host made room: a handler finishes its
// message as a CPU handler would block until it could. Beyond the park, or with nobody left to
// read (detached terminate), the write fails with RK_ERROR_OUTPUT_FULL and is counted.
fn rk_parked() -> u32 {
    return rk_arena[rk_params.scratch + RK_SCRATCH_PARKED];
}

fn rk_write_output(src_at: u32, len: u32) -> u32 {
    if (len > rk_out_slot_words * 4u - RK_MESSAGE_HEADER_BYTES) {
        rk_send_reason_clear();
        rk_send_reason_lit("payload does not fit the output ring's slots: ");
        rk_send_reason_u32(len);
        return RK_ERROR_PAYLOAD_TOO_LARGE;
    }
    let parked = rk_parked();
    if (rk_output_room() == 0u || parked != 0u) {
        if (rk_detached || parked >= rk_params.park_capacity) {
            rk_send_reason_clear();
            if (rk_detached) {
                rk_send_reason_lit("output ring is full and no host handle is left to read it");
            } else {
                rk_send_reason_lit("output ring is full and this message already parked park_capacity (WgpuConfig::outputs_per_message) outputs");
            }
            rk_errors += 1u;
            return RK_ERROR_OUTPUT_FULL;
        }
        rk_write_slot(rk_params.park + parked * rk_out_slot_words, src_at, len);
        rk_arena[rk_params.scratch + RK_SCRATCH_PARKED] = parked + 1u;
        return RK_OK;
    }
    let slot = rk_params.output + (rk_out_tail & (rk_out_capacity - 1u)) * rk_out_slot_words;
    rk_write_slot(slot, src_at, len);
    rk_out_tail += 1u;
    rk_outputs += 1u;
    return RK_OK;
}

// Moves parked outputs into the ring, in order, while there is room. Returns how many remain.
fn rk_flush_parked() -> u32 {
    let parked = rk_parked();
    var moved = 0u;
    while (moved < parked && rk_output_room() != 0u) {
        let slot = rk_params.output + (rk_out_tail & (rk_out_capacity - 1u)) * rk_out_slot_words;
        let from_slot = rk_params.park + moved * rk_out_slot_words;
        rk_copy_words(slot, from_slot, rk_out_slot_words);
        rk_out_tail += 1u;
        rk_outputs += 1u;
        moved += 1u;
    }
    // Shift what is left to the front of the park.
    for (var k = moved; k < parked; k += 1u) {
        rk_copy_words(rk_params.park + (k - moved) * rk_out_slot_words, rk_params.park + k * rk_out_slot_words, rk_out_slot_words);
    }
    rk_arena[rk_params.scratch + RK_SCRATCH_PARKED] = parked - moved;
    if (rk_detached && parked != moved) {
        // Nobody reads the ring any more: what cannot go in is dropped, and counted.
        rk_errors += parked - moved;
        rk_arena[rk_params.scratch + RK_SCRATCH_PARKED] = 0u;
        return 0u;
    }
    return parked - moved;
}

// Finds a running actor by name literal (or by number when `name_lit` is RK_SEND_REASON).
// Returns the route's word offset, or 0xFFFFFFFF.
fn rk_find_route(name_lit: u32, number: u32) -> u32 {
    for (var i = 0u; i < rk_params.route_capacity; i += 1u) {
        let r = rk_params.routes + i * RK_ROUTE_WORDS;
        if (rk_arena[r + RK_ROUTE_USED] != 1u) {
            continue;
        }
        if (name_lit == RK_SEND_REASON) {
            if (rk_arena[r + RK_ROUTE_NUMBER] == number) {
                return r;
            }
            continue;
        }
        let len = rk_lit_len(name_lit);
        if (rk_arena[r + RK_ROUTE_HASH] != rk_lit_hash(name_lit) || rk_arena[r + RK_ROUTE_NAME_LEN] != len) {
            continue;
        }
        var same = true;
        for (var k = 0u; k < min(len, rk_n(32u)); k += 1u) {
            if (rk_byte_at(r + RK_ROUTE_NAME, k) != rk_lit_byte(name_lit, k)) {
                same = false;
                break;
            }
        }
        if (same) {
            return r;
        }
    }
    return 0xFFFFFFFFu;
}

fn rk_k2k_send(name_lit: u32, number: u32, src_at: u32, len: u32) -> u32 {
    let route = rk_find_route(name_lit, number);
    // The reason buffer is cleared only by a failure (an earlier failure's reason survives a
    // later successful send).
    if (route == 0xFFFFFFFFu) {
        rk_send_reason_clear();
        rk_send_reason_lit("kernel `");
        rk_send_reason_kernel(name_lit, number);
        rk_send_reason_lit("` is not running (no running kernel has this id)");
        return RK_ERROR_HANDLER_ERROR;
    }
    let ib = rk_arena[route + RK_ROUTE_INBOX];
    let capacity = rk_arena[ib + RK_K2K_INBOX_HEADER_CAPACITY_OFFSET / 4u];
    let slot_bytes = rk_arena[ib + RK_K2K_INBOX_HEADER_SLOT_BYTES_OFFSET / 4u];
    if (len > slot_bytes - RK_MESSAGE_HEADER_BYTES) {
        rk_send_reason_clear();
        rk_send_reason_lit("payload of ");
        rk_send_reason_u32(len);
        rk_send_reason_lit(" bytes does not fit the K2K inbox slot's ");
        rk_send_reason_u32(slot_bytes - RK_MESSAGE_HEADER_BYTES);
        rk_send_reason_lit("-byte payload area");
        return RK_ERROR_PAYLOAD_TOO_LARGE;
    }
    let sequences = ib + RK_K2K_INBOX_SEQUENCES_OFFSET / 4u;
    let pos = rk_arena[ib + RK_K2K_INBOX_HEADER_TAIL_OFFSET / 4u];
    let seq = rk_arena[sequences + (pos & (capacity - 1u))];
    if (seq != pos) {
        let rejections = ib + RK_K2K_INBOX_HEADER_FULL_REJECTIONS_OFFSET / 4u;
        rk_arena[rejections] = rk_arena[rejections] + 1u;
        rk_send_reason_clear();
        rk_send_reason_lit("queue full: K2K inbox of `");
        rk_send_reason_kernel(name_lit, number);
        rk_send_reason_lit("` holds ");
        rk_send_reason_u32(capacity);
        rk_send_reason_lit(" slots and all are in use");
        return RK_ERROR_K2K_INBOX_FULL;
    }
    rk_arena[ib + RK_K2K_INBOX_HEADER_TAIL_OFFSET / 4u] = pos + 1u;
    let slots = ib + ((RK_K2K_INBOX_SEQUENCES_OFFSET + 4u * capacity + 63u) & ~63u) / 4u;
    rk_arena[rk_params.scratch + RK_SCRATCH_OH + RK_H_DEST] = rk_arena[route + RK_ROUTE_NUMBER];
    rk_write_slot(slots + (pos & (capacity - 1u)) * (slot_bytes / 4u), src_at, len);
    rk_arena[ib + RK_K2K_INBOX_HEADER_LAST_SOURCE_OFFSET / 4u] = rk_params.number;
    rk_arena[sequences + (pos & (capacity - 1u))] = pos + 1u;
    return RK_OK;
}

// Delivers `rk_oh` + `len` bytes src_at `src_at` to the host (number RK_HOST_KERNEL_ID) or a kernel.
fn rk_deliver(name_lit: u32, number: u32, src_at: u32, len: u32) -> u32 {
    var result = RK_OK;
    if (name_lit == RK_SEND_REASON && number == RK_HOST_KERNEL_ID) {
        result = rk_write_output(src_at, len);
    } else {
        rk_arena[rk_params.scratch + RK_SCRATCH_OH + RK_H_FLAGS] = rk_arena[rk_params.scratch + RK_SCRATCH_OH + RK_H_FLAGS] | RK_FLAG_K2K;
        result = rk_k2k_send(name_lit, number, src_at, len);
    }
    if (result != RK_OK) {
        rk_send_error = result;
    }
    return result;
}

fn rk_reply(message_type: u32, len: u32) -> u32 {
    rk_new_header(message_type, rk_correlation(), rk_arena[rk_msg + RK_H_PRIORITY],
                  RK_FLAG_REPLY | (rk_arena[rk_msg + RK_H_FLAGS] & RK_FLAG_CHECKSUM));
    return rk_deliver(RK_SEND_REASON, rk_source(), rk_out_base(), min(len, rk_out_capacity_bytes()));
}

fn rk_emit(message_type: u32, len: u32) -> u32 {
    rk_new_header(message_type, rk_correlation(), rk_arena[rk_msg + RK_H_PRIORITY], 0u);
    return rk_deliver(RK_SEND_REASON, RK_HOST_KERNEL_ID, rk_out_base(), min(len, rk_out_capacity_bytes()));
}

fn rk_send_to(kernel: u32, message_type: u32, len: u32) -> u32 {
    rk_new_header(message_type, rk_correlation(), rk_arena[rk_msg + RK_H_PRIORITY], 0u);
    return rk_deliver(kernel, 0u, rk_out_base(), min(len, rk_out_capacity_bytes()));
}

fn rk_send_to_number(number: u32, message_type: u32, len: u32) -> u32 {
    rk_new_header(message_type, rk_correlation(), rk_arena[rk_msg + RK_H_PRIORITY], 0u);
    return rk_deliver(RK_SEND_REASON, number, rk_out_base(), min(len, rk_out_capacity_bytes()));
}

fn rk_set_outcome(outcome: u32, reason: u32) {
    if (rk_outcome != RK_OK) {
        return;
    }
    rk_outcome = outcome;
    rk_reason_len = 0u;
    for (var i = 0u; i < rk_n(RK_REASON_WORDS); i += 1u) {
        rk_arena[rk_params.scratch + RK_SCRATCH_REASON + i] = 0u;
    }
    if (reason != RK_SEND_REASON) {
        let n = min(rk_lit_len(reason), RK_REASON_WORDS * 4u);
        for (var i = 0u; i < n; i += 1u) {
            rk_arena[rk_params.scratch + RK_SCRATCH_REASON + i / 4u] = rk_arena[rk_params.scratch + RK_SCRATCH_REASON + i / 4u] | (rk_lit_byte(reason, i) << (8u * (i % 4u)));
        }
        rk_reason_len = n;
    } else if (rk_send_error != RK_OK) {
        for (var i = 0u; i < rk_n(RK_REASON_WORDS); i += 1u) {
            rk_arena[rk_params.scratch + RK_SCRATCH_REASON + i] = rk_arena[rk_params.scratch + RK_SCRATCH_SEND_REASON + i];
        }
        rk_reason_len = rk_send_reason_len;
    } else {
        let lit = "handler error";
        let n = rk_lit_len(lit);
        for (var i = 0u; i < n; i += 1u) {
            rk_arena[rk_params.scratch + RK_SCRATCH_REASON + i / 4u] = rk_arena[rk_params.scratch + RK_SCRATCH_REASON + i / 4u] | (rk_lit_byte(lit, i) << (8u * (i % 4u)));
        }
        rk_reason_len = n;
    }
}

// The handler could not handle the message: its sender gets an error report; the actor goes on.
fn rk_error(reason: u32) {
    rk_set_outcome(RK_ERROR_HANDLER_ERROR, reason);
}

// The handler failed: the sender gets an error report, and the actor stops as FAILED (like a
// panicking CPU handler).
fn rk_fail(reason: u32) {
    rk_set_outcome(RK_ERROR_HANDLER_FAULT, reason);
}

// ---- the loop ------------------------------------------------------------------------------------

// Tells the sender of the message in hand why it was not handled (never answers a report).
fn rk_report(code: u32, v0: vec2<u32>, v1: vec2<u32>, use_reason: bool) {
    let flags = rk_arena[rk_msg + RK_H_FLAGS];
    if ((flags & RK_FLAG_ERROR) != 0u) {
        return;
    }
    let base = rk_out_base();
    let cap = rk_out_capacity_bytes();
    if (cap < RK_ERROR_REPORT_HEADER_SIZE) {
        rk_errors += 1u;
        return;
    }
    rk_arena[base] = code;
    rk_arena[base + 1u] = 0u;
    rk_arena[base + 2u] = v0.x;
    rk_arena[base + 3u] = v0.y;
    rk_arena[base + 4u] = v1.x;
    rk_arena[base + 5u] = v1.y;
    var len = RK_ERROR_REPORT_HEADER_SIZE;
    if (use_reason) {
        let n = min(rk_reason_len, cap - RK_ERROR_REPORT_HEADER_SIZE);
        for (var i = 0u; i < (n + 3u) / 4u; i += 1u) {
            rk_arena[base + 6u + i] = rk_arena[rk_params.scratch + RK_SCRATCH_REASON + i];
        }
        len += n;
    }
    let source = rk_arena[rk_msg + RK_H_SOURCE];
    if (source == RK_HOST_KERNEL_ID) {
        len = min(len, rk_out_slot_words * 4u - RK_MESSAGE_HEADER_BYTES);
    }
    rk_new_header(RK_ERROR_REPORT_TYPE, rk_correlation(), rk_arena[rk_msg + RK_H_PRIORITY],
                  RK_FLAG_REPLY | RK_FLAG_ERROR | (flags & RK_FLAG_CHECKSUM));
    if (rk_deliver(RK_SEND_REASON, source, base, len) != RK_OK) {
        rk_errors += 1u;
    }
}

fn rk_count_error(code: u32, rejected: bool) {
    if (rejected) {
        rk_rejected += 1u;
    }
    rk_errors += 1u;
    rk_last_error = code;
}

// Checks the header at `rk_msg` as the host's decoder does.
fn rk_check(capacity: u32) -> u32 {
    let h = rk_msg;
    if (rk_arena[h + RK_H_MAGIC] != RK_MESSAGE_MAGIC) {
        return RK_ERROR_BAD_MAGIC;
    }
    if (rk_arena[h + RK_H_VERSION] != RK_PROTOCOL_VERSION) {
        return RK_ERROR_UNSUPPORTED_VERSION;
    }
    let flags = rk_arena[h + RK_H_FLAGS];
    if ((flags & ~RK_FLAGS_ALL) != 0u) {
        return RK_ERROR_UNKNOWN_FLAGS;
    }
    if (rk_arena[h + RK_H_PRIORITY] > RK_PRIORITY_MAX) {
        return RK_ERROR_INVALID_PRIORITY;
    }
    let len = rk_arena[h + RK_H_PAYLOAD];
    if (len > capacity) {
        return RK_ERROR_PAYLOAD_TOO_LARGE;
    }
    if ((flags & RK_FLAG_CHECKSUM) != 0u && rk_crc32c(h + RK_HEADER_WORDS, len) != rk_arena[h + RK_H_CHECKSUM]) {
        return RK_ERROR_CHECKSUM_MISMATCH;
    }
    return RK_OK;
}

// Validates, stamps and handles the message at `slot`. One call site of `rk_report` (every
// helper is inlined where it is called, so call sites cost compile time).
fn rk_handle_slot(slot: u32, capacity: u32) {
    rk_msg = slot;
    rk_msg_capacity = capacity;
    rk_outcome = RK_OK;
    rk_send_error = RK_OK;
    rk_reason_len = 0u;
    var report_v0 = vec2<u32>(0u, 0u);
    var report_v1 = vec2<u32>(0u, 0u);
    let verdict = rk_check(capacity);
    let deadline = rk_load64(slot + RK_H_DEADLINE);
    let max_offset = vec2<u32>(rk_params.max_offset_lo, rk_params.max_offset_hi);
    let sent = rk_load64(slot + RK_H_TS_PHYSICAL);
    if (verdict != RK_OK) {
        // Nothing in it can be trusted, so nobody to answer: counted.
        rk_count_error(verdict, true);
        return;
    }
    if (!rk_eq64(deadline, vec2<u32>(0u, 0u)) && rk_gt64(rk_now, deadline)) {
        rk_count_error(RK_ERROR_DEADLINE_EXPIRED, true);
        rk_set_outcome(RK_ERROR_DEADLINE_EXPIRED, "deadline expired before handling");
        report_v0 = deadline;
        report_v1 = rk_now;
    } else if (!rk_eq64(max_offset, vec2<u32>(0u, 0u)) && rk_gt64(sent, rk_add64(rk_now, max_offset))) {
        rk_count_error(RK_ERROR_CLOCK_SKEW, true);
        rk_set_outcome(RK_ERROR_CLOCK_SKEW, "the sender's clock is too far ahead");
        report_v0 = sent;
        report_v1 = rk_now;
    } else {
        rk_received = rk_update(rk_header_stamp());
        rk_processed += 1u;
        rk_send_reason_clear();
        rk_handle();
        if (rk_outcome != RK_OK) {
            rk_count_error(rk_outcome, false);
            if (rk_outcome == RK_ERROR_HANDLER_FAULT) {
                rk_failed = true;
            }
        }
    }
    if (rk_outcome != RK_OK) {
        rk_report(rk_outcome, report_v0, report_v1, true);
    }
}

fn rk_leave_routes() {
    rk_arena[rk_params.routes + rk_params.route_index * RK_ROUTE_WORDS + RK_ROUTE_USED] = 0u;
}

// Handles the next message of the input ring or of the K2K inbox, taking turns when both have
// one. Returns false when neither has one. One call site of `rk_handle_slot`.
fn rk_handle_next() -> bool {
    let c = rk_c;
    let tail = rk_arena[c + RK_CONTROL_BLOCK_INPUT_TAIL_OFFSET / 4u];
    var available = tail - rk_in_head;
    if (available > rk_in_capacity) {
        available = 0u;  // a host bug; never read past a lap
    }
    let ib = rk_params.inbox;
    let capacity = rk_arena[ib + RK_K2K_INBOX_HEADER_CAPACITY_OFFSET / 4u];
    let slot_bytes = rk_arena[ib + RK_K2K_INBOX_HEADER_SLOT_BYTES_OFFSET / 4u];
    let sequences = ib + RK_K2K_INBOX_SEQUENCES_OFFSET / 4u;
    let pos = rk_arena[ib + RK_K2K_INBOX_HEADER_HEAD_OFFSET / 4u];
    let inbox_ready = rk_arena[sequences + (pos & (capacity - 1u))] == pos + 1u;
    if (available == 0u && !inbox_ready) {
        return false;
    }
    let from_inbox = inbox_ready && (available == 0u || rk_arena[rk_params.scratch + RK_SCRATCH_TURN] != 0u);
    var slot = 0u;
    var payload_capacity = 0u;
    if (from_inbox) {
        let slots = ib + ((RK_K2K_INBOX_SEQUENCES_OFFSET + 4u * capacity + 63u) & ~63u) / 4u;
        slot = slots + (pos & (capacity - 1u)) * (slot_bytes / 4u);
        payload_capacity = slot_bytes - RK_MESSAGE_HEADER_BYTES;
    } else {
        slot = rk_params.input + (rk_in_head & (rk_in_capacity - 1u)) * rk_in_slot_words;
        payload_capacity = rk_in_slot_words * 4u - RK_MESSAGE_HEADER_BYTES;
    }
    rk_handle_slot(slot, payload_capacity);
    if (from_inbox) {
        rk_arena[sequences + (pos & (capacity - 1u))] = pos + capacity;
        rk_arena[ib + RK_K2K_INBOX_HEADER_HEAD_OFFSET / 4u] = pos + 1u;
        rk_arena[rk_params.scratch + RK_SCRATCH_TURN] = 0u;
    } else {
        rk_in_head += 1u;
        rk_arena[rk_params.scratch + RK_SCRATCH_TURN] = 1u;
    }
    return true;
}

fn rk_pending() -> bool {
    if (rk_parked() != 0u) {
        return true;
    }
    let tail = rk_arena[rk_c + RK_CONTROL_BLOCK_INPUT_TAIL_OFFSET / 4u];
    if (tail != rk_in_head) {
        return true;
    }
    let ib = rk_params.inbox;
    let capacity = rk_arena[ib + RK_K2K_INBOX_HEADER_CAPACITY_OFFSET / 4u];
    let pos = rk_arena[ib + RK_K2K_INBOX_HEADER_HEAD_OFFSET / 4u];
    return rk_arena[ib + RK_K2K_INBOX_SEQUENCES_OFFSET / 4u + (pos & (capacity - 1u))] == pos + 1u;
}

fn rk_publish(stop: u32) {
    let c = rk_c;
    rk_arena[c + RK_CONTROL_BLOCK_MESSAGES_PROCESSED_OFFSET / 4u] = rk_processed;
    rk_arena[c + RK_CONTROL_BLOCK_MESSAGES_REJECTED_OFFSET / 4u] = rk_rejected;
    rk_arena[c + RK_CONTROL_BLOCK_ERROR_COUNT_OFFSET / 4u] = rk_errors;
    rk_arena[c + RK_CONTROL_BLOCK_LAST_ERROR_OFFSET / 4u] = rk_last_error;
    rk_arena[c + RK_CONTROL_BLOCK_INPUT_HEAD_OFFSET / 4u] = rk_in_head;
    rk_arena[c + RK_CONTROL_BLOCK_OUTPUT_TAIL_OFFSET / 4u] = rk_out_tail;
    rk_arena[c + RK_CONTROL_BLOCK_HLC_PHYSICAL_LO_OFFSET / 4u] = rk_clock_physical.x;
    rk_arena[c + RK_CONTROL_BLOCK_HLC_PHYSICAL_HI_OFFSET / 4u] = rk_clock_physical.y;
    rk_arena[c + RK_CONTROL_BLOCK_HLC_LOGICAL_OFFSET / 4u] = rk_clock_logical;
    let beat = c + RK_CONTROL_BLOCK_HEARTBEAT_OFFSET / 4u;
    let heartbeat = rk_arena[beat] + 1u;
    rk_arena[beat] = heartbeat;
    rk_arena[c + RK_CONTROL_BLOCK_HAS_TERMINATED_OFFSET / 4u] = stop;
    // The same, with the inbox's ends and the park, where the host reads it in one copy.
    let r = rk_params.scratch + RK_SCRATCH_REPORT;
    let ib = rk_params.inbox;
    rk_arena[r + RK_WGPU_REPORT_HAS_TERMINATED_OFFSET / 4u] = stop;
    rk_arena[r + RK_WGPU_REPORT_INPUT_HEAD_OFFSET / 4u] = rk_in_head;
    rk_arena[r + RK_WGPU_REPORT_OUTPUT_TAIL_OFFSET / 4u] = rk_out_tail;
    rk_arena[r + RK_WGPU_REPORT_MESSAGES_PROCESSED_OFFSET / 4u] = rk_processed;
    rk_arena[r + RK_WGPU_REPORT_MESSAGES_REJECTED_OFFSET / 4u] = rk_rejected;
    rk_arena[r + RK_WGPU_REPORT_ERROR_COUNT_OFFSET / 4u] = rk_errors;
    rk_arena[r + RK_WGPU_REPORT_LAST_ERROR_OFFSET / 4u] = rk_last_error;
    rk_arena[r + RK_WGPU_REPORT_HEARTBEAT_OFFSET / 4u] = heartbeat;
    rk_arena[r + RK_WGPU_REPORT_HLC_PHYSICAL_LO_OFFSET / 4u] = rk_clock_physical.x;
    rk_arena[r + RK_WGPU_REPORT_HLC_PHYSICAL_HI_OFFSET / 4u] = rk_clock_physical.y;
    rk_arena[r + RK_WGPU_REPORT_HLC_LOGICAL_OFFSET / 4u] = rk_clock_logical;
    rk_arena[r + RK_WGPU_REPORT_CONTROL_ACK_OFFSET / 4u] = rk_arena[c + RK_CONTROL_BLOCK_CONTROL_ACK_OFFSET / 4u];
    rk_arena[r + RK_WGPU_REPORT_INBOX_TAIL_OFFSET / 4u] = rk_arena[ib + RK_K2K_INBOX_HEADER_TAIL_OFFSET / 4u];
    rk_arena[r + RK_WGPU_REPORT_INBOX_HEAD_OFFSET / 4u] = rk_arena[ib + RK_K2K_INBOX_HEADER_HEAD_OFFSET / 4u];
    rk_arena[r + RK_WGPU_REPORT_PARKED_OFFSET / 4u] = rk_parked();
    rk_arena[r + RK_WGPU_REPORT_OUTPUTS_OFFSET / 4u] = rk_outputs;
}

@compute @workgroup_size(1)
fn rk_main(@builtin(workgroup_id) workgroup: vec3<u32>) {
    rk_params = rk_dispatch_params[workgroup.x];
    let c = rk_params.control;
    rk_c = c;
    if (rk_arena[c + RK_CONTROL_BLOCK_HAS_TERMINATED_OFFSET / 4u] != RK_RUNNING) {
        return;
    }
    // Control: act on the flags uploaded with this sequence, and acknowledge it.
    let sequence = rk_arena[c + RK_CONTROL_BLOCK_CONTROL_SEQUENCE_OFFSET / 4u];
    let is_on = rk_arena[c + RK_CONTROL_BLOCK_IS_ACTIVE_OFFSET / 4u] != 0u;
    let terminate = rk_arena[c + RK_CONTROL_BLOCK_SHOULD_TERMINATE_OFFSET / 4u];
    rk_arena[c + RK_CONTROL_BLOCK_CONTROL_ACK_OFFSET / 4u] = sequence;

    rk_in_capacity = rk_arena[c + RK_CONTROL_BLOCK_INPUT_CAPACITY_OFFSET / 4u];
    rk_in_slot_words = rk_arena[c + RK_CONTROL_BLOCK_INPUT_SLOT_BYTES_OFFSET / 4u] / 4u;
    rk_out_capacity = rk_arena[c + RK_CONTROL_BLOCK_OUTPUT_CAPACITY_OFFSET / 4u];
    rk_out_slot_words = rk_arena[c + RK_CONTROL_BLOCK_OUTPUT_SLOT_BYTES_OFFSET / 4u] / 4u;
    rk_in_head = rk_arena[c + RK_CONTROL_BLOCK_INPUT_HEAD_OFFSET / 4u];
    rk_out_tail = rk_arena[c + RK_CONTROL_BLOCK_OUTPUT_TAIL_OFFSET / 4u];
    rk_out_head = rk_arena[c + RK_CONTROL_BLOCK_OUTPUT_HEAD_OFFSET / 4u];
    rk_processed = rk_arena[c + RK_CONTROL_BLOCK_MESSAGES_PROCESSED_OFFSET / 4u];
    rk_rejected = rk_arena[c + RK_CONTROL_BLOCK_MESSAGES_REJECTED_OFFSET / 4u];
    rk_errors = rk_arena[c + RK_CONTROL_BLOCK_ERROR_COUNT_OFFSET / 4u];
    rk_last_error = rk_arena[c + RK_CONTROL_BLOCK_LAST_ERROR_OFFSET / 4u];
    rk_clock_physical = vec2<u32>(rk_arena[c + RK_CONTROL_BLOCK_HLC_PHYSICAL_LO_OFFSET / 4u],
                                  rk_arena[c + RK_CONTROL_BLOCK_HLC_PHYSICAL_HI_OFFSET / 4u]);
    rk_clock_logical = rk_arena[c + RK_CONTROL_BLOCK_HLC_LOGICAL_OFFSET / 4u];
    rk_now = vec2<u32>(rk_params.now_lo, rk_params.now_hi);
    // The round's first dispatch starts its output count at zero.
    if (rk_arena[rk_params.scratch + RK_SCRATCH_ROUND] != rk_params.round) {
        rk_arena[rk_params.scratch + RK_SCRATCH_ROUND] = rk_params.round;
        rk_arena[rk_params.scratch + RK_SCRATCH_OUTPUTS] = 0u;
    }
    rk_outputs = rk_arena[rk_params.scratch + RK_SCRATCH_OUTPUTS];
    rk_failed = false;
    rk_detached = terminate == RK_TERMINATE_DRAIN_DETACHED;
    for (var i = 0u; i < rk_n(RK_H_USED_WORDS); i += 1u) {
        rk_arena[rk_params.scratch + RK_SCRATCH_OH + i] = 0u;
    }

    rk_flush_parked();
    // Terminate: leave the route table first, so that no K2K message arrives after the drain.
    if (terminate != RK_TERMINATE_NONE) {
        rk_leave_routes();
    }
    let failing = rk_arena[rk_params.scratch + RK_SCRATCH_FAILING] != 0u;
    // Messages while the actor runs, there is no parked output, and the round's output budget
    // (what the host reads back) is not spent: up to `loop_budget` in this dispatch. Drivers that
    // bound the iterations of a loop nest (lavapipe's llvmpipe cuts every nest at 65 535) get a
    // budget of 1 and several dispatches instead, so that one message's loops cannot starve the
    // next one's.
    var handled = 0u;
    loop {
        if (handled >= rk_params.loop_budget || failing || rk_failed) {
            break;
        }
        if (!(is_on || terminate != RK_TERMINATE_NONE) || rk_parked() != 0u || rk_outputs >= rk_params.out_budget) {
            break;
        }
        if (!rk_handle_next()) {
            break;
        }
        handled += 1u;
    }
    rk_arena[rk_params.scratch + RK_SCRATCH_OUTPUTS] = rk_outputs;
    if (rk_failed || failing) {
        rk_leave_routes();
        rk_last_error = RK_ERROR_HANDLER_FAULT;
        if (rk_parked() != 0u) {
            // Outputs first (the fault report among them), then the stop.
            rk_arena[rk_params.scratch + RK_SCRATCH_FAILING] = 1u;
            rk_publish(RK_RUNNING);
        } else {
            rk_publish(RK_FAILED);
        }
    } else if (terminate != RK_TERMINATE_NONE && !rk_pending()) {
        rk_publish(RK_TERMINATED);
    } else {
        rk_publish(RK_RUNNING);
    }
}
