#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
# tc-bench runs end to end, briefly (--smoke), and its summary has one
# row per expected figure, each with numbers in it; the CSV files (and,
# with gnuplot, the PNGs) are written. No timing is asserted. What is
# exact is: the arc-oltp hit ratios reproduce the published ones (when
# the traces are beside the source tree) and the L1 byte bound holds.
# billgen runs when examples/billgen/billgen is built and wrk is
# installed (its rows are then expected, and its cache must save SQLite
# queries); otherwise tc-bench must say SKIP. cluster starts a private
# Redis Cluster and kills one of its masters; its Sentinel failover is
# left out of --smoke, which must say SKIP. faults runs every fault of
# tests/faults.h with a 300 ms hold.
set -eu
command -v redis-server >/dev/null || { echo "no redis-server: skipped"; exit 77; }
bench="$(cd "$top_builddir" && pwd)/bench/tc-bench"
srcdir="$(cd "$top_srcdir" && pwd)"
traces="$srcdir/../shared/traces"
billgen="$(cd "$top_builddir" && pwd)/examples/billgen/billgen"
[ -x "$bench" ] || { echo "FAIL: no $bench"; exit 1; }
have_billgen=0
[ -x "$billgen" ] && command -v wrk >/dev/null && have_billgen=1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"

"$bench" --smoke --threads 3 --srcdir "$srcdir" --traces "$traces" \
  --billgen "$billgen" >stdout.txt || {
  rc=$?; cat stdout.txt; echo "FAIL: tc-bench --smoke exited with $rc"; exit 1; }
cat stdout.txt
sum=bench/results/summary.tsv
[ -f "$sum" ] || { echo "FAIL: no $sum"; exit 1; }

# The rows every run has.
expected="
memory bytes_per_entry_64B_rss
memory bytes_per_entry_64B_vs_payload
memory byte_bound_max_l1_bytes
memory byte_bound_rss_growth
l1 get_1t_ops_s_vs_bare
l1 get_1t_ops_s_vs_mutex_lru
l1 get_1t_lru_ops_s
l1 get_1t_lfu_ops_s
l1 get_1t_tinylfu_ops_s
l1 get_2t_hotkey_scaling_vs_1t
l1 get_with_1t_ops_s_vs_bare
l1 get_with_2t_hotkey_scaling_vs_1t"
# --threads 3: a row of each kind for 2 and 3 threads.
for t in 2 3; do
  for m in get_${t}t_ops_s_vs_bare get_${t}t_scaling_vs_1t \
      get_with_${t}t_scaling_vs_1t bare_${t}t_scaling_vs_1t \
      mutex_lru_${t}t_scaling_vs_1t; do
    expected="$expected
l1 $m"
  done
done
for sock in tcp unix; do
  for size in 64B 1KiB 16KiB; do
    for p in p50 p99; do
      expected="$expected
l2 get_${sock}_${size}_${p}_us"
    done
  done
done
expected="$expected
l2 mget_100_us
l2 get_x100_us
l2 warm_100k_keys_s
l2 warm_100k_keys_per_s"
for size in 64B 1KiB 16KiB; do
  expected="$expected
set set_tcp_${size}_ops_s"
done
for codec in zstd lz4; do
  for size in 1KiB 4KiB 16KiB 64KiB; do
    for m in ratio pack_bytes_s unpack_bytes_s; do
      expected="$expected
compress ${codec}_${size}_${m}"
    done
  done
done
for codec in none zstd lz4; do
  expected="$expected
compress get_16KiB_${codec}_p50_us"
done
for mode in tracking channel; do
  for p in p50 p99 p999; do
    expected="$expected
coherence ${mode}_lag_${p}_us"
  done
done
for m in flush_redis_gets revalidate_redis_gets revalidate_getranges \
    revalidate_s; do
  expected="$expected
coherence reconnect_$m"
done
expected="$expected
stampede fetch_16x1_computes
stampede fetch_16x1_wait_p99_us"
for m in get_64B_p50_us get_64B_p50_vs_single_us get_64B_p99_us \
    get_64B_p99_vs_single_us set_1t_ops_s set_1t_vs_single_ops_s \
    set_4t_ops_s set_4t_vs_single_ops_s tracking_lag_p50_us \
    tracking_lag_p50_vs_single_us tracking_lag_p99_us \
    tracking_lag_p99_vs_single_us failover_cluster_s; do
  expected="$expected
cluster $m"
done
for f in kill kill_aof freeze pause kill_normal kill_pubsub maxmemory \
    flushall; do
  for m in failed_ops slowest_op_us recovery_s stale_during stale_after \
      worst_stale_s; do
    expected="$expected
faults ${f}_${m}"
  done
done
expected="$expected
faults replay_queue_us
faults replay_queue_slowest_del_us"
if [ $have_billgen -eq 1 ]; then
  for m in item_cached_rps item_cached_vs_uncached item_cached_vs_static \
      health_vs_static list_cached_rps list_cached_vs_uncached \
      item_cached_p99_us item_uncached_p99_us \
      list_cached_p99_us list_uncached_p99_us \
      queries_per_request_item_cached queries_per_request_item_uncached \
      queries_per_request_list_cached queries_per_request_list_uncached \
      queries_per_request_health; do
    expected="$expected
billgen $m"
  done
fi

# Hit ratios: the default traces when they are there, else synthetic
# ones. Sizes other than arc-oltp's are fractions of the trace's keys:
# five rows a trace and policy (lru, lfu, tinylfu).
patterns=""
if [ -f "$traces/arc-oltp.gz" ]; then
  for n in 250 1000 2000; do
    expected="$expected
ratio arc-oltp_lru_${n}_hit_pct
ratio arc-oltp_lfu_${n}_hit_pct
ratio arc-oltp_tinylfu_${n}_hit_pct
ratio arc-oltp_lru_${n}_vs_published
ratio arc-oltp_opt_${n}_vs_published"
  done
  for t in lirs-gli lirs-multi1; do
    [ -f "$traces/$t.gz" ] && patterns="$patterns $t"
  done
else
  patterns="syn-zipf0.99 syn-loop3000 syn-scan-zipf"
fi

status=0
fail() { echo "FAIL: $*"; status=1; }

# Every row: five fields, numbers where numbers belong.
awk -F'\t' 'NR > 1 && (NF != 5 || $3 !~ /^-?[0-9.]+$/ ||
  $4 !~ /^-?[0-9.]+$/ || $5 !~ /^-?[0-9.]+$/) { print "bad row: " $0; bad = 1 }
  END { exit bad }' "$sum" || fail "malformed rows in $sum"

count=0
while read -r scen metric; do
  [ -n "$scen" ] || continue
  count=$((count + 1))
  n=$(awk -F'\t' -v s="$scen" -v m="$metric" '$1 == s && $2 == m' "$sum" | wc -l)
  [ "$n" -eq 1 ] || fail "$scen $metric: $n rows, want 1"
done <<EOF
$expected
EOF
for t in $patterns; do
  for p in lru lfu tinylfu; do
    count=$((count + 5))
    n=$(awk -F'\t' -v t="$t" -v p="$p" '$1 == "ratio" &&
      index($2, t "_" p "_") == 1 && $2 ~ /_hit_pct$/' "$sum" | wc -l)
    [ "$n" -eq 5 ] || fail "ratio $t $p: $n hit-ratio rows, want 5"
  done
done
rows=$(($(wc -l < "$sum") - 1))
[ "$rows" -eq "$count" ] || fail "$rows rows in $sum, want $count"

# Exact figures: the published arc-oltp ratios, to the hundredth, and
# the byte bound.
awk -F'\t' '$2 ~ /_vs_published$/ { d = $3 - $4; if (d < 0) d = -d;
  if (d >= 0.005) { print $2 ": " $3 " vs " $4; bad = 1 } }
  $2 == "byte_bound_max_l1_bytes" && $3 + 0 > $4 + 0 {
  print "byte bound exceeded: " $3 " > " $4; bad = 1 }
  END { exit bad }' "$sum" || fail "exact figures differ"

if [ $have_billgen -eq 1 ]; then
  # The cache saves queries: fewer per cached GET than per uncached one.
  awk -F'\t' '$1 == "billgen" && $2 ~ /^queries_per_request_(item|list)_cached$/ &&
    !($3 >= 0 && $3 + 0 < $4 + 0) { print $2 ": " $3 " vs " $4 " uncached";
    bad = 1 } END { exit bad }' "$sum" || fail "billgen: the cache saves no queries"
  [ -s bench/results/billgen.csv ] || fail "no bench/results/billgen.csv"
else
  grep -q '^billgen: SKIP: ' stdout.txt || fail "billgen absent, but no SKIP line"
fi

grep -q '^cluster: SKIP: the Sentinel failover' stdout.txt ||
  fail "cluster: no SKIP line for the Sentinel failover"
for f in l1 l2_cdf coherence_cdf ratio memory cluster faults; do
  [ -s "bench/results/$f.csv" ] || fail "no bench/results/$f.csv"
done
if command -v gnuplot >/dev/null; then
  for f in l1 l2_cdf coherence_cdf ratio; do
    [ -s "bench/results/$f.png" ] || fail "no bench/results/$f.png"
  done
fi
[ $status -eq 0 ] && echo "ok: $rows summary rows, CSV files and plots"
exit $status
