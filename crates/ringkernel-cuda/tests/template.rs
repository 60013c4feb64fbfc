//! Checks of the CUDA template that need no compiler: the device's CRC32C table and algorithm give
//! the host's checksums, the launch-argument layout and the route name hash agree, and the ABI the
//! documentation promises is what the template declares.

use ringkernel_core::message::crc32c;
use ringkernel_cuda::compile::{LOOP, PRELUDE};

/// `rk_crc32c_init`'s tables, from the polynomial the template defines.
fn device_crc_tables() -> Vec<[u32; 256]> {
    const DEFINE: &str = "#define RK_CRC32C_POLY 0x";
    let start = PRELUDE.find(DEFINE).expect("the template defines its polynomial") + DEFINE.len();
    let poly = u32::from_str_radix(PRELUDE[start..start + 8].trim_end_matches('u'), 16).unwrap();
    let mut tables = vec![[0u32; 256]; 8];
    for i in 0..256u32 {
        let mut c = i;
        for _ in 0..8 {
            c = (c >> 1) ^ if c & 1 != 0 { poly } else { 0 };
        }
        tables[0][i as usize] = c;
    }
    for t in 1..8 {
        for i in 0..256 {
            let c = tables[t - 1][i];
            tables[t][i] = (c >> 8) ^ tables[0][(c & 0xFF) as usize];
        }
    }
    tables
}

/// `rk_crc32c`, step for step (slicing by 8, then bytes).
fn device_crc(t: &[[u32; 256]], data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    let mut chunks = data.chunks_exact(8);
    for chunk in &mut chunks {
        let one = u32::from_le_bytes(chunk[..4].try_into().unwrap()) ^ crc;
        let two = u32::from_le_bytes(chunk[4..].try_into().unwrap());
        let b = |v: u32, k: u32| ((v >> (8 * k)) & 0xFF) as usize;
        crc = t[7][b(one, 0)]
            ^ t[6][b(one, 1)]
            ^ t[5][b(one, 2)]
            ^ t[4][b(one, 3)]
            ^ t[3][b(two, 0)]
            ^ t[2][b(two, 1)]
            ^ t[1][b(two, 2)]
            ^ t[0][b(two, 3)];
    }
    for byte in chunks.remainder() {
        crc = (crc >> 8) ^ t[0][((crc ^ u32::from(*byte)) & 0xFF) as usize];
    }
    crc ^ 0xFFFF_FFFF
}

#[test]
fn the_device_crc32c_is_the_hosts() {
    let tables = device_crc_tables();
    let mut data = Vec::new();
    for len in 0..300usize {
        data.push((len as u8).wrapping_mul(31).wrapping_add(7));
        assert_eq!(device_crc(&tables, &data), crc32c(&data), "{} bytes", len + 1);
    }
    assert_eq!(device_crc(&tables, b"123456789"), 0xE306_9283);
    assert!(
        PRELUDE.contains("rk_crc_table[7][one & 0xFFu] ^ rk_crc_table[6][(one >> 8) & 0xFFu]"),
        "the order of tables is as emulated"
    );
}

#[test]
fn the_documented_abi_is_declared() {
    for function in [
        "rk_u32 rk_reply(RkContext& ctx",
        "rk_u32 rk_emit(RkContext& ctx",
        "rk_u32 rk_send_to(RkContext& ctx, const char* kernel",
        "rk_u32 rk_send_to_number(RkContext& ctx, rk_u32 number",
        "void rk_error(RkContext& ctx, const char* reason)",
        "void rk_fail(RkContext& ctx, const char* reason)",
        "__device__ void rk_dispatch(rk_u32 kind, RkContext& ctx);",
    ] {
        assert!(PRELUDE.contains(function), "the prelude declares `{function}`");
    }
    assert!(LOOP.contains("extern \"C\" __global__ void __launch_bounds__(RK_THREADS) rk_pool_main(RkSlot* slots)"));
    assert!(PRELUDE.contains("static_assert(sizeof(RkArgs) == 136"), "RkArgs' size is asserted on the device too");
    assert!(PRELUDE.contains("static_assert(sizeof(RkSlot) == 256"), "and the pool slot's");
}
