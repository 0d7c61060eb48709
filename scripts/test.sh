#!/usr/bin/env bash
# Runs the whole test suite from a clean clone: formatting and lint gates, the Rust unit,
# conformance and black-box tests, then the Python compatibility suite (independent Digest
# clients, Atlas schema validation, schemathesis) against the real binary.
# Installs what it needs: a Python venv in .venv with tests/python/requirements.txt, and
# Debian's PostgreSQL when none answers on 127.0.0.1:5432.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*"; }

postgres_answers() {
  python3 -c 'import socket; socket.create_connection(("127.0.0.1", 5432), timeout=1).close()' 2>/dev/null
}

step "postgresql"
if postgres_answers; then
  echo "PostgreSQL answers on 127.0.0.1:5432"
else
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  version=$(ls /etc/postgresql | sort -V | tail -n 1)
  pg_ctlcluster --skip-systemctl-redirect "$version" main start
  for _ in $(seq 30); do postgres_answers && break; sleep 1; done
  # A fresh Debian cluster asks TCP clients for a password: give postgres one, and a database.
  su postgres -c "psql -q -c \"ALTER USER postgres PASSWORD 'postgres'\""
  su postgres -c "createdb test" 2>/dev/null || true
  export REWIND_TEST_DATABASE_URL="postgres://postgres:postgres@127.0.0.1:5432/test"
fi

step "python environment"
if [ ! -x .venv/bin/python ]; then
  if ! python3 -m venv .venv 2>/dev/null; then
    # Debian's python3 ships venv separately.
    rm -rf .venv
    apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
    python3 -m venv .venv
  fi
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -r tests/python/requirements.txt

step "mongosh (the second MongoDB client of the driver tests)"
if [ ! -x tests/mongosh/node_modules/.bin/mongosh ]; then
  if ! command -v npm >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
  fi
  npm install --prefix tests/mongosh --no-audit --no-fund --no-package-lock --silent
fi
tests/mongosh/node_modules/.bin/mongosh --version

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings

step "cargo build"
cargo build --workspace --all-targets

step "rust tests"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast
  # nextest does not run doc tests.
  cargo test --workspace --doc
else
  cargo test --workspace --no-fail-fast
fi

step "python compatibility tests"
REWIND_BIN="$PWD/target/debug/rewind" .venv/bin/python -m pytest tests/python -q -p no:cacheprovider
