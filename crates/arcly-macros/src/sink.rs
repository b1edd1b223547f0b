//! `#[derive(MediaSink)]`.

use crate::util::{
    crate_value, did_you_mean, key_of, method_value, one_of, private_root, set_once,
};
use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned, ToTokens};
use syn::spanned::Spanned;
use syn::{Data, DeriveInput, Fields, GenericParam, Ident, LitStr, Member, Path, Token, Type};

/// Struct-level options.
const OPTIONS: &[&str] = &[
    "on_frame",
    "video",
    "audio",
    "data",
    "config",
    "end_of_stream",
    "on_start",
    "on_end",
    "on_error",
    "filter",
    "codecs",
    "crate",
];

/// Words people reach for, and the option they mean.
const ALIASES: &[(&str, &str)] = &[
    ("frame", "on_frame"),
    ("handler", "on_frame"),
    ("handle", "on_frame"),
    ("start", "on_start"),
    ("end", "on_end"),
    ("finish", "on_end"),
    ("error", "on_error"),
    ("eos", "end_of_stream"),
    ("kind", "filter"),
    ("kinds", "filter"),
    ("only", "filter"),
    ("codec", "codecs"),
];

/// The frame kinds `filter(...)` accepts.
const KINDS: &[&str] = &["video", "audio", "data"];

/// `CodecId` variants `codecs(...)` accepts by name.
const CODECS: &[&str] = &[
    "H264", "H265", "Av1", "Vp9", "Vvc", "Aac", "Opus", "Mp3", "Amf0Data",
];

/// Other names of the codecs above.
const CODEC_ALIASES: &[(&str, &str)] = &[
    ("avc", "H264"),
    ("hevc", "H265"),
    ("h266", "Vvc"),
    ("vp09", "Vp9"),
    ("av01", "Av1"),
    ("amf0", "Amf0Data"),
    ("mp4a", "Aac"),
];

/// The trait's own method names: a handler of the same name would resolve to
/// the trait method when no inherent one exists, and recurse forever.
const TRAIT_METHODS: &[&str] = &["on_frame", "on_start", "on_end", "on_error"];

enum CodecSel {
    Variant(Ident),
    FourCc(LitStr),
}

#[derive(Default)]
struct Options {
    krate: Option<Path>,
    on_frame: Option<Ident>,
    video: Option<Ident>,
    audio: Option<Ident>,
    data: Option<Ident>,
    config: Option<Ident>,
    end_of_stream: Option<Ident>,
    on_start: Option<Ident>,
    on_end: Option<Ident>,
    on_error: Option<Ident>,
    filter: Option<Vec<Ident>>,
    codecs: Option<Vec<CodecSel>>,
}

/// The field marked `#[media_sink(delegate)]`.
struct Delegate {
    member: Member,
    ty: Type,
}

pub(crate) fn derive(input: DeriveInput) -> syn::Result<TokenStream> {
    let fields = match &input.data {
        Data::Struct(s) => &s.fields,
        Data::Enum(e) => {
            return Err(syn::Error::new_spanned(
                e.enum_token,
                "derive(MediaSink) works on structs: hold the state in a struct, or implement `MediaSink` by hand for an enum",
            ))
        }
        Data::Union(u) => {
            return Err(syn::Error::new_spanned(
                u.union_token,
                "derive(MediaSink) works on structs, not unions",
            ))
        }
    };
    let mut errors: Option<syn::Error> = None;
    let push = |errors: &mut Option<syn::Error>, e: syn::Error| match errors {
        Some(all) => all.combine(e),
        None => *errors = Some(e),
    };

    let mut opts = Options::default();
    for attr in input
        .attrs
        .iter()
        .filter(|a| a.path().is_ident("media_sink"))
    {
        if let Err(e) = attr.parse_nested_meta(|meta| parse_option(&mut opts, meta)) {
            push(&mut errors, e);
        }
    }
    let delegate = match find_delegate(fields) {
        Ok(d) => d,
        Err(e) => {
            push(&mut errors, e);
            None
        }
    };
    if errors.is_none() {
        // Only once the options parsed: otherwise this repeats their error.
        if let Err(e) = check(&input.ident, &opts, delegate.is_some()) {
            push(&mut errors, e);
        }
    }
    if let Some(e) = errors {
        return Err(e);
    }
    Ok(expand(&input, &opts, delegate.as_ref()))
}

fn parse_option(opts: &mut Options, meta: syn::meta::ParseNestedMeta) -> syn::Result<()> {
    let key = key_of(&meta);
    let slot = match key.as_str() {
        "on_frame" => &mut opts.on_frame,
        "video" => &mut opts.video,
        "audio" => &mut opts.audio,
        "data" => &mut opts.data,
        "config" => &mut opts.config,
        "end_of_stream" => &mut opts.end_of_stream,
        "on_start" => &mut opts.on_start,
        "on_end" => &mut opts.on_end,
        "on_error" => &mut opts.on_error,
        "filter" => {
            let kinds = parse_kinds(&meta)?;
            return set_once(&mut opts.filter, kinds, &meta, "filter");
        }
        "codecs" => {
            let codecs = parse_codecs(&meta)?;
            return set_once(&mut opts.codecs, codecs, &meta, "codecs");
        }
        "crate" => {
            let p = crate_value(&meta)?;
            return set_once(&mut opts.krate, p, &meta, "crate");
        }
        "delegate" => {
            return Err(meta.error(
                "`delegate` goes on the field that holds the inner sink: `#[media_sink(delegate)] inner: MySink`",
            ))
        }
        other => {
            let hint = match ALIASES.iter().find(|(a, _)| *a == other) {
                Some((_, to)) => format!("; write `{to}`"),
                None => did_you_mean(other, OPTIONS),
            };
            return Err(meta.error(format!(
                "unknown `media_sink` option `{other}`{hint} (options: {})",
                one_of(OPTIONS)
            )));
        }
    };
    let example = match key.as_str() {
        "on_frame" => "handle_frame".to_string(),
        "on_start" | "on_end" | "on_error" => key.replacen("on_", "", 1),
        k => format!("on_{k}"),
    };
    let method = method_value(&meta, &key, &example)?;
    if TRAIT_METHODS.contains(&method.to_string().as_str()) {
        return Err(syn::Error::new_spanned(
            &method,
            format!(
                "`{method}` is the MediaSink method being generated: give your handler another name, e.g. `{key} = {example}`"
            ),
        ));
    }
    set_once(slot, method, &meta, &key)
}

fn parse_kinds(meta: &syn::meta::ParseNestedMeta) -> syn::Result<Vec<Ident>> {
    let mut kinds: Vec<Ident> = Vec::new();
    if !meta.input.peek(syn::token::Paren) {
        return Err(meta.error(
            "`filter` lists frame kinds to keep: write `filter(video)` or `filter(video, audio)`",
        ));
    }
    meta.parse_nested_meta(|k| {
        let word = key_of(&k);
        if !KINDS.contains(&word.as_str()) {
            let hint = if CODECS.iter().any(|c| c.eq_ignore_ascii_case(&word)) {
                format!("; `{word}` is a codec: write `codecs({word})`")
            } else {
                did_you_mean(&word, KINDS)
            };
            return Err(k.error(format!(
                "unknown frame kind `{word}`{hint} (kinds: {})",
                one_of(KINDS)
            )));
        }
        if kinds.iter().any(|i| *i == word) {
            return Err(k.error(format!("`{word}` is listed twice")));
        }
        kinds.push(Ident::new(&word, k.path.span()));
        Ok(())
    })?;
    if kinds.is_empty() {
        return Err(meta.error(
            "`filter()` keeps nothing: name at least one of `video`, `audio`, `data`, or remove it",
        ));
    }
    Ok(kinds)
}

fn parse_codecs(meta: &syn::meta::ParseNestedMeta) -> syn::Result<Vec<CodecSel>> {
    if !meta.input.peek(syn::token::Paren) {
        return Err(meta.error("`codecs` lists the codecs to keep: write `codecs(H264, Aac)`"));
    }
    let content;
    syn::parenthesized!(content in meta.input);
    let mut out = Vec::new();
    while !content.is_empty() {
        if content.peek(LitStr) {
            let lit: LitStr = content.parse()?;
            let v = lit.value();
            if v.len() != 4 || !v.is_ascii() {
                return Err(syn::Error::new_spanned(
                    &lit,
                    "a codec given as a string is a four-character code, like \"avc1\"; or name a CodecId variant: `H264`",
                ));
            }
            out.push(CodecSel::FourCc(lit));
        } else {
            let ident: Ident = content.parse()?;
            let word = ident.to_string();
            if !CODECS.contains(&word.as_str()) {
                let fix = CODECS
                    .iter()
                    .find(|c| c.eq_ignore_ascii_case(&word))
                    .copied()
                    .or_else(|| {
                        CODEC_ALIASES
                            .iter()
                            .find(|(a, _)| a.eq_ignore_ascii_case(&word))
                            .map(|(_, c)| *c)
                    });
                let hint = match fix {
                    Some(c) => format!("; write `{c}`"),
                    None if KINDS.contains(&word.as_str()) => {
                        format!("; `{word}` is a frame kind: write `filter({word})`")
                    }
                    None => did_you_mean(&word, CODECS),
                };
                return Err(syn::Error::new_spanned(
                    &ident,
                    format!(
                        "unknown codec `{word}`{hint} (codecs: {}, or a four-character code as a string)",
                        one_of(CODECS)
                    ),
                ));
            }
            out.push(CodecSel::Variant(ident));
        }
        if content.is_empty() {
            break;
        }
        content.parse::<Token![,]>()?;
    }
    if out.is_empty() {
        return Err(meta.error("`codecs()` keeps nothing: name at least one codec, or remove it"));
    }
    Ok(out)
}

fn find_delegate(fields: &Fields) -> syn::Result<Option<Delegate>> {
    let mut found: Option<Delegate> = None;
    for (i, field) in fields.iter().enumerate() {
        for attr in field
            .attrs
            .iter()
            .filter(|a| a.path().is_ident("media_sink"))
        {
            attr.parse_nested_meta(|meta| {
                let key = key_of(&meta);
                if key != "delegate" {
                    return Err(meta.error(format!(
                        "on a field, `media_sink` takes only `delegate`; put `{key}` on the struct: `#[media_sink({key} = ...)]` above `struct`"
                    )));
                }
                if found.is_some() {
                    return Err(meta.error(
                        "only one field can be the delegate: keep `#[media_sink(delegate)]` on the sink that gets the unrouted frames",
                    ));
                }
                let member = match &field.ident {
                    Some(id) => Member::Named(id.clone()),
                    None => Member::Unnamed(syn::Index {
                        index: u32::try_from(i).unwrap_or(u32::MAX),
                        span: field.ty.span(),
                    }),
                };
                found = Some(Delegate {
                    member,
                    ty: field.ty.clone(),
                });
                Ok(())
            })?;
        }
    }
    Ok(found)
}

/// Refuse configurations that would compile but never do what they say.
fn check(name: &Ident, o: &Options, delegate: bool) -> syn::Result<()> {
    let routes = [
        &o.on_frame,
        &o.video,
        &o.audio,
        &o.data,
        &o.config,
        &o.end_of_stream,
    ];
    if !delegate && routes.iter().all(|r| r.is_none()) {
        return Err(syn::Error::new_spanned(
            name,
            "derive(MediaSink) needs somewhere to send frames: add `#[media_sink(on_frame = handle_frame)]` \
             with `async fn handle_frame(&mut self, frame: Arc<MediaFrame>) -> Result<()>`, \
             per-kind handlers (`video = ...`, `audio = ...`), or mark an inner sink field `#[media_sink(delegate)]`",
        ));
    }
    if let Some(kinds) = &o.filter {
        for (kind, handler) in [("video", &o.video), ("audio", &o.audio), ("data", &o.data)] {
            if let Some(h) = handler {
                if !kinds.iter().any(|k| k == kind) {
                    return Err(syn::Error::new_spanned(
                        h,
                        format!(
                            "`{kind} = {h}` is never called: `filter(...)` drops every {kind} frame; add `{kind}` to the filter or remove this handler"
                        ),
                    ));
                }
            }
        }
    }
    Ok(())
}

fn expand(input: &DeriveInput, o: &Options, delegate: Option<&Delegate>) -> TokenStream {
    let root = private_root(o.krate.as_ref());
    let ident = &input.ident;
    let mut generics = input.generics.clone();
    if let Some(d) = delegate {
        if mentions_type_param(&d.ty, &input.generics) {
            let ty = &d.ty;
            generics
                .make_where_clause()
                .predicates
                .push(syn::parse_quote!(#ty: #root::MediaSink));
        }
    }
    let (impl_g, ty_g, where_g) = generics.split_for_impl();

    // Calls carry the span of the user's tokens, so a missing method or a
    // wrong signature is reported at the name written in the attribute (or
    // at the delegate field's type).
    let call = |m: &Ident, args: TokenStream| {
        let args = respan(args, m.span());
        quote_spanned!(m.span()=> Self::#m(self, #args).await)
    };
    let delegate_call = |method: &str, args: TokenStream| {
        delegate.map(|d| {
            let member = &d.member;
            let span = d.ty.span();
            let m = Ident::new(method, span);
            let args = respan(args, span);
            quote_spanned!(span=> {
                #[allow(unused_imports)]
                use #root::MediaSink as _;
                self.#member.#m(#args).await
            })
        })
    };

    // End-of-stream markers reach their handler whatever the filters say.
    let eos = o.end_of_stream.as_ref().map(|m| {
        let c = call(m, quote!(frame));
        quote!(if frame.is_end_of_stream() { return #c; })
    });
    let kind_filter = o.filter.as_ref().map(|kinds| {
        let pats = kinds.iter().map(|k| {
            let v = Ident::new(&capitalize(&k.to_string()), k.span());
            quote!(#root::FrameType::#v)
        });
        quote!(if !::core::matches!(frame.frame_type, #(#pats)|*) {
            return ::core::result::Result::Ok(());
        })
    });
    let codec_filter = o.codecs.as_ref().map(|codecs| {
        let tests = codecs.iter().map(|c| match c {
            CodecSel::Variant(v) => quote!(::core::matches!(frame.codec, #root::CodecId::#v)),
            CodecSel::FourCc(lit) => {
                let bytes = syn::LitByteStr::new(lit.value().as_bytes(), lit.span());
                quote!(frame.codec.fourcc() == #root::arcly_core::FourCc(*#bytes))
            }
        });
        quote!(if !(#(#tests)||*) { return ::core::result::Result::Ok(()); })
    });
    let config = o.config.as_ref().map(|m| {
        let c = call(m, quote!(frame));
        quote!(if frame.is_config() { return #c; })
    });
    let kind_arms: Vec<TokenStream> = [("Video", &o.video), ("Audio", &o.audio), ("Data", &o.data)]
        .into_iter()
        .filter_map(|(v, h)| {
            h.as_ref().map(|m| {
                let v = Ident::new(v, Span::call_site());
                let c = call(m, quote!(frame));
                quote!(#root::FrameType::#v => return #c,)
            })
        })
        .collect();
    let kind_match = (!kind_arms.is_empty()).then(|| {
        quote!(
            #[allow(unreachable_patterns)]
            match frame.frame_type {
                #(#kind_arms)*
                _ => {}
            }
        )
    });
    let fallback = match (&o.on_frame, delegate) {
        (Some(m), _) => call(m, quote!(frame)),
        (None, Some(_)) => delegate_call("on_frame", quote!(frame)).unwrap_or_default(),
        (None, None) => {
            quote!({
                let _ = frame;
                ::core::result::Result::Ok(())
            })
        }
    };

    let lifecycle = |hook: &Option<Ident>, name: &str, sig: TokenStream, args: TokenStream| {
        let body = match hook {
            Some(m) => Some(call(m, args.clone())),
            None => delegate_call(name, args),
        };
        body.map(|b| quote!(#sig { #b }))
    };
    let on_start = lifecycle(
        &o.on_start,
        "on_start",
        quote!(async fn on_start(&mut self, path: &#root::StreamPath) -> #root::Result<()>),
        quote!(path),
    );
    let on_end = lifecycle(
        &o.on_end,
        "on_end",
        quote!(async fn on_end(&mut self) -> #root::Result<()>),
        quote!(),
    );
    let on_error = lifecycle(
        &o.on_error,
        "on_error",
        quote!(async fn on_error(&mut self, error: &#root::StreamError)),
        quote!(error),
    );

    quote! {
        #[#root::async_trait]
        impl #impl_g #root::MediaSink for #ident #ty_g #where_g {
            async fn on_frame(
                &mut self,
                frame: #root::Arc<#root::MediaFrame>,
            ) -> #root::Result<()> {
                #eos
                #kind_filter
                #codec_filter
                #config
                #kind_match
                #fallback
            }
            #on_start
            #on_end
            #on_error
        }
    }
}

/// `tokens` with every span set to `span`.
fn respan(tokens: TokenStream, span: Span) -> TokenStream {
    tokens
        .into_iter()
        .map(|mut t| {
            t.set_span(span);
            t
        })
        .collect()
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_ascii_uppercase().to_string() + c.as_str(),
        None => String::new(),
    }
}

/// Whether `ty` names one of the type parameters of `generics`.
fn mentions_type_param(ty: &Type, generics: &syn::Generics) -> bool {
    let params: Vec<String> = generics
        .params
        .iter()
        .filter_map(|p| match p {
            GenericParam::Type(t) => Some(t.ident.to_string()),
            _ => None,
        })
        .collect();
    if params.is_empty() {
        return false;
    }
    let mut found = false;
    for tt in ty.to_token_stream() {
        walk(tt, &params, &mut found);
    }
    found
}

fn walk(tt: proc_macro2::TokenTree, params: &[String], found: &mut bool) {
    match tt {
        proc_macro2::TokenTree::Ident(i) if params.iter().any(|p| i == p) => *found = true,
        proc_macro2::TokenTree::Group(g) => {
            for t in g.stream() {
                walk(t, params, found);
            }
        }
        _ => {}
    }
}
