#!/usr/bin/env bash
# Builds the IPC reader fuzz target with clang (libFuzzer + ASan + UBSan) and runs it
# for a short time from a seed corpus of valid streams written by pyarrow. Usage:
#   scripts/fuzz_smoke.sh [seconds]     (default 20; use more for a real fuzzing run)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-20}
out=build-fuzz
mkdir -p "$out/corpus"
if ! command -v clang >/dev/null; then
  echo "[fuzz] clang not installed; run scripts/bootstrap.sh" >&2
  exit 1
fi
# Library sources of the areas the reader needs (tests, fuzz targets excluded).
sources=$(ls src/ipc/*.c src/arrow/*.c src/util/*.c | grep -v -E '_(test|fuzz)\.c$')
clang -std=c11 -g -O1 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE \
  -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
  -Iinclude -Isrc src/ipc/ipc_reader_fuzz.c $sources -o "$out/ipc_reader_fuzz"
.venv/bin/python - "$out/corpus" <<'PY'
import datetime as dt, sys, pyarrow as pa
out = sys.argv[1]
cols = {
    "i": pa.array([1, None, 3]), "s": pa.array(["a", None, "long string value here"]),
    "v": pa.array(["x", "a string longer than twelve", None], pa.string_view()),
    "b": pa.array([True, False, None]), "d": pa.array([dt.date(2020, 1, 1)] * 3),
    "t": pa.array([dt.datetime(2020, 1, 1)] * 3, pa.timestamp("us", tz="UTC")),
    "l": pa.array([[1], [], None], pa.list_(pa.int64())),
    "st": pa.array([{"a": 1}, None, {"a": 2}]),
    "e": pa.array(["p", "q", "p"]).dictionary_encode(),
}
for i, (name, col) in enumerate(cols.items()):
    table = pa.table({name: col})
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as w:
        w.write_table(table)
    open(f"{out}/seed_{i}_{name}.arrow", "wb").write(sink.getvalue().to_pybytes())
PY
echo "[fuzz] running ipc_reader_fuzz for ${seconds}s"
"$out/ipc_reader_fuzz" -max_total_time="$seconds" -max_len=4096 -print_final_stats=1 "$out/corpus" \
  2>"$out/fuzz.log" || { tail -50 "$out/fuzz.log"; exit 1; }
grep -E "stat::number_of_executed_units" "$out/fuzz.log" || true
echo "[fuzz] no crash"
