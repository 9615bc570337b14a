#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# The tiercache command end to end (docs/operations.md, "The tiercache
# command"), against a private redis-server on a free port and a unix
# socket (tests/billgen_lib.sh starts it): set/get round trips (text,
# --raw, --json), del, del-prefix, flush, keys, health's exit codes 0
# and 2, stats, warm with a malformed line, watch hearing a set made by
# another process then its totals on SIGINT, bench, usage errors.
# Prints `ok - ...` / `not ok - ...: why`; exit 1 on any failure.
# shellcheck disable=SC2016 # jq programs in single quotes
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
set -u
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=billgen_lib.sh
. "$here/billgen_lib.sh"

bg_need_tools jq redis-server redis-cli timeout
bg_init
TC="$(cd "$top_builddir" && pwd)/tools/tiercache"
[ -x "$TC" ] || { echo "not ok - no $TC (is the command built?)"; exit 1; }
bg_redis_start
export REDIS_URL="redis://127.0.0.1:$REDIS_PORT" TC_NAMESPACE="cli$$"
unset REDIS_HOST REDIS_SOCKET REDIS_SENTINELS REDIS_CLUSTER
ns=$TC_NAMESPACE
tc() { timeout 20 "$TC" "$@"; }
# jqe PROGRAM FILE: FILE holds JSON for which PROGRAM is true (jq -e
# alone passes an empty file).
jqe() { [ -s "$2" ] && jq -e "$1" "$2" >/dev/null; }
# rc NAME WANT COMMAND...: the exit code of the command is WANT.
rc() {
  local name=$1 want=$2 got
  shift 2
  "$@" >"$BG_TMP/out" 2>"$BG_TMP/err"
  got=$?
  is "$name: exit code" "$got" "$want"
}
# one_line NAME: the last command wrote exactly one line on stderr,
# starting "tiercache: <command>: ".
one_line() {
  is "$1: one line on stderr" "$(wc -l <"$BG_TMP/err")" 1
  check "$1: says who and what" grep -q "^tiercache: $2: ." "$BG_TMP/err"
}

# ---- set, get (text, --raw, --json), through TCP and the socket ----
rc "set" 0 tc set greeting hello --ttl 60000
is "the value is in Redis under <ns>:{key}" \
  "$(bg_rcli EXISTS "$ns:{greeting}")" 1
rc "get" 0 tc get greeting
check "get: the payload" grep -q '^payload   hello$' "$BG_TMP/out"
check "get: flags" grep -q '^flags     0 (none)$' "$BG_TMP/out"
check "get: expiry within the TTL" \
  grep -Eq '^expires   20[0-9-]+T.*\(Redis TTL [1-6][0-9]{4} ms\)$' "$BG_TMP/out"
is "get --raw: the bytes only" "$(tc get greeting --raw | od -An -c | tr -s ' ')" \
  " h e l l o"
is "get --raw through the unix socket" \
  "$(tc get greeting --raw --socket "$BG_TMP/redis.sock")" hello
tc get greeting --json >"$BG_TMP/j"
is "get --json: payload" "$(jq -r .payload "$BG_TMP/j")" hello
is "get --json: delta_ms" "$(jq -r .delta_ms "$BG_TMP/j")" 0
# the write version: 16 hex digits, the envelope's last 8 bytes
ver=$(jq -r .write_version "$BG_TMP/j")
is "get --json: write_version is 16 hex digits" \
  "$(printf '%s' "$ver" | grep -c '^[0-9a-f]\{16\}$')" 1
is "get --json: write_version is what GETRANGE -8 -1 holds" \
  "$(bg_rcli GETRANGE "$ns:{greeting}" -8 -1 | head -c 8 | od -An -tx1 |
     tr -d ' \n')" "$ver"
check "get --json: ttl_ms in (0, 60000]" jqe \
  '.ttl_ms > 0 and .ttl_ms <= 60000 and .expires_at_ms > 1700000000000' "$BG_TMP/j"
big=$(head -c 5000 /dev/zero | tr '\0' z)
TC_COMPRESSION=zstd tc set big "$big"
tc get big --json >"$BG_TMP/j"
is "a compressed value: codec" "$(jq -r .codec "$BG_TMP/j")" zstd
is "a compressed value: decompressed" "$(tc get big --raw)" "$big"
rc "get of a missing key" 1 tc get nosuch
one_line "get of a missing key" get
bg_rcli SET "$ns:{foreign}" "not an envelope" >/dev/null
rc "get of foreign bytes" 65 tc get foreign
one_line "get of foreign bytes" get

# ---- keys, del, del-prefix, flush ----
tc set user:1 a && tc set user:2 b && tc set other c
is "keys" "$(tc keys | sort | tr '\n' ' ')" "big foreign greeting other user:1 user:2 "
is "keys PATTERN" "$(tc keys 'user:*' | sort | tr '\n' ' ')" "user:1 user:2 "
is "keys --json" "$(tc keys 'user:*' --json | jq -c 'sort')" '["user:1","user:2"]'
rc "del" 0 tc del greeting
is "del: gone from Redis" "$(bg_rcli EXISTS "$ns:{greeting}")" 0
rc "get after del" 1 tc get greeting
rc "del-prefix" 0 tc del-prefix user:
is "del-prefix: those keys gone, the rest kept" \
  "$(tc keys | sort | tr '\n' ' ')" "big foreign other "
bg_rcli SET unrelated keep >/dev/null
rc "flush without --yes, stdin not a terminal" 64 tc flush </dev/null
is "flush refused: nothing deleted" "$(tc keys | wc -l)" 3
rc "flush --yes" 0 tc flush --yes
is "flush: the namespace is empty" "$(tc keys | wc -l)" 0
is "flush: other keys kept" "$(bg_rcli GET unrelated)" keep

# ---- on a terminal (script(1) gives one): flush asks, stats shows progress ----
if command -v script >/dev/null 2>&1; then
  tc set q 1
  printf 'wrong\n' | timeout 20 script -qec "'$TC' flush" /dev/null >"$BG_TMP/out" 2>&1
  is "flush on a terminal, wrong answer: exit code" $? 64
  check "flush on a terminal: asks" grep -q "Type the namespace to confirm" "$BG_TMP/out"
  is "flush on a terminal, wrong answer: nothing deleted" "$(tc keys)" q
  printf '%s\n' "$ns" | timeout 20 script -qec "'$TC' flush" /dev/null >/dev/null 2>&1
  is "flush on a terminal, namespace typed back: exit code" $? 0
  is "flush on a terminal, confirmed: deleted" "$(tc keys | wc -l)" 0
  tc set q 1
  timeout 20 script -qec "'$TC' stats" /dev/null >"$BG_TMP/out" 2>&1
  check "stats on a terminal: a progress line" grep -q "scanning: 1 keys" "$BG_TMP/out"
  tc flush --yes
fi

# ---- usage errors: exit 64, one line, nothing changed ----
rc "no command" 64 tc
rc "unknown command" 64 tc frobnicate
one_line "unknown command" frobnicate
rc "unknown option" 64 tc get x --bogus
one_line "unknown option" get
rc "missing argument" 64 tc set onlykey
rc "empty key" 64 tc set "" value
one_line "empty key" set
is "empty key: nothing stored" "$(bg_rcli DBSIZE)" 1
rc "bad --ttl" 64 tc set k v --ttl soon
rc "bad --url" 64 tc get k --url 'foo://x'
one_line "bad --url" get
TC_DEFAULT_TTL_MS=abc rc "malformed environment variable" 64 tc set k v
check "malformed environment: names the variable" grep -q TC_DEFAULT_TTL_MS "$BG_TMP/err"
is "malformed environment: nothing stored" "$(bg_rcli EXISTS "$ns:{k}")" 0
rc "get --help" 0 tc get --help
check "get --help: its usage" grep -q '^usage: tiercache get KEY' "$BG_TMP/out"
check "get --help: the exit codes" grep -q '64 usage' "$BG_TMP/out"

# ---- warm ----
printf '{"key": "w1", "value": "one", "ttl_ms": 50000}\n\n{"key": "w2", "value": "two"}\n' >"$BG_TMP/good.jsonl"
rc "warm" 0 tc warm "$BG_TMP/good.jsonl"
is "warm: stored" "$(tc get w1 --raw) $(tc get w2 --raw)" "one two"
w1_ttl=$(bg_rcli PTTL "$ns:{w1}")
check "warm: ttl_ms honoured ($w1_ttl)" test "$w1_ttl" -gt 0 -a "$w1_ttl" -le 50000
printf '{"key": "w3", "value": "x"}\n{"key": "w4", "value": 5}\n' >"$BG_TMP/bad.jsonl"
rc "warm: a malformed line" 65 tc warm "$BG_TMP/bad.jsonl"
one_line "warm: a malformed line" warm
check "warm: the line number" grep -q 'bad.jsonl:2: ' "$BG_TMP/err"
is "warm: nothing stored from a bad file" "$(bg_rcli EXISTS "$ns:{w3}")" 0
printf '{"key": "w5", "value": "x"\n' >"$BG_TMP/bad2.jsonl"
rc "warm: broken JSON" 65 tc warm "$BG_TMP/bad2.jsonl"
rc "warm: a directory is a read error, not an empty file" 65 tc warm "$BG_TMP"

# ---- stats ----
rc "stats" 0 tc stats
check "stats: keys" grep -q '^keys        2 ' "$BG_TMP/out"
tc stats --json >"$BG_TMP/j"
is "stats --json: keys, values" "$(jq -c '[.keys, .values, .compressed]' "$BG_TMP/j")" "[2,2,0]"
check "stats --json: memory and TTLs" jqe \
  '.memory_bytes > 0 and .ttls["<1m"] == 1 and .ttls["<10m"] == 1' "$BG_TMP/j"
check "stats: no progress line when stderr is not a terminal" \
  test ! -s "$BG_TMP/err"

# ---- watch: an invalidation made by another process, then SIGINT ----
"$TC" watch >"$BG_TMP/watch.out" 2>"$BG_TMP/watch.err" &
wpid=$!
for _ in $(seq 100); do grep -q '^# watching' "$BG_TMP/watch.err" && break; sleep 0.05; done
check "watch: subscribed" grep -q "^# watching $ns:{\\* (client tracking)" "$BG_TMP/watch.err"
tc set watched 1
tc del-prefix pre
bg_rcli PUBLISH "$ns:__tc:inval" "not a message" >/dev/null
for _ in $(seq 100); do grep -q 'channel prefix pre' "$BG_TMP/watch.out" && break; sleep 0.05; done
sleep 1.1 # one rate line
kill -INT "$wpid"
wait "$wpid"
is "watch: SIGINT exits 0" $? 0
check "watch: the set, by client tracking, timestamped" \
  grep -Eq '^20[0-9-]+T[0-9:.]+Z tracking key watched$' "$BG_TMP/watch.out"
check "watch: the prefix message, decoded" \
  grep -Eq 'Z channel prefix pre \(lag [0-9]+ ms\)$' "$BG_TMP/watch.out"
check "watch: a rate line" grep -Eq '^# [0-9]+ s: [0-9]+/s' "$BG_TMP/watch.err"
check "watch: totals" \
  grep -Eq '^total [3-9][0-9]* invalidations: tracking [1-9][0-9]*, channel 1, undecodable 1$' "$BG_TMP/watch.out"
check "watch: an undecodable message is said, not dropped" \
  grep -q 'channel undecodable message (13 bytes)$' "$BG_TMP/watch.out"

# ---- bench ----
rc "bench" 0 tc bench --count 200
check "bench: get p50/p99" grep -Eq '^get +[0-9]+ +[0-9]+ ' "$BG_TMP/out"
check "bench: ping p50/p99" grep -Eq '^ping +[0-9]+ +[0-9]+ ' "$BG_TMP/out"
tc bench --count 100 --json >"$BG_TMP/j"
check "bench --json" jqe '.get_p50_us > 0 and .ping_p99_us >= .ping_p50_us' "$BG_TMP/j"
is "bench leaves no key behind" "$(tc keys 'tiercache:*' | wc -l)" 0

# ---- health: 0, then 2 with the server gone ----
rc "health" 0 tc health
check "health: version" grep -Eq '^server     redis [0-9]+\.' "$BG_TMP/out"
check "health: tracking" grep -q '^coherence  client tracking$' "$BG_TMP/out"
is "health --json" "$(tc health --json | jq -r '.status + " " + .breaker')" "healthy closed"
# A user that may not use CLIENT: no tracking, the channel only.
bg_rcli ACL SETUSER notrack on '>pw' '~*' '&*' +@all -client >/dev/null
rc "health without client tracking: degraded" 1 tc health --user notrack --pass pw
check "health, degraded: says why" \
  grep -q '^status     degraded: invalidations do not use client tracking' "$BG_TMP/out"
rc "health with the channel chosen (TC_COHERENCE=channel)" 0 \
  env TC_COHERENCE=channel "$TC" health
# ---- what names the server wins over the environment's cluster ----
rc "--url over REDIS_CLUSTER" 0 \
  env -u REDIS_URL REDIS_CLUSTER=127.0.0.1:1 "$TC" get w1 --url "$REDIS_URL"
rc "-h/-p over REDIS_SENTINELS" 0 \
  env -u REDIS_URL REDIS_SENTINELS=127.0.0.1:1 "$TC" get w1 -h 127.0.0.1 -p "$REDIS_PORT"
# ---- error replies and refusals ----
bg_rcli HSET "$ns:{hash}" f v >/dev/null
rc "get of a hash: an error reply (WRONGTYPE), not unreachable" 3 tc get hash
one_line "get of a hash" get
rc "a wrong password: refused" 2 tc get w1 -a wrong-pw
# ---- a key that is not UTF-8, in JSON ----
tc set $'k\xff' v >/dev/null
tc get $'k\xff' --json >"$BG_TMP/j"
is "get --json: a non-UTF-8 key as key_hex" "$(jq -r .key_hex "$BG_TMP/j")" 6bff

bg_redis_kill
rc "health, Redis killed" 2 tc health
check "health, Redis killed: says so" grep -q '^status     unreachable' "$BG_TMP/out"
rc "get, Redis killed" 2 tc get w1
one_line "get, Redis killed" get
rc "set, Redis killed" 2 tc set w1 x
bg_summary
