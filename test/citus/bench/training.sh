#!/bin/bash
# Distributed ALS training against single-node training on the same data, on
# the cluster of test/harness/with_citus.sh (coordinator + 2 workers):
#   make bench-citus   (or: bash test/harness/with_citus.sh run bash test/citus/bench/training.sh)
# For each size: seconds per epoch of the aggregate engine over a local table
# on the coordinator and over the same rows distributed by user, and the peak
# resident memory (VmHWM) of the coordinator's backend for each training, its
# shared memory at the end (RssShmem: shared buffers it touched, including the
# store's placement on the coordinator), and their difference (its own memory).
set -euo pipefail
sizes=${SIZES:-"10000 40000"}	# users; about 10 interactions each, 2,000 items
dim=${DIM:-16}
epochs=${EPOCHS:-3}
q() { psql -X -q -v ON_ERROR_STOP=1 -At "$@"; }
printf '%-8s %-12s %-11s %-13s %-10s %-10s %-10s %s\n' users interactions table engine s/epoch VmHWM_kB RssShmem_kB own_kB
for n in $sizes; do
	q >/dev/null <<-SQL
		SET client_min_messages = warning;
		DROP TABLE IF EXISTS bench_loc, bench_dist;
		CREATE TABLE bench_loc (user_id bigint, item_id bigint);
		INSERT INTO bench_loc SELECT u, 1 + (u * 7919 + j * j * 104729 + j) % 2000
			FROM generate_series(1, $n) u, generate_series(1, 5 + u % 11) j;
		SET citus.shard_count = 8;
		CREATE TABLE bench_dist (LIKE bench_loc);
		SELECT create_distributed_table('bench_dist', 'user_id');
		INSERT INTO bench_dist SELECT * FROM bench_loc;
		VACUUM ANALYZE bench_loc; VACUUM ANALYZE bench_dist;
	SQL
	rows=$(q -c 'SELECT count(*) FROM bench_loc')
	for t in bench_loc bench_dist; do
		for engine in aggregate memory; do
			[ "$t" = bench_loc ] || [ "$engine" = aggregate ] || continue
			# a fresh backend per training: its VmHWM is this training's peak
			out=$(q <<-SQL
				SET client_min_messages = warning;
				SELECT count(*) FROM recsys.train_embeddings('bench_$t', '$t', dim => $dim, epochs => $epochs,
					options => '{"engine": "$engine"}') \g /dev/null
				SELECT round(avg((e->>'seconds')::float8)::numeric, 2) FROM recsys.models,
					jsonb_array_elements(metrics->'log') e WHERE name = 'bench_$t';
				SELECT (regexp_match(st, 'VmHWM:\s+(\d+)'))[1], (regexp_match(st, 'RssShmem:\s+(\d+)'))[1],
					(regexp_match(st, 'VmHWM:\s+(\d+)'))[1]::bigint - (regexp_match(st, 'RssShmem:\s+(\d+)'))[1]::bigint
				FROM pg_read_file('/proc/' || pg_backend_pid() || '/status') st;
				SELECT recsys.drop_model('bench_$t') \g /dev/null
			SQL
			)
			printf '%-8s %-12s %-11s %-13s %-10s %-10s %-10s %s\n' "$n" "$rows" "$t" "$engine" $(echo "$out" | tr '\n|' '  ')
		done
	done
done
q -c 'DROP TABLE bench_loc, bench_dist' >/dev/null
