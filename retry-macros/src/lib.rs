//! The `#[retry]` attribute and the `breakers!`/`budgets!` config blocks of stormguard.
//! This crate parses and emits; everything that runs lives in `retry-runtime`. Use both
//! through the `stormguard` crate, which documents them.

mod args;
mod borrow;
mod config;
mod duration;
mod expand;
mod item;
mod percentile;
mod plan;
mod suggest;
mod validate;

use proc_macro::TokenStream;
use quote::quote;

/// Retries an async fn (or a blocking one) that returns `Result`. Documented in `stormguard`.
#[proc_macro_attribute]
pub fn retry(attr: TokenStream, item: TokenStream) -> TokenStream {
    let item2 = proc_macro2::TokenStream::from(item);
    let (args, mut errors) = args::parse(attr.into());
    let parsed = match syn::parse2::<item::RetryFn>(item2.clone()) {
        Ok(f) => f,
        Err(_) => return with_errors(item2.clone(), errors.into_iter().chain([not_a_fn(&item2)])),
    };
    if let Some(twice) = parsed.attrs.iter().find(|a| is_retry_attr(a)) {
        errors.push(syn::Error::new_spanned(
            twice,
            "#[retry] is given twice on this fn: each call would be counted and retried by both; keep one #[retry(...)] and put every key in it",
        ));
    }
    match validate::plan(args, &parsed) {
        Ok(plan) if errors.is_empty() => expand::expand(&plan, &parsed).into(),
        Ok(_) => with_errors(item2, errors),
        Err(more) => with_errors(item2, errors.into_iter().chain(more)),
    }
}

/// A second `#[retry]` (or `#[stormguard::retry]`) among the fn's remaining attributes.
fn is_retry_attr(attr: &syn::Attribute) -> bool {
    attr.path()
        .segments
        .last()
        .is_some_and(|s| s.ident == "retry")
}

/// Why the item is not a fn `#[retry]` can wrap, pointed at its first tokens.
fn not_a_fn(item: &proc_macro2::TokenStream) -> syn::Error {
    let message = match syn::parse2::<syn::Item>(item.clone()) {
        Ok(syn::Item::Verbatim(tokens))
            if tokens.clone()
                .into_iter()
                .any(|t| matches!(&t, proc_macro2::TokenTree::Ident(i) if i == "fn")) =>
        {
            // A fn declaration without a body (in a trait): syn keeps it verbatim.
            "#[retry] goes on an `async fn` with a body that returns `Result` (a fn declaration without a body has nothing to retry); put it on the method in each impl".to_owned()
        }
        Ok(syn::Item::Fn(_)) | Err(_) => "#[retry] goes on an `async fn` with a body that returns `Result` (a fn declaration without a body has nothing to retry)".to_owned(),
        Ok(other) => format!(
            "#[retry] goes on an `async fn` (or a fn) that returns `Result`, not on {}; put it on the fn that makes the I/O call",
            item_kind(&other)
        ),
    };
    syn::Error::new_spanned(first_tokens(item), message)
}

/// Declares named circuit breakers. Documented in `stormguard`.
#[proc_macro]
pub fn breakers(input: TokenStream) -> TokenStream {
    config_block(config::Kind::Breakers, input)
}

/// Declares named retry budgets. Documented in `stormguard`.
#[proc_macro]
pub fn budgets(input: TokenStream) -> TokenStream {
    config_block(config::Kind::Budgets, input)
}

fn config_block(kind: config::Kind, input: TokenStream) -> TokenStream {
    let block = match syn::parse::<config::Block>(input) {
        Ok(b) => b,
        Err(e) => {
            let e = syn::Error::new(
                e.span(),
                format!("{e}; write entries like `{}`", kind.example_entry()),
            );
            return e.to_compile_error().into();
        }
    };
    match config::expand(kind, block) {
        Ok(tokens) => tokens.into(),
        Err(errors) => errors
            .into_iter()
            .map(|e| e.to_compile_error())
            .collect::<proc_macro2::TokenStream>()
            .into(),
    }
}

/// The user's item unchanged, plus the errors, so that IDEs still see the fn.
fn with_errors(
    item: proc_macro2::TokenStream,
    errors: impl IntoIterator<Item = syn::Error>,
) -> TokenStream {
    let errors = errors.into_iter().map(|e| e.to_compile_error());
    quote!(#item #(#errors)*).into()
}

fn first_tokens(item: &proc_macro2::TokenStream) -> proc_macro2::TokenStream {
    // Point at the item's keyword and name rather than its whole body.
    item.clone()
        .into_iter()
        .skip_while(|t| matches!(t, proc_macro2::TokenTree::Punct(p) if p.as_char() == '#'))
        .skip_while(|t| matches!(t, proc_macro2::TokenTree::Group(_)))
        .take_while(|t| !matches!(t, proc_macro2::TokenTree::Group(g) if g.delimiter() == proc_macro2::Delimiter::Brace))
        .take(3)
        .collect()
}

fn item_kind(item: &syn::Item) -> &'static str {
    match item {
        syn::Item::Struct(_) => "a struct",
        syn::Item::Enum(_) => "an enum",
        syn::Item::Impl(_) => "an impl block (put it on each method instead)",
        syn::Item::Trait(_) => "a trait",
        syn::Item::Mod(_) => "a module",
        syn::Item::Const(_) => "a const",
        syn::Item::Static(_) => "a static",
        syn::Item::Type(_) => "a type alias",
        syn::Item::Use(_) => "a use declaration",
        _ => "this item",
    }
}
