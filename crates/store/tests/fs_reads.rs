//! The operating system's blob files: a read that must not wait for the
//! disk answers from the page cache or gives its buffer back, and the
//! buffered reads return exactly the bytes asked for.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use strongroom_store::fs::{BlobFs, RealFs};

#[test]
fn cached_reads_answer_from_the_page_cache_or_hand_the_buffer_back() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("blob");
    let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(&path, &data).unwrap();
    let f = RealFs.open(&path).unwrap();
    // just written: in the page cache, so the read is served without waiting
    let got = f
        .read_cached_into(1000, 200_000, Vec::with_capacity(7))
        .unwrap()
        .expect("a file just written is in the page cache");
    assert_eq!(got, data[1000..201_000]);
    // past the end: a short read, and the buffer comes back for the
    // blocking path (which then reports the end of the file)
    let back = f.read_cached_into(200_000, 200_000, Vec::new()).unwrap();
    let buf = back.expect_err("a short read is not an answer");
    assert!(f.read_vec_into(200_000, 200_000, buf).is_err());
    // the blocking path, into a buffer the caller allocated
    let got = f.read_vec_into(5, 299_995, Vec::with_capacity(16)).unwrap();
    assert_eq!(got, data[5..]);
}
