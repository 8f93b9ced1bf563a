//! The annotated fn as the macro reads it: attributes, visibility and signature parsed, the
//! body kept as tokens (so a syntax error inside it is reported as itself, by the compiler).

use proc_macro2::{Delimiter, Group, TokenStream};
use syn::parse::{Parse, ParseStream};
use syn::{Attribute, Signature, Visibility};

/// `#[attrs] vis sig { body }`, the body unparsed.
pub struct RetryFn {
    pub attrs: Vec<Attribute>,
    pub vis: Visibility,
    pub sig: Signature,
    /// The `{ … }` group, exactly as written.
    pub body: Group,
}

impl Parse for RetryFn {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let attrs = input.call(Attribute::parse_outer)?;
        let vis = input.parse()?;
        let sig = input.parse()?;
        let body: Group = input.parse()?;
        if body.delimiter() != Delimiter::Brace {
            return Err(syn::Error::new(
                body.span(),
                "expected the fn's body in `{ … }`",
            ));
        }
        if !input.is_empty() {
            return Err(input.error("unexpected tokens after the fn's body"));
        }
        Ok(RetryFn {
            attrs,
            vis,
            sig,
            body,
        })
    }
}

impl RetryFn {
    /// The body's statements, without their braces.
    pub fn statements(&self) -> TokenStream {
        self.body.stream()
    }
}
