//! The audit trail: who published or played what, when, from where, and the
//! outcome.
//!
//! An [`AuditSink`] may be slow (a database, a remote log). The engine never
//! waits for it: events go through an [`AuditPipeline`], a bounded queue
//! drained by a background task; when the queue is full the event is dropped
//! and counted, and the frame path is never touched at all.

use crate::auth::AuthAction;
use crate::identity::StreamPath;
use async_trait::async_trait;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::SystemTime;
use tokio::sync::mpsc;

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuditOutcome {
    /// The request was allowed and started.
    Started,
    /// The request was refused, with the reason.
    Denied(String),
    /// A publish or play that had started has ended.
    Ended,
    /// A publish or play failed after it started.
    Failed(String),
}

/// One audit record.
#[derive(Debug, Clone)]
pub struct AuditEvent {
    /// When it happened.
    pub at: SystemTime,
    /// Publish or play.
    pub action: AuthAction,
    /// The stream concerned.
    pub path: StreamPath,
    /// The client's address, when known.
    pub peer: Option<SocketAddr>,
    /// The protocol (`rtmp`, `hls`, …).
    pub protocol: &'static str,
    /// The outcome.
    pub outcome: AuditOutcome,
}

impl AuditEvent {
    /// An event stamped now.
    pub fn now(
        action: AuthAction,
        path: StreamPath,
        peer: Option<SocketAddr>,
        protocol: &'static str,
        outcome: AuditOutcome,
    ) -> Self {
        Self {
            at: SystemTime::now(),
            action,
            path,
            peer,
            protocol,
            outcome,
        }
    }
}

/// Where audit events go.
#[async_trait]
pub trait AuditSink: Send + Sync + 'static {
    /// Store one event. Called from the pipeline's task, one at a time.
    async fn record(&self, event: AuditEvent);
}

/// Discards every event: the default.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoopAuditSink;

#[async_trait]
impl AuditSink for NoopAuditSink {
    async fn record(&self, _event: AuditEvent) {}
}

/// A bounded, non-blocking queue in front of an [`AuditSink`].
///
/// The drain task starts on the first event submitted from inside a tokio
/// runtime; events submitted with no runtime are counted as dropped.
pub struct AuditPipeline {
    sink: Arc<dyn AuditSink>,
    capacity: usize,
    tx: OnceLock<mpsc::Sender<AuditEvent>>,
    dropped: AtomicU64,
    submitted: AtomicU64,
}

impl std::fmt::Debug for AuditPipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditPipeline")
            .field("capacity", &self.capacity)
            .field("dropped", &self.dropped())
            .finish()
    }
}

impl AuditPipeline {
    /// A pipeline of `capacity` queued events (at least 1) in front of `sink`.
    pub fn new(sink: Arc<dyn AuditSink>, capacity: usize) -> Self {
        Self {
            sink,
            capacity: capacity.max(1),
            tx: OnceLock::new(),
            dropped: AtomicU64::new(0),
            submitted: AtomicU64::new(0),
        }
    }

    /// Queue `event` without waiting. Returns `false` (and counts a drop) when
    /// the queue is full or no runtime is available.
    pub fn submit(&self, event: AuditEvent) -> bool {
        self.submitted.fetch_add(1, Ordering::Relaxed);
        let tx = match self.tx.get() {
            Some(tx) => tx,
            None => {
                let Ok(handle) = tokio::runtime::Handle::try_current() else {
                    self.dropped.fetch_add(1, Ordering::Relaxed);
                    return false;
                };
                self.tx.get_or_init(|| {
                    let (tx, mut rx) = mpsc::channel::<AuditEvent>(self.capacity);
                    let sink = Arc::clone(&self.sink);
                    handle.spawn(async move {
                        while let Some(ev) = rx.recv().await {
                            sink.record(ev).await;
                        }
                    });
                    tx
                })
            }
        };
        if tx.try_send(event).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        true
    }

    /// Events dropped because the queue was full (or there was no runtime).
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Events submitted in total.
    pub fn submitted(&self) -> u64 {
        self.submitted.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use std::time::Duration;

    struct Slow(Arc<Mutex<Vec<AuditEvent>>>);

    #[async_trait]
    impl AuditSink for Slow {
        async fn record(&self, event: AuditEvent) {
            tokio::time::sleep(Duration::from_millis(50)).await;
            self.0.lock().unwrap().push(event);
        }
    }

    fn ev() -> AuditEvent {
        AuditEvent::now(
            AuthAction::Publish,
            StreamPath::parse("live", "a").unwrap(),
            None,
            "test",
            AuditOutcome::Started,
        )
    }

    #[tokio::test]
    async fn a_slow_sink_never_blocks_and_drops_are_counted() {
        let got = Arc::new(Mutex::new(Vec::new()));
        let p = AuditPipeline::new(Arc::new(Slow(got.clone())), 4);
        let start = std::time::Instant::now();
        for _ in 0..100 {
            p.submit(ev());
        }
        assert!(
            start.elapsed() < Duration::from_millis(40),
            "submit blocked"
        );
        assert!(p.dropped() >= 90, "dropped {}", p.dropped());
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert!(!got.lock().unwrap().is_empty());
        assert_eq!(p.submitted(), 100);
    }

    #[test]
    fn no_runtime_counts_a_drop() {
        let p = AuditPipeline::new(Arc::new(NoopAuditSink), 4);
        assert!(!p.submit(ev()));
        assert_eq!(p.dropped(), 1);
    }
}
