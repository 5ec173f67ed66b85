//! One encrypted (SQLCipher) tenant file: keyed open, key lifecycle, migrations, outbox, queries.
