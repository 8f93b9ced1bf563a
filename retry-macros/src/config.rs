//! `breakers! { … }` and `budgets! { … }`: parse a config block of named entries, check every
//! value, and emit one `static` per entry, registered at link time (no init call).

use crate::duration;
use crate::suggest;
use proc_macro2::{Literal, Span, TokenStream};
use quote::quote;
use syn::ext::IdentExt;
use syn::parse::{Parse, ParseStream};
use syn::{braced, Ident, Lit, Token};

/// Which block is being parsed.
#[derive(Clone, Copy)]
pub enum Kind {
    Breakers,
    Budgets,
}

impl Kind {
    fn keys(self) -> &'static [&'static str] {
        match self {
            Kind::Breakers => &[
                "consecutive_failures",
                "failure_rate",
                "window",
                "min_calls",
                "open_for",
                "open_max",
                "half_open_probes",
                "probe_timeout",
            ],
            Kind::Budgets => &[
                "capacity",
                "ratio",
                "min_per_sec",
                "max_concurrent",
                "window",
            ],
        }
    }
    fn macro_name(self) -> &'static str {
        match self {
            Kind::Breakers => "breakers!",
            Kind::Budgets => "budgets!",
        }
    }
    /// A well-formed entry, for syntax errors.
    pub fn example_entry(self) -> &'static str {
        match self {
            Kind::Breakers => "payments { consecutive_failures: 5, open_for: \"30s\" }",
            Kind::Budgets => "payments { capacity: 100, ratio: 0.1 }",
        }
    }
}

/// One `name { key: value, … }` entry, its values as written.
pub struct Entry {
    pub name: Ident,
    pub values: Vec<(Ident, Lit)>,
}

/// The whole block.
pub struct Block {
    pub krate: Option<syn::Path>,
    pub entries: Vec<Entry>,
    /// Entry names that are not identifiers; reported by `expand`.
    pub bad_names: Vec<BadName>,
}

impl Parse for Block {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let mut krate = None;
        if input.peek(Token![crate]) && input.peek2(Token![=]) {
            input.parse::<Token![crate]>()?;
            input.parse::<Token![=]>()?;
            let s: syn::LitStr = input.parse()?;
            krate = Some(s.parse()?);
            input.parse::<Token![;]>()?;
        }
        let mut entries = Vec::new();
        let mut bad_names = Vec::new();
        while !input.is_empty() {
            let name = Ident::parse_any(input)?;
            if let Some(bad) = rest_of_name(&name, input)? {
                bad_names.push(bad);
            }
            let content;
            braced!(content in input);
            let mut values = Vec::new();
            while !content.is_empty() {
                let key = Ident::parse_any(&content)?;
                content.parse::<Token![:]>()?;
                let value: Lit = content.parse().map_err(|e| {
                    syn::Error::new(e.span(), format!("`{key}` takes a literal value, like a number or a duration string such as \"30s\""))
                })?;
                values.push((key, value));
                if content.is_empty() {
                    break;
                }
                content.parse::<Token![,]>()?;
            }
            entries.push(Entry { name, values });
            if input.peek(Token![,]) || input.peek(Token![;]) {
                let _ = input.parse::<proc_macro2::TokenTree>();
            }
        }
        Ok(Block {
            krate,
            entries,
            bad_names,
        })
    }
}

/// An entry name that is not a Rust identifier, like `payments-eu`: where it is, as written,
/// and the identifier to suggest (`payments_eu`).
pub struct BadName {
    tokens: TokenStream,
    written: String,
    suggested: String,
}

/// Reads on from an entry's first identifier to its `{`: anything in between (`-eu`, `.eu`)
/// makes a `BadName`, so that the block reports it and goes on with the next entry.
fn rest_of_name(name: &Ident, input: ParseStream) -> syn::Result<Option<BadName>> {
    let mut tokens = quote!(#name);
    let mut written = name.to_string();
    let mut suggested = name.unraw().to_string();
    while !input.is_empty() && !input.peek(syn::token::Brace) {
        let token: proc_macro2::TokenTree = input.parse()?;
        let text = token.to_string();
        written.push_str(&text);
        if matches!(
            token,
            proc_macro2::TokenTree::Ident(_) | proc_macro2::TokenTree::Literal(_)
        ) {
            suggested.push_str(&text);
        } else {
            suggested.extend(text.chars().map(|_| '_'));
        }
        tokens.extend([token]);
    }
    Ok((*name != written).then_some(BadName {
        tokens,
        written,
        suggested,
    }))
}

impl BadName {
    fn error(&self, kind: Kind) -> syn::Error {
        let (written, suggested) = (&self.written, &self.suggested);
        let key = match kind {
            Kind::Breakers => "breaker",
            Kind::Budgets => "budget",
        };
        syn::Error::new_spanned(
            &self.tokens,
            format!(
                "`{written}` is not a name `{}` can declare: names in it are Rust identifiers (letters, digits and `_`); write `{suggested} {{ … }}`, and `{key} = \"{suggested}\"` in `#[retry(…)]`",
                kind.macro_name()
            ),
        )
    }
}

fn number(key: &Ident, lit: &Lit) -> syn::Result<f64> {
    match lit {
        Lit::Int(i) => i.base10_parse::<f64>(),
        Lit::Float(f) => f.base10_parse::<f64>(),
        _ => Err(syn::Error::new(
            lit.span(),
            format!(
                "`{key}` takes a number: write {}",
                example(&key.to_string())
            ),
        )),
    }
}

/// The most half-open probes the runtime's breaker state can count: 15 bits of its state word
/// (`MAX_PROBES` in `retry-runtime/src/breaker/state.rs`, which a test there keeps equal).
const MAX_HALF_OPEN_PROBES: u64 = 32_767;

const U32_MAX: u64 = u32::MAX as u64;

/// A whole number from `min` to `max`, every other value an error that names the key, the
/// range and an example.
fn count(key: &Ident, lit: &Lit, min: u64, max: u64) -> syn::Result<u64> {
    let example = example(&key.to_string());
    let Lit::Int(i) = lit else {
        let why = match lit {
            Lit::Float(f) if f.base10_digits().starts_with('-') => "a whole number, not negative",
            _ => "a whole number",
        };
        return Err(syn::Error::new(
            lit.span(),
            format!("`{key}` takes {why}: write {example}"),
        ));
    };
    let digits = i.base10_digits();
    if digits.starts_with('-') {
        return Err(syn::Error::new(
            lit.span(),
            format!(
                "`{key}` cannot be negative: write a whole number from {min} up, like {example}"
            ),
        ));
    }
    match digits.parse::<u64>() {
        Ok(n) if n < min => Err(syn::Error::new(
            lit.span(),
            format!("`{key}` must be at least {min}: write {example}"),
        )),
        Ok(n) if n <= max => Ok(n),
        _ => Err(syn::Error::new(lit.span(), too_large(key, digits, max))),
    }
}

/// Why `key: digits` is out of range, and what to write.
fn too_large(key: &Ident, digits: &str, max: u64) -> String {
    let example = example(&key.to_string());
    if max == MAX_HALF_OPEN_PROBES {
        format!("`{key}: {digits}` is more than the breaker can count: `{key}` is at most {max} (the trial calls in flight at once when half-open); write a small number, like {example}")
    } else {
        format!("`{key}: {digits}` is too large: `{key}` is at most {max} (a u32); write {example}")
    }
}

fn duration_of(key: &Ident, lit: &Lit) -> syn::Result<u64> {
    match lit {
        Lit::Str(s) => {
            let nanos = duration::parse(&s.value())
                .map_err(|m| syn::Error::new(s.span(), format!("`{key}`: {m}")))?;
            if nanos == 0 {
                return Err(syn::Error::new(
                    s.span(),
                    format!(
                        "`{key}` must be longer than zero: write {}",
                        example(&key.to_string())
                    ),
                ));
            }
            Ok(nanos)
        }
        _ => Err(syn::Error::new(
            lit.span(),
            format!(
                "`{key}` takes a duration string: write {}",
                example(&key.to_string())
            ),
        )),
    }
}

/// A budget's `window`: a duration string of at least 10 ms (a tenth of it is the step in
/// which deposits expire, in whole milliseconds).
fn budget_window(lit: &Lit) -> syn::Result<u64> {
    const HINT: &str = "`window` is how long a success funds retries: write a duration of at least 10ms, like `window: \"5s\"`";
    match lit {
        Lit::Str(s) => match duration::parse(&s.value()) {
            Ok(nanos) if nanos >= 10_000_000 => Ok(nanos),
            Ok(_) => Err(syn::Error::new(s.span(), HINT)),
            Err(m) => Err(syn::Error::new(s.span(), format!("`window`: {m}"))),
        },
        _ => Err(syn::Error::new(lit.span(), HINT)),
    }
}

/// How to write `key` correctly.
fn example(key: &str) -> &'static str {
    match key {
        "consecutive_failures" => "`consecutive_failures: 5`",
        "failure_rate" => "`failure_rate: 0.5`",
        "window" => "`window: \"10s\"` (a time window) or `window: 100` (the last 100 calls)",
        "min_calls" => "`min_calls: 20`",
        "open_for" => "`open_for: \"5s\"`",
        "open_max" => "`open_max: \"300s\"`",
        "half_open_probes" => "`half_open_probes: 1`",
        "probe_timeout" => "`probe_timeout: \"10s\"`",
        "capacity" => "`capacity: 100`",
        "ratio" => "`ratio: 0.1`",
        "min_per_sec" => "`min_per_sec: 1`",
        "max_concurrent" => "`max_concurrent: 50`",
        _ => "`key: value`",
    }
}

/// Expands the block, or returns every error found in it.
pub fn expand(kind: Kind, block: Block) -> Result<TokenStream, Vec<syn::Error>> {
    let mut errors: Vec<syn::Error> = block.bad_names.iter().map(|b| b.error(kind)).collect();
    let krate = match &block.krate {
        Some(p) => quote!(#p),
        None => quote!(::stormguard),
    };
    let p = quote!(#krate::__private);
    let mut out = TokenStream::new();
    let mut names: Vec<String> = Vec::new();
    for entry in &block.entries {
        let name = entry.name.unraw().to_string();
        if names.contains(&name) {
            errors.push(syn::Error::new(
                entry.name.span(),
                format!(
                    "`{name}` is declared twice in this `{}` block; merge the two entries into one",
                    kind.macro_name()
                ),
            ));
            continue;
        }
        names.push(name.clone());
        match entry_tokens(kind, entry, &name, &p) {
            Ok(tokens) => out.extend(tokens),
            Err(mut e) => errors.append(&mut e),
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

fn entry_tokens(
    kind: Kind,
    entry: &Entry,
    name: &str,
    p: &TokenStream,
) -> Result<TokenStream, Vec<syn::Error>> {
    let mut errors = Vec::new();
    let mut seen: Vec<String> = Vec::new();
    let mut fields: Vec<(String, TokenStream, Span, f64)> = Vec::new();
    let keys = kind.keys();
    for (key, lit) in &entry.values {
        let k = key.to_string();
        if seen.contains(&k) {
            errors.push(syn::Error::new(
                key.span(),
                format!("`{k}` is given twice for `{name}`; keep one"),
            ));
            continue;
        }
        seen.push(k.clone());
        let value: syn::Result<(TokenStream, f64)> = match (kind, k.as_str()) {
            // 0 turns the rule off (the default opens after 10 failures in a row).
            (Kind::Breakers, "consecutive_failures") => count(key, lit, 0, U32_MAX).map(|n| match n {
                0 => (quote!(#p::None), 0.0),
                n => {
                    let n = Literal::u32_suffixed(n as u32);
                    (quote!(#p::Some(#n)), 0.0)
                }
            }),
            (Kind::Breakers, "failure_rate") => number(key, lit).and_then(|r| {
                if r > 0.0 && r <= 1.0 {
                    let r = Literal::f64_suffixed(r);
                    Ok((quote!(#r), 0.0))
                } else {
                    Err(syn::Error::new(lit.span(), "`failure_rate` is a share of calls: write a number above 0 and at most 1, like `failure_rate: 0.5`"))
                }
            }),
            (Kind::Breakers, "window") => match lit {
                Lit::Int(_) => count(key, lit, 1, U32_MAX).map(|n| {
                    let n = Literal::u32_suffixed(n as u32);
                    (quote!(#p::Window::Calls(#n)), 0.0)
                }),
                _ => duration_of(key, lit).map(|n| {
                    let n = Literal::u64_suffixed(n);
                    (quote!(#p::Window::Time(#p::Duration::from_nanos(#n))), 0.0)
                }),
            },
            (Kind::Breakers, "min_calls") => count(key, lit, 1, U32_MAX).map(|n| {
                let l = Literal::u32_suffixed(n as u32);
                (quote!(#l), n as f64)
            }),
            (Kind::Breakers, "half_open_probes") => count(key, lit, 1, MAX_HALF_OPEN_PROBES).map(|n| {
                let l = Literal::u32_suffixed(n as u32);
                (quote!(#l), n as f64)
            }),
            (Kind::Breakers, "open_for" | "open_max" | "probe_timeout") => duration_of(key, lit).map(|n| {
                let l = Literal::u64_suffixed(n);
                (quote!(#p::Duration::from_nanos(#l)), n as f64)
            }),
            (Kind::Budgets, "capacity" | "min_per_sec") => count(key, lit, 0, U32_MAX).map(|n| {
                let l = Literal::u32_suffixed(n as u32);
                (quote!(#l), n as f64)
            }),
            (Kind::Budgets, "max_concurrent") => count(key, lit, 1, U32_MAX).map(|n| {
                let l = Literal::u32_suffixed(n as u32);
                (quote!(#l), n as f64)
            }),
            (Kind::Budgets, "window") => budget_window(lit).map(|n| {
                let l = Literal::u64_suffixed(n);
                (quote!(#p::Duration::from_nanos(#l)), n as f64)
            }),
            (Kind::Budgets, "ratio") => number(key, lit).and_then(|r| {
                if (0.0..=1000.0).contains(&r) {
                    let l = Literal::f64_suffixed(r);
                    Ok((quote!(#l), r))
                } else {
                    Err(syn::Error::new(lit.span(), "`ratio` is the tokens each success deposits: write a number from 0 up, like `ratio: 0.1` (10% extra load at most)"))
                }
            }),
            _ => {
                let hint = match suggest::nearest(&k, keys) {
                    Some(near) => format!("did you mean `{near}`? "),
                    None => String::new(),
                };
                Err(syn::Error::new(
                    key.span(),
                    format!("unknown `{}` key `{k}`; {hint}the keys are {}", kind.macro_name(), suggest::one_of(keys)),
                ))
            }
        };
        match value {
            Ok((tokens, n)) => fields.push((k, tokens, lit.span(), n)),
            Err(e) => errors.push(e),
        }
    }
    let get = |k: &str| fields.iter().find(|f| f.0 == k);
    if let (Some(open_for), Some(open_max)) = (get("open_for"), get("open_max")) {
        if open_max.3 < open_for.3 {
            errors.push(syn::Error::new(open_max.2, "`open_max` is below `open_for`: the open time only grows; write an `open_max` at least as long as `open_for`"));
        }
    } else if let (Some(open_for), None) = (get("open_for"), get("open_max")) {
        if open_for.3 > 300e9 {
            errors.push(syn::Error::new(open_for.2, "`open_for` is above the default `open_max` of 300s; add an `open_max` at least as long"));
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let setters = fields.iter().map(|(k, v, _, _)| {
        let with = Ident::new(&format!("with_{k}"), Span::call_site());
        quote!(.#with(#v))
    });
    let static_name = Ident::new("__STORMGUARD_ENTRY", Span::mixed_site());
    let ref_name = Ident::new("__STORMGUARD_ENTRY_REF", Span::mixed_site());
    let (ty, config_ty, slice) = match kind {
        Kind::Breakers => (
            quote!(#p::Breaker),
            quote!(#p::BreakerConfig),
            quote!(#p::DECLARED_BREAKERS),
        ),
        Kind::Budgets => (
            quote!(#p::Budget),
            quote!(#p::BudgetConfig),
            quote!(#p::DECLARED_BUDGETS),
        ),
    };
    let linkme = quote!(#p::linkme);
    // One crate-wide marker per name (a `macro_export` macro lives at the crate root), so
    // that the same name declared in two blocks of one crate is a compile error, at the
    // second name; across crates the registry keeps the first and warns.
    let kind_word = match kind {
        Kind::Breakers => "breaker",
        Kind::Budgets => "budget",
    };
    let marker = Ident::new(
        &format!("__stormguard_{kind_word}_{name}_is_declared_in_one_block_only"),
        entry.name.span(),
    );
    Ok(quote! {
        const _: () = {
            #[doc(hidden)]
            #[macro_export]
            macro_rules! #marker {
                () => {};
            }
            static #static_name: #ty = #ty::new(#name, #config_ty::DEFAULT #(#setters)*);
            #[#linkme::distributed_slice(#slice)]
            #[linkme(crate = #linkme)]
            static #ref_name: &'static #ty = &#static_name;
        };
    })
}
