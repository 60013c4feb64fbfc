// RingKernel WGSL halo exchange: K2K between the tiles of a 2D or 3D grid.
//
// One workgroup per tile. A step is three dispatches: `halo_send` writes each face a neighbour
// needs into that neighbour's inbox slot for the direction the data arrives from (its routing
// table gives the slot's byte offset: `dest * inbox_stride + slot * slot_bytes`, the stride the
// host computed with ringkernel-core's `HaloGrid`); `halo_apply` checks each slot's
// HaloMessageHeader (source, direction, extent, step) and copies the face into the ghost cells on
// the side it arrived from; `halo_compute` sums the stencil's points in the host's order and
// multiplies once by the weight (mean, Jacobi), or for the wave (two time levels, the previous one
// read from `next` before it is overwritten) computes ((u + u) - previous) + c2 * (sum - n * u). The dispatch boundary is the barrier between writer and reader.
// Only 32-bit relaxed atomics (the error counter); no 64-bit atomics anywhere.

struct HaloParams {
    tile: vec4<u32>,     // interior x, y, z; tile count
    padded: vec4<u32>,   // padded x, y, z; padded length
    pad: vec4<u32>,      // ghost width x, y, z; halo width
    info: vec4<u32>,     // directions, slot bytes, inbox stride, step
    stencil: vec4<u32>,  // points, weight (f32 bits; c2 for the wave), neighbourhood code, stencil code
}

@group(0) @binding(0) var<uniform> hp: HaloParams;
// Offsets of the 26 directions (78 ints), the neighbourhood's directions in slot order (26
// ints), then the stencil's points (3 ints each).
@group(0) @binding(1) var<storage, read> geom: array<i32>;
// One K2KRoutingTable per tile.
@group(0) @binding(2) var<storage, read> routes: array<u32>;
@group(0) @binding(3) var<storage, read_write> inboxes: array<u32>;
@group(0) @binding(4) var<storage, read_write> cells: array<f32>;
@group(0) @binding(5) var<storage, read_write> next: array<f32>;
// [0]: slots that did not hold the expected face; [1]: 1 + the first such tile.
@group(0) @binding(6) var<storage, read_write> status: array<atomic<u32>>;

const HALO_THREADS: u32 = 64u;
const ROUTING_TABLE_WORDS: u32 = RK_K2K_ROUTING_TABLE_SIZE / 4u;
const ROUTE_WORDS: u32 = RK_K2K_ROUTE_ENTRY_SIZE / 4u;
const HALO_HEADER_WORDS: u32 = RK_HALO_MESSAGE_HEADER_SIZE / 4u;

fn offset_of(direction: u32) -> vec3<i32> {
    return vec3<i32>(geom[direction * 3u], geom[direction * 3u + 1u], geom[direction * 3u + 2u]);
}

fn face_extent(direction: u32) -> vec3<u32> {
    let o = offset_of(direction);
    return vec3<u32>(select(hp.tile.x, hp.pad.w, o.x != 0), select(hp.tile.y, hp.pad.w, o.y != 0),
                     select(hp.tile.z, hp.pad.w, o.z != 0));
}

fn send_origin(direction: u32) -> vec3<u32> {
    let o = offset_of(direction);
    return vec3<u32>(hp.pad.x + select(0u, hp.tile.x - hp.pad.w, o.x == 1),
                     hp.pad.y + select(0u, hp.tile.y - hp.pad.w, o.y == 1),
                     hp.pad.z + select(0u, hp.tile.z - hp.pad.w, o.z == 1));
}

fn ghost_axis(o: i32, pad: u32, tile: u32) -> u32 {
    if (o == -1) {
        return 0u;
    }
    if (o == 1) {
        return pad + tile;
    }
    return pad;
}

fn ghost_origin(arrives_from: u32) -> vec3<u32> {
    let o = offset_of(arrives_from);
    return vec3<u32>(ghost_axis(o.x, hp.pad.x, hp.tile.x), ghost_axis(o.y, hp.pad.y, hp.tile.y),
                     ghost_axis(o.z, hp.pad.z, hp.tile.z));
}

fn padded_index(c: vec3<u32>) -> u32 {
    return (c.z * hp.padded.y + c.y) * hp.padded.x + c.x;
}

fn tiles_per_axis() -> vec3<u32> {
    return vec3<u32>(routes[2u], routes[3u], routes[4u]);
}

// The neighbour of `tile` in `direction`, or 0xFFFFFFFF at the grid's edge.
fn neighbour(tile: u32, direction: u32) -> u32 {
    let n = tiles_per_axis();
    let t = vec3<i32>(vec3<u32>(tile % n.x, (tile / n.x) % n.y, tile / (n.x * n.y)));
    let q = t + offset_of(direction);
    if (any(q < vec3<i32>(0)) || any(q >= vec3<i32>(n))) {
        return 0xFFFFFFFFu;
    }
    let u = vec3<u32>(q);
    return (u.z * n.y + u.y) * n.x + u.x;
}

@compute @workgroup_size(64)
fn halo_send(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let tile = wg.x;
    let table = tile * ROUTING_TABLE_WORDS;
    let count = routes[table + 1u];
    let base = tile * hp.padded.w;
    for (var r = 0u; r < count; r += 1u) {
        let route = table + 8u + r * ROUTE_WORDS;
        if (routes[route + 2u] != 1u) {
            continue;
        }
        let direction = routes[route + 6u];
        let slot = routes[route + 1u] / 4u;
        let extent = face_extent(direction);
        let origin = send_origin(direction);
        if (lid == 0u) {
            inboxes[slot] = tile;
            inboxes[slot + 1u] = direction ^ 1u;
            inboxes[slot + 2u] = extent.x;
            inboxes[slot + 3u] = extent.y;
            inboxes[slot + 4u] = extent.z;
            inboxes[slot + 5u] = 4u;
            inboxes[slot + 6u] = hp.info.w;
            inboxes[slot + 7u] = 0u;
        }
        let total = extent.x * extent.y * extent.z;
        for (var i = lid; i < total; i += HALO_THREADS) {
            let c = vec3<u32>(i % extent.x, (i / extent.x) % extent.y, i / (extent.x * extent.y));
            inboxes[slot + HALO_HEADER_WORDS + i] = bitcast<u32>(cells[base + padded_index(origin + c)]);
        }
    }
}

@compute @workgroup_size(64)
fn halo_apply(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let tile = wg.x;
    let base = tile * hp.padded.w;
    for (var s = 0u; s < hp.info.x; s += 1u) {
        let from_dir = u32(geom[78u + s]);
        let source = neighbour(tile, from_dir);
        if (source == 0xFFFFFFFFu) {
            continue;
        }
        let slot = (tile * hp.info.z + s * hp.info.y) / 4u;
        let extent = face_extent(from_dir);
        let good = inboxes[slot] == source && inboxes[slot + 1u] == from_dir && inboxes[slot + 2u] == extent.x
            && inboxes[slot + 3u] == extent.y && inboxes[slot + 4u] == extent.z && inboxes[slot + 5u] == 4u
            && inboxes[slot + 6u] == hp.info.w && inboxes[slot + 7u] == 0u;
        if (!good) {
            if (lid == 0u) {
                atomicAdd(&status[0], 1u);
                atomicMax(&status[1], tile + 1u);
            }
            continue;
        }
        let origin = ghost_origin(from_dir);
        let total = extent.x * extent.y * extent.z;
        for (var i = lid; i < total; i += HALO_THREADS) {
            let c = vec3<u32>(i % extent.x, (i / extent.x) % extent.y, i / (extent.x * extent.y));
            cells[base + padded_index(origin + c)] = bitcast<f32>(inboxes[slot + HALO_HEADER_WORDS + i]);
        }
    }
}

@compute @workgroup_size(64)
fn halo_compute(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let tile = wg.x;
    let base = tile * hp.padded.w;
    let total = hp.tile.x * hp.tile.y * hp.tile.z;
    let points = hp.stencil.x;
    let weight = bitcast<f32>(hp.stencil.y);
    let first_point = 78u + 26u;
    for (var i = lid; i < total; i += HALO_THREADS) {
        let c = vec3<u32>(i % hp.tile.x, (i / hp.tile.x) % hp.tile.y, i / (hp.tile.x * hp.tile.y)) + hp.pad.xyz;
        var sum = 0.0f;
        for (var p = 0u; p < points; p += 1u) {
            let at = first_point + 3u * p;
            let q = vec3<u32>(vec3<i32>(c) + vec3<i32>(geom[at], geom[at + 1u], geom[at + 2u]));
            sum = sum + cells[base + padded_index(q)];
        }
        let at = base + padded_index(c);
        if (hp.stencil.w == 2u) {
            let u = cells[at];
            let laplacian = sum - f32(points) * u;
            next[at] = ((u + u) - next[at]) + weight * laplacian;
        } else {
            next[at] = sum * weight;
        }
    }
}
