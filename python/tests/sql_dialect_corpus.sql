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
-- math
SELECT abs(count), abs(confidence) FROM {t}
SELECT abs(-5), abs(-2.5), abs(NULL)
SELECT acos(0.5), asin(0.5), atan(1.0), atan2(1.0, 2.0)
SELECT acosh(2.0), asinh(1.0), atanh(0.5)
SELECT cos(0.3), sin(0.3), tan(0.3), cot(0.3)
SELECT cosh(0.3), sinh(0.3), tanh(0.3)
SELECT cbrt(27.0), sqrt(2.0), exp(1.0), ln(10.0)
SELECT log(100.0), log(2.0, 8.0), log10(1000.0), log2(8.0)
SELECT ceil(2.1), floor(2.9), ceil(-2.1), floor(-2.9)
SELECT ceil(confidence), floor(confidence) FROM {t}
SELECT degrees(pi()), radians(180.0), pi()
SELECT factorial(5), factorial(0), factorial(20)
SELECT gcd(12, 18), lcm(4, 6), gcd(0, 5), lcm(0, 5)
SELECT gcd(count, 6) FROM {t}
SELECT isnan(confidence) FROM {t}
SELECT isnan(CAST('NaN' AS DOUBLE)), isnan(1.0)
SELECT iszero(confidence) FROM {t}
SELECT iszero(0.0), iszero(-0.0), iszero(1.5)
SELECT nanvl(CAST('NaN' AS DOUBLE), 1.0), nanvl(2.0, 1.0)
SELECT nanvl(confidence, 0.0) FROM {t}
SELECT power(2.0, 10.0), pow(3.0, 2.0), power(confidence, 2.0) FROM {t}
SELECT round(2.567, 2), round(-2.5), round(2.5), round(confidence, 1) FROM {t}
SELECT round(confidence) FROM {t}
SELECT signum(-3.5), signum(0.0), signum(2.0)
SELECT signum(confidence) FROM {t}
SELECT trunc(2.789, 1), trunc(-2.7), trunc(confidence) FROM {t}
SELECT random() >= 0.0 AND random() < 1.0, rand() < 1.0
SELECT count * 2 + 1, count - id, count % 7 FROM {t}
SELECT confidence * 2.0, confidence / 4.0, -confidence FROM {t}
SELECT 7 % 3, -7 % 3, 2 * 3 + 4
SELECT CAST(count AS DOUBLE), CAST(id AS VARCHAR) FROM {t}
SELECT CAST('42' AS INT), CAST(3.0 AS INT), CAST('-7' AS BIGINT)
SELECT TRY_CAST('x' AS INT), TRY_CAST('12' AS BIGINT)
SELECT greatest(1, 5, 3), least(1, 5, 3), greatest(count, id) FROM {t}
SELECT least(confidence, 0.5) FROM {t}
SELECT 1.0 / 0.0, -1.0 / 0.0 #@ anytype
-- conditional
SELECT coalesce(note, category, 'x') FROM {t}
SELECT coalesce(NULL, NULL, 3)
SELECT nullif(category, 'a') FROM {t}
SELECT ifnull(count, -1) FROM {t}
SELECT nvl(confidence, -1.0) FROM {t}
SELECT nvl2(note, 'has', 'none') FROM {t}
SELECT nvl2(NULL, 1, 2), nvl2(0, 1, 2)
SELECT CASE WHEN count > 0 THEN 'pos' WHEN count < 0 THEN 'neg' ELSE 'zero-or-null' END FROM {t}
SELECT CASE category WHEN 'a' THEN 1 WHEN 'b' THEN 2 END FROM {t}
SELECT count IS NULL, note IS NOT NULL, flag IS TRUE, flag IS NOT FALSE FROM {t}
SELECT count IS DISTINCT FROM 1, category IS NOT DISTINCT FROM NULL FROM {t}
SELECT id FROM {t} WHERE count BETWEEN -10 AND 10 ORDER BY id
SELECT id FROM {t} WHERE category IN ('a', 'c') AND NOT flag ORDER BY id
SELECT id FROM {t} WHERE category NOT IN ('a') ORDER BY id
SELECT id FROM {t} WHERE note LIKE '%o%' ORDER BY id
SELECT id FROM {t} WHERE note ILIKE '%HELLO%' ORDER BY id
SELECT id FROM {t} WHERE note NOT LIKE 'a%' ORDER BY id
SELECT flag AND id > 5, flag OR id > 5, NOT flag FROM {t}
-- strings
SELECT ascii(user_id), ascii(''), chr(65), chr(9731) FROM {t}
SELECT bit_length(note), octet_length(note), char_length(note), character_length(note), length(note) FROM {t}
SELECT btrim('  x y  '), btrim('xxhixx', 'x'), btrim(NULL)
SELECT btrim(note, ' ') FROM {t}
SELECT concat(user_id, '-', category), concat(note, NULL) FROM {t}
SELECT concat('a', NULL, 'b'), concat_ws(',', 'a', NULL, 'b'), concat_ws('-', user_id, category) FROM {t}
SELECT contains(note, 'o'), contains('', '') FROM {t}
SELECT ends_with(user_id, '1'), starts_with(user_id, 'u1') FROM {t}
SELECT find_in_set('b', 'a,b,c'), find_in_set('x', 'a,b'), find_in_set(category, 'a,b,c') FROM {t}
SELECT initcap('hello wORLD foo_bar 9x'), initcap(note) FROM {t}
SELECT instr(note, 'l') AS a, strpos(note, 'l') AS b, position('l' IN note) AS c FROM {t}
SELECT left(note, 3), right(note, 3), left(user_id, -1), right(user_id, -1) FROM {t}
SELECT lower(note), upper(note) FROM {t}
SELECT lpad(user_id, 6, '*'), rpad(user_id, 6, '*'), lpad(user_id, 2), rpad('ab', 5) FROM {t}
SELECT ltrim('  x  '), rtrim('  x  '), ltrim('xxax', 'x'), rtrim('xaxx', 'x')
SELECT trim('  x  '), trim(BOTH 'x' FROM 'xxaxx'), trim(LEADING 'x' FROM 'xxa'), trim(TRAILING 'x' FROM 'axx')
SELECT overlay('Txxxxas' PLACING 'hom' FROM 2 FOR 4), overlay('Txxxxas' PLACING 'hom' FROM 2)
SELECT overlay(user_id PLACING 'X' FROM 1 FOR 1) FROM {t}
SELECT repeat(user_id, 2), repeat('ab', 0) FROM {t}
SELECT replace(note, 'l', 'L') FROM {t}
SELECT reverse(note) FROM {t}
SELECT split_part('a,b,c', ',', 2), split_part('a,b,c', ',', 5), split_part(note, ' ', 1) FROM {t}
SELECT substr(note, 2, 3), substr(note, 3), substring(note FROM 2 FOR 2), substring(note, 1, 4) FROM {t}
SELECT substr_index('www.apache.org', '.', 1), substr_index('www.apache.org', '.', 2), substr_index('www.apache.org', '.', -1), substr_index('www.apache.org', '.', -2)
SELECT substring_index(note, ' ', 1) FROM {t}
SELECT translate('12345', '143', 'ax'), translate(note, 'lo', 'LO') FROM {t}
SELECT lower(to_hex(255)), to_hex(0), lower(to_hex(count)) FROM {t} WHERE count >= 0
SELECT levenshtein('kitten', 'sitting'), levenshtein(user_id, 'u1') FROM {t}
SELECT uuid() IS NOT NULL, length(CAST(uuid() AS VARCHAR))
SELECT string_agg(user_id, ',' ORDER BY id) FROM {t}
SELECT category, string_agg(user_id, '|' ORDER BY id) FROM {t} GROUP BY category
SELECT md5(user_id), md5('') FROM {t}
SELECT digest('abc', 'md5'), digest('', 'sha256'), digest(note, 'md5') FROM {t}
SELECT encode('hello', 'hex'), encode('hello', 'base64'), encode(note, 'base64') FROM {t}
SELECT decode('68656c6c6f', 'hex'), decode('aGVsbG8', 'base64')
SELECT note || '!' , user_id || category FROM {t}
SELECT 'a' || 'b' || 'c', 'x' || NULL
SELECT upper('ünïcode ✓'), lower('ÄÖÜ'), length('✓✓'), reverse('añb')
SELECT chr(ascii('a') + 1), ascii('✓')
-- regular expressions
SELECT regexp_like(user_id, '^u1'), regexp_like(note, 'HELLO', 'i') FROM {t}
SELECT regexp_like('abc', 'b'), regexp_like('abc', '^b'), regexp_like(NULL, 'a')
SELECT regexp_match('foo123bar', '[0-9]+'), regexp_match('foo123bar456', '([a-z]+)([0-9]+)')
SELECT regexp_match(note, '(\w+) (\w+)') FROM {t}
SELECT regexp_match('ABC', 'b', 'i'), regexp_match('abc', 'x')
SELECT regexp_replace(note, 'l+', 'L') FROM {t}
SELECT regexp_replace(note, 'l', 'L', 'g') FROM {t}
SELECT regexp_replace('abc123', '([a-z]+)([0-9]+)', '\2\1'), regexp_replace('aaa', 'a', 'b')
SELECT regexp_count('abcabc', 'b'), regexp_count('abcabc', 'b', 3), regexp_count('ABCabc', 'b', 1, 'i'), regexp_count(note, 'l') FROM {t}
SELECT regexp_instr('abcabc', 'c'), regexp_instr('abcabc', 'x'), regexp_instr('abcabc', 'c', 4), regexp_instr(note, 'l') FROM {t}
-- aggregates
SELECT count(*), count(note), count(DISTINCT category), count(1) FROM {t}
SELECT sum(count), avg(count), min(count), max(count) FROM {t}
SELECT sum(confidence), avg(confidence), min(confidence), max(confidence) FROM {t}
SELECT mean(confidence), median(confidence) FROM {t}
SELECT median(id) FROM {t}
SELECT category, count(*), sum(count), avg(confidence) FROM {t} GROUP BY category
SELECT category, min(note), max(note) FROM {t} GROUP BY category
SELECT min(predicted_at), max(predicted_at), min(day), max(day) FROM {t}
SELECT any_value(category) IS NOT NULL FROM {t} WHERE category = 'a'
SELECT array_agg(id ORDER BY id) FROM {t} WHERE id < 5
SELECT category, array_agg(id ORDER BY id DESC) FROM {t} GROUP BY category
SELECT array_agg(DISTINCT category ORDER BY category) FROM {t} WHERE category IS NOT NULL
SELECT bit_and(id), bit_or(id), bit_xor(id) FROM {t}
SELECT bool_and(flag), bool_or(flag) FROM {t}
SELECT category, bool_and(flag), bool_or(flag) FROM {t} GROUP BY category
SELECT corr(confidence, count) FROM {t} WHERE abs(confidence) < 100
SELECT covar(confidence, id), covar_pop(confidence, id), covar_samp(confidence, id) FROM {t}
SELECT stddev(confidence), stddev_pop(confidence), stddev_samp(confidence) FROM {t}
SELECT var(id), var_pop(id), var_samp(id), var_population(id), var_sample(id) FROM {t}
SELECT regr_slope(count, id), regr_intercept(count, id), regr_count(count, id), regr_r2(count, id) FROM {t} WHERE id < 5
SELECT regr_avgx(count, id), regr_avgy(count, id), regr_sxx(count, id), regr_syy(count, id), regr_sxy(count, id) FROM {t} WHERE id < 5
SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY confidence) FROM {t}
SELECT percentile_cont(0.25) WITHIN GROUP (ORDER BY id) FROM {t}
SELECT percentile_cont(confidence, 0.75) FROM {t}
SELECT quantile_cont(id, 0.1) FROM {t}
SELECT approx_percentile_cont(id, 0.5) FROM {t} #@ approx=0.1
SELECT approx_percentile_cont(id, 0.9, 100) FROM {t} #@ approx=0.1
SELECT approx_percentile_cont(0.1) WITHIN GROUP (ORDER BY id DESC) FROM {t} #@ approx=0.1
SELECT category, approx_percentile_cont(0.5) WITHIN GROUP (ORDER BY id) FROM {t} GROUP BY category #@ approx=0.3
SELECT approx_median(id) FROM {t} #@ approx=0.1
SELECT approx_distinct(category), approx_distinct(id), approx_distinct(note) FROM {t} #@ approx=0.2
SELECT category, approx_distinct(user_id) FROM {t} GROUP BY category #@ approx=0.2
SELECT first_value(id ORDER BY id), last_value(id ORDER BY id) FROM {t}
SELECT category, first_value(user_id ORDER BY id DESC) FROM {t} GROUP BY category
SELECT nth_value(id, 2 ORDER BY id) FROM {t}
SELECT count(*) FILTER (WHERE flag), sum(id) FILTER (WHERE category = 'a') FROM {t}
SELECT count(*) FROM {t} WHERE false
SELECT sum(count), avg(confidence), min(note), max(id), count(note) FROM {t} WHERE false
SELECT category, count(*) FROM {t} WHERE false GROUP BY category
SELECT category, count(*) AS n FROM {t} GROUP BY category HAVING count(*) > 9 ORDER BY n, category
SELECT category, flag, count(*) FROM {t} GROUP BY category, flag
SELECT category, flag, count(*), grouping(category), grouping(flag) FROM {t} GROUP BY ROLLUP (category, flag)
SELECT category, count(*) FROM {t} GROUP BY CUBE (category)
SELECT category, flag, count(*) FROM {t} GROUP BY GROUPING SETS ((category), (flag), ())
SELECT count(DISTINCT user_id), sum(DISTINCT id % 3) FROM {t}
-- window functions
SELECT id, row_number() OVER (ORDER BY id) FROM {t} ORDER BY id
SELECT id, category, row_number() OVER (PARTITION BY category ORDER BY id) FROM {t} ORDER BY id
SELECT id, rank() OVER (ORDER BY category), dense_rank() OVER (ORDER BY category) FROM {t} ORDER BY id
SELECT id, percent_rank() OVER (ORDER BY id), cume_dist() OVER (ORDER BY id) FROM {t} ORDER BY id
SELECT id, ntile(4) OVER (ORDER BY id) FROM {t} ORDER BY id
SELECT id, lag(id) OVER (ORDER BY id), lead(id) OVER (ORDER BY id) FROM {t} ORDER BY id
SELECT id, lag(id, 2, -1) OVER (ORDER BY id), lead(id, 3, -1) OVER (ORDER BY id) FROM {t} ORDER BY id
SELECT id, first_value(id) OVER (PARTITION BY category ORDER BY id), last_value(id) OVER (PARTITION BY category ORDER BY id ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING) FROM {t} ORDER BY id
SELECT id, nth_value(id, 2) OVER (ORDER BY id) FROM {t} ORDER BY id
SELECT id, sum(id) OVER (ORDER BY id ROWS BETWEEN 2 PRECEDING AND CURRENT ROW) FROM {t} ORDER BY id
SELECT id, avg(confidence) OVER (PARTITION BY category) FROM {t} ORDER BY id
SELECT id, count(*) OVER () FROM {t} ORDER BY id
SELECT id, max(count) OVER (PARTITION BY flag ORDER BY id) FROM {t} ORDER BY id
SELECT id, sum(count) OVER (ORDER BY id RANGE BETWEEN 3 PRECEDING AND 3 FOLLOWING) FROM {t} ORDER BY id
-- time and date (both engines run in UTC)
SELECT to_timestamp('2026-12-01T11:00:00Z'), to_timestamp('2026-12-01T11:00:00+02:00'), to_timestamp('2026-12-01 11:00:00')
SELECT to_timestamp('2026-12-01T11:00:00.123456Z'), to_timestamp('2026-12-01')
SELECT to_timestamp(0), to_timestamp(1700000000), to_timestamp(-86400)
SELECT to_timestamp(1.5)
SELECT to_timestamp('01/12/2026 11:30', '%d/%m/%Y %H:%M'), to_timestamp('2026-12-01 11:30', '%d/%m/%Y', '%Y-%m-%d %H:%M')
SELECT to_timestamp(NULL), to_timestamp_seconds(NULL)
SELECT id FROM {t} WHERE predicted_at >= to_timestamp('2026-12-01T12:00:00Z') AND predicted_at < to_timestamp('2026-12-01T13:00:00Z') ORDER BY id
SELECT to_timestamp_seconds(1700000000), to_timestamp_millis(1700000000123), to_timestamp_micros(1700000000123456), to_timestamp_nanos(1700000000123456789)
SELECT to_timestamp_seconds('2026-12-01T11:00:00.9Z'), to_timestamp_millis('2026-12-01T11:00:00.1239Z'), to_timestamp_micros('2026-12-01T11:00:00.5Z')
SELECT to_timestamp_nanos('2026-12-01T11:00:00.123456Z')
SELECT to_timestamp_seconds('2026/12/01', '%Y/%m/%d'), to_timestamp_millis('2026-12-01 10:00', '%Y-%m-%d %H:%M')
SELECT from_unixtime(0), from_unixtime(1700000000), from_unixtime(-1)
SELECT to_unixtime('2026-12-01T11:00:00Z'), to_unixtime(to_timestamp('1970-01-02T00:00:00Z')), to_unixtime(predicted_at) FROM {t}
SELECT to_unixtime('01/12/2026', '%d/%m/%Y')
SELECT to_date('2026-12-01'), to_date(20000), to_date('01/12/2026', '%d/%m/%Y')
SELECT to_date(predicted_at) FROM {t}
SELECT to_time('11:30:15'), to_time('11:30:15.5'), to_time('11.30', '%H.%M')
SELECT to_local_time(predicted_at) FROM {t}
SELECT date_bin(INTERVAL '15 minutes', predicted_at) AS b, count(*) FROM {t} GROUP BY b ORDER BY b
SELECT date_bin(INTERVAL '1 hour', predicted_at), date_bin(INTERVAL '7 minutes', predicted_at), date_bin(INTERVAL '1 day', at) FROM {t}
SELECT date_bin(INTERVAL '15 minutes', predicted_at, TIMESTAMP '2001-01-01 00:05:00') FROM {t}
SELECT date_bin(INTERVAL '10 seconds', to_timestamp('2026-12-01T11:00:37Z'))
SELECT date_trunc('hour', predicted_at), date_trunc('day', at), date_trunc('minute', predicted_at) FROM {t}
SELECT date_trunc('month', predicted_at), date_trunc('year', at), date_trunc('week', at) FROM {t}
SELECT datetrunc('hour', predicted_at) FROM {t}
SELECT date_part('year', at), date_part('month', at), date_part('day', at), date_part('hour', at) FROM {t} #@ anytype
SELECT date_part('minute', predicted_at), date_part('dow', at), date_part('doy', at) FROM {t} #@ anytype
SELECT datepart('week', at), date_part('quarter', at) FROM {t} #@ anytype
SELECT extract(year FROM at), extract(hour FROM predicted_at) FROM {t} #@ anytype
SELECT extract(epoch FROM predicted_at) FROM {t}
SELECT date_part('epoch', at) FROM {t}
SELECT to_char(at, '%Y/%m/%d'), to_char(day, '%d.%m.%Y'), date_format(predicted_at, '%H:%M:%S') FROM {t}
SELECT to_char(to_timestamp('2026-12-01T11:00:00.123456Z'), '%Y-%m-%dT%H:%M:%S%.3f'), to_char(to_timestamp('2026-12-01T11:00:00.123456Z'), '%.6f')
SELECT make_date(2026, 12, 1), make_date(2024, 2, 29)
SELECT current_date() = today(), current_date() IS NOT NULL
SELECT now() IS NOT NULL, current_timestamp() IS NOT NULL, current_time() IS NOT NULL
SELECT now() > to_timestamp('2020-01-01T00:00:00Z')
SELECT predicted_at + INTERVAL '1 hour', at - INTERVAL '2 days' FROM {t}
SELECT predicted_at - at FROM {t} #@ anytype
SELECT id FROM {t} WHERE day > DATE '2026-03-01' ORDER BY id
SELECT id FROM {t} WHERE at BETWEEN TIMESTAMP '2026-11-20 00:00:00' AND TIMESTAMP '2026-11-25 00:00:00' ORDER BY id
SELECT CAST(predicted_at AS DATE), CAST(day AS TIMESTAMP) FROM {t}
SELECT CAST('2026-12-01' AS DATE), CAST('2026-12-01 11:00:00' AS TIMESTAMP)
SELECT date_trunc('hour', predicted_at) AS h, count(*) FROM {t} GROUP BY h ORDER BY h
SELECT day, count(*) FROM {t} GROUP BY day ORDER BY day LIMIT 5
-- arrays (lists)
SELECT make_array(1, 2, 3), make_array('a', NULL), make_list(1.5, 2.5), make_array(id, count) FROM {t}
SELECT make_array()
SELECT tags, scores FROM {t} ORDER BY id
SELECT array_append(tags, 'z'), array_prepend('z', tags), array_push_back(scores, 9) FROM {t}
SELECT list_append(scores, 1), list_prepend(1, scores), list_push_back(scores, 2), list_push_front(2, scores) FROM {t}
SELECT array_concat(tags, make_array('x')), array_cat(scores, scores), list_cat(tags, tags), list_concat(scores, make_array(7)) FROM {t}
SELECT array_contains(tags, 't1'), array_has(scores, 2), list_has(tags, 't0'), list_contains(scores, 0) FROM {t}
SELECT array_has_all(scores, make_array(1, 2)), array_has_any(scores, make_array(4, 9)), list_has_all(tags, make_array('t0')), list_has_any(tags, make_array('t2')) FROM {t}
SELECT arrays_overlap(scores, make_array(3)), arrays_overlap(make_array(1, 2), make_array(3)) FROM {t}
SELECT array_element(tags, 1) AS a, array_extract(scores, 2) AS b, list_element(scores, 1) AS c, list_extract(tags, 2) AS d, tags[1] AS e, scores[2] AS f FROM {t}
SELECT array_element(make_array(1, 2, 3), -1), array_element(make_array(1, 2, 3), 5)
SELECT array_length(scores), list_length(tags) FROM {t}
SELECT array_length(make_array(1, 2)), list_length(make_array(1))
SELECT array_position(scores, 2), array_indexof(tags, 't1'), list_position(scores, 3), list_indexof(scores, 4) FROM {t}
SELECT array_positions(make_array(1, 2, 1, 3, 1), 1), list_positions(scores, 2) FROM {t}
SELECT array_slice(scores, 2, 3), list_slice(tags, 1, 2) FROM {t}
SELECT array_slice(make_array(1, 2, 3, 4, 5), 2, 4), array_slice(make_array(1, 2, 3, 4, 5), -3, -1)
SELECT array_reverse(scores), list_reverse(tags) FROM {t}
SELECT array_sort(scores), array_sort(scores, 'DESC'), list_sort(tags, 'DESC', 'NULLS LAST') FROM {t}
SELECT array_sort(make_array(3, NULL, 1), 'ASC', 'NULLS FIRST'), array_sort(make_array(3, NULL, 1), 'ASC', 'NULLS LAST')
SELECT array_sort(array_distinct(make_array(1, 1, 2, 3, 3))), array_sort(list_distinct(scores)) FROM {t}
SELECT array_join(scores, '-'), list_to_string(tags, '|'), list_join(tags, ';') FROM {t}
SELECT array_to_string(tags, ',') FROM {t} WHERE array_length(tags) > 0
SELECT array_to_string(make_array(1, NULL, 3), ','), array_to_string(make_array('a', NULL), '-', 'N')
SELECT array_max(scores), array_min(scores), list_max(tags) FROM {t}
SELECT array_sum(scores), array_avg(scores), array_product(scores), list_sum(scores), list_avg(scores), list_product(scores) FROM {t}
SELECT array_any_value(make_array(NULL, 2, 3)), list_any_value(scores) FROM {t}
SELECT array_compact(make_array(1, NULL, 2, NULL)), list_compact(make_array('a', NULL))
SELECT array_dims(make_array(1, 2, 3)), list_dims(scores), array_ndims(make_array(1)), list_ndims(make_array(make_array(1, 2))) FROM {t}
SELECT array_empty(scores), list_empty(tags), empty(make_array(1)) FROM {t}
SELECT array_except(make_array(1, 1, 2, 3), make_array(3)), list_except(scores, make_array(1, 2)) FROM {t}
SELECT array_union(make_array(1, 2, 2), make_array(2, 3)), list_union(scores, make_array(9)) FROM {t}
SELECT array_sort(array_intersect(make_array(1, 2, 3), make_array(2, 3, 4))), array_sort(list_intersect(scores, make_array(1, 2))) FROM {t}
SELECT array_remove(make_array(1, 2, 1, 3), 1), array_remove_all(make_array(1, 2, 1, 3), 1), array_remove_n(make_array(1, 1, 1, 2), 1, 2)
SELECT list_remove(scores, 2), list_remove_all(scores, 3), list_remove_n(scores, 4, 1) FROM {t}
SELECT array_replace(make_array(1, 2, 1), 1, 9), array_replace_all(make_array(1, 2, 1), 1, 9), array_replace_n(make_array(1, 1, 1), 1, 9, 2)
SELECT list_replace(scores, 1, 0), list_replace_all(scores, 2, 0), list_replace_n(scores, 3, 0, 1) FROM {t}
SELECT array_repeat('x', 3), array_repeat(1, 0), list_repeat(make_array(1), 2)
SELECT array_pop_back(scores), array_pop_front(scores), list_pop_back(tags), list_pop_front(tags) FROM {t}
SELECT array_resize(make_array(1, 2, 3), 5, 0), array_resize(make_array(1, 2, 3), 2), list_resize(scores, 2, 0) FROM {t}
SELECT array_add(make_array(1, 2), make_array(10, 20)), array_subtract(make_array(5.5, 2.0), make_array(0.5, 1.0)), list_add(make_array(1.5), make_array(2)), list_subtract(make_array(3), make_array(1))
SELECT array_scale(make_array(1.0, 2.0), 3.0), list_scale(make_array(1.0, -2.0), 0.5)
SELECT array_normalize(make_array(3.0, 4.0)), list_normalize(make_array(1.0, 0.0))
SELECT cosine_distance(make_array(1.0, 2.0), make_array(2.0, 4.0)), inner_product(make_array(1.0, 2.0), make_array(3.0, 4.0)), dot_product(make_array(1.0, 2.0), make_array(0.5, 0.5))
SELECT array_distance(make_array(0.0, 0.0), make_array(3.0, 4.0)), list_distance(make_array(1.0), make_array(2.0))
SELECT flatten(make_array(make_array(1, 2), make_array(3))), flatten(make_array(scores, scores)) FROM {t}
SELECT range(5), range(1, 4), range(0, 10, 3), generate_series(1, 3), generate_series(0, 10, 5)
SELECT string_to_array('a,b,c', ','), string_to_list('a-b', '-'), string_to_array('a,NULL,c', ',', 'NULL'), string_to_list(note, ' ') FROM {t}
SELECT arrays_zip(make_array(1, 2), make_array('a', 'b'))
SELECT unnest(make_array(1, 2, 3))
SELECT id, unnest(tags) FROM {t} WHERE id < 6 ORDER BY id
SELECT id FROM {t} WHERE array_has(tags, 't2') ORDER BY id
SELECT array_agg(tags) FROM {t} WHERE id < 3
SELECT array_length(array_agg(id)) FROM {t}
-- structs
SELECT named_struct('a', 1, 'b', 'x'), named_struct('id', id, 'user', user_id) FROM {t}
SELECT struct(1 AS a, 'x' AS b), struct(id AS i, note AS n) FROM {t}
SELECT struct(1, 'x'), struct(id) FROM {t}
SELECT get_field(named_struct('a', 1, 'b', 2), 'b'), get_field(struct(id AS i), 'i') FROM {t}
SELECT named_struct('a', 1)['a'], struct(id AS x)['x'] FROM {t}
SELECT get_field(named_struct('o', named_struct('i', 5)), 'o', 'i')
SELECT named_struct('a', make_array(1, 2), 'b', named_struct('c', NULL))
-- hashing and binary
SELECT md5('abc'), digest('abc', 'sha256'), digest('abc', 'md5')
SELECT digest(user_id, 'md5'), md5(note) FROM {t}
SELECT encode(digest('abc', 'sha256'), 'hex'), encode(digest(user_id, 'md5'), 'base64') FROM {t}
SELECT decode(encode(note, 'hex'), 'hex') FROM {t}
-- identifiers: `at` is a keyword in DuckDB, not in DataFusion
SELECT at FROM {t} ORDER BY at LIMIT 3
SELECT id, at AS happened FROM {t} WHERE at < to_timestamp('2026-11-10T00:00:00Z') ORDER BY id
SELECT max(at), min(at) FROM {t}
SELECT date_trunc('day', at) AS d, count(*) FROM {t} GROUP BY date_trunc('day', at) ORDER BY d LIMIT 4
SELECT t2.at FROM {t} AS t2 ORDER BY t2.at DESC LIMIT 2
SELECT "at", "id" FROM {t} ORDER BY "id" LIMIT 2
SELECT x.at FROM (SELECT at FROM {t}) AS x ORDER BY x.at LIMIT 1
-- queries: subqueries, CTEs, joins, set operations, ordering
WITH c AS (SELECT category, count(*) AS n FROM {t} GROUP BY category) SELECT * FROM c ORDER BY n DESC, category
SELECT id FROM {t} WHERE count > (SELECT avg(count) FROM {t}) ORDER BY id
SELECT id FROM {t} WHERE category IN (SELECT category FROM {t} WHERE flag) ORDER BY id
SELECT id FROM {t} a WHERE EXISTS (SELECT 1 FROM {t} b WHERE b.id = a.id + 20) ORDER BY id
SELECT a.id, b.id FROM {t} a JOIN {t} b ON a.id = b.id + 1 WHERE a.id < 5 ORDER BY a.id
SELECT a.id, b.note FROM {t} a LEFT JOIN {t} b ON a.id = b.id + 38 ORDER BY a.id LIMIT 5
SELECT count(*) FROM {t} a CROSS JOIN {t} b
SELECT id FROM {t} WHERE id < 3 UNION ALL SELECT id FROM {t} WHERE id > 37 ORDER BY id
SELECT category FROM {t} UNION SELECT 'z'
SELECT id FROM {t} WHERE id < 10 INTERSECT SELECT id FROM {t} WHERE id > 5 ORDER BY id
SELECT id FROM {t} WHERE id < 10 EXCEPT SELECT id FROM {t} WHERE id > 5 ORDER BY id
SELECT id, count FROM {t} ORDER BY count DESC NULLS LAST, id LIMIT 5
SELECT id, count FROM {t} ORDER BY count ASC NULLS FIRST, id LIMIT 5
SELECT id FROM {t} ORDER BY id LIMIT 3 OFFSET 5
SELECT DISTINCT category FROM {t}
SELECT * FROM (VALUES (1, 'a'), (2, 'b')) AS v(x, y) ORDER BY x
SELECT user_id, count(*) FROM {t} GROUP BY user_id ORDER BY 2 DESC, 1 LIMIT 3
SELECT category, sum(count) AS s FROM {t} GROUP BY 1 ORDER BY s
SELECT id % 5 AS k, count(*) FROM {t} GROUP BY id % 5 ORDER BY k
SELECT CASE WHEN id < 20 THEN 'low' ELSE 'high' END AS b, avg(confidence) FROM {t} GROUP BY 1 ORDER BY 1
-- edge values: NULL, NaN, infinity, empty strings, 'NULL' text, large numbers
SELECT NULL IS NULL, NULL = NULL, 1 = NULL, NULL AND false, NULL OR true
SELECT CAST('NaN' AS DOUBLE) = CAST('NaN' AS DOUBLE), CAST('inf' AS DOUBLE) > 1e308, -CAST('inf' AS DOUBLE)
SELECT greatest(1.0, CAST('NaN' AS DOUBLE)), least(1.0, CAST('-inf' AS DOUBLE))
SELECT note = '', note = 'NULL', note IS NULL FROM {t}
SELECT count(*) FROM {t} WHERE note = 'NULL'
SELECT length(''), upper(''), reverse(''), btrim(''), concat('', '')
SELECT 9223372036854775807, -9223372036854775807 - 1
SELECT max(count), min(count) FROM {t}
SELECT count + 1 FROM {t} WHERE count > 1000000
SELECT 1e300 * 10, -1e-320
SELECT sum(confidence) FROM {t} WHERE confidence > 1e10
SELECT abs(CAST('-inf' AS DOUBLE)), sqrt(CAST('inf' AS DOUBLE)), ln(1.0)
SELECT nanvl(CAST('NaN' AS DOUBLE), CAST('inf' AS DOUBLE))
SELECT isnan(CAST('inf' AS DOUBLE)), iszero(CAST('-inf' AS DOUBLE))
SELECT char_length('✓'), octet_length('✓'), bit_length('✓')
SELECT substr('hello', 0, 2), substr('hello', 1, 0), substr('hello', 10)
SELECT left('abc', 0), right('abc', 10), repeat('ab', -1) #@ anytype
SELECT split_part('a,b', ',', -1), split_part('', ',', 1)
SELECT lpad('abc', 2, 'x'), rpad('abc', 0, 'x'), lpad('', 3, 'ab')
SELECT strpos('', ''), strpos('abc', ''), instr('abc', 'd')
SELECT to_timestamp('1970-01-01T00:00:00Z'), to_timestamp('1969-12-31T23:59:59Z'), to_timestamp('2262-04-11T00:00:00Z')
SELECT date_trunc('second', to_timestamp('2026-12-01T11:00:00.999999Z'))
SELECT make_array(NULL, NULL), array_length(make_array(NULL))
SELECT array_position(make_array(1, 2), 3), array_has(make_array(1, NULL), NULL) #@ anytype
SELECT regexp_like('', ''), regexp_replace('', 'a', 'b'), regexp_match('', 'a')
SELECT encode('', 'hex'), encode('', 'base64'), decode('', 'hex')
SELECT md5(''), digest('', 'md5')
SELECT initcap(''), initcap('123abc DEF-ghi'), initcap('a')
SELECT btrim('xyx', 'xyz'), btrim('abc', '')
SELECT find_in_set('', ''), find_in_set('a', '')
SELECT nvl(NULL, NULL), nvl2(NULL, NULL, NULL) #@ anytype
SELECT coalesce(NULL, note, 'x') FROM {t}
SELECT count(*), count(count), sum(count), avg(count) FROM {t} WHERE count IS NULL
-- casts by Arrow type name, maps, misc
SELECT arrow_cast(1, 'Int32'), arrow_cast('2026-12-01', 'Date32'), arrow_try_cast('x', 'Int64'), arrow_cast(confidence, 'Float32') FROM {t}
SELECT arrow_cast(id, 'Utf8'), arrow_typeof(arrow_cast(id, 'Int16')), arrow_cast(count, 'Float64') FROM {t}
SELECT arrow_cast('2026-12-01T11:00:00', 'Timestamp(Microsecond, None)'), arrow_try_cast('12', 'UInt8')
SELECT cast_to_type('42', CAST(1 AS BIGINT)), cast_to_type(id, 'text') FROM {t}
SELECT make_time(11, 30, 15), make_time(0, 0, 0)
SELECT map(make_array('a', 'b'), make_array(1, 2)), map_keys(map(make_array('a', 'b'), make_array(1, 2))), map_values(map(make_array('x'), make_array(true)))
SELECT map_extract(map(make_array('a', 'b'), make_array(1, 2)), 'b'), element_at(map(make_array('a', 'b'), make_array(1, 2)), 'a')
SELECT map_entries(map(make_array('a', 'b'), make_array(1, 2))), cardinality(map(make_array('a', 'b'), make_array(1, 2)))
SELECT map(make_array(user_id), make_array(id)) FROM {t}
-- aggregate modifiers on DataFusion-named aggregates, literals and operators
SELECT approx_percentile_cont(confidence, 0.5) FILTER (WHERE flag), approx_distinct(user_id) FILTER (WHERE id > 20) FROM {t} #@ approx=0.2
SELECT var(id) FILTER (WHERE flag), covar(id, count) FILTER (WHERE count > 0), var_population(DISTINCT id % 4) FROM {t}
SELECT approx_median(confidence) FILTER (WHERE category = 'a') FROM {t} #@ approx=0.5
SELECT category, percentile_cont(confidence, 0.5) FILTER (WHERE flag) FROM {t} GROUP BY category
SELECT count(*) FROM {t} WHERE predicted_at > to_timestamp('2026-12-01T13:00:00Z') - INTERVAL '1 hour'
SELECT count(*) FROM {t} WHERE predicted_at > '2026-12-01T11:00:00Z'
SELECT INTERVAL '1 day 2 hours', INTERVAL '1' HOUR, INTERVAL '90 minutes'
SELECT CAST(id AS STRING) AS s, CAST(id AS TEXT) AS t2, id::INT AS i, CAST(confidence AS REAL) AS r FROM {t}
SELECT note SIMILAR TO 'h%' FROM {t}
SELECT x FROM unnest(make_array(1, 2)) AS u(x) ORDER BY x
SELECT * FROM generate_series(1, 3)
SELECT * FROM range(2, 8, 3)
SELECT substring('hello' FROM 2), position('l' IN 'hello'), trim(' a ')
SELECT 'a' < 'b', 'a' = 'A', 'abc' > 'abd'
SELECT TIMESTAMP '2026-12-01 11:00:00', DATE '2026-12-01', CAST('2026-12-01T11:00:00Z' AS TIMESTAMP)
SELECT to_timestamp('2026-03-29T01:30:00+01:00'), to_timestamp('2026-12-01T11:00:00.123456789Z')
-- more edges of shared built-ins
SELECT date_part('second', predicted_at), date_part('millisecond', predicted_at), date_part('microsecond', predicted_at) FROM {t}
SELECT extract(second FROM predicted_at), date_part('week', day), date_part('dow', day), date_part('isodow', day) FROM {t}
SELECT date_trunc('quarter', at), date_trunc('second', predicted_at), date_trunc('millisecond', predicted_at) FROM {t}
SELECT concat_ws(NULL, 'a', 'b'), concat_ws(',', NULL), lpad('ab', 7, 'xyz'), rpad('ab', 7, 'xyz')
SELECT string_agg(note, ',' ORDER BY id) FROM {t} WHERE id < 10
SELECT array_agg(note ORDER BY id) FROM {t} WHERE id < 10
SELECT avg(count), median(count), stddev(count), var_pop(count) FROM {t} WHERE id = 3
SELECT bool_and(flag), bit_and(id), corr(id, count), stddev(id) FROM {t} WHERE false
SELECT median(count), median(confidence) FROM {t}
SELECT percent_rank() OVER (), cume_dist() OVER (), ntile(3) OVER (ORDER BY id) FROM {t} WHERE id < 2
SELECT lag(note, 1, 'none') OVER (ORDER BY id), nth_value(note, 3) OVER (ORDER BY id) FROM {t} WHERE id < 5 ORDER BY id
SELECT round(2.675, 2), round(-0.5), round(0.5), round(1.5), round(confidence, -1) FROM {t}
SELECT trunc(1234.5678, -2), trunc(1234.5678, 2), log(0.5), log(10, 100), log(2.0, 0.5)
SELECT abs(-9223372036854775807), -(-9223372036854775807)
SELECT left('abc', -5), right('abc', -5), repeat('x', -2), translate('abc', 'ab', ''), replace('abc', '', 'x')
SELECT strpos('äbc', 'c'), length('äbc'), substr('äbc', 2, 1), reverse('äbc'), levenshtein(NULL, 'a'), levenshtein('', '')
SELECT ascii(NULL), chr(0), regexp_replace('a.b.c', '\.', '-', 'g'), regexp_replace('abc', '(b)', '[\1]')
SELECT date_bin(INTERVAL '1 week', at), date_bin(INTERVAL '1 month', at) FROM {t}
SELECT to_timestamp('2026-12-01T11:00:00+05:30'), date_part('epoch', DATE '2026-12-01'), to_unixtime(DATE '2026-12-01'), to_unixtime(1.9), to_unixtime(-1.5)
-- upper-case spellings
SELECT BTRIM(note), NVL(note, 'x'), MAKE_ARRAY(1, id), STRUCT(1 AS A), NAMED_STRUCT('a', id), TO_TIMESTAMP('2026-12-01T11:00:00Z') FROM {t}
SELECT DATE_BIN(INTERVAL '1 hour', predicted_at) AS b, APPROX_DISTINCT(user_id), APPROX_PERCENTILE_CONT(0.5) WITHIN GROUP (ORDER BY id) FROM {t} GROUP BY b ORDER BY b #@ approx=0.3
SELECT "at" AS a1, AT AS a2 FROM {t} WHERE At IS NOT NULL ORDER BY id LIMIT 2
-- regexp_match with many and with named capture groups
SELECT regexp_match('a1b2c3d4e5f6', '(a)(1)(b)(2)(c)(3)(d)(4)(e)'), regexp_match(user_id, '(?P<letter>[a-z])(\d)')  FROM {t}
