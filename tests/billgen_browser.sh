#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# billgen's bill (GET /api/invoices/<id>/bill) printed by a real browser:
# headless chromium prints the page to PDF, pdftotext reads it back, and
# the text must hold the invoice number, the customer's name, every
# line's description and the four totals in the currency's minor units
# (EUR 1234 -> 12.34, JPY 941 -> 941). After a PUT of the invoice (notes,
# lines) or of the customer's name, a fresh print shows the new data.
# SKIP (77) when chromium or pdftotext is missing or chromium cannot
# print a page here; never a pass without a print.
# shellcheck disable=SC2016,SC2015,SC2119 # jq programs in single quotes; A && ok || nok
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
set -u
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=billgen_lib.sh
. "$here/billgen_lib.sh"

bg_need_tools curl jq redis-server redis-cli timeout pdftotext
CHROMIUM=${BG_CHROMIUM:-}
if [ -z "$CHROMIUM" ]; then
  for c in chromium chromium-browser google-chrome; do
    command -v "$c" >/dev/null 2>&1 && CHROMIUM=$c && break
  done
fi
[ -n "$CHROMIUM" ] || bg_skip "no chromium"
bg_init
bg_need_binary
BG_WORKERS=2
tag=$$

# render URL NAME: prints URL to $BG_TMP/NAME.pdf and its text to
# $BG_TMP/NAME.txt; 1 when chromium fails. A profile and HOME of its
# own each time, so nothing is cached between prints. Runs as root here,
# hence --no-sandbox.
render() {
  local url=$1 name=$2
  rm -f "$BG_TMP/$name.pdf" "$BG_TMP/$name.txt"
  mkdir -p "$BG_TMP/home-$name"
  HOME="$BG_TMP/home-$name" XDG_CONFIG_HOME="$BG_TMP/home-$name" \
    XDG_CACHE_HOME="$BG_TMP/home-$name" \
    timeout -k 5 60 "$CHROMIUM" --headless --no-sandbox --disable-gpu \
    --disable-dev-shm-usage --no-first-run --no-default-browser-check \
    --user-data-dir="$BG_TMP/profile-$name" --no-pdf-header-footer \
    --print-to-pdf="$BG_TMP/$name.pdf" "$url" >"$BG_TMP/$name.chromium.log" 2>&1
  local rc=$?
  [ -s "$BG_TMP/$name.pdf" ] || {
    RENDER_MSG="chromium exit $rc, no PDF: $(grep -v -e dbus -e 'unexpected operator' "$BG_TMP/$name.chromium.log" | tail -n 3 | tr '\n' ' ')"
    return 1
  }
  pdftotext -enc UTF-8 "$BG_TMP/$name.pdf" "$BG_TMP/$name.raw" 2>/dev/null || {
    RENDER_MSG="pdftotext failed on the PDF"
    return 1
  }
  # A table cell may wrap: one space for every run of white space. And
  # pdftotext joins a word hyphenated at a line's end: text checks look
  # at a copy without white space or hyphens (.sq).
  tr -s '[:space:]' ' ' <"$BG_TMP/$name.raw" >"$BG_TMP/$name.txt"
  squeeze <"$BG_TMP/$name.raw" >"$BG_TMP/$name.sq"
}
squeeze() { tr -d '[:space:]-'; }

# Can chromium print at all here? If not: SKIP, not a pass.
printf '<!doctype html><meta charset="utf-8"><title>t</title><p>smoke-%s Zoë</p>\n' "$tag" >"$BG_TMP/smoke.html"
render "file://$BG_TMP/smoke.html" smoke || bg_skip "chromium cannot print here: $RENDER_MSG"
grep -qF "smoke-$tag Zoë" "$BG_TMP/smoke.txt" ||
  bg_skip "chromium printed, but pdftotext does not read the smoke page back: $(head -c 200 "$BG_TMP/smoke.txt")"
ok "chromium prints a page to PDF and pdftotext reads it back"

bg_redis_start
bg_seed 3 3 3
bg_serve_start
ok "billgen serve listens on $BG_URL"

# has NAME TEXTFILE STRING: the printed text contains STRING.
has() {
  if grep -qF -- "$(printf '%s' "$3" | squeeze)" "$BG_TMP/$2.sq"; then ok "$1"; else
    nok "$1" "'$3' not in the printed text: $(head -c 600 "$BG_TMP/$2.txt")"
  fi
}
hasnt() {
  if ! grep -qF -- "$(printf '%s' "$3" | squeeze)" "$BG_TMP/$2.sq"; then ok "$1"; else
    nok "$1" "'$3' is still in the printed text"
  fi
}
# amount NAME TEXTFILE NUMBER: NUMBER stands alone (not inside a longer
# number) in the printed text.
amount() {
  local re="(^|[^0-9.,])${3//./\\.}([^0-9]|$)"
  if grep -Eq -- "$re" "$BG_TMP/$2.txt"; then ok "$1"; else
    nok "$1" "no amount $3 in the printed text: $(head -c 600 "$BG_TMP/$2.txt")"
  fi
}
noamount() {
  local re="(^|[^0-9.,])${3//./\\.}([^0-9]|$)"
  if ! grep -Eq -- "$re" "$BG_TMP/$2.txt"; then ok "$1"; else
    nok "$1" "$3 is in the printed text"
  fi
}
# bill ID NAME: prints the bill of invoice ID.
bill() {
  if render "$BG_URL/api/invoices/$1/bill" "$2"; then
    ok "chromium prints the bill of invoice $1 ($2)"
  else
    nok "chromium prints the bill of invoice $1 ($2)" "$RENDER_MSG"
    : >"$BG_TMP/$2.txt"
    : >"$BG_TMP/$2.sq"
  fi
}
# mkproduct VAR SKU PRICE CURRENCY TAX_BP NAME
mkproduct() {
  local var=$1
  shift
  bg_post /api/products "{\"sku\":\"$1\",\"name\":\"$5\",\"unit_price\":$2,\"currency\":\"$3\",\"tax_rate_bp\":$4}"
  expect_status "POST product $1 -> 201" 201
  printf -v "$var" '%s' "$(jb .id)"
}

CUST="Zoë Ångström $tag"
bg_post /api/users "{\"name\":\"$CUST\",\"email\":\"zoe-$tag@example.com\",\"password\":\"browser-pass-$tag\"}"
expect_status "POST the customer -> 201" 201
C=$(jb .id)
mkproduct PA "BRW-$tag-A" 1234 EUR 2000 "Brass hinge $tag"
mkproduct PB "BRW-$tag-B" 500 EUR 2000 "Bolt pack $tag"
mkproduct PJ "BRW-$tag-J" 450 JPY 1000 "Tatami mat $tag"
DESC_B="Bolts & nuts <M8> $tag"

# EUR: line A 1 x 12.34 at 20 % -> 12.34 + 2.47 tax; line B 3 x 5.00, 10 %
# off (1.50), 20 % tax on 13.50 (2.70). Sums 27.34, 1.50, 5.17, 31.01.
bg_post /api/invoices "{\"customer_id\":$C,\"currency\":\"EUR\",\"lines\":[{\"product_id\":$PA,\"quantity\":1},{\"product_id\":$PB,\"quantity\":3,\"discount_bp\":1000,\"description\":\"$DESC_B\"}]}"
expect_status "POST the EUR invoice -> 201" 201
expect_jq "EUR invoice amounts 2734 150 517 3101" '.subtotal == 2734 and .discount == 150 and .tax == 517 and .total == 3101'
IE=$(jb .id)
NE=$(jb .number)
bill "$IE" eur
has "EUR bill: the invoice number" eur "$NE"
has "EUR bill: the customer's name (UTF-8)" eur "$CUST"
has "EUR bill: line 1's description (the product's name)" eur "Brass hinge $tag"
has "EUR bill: line 2's description, HTML-escaped as it should be" eur "$DESC_B"
amount "EUR bill: subtotal 27.34" eur 27.34
amount "EUR bill: discount 1.50" eur 1.50
amount "EUR bill: tax 5.17" eur 5.17
amount "EUR bill: total 31.01" eur 31.01
noamount "EUR bill: amounts in cents are not printed raw (3101)" eur 3101

# JPY has no minor unit: 2 x 450, 5 % off (45), 10 % tax on 855 = 85.5 -> 86.
bg_post /api/invoices "{\"customer_id\":$C,\"currency\":\"JPY\",\"lines\":[{\"product_id\":$PJ,\"quantity\":2,\"discount_bp\":500}]}"
expect_status "POST the JPY invoice -> 201" 201
expect_jq "JPY invoice amounts 900 45 86 941" '.subtotal == 900 and .discount == 45 and .tax == 86 and .total == 941'
IJ=$(jb .id)
NJ=$(jb .number)
bill "$IJ" jpy
has "JPY bill: the invoice number" jpy "$NJ"
has "JPY bill: the customer's name" jpy "$CUST"
has "JPY bill: the line's description" jpy "Tatami mat $tag"
amount "JPY bill: subtotal 900" jpy 900
amount "JPY bill: discount 45" jpy 45
amount "JPY bill: tax 86" jpy 86
amount "JPY bill: total 941" jpy 941
noamount "JPY bill: no decimal point on yen (9.41)" jpy 9.41
noamount "JPY bill: no decimal point on yen (941.00)" jpy 941.00

# A PUT of the notes and lines: a fresh print shows them.
bg_put "/api/invoices/$IE" "{\"notes\":\"Deliver to dock $tag\",\"lines\":[{\"product_id\":$PA,\"quantity\":2,\"description\":\"Hinges, second version $tag\"}]}"
expect_status "PUT the EUR invoice's notes and lines -> 200" 200
# 2 x 12.34 = 24.68, tax 4.936 -> 4.94, total 29.62.
expect_jq "new amounts 2468 0 494 2962" '.subtotal == 2468 and .discount == 0 and .tax == 494 and .total == 2962'
bill "$IE" eur2
has "after the PUT: the notes" eur2 "Deliver to dock $tag"
has "after the PUT: the new line" eur2 "Hinges, second version $tag"
hasnt "after the PUT: the old line is gone" eur2 "Bolts & nuts <M8> $tag"
amount "after the PUT: subtotal 24.68" eur2 24.68
amount "after the PUT: tax 4.94" eur2 4.94
amount "after the PUT: total 29.62" eur2 29.62
noamount "after the PUT: the old total 31.01 is gone" eur2 31.01

# A PUT of the customer's name: a fresh print of both bills shows it.
CUST2="Zoë Renamed-Ångström $tag"
bg_put "/api/users/$C" "{\"name\":\"$CUST2\"}"
expect_status "PUT the customer's name -> 200" 200
bill "$IE" eur3
has "after renaming the customer: the new name on the EUR bill" eur3 "$CUST2"
hasnt "after renaming the customer: the old name is gone" eur3 "Zoë Ångström $tag"
bill "$IJ" jpy2
has "after renaming the customer: the new name on the JPY bill" jpy2 "$CUST2"

bg_serve_stop && ok "billgen stops on SIGTERM with 0" || nok "billgen stops on SIGTERM with 0" "$BG_STOP_MSG"
bg_check_stderr
bg_report_workers
bg_summary
