//! A resource being rendered: its object, where it came from, and the names it had.

use std::fmt;

use serde_json::{Map, Value};

/// Group, version and kind.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Gvk {
    pub group: String,
    pub version: String,
    pub kind: String,
}

impl Gvk {
    /// Splits `apiVersion` into group and version.
    pub fn from_api_version(api_version: &str, kind: &str) -> Self {
        let (group, version) = match api_version.split_once('/') {
            Some((g, v)) => (g.to_string(), v.to_string()),
            None => (String::new(), api_version.to_string()),
        };
        Gvk {
            group,
            version,
            kind: kind.to_string(),
        }
    }
}

/// How generated objects relate to ones of the same name from bases.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behavior {
    Create,
    Merge,
    Replace,
}

/// A resource and the bookkeeping the transformers need.
#[derive(Debug, Clone)]
pub struct Resource {
    /// The object itself.
    pub obj: Map<String, Value>,
    /// The name it was loaded or generated with.
    pub original_name: String,
    /// The namespace it was loaded or generated with.
    pub original_namespace: Option<String>,
    /// For generated ConfigMaps/Secrets: append a content hash to the name at the end.
    pub needs_hash: bool,
    /// For generated resources: how they combine with an existing one.
    pub behavior: Option<Behavior>,
    /// The file it came from (for error messages).
    pub source: String,
    /// Every (name, namespace) it had before its current one, oldest first (kustomize's
    /// previous ids: name references follow them).
    pub previous: Vec<(String, Option<String>)>,
    /// Names of the vars that read this object.
    pub ref_vars: Vec<String>,
}

impl Resource {
    /// Wraps an object read from `source`.
    pub fn new(obj: Map<String, Value>, source: &str) -> Self {
        let mut r = Resource {
            obj,
            original_name: String::new(),
            original_namespace: None,
            needs_hash: false,
            behavior: None,
            source: source.to_string(),
            previous: Vec::new(),
            ref_vars: Vec::new(),
        };
        r.original_name = r.name().to_string();
        r.original_namespace = r.namespace().map(str::to_string);
        r
    }

    /// `apiVersion` and `kind`.
    pub fn gvk(&self) -> Gvk {
        Gvk::from_api_version(self.str_at(&["apiVersion"]), self.kind())
    }

    /// `kind`.
    pub fn kind(&self) -> &str {
        self.str_at(&["kind"])
    }

    /// `metadata.name`.
    pub fn name(&self) -> &str {
        self.str_at(&["metadata", "name"])
    }

    /// `metadata.namespace`, if set and not empty.
    pub fn namespace(&self) -> Option<&str> {
        Some(self.str_at(&["metadata", "namespace"])).filter(|s| !s.is_empty())
    }

    /// Sets `metadata.name`, remembering the previous id.
    pub fn set_name(&mut self, name: &str) {
        if self.name() != name {
            self.remember_id();
        }
        self.metadata_mut()
            .insert("name".into(), Value::String(name.to_string()));
    }

    /// Sets `metadata.namespace`, remembering the previous id.
    pub fn set_namespace(&mut self, namespace: &str) {
        if self.namespace() != Some(namespace) {
            self.remember_id();
        }
        self.metadata_mut()
            .insert("namespace".into(), Value::String(namespace.to_string()));
    }

    fn remember_id(&mut self) {
        let id = (
            self.name().to_string(),
            self.namespace().map(str::to_string),
        );
        self.previous.push(id);
    }

    /// Whether `name` in `namespace` is this resource's id now or was one earlier (before
    /// a prefix, a suffix, a namespace or a rename), as kustomize matches a patch to its
    /// target. No namespace and `default` are the same namespace.
    pub fn has_had_id(&self, name: &str, namespace: Option<&str>) -> bool {
        let ns = |n: Option<&str>| match n {
            None | Some("") | Some("default") => None,
            Some(other) => Some(other.to_string()),
        };
        let want = ns(namespace);
        std::iter::once((self.name(), self.namespace()))
            .chain(
                self.previous
                    .iter()
                    .map(|(n, s)| (n.as_str(), s.as_deref())),
            )
            .any(|(n, s)| n == name && ns(s) == want)
    }

    /// The namespace it was first seen with.
    pub fn first_namespace(&self) -> Option<&str> {
        match self.previous.first() {
            Some((_, ns)) => ns.as_deref(),
            None => self.namespace(),
        }
    }

    /// `metadata`, created when missing.
    pub fn metadata_mut(&mut self) -> &mut Map<String, Value> {
        let meta = self
            .obj
            .entry("metadata")
            .or_insert_with(|| Value::Object(Map::new()));
        if !meta.is_object() {
            *meta = Value::Object(Map::new());
        }
        match meta {
            Value::Object(m) => m,
            _ => unreachable!("metadata was just made an object"),
        }
    }

    /// The labels of the object.
    pub fn labels(&self) -> Map<String, Value> {
        self.metadata_map("labels")
    }

    /// The annotations of the object.
    pub fn annotations(&self) -> Map<String, Value> {
        self.metadata_map("annotations")
    }

    fn metadata_map(&self, field: &str) -> Map<String, Value> {
        self.obj
            .get("metadata")
            .and_then(|m| m.get(field))
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default()
    }

    fn str_at(&self, path: &[&str]) -> &str {
        let mut v = match self.obj.get(path[0]) {
            Some(v) => v,
            None => return "",
        };
        for key in &path[1..] {
            v = match v.get(key) {
                Some(v) => v,
                None => return "",
            };
        }
        v.as_str().unwrap_or("")
    }

    /// `kind/name` or `kind/namespace/name`, for messages.
    pub fn describe(&self) -> String {
        match self.namespace() {
            Some(ns) => format!("{}/{}/{}", self.kind(), ns, self.name()),
            None => format!("{}/{}", self.kind(), self.name()),
        }
    }
}

impl fmt::Display for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}
