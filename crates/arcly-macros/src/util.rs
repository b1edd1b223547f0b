//! Helpers shared by both macros: option parsing with spelled-out fixes.

use proc_macro2::{Span, TokenStream};
use quote::quote;
use syn::meta::ParseNestedMeta;
use syn::{Ident, LitStr, Path, Token};

/// The path generated code names everything through, unless overridden with
/// `crate = path::to::arcly_stream`.
pub(crate) fn private_root(krate: Option<&Path>) -> TokenStream {
    match krate {
        Some(p) => quote!(#p::__private),
        None => quote!(::arcly_stream::__private),
    }
}

/// The name of a nested option (`on_frame` in `#[media_sink(on_frame = x)]`).
pub(crate) fn key_of(meta: &ParseNestedMeta) -> String {
    match meta.path.get_ident() {
        Some(i) => i.to_string(),
        None => {
            let p = &meta.path;
            quote!(#p).to_string()
        }
    }
    .replace(' ', "")
}

/// Edit distance with adjacent transpositions (optimal string alignment),
/// for "did you mean".
fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = v;
        }
    }
    d[a.len()][b.len()]
}

/// The closest of `known` to `word`, if it is close enough to be a typo.
pub(crate) fn closest<'a>(word: &str, known: &[&'a str]) -> Option<&'a str> {
    let lower = word.to_ascii_lowercase();
    known
        .iter()
        .map(|k| (distance(&lower, &k.to_ascii_lowercase()), *k))
        .filter(|(d, k)| *d <= (k.len() / 3).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// `" did you mean `x`?"` or nothing.
pub(crate) fn did_you_mean(word: &str, known: &[&str]) -> String {
    closest(word, known)
        .map(|k| format!("; did you mean `{k}`?"))
        .unwrap_or_default()
}

/// `a, b or c` with backticks.
pub(crate) fn one_of(known: &[&str]) -> String {
    let quoted: Vec<String> = known.iter().map(|k| format!("`{k}`")).collect();
    match quoted.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        _ => quoted.join(""),
    }
}

/// Parse `key = method_name`, explaining the quoted and missing-value forms.
pub(crate) fn method_value(meta: &ParseNestedMeta, key: &str, example: &str) -> syn::Result<Ident> {
    if !meta.input.peek(Token![=]) {
        return Err(meta.error(format!(
            "`{key}` names a method of this type: write `{key} = {example}`"
        )));
    }
    let value = meta.value()?;
    if value.peek(LitStr) {
        let lit: LitStr = value.parse()?;
        return Err(syn::Error::new_spanned(
            &lit,
            format!(
                "write the method name without quotes: `{key} = {}`",
                sanitize(&lit.value(), example)
            ),
        ));
    }
    let path: Path = value.parse()?;
    match path.get_ident() {
        Some(i) => Ok(i.clone()),
        None => {
            let last = path
                .segments
                .last()
                .map(|s| s.ident.to_string())
                .unwrap_or_else(|| example.to_string());
            Err(syn::Error::new_spanned(
                &path,
                format!(
                    "name a method of this type, not a path: `{key} = {last}` (an inherent `async fn {last}(&mut self, ...)`)"
                ),
            ))
        }
    }
}

/// A string the user quoted, if it is a plausible identifier; else the example.
fn sanitize(s: &str, fallback: &str) -> String {
    if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        s.to_string()
    } else {
        fallback.to_string()
    }
}

/// Store `value` in `slot`, refusing a second occurrence at its own tokens.
pub(crate) fn set_once<T>(
    slot: &mut Option<T>,
    value: T,
    meta: &ParseNestedMeta,
    key: &str,
) -> syn::Result<()> {
    if slot.is_some() {
        return Err(syn::Error::new_spanned(
            &meta.path,
            format!("`{key}` is given twice; keep one"),
        ));
    }
    *slot = Some(value);
    Ok(())
}

/// Parse `crate = path::to::arcly_stream`.
pub(crate) fn crate_value(meta: &ParseNestedMeta) -> syn::Result<Path> {
    if !meta.input.peek(Token![=]) {
        return Err(meta.error(
            "`crate` names the arcly-stream facade when it is renamed: write `crate = my_arcly`",
        ));
    }
    let value = meta.value()?;
    if value.peek(LitStr) {
        let lit: LitStr = value.parse()?;
        return lit.parse();
    }
    value.parse()
}

/// An error at the call site (the attribute itself).
pub(crate) fn error_here(msg: impl std::fmt::Display) -> syn::Error {
    syn::Error::new(Span::call_site(), msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions_catch_typos_only() {
        let known = ["on_frame", "on_start", "video"];
        assert_eq!(closest("on_fram", &known), Some("on_frame"));
        assert_eq!(closest("vidoe", &known), Some("video"));
        assert_eq!(closest("totally_else", &known), None);
        assert_eq!(one_of(&["a", "b", "c"]), "`a`, `b` or `c`");
        assert_eq!(one_of(&["a"]), "`a`");
    }
}
