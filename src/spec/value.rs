//! Config values with their provenance: the flat `dotted.key -> value` map a run is resolved into, type
//! checking against the schema, and the canonical JSON form that run ids are hashed from.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use toml::Value;

use super::schema::{Key, Kind};

/// A spec file's path and text, kept so that errors can quote it, and where its relative paths point.
#[derive(Debug)]
pub struct SourceFile {
    pub path: PathBuf,
    pub text: String,
    pub paths: PathBase,
}

/// How the relative values of a file's path keys ([`Kind::Path`]) resolve.
#[derive(Debug)]
pub enum PathBase {
    /// Against a folder: a spec's own (absolute, so that it means the same from anywhere).
    Folder(PathBuf),
    /// As the file records them: a run's `config.toml`, whose `[paths]` table holds where each
    /// resolved when `sweep run` wrote it, so that the run trains the same data from any folder. A key
    /// it does not record (a `config.toml` of an older version) resolves against the current folder,
    /// as it did then.
    Recorded(BTreeMap<String, PathBuf>),
}

impl PathBase {
    /// The folder of the spec file `path`.
    pub fn folder_of(path: &Path) -> PathBase {
        let folder = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        PathBase::Folder(std::path::absolute(folder).unwrap_or_else(|_| folder.to_path_buf()))
    }
}

/// Where a value came from, so that an error can point at it.
#[derive(Clone, Debug)]
pub enum Origin {
    /// The schema's default.
    Default,
    /// Derived from other keys (e.g. `loss` from `task`).
    Derived,
    /// A span of a spec file (bytes).
    File { file: Arc<SourceFile>, span: Range<usize> },
    /// A `--set KEY=VALUE` argument.
    Cli { arg: String },
}

/// Which layer of a spec set a value; later layers win. Matters for conditional keys: a key the
/// variant itself sets must apply to it, while a `[base]` key only has to apply to some run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Layer {
    Default,
    Base,
    Cli,
    Variant,
}

#[derive(Clone, Debug)]
pub struct Setting {
    pub value: Value,
    pub origin: Origin,
    pub layer: Layer,
}

impl Setting {
    /// The location a path key's value (`key`) names: an absolute path as it is; a relative one
    /// against the folder of the spec file that gives it (or where a run's `config.toml` recorded
    /// it), and against the current folder when it comes from `--set` or the schema's default. An
    /// empty value (no path) stays empty.
    pub fn path(&self, key: &str) -> PathBuf {
        let text = self.value.as_str().unwrap_or("");
        let path = Path::new(text);
        if text.is_empty() || path.is_absolute() {
            return path.to_path_buf();
        }
        let from_here = || std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        match &self.origin {
            Origin::File { file, .. } => match &file.paths {
                PathBase::Folder(folder) => folder.join(path),
                PathBase::Recorded(recorded) => recorded.get(key).cloned().unwrap_or_else(from_here),
            },
            Origin::Cli { .. } | Origin::Default | Origin::Derived => from_here(),
        }
    }
}

/// A run's settings by canonical dotted key. The keys are the schema's names (and `seed`), held as
/// `&'static str`: every run of a plan carries its own map, and a grid of 100,000 runs should not
/// carry 100,000 copies of every key.
#[derive(Clone, Debug, Default)]
pub struct Flat {
    map: BTreeMap<&'static str, Setting>,
}

impl Flat {
    pub fn get(&self, key: &str) -> Option<&Setting> {
        self.map.get(key)
    }
    pub fn value(&self, key: &str) -> Option<&Value> {
        self.map.get(key).map(|s| &s.value)
    }
    pub fn str(&self, key: &str) -> Option<&str> {
        self.value(key).and_then(Value::as_str)
    }
    pub fn bool(&self, key: &str) -> Option<bool> {
        self.value(key).and_then(Value::as_bool)
    }
    pub fn set(&mut self, key: &'static str, setting: Setting) {
        self.map.insert(key, setting);
    }
    pub fn remove(&mut self, key: &str) -> Option<Setting> {
        self.map.remove(key)
    }
    pub fn contains(&self, key: &str) -> bool {
        self.map.contains_key(key)
    }
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Setting)> {
        self.map.iter().map(|(k, s)| (*k, s))
    }

    /// Canonical JSON of the values (keys sorted, no whitespace, floats in shortest round-trip form):
    /// what run ids hash. Identical on every platform and independent of key order in the spec.
    pub fn canonical_json(&self) -> String {
        let map: BTreeMap<&str, serde_json::Value> = self.map.iter().map(|(k, s)| (*k, to_json(&s.value))).collect();
        serde_json::to_string(&map).expect("config values are finite JSON")
    }

    /// The values as a nested TOML table (`backbone.arch` inside `[backbone]`).
    pub fn to_nested(&self) -> toml::Table {
        let mut root = toml::Table::new();
        for (key, setting) in &self.map {
            let mut table = &mut root;
            let mut parts = key.split('.').peekable();
            while let Some(part) = parts.next() {
                if parts.peek().is_none() {
                    table.insert(part.to_string(), setting.value.clone());
                } else {
                    table = table
                        .entry(part.to_string())
                        .or_insert_with(|| Value::Table(toml::Table::new()))
                        .as_table_mut()
                        .expect("keys are never both a value and a table");
                }
            }
        }
        root
    }
}

fn to_json(value: &Value) -> serde_json::Value {
    match value {
        Value::String(s) => serde_json::Value::String(s.clone()),
        Value::Integer(i) => serde_json::Value::from(*i),
        Value::Float(f) => serde_json::Value::from(*f),
        Value::Boolean(b) => serde_json::Value::Bool(*b),
        Value::Array(a) => serde_json::Value::Array(a.iter().map(to_json).collect()),
        Value::Table(t) => serde_json::Value::Object(t.iter().map(|(k, v)| (k.clone(), to_json(v))).collect()),
        Value::Datetime(d) => serde_json::Value::String(d.to_string()),
    }
}

/// Parses one TOML value written on its own (`0.1`, `"lab"`, `[64, 128]`).
pub fn parse_literal(text: &str) -> Result<Value, String> {
    let doc = format!("v = {text}");
    let mut table: toml::Table = toml::from_str(&doc).map_err(|e| e.message().to_string())?;
    Ok(table.remove("v").expect("the document defines v"))
}

/// How a value reads in an error message.
pub fn show(value: &Value) -> String {
    match value {
        Value::String(s) => format!("\"{s}\""),
        other => other.to_string(),
    }
}

/// Checks `value` against `key`'s type and range and returns it normalised (integers written for a
/// float key become floats). The error says what was wrong and what would be valid.
pub fn check(key: &Key, value: &Value) -> Result<Value, String> {
    let bad = || format!("`{}` = {} is not valid: expected {}", key.name, show(value), key.kind.describe());
    match key.kind {
        Kind::Int { min, max } => match value {
            Value::Integer(i) if (min..=max).contains(i) => Ok(value.clone()),
            _ => Err(bad()),
        },
        Kind::Float { min, max, min_open } => {
            let x = as_float(value).ok_or_else(bad)?;
            let above = if min_open { x > min } else { x >= min };
            if x.is_finite() && above && x <= max { Ok(Value::Float(x)) } else { Err(bad()) }
        }
        Kind::Bool => value.as_bool().map(|_| value.clone()).ok_or_else(bad),
        // Text is a path: control characters in it would reach terminals, logs and run names.
        Kind::Path => match value.as_str() {
            Some(s) if s.chars().any(crate::terminal::is_unsafe) => {
                Err(format!("`{}` = {} holds a control character: give a plain path", key.name, show(value)))
            }
            Some(_) => Ok(value.clone()),
            None => Err(bad()),
        },
        Kind::Choice(choices) => {
            let s = value.as_str().ok_or_else(bad)?;
            if choices.contains(&s) {
                Ok(value.clone())
            } else {
                let mut msg = bad();
                if let Some(s) = super::error::did_you_mean(s, choices.iter().copied()) {
                    msg.push_str(&format!(" (did you mean \"{s}\"?)"));
                }
                Err(msg)
            }
        }
        Kind::IntList { min, max, empty, longest } => {
            let items = value.as_array().filter(|a| (empty || !a.is_empty()) && a.len() <= longest).ok_or_else(bad)?;
            let ok = items.iter().all(|v| v.as_integer().is_some_and(|i| (min..=max).contains(&i)));
            if ok { Ok(value.clone()) } else { Err(bad()) }
        }
        Kind::FloatList { min, max, len } => {
            let items = value.as_array().filter(|a| a.len() == len).ok_or_else(bad)?;
            let floats: Option<Vec<Value>> =
                items.iter().map(|v| as_float(v).filter(|x| (min..=max).contains(x)).map(Value::Float)).collect();
            floats.map(Value::Array).ok_or_else(bad)
        }
    }
}

fn as_float(value: &Value) -> Option<f64> {
    match value {
        Value::Float(f) => Some(*f),
        Value::Integer(i) => Some(*i as f64),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::super::schema::key;
    use super::*;

    #[test]
    fn check_normalises_and_rejects() {
        let lr = key("lr").unwrap();
        assert_eq!(check(lr, &Value::Integer(1)).unwrap(), Value::Float(1.0));
        assert!(check(lr, &Value::Float(0.0)).unwrap_err().contains("a number > 0"));
        assert!(check(lr, &Value::Float(f64::INFINITY)).is_err());
        let space = key("color_space").unwrap();
        let err = check(space, &Value::String("lba".into())).unwrap_err();
        assert!(err.contains("did you mean \"lab\""), "{err}");
        let widths = key("local.widths").unwrap();
        assert!(check(widths, &parse_literal("[]").unwrap()).is_err());
        assert!(check(widths, &parse_literal("[64, 0]").unwrap()).is_err());
        let betas = key("betas").unwrap();
        assert_eq!(check(betas, &parse_literal("[1, 0.5]").unwrap()).unwrap(), parse_literal("[1.0, 0.5]").unwrap());
        assert!(check(betas, &parse_literal("[0.9]").unwrap()).is_err());
    }

    #[test]
    fn canonical_json_is_sorted_and_order_independent() {
        let setting = |v: Value| Setting { value: v, origin: Origin::Default, layer: Layer::Base };
        let mut a = Flat::default();
        a.set("lr", setting(Value::Float(0.001)));
        a.set("epochs", setting(Value::Integer(3)));
        let mut b = Flat::default();
        b.set("epochs", setting(Value::Integer(3)));
        b.set("lr", setting(Value::Float(0.001)));
        assert_eq!(a.canonical_json(), r#"{"epochs":3,"lr":0.001}"#);
        assert_eq!(a.canonical_json(), b.canonical_json());
    }
}
