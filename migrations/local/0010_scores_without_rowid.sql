-- 0010: uplift scores are stored in their primary key's order (`WITHOUT ROWID`), one B-tree instead of a
-- table and its primary-key index. A score is only ever found by (property, storm), and every score was
-- written twice — its row, then the index entry repeating both 36-character ids — so a first sync of
-- 200,000 scored properties inserted 200,000 entries more than it needed and wrote (and encrypted) about 80
-- bytes more per score. The columns and what the app reads do not change.
--
-- The table is rebuilt (copy and rename); its one trigger goes with the old table and is created again.
CREATE TABLE uplift_scores_0010 (
    property_id    TEXT NOT NULL,
    storm_id       TEXT NOT NULL,
    uplift         REAL NOT NULL,
    p_treat        REAL NOT NULL,
    p_hold         REAL NOT NULL,
    model_version  TEXT NOT NULL,
    trained_at     INTEGER NOT NULL,
    data_watermark INTEGER NOT NULL,
    PRIMARY KEY (property_id, storm_id)
) STRICT, WITHOUT ROWID;
INSERT INTO uplift_scores_0010 (property_id, storm_id, uplift, p_treat, p_hold, model_version, trained_at,
                                data_watermark)
SELECT property_id, storm_id, uplift, p_treat, p_hold, model_version, trained_at, data_watermark
  FROM uplift_scores;
DROP TABLE uplift_scores;
ALTER TABLE uplift_scores_0010 RENAME TO uplift_scores;
CREATE TRIGGER uplift_scores_rank_delete AFTER DELETE ON uplift_scores BEGIN
    UPDATE properties SET score_uplift = NULL WHERE id = OLD.property_id AND storm_id = OLD.storm_id;
END;
