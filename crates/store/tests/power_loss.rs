//! Power loss, simulated: the metadata store runs on a disk, and blob files
//! on a filesystem, that forget whatever was written but not synced when
//! the power goes — keeping every synced byte and a random subset of the
//! unsynced writes (some torn at sector boundaries), and keeping or losing
//! each file creation and removal whose directory was not synced — then
//! the store is opened again from what survived and checked against a
//! model:
//!
//! * every acknowledged operation is there, byte-exact (system rows — the
//!   records IAM, STS and the KMS keep —, objects over 64 KiB whose bytes
//!   live in a blob file, and multipart completions of several parts, each
//!   its own blob);
//! * the one operation in flight when the power went is there whole or not
//!   at all;
//! * after the start-up sweep, no blob file is left that no record
//!   references, and the store takes new commits.
//!
//! Seeded and reproducible: a failure prints its seed; `POWER_LOSS_SEED=N`
//! replays one case, `POWER_LOSS_CASES=N` runs more. The production code
//! path is the same (`Store::open` is `Store::open_with` on the real file
//! and filesystem).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use redb::StorageBackend;
use strongroom_store::fs::{BlobFile, BlobFs};
use strongroom_store::{ObjectHeaders, ObjectRecord, Segment, Store, StoreError};

mod common;
use common::bucket;

/// xorshift64*: small, seeded, reproducible.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

enum Op {
    Write(u64, Vec<u8>),
    SetLen(u64),
}

/// The power: one countdown of writes for the disk and the filesystem.
#[derive(Default)]
struct Power {
    /// Power goes before the write that would bring this to zero.
    writes_left: Option<u64>,
    dead: bool,
}

impl Power {
    /// Called before each write; false once the power is gone.
    fn write(&mut self) -> bool {
        if self.dead {
            return false;
        }
        if let Some(left) = self.writes_left.as_mut() {
            if *left == 0 {
                self.dead = true;
                return false;
            }
            *left -= 1;
        }
        true
    }
}

type SharedPower = Arc<Mutex<Power>>;

#[derive(Default)]
struct Disk {
    /// What survives any power loss.
    durable: Vec<u8>,
    /// What the running system reads: durable plus the pending ops.
    current: Vec<u8>,
    /// Writes and truncations since the last sync, in order.
    pending: Vec<Op>,
}

#[derive(Clone)]
struct CrashDisk(Arc<Mutex<Disk>>, SharedPower);

impl std::fmt::Debug for CrashDisk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CrashDisk")
    }
}

fn gone() -> io::Error {
    io::Error::other("power lost")
}

impl CrashDisk {
    fn new(image: Vec<u8>, power: SharedPower) -> CrashDisk {
        CrashDisk(
            Arc::new(Mutex::new(Disk {
                durable: image.clone(),
                current: image,
                ..Disk::default()
            })),
            power,
        )
    }

    /// What the disk holds after the power went: every synced byte, and a
    /// random subset of the unsynced writes, each whole, torn at 512-byte
    /// sectors, or lost, in any order. The file's length is metadata, kept
    /// in order and ahead of data (a journalled filesystem in ordered
    /// mode): the synced length or a later one, at least the length set
    /// before any write that landed; writes past it are cut off.
    fn after_power_loss(&self, rng: &mut Rng) -> Vec<u8> {
        let d = self.0.lock().unwrap();
        // which writes land, and how
        let fates: Vec<u64> = d.pending.iter().map(|_| rng.below(3)).collect();
        let mut lengths = vec![d.durable.len() as u64];
        let mut floor = 0;
        for (op, fate) in d.pending.iter().zip(&fates) {
            match op {
                Op::SetLen(l) => lengths.push(*l),
                Op::Write(..) if *fate != 0 => floor = lengths.len() - 1,
                Op::Write(..) => {}
            }
        }
        let pick = floor + rng.below((lengths.len() - floor) as u64) as usize;
        let mut img = d.durable.clone();
        img.resize(lengths[pick] as usize, 0);
        let put = |img: &mut Vec<u8>, at: usize, bytes: &[u8]| {
            if at < img.len() {
                let n = bytes.len().min(img.len() - at);
                img[at..at + n].copy_from_slice(&bytes[..n]);
            }
        };
        for (op, fate) in d.pending.iter().zip(&fates) {
            if let Op::Write(off, data) = op {
                let off = *off as usize;
                match fate {
                    0 => {}
                    1 => put(&mut img, off, data),
                    _ => {
                        for (i, sector) in data.chunks(512).enumerate() {
                            if rng.below(2) == 0 {
                                put(&mut img, off + i * 512, sector);
                            }
                        }
                    }
                }
            }
        }
        img
    }
}

impl StorageBackend for CrashDisk {
    fn len(&self) -> Result<u64, io::Error> {
        Ok(self.0.lock().unwrap().current.len() as u64)
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), io::Error> {
        let d = self.0.lock().unwrap();
        let off = offset as usize;
        let src = d
            .current
            .get(off..off + out.len())
            .ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "read past the end"))?;
        out.copy_from_slice(src);
        Ok(())
    }

    fn set_len(&self, len: u64) -> Result<(), io::Error> {
        let mut d = self.0.lock().unwrap();
        if self.1.lock().unwrap().dead {
            return Err(gone());
        }
        d.current.resize(len as usize, 0);
        d.pending.push(Op::SetLen(len));
        Ok(())
    }

    fn sync_data(&self) -> Result<(), io::Error> {
        let mut d = self.0.lock().unwrap();
        if self.1.lock().unwrap().dead {
            return Err(gone());
        }
        d.durable = d.current.clone();
        d.pending.clear();
        Ok(())
    }

    fn write(&self, offset: u64, data: &[u8]) -> Result<(), io::Error> {
        let mut d = self.0.lock().unwrap();
        if !self.1.lock().unwrap().write() {
            return Err(gone());
        }
        let off = offset as usize;
        if d.current.len() < off + data.len() {
            d.current.resize(off + data.len(), 0);
        }
        d.current[off..off + data.len()].copy_from_slice(data);
        d.pending.push(Op::Write(offset, data.to_vec()));
        Ok(())
    }
}

/// One blob file: durable data and the appends since its last sync.
#[derive(Default, Clone)]
struct FileState {
    durable: Vec<u8>,
    current: Vec<u8>,
    pending: Vec<Vec<u8>>,
}

#[derive(Default)]
struct Fs {
    files: HashMap<PathBuf, FileState>,
    /// Entries as the running system sees them, and as they are on disk.
    live: BTreeSet<PathBuf>,
    durable: BTreeSet<PathBuf>,
    dirs: BTreeSet<PathBuf>,
}

/// A filesystem that forgets unsynced file data and unsynced directory
/// entries (creations and removals) when the power goes. Directories
/// themselves are made once, at open, and kept.
#[derive(Clone)]
struct CrashFs(Arc<Mutex<Fs>>, SharedPower);

struct CrashFile {
    fs: Arc<Mutex<Fs>>,
    power: SharedPower,
    path: PathBuf,
}

impl BlobFile for CrashFile {
    fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        let mut fs = self.fs.lock().unwrap();
        if !self.power.lock().unwrap().write() {
            return Err(gone());
        }
        let f = fs
            .files
            .get_mut(&self.path)
            .ok_or_else(|| io::Error::other("no such file"))?;
        f.current.extend_from_slice(data);
        f.pending.push(data.to_vec());
        Ok(())
    }

    fn sync_data(&self) -> io::Result<()> {
        let mut fs = self.fs.lock().unwrap();
        if self.power.lock().unwrap().dead {
            return Err(gone());
        }
        let f = fs
            .files
            .get_mut(&self.path)
            .ok_or_else(|| io::Error::other("no such file"))?;
        f.durable = f.current.clone();
        f.pending.clear();
        Ok(())
    }

    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let fs = self.fs.lock().unwrap();
        let f = fs
            .files
            .get(&self.path)
            .ok_or_else(|| io::Error::other("no such file"))?;
        let off = offset as usize;
        let src = f
            .current
            .get(off..off + buf.len())
            .ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "read past the end"))?;
        buf.copy_from_slice(src);
        Ok(())
    }
}

impl BlobFs for CrashFs {
    fn create_new(&self, path: &Path) -> io::Result<Box<dyn BlobFile>> {
        let mut fs = self.0.lock().unwrap();
        if !self.1.lock().unwrap().write() {
            return Err(gone());
        }
        if fs.live.contains(path) {
            return Err(io::Error::from(io::ErrorKind::AlreadyExists));
        }
        fs.live.insert(path.to_path_buf());
        fs.files.insert(path.to_path_buf(), FileState::default());
        Ok(Box::new(CrashFile {
            fs: self.0.clone(),
            power: self.1.clone(),
            path: path.to_path_buf(),
        }))
    }

    fn open(&self, path: &Path) -> io::Result<Box<dyn BlobFile>> {
        let fs = self.0.lock().unwrap();
        if !fs.live.contains(path) {
            return Err(io::Error::from(io::ErrorKind::NotFound));
        }
        Ok(Box::new(CrashFile {
            fs: self.0.clone(),
            power: self.1.clone(),
            path: path.to_path_buf(),
        }))
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        let mut fs = self.0.lock().unwrap();
        if !self.1.lock().unwrap().write() {
            return Err(gone());
        }
        if !fs.live.remove(path) {
            return Err(io::Error::from(io::ErrorKind::NotFound));
        }
        Ok(())
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let mut fs = self.0.lock().unwrap();
        if self.1.lock().unwrap().dead {
            return Err(gone());
        }
        let live: Vec<PathBuf> = fs.live.iter().filter(|p| p.parent() == Some(dir)).cloned().collect();
        fs.durable.retain(|p| p.parent() != Some(dir));
        fs.durable.extend(live);
        Ok(())
    }

    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        self.0.lock().unwrap().dirs.insert(dir.to_path_buf());
        Ok(())
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<(PathBuf, bool)>> {
        let fs = self.0.lock().unwrap();
        let mut out: Vec<(PathBuf, bool)> = fs
            .dirs
            .iter()
            .filter(|d| d.parent() == Some(dir))
            .map(|d| (d.clone(), true))
            .collect();
        out.extend(
            fs.live
                .iter()
                .filter(|p| p.parent() == Some(dir))
                .map(|p| (p.clone(), false)),
        );
        Ok(out)
    }

    fn len(&self, path: &Path) -> io::Result<u64> {
        let fs = self.0.lock().unwrap();
        if !fs.live.contains(path) {
            return Err(io::Error::from(io::ErrorKind::NotFound));
        }
        Ok(fs.files.get(path).map_or(0, |f| f.current.len() as u64))
    }
}

impl CrashFs {
    /// What the filesystem holds after the power went: a synced entry
    /// stays, an unsynced creation or removal may or may not have reached
    /// the disk; a file keeps its synced data and a prefix of the later
    /// appends, the last one possibly torn at a sector.
    fn after_power_loss(&self, rng: &mut Rng, power: SharedPower) -> CrashFs {
        let fs = self.0.lock().unwrap();
        let mut out = Fs {
            dirs: fs.dirs.clone(),
            ..Fs::default()
        };
        let known: BTreeSet<&PathBuf> = fs.live.iter().chain(fs.durable.iter()).collect();
        for p in known {
            let exists = match (fs.durable.contains(p), fs.live.contains(p)) {
                (true, true) => true,
                _ => rng.below(2) == 0,
            };
            if !exists {
                continue;
            }
            let f = fs.files.get(p).cloned().unwrap_or_default();
            let mut data = f.durable.clone();
            let keep = rng.below(f.pending.len() as u64 + 1) as usize;
            for (i, w) in f.pending.iter().take(keep).enumerate() {
                if i + 1 == keep && rng.below(2) == 0 {
                    let cut = (rng.below(w.len() as u64 / 512 + 1) * 512) as usize;
                    data.extend_from_slice(&w[..cut.min(w.len())]);
                } else {
                    data.extend_from_slice(w);
                }
            }
            out.live.insert(p.clone());
            out.durable.insert(p.clone());
            out.files.insert(
                p.clone(),
                FileState {
                    durable: data.clone(),
                    current: data,
                    pending: Vec::new(),
                },
            );
        }
        CrashFs(Arc::new(Mutex::new(out)), power)
    }

    fn files(&self) -> BTreeSet<PathBuf> {
        self.0.lock().unwrap().live.clone()
    }
}

/// What the model holds: system rows and objects.
#[derive(Clone, Default, PartialEq, Debug)]
struct State {
    rows: BTreeMap<String, Vec<u8>>,
    objects: BTreeMap<String, Vec<u8>>,
}

enum Step {
    /// Rows to write (Some) or delete (None) in one commit.
    Rows(Vec<(String, Option<Vec<u8>>)>),
    /// An object written (over 64 KiB: a blob file) or deleted.
    Put(String, Vec<u8>),
    /// Parts written, each its own blob made durable, then completed in one
    /// commit into an object of several segments (CompleteMultipartUpload;
    /// a copy of a multipart object takes the same path).
    Multipart(String, Vec<Vec<u8>>),
    Delete(String),
}

fn random_step(rng: &mut Rng, step: usize) -> Step {
    match rng.below(4) {
        0 => {
            let n = 1 + rng.below(4) as usize;
            Step::Rows(
                (0..n)
                    .map(|i| {
                        let name = format!("row{:02}", rng.below(24));
                        if rng.below(5) == 0 {
                            (name, None)
                        } else {
                            let len = [1usize, 100, 3000, 20_000][rng.below(4) as usize];
                            (name, Some((0..len).map(|j| (step * 31 + i * 7 + j) as u8).collect()))
                        }
                    })
                    .collect(),
            )
        }
        1 => {
            let key = format!("obj{}", rng.below(6));
            let len = [70_000usize, 300_000, 600_000][rng.below(3) as usize];
            Step::Put(key, (0..len).map(|j| (step * 13 + j / 7) as u8).collect())
        }
        2 => {
            let key = format!("obj{}", rng.below(6));
            let parts = (0..2 + rng.below(3) as usize)
                .map(|p| {
                    let len = [70_000usize, 150_000][rng.below(2) as usize];
                    (0..len).map(|j| (step * 17 + p * 5 + j / 3) as u8).collect()
                })
                .collect();
            Step::Multipart(key, parts)
        }
        _ => Step::Delete(format!("obj{}", rng.below(6))),
    }
}

fn after(state: &State, step: &Step) -> State {
    let mut s = state.clone();
    match step {
        Step::Rows(rows) => {
            for (k, v) in rows {
                match v {
                    Some(v) => {
                        s.rows.insert(k.clone(), v.clone());
                    }
                    None => {
                        s.rows.remove(k);
                    }
                }
            }
        }
        Step::Put(k, v) => {
            s.objects.insert(k.clone(), v.clone());
        }
        Step::Multipart(k, parts) => {
            s.objects.insert(k.clone(), parts.concat());
        }
        Step::Delete(k) => {
            s.objects.remove(k);
        }
    }
    s
}

fn object(segments: Vec<Segment>) -> ObjectRecord {
    ObjectRecord {
        size: segments.iter().map(|s| s.len).sum(),
        etag: "e".into(),
        last_modified_ms: 0,
        owner: "000000000001".into(),
        version_id: None,
        headers: ObjectHeaders::default(),
        tags: vec![],
        checksum: None,
        segments,
        parts: vec![],
        upload_id: None,
        sse: None,
        delete_marker: false,
        retention: None,
        legal_hold: false,
    }
}

/// One step, as the S3 layer does it: a blob written and made durable,
/// then the commit that makes it visible.
async fn run(store: &Store, step: &Step) -> Result<(), StoreError> {
    match step {
        Step::Rows(rows) => {
            let rows = rows.clone();
            store
                .commit(move |t| {
                    for (k, v) in &rows {
                        match v {
                            Some(v) => t.put_system(k, v)?,
                            None => t.delete_system(k)?,
                        }
                    }
                    Ok::<(), StoreError>(())
                })
                .await
        }
        Step::Put(key, data) => {
            let mut w = store.blob_writer();
            for chunk in data.chunks(100_000) {
                w.write(Bytes::copy_from_slice(chunk)).await?;
            }
            let p = w.finish().await?;
            let rec = object(vec![p.segment.clone()]);
            let key = key.clone();
            store
                .commit(move |t| {
                    t.add_segment(&p)?;
                    t.put_object("b", &key, &rec)
                })
                .await
        }
        Step::Multipart(key, parts) => {
            let mut pieces = Vec::new();
            for part in parts {
                let mut w = store.blob_writer();
                for chunk in part.chunks(100_000) {
                    w.write(Bytes::copy_from_slice(chunk)).await?;
                }
                pieces.push(w.finish().await?);
            }
            let rec = object(pieces.iter().map(|p| p.segment.clone()).collect());
            let key = key.clone();
            store
                .commit(move |t| {
                    for p in &pieces {
                        t.add_segment(p)?;
                    }
                    t.put_object("b", &key, &rec)
                })
                .await
        }
        Step::Delete(key) => {
            let key = key.clone();
            store.commit(move |t| t.delete_object("b", &key).map(|_| ())).await
        }
    }
}

async fn read_state(store: &Store) -> Result<State, String> {
    let mut s = State::default();
    for i in 0..24 {
        let name = format!("row{i:02}");
        if let Some(v) = store.system(&name).map_err(|e| e.to_string())? {
            s.rows.insert(name, v);
        }
    }
    for i in 0..6 {
        let key = format!("obj{i}");
        let Some(rec) = store.object("b", &key).map_err(|e| e.to_string())? else {
            continue;
        };
        let mut data = Vec::new();
        for seg in &rec.segments {
            let r = store
                .open_segment(seg)
                .map_err(|e| format!("{key}: its blob is gone: {e}"))?;
            let len = usize::try_from(seg.len).unwrap();
            data.extend_from_slice(
                &r.read_at(0, len)
                    .map_err(|e| format!("{key}: its blob is short: {e}"))?,
            );
        }
        s.objects.insert(key, data);
    }
    Ok(s)
}

fn summary(s: &State) -> String {
    format!(
        "rows {:?}, objects {:?}",
        s.rows.iter().map(|(k, v)| (k, v.len())).collect::<Vec<_>>(),
        s.objects.iter().map(|(k, v)| (k, v.len())).collect::<Vec<_>>()
    )
}

/// One case: a store, some acknowledged operations, a power cut at a
/// random write, a restart from what the disk and filesystem kept.
fn case(seed: u64, dir: &Path) {
    let mut rng = Rng::new(seed);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let power: SharedPower = Arc::default();
    let disk = CrashDisk::new(Vec::new(), power.clone());
    let fs = CrashFs(Arc::default(), power.clone());
    let store = Store::open_with(dir, disk.clone(), Arc::new(fs.clone())).unwrap();
    rt.block_on(store.commit(|t| t.put_bucket(&bucket("b")))).unwrap();
    let steps = 1 + rng.below(12) as usize;
    // a power cut somewhere in the next steps' writes (or none: a clean stop)
    let cut_at = rng.below(steps as u64 + 1) as usize;
    let mut model = State::default();
    let mut in_flight: Option<State> = None;
    for i in 0..steps {
        if i == cut_at {
            power.lock().unwrap().writes_left = Some(rng.below(60));
        }
        let step = random_step(&mut rng, i);
        let next = after(&model, &step);
        match rt.block_on(run(&store, &step)) {
            Ok(()) => {
                // acknowledged: it must survive, even if the power went
                // during what followed its commit (removing released blobs)
                model = next;
                if power.lock().unwrap().dead {
                    break;
                }
            }
            Err(e) => {
                assert!(power.lock().unwrap().dead, "seed {seed}: failed with the power on: {e}");
                in_flight = Some(next);
                break;
            }
        }
    }
    drop(store);
    // a commit may still be on the writer thread: it fails on the dead disk
    let image = disk.after_power_loss(&mut rng);
    let power2: SharedPower = Arc::default();
    let fs2 = fs.after_power_loss(&mut rng, power2.clone());
    let store = Store::open_with(dir, CrashDisk::new(image, power2.clone()), Arc::new(fs2.clone()))
        .unwrap_or_else(|e| panic!("seed {seed}: the store does not open after a power loss: {e}"));
    let got = rt.block_on(read_state(&store)).unwrap_or_else(|e| {
        panic!(
            "seed {seed}: after the power loss: {e}\nacknowledged: {}",
            summary(&model)
        )
    });
    assert!(
        got == model || in_flight.as_ref() == Some(&got),
        "seed {seed}: after the power loss the store is neither the acknowledged state nor that plus the \
         operation in flight\nacknowledged: {}\nfound:        {}",
        summary(&model),
        summary(&got)
    );
    // the sweep left no blob file that no record references
    let referenced: BTreeSet<String> = (0..6)
        .filter_map(|i| store.object("b", &format!("obj{i}")).unwrap())
        .flat_map(|r| r.segments.into_iter().filter(|s| !s.inline).map(|s| s.id.hex()))
        .collect();
    for f in fs2.files() {
        let name = f.file_name().unwrap().to_str().unwrap().to_owned();
        assert!(
            referenced.contains(&name),
            "seed {seed}: orphan blob {name} survived the sweep"
        );
    }
    // and it goes on working
    rt.block_on(run(&store, &Step::Put("obj0".into(), vec![5; 70_000])))
        .unwrap_or_else(|e| panic!("seed {seed}: no write after the restart: {e}"));
}

#[test]
fn acknowledged_operations_survive_power_loss_and_the_one_in_flight_is_whole_or_absent() {
    // the filesystem is simulated; the directory only names the paths
    let dir = Path::new("/power-loss-simulated");
    if let Ok(seed) = std::env::var("POWER_LOSS_SEED") {
        case(seed.parse().unwrap(), dir);
        return;
    }
    let cases: u64 = std::env::var("POWER_LOSS_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(2_000);
    for seed in 1..=cases {
        case(seed, dir);
    }
}
