//! Fast reading and writing of whole records through Automerge's bulk `hydrate::Value`.
//!
//! With automerge 0.12's columnar op set every single `get` or `put` decodes column runs, and
//! autosurgeon works field by field: building one attempt costs ≈ 550 µs and reading one back
//! ≈ 200 µs, against ≈ 100 µs for `batch_create_object` and one bulk `hydrate` (see
//! BENCHMARKS.md). Records that are written once and never edited (attempts, choices,
//! corrections, reviews) and whole-document reads therefore go through serde and
//! `hydrate::Value`; autosurgeon stays where its diffing matters, updating fields in place
//! (preferences, reference data) so concurrent edits of other fields stand.
//!
//! The serde derives of the model mirror the autosurgeon layout exactly (externally tagged
//! enums, `null` for `None`); a test checks both paths read what the other wrote.

use std::collections::HashMap;

use automerge::{hydrate, Automerge, ObjId, Prop, ReadDoc, ScalarValue, Value};
use serde::{de::DeserializeOwned, Serialize};
use serde_json::{Map as JsonMap, Number, Value as Json};

/// A record that does not fit the schema.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CodecError(pub String);

/// A typed record as an Automerge value tree, ready for `batch_create_object`.
pub fn to_hydrate<T: Serialize>(value: &T) -> Result<hydrate::Value, CodecError> {
    let json = serde_json::to_value(value).map_err(|e| CodecError(e.to_string()))?;
    Ok(json_to_hydrate(json))
}

/// Reads the value at `obj`/`prop` as a typed record; `None` when the key is absent.
pub fn read_prop<T: DeserializeOwned>(
    doc: &Automerge,
    obj: &ObjId,
    prop: impl Into<Prop>,
) -> Result<Option<T>, CodecError> {
    let json = match doc.get(obj, prop).map_err(|e| CodecError(e.to_string()))? {
        None => return Ok(None),
        Some((Value::Scalar(s), _)) => scalar_to_json(&s),
        Some((Value::Object(_), id)) => {
            let value: hydrate::Value =
                ReadDoc::hydrate(doc, &id, None).map_err(|e| CodecError(e.to_string()))?;
            hydrate_to_json(&value)
        }
    };
    serde_json::from_value(json)
        .map(Some)
        .map_err(|e| CodecError(e.to_string()))
}

/// Reads a typed record out of a value tree already hydrated.
pub fn from_hydrate<T: DeserializeOwned>(value: &hydrate::Value) -> Result<T, CodecError> {
    serde_json::from_value(hydrate_to_json(value)).map_err(|e| CodecError(e.to_string()))
}

/// Reads a whole document as a typed record.
pub fn read_doc<T: DeserializeOwned>(doc: &Automerge) -> Result<T, CodecError> {
    let value = doc.hydrate(None);
    serde_json::from_value(hydrate_to_json(&value)).map_err(|e| CodecError(e.to_string()))
}

/// Whether any map key or list element in the tree holds concurrent values.
pub fn has_conflicts(value: &hydrate::Value) -> bool {
    match value {
        hydrate::Value::Map(map) => map
            .iter()
            .any(|(_, v)| v.conflict || has_conflicts(&v.value)),
        hydrate::Value::List(list) => list.iter().any(|v| v.conflict || has_conflicts(&v.value)),
        _ => false,
    }
}

fn json_to_hydrate(json: Json) -> hydrate::Value {
    match json {
        Json::Null => hydrate::Value::Scalar(ScalarValue::Null),
        Json::Bool(b) => hydrate::Value::Scalar(ScalarValue::Boolean(b)),
        // autosurgeon reads i64 only from Int and u64 only from Uint, and JSON forgets which the
        // field was. Every integer of the records written here is an i64 (times in ms), so
        // integers are Int when they fit; `tests/codec.rs` checks both paths on every record.
        Json::Number(n) => hydrate::Value::Scalar(if let Some(i) = n.as_i64() {
            ScalarValue::Int(i)
        } else if let Some(u) = n.as_u64() {
            ScalarValue::Uint(u)
        } else {
            ScalarValue::F64(n.as_f64().unwrap_or(f64::NAN))
        }),
        Json::String(s) => hydrate::Value::Scalar(ScalarValue::Str(s.into())),
        Json::Array(items) => items
            .into_iter()
            .map(json_to_hydrate)
            .collect::<Vec<_>>()
            .into(),
        Json::Object(map) => {
            let map: HashMap<&str, hydrate::Value> = map
                .iter()
                .map(|(k, v)| (k.as_str(), json_to_hydrate(v.clone())))
                .collect();
            map.into()
        }
    }
}

pub(crate) fn hydrate_to_json(value: &hydrate::Value) -> Json {
    match value {
        hydrate::Value::Scalar(s) => scalar_to_json(s),
        hydrate::Value::Map(map) => Json::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), hydrate_to_json(&v.value)))
                .collect::<JsonMap<_, _>>(),
        ),
        hydrate::Value::List(list) => {
            Json::Array(list.iter().map(|v| hydrate_to_json(&v.value)).collect())
        }
        hydrate::Value::Text(text) => Json::String(text.to_string()),
    }
}

pub(crate) fn scalar_to_json(s: &ScalarValue) -> Json {
    match s {
        ScalarValue::Str(s) => Json::String(s.to_string()),
        ScalarValue::Int(i) | ScalarValue::Timestamp(i) => Json::Number((*i).into()),
        ScalarValue::Uint(u) => Json::Number((*u).into()),
        ScalarValue::F64(f) => Number::from_f64(*f).map_or(Json::Null, Json::Number),
        ScalarValue::Boolean(b) => Json::Bool(*b),
        ScalarValue::Counter(c) => Json::Number(i64::from(c).into()),
        // Bytes and values of future automerge versions are not part of the schema.
        ScalarValue::Bytes(_) | ScalarValue::Unknown { .. } => {
            Json::String("\u{fffd}unsupported".into())
        }
        ScalarValue::Null => Json::Null,
    }
}
