//! Bucket records and `system_shared` records are kept decoded between
//! requests; the contract pinned here is that an acknowledged write is
//! never answered stale, however many readers keep the cache warm (a
//! policy, Block Public Access or bucket deletion takes effect for the
//! next request, as the authorization layer relies on).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use strongroom_store::{BucketRecord, Store, StoreError};

mod common;

/// A bucket record whose policy generation is `generation`.
fn bucket(name: &str, generation: u64) -> BucketRecord {
    let mut b = common::bucket(name);
    b.configs.insert("policy".to_owned(), generation.to_string());
    b
}

fn generation_of(r: &BucketRecord) -> u64 {
    r.configs.get("policy").unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_acknowledged_write_is_never_read_stale_while_readers_keep_the_cache_warm() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    // readers hammering the same names, so that every commit races them
    let readers: Vec<_> = (0..3)
        .map(|_| {
            let (s, stop) = (store.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut reads = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let _ = s.bucket("b").unwrap();
                    let _ = s.system_shared("pab/000000000001").unwrap();
                    reads += 1;
                }
                reads
            })
        })
        .collect();
    for i in 1..=300u64 {
        let rec = bucket("b", i);
        store
            .commit(move |t| {
                t.put_bucket(&rec)?;
                t.put_system("pab/000000000001", i.to_string().as_bytes())?;
                Ok::<_, StoreError>(())
            })
            .await
            .unwrap();
        let seen = store.bucket("b").unwrap().expect("the bucket exists");
        assert_eq!(generation_of(&seen), i, "bucket record served stale after commit {i}");
        let shared = store.bucket_shared("b").unwrap().expect("the bucket exists");
        assert_eq!(generation_of(&shared), i);
        let pab = store.system_shared("pab/000000000001").unwrap().expect("written");
        assert_eq!(
            &*pab,
            i.to_string().as_bytes(),
            "system record served stale after commit {i}"
        );
    }
    // a deleted bucket and record are gone for the next reader
    store
        .commit(|t| {
            t.delete_bucket("b")?;
            t.delete_system("pab/000000000001")?;
            Ok::<_, StoreError>(())
        })
        .await
        .unwrap();
    assert!(store.bucket("b").unwrap().is_none());
    assert!(store.system_shared("pab/000000000001").unwrap().is_none());
    stop.store(true, Ordering::Relaxed);
    let reads: u64 = readers.into_iter().map(|r| r.join().unwrap()).sum();
    assert!(reads > 300, "the readers ran alongside the commits ({reads} reads)");
    // an absent name that is created later is seen once created
    assert!(store.bucket("later").unwrap().is_none());
    let rec = bucket("later", 7);
    store.commit(move |t| t.put_bucket(&rec)).await.unwrap();
    assert_eq!(generation_of(&store.bucket("later").unwrap().unwrap()), 7);
}

#[tokio::test]
async fn a_failed_commit_leaves_the_record_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let rec = bucket("b", 1);
    store.commit(move |t| t.put_bucket(&rec)).await.unwrap();
    assert_eq!(generation_of(&store.bucket("b").unwrap().unwrap()), 1);
    // writes, then fails: the whole batch is aborted
    let rec = bucket("b", 2);
    let r = store
        .commit(move |t| {
            t.put_bucket(&rec)?;
            Err::<(), _>(StoreError::Aborted)
        })
        .await;
    assert!(r.is_err());
    assert_eq!(generation_of(&store.bucket("b").unwrap().unwrap()), 1);
}

#[tokio::test]
async fn the_cache_holds_bytes_not_just_names() {
    // one account's many buckets with large configurations must not make
    // the server keep them all (a bucket record carries every
    // configuration of its bucket)
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let config = "x".repeat(40 << 10);
    let names: Vec<String> = (0..600).map(|i| format!("big-{i:04}")).collect();
    let (n, c) = (names.clone(), config.clone());
    store
        .commit(move |t| {
            for name in &n {
                let mut rec = bucket(name, 1);
                rec.configs.insert("lifecycle".into(), c.clone());
                t.put_bucket(&rec)?;
            }
            Ok::<_, StoreError>(())
        })
        .await
        .unwrap();
    for name in &names {
        let r = store.bucket(name).unwrap().expect("created");
        assert_eq!(r.configs.get("lifecycle").map(String::len), Some(40 << 10));
    }
    let (held, _) = store.cached_bytes();
    assert!(held > 0, "records under the size limit are kept");
    assert!(held <= 16 << 20, "600 × 40 KiB held as {held} bytes");
    // a record past 64 KiB is read each time, never kept
    let mut huge = bucket("huge", 1);
    huge.configs.insert("lifecycle".into(), "y".repeat(1 << 20));
    store.commit(move |t| t.put_bucket(&huge)).await.unwrap();
    let before = store.cached_bytes().0;
    for _ in 0..3 {
        assert_eq!(
            store.bucket("huge").unwrap().unwrap().configs["lifecycle"].len(),
            1 << 20
        );
    }
    assert!(store.cached_bytes().0 <= before + 1024);
    // names of buckets that do not exist count as well
    for i in 0..100_000 {
        assert!(
            store
                .bucket(&format!("absent-{i}-{}", "z".repeat(200)))
                .unwrap()
                .is_none()
        );
    }
    assert!(store.cached_bytes().0 <= 16 << 20);
}
