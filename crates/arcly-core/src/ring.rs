//! The bus's broadcast ring: one writer, any number of readers, no lock on
//! either side of the data path.
//!
//! Each slot is an `ArcSwapOption<MediaFrame>`. The writer (the stream's one
//! publisher) stores frame `seq` in slot `seq % capacity`, then publishes
//! `tail = seq` with a release store and wakes waiting readers. A reader that
//! wants frame `pos` checks `pos <= tail` (acquire), loads the slot and
//! accepts the frame only if its sequence is `pos`: a larger one means the
//! writer lapped the reader, which is reported as a lag of the frames it
//! lost. Frame sequences are dense per stream (every published frame,
//! including end-of-stream markers, takes the next number), so the sequence
//! is the ring position.
//!
//! Compared with `tokio::sync::broadcast`, a delivery costs one reference-count
//! increment on the frame instead of a slot read-lock, a remaining-readers
//! decrement, the increment and the unlock; the price is that the last
//! `capacity` frames stay referenced until overwritten.

use crate::frame::MediaFrame;
use arc_swap::ArcSwapOption;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::sync::Notify;

/// What a read found.
pub(crate) enum Read {
    /// The frame at the reader's position.
    Frame(Arc<MediaFrame>),
    /// Nothing new yet.
    Empty,
    /// The reader fell more than a ring behind: this many frames are gone and
    /// its position moved to the oldest frame still held.
    Lagged(u64),
}

pub(crate) struct Ring {
    slots: Box<[ArcSwapOption<MediaFrame>]>,
    /// The sequence of the last frame written (0 before the first).
    tail: AtomicU64,
    closed: AtomicBool,
    notify: Notify,
    /// Readers parked in [`Ring::wait`]; the writer skips the wake-up (and
    /// the `Notify`'s lock) when there are none.
    waiting: AtomicUsize,
}

impl Ring {
    pub(crate) fn new(capacity: usize) -> Self {
        let capacity = capacity.max(2);
        Self {
            slots: (0..capacity).map(|_| ArcSwapOption::empty()).collect(),
            tail: AtomicU64::new(0),
            closed: AtomicBool::new(false),
            notify: Notify::new(),
            waiting: AtomicUsize::new(0),
        }
    }

    fn capacity(&self) -> u64 {
        self.slots.len() as u64
    }

    fn slot(&self, seq: u64) -> &ArcSwapOption<MediaFrame> {
        &self.slots[(seq % self.capacity()) as usize]
    }

    /// The sequence of the last frame written.
    pub(crate) fn tail(&self) -> u64 {
        self.tail.load(Ordering::Acquire)
    }

    /// Write `frame`, whose sequence must be `tail() + 1` (writer only).
    pub(crate) fn push(&self, frame: Arc<MediaFrame>) {
        let seq = frame.sequence;
        debug_assert_eq!(
            seq,
            self.tail.load(Ordering::Relaxed) + 1,
            "ring sequences must be dense"
        );
        self.slot(seq).store(Some(frame));
        // SeqCst pairs with `wait`: either this load sees the reader's
        // registration, or the reader's tail load sees this store.
        self.tail.store(seq, Ordering::SeqCst);
        if self.waiting.load(Ordering::SeqCst) > 0 {
            self.notify.notify_waiters();
        }
    }

    /// Read the frame at `*pos`, advancing `*pos` past it.
    #[inline]
    pub(crate) fn read(&self, pos: &mut u64) -> Read {
        let tail = self.tail.load(Ordering::Acquire);
        if *pos > tail {
            return Read::Empty;
        }
        let oldest = tail.saturating_sub(self.capacity() - 1).max(1);
        if *pos < oldest {
            let lost = oldest - *pos;
            *pos = oldest;
            return Read::Lagged(lost);
        }
        match self.slot(*pos).load_full() {
            Some(f) if f.sequence == *pos => {
                *pos += 1;
                Read::Frame(f)
            }
            // The writer lapped this reader between the tail load and the
            // slot load: everything up to the new oldest frame is gone.
            _ => {
                let tail = self.tail.load(Ordering::Acquire);
                let oldest = tail.saturating_sub(self.capacity() - 1).max(*pos + 1);
                let lost = oldest - *pos;
                *pos = oldest;
                Read::Lagged(lost)
            }
        }
    }

    /// Whether a read at `pos` would find something (or the ring is closed).
    pub(crate) fn ready(&self, pos: u64) -> bool {
        pos <= self.tail.load(Ordering::SeqCst) || self.is_closed()
    }

    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.notify.notify_waiters();
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Wait until a read at `pos` would find something.
    pub(crate) async fn wait(&self, pos: u64) {
        struct Registered<'a>(&'a AtomicUsize);
        impl Drop for Registered<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::SeqCst);
            }
        }
        self.waiting.fetch_add(1, Ordering::SeqCst);
        let _registered = Registered(&self.waiting);
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.ready(pos) {
                return;
            }
            notified.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::CodecId;
    use bytes::Bytes;

    fn frame(seq: u64) -> Arc<MediaFrame> {
        let mut f = MediaFrame::video(CodecId::H264, 0, 0, Bytes::new());
        f.sequence = seq;
        Arc::new(f)
    }

    #[test]
    fn reads_in_order_and_reports_laps() {
        let r = Ring::new(4);
        let mut pos = 1;
        assert!(matches!(r.read(&mut pos), Read::Empty));
        for s in 1..=3 {
            r.push(frame(s));
        }
        for s in 1..=3 {
            match r.read(&mut pos) {
                Read::Frame(f) => assert_eq!(f.sequence, s),
                _ => panic!("frame {s}"),
            }
        }
        for s in 4..=10 {
            r.push(frame(s));
        }
        // pos 4; the ring holds 7..=10.
        assert!(matches!(r.read(&mut pos), Read::Lagged(3)));
        assert_eq!(pos, 7);
        assert!(matches!(r.read(&mut pos), Read::Frame(f) if f.sequence == 7));
    }

    #[tokio::test]
    async fn waiters_wake_on_push_and_close() {
        let r = Arc::new(Ring::new(8));
        let r2 = Arc::clone(&r);
        let waiter = tokio::spawn(async move { r2.wait(1).await });
        tokio::task::yield_now().await;
        r.push(frame(1));
        waiter.await.unwrap();
        let r2 = Arc::clone(&r);
        let waiter = tokio::spawn(async move { r2.wait(2).await });
        tokio::task::yield_now().await;
        r.close();
        waiter.await.unwrap();
    }
}
