// language: metal2.4
#include <metal_stdlib>
#include <simd/simd.h>

using metal::uint;

struct _mslBufferSizes {
    uint size1;
    uint size2;
    uint size3;
    uint size4;
    uint size5;
    uint size6;
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
struct HaloParams {
    metal::uint4 tile;
    metal::uint4 padded;
    metal::uint4 pad;
    metal::uint4 info;
    metal::uint4 stencil;
};
typedef int type_10[1];
typedef uint type_11[1];
typedef float type_13[1];
typedef metal::atomic_uint type_14[1];
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
constant uint HALO_THREADS = 64u;
constant uint ROUTING_TABLE_WORDS = 216u;
constant uint ROUTE_WORDS = 8u;
constant uint HALO_HEADER_WORDS = 8u;

metal::int3 offset_of(
    uint direction,
    device type_10 const& geom,
    constant _mslBufferSizes& _buffer_sizes
) {
    int _e5 = geom[direction * 3u];
    int _e12 = geom[(direction * 3u) + 1u];
    int _e19 = geom[(direction * 3u) + 2u];
    return metal::int3(_e5, _e12, _e19);
}

metal::uint3 face_extent(
    uint direction_1,
    constant HaloParams& hp,
    device type_10 const& geom,
    constant _mslBufferSizes& _buffer_sizes
) {
    metal::int3 _e1 = offset_of(direction_1, geom, _buffer_sizes);
    uint _e5 = hp.tile.x;
    uint _e9 = hp.pad.w;
    uint _e17 = hp.tile.y;
    uint _e21 = hp.pad.w;
    uint _e29 = hp.tile.z;
    uint _e33 = hp.pad.w;
    return metal::uint3((_e1.x != 0) ? _e9 : _e5, (_e1.y != 0) ? _e21 : _e17, (_e1.z != 0) ? _e33 : _e29);
}

metal::uint3 send_origin(
    uint direction_2,
    constant HaloParams& hp,
    device type_10 const& geom,
    constant _mslBufferSizes& _buffer_sizes
) {
    metal::int3 _e1 = offset_of(direction_2, geom, _buffer_sizes);
    uint _e5 = hp.pad.x;
    uint _e10 = hp.tile.x;
    uint _e14 = hp.pad.w;
    uint _e24 = hp.pad.y;
    uint _e29 = hp.tile.y;
    uint _e33 = hp.pad.w;
    uint _e43 = hp.pad.z;
    uint _e48 = hp.tile.z;
    uint _e52 = hp.pad.w;
    return metal::uint3(_e5 + ((_e1.x == 1) ? (_e10 - _e14) : 0u), _e24 + ((_e1.y == 1) ? (_e29 - _e33) : 0u), _e43 + ((_e1.z == 1) ? (_e48 - _e52) : 0u));
}

uint ghost_axis(
    int o,
    uint pad,
    uint tile
) {
    if (o == -1) {
        return 0u;
    }
    if (o == 1) {
        return pad + tile;
    }
    return pad;
}

metal::uint3 ghost_origin(
    uint arrives_from,
    constant HaloParams& hp,
    device type_10 const& geom,
    constant _mslBufferSizes& _buffer_sizes
) {
    metal::int3 _e1 = offset_of(arrives_from, geom, _buffer_sizes);
    uint _e6 = hp.pad.x;
    uint _e10 = hp.tile.x;
    uint _e11 = ghost_axis(_e1.x, _e6, _e10);
    uint _e16 = hp.pad.y;
    uint _e20 = hp.tile.y;
    uint _e21 = ghost_axis(_e1.y, _e16, _e20);
    uint _e26 = hp.pad.z;
    uint _e30 = hp.tile.z;
    uint _e31 = ghost_axis(_e1.z, _e26, _e30);
    return metal::uint3(_e11, _e21, _e31);
}

uint padded_index(
    metal::uint3 c,
    constant HaloParams& hp
) {
    uint _e5 = hp.padded.y;
    uint _e12 = hp.padded.x;
    return (((c.z * _e5) + c.y) * _e12) + c.x;
}

metal::uint3 tiles_per_axis(
    device type_11 const& routes,
    constant _mslBufferSizes& _buffer_sizes
) {
    uint _e2 = routes[2];
    uint _e5 = routes[3];
    uint _e8 = routes[4];
    return metal::uint3(_e2, _e5, _e8);
}

uint naga_mod(uint lhs, uint rhs) {
    return lhs % metal::select(rhs, 1u, rhs == 0u);
}

uint naga_div(uint lhs, uint rhs) {
    return lhs / metal::select(rhs, 1u, rhs == 0u);
}

uint neighbour(
    uint tile_1,
    uint direction_3,
    device type_10 const& geom,
    device type_11 const& routes,
    constant _mslBufferSizes& _buffer_sizes
) {
    bool local_7 = {};
    metal::uint3 _e2 = tiles_per_axis(routes, _buffer_sizes);
    metal::int3 t = static_cast<metal::int3>(metal::uint3(naga_mod(tile_1, _e2.x), naga_mod(naga_div(tile_1, _e2.x), _e2.y), naga_div(tile_1, _e2.x * _e2.y)));
    metal::int3 _e15 = offset_of(direction_3, geom, _buffer_sizes);
    metal::int3 q = as_type<metal::int3>(as_type<metal::uint3>(t) + as_type<metal::uint3>(_e15));
    if (!(metal::any(q < metal::int3(0)))) {
        local_7 = metal::any(q >= static_cast<metal::int3>(_e2));
    } else {
        local_7 = true;
    }
    bool _e28 = local_7;
    if (_e28) {
        return 4294967295u;
    }
    metal::uint3 u = static_cast<metal::uint3>(q);
    return (((u.z * _e2.y) + u.y) * _e2.x) + u.x;
}

struct halo_sendInput {
};
[[max_total_threads_per_threadgroup(64)]] kernel void halo_send(
  metal::uint3 wg [[threadgroup_position_in_grid]]
, uint lid [[thread_index_in_threadgroup]]
, constant HaloParams& hp [[user(fake0)]]
, device type_10 const& geom [[user(fake0)]]
, device type_11 const& routes [[user(fake0)]]
, device type_11& inboxes [[user(fake0)]]
, device type_13 const& cells [[user(fake0)]]
, constant _mslBufferSizes& _buffer_sizes [[user(fake0)]]
) {
    uint r = 0u;
    uint i = {};
    uint tile_2 = wg.x;
    uint table = tile_2 * ROUTING_TABLE_WORDS;
    uint count = routes[table + 1u];
    uint _e13 = hp.padded.w;
    uint base = tile_2 * _e13;
    uint2 loop_bound = uint2(4294967295u);
    bool loop_init = true;
    while(true) {
        if (metal::all(loop_bound == uint2(0u))) { break; }
        loop_bound -= uint2(loop_bound.y == 0u, 1u);
        if (!loop_init) {
            uint _e127 = r;
            r = _e127 + 1u;
        }
        loop_init = false;
        uint _e17 = r;
        if (_e17 < count) {
        } else {
            break;
        }
        {
            uint _e21 = r;
            uint route = (table + 8u) + (_e21 * ROUTE_WORDS);
            uint _e29 = routes[route + 2u];
            if (_e29 != 1u) {
                continue;
            }
            uint direction_4 = routes[route + 6u];
            uint _e41 = routes[route + 1u];
            uint slot = naga_div(_e41, 4u);
            metal::uint3 _e44 = face_extent(direction_4, hp, geom, _buffer_sizes);
            metal::uint3 _e45 = send_origin(direction_4, hp, geom, _buffer_sizes);
            if (lid == 0u) {
                inboxes[slot] = tile_2;
                inboxes[slot + 1u] = direction_4 ^ 1u;
                inboxes[slot + 2u] = _e44.x;
                inboxes[slot + 3u] = _e44.y;
                inboxes[slot + 4u] = _e44.z;
                inboxes[slot + 5u] = 4u;
                uint _e83 = hp.info.w;
                inboxes[slot + 6u] = _e83;
                inboxes[slot + 7u] = 0u;
            }
            uint total = (_e44.x * _e44.y) * _e44.z;
            i = lid;
            uint2 loop_bound_1 = uint2(4294967295u);
            bool loop_init_1 = true;
            while(true) {
                if (metal::all(loop_bound_1 == uint2(0u))) { break; }
                loop_bound_1 -= uint2(loop_bound_1.y == 0u, 1u);
                if (!loop_init_1) {
                    uint _e124 = i;
                    i = _e124 + HALO_THREADS;
                }
                loop_init_1 = false;
                uint _e95 = i;
                if (_e95 < total) {
                } else {
                    break;
                }
                {
                    uint _e97 = i;
                    uint _e100 = i;
                    uint _e105 = i;
                    metal::uint3 c_1 = metal::uint3(naga_mod(_e97, _e44.x), naga_mod(naga_div(_e100, _e44.x), _e44.y), naga_div(_e105, _e44.x * _e44.y));
                    uint _e114 = i;
                    uint _e119 = padded_index(_e45 + c_1, hp);
                    float _e122 = cells[base + _e119];
                    inboxes[(slot + HALO_HEADER_WORDS) + _e114] = as_type<uint>(_e122);
                }
            }
        }
    }
    return;
}


struct halo_applyInput {
};
[[max_total_threads_per_threadgroup(64)]] kernel void halo_apply(
  metal::uint3 wg_1 [[threadgroup_position_in_grid]]
, uint lid_1 [[thread_index_in_threadgroup]]
, constant HaloParams& hp [[user(fake0)]]
, device type_10 const& geom [[user(fake0)]]
, device type_11 const& routes [[user(fake0)]]
, device type_11 const& inboxes [[user(fake0)]]
, device type_13& cells [[user(fake0)]]
, device type_14& status [[user(fake0)]]
, constant _mslBufferSizes& _buffer_sizes [[user(fake0)]]
) {
    uint s = 0u;
    bool local = {};
    bool local_1 = {};
    bool local_2 = {};
    bool local_3 = {};
    bool local_4 = {};
    bool local_5 = {};
    bool local_6 = {};
    uint i_1 = {};
    uint tile_3 = wg_1.x;
    uint _e6 = hp.padded.w;
    uint base_1 = tile_3 * _e6;
    uint2 loop_bound_2 = uint2(4294967295u);
    bool loop_init_2 = true;
    while(true) {
        if (metal::all(loop_bound_2 == uint2(0u))) { break; }
        loop_bound_2 -= uint2(loop_bound_2.y == 0u, 1u);
        if (!loop_init_2) {
            uint _e175 = s;
            s = _e175 + 1u;
        }
        loop_init_2 = false;
        uint _e10 = s;
        uint _e14 = hp.info.x;
        if (_e10 < _e14) {
        } else {
            break;
        }
        {
            uint _e18 = s;
            int _e21 = geom[78u + _e18];
            uint from_dir = static_cast<uint>(_e21);
            uint _e23 = neighbour(tile_3, from_dir, geom, routes, _buffer_sizes);
            if (_e23 == 4294967295u) {
                continue;
            }
            uint _e29 = hp.info.z;
            uint _e31 = s;
            uint _e35 = hp.info.y;
            uint slot_1 = naga_div((tile_3 * _e29) + (_e31 * _e35), 4u);
            metal::uint3 _e40 = face_extent(from_dir, hp, geom, _buffer_sizes);
            uint _e43 = inboxes[slot_1];
            if (_e43 == _e23) {
                uint _e51 = inboxes[slot_1 + 1u];
                local = _e51 == from_dir;
            } else {
                local = false;
            }
            bool _e54 = local;
            if (_e54) {
                uint _e61 = inboxes[slot_1 + 2u];
                local_1 = _e61 == _e40.x;
            } else {
                local_1 = false;
            }
            bool _e65 = local_1;
            if (_e65) {
                uint _e72 = inboxes[slot_1 + 3u];
                local_2 = _e72 == _e40.y;
            } else {
                local_2 = false;
            }
            bool _e76 = local_2;
            if (_e76) {
                uint _e83 = inboxes[slot_1 + 4u];
                local_3 = _e83 == _e40.z;
            } else {
                local_3 = false;
            }
            bool _e87 = local_3;
            if (_e87) {
                uint _e94 = inboxes[slot_1 + 5u];
                local_4 = _e94 == 4u;
            } else {
                local_4 = false;
            }
            bool _e98 = local_4;
            if (_e98) {
                uint _e105 = inboxes[slot_1 + 6u];
                uint _e109 = hp.info.w;
                local_5 = _e105 == _e109;
            } else {
                local_5 = false;
            }
            bool _e112 = local_5;
            if (_e112) {
                uint _e119 = inboxes[slot_1 + 7u];
                local_6 = _e119 == 0u;
            } else {
                local_6 = false;
            }
            bool good = local_6;
            if (!(good)) {
                if (lid_1 == 0u) {
                    uint _e130 = metal::atomic_fetch_add_explicit(&status[0], 1u, metal::memory_order_relaxed);
                    uint _e135 = metal::atomic_fetch_max_explicit(&status[1], tile_3 + 1u, metal::memory_order_relaxed);
                }
                continue;
            }
            metal::uint3 _e136 = ghost_origin(from_dir, hp, geom, _buffer_sizes);
            uint total_1 = (_e40.x * _e40.y) * _e40.z;
            i_1 = lid_1;
            uint2 loop_bound_3 = uint2(4294967295u);
            bool loop_init_3 = true;
            while(true) {
                if (metal::all(loop_bound_3 == uint2(0u))) { break; }
                loop_bound_3 -= uint2(loop_bound_3.y == 0u, 1u);
                if (!loop_init_3) {
                    uint _e172 = i_1;
                    i_1 = _e172 + HALO_THREADS;
                }
                loop_init_3 = false;
                uint _e143 = i_1;
                if (_e143 < total_1) {
                } else {
                    break;
                }
                {
                    uint _e145 = i_1;
                    uint _e148 = i_1;
                    uint _e153 = i_1;
                    metal::uint3 c_2 = metal::uint3(naga_mod(_e145, _e40.x), naga_mod(naga_div(_e148, _e40.x), _e40.y), naga_div(_e153, _e40.x * _e40.y));
                    uint _e161 = padded_index(_e136 + c_2, hp);
                    uint _e167 = i_1;
                    uint _e170 = inboxes[(slot_1 + HALO_HEADER_WORDS) + _e167];
                    cells[base_1 + _e161] = as_type<float>(_e170);
                }
            }
        }
    }
    return;
}


struct halo_computeInput {
};
[[max_total_threads_per_threadgroup(64)]] kernel void halo_compute(
  metal::uint3 wg_2 [[threadgroup_position_in_grid]]
, uint lid_2 [[thread_index_in_threadgroup]]
, constant HaloParams& hp [[user(fake0)]]
, device type_10 const& geom [[user(fake0)]]
, device type_13 const& cells [[user(fake0)]]
, device type_13& next [[user(fake0)]]
, constant _mslBufferSizes& _buffer_sizes [[user(fake0)]]
) {
    uint i_2 = {};
    float sum = {};
    uint p = {};
    uint tile_4 = wg_2.x;
    uint _e6 = hp.padded.w;
    uint base_2 = tile_4 * _e6;
    uint _e11 = hp.tile.x;
    uint _e15 = hp.tile.y;
    uint _e20 = hp.tile.z;
    uint total_2 = (_e11 * _e15) * _e20;
    uint points = hp.stencil.x;
    uint _e29 = hp.stencil.y;
    float weight = as_type<float>(_e29);
    i_2 = lid_2;
    uint2 loop_bound_4 = uint2(4294967295u);
    bool loop_init_4 = true;
    while(true) {
        if (metal::all(loop_bound_4 == uint2(0u))) { break; }
        loop_bound_4 -= uint2(loop_bound_4.y == 0u, 1u);
        if (!loop_init_4) {
            uint _e134 = i_2;
            i_2 = _e134 + HALO_THREADS;
        }
        loop_init_4 = false;
        uint _e33 = i_2;
        if (_e33 < total_2) {
        } else {
            break;
        }
        {
            uint _e35 = i_2;
            uint _e39 = hp.tile.x;
            uint _e41 = i_2;
            uint _e45 = hp.tile.x;
            uint _e50 = hp.tile.y;
            uint _e52 = i_2;
            uint _e56 = hp.tile.x;
            uint _e60 = hp.tile.y;
            metal::uint4 _e66 = hp.pad;
            metal::uint3 c_3 = metal::uint3(naga_mod(_e35, _e39), naga_mod(naga_div(_e41, _e45), _e50), naga_div(_e52, _e56 * _e60)) + _e66.xyz;
            sum = 0.0;
            p = 0u;
            uint2 loop_bound_5 = uint2(4294967295u);
            bool loop_init_5 = true;
            while(true) {
                if (metal::all(loop_bound_5 == uint2(0u))) { break; }
                loop_bound_5 -= uint2(loop_bound_5.y == 0u, 1u);
                if (!loop_init_5) {
                    uint _e103 = p;
                    p = _e103 + 1u;
                }
                loop_init_5 = false;
                uint _e73 = p;
                if (_e73 < points) {
                } else {
                    break;
                }
                {
                    uint _e76 = p;
                    uint at = 104u + (3u * _e76);
                    int _e82 = geom[at];
                    int _e87 = geom[at + 1u];
                    int _e92 = geom[at + 2u];
                    metal::uint3 q_1 = static_cast<metal::uint3>(as_type<metal::int3>(as_type<metal::uint3>(static_cast<metal::int3>(c_3)) + as_type<metal::uint3>(metal::int3(_e82, _e87, _e92))));
                    float _e96 = sum;
                    uint _e98 = padded_index(q_1, hp);
                    float _e101 = cells[base_2 + _e98];
                    sum = _e96 + _e101;
                }
            }
            uint _e106 = padded_index(c_3, hp);
            uint at_1 = base_2 + _e106;
            uint _e111 = hp.stencil.w;
            if (_e111 == 2u) {
                float u_1 = cells[at_1];
                float _e117 = sum;
                float laplacian = _e117 - (static_cast<float>(points) * u_1);
                float _e126 = next[at_1];
                next[at_1] = ((u_1 + u_1) - _e126) + (weight * laplacian);
            } else {
                float _e132 = sum;
                next[at_1] = _e132 * weight;
            }
        }
    }
    return;
}
