//! WGSL modules: the template (generated layout + string-literal tables + the actor loop) around a
//! user's handler, validated by naga, with errors mapped to the user's lines; and MSL output for
//! Metal's capabilities.
//!
//! WGSL has no strings, so every string literal in a module (`rk_error("refused")`,
//! `rk_send_to("stage2", …)`, `rk_payload_is("panic")`) is replaced by a literal id (`7u`) before
//! naga parses it, and the bytes, offsets and FNV-1a hashes of the literals go into private tables
//! the actor loop reads. Replacing a literal never changes a line, so naga's line numbers stay
//! true.

use std::fmt::Write;

use ringkernel_core::codegen::{Language, generate};
use ringkernel_core::error::{Result, RingKernelError};

/// The actor loop and handler ABI (see the top of the file for the ABI).
pub const ACTOR_WGSL: &str = include_str!("wgsl/actor.wgsl");

/// The entry point of every actor module.
pub const ACTOR_ENTRY: &str = "rk_main";

/// FNV-1a, as route entries hash kernel names.
pub fn fnv1a(bytes: &[u8]) -> u32 {
    bytes.iter().fold(2_166_136_261u32, |hash, byte| (hash ^ u32::from(*byte)).wrapping_mul(16_777_619))
}

/// Replaces every string literal outside comments by its literal id; returns the new text and
/// the literals' bytes.
///
/// # Errors
/// [`RingKernelError::Compile`] for an unterminated literal or an unknown escape.
pub fn extract_literals(kernel: &str, source: &str, literals: &mut Vec<Vec<u8>>) -> Result<String> {
    let mut out = String::with_capacity(source.len());
    let mut chars = source.chars().peekable();
    let mut line = 1usize;
    let fail = |line: usize, what: &str| RingKernelError::Compile {
        kernel: kernel.to_string(),
        log: format!("{kernel}.wgsl:{line}: {what}"),
    };
    while let Some(c) = chars.next() {
        match c {
            '/' if chars.peek() == Some(&'/') => {
                out.push(c);
                for c in chars.by_ref() {
                    out.push(c);
                    if c == '\n' {
                        line += 1;
                        break;
                    }
                }
            }
            '/' if chars.peek() == Some(&'*') => {
                out.push(c);
                let mut previous = ' ';
                for c in chars.by_ref() {
                    out.push(c);
                    if c == '\n' {
                        line += 1;
                    }
                    if previous == '*' && c == '/' {
                        break;
                    }
                    previous = c;
                }
            }
            '"' => {
                let mut bytes = Vec::new();
                loop {
                    match chars.next() {
                        None | Some('\n') => return Err(fail(line, "unterminated string literal")),
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some('"') => bytes.push(b'"'),
                            Some('\\') => bytes.push(b'\\'),
                            Some('n') => bytes.push(b'\n'),
                            Some('t') => bytes.push(b'\t'),
                            Some('0') => bytes.push(0),
                            other => return Err(fail(line, &format!("unknown escape \\{}", other.unwrap_or(' ')))),
                        },
                        Some(other) => {
                            let mut buf = [0u8; 4];
                            bytes.extend_from_slice(other.encode_utf8(&mut buf).as_bytes());
                        }
                    }
                }
                let id = match literals.iter().position(|l| *l == bytes) {
                    Some(id) => id,
                    None => {
                        literals.push(bytes);
                        literals.len() - 1
                    }
                };
                let _ = write!(out, "{id}u");
            }
            '\n' => {
                line += 1;
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    Ok(out)
}

/// The literal table a module's `rk_lits` binding holds: `count + 1` start offsets, `count`
/// FNV-1a hashes, then the bytes packed little-endian into words.
pub fn literal_words(literals: &[Vec<u8>]) -> Vec<u32> {
    let mut starts = vec![0u32];
    let mut bytes = Vec::new();
    for literal in literals {
        bytes.extend_from_slice(literal);
        starts.push(bytes.len() as u32);
    }
    while !bytes.len().is_multiple_of(4) {
        bytes.push(0);
    }
    let mut words = starts;
    words.extend(literals.iter().map(|l| fnv1a(l)));
    words.extend(bytes.chunks_exact(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])));
    words
}

/// A complete module: its text (literals replaced) and the line where the user's part starts.
#[derive(Debug, Clone)]
pub struct Assembled {
    /// The WGSL text naga and the driver see.
    pub text: String,
    /// 1-based line of the text where the user's source begins.
    pub user_first_line: usize,
    /// The kernel name errors carry.
    pub kernel: String,
    /// What the module's `rk_lits` binding must hold ([`literal_words`]).
    pub literals: Vec<u32>,
}

/// Assembles the actor module for `handler` (the user's WGSL defining `fn rk_handle()`).
///
/// # Errors
/// [`RingKernelError::Compile`] for a malformed string literal.
pub fn actor_module(kernel: &str, handler: &str) -> Result<Assembled> {
    let mut literals = Vec::new();
    let runtime = extract_literals("ringkernel-actor", ACTOR_WGSL, &mut literals)?;
    let user = extract_literals(kernel, handler, &mut literals)?;
    let declarations = crate::runtime::abi::declarations();
    assemble(kernel, &[generate(Language::Wgsl).as_str(), declarations.as_str(), runtime.as_str()], &user, &literals)
}

/// Assembles `parts` (already free of literals), then the literal tables, then `user`.
pub(crate) fn assemble(kernel: &str, parts: &[&str], user: &str, literals: &[Vec<u8>]) -> Result<Assembled> {
    let mut text = String::new();
    for part in parts {
        text.push_str(part);
        if !text.ends_with('\n') {
            text.push('\n');
        }
    }
    let _ = writeln!(text, "const RK_LIT_COUNT: u32 = {}u;", literals.len());
    text.push_str("// ---- user source ----\n");
    let user_first_line = text.lines().count() + 1;
    text.push_str(user);
    Ok(Assembled { text, user_first_line, kernel: kernel.to_string(), literals: literal_words(literals) })
}

impl Assembled {
    fn locate(&self, line: usize) -> String {
        if line >= self.user_first_line {
            format!("{}.wgsl:{}", self.kernel, line - self.user_first_line + 1)
        } else {
            format!("ringkernel template line {line}")
        }
    }

    fn error(&self, message: &str, spans: impl Iterator<Item = (naga::Span, String)>) -> RingKernelError {
        let mut log = String::new();
        let mut first = true;
        for (span, label) in spans {
            let location = span.location(&self.text);
            let line = location.line_number as usize;
            let code = self.text.lines().nth(line.saturating_sub(1)).unwrap_or("").trim();
            if first {
                let _ = writeln!(log, "{}: error: {message}", self.locate(line));
                first = false;
            }
            let _ = writeln!(log, "  {}: {label}\n    | {code}", self.locate(line));
        }
        if first {
            let _ = writeln!(log, "{}: error: {message}", self.kernel);
        }
        RingKernelError::Compile { kernel: self.kernel.clone(), log }
    }

    /// Parses and validates the module with naga.
    ///
    /// # Errors
    /// [`RingKernelError::Compile`] with naga's message and the line in the user's source (or in
    /// the template, named as such).
    pub fn validate(&self) -> Result<(naga::Module, naga::valid::ModuleInfo)> {
        let module = naga::front::wgsl::parse_str(&self.text).map_err(|error| {
            let labels: Vec<(naga::Span, String)> = error.labels().map(|(s, l)| (s, l.to_string())).collect();
            let mut message = error.message().to_string();
            if labels.is_empty()
                && let Some(location) = error.location(&self.text)
            {
                message = format!("{message} (line {})", self.locate(location.line_number as usize));
            }
            self.error(&message, labels.into_iter())
        })?;
        let info = naga::valid::Validator::new(naga::valid::ValidationFlags::all(), naga::valid::Capabilities::empty())
            .validate(&module)
            .map_err(|error| {
                let message = format!("{}", error.as_inner());
                let mut source = std::error::Error::source(error.as_inner());
                let mut detail = message.clone();
                while let Some(inner) = source {
                    let _ = write!(detail, ": {inner}");
                    source = inner.source();
                }
                self.error(&detail, error.spans().map(|(s, l)| (*s, l.clone())))
            })?;
        Ok((module, info))
    }
}

/// Writes `module` as MSL for Metal's capabilities (no 64-bit atomics, relaxed atomics only).
///
/// # Errors
/// [`RingKernelError::Compile`] when naga cannot express it in MSL.
pub fn to_msl(kernel: &str, module: &naga::Module, info: &naga::valid::ModuleInfo) -> Result<String> {
    let options = naga::back::msl::Options {
        lang_version: (2, 4),
        fake_missing_bindings: true,
        zero_initialize_workgroup_memory: true,
        ..Default::default()
    };
    let pipeline = naga::back::msl::PipelineOptions::default();
    naga::back::msl::write_string(module, info, &options, &pipeline)
        .map(|(text, _)| text)
        .map_err(|error| RingKernelError::Compile { kernel: kernel.to_string(), log: format!("MSL output: {error}") })
}

/// The actor template as MSL (with `echo`'s handler in place of the user's): what the Metal crate
/// exports as `RING_KERNEL_MSL_TEMPLATE`.
///
/// # Errors
/// [`RingKernelError::Compile`] if naga refuses it (a bug).
pub fn actor_msl() -> Result<String> {
    let module = actor_module("echo", ringkernel_core::kernel::builtin::ECHO_WGSL)?;
    let (module, info) = module.validate()?;
    to_msl("echo", &module, &info)
}

/// The halo exchange as MSL: what the Metal crate exports as `K2K_HALO_EXCHANGE_MSL_TEMPLATE`.
///
/// # Errors
/// [`RingKernelError::Compile`] if naga refuses it (a bug).
pub fn halo_msl() -> Result<String> {
    let module = Assembled {
        text: crate::halo_module(),
        user_first_line: usize::MAX,
        kernel: "halo".into(),
        literals: Vec::new(),
    };
    let (module, info) = module.validate()?;
    to_msl("halo", &module, &info)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_become_ids_and_lines_stay() {
        let mut literals = Vec::new();
        let src = "// \"not a literal\"\nlet a = \"ab\\\"c\"; let b = \"x\"; let c = \"ab\\\"c\";\n/* \"no\" */";
        let out = extract_literals("k", src, &mut literals).unwrap();
        assert_eq!(out, "// \"not a literal\"\nlet a = 0u; let b = 1u; let c = 0u;\n/* \"no\" */");
        assert_eq!(literals, vec![b"ab\"c".to_vec(), b"x".to_vec()]);
        let error = extract_literals("k", "\n\"open", &mut literals).unwrap_err();
        assert!(error.to_string().contains("k.wgsl:2"), "{error}");
    }

    #[test]
    fn a_user_error_names_the_users_line() {
        let module = actor_module("broken", "fn rk_handle() {\n    let x: u32 = 1u;\n    rk_nope(x);\n}\n").unwrap();
        let error = module.validate().unwrap_err();
        let RingKernelError::Compile { kernel, log } = &error else { panic!("{error:?}") };
        assert_eq!(kernel, "broken");
        assert!(log.contains("broken.wgsl:3"), "{log}");
        assert!(log.contains("rk_nope"), "{log}");
    }

    #[test]
    fn a_type_error_is_reported_by_the_validator_or_parser() {
        let module = actor_module("typed", "fn rk_handle() {\n\n    let x: u32 = 1.5f;\n}\n").unwrap();
        let error = module.validate().unwrap_err();
        assert!(error.to_string().contains("typed.wgsl:3"), "{error}");
    }
}
