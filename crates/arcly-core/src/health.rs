//! Readiness: [`HealthCheck`]s registered in a [`HealthRegistry`] and
//! aggregated into one answer for `/readyz`.

use async_trait::async_trait;
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// The result of one check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HealthStatus {
    /// Working.
    Healthy,
    /// Not working, with a reason for the operator.
    Unhealthy(String),
}

/// Something whose health decides readiness (a listener, a disk, a relay).
#[async_trait]
pub trait HealthCheck: Send + Sync + 'static {
    /// A short, stable name (`rtmp-listener`, `recording-disk`).
    fn name(&self) -> &str;
    /// Check now. Should answer quickly; the registry times it out.
    async fn check(&self) -> HealthStatus;
}

/// One check's result within a [`Readiness`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckResult {
    /// The check's name.
    pub name: String,
    /// Its status.
    pub status: HealthStatus,
}

/// The aggregate of every check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Readiness {
    /// True when every check is healthy.
    pub ready: bool,
    /// Every check's result, in registration order.
    pub checks: Vec<CheckResult>,
}

impl Readiness {
    /// The checks that failed.
    pub fn failing(&self) -> impl Iterator<Item = &CheckResult> {
        self.checks
            .iter()
            .filter(|c| c.status != HealthStatus::Healthy)
    }
}

/// The set of checks an engine reports on. Cheap to clone (shared).
#[derive(Clone, Default)]
pub struct HealthRegistry {
    checks: Arc<RwLock<Vec<Arc<dyn HealthCheck>>>>,
    timeout: Option<Duration>,
}

impl std::fmt::Debug for HealthRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<String> = self
            .snapshot()
            .iter()
            .map(|c| c.name().to_owned())
            .collect();
        f.debug_struct("HealthRegistry")
            .field("checks", &names)
            .finish()
    }
}

impl HealthRegistry {
    /// An empty registry (ready) with a 2 s per-check timeout.
    pub fn new() -> Self {
        Self {
            checks: Arc::default(),
            timeout: Some(Duration::from_secs(2)),
        }
    }

    /// Add a check.
    pub fn register(&self, check: Arc<dyn HealthCheck>) {
        self.checks
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(check);
    }

    fn snapshot(&self) -> Vec<Arc<dyn HealthCheck>> {
        self.checks
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Run every check (concurrently, each bounded by the timeout).
    pub async fn readiness(&self) -> Readiness {
        let timeout = self.timeout.unwrap_or(Duration::from_secs(2));
        let mut set = tokio::task::JoinSet::new();
        let checks = self.snapshot();
        for (idx, check) in checks.iter().enumerate() {
            let check = Arc::clone(check);
            set.spawn(async move {
                let status = match tokio::time::timeout(timeout, check.check()).await {
                    Ok(s) => s,
                    Err(_) => HealthStatus::Unhealthy(format!("check timed out after {timeout:?}")),
                };
                (idx, status)
            });
        }
        let mut results: Vec<Option<HealthStatus>> = vec![None; checks.len()];
        while let Some(joined) = set.join_next().await {
            if let Ok((idx, status)) = joined {
                results[idx] = Some(status);
            }
        }
        let checks: Vec<CheckResult> = checks
            .iter()
            .zip(results)
            .map(|(c, s)| CheckResult {
                name: c.name().to_owned(),
                status: s.unwrap_or_else(|| HealthStatus::Unhealthy("check panicked".into())),
            })
            .collect();
        Readiness {
            ready: checks.iter().all(|c| c.status == HealthStatus::Healthy),
            checks,
        }
    }
}

/// A check backed by a closure, for simple conditions.
pub struct FnCheck<F> {
    name: String,
    f: F,
}

impl<F: Fn() -> HealthStatus + Send + Sync + 'static> FnCheck<F> {
    /// A check named `name` that calls `f`.
    pub fn new(name: impl Into<String>, f: F) -> Self {
        Self {
            name: name.into(),
            f,
        }
    }
}

#[async_trait]
impl<F: Fn() -> HealthStatus + Send + Sync + 'static> HealthCheck for FnCheck<F> {
    fn name(&self) -> &str {
        &self.name
    }
    async fn check(&self) -> HealthStatus {
        (self.f)()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};

    #[tokio::test]
    async fn readiness_flips_when_a_check_fails() {
        let reg = HealthRegistry::new();
        assert!(reg.readiness().await.ready);
        let ok = Arc::new(AtomicBool::new(true));
        let flag = ok.clone();
        reg.register(Arc::new(FnCheck::new("disk", move || {
            if flag.load(Ordering::Relaxed) {
                HealthStatus::Healthy
            } else {
                HealthStatus::Unhealthy("disk full".into())
            }
        })));
        assert!(reg.readiness().await.ready);
        ok.store(false, Ordering::Relaxed);
        let r = reg.readiness().await;
        assert!(!r.ready);
        assert_eq!(r.failing().next().unwrap().name, "disk");
    }
}
