//! Differential test against Tekton's own examples: every Pipeline, Task, PipelineRun and
//! TaskRun in `examples/v1` of the pinned tektoncd/pipeline module parses into the typed
//! model and serialises back to the same JSON; the strict check flags exactly the one key
//! the Go types do not declare (`mountpath`, accepted by Go only case-insensitively).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use keelson_pipelines::TektonObject;
use keelson_pipelines::model::{check, diff_values};
use keelson_pipelines::validate::{Catalog, validate_in};
use serde_json::Value;

fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            yaml_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            out.push(path);
        }
    }
}

/// Reads YAML the way kubectl does (YAML 1.1 scalars), as the engine's YAML module does.
fn documents(text: &str) -> Vec<Value> {
    let options = serde_saphyr::options! {
        legacy_octal_numbers: true,
        strict_booleans: false,
    };
    let docs: Vec<Option<Value>> = serde_saphyr::from_multiple_with_options(text, options).unwrap();
    docs.into_iter()
        .flatten()
        .filter(|d| !d.is_null())
        .collect()
}

/// Every Tekton v1 example document, with its file (relative to examples/v1).
fn examples() -> Vec<(String, Value)> {
    let dir = keelson_pipelines::upstream::tekton_dir()
        .unwrap_or_else(|e| panic!("the pinned Tekton module is needed: {e}"));
    let root = dir.join("examples/v1");
    let mut files = Vec::new();
    yaml_files(&root, &mut files);
    assert!(
        files.len() >= 100,
        "only {} files under {}",
        files.len(),
        root.display()
    );
    let mut out = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let name = file.strip_prefix(&root).unwrap().display().to_string();
        for doc in documents(&text) {
            if TektonObject::is_tekton(&doc) {
                out.push((name.clone(), doc));
            }
        }
    }
    out
}

#[test]
fn every_example_round_trips_through_the_types() {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    let mut failures = Vec::new();
    for (file, doc) in examples() {
        match TektonObject::from_value(&doc) {
            Ok(object) => {
                *counts.entry(object.kind()).or_default() += 1;
                let written = object.to_value();
                for d in diff_values(&doc, &written) {
                    failures.push(format!("{file} {}: {d}", object.display_name()));
                }
                // Reading what we wrote gives the same object.
                let again = TektonObject::from_value(&written).unwrap();
                assert_eq!(again, object, "{file}");
            }
            Err(e) => failures.push(format!("{file}: {e}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // Tekton v1.15.0 ships 80 TaskRuns, 79 PipelineRuns, 68 Tasks and 36 Pipelines.
    for kind in ["Pipeline", "Task", "PipelineRun", "TaskRun"] {
        assert!(counts.get(kind).copied().unwrap_or(0) >= 30, "{counts:?}");
    }
}

#[test]
fn strict_check_flags_only_the_misspelled_mount_path() {
    let mut flagged = Vec::new();
    for (file, doc) in examples() {
        if let Err(issues) = check(&doc) {
            for issue in issues {
                flagged.push(format!("{file}: {issue}"));
            }
        }
    }
    assert_eq!(flagged.len(), 1, "{flagged:#?}");
    assert!(
        flagged[0].starts_with("pipelineruns/beta/isolated-workspaces.yaml: ")
            && flagged[0].contains(".mountpath: unknown field"),
        "{flagged:?}"
    );
}

#[test]
fn every_example_passes_validation() {
    // Tekton's examples are accepted by Tekton's admission: the rules we enforce before
    // submission must not reject any of them.
    // References between the objects of one file (taskRef, pipelineRef) are checked too.
    let mut by_file: BTreeMap<String, Vec<TektonObject>> = BTreeMap::new();
    for (file, doc) in examples() {
        by_file
            .entry(file)
            .or_default()
            .push(TektonObject::from_value(&doc).unwrap());
    }
    let mut rejected = Vec::new();
    for (file, objects) in &by_file {
        let catalog = Catalog::from_objects(objects);
        for object in objects {
            for issue in validate_in(object, &catalog) {
                rejected.push(format!("{file} {}: {issue}", object.display_name()));
            }
        }
    }
    assert!(rejected.is_empty(), "{}", rejected.join("\n"));
}
