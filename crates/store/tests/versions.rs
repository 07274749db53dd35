//! The versions contract: newest first per key, keys in listing order,
//! markers resume a scan, version data lives until its version is deleted
//! (also across a restart's sweep), and `set_current` never releases.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use bytes::Bytes;
use strongroom_store::{BucketRecord, ObjectHeaders, ObjectRecord, Store, StoreError, Visit};

fn object(seg: strongroom_store::Segment, vid: &str) -> ObjectRecord {
    ObjectRecord {
        size: seg.len,
        etag: vid.into(),
        last_modified_ms: 0,
        owner: "000000000001".into(),
        version_id: Some(vid.into()),
        headers: ObjectHeaders::default(),
        tags: vec![],
        checksum: None,
        segments: vec![seg],
        parts: vec![],
        upload_id: None,
        sse: None,
        delete_marker: false,
        retention: None,
        legal_hold: false,
    }
}

async fn blob(store: &Store, n: usize) -> strongroom_store::PendingSegment {
    let mut w = store.blob_writer();
    w.write(Bytes::from(vec![7u8; n])).await.unwrap();
    w.finish().await.unwrap()
}

fn blob_files(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir.join("blobs"))
        .unwrap()
        .filter_map(Result::ok)
        .map(|s| std::fs::read_dir(s.path()).map(|f| f.count()).unwrap_or(0))
        .sum()
}

async fn setup(store: &Store) {
    store
        .commit(|t| {
            t.put_bucket(&BucketRecord {
                name: "b".into(),
                id: String::new(),
                owner: "000000000001".into(),
                created_ms: 0,
                location: None,
                tags: None,
                configs: BTreeMap::new(),
            })
        })
        .await
        .unwrap();
}

/// Writes a new version of `key` (a blob of `n` bytes) and makes it current.
async fn put(store: &Store, key: &'static str, vid: &'static str, n: usize, now: u64) -> u64 {
    let p = blob(store, n).await;
    let rec = object(p.segment.clone(), vid);
    store
        .commit(move |t| -> Result<u64, StoreError> {
            t.add_segment(&p)?;
            let seq = t.next_version_seq("b", key, now)?;
            t.put_version("b", key, seq, &rec)?;
            t.set_current("b", key, Some(&rec))?;
            Ok(seq)
        })
        .await
        .unwrap()
}

fn listing(store: &Store, prefix: &str, after: Option<(&str, Option<u64>)>) -> Vec<(String, String)> {
    let mut out = Vec::new();
    store
        .scan_versions("b", prefix, after, |k, _, rec| {
            out.push((k.to_owned(), rec.version_id.unwrap_or_default()));
            Visit::Continue
        })
        .unwrap();
    out
}

#[tokio::test]
async fn versions_list_newest_first_in_key_order_and_resume_after_markers() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    setup(&store).await;
    let a1 = put(&store, "a", "a1", 10, 100).await;
    let a2 = put(&store, "a", "a2", 10, 100).await; // same clock: still newer
    let _ab = put(&store, "ab", "ab1", 10, 50).await;
    let _b = put(&store, "b/x", "bx1", 10, 200).await;
    assert!(a2 > a1);
    let all = listing(&store, "", None);
    let want = [("a", "a2"), ("a", "a1"), ("ab", "ab1"), ("b/x", "bx1")];
    assert_eq!(
        all,
        want.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<Vec<_>>()
    );
    // resume after a (key, version) marker and after a key marker
    assert_eq!(listing(&store, "", Some(("a", Some(a2))))[0], ("a".into(), "a1".into()));
    assert_eq!(listing(&store, "", Some(("a", None)))[0], ("ab".into(), "ab1".into()));
    assert_eq!(listing(&store, "b/", None), vec![("b/x".into(), "bx1".into())]);
    // skipping a prefix (delimiter folding)
    let mut seen = Vec::new();
    store
        .scan_versions("b", "", None, |k, _, _| {
            seen.push(k.to_owned());
            if k.starts_with('a') {
                Visit::SkipPrefix("a".into())
            } else {
                Visit::Continue
            }
        })
        .unwrap();
    assert_eq!(seen, vec!["a".to_string(), "b/x".to_string()]);
    assert_eq!(
        store.version("b", "a", a1).unwrap().unwrap().version_id.as_deref(),
        Some("a1")
    );
}

#[tokio::test]
async fn find_version_by_reads_newest_first_and_stops_at_the_first_match() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    setup(&store).await;
    for (vid, now) in [("v1", 1), ("null", 2), ("v3", 3), ("v4", 4)] {
        put(&store, "k", vid, 10, now).await;
    }
    put(&store, "kk", "other", 10, 5).await; // another key sharing the prefix
    let (found, asked) = store
        .commit(|t| -> Result<_, StoreError> {
            let mut asked = Vec::new();
            let found = t.find_version_by("b", "k", |r| {
                asked.push(r.version_id.clone().unwrap_or_default());
                r.version_id.as_deref() == Some("null")
            })?;
            Ok((found, asked))
        })
        .await
        .unwrap();
    let (seq, rec) = found.unwrap();
    assert_eq!(rec.version_id.as_deref(), Some("null"));
    assert_eq!(
        store.version("b", "k", seq).unwrap().unwrap().version_id.as_deref(),
        Some("null")
    );
    assert_eq!(asked, ["v4", "v3", "null"], "newest first, no further than the match");
    // no match: every version of the key is asked, none of another key's
    let missing = store
        .commit(|t| t.find_version_by("b", "k", |r| r.version_id.as_deref() == Some("other")))
        .await
        .unwrap();
    assert!(missing.is_none());
}

#[tokio::test]
async fn version_data_lives_until_the_version_is_deleted_even_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(dir.path()).unwrap();
        setup(&store).await;
        let v1 = put(&store, "k", "v1", 100_000, 1).await;
        let _v2 = put(&store, "k", "v2", 100_000, 2).await;
        // two file blobs: the noncurrent version's data was not released
        assert_eq!(blob_files(dir.path()), 2);
        drop(store);
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(blob_files(dir.path()), 2, "the sweep keeps version-only blobs");
        let old = store
            .commit(move |t| t.delete_version("b", "k", v1))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(old.version_id.as_deref(), Some("v1"));
        for _ in 0..50 {
            if blob_files(dir.path()) == 1 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert_eq!(blob_files(dir.path()), 1);
        let left = store.commit(|t| t.versions("b", "k")).await.unwrap();
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].1.version_id.as_deref(), Some("v2"));
        // a delete marker: no current object, the version stays
        store
            .commit(|t| -> Result<(), StoreError> {
                let seq = t.next_version_seq("b", "k", 3)?;
                let mut marker = t.versions("b", "k")?.remove(0).1;
                marker.delete_marker = true;
                marker.segments.clear();
                marker.version_id = Some("dm".into());
                t.put_version("b", "k", seq, &marker)?;
                t.set_current("b", "k", None)
            })
            .await
            .unwrap();
        assert!(store.object("b", "k").unwrap().is_none());
        assert_eq!(blob_files(dir.path()), 1, "set_current released nothing");
    }
}
