//! Compile-fail and pass cases of `#[retry]`, `breakers!` and `budgets!`: every mistake is an
//! error on the offending tokens that says what to write instead; every fn shape compiles and runs.
//! Bless with `TRYBUILD=overwrite cargo test --test ui` and review the `.stderr` diff.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/fail/*.rs");
    t.pass("tests/ui/pass/*.rs");
}
