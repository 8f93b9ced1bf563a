//! Prints a `Plan`: the user's signature unchanged, a `static` call site whose policy names
//! only the keys written, and a loop that runs the body once per attempt and asks what next.

use crate::args::{BackoffKind, HedgeKind, JitterKind};
use crate::item::RetryFn;
use crate::plan::{Mode, Plan};
use proc_macro2::{Literal, Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::Ident;

/// The annotated fn, rewritten.
pub fn expand(plan: &Plan, item: &RetryFn) -> TokenStream {
    let facade = match &plan.krate {
        Some(path) => quote!(#path),
        None => quote!(::stormguard),
    };
    // Everything generated names goes through one short local alias of the hidden path.
    let private = quote!(__stormguard);
    let ident = |name: &str| Ident::new(name, Span::mixed_site());
    let hedging = ident("__stormguard_hedging");
    let (call, result, delay, returned) = (
        ident("__stormguard_call"),
        ident("__stormguard_result"),
        ident("__stormguard_delay"),
        ident("__stormguard_return"),
    );
    let ret = &plan.ret;
    // A `when`/`retry_after` fn of the wrong signature is reported at the user's path.
    // Without the key: the error type's `Classify` impl where it has one, else every error
    // is transient and there is no hint (chosen at compile time from the attempt's result,
    // consulted only on a failure).
    // The arguments borrow the result only to name its types (no borrow outlives them), so
    // the result itself can come last, moved.
    let classify = quote!(&(&&#private::DefaultWhen::of(&#result)).__stormguard_classify());
    let when = match &plan.when {
        Some(when) => quote_spanned!(syn::spanned::Spanned::span(when)=> &#when),
        None => classify.clone(),
    };
    let retry_after = match &plan.retry_after {
        Some(hint) => quote_spanned!(syn::spanned::Spanned::span(hint)=> &#hint),
        None => classify,
    };
    let format = quote!((&&&#private::ErrorType::of(&#result)).__stormguard_formatter());
    // Each attempt is the user's statements, unchanged, as an async block whose output is
    // pinned to the declared return type by a `return` that never runs (so `?` and `return`
    // end the attempt, and a type error shows once, at the user's expression). The block carries the body's
    // span, so that a value the body moves is reported in the user's code.
    let stmts = item.statements();
    let body = quote_spanned! {item.body.span()=>
        async {
            if false {
                return #private::unreachable_output::<#ret>();
            }
            #stmts
        }
    };
    // The return type, at its own span: a fn that does not return a `Result` is told so there.
    let ret_at = quote_spanned!(syn::spanned::Spanned::span(&plan.ret)=> #ret);
    // A guarded attempt needs `E: From<GuardError>`: its call is located on the fn's error
    // type, so that a missing impl is reported once, there.
    let at = Span::mixed_site().located_at(plan.error_span);
    let call_at = Ident::new("__stormguard_call", at);
    let attempt = match plan.mode {
        Mode::Plain => quote!(#call.attempt::<#ret_at, _>(#body).await),
        Mode::BreakerOnly => quote_spanned! {at=>
            match #call_at.admit() {
                #private::Ok(()) => #call_at.admitted_attempt::<#ret_at, _>(#body).await,
                #private::Err(retry_in) => #call_at.refused_attempt(retry_in),
            }
        },
        Mode::Guarded => quote_spanned!(at=> #call_at.guarded_attempt(#body).await),
        // The attempts run side by side in `hedging`, each built by the closure (the same
        // async block, so every attempt borrows the arguments anew); the first to finish is
        // judged below.
        Mode::Hedged => {
            let guard =
                if plan.timeout.is_some() || plan.deadline.is_some() || plan.breaker.is_some() {
                    quote!(WithGuard)
                } else {
                    quote!(NoGuard)
                };
            quote_spanned! {at=>
                #call_at.hedge_next::<#ret_at, _, _, _>(#hedging.as_mut(), #private::#guard, || #body).await
            }
        }
        Mode::Blocking => quote!(#call.attempt_blocking::<#ret_at>(|| -> #ret { #stmts })),
        Mode::BlockingGuarded => {
            quote_spanned!(at=> #call_at.guarded_attempt_blocking(|| -> #ret { #stmts }))
        }
    };
    let sleep = match plan.mode {
        Mode::Blocking | Mode::BlockingGuarded => quote!(#call.sleep_blocking(#delay)),
        // A hedged call sleeps only for a server's hint, with nothing else in flight.
        Mode::Hedged => quote! {
            if !#delay.is_zero() {
                #call.sleep(#delay).await;
            }
        },
        _ => quote!(#call.sleep(#delay).await),
    };
    let judge = match plan.mode {
        Mode::Hedged => quote! {
            after_hedged_attempt(#hedging.as_mut(), #format, #when, #retry_after, #result)
        },
        _ => quote!(after_attempt(#format, #when, #retry_after, #result)),
    };
    let hedging_binding = (plan.mode == Mode::Hedged)
        .then(|| quote!(let mut #hedging = ::core::pin::pin!(#private::Hedging::new());));
    // Only a breaker keeps the last error across the sleep (to return it if the breaker
    // refuses the next attempt); otherwise nothing of type `E` lives across an `.await`.
    // With a deadline, the last error is kept too: returned if the deadline leaves the next
    // attempt no time
    // (`ErrorKept` when the error type is `Send`, chosen at the call site by `KeepError`, so that
    // the future stays `Send` whenever the plain fn's is; an erased `impl Trait` keeps nothing).
    let keeps_error =
        plan.breaker.is_none() && plan.mode == Mode::Guarded && plan.deadline.is_some();
    let slot = match &plan.breaker {
        Some(_) => quote!(#private::BreakerSlot<_>),
        None => quote!(()),
    };
    // Only a deadline needs the call's start time (a clock read).
    // A blocking fn sleeps on std's clock, so its deadline counts on that clock too.
    let started = match (plan.deadline, plan.mode) {
        (None, _) => quote!(()),
        (Some(_), Mode::Blocking | Mode::BlockingGuarded) => quote!(#private::StartedBlocking),
        (Some(_), _) => quote!(#private::Started),
    };
    let start = if keeps_error && !plan.ret_infers {
        quote! {
            #private::Call::<_, #started>::start_with(
                &__STORMGUARD_SITE,
                (&&#private::KeepError::<#ret>::new()).__stormguard_slot(),
            )
        }
    } else {
        quote!(#private::Call::<#slot, #started>::start(&__STORMGUARD_SITE))
    };
    let site = site(plan, item, &private);
    let attrs = &item.attrs;
    let vis = &item.vis;
    let sig = &item.sig;
    quote! {
        #(#attrs)*
        #vis #sig {
            use #facade::__private::{self as __stormguard, formatter::*};
            #site
            let mut #call = #start;
            #hedging_binding
            loop {
                let #delay = {
                    let #result = #attempt;
                    match #call.#judge {
                        #private::Verdict::Return(#returned) => return #returned,
                        #private::Verdict::Retry(#delay) => #delay,
                    }
                };
                #sleep;
            }
        }
    }
}

/// `static __STORMGUARD_SITE: Site = Site::new(Policy::DEFAULT.with_…(…), "op");`, naming only
/// the keys that differ from the defaults.
fn site(plan: &Plan, item: &RetryFn, private: &TokenStream) -> TokenStream {
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
    let mut with = Vec::new();
    if let Some(n) = plan.attempts {
        let n = Literal::u32_unsuffixed(n);
        with.push(quote!(with_attempts(#n)));
    }
    if let Some((kind, factor)) = plan.backoff {
        let backoff = match kind {
            BackoffKind::Exponential => {
                let factor = Literal::f64_suffixed(factor);
                quote!(Exponential { factor: #factor })
            }
            BackoffKind::Fixed => quote!(Fixed),
            BackoffKind::Linear => quote!(Linear),
        };
        with.push(quote!(with_backoff(#private::Backoff::#backoff)));
    }
    if let Some(base) = plan.base.map(duration) {
        with.push(quote!(with_base(#base)));
    }
    if let Some(max) = plan.max.map(duration) {
        with.push(quote!(with_max(#max)));
    }
    if let Some(jitter) = plan.jitter {
        let jitter = match jitter {
            JitterKind::None => quote!(None),
            JitterKind::Full => quote!(Full),
            JitterKind::Equal => quote!(Equal),
            JitterKind::Decorrelated => quote!(Decorrelated),
        };
        with.push(quote!(with_jitter(#private::Jitter::#jitter)));
    }
    if let Some(timeout) = plan.timeout.map(duration) {
        with.push(quote!(with_timeout(#timeout)));
    }
    if let Some(deadline) = plan.deadline.map(duration) {
        with.push(quote!(with_deadline(#deadline)));
    }
    if let Some(hedge) = plan.hedge {
        let hedge = match hedge {
            HedgeKind::After(nanos) => {
                let after = duration(nanos);
                quote!(After(#after))
            }
            HedgeKind::Percentile(permille) => {
                let permille = Literal::u16_unsuffixed(permille);
                quote!(Percentile(#permille))
            }
        };
        with.push(quote!(with_hedge(#private::Hedge::#hedge)));
    }
    if let Some(breaker) = &plan.breaker {
        with.push(quote!(with_breaker(#breaker)));
    }
    if let Some(budget) = &plan.budget {
        with.push(quote!(with_budget(#budget)));
    }
    let op = match &plan.name {
        Some(name) => quote!(#name),
        None => {
            let ident = item.sig.ident.to_string();
            quote!(::core::concat!(::core::module_path!(), "::", #ident))
        }
    };
    // Collected at link time, so that the program's call sites are known at start-up.
    quote! {
        #[#private::linkme::distributed_slice(#private::CALL_SITES)]
        #[linkme(crate = #private::linkme)]
        static __STORMGUARD_SITE: #private::Site =
            #private::Site::new(#private::Policy::DEFAULT #(.#with)*, #op);
    }
}
