#!/usr/bin/env bash
# Builds the libFuzzer target over WaitressHTTP (with AddressSanitizer) and
# runs it. Usage: fuzz/run.sh [SECONDS] [extra libFuzzer flags...]
# Inputs that ever failed live in fuzz/regressions/ and are replayed first.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
seconds="${1:-60}"
shift || true
out="$root/.build-fuzz"
mkdir -p "$out" "$root/fuzz/corpus-work"
swiftc -O -sanitize=fuzzer,address -parse-as-library -module-name WaitressHTTP \
    "$root"/Sources/WaitressHTTP/*.swift "$here/RequestFuzzer.swift" -o "$out/request-fuzzer"
# Replay every saved regression input first (each must pass).
if compgen -G "$here/regressions/*" > /dev/null; then
    "$out/request-fuzzer" -runs=0 "$here"/regressions/*
fi
exec "$out/request-fuzzer" -max_total_time="$seconds" -max_len=8192 -timeout=10 -rss_limit_mb=2048 \
    -dict="$here/http.dict" -artifact_prefix="$out/" "$@" "$root/fuzz/corpus-work" "$here/seeds"
