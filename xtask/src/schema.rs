//! The project's schema files: one JSON file per message, holding the facts of the Kafka protocol
//! (fields, types, version ranges) that the generator turns into Rust.

use serde_json::Value;

/// A version range as the schema writes it: `"N"`, `"N-M"`, `"N+"` or `"none"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Versions {
    None,
    Range(i16, i16),
}

impl Versions {
    pub(crate) const OPEN: i16 = i16::MAX;

    pub(crate) fn parse(s: &str) -> Versions {
        let s = s.trim();
        if s == "none" || s.is_empty() {
            return Versions::None;
        }
        if let Some(lo) = s.strip_suffix('+') {
            return Versions::Range(lo.parse().expect("version"), Self::OPEN);
        }
        if let Some((lo, hi)) = s.split_once('-') {
            return Versions::Range(lo.parse().expect("version"), hi.parse().expect("version"));
        }
        let v = s.parse().expect("version");
        Versions::Range(v, v)
    }

    pub(crate) fn intersect(&self, other: &Versions) -> Versions {
        match (self, other) {
            (Versions::Range(a, b), Versions::Range(c, d)) if a.max(c) <= b.min(d) => {
                Versions::Range(*a.max(c), *b.min(d))
            }
            _ => Versions::None,
        }
    }

    /// True when every version of `within` is in `self`.
    pub(crate) fn covers(&self, within: &Versions) -> bool {
        match (self, within) {
            (_, Versions::None) => true,
            (Versions::Range(a, b), Versions::Range(c, d)) => a <= c && d <= b,
            (Versions::None, _) => false,
        }
    }

    /// A Rust condition on `version` that holds inside the range, simplified against the
    /// versions the message has (`valid`). `None` means "always".
    pub(crate) fn cond(&self, valid: &Versions) -> Option<String> {
        let eff = self.intersect(valid);
        if eff.covers(valid) {
            return None;
        }
        let (Versions::Range(lo, hi), Versions::Range(vlo, vhi)) = (eff, *valid) else {
            return Some("false".into());
        };
        Some(match (lo <= vlo, hi >= vhi) {
            (true, true) => unreachable!("covered above"),
            (false, true) => format!("version >= {lo}"),
            (true, false) => format!("version <= {hi}"),
            (false, false) if lo == hi => format!("version == {lo}"),
            (false, false) => format!("({lo}..={hi}).contains(&version)"),
        })
    }

    pub(crate) fn describe(&self) -> String {
        match self {
            Versions::None => "none".into(),
            Versions::Range(lo, Self::OPEN) => format!("{lo}+"),
            Versions::Range(lo, hi) if lo == hi => format!("{lo}"),
            Versions::Range(lo, hi) => format!("{lo}-{hi}"),
        }
    }
}

/// A field of a message or struct.
#[derive(Debug, Clone)]
pub(crate) struct Field {
    pub(crate) name: String,
    /// The schema type without `[]`.
    pub(crate) ty: String,
    pub(crate) array: bool,
    pub(crate) versions: Versions,
    pub(crate) nullable: Versions,
    pub(crate) tagged: Versions,
    pub(crate) tag: Option<u32>,
    pub(crate) default: Option<String>,
    pub(crate) ignorable: bool,
    /// `false` when the field never uses compact forms (`flexibleVersions: "none"`).
    pub(crate) compact_allowed: bool,
    pub(crate) fields: Option<Vec<Field>>,
}

impl Field {
    pub(crate) fn is_struct(&self) -> bool {
        self.ty.chars().next().is_some_and(char::is_uppercase)
    }

    pub(crate) fn any_nullable(&self) -> bool {
        self.nullable != Versions::None || (self.ty == "records" && !self.array)
    }
}

/// One message file.
#[derive(Debug, Clone)]
pub(crate) struct Message {
    pub(crate) name: String,
    pub(crate) api_key: Option<i16>,
    pub(crate) valid: Versions,
    pub(crate) flexible: Versions,
    pub(crate) deprecated: Versions,
    pub(crate) fields: Vec<Field>,
    pub(crate) common: Vec<(String, Vec<Field>)>,
}

fn parse_fields(v: &Value) -> Vec<Field> {
    v.as_array()
        .map(|a| a.iter().map(parse_field).collect())
        .unwrap_or_default()
}

fn parse_field(v: &Value) -> Field {
    let raw_ty = v["type"].as_str().expect("type");
    let (array, ty) = match raw_ty.strip_prefix("[]") {
        Some(t) => (true, t.to_string()),
        None => (false, raw_ty.to_string()),
    };
    let vs = |k: &str| v.get(k).and_then(Value::as_str).map(Versions::parse);
    let default = v.get("default").map(|d| match d {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    });
    Field {
        name: v["name"].as_str().expect("name").to_string(),
        ty,
        array,
        versions: vs("versions").expect("versions"),
        nullable: vs("nullableVersions").unwrap_or(Versions::None),
        tagged: vs("taggedVersions").unwrap_or(Versions::None),
        tag: v.get("tag").and_then(Value::as_u64).map(|t| t as u32),
        default,
        ignorable: v.get("ignorable").and_then(Value::as_bool).unwrap_or(false),
        compact_allowed: vs("flexibleVersions") != Some(Versions::None),
        fields: v.get("fields").map(parse_fields),
    }
}

pub(crate) fn parse_message(v: &Value) -> Message {
    let vs = |k: &str| {
        v.get(k)
            .and_then(Value::as_str)
            .map(Versions::parse)
            .unwrap_or(Versions::None)
    };
    Message {
        name: v["name"].as_str().expect("name").to_string(),
        api_key: v.get("apiKey").and_then(Value::as_i64).map(|k| k as i16),
        valid: vs("validVersions"),
        flexible: vs("flexibleVersions"),
        deprecated: vs("deprecatedVersions"),
        fields: parse_fields(&v["fields"]),
        common: v
            .get("commonStructs")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .map(|c| {
                        (
                            c["name"].as_str().expect("name").to_string(),
                            parse_fields(&c["fields"]),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default(),
    }
}

/// The keys of the upstream message definitions the project keeps; everything else (listeners,
/// entity types, map keys, zero-copy hints) is dropped on import.
pub(crate) fn normalize(v: &Value) -> Value {
    const TOP: &[&str] = &[
        "apiKey",
        "type",
        "name",
        "validVersions",
        "flexibleVersions",
        "deprecatedVersions",
        "fields",
        "commonStructs",
    ];
    const FIELD: &[&str] = &[
        "name",
        "type",
        "versions",
        "nullableVersions",
        "taggedVersions",
        "tag",
        "default",
        "ignorable",
        "flexibleVersions",
        "fields",
    ];
    fn field(v: &Value) -> Value {
        let mut out = serde_json::Map::new();
        for k in FIELD {
            if let Some(x) = v.get(*k) {
                let x = if *k == "fields" { fields(x) } else { x.clone() };
                out.insert((*k).to_string(), x);
            }
        }
        Value::Object(out)
    }
    fn fields(v: &Value) -> Value {
        Value::Array(
            v.as_array()
                .map(|a| a.iter().map(field).collect())
                .unwrap_or_default(),
        )
    }
    let mut out = serde_json::Map::new();
    for k in TOP {
        if let Some(x) = v.get(*k) {
            let x = match *k {
                "fields" => fields(x),
                "commonStructs" => Value::Array(
                    x.as_array()
                        .map(|a| {
                            a.iter()
                                .map(|c| {
                                    let mut m = serde_json::Map::new();
                                    m.insert("name".into(), c["name"].clone());
                                    m.insert("versions".into(), c["versions"].clone());
                                    m.insert("fields".into(), fields(&c["fields"]));
                                    Value::Object(m)
                                })
                                .collect()
                        })
                        .unwrap_or_default(),
                ),
                _ => x.clone(),
            };
            out.insert((*k).to_string(), x);
        }
    }
    Value::Object(out)
}
