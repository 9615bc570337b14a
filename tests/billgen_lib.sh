# SPDX-License-Identifier: BSD-3-Clause
# shellcheck shell=bash disable=SC2034
# Shared helpers for the billgen end-to-end tests (billgen_e2e.sh,
# billgen_browser.sh); sourced, bash only. A private redis-server on a
# free port, `billgen serve` on port 0, requests through curl with a
# bound on every call, and TAP-like assertions:
#   ok - name            a pass
#   not ok - name: why   a failure (the run ends with exit 1)
# Nothing here waits without a bound, and the EXIT trap stops billgen
# (SIGTERM first, checked) and Redis and removes the temporary directory.

BG_CURL_TIMEOUT=${BG_CURL_TIMEOUT:-20} # seconds, any single curl call
BG_STOP_TIMEOUT=${BG_STOP_TIMEOUT:-20} # seconds for billgen to exit on SIGTERM
BG_START_TIMEOUT=${BG_START_TIMEOUT:-30}
BG_WORKERS=${BG_WORKERS:-3}
# The workers share one listening socket and the kernel gives each new
# connection to whichever accepts first: the split can be very uneven on a
# loaded machine or a sanitizer build (one worker seen 2 times in 90 was
# observed under TSan). Checks that must see every worker send up to this
# many requests, stopping as soon as they have.
BG_COVER_MAX=${BG_COVER_MAX:-600}
BG_PASS=0
BG_FAIL=0
BG_PID=
BG_TMP=
REDIS_PID=
REDIS_PORT=
BG_SEP=$'\x1f'

bg_skip() {
  echo "SKIP: $*"
  exit 77
}

# Stops the run at once (a broken fixture): counts as a failure.
bg_die() {
  echo "not ok - fixture: $*"
  BG_FAIL=$((BG_FAIL + 1))
  bg_dump_logs
  exit 1
}

bg_dump_logs() {
  local f
  for f in "$BG_TMP/serve.err" "$BG_TMP/serve.out" "$BG_TMP/redis.log"; do
    [ -s "$f" ] || continue
    echo "---- last lines of ${f##*/}"
    tail -n 30 "$f" | sed 's/^/# /'
  done
}

# ---- assertions ---------------------------------------------------------

ok() {
  BG_PASS=$((BG_PASS + 1))
  echo "ok - $1"
}

nok() {
  BG_FAIL=$((BG_FAIL + 1))
  echo "not ok - $1: $2"
}

# is NAME GOT WANT
is() {
  if [ "$2" = "$3" ]; then ok "$1"; else nok "$1" "got '$2', want '$3'"; fi
}

# check NAME COMMAND...: ok when the command succeeds.
check() {
  local name=$1
  shift
  if "$@"; then ok "$name"; else nok "$name" "false: $*"; fi
}

# The last request, for failure messages.
bg_last() {
  local b=${R_BODY:0:300}
  b=${b//$'\n'/ }
  printf '%s %s (sent %s) -> %s %s' "$R_METHOD" "$R_PATH" \
    "${R_SENT:0:120}" "$R_STATUS" "$b"
}

# expect_status NAME CODE...: the last response's status is one of CODE.
expect_status() {
  local name=$1 c
  shift
  for c in "$@"; do
    if [ "$R_STATUS" = "$c" ]; then
      ok "$name"
      return 0
    fi
  done
  nok "$name" "want $*; $(bg_last)"
  return 1
}

# expect_jq NAME FILTER [jq args...]: jq -e FILTER holds on the last body.
expect_jq() {
  local name=$1 filter=$2
  shift 2
  if printf '%s' "$R_BODY" | jq -e "$@" "$filter" >/dev/null 2>&1; then
    ok "$name"
  else
    nok "$name" "jq '$filter' false; $(bg_last)"
  fi
}

# expect_problem NAME CODE [ERRORS_KEY]: status CODE,
# application/problem+json, a body {type, title, status: CODE, ...}; with
# ERRORS_KEY, a second assertion that errors[ERRORS_KEY] is there.
expect_problem() {
  local name=$1 code=$2 key=${3-} why="" res
  [ "$R_STATUS" = "$code" ] || why="status $R_STATUS, want $code"
  case $R_CT in
  application/problem+json*) ;;
  *) why="${why:+$why; }content type '$R_CT', want application/problem+json" ;;
  esac
  # One jq for both checks: jq takes ~40 ms to start.
  res=$(printf '%s' "$R_BODY" | jq -r --argjson c "$code" --arg k "$key" \
    '[type == "object" and .status == $c and (.title | type) == "string" and has("type"),
      $k == "" or (type == "object" and (.errors | type) == "object" and (.errors | has($k)))]
     | map(tostring) | join(" ")' 2>/dev/null)
  case $res in true*) ;; *) why="${why:+$why; }body is not a problem object with status $code" ;; esac
  if [ -z "$why" ]; then ok "$name"; else nok "$name" "$why; $(bg_last)"; fi
  if [ -n "$key" ]; then
    case $res in
    *" true") ok "$name: errors names $key" ;;
    *) nok "$name: errors names $key" "$(bg_last)" ;;
    esac
  fi
}

# jq on the last body; prints nothing when the body is not JSON.
jb() {
  printf '%s' "$R_BODY" | jq -r "$@" 2>/dev/null
}

bg_summary() {
  echo "$BG_PASS passed, $BG_FAIL failed"
  [ "$BG_FAIL" -eq 0 ]
}

# ---- processes ----------------------------------------------------------

# bg_alive PID: the process exists and is not a zombie (Linux /proc;
# builtins only: no ps, no fork).
bg_alive() {
  local line rest
  [ -n "$1" ] || return 1
  read -r line 2>/dev/null <"/proc/$1/stat" || return 1
  rest=${line##*) }
  case ${rest%% *} in Z | X | x) return 1 ;; esac
  return 0
}

# bg_children PID: the live children of PID, one a line.
bg_children() {
  local d line rest state ppid
  for d in /proc/[0-9]*; do
    read -r line 2>/dev/null <"$d/stat" || continue
    rest=${line##*) }
    state=${rest%% *}
    rest=${rest#* }
    ppid=${rest%% *}
    [ "$ppid" = "$1" ] && [ "$state" != Z ] && echo "${d#/proc/}"
  done
}

# bg_wait_gone SECONDS PID...: waits until none is alive.
bg_wait_gone() {
  local limit=$(($1 * 20)) i=0 p left
  shift
  while :; do
    left=
    for p in "$@"; do bg_alive "$p" && left="$left $p"; done
    [ -z "$left" ] && return 0
    [ $i -ge $limit ] && return 1
    i=$((i + 1))
    sleep 0.05
  done
}

# ---- setup and teardown -------------------------------------------------

bg_init() {
  [ -n "${BASH_VERSION:-}" ] || bg_skip "these tests need bash"
  local here
  here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
  : "${top_srcdir:=$here/..}"
  : "${top_builddir:=$here/..}"
  BG_BIN="$(cd "$top_builddir" && pwd)/examples/billgen/billgen"
  [ -r /proc/self/stat ] || bg_skip "no /proc (these tests watch processes through it)"
  BG_TMP=$(mktemp -d "${TMPDIR:-/tmp}/billgen-test.XXXXXX") ||
    bg_die "mktemp -d failed"
  BG_DB="$BG_TMP/bill.db"
  BG_NS="bg$$"
  BG_LOG="$BG_TMP/responses.log"
  : >"$BG_LOG"
  trap bg_cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  trap 'exit 129' HUP
}

# bg_need_tools TOOL...: SKIP when one is missing.
bg_need_tools() {
  local t
  for t in "$@"; do
    command -v "$t" >/dev/null 2>&1 || bg_skip "$t is not installed"
  done
}

bg_need_binary() {
  [ -x "$BG_BIN" ] || {
    echo "not ok - no $BG_BIN (is billgen built? configure --disable-billgen or a missing dependency should leave these tests out of TESTS)"
    exit 1
  }
}

bg_cleanup() {
  local rc=$?
  trap - EXIT INT TERM HUP
  if [ -n "$BG_PID" ]; then
    if ! bg_serve_stop; then
      echo "not ok - billgen stops on SIGTERM (cleanup): $BG_STOP_MSG"
      [ "$rc" -eq 0 ] && rc=1
    fi
  fi
  bg_redis_kill
  if [ "$rc" -ne 0 ] && [ "$rc" -ne 77 ]; then bg_dump_logs; fi
  if [ -n "${BG_KEEP:-}" ]; then
    echo "# BG_KEEP: logs and database left in $BG_TMP"
  elif [ -n "$BG_TMP" ]; then
    rm -rf "$BG_TMP"
  fi
  exit "$rc"
}

# bg_check_stderr: billgen's stderr holds no sanitizer report (a worker's
# report would not show in any status: the parent exits 0 regardless).
bg_check_stderr() {
  local hits
  hits=$(grep -E -m 3 'ERROR: (Address|Leak|Memory|Thread)Sanitizer|WARNING: ThreadSanitizer|runtime error:|SUMMARY: [A-Za-z]+Sanitizer' \
    "$BG_TMP/serve.err" 2>/dev/null | tr '\n' ' ')
  if [ -z "$hits" ]; then ok "no sanitizer report on billgen's stderr"; else
    nok "no sanitizer report on billgen's stderr" "$hits"
  fi
}

# ---- redis --------------------------------------------------------------

# bg_redis_ready PORT PID: waits (10 s at most) until PORT answers and is
# served by PID (not some other server that holds the port).
bg_redis_ready() {
  local port=$1 pid=$2 i=0 info
  while [ $i -lt 200 ]; do
    bg_alive "$pid" || return 1
    info=$(timeout 10 redis-cli -p "$port" INFO server 2>/dev/null | tr -d '\r')
    case $info in *"process_id:$pid"*) return 0 ;; esac
    i=$((i + 1))
    sleep 0.05
  done
  return 1
}

bg_redis_spawn() {
  redis-server --port "$1" --bind 127.0.0.1 \
    --unixsocket "$BG_TMP/redis.sock" --unixsocketperm 700 \
    --save "" --appendonly no --daemonize no --dir "$BG_TMP" \
    --logfile "$BG_TMP/redis.log" >/dev/null 2>&1 &
  REDIS_PID=$!
}

# bg_redis_start: a private redis-server on a free TCP port (never 6379).
bg_redis_start() {
  local tries=0 port
  while [ $tries -lt 20 ]; do
    tries=$((tries + 1))
    port=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
    [ "$port" -eq 6379 ] && continue
    if command -v ss >/dev/null 2>&1; then
      ss -Hltn "sport = :$port" 2>/dev/null | grep -q . && continue
    fi
    bg_redis_spawn "$port"
    if bg_redis_ready "$port" "$REDIS_PID"; then
      REDIS_PORT=$port
      return 0
    fi
    kill -KILL "$REDIS_PID" 2>/dev/null
    wait "$REDIS_PID" 2>/dev/null
    REDIS_PID=
  done
  bg_die "could not start redis-server on a free port"
}

# bg_redis_restart: again on the same port (retried for 10 s).
bg_redis_restart() {
  local i=0
  bg_redis_kill
  while [ $i -lt 20 ]; do
    bg_redis_spawn "$REDIS_PORT"
    bg_redis_ready "$REDIS_PORT" "$REDIS_PID" && return 0
    kill -KILL "$REDIS_PID" 2>/dev/null
    wait "$REDIS_PID" 2>/dev/null
    REDIS_PID=
    i=$((i + 1))
    sleep 0.5
  done
  return 1
}

bg_redis_kill() {
  [ -n "$REDIS_PID" ] || return 0
  kill -CONT "$REDIS_PID" 2>/dev/null
  kill -KILL "$REDIS_PID" 2>/dev/null
  wait "$REDIS_PID" 2>/dev/null
  REDIS_PID=
}

bg_redis_stop() { kill -STOP "$REDIS_PID"; }
bg_redis_cont() { kill -CONT "$REDIS_PID"; }

bg_rcli() { timeout 60 redis-cli -p "$REDIS_PORT" "$@"; }

# ---- billgen ------------------------------------------------------------

# bg_seed USERS PRODUCTS INVOICES
bg_seed() {
  "$BG_BIN" seed --db "$BG_DB" --users "$1" --products "$2" --invoices "$3" \
    >"$BG_TMP/seed.out" 2>&1 ||
    bg_die "billgen seed --users $1 --products $2 --invoices $3 failed: $(tail -n 5 "$BG_TMP/seed.out")"
}

# bg_serve_start [extra serve args]: starts billgen serve on port 0 with
# the private Redis (REDIS_URL is BG_REDIS_URL when set), sets BG_PID,
# BG_URL, and waits for /health.
bg_serve_start() {
  local i line hp limit=$((BG_START_TIMEOUT * 20))
  # The previous server's output, kept for BG_KEEP.
  [ -e "$BG_TMP/serve.err" ] && cat "$BG_TMP/serve.out" "$BG_TMP/serve.err" >>"$BG_TMP/serve.earlier" 2>/dev/null
  : >"$BG_TMP/serve.out"
  REDIS_URL="${BG_REDIS_URL:-redis://127.0.0.1:$REDIS_PORT}" TC_NAMESPACE="$BG_NS" \
    "$BG_BIN" serve --port 0 --workers "$BG_WORKERS" --db "$BG_DB" "$@" \
    >"$BG_TMP/serve.out" 2>"$BG_TMP/serve.err" &
  BG_PID=$!
  i=0
  while :; do
    line=$(grep -m1 -E '^billgen: listening on http://' "$BG_TMP/serve.out")
    [ -n "$line" ] && break
    bg_alive "$BG_PID" || {
      wait "$BG_PID"
      local rc=$?
      BG_PID=
      bg_die "billgen serve exited ($rc) before printing its listening line"
    }
    [ $i -ge $limit ] && bg_die "no 'billgen: listening on http://ADDR:PORT with N workers' line on stdout within ${BG_START_TIMEOUT}s (is stdout flushed?)"
    i=$((i + 1))
    sleep 0.05
  done
  hp=$(printf '%s\n' "$line" |
    sed -nE 's|^billgen: listening on http://([^ ]+):([0-9]+) with ([0-9]+) workers?$|\1 \2 \3|p')
  [ -n "$hp" ] || bg_die "cannot parse the listening line: '$line'"
  local nw
  read -r BG_ADDR BG_PORT nw <<<"$hp"
  [ "$nw" = "$BG_WORKERS" ] ||
    nok "listening line names the worker count" "'$line', want $BG_WORKERS workers"
  [ "$BG_PORT" -gt 0 ] || bg_die "port 0 in the listening line: '$line'"
  BG_URL="http://$BG_ADDR:$BG_PORT"
  i=0
  while :; do
    bg_get /health
    [ "$R_STATUS" = 200 ] && break
    bg_alive "$BG_PID" || bg_die "billgen serve died while starting"
    [ $i -ge $limit ] && bg_die "/health did not answer 200 within ${BG_START_TIMEOUT}s: $(bg_last)"
    i=$((i + 1))
    sleep 0.05
  done
}

# bg_serve_stop: SIGTERM to the serve parent; 0 when it exits 0 within
# BG_STOP_TIMEOUT and no worker is left; else 1 and BG_STOP_MSG says why
# (whatever is left is then SIGKILLed).
bg_serve_stop() {
  local workers rc
  BG_STOP_MSG=
  [ -n "$BG_PID" ] || return 0
  workers=$(bg_children "$BG_PID")
  kill -TERM "$BG_PID" 2>/dev/null
  if ! bg_wait_gone "$BG_STOP_TIMEOUT" "$BG_PID"; then
    BG_STOP_MSG="the serve parent $BG_PID still runs ${BG_STOP_TIMEOUT}s after SIGTERM"
    kill -KILL "$BG_PID" 2>/dev/null
  fi
  wait "$BG_PID" 2>/dev/null
  rc=$?
  BG_PID=
  [ -z "$BG_STOP_MSG" ] && [ "$rc" -ne 0 ] &&
    BG_STOP_MSG="the serve parent exited with status $rc, want 0"
  # shellcheck disable=SC2086
  if [ -n "$workers" ] && ! bg_wait_gone 5 $workers; then
    local p left=
    for p in $workers; do bg_alive "$p" && left="$left $p"; done
    BG_STOP_MSG="${BG_STOP_MSG:+$BG_STOP_MSG; }workers still alive after the parent exited:$left"
    # shellcheck disable=SC2086
    kill -KILL $left 2>/dev/null
  fi
  [ -z "$BG_STOP_MSG" ]
}

# ---- requests -----------------------------------------------------------

# bg_req METHOD PATH [BODY [curl args...]]: one request. BODY is sent as
# is (with --data-binary, so @FILE reads a file); empty for none. The
# content type is BG_CT (default application/json; set it empty to send
# none). Sets R_STATUS (000 when curl failed), R_BODY, R_CT, R_WORKER,
# R_CACHE, R_ETAG, R_LOCATION, R_ALLOW, R_METHOD, R_PATH, R_SENT.
bg_req() {
  local method=$1 path=$2 body=${3-} ct=${BG_CT-application/json} hdr
  shift 2
  [ $# -gt 0 ] && shift
  local args=(-sS --max-time "$BG_CURL_TIMEOUT" -X "$method" -H 'Expect:'
    -D "$BG_TMP/r.h" -o "$BG_TMP/r.b" -w '%{http_code}')
  if [ -n "$body" ]; then
    args+=(--data-binary "$body")
    if [ -n "$ct" ]; then args+=(-H "Content-Type: $ct"); else args+=(-H 'Content-Type:'); fi
  fi
  : >"$BG_TMP/r.h"
  : >"$BG_TMP/r.b"
  R_METHOD=$method
  R_PATH=$path
  R_SENT=$body
  R_STATUS=$(curl "${args[@]}" "$@" "$BG_URL$path" 2>"$BG_TMP/r.err")
  [ -n "$R_STATUS" ] || R_STATUS=000
  R_BODY=$(<"$BG_TMP/r.b")
  # The headers of the last response (builtins only: this runs ~1000
  # times a suite).
  local line k v
  R_CT='' R_WORKER='' R_CACHE='' R_ETAG='' R_LOCATION='' R_ALLOW=''
  while IFS= read -r line; do
    line=${line%$'\r'}
    case $line in
    HTTP/*)
      R_CT='' R_WORKER='' R_CACHE='' R_ETAG='' R_LOCATION='' R_ALLOW=''
      continue
      ;;
    *:*) ;;
    *) continue ;;
    esac
    k=${line%%:*}
    v=${line#*:}
    v=${v#"${v%%[! $'\t']*}"}
    case ${k,,} in
    content-type) R_CT=$v ;;
    x-worker) R_WORKER=$v ;;
    x-cache) R_CACHE=$v ;;
    etag) R_ETAG=$v ;;
    location) R_LOCATION=$v ;;
    allow) R_ALLOW=$v ;;
    esac
  done <"$BG_TMP/r.h"
  printf '>>> %s %s %s\n%s\n%s\n' "$method" "$path" "${body:0:200}" \
    "$(<"$BG_TMP/r.h")" "$R_BODY" >>"$BG_LOG"
  bg_note_worker "$R_STATUS" "$R_WORKER" "$method $path"
}

bg_get() { bg_req GET "$1" "" "${@:2}"; }
bg_post() { bg_req POST "$1" "$2" "${@:3}"; }
bg_put() { bg_req PUT "$1" "$2" "${@:3}"; }
bg_delete() { bg_req DELETE "$1" "" "${@:2}"; }

# Every answered response must carry X-Worker 1..N; the misses are
# gathered and reported once (bg_report_workers).
BG_NO_WORKER=
BG_NO_WORKER_N=0
bg_note_worker() {
  [ "$1" = 000 ] && return 0
  case $2 in
  '' | *[!0-9]*) ;;
  *) [ "$2" -ge 1 ] && [ "$2" -le "$BG_WORKERS" ] && return 0 ;;
  esac
  BG_NO_WORKER_N=$((BG_NO_WORKER_N + 1))
  [ $BG_NO_WORKER_N -le 5 ] && BG_NO_WORKER="$BG_NO_WORKER; $3 -> $1 X-Worker '$2'"
}
bg_report_workers() {
  if [ $BG_NO_WORKER_N -eq 0 ]; then
    ok "every response carries X-Worker 1..$BG_WORKERS"
  else
    nok "every response carries X-Worker 1..$BG_WORKERS" \
      "$BG_NO_WORKER_N responses without it, e.g.${BG_NO_WORKER#;}"
  fi
}

# bg_burst PATH N: N GETs of PATH on fresh connections (Connection:
# close), 6 at a time. Bodies in $BG_TMP/burst/<i>; one line a response
# in $BG_TMP/burst/sum: FILE|STATUS|X-WORKER|X-CACHE|ETAG.
bg_burst() {
  local path=$1 n=$2 i args=()
  rm -rf "$BG_TMP/burst"
  mkdir "$BG_TMP/burst"
  for ((i = 1; i <= n; i++)); do
    args+=("$BG_URL$path" -o "$BG_TMP/burst/$i")
  done
  curl -sS -Z --parallel-max 6 --max-time "$BG_CURL_TIMEOUT" \
    -H 'Connection: close' \
    -w '%{filename_effective}|%{http_code}|%header{x-worker}|%header{x-cache}|%header{etag}\n' \
    "${args[@]}" >"$BG_TMP/burst/sum" 2>"$BG_TMP/burst/err"
  local f code w c e
  while IFS='|' read -r f code w c e; do
    {
      printf '>>> GET %s (burst) %s %s %s\n' "$path" "$code" "$w" "$c"
      cat "$f" 2>/dev/null
      echo
    } >>"$BG_LOG"
    bg_note_worker "$code" "$w" "GET $path"
  done <"$BG_TMP/burst/sum"
}

# bg_burst_workers: the distinct X-Worker values of the last burst.
bg_burst_workers() {
  cut -d'|' -f3 "$BG_TMP/burst/sum" | sort -u | grep -v '^$' | tr '\n' ' '
}

# bg_warm PATH: GETs until every worker has answered it from its L1
# (X-Cache: hit-l1), at most BG_COVER_MAX, 12 at a time.
bg_warm() {
  local path=$1 r=0 seen="" f code w c e n
  BG_WARM_MSG=
  while [ $((r * 12)) -lt "$BG_COVER_MAX" ]; do
    r=$((r + 1))
    bg_burst "$path" 12
    while IFS='|' read -r f code w c e; do
      if [ "$code" != 200 ]; then
        BG_WARM_MSG="GET $path -> $code"
        return 1
      fi
      [ "$c" = hit-l1 ] && case " $seen " in *" $w "*) ;; *) seen="$seen $w" ;; esac
    done <"$BG_TMP/burst/sum"
    n=$(echo "$seen" | wc -w)
    [ "$n" -ge "$BG_WORKERS" ] && return 0
  done
  BG_WARM_MSG="after $((r * 12)) GETs of $path, hit-l1 only from workers:${seen:- none}"
  return 1
}

# _bg_burst_bad KIND ARG [CACHE_RE]: prints the first problem in the last
# burst (nothing when every response is 200, its X-Cache matches CACHE_RE
# and its body satisfies KIND ARG: json FILTER (jq -e), text STRING
# (contains), notext STRING (does not contain); or, for KIND status,
# when every response has the status ARG).
_bg_burst_bad() {
  local kind=$1 arg=$2 re=${3:-'^(hit-l1|hit-l2|miss|bypass)$'}
  local f code w c e n=0 files=() bad want=200
  declare -A who=()
  [ "$kind" = status ] && want=$arg
  while IFS='|' read -r f code w c e; do
    n=$((n + 1))
    if [ "$code" != "$want" ]; then
      echo "status $code from worker '$w': $(head -c 300 "$f")"
      return
    fi
    [ "$kind" = status ] && continue
    if ! [[ $c =~ $re ]]; then
      echo "X-Cache '$c' from worker $w, want $re"
      return
    fi
    files+=("$f")
    who[$f]="$w ($c)"
  done <"$BG_TMP/burst/sum"
  [ $n -gt 0 ] || {
    echo "no responses ($(head -c 200 "$BG_TMP/burst/err"))"
    return
  }
  # One process for all the bodies.
  case $kind in
  json)
    local verdicts i=0 v
    verdicts=$(jq -r "if ($arg) then \"T\" else \"F\" end" "${files[@]}" 2>/dev/null)
    bad=
    for v in $verdicts; do
      [ "$v" = T ] || { bad=${files[$i]}; break; }
      i=$((i + 1))
    done
    [ -z "$bad" ] && [ $i -lt ${#files[@]} ] && bad=${files[$i]} # not JSON
    [ -n "$bad" ] && echo "worker ${who[$bad]} body fails jq '$arg': $(head -c 300 "$bad")"
    ;;
  text)
    bad=$(grep -LF -- "$arg" "${files[@]}" | head -n1)
    [ -n "$bad" ] && echo "worker ${who[$bad]} body lacks '$arg'"
    ;;
  notext)
    bad=$(grep -lF -- "$arg" "${files[@]}" | head -n1)
    [ -n "$bad" ] && echo "worker ${who[$bad]} body still has '$arg'"
    ;;
  esac
}

# bg_burst_check NAME KIND ARG [CACHE_RE]: the last burst is all good.
bg_burst_check() {
  local bad
  bad=$(_bg_burst_bad "$2" "$3" "${4-}")
  if [ -z "$bad" ]; then ok "$1"; else nok "$1" "$bad"; fi
}

# bg_check_after_write NAME PATH KIND ARG [CACHE_RE]: at least 30 GETs of
# PATH, more until every worker has answered (BG_COVER_MAX at most), each
# one good.
bg_check_after_write() {
  local name=$1 path=$2 kind=$3 arg=$4 total=0 seen="" w n bad
  while [ $total -lt "$BG_COVER_MAX" ]; do
    bg_burst "$path" 30
    total=$((total + 30))
    bad=$(_bg_burst_bad "$kind" "$arg" "${5-}")
    if [ -n "$bad" ]; then
      nok "$name" "GET $path, one of responses $((total - 29))-$total: $bad"
      return 1
    fi
    for w in $(bg_burst_workers); do
      case " $seen " in *" $w "*) ;; *) seen="$seen $w" ;; esac
    done
    n=$(echo "$seen" | wc -w)
    [ "$n" -ge "$BG_WORKERS" ] && break
  done
  if [ "$n" -lt "$BG_WORKERS" ]; then
    nok "$name" "$total GETs of $path all good, but only workers$seen answered"
    return 1
  fi
  ok "$name ($total GETs, workers$seen)"
}
