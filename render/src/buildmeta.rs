//! `buildMetadata`: origin annotations (which file or generator a resource came from),
//! transformer annotations (which transformers touched it) and the managed-by label.
//!
//! As in kustomize, tracking is on for the whole tree when the root asks for any of the
//! three; the annotations are written while building and removed at the end unless asked
//! for.

use serde_json::{Map, Value};

use super::resource::Resource;

/// Where a resource came from (`config.kubernetes.io/origin`).
pub const ORIGIN: &str = "config.kubernetes.io/origin";
/// The transformers that changed a resource.
pub const TRANSFORMATIONS: &str = "alpha.config.kubernetes.io/transformations";
/// The label `managedByLabel` adds.
pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
/// Its value: what the reference binary (built with `go install`, so without a release
/// version stamped in) writes.
pub const MANAGED_BY_VALUE: &str = "kustomize-(devel)";

/// The options of `buildMetadata`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    pub origin: bool,
    pub transformers: bool,
    pub managed_by: bool,
}

impl Options {
    /// Reads the root kustomization's list (kustomize ignores entries it does not know).
    pub fn parse(list: &[String]) -> Self {
        let has = |o: &str| list.iter().any(|x| x == o);
        Options {
            origin: has("originAnnotations"),
            transformers: has("transformerAnnotations"),
            managed_by: has("managedByLabel"),
        }
    }
}

/// The origin of the kustomization being built, relative to the root.
#[derive(Debug, Clone, Default)]
pub struct Tracking {
    /// The directory, as the entries leading to it spell it (`""` at the root).
    pub dir: String,
    /// The kustomization's file name.
    pub file: String,
}

/// `filepath.Join`: joins with `/` and cleans `.` and `..` lexically.
pub fn join(base: &str, entry: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for p in base.split('/').chain(entry.split('/')) {
        match p {
            "" | "." => {}
            ".." if parts.last().is_some_and(|l| *l != "..") => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    parts.join("/")
}

impl Tracking {
    /// The tracking of a kustomization the entry `entry` of this one names.
    pub fn child(&self, entry: &str) -> Tracking {
        Tracking {
            dir: join(&self.dir, entry),
            file: String::new(),
        }
    }

    /// The origin of resources read from the file `entry`.
    pub fn file_origin(&self, entry: &str) -> String {
        format!("path: {}\n", join(&self.dir, entry))
    }

    /// This kustomization's file, as configuredIn.
    pub fn configured_in(&self) -> String {
        join(&self.dir, &self.file)
    }
}

/// A generator or transformer configuration, as an origin.
#[derive(Debug, Clone)]
pub struct Configured {
    pub configured_in: String,
    pub api_version: String,
    pub kind: String,
    pub name: String,
    pub namespace: String,
}

impl Configured {
    /// A built-in configured by a kustomization field.
    pub fn builtin(t: &Tracking, kind: &str) -> Self {
        Configured {
            configured_in: t.configured_in(),
            api_version: "builtin".into(),
            kind: kind.into(),
            name: String::new(),
            namespace: String::new(),
        }
    }

    /// A plugin configuration resource (its own origin names its file).
    pub fn plugin(config: &Resource) -> Option<Self> {
        let origin = annotation(config, ORIGIN)?;
        let path = origin
            .lines()
            .find_map(|l| l.strip_prefix("path: "))
            .unwrap_or("")
            .to_string();
        Some(Configured {
            configured_in: path,
            api_version: config
                .obj
                .get("apiVersion")
                .and_then(Value::as_str)
                .unwrap_or("")
                .into(),
            kind: config.kind().into(),
            name: config.name().into(),
            namespace: config.namespace().unwrap_or("").into(),
        })
    }

    /// The YAML kustomize writes for it, each line indented by `indent`.
    fn yaml(&self, first: &str, indent: &str) -> String {
        let mut out = String::new();
        let mut line = |prefix: &str, text: String| {
            out.push_str(prefix);
            out.push_str(&text);
            out.push('\n');
        };
        line(first, format!("configuredIn: {}", self.configured_in));
        line(indent, "configuredBy:".into());
        line(indent, format!("  apiVersion: {}", self.api_version));
        line(indent, format!("  kind: {}", self.kind));
        if !self.name.is_empty() {
            line(indent, format!("  name: {}", self.name));
        }
        if !self.namespace.is_empty() {
            line(indent, format!("  namespace: {}", self.namespace));
        }
        out
    }
}

fn annotation<'a>(r: &'a Resource, key: &str) -> Option<&'a str> {
    r.obj
        .get("metadata")?
        .get("annotations")?
        .get(key)?
        .as_str()
}

fn set_annotation(r: &mut Resource, key: &str, value: String) {
    let meta = r.metadata_mut();
    let annotations = meta
        .entry("annotations")
        .or_insert_with(|| Value::Object(Map::new()));
    if !annotations.is_object() {
        *annotations = Value::Object(Map::new());
    }
    if let Value::Object(m) = annotations {
        m.insert(key.to_string(), Value::String(value));
    }
}

/// Sets the origin of resources read from a file.
pub fn set_file_origin(res: &mut [Resource], origin: &str) {
    for r in res {
        set_annotation(r, ORIGIN, origin.to_string());
    }
}

/// Sets the origin of a generated resource unless it has one.
pub fn set_generated_origin(r: &mut Resource, by: &Configured) {
    if annotation(r, ORIGIN).is_none() {
        set_annotation(r, ORIGIN, by.yaml("", ""));
    }
}

/// Records that a transformer ran over `res` (a resource without an origin is taken to
/// have been made by it).
pub fn record(res: &mut [Resource], by: &Configured) {
    let item = by.yaml("- ", "  ");
    for r in res {
        if annotation(r, ORIGIN).is_none() {
            set_annotation(r, ORIGIN, by.yaml("", ""));
            continue;
        }
        let mut list = annotation(r, TRANSFORMATIONS).unwrap_or("").to_string();
        list.push_str(&item);
        set_annotation(r, TRANSFORMATIONS, list);
    }
}

/// Finishes the root: drops the annotations not asked for, adds the managed-by label.
pub fn finish(res: &mut [Resource], options: Options) {
    for r in res {
        let meta = r.metadata_mut();
        if let Some(Value::Object(a)) = meta.get_mut("annotations") {
            if !options.origin {
                a.remove(ORIGIN);
            }
            if !options.transformers {
                a.remove(TRANSFORMATIONS);
            }
            if a.is_empty() {
                meta.remove("annotations");
            }
        }
        if options.managed_by {
            let labels = meta
                .entry("labels")
                .or_insert_with(|| Value::Object(Map::new()));
            if !labels.is_object() {
                *labels = Value::Object(Map::new());
            }
            if let Value::Object(l) = labels {
                l.insert(MANAGED_BY.into(), Value::String(MANAGED_BY_VALUE.into()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_like_go_filepath() {
        assert_eq!(join("", "cm.yaml"), "cm.yaml");
        assert_eq!(join("overlay", "../base"), "base");
        assert_eq!(join("a/b", "./c/../d.yaml"), "a/b/d.yaml");
        assert_eq!(join("", "../x"), "../x");
    }
}
