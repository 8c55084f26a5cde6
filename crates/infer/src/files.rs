//! [`ModelFiles`]: a model directory's files, read once.
//!
//! The loaders parse exactly these bytes and the model id is their sha256, so the id always
//! describes what was loaded: a file that changes between two reads cannot slip in, and
//! every file a loader reads is part of the id (optional ones too: adding, removing or
//! editing `1_Pooling/config.json` changes the vectors and so the id).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::InferError;

pub struct ModelFiles {
    dir: PathBuf,
    /// name -> bytes; `None`: an optional file that is absent.
    files: BTreeMap<&'static str, Option<Vec<u8>>>,
    id: String,
}

impl ModelFiles {
    /// Read `required` (each must exist) and `optional` (each may be absent) under `dir`.
    /// The id hashes, in the given order, each file's name, length and bytes, and for an
    /// absent optional file its name and a marker.
    pub fn read(dir: &Path, required: &[&'static str], optional: &[&'static str]) -> Result<Self, InferError> {
        let mut h = Sha256::new();
        let mut files = BTreeMap::new();
        for name in required.iter().chain(optional) {
            let path = dir.join(name);
            let bytes = match std::fs::read(&path) {
                Ok(b) => Some(b),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && optional.contains(name) => None,
                Err(source) => return Err(InferError::MissingFile { path, source }),
            };
            h.update(name.as_bytes());
            match &bytes {
                Some(b) => {
                    h.update((b.len() as u64).to_le_bytes());
                    h.update(b);
                }
                None => h.update(u64::MAX.to_le_bytes()),
            }
            files.insert(*name, bytes);
        }
        Ok(ModelFiles { dir: dir.to_path_buf(), files, id: hex::encode(h.finalize()) })
    }

    /// sha256 over the files, hex.
    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// A file's bytes; `None` when an optional file is absent (or `name` was not read).
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.files.get(name).and_then(|b| b.as_deref())
    }

    /// A required file's bytes.
    pub fn required(&self, name: &str) -> Result<&[u8], InferError> {
        self.get(name).ok_or_else(|| InferError::MissingFile {
            path: self.path(name),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "not read"),
        })
    }

    /// Parse a required JSON file.
    pub fn required_json<T: serde::de::DeserializeOwned>(&self, name: &str) -> Result<T, InferError> {
        serde_json::from_slice(self.required(name)?).map_err(|e| InferError::BadConfig { path: self.path(name), reason: e.to_string() })
    }

    /// Parse a JSON file, if present.
    pub fn json<T: serde::de::DeserializeOwned>(&self, name: &str) -> Result<Option<T>, InferError> {
        self.get(name)
            .map(|b| serde_json::from_slice(b).map_err(|e| InferError::BadConfig { path: self.path(name), reason: e.to_string() }))
            .transpose()
    }

    /// Load a safetensors file's tensors; a truncated or malformed file is an error naming it.
    pub fn tensors(
        &self,
        name: &str,
        device: &candle_core::Device,
    ) -> Result<std::collections::HashMap<String, candle_core::Tensor>, InferError> {
        candle_core::safetensors::load_buffer(self.required(name)?, device)
            .map_err(|e| InferError::BadModel { path: self.path(name), reason: format!("not a readable safetensors file: {e}") })
    }
}
