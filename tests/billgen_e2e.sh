#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# billgen end to end, against docs/billgen.md: `billgen serve --workers 3`
# with a private redis-server, seeded by `billgen seed`. CRUD of the
# three modules, pagination and filters, invoice totals checked against
# amounts computed here, gapless numbers under concurrent POSTs, the
# bad-input table (each refused request changes nothing), ETags, X-Cache,
# cross-worker coherence after writes, no password hash in any response
# or Redis value, Redis killed / frozen / restarted, a worker killed, and
# SIGTERM. Prints `ok - ...` / `not ok - ...: why` lines, then
# `N passed, N failed`; exit 1 on any failure, 77 when a tool is missing.
# shellcheck disable=SC2016,SC2015,SC2119 # jq programs in single quotes; A && ok || nok
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
set -u
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=billgen_lib.sh
. "$here/billgen_lib.sh"

bg_need_tools curl jq redis-server redis-cli timeout
bg_init
bg_need_binary
BG_WORKERS=3
T0=$SECONDS
section() { echo "# ---- $* ($((SECONDS - T0)) s)"; }

tag=$$ # makes the names this run creates unique
PW1="Pw1-$tag-correct-horse"
PW2="Pw2-$tag-battery-staple"

# id_of: the id of the last response's object.
id_of() { jb '.id'; }
# total_of PATH: the list's total (per_page=1 keeps the answer small).
total_of() {
  local p=$1
  case $p in *\?*) p="$p&per_page=1" ;; *) p="$p?per_page=1" ;; esac
  bg_get "$p"
  jb '.total'
}
# obj PATH: the body at PATH as it comes, or "status NNN".
obj() {
  bg_get "$1"
  if [ "$R_STATUS" = 200 ]; then printf '%s' "$R_BODY"; else echo "status $R_STATUS"; fi
}
# cobj PATH: the same, canonical JSON.
cobj() {
  bg_get "$1"
  if [ "$R_STATUS" = 200 ]; then jb -S -c '.'; else echo "status $R_STATUS"; fi
}
# listsnap PATH: the first page of one, as it comes: any write to the
# module that adds or removes a row changes its total.
listsnap() {
  local p=$1
  case $p in *\?*) p="$p&per_page=1" ;; *) p="$p?per_page=1" ;; esac
  obj "$p"
}
# line_amounts Q PRICE DISCOUNT_BP TAX_BP: "subtotal discount tax total"
# by the contract's formulas (bash arithmetic is 64-bit).
line_amounts() {
  local s=$(($1 * $2)) d t
  d=$(((s * $3 + 5000) / 10000))
  t=$((((s - d) * $4 + 5000) / 10000))
  echo "$s $d $t $((s - d + t))"
}
# expect_amounts NAME SUBTOTAL DISCOUNT TAX TOTAL: on the last body.
expect_amounts() {
  expect_jq "$1" '.subtotal == $s and .discount == $d and .tax == $t and .total == $T' \
    --argjson s "$2" --argjson d "$3" --argjson t "$4" --argjson T "$5"
}
# next_number INV-YYYY-NNNNNN K: the number K after it.
next_number() {
  [[ $1 =~ ^(INV-[0-9]{4}-)([0-9]{6})$ ]] || {
    echo "(not a number: '$1')"
    return
  }
  printf '%s%06d' "${BASH_REMATCH[1]}" $((10#${BASH_REMATCH[2]} + $2))
}
# mkproduct VAR SKU PRICE CURRENCY TAX_BP [NAME]: creates it, its id in VAR.
mkproduct() {
  local var=$1
  shift
  bg_post /api/products "{\"sku\":\"$1\",\"name\":\"${5:-Product $1}\",\"unit_price\":$2,\"currency\":\"$3\",\"tax_rate_bp\":$4}"
  if [ "$R_STATUS" != 201 ]; then
    nok "create product $1" "$(bg_last)"
    printf -v "$var" 0
    return
  fi
  printf -v "$var" '%s' "$(id_of)"
}
# inv CUSTOMER CURRENCY LINES_JSON [EXTRA_FIELDS]: an invoice body.
inv() { echo "{\"customer_id\":$1,\"currency\":\"$2\",\"lines\":$3${4:+,$4}}"; }
# mkinvoice VAR CUSTOMER CURRENCY LINES_JSON: creates it, its id in VAR.
mkinvoice() {
  local var=$1
  shift
  bg_post /api/invoices "$(inv "$@")"
  if [ "$R_STATUS" != 201 ]; then
    nok "create invoice" "$(bg_last)"
    printf -v "$var" 0
    return
  fi
  printf -v "$var" '%s' "$(id_of)"
}

section "setup"
bg_redis_start
bg_seed 30 12 60
bg_serve_start
ok "billgen serve listens on $BG_URL with $BG_WORKERS workers, Redis on port $REDIS_PORT"

# ======================================================================
section "seed"
bg_get '/api/invoices?per_page=100'
expect_jq "the seed made 60 invoices in all four statuses" \
  '.total == 60 and ([.items[].status] | unique) == ["draft", "issued", "paid", "void"]'
expect_jq "the seed's numbers are INV-<year of issue_date>-NNNNNN, 1..n in each year" \
  '[.items[] | {y: .issue_date[0:4], n: .number}] | group_by(.y)
   | all(.[0].y as $y | (map(.n) | sort) == [range(1; length + 1) | "INV-\($y)-\("00000\(.)" | .[-6:])"])'
expect_jq "the seed's invoices' amounts are the sums of their lines" \
  'all(.items[]; .subtotal == ([.lines[].subtotal] | add // 0) and .total == ([.lines[].total] | add // 0)
     and .total == .subtotal - .discount + .tax)'
# The same arguments give the same rows (read with sqlite3 when it is
# there; the password hash has a random salt, so it is left out).
if command -v sqlite3 >/dev/null 2>&1; then
  for d in s1 s2; do
    "$BG_BIN" seed --db "$BG_TMP/$d.db" --users 4 --products 3 --invoices 9 >/dev/null 2>&1
    sqlite3 "$BG_TMP/$d.db" .dump 2>/dev/null | sed -E "s/'[\$]argon2[^']*'/'HASH'/g" >"$BG_TMP/$d.sql"
  done
  if [ -s "$BG_TMP/s1.sql" ] && cmp -s "$BG_TMP/s1.sql" "$BG_TMP/s2.sql"; then
    ok "billgen seed: the same arguments give the same rows"
  else
    nok "billgen seed: the same arguments give the same rows" "$(diff "$BG_TMP/s1.sql" "$BG_TMP/s2.sql" | head -n 4 | tr '\n' ' ')"
  fi
else
  echo "# no sqlite3: seed determinism not checked"
fi

# ======================================================================
section "health, metrics, routing"
bg_get /health
expect_status "GET /health is 200" 200
expect_jq "/health: ok, Redis configured, connected and coherent" \
  '.status == "ok" and .redis.configured == true and .redis.connected == true and .redis.coherent == true and has("db") and (.redis | has("breaker"))'
expect_jq "/health names the worker that answered (= X-Worker)" \
  '.worker == ($w | tonumber)' --arg w "${R_WORKER:-0}"
case $R_CT in application/json*) ok "/health is application/json" ;;
*) nok "/health is application/json" "Content-Type '$R_CT'" ;; esac

# /metrics is the answering worker's: a worker that has served nothing
# yet may have no request series, so every worker first serves a few.
bg_burst "/api/users/1" 12
bg_burst /metrics 6
bg_burst_check "GET /metrics is 200 on every try" text tiercache_ "^.*$"
bg_burst_check "/metrics has billgen_sqlite_queries_total" text billgen_sqlite_queries_total "^.*$"
for m in 'billgen_http_requests_total{' billgen_http_request_duration_seconds_bucket; do
  if grep -qF -- "$m" "$BG_TMP"/burst/[0-9]*; then ok "/metrics has $m"; else
    nok "/metrics has $m" "in none of 6 answers"
  fi
done
# What a Prometheus server would reject (bootstrap installs promtool).
if command -v promtool >/dev/null 2>&1; then
  bad=""
  for f in "$BG_TMP"/burst/[0-9]*; do
    promtool check metrics <"$f" >"$BG_TMP/promtool.out" 2>&1 ||
      bad="answer ${f##*/}: $(head -3 "$BG_TMP/promtool.out" | tr '\n' ' ')"
  done
  if [ -z "$bad" ]; then ok "/metrics passes promtool check metrics"; else
    nok "/metrics passes promtool check metrics" "$bad"
  fi
else
  nok "/metrics passes promtool check metrics" "no promtool (./bootstrap installs prometheus)"
fi

bg_get /api/nothing
expect_problem "unknown route /api/nothing -> 404" 404
bg_get /nothing/at/all
expect_problem "unknown route /nothing/at/all -> 404" 404
bg_req PATCH /api/users/1 '{"name":"x"}'
expect_problem "PATCH /api/users/1 -> 405" 405
if [ -n "$R_ALLOW" ]; then ok "405 carries Allow ($R_ALLOW)"; else nok "405 carries Allow" "no Allow header"; fi
bg_delete /api/users
expect_problem "DELETE /api/users (the collection) -> 405" 405
case $R_ALLOW in *GET*POST* | *POST*GET*) ok "Allow of /api/users names GET and POST ($R_ALLOW)" ;;
*) nok "Allow of /api/users names GET and POST" "Allow '$R_ALLOW'" ;; esac
bg_post /api/invoices/1/bill '{}'
expect_problem "POST /api/invoices/1/bill -> 405" 405

# A seeded user and the seed's size.
bg_get '/api/users?per_page=2'
S1=$(jb '.items[0].id')
S2=$(jb '.items[1].id')
[ -n "$S1" ] && [ -n "$S2" ] && [ "$S1" != null ] ||
  bg_die "no seeded users in /api/users: $(bg_last)"

# ======================================================================
section "users CRUD"
users0=$(total_of /api/users)
bg_post /api/users "{\"name\":\"Ada Lovelace\",\"email\":\"Ada.L.$tag@Example.COM\",\"password\":\"$PW1\",\"role\":\"clerk\"}"
expect_status "POST /api/users -> 201" 201
ADA=$(id_of)
is "POST user: Location" "$R_LOCATION" "/api/users/$ADA"
case $R_CT in application/json*) ok "POST user: application/json" ;;
*) nok "POST user: application/json" "Content-Type '$R_CT'" ;; esac
expect_jq "POST user: the object, no password" \
  '(.id | type) == "number" and .name == "Ada Lovelace" and (.email | ascii_downcase) == $e and .role == "clerk" and (has("password") | not)' \
  --arg e "ada.l.$tag@example.com"
expect_jq "a user object is {id, name, email, role}" '(keys - ["email", "id", "name", "role"]) == []'
created=$(jb -S -c .)
is "GET the new user = the POST answer" "$(cobj "/api/users/$ADA")" "$created"
is "users total +1 after POST" "$(total_of /api/users)" "$((users0 + 1))"

bg_put "/api/users/$ADA" '{"name":"Ada King"}'
expect_status "PUT /api/users/<id> {name} -> 200" 200
expect_jq "PUT user {name}: name changed, email and role kept" \
  '.name == "Ada King" and (.email | ascii_downcase) == $e and .role == "clerk" and .id == $id' \
  --arg e "ada.l.$tag@example.com" --argjson id "$ADA"
put=$(jb -S -c .)
is "GET after PUT = the PUT answer" "$(cobj "/api/users/$ADA")" "$put"

bg_post /api/users "{\"name\":\"Dup\",\"email\":\"ADA.l.$tag@example.com\",\"password\":\"whatever-long\"}"
expect_problem "POST user, same email in other case -> 409" 409
is "users total unchanged by the refused POST" "$(total_of /api/users)" "$((users0 + 1))"
before=$(obj "/api/users/$S2")
bg_put "/api/users/$S2" "{\"email\":\"ada.L.$tag@EXAMPLE.com\"}"
expect_problem "PUT another user's email to Ada's (other case) -> 409" 409
is "that user unchanged" "$(obj "/api/users/$S2")" "$before"
bg_put "/api/users/$ADA" "{\"email\":\"Ada.L.$tag@Example.COM\"}"
expect_status "PUT a user's own email again (other case) is not a duplicate -> 200" 200

# ======================================================================
section "products CRUD"
products0=$(total_of /api/products)
bg_post /api/products "{\"sku\":\"CRUD-$tag\",\"name\":\"Widget\",\"unit_price\":1234,\"currency\":\"EUR\",\"tax_rate_bp\":2000}"
expect_status "POST /api/products -> 201" 201
PX=$(id_of)
is "POST product: Location" "$R_LOCATION" "/api/products/$PX"
expect_jq "POST product: the object with defaults description \"\", active true" \
  '.sku == $s and .name == "Widget" and .unit_price == 1234 and .currency == "EUR" and .tax_rate_bp == 2000 and .description == "" and .active == true' \
  --arg s "CRUD-$tag"
expect_jq "a product object has exactly its fields" \
  '(keys | sort) == (["active","currency","description","id","name","sku","tax_rate_bp","unit_price"])'
created=$(jb -S -c .)
is "GET the new product = the POST answer" "$(cobj "/api/products/$PX")" "$created"
bg_put "/api/products/$PX" '{"name":"Widget Pro","description":"A better widget"}'
expect_status "PUT product {name, description} -> 200" 200
expect_jq "PUT product: name and description changed, the rest kept" \
  '.name == "Widget Pro" and .description == "A better widget" and ($old | fromjson | del(.name, .description)) == del(.name, .description)' \
  --arg old "$created"
bg_put "/api/products/$PX" '{"active":false}'
expect_jq "PUT product {active: false}: inactive, name kept" '.active == false and .name == "Widget Pro"'
bg_put "/api/products/$PX" '{"active":true}'
expect_jq "PUT product {active: true}: active again" '.active == true'
bg_post /api/products "{\"sku\":\"CRUD-$tag\",\"name\":\"Other\",\"unit_price\":1,\"currency\":\"EUR\"}"
expect_problem "POST product, duplicate sku -> 409" 409
is "products total unchanged by the refused POST" "$(total_of /api/products)" "$((products0 + 1))"
mkproduct PY "CRUD2-$tag" 10 EUR 0
before=$(obj "/api/products/$PY")
bg_put "/api/products/$PY" "{\"sku\":\"CRUD-$tag\"}"
expect_problem "PUT product sku to another's -> 409" 409
is "that product unchanged" "$(obj "/api/products/$PY")" "$before"
bg_delete "/api/products/$PY"
expect_status "DELETE an unused product -> 204" 204
is "DELETE answers no body" "$R_BODY" ""
bg_get "/api/products/$PY"
expect_problem "GET the deleted product -> 404" 404
bg_delete "/api/products/$PY"
expect_problem "DELETE it again -> 404" 404
bg_put "/api/products/$PY" '{"name":"ghost"}'
expect_problem "PUT the deleted product -> 404" 404

# ======================================================================
section "invoices CRUD"
today=$(date -u +%F)
year=${today%%-*}
due=$(date -u -d "$today +30 days" +%F)
invoices0=$(total_of /api/invoices)
bg_post /api/invoices "$(inv "$ADA" EUR "[{\"product_id\":$PX,\"quantity\":2}]")"
expect_status "POST /api/invoices -> 201" 201
IX=$(id_of)
is "POST invoice: Location" "$R_LOCATION" "/api/invoices/$IX"
read -r s d t T <<<"$(line_amounts 2 1234 0 2000)"
expect_jq "POST invoice: draft, number INV-<year>-<6 digits>, issue today, due +30 days, notes \"\"" \
  '.status == "draft" and (.number | test("^INV-" + $y + "-[0-9]{6}$")) and .issue_date == $today and .due_date == $due and .notes == "" and .customer_id == $c and .currency == "EUR"' \
  --arg y "$year" --arg today "$today" --arg due "$due" --argjson c "$ADA"
expect_jq "POST invoice: the line takes the product's name, unit_price and tax_rate_bp" \
  '(.lines | length) == 1 and .lines[0].product_id == $p and .lines[0].quantity == 2 and .lines[0].description == "Widget Pro" and .lines[0].unit_price == 1234 and .lines[0].tax_rate_bp == 2000 and (.lines[0].discount_bp // 0) == 0' \
  --argjson p "$PX"
expect_amounts "POST invoice: amounts 2 x 12.34 at 20 %" "$s" "$d" "$t" "$T"
created=$(jb -S -c .)
is "GET the new invoice = the POST answer" "$(cobj "/api/invoices/$IX")" "$created"
is "invoices total +1 after POST" "$(total_of /api/invoices)" "$((invoices0 + 1))"
bg_put "/api/invoices/$IX" '{"notes":"Handle with care"}'
expect_status "PUT invoice {notes} -> 200" 200
expect_jq "PUT invoice {notes}: notes changed, everything else kept" \
  '.notes == "Handle with care" and ($old | fromjson | del(.notes)) == del(.notes)' --arg old "$created"
bg_put "/api/invoices/$IX" "{\"lines\":[{\"product_id\":$PX,\"quantity\":3,\"description\":\"Three widgets\",\"discount_bp\":1000}]}"
expect_status "PUT a draft's lines -> 200" 200
read -r s d t T <<<"$(line_amounts 3 1234 1000 2000)"
expect_amounts "PUT a draft's lines: amounts recomputed" "$s" "$d" "$t" "$T"
expect_jq "PUT a draft's lines: number, notes, dates kept, description taken" \
  '.number == ($old | fromjson | .number) and .notes == "Handle with care" and .issue_date == $today and .lines[0].description == "Three widgets" and .lines[0].discount_bp == 1000' \
  --arg old "$created" --arg today "$today"

bg_delete "/api/users/$ADA"
expect_problem "DELETE a user with invoices -> 409" 409
bg_get "/api/users/$ADA"
expect_status "the user is still there" 200
bg_delete "/api/products/$PX"
expect_problem "DELETE a product used on an invoice -> 409" 409
bg_get "/api/products/$PX"
expect_status "the product is still there" 200
bg_put "/api/invoices/$IX" '{"status":"issued"}'
expect_status "PUT status issued -> 200" 200
expect_jq "status is issued" '.status == "issued"'
bg_delete "/api/invoices/$IX"
expect_status "DELETE /api/invoices/<id> -> 204" 204
is "DELETE answers no body" "$R_BODY" ""
bg_get "/api/invoices/$IX"
expect_problem "GET the deleted invoice -> 404" 404
bg_get "/api/invoices/$IX/bill"
expect_problem "GET the deleted invoice's bill -> 404" 404
bg_delete "/api/products/$PX"
expect_status "DELETE the product once its invoice is gone -> 204" 204
bg_delete "/api/users/$ADA"
expect_status "DELETE the user once its invoice is gone -> 204" 204
is "DELETE answers no body" "$R_BODY" ""
bg_get "/api/users/$ADA"
expect_problem "GET the deleted user -> 404" 404
bg_delete "/api/users/$ADA"
expect_problem "DELETE it again -> 404" 404
is "users total back to the seed's" "$(total_of /api/users)" "$users0"

# An issue_date in another year: the number carries that year.
mkproduct PE "E-$tag" 250 EUR 1900 "Euro thing"
bg_post /api/invoices "$(inv "$S1" EUR "[{\"product_id\":$PE,\"quantity\":1}]" '"issue_date":"2019-03-01"')"
expect_status "POST invoice dated 2019-03-01 -> 201" 201
expect_jq "its number is INV-2019-..., due 2019-03-31" \
  '(.number | test("^INV-2019-[0-9]{6}$")) and .due_date == "2019-03-31"'
n1=$(jb '.number')
bg_post /api/invoices "$(inv "$S1" EUR "[{\"product_id\":$PE,\"quantity\":1}]" '"issue_date":"2019-12-31","due_date":"2020-01-15"')"
expect_status "POST invoice dated 2019-12-31 due 2020-01-15 -> 201" 201
n2=$(jb '.number')
is "the next 2019 number follows" "$n2" "$(next_number "$n1" 1)"
bg_post /api/invoices "$(inv "$S1" EUR "[]" '"status":"draft","notes":"empty"')"
expect_status "POST invoice with no lines and status draft -> 201" 201
expect_amounts "an invoice without lines sums to 0" 0 0 0 0
IEMPTY=$(id_of)
bg_get "/api/invoices/$IEMPTY/bill"
expect_status "the bill of an invoice without lines -> 200" 200

# ======================================================================
section "boundaries that are accepted"
# rep STRING N: STRING N times.
rep() {
  local i out=
  for ((i = 0; i < $2; i++)); do out+=$1; done
  printf '%s' "$out"
}
bg_post /api/users "{\"name\":\"$(rep n 200)\",\"email\":\"x$tag@y\",\"password\":\"12345678\",\"role\":\"admin\"}"
expect_status "user: name of 200 bytes, email x@y, password of 8 bytes, role admin -> 201" 201
UB=$(id_of)
bg_put "/api/users/$UB" "{\"name\":\"$(rep € 66)\"}"
expect_status "user: name of 66 x € (198 bytes) -> 200" 200
expect_jq "... stored as sent (UTF-8)" '.name == $n' --arg n "$(rep € 66)"
bg_put "/api/users/$UB" "{\"name\":\"$(rep € 67)\"}"
expect_problem "user: name of 67 x € (201 bytes, 67 characters) -> 422" 422 name
bg_put "/api/users/$UB" "{\"email\":\"$(rep a $((253 - 12 - ${#tag})))-$tag@example.com\"}"
expect_status "user: email of 254 bytes -> 200" 200
bg_put "/api/users/$UB" "{\"email\":\"$(rep a $((254 - 12 - ${#tag})))-$tag@example.com\"}"
expect_problem "user: email of 255 bytes -> 422" 422 email
bg_post /api/products "{\"sku\":\"$(rep s $((64 - ${#tag})))$tag\",\"name\":\"$(rep m 200)\",\"unit_price\":0,\"currency\":\"CHF\",\"tax_rate_bp\":10000,\"description\":\"$(rep d 2000)\",\"active\":true}"
expect_status "product: sku of 64 bytes, name of 200, unit_price 0, tax 10000 bp, description of 2000 -> 201" 201
bg_post /api/products "{\"sku\":\"MAX-$tag\",\"name\":\"max\",\"unit_price\":9223372036854775807,\"currency\":\"EUR\"}"
expect_status "product: unit_price 2^63-1 -> 201" 201
PMAX=$(id_of)
bg_post /api/invoices "$(inv "$UB" EUR "[{\"product_id\":$PMAX,\"quantity\":1}]")"
expect_status "invoice: 1 x (2^63-1), no tax -> 201" 201
if printf '%s' "$R_BODY" | grep -Eq '"total"[[:space:]]*:[[:space:]]*9223372036854775807[^0-9.eE]'; then
  ok "... total 9223372036854775807 exactly"
else
  nok "... total 9223372036854775807 exactly" "$(bg_last)"
fi
IMAX=$(id_of)
bg_post /api/invoices "$(inv "$UB" EUR "[{\"product_id\":$PMAX,\"quantity\":2}]")"
expect_problem "invoice: 2 x (2^63-1) overflows -> 422" 422
lines100=$(jq -nc --argjson p "$PE" '[range(100) | {product_id: $p, quantity: 1}]')
bg_post /api/invoices "$(inv "$UB" EUR "$lines100" "\"issue_date\":\"2024-02-29\",\"due_date\":\"2024-02-29\",\"notes\":\"$(rep o 2000)\"")"
expect_status "invoice: 100 lines, notes of 2000 bytes, issued and due 2024-02-29 -> 201" 201
read -r s d t T <<<"$(line_amounts 1 250 0 1900)"
expect_amounts "... amounts of 100 lines" $((100 * s)) $((100 * d)) $((100 * t)) $((100 * T))
bg_post /api/invoices "$(inv "$UB" EUR "[]" '"issue_date":"2023-02-29"')"
expect_problem "invoice: issue_date 2023-02-29 -> 422" 422 issue_date
# The bill is HTML: what the user typed is text, not markup.
bg_put "/api/users/$UB" "{\"name\":\"<i>Esc & \\\"Co\\\"</i> $tag\"}"
expect_jq "a name with markup is stored as sent" '.name == $n' --arg n "<i>Esc & \"Co\"</i> $tag"
bg_get "/api/invoices/$IMAX/bill"
expect_status "its bill -> 200" 200
case $R_BODY in
*"<i>Esc"*) nok "the bill escapes the customer's name" "raw <i>Esc in the HTML" ;;
*) if printf '%s' "$R_BODY" | grep -Eq '(&lt;|&#60;|&#x3[cC];)i(&gt;|&#62;|&#x3[eE];)Esc (&amp;|&#38;|&#x26;) '; then
  ok "the bill escapes the customer's name (< and &)"
else nok "the bill escapes the customer's name (< and &)" "no escaped form of it in the HTML"; fi ;;
esac

# ======================================================================
section "pagination and filters"
nusers=$(total_of /api/users)
bg_get /api/users
expect_status "GET /api/users -> 200" 200
expect_jq "default page 1, per_page 20" \
  '.page == 1 and .per_page == 20 and (.items | length) == ([20, .total] | min) and .total == $n' \
  --argjson n "$nusers"
for mod in products invoices; do
  bg_get "/api/$mod"
  expect_jq "GET /api/$mod: default page 1, per_page 20" \
    '.page == 1 and .per_page == 20 and (.items | length) == ([20, .total] | min)'
done
# All users, 100 a page: the count is the total, ids strictly ascending.
: >"$BG_TMP/ids"
p=1
while [ $p -le 20 ]; do
  bg_get "/api/users?page=$p&per_page=100"
  [ "$R_STATUS" = 200 ] || break
  jb '.items[].id' >>"$BG_TMP/ids"
  [ "$(jb '.items | length')" -lt 100 ] && break
  p=$((p + 1))
done
is "all pages together hold total users" "$(wc -l <"$BG_TMP/ids")" "$nusers"
check "users ordered by id, no repeats" sort -n -c -u "$BG_TMP/ids"
last=$(((nusers + 6) / 7))
bg_get "/api/users?page=$last&per_page=7"
expect_status "GET the last page of 7 -> 200" 200
expect_jq "the last page of 7 holds the rest ($((nusers - 7 * (last - 1))))" \
  '(.items | length) == $r and .page == $p and .per_page == 7 and .total == $n' \
  --argjson r $((nusers - 7 * (last - 1))) --argjson p "$last" --argjson n "$nusers"
is "the last page's last item is the highest id" "$(jb '.items[-1].id')" "$(tail -n1 "$BG_TMP/ids")"
bg_get "/api/users?page=$((last + 1))&per_page=7"
expect_jq "a page past the last: 200, no items, the total" '(.items | length) == 0 and .total == $n' \
  --argjson n "$nusers"
bg_get "/api/users?per_page=100"
expect_jq "per_page=100 is allowed" '.per_page == 100'
bg_get "/api/users?per_page=1&page=2"
expect_jq "per_page=1&page=2 is the second user" '.items[0].id == $id' --argjson id "$(sed -n 2p "$BG_TMP/ids")"
for q in per_page=0 per_page=101 page=0 page=-1 page=abc per_page=x per_page=1.5 'page=1x'; do
  bg_get "/api/users?$q"
  expect_problem "GET /api/users?$q -> 400" 400
done
bg_get "/api/invoices?page=0"
expect_problem "GET /api/invoices?page=0 -> 400" 400
bg_get "/api/products?per_page=101"
expect_problem "GET /api/products?per_page=101 -> 400" 400

# The filters, against all invoices.
: >"$BG_TMP/invoices"
p=1
while [ $p -le 50 ]; do
  bg_get "/api/invoices?page=$p&per_page=100"
  [ "$R_STATUS" = 200 ] || break
  jb -c '.items[]' >>"$BG_TMP/invoices"
  [ "$(jb '.items | length')" -lt 100 ] && break
  p=$((p + 1))
done
is "all invoice pages hold the total" "$(wc -l <"$BG_TMP/invoices")" "$(total_of /api/invoices)"
for st in draft issued paid void; do
  want=$(jq -s --arg s "$st" 'map(select(.status == $s)) | length' "$BG_TMP/invoices")
  bg_get "/api/invoices?status=$st&per_page=100"
  expect_jq "?status=$st: $want invoices, all $st" \
    '.total == $n and all(.items[]; .status == $s) and (.items | length) == ([$n, 100] | min)' \
    --arg s "$st" --argjson n "$want"
done
cust=$(jq -s 'map(.customer_id) | group_by(.) | max_by(length) | .[0]' "$BG_TMP/invoices")
want=$(jq -s --argjson c "$cust" 'map(select(.customer_id == $c)) | length' "$BG_TMP/invoices")
bg_get "/api/invoices?customer_id=$cust&per_page=100"
expect_jq "?customer_id=$cust: $want invoices, all theirs" \
  '.total == $n and all(.items[]; .customer_id == $c)' --argjson c "$cust" --argjson n "$want"
st=$(jq -rs --argjson c "$cust" 'map(select(.customer_id == $c)) | .[0].status' "$BG_TMP/invoices")
want=$(jq -s --argjson c "$cust" --arg s "$st" 'map(select(.customer_id == $c and .status == $s)) | length' "$BG_TMP/invoices")
bg_get "/api/invoices?status=$st&customer_id=$cust&per_page=100"
expect_jq "?status=$st&customer_id=$cust: $want invoices" \
  '.total == $n and all(.items[]; .customer_id == $c and .status == $s)' \
  --arg s "$st" --argjson c "$cust" --argjson n "$want"
bg_get "/api/invoices?status=bogus"
expect_problem "GET /api/invoices?status=bogus -> 400" 400
bg_get "/api/invoices?customer_id=abc"
expect_problem "GET /api/invoices?customer_id=abc -> 400" 400
# One list entry whatever the spelling of the query.
bg_get "/api/invoices?status=$st&customer_id=$cust"
a=$(jb -S -c .)
ea=$R_ETAG
bg_get "/api/invoices?customer_id=$cust&page=1&status=$st&per_page=20"
is "the same list in another parameter order: same body" "$(jb -S -c .)" "$a"
is "... and the same ETag" "$R_ETAG" "$ea"

# ======================================================================
section "totals"
mkproduct T1 "T1-$tag" 1 EUR 0
mkproduct T3 "T3-$tag" 3 EUR 0
mkproduct T4 "T4-$tag" 4 EUR 1000
mkproduct T5 "T5-$tag" 5 EUR 1000
mkproduct T15 "T15-$tag" 15 EUR 1000
mkproduct TK "TK-$tag" 1000 EUR 2000
mkproduct TZ "TZ-$tag" 999 EUR 2000
mkproduct TB "TB-$tag" 1000000000 EUR 0
mkproduct TBT "TBT-$tag" 1000000000 EUR 1000
mkproduct TO "TO-$tag" 2 EUR 0
mkproduct TUSD "TUSD-$tag" 100 USD 0

# tot NAME LINES S D T TOTAL: POST an invoice, check its amounts and that
# a GET shows the same.
tot() {
  bg_post /api/invoices "$(inv "$S1" EUR "$2")"
  if ! expect_status "$1: POST -> 201" 201; then return; fi
  local id
  id=$(id_of)
  expect_amounts "$1: amounts $3 $4 $5 $6" "$3" "$4" "$5" "$6"
  bg_get "/api/invoices/$id"
  expect_amounts "$1: GET shows the same amounts" "$3" "$4" "$5" "$6"
}
tot "discount of 0.5 rounds up (1 at 50 %)" "[{\"product_id\":$T1,\"quantity\":1,\"discount_bp\":5000}]" 1 1 0 0
tot "discount of 1.5 rounds up (3 at 50 %)" "[{\"product_id\":$T3,\"quantity\":1,\"discount_bp\":5000}]" 3 2 0 1
tot "tax of exactly 0.5 rounds up (5 at 10 %)" "[{\"product_id\":$T5,\"quantity\":1}]" 5 0 1 6
tot "tax of exactly 1.5 rounds up (15 at 10 %)" "[{\"product_id\":$T15,\"quantity\":1}]" 15 0 2 17
tot "tax of 0.4 rounds down (4 at 10 %)" "[{\"product_id\":$T4,\"quantity\":1}]" 4 0 0 4
tot "discount 0.5 up, then tax on the rest (1000, 5 bp, 20 %)" \
  "[{\"product_id\":$TK,\"quantity\":1,\"discount_bp\":5}]" 1000 1 200 1199
tot "discount 12.5 % then 20 % tax" "[{\"product_id\":$TK,\"quantity\":1,\"discount_bp\":1250}]" 1000 125 175 1050
tot "100 % discount: total 0 and no tax" "[{\"product_id\":$TZ,\"quantity\":3,\"discount_bp\":10000}]" 2997 2997 0 0
tot "zero tax rate" "[{\"product_id\":$T1,\"quantity\":7}]" 7 0 0 7
tot "rounding is per line (two lines of 0.5 tax -> 2)" \
  "[{\"product_id\":$T5,\"quantity\":1},{\"product_id\":$T5,\"quantity\":1}]" 10 0 2 12
read -r a1 a2 a3 a4 <<<"$(line_amounts 2 1000 500 2000)"
read -r b1 b2 b3 b4 <<<"$(line_amounts 3 5 3333 1000)"
read -r c1 c2 c3 c4 <<<"$(line_amounts 7 15 0 1000)"
tot "three mixed lines sum line by line" \
  "[{\"product_id\":$TK,\"quantity\":2,\"discount_bp\":500},{\"product_id\":$T5,\"quantity\":3,\"discount_bp\":3333},{\"product_id\":$T15,\"quantity\":7}]" \
  $((a1 + b1 + c1)) $((a2 + b2 + c2)) $((a3 + b3 + c3)) $((a4 + b4 + c4))
tot "quantity 1e9 x price 1e9 = 1e18 fits" "[{\"product_id\":$TB,\"quantity\":1000000000}]" \
  1000000000000000000 0 0 1000000000000000000
if printf '%s' "$R_BODY" | grep -Eq '"total"[[:space:]]*:[[:space:]]*1000000000000000000[^0-9.eE]'; then
  ok "1e18 is written as the exact integer 1000000000000000000"
else
  nok "1e18 is written as the exact integer 1000000000000000000" "$(bg_last)"
fi
n0=$(total_of /api/invoices)
bg_post /api/invoices "$(inv "$S1" EUR "[{\"product_id\":$TO,\"quantity\":9000000000000000000}]")"
expect_problem "quantity 9e18 x price 2 overflows -> 422" 422
bg_post /api/invoices "$(inv "$S1" EUR "[{\"product_id\":$TB,\"quantity\":5000000000},{\"product_id\":$TB,\"quantity\":5000000000}]")"
expect_problem "two lines of 5e18 overflow the sum -> 422" 422
is "no invoice created by the overflows" "$(total_of /api/invoices)" "$n0"
# The contract says "a computation whose result would not fit": with
# 1e18 at 10 % the tax is 1e17 and the total 1.1e18, which fit, although
# (subtotal - discount) x tax_rate_bp does not. Both readings are accepted
# (the report notes the ambiguity): exact amounts, or 422 and no row.
bg_post /api/invoices "$(inv "$S1" EUR "[{\"product_id\":$TBT,\"quantity\":1000000000}]")"
if [ "$R_STATUS" = 201 ]; then
  expect_amounts "1e18 at 10 %: exact amounts (an intermediate product past 2^63)" \
    1000000000000000000 0 100000000000000000 1100000000000000000
elif [ "$R_STATUS" = 422 ]; then
  is "1e18 at 10 % refused (422): no invoice created" "$(total_of /api/invoices)" "$n0"
else
  nok "1e18 at 10 %: 201 with exact amounts or 422" "$(bg_last)"
fi
n0=$(total_of /api/invoices)
bg_post /api/invoices "{\"customer_id\":$S1,\"currency\":\"EUR\",\"id\":999999,\"number\":\"INV-1999-000001\",\"subtotal\":1,\"discount\":2,\"tax\":3,\"total\":4,\"lines\":[{\"product_id\":$TK,\"quantity\":1,\"unit_price\":1,\"tax_rate_bp\":9999}]}"
expect_status "client-sent amounts, id and number: accepted (201)" 201
expect_amounts "client-sent amounts ignored" 1000 0 200 1200
expect_jq "client-sent id, number, line unit_price and tax_rate_bp ignored" \
  '.id != 999999 and .number != "INV-1999-000001" and .lines[0].unit_price == 1000 and .lines[0].tax_rate_bp == 2000'
ID=$(id_of)
before=$(cobj "/api/invoices/$ID")
bg_put "/api/invoices/$ID" "{\"lines\":[{\"product_id\":$TO,\"quantity\":9000000000000000000}]}"
expect_problem "PUT lines that overflow -> 422" 422
is "the invoice is unchanged" "$(cobj "/api/invoices/$ID")" "$before"
bg_put "/api/invoices/$ID" '{"subtotal":5,"total":6,"number":"X","id":1}'
expect_status "PUT with client amounts, id and number: 200" 200
is "... and nothing changed" "$(jb -S -c .)" "$before"

# ======================================================================
section "bad input"
# bad NAME CODE METHOD PATH BODY [ERRORS_KEY]: the answer is CODE as
# problem+json (with errors[ERRORS_KEY] when given), and the module's
# first list page and the object at PATH (for PUT/DELETE) are as they
# were. Every request of the table is refused, so the state it starts
# from is the state each case must leave; it is read once per list and
# object (and again after a case that changed it, so that one failure
# does not spread to the next cases).
declare -A BASE=()
bad() {
  local name=$1 code=$2 method=$3 path=$4 body=$5 key=${6-} mod t1 o1='' o0=''
  mod=${path#/api/}
  mod=/api/${mod%%[/?]*}
  [ -n "${BASE[list $mod]:-}" ] || BASE[list $mod]=$(listsnap "$mod")
  case $method in PUT | DELETE)
    [ -n "${BASE[obj $path]:-}" ] || BASE[obj $path]=$(obj "$path")
    o0=${BASE[obj $path]}
    ;;
  esac
  bg_req "$method" "$path" "$body"
  expect_problem "$name -> $code" "$code" "$key"
  local saved
  saved=$(bg_last)
  t1=$(listsnap "$mod")
  case $method in PUT | DELETE) o1=$(obj "$path") ;; esac
  if [ "$t1" = "${BASE[list $mod]}" ] && [ "$o1" = "$o0" ]; then
    ok "$name: nothing changed"
  else
    nok "$name: nothing changed" "$mod?per_page=1 ${BASE[list $mod]:0:200} -> ${t1:0:200}; object ${o0:0:200} -> ${o1:0:200}; request: $saved"
    BASE[list $mod]=$t1
    case $method in PUT | DELETE) BASE[obj $path]=$o1 ;; esac
  fi
}

# Invoices in each status (PE: EUR product).
ln1="[{\"product_id\":$PE,\"quantity\":1}]"
mkinvoice ID "$S1" EUR "$ln1"
mkinvoice II "$S1" EUR "$ln1"
mkinvoice IP "$S1" EUR "$ln1"
mkinvoice IV "$S1" EUR "$ln1"
bg_put "/api/invoices/$II" '{"status":"issued"}'
expect_status "draft -> issued: 200" 200
bg_put "/api/invoices/$IP" '{"status":"issued"}'
bg_put "/api/invoices/$IP" '{"status":"paid"}'
expect_status "issued -> paid: 200" 200
bg_put "/api/invoices/$IP" '{"status":"paid"}'
expect_status "paid -> paid (the same again): 200" 200
bg_put "/api/invoices/$IV" '{"status":"void"}'
expect_status "draft -> void: 200" 200
mkinvoice I2 "$S1" EUR "$ln1"
bg_put "/api/invoices/$I2" '{"status":"issued"}'
bg_put "/api/invoices/$I2" '{"status":"void"}'
expect_status "issued -> void: 200" 200
bg_put "/api/invoices/$II" '{"notes":"issued, notes may change","due_date":"2099-01-01"}'
expect_status "an issued invoice's notes and due_date may change: 200" 200
bg_put "/api/invoices/$ID" "{\"issue_date\":\"$year-01-01\"}"
expect_status "a draft's issue_date within its year: 200" 200
BG_CT='application/json; charset=utf-8' bg_put "/api/users/$S2" '{"name":"Charset User"}'
expect_status "Content-Type application/json; charset=utf-8 is accepted" 200

long() { head -c "$1" /dev/zero | tr '\0' "${2:-a}"; }
# A JSON object of exactly N bytes: {"sku":"big","description":"aaa…"}.
body_of_size() {
  local pre='{"sku":"big-'$tag'","name":"big","unit_price":1,"currency":"EUR","description":"' post='"}'
  printf '%s%s%s' "$pre" "$(long $(($1 - ${#pre} - ${#post})))" "$post"
}
body_of_size 65537 >"$BG_TMP/big65537.json"
body_of_size 65536 >"$BG_TMP/big65536.json"
printf '{"notes":"%s"}' "$(long 70000)" >"$BG_TMP/bignotes.json"
lines101=$(jq -nc --argjson p "$PE" '[range(101) | {product_id: $p, quantity: 1}]')
U='"name":"Bad Input","email":"bad-'$tag'@example.com"'

bad "malformed JSON in a POST" 400 POST /api/users '{"name": "x",'
bad "malformed JSON in a PUT" 400 PUT "/api/users/$S2" '{"name":'
bad "trailing garbage after the object" 400 POST /api/products '{"sku":"g"} x'
bad "a body that is an array" 400 POST /api/products '[1,2]'
bad "a body that is a string" 400 POST /api/users '"text"'
bad "a body that is a number (PUT)" 400 PUT "/api/invoices/$ID" '42'
bad "a body that is null (PUT)" 400 PUT "/api/products/$PE" 'null'
BG_CT=text/plain bad "Content-Type text/plain" 415 POST /api/products "{\"sku\":\"ct-$tag\",\"name\":\"x\",\"unit_price\":1,\"currency\":\"EUR\"}"
BG_CT='' bad "no Content-Type" 415 POST /api/products "{\"sku\":\"ct-$tag\",\"name\":\"x\",\"unit_price\":1,\"currency\":\"EUR\"}"
BG_CT=application/x-www-form-urlencoded bad "Content-Type form (PUT)" 415 PUT "/api/users/$S2" '{"name":"x"}'
bad "a body of 65537 bytes" 413 POST /api/products "@$BG_TMP/big65537.json"
bad "a body of 65536 bytes is read (its 2000+ byte description is a 422)" 422 POST /api/products "@$BG_TMP/big65536.json" description
bad "a 70000-byte body in a PUT" 413 PUT "/api/invoices/$ID" "@$BG_TMP/bignotes.json"
bad "GET an unknown user" 404 GET /api/users/999999 ''
bad "PUT an unknown product" 404 PUT /api/products/999999 '{"name":"x"}'
bad "DELETE an unknown invoice" 404 DELETE /api/invoices/999999 ''
bad "the bill of an unknown invoice" 404 GET /api/invoices/999999/bill ''
bad "unknown field in a user" 422 POST /api/users "{$U,\"password\":\"long-enough-1\",\"nickname\":\"x\"}" nickname
bad "unknown field in a product PUT" 422 PUT "/api/products/$PE" '{"colour":"red"}' colour
bad "unknown field in a line" 422 POST /api/invoices "$(inv "$S1" EUR "[{\"product_id\":$PE,\"quantity\":1,\"foo\":1}]")" "lines[0].foo"
bad "unit_price as a string" 422 POST /api/products '{"sku":"wt-'$tag'","name":"x","unit_price":"12","currency":"EUR"}' unit_price
bad "unit_price as a float" 422 POST /api/products '{"sku":"wt-'$tag'","name":"x","unit_price":1.5,"currency":"EUR"}' unit_price
bad "active as a string" 422 PUT "/api/products/$PE" '{"active":"yes"}' active
bad "name as a number" 422 PUT "/api/users/$S2" '{"name":42}' name
bad "customer_id as a string" 422 POST /api/invoices "{\"customer_id\":\"$S1\",\"currency\":\"EUR\",\"lines\":$ln1}" customer_id
bad "lines as an object" 422 POST /api/invoices "{\"customer_id\":$S1,\"currency\":\"EUR\",\"lines\":{}}" lines
bad "quantity 1.5" 422 POST /api/invoices "$(inv "$S1" EUR "[{\"product_id\":$PE,\"quantity\":1.5}]")" "lines[0].quantity"
bad "quantity 0 (second line)" 422 POST /api/invoices "$(inv "$S1" EUR "[{\"product_id\":$PE,\"quantity\":1},{\"product_id\":$PE,\"quantity\":0}]")" "lines[1].quantity"
bad "quantity -3" 422 POST /api/invoices "$(inv "$S1" EUR "[{\"product_id\":$PE,\"quantity\":-3}]")" "lines[0].quantity"
bad "quantity 0 in a draft's PUT" 422 PUT "/api/invoices/$ID" "{\"lines\":[{\"product_id\":$PE,\"quantity\":0}]}" "lines[0].quantity"
bad "currency eur" 422 POST /api/products '{"sku":"cu-'$tag'","name":"x","unit_price":1,"currency":"eur"}' currency
bad "currency EURO" 422 POST /api/products '{"sku":"cu-'$tag'","name":"x","unit_price":1,"currency":"EURO"}' currency
bad "currency E1R (PUT)" 422 PUT "/api/products/$PE" '{"currency":"E1R"}' currency
bad "invoice currency usd" 422 POST /api/invoices "$(inv "$S1" usd "[]")" currency
bad "tax_rate_bp 10001" 422 POST /api/products '{"sku":"tx-'$tag'","name":"x","unit_price":1,"currency":"EUR","tax_rate_bp":10001}' tax_rate_bp
bad "tax_rate_bp -1 (PUT)" 422 PUT "/api/products/$PE" '{"tax_rate_bp":-1}' tax_rate_bp
bad "unit_price -1" 422 POST /api/products '{"sku":"up-'$tag'","name":"x","unit_price":-1,"currency":"EUR"}' unit_price
bad "discount_bp 10001" 422 POST /api/invoices "$(inv "$S1" EUR "[{\"product_id\":$PE,\"quantity\":1,\"discount_bp\":10001}]")" "lines[0].discount_bp"
bad "paid -> draft" 422 PUT "/api/invoices/$IP" '{"status":"draft"}' status
bad "paid -> void" 422 PUT "/api/invoices/$IP" '{"status":"void"}' status
bad "draft -> paid (skipping issued)" 422 PUT "/api/invoices/$ID" '{"status":"paid"}' status
bad "void -> issued" 422 PUT "/api/invoices/$IV" '{"status":"issued"}' status
bad "status bogus" 422 PUT "/api/invoices/$ID" '{"status":"bogus"}' status
bad "POST with status issued" 422 POST /api/invoices "$(inv "$S1" EUR "$ln1" '"status":"issued"')" status
bad "changing the lines of an issued invoice" 422 PUT "/api/invoices/$II" "{\"lines\":[{\"product_id\":$PE,\"quantity\":5}]}" lines
bad "changing the customer of an issued invoice" 422 PUT "/api/invoices/$II" "{\"customer_id\":$S2}" customer_id
bad "changing the currency of an issued invoice" 422 PUT "/api/invoices/$II" '{"currency":"USD","lines":[]}'
bad "changing the issue_date of a paid invoice" 422 PUT "/api/invoices/$IP" "{\"issue_date\":\"$year-01-02\"}" issue_date
bad "a draft's issue_date in another year" 422 PUT "/api/invoices/$ID" '{"issue_date":"2001-06-01"}' issue_date
bad "currency mismatch (USD invoice, EUR product)" 422 POST /api/invoices "$(inv "$S1" USD "$ln1")"
bad "currency mismatch (EUR invoice, USD product)" 422 POST /api/invoices "$(inv "$S1" EUR "[{\"product_id\":$TUSD,\"quantity\":1}]")"
bad "a draft's currency changed under its EUR lines" 422 PUT "/api/invoices/$ID" '{"currency":"USD"}'
bad "unknown customer" 422 POST /api/invoices "$(inv 999999 EUR "$ln1")" customer_id
bad "unknown customer (PUT of a draft)" 422 PUT "/api/invoices/$ID" '{"customer_id":999999}' customer_id
bad "unknown product in a line" 422 POST /api/invoices "$(inv "$S1" EUR '[{"product_id":999999,"quantity":1}]')" "lines[0].product_id"
# An inactive product: refused on lines being written (a POST, a PUT
# that sends lines); lines a PUT keeps are not checked again.
mkproduct PI "INACT-$tag" 300 EUR 0 "Soon inactive"
mkinvoice IIN "$S1" EUR "[{\"product_id\":$PI,\"quantity\":1}]"
bg_put "/api/products/$PI" '{"active":false}'
expect_jq "PUT product active false -> inactive" '.active == false'
BASE=() # the writes just above are the new state the refusals must keep
bad "an inactive product on a new invoice" 422 POST /api/invoices "$(inv "$S1" EUR "[{\"product_id\":$PI,\"quantity\":1}]")" "lines[0].product_id"
bad "an inactive product in a draft's new lines" 422 PUT "/api/invoices/$ID" "{\"lines\":[{\"product_id\":$PE,\"quantity\":1},{\"product_id\":$PI,\"quantity\":2}]}" "lines[1].product_id"
bg_put "/api/invoices/$IIN" '{"notes":"keeps its inactive line"}'
expect_status "a PUT that keeps a line of a since-inactive product (notes only) -> 200" 200
expect_jq "... the line is still there" '.lines[0].product_id == $p and .notes == "keeps its inactive line"' --argjson p "$PI"
bg_put "/api/products/$PI" '{"active":true}'
bg_put "/api/invoices/$IIN" "{\"lines\":[{\"product_id\":$PI,\"quantity\":3}]}"
expect_status "active again: the product may go on lines -> 200" 200
BASE=()
bad "101 lines" 422 POST /api/invoices "$(inv "$S1" EUR "$lines101")" lines
bad "due_date before issue_date" 422 POST /api/invoices "$(inv "$S1" EUR "$ln1" '"issue_date":"2024-05-10","due_date":"2024-05-09"')" due_date
bad "issue_date 2025-02-30" 422 POST /api/invoices "$(inv "$S1" EUR "$ln1" '"issue_date":"2025-02-30"')" issue_date
bad "issue_date 2025/01/01" 422 POST /api/invoices "$(inv "$S1" EUR "$ln1" '"issue_date":"2025/01/01"')" issue_date
bad "notes of 2001 bytes" 422 PUT "/api/invoices/$ID" "{\"notes\":\"$(long 2001)\"}" notes
bad "a missing currency" 422 POST /api/invoices "{\"customer_id\":$S1,\"lines\":$ln1}" currency
bad "a missing customer_id" 422 POST /api/invoices "{\"currency\":\"EUR\",\"lines\":$ln1}" customer_id
bad "password of 7 bytes" 422 POST /api/users "{$U,\"password\":\"1234567\"}" password
bad "password of 7 bytes (PUT)" 422 PUT "/api/users/$S2" '{"password":"short12"}' password
bad "password of 1025 bytes" 422 POST /api/users "{$U,\"password\":\"$(long 1025)\"}" password
bad "a missing password" 422 POST /api/users "{$U}" password
bad "a missing email" 422 POST /api/users '{"name":"x","password":"long-enough-1"}' email
bad "an email without @" 422 POST /api/users '{"name":"x","email":"no-at-sign","password":"long-enough-1"}' email
bad "an email with two @" 422 POST /api/users '{"name":"x","email":"a@b@c","password":"long-enough-1"}' email
bad "an email with nothing before @" 422 POST /api/users '{"name":"x","email":"@x.org","password":"long-enough-1"}' email
bad "an email with nothing after @ (PUT)" 422 PUT "/api/users/$S2" '{"email":"x@"}' email
bad "an empty name" 422 POST /api/users "{\"name\":\"\",\"email\":\"e-$tag@x.org\",\"password\":\"long-enough-1\"}" name
bad "a name of 201 bytes (PUT)" 422 PUT "/api/users/$S2" "{\"name\":\"$(long 201)\"}" name
bad "role boss" 422 PUT "/api/users/$S2" '{"role":"boss"}' role
bad "a missing sku" 422 POST /api/products '{"name":"x","unit_price":1,"currency":"EUR"}' sku
bad "a sku of 65 bytes" 422 POST /api/products "{\"sku\":\"$(long 65)\",\"name\":\"x\",\"unit_price\":1,\"currency\":\"EUR\"}" sku
bad "a missing unit_price" 422 POST /api/products '{"sku":"nu-'$tag'","name":"x","currency":"EUR"}' unit_price

# ======================================================================
section "ETag, If-None-Match, X-Cache"
for path in "/api/products/$PE" "/api/products?per_page=5" "/api/invoices/$ID/bill"; do
  bg_get "$path"
  expect_status "GET $path -> 200" 200
  case $R_CACHE in hit-l1 | hit-l2 | miss | bypass) ok "GET $path: X-Cache $R_CACHE" ;;
  *) nok "GET $path: X-Cache is hit-l1|hit-l2|miss|bypass" "X-Cache '$R_CACHE'" ;; esac
  etag=$R_ETAG
  body=$R_BODY
  if [[ $etag =~ ^\"[^\"]+\"$ ]]; then ok "GET $path: a strong ETag ($etag)"; else nok "GET $path: a strong ETag" "ETag '$etag'"; fi
  bg_get "$path"
  case $R_CACHE in hit-l1 | hit-l2) ok "GET $path again: a hit ($R_CACHE)" ;;
  *) nok "GET $path again: a hit" "X-Cache '$R_CACHE'" ;; esac
  is "GET $path again: same ETag" "$R_ETAG" "$etag"
  is "GET $path again: same body" "$R_BODY" "$body"
  bg_get "$path" -H "If-None-Match: $etag"
  expect_status "If-None-Match: the ETag -> 304" 304
  is "304 has no body" "$R_BODY" ""
  bg_get "$path" -H 'If-None-Match: "not-the-etag"'
  expect_status "If-None-Match: another ETag -> 200" 200
  bg_burst "$path" 12
  is "GET $path: one ETag on every worker" "$(cut -d'|' -f5 "$BG_TMP/burst/sum" | sort -u | tr '\n' ' ')" "$etag "
done
bg_get "/api/products/$PE"
etag=$R_ETAG
bg_put "/api/products/$PE" '{"description":"etag changes"}'
bg_get "/api/products/$PE" -H "If-None-Match: $etag"
expect_status "after a PUT the old ETag no longer matches -> 200" 200
[ "$R_ETAG" != "$etag" ] && ok "after a PUT the ETag differs" || nok "after a PUT the ETag differs" "still $etag"

# ======================================================================
section "gapless invoice numbers under 50 concurrent POSTs"
# Rounds of 50 POSTs at once (one curl, 50 connections), until every
# worker has taken part (4 rounds at most: the kernel's split of the
# connections can be uneven); then the numbers must be exactly the ones
# after the number of an invoice created just before. (Customer UB: S1's
# lists must stay within one page of 100 for the coherence checks.)
bg_post /api/invoices "$(inv "$UB" EUR "$ln1")"
first=$(jb '.number')
mkdir "$BG_TMP/conc"
: >"$BG_TMP/conc/sum"
round=0
while [ $round -lt 4 ]; do
  round=$((round + 1))
  args=()
  for i in $(seq 1 50); do args+=("$BG_URL/api/invoices" -o "$BG_TMP/conc/$round.$i"); done
  curl -sS -Z --parallel-max 50 --max-time 60 -X POST -H 'Expect:' \
    -H 'Connection: close' -H 'Content-Type: application/json' \
    --data-binary "$(inv "$UB" EUR "$ln1")" \
    -w '%{http_code}|%header{x-worker}\n' "${args[@]}" >>"$BG_TMP/conc/sum" 2>"$BG_TMP/conc/err"
  [ "$(cut -d'|' -f2 "$BG_TMP/conc/sum" | sort -u | grep -c .)" -ge "$BG_WORKERS" ] && break
done
n=$((round * 50))
is "$n concurrent POSTs ($round round(s) of 50): all 201" \
  "$(cut -d'|' -f1 "$BG_TMP/conc/sum" | sort | uniq -c | tr -s ' ' | tr '\n' ';')" " $n 201;"
is "concurrent POSTs answered by all 3 workers (per worker: $(cut -d'|' -f2 "$BG_TMP/conc/sum" | sort | uniq -c | tr -s ' ' | tr '\n' ','))" \
  "$(cut -d'|' -f2 "$BG_TMP/conc/sum" | sort -u | tr '\n' ' ')" "1 2 3 "
cat "$BG_TMP"/conc/[0-9]* | jq -r '.number' 2>/dev/null | sort >"$BG_TMP/conc/numbers"
bg_post /api/invoices "$(inv "$UB" EUR "$ln1")"
after=$(jb '.number')
want=$(for i in $(seq 1 $n); do next_number "$first" "$i"; echo; done)
if [ "$(cat "$BG_TMP/conc/numbers")" = "$want" ]; then
  ok "the $n numbers are exactly the $n after $first, no gap, no repeat"
else
  nok "the $n numbers are exactly the $n after $first" \
    "got $(sort -u "$BG_TMP/conc/numbers" | wc -l) distinct: $(head -c 400 <"$BG_TMP/conc/numbers" | tr '\n' ' ')"
fi
is "the next POST takes the next number" "$after" "$(next_number "$first" $((n + 1)))"

# The same sku POSTed 10 times at once: one 201, nine 409.
args=()
for i in $(seq 1 10); do args+=("$BG_URL/api/products" -o "$BG_TMP/conc/sku$i"); done
curl -sS -Z --parallel-max 10 --max-time 60 -X POST -H 'Expect:' \
  -H 'Connection: close' -H 'Content-Type: application/json' \
  --data-binary "{\"sku\":\"RACE-$tag\",\"name\":\"race\",\"unit_price\":1,\"currency\":\"EUR\"}" \
  -w '%{http_code}\n' "${args[@]}" >"$BG_TMP/conc/sku.sum" 2>/dev/null
is "one sku POSTed 10 times at once: one 201, nine 409" "$(sort "$BG_TMP/conc/sku.sum" | uniq -c | tr -s ' ' | tr '\n' ';')" " 1 201; 9 409;"

# ======================================================================
section "cross-worker coherence"
mkproduct PC "SKU$tag-C-OLD" 700 EUR 1000 "Coherent product"
mkinvoice IC "$S1" EUR "[{\"product_id\":$PC,\"quantity\":1}]"
bg_get "/api/invoices/$IC"
icnum=$(jb '.number')
paths=("/api/users/$S1" "/api/users?per_page=100" "/api/invoices/$IC/bill"
  "/api/products/$PC" "/api/products?per_page=100" "/api/invoices/$IC"
  "/api/invoices?customer_id=$S1&per_page=100")
warm_all() {
  local p
  for p in "$@"; do
    if bg_warm "$p"; then ok "warm: $p is hit-l1 on every worker"; else nok "warm: $p is hit-l1 on every worker" "$BG_WARM_MSG"; fi
  done
}
warm_all "${paths[@]}"
bg_get "/api/invoices/$IC/bill"
case $R_CT in text/html*) ok "the bill is text/html" ;; *) nok "the bill is text/html" "Content-Type '$R_CT'" ;; esac
for want in "$icnum" "SKU$tag-C-OLD"; do
  case $R_BODY in *"$want"*) ok "the bill shows $want" ;; *) nok "the bill shows $want" "$(bg_last)" ;; esac
done

NAME1="Coherent Customer $tag"
bg_put "/api/users/$S1" "{\"name\":\"$NAME1\"}"
expect_status "PUT the customer's name -> 200 (worker $R_WORKER)" 200
bg_check_after_write "user: every worker shows the new name" "/api/users/$S1" json ".name == \"$NAME1\""
bg_check_after_write "user list: every worker shows the new name" "/api/users?per_page=100" json \
  "any(.items[]; .id == $S1 and .name == \"$NAME1\")"
bg_check_after_write "bill: every worker shows the customer's new name" "/api/invoices/$IC/bill" text "$NAME1"

warm_all "/api/products/$PC" "/api/products?per_page=100" "/api/invoices/$IC/bill"
bg_put "/api/products/$PC" "{\"name\":\"Renamed product $tag\",\"sku\":\"SKU$tag-C-NEW\"}"
expect_status "PUT the product's name and SKU -> 200 (worker $R_WORKER)" 200
bg_check_after_write "product: every worker shows the new name" "/api/products/$PC" json \
  ".name == \"Renamed product $tag\" and .sku == \"SKU$tag-C-NEW\""
bg_check_after_write "product list: every worker shows the new name" "/api/products?per_page=100" json \
  "any(.items[]; .id == $PC and .name == \"Renamed product $tag\")"
bg_check_after_write "bill: every worker shows the product's new SKU" "/api/invoices/$IC/bill" text "SKU$tag-C-NEW"
bg_check_after_write "bill: no worker shows the old SKU" "/api/invoices/$IC/bill" notext "SKU$tag-C-OLD"

warm_all "/api/invoices/$IC" "/api/invoices?customer_id=$S1&per_page=100" "/api/invoices/$IC/bill"
read -r s d t T <<<"$(line_amounts 3 700 0 1000)"
bg_put "/api/invoices/$IC" "{\"notes\":\"coherent notes $tag\",\"lines\":[{\"product_id\":$PC,\"quantity\":3,\"description\":\"Line rev 2 $tag\"}]}"
expect_status "PUT the invoice's notes and lines -> 200 (worker $R_WORKER)" 200
bg_check_after_write "invoice: every worker shows the new notes and total" "/api/invoices/$IC" json \
  ".notes == \"coherent notes $tag\" and .total == $T and .lines[0].description == \"Line rev 2 $tag\""
bg_check_after_write "invoice list: every worker shows the new notes" "/api/invoices?customer_id=$S1&per_page=100" json \
  "any(.items[]; .id == $IC and .notes == \"coherent notes $tag\" and .total == $T)"
bg_check_after_write "bill: every worker shows the new line" "/api/invoices/$IC/bill" text "Line rev 2 $tag"

# A POST and a DELETE reach every worker's list.
warm_all "/api/products?per_page=100"
mkproduct PN "NEW-$tag" 5 EUR 0
bg_check_after_write "product list after a POST: every worker has it" "/api/products?per_page=100" json \
  "any(.items[]; .id == $PN)"
bg_delete "/api/products/$PN"
expect_status "DELETE the new product -> 204" 204
bg_check_after_write "product list after a DELETE: no worker has it" "/api/products?per_page=100" json \
  "all(.items[]; .id != $PN)"
bg_check_after_write "the deleted product: 404 on every worker" "/api/products/$PN" status 404

# A DELETE reaches every worker: the item and the bill are 404 everywhere.
mkinvoice IDEL "$S1" EUR "$ln1"
warm_all "/api/invoices/$IDEL" "/api/invoices/$IDEL/bill"
bg_delete "/api/invoices/$IDEL"
expect_status "DELETE the warmed invoice -> 204" 204
bg_check_after_write "the deleted invoice: 404 on every worker" "/api/invoices/$IDEL" status 404
bg_check_after_write "its bill: 404 on every worker" "/api/invoices/$IDEL/bill" status 404

# A status change moves an invoice between the filtered lists everywhere.
mkinvoice IST "$S1" EUR "$ln1"
warm_all "/api/invoices?status=draft&customer_id=$S1&per_page=100" "/api/invoices?status=issued&customer_id=$S1&per_page=100"
bg_put "/api/invoices/$IST" '{"status":"issued"}'
expect_status "PUT status issued -> 200" 200
bg_check_after_write "the draft list lost it on every worker" "/api/invoices?status=draft&customer_id=$S1&per_page=100" json \
  "all(.items[]; .id != $IST)"
bg_check_after_write "the issued list has it on every worker" "/api/invoices?status=issued&customer_id=$S1&per_page=100" json \
  "any(.items[]; .id == $IST and .status == \"issued\")"

# One list entry whatever the query's spelling: after warming
# ?per_page=20, the other spellings are hits with the same ETag.
warm_all "/api/products?per_page=20"
bg_get "/api/products?per_page=20"
etag=$R_ETAG
for q in "" "?page=1" "?page=1&per_page=20" "?per_page=20&page=1"; do
  bg_get "/api/products$q"
  case $R_CACHE in hit-l1 | hit-l2) ok "GET /api/products$q shares the entry of ?per_page=20 ($R_CACHE)" ;;
  *) nok "GET /api/products$q shares the entry of ?per_page=20" "X-Cache '$R_CACHE'" ;; esac
  is "GET /api/products$q: same ETag" "$R_ETAG" "$etag"
done

# ======================================================================
section "one computation per key under a burst of misses"
# metric_sum NAME: NAME summed over the workers' /metrics (each worker's
# own; bursts until every worker has answered).
metric_sum() {
  local r=0 f code w _ v sum=0
  declare -A got=()
  while [ $((r * 12)) -lt "$BG_COVER_MAX" ] && [ ${#got[@]} -lt "$BG_WORKERS" ]; do
    r=$((r + 1))
    bg_burst /metrics 12
    while IFS='|' read -r f code w _; do
      [ "$code" = 200 ] && [ -z "${got[$w]:-}" ] || continue
      v=$(awk -v m="$1" '$1 == m { print $2; exit }' "$f")
      got[$w]=${v:-0}
    done <"$BG_TMP/burst/sum"
  done
  [ ${#got[@]} -ge "$BG_WORKERS" ] || {
    echo "only workers ${!got[*]}"
    return
  }
  for w in "${!got[@]}"; do sum=$((sum + ${got[$w]%.*})); done
  echo "$sum"
}
mkproduct PS "STAMP-$tag" 77 EUR 0
c0=$(metric_sum tiercache_computes_total)
args=()
for i in $(seq 1 30); do args+=("$BG_URL/api/products/$PS" -o "$BG_TMP/stamp$i"); done
curl -sS -Z --parallel-max 30 --max-time 30 -H 'Connection: close' \
  -w '%{http_code}|%header{x-worker}|%header{x-cache}\n' "${args[@]}" >"$BG_TMP/stamp.sum" 2>/dev/null
is "30 concurrent GETs of a new product: all 200" "$(cut -d'|' -f1 "$BG_TMP/stamp.sum" | sort | uniq -c | tr -s ' ' | tr '\n' ';')" " 30 200;"
c1=$(metric_sum tiercache_computes_total)
if [[ $c0 =~ ^[0-9]+$ ]] && [[ $c1 =~ ^[0-9]+$ ]]; then
  is "... computed once across all workers (tiercache_computes_total +1; X-Cache: $(cut -d'|' -f3 "$BG_TMP/stamp.sum" | sort | uniq -c | tr -s ' ' | tr '\n' ' '))" \
    "$((c1 - c0))" 1
else
  nok "... computed once across all workers" "cannot read tiercache_computes_total from every worker: '$c0' '$c1'"
fi

# ======================================================================
section "no password hash anywhere"
bg_post /api/users "{\"name\":\"Grace Hopper\",\"email\":\"grace-$tag@example.com\",\"password\":\"$PW2\"}"
expect_status "POST a user with a password -> 201" 201
GR=$(id_of)
expect_jq "role defaults to customer" '.role == "customer"'
bg_get "/api/users/$GR"
bg_get "/api/users/$GR"
bg_get "/api/users?per_page=100"
bg_get "/api/users?page=$(((nusers + 1 + 99) / 100))&per_page=100"
bg_put "/api/users/$GR" '{"name":"Grace B. Hopper"}'
bg_get "/api/users/$GR"
expect_jq "GET user: no password, no hash" '(has("password") or has("password_hash") or has("hash")) | not'
# Every response of the run so far (request lines excluded).
leaks=$(grep -v '^>>> ' "$BG_LOG" | grep -c -F -e '$argon2' -e "$PW1" -e "$PW2" -e billgen-demo)
is "no response contains \$argon2 or a password" "$leaks" 0
leaks=$(cat "$BG_TMP/serve.out" "$BG_TMP/serve.err" | grep -c -F -e '$argon2' -e "$PW1" -e "$PW2" -e billgen-demo)
is "billgen's stdout and stderr hold no password or hash" "$leaks" 0
bg_rcli --scan --pattern "$BG_NS:*" >"$BG_TMP/keys" 2>/dev/null
nkeys=$(wc -l <"$BG_TMP/keys")
[ "$nkeys" -gt 0 ] && ok "Redis holds $nkeys keys under $BG_NS:" || nok "Redis holds keys under $BG_NS:" "none (is TC_NAMESPACE used?)"
grep -q "{user:$GR}" "$BG_TMP/keys" && ok "Redis holds {user:$GR}" ||
  nok "Redis holds {user:$GR}" "no such key among $nkeys: $(head -n 5 "$BG_TMP/keys" | tr '\n' ' ')"
# GET each string (DUMP would compress), the whole of every other type.
while IFS= read -r k; do
  kk=${k//\\/\\\\}
  kk=${kk//\"/\\\"}
  t=$(bg_rcli TYPE "$k" 2>/dev/null)
  case $t in
  string) printf 'GET "%s"\n' "$kk" ;;
  hash) printf 'HGETALL "%s"\n' "$kk" ;;
  list) printf 'LRANGE "%s" 0 -1\n' "$kk" ;;
  set) printf 'SMEMBERS "%s"\n' "$kk" ;;
  zset) printf 'ZRANGE "%s" 0 -1\n' "$kk" ;;
  *) printf 'DUMP "%s"\n' "$kk" ;;
  esac
done <"$BG_TMP/keys" >"$BG_TMP/cmds"
bg_rcli --raw <"$BG_TMP/cmds" >"$BG_TMP/values" 2>&1
grep -q -F "Grace B. Hopper" "$BG_TMP/values" && ok "the values were read (Grace's name is cached)" ||
  nok "the values were read (Grace's name is cached)" "not in $(wc -c <"$BG_TMP/values") bytes of values"
leaks=$(grep -a -c -F -e '$argon2' -e "$PW1" -e "$PW2" -e billgen-demo "$BG_TMP/values")
is "no Redis value contains \$argon2 or a password" "$leaks" 0
grep -a -q -F -e '$argon2' -e "$PW2" "$BG_TMP/keys" && nok "no Redis key name holds a hash" "$(grep -a -F -e '$argon2' "$BG_TMP/keys" | head -n 2)" ||
  ok "no Redis key name holds a hash or a password"

# A deleted user is gone from every worker.
warm_all "/api/users/$GR"
bg_delete "/api/users/$GR"
expect_status "DELETE the warmed user -> 204" 204
bg_check_after_write "the deleted user: 404 on every worker" "/api/users/$GR" status 404

# ======================================================================
section "Redis frozen (SIGSTOP) for 3 s"
# 3 s rather than 2: tiercache declares a silent link dead after
# 2 x listener_ping_ms (1 s by default), so after 3 s every worker's link
# has dropped, its L1 is emptied, and the deletes queued by the writes
# made during the freeze are replayed when it resubscribes. After a
# shorter freeze a link may stay up, and a queued delete then waits for
# its worker's next Redis call: the other workers could serve the old
# value meanwhile (a library property, not checked here).
mkproduct PF "FRZ-$tag" 321 EUR 0 "Before the freeze"
warm_all "/api/products/$PE" "/api/products?per_page=100" "/api/invoices/$IC/bill"
bg_get "/api/products/$PE"
pe_body=$(jb -S -c .)
bg_redis_stop
tstop=$SECONDS
# timed REQ...: runs bg_req, sets R_SECS; answers within 10 s is the bound
# while Redis is frozen (tiercache's timeouts are 100-200 ms).
timed() {
  local t=$SECONDS
  bg_req "$@"
  R_SECS=$((SECONDS - t))
  if [ $R_SECS -le 10 ]; then ok "frozen Redis: $1 $2 answered within 10 s"; else
    nok "frozen Redis: $1 $2 answered within 10 s" "took ${R_SECS}s"
  fi
}
timed GET "/api/products/$PE"
expect_status "frozen Redis: GET item -> 200 (${R_SECS}s)" 200
is "frozen Redis: the item is right" "$(jb -S -c .)" "$pe_body"
timed GET "/api/products?per_page=100"
expect_jq "frozen Redis: GET list -> 200 with the product (${R_SECS}s)" 'any(.items[]; .id == $p)' --argjson p "$PE"
timed GET "/api/invoices/$IC/bill"
expect_status "frozen Redis: GET bill -> 200 (${R_SECS}s)" 200
case $R_BODY in *"Line rev 2 $tag"*) ok "frozen Redis: the bill is right" ;; *) nok "frozen Redis: the bill is right" "$(bg_last)" ;; esac
timed PUT "/api/products/$PF" '{"name":"Renamed while frozen"}'
expect_status "frozen Redis: PUT -> 200 (${R_SECS}s)" 200
timed POST /api/products "{\"sku\":\"FRZ2-$tag\",\"name\":\"Born while frozen\",\"unit_price\":1,\"currency\":\"EUR\"}"
expect_status "frozen Redis: POST -> 201 (${R_SECS}s)" 201
PF2=$(id_of)
while [ $((SECONDS - tstop)) -lt 3 ]; do sleep 0.2; done
bg_redis_cont
# wait_health STATUS SECONDS: /health says STATUS on every worker.
wait_health() {
  local want=$1 end=$((SECONDS + $2)) seen
  while [ $SECONDS -lt $end ]; do
    bg_burst /health 15
    # shellcheck disable=SC2046
    seen=$(jq -r --arg s "$want" 'select(.status == $s) | .worker' \
      $(awk -F'|' '$2 == 200 { print $1 }' "$BG_TMP/burst/sum") 2>/dev/null </dev/null | sort -u | wc -l)
    [ "$seen" -ge "$BG_WORKERS" ] && return 0
    sleep 0.2
  done
  return 1
}
if wait_health ok 15; then ok "after SIGCONT, /health ok on every worker"; else
  nok "after SIGCONT, /health ok on every worker" "last: $(cat "$BG_TMP"/burst/[0-9]* | head -c 300)"
fi
bg_check_after_write "after the freeze: the PUT made while frozen shows everywhere" "/api/products/$PF" json \
  '.name == "Renamed while frozen"'
bg_check_after_write "after the freeze: the POST made while frozen is in every list" "/api/products?per_page=100" json \
  "any(.items[]; .id == $PF2) and any(.items[]; .id == $PF and .name == \"Renamed while frozen\")"

# ======================================================================
section "Redis killed, then restarted"
warm_all "/api/users/$S2" "/api/users?per_page=100" "/api/invoices/$IC/bill" "/api/invoices/$IC"
bg_get "/api/users/$S2"
s2_body=$(jb -S -c .)
bg_redis_kill
if wait_health degraded 10; then ok "Redis killed: /health 200 degraded on every worker"; else
  nok "Redis killed: /health 200 degraded on every worker" "last: $(cat "$BG_TMP"/burst/[0-9]* | head -c 300)"
fi
bg_get /health
expect_jq "Redis killed: /health says configured, not connected or not coherent" \
  '.status == "degraded" and .redis.configured == true and (.redis.connected == false or .redis.coherent == false)'
DOWN='^(bypass|miss)$'
bg_burst "/api/users/$S2" 12
bg_burst_check "Redis down: GET item right, X-Cache bypass|miss" json ". == ($s2_body)" "$DOWN"
bg_burst "/api/users?per_page=100" 12
bg_burst_check "Redis down: GET list right, X-Cache bypass|miss" json "any(.items[]; .id == $S2)" "$DOWN"
bg_burst "/api/invoices/$IC/bill" 12
bg_burst_check "Redis down: GET bill right, X-Cache bypass|miss" text "Line rev 2 $tag" "$DOWN"
bg_post /api/products "{\"sku\":\"DOWN-$tag\",\"name\":\"Born while down\",\"unit_price\":42,\"currency\":\"EUR\"}"
expect_status "Redis down: POST -> 201" 201
PD=$(id_of)
bg_put "/api/users/$S2" "{\"name\":\"Renamed while down $tag\"}"
expect_status "Redis down: PUT -> 200" 200
bg_put "/api/invoices/$IC" "{\"notes\":\"notes while down $tag\"}"
expect_status "Redis down: PUT invoice -> 200" 200
bg_check_after_write "Redis down: the PUT shows on every worker" "/api/users/$S2" json \
  ".name == \"Renamed while down $tag\"" "$DOWN"
bg_check_after_write "Redis down: the POST is in every list" "/api/products?per_page=100" json \
  "any(.items[]; .id == $PD)" "$DOWN"
bg_check_after_write "Redis down: the new item answers everywhere" "/api/products/$PD" json ".unit_price == 42" "$DOWN"
if bg_redis_restart; then ok "Redis restarted on port $REDIS_PORT"; else bg_die "Redis did not restart on port $REDIS_PORT"; fi
if wait_health ok 15; then ok "Redis back: /health ok on every worker within 15 s"; else
  nok "Redis back: /health ok on every worker within 15 s" "last: $(cat "$BG_TMP"/burst/[0-9]* | head -c 300)"
fi
bg_check_after_write "Redis back: the name written while down, everywhere" "/api/users/$S2" json \
  ".name == \"Renamed while down $tag\""
bg_check_after_write "Redis back: the list has the name written while down" "/api/users?per_page=100" json \
  "any(.items[]; .id == $S2 and .name == \"Renamed while down $tag\")"
bg_check_after_write "Redis back: the invoice's notes written while down" "/api/invoices/$IC" json \
  ".notes == \"notes while down $tag\""
bg_check_after_write "Redis back: the product born while down is listed" "/api/products?per_page=100" json \
  "any(.items[]; .id == $PD)"
for p in "/api/users/$S2" "/api/users?per_page=100" "/api/invoices/$IC/bill"; do
  if bg_warm "$p"; then ok "Redis back: $p is a hit (hit-l1) on every worker again"; else
    nok "Redis back: $p is a hit on every worker again" "$BG_WARM_MSG"
  fi
done
bg_put "/api/users/$S2" "{\"name\":\"Renamed after return $tag\"}"
bg_check_after_write "Redis back: a new PUT is coherent again" "/api/users/$S2" json \
  ".name == \"Renamed after return $tag\""

# ======================================================================
section "a worker killed is restarted"
kids=$(bg_children "$BG_PID")
is "the serve parent has $BG_WORKERS children" "$(echo "$kids" | grep -c .)" "$BG_WORKERS"
victim=$(echo "$kids" | head -n1)
kill -KILL "$victim"
i=0
seen=
end=$((SECONDS + 30))
while [ $SECONDS -lt $end ]; do
  sleep 0.2
  bg_alive "$victim" && continue
  [ "$(bg_children "$BG_PID" | grep -c .)" -eq "$BG_WORKERS" ] || continue
  bg_burst /health 15
  # shellcheck disable=SC2046,SC2086
  seen=$(printf '%s\n' $seen $(bg_burst_workers) | sort -u | grep . | tr '\n' ' ')
  [ "$(echo "$seen" | wc -w)" -eq "$BG_WORKERS" ] && break
done
if [ "$(echo "$seen" | wc -w)" -eq "$BG_WORKERS" ]; then ok "a SIGKILLed worker is replaced: $BG_WORKERS workers answer again"; else
  nok "a SIGKILLed worker is replaced" "children: $(bg_children "$BG_PID" | tr '\n' ' '); workers answering: $(bg_burst_workers)"
fi
bg_burst "/api/users/$S2" 12
bg_burst_check "after the restart, data still right" json ".name == \"Renamed after return $tag\""

# ======================================================================
section "SIGTERM"
# Requests in flight when SIGTERM arrives finish whole; later ones may be
# refused (no answer), never answered in part or with an error.
args=()
for i in $(seq 1 12); do args+=("$BG_URL/api/invoices?per_page=100" -o "$BG_TMP/term$i"); done
curl -sS -Z --parallel-max 6 --max-time 30 -H 'Connection: close' \
  -w '%{http_code}|%{filename_effective}|%{exitcode}\n' "${args[@]}" >"$BG_TMP/term.sum" 2>/dev/null &
cpid=$!
sleep 0.05
if bg_serve_stop; then ok "SIGTERM: the serve parent exits 0 and its workers are gone"; else
  nok "SIGTERM: the serve parent exits 0 and its workers are gone" "$BG_STOP_MSG"
fi
wait "$cpid" 2>/dev/null
badterm=$(while IFS='|' read -r code f x; do
  case $code in
  000) ;;
  200) [ "$x" = 0 ] && jq -e '.items' "$f" >/dev/null 2>&1 || echo "200 but cut (curl exit $x)" ;;
  *) echo "status $code" ;;
  esac
done <"$BG_TMP/term.sum" | head -n 3 | tr '\n' ';')
is "requests around SIGTERM: whole answers or none" "$badterm" ""
: >"$BG_TMP/r.b"
curl -sS --max-time 5 -o /dev/null "$BG_URL/health" 2>/dev/null && nok "nothing listens after SIGTERM" "$BG_URL/health answered" ||
  ok "nothing listens after SIGTERM"

bg_check_stderr

# ======================================================================
section "configuration"
# --no-cache: the baseline, bypass on every cached route.
bg_serve_start --no-cache
bg_burst "/api/users/$S2" 6
bg_burst_check "--no-cache: GET item bypasses the cache" json ".id == $S2" '^bypass$'
bg_burst "/api/invoices?per_page=5" 6
bg_burst_check "--no-cache: GET list bypasses the cache" json '.per_page == 5' '^bypass$'
bg_burst "/api/invoices/$IC/bill" 6
bg_burst_check "--no-cache: GET bill bypasses the cache" text "$icnum" '^bypass$'
bg_serve_stop && ok "--no-cache: stops on SIGTERM with 0" || nok "--no-cache: stops on SIGTERM with 0" "$BG_STOP_MSG"
bg_check_stderr
# REDIS_URL=none: no Redis, so no cache at all, and stderr says so.
BG_REDIS_URL=none bg_serve_start
bg_burst "/api/users/$S2" 6
bg_burst_check "REDIS_URL=none: GET item bypasses the cache" json ".id == $S2" '^bypass$'
bg_burst "/api/invoices/$IC/bill" 6
bg_burst_check "REDIS_URL=none: GET bill bypasses the cache" text "$icnum" '^bypass$'
bg_get /health
expect_jq "REDIS_URL=none: /health ok, Redis not configured" '.status == "ok" and .redis.configured == false'
if [ -s "$BG_TMP/serve.err" ]; then ok "REDIS_URL=none: says so on stderr ($(head -n1 "$BG_TMP/serve.err" | cut -c1-100))"; else
  nok "REDIS_URL=none: says so on stderr" "stderr is empty"
fi
bg_serve_stop && ok "REDIS_URL=none: stops on SIGTERM with 0" || nok "REDIS_URL=none: stops on SIGTERM with 0" "$BG_STOP_MSG"
bg_check_stderr
# A malformed variable stops the service at start, with the library's
# message; so do out-of-range options.
TC_L1_MAX_ENTRIES=12x REDIS_URL="redis://127.0.0.1:$REDIS_PORT" \
  timeout 20 "$BG_BIN" serve --port 0 --workers 1 --db "$BG_DB" >"$BG_TMP/bad.out" 2>"$BG_TMP/bad.err"
rc=$?
if [ $rc -ne 0 ] && [ $rc -ne 124 ] && grep -q TC_L1_MAX_ENTRIES "$BG_TMP/bad.err"; then
  ok "TC_L1_MAX_ENTRIES=12x: serve stops at start ($rc), naming the variable"
else
  nok "TC_L1_MAX_ENTRIES=12x: serve stops at start, naming the variable" "exit $rc; stderr: $(head -c 300 "$BG_TMP/bad.err")"
fi
for w in 0 65; do
  timeout 20 "$BG_BIN" serve --port 0 --workers $w --db "$BG_DB" >"$BG_TMP/bad.out" 2>"$BG_TMP/bad.err"
  rc=$?
  if [ $rc -ne 0 ] && [ $rc -ne 124 ]; then ok "serve --workers $w is refused ($rc)"; else
    nok "serve --workers $w is refused" "exit $rc"
  fi
done

bg_report_workers
echo "# run took $((SECONDS - T0)) s"
bg_summary
