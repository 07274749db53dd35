//! Sealing request bodies into blobs and opening stored packages again,
//! streaming: at most one package of plaintext is held at a time.

use std::pin::Pin;

use bytes::{Bytes, BytesMut};
use futures::{Stream, StreamExt};
use strongroom_crypt::{Key, Opener, PACKAGE, Sealer, StreamKeys, random_salt, sealed_span};
use strongroom_store::{BlobWriter, PendingSegment, Segment, SegmentReader, StoreError};

fn crypt_err(e: strongroom_crypt::CryptError) -> StoreError {
    StoreError::Io(std::io::Error::other(e))
}

/// A blob writer that seals what it is given.
pub(crate) struct SealedWriter {
    inner: BlobWriter,
    sealer: Option<Sealer>,
    salt: [u8; 16],
    layers: u8,
    plain: u64,
}

impl SealedWriter {
    pub(crate) fn new(inner: BlobWriter, keys: &[Key]) -> Result<SealedWriter, StoreError> {
        let salt = random_salt().map_err(crypt_err)?;
        let refs: Vec<&Key> = keys.iter().collect();
        let stream = StreamKeys::derive(&refs, &salt).map_err(crypt_err)?;
        Ok(SealedWriter {
            inner,
            sealer: Some(Sealer::new(stream)),
            salt,
            layers: u8::try_from(keys.len()).unwrap_or(u8::MAX),
            plain: 0,
        })
    }

    /// Appends plaintext.
    pub(crate) async fn write(&mut self, data: Bytes) -> Result<(), StoreError> {
        self.plain += data.len() as u64;
        let Some(s) = self.sealer.as_mut() else {
            return Err(StoreError::Corrupt("sealed writer already finished".into()));
        };
        s.update(&data).map_err(crypt_err)?;
        let sealed = s.take();
        if !sealed.is_empty() {
            self.inner.write(sealed).await?;
        }
        Ok(())
    }

    /// Seals the last package and makes the blob durable.
    pub(crate) async fn finish(mut self) -> Result<PendingSegment, StoreError> {
        if let Some(s) = self.sealer.take() {
            let last = s.finish().map_err(crypt_err)?;
            self.inner.write(last).await?;
        }
        let mut p = self.inner.finish().await?;
        p.segment.len = self.plain;
        p.segment.salt = Some(hex_simd::encode_to_string(self.salt, hex_simd::AsciiCase::Lower));
        p.segment.layers = self.layers;
        Ok(p)
    }

    /// Abandons the blob.
    pub(crate) fn discard(self) {
        self.inner.discard();
    }
}

pub(crate) type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes, std::io::Error>> + Send + Sync>>;

/// Packages read at a time.
const PACKAGES_A_READ: usize = 4;

/// Streams plaintext `[from, to)` of an encrypted segment.
pub(crate) fn open_sealed(
    reader: SegmentReader,
    seg: &Segment,
    keys: &[Key],
    from: u64,
    to: u64,
) -> Result<ByteStream, StoreError> {
    let salt = seg
        .salt
        .as_deref()
        .and_then(|s| hex_simd::decode_to_vec(s).ok())
        .and_then(|v| <[u8; 16]>::try_from(v.as_slice()).ok())
        .ok_or_else(|| StoreError::Corrupt("segment salt malformed".into()))?;
    if usize::from(seg.layers) != keys.len() {
        return Err(StoreError::Corrupt("segment layers do not match its keys".into()));
    }
    let refs: Vec<&Key> = keys.iter().collect();
    let opener = Opener::new(StreamKeys::derive(&refs, &salt).map_err(crypt_err)?, seg.len);
    let (first, offset, len) = sealed_span(seg.len, keys.len(), from, to);
    let stride = opener.stride();
    let raw = reader.into_stream(offset, len, stride * PACKAGES_A_READ);
    let skip = from - first * PACKAGE as u64;
    let want = to - from;
    // (index of the next package, plaintext bytes still to skip, to give)
    let mut state = (first, skip, want);
    let s = raw.map(move |chunk| -> Result<Vec<Bytes>, std::io::Error> {
        let (index, skip, want) = &mut state;
        // packages are opened in place in the buffer read, and handed on as
        // slices of it: no copy
        let mut buf = chunk?.try_into_mut().unwrap_or_else(|b| BytesMut::from(&b[..]));
        let mut spans = Vec::with_capacity(PACKAGES_A_READ);
        let mut at = 0;
        while at < buf.len() {
            let end = (at + stride).min(buf.len());
            let n = opener
                .open(*index, &mut buf[at..end])
                .map_err(|e| std::io::Error::other(format!("stored data failed authentication: {e}")))?;
            *index += 1;
            spans.push((at, n));
            at = end;
        }
        let frozen = buf.freeze();
        let mut out = Vec::with_capacity(spans.len());
        for (at, n) in spans {
            let drop_front = usize::try_from(*skip).unwrap_or(usize::MAX).min(n);
            *skip -= drop_front as u64;
            let take = usize::try_from(*want).unwrap_or(usize::MAX).min(n - drop_front);
            *want -= take as u64;
            if take > 0 {
                out.push(frozen.slice(at + drop_front..at + drop_front + take));
            }
        }
        Ok(out)
    });
    Ok(Box::pin(s.flat_map(|r| match r {
        Ok(v) => futures::stream::iter(v.into_iter().map(Ok)).left_stream(),
        Err(e) => futures::stream::once(futures::future::ready(Err(e))).right_stream(),
    })))
}
