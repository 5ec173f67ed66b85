//! Uplift learning: experiments, feature pipeline, learners, metrics, policy, data health. No IO.
