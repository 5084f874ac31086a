//! The on-disk cache of compiled components, keyed by engine and content.
//!
//! Layout: `<root>/<engine key>/<sha256 of the component>.cwasm`, where the
//! engine key is a SHA-256 of wasmtime's
//! [`Engine::precompile_compatibility_hash`](wasmtime::Engine::precompile_compatibility_hash)
//! (wasmtime version, target and every setting that changes generated
//! code). Each file is `MAGIC`, then the SHA-256 of the payload, then the
//! payload that `Component::serialize` produced; a file whose checksum does
//! not match (torn write, disk corruption) is deleted and the component is
//! compiled again.

use std::hash::Hasher;
use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::component::Component;

use crate::{Error, Result};

const MAGIC: &[u8; 8] = b"UMBRACW1";

/// A directory of compiled components for one engine configuration.
#[derive(Debug)]
pub(crate) struct ComponentCache {
    dir: PathBuf,
}

/// Feeds `Hash` output into SHA-256, so that the engine key is stable across
/// processes (unlike `DefaultHasher`, which is seeded per process).
struct ShaHasher(Sha256);

impl Hasher for ShaHasher {
    fn finish(&self) -> u64 {
        // Never used: the digest is taken with `finalize` below.
        0
    }

    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

/// The engine part of the cache key.
pub(crate) fn engine_key(engine: &wasmtime::Engine) -> String {
    let mut hasher = ShaHasher(Sha256::new());
    std::hash::Hash::hash(&engine.precompile_compatibility_hash(), &mut hasher);
    hex(&hasher.0.finalize())[..32].to_owned()
}

/// Lower-case hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        let _ = write!(out, "{byte:02x}");
    }
    out
}

/// SHA-256 of `bytes`, in hex: the content part of the cache key and the
/// digest every loaded policy is identified by.
pub(crate) fn digest(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

impl ComponentCache {
    /// Opens (creating it if needed) the cache for `engine` under `root`.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if the directory cannot be created.
    pub(crate) fn open(root: &Path, engine: &wasmtime::Engine) -> Result<Self> {
        let dir = root.join(engine_key(engine));
        std::fs::create_dir_all(&dir).map_err(|source| Error::Io {
            action: "creating the compilation cache",
            path: dir.clone(),
            source,
        })?;
        Ok(Self { dir })
    }

    /// The directory files of this engine go to.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, digest: &str) -> PathBuf {
        self.dir.join(format!("{digest}.cwasm"))
    }

    /// The compiled component with content digest `digest`, if cached and
    /// intact.
    pub(crate) fn get(&self, engine: &wasmtime::Engine, digest: &str) -> Option<Component> {
        let path = self.path(digest);
        let file = std::fs::read(&path).ok()?;
        let intact = file.len() >= MAGIC.len() + 32 && &file[..MAGIC.len()] == MAGIC && {
            let (sum, payload) = file[MAGIC.len()..].split_at(32);
            Sha256::digest(payload).as_slice() == sum
        };
        if !intact {
            tracing::warn!(path = %path.display(), "corrupt compiled policy in the cache; recompiling");
            let _ = std::fs::remove_file(&path);
            return None;
        }
        let payload = &file[MAGIC.len() + 32..];
        let component = crate::unchecked::deserialize(engine, payload);
        match component {
            Ok(component) => Some(component),
            Err(error) => {
                tracing::warn!(path = %path.display(), %error, "unusable compiled policy in the cache; recompiling");
                let _ = std::fs::remove_file(&path);
                None
            }
        }
    }

    /// Stores `component` under `digest`, atomically (a reader sees the old
    /// file, no file, or the whole new one).
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if writing fails, [`Error::Engine`] if wasmtime cannot
    /// serialize the component.
    pub(crate) fn put(&self, digest: &str, component: &Component) -> Result<()> {
        let payload = component
            .serialize()
            .map_err(|e| Error::Engine(e.to_string()))?;
        let path = self.path(digest);
        let tmp = self.dir.join(format!(
            ".{digest}.{}.{:?}.tmp",
            std::process::id(),
            std::thread::current().id()
        ));
        let io = |source| Error::Io {
            action: "writing the compilation cache",
            path: tmp.clone(),
            source,
        };
        let mut file = std::fs::File::create(&tmp).map_err(io)?;
        file.write_all(MAGIC).map_err(io)?;
        file.write_all(&Sha256::digest(&payload)).map_err(io)?;
        file.write_all(&payload).map_err(io)?;
        file.sync_all().map_err(io)?;
        drop(file);
        std::fs::rename(&tmp, &path).map_err(|source| Error::Io {
            action: "writing the compilation cache",
            path: path.clone(),
            source,
        })
    }
}
