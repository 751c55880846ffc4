#!/bin/sh
# Measures one database poll of every query against 100k one-time keys and
# 100k queued to-device messages on a throwaway PostgreSQL (needs the
# postgresql server package; as root it runs as the postgres user).
set -eu
cd "$(dirname "$0")/.."
exec cargo test --release --test db_bench -- --ignored --nocapture "$@"
