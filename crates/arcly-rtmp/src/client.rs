//! A thin tokio client around [`ClientSession`]: publish or play one stream.

use crate::error::{Result, RtmpError};
use crate::session::{ClientEvent, ClientSession, SessionConfig};
use arcly_core::MediaFrame;
use bytes::{Bytes, BytesMut};
use std::collections::VecDeque;
use std::io::IoSlice;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The parts of an `rtmp://host[:port]/app/stream` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtmpUrl {
    /// `host:port` (port 1935 when absent).
    pub addr: String,
    /// The application.
    pub app: String,
    /// The stream name, with any `?query`.
    pub stream: String,
    /// `rtmp://host[:port]/app`.
    pub tc_url: String,
}

impl RtmpUrl {
    /// Parse `url`; the stream is the last path segment.
    pub fn parse(url: &str) -> Result<Self> {
        let rest = url
            .strip_prefix("rtmp://")
            .ok_or_else(|| RtmpError::protocol(format!("not an rtmp:// URL: {url}")))?;
        let (host, path) = rest
            .split_once('/')
            .ok_or_else(|| RtmpError::protocol("URL has no application"))?;
        let (app, stream) = path
            .rsplit_once('/')
            .ok_or_else(|| RtmpError::protocol("URL has no stream name"))?;
        if host.is_empty() || app.is_empty() || stream.is_empty() {
            return Err(RtmpError::protocol(format!("incomplete RTMP URL {url}")));
        }
        let addr = if host.contains(':') {
            host.to_owned()
        } else {
            format!("{host}:1935")
        };
        Ok(Self {
            addr,
            app: app.to_owned(),
            stream: stream.to_owned(),
            tc_url: format!("rtmp://{host}/{app}"),
        })
    }
}

/// A connected RTMP client that publishes or plays.
#[derive(Debug)]
pub struct RtmpClient {
    tcp: TcpStream,
    session: ClientSession,
    events: VecDeque<ClientEvent>,
    buf: Vec<u8>,
}

impl RtmpClient {
    async fn open(url: &str, publish: bool) -> Result<Self> {
        let u = RtmpUrl::parse(url)?;
        let tcp = TcpStream::connect(&u.addr).await?;
        tcp.set_nodelay(true)?;
        let mut session = ClientSession::new(&u.app, &u.tc_url, SessionConfig::default());
        if publish {
            session.publish(&u.stream);
        } else {
            session.play(&u.stream);
        }
        let mut c = Self {
            tcp,
            session,
            events: VecDeque::new(),
            buf: vec![0; 64 * 1024],
        };
        loop {
            match c.next_event().await? {
                Some(ClientEvent::PublishStarted { .. }) if publish => return Ok(c),
                Some(ClientEvent::PlayStarted { .. }) if !publish => return Ok(c),
                Some(_) => {}
                None => {
                    return Err(RtmpError::protocol(
                        "server closed the connection during setup",
                    ))
                }
            }
        }
    }

    /// Connect to `rtmp://host[:port]/app/stream` and publish; returns once
    /// the server answered `NetStream.Publish.Start`.
    pub async fn publish(url: &str) -> Result<Self> {
        Self::open(url, true).await
    }

    /// Connect and play; returns once the server answered `NetStream.Play.Start`.
    pub async fn play(url: &str) -> Result<Self> {
        Self::open(url, false).await
    }

    async fn flush(&mut self) -> Result<()> {
        let mut v: Vec<Bytes> = Vec::new();
        self.session.poll_transmit_vectored(&mut v);
        let mut i = 0;
        let mut off = 0;
        while i < v.len() {
            let slices: Vec<IoSlice<'_>> = std::iter::once(IoSlice::new(&v[i][off..]))
                .chain(v[i + 1..].iter().take(63).map(|b| IoSlice::new(b)))
                .collect();
            let mut n = self.tcp.write_vectored(&slices).await?;
            if n == 0 {
                return Err(std::io::Error::from(std::io::ErrorKind::WriteZero).into());
            }
            while n > 0 && i < v.len() {
                let left = v[i].len() - off;
                if n >= left {
                    n -= left;
                    i += 1;
                    off = 0;
                } else {
                    off += n;
                    n = 0;
                }
            }
        }
        Ok(())
    }

    /// The next event from the server (`None` when it closed the connection).
    pub async fn next_event(&mut self) -> Result<Option<ClientEvent>> {
        loop {
            if let Some(e) = self.events.pop_front() {
                return Ok(Some(e));
            }
            self.flush().await?;
            let n = self.tcp.read(&mut self.buf).await?;
            if n == 0 {
                return Ok(None);
            }
            self.session.handle_input(&self.buf[..n])?;
            while let Some(e) = self.session.poll_event() {
                self.events.push_back(e);
            }
        }
    }

    /// The next media frame while playing (`None` at the end).
    pub async fn next_frame(&mut self) -> Result<Option<MediaFrame>> {
        loop {
            match self.next_event().await? {
                Some(ClientEvent::Media(f)) => return Ok(Some(f)),
                Some(_) => {}
                None => return Ok(None),
            }
        }
    }

    /// Send one frame while publishing (written with a vectored write).
    pub async fn send_frame(&mut self, frame: &MediaFrame) -> Result<()> {
        self.session.send_frame(frame)?;
        self.flush().await
    }

    /// While playing, stop or resume audio (`audio = true`) or video.
    pub async fn receive_media(&mut self, audio: bool, enabled: bool) -> Result<()> {
        self.session.receive_media(audio, enabled)?;
        self.flush().await
    }

    /// While playing, pause (`true`) or resume (`false`).
    pub async fn pause(&mut self, paused: bool) -> Result<()> {
        self.session.pause(paused)?;
        self.flush().await
    }

    /// Unpublish/stop and close the connection.
    pub async fn close(mut self) -> Result<()> {
        self.session.close();
        self.flush().await?;
        self.tcp.shutdown().await?;
        Ok(())
    }

    /// Read whatever the server sends until it closes (after `close` of a player).
    pub async fn drain(&mut self) -> Result<()> {
        let mut b = BytesMut::new();
        b.resize(4096, 0);
        while self.tcp.read(&mut b).await? > 0 {}
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let u = RtmpUrl::parse("rtmp://127.0.0.1:1940/live/key?token=a").unwrap();
        assert_eq!(
            (u.addr.as_str(), u.app.as_str(), u.stream.as_str()),
            ("127.0.0.1:1940", "live", "key?token=a")
        );
        assert_eq!(u.tc_url, "rtmp://127.0.0.1:1940/live");
        assert_eq!(RtmpUrl::parse("rtmp://h/a/b").unwrap().addr, "h:1935");
        assert!(RtmpUrl::parse("http://h/a/b").is_err());
        assert!(RtmpUrl::parse("rtmp://h/a").is_err());
    }
}
