//! Parses the `#[retry(...)]` attribute into `Args`: one set-once slot per key, each value
//! checked for its kind, every mistake an error on the offending tokens. No code is emitted here.

use crate::duration;
use crate::suggest;
use proc_macro2::Span;
use syn::ext::IdentExt;
use syn::parse::{ParseStream, Parser};
use syn::spanned::Spanned as _;
use syn::{Expr, Ident, Lit, LitStr, Token};

/// Every key `#[retry]` accepts, in the order of the docs.
pub const KEYS: &[&str] = &[
    "attempts",
    "backoff",
    "base",
    "factor",
    "max",
    "jitter",
    "timeout",
    "deadline",
    "hedge",
    "when",
    "retry_after",
    "breaker",
    "budget",
    "name",
    "crate",
];

/// The defaults of the keys left out; the same as `retry_runtime::Policy::DEFAULT`.
pub const DEFAULT_ATTEMPTS: u32 = 3;
/// Growth of "exp".
pub const DEFAULT_FACTOR: f64 = 2.0;
/// First delay, in nanoseconds (100 ms).
pub const DEFAULT_BASE: u64 = 100_000_000;
/// Cap on any one delay, in nanoseconds (2 s).
pub const DEFAULT_MAX: u64 = 2_000_000_000;

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum BackoffKind {
    Exponential,
    Fixed,
    Linear,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum JitterKind {
    None,
    Full,
    Equal,
    Decorrelated,
}

/// When a hedged attempt starts (`hedge = "50ms"` or `hedge = "p95"`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum HedgeKind {
    /// After this many nanoseconds.
    After(u64),
    /// After the site's recent latency at this percentile, in tenths of a percent.
    Percentile(u16),
}

/// A value and the span of the tokens it came from.
#[derive(Clone, Debug)]
pub struct Spanned<T> {
    pub value: T,
    pub span: Span,
}

/// The attribute, as written.
#[derive(Default)]
pub struct Args {
    pub attempts: Option<Spanned<u32>>,
    pub backoff: Option<Spanned<BackoffKind>>,
    pub base: Option<Spanned<u64>>,
    pub factor: Option<Spanned<f64>>,
    pub max: Option<Spanned<u64>>,
    pub jitter: Option<Spanned<JitterKind>>,
    pub timeout: Option<Spanned<u64>>,
    pub deadline: Option<Spanned<u64>>,
    pub hedge: Option<Spanned<HedgeKind>>,
    pub when: Option<Expr>,
    pub retry_after: Option<Expr>,
    pub breaker: Option<LitStr>,
    pub budget: Option<LitStr>,
    pub name: Option<LitStr>,
    pub krate: Option<syn::Path>,
}

/// Parses the attribute's tokens. Returns what could be read and every error found, so
/// that one pass reports all mistakes.
pub fn parse(tokens: proc_macro2::TokenStream) -> (Args, Vec<syn::Error>) {
    let mut args = Args::default();
    let mut errors = Vec::new();
    let parser = |input: ParseStream| {
        let mut seen: Vec<String> = Vec::new();
        while !input.is_empty() {
            let key = Ident::parse_any(input)?;
            let value = if input.peek(Token![=]) {
                input.parse::<Token![=]>()?;
                Some(input.parse::<Expr>()?)
            } else {
                None
            };
            let name = key.to_string();
            if seen.contains(&name) {
                errors.push(syn::Error::new(
                    key.span(),
                    format!("`{name}` is given twice; keep one `{name} = …`"),
                ));
            } else {
                seen.push(name.clone());
                if let Err(e) = set(&mut args, &key, value) {
                    errors.push(e);
                }
            }
            if input.is_empty() {
                break;
            }
            input.parse::<Token![,]>()?;
        }
        Ok(())
    };
    if let Err(e) = parser.parse2(tokens) {
        errors.push(syn::Error::new(
            e.span(),
            format!(
                "{e}; #[retry] takes `key = value` pairs separated by commas, like #[retry(attempts = 3, backoff = \"exp\", max = \"2s\")]"
            ),
        ));
    }
    (args, errors)
}

fn set(args: &mut Args, key: &Ident, value: Option<Expr>) -> syn::Result<()> {
    let name = key.to_string();
    let Some(value) = value else {
        return match name.as_str() {
            "jitter" => {
                args.jitter = Some(Spanned {
                    value: JitterKind::Full,
                    span: key.span(),
                });
                Ok(())
            }
            _ if KEYS.contains(&name.as_str()) => Err(syn::Error::new(
                key.span(),
                format!("`{name}` needs a value: write {}", example(&name)),
            )),
            _ => Err(unknown_key(key)),
        };
    };
    match name.as_str() {
        "attempts" => {
            let n = int(&name, &value)?;
            if n == 0 {
                return Err(syn::Error::new(
                    value.span(),
                    "`attempts` counts every call, the first included, so it must be at least 1: write `attempts = 1` for no retries, or `attempts = 3`",
                ));
            }
            args.attempts = Some(Spanned {
                value: n,
                span: value.span(),
            });
        }
        "backoff" => {
            let s = string(&name, &value)?;
            let kind = match s.value().as_str() {
                "exp" | "exponential" => BackoffKind::Exponential,
                "fixed" | "constant" => BackoffKind::Fixed,
                "linear" => BackoffKind::Linear,
                other => {
                    return Err(syn::Error::new(
                        s.span(),
                        format!(
                            "unknown backoff {other:?}; write backoff = \"exp\", \"fixed\" or \"linear\"{}",
                            did_you_mean(other, &["exp", "fixed", "linear"])
                        ),
                    ))
                }
            };
            args.backoff = Some(Spanned {
                value: kind,
                span: s.span(),
            });
        }
        "jitter" => {
            let kind = match &value {
                Expr::Lit(l) => match &l.lit {
                    Lit::Bool(b) if b.value() => JitterKind::Full,
                    Lit::Bool(_) => JitterKind::None,
                    Lit::Str(s) => match s.value().as_str() {
                        "full" => JitterKind::Full,
                        "equal" => JitterKind::Equal,
                        "decorrelated" => JitterKind::Decorrelated,
                        "none" => JitterKind::None,
                        other => {
                            return Err(syn::Error::new(
                                s.span(),
                                format!(
                                    "unknown jitter {other:?}; write jitter = \"full\", \"equal\", \"decorrelated\" or \"none\" (or just `jitter` for full){}",
                                    did_you_mean(other, &["full", "equal", "decorrelated", "none"])
                                ),
                            ))
                        }
                    },
                    _ => return Err(expected_string(&name, &value)),
                },
                _ => return Err(expected_string(&name, &value)),
            };
            args.jitter = Some(Spanned {
                value: kind,
                span: value.span(),
            });
        }
        "base" | "max" | "timeout" | "deadline" => {
            let s = string(&name, &value)?;
            let nanos = duration::parse(&s.value())
                .map_err(|msg| syn::Error::new(s.span(), format!("`{name}`: {msg}")))?;
            if nanos == 0 && name == "max" {
                return Err(syn::Error::new(
                    s.span(),
                    "`max` caps each pause between attempts, so `max = \"0ms\"` would retry at once, with no pause, every time (a burst on a struggling server); write a positive cap, like `max = \"2s\"`, or, if back-to-back retries are really meant, leave out `max` and write `base = \"0ms\"`",
                ));
            }
            if nanos == 0 && (name == "timeout" || name == "deadline") {
                return Err(syn::Error::new(
                    s.span(),
                    format!("`{name}` of zero would end every call at once; write a positive duration, like {}", example(&name)),
                ));
            }
            let slot = Some(Spanned {
                value: nanos,
                span: s.span(),
            });
            match name.as_str() {
                "base" => args.base = slot,
                "max" => args.max = slot,
                "timeout" => args.timeout = slot,
                _ => args.deadline = slot,
            }
        }
        "hedge" => {
            let s = string(&name, &value)?;
            let text = s.value();
            let kind = match text.trim().strip_prefix('p') {
                Some(p) => HedgeKind::Percentile(crate::percentile::parse(p).map_err(|msg| {
                    syn::Error::new(s.span(), format!("`hedge = {text:?}`: {msg}"))
                })?),
                None => {
                    let nanos = duration::parse(&text).map_err(|msg| {
                        syn::Error::new(
                            s.span(),
                            format!("`hedge`: {msg}; or a percentile of the site's latency, like `hedge = \"p95\"`"),
                        )
                    })?;
                    if nanos == 0 {
                        return Err(syn::Error::new(
                            s.span(),
                            "`hedge = \"0ms\"` would start every attempt at once (each call multiplied by `attempts`); write the delay after which a slow attempt gets a companion, like `hedge = \"50ms\"`, or `hedge = \"p95\"`",
                        ));
                    }
                    HedgeKind::After(nanos)
                }
            };
            args.hedge = Some(Spanned {
                value: kind,
                span: s.span(),
            });
        }
        "factor" => {
            let f = match &value {
                Expr::Lit(l) => match &l.lit {
                    Lit::Int(i) => i.base10_parse::<f64>()?,
                    Lit::Float(f) => f.base10_parse::<f64>()?,
                    _ => return Err(expected_number(&name, &value)),
                },
                // Negative: below 1, like 0.5.
                Expr::Unary(u) if matches!(u.op, syn::UnOp::Neg(_)) && is_number(&u.expr) => -1.0,
                _ => return Err(expected_number(&name, &value)),
            };
            if f.is_infinite() {
                return Err(syn::Error::new(
                    value.span(),
                    "`factor` is too large to be a number: it is infinite as an f64 (the largest is about 1.8e308), so every delay would jump to `max`; write a growth like `factor = 2` or `factor = 1.5`, or `backoff = \"fixed\"` for delays of `max` from the start",
                ));
            }
            if f < 1.0 {
                return Err(syn::Error::new(
                    value.span(),
                    "`factor` below 1 would shrink the delays; write a growth of at least 1, like `factor = 2` or `factor = 1.5`",
                ));
            }
            args.factor = Some(Spanned {
                value: f,
                span: value.span(),
            });
        }
        "when" | "retry_after" => {
            match &value {
                // A closure's argument types are checked against the fn's error in `validate`.
                Expr::Path(_) | Expr::Closure(_) => {}
                Expr::Lit(l) if matches!(l.lit, Lit::Str(_)) => {
                    let Lit::Str(s) = &l.lit else { unreachable!() };
                    return Err(syn::Error::new(
                        value.span(),
                        format!(
                            "`{name}` takes a path to a fn, not a string: write `{name} = {}`",
                            s.value()
                        ),
                    ));
                }
                _ => {
                    return Err(syn::Error::new(
                        value.span(),
                        format!("`{name}` takes a path to a fn: write {}", example(&name)),
                    ))
                }
            }
            if name == "when" {
                args.when = Some(value);
            } else {
                args.retry_after = Some(value);
            }
        }
        "breaker" | "budget" | "name" => {
            let s = string(&name, &value)?;
            if s.value().trim().is_empty() {
                return Err(syn::Error::new(
                    s.span(),
                    format!("`{name}` cannot be empty: write {}", example(&name)),
                ));
            }
            match name.as_str() {
                "breaker" => args.breaker = Some(s),
                "budget" => args.budget = Some(s),
                _ => args.name = Some(s),
            }
        }
        "crate" => {
            let path = match &value {
                Expr::Lit(l) => match &l.lit {
                    Lit::Str(s) => s.parse::<syn::Path>().map_err(|_| {
                        syn::Error::new(s.span(), "`crate` takes the path of the stormguard crate, like `crate = \"::stormguard\"`")
                    })?,
                    _ => return Err(expected_string(&name, &value)),
                },
                Expr::Path(p) => p.path.clone(),
                _ => return Err(expected_string(&name, &value)),
            };
            args.krate = Some(path);
        }
        _ => return Err(unknown_key(key)),
    }
    Ok(())
}

fn unknown_key(key: &Ident) -> syn::Error {
    let name = key.to_string();
    let hint = match suggest::nearest(&name, KEYS) {
        Some(near) => format!("did you mean `{near}`? "),
        None => String::new(),
    };
    syn::Error::new(
        key.span(),
        format!(
            "unknown #[retry] key `{name}`; {hint}the keys are {}",
            suggest::one_of(KEYS)
        ),
    )
}

fn did_you_mean(word: &str, options: &[&str]) -> String {
    match suggest::nearest(word, options) {
        Some(near) => format!(" (did you mean \"{near}\"?)"),
        None => String::new(),
    }
}

/// How to write `key` correctly.
pub fn example(key: &str) -> &'static str {
    match key {
        "attempts" => "`attempts = 3`",
        "backoff" => "`backoff = \"exp\"`",
        "base" => "`base = \"100ms\"`",
        "factor" => "`factor = 2`",
        "max" => "`max = \"2s\"`",
        "jitter" => "`jitter = \"full\"`",
        "timeout" => "`timeout = \"500ms\"`",
        "deadline" => "`deadline = \"5s\"`",
        "hedge" => "`hedge = \"p95\"` or `hedge = \"50ms\"`",
        "when" => "`when = is_transient`",
        "retry_after" => "`retry_after = server_hint`",
        "breaker" => "`breaker = \"payments\"`",
        "budget" => "`budget = \"payments\"`",
        "name" => "`name = \"fetch_invoice\"`",
        "crate" => "`crate = \"::stormguard\"`",
        _ => "`key = value`",
    }
}

/// A whole number that fits in a u32 (only `attempts` takes one).
fn int(key: &str, value: &Expr) -> syn::Result<u32> {
    match value {
        Expr::Lit(l) => match &l.lit {
            Lit::Int(i) => i.base10_digits().parse::<u32>().map_err(|_| {
                syn::Error::new(
                    value.span(),
                    format!(
                        "`{key} = {}` is too large: `{key}` is at most {} (a u32); write a realistic count, like {}",
                        i.base10_digits(),
                        u32::MAX,
                        example(key)
                    ),
                )
            }),
            Lit::Float(_) => Err(syn::Error::new(
                value.span(),
                format!("`{key}` takes a whole number: write {}", example(key)),
            )),
            _ => Err(expected_number(key, value)),
        },
        Expr::Unary(u) if matches!(u.op, syn::UnOp::Neg(_)) && is_number(&u.expr) => {
            Err(syn::Error::new(
                value.span(),
                format!(
                    "`{key}` cannot be negative: it counts every call, the first included; write {}",
                    example(key)
                ),
            ))
        }
        _ => Err(expected_number(key, value)),
    }
}

fn is_number(expr: &Expr) -> bool {
    matches!(expr, Expr::Lit(l) if matches!(l.lit, Lit::Int(_) | Lit::Float(_)))
}

fn string(key: &str, value: &Expr) -> syn::Result<LitStr> {
    match value {
        Expr::Lit(l) => match &l.lit {
            Lit::Str(s) => Ok(s.clone()),
            _ => Err(expected_string(key, value)),
        },
        _ => Err(expected_string(key, value)),
    }
}

fn expected_number(key: &str, value: &Expr) -> syn::Error {
    let written = match value {
        Expr::Lit(l) => match &l.lit {
            Lit::Str(s) => format!(" (not the string {:?})", s.value()),
            _ => String::new(),
        },
        _ => String::new(),
    };
    syn::Error::new(
        value.span(),
        format!("`{key}` takes a number{written}: write {}", example(key)),
    )
}

fn expected_string(key: &str, value: &Expr) -> syn::Error {
    let is_duration = matches!(key, "base" | "max" | "timeout" | "deadline" | "hedge");
    if key == "jitter" && (is_number(value) || matches!(value, Expr::Unary(_))) {
        return syn::Error::new(
            value.span(),
            "`jitter` takes a kind, not a number: write `jitter` (full jitter), `jitter = \"equal\"`, `jitter = \"decorrelated\"`, or `jitter = false` for none",
        );
    }
    let kind = match value {
        Expr::Lit(l) => match &l.lit {
            Lit::Int(_) | Lit::Float(_) if is_duration => {
                " (not a bare number: durations need a unit)"
            }
            Lit::Int(_) | Lit::Float(_) => " (in quotes, not a number)",
            _ => "",
        },
        Expr::Path(_) => " (in quotes)",
        _ => "",
    };
    syn::Error::new(
        value.span(),
        format!("`{key}` takes a string{kind}: write {}", example(key)),
    )
}
