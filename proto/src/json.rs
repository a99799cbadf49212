//! `google.protobuf.Struct` and JSON, both ways: the one place where the
//! WebAuthn options and credentials cross between `serde_json` and
//! protobuf, for the server and the tests alike.
//!
//! The mapping is protojson's, with the two traps of a `Struct` closed:
//!
//! - `Struct` has only doubles. WebAuthn has integers (`alg: -7`,
//!   `timeout: 300000`) that serde types read as integers only, so a whole
//!   double within ±(2^53 − 1) comes back as a JSON integer. An integer
//!   beyond that range would change on the way in, and is refused.
//! - A double may be NaN or infinite, which JSON cannot hold; such a
//!   number, and a `Value` with no kind, are refused with where they are.
//!
//! Binary WebAuthn fields are base64url strings in JSON, so they stay
//! strings here; nothing is decoded or re-encoded.

use std::fmt;

use prost_types::value::Kind;
use prost_types::{ListValue, Struct, Value};
use serde_json::{Map, Number, Value as Json};

/// The largest integer a double holds exactly, with all below it.
pub const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

/// Keys in an error's path are cut to this many characters.
const MAX_KEY_CHARS: usize = 40;

/// A value that has no faithful form on the other side.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StructError {
    fault: Fault,
    /// Where, innermost step first (errors are built while unwinding).
    path: Vec<Step>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// A NaN or infinite number.
    NotFinite,
    /// A `google.protobuf.Value` with none of its kinds set.
    NoKind,
    /// An integer that a double would change.
    InexactInteger,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Step {
    Key(String),
    Index(usize),
}

impl StructError {
    fn new(fault: Fault) -> Self {
        Self {
            fault,
            path: Vec::new(),
        }
    }

    fn at_key(mut self, key: &str) -> Self {
        let key = match key.char_indices().nth(MAX_KEY_CHARS) {
            Some((cut, _)) => format!("{}…", &key[..cut]),
            None => key.to_owned(),
        };
        self.path.push(Step::Key(key));
        self
    }

    fn at_index(mut self, index: usize) -> Self {
        self.path.push(Step::Index(index));
        self
    }

    pub fn fault(&self) -> Fault {
        self.fault
    }

    /// The path of the value, such as `$.response.transports[0]`.
    pub fn path(&self) -> String {
        let mut path = String::from("$");
        for step in self.path.iter().rev() {
            match step {
                Step::Key(key) => {
                    path.push('.');
                    path.push_str(key);
                }
                Step::Index(index) => path.push_str(&format!("[{index}]")),
            }
        }
        path
    }
}

impl fmt::Display for StructError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.fault {
            Fault::NotFinite => "a number that is not finite (NaN or infinity)",
            Fault::NoKind => "a google.protobuf.Value with no kind set",
            Fault::InexactInteger => "an integer too large for a double (over 2^53 - 1)",
        };
        write!(f, "{what} at {}", self.path())
    }
}

impl std::error::Error for StructError {}

/// A `Struct` as a JSON object.
pub fn struct_to_json(message: &Struct) -> Result<Map<String, Json>, StructError> {
    message
        .fields
        .iter()
        .map(|(key, value)| {
            value_to_json(value)
                .map(|json| (key.clone(), json))
                .map_err(|err| err.at_key(key))
        })
        .collect()
}

/// A `Value` as JSON.
pub fn value_to_json(value: &Value) -> Result<Json, StructError> {
    Ok(match &value.kind {
        None => return Err(StructError::new(Fault::NoKind)),
        Some(Kind::NullValue(_)) => Json::Null,
        Some(Kind::NumberValue(number)) => number_to_json(*number)?,
        Some(Kind::StringValue(text)) => Json::String(text.clone()),
        Some(Kind::BoolValue(flag)) => Json::Bool(*flag),
        Some(Kind::StructValue(inner)) => Json::Object(struct_to_json(inner)?),
        Some(Kind::ListValue(list)) => Json::Array(
            list.values
                .iter()
                .enumerate()
                .map(|(index, item)| value_to_json(item).map_err(|err| err.at_index(index)))
                .collect::<Result<_, _>>()?,
        ),
    })
}

/// Whole doubles that a double holds exactly become JSON integers, so that
/// `-7.0` reads as the `i64` -7; others stay fractions.
fn number_to_json(number: f64) -> Result<Json, StructError> {
    if !number.is_finite() {
        return Err(StructError::new(Fault::NotFinite));
    }
    if number.fract() == 0.0 && number.abs() <= MAX_SAFE_INTEGER as f64 {
        // Whole and within ±(2^53 − 1), so the cast is exact.
        return Ok(Json::Number(Number::from(number as i64)));
    }
    // Finite, so `from_f64` has a number for it.
    Ok(Number::from_f64(number).map_or(Json::Null, Json::Number))
}

/// A JSON object as a `Struct`.
pub fn json_to_struct(object: &Map<String, Json>) -> Result<Struct, StructError> {
    object
        .iter()
        .map(|(key, value)| {
            json_to_value(value)
                .map(|value| (key.clone(), value))
                .map_err(|err| err.at_key(key))
        })
        .collect::<Result<_, _>>()
        .map(|fields| Struct { fields })
}

/// JSON as a `Value`.
pub fn json_to_value(json: &Json) -> Result<Value, StructError> {
    let kind = match json {
        Json::Null => Kind::NullValue(prost_types::NullValue::NullValue as i32),
        Json::Bool(flag) => Kind::BoolValue(*flag),
        Json::Number(number) => Kind::NumberValue(number_to_double(number)?),
        Json::String(text) => Kind::StringValue(text.clone()),
        Json::Array(items) => Kind::ListValue(ListValue {
            values: items
                .iter()
                .enumerate()
                .map(|(index, item)| json_to_value(item).map_err(|err| err.at_index(index)))
                .collect::<Result<_, _>>()?,
        }),
        Json::Object(object) => Kind::StructValue(json_to_struct(object)?),
    };
    Ok(Value { kind: Some(kind) })
}

fn number_to_double(number: &Number) -> Result<f64, StructError> {
    let inexact = || StructError::new(Fault::InexactInteger);
    if let Some(integer) = number.as_i64() {
        return if integer.unsigned_abs() <= MAX_SAFE_INTEGER {
            Ok(integer as f64)
        } else {
            Err(inexact())
        };
    }
    if number.is_u64() {
        // Above i64::MAX, so far above 2^53.
        return Err(inexact());
    }
    // serde_json (without arbitrary precision) keeps only finite doubles.
    number
        .as_f64()
        .filter(|double| double.is_finite())
        .ok_or_else(|| StructError::new(Fault::NotFinite))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn round_trip(json: Json) -> Json {
        let object = json.as_object().expect("an object").clone();
        let message = json_to_struct(&object).expect("to a Struct");
        Json::Object(struct_to_json(&message).expect("back to JSON"))
    }

    #[test]
    fn webauthn_options_survive_the_round_trip() {
        let options = json!({"publicKey": {
            "rp": {"id": "passlink.example.test", "name": "Passlink"},
            "user": {"id": "AAECAwQ", "name": "ada@example.test", "displayName": "Ada"},
            "challenge": "q83vEjRWeJA-_w",
            "pubKeyCredParams": [{"type": "public-key", "alg": -7},
                                 {"type": "public-key", "alg": -257}],
            "timeout": 300000,
            "excludeCredentials": [],
            "authenticatorSelection": {"requireResidentKey": false,
                                       "userVerification": "required"},
            "attestation": null,
            "extensions": {"credProps": true, "ratio": 0.5, "big": 9007199254740991i64}
        }});
        let back = round_trip(options.clone());
        assert_eq!(back, options);
        // Integers stay integers, so serde types that want them can read them.
        assert_eq!(
            back["publicKey"]["pubKeyCredParams"][0]["alg"].as_i64(),
            Some(-7)
        );
        assert_eq!(back["publicKey"]["timeout"].as_u64(), Some(300_000));
        assert_eq!(back["publicKey"]["extensions"]["ratio"].as_f64(), Some(0.5));
        // Binary fields stay the base64url strings they were.
        assert_eq!(back["publicKey"]["challenge"], "q83vEjRWeJA-_w");
    }

    #[test]
    fn whole_doubles_read_as_integers() {
        for (double, json) in [
            (-7.0, json!(-7)),
            (0.0, json!(0)),
            (-0.0, json!(0)),
            (1.5, json!(1.5)),
            (9_007_199_254_740_991.0, json!(9_007_199_254_740_991i64)),
            (1e300, json!(1e300)),
        ] {
            assert_eq!(number_to_json(double).unwrap(), json, "{double}");
        }
    }

    #[test]
    fn what_has_no_faithful_form_is_refused_with_its_place() {
        let number = |n: f64| Value {
            kind: Some(Kind::NumberValue(n)),
        };
        for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            let message = Struct {
                fields: [(
                    "response".to_owned(),
                    Value {
                        kind: Some(Kind::ListValue(ListValue {
                            values: vec![number(1.0), number(bad)],
                        })),
                    },
                )]
                .into(),
            };
            let err = struct_to_json(&message).unwrap_err();
            assert_eq!(err.fault(), Fault::NotFinite);
            assert_eq!(
                err.to_string(),
                "a number that is not finite (NaN or infinity) at $.response[1]"
            );
        }

        let empty = Struct {
            fields: [("id".to_owned(), Value { kind: None })].into(),
        };
        let err = struct_to_json(&empty).unwrap_err();
        assert_eq!(
            (err.fault(), err.path()),
            (Fault::NoKind, "$.id".to_owned())
        );

        for big in [
            json!(9_007_199_254_740_992i64),
            json!(u64::MAX),
            json!(i64::MIN),
        ] {
            let err = json_to_struct(json!({"a": {"b": big}}).as_object().unwrap()).unwrap_err();
            assert_eq!(err.fault(), Fault::InexactInteger);
            assert_eq!(err.path(), "$.a.b");
        }

        let long_key = "k".repeat(100);
        let err = json_to_struct(json!({ long_key: u64::MAX }).as_object().unwrap()).unwrap_err();
        assert_eq!(err.path(), format!("$.{}…", "k".repeat(MAX_KEY_CHARS)));
    }
}
