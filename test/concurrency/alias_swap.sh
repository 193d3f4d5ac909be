#!/usr/bin/env bash
# Scorers under a moving alias (sql/lifecycle.sql runs this): 2 pgbench
# clients score for a few seconds, each statement checking that its answers
# are all those of version 1 or all those of version 2 of a model (raising
# division_by_zero otherwise, which aborts the client), while another client
# promotes version 2 and rolls back to 1 in a loop.  Prints lines that do not
# depend on timing; the database is $LC_DB, the tables those the SQL test
# made (lc_swap_check(), lc_swap_emb_check()).
set -uo pipefail
pgbench=$(command -v pgbench || echo /usr/lib/postgresql/15/bin/pgbench)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cat >"$tmp/score.sql" <<'SQL'
SELECT public.lc_swap_check();
SELECT public.lc_swap_emb_check();
SQL
cat >"$tmp/swap.sql" <<'SQL'
SELECT recsys.promote('lc_swap', 2);
SELECT recsys.promote('lc_swap_emb', 2);
SELECT recsys.rollback('lc_swap');
SELECT recsys.rollback('lc_swap_emb');
SQL
"$pgbench" -n -c 2 -j 2 -T 4 -f "$tmp/score.sql" "$LC_DB" >"$tmp/score.out" 2>&1 &
scorer=$!
"$pgbench" -n -c 1 -T 4 -f "$tmp/swap.sql" "$LC_DB" >"$tmp/swap.out" 2>&1
swap_rc=$?
wait $scorer
score_rc=$?
scored=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$tmp/score.out")
swapped=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$tmp/swap.out")
echo "scorers exit status: $score_rc"
echo "swapper exit status: $swap_rc"
echo "scoring transactions > 0: $([ "${scored:-0}" -gt 0 ] && echo yes || echo no)"
echo "alias moves > 0: $([ "${swapped:-0}" -gt 0 ] && echo yes || echo no)"
if [ "$score_rc" -ne 0 ] || [ "$swap_rc" -ne 0 ]; then
	grep -i "error\|abort" "$tmp/score.out" "$tmp/swap.out" | head -5
fi
