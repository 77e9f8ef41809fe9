//! Every YAML read and write in Keelson goes through this module.
//!
//! Parsing follows what kubectl accepts (sigs.k8s.io/yaml on go-yaml v2, i.e. YAML 1.1):
//! `yes`/`no`/`on`/`off` are booleans, `0644` is the legacy octal 420, duplicate keys are
//! an error, and alias expansion is budgeted so a "billion laughs" file fails fast instead
//! of eating the machine.

pub mod emit;
mod fast;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_saphyr::{DuplicateKeyPolicy, Options};

/// A YAML document could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum YamlError {
    /// The text is not valid YAML, or does not fit the expected shape.
    #[error("{message}")]
    Parse {
        /// The parser's message (with the line and column where it knows them).
        message: String,
        /// 1-based line of the problem, when known.
        line: Option<usize>,
    },
    /// A value could not be written as YAML.
    #[error("cannot write YAML: {0}")]
    Write(String),
}

impl YamlError {
    fn parse(err: serde_saphyr::Error) -> Self {
        let line = err.location().map(|l| l.line() as usize);
        YamlError::Parse {
            message: err.to_string(),
            line,
        }
    }
}

/// Alias expansions allowed in one file: generous for real manifests, fatal for bombs.
const MAX_REPLAYED_ALIAS_EVENTS: usize = 100_000;

/// Parser settings shared by every read: YAML 1.1 scalars as kubectl reads them, plus budgets.
fn options() -> Options {
    // Large bundles (thousands of CRDs or objects in one file) are normal in GitOps repos.
    let budget = serde_saphyr::budget! {
        max_documents: 100_000,
        max_nodes: 5_000_000,
        max_events: 50_000_000,
        max_depth: 256,
    };
    serde_saphyr::options! {
        budget: budget,
        duplicate_keys: DuplicateKeyPolicy::Error,
        legacy_octal_numbers: true,
        strict_booleans: false,
        emit_comments: false,
        alias_limits: serde_saphyr::alias_limits! {
            max_total_replayed_events: MAX_REPLAYED_ALIAS_EVENTS,
        },
    }
}

/// Parser settings for kustomize inputs: kustomize reads YAML with go-yaml v3, where only
/// `true`/`false` are booleans (`yes`, `on` stay strings) but `0644` is still octal.
fn kustomize_options() -> Options {
    let mut options = options();
    options.strict_booleans = true;
    options
}

/// Parses a stream of documents the way kustomize reads resource files.
///
/// Large streams are split at their `---` lines (a document marker at column 0 ends any
/// scalar, per the YAML spec) and the parts parsed in parallel.
pub fn kustomize_documents(text: &str) -> Result<Vec<serde_json::Value>, YamlError> {
    use rayon::prelude::*;
    const PARALLEL_FROM: usize = 256 * 1024;
    let parse = |part: &str, first_line: usize| -> Result<Vec<serde_json::Value>, YamlError> {
        if let Some(docs) = fast_kustomize(part) {
            return Ok(docs);
        }
        let docs: Vec<Option<serde_json::Value>> =
            serde_saphyr::from_multiple_with_options(part, kustomize_options()).map_err(|e| {
                match YamlError::parse(e) {
                    YamlError::Parse { message, line } => YamlError::Parse {
                        message: if first_line > 0 {
                            format!(
                                "{message} (in the document starting at line {})",
                                first_line + 1
                            )
                        } else {
                            message
                        },
                        line: line.map(|l| l + first_line),
                    },
                    other => other,
                }
            })?;
        Ok(present(docs))
    };
    if text.len() < PARALLEL_FROM || text.starts_with("%") || text.contains("\n%") {
        return parse(text, 0);
    }
    let parts = split_documents(text);
    let parsed: Vec<Result<Vec<serde_json::Value>, YamlError>> = parts
        .par_iter()
        .map(|(line, part)| parse(part, *line))
        .collect();
    let mut out = Vec::new();
    for p in parsed {
        out.extend(p?);
    }
    Ok(out)
}

/// Splits a stream at lines that are exactly `---` (or `--- ` followed by content), keeping
/// each part's first line number; parts are about 64 KiB so threads get even work.
fn split_documents(text: &str) -> Vec<(usize, &str)> {
    const CHUNK: usize = 64 * 1024;
    let mut parts = Vec::new();
    let (mut start, mut start_line, mut line, mut offset) = (0, 0, 0, 0);
    for l in text.split_inclusive('\n') {
        let is_marker =
            l.starts_with("---") && l[3..].chars().next().is_none_or(|c| c.is_whitespace());
        if is_marker && offset - start >= CHUNK {
            parts.push((start_line, &text[start..offset]));
            start = offset;
            start_line = line;
        }
        offset += l.len();
        line += 1;
    }
    parts.push((start_line, &text[start..]));
    parts
}

/// Parses one document into `T` the way kustomize reads its own files.
pub fn kustomize_from_str<T: DeserializeOwned>(text: &str) -> Result<T, YamlError> {
    // The fast reader and serde_json first; serde-saphyr reads anything else, and reports
    // every error (with its line), so a text that does not fit `T` is read twice.
    if let Some([doc]) = fast_kustomize(text).as_deref()
        && let Ok(value) = T::deserialize(doc)
    {
        return Ok(value);
    }
    serde_saphyr::from_str_with_options(text, kustomize_options()).map_err(YamlError::parse)
}

/// Parses one YAML document into `T`.
///
/// A value that does not fit names its field first (`targets[0].sync.timeout: …`), so a
/// mistake deep in a configuration file says where it is.
pub fn from_str<T: DeserializeOwned>(text: &str) -> Result<T, YamlError> {
    let mut field = None;
    serde_saphyr::with_deserializer_from_str_with_options(text, options(), |de| {
        serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            if path != "." {
                field = Some(path);
            }
            e.into_inner()
        })
    })
    .map_err(|e| match (YamlError::parse(e), field) {
        (YamlError::Parse { message, line }, Some(field)) => YamlError::Parse {
            message: format!("{field}: {message}"),
            line,
        },
        (other, _) => other,
    })
}

/// Parses a stream of `---`-separated documents, dropping empty ones (as kubectl does).
pub fn documents(text: &str) -> Result<Vec<serde_json::Value>, YamlError> {
    if let Some(docs) = fast::documents(text, &|scalar| resolve(scalar, options())) {
        return Ok(docs);
    }
    let docs: Vec<Option<serde_json::Value>> =
        serde_saphyr::from_multiple_with_options(text, options()).map_err(YamlError::parse)?;
    Ok(present(docs))
}

/// The fast reader's documents (when it reads `text`) and serde-saphyr's (when it can), as
/// kustomize reads resource files: the fuzz target holds them equal.
#[doc(hidden)]
pub fn both_readers(
    text: &str,
) -> (
    Option<Vec<serde_json::Value>>,
    Option<Vec<serde_json::Value>>,
) {
    let fast = fast_kustomize(text);
    let full: Option<Vec<Option<serde_json::Value>>> =
        serde_saphyr::from_multiple_with_options(text, kustomize_options()).ok();
    let full = full.map(present);
    (fast, full)
}

/// The fast reader with kustomize's scalar typing (`None`: serde-saphyr must read `text`).
fn fast_kustomize(text: &str) -> Option<Vec<serde_json::Value>> {
    fast::documents(text, &|scalar| resolve(scalar, kustomize_options()))
}

/// The documents serde-saphyr read, without the empty and null ones.
fn present(docs: Vec<Option<serde_json::Value>>) -> Vec<serde_json::Value> {
    docs.into_iter()
        .flatten()
        .filter(|doc| !doc.is_null())
        .collect()
}

/// Types one plain scalar with serde-saphyr, for the fast reader.
fn resolve(scalar: &str, options: Options) -> Option<serde_json::Value> {
    serde_saphyr::from_str_with_options(scalar, options).ok()
}

/// Writes one value as a YAML document (without a leading `---`).
pub fn to_string<T: Serialize>(value: &T) -> Result<String, YamlError> {
    serde_saphyr::to_string(value).map_err(|e| YamlError::Write(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn one(text: &str) -> serde_json::Value {
        match from_str(text) {
            Ok(v) => v,
            Err(e) => panic!("{text:?} should parse: {e}"),
        }
    }

    /// Golden cases: how kubectl (go-yaml v2 through sigs.k8s.io/yaml) reads these scalars.
    #[test]
    fn yaml_1_1_scalars_read_like_kubectl() {
        let cases: &[(&str, serde_json::Value)] = &[
            ("v: yes", json!({"v": true})),
            ("v: no", json!({"v": false})),
            ("v: on", json!({"v": true})),
            ("v: off", json!({"v": false})),
            ("v: True", json!({"v": true})),
            ("v: 0644", json!({"v": 420})),
            ("v: 0755", json!({"v": 493})),
            ("v: 0x1F", json!({"v": 31})),
            ("v: 10", json!({"v": 10})),
            ("v: 1.5", json!({"v": 1.5})),
            ("v: '0644'", json!({"v": "0644"})),
            ("v: \"yes\"", json!({"v": "yes"})),
            ("v: ~", json!({"v": null})),
            ("v: null", json!({"v": null})),
            ("v:", json!({"v": null})),
            ("v: plain text", json!({"v": "plain text"})),
        ];
        for (text, want) in cases {
            assert_eq!(&one(text), want, "reading {text:?}");
        }
    }

    #[test]
    fn duplicate_keys_are_an_error() {
        let err = from_str::<serde_json::Value>("a: 1\nb: 2\na: 3\n").unwrap_err();
        let msg = err.to_string();
        assert!(msg.to_lowercase().contains("duplicate"), "{msg}");
    }

    #[test]
    fn errors_carry_the_line() {
        let err = from_str::<serde_json::Value>("a: 1\nb: [1, 2\nc: 3\n").unwrap_err();
        match err {
            YamlError::Parse { line, .. } => assert!(line.is_some_and(|l| l >= 2), "{line:?}"),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn aliases_within_budget_expand() {
        let v = one("base: &b {x: 1}\ncopy: *b\n");
        assert_eq!(v, json!({"base": {"x": 1}, "copy": {"x": 1}}));
    }

    #[test]
    fn alias_bomb_is_refused_quickly() {
        // Each level doubles; 30 levels would be ~10^9 nodes if expanded.
        let mut text = String::from("l0: &l0 [x, x]\n");
        for i in 1..30 {
            text.push_str(&format!("l{i}: &l{i} [*l{p}, *l{p}]\n", p = i - 1));
        }
        let started = std::time::Instant::now();
        let result = from_str::<serde_json::Value>(&text);
        assert!(result.is_err(), "an alias bomb must be refused");
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
    }

    #[test]
    fn documents_skip_empty_ones() {
        let docs = documents("---\na: 1\n---\n---\n# only a comment\n---\nb: 2\n").unwrap();
        assert_eq!(docs, vec![json!({"a": 1}), json!({"b": 2})]);
    }

    #[test]
    fn write_then_read_round_trips() {
        let v = json!({"kind": "ConfigMap", "data": {"mode": "0644", "flag": "yes", "n": "10"}});
        let text = to_string(&v).unwrap();
        assert_eq!(one(&text), v, "written:\n{text}");
    }
}
