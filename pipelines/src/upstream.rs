//! Where the pinned `tektoncd/pipeline` Go module (CRDs and examples) is, for tests.

use std::path::PathBuf;
use std::process::Command;

/// The pin file: `TEKTON_MODULE=…` and `TEKTON_VERSION=…`.
const PIN: &str = include_str!("../tekton-version.env");

/// `module@version` of the pinned Tekton module.
pub fn tekton_module() -> String {
    let get = |key: &str| {
        PIN.lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
            .unwrap_or_default()
            .trim()
            .to_string()
    };
    format!("{}@{}", get("TEKTON_MODULE"), get("TEKTON_VERSION"))
}

/// The directory of the pinned Tekton module: `$KEELSON_TEKTON_DIR` when set (e2e/test.sh
/// sets it), else what `go mod download -json` reports. An error says why neither worked.
pub fn tekton_dir() -> Result<PathBuf, String> {
    if let Some(dir) = std::env::var_os("KEELSON_TEKTON_DIR").filter(|d| !d.is_empty()) {
        let dir = PathBuf::from(dir);
        return if dir.join("config/300-crds").is_dir() {
            Ok(dir)
        } else {
            Err(format!(
                "KEELSON_TEKTON_DIR={} has no config/300-crds",
                dir.display()
            ))
        };
    }
    let module = tekton_module();
    // Run outside any Go module so that no go.mod around the caller interferes.
    let out = Command::new("go")
        .args(["mod", "download", "-json", &module])
        .current_dir(std::env::temp_dir())
        .env("GO111MODULE", "on")
        .output()
        .map_err(|e| {
            format!("KEELSON_TEKTON_DIR is unset and `go mod download {module}` cannot run: {e}")
        })?;
    let info: serde_json::Value = serde_json::from_slice(&out.stdout).map_err(|e| {
        format!(
            "`go mod download -json {module}` gave no JSON ({e}); stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })?;
    if let Some(err) = info.get("Error").and_then(|e| e.as_str()) {
        return Err(format!("`go mod download {module}` failed: {err}"));
    }
    info.get("Dir")
        .and_then(|d| d.as_str())
        .map(PathBuf::from)
        .ok_or_else(|| format!("`go mod download -json {module}` reported no Dir: {info}"))
}
