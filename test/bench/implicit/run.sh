#!/usr/bin/env bash
# recsys against `implicit` (Ben Frederickson's ALS, v0.7.3, built from its
# source by ../shared/bench/build-implicit.sh: not part of make test, and
# nothing of implicit is committed) on the same pairs, at 1 and 2 threads,
# interleaved, IMP_REPS repetitions: seconds per cg epoch (implicit: one
# fit iteration, conjugate gradient, its default) and Recall@20 on a random
# 80/20 split of each user's pairs (both scored by the same numpy code from
# the exported vectors, training items left out).
# Environment: IMPLICIT_GIT (git directory of implicit's source), IMPLICIT_DEST
# (build folder, default /tmp/implicit), IMP_USERS, IMP_ITEMS, IMP_INTERACTIONS,
# IMP_DIM, IMP_EPOCHS, IMP_REPS.  Run through with_cluster.sh (PGDATABASE);
# writes test/bench/out/implicit.txt.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../../.." && pwd)
out="$here/../out"
mkdir -p "$out"
git_dir=${IMPLICIT_GIT:-/work/.mirror/benfred+implicit/repo}
dest=${IMPLICIT_DEST:-/tmp/implicit}
users=${IMP_USERS:-60000}; items=${IMP_ITEMS:-20000}; n=${IMP_INTERACTIONS:-5000000}
dim=${IMP_DIM:-64}; epochs=${IMP_EPOCHS:-5}; reps=${IMP_REPS:-3}
report="$out/implicit.txt"
work=$(mktemp -d /tmp/recsys-implicit.XXXXXX)
chmod 777 "$work"
trap 'rm -rf "$work"' EXIT

bash "$top/../shared/bench/build-implicit.sh" "$git_dir" "$dest" >&2
{
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')"
echo "data: gen.py $users users x $items items, ~$n interactions; dim $dim; $epochs epochs; $reps repetitions"
} | tee "$report"

# Also the load: recsys's load_seconds (read, check, build both compressed
# sides) against implicit's CSR matrix built from numpy arrays of the pairs.
# the pairs, split 80/20 per user by a hash (the same split for both)
/usr/bin/python3 "$here/../embeddings/gen.py" --users "$users" --items "$items" --interactions "$n" > "$work/all.csv"
psql -X -q -v ON_ERROR_STOP=1 <<SQL
-- (a small work_mem makes PostgreSQL 15's spilling hash aggregate crawl here)
SET work_mem = '256MB';
CREATE TABLE imp_all (user_id int, item_id int, ts bigint);
\copy imp_all FROM '$work/all.csv' CSV HEADER
CREATE TABLE imp_train AS SELECT DISTINCT user_id, item_id FROM imp_all
	WHERE abs(hashint8(user_id::bigint * 100003 + item_id)) % 5 <> 0;
CREATE TABLE imp_test AS SELECT DISTINCT user_id, item_id FROM imp_all
	WHERE abs(hashint8(user_id::bigint * 100003 + item_id)) % 5 = 0;
VACUUM ANALYZE imp_train;
\copy imp_train TO '$work/train.csv' CSV
\copy imp_test TO '$work/test.csv' CSV
SQL

for rep in $(seq 1 "$reps"); do
	for t in 1 2; do
		# recsys: cg, the same dim, epochs on t threads; its vectors exported
		psql -X -q -v ON_ERROR_STOP=1 -At <<SQL > "$work/recsys_$t.txt"
SET client_min_messages = warning;
SET recsys.max_workers = $t;
CREATE TEMP TABLE log AS SELECT * FROM recsys.train_embeddings('imp_$t', 'imp_train', dim => $dim, epochs => $epochs,
	options => '{"solver": "cg"}');
SELECT 'recsys', $t, $rep, (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY seconds) FROM log),
	(SELECT metrics->>'load_seconds' FROM recsys.models WHERE name = 'imp_$t' AND version = $rep);
\copy (SELECT id, array_to_string(embedding, ' ') FROM recsys.user_vectors WHERE model = 'imp_$t' AND version = $rep) TO '$work/u_$t.txt'
\copy (SELECT id, array_to_string(embedding, ' ') FROM recsys.item_vectors WHERE model = 'imp_$t' AND version = $rep) TO '$work/i_$t.txt'
SQL
		/usr/bin/python3 "$here/compare.py" recsys "$t" "$rep" "$work" "$dim" "$epochs" "$dest" | tee -a "$work/results.txt"
		/usr/bin/python3 "$here/compare.py" implicit "$t" "$rep" "$work" "$dim" "$epochs" "$dest" | tee -a "$work/results.txt"
	done
done
/usr/bin/python3 "$here/compare.py" summary 0 0 "$work" "$dim" "$epochs" "$dest" | tee -a "$report"
