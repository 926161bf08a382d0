#![doc = include_str!("../README.md")]

pub mod consumption;
pub mod credit_risk;
pub mod data;
pub mod error;
pub mod forecast_interval;
pub mod isolation_forest;
pub mod persist;
pub mod rng;
pub mod time;
pub mod traits;

pub use error::{Error, Result};
