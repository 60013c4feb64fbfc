//! Writes the C (CUDA), MSL and WGSL declarations of the protocol from the Rust definitions in
//! [`crate::layout`], so that no kernel template declares a shared struct by hand.
//!
//! Kernel templates include [`generate`]'s text. The same text is checked in under
//! `crates/ringkernel-core/generated/` (for readers and as snapshots; the `codegen` test fails when
//! it is stale, and `UPDATE_SNAPSHOTS=1 cargo test -p ringkernel-core --test codegen` rewrites it).
//!
//! ```
//! use ringkernel_core::codegen::{generate, Language};
//!
//! let wgsl = generate(Language::Wgsl);
//! assert!(wgsl.contains("struct ControlBlock {"));
//! assert!(wgsl.contains("const RK_CONTROL_BLOCK_SIZE: u32 = 128u;"));
//! ```

use std::fmt::Write;

use crate::error::codes;
use crate::layout::{
    ALL_STRUCTS, AtomicRole, FieldDesc, FieldKind, K2K_MAX_ROUTES, MAX_QUEUE_CAPACITY, MESSAGE_HEADER_BYTES,
    MESSAGE_HEADER_HOT_BYTES, MESSAGE_HEADER_USED_BYTES, MESSAGE_MAGIC, PROTOCOL_VERSION, SLOT_ALIGN_BYTES, StructDesc,
    atomic_role, direction, flags, terminate_request, termination,
};
use crate::message::{HOST_KERNEL_ID, Priority};

/// A target language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Language {
    /// CUDA C++ (NVRTC); also valid host C++.
    Cuda,
    /// Metal Shading Language.
    Msl,
    /// WebGPU Shading Language.
    Wgsl,
}

impl Language {
    /// Every language.
    pub const ALL: [Language; 3] = [Language::Cuda, Language::Msl, Language::Wgsl];

    /// File name of the checked-in copy under `generated/`.
    pub fn file_name(self) -> &'static str {
        match self {
            Language::Cuda => "ringkernel_layout.cuh",
            Language::Msl => "ringkernel_layout.metal",
            Language::Wgsl => "ringkernel_layout.wgsl",
        }
    }
}

/// `ControlBlock` → `CONTROL_BLOCK`, `K2KInboxHeader` → `K2K_INBOX_HEADER`.
pub fn screaming_snake(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    let mut out = String::new();
    for (i, &c) in chars.iter().enumerate() {
        if i > 0 && c.is_ascii_uppercase() {
            let prev = chars[i - 1];
            let next_is_lower = chars.get(i + 1).is_some_and(|n| n.is_ascii_lowercase());
            if prev.is_ascii_lowercase() || (next_is_lower && (prev.is_ascii_uppercase() || prev.is_ascii_digit())) {
                out.push('_');
            }
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

/// Every named constant of the protocol, in output order.
fn constants() -> Vec<(String, u32, &'static str)> {
    let mut out: Vec<(String, u32, &'static str)> = vec![
        ("RK_MESSAGE_MAGIC".into(), MESSAGE_MAGIC, "First word of every MessageHeader (\"RKMH\")."),
        ("RK_PROTOCOL_VERSION".into(), PROTOCOL_VERSION, "Protocol version in every MessageHeader."),
        (
            "RK_MESSAGE_HEADER_BYTES".into(),
            MESSAGE_HEADER_BYTES as u32,
            "Bytes of a MessageHeader; the payload follows.",
        ),
        (
            "RK_MESSAGE_HEADER_HOT_BYTES".into(),
            MESSAGE_HEADER_HOT_BYTES as u32,
            "Bytes of a MessageHeader a receiver reads to validate and route: one cache line.",
        ),
        (
            "RK_MESSAGE_HEADER_USED_BYTES".into(),
            MESSAGE_HEADER_USED_BYTES as u32,
            "Bytes of a MessageHeader before its reserved zero padding.",
        ),
        ("RK_SLOT_ALIGN_BYTES".into(), SLOT_ALIGN_BYTES as u32, "Slot payload capacities are multiples of this."),
        ("RK_MAX_QUEUE_CAPACITY".into(), MAX_QUEUE_CAPACITY, "Largest ring or inbox capacity (power of two)."),
        ("RK_K2K_MAX_ROUTES".into(), K2K_MAX_ROUTES as u32, "Routes per K2KRoutingTable (3D Moore neighbourhood)."),
        (
            "RK_K2K_INBOX_SEQUENCES_OFFSET".into(),
            64,
            "Offset of the per-slot sequence words in an inbox; slots follow at round_up(64 + 4 * capacity, 64).",
        ),
        ("RK_HOST_KERNEL_ID".into(), HOST_KERNEL_ID, "source_kernel / dest_kernel value meaning the host."),
    ];
    for (name, value) in flags::NAMED {
        out.push((format!("RK_FLAG_{name}"), *value, "MessageHeader.flags bit."));
    }
    out.push(("RK_FLAGS_ALL".into(), flags::ALL, "Every defined flag bit; others make a header invalid."));
    for (name, value) in Priority::NAMED {
        out.push((format!("RK_PRIORITY_{name}"), *value, "MessageHeader.priority value."));
    }
    out.push(("RK_PRIORITY_MAX".into(), Priority::MAX, "Largest valid priority."));
    for (name, value) in codes::ALL {
        out.push((format!("RK_ERROR_{name}"), *value, "ControlBlock.last_error code."));
    }
    for (name, value) in termination::NAMED {
        out.push((format!("RK_{name}"), *value, "ControlBlock.has_terminated value."));
    }
    for (name, value) in terminate_request::NAMED {
        out.push((format!("RK_TERMINATE_{name}"), *value, "ControlBlock.should_terminate value."));
    }
    for (name, value) in direction::NAMED {
        out.push((format!("RK_DIR_{name}"), *value, "Tile side (halo direction)."));
    }
    for desc in ALL_STRUCTS {
        let prefix = format!("RK_{}", screaming_snake(desc.name));
        out.push((format!("{prefix}_SIZE"), desc.size as u32, "Size in bytes."));
        for field in desc.fields.iter().filter(|f| !f.name.starts_with('_')) {
            out.push((
                format!("{prefix}_{}_OFFSET", field.name.to_ascii_uppercase()),
                field.offset as u32,
                "Byte offset.",
            ));
        }
    }
    out
}

/// Doc comment lines without rustdoc link syntax: "[`crate::message::HeaderBuilder`]" becomes
/// "HeaderBuilder".
fn doc_lines(doc: &str) -> impl Iterator<Item = String> + '_ {
    doc.lines().map(str::trim).filter(|l| !l.is_empty()).map(|line| {
        let mut out = String::with_capacity(line.len());
        let mut rest = line;
        while let Some(start) = rest.find("[`") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            match after.find("`]") {
                Some(end) => {
                    let path = &after[..end];
                    out.push_str(path.rsplit("::").next().unwrap_or(path));
                    rest = &after[end + 2..];
                    // Drop an explicit link target: "(crate::…)".
                    if rest.starts_with('(')
                        && let Some(close) = rest.find(')')
                    {
                        rest = &rest[close + 1..];
                    }
                }
                None => {
                    out.push_str("[`");
                    rest = after;
                }
            }
        }
        out.push_str(rest);
        out
    })
}

fn field_decl(language: Language, field: &FieldDesc) -> String {
    fn scalar(language: Language, kind: &FieldKind) -> String {
        match (language, kind) {
            (Language::Cuda, FieldKind::U32 | FieldKind::AtomicU32) => "unsigned int".into(),
            (Language::Msl, FieldKind::U32) => "uint".into(),
            (Language::Msl, FieldKind::AtomicU32) => "metal::atomic_uint".into(),
            (Language::Wgsl, FieldKind::U32) => "u32".into(),
            (Language::Wgsl, FieldKind::AtomicU32) => "atomic<u32>".into(),
            (Language::Wgsl, FieldKind::Array { element, len }) => {
                format!("array<{}, {len}>", scalar(language, element))
            }
            (_, FieldKind::Struct { name, .. }) => (*name).into(),
            (_, FieldKind::Array { element, .. }) => scalar(language, element),
        }
    }
    let name = field.name;
    match (language, &field.kind) {
        (Language::Wgsl, kind) => format!("{name}: {},", scalar(language, kind)),
        (_, FieldKind::Array { element, len }) => format!("{} {name}[{len}];", scalar(language, element)),
        (_, kind) => {
            let atomic = if language == Language::Cuda && *kind == FieldKind::AtomicU32 { " /* atomic */" } else { "" };
            format!("{} {name};{atomic}", scalar(language, kind))
        }
    }
}

fn write_struct(out: &mut String, language: Language, desc: &StructDesc) {
    for line in doc_lines(desc.doc) {
        let _ = writeln!(out, "// {line}");
    }
    match language {
        Language::Cuda => {
            let _ = writeln!(out, "struct alignas({}) {} {{", desc.align, desc.name);
        }
        Language::Msl | Language::Wgsl => {
            let _ = writeln!(out, "struct {} {{", desc.name);
        }
    }
    for field in desc.fields {
        for line in doc_lines(field.doc) {
            let _ = writeln!(out, "    // {line}");
        }
        if let Some(role) = atomic_role(desc.name, field.name) {
            let _ = writeln!(out, "    // Sync ({role:?}): {}.", role.rule());
            match language {
                Language::Cuda => {
                    let _ = writeln!(
                        out,
                        "    // CUDA: rk_load_{0}_{1} (ld.acquire.sys) / rk_store_{0}_{1} (st.release.sys).",
                        desc.name, field.name
                    );
                }
                Language::Msl => {
                    let _ = writeln!(out, "    // {}.", role.msl_note());
                }
                Language::Wgsl => {
                    let _ = writeln!(out, "    // {}.", role.wgsl_note());
                }
            }
        }
        let _ = writeln!(out, "    {}  // offset {}", field_decl(language, field), field.offset);
    }
    match language {
        Language::Cuda => {
            let _ = writeln!(out, "}};");
            let _ =
                writeln!(out, "static_assert(sizeof({0}) == {1}, \"{0} must be {1} bytes\");", desc.name, desc.size);
            let _ = writeln!(
                out,
                "static_assert(alignof({0}) == {1}, \"{0} must be aligned to {1}\");",
                desc.name, desc.align
            );
            out.push_str("#if RK_CHECK_OFFSETS\n");
            for field in desc.fields {
                let _ = writeln!(
                    out,
                    "static_assert(RK_OFFSETOF({0}, {1}) == {2}, \"{0}::{1} must be at offset {2}\");",
                    desc.name, field.name, field.offset
                );
            }
            out.push_str("#endif\n");
        }
        Language::Msl => {
            let _ = writeln!(out, "}};");
            let _ =
                writeln!(out, "static_assert(sizeof({0}) == {1}, \"{0} must be {1} bytes\");", desc.name, desc.size);
        }
        Language::Wgsl => {
            let _ = writeln!(out, "}}");
        }
    }
    out.push('\n');
}

/// The declarations of every protocol constant and struct in `language`.
pub fn generate(language: Language) -> String {
    let mut out = String::new();
    out.push_str("// RingKernel protocol layout. Generated by ringkernel-core from src/layout.rs: do not edit.\n");
    out.push_str("// Regenerate with: UPDATE_SNAPSHOTS=1 cargo test -p ringkernel-core --test codegen\n");
    out.push_str("// Every atomic is 32-bit; 64-bit values are [low, high] word pairs with one writer.\n\n");
    match language {
        Language::Cuda => {
            out.push_str("#ifndef RINGKERNEL_LAYOUT_CUH\n#define RINGKERNEL_LAYOUT_CUH\n\n");
            out.push_str("// Fields marked atomic are accessed only with atomic operations or volatile + fences.\n");
            out.push_str(
                "// NVRTC has no offsetof: under NVRTC only sizes and alignments are asserted; host compilers\n",
            );
            out.push_str("// (and nvcc's host pass) also assert every field offset.\n");
            out.push_str(
                "#if defined(__CUDACC_RTC__)\n#define RK_CHECK_OFFSETS 0\n#else\n#define RK_CHECK_OFFSETS 1\n",
            );
            out.push_str("#define RK_OFFSETOF(type, field) __builtin_offsetof(type, field)\n#endif\n\n");
        }
        Language::Msl => {
            out.push_str("#ifndef RINGKERNEL_LAYOUT_METAL\n#define RINGKERNEL_LAYOUT_METAL\n\n");
            out.push_str("// Include after <metal_stdlib>. Use only memory_order_relaxed atomics plus fences.\n\n");
        }
        Language::Wgsl => {}
    }
    for (name, value, doc) in constants() {
        let _ = match language {
            Language::Cuda | Language::Msl => writeln!(out, "#define {name} {value:#x}u  // {doc}"),
            Language::Wgsl => writeln!(out, "const {name}: u32 = {value}u;  // {doc}"),
        };
    }
    out.push('\n');
    for desc in ALL_STRUCTS {
        write_struct(&mut out, language, desc);
    }
    if language == Language::Cuda {
        write_cuda_atomics(&mut out);
    }
    if language != Language::Wgsl {
        out.push_str("#endif\n");
    }
    out
}

/// The declarations of a backend's own device structs (declared with `device_struct!` outside
/// this crate) in `language`, each with its size and offset constants (`RK_<NAME>_SIZE`,
/// `RK_<NAME>_<FIELD>_OFFSET`) and, in C, compile-time assertions of its layout. Include it after
/// [`generate`]'s text: the structs may contain protocol structs.
pub fn declare_structs(language: Language, structs: &[StructDesc]) -> String {
    let mut out = String::new();
    for desc in structs {
        let prefix = format!("RK_{}", screaming_snake(desc.name));
        let mut constants = vec![(format!("{prefix}_SIZE"), desc.size)];
        for field in desc.fields.iter().filter(|f| !f.name.starts_with('_')) {
            constants.push((format!("{prefix}_{}_OFFSET", field.name.to_ascii_uppercase()), field.offset));
        }
        for (name, value) in constants {
            let _ = match language {
                Language::Cuda | Language::Msl => writeln!(out, "#define {name} {value:#x}u"),
                Language::Wgsl => writeln!(out, "const {name}: u32 = {value}u;"),
            };
        }
        write_struct(&mut out, language, desc);
    }
    out
}

/// System-scope acquire/release helpers for every atomic field: the peer of most of these words
/// is the host, across PCIe, so `.sys` scope is required (`.gpu` would order only within the
/// device). Device code compiles them; host compilers skip them.
fn write_cuda_atomics(out: &mut String) {
    out.push_str(
        r#"// Atomic access at system scope (the host is the peer of the control block and the rings).
// Every atomic field has rk_load_<Struct>_<field> (acquire) and rk_store_<Struct>_<field>
// (release); counters also have rk_add_*, claimed words rk_cas_*.
#if defined(__CUDACC__)
__device__ __forceinline__ unsigned int rk_ld_acquire_sys(const unsigned int* address) {
    unsigned int value;
    asm volatile("ld.acquire.sys.u32 %0, [%1];" : "=r"(value) : "l"(address) : "memory");
    return value;
}
__device__ __forceinline__ void rk_st_release_sys(unsigned int* address, unsigned int value) {
    asm volatile("st.release.sys.u32 [%0], %1;" : : "l"(address), "r"(value) : "memory");
}
__device__ __forceinline__ unsigned int rk_atom_add_relaxed_sys(unsigned int* address, unsigned int value) {
    unsigned int old;
    asm volatile("atom.relaxed.sys.add.u32 %0, [%1], %2;" : "=r"(old) : "l"(address), "r"(value) : "memory");
    return old;
}
__device__ __forceinline__ unsigned int rk_atom_cas_acq_rel_sys(unsigned int* address, unsigned int expected,
                                                                unsigned int desired) {
    unsigned int old;
    asm volatile("atom.acq_rel.sys.cas.b32 %0, [%1], %2, %3;"
                 : "=r"(old) : "l"(address), "r"(expected), "r"(desired) : "memory");
    return old;
}
"#,
    );
    for desc in ALL_STRUCTS {
        for field in desc.fields {
            let Some(role) = atomic_role(desc.name, field.name) else { continue };
            let (s, f) = (desc.name, field.name);
            let _ = writeln!(
                out,
                "__device__ __forceinline__ unsigned int rk_load_{s}_{f}(const {s}* p) {{ return rk_ld_acquire_sys(&p->{f}); }}"
            );
            let _ = writeln!(
                out,
                "__device__ __forceinline__ void rk_store_{s}_{f}({s}* p, unsigned int v) {{ rk_st_release_sys(&p->{f}, v); }}"
            );
            match role {
                AtomicRole::Counter => {
                    let _ = writeln!(
                        out,
                        "__device__ __forceinline__ unsigned int rk_add_{s}_{f}({s}* p, unsigned int v) {{ return rk_atom_add_relaxed_sys(&p->{f}, v); }}"
                    );
                }
                AtomicRole::Claim => {
                    let _ = writeln!(
                        out,
                        "__device__ __forceinline__ unsigned int rk_cas_{s}_{f}({s}* p, unsigned int expected, unsigned int desired) {{ return rk_atom_cas_acq_rel_sys(&p->{f}, expected, desired); }}"
                    );
                }
                _ => {}
            }
        }
    }
    out.push_str("#endif  // __CUDACC__\n\n");
}

// Pure string processing with no unsafe code: too slow to be worth interpreting under miri.
#[cfg(all(test, not(loom), not(miri)))]
mod tests {
    use super::*;

    #[test]
    fn names_convert_to_screaming_snake_case() {
        assert_eq!(screaming_snake("ControlBlock"), "CONTROL_BLOCK");
        assert_eq!(screaming_snake("K2KInboxHeader"), "K2K_INBOX_HEADER");
        assert_eq!(screaming_snake("K2KRouteEntry"), "K2K_ROUTE_ENTRY");
        assert_eq!(screaming_snake("HaloMessageHeader"), "HALO_MESSAGE_HEADER");
    }

    #[test]
    fn doc_links_become_plain_names() {
        let lines: Vec<String> = doc_lines(
            "Build with [`crate::message::HeaderBuilder`]; see [`K2KInboxLayout`](crate::layout::K2KInboxLayout).\n",
        )
        .collect();
        assert_eq!(lines, ["Build with HeaderBuilder; see K2KInboxLayout."]);
    }

    #[test]
    fn constant_names_are_unique() {
        let mut names: Vec<String> = constants().into_iter().map(|(n, _, _)| n).collect();
        let n = names.len();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), n);
    }

    #[test]
    fn every_atomic_field_gets_cuda_helpers_and_fence_notes() {
        let (cuda, msl, wgsl) = (generate(Language::Cuda), generate(Language::Msl), generate(Language::Wgsl));
        for (s, f, _) in crate::layout::ATOMIC_ROLES {
            assert!(cuda.contains(&format!("rk_load_{s}_{f}(")), "{s}::{f} has no CUDA load helper");
            assert!(cuda.contains(&format!("rk_store_{s}_{f}(")), "{s}::{f} has no CUDA store helper");
        }
        assert!(cuda.contains("rk_cas_K2KInboxHeader_tail("));
        assert!(msl.contains("MSL: writer atomic_thread_fence"), "MSL says which fence a Publish word needs");
        assert!(wgsl.contains("dispatch boundary is the fence"), "WGSL says what it cannot order");
        assert!(cuda.contains("#define RK_MESSAGE_HEADER_HOT_BYTES 0x40u"));
        assert!(cuda.contains("#define RK_FAILED 0x2u") && cuda.contains("#define RK_TERMINATE_DRAIN_DETACHED 0x2u"));
    }

    #[test]
    fn every_field_is_declared_in_every_language() {
        for language in Language::ALL {
            let text = generate(language);
            for desc in ALL_STRUCTS {
                for field in desc.fields {
                    assert!(
                        text.contains(&format!(" {}", field.name)),
                        "{language:?} lacks {}::{}",
                        desc.name,
                        field.name
                    );
                }
            }
        }
    }
}
