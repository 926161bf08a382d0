//! The core traits every detector follows.
//!
//! Parameters come in two types: an unchecked one the user builds, and a
//! checked one that only [`ParamGuard::check`] can produce, so algorithms
//! never see an invalid setting. Learned detectors go `Fit` -> fitted model;
//! rule-based ones (which learn nothing) implement [`Detect`] directly on the
//! checked parameters.

use serde::{Deserialize, Serialize};

use crate::error::Result;

/// Parameters that validate themselves.
pub trait ParamGuard {
    /// The validated form.
    type Checked;

    /// Checks every parameter, returning the first that is out of range.
    fn check(&self) -> Result<Self::Checked>;
}

/// Fitting a model to data.
pub trait Fit<D: ?Sized> {
    /// The fitted model: plain data, serializable, `Send + Sync`.
    type Fitted;

    /// Fits the model.
    fn fit(&self, data: &D) -> Result<Self::Fitted>;
}

/// Flagging anomalies in data.
pub trait Detect<D: ?Sized> {
    /// What detection returns: per-row flags and anything derived.
    type Output;

    /// Runs detection.
    fn detect(&self, data: &D) -> Result<Self::Output>;
}

/// The string `"auto"` in parameter files and from Python, where a
/// parameter takes either `"auto"` or a value (scikit-learn and Prophet
/// style).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Auto {
    /// `"auto"`.
    Auto,
}
