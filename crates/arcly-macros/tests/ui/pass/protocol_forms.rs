//! `#[protocol]` on a struct and on an impl block, served over loopback.
use arcly_macros::protocol;
use arcly_stream::prelude::*;
use arcly_stream::traits::Connection;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// On the struct: the handler takes all four parameters.
#[protocol(name = "hello", port = 7001)]
#[derive(Default)]
struct Hello {
    served: Arc<AtomicUsize>,
}

impl Hello {
    async fn handle(
        &self,
        mut conn: Box<dyn Connection>,
        peer: SocketAddr,
        _ctx: IngestContext,
    ) -> Result<()> {
        self.served.fetch_add(1, Ordering::SeqCst);
        conn.write_all(format!("hello {}\n", peer.ip()).as_bytes()).await?;
        Ok(())
    }
}

/// On the impl: a named handler that leaves out the peer; a generic type;
/// the facade named explicitly.
struct Upper<T> {
    prefix: T,
}

#[protocol(name = "upper", handler = serve, crate = ::arcly_stream)]
impl<T: AsRef<str> + Send + Sync + 'static> Upper<T> {
    async fn serve(&self, mut conn: Box<dyn Connection>, ctx: IngestContext) -> Result<()> {
        let mut buf = [0u8; 64];
        let n = conn.read(&mut buf).await?;
        let text = String::from_utf8_lossy(&buf[..n]).to_uppercase();
        let streams = ctx.registry.list_streams().len();
        conn.write_all(format!("{}{text} {streams}", self.prefix.as_ref()).as_bytes()).await?;
        Ok(())
    }
}

async fn talk(addr: SocketAddr, send: &[u8]) -> String {
    let mut c = tokio::net::TcpStream::connect(addr).await.unwrap();
    c.write_all(send).await.unwrap();
    let mut reply = String::new();
    c.read_to_string(&mut reply).await.unwrap();
    reply
}

#[tokio::main]
async fn main() {
    assert_eq!(Hello::PROTOCOL_NAME, "hello");
    assert_eq!(Hello::DEFAULT_PORT, 7001);
    assert_eq!(Upper::<String>::PROTOCOL_NAME, "upper");
    let hello = Hello::default();
    let served = hello.served.clone();
    assert_eq!(ProtocolHandler::name(&hello), "hello");

    let loopback: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let a = Arc::new(hello.tcp_ingest_on(loopback));
    let b = Arc::new(Upper { prefix: ">".to_string() }.tcp_ingest_with(loopback, Default::default()));
    let (ra, rb) = (a.local_addr_receiver(), b.local_addr_receiver());
    let engine = Engine::builder()
        .application(AppSpec::new("live"))
        .protocol(a)
        .protocol(b)
        .build();
    let run = tokio::spawn({
        let engine = engine.clone();
        async move { engine.run().await }
    });
    let (a, b) = (ra.await.unwrap(), rb.await.unwrap());
    assert_eq!(talk(a, b"").await, "hello 127.0.0.1\n");
    assert_eq!(talk(b, b"shout").await, ">SHOUT 0");
    assert_eq!(served.load(Ordering::SeqCst), 1);
    engine.shutdown();
    run.await.unwrap().unwrap();
}
