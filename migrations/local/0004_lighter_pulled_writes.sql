-- 0004: lighter writes of pulled records, for the first sync of a large storm (200,000 properties with scores).
--
-- 1. `field_clocks` of mutable records (storms, properties, territories, users, crews) may now be stored grouped by
--    clock, `{"<hlc>":["field",…]}`, instead of one clock per field, `{"field":"<hlc>"}`. A record written in one
--    go (every pulled record, every import) has a single clock, so its clock text is stored once instead of once
--    per field: a property row shrinks by about 600 bytes. The column does not change and rows written before
--    keep their form (both read back to the same clocks); an older build reads only the per-field form, and this
--    version number makes it refuse the file instead of misreading it.
--
-- 2. The rank column and latest decision on `properties` are no longer kept by the triggers below on these paths:
--    the one statement that writes a property picks up its score and latest decision as it inserts the row, and
--    the one statement that writes a score updates the rank column right after it (crates/local-store rows.rs).
--    A trigger makes SQLite keep a statement journal of every page the statement touches (a copy of each page
--    before its first change, so a failed statement can be undone alone); on a first sync that was about half of
--    the time spent writing properties and scores. The delete triggers and the decision triggers stay.
DROP TRIGGER properties_pick_up_score;
DROP TRIGGER properties_pick_up_decision;
DROP TRIGGER uplift_scores_rank_insert;
DROP TRIGGER uplift_scores_rank_update;
