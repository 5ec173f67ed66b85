//! Shared setup of the end-to-end sync tests: the harness crate `e2e-harness` (a fresh server database
//! with provisioned tenants, the server in-process or as its binary, signed-in laptops behind fault
//! proxies), which the chaos suite uses too.
#![allow(unused_imports)]

pub use e2e_harness::*;
