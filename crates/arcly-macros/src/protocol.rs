//! `#[protocol(name = "...", port = N)]`.

use crate::util::{
    crate_value, did_you_mean, error_here, key_of, method_value, one_of, private_root, set_once,
};
use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::parse::Parser;
use syn::{FnArg, Generics, Ident, ImplItem, Item, LitInt, LitStr, Path, ReturnType, Type};

const OPTIONS: &[&str] = &["name", "port", "handler", "crate"];

/// Longest protocol name: it labels logs and metrics.
const MAX_NAME_LEN: usize = 32;

/// The handler signature, spelled out in errors.
const SIGNATURE: &str = "async fn handle(&self, conn: Box<dyn Connection>, peer: SocketAddr, ctx: IngestContext) -> Result<()>";

#[derive(Default)]
struct Args {
    name: Option<LitStr>,
    port: Option<u16>,
    handler: Option<Ident>,
    krate: Option<Path>,
}

/// What a handler parameter is, judged by its type's last path segment.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Param {
    Conn,
    Peer,
    Ctx,
}

pub(crate) fn expand(args: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    let args = parse_args(args)?;
    let item: Item = syn::parse2(item).map_err(|e| {
        let mut err = error_here(
            "#[protocol] goes on the protocol's type (a struct) or on the `impl` block holding its connection handler",
        );
        err.combine(e);
        err
    })?;
    let Some(name) = args.name.clone() else {
        return Err(error_here(
            "#[protocol] needs the protocol's name for logs and metrics: write `#[protocol(name = \"myproto\", port = 9000)]`",
        ));
    };
    match &item {
        Item::Struct(s) => {
            let handler = args
                .handler
                .clone()
                .unwrap_or_else(|| Ident::new("handle", Span::call_site()));
            let params = [Param::Conn, Param::Peer, Param::Ctx];
            let ty: Type = {
                let id = &s.ident;
                let (_, g, _) = s.generics.split_for_impl();
                syn::parse_quote!(#id #g)
            };
            Ok(wiring(&item, &args, &name, &ty, &s.generics, &handler, &params))
        }
        Item::Enum(e) => {
            let handler = args
                .handler
                .clone()
                .unwrap_or_else(|| Ident::new("handle", Span::call_site()));
            let params = [Param::Conn, Param::Peer, Param::Ctx];
            let ty: Type = {
                let id = &e.ident;
                let (_, g, _) = e.generics.split_for_impl();
                syn::parse_quote!(#id #g)
            };
            Ok(wiring(&item, &args, &name, &ty, &e.generics, &handler, &params))
        }
        Item::Impl(imp) => {
            if let Some((path, _)) = &imp.trait_ {
                return Err(syn::Error::new_spanned(
                    path,
                    "#[protocol] goes on the inherent `impl MyProtocol { async fn handle(...) }` block, not on a trait impl",
                ));
            }
            let (handler, params) = find_handler(imp, args.handler.as_ref())?;
            Ok(wiring(&item, &args, &name, &imp.self_ty, &imp.generics, &handler, &params))
        }
        other => Err(syn::Error::new_spanned(
            item_keyword(other),
            "#[protocol] goes on the protocol's type (a struct) or on the `impl` block holding its connection handler",
        )),
    }
}

/// A token to point at for an unsupported item.
fn item_keyword(item: &Item) -> TokenStream {
    match item {
        Item::Fn(f) => {
            let (vis, fn_token, ident) = (&f.vis, &f.sig.fn_token, &f.sig.ident);
            quote!(#vis #fn_token #ident)
        }
        _ => quote!(#item).into_iter().take(3).collect(),
    }
}

fn parse_args(args: TokenStream) -> syn::Result<Args> {
    let mut out = Args::default();
    let parser = syn::meta::parser(|meta| {
        let key = key_of(&meta);
        match key.as_str() {
            "name" => {
                let v = meta.value().map_err(|_| {
                    meta.error("write the protocol name as a string: `name = \"myproto\"`")
                })?;
                if !v.peek(LitStr) {
                    let t: TokenStream = v.parse()?;
                    let shown = t.to_string();
                    return Err(syn::Error::new_spanned(
                        &t,
                        format!(
                            "write the name as a string literal: `name = \"{}\"`",
                            shown.trim_matches('"')
                        ),
                    ));
                }
                let lit: LitStr = v.parse()?;
                check_name(&lit)?;
                set_once(&mut out.name, lit, &meta, "name")
            }
            "port" => {
                let v = meta.value().map_err(|_| {
                    meta.error("`port` is the default TCP port: write `port = 9000`")
                })?;
                if v.peek(LitStr) {
                    let lit: LitStr = v.parse()?;
                    return Err(syn::Error::new_spanned(
                        &lit,
                        format!("write the port as a number: `port = {}`", lit.value()),
                    ));
                }
                let lit: LitInt = v.parse()?;
                let port = match lit.base10_parse::<u32>() {
                    Ok(p @ 1..=65535) => u16::try_from(p).unwrap_or(u16::MAX),
                    Ok(0) => {
                        return Err(syn::Error::new_spanned(
                            &lit,
                            "a default port of 0 means none: omit `port` and bind with `tcp_ingest_on(addr)`",
                        ))
                    }
                    _ => {
                        return Err(syn::Error::new_spanned(
                            &lit,
                            "a TCP port is 1 to 65535",
                        ))
                    }
                };
                set_once(&mut out.port, port, &meta, "port")
            }
            "handler" => {
                let m = method_value(&meta, "handler", "handle")?;
                set_once(&mut out.handler, m, &meta, "handler")
            }
            "crate" => {
                let p = crate_value(&meta)?;
                set_once(&mut out.krate, p, &meta, "crate")
            }
            other => Err(meta.error(format!(
                "unknown `protocol` option `{other}`{} (options: {})",
                did_you_mean(other, OPTIONS),
                one_of(OPTIONS)
            ))),
        }
    });
    parser.parse2(args)?;
    Ok(out)
}

fn check_name(lit: &LitStr) -> syn::Result<()> {
    let v = lit.value();
    let ok = !v.is_empty()
        && v.len() <= MAX_NAME_LEN
        && v.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if ok {
        return Ok(());
    }
    let fixed: String = v
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(MAX_NAME_LEN)
        .collect();
    let fixed = fixed.trim_matches('-');
    let fixed = if fixed.is_empty() { "myproto" } else { fixed };
    Err(syn::Error::new_spanned(
        lit,
        format!(
            "a protocol name labels logs and metrics: 1 to {MAX_NAME_LEN} characters of lowercase a-z, 0-9, '-', '_'; e.g. `name = \"{fixed}\"`"
        ),
    ))
}

/// Find and check the connection handler in an inherent impl block.
fn find_handler(imp: &syn::ItemImpl, named: Option<&Ident>) -> syn::Result<(Ident, Vec<Param>)> {
    let want = named
        .map(ToString::to_string)
        .unwrap_or_else(|| "handle".to_string());
    let fns: Vec<&syn::ImplItemFn> = imp
        .items
        .iter()
        .filter_map(|i| match i {
            ImplItem::Fn(f) => Some(f),
            _ => None,
        })
        .collect();
    let Some(f) = fns.iter().find(|f| f.sig.ident == want) else {
        let names: Vec<String> = fns.iter().map(|f| f.sig.ident.to_string()).collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let hint = match (named, crate::util::closest(&want, &names)) {
            (_, Some(close)) => {
                format!("; did you mean `{close}`? (name it with `handler = {close}`)")
            }
            (None, None) => " (or name yours with `#[protocol(handler = my_fn, ...)]`)".to_string(),
            (Some(_), None) => String::new(),
        };
        let msg = format!("no connection handler `{want}` in this impl: add `{SIGNATURE}`{hint}");
        return Err(match named {
            Some(n) => syn::Error::new_spanned(n, msg),
            None => syn::Error::new_spanned(&imp.self_ty, msg),
        });
    };
    let sig = &f.sig;
    if sig.asyncness.is_none() {
        return Err(syn::Error::new_spanned(
            sig.fn_token,
            format!(
                "the connection handler is async: write `async fn {}(...)`",
                sig.ident
            ),
        ));
    }
    if !sig.generics.params.is_empty() {
        return Err(syn::Error::new_spanned(
            &sig.generics,
            format!("the connection handler takes no generic parameters: `{SIGNATURE}`"),
        ));
    }
    match sig.receiver() {
        Some(syn::Receiver {
            kind: syn::ReceiverKind::Reference(_, _, None),
            ..
        }) => {}
        Some(
            r @ syn::Receiver {
                kind: syn::ReceiverKind::Reference(_, _, Some(_)),
                ..
            },
        ) => {
            return Err(syn::Error::new_spanned(
                r,
                "one handler serves every connection at once: take `&self` and keep mutable state behind a Mutex or atomics",
            ))
        }
        Some(r) => {
            return Err(syn::Error::new_spanned(
                r,
                "one handler serves every connection: take `&self`, not `self`",
            ))
        }
        None => {
            return Err(syn::Error::new_spanned(
                &sig.ident,
                format!("the connection handler is a method: `{SIGNATURE}`"),
            ))
        }
    }
    let mut params = Vec::new();
    for arg in &sig.inputs {
        let FnArg::Typed(pt) = arg else { continue };
        let kind = classify(&pt.ty);
        if params.contains(&kind) {
            let what = match kind {
                Param::Conn => "the connection (`conn: Box<dyn Connection>`)",
                Param::Peer => "the peer address (`peer: SocketAddr`)",
                Param::Ctx => "the ingest context (`ctx: IngestContext`)",
            };
            return Err(syn::Error::new_spanned(
                pt,
                format!("{what} is already a parameter; the handler takes the connection, and optionally `peer: SocketAddr` and `ctx: IngestContext`: `{SIGNATURE}`"),
            ));
        }
        params.push(kind);
    }
    if !params.contains(&Param::Conn) {
        return Err(syn::Error::new_spanned(
            &sig.inputs,
            format!("the handler must take the connection: `{SIGNATURE}`"),
        ));
    }
    if let ReturnType::Default = sig.output {
        return Err(syn::Error::new_spanned(
            sig,
            format!("return `Result<()>` so the ingest layer can log why a connection ended: `{SIGNATURE}`"),
        ));
    }
    Ok((sig.ident.clone(), params))
}

fn classify(ty: &Type) -> Param {
    let last = match ty {
        Type::Path(p) => p.path.segments.last().map(|s| s.ident.to_string()),
        _ => None,
    };
    match last.as_deref() {
        Some("SocketAddr") => Param::Peer,
        Some("IngestContext") => Param::Ctx,
        _ => Param::Conn,
    }
}

fn wiring(
    item: &Item,
    args: &Args,
    name: &LitStr,
    ty: &Type,
    generics: &Generics,
    handler: &Ident,
    params: &[Param],
) -> TokenStream {
    let root = private_root(args.krate.as_ref());
    let (impl_g, _, where_g) = generics.split_for_impl();
    let call_args = params.iter().map(|p| match p {
        Param::Conn => quote!(conn),
        Param::Peer => quote!(peer),
        Param::Ctx => quote!(ctx),
    });
    let call = quote_spanned!(handler.span()=> Self::#handler(self, #(#call_args),*).await);
    let port_items = args.port.map(|port| {
        quote! {
            /// The TCP port this protocol listens on by default.
            pub const DEFAULT_PORT: u16 = #port;

            /// Serve this protocol on every IPv4 interface at
            /// [`DEFAULT_PORT`](Self::DEFAULT_PORT), with default limits.
            pub fn tcp_ingest(self) -> #root::TcpIngest {
                self.tcp_ingest_on(::std::net::SocketAddr::from(([0, 0, 0, 0], #port)))
            }

            /// This protocol on its default port, ready for
            /// `EngineBuilder::protocol`.
            pub fn inbound(self) -> #root::Arc<dyn #root::InboundProtocol> {
                #root::Arc::new(self.tcp_ingest())
            }
        }
    });
    quote! {
        #item

        #[#root::async_trait]
        impl #impl_g #root::ProtocolHandler for #ty #where_g {
            fn name(&self) -> &'static str {
                #name
            }

            async fn handle_connection(
                &self,
                conn: ::std::boxed::Box<dyn #root::Connection>,
                peer: ::std::net::SocketAddr,
                ctx: #root::IngestContext,
            ) -> #root::Result<()> {
                let _ = (&conn, &peer, &ctx);
                #call
            }
        }

        #[allow(dead_code)]
        impl #impl_g #ty #where_g {
            /// The protocol's name in logs and metrics.
            pub const PROTOCOL_NAME: &'static str = #name;

            #port_items

            /// Serve this protocol on `addr` (port 0 picks a free port: learn
            /// it from `TcpIngest::local_addr_receiver`), with default limits.
            pub fn tcp_ingest_on(self, addr: ::std::net::SocketAddr) -> #root::TcpIngest {
                self.tcp_ingest_with(addr, ::core::default::Default::default())
            }

            /// Serve this protocol on `addr` within `limits`, through the
            /// shared accept loop (one task per connection).
            pub fn tcp_ingest_with(
                self,
                addr: ::std::net::SocketAddr,
                limits: #root::IngestLimits,
            ) -> #root::TcpIngest {
                #root::TcpIngest::new(addr, #root::Arc::new(self), limits)
            }
        }
    }
}
