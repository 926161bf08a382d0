//! The exported model file as written by `anomaly.credit_risk.export_sklearn`
//! (`docs/credit_model_format.md`): plain serde types, checked and compiled
//! into the scorer's own structures by [`super::CreditModel::from_json`].

use serde::{Deserialize, Deserializer};

/// The whole file.
#[derive(Debug, Deserialize)]
pub(crate) struct Document {
    pub(crate) format: String,
    pub(crate) version: u32,
    #[serde(default)]
    pub(crate) sklearn_version: String,
    pub(crate) input: InputDoc,
    pub(crate) classes: Vec<serde_json::Value>,
    pub(crate) preprocessing: Option<NodeDoc>,
    pub(crate) classifier: ClassifierDoc,
}

#[derive(Debug, Deserialize)]
pub(crate) struct InputDoc {
    pub(crate) named: bool,
    pub(crate) columns: Vec<ColumnDoc>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct ColumnDoc {
    pub(crate) name: String,
    pub(crate) kind: ColumnKind,
    #[serde(default)]
    pub(crate) categories: Option<Vec<Category>>,
}

/// What a column's cells hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ColumnKind {
    /// Numbers (missing = NaN).
    Numeric,
    /// Category labels (strings; a number only matches a numeric category).
    Categorical,
}

/// A category as an encoder knows it: a number, a string, or the missing
/// category (`null`).
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize)]
#[serde(untagged)]
pub enum Category {
    /// A numeric category.
    Number(f64),
    /// A string category.
    Text(String),
    /// scikit-learn's `None` / NaN category.
    Missing(()),
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum NodeDoc {
    Pipeline {
        steps: Vec<StepDoc>,
    },
    ColumnTransformer {
        transformers: Vec<BranchDoc>,
        n_features_in: usize,
    },
    SimpleImputer {
        missing_values: Option<Category>,
        statistics: Vec<Category>,
    },
    StandardScaler {
        #[serde(deserialize_with = "floats_opt")]
        mean: Option<Vec<f64>>,
        #[serde(deserialize_with = "floats_opt")]
        scale: Option<Vec<f64>>,
    },
    MinMaxScaler {
        #[serde(deserialize_with = "floats")]
        scale: Vec<f64>,
        #[serde(deserialize_with = "floats")]
        min: Vec<f64>,
        #[serde(deserialize_with = "floats_opt")]
        clip: Option<Vec<f64>>,
    },
    OneHotEncoder {
        categories: Vec<Vec<Category>>,
        drop: Vec<Option<usize>>,
        handle_unknown: String,
    },
    OrdinalEncoder {
        categories: Vec<Vec<Category>>,
        handle_unknown: String,
        #[serde(deserialize_with = "float_opt")]
        unknown_value: Option<f64>,
        #[serde(deserialize_with = "float")]
        encoded_missing_value: f64,
    },
}

#[derive(Debug, Deserialize)]
pub(crate) struct StepDoc {
    pub(crate) node: NodeDoc,
}

#[derive(Debug, Deserialize)]
pub(crate) struct BranchDoc {
    pub(crate) name: String,
    pub(crate) columns: Vec<usize>,
    pub(crate) node: BranchNode,
}

/// A column-transformer branch: `"passthrough"` or a node. (Not an
/// untagged enum, whose error would hide what is wrong inside the node.)
#[derive(Debug)]
pub(crate) enum BranchNode {
    Passthrough,
    Node(NodeDoc),
}

impl<'de> Deserialize<'de> for BranchNode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(d)?;
        match value {
            serde_json::Value::String(s) if s == "passthrough" => Ok(BranchNode::Passthrough),
            other => NodeDoc::deserialize(other).map(BranchNode::Node).map_err(serde::de::Error::custom),
        }
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct TreeDoc {
    pub(crate) children_left: Vec<i64>,
    pub(crate) children_right: Vec<i64>,
    pub(crate) feature: Vec<i64>,
    #[serde(deserialize_with = "floats")]
    pub(crate) threshold: Vec<f64>,
    pub(crate) missing_go_to_left: Vec<bool>,
    #[serde(deserialize_with = "float_rows")]
    pub(crate) value: Vec<Vec<f64>>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct PredictorDoc {
    #[serde(deserialize_with = "floats")]
    pub(crate) value: Vec<f64>,
    pub(crate) feature: Vec<i64>,
    #[serde(deserialize_with = "floats")]
    pub(crate) num_threshold: Vec<f64>,
    pub(crate) missing_go_to_left: Vec<bool>,
    pub(crate) left: Vec<i64>,
    pub(crate) right: Vec<i64>,
    pub(crate) is_leaf: Vec<bool>,
    pub(crate) is_categorical: Vec<bool>,
    pub(crate) left_categories: Vec<Option<Vec<i64>>>,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum ClassifierDoc {
    LogisticRegression {
        #[serde(deserialize_with = "float_rows")]
        coef: Vec<Vec<f64>>,
        #[serde(deserialize_with = "floats")]
        intercept: Vec<f64>,
        n_features: usize,
    },
    DecisionTree {
        n_features: usize,
        accepts_nan: bool,
        tree: TreeDoc,
    },
    Forest {
        kind: String,
        n_features: usize,
        accepts_nan: bool,
        trees: Vec<TreeDoc>,
    },
    GradientBoosting {
        n_features: usize,
        link: String,
        #[serde(deserialize_with = "floats")]
        init_raw: Vec<f64>,
        #[serde(deserialize_with = "float")]
        learning_rate: f64,
        stages: Vec<Vec<TreeDoc>>,
    },
    /// LightGBM's classifier (file version 2), compiled in `lightgbm.rs`.
    Lightgbm(super::lightgbm::LightGbmDoc),
    /// XGBoost's classifier (file version 2), compiled in `xgboost.rs`.
    Xgboost(super::xgboost::XgBoostDoc),
    HistGradientBoosting {
        n_features: usize,
        link: String,
        #[serde(deserialize_with = "floats")]
        baseline: Vec<f64>,
        known_categories: Vec<Option<Vec<i64>>>,
        iterations: Vec<Vec<PredictorDoc>>,
    },
}

/// A float written as a JSON number or, when not finite, as `"NaN"`,
/// `"Infinity"` or `"-Infinity"`.
#[derive(Deserialize)]
#[serde(untagged)]
enum JsonFloat {
    Number(f64),
    Text(String),
}

impl JsonFloat {
    fn value<E: serde::de::Error>(self) -> Result<f64, E> {
        match self {
            JsonFloat::Number(v) => Ok(v),
            JsonFloat::Text(t) => match t.as_str() {
                "NaN" => Ok(f64::NAN),
                "Infinity" => Ok(f64::INFINITY),
                "-Infinity" => Ok(f64::NEG_INFINITY),
                other => Err(E::custom(format!("expected a number, \"NaN\" or \"Infinity\", found {other:?}"))),
            },
        }
    }
}

pub(crate) fn float<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    JsonFloat::deserialize(d)?.value()
}

pub(crate) fn float_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    Option::<JsonFloat>::deserialize(d)?.map(JsonFloat::value).transpose()
}

pub(crate) fn floats<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f64>, D::Error> {
    Vec::<JsonFloat>::deserialize(d)?.into_iter().map(JsonFloat::value).collect()
}

/// Floats where `null` stands for "none here" (a categorical node's threshold).
pub(crate) fn floats_or_null<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Option<f64>>, D::Error> {
    Vec::<Option<JsonFloat>>::deserialize(d)?.into_iter().map(|v| v.map(JsonFloat::value).transpose()).collect()
}

fn floats_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<f64>>, D::Error> {
    Option::<Vec<JsonFloat>>::deserialize(d)?.map(|v| v.into_iter().map(JsonFloat::value).collect()).transpose()
}

fn float_rows<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Vec<f64>>, D::Error> {
    Vec::<Vec<JsonFloat>>::deserialize(d)?
        .into_iter()
        .map(|row| row.into_iter().map(JsonFloat::value).collect())
        .collect()
}
