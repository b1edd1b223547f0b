//! Recordings over HTTP, when a recording directory is configured:
//! arcly-record's [`RecordingsService`] on that directory, with the
//! server's admin rule ([`AdminGuard`]) in front of `/api/recordings` and
//! the play authenticator (tokens, `on_play`) in front of playback.

use crate::admin::AdminGuard;
use crate::config::Settings;
use arcly_core::auth::StreamAuthenticator;
use arcly_record::http::RecordingsService;
use arcly_record::{FsStorage, Recorder};
use std::sync::Arc;

/// The service for `s`'s recording directory; `None` without one (or if
/// it cannot be opened, which the recorder has already reported).
pub fn service(
    s: &Settings,
    recorder: Option<&Recorder>,
    auth: Arc<dyn StreamAuthenticator>,
    guard: AdminGuard,
) -> Option<RecordingsService> {
    let storage = FsStorage::new(s.record.dir.as_ref()?).ok()?;
    let apps: Vec<String> = s.apps.iter().map(|a| a.name.clone()).collect();
    let mut svc = RecordingsService::new(Arc::new(storage), auth)
        .admin(move |req| guard.check(req).err().map(|r| AdminGuard::refuse(&r)))
        .apps(move |app| apps.iter().any(|a| a == app))
        // With `admin.listen`, the API is not served on the media listener.
        .api(s.admin_listen.is_none());
    if let Some(r) = recorder {
        svc = svc.recorder(r.clone());
    }
    Some(svc)
}
