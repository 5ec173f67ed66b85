-- The pull feed reads a transaction's rows in record order, `(txid, entity_id, id)`, instead of change-id
-- order, `(txid, id)` (`server_store::sync::pull`; cursors `c2.`).
--
-- Why: the feed's change ids are random (`gen_random_uuid()`), so a transaction larger than a pull page
-- (a tenant's data import, a storm's retraining, an office upload: tens of thousands of rows) reached each
-- laptop as pages of records drawn at random from the whole transaction. A laptop writes each page in one
-- local transaction, so every page landed all over its B-trees, and a record whose changes fell on two
-- pages (a property and its uplift score, which shares the property's id) had its row written twice: a
-- retraining's score pages rewrote (and, in the encrypted file, encrypted again) most property pages on
-- every page. In record order a page holds a contiguous run of ids (UUIDv7: creation order), each
-- record's changes together, so each page extends the laptop's trees at one end and touches each row once.
--
-- The commit-safe rule is unchanged: rows are still read below the snapshot's xmin, in txid order first.
-- The index replaces `change_log_tenant_txid` (same leading keys; one more uuid per entry). Building it
-- holds writes to the feed back for its duration while pulls keep reading; dropping the old index then
-- takes the table's exclusive lock for a moment.
CREATE INDEX change_log_tenant_txid_record ON change_log (tenant_id, txid, entity_id, id);
DROP INDEX change_log_tenant_txid;
