//! Test support: a PostgreSQL to test against, the running one or a private cluster started on demand.
