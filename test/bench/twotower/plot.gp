# Validation Recall@20 against cumulative training seconds, one line per method
# (gnuplot -e "datafile=...; outfile=..." plot.gp; datafile lines: method seconds recall)
set terminal pngcairo size 900,560 noenhanced font ",11"
set output outfile
set title "recsys.train_two_tower: validation Recall@20 vs training time (dim 32, one core)"
set xlabel "training seconds (cumulative over epochs)"
set ylabel "Recall@20 (warm held-out pairs, every item ranked)"
set key bottom right box opaque
set grid
plot for [m in "sogram sagram sampled exact"] sprintf("< grep '^%s ' %s", m, datafile) using 2:3 with linespoints lw 2 title m
