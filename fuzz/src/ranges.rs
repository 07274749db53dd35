//! The `Range` header (GET, HEAD) and `x-amz-copy-source-range`
//! (UploadPartCopy) are untrusted input, and an encrypted object is read
//! through arithmetic that maps a plaintext range to the stored packages
//! that cover it (SSE-S3/KMS/C objects) or to a counter offset in the
//! AES-GCM stream (client-side encrypted objects, read ranged). Properties:
//! whatever range GET selects (`strongroom_s3::satisfiable`, over s3s's
//! parse) is a non-empty span inside the object, and refusals are exactly
//! AWS's 416 cases; reading the span through the sealed form answers
//! exactly those plaintext bytes and never touches stored bytes outside the
//! object; the GCM counter offset decrypts exactly what whole-stream
//! decryption does; a copy-source range is taken only in its one form,
//! `bytes=<first>-<last>` in digits, inside the source.
//!
//! Input: 3 bytes of object length (mod 3 packages + 100), 1 byte of
//! layers, then the header value (`bytes=...`).

use s3s::dto::Range;
use strongroom_crypt::{GcmRange, GcmStream, Key, Opener, PACKAGE, Sealer, StreamKeys, sealed_len, sealed_span};
use strongroom_s3::{copy_range, satisfiable};

fn plaintext(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 + i / 251) as u8).collect()
}

/// One case.
pub fn run(data: &[u8]) {
    let [a, b, c, layers, header @ ..] = data else { return };
    let len = (u64::from(*a) << 16 | u64::from(*b) << 8 | u64::from(*c)) % (3 * PACKAGE as u64 + 100);
    let layers = 1 + usize::from(*layers % 2);
    let Ok(header) = std::str::from_utf8(header) else {
        return;
    };
    if let Ok((start, end)) = copy_range(Some(header), len) {
        assert!(
            start < end && end <= len,
            "copy range {header} of {len}: {start}..{end}"
        );
        let spec = header.strip_prefix("bytes=").expect("accepted without bytes=");
        let (a, b) = spec.split_once('-').expect("accepted without '-'");
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit());
        assert!(digits(a) && digits(b), "copy range {header:?} accepted in another form");
        assert_eq!(
            (a.parse::<u64>().ok(), b.parse::<u64>().ok()),
            (Some(start), Some(end - 1))
        );
    }
    let Ok(range) = Range::parse(header) else { return };
    let Some(span) = satisfiable(&range, len) else {
        // unsatisfiable: only where AWS answers 416 (nothing to read)
        match range {
            Range::Int { first, .. } => assert!(first >= len, "{header} refused for {len}"),
            Range::Suffix { length } => assert!(length == 0 || len == 0, "{header} refused for {len}"),
        }
        return;
    };
    assert!(span.start < span.end && span.end <= len, "{header} of {len}: {span:?}");
    let plain = plaintext(len as usize);

    // SSE: seal, then read the span through the packages that cover it
    let k1 = Key::from_slice(&[1; 32]).expect("key");
    let k2 = Key::from_slice(&[2; 32]).expect("key");
    let dks: Vec<&Key> = [&k1, &k2][..layers].to_vec();
    let salt = [9u8; 16];
    let mut s = Sealer::new(StreamKeys::derive(&dks, &salt).expect("keys"));
    s.update(&plain).expect("seal");
    let mut sealed = s.take().to_vec();
    sealed.extend_from_slice(&s.finish().expect("seal"));
    assert_eq!(sealed.len() as u64, sealed_len(len, layers));
    let (first, off, n) = sealed_span(len, layers, span.start, span.end);
    assert!(
        off + n <= sealed.len() as u64,
        "span {off}+{n} outside {}",
        sealed.len()
    );
    let o = Opener::new(StreamKeys::derive(&dks, &salt).expect("keys"), len);
    let mut got = Vec::new();
    for (i, pkg) in sealed[off as usize..(off + n) as usize].chunks(o.stride()).enumerate() {
        let mut p = pkg.to_vec();
        let m = o.open(first + i as u64, &mut p).expect("open a package of the span");
        got.extend_from_slice(&p[..m]);
    }
    let skip = (span.start - first * PACKAGE as u64) as usize;
    let want = &plain[span.start as usize..span.end as usize];
    assert!(skip + want.len() <= got.len(), "span does not cover the range");
    assert_eq!(&got[skip..skip + want.len()], want);

    // client-side encryption: a ranged read decrypts from a counter offset
    let (key, iv) = ([7u8; 32], [5u8; 12]);
    let mut ct = plain.clone();
    let mut enc = GcmStream::new(&key, &iv, b"");
    enc.encrypt(&mut ct).expect("encrypt");
    let mut part = ct[span.start as usize..span.end as usize].to_vec();
    let mut r = GcmRange::new(&key, &iv, span.start).expect("offset inside the GCM limit");
    r.apply(&mut part);
    assert_eq!(part, want);
}
