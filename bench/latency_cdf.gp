# SPDX-License-Identifier: BSD-3-Clause
# tc-bench: latency distributions, each figure beside its floor (dashed),
# drawn as the fraction of requests slower than x on a log scale, so that
# the tail is readable: p50 at 0.5, p99 at 0.01, p99.9 at 0.001.
# Run by tc-bench with: in, out, title, n (panels), and per panel i
# t<i> (its name) and s<i> (its series, space-separated, in pairs:
# the figure, then its floor). Columns: series,fraction,us
set terminal pngcairo size 1000,420*n noenhanced
set output out
set datafile separator ','
set multiplot layout n,1 title title
set logscale xy
set xlabel 'microseconds (log)'
set ylabel 'fraction slower (log)'
set ytics ('all' 1, 'p50' 0.5, 'p90' 0.1, 'p99' 0.01, 'p99.9' 0.001, \
           'p99.99' 0.0001)
set yrange [0.0001:1.05]
set key top right
set grid
isfloor(w) = strstrt(w, 'raw') > 0
do for [p=1:n] {
    s = value(sprintf('s%d', p))
    set title value(sprintf('t%d', p))
    plot for [i=1:words(s)] in \
        using (strcol(1) eq word(s, i) ? $3 : NaN):(1 - $2) with lines lw 2 \
        lc ((i - 1) / 2 + 1) dt 1 + isfloor(word(s, i)) \
        title word(s, i)
}
unset multiplot
