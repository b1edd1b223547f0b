//! TLS for any listener (feature `tls`): HTTPS here, RTMPS through
//! [`arcly_core::ingest::TcpIngest::with_acceptor`].
//!
//! - [`CertStore`]: the certificate and key every new handshake is
//!   answered with, behind an `ArcSwap`: [`CertStore::replace`] rotates it
//!   live (connections already open keep the session they negotiated).
//! - [`load_pem`]: a PEM certificate chain and private key (PKCS#8, PKCS#1
//!   or SEC1) from files, checked to belong together.
//! - [`TlsAcceptor`]: the rustls server handshake as an
//!   [`StreamAcceptor`], so the protocols behind it see a plain
//!   [`Connection`](arcly_core::traits::Connection).
//!
//! The crypto is rustls on its `ring` provider; nothing here is hand-written
//! cryptography.
//!
//! ```
//! use arcly_http::tls::{CertStore, TlsAcceptor};
//! # fn demo(cert: &std::path::Path, key: &std::path::Path) -> Result<(), arcly_http::tls::TlsError> {
//! let store = CertStore::new(arcly_http::tls::load_pem(cert, key)?);
//! let https = TlsAcceptor::new(store.clone(), &[b"http/1.1"])?;
//! // Later (SIGHUP): new handshakes get the new certificate.
//! store.replace(arcly_http::tls::load_pem(cert, key)?);
//! # let _ = https; Ok(()) }
//! ```

use arc_swap::ArcSwap;
use arcly_core::ingest::{AcceptFuture, StreamAcceptor};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::{ClientHello, ResolvesServerCert};

/// A certificate chain with its signing key (rustls' type).
pub use tokio_rustls::rustls::sign::CertifiedKey;

/// Largest certificate or key file read (a chain of a few certificates is
/// a few KB; this stops a wrong path from reading a disk image).
pub const MAX_PEM_FILE: u64 = 1024 * 1024;

/// Why a certificate or key could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// The file is not what it should be (no certificate, no key, bad PEM,
    /// too large).
    #[error("{path}: {reason}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// rustls refused the pair (an unsupported key type, a key that does
    /// not belong to the certificate).
    #[error("certificate {cert} with key {key}: {reason}")]
    Pair {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// rustls' reason.
        reason: String,
    },
    /// The server configuration could not be built.
    #[error("TLS configuration: {0}")]
    Config(String),
}

fn read_pem(path: &Path) -> Result<Vec<u8>, TlsError> {
    let read = |source| TlsError::Read {
        path: path.to_owned(),
        source,
    };
    let len = std::fs::metadata(path).map_err(read)?.len();
    if len > MAX_PEM_FILE {
        return Err(TlsError::Pem {
            path: path.to_owned(),
            reason: format!("{len} bytes is too large for a PEM file (limit {MAX_PEM_FILE})"),
        });
    }
    std::fs::read(path).map_err(read)
}

/// Read the PEM certificate chain at `cert` (leaf first) and the private
/// key at `key`, and check that the key belongs to the leaf.
pub fn load_pem(cert: &Path, key: &Path) -> Result<Arc<CertifiedKey>, TlsError> {
    let pem_err = |path: &Path, reason: String| TlsError::Pem {
        path: path.to_owned(),
        reason,
    };
    let cert_pem = read_pem(cert)?;
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_err(cert, format!("not a PEM certificate chain: {e}")))?;
    if chain.is_empty() {
        return Err(pem_err(cert, "holds no CERTIFICATE block".into()));
    }
    let key_pem = read_pem(key)?;
    let der = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| {
        pem_err(
            key,
            format!("holds no usable PEM private key (PKCS#8, PKCS#1 or SEC1): {e}"),
        )
    })?;
    let pair = |reason: String| TlsError::Pair {
        cert: cert.to_owned(),
        key: key.to_owned(),
        reason,
    };
    let signer =
        rustls::crypto::ring::sign::any_supported_type(&der).map_err(|e| pair(e.to_string()))?;
    let certified = CertifiedKey::new(chain, signer);
    certified.keys_match().map_err(|e| pair(e.to_string()))?;
    Ok(Arc::new(certified))
}

/// The certificate new handshakes are answered with, replaceable live.
/// Cheap to clone (clones share the certificate).
#[derive(Clone)]
pub struct CertStore {
    current: Arc<ArcSwap<CertifiedKey>>,
}

impl std::fmt::Debug for CertStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertStore")
            .field("chain_len", &self.current.load().cert.len())
            .finish()
    }
}

impl CertStore {
    /// Start with `key`.
    pub fn new(key: Arc<CertifiedKey>) -> Self {
        Self {
            current: Arc::new(ArcSwap::new(key)),
        }
    }

    /// Answer every handshake from now on with `key`.
    pub fn replace(&self, key: Arc<CertifiedKey>) {
        self.current.store(key);
    }

    /// The certificate handshakes are answered with now.
    pub fn current(&self) -> Arc<CertifiedKey> {
        self.current.load_full()
    }
}

/// The resolver rustls asks at each handshake.
#[derive(Debug)]
struct Resolver(CertStore);

impl ResolvesServerCert for Resolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.current())
    }
}

/// The rustls server handshake over an accepted TCP connection, with the
/// certificate of a [`CertStore`].
#[derive(Clone)]
pub struct TlsAcceptor {
    inner: tokio_rustls::TlsAcceptor,
}

impl std::fmt::Debug for TlsAcceptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsAcceptor").finish_non_exhaustive()
    }
}

impl TlsAcceptor {
    /// TLS 1.2 and 1.3 with rustls' safe defaults, answering with `store`'s
    /// certificate; `alpn` lists the application protocols offered
    /// (`http/1.1` for HTTPS, none for RTMPS).
    pub fn new(store: CertStore, alpn: &[&[u8]]) -> Result<Self, TlsError> {
        // rustls 0.23.48 deprecates its ring provider because it has no
        // post-quantum key exchange (X25519MLKEM768); the provider that has
        // one, aws-lc-rs, needs cmake and clang to build, which this
        // project's build machines lack. Classical X25519/P-256 it is.
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Config(e.to_string()))?
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(Resolver(store)));
        cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Ok(Self {
            inner: tokio_rustls::TlsAcceptor::from(Arc::new(cfg)),
        })
    }
}

impl StreamAcceptor for TlsAcceptor {
    fn name(&self) -> &'static str {
        "tls"
    }

    fn accept(&self, tcp: TcpStream) -> AcceptFuture {
        let accept = self.inner.accept(tcp);
        Box::pin(async move {
            let stream = accept.await?;
            Ok(Box::new(Flushing(stream)) as Box<dyn arcly_core::traits::Connection>)
        })
    }
}

/// A TLS stream that pushes out the records a write left buffered whenever
/// it is polled.
///
/// rustls accepts plaintext into its own buffer (bounded, 64 KiB) and a
/// write returns as soon as some of it is accepted, even when the socket
/// could not take the records yet. A driver that never calls `flush` (the
/// RTMP handler writes with `writev` alone, which is complete on a plain
/// socket) would leave that tail waiting for its next write. Here every
/// successful write and every read also tries a flush: the connection's
/// task is woken when the socket can take more, and its next poll of the
/// read (which an RTMP driver always has pending) sends the rest.
struct Flushing<S>(S);

impl<S: AsyncRead + AsyncWrite + Unpin> Flushing<S> {
    /// Send what is buffered, as far as the socket takes it now; an error
    /// surfaces on the next write.
    fn push(&mut self, cx: &mut Context<'_>) {
        let _ = Pin::new(&mut self.0).poll_flush(cx);
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for Flushing<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        self.push(cx);
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Flushing<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.0).poll_write(cx, buf);
        if matches!(r, Poll::Ready(Ok(_))) {
            self.push(cx);
        }
        r
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.0).poll_write_vectored(cx, bufs);
        if matches!(r, Poll::Ready(Ok(_))) {
            self.push(cx);
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A certificate for `localhost` in PEM files under a fresh directory.
    fn localhost_cert(tag: &str) -> (PathBuf, PathBuf, CertificateDer<'static>) {
        let dir = std::env::temp_dir().join(format!("arcly-tls-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let c = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
        std::fs::write(&cert, c.cert.pem()).unwrap();
        std::fs::write(&key, c.signing_key.serialize_pem()).unwrap();
        (cert, key, c.cert.der().clone())
    }

    /// A driver that writes without ever calling `flush` (as the RTMP
    /// handler does) and then only waits to read must still get every
    /// accepted byte to the client, including what rustls buffered while
    /// the socket was full.
    #[tokio::test]
    async fn buffered_records_go_out_without_a_flush() {
        let (cert, key, der) = localhost_cert("tail");
        let store = CertStore::new(load_pem(&cert, &key).unwrap());
        let acceptor = TlsAcceptor::new(store, &[]).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (accepted_tx, accepted_rx) = tokio::sync::oneshot::channel();
        let server = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let mut conn = acceptor.accept(tcp).await.unwrap();
            let chunk = vec![7u8; 16 * 1024];
            let mut accepted = 0usize;
            // Write until the client's window, the socket and rustls' own
            // buffer are all full.
            loop {
                let iov = [std::io::IoSlice::new(&chunk)];
                let w = conn.write_vectored(&iov);
                match tokio::time::timeout(Duration::from_millis(300), w).await {
                    Ok(n) => accepted += n.unwrap(),
                    Err(_) => break,
                }
            }
            accepted_tx.send(accepted).unwrap();
            let mut b = [0u8; 1];
            let _ = conn.read(&mut b).await;
        });

        let mut roots = rustls::RootCertStore::empty();
        roots.add(der).unwrap();
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let cfg = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let connector = tokio_rustls::TlsConnector::from(Arc::new(cfg));
        let tcp = TcpStream::connect(addr).await.unwrap();
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let mut client = connector.connect(name, tcp).await.unwrap();
        let accepted = accepted_rx.await.unwrap();
        assert!(
            accepted > 64 * 1024,
            "the socket took only {accepted} bytes"
        );
        let mut got = 0usize;
        let mut buf = vec![0u8; 64 * 1024];
        while got < accepted {
            let n = tokio::time::timeout(Duration::from_secs(5), client.read(&mut buf))
                .await
                .unwrap_or_else(|_| panic!("stalled at {got} of {accepted} bytes"))
                .unwrap();
            assert!(n > 0, "closed at {got} of {accepted} bytes");
            got += n;
        }
        assert_eq!(got, accepted);
        drop(client);
        server.await.unwrap();
        let _ = std::fs::remove_dir_all(cert.parent().unwrap());
    }

    #[test]
    fn unreadable_and_empty_files_say_which_and_why() {
        let dir = std::env::temp_dir().join(format!("arcly-tls-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let missing = dir.join("missing.pem");
        let e = load_pem(&missing, &missing).unwrap_err();
        assert!(matches!(e, TlsError::Read { .. }), "{e}");
        assert!(e.to_string().contains("missing.pem"), "{e}");
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "not pem at all\n").unwrap();
        let e = load_pem(&empty, &empty).unwrap_err();
        assert!(e.to_string().contains("no CERTIFICATE"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
