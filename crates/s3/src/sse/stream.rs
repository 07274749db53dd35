//! Sealing request bodies into blobs and opening stored packages again,
//! streaming: at most one package of plaintext is held at a time.

use bytes::{Bytes, BytesMut};
use strongroom_crypt::{Key, Opener, PACKAGE, Sealer, StreamKeys, random_salt, sealed_span};
use strongroom_store::{BlobWriter, PendingSegment, Segment, SegmentReader, StoreError};

pub(crate) use crate::read::ByteStream;
use crate::read::{pieces, read_ahead};

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
    /// No keys: the bench's plaintext baseline, stored as given.
    pub(crate) fn new(inner: BlobWriter, keys: &[Key]) -> Result<SealedWriter, StoreError> {
        let salt = random_salt().map_err(crypt_err)?;
        let refs: Vec<&Key> = keys.iter().collect();
        let sealer = if keys.is_empty() {
            None
        } else {
            Some(Sealer::new(StreamKeys::derive(&refs, &salt).map_err(crypt_err)?))
        };
        Ok(SealedWriter {
            inner,
            sealer,
            salt,
            layers: u8::try_from(keys.len()).unwrap_or(u8::MAX),
            plain: 0,
        })
    }

    /// Appends plaintext.
    pub(crate) async fn write(&mut self, data: Bytes) -> Result<(), StoreError> {
        self.plain += data.len() as u64;
        let Some(s) = self.sealer.as_mut() else {
            return self.inner.write(data).await;
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
        let Some(s) = self.sealer.take() else {
            return self.inner.finish().await;
        };
        let last = s.finish().map_err(crypt_err)?;
        self.inner.write(last).await?;
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

/// Packages read at a time.
const PACKAGES_A_READ: usize = 4;

/// Streams plaintext `[from, to)` of an encrypted segment: only the
/// packages covering the range are read; each is opened in place in the
/// buffer read and handed on as a slice of it (no copy).
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
    let chunk = stride * PACKAGES_A_READ;
    let finish = move |i: usize, stored: Bytes| -> std::io::Result<Vec<Bytes>> {
        let mut buf = stored.try_into_mut().unwrap_or_else(|b| BytesMut::from(&b[..]));
        let mut index = first + (i * PACKAGES_A_READ) as u64;
        let mut spans = Vec::with_capacity(PACKAGES_A_READ);
        let mut at = 0;
        while at < buf.len() {
            let end = (at + stride).min(buf.len());
            let n = opener
                .open(index, &mut buf[at..end])
                .map_err(|e| std::io::Error::other(format!("stored data failed authentication: {e}")))?;
            // plaintext offset of this package within the segment
            let p0 = index * PACKAGE as u64;
            let (lo, hi) = (from.max(p0), to.min(p0 + n as u64));
            if lo < hi {
                spans.push((at + (lo - p0) as usize, (hi - lo) as usize));
            }
            index += 1;
            at = end;
        }
        let frozen = buf.freeze();
        Ok(spans.into_iter().map(|(a, n)| frozen.slice(a..a + n)).collect())
    };
    Ok(read_ahead(reader, pieces(offset, offset + len, chunk), finish))
}
