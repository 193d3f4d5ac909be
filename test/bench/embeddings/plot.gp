# Recall@20 against cumulative training seconds, one line per method
# (gnuplot -e "datafile=...; outfile=...; pop=...; methods='als sogram ...'" plot.gp)
set terminal pngcairo size 900,560 noenhanced font ",11"
set output outfile
set title "recsys.train_embeddings: Recall@20 vs training time (dim 64, 2-core machine)"
set xlabel "training seconds (cumulative over epochs)"
set ylabel "Recall@20 (most recent 20% held out)"
set key center right box opaque
set grid
plot for [m in methods] sprintf("< grep '^%s ' %s", m, datafile) using 2:3 with linespoints lw 2 title m, \
	pop with lines dt 2 lc rgb "gray40" title "popularity"
