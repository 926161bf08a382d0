//! One versioned envelope for everything saved: model files, the CLI's
//! `--params` files and Python pickles all use the same bytes.
//!
//! ```json
//! {"format": "anomaly-model", "version": 3, "kind": "consumption_rules", "model": {...}}
//! ```
//!
//! A file from a newer format version, of another kind, or that is not an
//! envelope at all gives a typed error, never a panic. A file from an older
//! version is read through its kind's [`Persist::upgrade`].
//!
//! Versions: 1 first; 2 counts the forecast detector's training statistics
//! (`first`, `last`) in seconds, as every other reading time, not in ns; 3
//! makes the calibrated consumption rules the default (an older
//! `consumption_rules` file without a `method` keeps the literal rules).

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The `format` tag of every envelope.
pub const FORMAT: &str = "anomaly-model";
/// The largest model file any loader reads (a forecast model is a few kB
/// per variable, a credit model with hundreds of trees a few MB): a path
/// to something larger, or to a device or FIFO, is refused before reading.
pub const MAX_MODEL_BYTES: u64 = 1 << 30;

/// The envelope version this build writes and the highest it reads.
pub const VERSION: u32 = 3;

/// Something that can be saved in an envelope.
pub trait Persist: Serialize + DeserializeOwned {
    /// Short, stable name of the model kind, e.g. `"consumption_rules"`.
    const KIND: &'static str;

    /// Serializes into envelope JSON bytes.
    fn to_bytes(&self) -> Result<Vec<u8>> {
        let envelope = Envelope { format: FORMAT.into(), version: VERSION, kind: Self::KIND.into(), model: self };
        serde_json::to_vec(&envelope).map_err(|e| Error::CorruptModel { reason: e.to_string() })
    }

    /// Rewrites a model saved by envelope `version` (older than
    /// [`VERSION`]) into today's layout; kinds whose layout never changed
    /// keep this identity.
    fn upgrade(version: u32, model: serde_json::Value) -> Result<serde_json::Value> {
        let _ = version;
        Ok(model)
    }

    /// Reads envelope JSON bytes, checking format, version and kind.
    /// Models with invariants beyond their types override this to check them.
    fn from_bytes(bytes: &[u8]) -> Result<Self> {
        read_envelope::<Self>(bytes)
    }
}

/// Reads an envelope of `M`'s kind, upgrades an older version and
/// deserializes its model.
pub fn read_envelope<M: Persist>(bytes: &[u8]) -> Result<M> {
    let kind = M::KIND;
    let header: Envelope<serde_json::Value> = serde_json::from_slice(bytes)
        .map_err(|e| Error::CorruptModel { reason: format!("not an anomaly model file ({e})") })?;
    if header.format != FORMAT {
        return Err(Error::CorruptModel { reason: format!("format is {:?}, expected {FORMAT:?}", header.format) });
    }
    if header.version > VERSION {
        return Err(Error::UnsupportedVersion { found: header.version, supported: VERSION });
    }
    if header.kind != kind {
        return Err(Error::WrongModelKind { expected: kind.into(), found: header.kind });
    }
    let model = if header.version < VERSION { M::upgrade(header.version, header.model)? } else { header.model };
    serde_json::from_value(model).map_err(|e| Error::CorruptModel { reason: format!("{kind} model: {e}") })
}

/// Serde for an `f64` that may be NaN, which JSON cannot hold: written as
/// `null`, read back as NaN (`#[serde(with = "crate::persist::nan_as_null")]`).
pub mod nan_as_null {
    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes a finite value as a number, anything else as `null`.
    pub fn serialize<S: Serializer>(value: &f64, s: S) -> Result<S::Ok, S::Error> {
        if value.is_finite() {
            s.serialize_f64(*value)
        } else {
            s.serialize_none()
        }
    }

    /// Reads a number, or `null` as NaN.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
    }
}

#[derive(Serialize, Deserialize)]
struct Envelope<M> {
    format: String,
    version: u32,
    kind: String,
    model: M,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Toy {
        a: f64,
    }
    impl Persist for Toy {
        const KIND: &'static str = "toy";
    }

    #[test]
    fn round_trip_is_exact() {
        let toy = Toy { a: 0.1 + 0.2 };
        assert_eq!(Toy::from_bytes(&toy.to_bytes().unwrap()).unwrap(), toy);
    }

    #[test]
    fn bad_files_give_typed_errors() {
        assert!(matches!(Toy::from_bytes(b"\x00garbage"), Err(Error::CorruptModel { .. })));
        assert!(matches!(
            Toy::from_bytes(br#"{"format":"other","version":1,"kind":"toy","model":{"a":1}}"#),
            Err(Error::CorruptModel { .. })
        ));
        assert!(matches!(
            Toy::from_bytes(br#"{"format":"anomaly-model","version":99,"kind":"toy","model":{"a":1}}"#),
            Err(Error::UnsupportedVersion { found: 99, .. })
        ));
        assert!(matches!(
            Toy::from_bytes(br#"{"format":"anomaly-model","version":1,"kind":"forest","model":{"a":1}}"#),
            Err(Error::WrongModelKind { .. })
        ));
        assert!(matches!(
            Toy::from_bytes(br#"{"format":"anomaly-model","version":1,"kind":"toy","model":{"b":1}}"#),
            Err(Error::CorruptModel { .. })
        ));
    }
}
