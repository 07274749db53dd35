//! The store's contract: commits are atomic and shared, blobs become
//! visible only through a commit, and unreferenced blobs do not survive a
//! restart.

use bytes::Bytes;
use strongroom_store::{INLINE_MAX, ObjectHeaders, ObjectRecord, Store, StoreError, Visit};

mod common;
use common::bucket;

fn object(seg: strongroom_store::Segment) -> ObjectRecord {
    ObjectRecord {
        size: seg.len,
        etag: "e".into(),
        last_modified_ms: 0,
        owner: "000000000001".into(),
        version_id: None,
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

fn blob_files(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir.join("blobs"))
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|s| std::fs::read_dir(s.path()).map(|f| f.count()).unwrap_or(0))
                .sum()
        })
        .unwrap_or(0)
}

async fn write(store: &Store, data: &[u8]) -> strongroom_store::PendingSegment {
    let mut w = store.blob_writer();
    for chunk in data.chunks(10_000) {
        w.write(Bytes::copy_from_slice(chunk)).await.unwrap();
    }
    w.finish().await.unwrap()
}

async fn read_all(store: &Store, rec: &ObjectRecord) -> Vec<u8> {
    use futures::StreamExt;
    let mut out = Vec::new();
    for seg in &rec.segments {
        let mut s = Box::pin(store.open_segment(seg).unwrap().into_stream(0, seg.len, 4096));
        while let Some(c) = s.next().await {
            out.extend_from_slice(&c.unwrap());
        }
    }
    out
}

#[tokio::test]
async fn small_blobs_are_inline_large_ones_are_files_and_both_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    store.commit(|t| t.put_bucket(&bucket("b"))).await.unwrap();
    let small = vec![7u8; 1000];
    let large = vec![9u8; INLINE_MAX + 1];
    for (key, data) in [("small", &small), ("large", &large)] {
        let p = write(&store, data).await;
        assert_eq!(p.segment.inline, data.len() <= INLINE_MAX);
        let rec = object(p.segment.clone());
        store
            .commit(move |t| -> Result<(), StoreError> {
                t.add_segment(&p)?;
                t.put_object("b", key, &rec)
            })
            .await
            .unwrap();
    }
    assert_eq!(blob_files(dir.path()), 1);
    for (key, data) in [("small", &small), ("large", &large)] {
        let rec = store.object("b", key).unwrap().unwrap();
        assert_eq!(&read_all(&store, &rec).await, data);
    }
    // overwriting releases the old file once the commit is durable
    let p = write(&store, b"tiny").await;
    let rec = object(p.segment.clone());
    store
        .commit(move |t| -> Result<(), StoreError> {
            t.add_segment(&p)?;
            t.put_object("b", "large", &rec)
        })
        .await
        .unwrap();
    assert_eq!(blob_files(dir.path()), 0);
}

#[tokio::test]
async fn uncommitted_blobs_are_swept_at_open() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(dir.path()).unwrap();
        let p = write(&store, &vec![1u8; INLINE_MAX * 2]).await;
        assert!(!p.segment.inline);
        assert_eq!(blob_files(dir.path()), 1);
        // never committed: as after a crash between the blob and its record
    }
    let _store = Store::open(dir.path()).unwrap();
    assert_eq!(blob_files(dir.path()), 0);
}

#[tokio::test]
async fn a_failed_mutation_leaves_the_others_of_its_batch_alone() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let mut tasks = Vec::new();
    for i in 0..200 {
        let s = store.clone();
        tasks.push(tokio::spawn(async move {
            s.commit(move |t| -> Result<(), StoreError> {
                if i % 10 == 0 {
                    // validation failure before any write
                    return Err(StoreError::Corrupt("refused".into()));
                }
                t.put_bucket(&bucket(&format!("b{i:03}")))
            })
            .await
        }));
    }
    let mut ok = 0;
    for t in tasks {
        if t.await.unwrap().is_ok() {
            ok += 1;
        }
    }
    assert_eq!(ok, 180);
    assert_eq!(store.buckets().unwrap().len(), 180);
}

#[tokio::test]
async fn scans_are_in_key_order_within_one_bucket() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    for b in ["a", "ab"] {
        store.commit(move |t| t.put_bucket(&bucket(b))).await.unwrap();
    }
    for (b, k) in [("a", "x/2"), ("a", "x/1"), ("a", "y"), ("ab", "x/0"), ("a", "é")] {
        let p = write(&store, b"v").await;
        let rec = object(p.segment.clone());
        store
            .commit(move |t| -> Result<(), StoreError> {
                t.add_segment(&p)?;
                t.put_object(b, k, &rec)
            })
            .await
            .unwrap();
    }
    let mut seen = Vec::new();
    store
        .scan_objects("a", "x/", None, |k, _| {
            seen.push(k.to_owned());
            Visit::Continue
        })
        .unwrap();
    assert_eq!(seen, ["x/1", "x/2"]);
    seen.clear();
    store
        .scan_objects("a", "", Some("x/1"), |k, _| {
            seen.push(k.to_owned());
            Visit::Continue
        })
        .unwrap();
    assert_eq!(seen, ["x/2", "y", "é"]);
    // skipping a prefix jumps over its keys without visiting them
    seen.clear();
    store
        .scan_objects("a", "", None, |k, _| {
            seen.push(k.to_owned());
            if k.starts_with("x/") {
                Visit::SkipPrefix("x/".into())
            } else {
                Visit::Continue
            }
        })
        .unwrap();
    assert_eq!(seen, ["x/1", "y", "é"]);
}

#[tokio::test]
async fn a_leased_blob_outlives_the_commit_that_releases_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    store.commit(|t| t.put_bucket(&bucket("b"))).await.unwrap();
    let p = write(&store, &vec![3u8; INLINE_MAX * 2]).await;
    let rec = object(p.segment.clone());
    store
        .commit(move |t| -> Result<(), StoreError> {
            t.add_segment(&p)?;
            t.put_object("b", "k", &rec)
        })
        .await
        .unwrap();
    let rec = store.object("b", "k").unwrap().unwrap();
    let lease = store.lease(&rec.segments);
    store.commit(|t| t.delete_object("b", "k").map(|_| ())).await.unwrap();
    assert_eq!(blob_files(dir.path()), 1, "still leased");
    assert_eq!(read_all(&store, &rec).await, vec![3u8; INLINE_MAX * 2]);
    drop(lease);
    assert_eq!(blob_files(dir.path()), 0, "removed with the last lease");
}

/// A request's rider row lands with its first writing commit that succeeds
/// — in the same transaction — and with no other.
#[tokio::test]
async fn a_rider_row_rides_the_first_writing_commit_only() {
    use strongroom_store::rider::{Rider, ride};
    let d = tempfile::tempdir().unwrap();
    let store = Store::open(d.path()).unwrap();
    let calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let c = calls.clone();
    let rider = Rider::new(Box::new(move || {
        let n = c.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Some((format!("ride/{n}"), b"row".to_vec()))
    }));
    let r = rider.clone();
    let s = store.clone();
    ride(rider.clone(), async move {
        // reads nothing, writes nothing: not carried
        s.commit(|t| t.bucket("none").map(|_| ())).await.unwrap();
        assert!(!r.rode());
        // fails: not carried (and nothing written)
        let e: Result<(), StoreError> = s.commit(|_| Err(StoreError::Aborted)).await;
        assert!(e.is_err() && !r.rode());
        // writes, several at once (as DeleteObjects' keys do): the one row,
        // carried in the same commits
        let (a, b) = tokio::join!(
            s.commit(|t| t.put_bucket(&bucket("b"))),
            s.commit(|t| t.put_bucket(&bucket("c")))
        );
        a.unwrap();
        b.unwrap();
        let c = r.carried().unwrap();
        assert_eq!((c.row.as_str(), c.name.as_str()), ("ride/0", "ride/0"));
        s.commit(|t| t.put_system("other", b"x")).await.unwrap();
    })
    .await;
    // one row, holding the one entry
    let rows = store.system_scan("ride/").unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    let entries = strongroom_store::rider::unpack(&rows[0].1).unwrap();
    assert_eq!(entries.iter().collect::<Vec<_>>(), vec![("ride/0", &b"row"[..])]);
    // made once: a request has one row
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 1);
    // a commit outside the ride carries nothing
    store.commit(|t| t.put_system("plain", b"y")).await.unwrap();
    assert_eq!(store.system_scan("ride/").unwrap().len(), 1);
}
