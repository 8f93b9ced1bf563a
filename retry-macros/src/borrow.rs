//! Returned borrows of a `&mut` argument (`async fn read_line(&mut self) -> Result<&str, E>`):
//! a shape the retry loop cannot compile, found in the signature and reported as our own error.

// Each attempt borrows the `&mut` argument again. A result that borrows from it must keep its
// attempt's borrow alive until the fn returns, and the borrow checker cannot see that the loop
// stops there (NLL "problem case #3"): rustc would say E0499 or E0524, "in different iterations
// of loop", about a loop and closures the user never wrote.

use proc_macro2::TokenStream;
use quote::ToTokens;
use syn::visit_mut::VisitMut;
use syn::{FnArg, GenericParam, Lifetime, Pat, ReceiverKind, Signature, Type, WherePredicate};

/// The error for a return type that borrows from a `&mut` argument, if it does.
pub fn check(sig: &Signature) -> Option<syn::Error> {
    let inputs = Inputs::of(sig);
    let mut output = match &sig.output {
        syn::ReturnType::Type(_, ty) => (**ty).clone(),
        syn::ReturnType::Default => return None,
    };
    let mut found = Lifetimes::default();
    found.visit_type_mut(&mut output);
    for used in &found.uses {
        let source = match &used.lifetime {
            // An elided lifetime is `self`'s, else the only one among the arguments (else
            // rustc reports the signature itself, E0106).
            None => match (&inputs.receiver, inputs.lifetimes.as_slice()) {
                (Some(receiver), _) => receiver.clone(),
                (None, [only]) => only.clone(),
                _ => continue,
            },
            Some(named) => match inputs.named(named) {
                Some(input) => input,
                None => continue,
            },
        };
        if source.mutable || inputs.outlived_by_a_mut(&used.lifetime) {
            return Some(error(used, &source.argument));
        }
    }
    None
}

/// One lifetime position among the arguments: which argument, named or elided, and whether it
/// is a `&mut`'s.
#[derive(Clone)]
struct Input {
    argument: String,
    lifetime: Option<String>,
    mutable: bool,
}

struct Inputs {
    /// `&self`, `&mut self`, `self: &mut Self`, `self: Pin<&mut Self>`: the receiver's
    /// reference, whose lifetime elided output lifetimes take.
    receiver: Option<Input>,
    /// Every lifetime position among the arguments, the receiver's included.
    lifetimes: Vec<Input>,
    /// Named lifetimes a `&'m mut` outlives (`'m: 'r`): a borrow of `'r` may be of the `&mut`.
    outlived: Vec<String>,
}

impl Inputs {
    fn of(sig: &Signature) -> Inputs {
        let mut receiver = None;
        let mut lifetimes = Vec::new();
        for arg in &sig.inputs {
            match arg {
                FnArg::Receiver(r) => match &r.kind {
                    ReceiverKind::Reference(_, lifetime, mutability) => {
                        let input = Input {
                            argument: "self".to_owned(),
                            lifetime: lifetime.as_ref().map(|l| l.ident.to_string()),
                            mutable: mutability.is_some(),
                        };
                        receiver = Some(input.clone());
                        lifetimes.push(input);
                    }
                    ReceiverKind::Typed(_, ty) => {
                        let found = positions("self", ty);
                        receiver = found.iter().find(|i| i.mutable).or(found.first()).cloned();
                        lifetimes.extend(found);
                    }
                    _ => {}
                },
                FnArg::Typed(t) => {
                    let name = match &*t.pat {
                        Pat::Ident(p) => p.ident.to_string(),
                        _ => "this argument".to_owned(),
                    };
                    lifetimes.extend(positions(&name, &t.ty));
                }
            }
        }
        let mut outlives: Vec<(String, String)> = Vec::new();
        for param in &sig.generics.params {
            if let GenericParam::Lifetime(p) = param {
                for bound in &p.bounds {
                    outlives.push((p.lifetime.ident.to_string(), bound.ident.to_string()));
                }
            }
        }
        if let Some(clause) = &sig.generics.where_clause {
            for predicate in &clause.predicates {
                if let WherePredicate::Lifetime(p) = predicate {
                    for bound in &p.bounds {
                        outlives.push((p.lifetime.ident.to_string(), bound.ident.to_string()));
                    }
                }
            }
        }
        let mutable: Vec<&String> = lifetimes
            .iter()
            .filter(|i| i.mutable)
            .filter_map(|i| i.lifetime.as_ref())
            .collect();
        let outlived = outlives
            .into_iter()
            .filter(|(longer, _)| mutable.contains(&longer))
            .map(|(_, shorter)| shorter)
            .collect();
        Inputs {
            receiver,
            lifetimes,
            outlived,
        }
    }

    /// The argument a named lifetime comes from: a `&'a mut` one first.
    fn named(&self, name: &str) -> Option<Input> {
        let mut matching = self
            .lifetimes
            .iter()
            .filter(|i| i.lifetime.as_deref() == Some(name));
        let first = matching.clone().next().cloned();
        matching.find(|i| i.mutable).cloned().or(first).or_else(|| {
            self.outlived.iter().any(|o| o == name).then(|| Input {
                argument: "the `&mut` argument".to_owned(),
                lifetime: Some(name.to_owned()),
                mutable: true,
            })
        })
    }

    fn outlived_by_a_mut(&self, lifetime: &Option<String>) -> bool {
        lifetime
            .as_ref()
            .is_some_and(|l| self.outlived.iter().any(|o| o == l))
    }
}

/// The lifetime positions in an argument's type: its references (`&T`, `&'a mut T`) and the
/// lifetimes in its paths (`Reader<'a>`, `Reader<'_>`).
fn positions(argument: &str, ty: &Type) -> Vec<Input> {
    let mut found = Lifetimes::default();
    found.visit_type_mut(&mut ty.clone());
    found
        .uses
        .into_iter()
        .map(|u| Input {
            argument: argument.to_owned(),
            lifetime: u.lifetime,
            mutable: u.mutable,
        })
        .collect()
}

/// A lifetime written or elided in a type: `None` for `&T` and `'_`.
struct Use {
    lifetime: Option<String>,
    mutable: bool,
    /// The reference or lifetime as written, for the error's span.
    tokens: TokenStream,
    /// For a reference: what to return instead (`String` for `&str`), and the same borrow
    /// with a lifetime of its own (`&'static str`).
    owned: Option<(String, String)>,
}

/// Collects the lifetimes of a type, `'static` left out, and skipping those of `fn(&T)`,
/// `Fn(&T)` and `for<'a>`, which belong to their own signature, not to the fn's.
#[derive(Default)]
struct Lifetimes {
    uses: Vec<Use>,
}

impl VisitMut for Lifetimes {
    fn visit_type_reference_mut(&mut self, r: &mut syn::TypeReference) {
        let lifetime = r.lifetime.as_ref().map(|l| l.ident.to_string());
        if lifetime.as_deref() != Some("static") {
            self.uses.push(Use {
                lifetime: lifetime.filter(|l| l != "_"),
                mutable: r.mutability.is_some(),
                tokens: r.to_token_stream(),
                owned: Some(owned(&r.elem)),
            });
        }
        self.visit_type_mut(&mut r.elem);
    }

    fn visit_lifetime_mut(&mut self, l: &mut Lifetime) {
        let name = l.ident.to_string();
        if name != "static" {
            self.uses.push(Use {
                lifetime: (name != "_").then_some(name),
                mutable: false,
                tokens: l.to_token_stream(),
                owned: None,
            });
        }
    }

    fn visit_type_fn_ptr_mut(&mut self, _: &mut syn::TypeFnPtr) {}

    fn visit_parenthesized_generic_arguments_mut(
        &mut self,
        _: &mut syn::ParenthesizedGenericArguments,
    ) {
    }

    fn visit_bound_lifetimes_mut(&mut self, _: &mut syn::BoundLifetimes) {}
}

/// The owned type to suggest for `&elem`, and `&'static elem`.
fn owned(elem: &Type) -> (String, String) {
    let text = |t: &Type| t.to_token_stream().to_string();
    let owned = match elem {
        Type::Path(p) if p.path.is_ident("str") => "String".to_owned(),
        Type::Path(p) if p.path.is_ident("Path") => "PathBuf".to_owned(),
        Type::Slice(s) => format!("Vec<{}>", text(&s.elem)),
        other => format!("{}, cloned", text(other)),
    };
    (owned, format!("&'static {}", text(elem)))
}

fn error(used: &Use, argument: &str) -> syn::Error {
    let (owned, own_lifetime) = match &used.owned {
        Some((owned, with_static)) => (format!(" (here `{owned}`)"), format!("`{with_static}`")),
        None => (String::new(), "`'static`".to_owned()),
    };
    syn::Error::new_spanned(
        &used.tokens,
        format!(
            "#[retry] cannot return a borrow of `{argument}`, which the fn takes by `&mut`: each attempt borrows `{argument}` anew, and the borrow checker cannot let one attempt's result keep its borrow while the loop takes the next (rustc would report E0499/E0524 about a loop and closures you did not write); return owned data instead{owned}, or put #[retry] on a helper that returns owned data and borrow from `{argument}` after it returns; if the result does not borrow from `{argument}`, say so with a lifetime of its own ({own_lifetime}, or the lifetime of the argument it borrows from)"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::check;

    fn flagged(sig: &str) -> bool {
        let sig: syn::Signature = syn::parse_str(sig).expect(sig);
        check(&sig).is_some()
    }

    #[test]
    fn borrows_of_a_mut_argument_are_flagged() {
        for sig in [
            "async fn read_line(&mut self) -> Result<&str, E>",
            "async fn read_line(&mut self, n: usize) -> Result<Line<'_>, E>",
            "async fn read_line<'a>(&'a mut self) -> Result<&'a str, E>",
            "async fn read_line(self: &mut Self) -> Result<&[u8], E>",
            "async fn read_line(self: Pin<&mut Self>) -> Result<&[u8], E>",
            "fn fill<'a>(buf: &'a mut Vec<u8>) -> Result<&'a [u8], E>",
            "fn fill(buf: &mut Vec<u8>) -> Result<&[u8], E>",
            "fn fill<'a: 'b, 'b>(buf: &'a mut Vec<u8>) -> Result<&'b [u8], E>",
            "fn fill<'a, 'b>(buf: &'a mut Vec<u8>) -> Result<&'b [u8], E> where 'a: 'b",
            "async fn it(&mut self) -> Result<Box<dyn Iterator<Item = u8> + '_>, E>",
        ] {
            assert!(flagged(sig), "{sig}");
        }
    }

    #[test]
    fn other_borrows_and_owned_results_are_not() {
        for sig in [
            "async fn name(&self) -> Result<&str, E>",
            "async fn name(&self, out: &mut Vec<u8>) -> Result<&str, E>",
            "async fn count(&mut self) -> Result<u32, E>",
            "async fn label(&mut self) -> Result<&'static str, E>",
            "async fn next_word(&mut self) -> Result<&'t str, E>",
            "async fn first<'t>(seen: &mut Vec<u32>, text: &'t str) -> Result<&'t str, E>",
            "async fn drain(&mut self) -> Result<impl Iterator<Item = u8>, E>",
            "async fn pick(&mut self) -> Result<fn(&str) -> bool, E>",
            "async fn pick(&mut self) -> Result<Box<dyn Fn(&str) -> bool>, E>",
            "async fn pick(&mut self) -> Result<Box<dyn for<'a> Tr<'a>>, E>",
            "fn longest<'a, 'b: 'a>(x: &'a str, y: &'b str) -> Result<&'a str, E>",
            "fn by_value(self) -> Result<String, E>",
        ] {
            assert!(!flagged(sig), "{sig}");
        }
    }
}
