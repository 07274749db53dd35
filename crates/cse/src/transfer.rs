//! Uploads and downloads: plaintext is encrypted as it is read from disk
//! and streamed to S3 (multipart for large files, one GCM stream across
//! the parts, the tag at the end of the last, as AWS's clients do), and
//! ciphertext is decrypted into a temporary file that becomes the
//! destination only once the tag has verified. Memory stays flat.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use http_body::Frame;
use http_body_util::{BodyExt, StreamBody};
use strongroom_client::{Body, ClientError, S3};
use strongroom_crypt::{GCM_TAG, GcmStream};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use crate::content::{ContentKey, check_policy, new_content, open_content};
use crate::envelope::{Content, Envelope, INSTRUCTION_SUFFIX, Located};
use crate::{CommitmentPolicy, CseError, Format, Keyring};

/// Bytes read, encrypted and sent at a time.
const CHUNK: usize = 1 << 20;
/// S3's smallest part (all but the last).
const MIN_PART: u64 = 5 << 20;
/// S3's most parts.
const MAX_PARTS: u64 = 10_000;

/// A client-side-encrypting S3 client.
pub struct Cse {
    pub s3: S3,
    pub keyring: Keyring,
    pub policy: CommitmentPolicy,
    /// Store envelopes in `<key>.instruction` rather than object metadata.
    pub instruction_file: bool,
    /// Files at least this large go up in parts.
    pub multipart_threshold: u64,
    /// Plaintext bytes per part (rounded up to 16 and to S3's limits).
    pub part_size: u64,
}

/// How an object is encrypted, for `ls`.
#[derive(Debug, Clone)]
pub enum Description {
    Plain,
    Encrypted {
        format: Format,
        wrap: &'static str,
        instruction_file: bool,
    },
    Unreadable(String),
}

/// A byte range to read, `first..=last` (of the plaintext).
#[derive(Debug, Clone, Copy)]
pub struct Range {
    pub first: u64,
    pub last: Option<u64>,
}

fn aborted() -> CseError {
    CseError::Io(std::io::Error::other("the upload stopped reading its body"))
}

/// A body fed by a channel, and its sender.
fn channel_body() -> (mpsc::Sender<Result<Frame<Bytes>, std::io::Error>>, Body) {
    let (tx, rx) = mpsc::channel(4);
    let stream = futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|f| (f, rx)) });
    (tx, StreamBody::new(stream).boxed_unsync())
}

/// Reads `n` bytes of `file`, encrypts them and sends them; with `last`,
/// ends the GCM message and sends its tag too.
async fn produce(
    file: &mut tokio::fs::File,
    gcm: &mut Option<GcmStream>,
    mut n: u64,
    last: bool,
    tx: mpsc::Sender<Result<Frame<Bytes>, std::io::Error>>,
) -> Result<(), CseError> {
    let Some(g) = gcm.as_mut() else {
        return Err(CseError::Crypto("the content stream already ended".into()));
    };
    while n > 0 {
        let want = usize::try_from(n.min(CHUNK as u64)).unwrap_or(CHUNK);
        let mut buf = vec![0u8; want];
        file.read_exact(&mut buf).await.map_err(|e| {
            CseError::Io(std::io::Error::new(
                e.kind(),
                format!("reading the file (did it shrink while uploading?): {e}"),
            ))
        })?;
        g.encrypt(&mut buf)
            .map_err(|_| CseError::Crypto("the object is longer than GCM allows (64 GiB)".into()))?;
        n -= want as u64;
        tx.send(Ok(Frame::data(Bytes::from(buf))))
            .await
            .map_err(|_| aborted())?;
    }
    if last && let Some(g) = gcm.take() {
        let tag = g.finish();
        tx.send(Ok(Frame::data(Bytes::copy_from_slice(&tag))))
            .await
            .map_err(|_| aborted())?;
    }
    Ok(())
}

/// Runs an upload beside its producer; the upload's own error wins.
async fn upload<T>(
    up: impl Future<Output = Result<T, ClientError>>,
    prod: impl Future<Output = Result<(), CseError>>,
) -> Result<T, CseError> {
    let (u, p) = tokio::join!(up, prod);
    match (u, p) {
        (Ok(v), Ok(())) => Ok(v),
        (Err(e), _) => Err(CseError::S3(e)),
        (Ok(_), Err(e)) => Err(e),
    }
}

fn split(s3_path: &str) -> Result<(&str, &str), CseError> {
    let rest = s3_path
        .strip_prefix("s3://")
        .ok_or_else(|| CseError::Unsupported(format!("{s3_path:?} is not an s3://bucket/key URL")))?;
    rest.split_once('/')
        .filter(|(b, _)| !b.is_empty())
        .ok_or_else(|| CseError::Unsupported(format!("{s3_path:?} is not an s3://bucket/key URL")))
}

/// Parses `s3://bucket/key` (key may be empty for prefixes).
pub fn s3_url(url: &str) -> Result<(String, String), CseError> {
    split(url).map(|(b, k)| (b.to_owned(), k.to_owned()))
}

/// A temporary file that holds plaintext until it is authenticated:
/// removed when dropped (an error, a cancelled command, a panic) unless
/// [`Temp::keep`] moved it to its destination.
pub struct Temp {
    path: Option<PathBuf>,
}

impl Temp {
    /// Renames the file to `dest`, for good.
    pub async fn keep(mut self, dest: &Path) -> Result<(), CseError> {
        if let Some(p) = self.path.as_ref() {
            tokio::fs::rename(p, dest).await?;
        }
        self.path = None;
        Ok(())
    }
}

impl Drop for Temp {
    fn drop(&mut self) {
        if let Some(p) = self.path.take() {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// A temporary file beside `dest` (same filesystem, so the final rename is
/// atomic), created exclusively with a random name, mode 0600. `dest`
/// itself must be a regular file or not exist: plaintext is never renamed
/// over a device or a link such as /dev/stdout.
pub async fn temp_beside(dest: &Path) -> Result<(Temp, tokio::fs::File), CseError> {
    if let Ok(m) = tokio::fs::symlink_metadata(dest).await
        && !m.is_file()
    {
        return Err(CseError::Unsupported(format!(
            "{} exists and is not a regular file (use - for stdout)",
            dest.display()
        )));
    }
    let dir = dest
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    for _ in 0..8 {
        let mut r = [0u8; 12];
        strongroom_crypt::fill_random(&mut r).map_err(|_| CseError::Crypto("no randomness".into()))?;
        let tmp = dir.join(format!(".cse-{}.partial", hex(&r)));
        let mut opts = tokio::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        opts.mode(0o600);
        match opts.open(&tmp).await {
            Ok(f) => return Ok((Temp { path: Some(tmp) }, f)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(CseError::Io(std::io::Error::other("could not create a temporary file")))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

impl Cse {
    fn part_size(&self, len: u64) -> u64 {
        let mut p = self.part_size.max(MIN_PART);
        // at most 10,000 parts
        p = p.max(len.div_ceil(MAX_PARTS));
        // S3's largest part
        p = p.min(5 << 30);
        // whole AES blocks in every part but the last (AWS's Java client requires it)
        p.div_ceil(16) * 16
    }

    /// Encrypts a local file into `bucket/key`.
    pub async fn put_file(
        &self,
        path: &Path,
        bucket: &str,
        key: &str,
        context: &BTreeMap<String, String>,
    ) -> Result<(), CseError> {
        let mut file = tokio::fs::File::open(path).await?;
        let meta = file.metadata().await?;
        if !meta.is_file() {
            return Err(CseError::Unsupported(format!(
                "{} is not a regular file (its length is not known before it is read)",
                path.display()
            )));
        }
        let len = meta.len();
        if len > strongroom_crypt::GCM_MAX {
            return Err(CseError::Unsupported(format!(
                "{} is larger than one GCM message allows (64 GiB)",
                path.display()
            )));
        }
        let format = self.policy.writes();
        let nk = self.keyring.new_key(format, context).await?;
        let (ck, content) = new_content(format, &nk.data_key)?;
        drop(nk.data_key);
        let env = Envelope {
            content,
            wrap: nk.wrap,
            edk: nk.edk,
            context: nk.context,
        };
        let (object_meta, instruction) = if self.instruction_file {
            let (m, body) = env.to_instruction();
            (m, Some(body))
        } else {
            (env.to_metadata(), None)
        };
        let mut gcm = Some(ck.stream());
        if len == 0 || len < self.multipart_threshold {
            let (tx, body) = channel_body();
            let up = self
                .s3
                .put_object(bucket, key, body, len + GCM_TAG as u64, &object_meta);
            upload(up, produce(&mut file, &mut gcm, len, true, tx)).await?;
        } else {
            let part = self.part_size(len);
            let id = self.s3.create_multipart(bucket, key, &object_meta).await?;
            let parts = async {
                let mut etags = Vec::new();
                let mut left = len;
                let mut number = 1u32;
                while left > 0 {
                    let n = left.min(part);
                    let last = n == left;
                    let (tx, body) = channel_body();
                    let sent = n + if last { GCM_TAG as u64 } else { 0 };
                    let up = self.s3.upload_part(bucket, key, &id, number, body, sent);
                    etags.push(upload(up, produce(&mut file, &mut gcm, n, last, tx)).await?);
                    left -= n;
                    number += 1;
                }
                self.s3.complete_multipart(bucket, key, &id, &etags).await?;
                Ok::<(), CseError>(())
            }
            .await;
            if let Err(e) = parts {
                let _ = self.s3.abort_multipart(bucket, key, &id).await;
                return Err(e);
            }
        }
        if let Some(body) = instruction {
            let mut marker = BTreeMap::new();
            // AWS's Java client marks instruction files so
            marker.insert("x-amz-crypto-instr-file".to_owned(), String::new());
            self.s3
                .put_bytes(
                    bucket,
                    &format!("{key}{INSTRUCTION_SUFFIX}"),
                    Bytes::from(body),
                    &marker,
                )
                .await?;
        }
        Ok(())
    }

    async fn content_key(
        &self,
        bucket: &str,
        key: &str,
        meta: &BTreeMap<String, String>,
        context: &BTreeMap<String, String>,
    ) -> Result<ContentKey, CseError> {
        let (env, _) = envelope(&self.s3, bucket, key, meta).await?;
        // the policy first: a V2 object never reaches KMS under the strictest one
        check_policy(&env.content, self.policy)?;
        let data_key = self.keyring.unwrap(&env, context).await?;
        open_content(&env.content, &data_key, self.policy)
    }

    /// Decrypts `bucket/key` into `dest` (created or replaced only once
    /// the whole object has authenticated). Returns the plaintext length.
    pub async fn get_file(
        &self,
        bucket: &str,
        key: &str,
        dest: &Path,
        context: &BTreeMap<String, String>,
    ) -> Result<u64, CseError> {
        let (tmp, file) = temp_beside(dest).await?;
        let n = self.get_into(bucket, key, file, context).await?;
        tmp.keep(dest).await?;
        Ok(n)
    }

    async fn get_into(
        &self,
        bucket: &str,
        key: &str,
        mut out: tokio::fs::File,
        context: &BTreeMap<String, String>,
    ) -> Result<u64, CseError> {
        let (head, mut body) = self.s3.get_object(bucket, key, None).await?;
        // a partial answer to a whole-object request is refused (AWS's rule)
        if head.status != 200 || head.content_range.is_some() {
            return Err(CseError::Crypto(format!(
                "the server answered a whole-object GET with {} {}",
                head.status,
                head.content_range.as_deref().unwrap_or("")
            )));
        }
        let ck = self.content_key(bucket, key, &head.metadata, context).await?;
        let mut gcm = ck.stream();
        // the last 16 bytes received are the tag: held back, not trusted
        // from any length the server announced
        let mut held: Vec<u8> = Vec::with_capacity(2 * GCM_TAG);
        let mut plain = 0u64;
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| ClientError::Transport(format!("reading the object: {e}")))?;
            let Ok(data) = frame.into_data() else { continue };
            let mut buf = if data.len() >= GCM_TAG {
                let mut b = std::mem::take(&mut held);
                b.extend_from_slice(&data[..data.len() - GCM_TAG]);
                held.extend_from_slice(&data[data.len() - GCM_TAG..]);
                b
            } else {
                held.extend_from_slice(&data);
                let cut = held.len().saturating_sub(GCM_TAG);
                let rest = held.split_off(cut);
                std::mem::replace(&mut held, rest)
            };
            if !buf.is_empty() {
                gcm.decrypt(&mut buf)
                    .map_err(|_| CseError::Crypto("the object is longer than GCM allows".into()))?;
                plain += buf.len() as u64;
                out.write_all(&buf).await?;
            }
        }
        if held.len() != GCM_TAG {
            return Err(CseError::Crypto("the object is shorter than its tag: truncated".into()));
        }
        gcm.verify(&held).map_err(|_| {
            CseError::Crypto("the object does not authenticate (tampered, truncated or the wrong key)".into())
        })?;
        out.sync_all().await?;
        Ok(plain)
    }

    /// Decrypts plaintext bytes `range` of `bucket/key` into `dest`
    /// WITHOUT authentication (AES-CTR over the covering blocks, as AWS's
    /// Java client's legacy unauthenticated mode): the caller opted in.
    pub async fn get_range_unauthenticated(
        &self,
        bucket: &str,
        key: &str,
        range: Range,
        dest: &Path,
        context: &BTreeMap<String, String>,
    ) -> Result<u64, CseError> {
        let head = self.s3.head_object(bucket, key).await?;
        let ck = self.content_key(bucket, key, &head.metadata, context).await?;
        let plain_len = head
            .content_length
            .checked_sub(GCM_TAG as u64)
            .ok_or_else(|| CseError::Crypto("the object is shorter than its tag: truncated".into()))?;
        if plain_len > strongroom_crypt::GCM_MAX {
            return Err(CseError::Crypto(
                "the object is larger than one GCM message can be".into(),
            ));
        }
        let last = range.last.unwrap_or(u64::MAX).min(plain_len.saturating_sub(1));
        if range.first > last || plain_len == 0 {
            return Err(CseError::Unsupported("the range is outside the object".into()));
        }
        let lo = range.first / 16 * 16;
        let (tmp, mut out) = temp_beside(dest).await?;
        let (got, mut body) = self
            .s3
            .get_object(bucket, key, Some(&format!("bytes={lo}-{last}")))
            .await?;
        // the answer must be the range asked for, of the same object
        let starts = got
            .content_range
            .as_deref()
            .and_then(|r| r.strip_prefix("bytes "))
            .and_then(|r| r.split_once('-'))
            .and_then(|(a, _)| a.parse::<u64>().ok());
        if got.status != 206 || starts != Some(lo) || got.etag != head.etag {
            return Err(CseError::Crypto(
                "the server did not answer the range asked for (or the object changed)".into(),
            ));
        }
        let mut ctr = ck
            .range(lo)
            .ok_or_else(|| CseError::Crypto("the range is past what GCM allows".into()))?;
        let mut pos = lo;
        let mut written = 0u64;
        let want = last - range.first + 1;
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| ClientError::Transport(format!("reading the object: {e}")))?;
            let Ok(data) = frame.into_data() else { continue };
            let mut data = data.to_vec();
            ctr.apply(&mut data);
            let skip = usize::try_from(range.first.saturating_sub(pos).min(data.len() as u64)).unwrap_or(0);
            pos += data.len() as u64;
            let take = usize::try_from((want - written).min((data.len() - skip) as u64)).unwrap_or(0);
            out.write_all(&data[skip..skip + take]).await?;
            written += take as u64;
        }
        if written != want {
            return Err(CseError::Crypto("the range ended early".into()));
        }
        out.sync_all().await?;
        tmp.keep(dest).await?;
        Ok(written)
    }
}

/// The envelope of `bucket/key` given its metadata (reading the
/// instruction file when the envelope is there).
async fn envelope(
    s3: &S3,
    bucket: &str,
    key: &str,
    meta: &BTreeMap<String, String>,
) -> Result<(Envelope, bool), CseError> {
    match Envelope::read(meta, None)? {
        Located::Found(e) => Ok((e, false)),
        Located::NeedsInstruction => {
            let ins_key = format!("{key}{INSTRUCTION_SUFFIX}");
            let body = match s3.get_bytes(bucket, &ins_key).await {
                Ok((_, b)) => b,
                Err(e) if e.status() == Some(404) => {
                    return Err(CseError::NotEncrypted(format!(
                        "s3://{bucket}/{key} is not client-side encrypted: no envelope in its metadata and no {ins_key}"
                    )));
                }
                Err(e) => return Err(e.into()),
            };
            let ins = Envelope::parse_instruction(&body)?;
            match Envelope::read(meta, Some(&ins))? {
                Located::Found(e) => Ok((e, true)),
                Located::NeedsInstruction => Err(CseError::Envelope("the instruction file holds no envelope".into())),
            }
        }
    }
}

/// How `bucket/key` is encrypted (from its metadata and instruction
/// file; no key is used).
pub async fn describe(s3: &S3, bucket: &str, key: &str) -> Result<Description, CseError> {
    let head = s3.head_object(bucket, key).await?;
    if !Envelope::is_encrypted(&head.metadata)
        && s3
            .head_object(bucket, &format!("{key}{INSTRUCTION_SUFFIX}"))
            .await
            .is_err()
    {
        return Ok(Description::Plain);
    }
    Ok(match envelope(s3, bucket, key, &head.metadata).await {
        Ok((e, instruction_file)) => Description::Encrypted {
            format: match e.content {
                Content::V2 { .. } => Format::V2,
                Content::V3 { .. } => Format::V3,
            },
            wrap: e.wrap.v2_name(),
            instruction_file,
        },
        Err(CseError::NotEncrypted(_)) => Description::Plain,
        Err(e) => Description::Unreadable(e.to_string()),
    })
}
