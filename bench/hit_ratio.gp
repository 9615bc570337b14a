# SPDX-License-Identifier: BSD-3-Clause
# tc-bench: hit ratio against cache size per trace, for each policy the
# library has, beside Belady's optimum.
# Run by tc-bench with: in, out, traces (names, space-separated).
# Columns: trace,policy,entries,requests,hits,hit_pct,opt_pct,frac_of_opt
n = words(traces)
cols = n < 3 ? n : 3
rows = (n + cols - 1) / cols
set terminal pngcairo size 420*cols,400*rows noenhanced
set output out
set datafile separator ','
set multiplot layout rows,cols title 'Hit ratio vs cache size (OPT = Belady)'
set logscale x
set xlabel 'entries (log)'
set ylabel 'hit ratio %'
set yrange [0:100]
set key below horizontal maxrows 2 samplen 2 font ',9'
set grid
policies = 'lru lru-16shards lfu tinylfu opt'
ptitles = "'LRU (1 shard)' 'LRU (16 shards)' 'LFU' 'W-TinyLFU' 'OPT'"
do for [t=1:n] {
    set title word(traces, t)
    plot for [k=1:words(policies)] in using \
        (strcol(1) eq word(traces, t) && strcol(2) eq word(policies, k) \
         ? $3 : NaN):6 with linespoints lw 2 pt 7 lc k \
        dt 1 + (k == 2) title word(ptitles, k)
}
unset multiplot
