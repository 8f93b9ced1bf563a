//! The typed middle stage: the attribute and the fn turned into a resolved `Plan` (every
//! default filled in from one place, the attempt mode chosen), which `expand` only prints.

use crate::args::{
    Args, BackoffKind, HedgeKind, JitterKind, DEFAULT_ATTEMPTS, DEFAULT_BASE, DEFAULT_FACTOR,
    DEFAULT_MAX,
};
use crate::item::RetryFn;
use proc_macro2::Span;
use syn::visit_mut::VisitMut;
use syn::{Expr, LitStr, Type};

/// How each attempt runs: chosen once, here, from the keys and the fn's `async`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Mode {
    /// An async fn without `timeout`, `deadline` or `breaker`: the body, polled in scope.
    Plain,
    /// An async fn with a `breaker` alone: the breaker is asked before a plain attempt.
    BreakerOnly,
    /// An async fn with `timeout` or `deadline` (and maybe `breaker`): a guarded attempt.
    Guarded,
    /// An async fn with `hedge`: attempts side by side, run by `Call::hedge_next`.
    Hedged,
    /// A blocking fn without `breaker`.
    Blocking,
    /// A blocking fn with `breaker`.
    BlockingGuarded,
}

/// The policy's values, resolved (durations in nanoseconds). `None` or the default value
/// means "as `Policy::DEFAULT`", so that the expansion names only the keys written.
pub struct Plan {
    pub attempts: Option<u32>,
    pub backoff: Option<(BackoffKind, f64)>,
    pub base: Option<u64>,
    pub max: Option<u64>,
    pub jitter: Option<JitterKind>,
    pub timeout: Option<u64>,
    pub deadline: Option<u64>,
    pub hedge: Option<HedgeKind>,
    pub when: Option<Expr>,
    pub retry_after: Option<Expr>,
    pub breaker: Option<LitStr>,
    pub budget: Option<LitStr>,
    pub name: Option<LitStr>,
    pub krate: Option<syn::Path>,
    pub mode: Mode,
    /// The declared return type with every `impl Trait` replaced by `_`, for the annotations
    /// the expansion writes (a `let` cannot name `impl Trait`).
    pub ret: Type,
    /// Where a missing `From<GuardError>` is reported: the `E` of `Result<T, E>`.
    pub error_span: Span,
    /// The return type had an `impl Trait` (now `_`), which only the body's value infers.
    pub ret_infers: bool,
}

impl Plan {
    /// Resolves `args` against `item`, whose keys and return type `validate` has checked.
    pub fn new(args: Args, item: &RetryFn, ret: &Type) -> Plan {
        let is_async = item.sig.asyncness.is_some();
        let has_limit = args.timeout.is_some() || args.deadline.is_some();
        let mode = match (is_async, args.breaker.is_some(), has_limit) {
            (true, _, _) if args.hedge.is_some() => Mode::Hedged,
            (true, false, false) => Mode::Plain,
            (true, true, false) => Mode::BreakerOnly,
            (true, _, true) => Mode::Guarded,
            (false, false, _) => Mode::Blocking,
            (false, true, _) => Mode::BlockingGuarded,
        };
        let backoff = match (args.backoff.map(|b| b.value), args.factor.map(|f| f.value)) {
            (None | Some(BackoffKind::Exponential), Some(f)) if f != DEFAULT_FACTOR => {
                Some((BackoffKind::Exponential, f))
            }
            (Some(kind), _) if kind != BackoffKind::Exponential => Some((kind, DEFAULT_FACTOR)),
            _ => None,
        };
        let mut erased = ret.clone();
        let mut eraser = ImplTraitEraser { erased: false };
        eraser.visit_type_mut(&mut erased);
        Plan {
            attempts: args
                .attempts
                .map(|a| a.value)
                .filter(|&a| a != DEFAULT_ATTEMPTS),
            backoff,
            base: args.base.map(|b| b.value).filter(|&b| b != DEFAULT_BASE),
            max: args.max.map(|m| m.value).filter(|&m| m != DEFAULT_MAX),
            jitter: args
                .jitter
                .map(|j| j.value)
                .filter(|&j| j != JitterKind::Full),
            timeout: args.timeout.map(|t| t.value),
            deadline: args.deadline.map(|d| d.value),
            hedge: args.hedge.map(|h| h.value),
            when: args.when,
            retry_after: args.retry_after,
            breaker: args.breaker,
            budget: args.budget,
            name: args.name,
            krate: args.krate,
            mode,
            ret: erased,
            error_span: error_type_span(ret),
            ret_infers: eraser.erased,
        }
    }
}

/// Replaces `impl Trait` with `_` (as tracing-attributes does), so the type can annotate a
/// `let` and a turbofish; inference fills it from the body.
struct ImplTraitEraser {
    erased: bool,
}

impl VisitMut for ImplTraitEraser {
    fn visit_type_mut(&mut self, ty: &mut Type) {
        if let Type::ImplTrait(it) = ty {
            *ty = syn::parse_quote_spanned!(syn::spanned::Spanned::span(it)=> _);
            self.erased = true;
        } else {
            syn::visit_mut::visit_type_mut(self, ty);
        }
    }
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
