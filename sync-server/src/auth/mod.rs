//! Authentication: password hashes, signed access tokens, rotating refresh tokens, and the request
//! extractor that turns a bearer token into a verified identity.

pub mod identity;
pub mod password;
pub mod token;
