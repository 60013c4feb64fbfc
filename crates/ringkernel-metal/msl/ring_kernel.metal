// language: metal2.4
#include <metal_stdlib>
#include <simd/simd.h>

using metal::uint;

struct _mslBufferSizes {
    uint size0;
    uint size1;
    uint size2;
};

struct type_2 {
    uint inner[3];
};
struct ControlBlock {
    metal::atomic_uint is_active;
    metal::atomic_uint should_terminate;
    metal::atomic_uint input_tail;
    metal::atomic_uint output_head;
    uint input_capacity;
    uint input_slot_bytes;
    uint output_capacity;
    uint output_slot_bytes;
    uint kernel_id;
    uint node_id;
    metal::atomic_uint control_sequence;
    metal::atomic_uint input_slot_checks;
    metal::atomic_uint output_slot_checks;
    type_2 _host_reserved;
    metal::atomic_uint has_terminated;
    metal::atomic_uint input_head;
    metal::atomic_uint output_tail;
    metal::atomic_uint messages_processed;
    metal::atomic_uint messages_rejected;
    metal::atomic_uint error_count;
    metal::atomic_uint last_error;
    metal::atomic_uint heartbeat;
    metal::atomic_uint hlc_sequence;
    metal::atomic_uint hlc_physical_lo;
    metal::atomic_uint hlc_physical_hi;
    metal::atomic_uint hlc_logical;
    metal::atomic_uint control_ack;
    type_2 _device_reserved;
};
struct type_3 {
    uint inner[2];
};
struct type_4 {
    uint inner[4];
};
struct type_5 {
    uint inner[42];
};
struct MessageHeader {
    uint magic;
    uint version;
    uint flags;
    uint message_type;
    uint payload_bytes;
    uint checksum;
    type_3 correlation_id;
    uint source_kernel;
    uint priority;
    type_3 timestamp_physical_ns;
    uint timestamp_logical;
    uint timestamp_node;
    type_3 deadline_ns;
    type_4 message_id;
    uint dest_kernel;
    uint slot_check;
    type_5 _padding;
};
struct type_6 {
    uint inner[10];
};
struct K2KInboxHeader {
    uint capacity;
    uint slot_bytes;
    metal::atomic_uint tail;
    metal::atomic_uint full_rejections;
    metal::atomic_uint last_source;
    metal::atomic_uint head;
    type_6 _reserved;
};
struct K2KRouteEntry {
    uint dest_threadgroup;
    uint inbox_offset;
    uint is_active;
    uint hops;
    uint bandwidth_hint;
    uint priority;
    uint direction;
    uint _reserved;
};
struct type_7 {
    K2KRouteEntry inner[26];
};
struct K2KRoutingTable {
    uint self_id;
    uint route_count;
    uint grid_dim_x;
    uint grid_dim_y;
    uint grid_dim_z;
    uint inbox_stride;
    type_3 _reserved;
    type_7 routes;
};
struct HaloMessageHeader {
    uint source;
    uint direction;
    uint width;
    uint height;
    uint depth;
    uint element_size;
    uint sequence;
    uint flags;
};
struct ErrorReportHeader {
    uint code;
    uint _reserved;
    type_3 value0_;
    type_3 value1_;
};
struct WgpuParams {
    uint control;
    uint input;
    uint output;
    uint inbox;
    uint state;
    uint state_bytes;
    uint scratch;
    uint number;
    uint routes;
    uint route_capacity;
    uint route_index;
    uint now_lo;
    uint now_hi;
    uint max_offset_lo;
    uint max_offset_hi;
    uint in_budget;
    uint out_budget;
    uint park_capacity;
    uint scratch_words;
    uint zero;
    uint park;
    uint loop_budget;
    uint round;
    uint _reserved1_;
};
struct type_8 {
    uint inner[5];
};
struct WgpuHostLine {
    uint is_active;
    uint should_terminate;
    uint input_tail;
    uint output_head;
    uint input_capacity;
    uint input_slot_bytes;
    uint output_capacity;
    uint output_slot_bytes;
    uint kernel_id;
    uint node_id;
    uint control_sequence;
    type_8 _reserved;
};
struct type_9 {
    uint inner[8];
};
struct WgpuRoute {
    uint used;
    uint number;
    uint name_hash;
    uint name_len;
    uint inbox;
    type_2 _reserved;
    type_9 name;
};
struct WgpuReport {
    uint has_terminated;
    uint input_head;
    uint output_tail;
    uint messages_processed;
    uint messages_rejected;
    uint error_count;
    uint last_error;
    uint heartbeat;
    uint hlc_physical_lo;
    uint hlc_physical_hi;
    uint hlc_logical;
    uint control_ack;
    uint inbox_tail;
    uint inbox_head;
    uint parked;
    uint outputs;
};
typedef uint type_10[1];
typedef WgpuParams type_11[1];
struct type_12 {
    uint inner[256];
};
struct RkStamp {
    metal::uint2 physical;
    uint logical;
    uint node;
};
constant uint RK_MESSAGE_MAGIC = 1213025106u;
constant uint RK_PROTOCOL_VERSION = 2u;
constant uint RK_MESSAGE_HEADER_BYTES = 256u;
constant uint RK_MESSAGE_HEADER_HOT_BYTES = 64u;
constant uint RK_MESSAGE_HEADER_USED_BYTES = 84u;
constant uint RK_SLOT_ALIGN_BYTES = 16u;
constant uint RK_MAX_QUEUE_CAPACITY = 1073741824u;
constant uint RK_K2K_MAX_ROUTES = 26u;
constant uint RK_K2K_INBOX_SEQUENCES_OFFSET = 64u;
constant uint RK_HOST_KERNEL_ID = 4294967295u;
constant uint RK_FLAG_CHECKSUM = 1u;
constant uint RK_FLAG_REPLY = 2u;
constant uint RK_FLAG_ERROR = 4u;
constant uint RK_FLAG_K2K = 8u;
constant uint RK_FLAGS_ALL = 15u;
constant uint RK_PRIORITY_LOW = 0u;
constant uint RK_PRIORITY_NORMAL = 1u;
constant uint RK_PRIORITY_HIGH = 2u;
constant uint RK_PRIORITY_CRITICAL = 3u;
constant uint RK_PRIORITY_MAX = 3u;
constant uint RK_ERROR_NONE = 0u;
constant uint RK_ERROR_SLOT_TOO_SMALL = 1u;
constant uint RK_ERROR_BAD_MAGIC = 2u;
constant uint RK_ERROR_UNSUPPORTED_VERSION = 3u;
constant uint RK_ERROR_UNKNOWN_FLAGS = 4u;
constant uint RK_ERROR_INVALID_PRIORITY = 5u;
constant uint RK_ERROR_PAYLOAD_TOO_LARGE = 6u;
constant uint RK_ERROR_CHECKSUM_MISMATCH = 7u;
constant uint RK_ERROR_DEADLINE_EXPIRED = 8u;
constant uint RK_ERROR_OUTPUT_FULL = 9u;
constant uint RK_ERROR_K2K_INBOX_FULL = 10u;
constant uint RK_ERROR_HANDLER_FAULT = 11u;
constant uint RK_ERROR_CLOCK_SKEW = 12u;
constant uint RK_ERROR_HANDLER_ERROR = 13u;
constant uint RK_ERROR_WRONG_MESSAGE_TYPE = 14u;
constant uint RK_ERROR_PAYLOAD_SIZE_MISMATCH = 15u;
constant uint RK_RUNNING = 0u;
constant uint RK_TERMINATED = 1u;
constant uint RK_FAILED = 2u;
constant uint RK_TERMINATE_NONE = 0u;
constant uint RK_TERMINATE_DRAIN = 1u;
constant uint RK_TERMINATE_DRAIN_DETACHED = 2u;
constant uint RK_DIR_NORTH = 0u;
constant uint RK_DIR_SOUTH = 1u;
constant uint RK_DIR_WEST = 2u;
constant uint RK_DIR_EAST = 3u;
constant uint RK_DIR_UP = 4u;
constant uint RK_DIR_DOWN = 5u;
constant uint RK_CONTROL_BLOCK_SIZE = 128u;
constant uint RK_CONTROL_BLOCK_IS_ACTIVE_OFFSET = 0u;
constant uint RK_CONTROL_BLOCK_SHOULD_TERMINATE_OFFSET = 4u;
constant uint RK_CONTROL_BLOCK_INPUT_TAIL_OFFSET = 8u;
constant uint RK_CONTROL_BLOCK_OUTPUT_HEAD_OFFSET = 12u;
constant uint RK_CONTROL_BLOCK_INPUT_CAPACITY_OFFSET = 16u;
constant uint RK_CONTROL_BLOCK_INPUT_SLOT_BYTES_OFFSET = 20u;
constant uint RK_CONTROL_BLOCK_OUTPUT_CAPACITY_OFFSET = 24u;
constant uint RK_CONTROL_BLOCK_OUTPUT_SLOT_BYTES_OFFSET = 28u;
constant uint RK_CONTROL_BLOCK_KERNEL_ID_OFFSET = 32u;
constant uint RK_CONTROL_BLOCK_NODE_ID_OFFSET = 36u;
constant uint RK_CONTROL_BLOCK_CONTROL_SEQUENCE_OFFSET = 40u;
constant uint RK_CONTROL_BLOCK_INPUT_SLOT_CHECKS_OFFSET = 44u;
constant uint RK_CONTROL_BLOCK_OUTPUT_SLOT_CHECKS_OFFSET = 48u;
constant uint RK_CONTROL_BLOCK_HAS_TERMINATED_OFFSET = 64u;
constant uint RK_CONTROL_BLOCK_INPUT_HEAD_OFFSET = 68u;
constant uint RK_CONTROL_BLOCK_OUTPUT_TAIL_OFFSET = 72u;
constant uint RK_CONTROL_BLOCK_MESSAGES_PROCESSED_OFFSET = 76u;
constant uint RK_CONTROL_BLOCK_MESSAGES_REJECTED_OFFSET = 80u;
constant uint RK_CONTROL_BLOCK_ERROR_COUNT_OFFSET = 84u;
constant uint RK_CONTROL_BLOCK_LAST_ERROR_OFFSET = 88u;
constant uint RK_CONTROL_BLOCK_HEARTBEAT_OFFSET = 92u;
constant uint RK_CONTROL_BLOCK_HLC_SEQUENCE_OFFSET = 96u;
constant uint RK_CONTROL_BLOCK_HLC_PHYSICAL_LO_OFFSET = 100u;
constant uint RK_CONTROL_BLOCK_HLC_PHYSICAL_HI_OFFSET = 104u;
constant uint RK_CONTROL_BLOCK_HLC_LOGICAL_OFFSET = 108u;
constant uint RK_CONTROL_BLOCK_CONTROL_ACK_OFFSET = 112u;
constant uint RK_MESSAGE_HEADER_SIZE = 256u;
constant uint RK_MESSAGE_HEADER_MAGIC_OFFSET = 0u;
constant uint RK_MESSAGE_HEADER_VERSION_OFFSET = 4u;
constant uint RK_MESSAGE_HEADER_FLAGS_OFFSET = 8u;
constant uint RK_MESSAGE_HEADER_MESSAGE_TYPE_OFFSET = 12u;
constant uint RK_MESSAGE_HEADER_PAYLOAD_BYTES_OFFSET = 16u;
constant uint RK_MESSAGE_HEADER_CHECKSUM_OFFSET = 20u;
constant uint RK_MESSAGE_HEADER_CORRELATION_ID_OFFSET = 24u;
constant uint RK_MESSAGE_HEADER_SOURCE_KERNEL_OFFSET = 32u;
constant uint RK_MESSAGE_HEADER_PRIORITY_OFFSET = 36u;
constant uint RK_MESSAGE_HEADER_TIMESTAMP_PHYSICAL_NS_OFFSET = 40u;
constant uint RK_MESSAGE_HEADER_TIMESTAMP_LOGICAL_OFFSET = 48u;
constant uint RK_MESSAGE_HEADER_TIMESTAMP_NODE_OFFSET = 52u;
constant uint RK_MESSAGE_HEADER_DEADLINE_NS_OFFSET = 56u;
constant uint RK_MESSAGE_HEADER_MESSAGE_ID_OFFSET = 64u;
constant uint RK_MESSAGE_HEADER_DEST_KERNEL_OFFSET = 80u;
constant uint RK_MESSAGE_HEADER_SLOT_CHECK_OFFSET = 84u;
constant uint RK_K2K_INBOX_HEADER_SIZE = 64u;
constant uint RK_K2K_INBOX_HEADER_CAPACITY_OFFSET = 0u;
constant uint RK_K2K_INBOX_HEADER_SLOT_BYTES_OFFSET = 4u;
constant uint RK_K2K_INBOX_HEADER_TAIL_OFFSET = 8u;
constant uint RK_K2K_INBOX_HEADER_FULL_REJECTIONS_OFFSET = 12u;
constant uint RK_K2K_INBOX_HEADER_LAST_SOURCE_OFFSET = 16u;
constant uint RK_K2K_INBOX_HEADER_HEAD_OFFSET = 20u;
constant uint RK_K2K_ROUTE_ENTRY_SIZE = 32u;
constant uint RK_K2K_ROUTE_ENTRY_DEST_THREADGROUP_OFFSET = 0u;
constant uint RK_K2K_ROUTE_ENTRY_INBOX_OFFSET_OFFSET = 4u;
constant uint RK_K2K_ROUTE_ENTRY_IS_ACTIVE_OFFSET = 8u;
constant uint RK_K2K_ROUTE_ENTRY_HOPS_OFFSET = 12u;
constant uint RK_K2K_ROUTE_ENTRY_BANDWIDTH_HINT_OFFSET = 16u;
constant uint RK_K2K_ROUTE_ENTRY_PRIORITY_OFFSET = 20u;
constant uint RK_K2K_ROUTE_ENTRY_DIRECTION_OFFSET = 24u;
constant uint RK_K2K_ROUTING_TABLE_SIZE = 864u;
constant uint RK_K2K_ROUTING_TABLE_SELF_ID_OFFSET = 0u;
constant uint RK_K2K_ROUTING_TABLE_ROUTE_COUNT_OFFSET = 4u;
constant uint RK_K2K_ROUTING_TABLE_GRID_DIM_X_OFFSET = 8u;
constant uint RK_K2K_ROUTING_TABLE_GRID_DIM_Y_OFFSET = 12u;
constant uint RK_K2K_ROUTING_TABLE_GRID_DIM_Z_OFFSET = 16u;
constant uint RK_K2K_ROUTING_TABLE_INBOX_STRIDE_OFFSET = 20u;
constant uint RK_K2K_ROUTING_TABLE_ROUTES_OFFSET = 32u;
constant uint RK_HALO_MESSAGE_HEADER_SIZE = 32u;
constant uint RK_HALO_MESSAGE_HEADER_SOURCE_OFFSET = 0u;
constant uint RK_HALO_MESSAGE_HEADER_DIRECTION_OFFSET = 4u;
constant uint RK_HALO_MESSAGE_HEADER_WIDTH_OFFSET = 8u;
constant uint RK_HALO_MESSAGE_HEADER_HEIGHT_OFFSET = 12u;
constant uint RK_HALO_MESSAGE_HEADER_DEPTH_OFFSET = 16u;
constant uint RK_HALO_MESSAGE_HEADER_ELEMENT_SIZE_OFFSET = 20u;
constant uint RK_HALO_MESSAGE_HEADER_SEQUENCE_OFFSET = 24u;
constant uint RK_HALO_MESSAGE_HEADER_FLAGS_OFFSET = 28u;
constant uint RK_ERROR_REPORT_HEADER_SIZE = 24u;
constant uint RK_ERROR_REPORT_HEADER_CODE_OFFSET = 0u;
constant uint RK_ERROR_REPORT_HEADER_VALUE0_OFFSET = 8u;
constant uint RK_ERROR_REPORT_HEADER_VALUE1_OFFSET = 16u;
constant uint RK_WGPU_PARAMS_SIZE = 96u;
constant uint RK_WGPU_PARAMS_CONTROL_OFFSET = 0u;
constant uint RK_WGPU_PARAMS_INPUT_OFFSET = 4u;
constant uint RK_WGPU_PARAMS_OUTPUT_OFFSET = 8u;
constant uint RK_WGPU_PARAMS_INBOX_OFFSET = 12u;
constant uint RK_WGPU_PARAMS_STATE_OFFSET = 16u;
constant uint RK_WGPU_PARAMS_STATE_BYTES_OFFSET = 20u;
constant uint RK_WGPU_PARAMS_SCRATCH_OFFSET = 24u;
constant uint RK_WGPU_PARAMS_NUMBER_OFFSET = 28u;
constant uint RK_WGPU_PARAMS_ROUTES_OFFSET = 32u;
constant uint RK_WGPU_PARAMS_ROUTE_CAPACITY_OFFSET = 36u;
constant uint RK_WGPU_PARAMS_ROUTE_INDEX_OFFSET = 40u;
constant uint RK_WGPU_PARAMS_NOW_LO_OFFSET = 44u;
constant uint RK_WGPU_PARAMS_NOW_HI_OFFSET = 48u;
constant uint RK_WGPU_PARAMS_MAX_OFFSET_LO_OFFSET = 52u;
constant uint RK_WGPU_PARAMS_MAX_OFFSET_HI_OFFSET = 56u;
constant uint RK_WGPU_PARAMS_IN_BUDGET_OFFSET = 60u;
constant uint RK_WGPU_PARAMS_OUT_BUDGET_OFFSET = 64u;
constant uint RK_WGPU_PARAMS_PARK_CAPACITY_OFFSET = 68u;
constant uint RK_WGPU_PARAMS_SCRATCH_WORDS_OFFSET = 72u;
constant uint RK_WGPU_PARAMS_ZERO_OFFSET = 76u;
constant uint RK_WGPU_PARAMS_PARK_OFFSET = 80u;
constant uint RK_WGPU_PARAMS_LOOP_BUDGET_OFFSET = 84u;
constant uint RK_WGPU_PARAMS_ROUND_OFFSET = 88u;
constant uint RK_WGPU_HOST_LINE_SIZE = 64u;
constant uint RK_WGPU_HOST_LINE_IS_ACTIVE_OFFSET = 0u;
constant uint RK_WGPU_HOST_LINE_SHOULD_TERMINATE_OFFSET = 4u;
constant uint RK_WGPU_HOST_LINE_INPUT_TAIL_OFFSET = 8u;
constant uint RK_WGPU_HOST_LINE_OUTPUT_HEAD_OFFSET = 12u;
constant uint RK_WGPU_HOST_LINE_INPUT_CAPACITY_OFFSET = 16u;
constant uint RK_WGPU_HOST_LINE_INPUT_SLOT_BYTES_OFFSET = 20u;
constant uint RK_WGPU_HOST_LINE_OUTPUT_CAPACITY_OFFSET = 24u;
constant uint RK_WGPU_HOST_LINE_OUTPUT_SLOT_BYTES_OFFSET = 28u;
constant uint RK_WGPU_HOST_LINE_KERNEL_ID_OFFSET = 32u;
constant uint RK_WGPU_HOST_LINE_NODE_ID_OFFSET = 36u;
constant uint RK_WGPU_HOST_LINE_CONTROL_SEQUENCE_OFFSET = 40u;
constant uint RK_WGPU_ROUTE_SIZE = 64u;
constant uint RK_WGPU_ROUTE_USED_OFFSET = 0u;
constant uint RK_WGPU_ROUTE_NUMBER_OFFSET = 4u;
constant uint RK_WGPU_ROUTE_NAME_HASH_OFFSET = 8u;
constant uint RK_WGPU_ROUTE_NAME_LEN_OFFSET = 12u;
constant uint RK_WGPU_ROUTE_INBOX_OFFSET = 16u;
constant uint RK_WGPU_ROUTE_NAME_OFFSET = 32u;
constant uint RK_WGPU_REPORT_SIZE = 64u;
constant uint RK_WGPU_REPORT_HAS_TERMINATED_OFFSET = 0u;
constant uint RK_WGPU_REPORT_INPUT_HEAD_OFFSET = 4u;
constant uint RK_WGPU_REPORT_OUTPUT_TAIL_OFFSET = 8u;
constant uint RK_WGPU_REPORT_MESSAGES_PROCESSED_OFFSET = 12u;
constant uint RK_WGPU_REPORT_MESSAGES_REJECTED_OFFSET = 16u;
constant uint RK_WGPU_REPORT_ERROR_COUNT_OFFSET = 20u;
constant uint RK_WGPU_REPORT_LAST_ERROR_OFFSET = 24u;
constant uint RK_WGPU_REPORT_HEARTBEAT_OFFSET = 28u;
constant uint RK_WGPU_REPORT_HLC_PHYSICAL_LO_OFFSET = 32u;
constant uint RK_WGPU_REPORT_HLC_PHYSICAL_HI_OFFSET = 36u;
constant uint RK_WGPU_REPORT_HLC_LOGICAL_OFFSET = 40u;
constant uint RK_WGPU_REPORT_CONTROL_ACK_OFFSET = 44u;
constant uint RK_WGPU_REPORT_INBOX_TAIL_OFFSET = 48u;
constant uint RK_WGPU_REPORT_INBOX_HEAD_OFFSET = 52u;
constant uint RK_WGPU_REPORT_PARKED_OFFSET = 56u;
constant uint RK_WGPU_REPORT_OUTPUTS_OFFSET = 60u;
constant uint RK_OK = 0u;
constant uint RK_ERROR_REPORT_TYPE = 4294967294u;
constant uint RK_SEND_REASON = 4294967295u;
constant uint RK_REASON_WORDS = 64u;
constant uint RK_ROUTE_WORDS = 16u;
constant uint RK_ROUTE_USED = 0u;
constant uint RK_ROUTE_NUMBER = 1u;
constant uint RK_ROUTE_HASH = 2u;
constant uint RK_ROUTE_NAME_LEN = 3u;
constant uint RK_ROUTE_INBOX = 4u;
constant uint RK_ROUTE_NAME = 8u;
constant uint RK_SCRATCH_PARKED = 2u;
constant uint RK_SCRATCH_OUTPUTS = 3u;
constant uint RK_SCRATCH_OH = 4u;
constant uint RK_SCRATCH_FAILING = 25u;
constant uint RK_SCRATCH_TURN = 26u;
constant uint RK_SCRATCH_REASON = 32u;
constant uint RK_SCRATCH_SEND_REASON = 96u;
constant uint RK_SCRATCH_REPORT = 160u;
constant uint RK_SCRATCH_RESERVED = 176u;
constant uint RK_SCRATCH_ROUND = 27u;
constant uint RK_H_MAGIC = 0u;
constant uint RK_H_VERSION = 1u;
constant uint RK_H_FLAGS = 2u;
constant uint RK_H_TYPE = 3u;
constant uint RK_H_PAYLOAD = 4u;
constant uint RK_H_CHECKSUM = 5u;
constant uint RK_H_CORRELATION = 6u;
constant uint RK_H_SOURCE = 8u;
constant uint RK_H_PRIORITY = 9u;
constant uint RK_H_TS_PHYSICAL = 10u;
constant uint RK_H_TS_LOGICAL = 12u;
constant uint RK_H_TS_NODE = 13u;
constant uint RK_H_DEADLINE = 14u;
constant uint RK_H_MESSAGE_ID = 16u;
constant uint RK_H_DEST = 20u;
constant uint RK_H_USED_WORDS = 21u;
constant uint RK_HEADER_WORDS = 64u;
constant uint RK_LIT_COUNT = 14u;

uint rk_n(
    uint n,
    thread WgpuParams& rk_params
) {
    uint _e3 = rk_params.zero;
    return n + _e3;
}

bool rk_gt64_(
    metal::uint2 a,
    metal::uint2 b
) {
    bool local_7 = {};
    bool local_8 = {};
    if (!((a.y > b.y))) {
        if (a.y == b.y) {
            local_8 = a.x > b.x;
        } else {
            local_8 = false;
        }
        bool _e17 = local_8;
        local_7 = _e17;
    } else {
        local_7 = true;
    }
    bool _e19 = local_7;
    return _e19;
}

bool rk_eq64_(
    metal::uint2 a_1,
    metal::uint2 b_1
) {
    bool local_9 = {};
    if (a_1.x == b_1.x) {
        local_9 = a_1.y == b_1.y;
    } else {
        local_9 = false;
    }
    bool _e11 = local_9;
    return _e11;
}

metal::uint2 rk_add64_(
    metal::uint2 a_2,
    metal::uint2 b_2
) {
    uint carry = 0u;
    uint lo = a_2.x + b_2.x;
    if (lo < a_2.x) {
        carry = 1u;
    }
    uint _e13 = carry;
    return metal::uint2(lo, (a_2.y + b_2.y) + _e13);
}

metal::uint2 rk_max64_(
    metal::uint2 a_3,
    metal::uint2 b_3
) {
    bool _e2 = rk_gt64_(a_3, b_3);
    if (_e2) {
        return a_3;
    }
    return b_3;
}

metal::uint2 rk_load64_(
    uint word,
    device type_10 const& rk_arena,
    constant _mslBufferSizes& _buffer_sizes
) {
    uint _e3 = rk_arena[word];
    uint _e8 = rk_arena[word + 1u];
    return metal::uint2(_e3, _e8);
}

uint naga_div(uint lhs, uint rhs) {
    return lhs / metal::select(rhs, 1u, rhs == 0u);
}

uint naga_mod(uint lhs, uint rhs) {
    return lhs % metal::select(rhs, 1u, rhs == 0u);
}

uint rk_byte_at(
    uint word_base,
    uint i_1,
    device type_10 const& rk_arena,
    constant _mslBufferSizes& _buffer_sizes
) {
    uint _e7 = rk_arena[word_base + naga_div(i_1, 4u)];
    return (_e7 >> (8u * naga_mod(i_1, 4u))) & 255u;
}

void rk_set_byte(
    uint word_base_1,
    uint i_2,
    uint b_4,
    device type_10& rk_arena,
    constant _mslBufferSizes& _buffer_sizes
) {
    uint w_1 = word_base_1 + naga_div(i_2, 4u);
    uint shift = 8u * naga_mod(i_2, 4u);
    uint _e14 = rk_arena[w_1];
    rk_arena[w_1] = (_e14 & ~((255u << shift))) | ((b_4 & 255u) << shift);
    return;
}

uint rk_lit_len(
    uint lit,
    device type_10 const& rk_lits,
    constant _mslBufferSizes& _buffer_sizes
) {
    uint _e5 = rk_lits[lit + 1u];
    uint _e8 = rk_lits[lit];
    return _e5 - _e8;
}

uint rk_lit_hash(
    uint lit_1,
    device type_10 const& rk_lits,
    constant _mslBufferSizes& _buffer_sizes
) {
    uint _e5 = rk_lits[15u + lit_1];
    return _e5;
}

uint rk_lit_byte(
    uint lit_2,
    uint i_3,
    device type_10 const& rk_lits,
    constant _mslBufferSizes& _buffer_sizes
) {
    uint _e4 = rk_lits[lit_2];
    uint at = _e4 + i_3;
    uint _e12 = rk_lits[29u + naga_div(at, 4u)];
    return (_e12 >> (8u * naga_mod(at, 4u))) & 255u;
}

uint rk_crc32c(
    uint word_base_2,
    uint len,
    device type_10 const& rk_arena,
    device type_12 const& rk_crc_table,
    constant _mslBufferSizes& _buffer_sizes
) {
    uint crc = 4294967295u;
    uint w = 0u;
    uint i_4 = {};
    uint words = naga_div(len, 4u);
    uint2 loop_bound = uint2(4294967295u);
    bool loop_init = true;
    while(true) {
        if (metal::all(loop_bound == uint2(0u))) { break; }
        loop_bound -= uint2(loop_bound.y == 0u, 1u);
        if (!loop_init) {
            uint _e124 = w;
            w = _e124 + 2u;
        }
        loop_init = false;
        uint _e8 = w;
        if ((_e8 + 2u) <= words) {
        } else {
            break;
        }
        {
            uint _e13 = w;
            uint v_2 = rk_arena[word_base_2 + _e13];
            uint _e18 = w;
            uint u = rk_arena[(word_base_2 + _e18) + 1u];
            uint _e25 = crc;
            uint _e30 = rk_crc_table.inner[(_e25 ^ v_2) & 255u];
            uint _e31 = crc;
            crc = _e30 ^ (_e31 >> 8u);
            uint _e36 = crc;
            uint _e43 = rk_crc_table.inner[(_e36 ^ (v_2 >> 8u)) & 255u];
            uint _e44 = crc;
            crc = _e43 ^ (_e44 >> 8u);
            uint _e49 = crc;
            uint _e56 = rk_crc_table.inner[(_e49 ^ (v_2 >> 16u)) & 255u];
            uint _e57 = crc;
            crc = _e56 ^ (_e57 >> 8u);
            uint _e62 = crc;
            uint _e69 = rk_crc_table.inner[(_e62 ^ (v_2 >> 24u)) & 255u];
            uint _e70 = crc;
            crc = _e69 ^ (_e70 >> 8u);
            uint _e75 = crc;
            uint _e80 = rk_crc_table.inner[(_e75 ^ u) & 255u];
            uint _e81 = crc;
            crc = _e80 ^ (_e81 >> 8u);
            uint _e86 = crc;
            uint _e93 = rk_crc_table.inner[(_e86 ^ (u >> 8u)) & 255u];
            uint _e94 = crc;
            crc = _e93 ^ (_e94 >> 8u);
            uint _e99 = crc;
            uint _e106 = rk_crc_table.inner[(_e99 ^ (u >> 16u)) & 255u];
            uint _e107 = crc;
            crc = _e106 ^ (_e107 >> 8u);
            uint _e112 = crc;
            uint _e119 = rk_crc_table.inner[(_e112 ^ (u >> 24u)) & 255u];
            uint _e120 = crc;
            crc = _e119 ^ (_e120 >> 8u);
        }
    }
    uint2 loop_bound_1 = uint2(4294967295u);
    bool loop_init_1 = true;
    while(true) {
        if (metal::all(loop_bound_1 == uint2(0u))) { break; }
        loop_bound_1 -= uint2(loop_bound_1.y == 0u, 1u);
        if (!loop_init_1) {
            uint _e184 = w;
            w = _e184 + 1u;
        }
        loop_init_1 = false;
        uint _e127 = w;
        if (_e127 < words) {
        } else {
            break;
        }
        {
            uint _e130 = w;
            uint v_3 = rk_arena[word_base_2 + _e130];
            uint _e135 = crc;
            uint _e140 = rk_crc_table.inner[(_e135 ^ v_3) & 255u];
            uint _e141 = crc;
            crc = _e140 ^ (_e141 >> 8u);
            uint _e146 = crc;
            uint _e153 = rk_crc_table.inner[(_e146 ^ (v_3 >> 8u)) & 255u];
            uint _e154 = crc;
            crc = _e153 ^ (_e154 >> 8u);
            uint _e159 = crc;
            uint _e166 = rk_crc_table.inner[(_e159 ^ (v_3 >> 16u)) & 255u];
            uint _e167 = crc;
            crc = _e166 ^ (_e167 >> 8u);
            uint _e172 = crc;
            uint _e179 = rk_crc_table.inner[(_e172 ^ (v_3 >> 24u)) & 255u];
            uint _e180 = crc;
            crc = _e179 ^ (_e180 >> 8u);
        }
    }
    i_4 = words * 4u;
    uint2 loop_bound_2 = uint2(4294967295u);
    bool loop_init_2 = true;
    while(true) {
        if (metal::all(loop_bound_2 == uint2(0u))) { break; }
        loop_bound_2 -= uint2(loop_bound_2.y == 0u, 1u);
        if (!loop_init_2) {
            uint _e205 = i_4;
            i_4 = _e205 + 1u;
        }
        loop_init_2 = false;
        uint _e190 = i_4;
        if (_e190 < len) {
        } else {
            break;
        }
        {
            uint _e193 = crc;
            uint _e194 = i_4;
            uint _e195 = rk_byte_at(word_base_2, _e194, rk_arena, _buffer_sizes);
            uint _e200 = rk_crc_table.inner[(_e193 ^ _e195) & 255u];
            uint _e201 = crc;
            crc = _e200 ^ (_e201 >> 8u);
        }
    }
    uint _e208 = crc;
    return ~(_e208);
}

void rk_copy_words(
    uint dst,
    uint src,
    uint n_1,
    device type_10& rk_arena,
    constant _mslBufferSizes& _buffer_sizes
) {
    uint i_5 = 0u;
    uint2 loop_bound_3 = uint2(4294967295u);
    bool loop_init_3 = true;
    while(true) {
        if (metal::all(loop_bound_3 == uint2(0u))) { break; }
        loop_bound_3 -= uint2(loop_bound_3.y == 0u, 1u);
        if (!loop_init_3) {
            uint _e57 = i_5;
            i_5 = _e57 + 4u;
        }
        loop_init_3 = false;
        uint _e5 = i_5;
        if ((_e5 + 4u) <= n_1) {
        } else {
            break;
        }
        {
            uint _e10 = i_5;
            uint a_4 = rk_arena[src + _e10];
            uint _e15 = i_5;
            uint b_6 = rk_arena[(src + _e15) + 1u];
            uint _e22 = i_5;
            uint c = rk_arena[(src + _e22) + 2u];
            uint _e29 = i_5;
            uint d = rk_arena[(src + _e29) + 3u];
            uint _e36 = i_5;
            rk_arena[dst + _e36] = a_4;
            uint _e40 = i_5;
            rk_arena[(dst + _e40) + 1u] = b_6;
            uint _e46 = i_5;
            rk_arena[(dst + _e46) + 2u] = c;
            uint _e52 = i_5;
            rk_arena[(dst + _e52) + 3u] = d;
        }
    }
    uint2 loop_bound_4 = uint2(4294967295u);
    bool loop_init_4 = true;
    while(true) {
        if (metal::all(loop_bound_4 == uint2(0u))) { break; }
        loop_bound_4 -= uint2(loop_bound_4.y == 0u, 1u);
        if (!loop_init_4) {
            uint _e71 = i_5;
            i_5 = _e71 + 1u;
        }
        loop_init_4 = false;
        uint _e60 = i_5;
        if (_e60 < n_1) {
        } else {
            break;
        }
        {
            uint _e63 = i_5;
            uint _e67 = i_5;
            uint _e70 = rk_arena[src + _e67];
            rk_arena[dst + _e63] = _e70;
        }
    }
    return;
}

void rk_send_reason_clear(
    thread uint& rk_send_reason_len
) {
    rk_send_reason_len = 0u;
    return;
}

void rk_send_reason_byte(
    uint b_5,
    device type_10& rk_arena,
    thread WgpuParams& rk_params,
    thread uint& rk_send_reason_len,
    constant _mslBufferSizes& _buffer_sizes
) {
    uint _e2 = rk_send_reason_len;
    if (_e2 < 256u) {
        uint _e7 = rk_params.scratch;
        uint _e11 = rk_send_reason_len;
        uint w_2 = (_e7 + RK_SCRATCH_SEND_REASON) + naga_div(_e11, 4u);
        uint _e17 = rk_send_reason_len;
        uint shift_1 = 8u * naga_mod(_e17, 4u);
        if (shift_1 == 0u) {
            rk_arena[w_2] = b_5 & 255u;
        } else {
            uint _e31 = rk_arena[w_2];
            rk_arena[w_2] = _e31 | ((b_5 & 255u) << shift_1);
        }
        uint _e37 = rk_send_reason_len;
        rk_send_reason_len = _e37 + 1u;
        return;
    } else {
        return;
    }
}

void rk_send_reason_lit(
    uint lit_3,
    device type_10& rk_arena,
    device type_10 const& rk_lits,
    thread WgpuParams& rk_params,
    thread uint& rk_send_reason_len,
    constant _mslBufferSizes& _buffer_sizes
) {
    uint i_6 = 0u;
    uint2 loop_bound_5 = uint2(4294967295u);
    bool loop_init_5 = true;
    while(true) {
        if (metal::all(loop_bound_5 == uint2(0u))) { break; }
        loop_bound_5 -= uint2(loop_bound_5.y == 0u, 1u);
        if (!loop_init_5) {
            uint _e8 = i_6;
            i_6 = _e8 + 1u;
        }
        loop_init_5 = false;
        uint _e3 = i_6;
        uint _e4 = rk_lit_len(lit_3, rk_lits, _buffer_sizes);
        if (_e3 < _e4) {
        } else {
            break;
        }
        {
            uint _e6 = i_6;
            uint _e7 = rk_lit_byte(lit_3, _e6, rk_lits, _buffer_sizes);
            rk_send_reason_byte(_e7, rk_arena, rk_params, rk_send_reason_len, _buffer_sizes);
        }
    }
    return;
}

void rk_send_reason_u32_(
    uint value,
    device type_10& rk_arena,
    thread WgpuParams& rk_params,
    thread uint& rk_send_reason_len,
    constant _mslBufferSizes& _buffer_sizes
) {
    uint power = 1u;
    uint2 loop_bound_6 = uint2(4294967295u);
    while(true) {
        if (metal::all(loop_bound_6 == uint2(0u))) { break; }
        loop_bound_6 -= uint2(loop_bound_6.y == 0u, 1u);
        uint _e3 = power;
        if (naga_div(value, _e3) >= 10u) {
        } else {
            break;
        }
        {
            uint _e7 = power;
            power = _e7 * 10u;
        }
    }
    uint2 loop_bound_7 = uint2(4294967295u);
    while(true) {
        if (metal::all(loop_bound_7 == uint2(0u))) { break; }
        loop_bound_7 -= uint2(loop_bound_7.y == 0u, 1u);
        uint _e10 = power;
        if (_e10 > 0u) {
        } else {
            break;
        }
        {
            uint _e14 = power;
            rk_send_reason_byte(48u + naga_mod(naga_div(value, _e14), 10u), rk_arena, rk_params, rk_send_reason_len, _buffer_sizes);
            uint _e19 = power;
            power = naga_div(_e19, 10u);
        }
    }
    return;
}

void rk_send_reason_kernel(
    uint name_lit,
    uint number,
    device type_10& rk_arena,
    device type_10 const& rk_lits,
    thread WgpuParams& rk_params,
    thread uint& rk_send_reason_len,
    constant _mslBufferSizes& _buffer_sizes
) {
    if (name_lit != RK_SEND_REASON) {
        rk_send_reason_lit(name_lit, rk_arena, rk_lits, rk_params, rk_send_reason_len, _buffer_sizes);
        return;
    } else {
        rk_send_reason_byte(35u, rk_arena, rk_params, rk_send_reason_len, _buffer_sizes);
        rk_send_reason_u32_(number, rk_arena, rk_params, rk_send_reason_len, _buffer_sizes);
        return;
    }
}

RkStamp rk_tick(
    thread WgpuParams& rk_params,
    thread metal::uint2& rk_clock_physical,
    thread uint& rk_clock_logical,
    thread metal::uint2& rk_now
) {
    metal::uint2 _e1 = rk_now;
    metal::uint2 _e3 = rk_clock_physical;
    bool _e4 = rk_gt64_(_e1, _e3);
    if (_e4) {
        metal::uint2 _e7 = rk_now;
        rk_clock_physical = _e7;
        rk_clock_logical = 0u;
    } else {
        uint _e11 = rk_clock_logical;
        if (_e11 == 4294967295u) {
            metal::uint2 _e16 = rk_clock_physical;
            metal::uint2 _e20 = rk_add64_(_e16, metal::uint2(1u, 0u));
            rk_clock_physical = _e20;
            rk_clock_logical = 0u;
        } else {
            uint _e24 = rk_clock_logical;
            rk_clock_logical = _e24 + 1u;
        }
    }
    metal::uint2 _e28 = rk_clock_physical;
    uint _e30 = rk_clock_logical;
    uint _e33 = rk_params.number;
    return RkStamp {_e28, _e30, _e33};
}

RkStamp rk_update(
    RkStamp r,
    thread WgpuParams& rk_params,
    thread metal::uint2& rk_clock_physical,
    thread uint& rk_clock_logical,
    thread metal::uint2& rk_now
) {
    metal::uint2 p = {};
    uint base = 0u;
    bool bump = true;
    bool local_10 = {};
    metal::uint2 lp = rk_clock_physical;
    metal::uint2 _e4 = rk_now;
    metal::uint2 _e5 = rk_max64_(_e4, lp);
    p = _e5;
    metal::uint2 _e7 = p;
    metal::uint2 _e9 = rk_max64_(_e7, r.physical);
    p = _e9;
    metal::uint2 _e14 = p;
    bool _e15 = rk_eq64_(_e14, lp);
    if (_e15) {
        metal::uint2 _e18 = p;
        bool _e20 = rk_eq64_(_e18, r.physical);
        local_10 = _e20;
    } else {
        local_10 = false;
    }
    bool _e22 = local_10;
    if (_e22) {
        uint _e24 = rk_clock_logical;
        base = metal::max(_e24, r.logical);
    } else {
        metal::uint2 _e27 = p;
        bool _e28 = rk_eq64_(_e27, lp);
        if (_e28) {
            uint _e30 = rk_clock_logical;
            base = _e30;
        } else {
            metal::uint2 _e31 = p;
            bool _e33 = rk_eq64_(_e31, r.physical);
            if (_e33) {
                base = r.logical;
            } else {
                bump = false;
            }
        }
    }
    bool _e36 = bump;
    if (_e36) {
        uint _e37 = base;
        if (_e37 == 4294967295u) {
            metal::uint2 _e40 = p;
            metal::uint2 _e44 = rk_add64_(_e40, metal::uint2(1u, 0u));
            p = _e44;
            base = 0u;
        } else {
            uint _e46 = base;
            base = _e46 + 1u;
        }
    }
    metal::uint2 _e50 = p;
    rk_clock_physical = _e50;
    uint _e52 = base;
    rk_clock_logical = _e52;
    metal::uint2 _e53 = p;
    uint _e54 = base;
    uint _e57 = rk_params.number;
    return RkStamp {_e53, _e54, _e57};
}

uint rk_message_type(
    device type_10 const& rk_arena,
    thread uint& rk_msg,
    constant _mslBufferSizes& _buffer_sizes
) {
    uint _e2 = rk_msg;
    uint _e6 = rk_arena[_e2 + RK_H_TYPE];
    return _e6;
}

uint rk_payload_len(
    device type_10 const& rk_arena,
    thread uint& rk_msg,
    constant _mslBufferSizes& _buffer_sizes
) {
    uint _e2 = rk_msg;
    uint _e6 = rk_arena[_e2 + RK_H_PAYLOAD];
    return _e6;
}

uint rk_payload_word(
    uint i_7,
    device type_10 const& rk_arena,
    thread uint& rk_msg,
    constant _mslBufferSizes& _buffer_sizes
) {
    uint _e3 = rk_payload_len(rk_arena, rk_msg, _buffer_sizes);
    if ((i_7 * 4u) >= _e3) {
        return 0u;
    }
    uint _e8 = rk_msg;
    uint _e13 = rk_arena[(_e8 + RK_HEADER_WORDS) + i_7];
    return _e13;
}

uint rk_payload_byte(
    uint i_8,
    device type_10 const& rk_arena,
    thread uint& rk_msg,
    constant _mslBufferSizes& _buffer_sizes
) {
    uint _e1 = rk_payload_len(rk_arena, rk_msg, _buffer_sizes);
    if (i_8 >= _e1) {
        return 0u;
    }
    uint _e5 = rk_msg;
    uint _e8 = rk_byte_at(_e5 + RK_HEADER_WORDS, i_8, rk_arena, _buffer_sizes);
    return _e8;
}

bool rk_payload_is(
    uint lit_4,
    device type_10 const& rk_arena,
    device type_10 const& rk_lits,
    thread uint& rk_msg,
    constant _mslBufferSizes& _buffer_sizes
) {
    uint i_9 = 0u;
    uint _e1 = rk_lit_len(lit_4, rk_lits, _buffer_sizes);
    uint _e2 = rk_payload_len(rk_arena, rk_msg, _buffer_sizes);
    if (_e2 != _e1) {
        return false;
    }
    uint2 loop_bound_8 = uint2(4294967295u);
    bool loop_init_6 = true;
    while(true) {
        if (metal::all(loop_bound_8 == uint2(0u))) { break; }
        loop_bound_8 -= uint2(loop_bound_8.y == 0u, 1u);
        if (!loop_init_6) {
            uint _e15 = i_9;
            i_9 = _e15 + 1u;
        }
        loop_init_6 = false;
        uint _e7 = i_9;
        if (_e7 < _e1) {
        } else {
            break;
        }
        {
            uint _e9 = i_9;
            uint _e10 = rk_payload_byte(_e9, rk_arena, rk_msg, _buffer_sizes);
            uint _e11 = i_9;
            uint _e12 = rk_lit_byte(lit_4, _e11, rk_lits, _buffer_sizes);
            if (_e10 != _e12) {
                return false;
            }
        }
    }
    return true;
}

metal::uint2 rk_correlation(
    device type_10 const& rk_arena,
    thread uint& rk_msg,
    constant _mslBufferSizes& _buffer_sizes
) {
    uint _e1 = rk_msg;
    metal::uint2 _e4 = rk_load64_(_e1 + RK_H_CORRELATION, rk_arena, _buffer_sizes);
    return _e4;
}

uint rk_source(
    device type_10 const& rk_arena,
    thread uint& rk_msg,
    constant _mslBufferSizes& _buffer_sizes
) {
    uint _e2 = rk_msg;
    uint _e6 = rk_arena[_e2 + RK_H_SOURCE];
    return _e6;
}

RkStamp rk_header_stamp(
    device type_10 const& rk_arena,
    thread uint& rk_msg,
    constant _mslBufferSizes& _buffer_sizes
) {
    uint _e1 = rk_msg;
    metal::uint2 _e4 = rk_load64_(_e1 + RK_H_TS_PHYSICAL, rk_arena, _buffer_sizes);
    uint _e7 = rk_msg;
    uint _e11 = rk_arena[_e7 + RK_H_TS_LOGICAL];
    uint _e14 = rk_msg;
    uint _e18 = rk_arena[_e14 + RK_H_TS_NODE];
    return RkStamp {_e4, _e11, _e18};
}

RkStamp rk_received_at(
    thread RkStamp& rk_received
) {
    RkStamp _e1 = rk_received;
    return _e1;
}

uint rk_kernel_number(
    thread WgpuParams& rk_params
) {
    uint _e2 = rk_params.number;
    return _e2;
}

uint rk_state_len(
    thread WgpuParams& rk_params
) {
    uint _e2 = rk_params.state_bytes;
    return _e2;
}

uint rk_state_word(
    uint i_10,
    device type_10 const& rk_arena,
    thread WgpuParams& rk_params,
    constant _mslBufferSizes& _buffer_sizes
) {
    uint _e5 = rk_params.state_bytes;
    if ((i_10 * 4u) >= _e5) {
        return 0u;
    }
    uint _e11 = rk_params.state;
    uint _e14 = rk_arena[_e11 + i_10];
    return _e14;
}

void rk_set_state_word(
    uint i_11,
    uint v,
    device type_10& rk_arena,
    thread WgpuParams& rk_params,
    constant _mslBufferSizes& _buffer_sizes
) {
    uint _e6 = rk_params.state_bytes;
    if ((i_11 * 4u) < _e6) {
        uint _e11 = rk_params.state;
        rk_arena[_e11 + i_11] = v;
        return;
    } else {
        return;
    }
}

uint rk_out_base(
    thread WgpuParams& rk_params
) {
    uint _e2 = rk_params.scratch;
    return _e2 + RK_SCRATCH_RESERVED;
}

uint rk_out_capacity_bytes(
    thread WgpuParams& rk_params
) {
    uint _e2 = rk_params.scratch_words;
    return (_e2 - RK_SCRATCH_RESERVED) * 4u;
}

void rk_out_word(
    uint i_12,
    uint v_1,
    device type_10& rk_arena,
    thread WgpuParams& rk_params,
    constant _mslBufferSizes& _buffer_sizes
) {
    uint _e4 = rk_out_capacity_bytes(rk_params);
    if ((i_12 * 4u) < _e4) {
        uint _e7 = rk_out_base(rk_params);
        rk_arena[_e7 + i_12] = v_1;
        return;
    } else {
        return;
    }
}

uint rk_out_payload(
    device type_10& rk_arena,
    thread WgpuParams& rk_params,
    thread uint& rk_msg,
    constant _mslBufferSizes& _buffer_sizes
) {
    uint _e0 = rk_payload_len(rk_arena, rk_msg, _buffer_sizes);
    uint _e1 = rk_out_capacity_bytes(rk_params);
    uint len_10 = metal::min(_e0, _e1);
    uint _e3 = rk_out_base(rk_params);
    uint _e5 = rk_msg;
    rk_copy_words(_e3, _e5 + RK_HEADER_WORDS, naga_div(len_10 + 3u, 4u), rk_arena, _buffer_sizes);
    return len_10;
}

uint rk_out_lit(
    uint lit_5,
    device type_10& rk_arena,
    device type_10 const& rk_lits,
    thread WgpuParams& rk_params,
    constant _mslBufferSizes& _buffer_sizes
) {
    uint i_13 = 0u;
    uint i_14 = 0u;
    uint _e1 = rk_lit_len(lit_5, rk_lits, _buffer_sizes);
    uint _e2 = rk_out_capacity_bytes(rk_params);
    uint n_2 = metal::min(_e1, _e2);
    uint2 loop_bound_9 = uint2(4294967295u);
    bool loop_init_7 = true;
    while(true) {
        if (metal::all(loop_bound_9 == uint2(0u))) { break; }
        loop_bound_9 -= uint2(loop_bound_9.y == 0u, 1u);
        if (!loop_init_7) {
            uint _e18 = i_13;
            i_13 = _e18 + 1u;
        }
        loop_init_7 = false;
        uint _e6 = i_13;
        if (_e6 < naga_div(n_2 + 3u, 4u)) {
        } else {
            break;
        }
        {
            uint _e13 = rk_out_base(rk_params);
            uint _e14 = i_13;
            rk_arena[_e13 + _e14] = 0u;
        }
    }
    uint2 loop_bound_10 = uint2(4294967295u);
    bool loop_init_8 = true;
    while(true) {
        if (metal::all(loop_bound_10 == uint2(0u))) { break; }
        loop_bound_10 -= uint2(loop_bound_10.y == 0u, 1u);
        if (!loop_init_8) {
            uint _e29 = i_14;
            i_14 = _e29 + 1u;
        }
        loop_init_8 = false;
        uint _e23 = i_14;
        if (_e23 < n_2) {
        } else {
            break;
        }
        {
            uint _e25 = rk_out_base(rk_params);
            uint _e26 = i_14;
            uint _e27 = i_14;
            uint _e28 = rk_lit_byte(lit_5, _e27, rk_lits, _buffer_sizes);
            rk_set_byte(_e25, _e26, _e28, rk_arena, _buffer_sizes);
        }
    }
    return n_2;
}

void rk_out_stamp(
    uint i_15,
    RkStamp t,
    device type_10& rk_arena,
    thread WgpuParams& rk_params,
    constant _mslBufferSizes& _buffer_sizes
) {
    rk_out_word(i_15, t.physical.x, rk_arena, rk_params, _buffer_sizes);
    rk_out_word(i_15 + 1u, t.physical.y, rk_arena, rk_params, _buffer_sizes);
    rk_out_word(i_15 + 2u, t.logical, rk_arena, rk_params, _buffer_sizes);
    rk_out_word(i_15 + 3u, t.node, rk_arena, rk_params, _buffer_sizes);
    return;
}

void rk_new_header(
    uint message_type,
    metal::uint2 correlation,
    uint priority,
    uint flags,
    device type_10& rk_arena,
    thread WgpuParams& rk_params,
    thread metal::uint2& rk_clock_physical,
    thread uint& rk_clock_logical,
    thread metal::uint2& rk_now,
    constant _mslBufferSizes& _buffer_sizes
) {
    uint _e7 = rk_params.scratch;
    rk_arena[(_e7 + RK_SCRATCH_OH) + RK_H_MAGIC] = RK_MESSAGE_MAGIC;
    uint _e17 = rk_params.scratch;
    rk_arena[(_e17 + RK_SCRATCH_OH) + RK_H_VERSION] = RK_PROTOCOL_VERSION;
    uint _e27 = rk_params.scratch;
    rk_arena[(_e27 + RK_SCRATCH_OH) + RK_H_FLAGS] = flags;
    uint _e36 = rk_params.scratch;
    rk_arena[(_e36 + RK_SCRATCH_OH) + RK_H_TYPE] = message_type;
    uint _e45 = rk_params.scratch;
    rk_arena[(_e45 + RK_SCRATCH_OH) + RK_H_PAYLOAD] = 0u;
    uint _e55 = rk_params.scratch;
    rk_arena[(_e55 + RK_SCRATCH_OH) + RK_H_CHECKSUM] = 0u;
    uint _e65 = rk_params.scratch;
    rk_arena[(_e65 + RK_SCRATCH_OH) + RK_H_CORRELATION] = correlation.x;
    uint _e75 = rk_params.scratch;
    rk_arena[((_e75 + RK_SCRATCH_OH) + RK_H_CORRELATION) + 1u] = correlation.y;
    uint _e87 = rk_params.scratch;
    uint _e95 = rk_params.number;
    rk_arena[(_e87 + RK_SCRATCH_OH) + RK_H_SOURCE] = _e95;
    uint _e99 = rk_params.scratch;
    rk_arena[(_e99 + RK_SCRATCH_OH) + RK_H_PRIORITY] = priority;
    RkStamp _e105 = rk_tick(rk_params, rk_clock_physical, rk_clock_logical, rk_now);
    uint _e109 = rk_params.scratch;
    rk_arena[(_e109 + RK_SCRATCH_OH) + RK_H_TS_PHYSICAL] = _e105.physical.x;
    uint _e120 = rk_params.scratch;
    rk_arena[((_e120 + RK_SCRATCH_OH) + RK_H_TS_PHYSICAL) + 1u] = _e105.physical.y;
    uint _e133 = rk_params.scratch;
    rk_arena[(_e133 + RK_SCRATCH_OH) + RK_H_TS_LOGICAL] = _e105.logical;
    uint _e143 = rk_params.scratch;
    rk_arena[(_e143 + RK_SCRATCH_OH) + RK_H_TS_NODE] = _e105.node;
    uint _e153 = rk_params.scratch;
    rk_arena[(_e153 + RK_SCRATCH_OH) + RK_H_DEADLINE] = 0u;
    uint _e163 = rk_params.scratch;
    rk_arena[((_e163 + RK_SCRATCH_OH) + RK_H_DEADLINE) + 1u] = 0u;
    uint _e174 = rk_params.scratch;
    metal::uint2 _e175 = rk_load64_(_e174, rk_arena, _buffer_sizes);
    metal::uint2 _e179 = rk_add64_(_e175, metal::uint2(1u, 0u));
    uint _e183 = rk_params.scratch;
    rk_arena[_e183] = _e179.x;
    uint _e189 = rk_params.scratch;
    rk_arena[_e189 + 1u] = _e179.y;
    uint _e197 = rk_params.scratch;
    rk_arena[(_e197 + RK_SCRATCH_OH) + RK_H_MESSAGE_ID] = _e179.x;
    uint _e207 = rk_params.scratch;
    rk_arena[((_e207 + RK_SCRATCH_OH) + RK_H_MESSAGE_ID) + 1u] = _e179.y;
    uint _e219 = rk_params.scratch;
    uint _e229 = rk_params.number;
    rk_arena[((_e219 + RK_SCRATCH_OH) + RK_H_MESSAGE_ID) + 2u] = _e229;
    uint _e233 = rk_params.scratch;
    rk_arena[((_e233 + RK_SCRATCH_OH) + RK_H_MESSAGE_ID) + 3u] = 1380665175u;
    uint _e245 = rk_params.scratch;
    rk_arena[(_e245 + RK_SCRATCH_OH) + RK_H_DEST] = RK_HOST_KERNEL_ID;
    return;
}

void rk_write_slot(
    uint slot,
    uint src_at,
    uint len_1,
    device type_10& rk_arena,
    device type_12 const& rk_crc_table,
    thread WgpuParams& rk_params,
    constant _mslBufferSizes& _buffer_sizes
) {
    uint _e6 = rk_params.scratch;
    uint _e12 = rk_arena[(_e6 + RK_SCRATCH_OH) + RK_H_FLAGS];
    if ((_e12 & RK_FLAG_CHECKSUM) != 0u) {
        uint _e20 = rk_params.scratch;
        uint _e26 = rk_crc32c(src_at, len_1, rk_arena, rk_crc_table, _buffer_sizes);
        rk_arena[(_e20 + RK_SCRATCH_OH) + RK_H_CHECKSUM] = _e26;
    }
    uint _e30 = rk_params.scratch;
    rk_arena[(_e30 + RK_SCRATCH_OH) + RK_H_PAYLOAD] = len_1;
    rk_copy_words(slot + RK_HEADER_WORDS, src_at, naga_div(len_1 + 3u, 4u), rk_arena, _buffer_sizes);
    uint _e44 = rk_params.scratch;
    uint _e48 = rk_n(RK_H_USED_WORDS, rk_params);
    rk_copy_words(slot, _e44 + RK_SCRATCH_OH, _e48, rk_arena, _buffer_sizes);
    return;
}

uint rk_output_room(
    thread uint& rk_out_capacity,
    thread uint& rk_out_tail,
    thread uint& rk_out_head
) {
    uint room = 0u;
    uint _e1 = rk_out_tail;
    uint _e3 = rk_out_head;
    uint used = _e1 - _e3;
    uint _e8 = rk_out_capacity;
    if (used < _e8) {
        uint _e11 = rk_out_capacity;
        room = _e11 - used;
    }
    uint _e13 = room;
    return _e13;
}

uint rk_parked(
    device type_10 const& rk_arena,
    thread WgpuParams& rk_params,
    constant _mslBufferSizes& _buffer_sizes
) {
    uint _e3 = rk_params.scratch;
    uint _e7 = rk_arena[_e3 + RK_SCRATCH_PARKED];
    return _e7;
}

uint rk_write_output(
    uint src_at_1,
    uint len_2,
    device type_10& rk_arena,
    device type_10 const& rk_lits,
    device type_12 const& rk_crc_table,
    thread WgpuParams& rk_params,
    thread uint& rk_out_capacity,
    thread uint& rk_out_slot_words,
    thread uint& rk_out_tail,
    thread uint& rk_out_head,
    thread uint& rk_outputs,
    thread uint& rk_errors,
    thread bool& rk_detached,
    thread uint& rk_send_reason_len,
    constant _mslBufferSizes& _buffer_sizes
) {
    bool local_11 = {};
    bool local_12 = {};
    uint _e3 = rk_out_slot_words;
    if (len_2 > ((_e3 * 4u) - RK_MESSAGE_HEADER_BYTES)) {
        rk_send_reason_clear(rk_send_reason_len);
        rk_send_reason_lit(0u, rk_arena, rk_lits, rk_params, rk_send_reason_len, _buffer_sizes);
        rk_send_reason_u32_(len_2, rk_arena, rk_params, rk_send_reason_len, _buffer_sizes);
        return RK_ERROR_PAYLOAD_TOO_LARGE;
    }
    uint _e11 = rk_parked(rk_arena, rk_params, _buffer_sizes);
    uint _e12 = rk_output_room(rk_out_capacity, rk_out_tail, rk_out_head);
    if (!((_e12 == 0u))) {
        local_11 = _e11 != 0u;
    } else {
        local_11 = true;
    }
    bool _e21 = local_11;
    if (_e21) {
        bool _e23 = rk_detached;
        if (!(_e23)) {
            uint _e29 = rk_params.park_capacity;
            local_12 = _e11 >= _e29;
        } else {
            local_12 = true;
        }
        bool _e32 = local_12;
        if (_e32) {
            rk_send_reason_clear(rk_send_reason_len);
            bool _e34 = rk_detached;
            if (_e34) {
                rk_send_reason_lit(1u, rk_arena, rk_lits, rk_params, rk_send_reason_len, _buffer_sizes);
            } else {
                rk_send_reason_lit(2u, rk_arena, rk_lits, rk_params, rk_send_reason_len, _buffer_sizes);
            }
            uint _e38 = rk_errors;
            rk_errors = _e38 + 1u;
            return RK_ERROR_OUTPUT_FULL;
        }
        uint _e44 = rk_params.park;
        uint _e46 = rk_out_slot_words;
        rk_write_slot(_e44 + (_e11 * _e46), src_at_1, len_2, rk_arena, rk_crc_table, rk_params, _buffer_sizes);
        uint _e52 = rk_params.scratch;
        rk_arena[_e52 + RK_SCRATCH_PARKED] = _e11 + 1u;
        return RK_OK;
    }
    uint _e61 = rk_params.output;
    uint _e63 = rk_out_tail;
    uint _e65 = rk_out_capacity;
    uint _e70 = rk_out_slot_words;
    uint slot_3 = _e61 + ((_e63 & (_e65 - 1u)) * _e70);
    rk_write_slot(slot_3, src_at_1, len_2, rk_arena, rk_crc_table, rk_params, _buffer_sizes);
    uint _e74 = rk_out_tail;
    rk_out_tail = _e74 + 1u;
    uint _e78 = rk_outputs;
    rk_outputs = _e78 + 1u;
    return RK_OK;
}

uint rk_flush_parked(
    device type_10& rk_arena,
    thread WgpuParams& rk_params,
    thread uint& rk_out_capacity,
    thread uint& rk_out_slot_words,
    thread uint& rk_out_tail,
    thread uint& rk_out_head,
    thread uint& rk_outputs,
    thread uint& rk_errors,
    thread bool& rk_detached,
    constant _mslBufferSizes& _buffer_sizes
) {
    uint moved = 0u;
    bool local_13 = {};
    uint k = {};
    bool local_14 = {};
    uint _e0 = rk_parked(rk_arena, rk_params, _buffer_sizes);
    uint2 loop_bound_11 = uint2(4294967295u);
    while(true) {
        if (metal::all(loop_bound_11 == uint2(0u))) { break; }
        loop_bound_11 -= uint2(loop_bound_11.y == 0u, 1u);
        uint _e3 = moved;
        if (_e3 < _e0) {
            uint _e7 = rk_output_room(rk_out_capacity, rk_out_tail, rk_out_head);
            local_13 = _e7 != 0u;
        } else {
            local_13 = false;
        }
        bool _e11 = local_13;
        if (_e11) {
        } else {
            break;
        }
        {
            uint _e14 = rk_params.output;
            uint _e16 = rk_out_tail;
            uint _e18 = rk_out_capacity;
            uint _e23 = rk_out_slot_words;
            uint slot_4 = _e14 + ((_e16 & (_e18 - 1u)) * _e23);
            uint _e28 = rk_params.park;
            uint _e29 = moved;
            uint _e31 = rk_out_slot_words;
            uint from_slot = _e28 + (_e29 * _e31);
            uint _e35 = rk_out_slot_words;
            rk_copy_words(slot_4, from_slot, _e35, rk_arena, _buffer_sizes);
            uint _e37 = rk_out_tail;
            rk_out_tail = _e37 + 1u;
            uint _e41 = rk_outputs;
            rk_outputs = _e41 + 1u;
            uint _e44 = moved;
            moved = _e44 + 1u;
        }
    }
    uint _e47 = moved;
    k = _e47;
    uint2 loop_bound_12 = uint2(4294967295u);
    bool loop_init_9 = true;
    while(true) {
        if (metal::all(loop_bound_12 == uint2(0u))) { break; }
        loop_bound_12 -= uint2(loop_bound_12.y == 0u, 1u);
        if (!loop_init_9) {
            uint _e71 = k;
            k = _e71 + 1u;
        }
        loop_init_9 = false;
        uint _e49 = k;
        if (_e49 < _e0) {
        } else {
            break;
        }
        {
            uint _e53 = rk_params.park;
            uint _e54 = k;
            uint _e55 = moved;
            uint _e58 = rk_out_slot_words;
            uint _e63 = rk_params.park;
            uint _e64 = k;
            uint _e66 = rk_out_slot_words;
            uint _e70 = rk_out_slot_words;
            rk_copy_words(_e53 + ((_e54 - _e55) * _e58), _e63 + (_e64 * _e66), _e70, rk_arena, _buffer_sizes);
        }
    }
    uint _e77 = rk_params.scratch;
    uint _e81 = moved;
    rk_arena[_e77 + RK_SCRATCH_PARKED] = _e0 - _e81;
    bool _e84 = rk_detached;
    if (_e84) {
        uint _e87 = moved;
        local_14 = _e0 != _e87;
    } else {
        local_14 = false;
    }
    bool _e90 = local_14;
    if (_e90) {
        uint _e92 = rk_errors;
        uint _e93 = moved;
        rk_errors = _e92 + (_e0 - _e93);
        uint _e99 = rk_params.scratch;
        rk_arena[_e99 + RK_SCRATCH_PARKED] = 0u;
        return 0u;
    }
    uint _e105 = moved;
    return _e0 - _e105;
}

uint rk_find_route(
    uint name_lit_1,
    uint number_1,
    device type_10 const& rk_arena,
    device type_10 const& rk_lits,
    thread WgpuParams& rk_params,
    constant _mslBufferSizes& _buffer_sizes
) {
    uint i_16 = 0u;
    bool local_15 = {};
    bool same = {};
    uint k_1 = {};
    uint2 loop_bound_13 = uint2(4294967295u);
    bool loop_init_10 = true;
    while(true) {
        if (metal::all(loop_bound_13 == uint2(0u))) { break; }
        loop_bound_13 -= uint2(loop_bound_13.y == 0u, 1u);
        if (!loop_init_10) {
            uint _e71 = i_16;
            i_16 = _e71 + 1u;
        }
        loop_init_10 = false;
        uint _e4 = i_16;
        uint _e7 = rk_params.route_capacity;
        if (_e4 < _e7) {
        } else {
            break;
        }
        {
            uint _e11 = rk_params.routes;
            uint _e12 = i_16;
            uint r_1 = _e11 + (_e12 * RK_ROUTE_WORDS);
            uint _e20 = rk_arena[r_1 + RK_ROUTE_USED];
            if (_e20 != 1u) {
                continue;
            }
            if (name_lit_1 == RK_SEND_REASON) {
                uint _e29 = rk_arena[r_1 + RK_ROUTE_NUMBER];
                if (_e29 == number_1) {
                    return r_1;
                }
                continue;
            }
            uint _e31 = rk_lit_len(name_lit_1, rk_lits, _buffer_sizes);
            uint _e36 = rk_arena[r_1 + RK_ROUTE_HASH];
            uint _e37 = rk_lit_hash(name_lit_1, rk_lits, _buffer_sizes);
            if (!((_e36 != _e37))) {
                uint _e46 = rk_arena[r_1 + RK_ROUTE_NAME_LEN];
                local_15 = _e46 != _e31;
            } else {
                local_15 = true;
            }
            bool _e49 = local_15;
            if (_e49) {
                continue;
            }
            same = true;
            k_1 = 0u;
            uint2 loop_bound_14 = uint2(4294967295u);
            bool loop_init_11 = true;
            while(true) {
                if (metal::all(loop_bound_14 == uint2(0u))) { break; }
                loop_bound_14 -= uint2(loop_bound_14.y == 0u, 1u);
                if (!loop_init_11) {
                    uint _e67 = k_1;
                    k_1 = _e67 + 1u;
                }
                loop_init_11 = false;
                uint _e54 = k_1;
                uint _e56 = rk_n(32u, rk_params);
                if (_e54 < metal::min(_e31, _e56)) {
                } else {
                    break;
                }
                {
                    uint _e61 = k_1;
                    uint _e62 = rk_byte_at(r_1 + RK_ROUTE_NAME, _e61, rk_arena, _buffer_sizes);
                    uint _e63 = k_1;
                    uint _e64 = rk_lit_byte(name_lit_1, _e63, rk_lits, _buffer_sizes);
                    if (_e62 != _e64) {
                        same = false;
                        break;
                    }
                }
            }
            bool _e70 = same;
            if (_e70) {
                return r_1;
            }
        }
    }
    return 4294967295u;
}

uint rk_k2k_send(
    uint name_lit_2,
    uint number_2,
    uint src_at_2,
    uint len_3,
    device type_10& rk_arena,
    device type_10 const& rk_lits,
    device type_12 const& rk_crc_table,
    thread WgpuParams& rk_params,
    thread uint& rk_send_reason_len,
    constant _mslBufferSizes& _buffer_sizes
) {
    uint _e4 = rk_find_route(name_lit_2, number_2, rk_arena, rk_lits, rk_params, _buffer_sizes);
    if (_e4 == 4294967295u) {
        rk_send_reason_clear(rk_send_reason_len);
        rk_send_reason_lit(3u, rk_arena, rk_lits, rk_params, rk_send_reason_len, _buffer_sizes);
        rk_send_reason_kernel(name_lit_2, number_2, rk_arena, rk_lits, rk_params, rk_send_reason_len, _buffer_sizes);
        rk_send_reason_lit(4u, rk_arena, rk_lits, rk_params, rk_send_reason_len, _buffer_sizes);
        return RK_ERROR_HANDLER_ERROR;
    }
    uint ib = rk_arena[_e4 + RK_ROUTE_INBOX];
    uint capacity_2 = rk_arena[ib + 0u];
    uint slot_bytes = rk_arena[ib + 1u];
    if (len_3 > (slot_bytes - RK_MESSAGE_HEADER_BYTES)) {
        rk_send_reason_clear(rk_send_reason_len);
        rk_send_reason_lit(5u, rk_arena, rk_lits, rk_params, rk_send_reason_len, _buffer_sizes);
        rk_send_reason_u32_(len_3, rk_arena, rk_params, rk_send_reason_len, _buffer_sizes);
        rk_send_reason_lit(6u, rk_arena, rk_lits, rk_params, rk_send_reason_len, _buffer_sizes);
        rk_send_reason_u32_(slot_bytes - RK_MESSAGE_HEADER_BYTES, rk_arena, rk_params, rk_send_reason_len, _buffer_sizes);
        rk_send_reason_lit(7u, rk_arena, rk_lits, rk_params, rk_send_reason_len, _buffer_sizes);
        return RK_ERROR_PAYLOAD_TOO_LARGE;
    }
    uint sequences = ib + 16u;
    uint pos = rk_arena[ib + 2u];
    uint seq = rk_arena[sequences + (pos & (capacity_2 - 1u))];
    if (seq != pos) {
        uint rejections = ib + 3u;
        uint _e55 = rk_arena[rejections];
        rk_arena[rejections] = _e55 + 1u;
        rk_send_reason_clear(rk_send_reason_len);
        rk_send_reason_lit(8u, rk_arena, rk_lits, rk_params, rk_send_reason_len, _buffer_sizes);
        rk_send_reason_kernel(name_lit_2, number_2, rk_arena, rk_lits, rk_params, rk_send_reason_len, _buffer_sizes);
        rk_send_reason_lit(9u, rk_arena, rk_lits, rk_params, rk_send_reason_len, _buffer_sizes);
        rk_send_reason_u32_(capacity_2, rk_arena, rk_params, rk_send_reason_len, _buffer_sizes);
        rk_send_reason_lit(10u, rk_arena, rk_lits, rk_params, rk_send_reason_len, _buffer_sizes);
        return RK_ERROR_K2K_INBOX_FULL;
    }
    rk_arena[ib + 2u] = pos + 1u;
    uint slots = ib + naga_div(((RK_K2K_INBOX_SEQUENCES_OFFSET + (4u * capacity_2)) + 63u) & 4294967232u, 4u);
    uint _e82 = rk_params.scratch;
    uint _e92 = rk_arena[_e4 + RK_ROUTE_NUMBER];
    rk_arena[(_e82 + RK_SCRATCH_OH) + RK_H_DEST] = _e92;
    rk_write_slot(slots + ((pos & (capacity_2 - 1u)) * naga_div(slot_bytes, 4u)), src_at_2, len_3, rk_arena, rk_crc_table, rk_params, _buffer_sizes);
    uint _e106 = rk_params.number;
    rk_arena[ib + 4u] = _e106;
    rk_arena[sequences + (pos & (capacity_2 - 1u))] = pos + 1u;
    return RK_OK;
}

uint rk_deliver(
    uint name_lit_3,
    uint number_3,
    uint src_at_3,
    uint len_4,
    device type_10& rk_arena,
    device type_10 const& rk_lits,
    device type_12 const& rk_crc_table,
    thread WgpuParams& rk_params,
    thread uint& rk_out_capacity,
    thread uint& rk_out_slot_words,
    thread uint& rk_out_tail,
    thread uint& rk_out_head,
    thread uint& rk_outputs,
    thread uint& rk_errors,
    thread bool& rk_detached,
    thread uint& rk_send_error,
    thread uint& rk_send_reason_len,
    constant _mslBufferSizes& _buffer_sizes
) {
    uint result = RK_OK;
    bool local_16 = {};
    if (name_lit_3 == RK_SEND_REASON) {
        local_16 = number_3 == RK_HOST_KERNEL_ID;
    } else {
        local_16 = false;
    }
    bool _e13 = local_16;
    if (_e13) {
        uint _e14 = rk_write_output(src_at_3, len_4, rk_arena, rk_lits, rk_crc_table, rk_params, rk_out_capacity, rk_out_slot_words, rk_out_tail, rk_out_head, rk_outputs, rk_errors, rk_detached, rk_send_reason_len, _buffer_sizes);
        result = _e14;
    } else {
        uint _e18 = rk_params.scratch;
        uint _e27 = rk_params.scratch;
        uint _e33 = rk_arena[(_e27 + RK_SCRATCH_OH) + RK_H_FLAGS];
        rk_arena[(_e18 + RK_SCRATCH_OH) + RK_H_FLAGS] = _e33 | RK_FLAG_K2K;
        uint _e36 = rk_k2k_send(name_lit_3, number_3, src_at_3, len_4, rk_arena, rk_lits, rk_crc_table, rk_params, rk_send_reason_len, _buffer_sizes);
        result = _e36;
    }
    uint _e37 = result;
    if (_e37 != RK_OK) {
        uint _e41 = result;
        rk_send_error = _e41;
    }
    uint _e42 = result;
    return _e42;
}

uint rk_reply(
    uint message_type_1,
    uint len_5,
    device type_10& rk_arena,
    device type_10 const& rk_lits,
    device type_12 const& rk_crc_table,
    thread WgpuParams& rk_params,
    thread uint& rk_out_capacity,
    thread uint& rk_out_slot_words,
    thread uint& rk_out_tail,
    thread uint& rk_out_head,
    thread uint& rk_outputs,
    thread uint& rk_errors,
    thread metal::uint2& rk_clock_physical,
    thread uint& rk_clock_logical,
    thread metal::uint2& rk_now,
    thread bool& rk_detached,
    thread uint& rk_msg,
    thread uint& rk_send_error,
    thread uint& rk_send_reason_len,
    constant _mslBufferSizes& _buffer_sizes
) {
    metal::uint2 _e2 = rk_correlation(rk_arena, rk_msg, _buffer_sizes);
    uint _e5 = rk_msg;
    uint _e9 = rk_arena[_e5 + RK_H_PRIORITY];
    uint _e13 = rk_msg;
    uint _e17 = rk_arena[_e13 + RK_H_FLAGS];
    rk_new_header(message_type_1, _e2, _e9, RK_FLAG_REPLY | (_e17 & RK_FLAG_CHECKSUM), rk_arena, rk_params, rk_clock_physical, rk_clock_logical, rk_now, _buffer_sizes);
    uint _e22 = rk_source(rk_arena, rk_msg, _buffer_sizes);
    uint _e23 = rk_out_base(rk_params);
    uint _e24 = rk_out_capacity_bytes(rk_params);
    uint _e26 = rk_deliver(RK_SEND_REASON, _e22, _e23, metal::min(len_5, _e24), rk_arena, rk_lits, rk_crc_table, rk_params, rk_out_capacity, rk_out_slot_words, rk_out_tail, rk_out_head, rk_outputs, rk_errors, rk_detached, rk_send_error, rk_send_reason_len, _buffer_sizes);
    return _e26;
}

uint rk_emit(
    uint message_type_2,
    uint len_6,
    device type_10& rk_arena,
    device type_10 const& rk_lits,
    device type_12 const& rk_crc_table,
    thread WgpuParams& rk_params,
    thread uint& rk_out_capacity,
    thread uint& rk_out_slot_words,
    thread uint& rk_out_tail,
    thread uint& rk_out_head,
    thread uint& rk_outputs,
    thread uint& rk_errors,
    thread metal::uint2& rk_clock_physical,
    thread uint& rk_clock_logical,
    thread metal::uint2& rk_now,
    thread bool& rk_detached,
    thread uint& rk_msg,
    thread uint& rk_send_error,
    thread uint& rk_send_reason_len,
    constant _mslBufferSizes& _buffer_sizes
) {
    metal::uint2 _e2 = rk_correlation(rk_arena, rk_msg, _buffer_sizes);
    uint _e5 = rk_msg;
    uint _e9 = rk_arena[_e5 + RK_H_PRIORITY];
    rk_new_header(message_type_2, _e2, _e9, 0u, rk_arena, rk_params, rk_clock_physical, rk_clock_logical, rk_now, _buffer_sizes);
    uint _e13 = rk_out_base(rk_params);
    uint _e14 = rk_out_capacity_bytes(rk_params);
    uint _e16 = rk_deliver(RK_SEND_REASON, RK_HOST_KERNEL_ID, _e13, metal::min(len_6, _e14), rk_arena, rk_lits, rk_crc_table, rk_params, rk_out_capacity, rk_out_slot_words, rk_out_tail, rk_out_head, rk_outputs, rk_errors, rk_detached, rk_send_error, rk_send_reason_len, _buffer_sizes);
    return _e16;
}

uint rk_send_to(
    uint kernel_,
    uint message_type_3,
    uint len_7,
    device type_10& rk_arena,
    device type_10 const& rk_lits,
    device type_12 const& rk_crc_table,
    thread WgpuParams& rk_params,
    thread uint& rk_out_capacity,
    thread uint& rk_out_slot_words,
    thread uint& rk_out_tail,
    thread uint& rk_out_head,
    thread uint& rk_outputs,
    thread uint& rk_errors,
    thread metal::uint2& rk_clock_physical,
    thread uint& rk_clock_logical,
    thread metal::uint2& rk_now,
    thread bool& rk_detached,
    thread uint& rk_msg,
    thread uint& rk_send_error,
    thread uint& rk_send_reason_len,
    constant _mslBufferSizes& _buffer_sizes
) {
    metal::uint2 _e3 = rk_correlation(rk_arena, rk_msg, _buffer_sizes);
    uint _e6 = rk_msg;
    uint _e10 = rk_arena[_e6 + RK_H_PRIORITY];
    rk_new_header(message_type_3, _e3, _e10, 0u, rk_arena, rk_params, rk_clock_physical, rk_clock_logical, rk_now, _buffer_sizes);
    uint _e13 = rk_out_base(rk_params);
    uint _e14 = rk_out_capacity_bytes(rk_params);
    uint _e16 = rk_deliver(kernel_, 0u, _e13, metal::min(len_7, _e14), rk_arena, rk_lits, rk_crc_table, rk_params, rk_out_capacity, rk_out_slot_words, rk_out_tail, rk_out_head, rk_outputs, rk_errors, rk_detached, rk_send_error, rk_send_reason_len, _buffer_sizes);
    return _e16;
}

uint rk_send_to_number(
    uint number_4,
    uint message_type_4,
    uint len_8,
    device type_10& rk_arena,
    device type_10 const& rk_lits,
    device type_12 const& rk_crc_table,
    thread WgpuParams& rk_params,
    thread uint& rk_out_capacity,
    thread uint& rk_out_slot_words,
    thread uint& rk_out_tail,
    thread uint& rk_out_head,
    thread uint& rk_outputs,
    thread uint& rk_errors,
    thread metal::uint2& rk_clock_physical,
    thread uint& rk_clock_logical,
    thread metal::uint2& rk_now,
    thread bool& rk_detached,
    thread uint& rk_msg,
    thread uint& rk_send_error,
    thread uint& rk_send_reason_len,
    constant _mslBufferSizes& _buffer_sizes
) {
    metal::uint2 _e3 = rk_correlation(rk_arena, rk_msg, _buffer_sizes);
    uint _e6 = rk_msg;
    uint _e10 = rk_arena[_e6 + RK_H_PRIORITY];
    rk_new_header(message_type_4, _e3, _e10, 0u, rk_arena, rk_params, rk_clock_physical, rk_clock_logical, rk_now, _buffer_sizes);
    uint _e13 = rk_out_base(rk_params);
    uint _e14 = rk_out_capacity_bytes(rk_params);
    uint _e16 = rk_deliver(RK_SEND_REASON, number_4, _e13, metal::min(len_8, _e14), rk_arena, rk_lits, rk_crc_table, rk_params, rk_out_capacity, rk_out_slot_words, rk_out_tail, rk_out_head, rk_outputs, rk_errors, rk_detached, rk_send_error, rk_send_reason_len, _buffer_sizes);
    return _e16;
}

void rk_set_outcome(
    uint outcome,
    uint reason,
    device type_10& rk_arena,
    device type_10 const& rk_lits,
    thread WgpuParams& rk_params,
    thread uint& rk_outcome,
    thread uint& rk_reason_len,
    thread uint& rk_send_error,
    thread uint& rk_send_reason_len,
    constant _mslBufferSizes& _buffer_sizes
) {
    uint i_17 = 0u;
    uint i_18 = 0u;
    uint i_19 = 0u;
    uint i_20 = 0u;
    uint _e3 = rk_outcome;
    if (_e3 != RK_OK) {
        return;
    }
    rk_outcome = outcome;
    rk_reason_len = 0u;
    uint2 loop_bound_15 = uint2(4294967295u);
    bool loop_init_12 = true;
    while(true) {
        if (metal::all(loop_bound_15 == uint2(0u))) { break; }
        loop_bound_15 -= uint2(loop_bound_15.y == 0u, 1u);
        if (!loop_init_12) {
            uint _e25 = i_17;
            i_17 = _e25 + 1u;
        }
        loop_init_12 = false;
        uint _e11 = i_17;
        uint _e13 = rk_n(RK_REASON_WORDS, rk_params);
        if (_e11 < _e13) {
        } else {
            break;
        }
        {
            uint _e18 = rk_params.scratch;
            uint _e21 = i_17;
            rk_arena[(_e18 + RK_SCRATCH_REASON) + _e21] = 0u;
        }
    }
    if (reason != RK_SEND_REASON) {
        uint _e30 = rk_lit_len(reason, rk_lits, _buffer_sizes);
        uint n_3 = metal::min(_e30, 256u);
        uint2 loop_bound_16 = uint2(4294967295u);
        bool loop_init_13 = true;
        while(true) {
            if (metal::all(loop_bound_16 == uint2(0u))) { break; }
            loop_bound_16 -= uint2(loop_bound_16.y == 0u, 1u);
            if (!loop_init_13) {
                uint _e69 = i_18;
                i_18 = _e69 + 1u;
            }
            loop_init_13 = false;
            uint _e35 = i_18;
            if (_e35 < n_3) {
            } else {
                break;
            }
            {
                uint _e40 = rk_params.scratch;
                uint _e43 = i_18;
                uint _e51 = rk_params.scratch;
                uint _e54 = i_18;
                uint _e59 = rk_arena[(_e51 + RK_SCRATCH_REASON) + naga_div(_e54, 4u)];
                uint _e60 = i_18;
                uint _e61 = rk_lit_byte(reason, _e60, rk_lits, _buffer_sizes);
                uint _e63 = i_18;
                rk_arena[(_e40 + RK_SCRATCH_REASON) + naga_div(_e43, 4u)] = _e59 | (_e61 << (8u * naga_mod(_e63, 4u)));
            }
        }
        rk_reason_len = n_3;
        return;
    } else {
        uint _e74 = rk_send_error;
        if (_e74 != RK_OK) {
            uint2 loop_bound_17 = uint2(4294967295u);
            bool loop_init_14 = true;
            while(true) {
                if (metal::all(loop_bound_17 == uint2(0u))) { break; }
                loop_bound_17 -= uint2(loop_bound_17.y == 0u, 1u);
                if (!loop_init_14) {
                    uint _e102 = i_19;
                    i_19 = _e102 + 1u;
                }
                loop_init_14 = false;
                uint _e79 = i_19;
                uint _e81 = rk_n(RK_REASON_WORDS, rk_params);
                if (_e79 < _e81) {
                } else {
                    break;
                }
                {
                    uint _e86 = rk_params.scratch;
                    uint _e89 = i_19;
                    uint _e95 = rk_params.scratch;
                    uint _e98 = i_19;
                    uint _e101 = rk_arena[(_e95 + RK_SCRATCH_SEND_REASON) + _e98];
                    rk_arena[(_e86 + RK_SCRATCH_REASON) + _e89] = _e101;
                }
            }
            uint _e107 = rk_send_reason_len;
            rk_reason_len = _e107;
            return;
        } else {
            uint _e109 = rk_lit_len(11u, rk_lits, _buffer_sizes);
            uint2 loop_bound_18 = uint2(4294967295u);
            bool loop_init_15 = true;
            while(true) {
                if (metal::all(loop_bound_18 == uint2(0u))) { break; }
                loop_bound_18 -= uint2(loop_bound_18.y == 0u, 1u);
                if (!loop_init_15) {
                    uint _e146 = i_20;
                    i_20 = _e146 + 1u;
                }
                loop_init_15 = false;
                uint _e112 = i_20;
                if (_e112 < _e109) {
                } else {
                    break;
                }
                {
                    uint _e117 = rk_params.scratch;
                    uint _e120 = i_20;
                    uint _e128 = rk_params.scratch;
                    uint _e131 = i_20;
                    uint _e136 = rk_arena[(_e128 + RK_SCRATCH_REASON) + naga_div(_e131, 4u)];
                    uint _e137 = i_20;
                    uint _e138 = rk_lit_byte(11u, _e137, rk_lits, _buffer_sizes);
                    uint _e140 = i_20;
                    rk_arena[(_e117 + RK_SCRATCH_REASON) + naga_div(_e120, 4u)] = _e136 | (_e138 << (8u * naga_mod(_e140, 4u)));
                }
            }
            rk_reason_len = _e109;
            return;
        }
    }
}

void rk_error(
    uint reason_1,
    device type_10& rk_arena,
    device type_10 const& rk_lits,
    thread WgpuParams& rk_params,
    thread uint& rk_outcome,
    thread uint& rk_reason_len,
    thread uint& rk_send_error,
    thread uint& rk_send_reason_len,
    constant _mslBufferSizes& _buffer_sizes
) {
    rk_set_outcome(RK_ERROR_HANDLER_ERROR, reason_1, rk_arena, rk_lits, rk_params, rk_outcome, rk_reason_len, rk_send_error, rk_send_reason_len, _buffer_sizes);
    return;
}

void rk_fail(
    uint reason_2,
    device type_10& rk_arena,
    device type_10 const& rk_lits,
    thread WgpuParams& rk_params,
    thread uint& rk_outcome,
    thread uint& rk_reason_len,
    thread uint& rk_send_error,
    thread uint& rk_send_reason_len,
    constant _mslBufferSizes& _buffer_sizes
) {
    rk_set_outcome(RK_ERROR_HANDLER_FAULT, reason_2, rk_arena, rk_lits, rk_params, rk_outcome, rk_reason_len, rk_send_error, rk_send_reason_len, _buffer_sizes);
    return;
}

void rk_report(
    uint code,
    metal::uint2 v0_,
    metal::uint2 v1_,
    bool use_reason,
    device type_10& rk_arena,
    device type_10 const& rk_lits,
    device type_12 const& rk_crc_table,
    thread WgpuParams& rk_params,
    thread uint& rk_out_capacity,
    thread uint& rk_out_slot_words,
    thread uint& rk_out_tail,
    thread uint& rk_out_head,
    thread uint& rk_outputs,
    thread uint& rk_errors,
    thread metal::uint2& rk_clock_physical,
    thread uint& rk_clock_logical,
    thread metal::uint2& rk_now,
    thread bool& rk_detached,
    thread uint& rk_msg,
    thread uint& rk_reason_len,
    thread uint& rk_send_error,
    thread uint& rk_send_reason_len,
    constant _mslBufferSizes& _buffer_sizes
) {
    uint len_9 = RK_ERROR_REPORT_HEADER_SIZE;
    uint i_21 = 0u;
    uint _e6 = rk_msg;
    uint flags_1 = rk_arena[_e6 + RK_H_FLAGS];
    if ((flags_1 & RK_FLAG_ERROR) != 0u) {
        return;
    }
    uint _e15 = rk_out_base(rk_params);
    uint _e16 = rk_out_capacity_bytes(rk_params);
    if (_e16 < RK_ERROR_REPORT_HEADER_SIZE) {
        uint _e20 = rk_errors;
        rk_errors = _e20 + 1u;
        return;
    }
    rk_arena[_e15] = code;
    rk_arena[_e15 + 1u] = 0u;
    rk_arena[_e15 + 2u] = v0_.x;
    rk_arena[_e15 + 3u] = v0_.y;
    rk_arena[_e15 + 4u] = v1_.x;
    rk_arena[_e15 + 5u] = v1_.y;
    if (use_reason) {
        uint _e53 = rk_reason_len;
        uint n_4 = metal::min(_e53, _e16 - RK_ERROR_REPORT_HEADER_SIZE);
        uint2 loop_bound_19 = uint2(4294967295u);
        bool loop_init_16 = true;
        while(true) {
            if (metal::all(loop_bound_19 == uint2(0u))) { break; }
            loop_bound_19 -= uint2(loop_bound_19.y == 0u, 1u);
            if (!loop_init_16) {
                uint _e81 = i_21;
                i_21 = _e81 + 1u;
            }
            loop_init_16 = false;
            uint _e59 = i_21;
            if (_e59 < naga_div(n_4 + 3u, 4u)) {
            } else {
                break;
            }
            {
                uint _e68 = i_21;
                uint _e74 = rk_params.scratch;
                uint _e77 = i_21;
                uint _e80 = rk_arena[(_e74 + RK_SCRATCH_REASON) + _e77];
                rk_arena[(_e15 + 6u) + _e68] = _e80;
            }
        }
        uint _e84 = len_9;
        len_9 = _e84 + n_4;
    }
    uint _e88 = rk_msg;
    uint source = rk_arena[_e88 + RK_H_SOURCE];
    if (source == RK_HOST_KERNEL_ID) {
        uint _e95 = len_9;
        uint _e97 = rk_out_slot_words;
        len_9 = metal::min(_e95, (_e97 * 4u) - RK_MESSAGE_HEADER_BYTES);
    }
    metal::uint2 _e104 = rk_correlation(rk_arena, rk_msg, _buffer_sizes);
    uint _e107 = rk_msg;
    uint _e111 = rk_arena[_e107 + RK_H_PRIORITY];
    rk_new_header(RK_ERROR_REPORT_TYPE, _e104, _e111, 6u | (flags_1 & RK_FLAG_CHECKSUM), rk_arena, rk_params, rk_clock_physical, rk_clock_logical, rk_now, _buffer_sizes);
    uint _e117 = len_9;
    uint _e118 = rk_deliver(RK_SEND_REASON, source, _e15, _e117, rk_arena, rk_lits, rk_crc_table, rk_params, rk_out_capacity, rk_out_slot_words, rk_out_tail, rk_out_head, rk_outputs, rk_errors, rk_detached, rk_send_error, rk_send_reason_len, _buffer_sizes);
    if (_e118 != RK_OK) {
        uint _e122 = rk_errors;
        rk_errors = _e122 + 1u;
        return;
    } else {
        return;
    }
}

void rk_count_error(
    uint code_1,
    bool rejected,
    thread uint& rk_rejected,
    thread uint& rk_errors,
    thread uint& rk_last_error
) {
    if (rejected) {
        uint _e3 = rk_rejected;
        rk_rejected = _e3 + 1u;
    }
    uint _e7 = rk_errors;
    rk_errors = _e7 + 1u;
    rk_last_error = code_1;
    return;
}

uint rk_check(
    uint capacity,
    device type_10 const& rk_arena,
    device type_12 const& rk_crc_table,
    thread uint& rk_msg,
    constant _mslBufferSizes& _buffer_sizes
) {
    bool local_17 = {};
    uint h = rk_msg;
    uint _e7 = rk_arena[h + RK_H_MAGIC];
    if (_e7 != RK_MESSAGE_MAGIC) {
        return RK_ERROR_BAD_MAGIC;
    }
    uint _e15 = rk_arena[h + RK_H_VERSION];
    if (_e15 != RK_PROTOCOL_VERSION) {
        return RK_ERROR_UNSUPPORTED_VERSION;
    }
    uint flags_2 = rk_arena[h + RK_H_FLAGS];
    if ((flags_2 & 4294967280u) != 0u) {
        return RK_ERROR_UNKNOWN_FLAGS;
    }
    uint _e33 = rk_arena[h + RK_H_PRIORITY];
    if (_e33 > RK_PRIORITY_MAX) {
        return RK_ERROR_INVALID_PRIORITY;
    }
    uint len_11 = rk_arena[h + RK_H_PAYLOAD];
    if (len_11 > capacity) {
        return RK_ERROR_PAYLOAD_TOO_LARGE;
    }
    if ((flags_2 & RK_FLAG_CHECKSUM) != 0u) {
        uint _e52 = rk_crc32c(h + RK_HEADER_WORDS, len_11, rk_arena, rk_crc_table, _buffer_sizes);
        uint _e57 = rk_arena[h + RK_H_CHECKSUM];
        local_17 = _e52 != _e57;
    } else {
        local_17 = false;
    }
    bool _e60 = local_17;
    if (_e60) {
        return RK_ERROR_CHECKSUM_MISMATCH;
    }
    return RK_OK;
}

void rk_handle(
    device type_10& rk_arena,
    device type_10 const& rk_lits,
    device type_12 const& rk_crc_table,
    thread WgpuParams& rk_params,
    thread uint& rk_out_capacity,
    thread uint& rk_out_slot_words,
    thread uint& rk_out_tail,
    thread uint& rk_out_head,
    thread uint& rk_outputs,
    thread uint& rk_errors,
    thread metal::uint2& rk_clock_physical,
    thread uint& rk_clock_logical,
    thread metal::uint2& rk_now,
    thread bool& rk_detached,
    thread uint& rk_msg,
    thread uint& rk_outcome,
    thread uint& rk_reason_len,
    thread uint& rk_send_error,
    thread uint& rk_send_reason_len,
    constant _mslBufferSizes& _buffer_sizes
) {
    uint _e0 = rk_out_payload(rk_arena, rk_params, rk_msg, _buffer_sizes);
    uint _e1 = rk_message_type(rk_arena, rk_msg, _buffer_sizes);
    uint _e2 = rk_reply(_e1, _e0, rk_arena, rk_lits, rk_crc_table, rk_params, rk_out_capacity, rk_out_slot_words, rk_out_tail, rk_out_head, rk_outputs, rk_errors, rk_clock_physical, rk_clock_logical, rk_now, rk_detached, rk_msg, rk_send_error, rk_send_reason_len, _buffer_sizes);
    if (_e2 != RK_OK) {
        rk_error(RK_SEND_REASON, rk_arena, rk_lits, rk_params, rk_outcome, rk_reason_len, rk_send_error, rk_send_reason_len, _buffer_sizes);
        return;
    } else {
        return;
    }
}

void rk_handle_slot(
    uint slot_1,
    uint capacity_1,
    device type_10& rk_arena,
    device type_10 const& rk_lits,
    device type_12 const& rk_crc_table,
    thread WgpuParams& rk_params,
    thread uint& rk_out_capacity,
    thread uint& rk_out_slot_words,
    thread uint& rk_out_tail,
    thread uint& rk_out_head,
    thread uint& rk_outputs,
    thread uint& rk_processed,
    thread uint& rk_rejected,
    thread uint& rk_errors,
    thread uint& rk_last_error,
    thread metal::uint2& rk_clock_physical,
    thread uint& rk_clock_logical,
    thread metal::uint2& rk_now,
    thread bool& rk_failed,
    thread bool& rk_detached,
    thread uint& rk_msg,
    thread uint& rk_msg_capacity,
    thread RkStamp& rk_received,
    thread uint& rk_outcome,
    thread uint& rk_reason_len,
    thread uint& rk_send_error,
    thread uint& rk_send_reason_len,
    constant _mslBufferSizes& _buffer_sizes
) {
    metal::uint2 report_v0_ = metal::uint2(0u, 0u);
    metal::uint2 report_v1_ = metal::uint2(0u, 0u);
    bool local_18 = {};
    bool local_19 = {};
    rk_msg = slot_1;
    rk_msg_capacity = capacity_1;
    rk_outcome = RK_OK;
    rk_send_error = RK_OK;
    rk_reason_len = 0u;
    uint _e18 = rk_check(capacity_1, rk_arena, rk_crc_table, rk_msg, _buffer_sizes);
    metal::uint2 _e21 = rk_load64_(slot_1 + RK_H_DEADLINE, rk_arena, _buffer_sizes);
    uint _e24 = rk_params.max_offset_lo;
    uint _e27 = rk_params.max_offset_hi;
    metal::uint2 max_offset = metal::uint2(_e24, _e27);
    metal::uint2 _e31 = rk_load64_(slot_1 + RK_H_TS_PHYSICAL, rk_arena, _buffer_sizes);
    if (_e18 != RK_OK) {
        rk_count_error(_e18, true, rk_rejected, rk_errors, rk_last_error);
        return;
    }
    bool _e38 = rk_eq64_(_e21, metal::uint2(0u, 0u));
    if (!(_e38)) {
        metal::uint2 _e43 = rk_now;
        bool _e44 = rk_gt64_(_e43, _e21);
        local_18 = _e44;
    } else {
        local_18 = false;
    }
    bool _e46 = local_18;
    if (_e46) {
        rk_count_error(RK_ERROR_DEADLINE_EXPIRED, true, rk_rejected, rk_errors, rk_last_error);
        rk_set_outcome(RK_ERROR_DEADLINE_EXPIRED, 12u, rk_arena, rk_lits, rk_params, rk_outcome, rk_reason_len, rk_send_error, rk_send_reason_len, _buffer_sizes);
        report_v0_ = _e21;
        metal::uint2 _e52 = rk_now;
        report_v1_ = _e52;
    } else {
        bool _e56 = rk_eq64_(max_offset, metal::uint2(0u, 0u));
        if (!(_e56)) {
            metal::uint2 _e61 = rk_now;
            metal::uint2 _e62 = rk_add64_(_e61, max_offset);
            bool _e63 = rk_gt64_(_e31, _e62);
            local_19 = _e63;
        } else {
            local_19 = false;
        }
        bool _e65 = local_19;
        if (_e65) {
            rk_count_error(RK_ERROR_CLOCK_SKEW, true, rk_rejected, rk_errors, rk_last_error);
            rk_set_outcome(RK_ERROR_CLOCK_SKEW, 13u, rk_arena, rk_lits, rk_params, rk_outcome, rk_reason_len, rk_send_error, rk_send_reason_len, _buffer_sizes);
            report_v0_ = _e31;
            metal::uint2 _e71 = rk_now;
            report_v1_ = _e71;
        } else {
            RkStamp _e73 = rk_header_stamp(rk_arena, rk_msg, _buffer_sizes);
            RkStamp _e74 = rk_update(_e73, rk_params, rk_clock_physical, rk_clock_logical, rk_now);
            rk_received = _e74;
            uint _e76 = rk_processed;
            rk_processed = _e76 + 1u;
            rk_send_reason_clear(rk_send_reason_len);
            rk_handle(rk_arena, rk_lits, rk_crc_table, rk_params, rk_out_capacity, rk_out_slot_words, rk_out_tail, rk_out_head, rk_outputs, rk_errors, rk_clock_physical, rk_clock_logical, rk_now, rk_detached, rk_msg, rk_outcome, rk_reason_len, rk_send_error, rk_send_reason_len, _buffer_sizes);
            uint _e80 = rk_outcome;
            if (_e80 != RK_OK) {
                uint _e84 = rk_outcome;
                rk_count_error(_e84, false, rk_rejected, rk_errors, rk_last_error);
                uint _e87 = rk_outcome;
                if (_e87 == RK_ERROR_HANDLER_FAULT) {
                    rk_failed = true;
                }
            }
        }
    }
    uint _e93 = rk_outcome;
    if (_e93 != RK_OK) {
        uint _e97 = rk_outcome;
        metal::uint2 _e98 = report_v0_;
        metal::uint2 _e99 = report_v1_;
        rk_report(_e97, _e98, _e99, true, rk_arena, rk_lits, rk_crc_table, rk_params, rk_out_capacity, rk_out_slot_words, rk_out_tail, rk_out_head, rk_outputs, rk_errors, rk_clock_physical, rk_clock_logical, rk_now, rk_detached, rk_msg, rk_reason_len, rk_send_error, rk_send_reason_len, _buffer_sizes);
        return;
    } else {
        return;
    }
}

void rk_leave_routes(
    device type_10& rk_arena,
    thread WgpuParams& rk_params,
    constant _mslBufferSizes& _buffer_sizes
) {
    uint _e3 = rk_params.routes;
    uint _e6 = rk_params.route_index;
    rk_arena[(_e3 + (_e6 * RK_ROUTE_WORDS)) + RK_ROUTE_USED] = 0u;
    return;
}

bool rk_handle_next(
    device type_10& rk_arena,
    device type_10 const& rk_lits,
    device type_12 const& rk_crc_table,
    thread WgpuParams& rk_params,
    thread uint& rk_c,
    thread uint& rk_in_capacity,
    thread uint& rk_in_slot_words,
    thread uint& rk_out_capacity,
    thread uint& rk_out_slot_words,
    thread uint& rk_in_head,
    thread uint& rk_out_tail,
    thread uint& rk_out_head,
    thread uint& rk_outputs,
    thread uint& rk_processed,
    thread uint& rk_rejected,
    thread uint& rk_errors,
    thread uint& rk_last_error,
    thread metal::uint2& rk_clock_physical,
    thread uint& rk_clock_logical,
    thread metal::uint2& rk_now,
    thread bool& rk_failed,
    thread bool& rk_detached,
    thread uint& rk_msg,
    thread uint& rk_msg_capacity,
    thread RkStamp& rk_received,
    thread uint& rk_outcome,
    thread uint& rk_reason_len,
    thread uint& rk_send_error,
    thread uint& rk_send_reason_len,
    constant _mslBufferSizes& _buffer_sizes
) {
    uint available = {};
    bool local_20 = {};
    bool local_21 = {};
    bool local_22 = {};
    uint slot_2 = 0u;
    uint payload_capacity = 0u;
    uint c_1 = rk_c;
    uint tail = rk_arena[c_1 + 2u];
    uint _e8 = rk_in_head;
    available = tail - _e8;
    uint _e11 = available;
    uint _e13 = rk_in_capacity;
    if (_e11 > _e13) {
        available = 0u;
    }
    uint ib_1 = rk_params.inbox;
    uint capacity_3 = rk_arena[ib_1 + 0u];
    uint slot_bytes_1 = rk_arena[ib_1 + 1u];
    uint sequences_1 = ib_1 + 16u;
    uint pos_1 = rk_arena[ib_1 + 5u];
    uint _e42 = rk_arena[sequences_1 + (pos_1 & (capacity_3 - 1u))];
    bool inbox_ready = _e42 == (pos_1 + 1u);
    uint _e46 = available;
    if (_e46 == 0u) {
        local_20 = !(inbox_ready);
    } else {
        local_20 = false;
    }
    bool _e53 = local_20;
    if (_e53) {
        return false;
    }
    if (inbox_ready) {
        uint _e57 = available;
        if (!((_e57 == 0u))) {
            uint _e66 = rk_params.scratch;
            uint _e70 = rk_arena[_e66 + RK_SCRATCH_TURN];
            local_22 = _e70 != 0u;
        } else {
            local_22 = true;
        }
        bool _e74 = local_22;
        local_21 = _e74;
    } else {
        local_21 = false;
    }
    bool from_inbox = local_21;
    if (from_inbox) {
        uint slots_1 = ib_1 + naga_div(((RK_K2K_INBOX_SEQUENCES_OFFSET + (4u * capacity_3)) + 63u) & 4294967232u, 4u);
        slot_2 = slots_1 + ((pos_1 & (capacity_3 - 1u)) * naga_div(slot_bytes_1, 4u));
        payload_capacity = slot_bytes_1 - RK_MESSAGE_HEADER_BYTES;
    } else {
        uint _e103 = rk_params.input;
        uint _e105 = rk_in_head;
        uint _e107 = rk_in_capacity;
        uint _e112 = rk_in_slot_words;
        slot_2 = _e103 + ((_e105 & (_e107 - 1u)) * _e112);
        uint _e116 = rk_in_slot_words;
        payload_capacity = (_e116 * 4u) - RK_MESSAGE_HEADER_BYTES;
    }
    uint _e121 = slot_2;
    uint _e122 = payload_capacity;
    rk_handle_slot(_e121, _e122, rk_arena, rk_lits, rk_crc_table, rk_params, rk_out_capacity, rk_out_slot_words, rk_out_tail, rk_out_head, rk_outputs, rk_processed, rk_rejected, rk_errors, rk_last_error, rk_clock_physical, rk_clock_logical, rk_now, rk_failed, rk_detached, rk_msg, rk_msg_capacity, rk_received, rk_outcome, rk_reason_len, rk_send_error, rk_send_reason_len, _buffer_sizes);
    if (from_inbox) {
        rk_arena[sequences_1 + (pos_1 & (capacity_3 - 1u))] = pos_1 + capacity_3;
        rk_arena[ib_1 + 5u] = pos_1 + 1u;
        uint _e139 = rk_params.scratch;
        rk_arena[_e139 + RK_SCRATCH_TURN] = 0u;
    } else {
        uint _e145 = rk_in_head;
        rk_in_head = _e145 + 1u;
        uint _e151 = rk_params.scratch;
        rk_arena[_e151 + RK_SCRATCH_TURN] = 1u;
    }
    return true;
}

bool rk_pending(
    device type_10 const& rk_arena,
    thread WgpuParams& rk_params,
    thread uint& rk_c,
    thread uint& rk_in_head,
    constant _mslBufferSizes& _buffer_sizes
) {
    uint _e0 = rk_parked(rk_arena, rk_params, _buffer_sizes);
    if (_e0 != 0u) {
        return true;
    }
    uint _e6 = rk_c;
    uint tail_1 = rk_arena[_e6 + 2u];
    uint _e12 = rk_in_head;
    if (tail_1 != _e12) {
        return true;
    }
    uint ib_2 = rk_params.inbox;
    uint capacity_4 = rk_arena[ib_2 + 0u];
    uint pos_2 = rk_arena[ib_2 + 5u];
    uint _e36 = rk_arena[(ib_2 + 16u) + (pos_2 & (capacity_4 - 1u))];
    return _e36 == (pos_2 + 1u);
}

void rk_publish(
    uint stop,
    device type_10& rk_arena,
    thread WgpuParams& rk_params,
    thread uint& rk_c,
    thread uint& rk_in_head,
    thread uint& rk_out_tail,
    thread uint& rk_outputs,
    thread uint& rk_processed,
    thread uint& rk_rejected,
    thread uint& rk_errors,
    thread uint& rk_last_error,
    thread metal::uint2& rk_clock_physical,
    thread uint& rk_clock_logical,
    constant _mslBufferSizes& _buffer_sizes
) {
    uint c_2 = rk_c;
    uint _e8 = rk_processed;
    rk_arena[c_2 + 19u] = _e8;
    uint _e14 = rk_rejected;
    rk_arena[c_2 + 20u] = _e14;
    uint _e20 = rk_errors;
    rk_arena[c_2 + 21u] = _e20;
    uint _e26 = rk_last_error;
    rk_arena[c_2 + 22u] = _e26;
    uint _e32 = rk_in_head;
    rk_arena[c_2 + 17u] = _e32;
    uint _e38 = rk_out_tail;
    rk_arena[c_2 + 18u] = _e38;
    uint _e45 = rk_clock_physical.x;
    rk_arena[c_2 + 25u] = _e45;
    uint _e52 = rk_clock_physical.y;
    rk_arena[c_2 + 26u] = _e52;
    uint _e58 = rk_clock_logical;
    rk_arena[c_2 + 27u] = _e58;
    uint beat = c_2 + 23u;
    uint _e63 = rk_arena[beat];
    uint heartbeat = _e63 + 1u;
    rk_arena[beat] = heartbeat;
    rk_arena[c_2 + 16u] = stop;
    uint _e74 = rk_params.scratch;
    uint r_2 = _e74 + RK_SCRATCH_REPORT;
    uint ib_3 = rk_params.inbox;
    rk_arena[r_2 + 0u] = stop;
    uint _e89 = rk_in_head;
    rk_arena[r_2 + 1u] = _e89;
    uint _e95 = rk_out_tail;
    rk_arena[r_2 + 2u] = _e95;
    uint _e101 = rk_processed;
    rk_arena[r_2 + 3u] = _e101;
    uint _e107 = rk_rejected;
    rk_arena[r_2 + 4u] = _e107;
    uint _e113 = rk_errors;
    rk_arena[r_2 + 5u] = _e113;
    uint _e119 = rk_last_error;
    rk_arena[r_2 + 6u] = _e119;
    rk_arena[r_2 + 7u] = heartbeat;
    uint _e130 = rk_clock_physical.x;
    rk_arena[r_2 + 8u] = _e130;
    uint _e137 = rk_clock_physical.y;
    rk_arena[r_2 + 9u] = _e137;
    uint _e143 = rk_clock_logical;
    rk_arena[r_2 + 10u] = _e143;
    uint _e152 = rk_arena[c_2 + 28u];
    rk_arena[r_2 + 11u] = _e152;
    uint _e161 = rk_arena[ib_3 + 2u];
    rk_arena[r_2 + 12u] = _e161;
    uint _e170 = rk_arena[ib_3 + 5u];
    rk_arena[r_2 + 13u] = _e170;
    uint _e175 = rk_parked(rk_arena, rk_params, _buffer_sizes);
    rk_arena[r_2 + 14u] = _e175;
    uint _e181 = rk_outputs;
    rk_arena[r_2 + 15u] = _e181;
    return;
}

struct rk_mainInput {
};
[[max_total_threads_per_threadgroup(1)]] kernel void rk_main(
  metal::uint3 workgroup [[threadgroup_position_in_grid]]
, device type_10& rk_arena [[user(fake0)]]
, device type_11 const& rk_dispatch_params [[user(fake0)]]
, device type_10 const& rk_lits [[user(fake0)]]
, device type_12 const& rk_crc_table [[user(fake0)]]
, constant _mslBufferSizes& _buffer_sizes [[user(fake0)]]
) {
    WgpuParams rk_params = {};
    uint rk_c = {};
    uint rk_in_capacity = {};
    uint rk_in_slot_words = {};
    uint rk_out_capacity = {};
    uint rk_out_slot_words = {};
    uint rk_in_head = {};
    uint rk_out_tail = {};
    uint rk_out_head = {};
    uint rk_outputs = {};
    uint rk_processed = {};
    uint rk_rejected = {};
    uint rk_errors = {};
    uint rk_last_error = {};
    metal::uint2 rk_clock_physical = {};
    uint rk_clock_logical = {};
    metal::uint2 rk_now = {};
    bool rk_failed = {};
    bool rk_detached = {};
    uint rk_msg = {};
    uint rk_msg_capacity = {};
    RkStamp rk_received = {};
    uint rk_outcome = {};
    uint rk_reason_len = {};
    uint rk_send_error = {};
    uint rk_send_reason_len = {};
    uint i = 0u;
    uint handled = 0u;
    bool local = {};
    bool local_1 = {};
    bool local_2 = {};
    bool local_3 = {};
    bool local_4 = {};
    bool local_5 = {};
    bool local_6 = {};
    WgpuParams _e5 = rk_dispatch_params[workgroup.x];
    rk_params = _e5;
    uint c_3 = rk_params.control;
    rk_c = c_3;
    uint _e14 = rk_arena[c_3 + 16u];
    if (_e14 != RK_RUNNING) {
        return;
    }
    uint sequence = rk_arena[c_3 + 10u];
    uint _e26 = rk_arena[c_3 + 0u];
    bool is_on = _e26 != 0u;
    uint terminate = rk_arena[c_3 + 1u];
    rk_arena[c_3 + 28u] = sequence;
    uint _e43 = rk_arena[c_3 + 4u];
    rk_in_capacity = _e43;
    uint _e49 = rk_arena[c_3 + 5u];
    rk_in_slot_words = naga_div(_e49, 4u);
    uint _e57 = rk_arena[c_3 + 6u];
    rk_out_capacity = _e57;
    uint _e63 = rk_arena[c_3 + 7u];
    rk_out_slot_words = naga_div(_e63, 4u);
    uint _e71 = rk_arena[c_3 + 17u];
    rk_in_head = _e71;
    uint _e77 = rk_arena[c_3 + 18u];
    rk_out_tail = _e77;
    uint _e83 = rk_arena[c_3 + 3u];
    rk_out_head = _e83;
    uint _e89 = rk_arena[c_3 + 19u];
    rk_processed = _e89;
    uint _e95 = rk_arena[c_3 + 20u];
    rk_rejected = _e95;
    uint _e101 = rk_arena[c_3 + 21u];
    rk_errors = _e101;
    uint _e107 = rk_arena[c_3 + 22u];
    rk_last_error = _e107;
    uint _e113 = rk_arena[c_3 + 25u];
    uint _e118 = rk_arena[c_3 + 26u];
    rk_clock_physical = metal::uint2(_e113, _e118);
    uint _e125 = rk_arena[c_3 + 27u];
    rk_clock_logical = _e125;
    uint _e129 = rk_params.now_lo;
    uint _e132 = rk_params.now_hi;
    rk_now = metal::uint2(_e129, _e132);
    uint _e137 = rk_params.scratch;
    uint _e141 = rk_arena[_e137 + RK_SCRATCH_ROUND];
    uint _e144 = rk_params.round;
    if (_e141 != _e144) {
        uint _e149 = rk_params.scratch;
        uint _e155 = rk_params.round;
        rk_arena[_e149 + RK_SCRATCH_ROUND] = _e155;
        uint _e159 = rk_params.scratch;
        rk_arena[_e159 + RK_SCRATCH_OUTPUTS] = 0u;
    }
    uint _e168 = rk_params.scratch;
    uint _e172 = rk_arena[_e168 + RK_SCRATCH_OUTPUTS];
    rk_outputs = _e172;
    rk_failed = false;
    rk_detached = terminate == RK_TERMINATE_DRAIN_DETACHED;
    uint2 loop_bound_20 = uint2(4294967295u);
    bool loop_init_17 = true;
    while(true) {
        if (metal::all(loop_bound_20 == uint2(0u))) { break; }
        loop_bound_20 -= uint2(loop_bound_20.y == 0u, 1u);
        if (!loop_init_17) {
            uint _e194 = i;
            i = _e194 + 1u;
        }
        loop_init_17 = false;
        uint _e180 = i;
        uint _e182 = rk_n(RK_H_USED_WORDS, rk_params);
        if (_e180 < _e182) {
        } else {
            break;
        }
        {
            uint _e187 = rk_params.scratch;
            uint _e190 = i;
            rk_arena[(_e187 + RK_SCRATCH_OH) + _e190] = 0u;
        }
    }
    uint _e197 = rk_flush_parked(rk_arena, rk_params, rk_out_capacity, rk_out_slot_words, rk_out_tail, rk_out_head, rk_outputs, rk_errors, rk_detached, _buffer_sizes);
    if (terminate != RK_TERMINATE_NONE) {
        rk_leave_routes(rk_arena, rk_params, _buffer_sizes);
    }
    uint _e203 = rk_params.scratch;
    uint _e207 = rk_arena[_e203 + RK_SCRATCH_FAILING];
    bool failing = _e207 != 0u;
    uint2 loop_bound_21 = uint2(4294967295u);
    while(true) {
        if (metal::all(loop_bound_21 == uint2(0u))) { break; }
        loop_bound_21 -= uint2(loop_bound_21.y == 0u, 1u);
        uint _e212 = handled;
        uint _e215 = rk_params.loop_budget;
        if (!((_e212 >= _e215))) {
            local = failing;
        } else {
            local = true;
        }
        bool _e221 = local;
        if (!(_e221)) {
            bool _e226 = rk_failed;
            local_1 = _e226;
        } else {
            local_1 = true;
        }
        bool _e228 = local_1;
        if (_e228) {
            break;
        }
        if (!(is_on)) {
            local_2 = terminate != RK_TERMINATE_NONE;
        } else {
            local_2 = true;
        }
        bool _e235 = local_2;
        if (!(!(_e235))) {
            uint _e240 = rk_parked(rk_arena, rk_params, _buffer_sizes);
            local_3 = _e240 != 0u;
        } else {
            local_3 = true;
        }
        bool _e244 = local_3;
        if (!(_e244)) {
            uint _e249 = rk_outputs;
            uint _e252 = rk_params.out_budget;
            local_4 = _e249 >= _e252;
        } else {
            local_4 = true;
        }
        bool _e255 = local_4;
        if (_e255) {
            break;
        }
        bool _e256 = rk_handle_next(rk_arena, rk_lits, rk_crc_table, rk_params, rk_c, rk_in_capacity, rk_in_slot_words, rk_out_capacity, rk_out_slot_words, rk_in_head, rk_out_tail, rk_out_head, rk_outputs, rk_processed, rk_rejected, rk_errors, rk_last_error, rk_clock_physical, rk_clock_logical, rk_now, rk_failed, rk_detached, rk_msg, rk_msg_capacity, rk_received, rk_outcome, rk_reason_len, rk_send_error, rk_send_reason_len, _buffer_sizes);
        if (!(_e256)) {
            break;
        }
        uint _e258 = handled;
        handled = _e258 + 1u;
    }
    uint _e264 = rk_params.scratch;
    uint _e269 = rk_outputs;
    rk_arena[_e264 + RK_SCRATCH_OUTPUTS] = _e269;
    bool _e271 = rk_failed;
    if (!(_e271)) {
        local_5 = failing;
    } else {
        local_5 = true;
    }
    bool _e276 = local_5;
    if (_e276) {
        rk_leave_routes(rk_arena, rk_params, _buffer_sizes);
        rk_last_error = RK_ERROR_HANDLER_FAULT;
        uint _e279 = rk_parked(rk_arena, rk_params, _buffer_sizes);
        if (_e279 != 0u) {
            uint _e285 = rk_params.scratch;
            rk_arena[_e285 + RK_SCRATCH_FAILING] = 1u;
            rk_publish(RK_RUNNING, rk_arena, rk_params, rk_c, rk_in_head, rk_out_tail, rk_outputs, rk_processed, rk_rejected, rk_errors, rk_last_error, rk_clock_physical, rk_clock_logical, _buffer_sizes);
            return;
        } else {
            rk_publish(RK_FAILED, rk_arena, rk_params, rk_c, rk_in_head, rk_out_tail, rk_outputs, rk_processed, rk_rejected, rk_errors, rk_last_error, rk_clock_physical, rk_clock_logical, _buffer_sizes);
            return;
        }
    } else {
        if (terminate != RK_TERMINATE_NONE) {
            bool _e296 = rk_pending(rk_arena, rk_params, rk_c, rk_in_head, _buffer_sizes);
            local_6 = !(_e296);
        } else {
            local_6 = false;
        }
        bool _e299 = local_6;
        if (_e299) {
            rk_publish(RK_TERMINATED, rk_arena, rk_params, rk_c, rk_in_head, rk_out_tail, rk_outputs, rk_processed, rk_rejected, rk_errors, rk_last_error, rk_clock_physical, rk_clock_logical, _buffer_sizes);
            return;
        } else {
            rk_publish(RK_RUNNING, rk_arena, rk_params, rk_c, rk_in_head, rk_out_tail, rk_outputs, rk_processed, rk_rejected, rk_errors, rk_last_error, rk_clock_physical, rk_clock_logical, _buffer_sizes);
            return;
        }
    }
}
