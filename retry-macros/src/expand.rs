//! Emits the annotated fn: the user's signature unchanged, a `static` call site holding the
//! `const` policy, and a loop that runs the body once per attempt and asks the runtime what next.

use crate::args::{
    Args, BackoffKind, JitterKind, DEFAULT_ATTEMPTS, DEFAULT_BASE, DEFAULT_FACTOR, DEFAULT_MAX,
};
use proc_macro2::{Literal, Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::{Block, Ident, ItemFn, Type};

/// The annotated fn, rewritten. Assumes `validate::check` found nothing.
pub fn expand(args: &Args, mut item: ItemFn, ret: &Type) -> TokenStream {
    let krate = match &args.krate {
        Some(path) => quote!(#path),
        None => quote!(::stormguard),
    };
    let private = quote!(#krate::__private);
    let site = site(args, &item, &private);
    let call = Ident::new("__stormguard_call", Span::mixed_site());
    let result = Ident::new("__stormguard_result", Span::mixed_site());
    let format = Ident::new("__stormguard_format", Span::mixed_site());
    let returned = Ident::new("__stormguard_return", Span::mixed_site());
    let delay = Ident::new("__stormguard_delay", Span::mixed_site());
    // A `when`/`retry_after` fn of the wrong signature is reported at the user's path.
    // Without the key: the error type's `Classify` impl where it has one, else every error
    // is transient and there is no hint (chosen at compile time, used only on a failure).
    let when = match &args.when {
        Some(when) => quote_spanned!(syn::spanned::Spanned::span(when)=> &#when),
        None => quote!(&{
            use #private::default_when::{ViaClassify as _, ViaDefault as _};
            (&&#private::default_when::DefaultWhen::<#ret>::new()).__stormguard_when()
        }),
    };
    let retry_after = match &args.retry_after {
        Some(hint) => quote_spanned!(syn::spanned::Spanned::span(hint)=> &#hint),
        None => quote!(&{
            use #private::default_when::{ViaClassify as _, ViaDefault as _};
            (&&#private::default_when::DefaultWhen::<#ret>::new()).__stormguard_retry_after()
        }),
    };
    let is_async = item.sig.asyncness.is_some();
    // Only a guard that can end an attempt needs the user's error type to hold a GuardError:
    // a blocking fn cannot be cut off, so there its deadline only limits the sleeps.
    let guarded =
        args.breaker.is_some() || (is_async && (args.timeout.is_some() || args.deadline.is_some()));
    let body: &Block = &item.block;
    // The async attempt takes the body's statements as its own (a nested `{ … }` would set
    // off `unused_braces` on a one-expression body).
    let stmts = &body.stmts;
    // Each attempt is the user's block, unchanged, with its output pinned to the declared
    // return type (so `?` and `return` end the attempt, and a type error shows once, at the
    // user's expression). A guarded attempt needs `E: From<GuardError>`: its call and `.await`
    // are located on the fn's error type, so that a missing impl is reported once, there
    // (`mixed_site` like the binding it names, so that rustc keeps that location).
    let at = Span::mixed_site().located_at(error_type_span(ret));
    let call_at = Ident::new("__stormguard_call", at);
    let run_attempt = if is_async {
        let attempt = quote! {
            async {
                if false {
                    return #private::unreachable_output::<#ret>();
                }
                #(#stmts)*
            }
        };
        if args.breaker.is_some() && args.timeout.is_none() && args.deadline.is_none() {
            // A breaker alone: asked before the attempt, whose future stays the plain one.
            let retry_in = Ident::new("__stormguard_retry_in", Span::mixed_site());
            let refused = quote_spanned!(at=> #call_at.refused_attempt(#retry_in));
            quote! {
                match #call.breaker_admits() {
                    #private::Ok(()) => #call.admitted_attempt(#attempt).await,
                    #private::Err(#retry_in) => #refused,
                }
            }
        } else if guarded {
            quote_spanned!(at=> #call_at.guarded_attempt(#attempt).await)
        } else {
            quote!(#call.attempt(#attempt).await)
        }
    } else {
        let attempt = quote!(|| -> #ret #body);
        if guarded {
            quote_spanned!(at=> #call_at.guarded_attempt_blocking(#attempt))
        } else {
            quote!(#call.attempt_blocking(#attempt))
        }
    };
    let sleep = if is_async {
        quote!(#call.sleep(#delay).await)
    } else {
        quote!(#call.sleep_blocking(#delay))
    };
    // Only a breaker needs the last error kept across the sleep (to return it if the breaker
    // refuses the next attempt), and its permit; otherwise nothing of type `E` lives across an
    // `.await`, so the fn's future is `Send` whenever the plain fn's would be.
    let keep = if args.breaker.is_some() {
        quote!(#private::BreakerHeld<_>)
    } else {
        quote!(())
    };
    let ret_check = quote_spanned! {syn::spanned::Spanned::span(ret)=>
        #private::returns_result::<#ret>();
    };
    // Only a deadline needs the call's start time (a clock read).
    let start = if args.deadline.is_some() {
        quote!(start_with_deadline)
    } else {
        quote!(start)
    };
    let new_body: Block = syn::parse_quote! {{
        #site
        #ret_check
        let mut #call = #private::Call::<#keep>::#start(&__STORMGUARD_SITE);
        loop {
            let #delay = {
                let #result: #ret = #run_attempt;
                let #format = {
                    use #private::describe::{ViaDebug as _, ViaDisplay as _, ViaTypeName as _};
                    (&&&#private::describe::ErrorKind::of(&#result)).__stormguard_formatter()
                };
                match #call.judge(#result, #format, #when, #retry_after) {
                    #private::Verdict::Return(#returned) => return #returned,
                    #private::Verdict::Retry(#delay) => #delay,
                }
            };
            #sleep;
        }
    }};
    *item.block = new_body;
    quote!(#item)
}

/// The error type `E` of a written `…Result<T, E>`, else the whole return type.
fn error_type_span(ret: &Type) -> Span {
    if let Type::Path(p) = ret {
        if let Some(syn::PathArguments::AngleBracketed(args)) =
            p.path.segments.last().map(|s| &s.arguments)
        {
            if let (2, Some(syn::GenericArgument::Type(e))) = (args.args.len(), args.args.last()) {
                return syn::spanned::Spanned::span(e);
            }
        }
    }
    syn::spanned::Spanned::span(ret)
}

/// `static __STORMGUARD_SITE: Site = Site::new(Policy { … }, "op");`
fn site(args: &Args, item: &ItemFn, private: &TokenStream) -> TokenStream {
    let attempts =
        Literal::u32_unsuffixed(args.attempts.as_ref().map_or(DEFAULT_ATTEMPTS, |a| a.value));
    let backoff = match args
        .backoff
        .as_ref()
        .map_or(BackoffKind::Exponential, |b| b.value)
    {
        BackoffKind::Exponential => {
            let factor =
                Literal::f64_suffixed(args.factor.as_ref().map_or(DEFAULT_FACTOR, |f| f.value));
            quote!(#private::Backoff::Exponential { factor: #factor })
        }
        BackoffKind::Fixed => quote!(#private::Backoff::Fixed),
        BackoffKind::Linear => quote!(#private::Backoff::Linear),
    };
    let jitter = match args.jitter.as_ref().map_or(JitterKind::Full, |j| j.value) {
        JitterKind::None => quote!(#private::Jitter::None),
        JitterKind::Full => quote!(#private::Jitter::Full),
        JitterKind::Equal => quote!(#private::Jitter::Equal),
        JitterKind::Decorrelated => quote!(#private::Jitter::Decorrelated),
    };
    // The most readable exact constructor: `from_secs(2)`, `from_millis(250)`, `from_nanos(…)`.
    let duration = |nanos: u64| {
        if nanos % 1_000_000_000 == 0 {
            let secs = Literal::u64_unsuffixed(nanos / 1_000_000_000);
            quote!(#private::Duration::from_secs(#secs))
        } else if nanos % 1_000_000 == 0 {
            let millis = Literal::u64_unsuffixed(nanos / 1_000_000);
            quote!(#private::Duration::from_millis(#millis))
        } else {
            let nanos = Literal::u64_unsuffixed(nanos);
            quote!(#private::Duration::from_nanos(#nanos))
        }
    };
    let base = duration(args.base.as_ref().map_or(DEFAULT_BASE, |b| b.value));
    let max = duration(args.max.as_ref().map_or(DEFAULT_MAX, |m| m.value));
    let optional_duration = |d: Option<u64>| match d {
        Some(n) => {
            let d = duration(n);
            quote!(#private::Some(#d))
        }
        None => quote!(#private::None),
    };
    let timeout = optional_duration(args.timeout.as_ref().map(|t| t.value));
    let deadline = optional_duration(args.deadline.as_ref().map(|d| d.value));
    let optional_name = |s: &Option<syn::LitStr>| match s {
        Some(s) => quote!(#private::Some(#s)),
        None => quote!(#private::None),
    };
    let breaker = optional_name(&args.breaker);
    let budget = optional_name(&args.budget);
    let op = match &args.name {
        Some(name) => quote!(#name),
        None => {
            let ident = item.sig.ident.to_string();
            quote!(::core::concat!(::core::module_path!(), "::", #ident))
        }
    };
    quote! {
        static __STORMGUARD_SITE: #private::Site = #private::Site::new(
            #private::Policy {
                attempts: #attempts,
                backoff: #backoff,
                base: #base,
                max: #max,
                jitter: #jitter,
                timeout: #timeout,
                deadline: #deadline,
                breaker: #breaker,
                budget: #budget,
            },
            #op,
        );
    }
}
