//! Rules that span several keys or the fn itself: `max` ≥ `base`, `factor` only with "exp",
//! `timeout` only on an async fn, typed closures for `when`, a `Result` to return.

use crate::args::{Args, BackoffKind, DEFAULT_BASE, DEFAULT_MAX};
use crate::duration::show;
use crate::item::RetryFn;
use crate::plan::Plan;
use syn::spanned::Spanned;
use syn::{Expr, ExprClosure, Pat, ReturnType, Type};

/// Checks the keys against each other and against the fn, then resolves them into the
/// `Plan` that `expand` prints; or every problem found.
pub fn plan(args: Args, item: &RetryFn) -> Result<Plan, Vec<syn::Error>> {
    let errors = check(&args, item);
    match result_type(item) {
        Ok(ret) if errors.is_empty() => Ok(Plan::new(args, item, ret)),
        _ => Err(errors),
    }
}

fn check(args: &Args, item: &RetryFn) -> Vec<syn::Error> {
    let mut errors = Vec::new();
    let base = args.base.as_ref().map_or(DEFAULT_BASE, |b| b.value);
    match (&args.max, &args.base) {
        (Some(max), _) if max.value < base => errors.push(syn::Error::new(
            max.span,
            format!(
                "`max` ({}) is below `base` ({}): no delay could reach its first step; write max = \"{}\" or more, or lower `base`",
                show(max.value),
                show(base),
                show(base)
            ),
        )),
        (None, Some(b)) if b.value > DEFAULT_MAX => errors.push(syn::Error::new(
            b.span,
            format!(
                "`base` ({}) is above the default `max` of 2s; add max = \"{}\" (or more) beside it",
                show(b.value),
                show(b.value)
            ),
        )),
        _ => {}
    }
    if let (Some(factor), Some(backoff)) = (&args.factor, &args.backoff) {
        if backoff.value != BackoffKind::Exponential {
            errors.push(syn::Error::new(
                factor.span,
                "`factor` shapes only backoff = \"exp\"; remove `factor`, or write backoff = \"exp\"",
            ));
        }
    }
    if item.sig.asyncness.is_none() {
        if let Some(timeout) = &args.timeout {
            errors.push(syn::Error::new(
                timeout.span,
                "`timeout` needs an `async fn`: a blocking call cannot be cancelled when its time is up; make the fn `async`, or remove `timeout`",
            ));
        }
    }
    if let Some(hedge) = &args.hedge {
        errors.extend(hedge_shape(hedge.span, item));
    }
    if let Some(c) = &item.sig.constness {
        errors.push(syn::Error::new(
            c.span(),
            "#[retry] cannot wrap a `const fn` (it sleeps between attempts); remove `const`",
        ));
    }
    if let Err(e) = result_type(item) {
        errors.push(e);
    }
    errors.extend(crate::borrow::check(&item.sig));
    for (key, value) in [("when", &args.when), ("retry_after", &args.retry_after)] {
        if let Some(Expr::Closure(closure)) = value {
            errors.extend(untyped_closure_argument(key, closure, item));
        }
    }
    errors
}

/// A hedged fn runs its body more than once at the same time: it must be `async` (a blocking
/// body cannot run beside itself) and take no `&mut` (two attempts cannot share one).
fn hedge_shape(hedge: proc_macro2::Span, item: &RetryFn) -> Vec<syn::Error> {
    let mut errors = Vec::new();
    if item.sig.asyncness.is_none() {
        errors.push(syn::Error::new(
            hedge,
            "`hedge` needs an `async fn`: a hedge runs the next attempt beside the slow one, and a blocking fn runs one attempt at a time; make the fn `async`, or remove `hedge`",
        ));
    }
    for input in &item.sig.inputs {
        let (tokens, what): (proc_macro2::TokenStream, String) = match input {
            syn::FnArg::Receiver(r) => match &r.kind {
                syn::ReceiverKind::Reference(and, _, Some(m)) => {
                    (quote::quote!(#and #m), "`&mut self`".to_owned())
                }
                syn::ReceiverKind::Typed(_, ty) if is_mut_ref(ty) => (
                    quote::ToTokens::to_token_stream(ty),
                    "`&mut self`".to_owned(),
                ),
                _ => continue,
            },
            syn::FnArg::Typed(t) if is_mut_ref(&t.ty) => {
                let Type::Reference(r) = &*t.ty else { continue };
                let (and, m) = (&r.and_token, &r.mutability);
                let name = quote::ToTokens::to_token_stream(&t.pat).to_string();
                (
                    quote::quote!(#and #m),
                    format!("the `&mut` argument `{name}`"),
                )
            }
            _ => continue,
        };
        errors.push(syn::Error::new_spanned(
            tokens,
            format!(
                "`hedge` runs the body more than once at the same time, and {what} cannot be lent to two attempts at once; take `&self` (with interior mutability, such as a `Mutex`, for what must change) or a shared reference, or remove `hedge`"
            ),
        ));
    }
    errors
}

/// `&mut T`, also inside `Pin<&mut T>`.
fn is_mut_ref(ty: &Type) -> bool {
    match ty {
        Type::Reference(r) => r.mutability.is_some(),
        Type::Paren(p) => is_mut_ref(&p.elem),
        Type::Path(p) => p.path.segments.last().is_some_and(|s| match &s.arguments {
            syn::PathArguments::AngleBracketed(a) if s.ident == "Pin" => a
                .args
                .iter()
                .any(|g| matches!(g, syn::GenericArgument::Type(t) if is_mut_ref(t))),
            _ => false,
        }),
        _ => false,
    }
}

/// A closure given to `when`/`retry_after` must name its argument's type: Rust fixes a
/// closure's signature where it is written, and untyped it takes a reference of one lifetime,
/// not the error's reference of any lifetime ("FnOnce is not general enough"). `&_` will do.
fn untyped_closure_argument(
    key: &str,
    closure: &ExprClosure,
    item: &RetryFn,
) -> Option<syn::Error> {
    let arg = closure.inputs.iter().find(|input| match input {
        Pat::Type(t) => matches!(*t.ty, Type::Infer(_)),
        _ => true,
    })?;
    let error = error_type(item).unwrap_or_else(|| "MyError".to_owned());
    let (returns, fn_name) = match key {
        "when" => ("bool", "is_transient"),
        _ => ("Option<std::time::Duration>", "server_hint"),
    };
    Some(syn::Error::new(
        arg.span(),
        format!(
            "`{key}` calls this closure with a reference to the error, but Rust fixes a closure's argument types where it is written, so an argument without a type cannot take that reference: write the type, `{key} = |e: &{error}| …`, or name a fn, `fn {fn_name}(e: &{error}) -> {returns} {{ … }}` and `{key} = {fn_name}`"
        ),
    ))
}

/// `E` of a written `…Result<T, E>`, as text.
fn error_type(item: &RetryFn) -> Option<String> {
    let ReturnType::Type(_, ty) = &item.sig.output else {
        return None;
    };
    let Type::Path(p) = &**ty else { return None };
    let syn::PathArguments::AngleBracketed(args) = &p.path.segments.last()?.arguments else {
        return None;
    };
    match (args.args.len(), args.args.last()) {
        (2, Some(syn::GenericArgument::Type(e))) => {
            Some(quote::ToTokens::to_token_stream(e).to_string())
        }
        _ => None,
    }
}

/// The declared return type, if it can be a `Result` (a path such as `Result<T, E>`,
/// `io::Result<T>` or a crate's own alias).
fn result_type(item: &RetryFn) -> syn::Result<&Type> {
    let ty = match &item.sig.output {
        ReturnType::Type(_, ty) => &**ty,
        ReturnType::Default => {
            return Err(syn::Error::new(
                item.sig.paren_token.span.join(),
                format!(
                    "#[retry] needs a fn that returns `Result<T, E>` (the error decides whether to retry); add `-> Result<…, …>` after the arguments of `{}`",
                    item.sig.ident
                ),
            ))
        }
    };
    let not_result = |what: &str| {
        Err(syn::Error::new_spanned(
            ty,
            format!("#[retry] needs a fn that returns `Result<T, E>`, and {what} is not one; return `Result<T, E>` (or an alias such as `io::Result<T>`) and put the failure in `Err`"),
        ))
    };
    match ty {
        Type::Path(p) if p.qself.is_none() => {
            let last = p.path.segments.last().map(|s| s.ident.to_string());
            const NOT_RESULTS: &[&str] = &[
                "Option", "String", "Vec", "Box", "bool", "char", "str", "u8", "u16", "u32", "u64",
                "u128", "usize", "i8", "i16", "i32", "i64", "i128", "isize", "f32", "f64",
                "HashMap", "Poll", "Pin",
            ];
            match last {
                Some(name) if NOT_RESULTS.contains(&name.as_str()) => {
                    not_result(&format!("`{name}`"))
                }
                _ => Ok(ty),
            }
        }
        Type::Path(_) | Type::Paren(_) | Type::Group(_) | Type::Macro(_) => Ok(ty),
        Type::Tuple(t) if t.elems.is_empty() => not_result("`()`"),
        _ => not_result("this type"),
    }
}
