//! HTTP handlers by area. Each handler parses, authorises, calls the store in one transaction, answers.

pub mod admin;
pub mod audit;
pub mod auth;
pub mod directory;
pub mod health;
pub mod office;
pub mod sync;
pub mod usage;
