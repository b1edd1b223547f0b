//! Compile-and-run cases for both macros, and the errors mistakes produce.
//! Regenerate the expected `.stderr` with `TRYBUILD=overwrite cargo test -p arcly-macros --test ui`
//! and review the diff.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.pass("tests/ui/pass/*.rs");
    t.compile_fail("tests/ui/fail/*.rs");
}
