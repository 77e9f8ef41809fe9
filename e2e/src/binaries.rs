//! Finds (building once, then reusing) the pinned control-plane binaries.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::HarnessError;

/// Paths of the control-plane binaries.
#[derive(Debug, Clone)]
pub struct Binaries {
    /// kube-apiserver.
    pub apiserver: PathBuf,
    /// kube-controller-manager.
    pub controller_manager: PathBuf,
    /// etcd.
    pub etcd: PathBuf,
}

impl Binaries {
    /// Uses `KEELSON_E2E_BIN` when set; otherwise runs `e2e/controlplane/build.sh`, which
    /// returns at once when the versioned cache is complete and builds it otherwise.
    pub fn ensure() -> Result<Self, HarnessError> {
        let dir = match std::env::var_os("KEELSON_E2E_BIN") {
            Some(dir) => PathBuf::from(dir),
            None => build()?,
        };
        let bins = Binaries {
            apiserver: dir.join("kube-apiserver"),
            controller_manager: dir.join("kube-controller-manager"),
            etcd: dir.join("etcd"),
        };
        for path in [&bins.apiserver, &bins.controller_manager, &bins.etcd] {
            if !path.is_file() {
                return Err(HarnessError::Build(format!(
                    "{} is missing",
                    path.display()
                )));
            }
        }
        Ok(bins)
    }
}

fn build() -> Result<PathBuf, HarnessError> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("controlplane/build.sh");
    let out = Command::new("bash")
        .arg(&script)
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| HarnessError::Io {
            what: format!("running {}", script.display()),
            source: e,
        })?;
    if !out.status.success() {
        return Err(HarnessError::Build(format!(
            "{} exited with {}",
            script.display(),
            out.status
        )));
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let dir = stdout.lines().last().unwrap_or_default().trim();
    if dir.is_empty() {
        return Err(HarnessError::Build("build.sh printed no directory".into()));
    }
    Ok(PathBuf::from(dir))
}
