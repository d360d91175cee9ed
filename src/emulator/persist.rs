//! The optional state file (`--state-file`): groups, peers and ClientTokens written atomically
//! (temporary file + rename) after every change, loaded at start.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use super::idempotency::TokenRecord;
use super::model::{GroupSnapshot, PeerSnapshot};

/// Current state-file format.
pub const FORMAT: u32 = 1;

/// What the state file holds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PersistedState {
    /// [`FORMAT`].
    pub format: u32,
    /// BGP groups.
    pub bgp_groups: Vec<GroupSnapshot>,
    /// BGP peers.
    pub bgp_peers: Vec<PeerSnapshot>,
    /// Remembered ClientTokens.
    pub client_tokens: Vec<TokenRecord>,
    /// BGP networks.
    #[serde(default)]
    pub bgp_networks: Vec<super::network::NetworkSnapshot>,
}

/// A state file that cannot be read or written.
#[derive(Debug, thiserror::Error)]
pub enum PersistError {
    /// I/O failure.
    #[error("state file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The file is not a state file of a known format.
    #[error("state file {path} is not valid: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> PersistError + '_ {
    move |source| PersistError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Loads a state file; `Ok(None)` if it does not exist yet.
pub fn load(path: &Path) -> Result<Option<PersistedState>, PersistError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io(path)(e)),
    };
    let state: PersistedState = serde_json::from_str(&text).map_err(|e| PersistError::Invalid {
        path: path.to_owned(),
        message: e.to_string(),
    })?;
    if state.format != FORMAT {
        return Err(PersistError::Invalid {
            path: path.to_owned(),
            message: format!("format {} (this emulator reads {FORMAT})", state.format),
        });
    }
    Ok(Some(state))
}

/// Writes a state file atomically: a temporary file in the same directory, flushed to disk,
/// then renamed over the target.
pub fn save(path: &Path, state: &PersistedState) -> Result<(), PersistError> {
    let json = serde_json::to_vec_pretty(state).map_err(|e| PersistError::Invalid {
        path: path.to_owned(),
        message: e.to_string(),
    })?;
    let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(format!(".tmp-{}", std::process::id()));
    let tmp = path.with_file_name(tmp_name);
    let mut file = std::fs::File::create(&tmp).map_err(io(&tmp))?;
    file.write_all(&json).map_err(io(&tmp))?;
    file.sync_all().map_err(io(&tmp))?;
    drop(file);
    std::fs::rename(&tmp, path).map_err(io(path))
}

/// Serialises writes so that an older snapshot never overwrites a newer one.
#[derive(Debug)]
pub struct Persister {
    path: PathBuf,
    last_written: Mutex<u64>,
}

impl Persister {
    /// A persister for `path`.
    pub fn new(path: PathBuf) -> Self {
        Self {
            path,
            last_written: Mutex::new(0),
        }
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes `state` taken at `revision` unless a newer revision was written already.
    pub fn write(&self, revision: u64, state: &PersistedState) -> Result<(), PersistError> {
        let mut last = self
            .last_written
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if revision < *last {
            return Ok(());
        }
        save(&self.path, state)?;
        *last = revision;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::emulator::config::EmulatorConfig;
    use crate::emulator::resources::Resources;

    #[test]
    fn round_trip_and_missing_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        assert!(load(&path).unwrap().is_none());
        let res = Resources::from_config(&EmulatorConfig::demo(), jiff::Timestamp::now());
        let state = PersistedState {
            format: FORMAT,
            bgp_groups: res.bgp_groups,
            bgp_peers: res.bgp_peers,
            client_tokens: Vec::new(),
            bgp_networks: Vec::new(),
        };
        let p = Persister::new(path.clone());
        p.write(2, &state).unwrap();
        assert_eq!(load(&path).unwrap(), Some(state.clone()));
        // An older revision does not overwrite a newer one.
        let older = PersistedState {
            bgp_groups: Vec::new(),
            ..state.clone()
        };
        p.write(1, &older).unwrap();
        assert_eq!(load(&path).unwrap(), Some(state));
        // No temporary file is left behind.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn garbage_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        std::fs::write(&path, "{not json").unwrap();
        assert!(matches!(load(&path), Err(PersistError::Invalid { .. })));
        std::fs::write(
            &path,
            r#"{"Format":99,"BgpGroups":[],"BgpPeers":[],"ClientTokens":[]}"#,
        )
        .unwrap();
        assert!(matches!(load(&path), Err(PersistError::Invalid { .. })));
    }
}
