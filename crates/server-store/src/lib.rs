//! PostgreSQL for the sync server: roles, migrations, tenant-scoped transactions under row-level security, control plane.
