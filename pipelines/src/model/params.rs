//! Params, param declarations, results and `when` expressions.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use serde_with::skip_serializing_none;

use super::Extra;

/// The type of a param or result: `string`, `array` or `object`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ParamType {
    /// A string.
    String,
    /// A list of strings.
    Array,
    /// A map of string keys to string values.
    Object,
}

impl fmt::Display for ParamType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ParamType::String => "string",
            ParamType::Array => "array",
            ParamType::Object => "object",
        })
    }
}

/// A param (or result) value: a string, an array of strings or an object of strings.
///
/// Tekton reads any other JSON (a number, a boolean, nested data) as its text in the
/// string variant (`default: true` is the string `"true"`); [`ParamValue::Other`] keeps
/// such a value as written so that it round-trips, and [`ParamValue::as_text`] gives the
/// text Tekton would use.
#[derive(Debug, Clone, PartialEq)]
pub enum ParamValue {
    /// A string.
    String(String),
    /// A list of strings.
    Array(Vec<String>),
    /// A map of strings.
    Object(BTreeMap<String, String>),
    /// Any other JSON, which Tekton treats as the string of its text.
    Other(Value),
}

impl ParamValue {
    /// The Tekton type of this value (`Other` counts as a string, as in Tekton).
    pub fn param_type(&self) -> ParamType {
        match self {
            ParamValue::String(_) | ParamValue::Other(_) => ParamType::String,
            ParamValue::Array(_) => ParamType::Array,
            ParamValue::Object(_) => ParamType::Object,
        }
    }

    /// The string Tekton would use for a string-typed value; `None` for arrays and objects.
    pub fn as_text(&self) -> Option<Cow<'_, str>> {
        match self {
            ParamValue::String(s) => Some(Cow::Borrowed(s)),
            ParamValue::Other(Value::Null) => Some(Cow::Borrowed("")),
            ParamValue::Other(v) => Some(Cow::Owned(v.to_string())),
            _ => None,
        }
    }

    /// Every string in the value (for finding `$(...)` references).
    pub fn strings(&self) -> Vec<&str> {
        match self {
            ParamValue::String(s) => vec![s.as_str()],
            ParamValue::Array(a) => a.iter().map(String::as_str).collect(),
            ParamValue::Object(o) => o.values().map(String::as_str).collect(),
            ParamValue::Other(_) => Vec::new(),
        }
    }
}

impl From<&str> for ParamValue {
    fn from(s: &str) -> Self {
        ParamValue::String(s.to_string())
    }
}

impl From<String> for ParamValue {
    fn from(s: String) -> Self {
        ParamValue::String(s)
    }
}

impl From<Vec<String>> for ParamValue {
    fn from(a: Vec<String>) -> Self {
        ParamValue::Array(a)
    }
}

impl From<BTreeMap<String, String>> for ParamValue {
    fn from(o: BTreeMap<String, String>) -> Self {
        ParamValue::Object(o)
    }
}

impl Serialize for ParamValue {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            ParamValue::String(s) => s.serialize(serializer),
            ParamValue::Array(a) => a.serialize(serializer),
            ParamValue::Object(o) => o.serialize(serializer),
            ParamValue::Other(v) => v.serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for ParamValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // Same order as Tekton's UnmarshalJSON: array of strings, object of strings, string,
        // else the raw text.
        let value = Value::deserialize(deserializer)?;
        Ok(match value {
            Value::String(s) => ParamValue::String(s),
            Value::Array(items) if items.iter().all(Value::is_string) => ParamValue::Array(
                items
                    .into_iter()
                    .filter_map(|v| match v {
                        Value::String(s) => Some(s),
                        _ => None,
                    })
                    .collect(),
            ),
            Value::Object(map) if map.values().all(Value::is_string) => ParamValue::Object(
                map.into_iter()
                    .filter_map(|(k, v)| match v {
                        Value::String(s) => Some((k, s)),
                        _ => None,
                    })
                    .collect(),
            ),
            other => ParamValue::Other(other),
        })
    }
}

/// A param passed to a run, a task or a resolver.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Param {
    /// The param's name.
    pub name: String,
    /// Its value.
    pub value: ParamValue,
    /// Fields this model does not know.
    #[serde(flatten)]
    pub extra: Extra,
}

impl Param {
    /// A param with this name and value.
    pub fn new(name: impl Into<String>, value: impl Into<ParamValue>) -> Self {
        Param {
            name: name.into(),
            value: value.into(),
            extra: Extra::default(),
        }
    }
}

/// The type of one key of an object param or result.
#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PropertySpec {
    /// The key's type (only `string` is allowed today).
    #[serde(rename = "type")]
    pub type_: Option<ParamType>,
    /// Fields this model does not know.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A param declared by a Pipeline or a Task.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ParamSpec {
    /// The param's name.
    pub name: String,
    /// Its type; `string` when absent (Tekton also infers it from the default).
    #[serde(rename = "type")]
    pub type_: Option<ParamType>,
    /// What it is for.
    pub description: Option<String>,
    /// The keys of an object param.
    pub properties: Option<BTreeMap<String, PropertySpec>>,
    /// The value used when a run does not pass one; no default makes the param required.
    pub default: Option<ParamValue>,
    /// The values allowed (string params).
    #[serde(rename = "enum")]
    pub enum_: Option<Vec<String>>,
    /// Fields this model does not know.
    #[serde(flatten)]
    pub extra: Extra,
}

impl ParamSpec {
    /// The declared type, else the default's type, else `object` when properties are
    /// declared, else `string` (Tekton's defaulting).
    pub fn effective_type(&self) -> ParamType {
        self.type_
            .or_else(|| self.default.as_ref().map(ParamValue::param_type))
            .or_else(|| self.properties.as_ref().map(|_| ParamType::Object))
            .unwrap_or(ParamType::String)
    }
}

/// A `when` expression guarding a task or a step.
#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WhenExpression {
    /// The input, usually a `$(params…)` or `$(tasks…results…)` reference.
    pub input: Option<String>,
    /// `in` or `notin`.
    pub operator: Option<String>,
    /// The values the input is compared with.
    pub values: Option<Vec<String>>,
    /// A CEL expression (instead of input/operator/values).
    pub cel: Option<String>,
    /// Fields this model does not know.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A result declared by a Task (or a Step).
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskResult {
    /// The result's name.
    pub name: String,
    /// Its type.
    #[serde(rename = "type")]
    pub type_: Option<ParamType>,
    /// The keys of an object result.
    pub properties: Option<BTreeMap<String, PropertySpec>>,
    /// What it holds.
    pub description: Option<String>,
    /// A value taken from a step result (`$(steps.x.results.y)`).
    pub value: Option<ParamValue>,
    /// Fields this model does not know.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A result declared by a Pipeline, computed from its tasks' results.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PipelineResult {
    /// The result's name.
    pub name: String,
    /// Its type.
    #[serde(rename = "type")]
    pub type_: Option<ParamType>,
    /// What it holds (Go always writes it, possibly empty).
    pub description: Option<String>,
    /// Its value, usually `$(tasks.<task>.results.<name>)`.
    pub value: ParamValue,
    /// Fields this model does not know.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A result as reported in a run's status.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunResult {
    /// The result's name.
    pub name: String,
    /// Its type (TaskRun results only).
    #[serde(rename = "type")]
    pub type_: Option<ParamType>,
    /// Its value.
    pub value: ParamValue,
    /// Fields this model does not know.
    #[serde(flatten)]
    pub extra: Extra,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_keep_their_shape() {
        for v in [
            json!("x"),
            json!(["a", "b"]),
            json!({"k": "v"}),
            json!(true),
            json!(3),
            json!([1, 2]),
            json!({"k": {"nested": 1}}),
            json!([]),
            json!(null),
        ] {
            let p: ParamValue = serde_json::from_value(v.clone()).unwrap();
            assert_eq!(serde_json::to_value(&p).unwrap(), v);
        }
    }

    #[test]
    fn other_scalars_are_strings_as_in_tekton() {
        let p: ParamValue = serde_json::from_value(json!(true)).unwrap();
        assert_eq!(p.param_type(), ParamType::String);
        assert_eq!(p.as_text().unwrap(), "true");
        let a: ParamValue = serde_json::from_value(json!([])).unwrap();
        assert_eq!(a.param_type(), ParamType::Array);
    }
}
