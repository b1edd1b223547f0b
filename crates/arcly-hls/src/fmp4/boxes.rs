//! A tiny ISO BMFF box writer (ISO/IEC 14496-12 §4.2): sizes are written as
//! a placeholder and patched when the box closes.

use bytes::{BufMut, BytesMut};

/// Appends boxes to a buffer.
pub(crate) struct BoxWriter {
    pub buf: BytesMut,
}

impl BoxWriter {
    pub(crate) fn with_capacity(n: usize) -> Self {
        Self {
            buf: BytesMut::with_capacity(n),
        }
    }

    /// Open a `Box` (§4.2): returns its start for [`end`](Self::end).
    pub(crate) fn begin(&mut self, fourcc: &[u8; 4]) -> usize {
        let start = self.buf.len();
        self.buf.put_u32(0);
        self.buf.put_slice(fourcc);
        start
    }

    /// Open a `FullBox` (§4.2) with `version` and 24-bit `flags`.
    pub(crate) fn begin_full(&mut self, fourcc: &[u8; 4], version: u8, flags: u32) -> usize {
        let start = self.begin(fourcc);
        self.buf
            .put_u32((u32::from(version) << 24) | (flags & 0x00ff_ffff));
        start
    }

    /// Close the box opened at `start`, patching its 32-bit size.
    /// Callers bound their output far below 4 GiB (see `MAX_FRAGMENT_BYTES`).
    pub(crate) fn end(&mut self, start: usize) {
        let size = u32::try_from(self.buf.len() - start).unwrap_or(u32::MAX);
        self.patch_u32(start, size);
    }

    pub(crate) fn patch_u32(&mut self, at: usize, v: u32) {
        if let Some(dst) = self.buf.get_mut(at..at + 4) {
            dst.copy_from_slice(&v.to_be_bytes());
        }
    }

    pub(crate) fn u8(&mut self, v: u8) {
        self.buf.put_u8(v);
    }
    pub(crate) fn u16(&mut self, v: u16) {
        self.buf.put_u16(v);
    }
    pub(crate) fn u32(&mut self, v: u32) {
        self.buf.put_u32(v);
    }
    pub(crate) fn u64(&mut self, v: u64) {
        self.buf.put_u64(v);
    }
    pub(crate) fn bytes(&mut self, v: &[u8]) {
        self.buf.put_slice(v);
    }
    pub(crate) fn zeros(&mut self, n: usize) {
        self.buf.put_bytes(0, n);
    }
    /// The unity transformation matrix (§8.2.2.3).
    pub(crate) fn matrix(&mut self) {
        for v in [0x0001_0000u32, 0, 0, 0, 0x0001_0000, 0, 0, 0, 0x4000_0000] {
            self.u32(v);
        }
    }
}
