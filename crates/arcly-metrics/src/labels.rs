//! The one label set every `arcly_*` family uses.
//!
//! Each family fills a fixed subset of the fields, so every series of one
//! family carries the same label names (OpenMetrics §4.5.1: a MetricFamily's
//! label names are part of its identity; parsers such as Prometheus' reject
//! nothing else, but dashboards rely on it).

use arcly_core::{AppName, StreamId};
use prometheus_client::encoding::{EncodeLabel, EncodeLabelSet, LabelSetEncoder};

/// The value of the `stream` label.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub(crate) enum StreamLabel {
    /// One stream, by name.
    Name(StreamId),
    /// Every stream past the per-stream series limit of its application.
    Other,
}

/// The `stream` label value used for streams beyond
/// [`StreamLabels::PerStream`](crate::StreamLabels::PerStream)'s limit.
pub const OTHER_STREAMS: &str = "_other";

impl StreamLabel {
    fn as_str(&self) -> &str {
        match self {
            Self::Name(s) => s.as_str(),
            Self::Other => OTHER_STREAMS,
        }
    }
}

/// Labels of one series. Cheap to clone: names are `Arc<str>` inside.
#[derive(Clone, Debug, Hash, PartialEq, Eq, Default)]
pub(crate) struct SeriesLabels {
    pub app: Option<AppName>,
    pub stream: Option<StreamLabel>,
    pub protocol: Option<&'static str>,
    /// A last bounded label (`reason`, `action`).
    pub extra: Option<(&'static str, &'static str)>,
}

impl SeriesLabels {
    pub fn protocol(protocol: &'static str) -> Self {
        Self {
            protocol: Some(protocol),
            ..Self::default()
        }
    }

    #[must_use]
    pub fn with_protocol(mut self, protocol: &'static str) -> Self {
        self.protocol = Some(protocol);
        self
    }

    #[must_use]
    pub fn with_extra(mut self, key: &'static str, value: &'static str) -> Self {
        self.extra = Some((key, value));
        self
    }
}

impl EncodeLabelSet for SeriesLabels {
    fn encode(&self, encoder: &mut LabelSetEncoder<'_>) -> Result<(), std::fmt::Error> {
        // Values are escaped by the text encoder (OpenMetrics §4.1: `\`, `"`
        // and newline); StreamId already refuses control characters.
        if let Some(app) = &self.app {
            ("app", app.as_str()).encode(encoder.encode_label())?;
        }
        if let Some(stream) = &self.stream {
            ("stream", stream.as_str()).encode(encoder.encode_label())?;
        }
        if let Some(protocol) = self.protocol {
            ("protocol", protocol).encode(encoder.encode_label())?;
        }
        if let Some((k, v)) = self.extra {
            (k, v).encode(encoder.encode_label())?;
        }
        Ok(())
    }
}
