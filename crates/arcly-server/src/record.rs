//! Recording: a [`Recorder`] on the filesystem storage, with each app's
//! record mode, when a recording directory is configured.

use crate::config::{RecordModeArg, Settings};
use crate::error::StartError;
use arcly_core::engine::Engine;
use arcly_record::{FsStorage, RecordConfig, RecordMode, RecordPolicy, Recorder};
use std::sync::Arc;
use tokio::task::JoinHandle;

/// A running recorder and its task.
#[derive(Debug)]
pub struct Recording {
    /// The recorder (the admin API starts and stops recordings with it).
    pub recorder: Recorder,
    /// Ends once every recording is finished after the engine stops.
    pub task: JoinHandle<()>,
}

fn record_mode(m: RecordModeArg) -> RecordMode {
    match m {
        RecordModeArg::Off => RecordMode::Off,
        RecordModeArg::All => RecordMode::All,
        RecordModeArg::OnRequest => RecordMode::OnRequest,
    }
}

/// Start recording `engine`'s streams as `s` says; `None` when no directory
/// is configured.
pub fn start(s: &Settings, engine: &Engine) -> Result<Option<Recording>, StartError> {
    let Some(dir) = &s.record.dir else {
        return Ok(None);
    };
    let storage = FsStorage::new(dir).map_err(|e| StartError::RecordDir {
        dir: dir.clone(),
        reason: e.to_string(),
    })?;
    let config = RecordConfig {
        segment_target: s.record.segment,
        max_duration: s.record.max_duration,
        ..RecordConfig::default()
    };
    let policy = |mode| RecordPolicy {
        mode,
        config: config.clone(),
        max_total_bytes: s.record.max_total_bytes,
    };
    let mut b = Recorder::builder(engine.clone(), Arc::new(storage))
        .default_policy(policy(RecordMode::Off));
    for a in &s.apps {
        b = b.policy(&a.name, policy(record_mode(a.record)));
    }
    let recorder = b.build();
    let task = recorder.run();
    Ok(Some(Recording { recorder, task }))
}
