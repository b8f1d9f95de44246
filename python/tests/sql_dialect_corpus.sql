-- DataFusion-dialect queries run on the `datafusion` package and on the server.
-- {t} is the table; see test_sql_dialect.py for the options after #@.
-- the queries of issue 17
SELECT approx_percentile_cont(confidence, 0.95) FROM {t} #@ approx=0.35
SELECT approx_percentile_cont(0.95) WITHIN GROUP (ORDER BY confidence) FROM {t} #@ approx=0.35
SELECT date_bin(INTERVAL '15 minutes', predicted_at), count(*) FROM {t} GROUP BY 1
SELECT count(*) FROM {t} WHERE predicted_at > to_timestamp('2026-12-01T11:00:00Z')
SELECT regexp_match(user_id, 'u(\d+)') FROM {t}
SELECT make_array(1, 2, 3)
SELECT named_struct('a', 1)
SELECT struct(1 AS a)
SELECT approx_distinct(user_id) FROM {t}
SELECT approx_median(confidence) FROM {t} #@ approx=0.5
SELECT arrow_typeof(confidence), arrow_typeof(user_id), arrow_typeof(flag) FROM {t} LIMIT 1
SELECT to_char(predicted_at, '%Y-%m-%d %H:%M') FROM {t}
SELECT nvl(note, 'none') FROM {t}
SELECT btrim(note) FROM {t}
SELECT digest(user_id, 'sha256') FROM {t}
SELECT from_unixtime(1700000000)
SELECT at FROM {t} ORDER BY id
SELECT id, at FROM {t} WHERE at > to_timestamp('2026-11-20T00:00:00Z') ORDER BY at
