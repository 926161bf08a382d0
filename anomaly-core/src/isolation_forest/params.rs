//! Parameters of the isolation forest, spelled as in scikit-learn.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::traits::{Auto, ParamGuard};

/// Rows drawn to build each tree.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum MaxSamples {
    /// `"auto"`: `min(256, n_samples)`.
    Auto(Auto),
    /// A count, clamped to `n_samples` (scikit-learn warns when it does).
    Count(u64),
    /// A fraction of `n_samples` in (0, 1].
    Fraction(f64),
}

/// Features drawn (without replacement) for each tree.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum MaxFeatures {
    /// A count, at most `n_features`.
    Count(u64),
    /// A fraction of `n_features` in (0, 1]; at least one feature.
    Fraction(f64),
}

/// How the decision offset is set.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Contamination {
    /// `"auto"`: offset -0.5, as in the original paper.
    Auto(Auto),
    /// The expected share of outliers in (0, 0.5]: the offset is that
    /// percentile of the training scores.
    Fraction(f64),
}

/// The most trees a forest may have: a tree of 256 samples takes about
/// 12 kB, so this bounds a forest to about a gigabyte (10^12 trees aborted
/// the process on a 88 TB allocation).
pub const MAX_ESTIMATORS: usize = 100_000;

/// Isolation forest parameters (scikit-learn's names and defaults, plus
/// `extension_level` for the extended forest of Hariri et al.).
///
/// ```
/// use anomaly_core::isolation_forest::{Contamination, IsolationForestParams};
/// use anomaly_core::traits::ParamGuard;
/// let params = IsolationForestParams { contamination: Contamination::Fraction(0.05), ..Default::default() };
/// assert!(params.check().is_ok());
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IsolationForestParams {
    /// Number of trees.
    pub n_estimators: usize,
    /// Rows per tree.
    pub max_samples: MaxSamples,
    /// Offset rule.
    pub contamination: Contamination,
    /// Features per tree.
    pub max_features: MaxFeatures,
    /// Draw rows with replacement.
    pub bootstrap: bool,
    /// Seed; tree `t` uses its own stream derived from `(random_state, t)`,
    /// so the forest is the same for any number of threads.
    pub random_state: u64,
    /// 0 = axis-parallel cuts (scikit-learn's forest); `k > 0` = hyperplane
    /// cuts through `k + 1` features (extended isolation forest), at most
    /// `n_features - 1`.
    pub extension_level: usize,
}

impl Default for IsolationForestParams {
    fn default() -> Self {
        IsolationForestParams {
            n_estimators: 100,
            max_samples: MaxSamples::Auto(Auto::Auto),
            contamination: Contamination::Auto(Auto::Auto),
            max_features: MaxFeatures::Fraction(1.0),
            bootstrap: false,
            random_state: 0,
            extension_level: 0,
        }
    }
}

/// Validated isolation forest parameters, ready to [`crate::traits::Fit`].
#[derive(Debug, Clone, PartialEq)]
pub struct IsolationForest {
    pub(crate) params: IsolationForestParams,
}

impl IsolationForest {
    /// The validated parameters.
    pub fn params(&self) -> &IsolationForestParams {
        &self.params
    }
}

fn fraction(name: &str, v: f64, upper: f64) -> Result<()> {
    if v > 0.0 && v <= upper {
        Ok(())
    } else {
        Err(Error::param(name, v, &format!("must be in (0, {upper}]")))
    }
}

impl ParamGuard for IsolationForestParams {
    type Checked = IsolationForest;

    fn check(&self) -> Result<IsolationForest> {
        if self.n_estimators == 0 || self.n_estimators > MAX_ESTIMATORS {
            return Err(Error::param(
                "n_estimators",
                self.n_estimators,
                &format!("must be between 1 and {MAX_ESTIMATORS}"),
            ));
        }
        match self.max_samples {
            MaxSamples::Count(0) => return Err(Error::param("max_samples", 0, "must be at least 1")),
            MaxSamples::Fraction(f) => fraction("max_samples", f, 1.0)?,
            _ => {}
        }
        match self.max_features {
            MaxFeatures::Count(0) => return Err(Error::param("max_features", 0, "must be at least 1")),
            MaxFeatures::Fraction(f) => fraction("max_features", f, 1.0)?,
            _ => {}
        }
        if let Contamination::Fraction(c) = self.contamination {
            fraction("contamination", c, 0.5)?;
        }
        Ok(IsolationForest { params: self.clone() })
    }
}

impl IsolationForest {
    /// Rows per tree for `n_samples` training rows.
    pub fn max_samples_for(&self, n_samples: usize) -> usize {
        match self.params.max_samples {
            MaxSamples::Auto(_) => n_samples.min(256),
            MaxSamples::Count(c) => (c as usize).min(n_samples),
            MaxSamples::Fraction(f) => ((f * n_samples as f64) as usize).max(1),
        }
    }

    /// Features per tree for `n_features` columns.
    pub(crate) fn max_features_for(&self, n_features: usize) -> Result<usize> {
        let k = match self.params.max_features {
            MaxFeatures::Count(c) if c as usize > n_features => {
                return Err(Error::param("max_features", c, &format!("must be at most n_features = {n_features}")));
            }
            MaxFeatures::Count(c) => c as usize,
            MaxFeatures::Fraction(f) => ((f * n_features as f64) as usize).max(1),
        };
        if self.params.extension_level >= k {
            return Err(Error::param(
                "extension_level",
                self.params.extension_level,
                &format!("must be below the number of features per tree ({k} of n_features = {n_features})"),
            ));
        }
        Ok(k)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rejects(name: &str, edit: impl FnOnce(&mut IsolationForestParams)) {
        let mut p = IsolationForestParams::default();
        edit(&mut p);
        match p.check() {
            Err(Error::InvalidParameter { name: n, .. }) => assert_eq!(n, name),
            other => panic!("{name}: {other:?}"),
        }
    }

    #[test]
    fn every_parameter_is_checked() {
        rejects("n_estimators", |p| p.n_estimators = 0);
        rejects("max_samples", |p| p.max_samples = MaxSamples::Count(0));
        rejects("max_samples", |p| p.max_samples = MaxSamples::Fraction(1.5));
        rejects("max_features", |p| p.max_features = MaxFeatures::Fraction(0.0));
        rejects("max_features", |p| p.max_features = MaxFeatures::Count(0));
        rejects("contamination", |p| p.contamination = Contamination::Fraction(0.6));
        rejects("contamination", |p| p.contamination = Contamination::Fraction(f64::NAN));
        let forest = IsolationForestParams { extension_level: 3, ..Default::default() }.check().unwrap();
        assert!(matches!(forest.max_features_for(3), Err(Error::InvalidParameter { .. })));
        assert_eq!(forest.max_features_for(4).unwrap(), 4);
        let forest =
            IsolationForestParams { max_features: MaxFeatures::Count(5), ..Default::default() }.check().unwrap();
        assert!(forest.max_features_for(4).is_err());
    }

    #[test]
    fn json_spells_parameters_as_python_does() {
        let p: IsolationForestParams =
            serde_json::from_str(r#"{"max_samples": "auto", "max_features": 1.0, "contamination": 0.1}"#).unwrap();
        assert_eq!(p.max_samples, MaxSamples::Auto(Auto::Auto));
        assert_eq!(p.max_features, MaxFeatures::Fraction(1.0));
        assert_eq!(p.contamination, Contamination::Fraction(0.1));
        let p: IsolationForestParams = serde_json::from_str(r#"{"max_samples": 100, "max_features": 2}"#).unwrap();
        assert_eq!((p.max_samples, p.max_features), (MaxSamples::Count(100), MaxFeatures::Count(2)));
        let max = IsolationForestParams::default().check().unwrap();
        assert_eq!((max.max_samples_for(100), max.max_samples_for(10_000)), (100, 256));
    }
}
