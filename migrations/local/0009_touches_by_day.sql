-- 0009: a journey touch is indexed by its UTC day and its property, in one index, instead of by its property
-- (`journey_touches_by_property`) and by its time (`journey_touches_by_time`) in two.
--
-- Why: touches are the laptop's most frequent write, and a crew logs them for today. Keyed by property alone,
-- a batch of touches landed at random places across every property's entries, so each commit rewrote (and,
-- in an encrypted file, encrypted and signed) most leaf pages of that index: about 70 % of the pages a
-- 1,000-touch commit wrote. Keyed by day first, the same batch lands among today's entries only, a few
-- dozen pages. The index also answers what the time index did — a crew's UTC day (`crew_day`) is one value
-- of its first column — so that index goes, one B-tree less per touch.
--
-- Reading a property's timeline walks the distinct days (one index seek each) and seeks the property within
-- each: a laptop holding a season of touches has a few hundred days, a millisecond or two.
--
-- The expression is `occurred_at / 86400000` (milliseconds per day; integer division); queries must spell it
-- exactly so for SQLite to use the index. No row changes.
DROP INDEX journey_touches_by_property;
DROP INDEX journey_touches_by_time;
CREATE INDEX journey_touches_by_day ON journey_touches (occurred_at / 86400000, property_id);
