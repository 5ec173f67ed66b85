//! Uplift learning: experiments, feature pipeline, learners, metrics, policy, data health. No IO.
//!
//! Everything here is a pure function of its inputs: no files, no network, no clock reads. Callers pass
//! `now`, seeds and ids in, which keeps the server's retraining and the laptop's offline policy identical.

pub mod boosting;
pub mod error;
pub mod experiment;
pub mod features;
pub mod health;
pub mod learners;
pub mod logistic;
pub mod matrix;
pub mod metrics;
pub mod policy;
pub mod stable_hash;
pub mod synthetic;

pub use error::{Result, UpliftError};
pub use matrix::Matrix;
