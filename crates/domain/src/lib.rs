//! StormOps Field's domain: every record of the product as a typed struct, id newtypes, enums,
//! validation with typed errors, and the hybrid logical clock. This crate does no IO.

pub mod clock;
pub mod enums;
pub mod ids;
pub mod records;
pub mod time;
pub mod validation;

pub use clock::{Hlc, HlcError};
pub use enums::*;
pub use ids::*;
pub use records::*;
pub use time::{Cents, Timestamp};
pub use validation::{Validate, ValidationError, ValidationErrorCode, slugify};
