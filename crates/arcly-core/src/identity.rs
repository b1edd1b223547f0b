//! Names: [`AppName`], [`StreamId`], [`StreamKey`].
//!
//! Each is a cheap `Arc<str>` newtype (cloning is a reference-count bump)
//! validated on construction, so a name that reaches a registry, a file path
//! or a URL is known to be safe there.

use crate::error::{Result, StreamError};
use std::borrow::Borrow;
use std::fmt;
use std::sync::Arc;

/// The longest name accepted, in bytes.
pub const MAX_NAME_LEN: usize = 256;

/// Whether `c` may appear in a name. One rule for every protocol and every
/// URL: ASCII letters and digits, RFC 3986's other unreserved characters
/// (`-` `.` `_` `~`) and `:` `@` `+` `=` `,`, which a URL path carries as
/// they are (RFC 3986 §3.3 `pchar`). So a name accepted at publish (RTMP,
/// SRT, WHIP) can be played, kicked and recorded over HTTP and on disk
/// under the same spelling, with no percent-encoding to agree on.
/// (MediaMTX keeps path names to a similar set.)
pub fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '~' | ':' | '@' | '+' | '=' | ',')
}

fn validate(kind: &'static str, value: &str, allow_slash: bool) -> Result<()> {
    let refuse = |reason| {
        Err(StreamError::InvalidName {
            kind,
            value: value.chars().take(64).collect(),
            reason,
        })
    };
    if value.is_empty() {
        return refuse("is empty");
    }
    if value.len() > MAX_NAME_LEN {
        return refuse("is longer than 256 bytes");
    }
    if value.chars().any(char::is_control) {
        return refuse("contains a control character");
    }
    if !allow_slash && value.contains('/') {
        return refuse("contains '/'");
    }
    if value.contains('\\') {
        return refuse("contains '\\'");
    }
    if !value.chars().all(is_name_char) {
        return refuse(
            "may hold only letters, digits and - . _ ~ : @ + = , (so every URL can carry it)",
        );
    }
    if value == "." || value.split('/').any(|seg| seg == ".." || seg == ".") {
        return refuse("contains a '.' or '..' path segment");
    }
    if value.starts_with('/') || value.ends_with('/') || value.contains("//") {
        return refuse("has an empty path segment");
    }
    Ok(())
}

macro_rules! name_type {
    ($(#[$doc:meta])* $name:ident, $kind:literal, $slash:literal) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(Arc<str>);

        impl $name {
            /// Validate and wrap `value`.
            pub fn new(value: impl AsRef<str>) -> Result<Self> {
                let value = value.as_ref();
                validate($kind, value, $slash)?;
                Ok(Self(Arc::from(value)))
            }

            /// The name as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), &*self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<&str> for $name {
            type Error = StreamError;
            fn try_from(value: &str) -> Result<Self> {
                Self::new(value)
            }
        }

        impl TryFrom<String> for $name {
            type Error = StreamError;
            fn try_from(value: String) -> Result<Self> {
                Self::new(value)
            }
        }

        impl std::str::FromStr for $name {
            type Err = StreamError;
            fn from_str(value: &str) -> Result<Self> {
                Self::new(value)
            }
        }
    };
}

name_type!(
    /// An application name, the first path segment of a stream URL (`live`).
    AppName, "app", false
);
name_type!(
    /// A stream name within an application (`live/<this>`). May not contain `/`.
    StreamId, "stream", false
);
name_type!(
    /// A stream key or token presented by a client. Validated like a stream
    /// name; never logged by the kernel.
    StreamKey, "key", false
);

/// An application and stream name together: the address of a stream.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct StreamPath {
    /// The application.
    pub app: AppName,
    /// The stream within it.
    pub stream: StreamId,
}

impl StreamPath {
    /// Build from validated parts.
    pub fn new(app: AppName, stream: StreamId) -> Self {
        Self { app, stream }
    }

    /// Validate and build from strings.
    pub fn parse(app: &str, stream: &str) -> Result<Self> {
        Ok(Self {
            app: AppName::new(app)?,
            stream: StreamId::new(stream)?,
        })
    }
}

impl fmt::Display for StreamPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.app, self.stream)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_names() {
        assert_eq!(AppName::new("live").unwrap().as_str(), "live");
        assert!(StreamId::new("cam-1_HD.v2").is_ok());
        assert!(StreamKey::new("abc123").is_ok());
        assert_eq!(
            StreamPath::parse("live", "x").unwrap().to_string(),
            "live/x"
        );
    }

    #[test]
    fn refuses_dangerous_names() {
        for bad in [
            "",
            "a/b",
            "..",
            ".",
            "a\0b",
            "a\nb",
            "a\\b",
            &"x".repeat(257),
            "my cam",
            "a?b",
            "a#b",
            "a%20b",
            "caméra",
            "a&b",
            "a\"b",
        ] {
            let err = StreamId::new(bad).unwrap_err();
            assert!(
                matches!(err, StreamError::InvalidName { kind: "stream", .. }),
                "{bad:?}"
            );
            assert!(err.is_refusal());
        }
    }

    #[test]
    fn names_every_url_carries() {
        for good in ["cam", "live_123-abc.x~y", "user@host:1", "a+b=c,d", "K3Y"] {
            StreamId::new(good).unwrap();
            AppName::new(good).unwrap();
        }
    }

    #[test]
    fn clones_share_storage() {
        let a = AppName::new("live").unwrap();
        let b = a.clone();
        assert!(std::ptr::eq(a.as_str(), b.as_str()));
    }
}
