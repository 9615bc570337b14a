# SPDX-License-Identifier: BSD-3-Clause
# tc-bench: L1 hit throughput against threads, beside its floors.
# Run by tc-bench: gnuplot -e "in='bench/results/l1.csv'; out='....png'"
# Columns: series,threads,median_ops_s,min_ops_s,max_ops_s
set terminal pngcairo size 800,500 noenhanced
set output out
set datafile separator ','
set title 'L1 hits: medians over trials, bars = min..max'
set xlabel 'threads (on 2 cores, more than 2 are oversubscribed)'
set ylabel 'million lookups per second'
set key top left
set grid
set xtics 1
set offsets 0.25, 0.25, 0, 0
set yrange [0:*]
kinds = 'bare mutex+LRU tc_get tc_get_with'
titles = "'bare uthash (no lock)' 'global mutex + LRU' 'tc_get + release' 'tc_get_with (in place)'"
sel(k) = strcol(1) eq word(kinds, k)
plot for [k=1:4] in using 2:(sel(k) ? $3/1e6 : NaN) \
       with linespoints lw 2 pt 7 lc k title word(titles, k), \
     for [k=1:4] in using 2:(sel(k) ? $3/1e6 : NaN):($4/1e6):($5/1e6) \
       with yerrorbars lc k pt 0 notitle
