//! `#[derive(RingMessage)]`: a stable message type id for a plain-old-data struct. The examples
//! that run are in the `ringkernel` facade (its crate docs and `tests/facade.rs`), which this crate
//! cannot depend on:
//!
//! ```text
//! use ringkernel::prelude::*;
//!
//! #[repr(C)]
//! #[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable, RingMessage)]
//! #[ring_message(type_id = 0x5052_4943)] // optional; default: FNV-1a of the type's name
//! struct PriceUpdate { instrument: u32, _pad: u32, price_micros: u64 }
//! ```
//!
//! Options, all in `#[ring_message(...)]`:
//! * `type_id = <u32 expression>` — the id carried in `MessageHeader::message_type`. Without it
//!   the id is `message_type_id("<TypeName>")`: stable across builds and crates, changed only by
//!   renaming the type. Set it explicitly when a rename must not change the wire format;
//! * `crate = "path"` — where the RingKernel items are (default `::ringkernel`; use
//!   `"ringkernel_core"` in crates that depend on the core only).
//!
//! The type must be `bytemuck::Pod` (the trait requires it), so its layout is fixed and has no
//! padding, and must not be generic.

use proc_macro::TokenStream;
use quote::quote;
use syn::{DeriveInput, Expr, LitStr, Path, parse_macro_input, parse_quote};

/// Implements `RingMessage` (see the crate docs for the options).
#[proc_macro_derive(RingMessage, attributes(ring_message))]
pub fn derive_ring_message(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    expand(&input).unwrap_or_else(syn::Error::into_compile_error).into()
}

fn expand(input: &DeriveInput) -> syn::Result<proc_macro2::TokenStream> {
    if !input.generics.params.is_empty() {
        return Err(syn::Error::new_spanned(
            &input.generics,
            "RingMessage cannot be derived for a generic type: each message type needs one fixed id and layout",
        ));
    }
    if matches!(input.data, syn::Data::Union(_)) {
        return Err(syn::Error::new_spanned(
            &input.ident,
            "RingMessage is derived for structs and enums with Pod layout",
        ));
    }
    let mut type_id: Option<Expr> = None;
    let mut krate: Path = parse_quote!(::ringkernel);
    for attr in input.attrs.iter().filter(|attr| attr.path().is_ident("ring_message")) {
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("type_id") {
                type_id = Some(meta.value()?.parse()?);
                Ok(())
            } else if meta.path.is_ident("crate") {
                let path: LitStr = meta.value()?.parse()?;
                krate = path.parse()?;
                Ok(())
            } else {
                Err(meta.error("unknown ring_message option; expected `type_id = <u32>` or `crate = \"path\"`"))
            }
        })?;
    }
    let name = &input.ident;
    let name_text = name.to_string();
    let id = match type_id {
        Some(expr) => quote!(#expr),
        None => quote!(#krate::message::message_type_id(#name_text)),
    };
    Ok(quote! {
        impl #krate::message::RingMessage for #name {
            const MESSAGE_TYPE: u32 = #id;
        }
    })
}
