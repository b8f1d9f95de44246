#!/usr/bin/env bash
# Bootstrap a fresh machine for Bifrost: Debian build packages, the pinned DuckDB
# C library and header and its httpfs extension (checksummed, in the git-ignored
# .deps/), and the Python virtualenvs at .venv and .venv-scouter (the published Scouter
# client). Idempotent: every step is skipped when its result is already present,
# so a second run takes about a second.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

log() { printf '[bootstrap] %s\n' "$*"; }

# --- Debian packages -----------------------------------------------------
APT_PACKAGES=(build-essential cmake pkg-config libgrpc-dev libprotobuf-c-dev
  protobuf-c-compiler libssl-dev libcmocka-dev libjansson-dev clang libclang-rt-14-dev libmicrohttpd-dev
  libcurl4-openssl-dev libexpat1-dev)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  log "installing Debian packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi

# --- DuckDB 1.4.4 (library from the node bindings package, header from duckdb) ---
DEPS="$ROOT/.deps"
DUCKDB_DIR="$DEPS/duckdb"
LIB_TGZ_SHA=732fac4dc6b8f198870b9c4bb6ddf13544466daca00ad28ba2f1d80de5d7aa4b
LIB_SO_SHA=1ef33048e12235115ac0d277a0aaccbb560e33248144f488b5ac005cd9ba81b5
HDR_TGZ_SHA=5bb967dcbcd517670ba5f169f238fb9d6787e53752c60ebe24386169d76941ed
HDR_SHA=cbe6a827284375c5a646b8f27dbd3a00808ce8738b5bbb49c190cb1e08540281

verify() { echo "$2  $1" | sha256sum -c --status; }

if ! { [ -f "$DUCKDB_DIR/libduckdb.so" ] && [ -f "$DUCKDB_DIR/duckdb.h" ] &&
       verify "$DUCKDB_DIR/libduckdb.so" "$LIB_SO_SHA" && verify "$DUCKDB_DIR/duckdb.h" "$HDR_SHA"; }; then
  log "fetching DuckDB 1.4.4"
  mkdir -p "$DUCKDB_DIR" "$DEPS/dl"
  cd "$DEPS/dl"
  [ -f duckdb-node-bindings-linux-x64-1.4.4-r.4.tgz ] && verify duckdb-node-bindings-linux-x64-1.4.4-r.4.tgz "$LIB_TGZ_SHA" ||
    npm pack --silent @duckdb/node-bindings-linux-x64@1.4.4-r.4 >/dev/null
  [ -f duckdb-1.4.4.tgz ] && verify duckdb-1.4.4.tgz "$HDR_TGZ_SHA" || npm pack --silent duckdb@1.4.4 >/dev/null
  verify duckdb-node-bindings-linux-x64-1.4.4-r.4.tgz "$LIB_TGZ_SHA" || { log "checksum mismatch: node bindings tarball"; exit 1; }
  verify duckdb-1.4.4.tgz "$HDR_TGZ_SHA" || { log "checksum mismatch: duckdb tarball"; exit 1; }
  tar -xzf duckdb-node-bindings-linux-x64-1.4.4-r.4.tgz -O package/libduckdb.so > "$DUCKDB_DIR/libduckdb.so"
  tar -xzf duckdb-1.4.4.tgz -O package/src/duckdb/src/include/duckdb.h > "$DUCKDB_DIR/duckdb.h"
  verify "$DUCKDB_DIR/libduckdb.so" "$LIB_SO_SHA" || { log "checksum mismatch: libduckdb.so"; exit 1; }
  verify "$DUCKDB_DIR/duckdb.h" "$HDR_SHA" || { log "checksum mismatch: duckdb.h"; exit 1; }
  cd "$ROOT"
fi

# --- Python virtualenv ----------------------------------------------------
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  log "creating .venv"
  "$PY" -m venv .venv
fi
REQ=python/requirements-dev.txt
STAMP=.venv/.requirements.sha256
want=$(sha256sum "$REQ" | cut -d' ' -f1)
if [ "$(cat "$STAMP" 2>/dev/null)" != "$want" ]; then
  log "installing Python requirements"
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -r "$REQ"
  echo "$want" > "$STAMP"
fi

# --- DuckDB httpfs extension (s3:// data dirs; also loaded by the S3 tests) ------
# The official signed build for DuckDB v1.4.4 linux_amd64, shipped in the PyPI wheel
# duckdb-ext-httpfs; the server loads it from .deps/duckdb-ext/.
HTTPFS_VERSION=1.4.4.20260205
HTTPFS_WHL=duckdb_ext_httpfs-$HTTPFS_VERSION-py3-none-manylinux_2_28_x86_64.whl
HTTPFS_WHL_SHA=c5ea47d6804910747e7816198168ce4ac100ca5f748d6a0e55ead994aa047329
HTTPFS_EXT_SHA=ff726450b5374caaf9ffd9ef8fd9ec40df19b514117f079de3611326432a6646
HTTPFS_MEMBER=duckdb_ext/extensions/v1.4.4/linux_amd64/httpfs.duckdb_extension
HTTPFS_EXT="$DEPS/duckdb-ext/httpfs.duckdb_extension"
if ! { [ -f "$HTTPFS_EXT" ] && verify "$HTTPFS_EXT" "$HTTPFS_EXT_SHA"; }; then
  log "fetching the DuckDB httpfs extension $HTTPFS_VERSION"
  mkdir -p "$DEPS/dl" "$DEPS/duckdb-ext"
  { [ -f "$DEPS/dl/$HTTPFS_WHL" ] && verify "$DEPS/dl/$HTTPFS_WHL" "$HTTPFS_WHL_SHA"; } ||
    .venv/bin/pip download -q --no-deps --only-binary=:all: -d "$DEPS/dl" "duckdb-ext-httpfs==$HTTPFS_VERSION"
  verify "$DEPS/dl/$HTTPFS_WHL" "$HTTPFS_WHL_SHA" || { log "checksum mismatch: $HTTPFS_WHL"; exit 1; }
  .venv/bin/python - "$DEPS/dl/$HTTPFS_WHL" "$HTTPFS_MEMBER" "$HTTPFS_EXT.tmp" <<'EOF'
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as whl, whl.open(sys.argv[2]) as src, open(sys.argv[3], "wb") as dst:
    shutil.copyfileobj(src, dst)
EOF
  verify "$HTTPFS_EXT.tmp" "$HTTPFS_EXT_SHA" || { rm -f "$HTTPFS_EXT.tmp"; log "checksum mismatch: httpfs.duckdb_extension"; exit 1; }
  mv "$HTTPFS_EXT.tmp" "$HTTPFS_EXT"
fi

# --- .venv-scouter: the published scouter-ml client (compatibility suite) ------
# A separate virtualenv: its top-level `scouter` package would shadow our
# compatibility namespace in .venv.
SREQ=python/requirements-scouter.txt
SSTAMP=.venv-scouter/.requirements.sha256
swant=$(sha256sum "$SREQ" | cut -d' ' -f1)
if [ "$(cat "$SSTAMP" 2>/dev/null)" != "$swant" ]; then
  [ -x .venv-scouter/bin/python ] || { log "creating .venv-scouter"; "$PY" -m venv .venv-scouter; }
  log "installing the published scouter-ml client into .venv-scouter"
  .venv-scouter/bin/pip install -q -r "$SREQ"
  echo "$swant" > "$SSTAMP"
fi
log "ok"
