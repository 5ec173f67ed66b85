-- 0011: fewer pages written (and, in an encrypted file, encrypted and signed) per journey touch, above all
-- when touches are committed a few hundred at a time, as a crew logs them. Counted per B-tree from the
-- write-ahead log of 100,000 touches in 1,000-row commits (`insert_profile`, see docs/benchmarks.md), each
-- commit rewrote about 23 pages of `journey_touches_by_day` (a commit's touches land all over its day's
-- entries), and 4 of every other B-tree a touch lands in.
--
-- 1. Touches are indexed by their UTC hour and property instead of their UTC day and property. A commit's
--    touches then land among the entries of the last hour or two (a few pages), not among the whole day's.
--    A property's timeline steps through the distinct hours (one index seek each); a crew's day is 24 of
--    the index's first values. The expression is `occurred_at / 3600000` (milliseconds per hour; integer
--    division), and queries must spell it exactly so for SQLite to use the index.
--
-- 2. The insert change of an append-only record (touch, outcome, decision) has the record's id as its change
--    id (writes.rs), so it is found through the outbox's unique `change_id` index, and `outbox_by_record`
--    only holds the changes whose id is not their record's (mutable records' changes, a refused insert's
--    edit, and rows queued before this migration). Each touch then writes one index entry less.
--
-- No row changes.
DROP INDEX journey_touches_by_day;
CREATE INDEX journey_touches_by_hour ON journey_touches (occurred_at / 3600000, property_id);
DROP INDEX outbox_by_record;
CREATE INDEX outbox_by_record ON outbox (entity, entity_id) WHERE change_id IS NOT entity_id;
