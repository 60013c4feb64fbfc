//! Checks of the CUDA template that need no compiler: the device's CRC32C table and algorithm give
//! the host's checksums, the launch-argument layout and the route name hash agree, and the ABI the
//! documentation promises is what the template declares.

use ringkernel_core::message::crc32c;
use ringkernel_cuda::compile::{LOOP, PRELUDE, pool_source};

/// `rk_crc32c_init`'s tables, from the polynomial the template defines.
fn device_crc_tables() -> Vec<[u32; 256]> {
    const DEFINE: &str = "#define RK_CRC32C_POLY 0x";
    let start = PRELUDE.find(DEFINE).expect("the template defines its polynomial") + DEFINE.len();
    let poly = u32::from_str_radix(PRELUDE[start..start + 8].trim_end_matches('u'), 16).unwrap();
    let mut tables = vec![[0u32; 256]; 16];
    for i in 0..256u32 {
        let mut c = i;
        for _ in 0..8 {
            c = (c >> 1) ^ if c & 1 != 0 { poly } else { 0 };
        }
        tables[0][i as usize] = c;
    }
    for t in 1..16 {
        for i in 0..256 {
            let c = tables[t - 1][i];
            tables[t][i] = (c >> 8) ^ tables[0][(c & 0xFF) as usize];
        }
    }
    tables
}

/// `RK_CRC_WORD(w, t)`.
fn word(t: &[[u32; 256]], w: u32, depth: usize) -> u32 {
    let b = |k: u32| ((w >> (8 * k)) & 0xFF) as usize;
    t[depth + 3][b(0)] ^ t[depth + 2][b(1)] ^ t[depth + 1][b(2)] ^ t[depth][b(3)]
}

/// `rk_crc32c` on 16-byte aligned data, step for step (slicing by 16, then 8, then bytes).
fn device_crc(t: &[[u32; 256]], data: &[u8]) -> u32 {
    let le = |at: usize| u32::from_le_bytes(data[at..at + 4].try_into().unwrap());
    let mut crc = 0xFFFF_FFFFu32;
    let mut i = 0;
    while i + 16 <= data.len() {
        crc = word(t, le(i) ^ crc, 12) ^ word(t, le(i + 4), 8) ^ word(t, le(i + 8), 4) ^ word(t, le(i + 12), 0);
        i += 16;
    }
    while i + 8 <= data.len() {
        crc = word(t, le(i) ^ crc, 4) ^ word(t, le(i + 4), 0);
        i += 8;
    }
    for byte in &data[i..] {
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
    for emulated in [
        "crc = RK_CRC_WORD(one, 12) ^ RK_CRC_WORD(w.y, 8) ^ RK_CRC_WORD(w.z, 4) ^ RK_CRC_WORD(w.w, 0);",
        "crc = RK_CRC_WORD(one, 4) ^ RK_CRC_WORD(w.y, 0);",
        "#define RK_CRC_WORD(w, t) (rk_crc_table[(t) + 3][(w) & 0xFFu] ^ rk_crc_table[(t) + 2][((w) >> 8) & 0xFFu] ^",
    ] {
        assert!(PRELUDE.contains(emulated), "the device computes as emulated: `{emulated}`");
    }
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
    assert!(
        LOOP.contains("extern \"C\" __global__ void __launch_bounds__(RK_BLOCK_THREADS) rk_pool_main(RkSlot* slots)")
    );
    // The pool's structs are declared from the Rust layout, sizes and offsets asserted.
    let source = pool_source(&[]);
    for declared in [
        "static_assert(sizeof(RkArgs) == 136",
        "static_assert(sizeof(RkSlot) == 256",
        "static_assert(sizeof(RkRoute) == 64",
        "static_assert(RK_OFFSETOF(RkSlot, args) == 72",
    ] {
        assert!(source.contains(declared), "the template declares `{declared}`");
    }
    // In handler code the block is the handler threads.
    for redefined in ["#define __syncthreads() rk_sync()", "#define blockDim (dim3(RK_THREADS, 1u, 1u))"] {
        assert!(PRELUDE.contains(redefined), "{redefined}");
    }
}

/// The device's slot check (`rk_slot_check_term`, `rk_slot_check_payload_word`), compiled by the
/// host C++ compiler from the template's own text, agrees with `ringkernel_core::message::slot_check`
/// on random slots of every payload size a check covers.
#[test]
fn the_device_slot_check_is_the_hosts() {
    use ringkernel_core::layout::{MESSAGE_HEADER_BYTES, MessageHeader};
    use ringkernel_core::message::slot_check;
    let function = |name: &str| {
        let start = PRELUDE.find(&format!("rk_u32 {name}(")).expect("the template defines it");
        let start = PRELUDE[..start].rfind("__device__").expect("a device function");
        let end = start + PRELUDE[start..].find("\n}\n").expect("its end") + 3;
        PRELUDE[start..end].to_string()
    };
    // Slots as (position, the hot line's 16 words, the first payload line's 16 words); the C++
    // program sums the terms the way the warps do: one per word, the payload words masked.
    let mut rng = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng as u32
    };
    let mut cases = Vec::new();
    let mut expected = Vec::new();
    for case in 0..200u32 {
        let mut slot = vec![0u8; MESSAGE_HEADER_BYTES + 96];
        for byte in slot.iter_mut() {
            *byte = next() as u8;
        }
        let payload_bytes = case % 97;
        let at = std::mem::offset_of!(MessageHeader, payload_bytes);
        slot[at..at + 4].copy_from_slice(&payload_bytes.to_le_bytes());
        let position = next();
        let words = |from: usize| -> Vec<u32> {
            (0..16).map(|i| u32::from_le_bytes(slot[from + 4 * i..from + 4 * i + 4].try_into().unwrap())).collect()
        };
        let mut line = vec![position, payload_bytes.min(64)];
        line.extend(words(0));
        line.extend(words(MESSAGE_HEADER_BYTES));
        cases.push(line.iter().map(u32::to_string).collect::<Vec<_>>().join(" "));
        expected.push(slot_check(position, &slot));
    }
    let program = format!(
        "#include <cstdio>\ntypedef unsigned int rk_u32;\n#define __device__\n#define __host__\n#define __forceinline__ inline\n\
         {}\n{}\nint main() {{\n  rk_u32 p, covered, w[32];\n  while (scanf(\"%u %u\", &p, &covered) == 2) {{\n    \
         for (int i = 0; i < 32; ++i) scanf(\"%u\", &w[i]);\n    rk_u32 sum = rk_slot_check_term(p, 0u);\n    \
         for (rk_u32 i = 0; i < 16u; ++i) sum += rk_slot_check_term(w[i], 1u + i);\n    \
         for (rk_u32 i = 0; i < 16u; ++i) if (4u * i < covered) sum += rk_slot_check_term(rk_slot_check_payload_word(w[16 + i], i, covered), 17u + i);\n    \
         printf(\"%u\\n\", sum);\n  }}\n}}\n",
        function("rk_slot_check_term"),
        function("rk_slot_check_payload_word"),
    );
    let dir = std::env::temp_dir().join(format!("rk-slot-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("check.cpp"), program).unwrap();
    let compiled = std::process::Command::new("c++")
        .args(["-std=c++17", "-O1", "-o"])
        .arg(dir.join("check"))
        .arg(dir.join("check.cpp"))
        .output()
        .expect("a host C++ compiler (c++) is installed");
    assert!(compiled.status.success(), "{}", String::from_utf8_lossy(&compiled.stderr));
    let mut child = std::process::Command::new(dir.join("check"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        writeln!(stdin, "{}", cases.join("\n")).unwrap();
    }
    let output = child.wait_with_output().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let device: Vec<u32> = String::from_utf8_lossy(&output.stdout).lines().map(|l| l.parse().unwrap()).collect();
    assert_eq!(device, expected, "device and host slot checks differ");
}
