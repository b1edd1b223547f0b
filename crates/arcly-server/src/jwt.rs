//! Signed, expiring credentials: JSON Web Tokens (RFC 7519) that name what
//! their holder may do, verified with the `jsonwebtoken` crate (its
//! RustCrypto backend; no cryptography is written here).
//!
//! # Claims
//! A token is accepted for a publish or a play of `APP/STREAM` when its
//! signature verifies, it has not expired, and its claims cover the request
//! (the convention of MediaMTX's JWT permissions: the token says what may be
//! done, on which path):
//!
//! ```json
//! {"app": "live", "stream": "cam*", "action": ["publish", "play"], "exp": 1767225600}
//! ```
//!
//! - `app`: the application, or a pattern.
//! - `stream`: the stream name, or a pattern: `*` is any stream,
//!   `cam*` any name starting with `cam`, `*-hd` any name ending with `-hd`
//!   (one `*` at most; a pattern with two never matches).
//! - `action`: `"publish"`, `"play"`, or a list of them.
//! - `exp` (always required): expiry, seconds since the Unix epoch. `nbf`
//!   is honoured when present; `iat`, `iss`, `aud`, `sub` are not checked.
//!
//! `app`, `stream` and `action` go together. Instead of them a token may
//! carry MediaMTX's claim, so an identity provider set up for MediaMTX
//! works unchanged: `"mediamtx_permissions": [{"action": "publish", "path":
//! "live/cam"}, {"action": "read", "path": ""}]`, where `read` (or `play`)
//! is playing, `path` is `APP/STREAM` (a pattern as above; empty: any), and
//! MediaMTX's regular-expression paths (`~…`) never match here.
//!
//! Clocks may disagree by [`DEFAULT_LEEWAY`] (`auth.jwt_leeway_seconds`):
//! a token is still accepted that long after its `exp`.
//!
//! # Keys
//! - **HS256** with a shared secret (`auth.jwt_secret`, `--jwt-secret`,
//!   `ARCLY_JWT_SECRET`), at least [`MIN_SECRET_LEN`] bytes
//!   (RFC 7518 §3.2: "A key of the same size as the hash output … or
//!   larger MUST be used"). `arcly token` issues such tokens.
//! - **RS256/RS384/RS512, ES256/ES384, EdDSA** verified against a JWKS
//!   (RFC 7517): a file (`auth.jwks`) or an `http://` URL (`auth.jwks_url`;
//!   HTTPS is not supported), fetched at start and every
//!   `auth.jwks_refresh_seconds` (each fetch bounded by
//!   [`JWKS_FETCH_TIMEOUT`]; a failed refresh keeps the keys it had), and
//!   early (at most every [`JWKS_MIN_REFETCH`]) when a token names a key
//!   it does not hold, as after a key rotation. A key
//!   verifies only the algorithms of its type (and only its `alg` when the
//!   JWK names one); a token's `kid` picks the key when present. Symmetric
//!   (`"kty": "oct"`) keys in a JWKS are ignored, and the `jwk`/`jku`
//!   header parameters of a token are never used: a token cannot choose its
//!   own key, and an HS256 token "signed" with a public key is refused.
//!
//! A refused token is denied with a reason that says why ([`JwtError`]:
//! expired, bad signature, wrong algorithm, wrong app, wrong stream, wrong
//! action, …), which reaches the log and the client.

use crate::webhook::HookUrl;
use arcly_core::auth::AuthAction;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::watch;

/// Clock skew tolerated on `exp` and `nbf` unless configured otherwise.
pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(30);
/// Shortest HS256 secret accepted, in bytes (the 256 bits of SHA-256).
pub const MIN_SECRET_LEN: usize = 32;
/// Longest token looked at: more is refused before it is decoded.
pub const MAX_TOKEN_LEN: usize = 8 * 1024;
/// Most keys taken from one JWKS (the rest are ignored): a token without a
/// `kid` is tried against each, so this bounds the work per token.
pub const MAX_JWKS_KEYS: usize = 32;
/// Largest JWKS document read (file or URL).
pub const MAX_JWKS_BYTES: usize = 256 * 1024;
/// Bound on one JWKS fetch (connect, request, answer).
pub const JWKS_FETCH_TIMEOUT: Duration = Duration::from_secs(10);
/// How often a JWKS URL is fetched again unless configured otherwise.
pub const DEFAULT_JWKS_REFRESH: Duration = Duration::from_secs(300);
/// While a JWKS URL has never answered, it is tried again this often.
pub const JWKS_RETRY: Duration = Duration::from_secs(15);
/// A token naming a key the JWKS does not hold (the identity provider
/// rotated its keys) makes the URL be fetched again, at most this often:
/// tokens with made-up `kid`s cannot turn into a flood of fetches.
pub const JWKS_MIN_REFETCH: Duration = Duration::from_secs(10);

/// What a token may do: its claims (see the [module docs](self)).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamClaims {
    /// The application, or a pattern.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app: Option<String>,
    /// The stream name, or a pattern (`*`, `cam*`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<String>,
    /// What may be done.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<Actions>,
    /// MediaMTX's form: what may be done, on which `APP/STREAM`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mediamtx_permissions: Option<Vec<Permission>>,
    /// Expiry, seconds since the Unix epoch.
    pub exp: u64,
    /// When the token was issued, seconds since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
}

/// One entry of `mediamtx_permissions`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Permission {
    /// `publish`, `read` (or `play`); MediaMTX's other actions never match.
    pub action: String,
    /// `APP/STREAM` or a pattern; empty: any.
    #[serde(default)]
    pub path: String,
}

impl Permission {
    fn covers(&self, action: AuthAction, app: &str, stream: &str) -> bool {
        let act = match action {
            AuthAction::Publish => self.action == "publish",
            AuthAction::Play => self.action == "read" || self.action == "play",
        };
        act && !self.path.starts_with('~')
            && (self.path.is_empty() || matches(&self.path, &format!("{app}/{stream}")))
    }
}

impl StreamClaims {
    /// Whether these claims allow `action` on `app`/`stream`, and if not why.
    pub fn check_scope(&self, action: AuthAction, app: &str, stream: &str) -> Result<(), JwtError> {
        match (
            &self.app,
            &self.stream,
            &self.action,
            &self.mediamtx_permissions,
        ) {
            (Some(a), Some(s), Some(act), _) => {
                if !matches(a, app) {
                    return Err(JwtError::WrongApp(a.clone()));
                }
                if !matches(s, stream) {
                    return Err(JwtError::WrongStream(s.clone()));
                }
                if !act.allows(action) {
                    return Err(JwtError::WrongAction(act.to_list()));
                }
                Ok(())
            }
            (None, None, None, Some(perms)) => {
                if perms.iter().any(|p| p.covers(action, app, stream)) {
                    Ok(())
                } else {
                    Err(JwtError::NotPermitted(format!(
                        "{} on {app}/{stream}",
                        action.as_str()
                    )))
                }
            }
            _ => Err(JwtError::BadClaims(
                "needs app, stream and action (or mediamtx_permissions)".into(),
            )),
        }
    }
}

/// The `action` claim: one action or a list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Actions {
    /// `"publish"` or `"play"`.
    One(String),
    /// `["publish", "play"]`.
    Many(Vec<String>),
}

impl Actions {
    /// Whether `action` is among these.
    pub fn allows(&self, action: AuthAction) -> bool {
        match self {
            Self::One(a) => a == action.as_str(),
            Self::Many(v) => v.iter().any(|a| a == action.as_str()),
        }
    }

    /// The actions as given, comma-separated.
    pub fn to_list(&self) -> String {
        match self {
            Self::One(a) => a.clone(),
            Self::Many(v) => v.join(","),
        }
    }
}

/// Why a token was refused. The text is what the client and the log see.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JwtError {
    /// Not three base64url parts with a JSON header, or too long.
    #[error("malformed token")]
    Malformed,
    /// The header's algorithm is not one this server verifies with.
    #[error("wrong algorithm {0} (accepted: {1})")]
    WrongAlgorithm(String, String),
    /// No configured key fits the token (`kid`, algorithm).
    #[error("no key for this token (kid {0:?})")]
    NoKey(Option<String>),
    /// The JWKS URL has not answered yet.
    #[error("signing keys are not available yet")]
    KeysUnavailable,
    /// The signature does not verify: tampered, or signed with another key.
    #[error("bad signature")]
    BadSignature,
    /// `exp` (plus the leeway) has passed.
    #[error("expired")]
    Expired,
    /// `nbf` (minus the leeway) has not come yet.
    #[error("not valid yet")]
    NotYetValid,
    /// A required claim is missing or has the wrong type.
    #[error("bad claims: {0}")]
    BadClaims(String),
    /// The `app` claim does not cover the request's app.
    #[error("wrong app (the token is for {0:?})")]
    WrongApp(String),
    /// The `stream` claim does not cover the request's stream.
    #[error("wrong stream (the token is for {0:?})")]
    WrongStream(String),
    /// The `action` claim does not include the request's action.
    #[error("wrong action (the token allows {0:?})")]
    WrongAction(String),
    /// No entry of `mediamtx_permissions` covers the request.
    #[error("no permission for {0}")]
    NotPermitted(String),
}

/// Whether `s` has the shape of a JWS compact serialization: three
/// non-empty-headed base64url parts separated by dots.
pub fn looks_like_jwt(s: &str) -> bool {
    let mut parts = s.split('.');
    let (Some(h), Some(p), Some(sig), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    let b64url = |t: &str| {
        t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    !h.is_empty() && !p.is_empty() && b64url(h) && b64url(p) && b64url(sig)
}

/// Whether `name` matches `pattern`: equal, or with one `*` standing for
/// any run of characters (`*`, `cam*`, `*-hd`, `cam*-hd`).
pub fn matches(pattern: &str, name: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == name,
        Some((_, rest)) if rest.contains('*') => false,
        Some((prefix, suffix)) => {
            name.len() >= prefix.len() + suffix.len()
                && name.starts_with(prefix)
                && name.ends_with(suffix)
        }
    }
}

/// One verification key of a JWKS.
#[derive(Clone)]
struct VerifyKey {
    kid: Option<String>,
    algorithms: Vec<Algorithm>,
    key: DecodingKey,
}

/// The usable keys of a JWKS document.
#[derive(Clone, Default)]
pub struct KeySet {
    keys: Vec<VerifyKey>,
}

impl std::fmt::Debug for KeySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.keys.iter().map(|k| (&k.kid, &k.algorithms)))
            .finish()
    }
}

impl KeySet {
    /// Parse a JWKS document (`{"keys": [...]}`). Keys this server cannot
    /// use (symmetric, unknown type or curve, encryption-only) are skipped;
    /// a document with no usable key is an error.
    pub fn parse(json: &[u8]) -> Result<Self, String> {
        if json.len() > MAX_JWKS_BYTES {
            return Err(format!("JWKS larger than {MAX_JWKS_BYTES} bytes"));
        }
        let v: serde_json::Value =
            serde_json::from_slice(json).map_err(|e| format!("JWKS is not JSON: {e}"))?;
        let Some(list) = v.get("keys").and_then(|k| k.as_array()) else {
            return Err("JWKS has no \"keys\" array".into());
        };
        let keys: Vec<VerifyKey> = list
            .iter()
            .filter_map(|k| serde_json::from_value::<Jwk>(k.clone()).ok())
            .filter_map(|jwk| verify_key(&jwk))
            .take(MAX_JWKS_KEYS)
            .collect();
        if keys.is_empty() {
            return Err("JWKS has no usable key (RSA, EC P-256/P-384 or Ed25519)".into());
        }
        Ok(Self { keys })
    }

    /// How many keys are usable.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether no key is usable.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// The key of `jwk` with the algorithms it may verify, if usable.
fn verify_key(jwk: &Jwk) -> Option<VerifyKey> {
    use jsonwebtoken::jwk::PublicKeyUse;
    if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
        return None;
    }
    let by_type: &[Algorithm] = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => &[Algorithm::RS256, Algorithm::RS384, Algorithm::RS512],
        AlgorithmParameters::EllipticCurve(p) => match p.curve {
            EllipticCurve::P256 => &[Algorithm::ES256],
            EllipticCurve::P384 => &[Algorithm::ES384],
            _ => return None,
        },
        AlgorithmParameters::OctetKeyPair(p) if p.curve == EllipticCurve::Ed25519 => {
            &[Algorithm::EdDSA]
        }
        // Symmetric keys do not belong in a published key set.
        _ => return None,
    };
    let algorithms: Vec<Algorithm> = match &jwk.common.key_algorithm {
        None => by_type.to_vec(),
        Some(named) => {
            let alg: Algorithm = named.to_string().parse().ok()?;
            if !by_type.contains(&alg) {
                return None;
            }
            vec![alg]
        }
    };
    let key = DecodingKey::from_jwk(jwk).ok()?;
    Some(VerifyKey {
        kid: jwk.common.key_id.clone(),
        algorithms,
        key,
    })
}

/// Where the public keys come from.
#[derive(Clone, Debug)]
enum Keys {
    None,
    Fixed(Arc<KeySet>),
    Remote(watch::Receiver<Remote>, Arc<tokio::sync::Notify>),
}

/// The state of a JWKS URL.
#[derive(Clone, Debug)]
enum Remote {
    /// The first fetch is under way.
    Pending,
    /// Never fetched successfully (the log has why).
    Failed,
    /// The keys of the last successful fetch.
    Loaded(Arc<KeySet>),
}

/// Verifies tokens against the configured secret and key set. Cheap to clone.
#[derive(Clone)]
pub struct JwtVerifier {
    secret: Option<DecodingKey>,
    keys: Keys,
    leeway: Duration,
}

impl std::fmt::Debug for JwtVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtVerifier")
            .field("hs256", &self.secret.is_some())
            .field("keys", &self.keys)
            .field("leeway", &self.leeway)
            .finish()
    }
}

impl Default for JwtVerifier {
    fn default() -> Self {
        Self::new()
    }
}

impl JwtVerifier {
    /// No secret, no keys: refuses every token. Leeway [`DEFAULT_LEEWAY`].
    pub fn new() -> Self {
        Self {
            secret: None,
            keys: Keys::None,
            leeway: DEFAULT_LEEWAY,
        }
    }

    /// Accept HS256 tokens signed with `secret`.
    #[must_use]
    pub fn secret(mut self, secret: &[u8]) -> Self {
        self.secret = Some(DecodingKey::from_secret(secret));
        self
    }

    /// Accept tokens signed by a key of `keys`.
    #[must_use]
    pub fn key_set(mut self, keys: KeySet) -> Self {
        self.keys = Keys::Fixed(Arc::new(keys));
        self
    }

    /// Accept tokens signed by a key of the JWKS at `url`, fetched now and
    /// every `refresh` until this verifier (and its clones) is dropped.
    /// Needs a tokio runtime.
    #[must_use]
    pub fn key_url(mut self, url: HookUrl, refresh: Duration) -> Self {
        let poke = Arc::new(tokio::sync::Notify::new());
        self.keys = Keys::Remote(spawn_refresh(url, refresh, Arc::clone(&poke)), poke);
        self
    }

    /// Tolerate clocks that disagree by `leeway` on `exp` and `nbf`.
    #[must_use]
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// Whether any secret or key set is configured.
    pub fn is_configured(&self) -> bool {
        self.secret.is_some() || !matches!(self.keys, Keys::None)
    }

    fn algorithms(&self) -> String {
        let mut v = Vec::new();
        if self.secret.is_some() {
            v.push("HS256");
        }
        if !matches!(self.keys, Keys::None) {
            v.push("RS256/RS384/RS512/ES256/ES384/EdDSA from the JWKS");
        }
        if v.is_empty() {
            "none".into()
        } else {
            v.join(", ")
        }
    }

    /// Verify `token` and check that it allows `action` on `app`/`stream`.
    pub async fn verify(
        &self,
        token: &str,
        action: AuthAction,
        app: &str,
        stream: &str,
    ) -> Result<StreamClaims, JwtError> {
        if token.len() > MAX_TOKEN_LEN || !looks_like_jwt(token) {
            return Err(JwtError::Malformed);
        }
        let header = jsonwebtoken::decode_header(token).map_err(|_| JwtError::Malformed)?;
        let wrong_algorithm =
            || JwtError::WrongAlgorithm(format!("{:?}", header.alg), self.algorithms());
        let claims = if header.alg == Algorithm::HS256 {
            let Some(secret) = &self.secret else {
                return Err(wrong_algorithm());
            };
            decode(token, secret, header.alg, self.leeway)?
        } else {
            let Some(keys) = self.current_keys().await? else {
                return Err(wrong_algorithm());
            };
            let candidates: Vec<&VerifyKey> = keys
                .keys
                .iter()
                .filter(|k| k.algorithms.contains(&header.alg))
                .filter(|k| header.kid.is_none() || k.kid == header.kid)
                .collect();
            if candidates.is_empty() {
                // Maybe a key the provider added since the last fetch: ask
                // for an early one (rate-limited); this token is refused.
                if let Keys::Remote(_, poke) = &self.keys {
                    poke.notify_one();
                }
                if keys
                    .keys
                    .iter()
                    .all(|k| !k.algorithms.contains(&header.alg))
                {
                    return Err(wrong_algorithm());
                }
                return Err(JwtError::NoKey(header.kid));
            }
            // Without a kid every key of the algorithm is tried; the first
            // answer that is not a bad signature decides.
            let mut last = JwtError::BadSignature;
            let mut found = None;
            for k in candidates {
                match decode(token, &k.key, header.alg, self.leeway) {
                    Ok(c) => {
                        found = Some(c);
                        break;
                    }
                    Err(JwtError::BadSignature) => {}
                    Err(e) => {
                        last = e;
                        break;
                    }
                }
            }
            found.ok_or(last)?
        };
        claims.check_scope(action, app, stream)?;
        Ok(claims)
    }

    /// The public keys now (`None`: no JWKS is configured), waiting
    /// (bounded) for a JWKS URL's first answer.
    async fn current_keys(&self) -> Result<Option<Arc<KeySet>>, JwtError> {
        match &self.keys {
            Keys::None => Ok(None),
            Keys::Fixed(k) => Ok(Some(Arc::clone(k))),
            Keys::Remote(rx, _) => {
                let mut rx = rx.clone();
                let state = tokio::time::timeout(
                    JWKS_FETCH_TIMEOUT,
                    rx.wait_for(|s| !matches!(s, Remote::Pending)),
                )
                .await
                .ok()
                .and_then(Result::ok)
                .map(|s| s.clone());
                match state {
                    Some(Remote::Loaded(k)) => Ok(Some(k)),
                    _ => Err(JwtError::KeysUnavailable),
                }
            }
        }
    }
}

/// Verify the signature and the time claims of `token` with `key`.
fn decode(
    token: &str,
    key: &DecodingKey,
    alg: Algorithm,
    leeway: Duration,
) -> Result<StreamClaims, JwtError> {
    use jsonwebtoken::errors::ErrorKind;
    let mut v = Validation::new(alg);
    v.algorithms = vec![alg];
    v.leeway = leeway.as_secs();
    v.validate_exp = true;
    v.validate_nbf = true;
    v.validate_aud = false;
    v.set_required_spec_claims(&["exp"]);
    match jsonwebtoken::decode::<StreamClaims>(token, key, &v) {
        Ok(d) => Ok(d.claims),
        Err(e) => Err(match e.kind() {
            ErrorKind::ExpiredSignature => JwtError::Expired,
            ErrorKind::ImmatureSignature => JwtError::NotYetValid,
            ErrorKind::InvalidSignature => JwtError::BadSignature,
            ErrorKind::InvalidAlgorithm => {
                JwtError::WrongAlgorithm(format!("{alg:?}"), String::new())
            }
            ErrorKind::MissingRequiredClaim(c) => JwtError::BadClaims(format!("missing {c:?}")),
            ErrorKind::Json(j) => JwtError::BadClaims(j.to_string()),
            // A key that cannot verify this token (wrong shape or type)
            // is a key mismatch: the token was not signed by it.
            ErrorKind::InvalidKeyFormat
            | ErrorKind::InvalidRsaKey(_)
            | ErrorKind::InvalidEcdsaKey
            | ErrorKind::InvalidEddsaKey => JwtError::BadSignature,
            _ => JwtError::Malformed,
        }),
    }
}

/// Seconds since the Unix epoch.
pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// An HS256 token allowing `actions` on `app`/`stream` (patterns allowed)
/// for `ttl` from now, signed with `secret`.
pub fn issue_hs256(
    secret: &[u8],
    app: &str,
    stream: &str,
    actions: &[AuthAction],
    ttl: Duration,
) -> Result<String, String> {
    let now = now_secs();
    let action = match actions {
        [one] => Actions::One(one.as_str().into()),
        many => Actions::Many(many.iter().map(|a| a.as_str().into()).collect()),
    };
    let claims = StreamClaims {
        app: Some(app.into()),
        stream: Some(stream.into()),
        action: Some(action),
        mediamtx_permissions: None,
        exp: now.saturating_add(ttl.as_secs()),
        iat: Some(now),
    };
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret),
    )
    .map_err(|e| e.to_string())
}

/// A duration as `90`, `90s`, `30m`, `1h`, `7d` (whole units).
pub fn parse_ttl(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (digits, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{s:?} is not a duration like 90s, 30m, 1h or 7d"))?;
    let mult = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("{s:?} is not a duration like 90s, 30m, 1h or 7d")),
    };
    match n.checked_mul(mult) {
        Some(secs) if secs > 0 => Ok(Duration::from_secs(secs)),
        _ => Err(format!("{s:?} must be more than zero and reasonable")),
    }
}

/// Fetch `url` now and every `refresh` (every [`JWKS_RETRY`] until it
/// first answers), until every receiver is dropped.
fn spawn_refresh(
    url: HookUrl,
    refresh: Duration,
    poke: Arc<tokio::sync::Notify>,
) -> watch::Receiver<Remote> {
    let (tx, rx) = watch::channel(Remote::Pending);
    let Ok(rt) = tokio::runtime::Handle::try_current() else {
        tracing::error!(target: "arcly::auth", "no tokio runtime to fetch the JWKS on");
        tx.send_replace(Remote::Failed);
        return rx;
    };
    rt.spawn(async move {
        loop {
            let fetched_at = tokio::time::Instant::now();
            match tokio::time::timeout(JWKS_FETCH_TIMEOUT, fetch(&url)).await {
                Ok(Ok(keys)) => {
                    tracing::info!(target: "arcly::auth", url = %url.authority, path = %url.path, keys = keys.len(), "JWKS loaded");
                    tx.send_replace(Remote::Loaded(Arc::new(keys)));
                }
                outcome => {
                    let why = match outcome {
                        Ok(Err(e)) => e,
                        _ => format!("no answer within {JWKS_FETCH_TIMEOUT:?}"),
                    };
                    tracing::warn!(target: "arcly::auth", url = %url.authority, path = %url.path, error = %why, "JWKS fetch failed; keeping the keys it had");
                    tx.send_if_modified(|s| match s {
                        Remote::Loaded(_) => false,
                        other => {
                            *other = Remote::Failed;
                            true
                        }
                    });
                }
            }
            let wait = if matches!(*tx.borrow(), Remote::Loaded(_)) {
                refresh
            } else {
                refresh.min(JWKS_RETRY)
            };
            tokio::select! {
                _ = tx.closed() => return,
                _ = tokio::time::sleep(wait) => {}
                _ = poke.notified() => {
                    // Asked early: not sooner than JWKS_MIN_REFETCH after
                    // the last fetch.
                    tokio::select! {
                        _ = tx.closed() => return,
                        _ = tokio::time::sleep_until(fetched_at + JWKS_MIN_REFETCH) => {}
                    }
                }
            }
        }
    });
    rx
}

/// GET a JWKS over plain HTTP/1.1.
async fn fetch(url: &HookUrl) -> Result<KeySet, String> {
    use hyper_util::rt::TokioIo;
    let tcp = tokio::net::TcpStream::connect(&url.authority)
        .await
        .map_err(|e| format!("connect {}: {e}", url.authority))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .map_err(|e| e.to_string())?;
    let conn = tokio::spawn(conn);
    let req = hyper::Request::get(url.path.as_str())
        .header(hyper::header::HOST, url.authority.as_str())
        .header(hyper::header::ACCEPT, "application/json")
        .header(hyper::header::USER_AGENT, "arcly")
        .body(Empty::<Bytes>::new())
        .map_err(|e| e.to_string())?;
    let resp = sender.send_request(req).await.map_err(|e| e.to_string());
    let out = match resp {
        Ok(resp) if resp.status().is_success() => {
            match Limited::new(resp.into_body(), MAX_JWKS_BYTES)
                .collect()
                .await
            {
                Ok(b) => KeySet::parse(&b.to_bytes()),
                Err(e) => Err(format!("reading the answer: {e}")),
            }
        }
        Ok(resp) => Err(format!("HTTP {}", resp.status().as_u16())),
        Err(e) => Err(e),
    };
    conn.abort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use arcly_core::auth::AuthAction::{Play, Publish};

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";
    /// Test keys made by `tests/data/jwt/gen.sh`.
    const RSA_DER: &[u8] = include_bytes!("../tests/data/jwt/rsa.der");
    const RSA_PUB_PEM: &[u8] = include_bytes!("../tests/data/jwt/rsa_pub.pem");
    const EC_DER: &[u8] = include_bytes!("../tests/data/jwt/ec.der");
    const JWKS: &[u8] = include_bytes!("../tests/data/jwt/jwks.json");

    fn claims(app: &str, stream: &str, action: Actions, exp: u64) -> serde_json::Value {
        serde_json::json!({"app": app, "stream": stream, "action": action, "exp": exp})
    }

    fn sign(
        alg: Algorithm,
        kid: Option<&str>,
        claims: &serde_json::Value,
        key: &EncodingKey,
    ) -> String {
        let mut h = Header::new(alg);
        h.kid = kid.map(str::to_owned);
        jsonwebtoken::encode(&h, claims, key).unwrap()
    }

    fn hs(claims: &serde_json::Value) -> String {
        sign(
            Algorithm::HS256,
            None,
            claims,
            &EncodingKey::from_secret(SECRET),
        )
    }

    fn later() -> u64 {
        now_secs() + 3600
    }

    fn one(a: &str) -> Actions {
        Actions::One(a.into())
    }

    #[tokio::test]
    async fn hs256_claims_cover_app_stream_and_action() {
        let v = JwtVerifier::new().secret(SECRET);
        let t = hs(&claims("live", "cam*", one("publish"), later()));
        assert!(v.verify(&t, Publish, "live", "cam1").await.is_ok());
        assert!(v.verify(&t, Publish, "live", "cam").await.is_ok());
        assert_eq!(
            v.verify(&t, Publish, "other", "cam1").await,
            Err(JwtError::WrongApp("live".into()))
        );
        assert_eq!(
            v.verify(&t, Publish, "live", "dog").await,
            Err(JwtError::WrongStream("cam*".into()))
        );
        assert_eq!(
            v.verify(&t, Play, "live", "cam1").await,
            Err(JwtError::WrongAction("publish".into()))
        );
        let both = Actions::Many(vec!["publish".into(), "play".into()]);
        let t = hs(&claims("*", "*", both, later()));
        assert!(v.verify(&t, Play, "any", "thing").await.is_ok());
        assert!(v.verify(&t, Publish, "any", "thing").await.is_ok());
        // Missing claims are refused, not defaulted.
        let t = hs(&serde_json::json!({"app": "live", "action": "play", "exp": later()}));
        assert!(matches!(
            v.verify(&t, Play, "live", "cam").await,
            Err(JwtError::BadClaims(_))
        ));
        let t = hs(&serde_json::json!({"app": "live", "stream": "cam", "action": "play"}));
        assert!(matches!(
            v.verify(&t, Play, "live", "cam").await,
            Err(JwtError::BadClaims(_))
        ));
    }

    /// A token an identity provider issues for MediaMTX is understood.
    #[tokio::test]
    async fn mediamtx_permissions_are_understood() {
        let v = JwtVerifier::new().secret(SECRET);
        let t = hs(&serde_json::json!({
            "mediamtx_permissions": [
                {"action": "publish", "path": "live/cam*"},
                {"action": "read", "path": ""},
                {"action": "publish", "path": "~^live/.*$"},
            ],
            "exp": later(),
        }));
        assert!(v.verify(&t, Publish, "live", "cam1").await.is_ok());
        assert!(v.verify(&t, Play, "other", "any").await.is_ok());
        assert_eq!(
            v.verify(&t, Publish, "live", "dog").await,
            Err(JwtError::NotPermitted("publish on live/dog".into())),
            "a regular expression path never matches"
        );
        // Mixed forms are refused rather than guessed at.
        let t = hs(&serde_json::json!({"app": "live", "mediamtx_permissions": [], "exp": later()}));
        assert!(matches!(
            v.verify(&t, Play, "live", "cam").await,
            Err(JwtError::BadClaims(_))
        ));
    }

    #[tokio::test]
    async fn expiry_allows_the_stated_clock_skew_and_no_more() {
        let v = JwtVerifier::new().secret(SECRET);
        let lead = DEFAULT_LEEWAY.as_secs();
        let t = hs(&claims("live", "cam", one("play"), now_secs() - lead / 3));
        assert!(
            v.verify(&t, Play, "live", "cam").await.is_ok(),
            "within the leeway"
        );
        let strict = v.clone().leeway(Duration::ZERO);
        assert_eq!(
            strict.verify(&t, Play, "live", "cam").await,
            Err(JwtError::Expired)
        );
        let t = hs(&claims("live", "cam", one("play"), now_secs() - lead - 10));
        assert_eq!(
            v.verify(&t, Play, "live", "cam").await,
            Err(JwtError::Expired)
        );
        let mut c = claims("live", "cam", one("play"), later());
        c["nbf"] = (now_secs() + lead + 60).into();
        assert_eq!(
            v.verify(&hs(&c), Play, "live", "cam").await,
            Err(JwtError::NotYetValid)
        );
    }

    #[tokio::test]
    async fn tampered_tokens_and_other_secrets_are_refused() {
        let v = JwtVerifier::new().secret(SECRET);
        let t = hs(&claims("live", "cam", one("play"), later()));
        let parts: Vec<&str> = t.split('.').collect();
        // Another payload under the original signature.
        let other = hs(&claims("live", "*", one("publish"), later()));
        let forged = format!(
            "{}.{}.{}",
            parts[0],
            other.split('.').nth(1).unwrap(),
            parts[2]
        );
        assert_eq!(
            v.verify(&forged, Publish, "live", "x").await,
            Err(JwtError::BadSignature)
        );
        // One signature character changed.
        let mut sig = parts[2].to_owned();
        let c = if sig.starts_with('A') { "B" } else { "A" };
        sig.replace_range(0..1, c);
        let flipped = format!("{}.{}.{sig}", parts[0], parts[1]);
        assert_eq!(
            v.verify(&flipped, Play, "live", "cam").await,
            Err(JwtError::BadSignature)
        );
        let elsewhere = sign(
            Algorithm::HS256,
            None,
            &claims("live", "cam", one("play"), later()),
            &EncodingKey::from_secret(b"another secret of thirty-two bytes!"),
        );
        assert_eq!(
            v.verify(&elsewhere, Play, "live", "cam").await,
            Err(JwtError::BadSignature)
        );
        for junk in ["a.b", "a.b.c.d", "....", "x.y.z", ""] {
            assert_eq!(
                v.verify(junk, Play, "live", "cam").await,
                Err(JwtError::Malformed),
                "{junk}"
            );
        }
        let long = format!("{}{}", t, "A".repeat(MAX_TOKEN_LEN));
        assert_eq!(
            v.verify(&long, Play, "live", "cam").await,
            Err(JwtError::Malformed)
        );
    }

    /// The classic confusion: an HS256 token whose HMAC key is the RSA
    /// public key (which anyone has). Refused whether or not a secret is
    /// configured; an unsigned (`alg: none`) token too.
    #[tokio::test]
    async fn hs256_signed_with_the_public_key_is_refused() {
        let c = claims("live", "cam", one("publish"), later());
        let confused = sign(
            Algorithm::HS256,
            Some("rsa-1"),
            &c,
            &EncodingKey::from_secret(RSA_PUB_PEM),
        );
        let jwks_only = JwtVerifier::new().key_set(KeySet::parse(JWKS).unwrap());
        assert!(matches!(
            jwks_only.verify(&confused, Publish, "live", "cam").await,
            Err(JwtError::WrongAlgorithm(..))
        ));
        let both = jwks_only.clone().secret(SECRET);
        assert_eq!(
            both.verify(&confused, Publish, "live", "cam").await,
            Err(JwtError::BadSignature)
        );
        let unsigned = format!(
            "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{}.",
            confused.split('.').nth(1).unwrap()
        );
        assert!(both
            .verify(&unsigned, Publish, "live", "cam")
            .await
            .is_err());
        // And the other way round: an RS256 token with no JWKS configured.
        let rs = sign(
            Algorithm::RS256,
            Some("rsa-1"),
            &c,
            &EncodingKey::from_rsa_der(RSA_DER),
        );
        assert!(matches!(
            JwtVerifier::new()
                .secret(SECRET)
                .verify(&rs, Publish, "live", "cam")
                .await,
            Err(JwtError::WrongAlgorithm(..))
        ));
    }

    #[tokio::test]
    async fn a_jwks_verifies_rs256_and_es256() {
        let v = JwtVerifier::new().key_set(KeySet::parse(JWKS).unwrap());
        let c = claims("live", "cam", one("play"), later());
        let rsa = EncodingKey::from_rsa_der(RSA_DER);
        let ec = EncodingKey::from_ec_der(EC_DER);
        let rs = sign(Algorithm::RS256, Some("rsa-1"), &c, &rsa);
        assert!(v.verify(&rs, Play, "live", "cam").await.is_ok());
        let es = sign(Algorithm::ES256, Some("ec-1"), &c, &ec);
        assert!(v.verify(&es, Play, "live", "cam").await.is_ok());
        // Without a kid, the keys of the algorithm are tried.
        let es = sign(Algorithm::ES256, None, &c, &ec);
        assert!(v.verify(&es, Play, "live", "cam").await.is_ok());
        // A kid naming no key of that algorithm.
        let rs = sign(Algorithm::RS256, Some("ec-1"), &c, &rsa);
        assert_eq!(
            v.verify(&rs, Play, "live", "cam").await,
            Err(JwtError::NoKey(Some("ec-1".into())))
        );
        // The RSA JWK names RS256: RS384 with the same key is refused.
        let rs384 = sign(Algorithm::RS384, Some("rsa-1"), &c, &rsa);
        assert!(matches!(
            v.verify(&rs384, Play, "live", "cam").await,
            Err(JwtError::WrongAlgorithm(..))
        ));
        // Scope and expiry apply as to HS256.
        let expired = sign(
            Algorithm::ES256,
            Some("ec-1"),
            &claims("live", "cam", one("play"), 1000),
            &ec,
        );
        assert_eq!(
            v.verify(&expired, Play, "live", "cam").await,
            Err(JwtError::Expired)
        );
        assert_eq!(
            v.verify(&es, Publish, "live", "cam").await,
            Err(JwtError::WrongAction("play".into()))
        );
    }

    #[test]
    fn jwks_keeps_only_usable_keys() {
        let oct = br#"{"keys":[{"kty":"oct","k":"c2VjcmV0","kid":"s"}]}"#;
        assert!(
            KeySet::parse(oct).is_err(),
            "a symmetric key is not a public key"
        );
        let mixed = String::from_utf8_lossy(JWKS).replacen(
            "\"keys\": [",
            "\"keys\": [{\"kty\":\"oct\",\"k\":\"c2VjcmV0\"}, {\"kty\":\"weird\"},",
            1,
        );
        assert_eq!(KeySet::parse(mixed.as_bytes()).unwrap().len(), 2);
        assert!(KeySet::parse(b"not json").is_err());
        assert!(KeySet::parse(br#"{"nokeys":[]}"#).is_err());
        assert!(KeySet::parse(&vec![b' '; MAX_JWKS_BYTES + 1]).is_err());
    }

    /// A minimal HTTP server answering every request with `body`.
    async fn serve(body: &'static [u8]) -> std::net::SocketAddr {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                let mut buf = [0u8; 2048];
                let _ = s.read(&mut buf).await;
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = s.write_all(head.as_bytes()).await;
                let _ = s.write_all(body).await;
            }
        });
        addr
    }

    #[tokio::test]
    async fn a_jwks_url_is_fetched() {
        let addr = serve(JWKS).await;
        let url = HookUrl::parse(&format!("http://{addr}/.well-known/jwks.json")).unwrap();
        let v = JwtVerifier::new().key_url(url, DEFAULT_JWKS_REFRESH);
        let c = claims("live", "cam", one("play"), later());
        let es = sign(
            Algorithm::ES256,
            Some("ec-1"),
            &c,
            &EncodingKey::from_ec_der(EC_DER),
        );
        assert!(v.verify(&es, Play, "live", "cam").await.is_ok());

        // Nothing listens: refused at once, not after a timeout per token.
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let gone = l.local_addr().unwrap();
        drop(l);
        let v = JwtVerifier::new().key_url(
            HookUrl::parse(&format!("http://{gone}/jwks")).unwrap(),
            DEFAULT_JWKS_REFRESH,
        );
        let t = std::time::Instant::now();
        assert_eq!(
            v.verify(&es, Play, "live", "cam").await,
            Err(JwtError::KeysUnavailable)
        );
        assert!(t.elapsed() < JWKS_FETCH_TIMEOUT, "{:?}", t.elapsed());
    }

    /// A JWKS URL is fetched again every refresh interval: a key added at
    /// the identity provider is picked up, and a failed refresh keeps the
    /// keys already loaded.
    #[tokio::test]
    async fn a_jwks_url_is_refreshed_and_a_bad_answer_keeps_the_keys() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let rsa_only: Vec<u8> = {
            let mut v: serde_json::Value = serde_json::from_slice(JWKS).unwrap();
            v["keys"]
                .as_array_mut()
                .unwrap()
                .retain(|k| k["kty"] == "RSA");
            serde_json::to_vec(&v).unwrap()
        };
        let body = Arc::new(std::sync::Mutex::new(rsa_only));
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let served = Arc::clone(&body);
        tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                let mut buf = [0u8; 2048];
                let _ = s.read(&mut buf).await;
                let b = served.lock().unwrap().clone();
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    b.len()
                );
                let _ = s.write_all(head.as_bytes()).await;
                let _ = s.write_all(&b).await;
            }
        });
        let url = HookUrl::parse(&format!("http://{addr}/jwks")).unwrap();
        let v = JwtVerifier::new().key_url(url, Duration::from_millis(100));
        let c = claims("live", "cam", one("play"), later());
        let es = sign(
            Algorithm::ES256,
            Some("ec-1"),
            &c,
            &EncodingKey::from_ec_der(EC_DER),
        );
        assert!(matches!(
            v.verify(&es, Play, "live", "cam").await,
            Err(JwtError::WrongAlgorithm(..))
        ));
        *body.lock().unwrap() = JWKS.to_vec();
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while v.verify(&es, Play, "live", "cam").await.is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "the new key was never fetched"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        *body.lock().unwrap() = b"not a key set".to_vec();
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(
            v.verify(&es, Play, "live", "cam").await.is_ok(),
            "keys kept"
        );
    }

    /// A token signed with a key the provider added after the last fetch
    /// makes the JWKS be fetched early, long before the refresh interval.
    #[tokio::test]
    async fn an_unknown_key_fetches_the_jwks_early() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let rsa_only: Vec<u8> = {
            let mut v: serde_json::Value = serde_json::from_slice(JWKS).unwrap();
            v["keys"]
                .as_array_mut()
                .unwrap()
                .retain(|k| k["kty"] == "RSA");
            serde_json::to_vec(&v).unwrap()
        };
        let body = Arc::new(std::sync::Mutex::new(rsa_only));
        let fetches = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let (served, counted) = (Arc::clone(&body), Arc::clone(&fetches));
        tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                let mut buf = [0u8; 2048];
                let _ = s.read(&mut buf).await;
                counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let b = served.lock().unwrap().clone();
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    b.len()
                );
                let _ = s.write_all(head.as_bytes()).await;
                let _ = s.write_all(&b).await;
            }
        });
        let url = HookUrl::parse(&format!("http://{addr}/jwks")).unwrap();
        let v = JwtVerifier::new().key_url(url, Duration::from_secs(3600));
        let c = claims("live", "cam", one("play"), later());
        let es = sign(
            Algorithm::ES256,
            Some("ec-1"),
            &c,
            &EncodingKey::from_ec_der(EC_DER),
        );
        assert!(v.verify(&es, Play, "live", "cam").await.is_err());
        *body.lock().unwrap() = JWKS.to_vec();
        let deadline = std::time::Instant::now() + JWKS_MIN_REFETCH + Duration::from_secs(20);
        while v.verify(&es, Play, "live", "cam").await.is_err() {
            assert!(std::time::Instant::now() < deadline, "no early fetch");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        // Dozens of refused tokens cost one early fetch, not one each.
        let n = fetches.load(std::sync::atomic::Ordering::SeqCst);
        assert!((2..=3).contains(&n), "{n} fetches");
    }

    #[test]
    fn shapes_patterns_and_durations() {
        assert!(looks_like_jwt("eyJh.eyJh.sig-_"));
        assert!(looks_like_jwt("eyJh.eyJh."));
        assert!(!looks_like_jwt("plain-token"));
        assert!(!looks_like_jwt("a.b"));
        assert!(!looks_like_jwt("a.b+c.d"));
        assert!(matches("*", "x") && matches("cam*", "cam") && matches("cam*", "cam2"));
        assert!(matches("*-hd", "a-hd") && matches("a*z", "az") && !matches("a*z", "a"));
        assert!(!matches("cam*", "dog") && !matches("cam", "cam2") && !matches("a**", "a"));
        assert_eq!(parse_ttl("90").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_ttl("1h").unwrap(), Duration::from_secs(3600));
        assert_eq!(parse_ttl("7d").unwrap(), Duration::from_secs(7 * 86_400));
        for bad in ["", "0", "h", "1y", "-1m", "99999999999999999999d"] {
            assert!(parse_ttl(bad).is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn issued_tokens_verify() {
        let t = issue_hs256(
            SECRET,
            "live",
            "cam",
            &[Publish, Play],
            Duration::from_secs(60),
        )
        .unwrap();
        let v = JwtVerifier::new().secret(SECRET).leeway(Duration::ZERO);
        let c = v.verify(&t, Play, "live", "cam").await.unwrap();
        assert!(c.exp >= now_secs() + 59 && c.exp <= now_secs() + 61);
        assert_eq!(
            c.action.unwrap(),
            Actions::Many(vec!["publish".into(), "play".into()])
        );
    }
}
