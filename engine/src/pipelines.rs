//! The engine's side of the CI layer: reading Tekton YAML from files and directories
//! (through [`crate::yaml`]) for `keelson_pipelines` to check.

use std::path::{Path, PathBuf};

use keelson_pipelines::check::{Document, Finding, Report, check_documents};

/// A path could not be read.
#[derive(Debug, thiserror::Error)]
#[error("cannot read {path}")]
pub struct ReadError {
    /// The file or directory.
    pub path: String,
    /// Why.
    pub source: std::io::Error,
}

/// Every YAML file under `path` (itself, if it is a file), sorted.
fn yaml_files(path: &Path, out: &mut Vec<PathBuf>) -> Result<(), ReadError> {
    let err = |source| ReadError {
        path: path.display().to_string(),
        source,
    };
    if !path.is_dir() {
        out.push(path.to_path_buf());
        return Ok(());
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
        .map_err(err)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .map_err(err)?;
    entries.sort();
    for entry in entries {
        if entry.is_dir() {
            yaml_files(&entry, out)?;
        } else if entry
            .extension()
            .is_some_and(|e| e == "yaml" || e == "yml" || e == "json")
        {
            out.push(entry);
        }
    }
    Ok(())
}

/// Reads every document of the given files and directories (recursively) and checks the
/// Tekton objects among them. Unparsable YAML is reported as a finding of its file.
pub fn check_paths(paths: &[PathBuf]) -> Result<Report, ReadError> {
    let mut files = Vec::new();
    for path in paths {
        yaml_files(path, &mut files)?;
    }
    let mut documents = Vec::new();
    let mut unreadable = Vec::new();
    for file in &files {
        let source = file.display().to_string();
        let text = std::fs::read_to_string(file).map_err(|e| ReadError {
            path: source.clone(),
            source: e,
        })?;
        match crate::yaml::documents(&text) {
            Ok(docs) => {
                documents.extend(docs.into_iter().enumerate().map(|(index, value)| Document {
                    source: source.clone(),
                    index,
                    value,
                }))
            }
            Err(e) => unreadable.push(Finding {
                source,
                object: "-".into(),
                path: ".".into(),
                message: format!("not valid YAML: {e}"),
            }),
        }
    }
    let mut report = check_documents(&documents);
    report.findings.splice(0..0, unreadable);
    Ok(report)
}
