//! Connection handlers #[protocol] refuses, and what it says to write.
use arcly_macros::protocol;
use arcly_stream::prelude::*;
use arcly_stream::traits::Connection;
use std::net::SocketAddr;

struct NotAsync;
#[protocol(name = "a")]
impl NotAsync {
    fn handle(&self, _conn: Box<dyn Connection>) -> Result<()> {
        Ok(())
    }
}

struct Mutable;
#[protocol(name = "b")]
impl Mutable {
    async fn handle(&mut self, _conn: Box<dyn Connection>) -> Result<()> {
        Ok(())
    }
}

struct Misnamed;
#[protocol(name = "c")]
impl Misnamed {
    async fn handler(&self, _conn: Box<dyn Connection>) -> Result<()> {
        Ok(())
    }
}

struct NoResult;
#[protocol(name = "d")]
impl NoResult {
    async fn handle(&self, _conn: Box<dyn Connection>) {}
}

struct TwoPeers;
#[protocol(name = "e")]
impl TwoPeers {
    async fn handle(&self, _conn: Box<dyn Connection>, _a: SocketAddr, _b: SocketAddr) -> Result<()> {
        Ok(())
    }
}

/// On the struct, the handler is looked up by name when the impl is compiled.
#[protocol(name = "f", handler = serve)]
struct StructForm;

impl StructForm {
    async fn handle(&self, _conn: Box<dyn Connection>, _peer: SocketAddr, _ctx: IngestContext) -> Result<()> {
        Ok(())
    }
}

fn main() {}
