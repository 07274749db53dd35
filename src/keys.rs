//! The server master keyring: loaded from `STRONGROOM_MASTER_KEYS`, an
//! operator's `--master-key-file`, or `<data-dir>/master.keys` (generated
//! with a fresh random key on first start, mode 0600). A keyring file that
//! other users can read is refused; an all-zero key is refused.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use strongroom_crypt::{Key, MasterKeys, key_line};

/// The default keyring file of a data directory.
pub fn default_path(data_dir: &Path) -> PathBuf {
    data_dir.join("master.keys")
}

fn check_mode(path: &Path) -> anyhow::Result<()> {
    let mode = std::fs::metadata(path)
        .with_context(|| format!("reading {}", path.display()))?
        .permissions()
        .mode();
    if mode & 0o007 != 0 {
        bail!(
            "{} is accessible to other users (mode {:o}); refusing to use it as a master keyring (chmod 600 it)",
            path.display(),
            mode & 0o777
        );
    }
    Ok(())
}

const HEADER: &str = "# Strongroom master keyring: one key a line, the last is active.\n# Losing this file loses every encrypted object. Keep a copy apart from the data.\n";

/// Loads the keyring, generating the default one on first start.
pub fn load(data_dir: &Path, file: Option<&Path>) -> anyhow::Result<MasterKeys> {
    if let Ok(env) = std::env::var("STRONGROOM_MASTER_KEYS") {
        let text = env.replace(',', "\n");
        return MasterKeys::parse(&text).context("STRONGROOM_MASTER_KEYS");
    }
    let path = file.map_or_else(|| default_path(data_dir), Path::to_path_buf);
    if !path.exists() {
        if file.is_some() {
            bail!("master keyring {} does not exist", path.display());
        }
        let k = Key::random().map_err(|e| anyhow::anyhow!("{e}"))?;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .with_context(|| format!("creating {}", path.display()))?;
        f.write_all(format!("{HEADER}{}\n", key_line(&k)).as_bytes())?;
        f.sync_all()?;
        std::fs::File::open(data_dir)?.sync_all()?;
        tracing::info!(path = %path.display(), "generated a master key");
    }
    check_mode(&path)?;
    let text =
        zeroize::Zeroizing::new(std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?);
    MasterKeys::parse(&text).with_context(|| format!("parsing {}", path.display()))
}

/// Appends a fresh key to a keyring file: it becomes the active key for new
/// objects; older keys keep opening older objects.
pub fn rotate(path: &Path) -> anyhow::Result<String> {
    check_mode(path)?;
    let k = Key::random().map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))?;
    f.write_all(format!("{}\n", key_line(&k)).as_bytes())?;
    f.sync_all()?;
    Ok(strongroom_crypt::key_id(&k))
}
