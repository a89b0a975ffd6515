//! The strict shapes of what devices and the back office write into documents: every key a
//! record may hold, the exact Automerge type of every value, and a bound on every string and
//! list. The validator checks each operation of an incoming change against these shapes (so a
//! value that loses a conflict, or is overwritten in the same batch, is checked too), and each
//! record as a whole once merged. Serde alone cannot do this: it ignores unknown keys, and the
//! codec's JSON forgets whether a number was an integer, a counter or a timestamp.

use automerge::{hydrate, legacy::OpType, ObjType, ScalarValue};

use crate::rules::{MAX_ADDRESS_LINES, MAX_FREE_TEXT_CHARS, MAX_ID_CHARS, MAX_SHORT_TEXT_CHARS};

/// The type a value must have.
#[derive(Debug)]
pub(crate) enum Shape {
    /// A string (never a text object) of at most this many characters.
    Str(usize),
    /// A signed integer (`ScalarValue::Int`): the schema's milliseconds.
    Int,
    /// An unsigned integer (`ScalarValue::Uint`), as autosurgeon writes a `u64`.
    Uint,
    /// A float.
    F64,
    /// A boolean.
    Bool,
    /// `null` or the inner shape.
    Opt(&'static Shape),
    /// A map with these keys (and no other).
    Record(&'static [(&'static str, Shape)]),
    /// A list of at most this many elements of one shape.
    List(usize, &'static Shape),
    /// An externally tagged enum: a unit variant is its name as a string, a struct variant a
    /// map of its one name to the variant's record.
    Enum(&'static [(&'static str, Option<Shape>)]),
}

/// Free text (notes, reasons, "other" outcomes).
const FREE: Shape = Shape::Str(MAX_FREE_TEXT_CHARS);
/// Short text (neighbour, safe place, floor…).
const SHORT: Shape = Shape::Str(MAX_SHORT_TEXT_CHARS);
/// Identifiers, dates, codes.
const ID: Shape = Shape::Str(MAX_ID_CHARS);
/// At most this many proofs per attempt.
const MAX_PROOFS: usize = 16;

const POSITION: Shape = Shape::Record(&[
    ("lat", Shape::F64),
    ("lon", Shape::F64),
    ("accuracy_m", Shape::F64),
]);
const GEO_POINT: Shape = Shape::Record(&[("lat", Shape::F64), ("lon", Shape::F64)]);
const WAITING_PLACE: Shape = Shape::Record(&[
    (
        "kind",
        Shape::Enum(&[
            ("post_office", None),
            ("pickup_point", None),
            ("locker", None),
        ]),
    ),
    ("place_id", ID),
    ("until", Shape::Opt(&ID)),
]);
const NOTICE: Shape = Shape::Record(&[
    ("number", Shape::Opt(&ID)),
    ("waits_at", Shape::Opt(&WAITING_PLACE)),
]);
const PROOF: Shape = Shape::Record(&[
    ("kind", Shape::Enum(&[("signature", None), ("photo", None)])),
    ("sha256", ID),
]);
const SUFFIX: Shape = Shape::Enum(&[("bis", None), ("ter", None), ("quater", None)]);

/// `attempts/<id>`.
pub(crate) const ATTEMPT: Shape = Shape::Record(&[
    (
        "outcome",
        Shape::Enum(&[
            ("delivered_to_addressee", None),
            (
                "delivered_to_neighbour",
                Some(Shape::Record(&[("neighbour", SHORT)])),
            ),
            (
                "delivered_to_safe_place",
                Some(Shape::Record(&[("place", SHORT)])),
            ),
            ("delivered_to_mailbox", None),
            (
                "delivered_to_pickup_point",
                Some(Shape::Record(&[("pickup_point", ID)])),
            ),
            ("addressee_absent", None),
            ("refused", None),
            ("address_incorrect", None),
            ("no_access", None),
            ("damaged", None),
            ("other", Some(Shape::Record(&[("text", FREE)]))),
        ]),
    ),
    ("recorded_at_ms", Shape::Int),
    ("device", ID),
    ("postman", ID),
    ("position", Shape::Opt(&POSITION)),
    ("notice", Shape::Opt(&NOTICE)),
    ("proofs", Shape::List(MAX_PROOFS, &PROOF)),
]);

/// `choices/<id>`.
pub(crate) const CHOICE: Shape = Shape::Record(&[
    (
        "choice",
        Shape::Enum(&[
            ("redeliver_on", Some(Shape::Record(&[("date", ID)]))),
            ("pickup_point", Some(Shape::Record(&[("pickup_point", ID)]))),
            ("neighbour", Some(Shape::Record(&[("neighbour", SHORT)]))),
            ("safe_place", Some(Shape::Record(&[("place", SHORT)]))),
            ("hold", None),
        ]),
    ),
    ("made_at_ms", Shape::Int),
    ("made_by", ID),
]);

/// `corrections/<id>`.
pub(crate) const CORRECTION: Shape = Shape::Record(&[
    (
        "proposed",
        Shape::Record(&[
            ("house_number", Shape::Opt(&ID)),
            ("suffix", Shape::Opt(&SUFFIX)),
            ("street", Shape::Opt(&SHORT)),
            ("building", Shape::Opt(&SHORT)),
            ("floor", Shape::Opt(&SHORT)),
            ("door_code", Shape::Opt(&ID)),
            ("mailbox_position", Shape::Opt(&SHORT)),
            ("pin", Shape::Opt(&GEO_POINT)),
            ("note", Shape::Opt(&FREE)),
        ]),
    ),
    ("proposed_by", ID),
    ("device", ID),
    ("proposed_at_ms", Shape::Int),
]);

/// `reviews/<correction id>`.
pub(crate) const REVIEW: Shape = Shape::Record(&[
    (
        "decision",
        Shape::Enum(&[("approved", None), ("rejected", None)]),
    ),
    ("by", ID),
    ("reason", FREE),
    ("at_ms", Shape::Int),
]);

/// `preferences`.
pub(crate) const PREFERENCES: Shape = Shape::Record(&[
    ("safe_place", Shape::Opt(&SHORT)),
    ("preferred_neighbour", Shape::Opt(&SHORT)),
    ("preferred_pickup_point", Shape::Opt(&ID)),
    ("never_to_neighbour", Shape::Bool),
]);

/// `reference`.
pub(crate) const REFERENCE: Shape = Shape::Record(&[
    ("lines", Shape::List(MAX_ADDRESS_LINES, &SHORT)),
    ("house_number", ID),
    ("suffix", Shape::Opt(&SUFFIX)),
    ("street", SHORT),
    ("postcode", ID),
    ("city", SHORT),
    ("building", Shape::Opt(&SHORT)),
    ("pin", Shape::Opt(&GEO_POINT)),
    ("version", Shape::Uint),
]);

/// `access`.
pub(crate) const ACCESS: Shape = Shape::Record(&[
    ("door_code", Shape::Opt(&ID)),
    ("floor", Shape::Opt(&SHORT)),
    ("mailbox_position", Shape::Opt(&SHORT)),
    ("notes", Shape::Opt(&FREE)),
]);

/// `requirements`.
pub(crate) const REQUIREMENTS: Shape = Shape::Record(&[
    ("signature", Shape::Bool),
    ("id_check", Shape::Bool),
    ("age_check", Shape::Bool),
    ("cash_on_delivery_cents", Shape::Opt(&Shape::Uint)),
]);

impl Shape {
    /// The shape at `path` below this one (`[…]` elements index lists), or why there is none.
    pub(crate) fn at(&self, path: &[String]) -> Result<&Shape, String> {
        let Some((first, rest)) = path.split_first() else {
            return Ok(self);
        };
        let inner = match self {
            Shape::Opt(inner) => return inner.at(path),
            Shape::Record(fields) => fields
                .iter()
                .find(|(name, _)| name == first)
                .map(|(_, shape)| shape),
            Shape::List(_, item) if first.starts_with('[') => Some(*item),
            Shape::Enum(variants) => variants
                .iter()
                .find(|(name, _)| name == first)
                .and_then(|(_, shape)| shape.as_ref()),
            _ => None,
        };
        inner
            .ok_or_else(|| format!("`{first}` is not part of the schema"))?
            .at(rest)
    }

    /// Whether one operation may write this shape's place: the right scalar type within its
    /// bound, or an object of the right kind. Deleting is left to the check of the result.
    pub(crate) fn admits_op(&self, action: &OpType) -> Result<(), String> {
        match action {
            OpType::Put(value) => self.admits_scalar(value),
            OpType::Make(ObjType::Map) => match self.unwrap_opt() {
                Shape::Record(_) => Ok(()),
                Shape::Enum(variants) if variants.iter().any(|(_, s)| s.is_some()) => Ok(()),
                _ => Err("a map is not allowed here".into()),
            },
            OpType::Make(ObjType::List) => match self.unwrap_opt() {
                Shape::List(..) => Ok(()),
                _ => Err("a list is not allowed here".into()),
            },
            OpType::Delete => Ok(()),
            _ => Err("this kind of operation is not allowed".into()),
        }
    }

    fn unwrap_opt(&self) -> &Shape {
        match self {
            Shape::Opt(inner) => inner.unwrap_opt(),
            other => other,
        }
    }

    fn admits_scalar(&self, value: &ScalarValue) -> Result<(), String> {
        let ok = match (self, value) {
            (Shape::Opt(_), ScalarValue::Null) => true,
            (Shape::Opt(inner), value) => return inner.admits_scalar(value),
            (Shape::Str(max), ScalarValue::Str(s)) => {
                let chars = s.chars().count();
                if chars > *max {
                    return Err(format!(
                        "a string of {chars} characters, at most {max} are allowed"
                    ));
                }
                true
            }
            (Shape::Enum(variants), ScalarValue::Str(s)) => variants
                .iter()
                .any(|(name, shape)| shape.is_none() && *name == s.as_str()),
            (Shape::Int, ScalarValue::Int(_))
            | (Shape::Uint, ScalarValue::Uint(_))
            | (Shape::F64, ScalarValue::F64(_))
            | (Shape::Bool, ScalarValue::Boolean(_)) => true,
            _ => false,
        };
        if ok {
            Ok(())
        } else {
            Err(format!("{} is not {}", scalar_kind(value), self.expected()))
        }
    }

    /// Whether a whole value tree (a record as merged) follows this shape exactly.
    pub(crate) fn admits(&self, value: &hydrate::Value) -> Result<(), String> {
        match (self, value) {
            (_, hydrate::Value::Scalar(s)) => self.admits_scalar(s),
            (Shape::Opt(inner), value) => inner.admits(value),
            (Shape::Record(fields), hydrate::Value::Map(map)) => {
                for (key, v) in map.iter() {
                    let shape = fields
                        .iter()
                        .find(|(name, _)| name == key)
                        .map(|(_, shape)| shape)
                        .ok_or_else(|| format!("`{key}` is not part of the schema"))?;
                    shape.admits(&v.value).map_err(|e| format!("{key}: {e}"))?;
                }
                Ok(())
            }
            (Shape::Enum(variants), hydrate::Value::Map(map)) => {
                let mut entries = map.iter();
                match (entries.next(), entries.next()) {
                    (Some((key, v)), None) => variants
                        .iter()
                        .find_map(|(name, shape)| (name == key).then_some(shape.as_ref()))
                        .flatten()
                        .ok_or_else(|| format!("`{key}` is not a variant of the schema"))?
                        .admits(&v.value)
                        .map_err(|e| format!("{key}: {e}")),
                    _ => Err("a variant is a map of exactly one name".into()),
                }
            }
            (Shape::List(max, item), hydrate::Value::List(list)) => {
                if list.len() > *max {
                    return Err(format!(
                        "a list of {} elements, at most {max} are allowed",
                        list.len()
                    ));
                }
                list.iter().try_for_each(|v| item.admits(&v.value))
            }
            (_, hydrate::Value::Text(_)) => Err("a text object is not allowed".into()),
            _ => Err(format!("not {}", self.expected())),
        }
    }

    fn expected(&self) -> &'static str {
        match self {
            Shape::Str(_) => "a string",
            Shape::Int => "an integer (ms)",
            Shape::Uint => "an unsigned integer",
            Shape::F64 => "a float",
            Shape::Bool => "a boolean",
            Shape::Opt(inner) => inner.expected(),
            Shape::Record(_) => "a map",
            Shape::List(..) => "a list",
            Shape::Enum(_) => "one of the schema's variants",
        }
    }
}

fn scalar_kind(value: &ScalarValue) -> &'static str {
    match value {
        ScalarValue::Bytes(_) => "bytes",
        ScalarValue::Str(_) => "a string",
        ScalarValue::Int(_) => "an integer",
        ScalarValue::Uint(_) => "an unsigned integer",
        ScalarValue::F64(_) => "a float",
        ScalarValue::Counter(_) => "a counter",
        ScalarValue::Timestamp(_) => "a timestamp",
        ScalarValue::Boolean(_) => "a boolean",
        ScalarValue::Unknown { .. } => "an unknown type",
        ScalarValue::Null => "null",
    }
}
