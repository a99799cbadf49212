//! JSON decoding as protojson does it for messages.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserialize, Deserializer, MapAccess, Visitor};

/// A message field that must be a JSON object. serde's derived structs also
/// take an array of the fields in order (`"sendLink": []` would pass as an
/// empty message); protojson refuses that, and so does this wrapper.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Object<T>(pub T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Object<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ObjectVisitor<T>(PhantomData<T>);

        impl<'de, T: Deserialize<'de>> Visitor<'de> for ObjectVisitor<T> {
            type Value = T;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
                T::deserialize(de::value::MapAccessDeserializer::new(map))
            }
        }

        deserializer
            .deserialize_map(ObjectVisitor(PhantomData))
            .map(Object)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Empty {}

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Outer {
        inner: Option<Object<Empty>>,
    }

    #[test]
    fn only_objects_pass() {
        let ok: Object<Outer> = serde_json::from_str(r#"{"inner":{}}"#).unwrap();
        assert_eq!(ok.0.inner, Some(Object(Empty {})));
        let null: Object<Outer> = serde_json::from_str(r#"{"inner":null}"#).unwrap();
        assert_eq!(null.0.inner, None);
        assert!(serde_json::from_str::<Object<Outer>>(r#"{"inner":[]}"#).is_err());
        assert!(serde_json::from_str::<Object<Outer>>(r#"[null]"#).is_err());
        assert!(serde_json::from_str::<Object<Outer>>(r#"{"inner":{"x":1}}"#).is_err());
    }
}
