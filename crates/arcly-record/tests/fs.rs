//! FsStorage against hostile keys, symbolic links and real filesystem errors.

mod common;

use arcly_core::traits::{StorageBackend, StorageKey};
use arcly_core::StreamError;
use arcly_record::{FsStorage, TEMP_MARKER};
use common::tmpdir;
use proptest::prelude::*;
use std::os::unix::fs::symlink;

fn key(s: &str) -> StorageKey {
    StorageKey::new(s).unwrap()
}

#[tokio::test]
async fn put_get_append_list_delete() {
    let dir = tmpdir();
    let s = FsStorage::new(dir.path()).unwrap();
    s.put(&key("a/b/c.m3u8"), "one".into()).await.unwrap();
    s.put(&key("a/b/c.m3u8"), "two".into()).await.unwrap();
    assert_eq!(&s.get(&key("a/b/c.m3u8")).await.unwrap()[..], b"two");
    s.append(&key("a/b/1.ts"), "xy".into()).await.unwrap();
    s.append(&key("a/b/1.ts"), "z".into()).await.unwrap();
    assert_eq!(&s.get(&key("a/b/1.ts")).await.unwrap()[..], b"xyz");
    s.sync(&key("a/b/1.ts")).await.unwrap();
    match s.sync(&key("a/b/missing.ts")).await {
        Err(StreamError::Io(e)) => assert_eq!(e.kind(), std::io::ErrorKind::NotFound),
        other => panic!("sync of a missing object: {other:?}"),
    }
    s.put(&key("a/other"), "o".into()).await.unwrap();
    // A leftover temporary file of a crashed put is never listed.
    std::fs::write(
        s.root().join(format!("a/b/.c.m3u8{TEMP_MARKER}1.1")),
        b"torn",
    )
    .unwrap();
    let all = s.list("").await.unwrap();
    assert_eq!(
        all,
        vec![key("a/b/1.ts"), key("a/b/c.m3u8"), key("a/other")]
    );
    assert_eq!(s.list("a/b/").await.unwrap().len(), 2);
    assert_eq!(s.list("a/o").await.unwrap(), vec![key("a/other")]);
    assert!(s.list("nope/").await.unwrap().is_empty());
    s.delete(&key("a/b/1.ts")).await.unwrap();
    s.delete(&key("a/b/1.ts")).await.unwrap();
    s.delete(&key("never/was")).await.unwrap();
    match s.get(&key("a/b/1.ts")).await {
        Err(StreamError::Io(e)) => assert_eq!(e.kind(), std::io::ErrorKind::NotFound),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn symbolic_links_are_never_followed() {
    let dir = tmpdir();
    let outside = tmpdir();
    std::fs::write(outside.path().join("secret"), b"secret").unwrap();
    let s = FsStorage::new(dir.path()).unwrap();
    // A directory link and a file link planted inside the root.
    symlink(outside.path(), s.root().join("evil")).unwrap();
    std::fs::create_dir(s.root().join("live")).unwrap();
    symlink(outside.path().join("secret"), s.root().join("live/secret")).unwrap();
    for k in ["evil/secret", "evil/new.ts", "live/secret"] {
        let k = key(k);
        for r in [
            s.put(&k, "x".into()).await,
            s.append(&k, "x".into()).await,
            s.get(&k).await.map(|_| ()),
            s.sync(&k).await,
            s.delete(&k).await,
        ] {
            assert!(
                matches!(r, Err(StreamError::InvalidName { reason, .. }) if reason.contains("symbolic link")),
                "{k}: {r:?}"
            );
        }
    }
    assert!(s.list("evil/").await.unwrap_or_default().is_empty());
    assert!(s.list("").await.unwrap().is_empty(), "links are not listed");
    assert_eq!(
        std::fs::read(outside.path().join("secret")).unwrap(),
        b"secret"
    );
    assert!(!outside.path().join("new.ts").exists());
}

#[tokio::test]
async fn a_file_where_a_directory_should_be_is_a_clear_error() {
    let dir = tmpdir();
    let s = FsStorage::new(dir.path()).unwrap();
    s.put(&key("live"), "file".into()).await.unwrap();
    match s.append(&key("live/cam/1.ts"), "x".into()).await {
        Err(StreamError::Io(e)) => {
            assert_eq!(e.kind(), std::io::ErrorKind::NotADirectory);
            assert!(e.to_string().contains("live/cam/1.ts"), "{e}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn hostile_keys_are_refused_before_storage() {
    for bad in [
        "../x",
        "a/../../x",
        "/etc/passwd",
        "a//b",
        "./a",
        "a/.",
        "a\\..\\b",
        "c:/x",
        "a\u{0}b",
        "a\nb",
        "",
    ] {
        assert!(StorageKey::new(bad).is_err(), "{bad:?}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    /// Whatever key is accepted lands inside the root.
    #[test]
    fn accepted_keys_stay_inside_the_root(segs in proptest::collection::vec("[a-zA-Z0-9._~-]{1,12}", 1..5)) {
        let k = segs.join("/");
        let Ok(k) = StorageKey::new(&k) else { return Ok(()) };
        let dir = tmpdir();
        let s = FsStorage::new(dir.path()).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            s.put(&k, "x".into()).await.unwrap();
            let listed = s.list("").await.unwrap();
            prop_assert!(listed.contains(&k) || k.as_str().contains(TEMP_MARKER));
            let p = s.root().join(k.as_str());
            prop_assert!(std::fs::canonicalize(&p).unwrap().starts_with(s.root()));
            Ok(())
        })?;
    }
}
