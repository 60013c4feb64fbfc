//! The generated C/MSL/WGSL layout: snapshots, and checks that each language lays the structs out
//! exactly as Rust does (naga for WGSL, the host C++ compiler for the CUDA header).
#![cfg(not(miri))]

use std::path::PathBuf;
use std::process::Command;

use ringkernel_core::codegen::{Language, generate};
use ringkernel_core::layout::{ALL_STRUCTS, FieldKind};

fn snapshot_path(language: Language) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("generated").join(language.file_name())
}

/// The checked-in copies under `generated/` equal what the generator writes today.
/// `UPDATE_SNAPSHOTS=1` rewrites them after an intended layout change.
#[test]
fn generated_text_matches_the_snapshots() {
    let update = std::env::var_os("UPDATE_SNAPSHOTS").is_some();
    let mut stale = Vec::new();
    for language in Language::ALL {
        let path = snapshot_path(language);
        let text = generate(language);
        if update {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &text).unwrap();
            continue;
        }
        match std::fs::read_to_string(&path) {
            Ok(existing) if existing == text => {}
            Ok(_) => stale.push(format!("{} differs from the generator's output", path.display())),
            Err(e) => stale.push(format!("{} unreadable: {e}", path.display())),
        }
    }
    assert!(
        stale.is_empty(),
        "{}\nIf the layout change is intended, run UPDATE_SNAPSHOTS=1 cargo test -p ringkernel-core --test codegen",
        stale.join("\n")
    );
}

/// naga parses and validates the WGSL, and lays out every struct member at the Rust offset.
#[test]
fn wgsl_is_valid_and_naga_agrees_on_every_offset() {
    let source = generate(Language::Wgsl);
    let module = naga::front::wgsl::parse_str(&source).unwrap_or_else(|e| panic!("{}", e.emit_to_string(&source)));
    naga::valid::Validator::new(naga::valid::ValidationFlags::all(), naga::valid::Capabilities::empty())
        .validate(&module)
        .unwrap_or_else(|e| panic!("{}", e.emit_to_string(&source)));
    for desc in ALL_STRUCTS {
        let ty = module
            .types
            .iter()
            .find(|(_, t)| t.name.as_deref() == Some(desc.name))
            .unwrap_or_else(|| panic!("{} not declared", desc.name))
            .1;
        let naga::TypeInner::Struct { members, span } = &ty.inner else { panic!("{} is not a struct", desc.name) };
        assert_eq!(*span as usize, desc.size, "{} size", desc.name);
        assert_eq!(members.len(), desc.fields.len(), "{} member count", desc.name);
        for (member, field) in members.iter().zip(desc.fields) {
            assert_eq!(member.name.as_deref(), Some(field.name));
            assert_eq!(member.offset as usize, field.offset, "{}::{} offset", desc.name, field.name);
            let is_atomic = matches!(module.types[member.ty].inner, naga::TypeInner::Atomic(_));
            assert_eq!(is_atomic, field.kind == FieldKind::AtomicU32, "{}::{} atomicity", desc.name, field.name);
        }
    }
    // Constants agree too.
    let magic = module
        .constants
        .iter()
        .find(|(_, c)| c.name.as_deref() == Some("RK_MESSAGE_MAGIC"))
        .map(|(_, c)| &module.global_expressions[c.init]);
    assert!(
        matches!(magic, Some(naga::Expression::Literal(naga::Literal::U32(v))) if *v == ringkernel_core::layout::MESSAGE_MAGIC)
    );
}

/// The CUDA header is valid C++ whose static_asserts (size, alignment, every offset) hold; checked
/// with the host compiler, which lays out these plain structs as NVCC does.
#[test]
fn cuda_header_compiles_and_its_layout_assertions_hold() {
    let compiler = std::env::var("CXX").unwrap_or_else(|_| "c++".into());
    let dir = std::env::temp_dir().join(format!("ringkernel-codegen-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let header = dir.join("ringkernel_layout.cuh");
    std::fs::write(&header, generate(Language::Cuda)).unwrap();
    let main = dir.join("check.cpp");
    std::fs::write(
        &main,
        "#include \"ringkernel_layout.cuh\"\nint main() { return RK_CONTROL_BLOCK_SIZE == 128 ? 0 : 1; }\n",
    )
    .unwrap();
    let output =
        match Command::new(&compiler).args(["-std=c++17", "-fsyntax-only", "-Wall", "-Werror"]).arg(&main).output() {
            Ok(output) => output,
            Err(e) => panic!("C++ compiler `{compiler}` not runnable ({e}); install g++ or set CXX"),
        };
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let _ = std::fs::remove_dir_all(&dir);
}

/// The MSL declares each struct with Metal's atomic type and asserts its size.
#[test]
fn msl_uses_32_bit_atomics_only() {
    let msl = generate(Language::Msl);
    assert!(msl.contains("metal::atomic_uint is_active;"));
    assert!(!msl.contains("atomic_ulong"), "Metal has no 64-bit atomics");
    assert!(!msl.contains("memory_order_acquire"));
    for desc in ALL_STRUCTS {
        assert!(msl.contains(&format!("static_assert(sizeof({0}) == {1}", desc.name, desc.size)));
    }
}
