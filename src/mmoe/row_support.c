/*
 * mmoe/row_support.c
 *		The planner support function of predict(model, row): where the row
 *		is a table's whole row (FROM candidates c ... predict(m, c)) or a
 *		ROW() constructor, the call becomes predict_columns (or
 *		predict_task_columns) with the row's columns as separate arguments.
 *
 * A whole-row value costs the executor a copy of every column of every row
 * (text and arrays included) into a new composite value, which the
 * function then deforms again; as separate arguments the executor passes
 * the scanned values as they are.  The rewrite is exact: every column of
 * the row type goes in, named, so the served version's spec (which may
 * change after the plan is made: promote, rollback) finds the same columns
 * with the same types, and the errors name the same row type.  Left as
 * they are: a row that can be NULL (the nullable side of an outer join,
 * grouping sets, RETURNING old/new, MERGE), since predict returns NULL for
 * a NULL row and a list of NULL columns is not one; a row that repeats a
 * column name (a subquery's), read by its first column of that name; a
 * table with a virtual generated column (18), whose value no Var reads; a
 * row of more columns than a call takes (FUNC_MAX_ARGS).
 */
#include "postgres.h"

#include "access/table.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "nodes/pathnodes.h"
#include "nodes/supportnodes.h"
#include "parser/parse_func.h"
#include "parser/parsetree.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/typcache.h"

/* predict(model, row, context, display_position, version) */
#define ROW_NARGS 5
/* predict(model, row, task, context, display_position, version) */
#define ROW_TASK_NARGS 6

/* The columns of a row argument: names, and the expressions that give them */
typedef struct RowColumns
{
	Oid			row_type;
	List	   *names;			/* of String */
	List	   *exprs;
} RowColumns;

/*
 * Tell whether relation varno can be NULL-extended by an outer join of the
 * join tree (nullable: whether the subtree is on a nullable side); an
 * unknown node counts as nullable
 */
static bool
Nullable(Node *jt, int varno, bool nullable)
{
	ListCell   *lc;

	if (jt == NULL)
		return false;
	if (IsA(jt, RangeTblRef))
		return nullable && ((RangeTblRef *) jt)->rtindex == varno;
	if (IsA(jt, FromExpr))
	{
		foreach(lc, ((FromExpr *) jt)->fromlist)
			if (Nullable(lfirst(lc), varno, nullable))
				return true;
		return false;
	}
	if (IsA(jt, JoinExpr))
	{
		JoinExpr   *j = (JoinExpr *) jt;
		bool		left = nullable || j->jointype == JOIN_RIGHT || j->jointype == JOIN_FULL;
		bool		right = nullable || j->jointype == JOIN_LEFT || j->jointype == JOIN_FULL ||
			j->jointype == JOIN_ANTI;

		return Nullable(j->larg, varno, left) || Nullable(j->rarg, varno, right);
	}
	return true;
}

/*
 * Get the columns of a table's whole-row Var, one Var per live column;
 * false where the Var is not one that is never NULL, or the table has a
 * column that is computed when read
 */
static bool
VarColumns(PlannerInfo *root, Var *var, RowColumns *rc)
{
	Query	   *parse;
	RangeTblEntry *rte;
	Relation	rel;
	TupleDesc	desc;
	bool		ok = true;

	if (root == NULL || var->varattno != InvalidAttrNumber || var->varlevelsup != 0)
		return false;
	parse = root->parse;
	if (parse->commandType == CMD_MERGE || parse->groupingSets != NIL ||
		var->varno < 1 || var->varno > list_length(parse->rtable))
		return false;
#if PG_VERSION_NUM >= 180000
	if (var->varreturningtype != VAR_RETURNING_DEFAULT)
		return false;
#endif
	if (parse->onConflict && parse->onConflict->exclRelIndex == var->varno)
		return false;
	rte = rt_fetch(var->varno, parse->rtable);
	if (rte->rtekind != RTE_RELATION || Nullable((Node *) parse->jointree, var->varno, false))
		return false;
	if (rte->relkind != RELKIND_RELATION && rte->relkind != RELKIND_PARTITIONED_TABLE &&
		rte->relkind != RELKIND_MATVIEW && rte->relkind != RELKIND_FOREIGN_TABLE)
		return false;

	/* the parser locked the table */
	rel = table_open(rte->relid, NoLock);
	desc = RelationGetDescr(rel);
	if (var->vartype != desc->tdtypeid)
		ok = false;
	rc->row_type = desc->tdtypeid;
	for (int a = 0; a < desc->natts && ok; a++)
	{
		Form_pg_attribute attr = TupleDescAttr(desc, a);

		if (attr->attisdropped)
			continue;
		/* a virtual generated column (18) has no value a Var could read */
		if (attr->attgenerated != '\0' && attr->attgenerated != 's')
			ok = false;
		rc->names = lappend(rc->names, makeString(pstrdup(NameStr(attr->attname))));
		rc->exprs = lappend(rc->exprs, makeVar(var->varno, attr->attnum, attr->atttypid,
											   attr->atttypmod, attr->attcollation, 0));
	}
	table_close(rel, NoLock);
	return ok;
}

/*
 * Get the columns of a ROW() constructor: its fields, named by the row
 * type (a named composite type: dropped columns skipped, missing trailing
 * columns NULL) or by its column names (record)
 */
static bool
RowExprColumns(RowExpr *row, RowColumns *rc)
{
	ListCell   *lc;

	rc->row_type = row->row_typeid;
	if (row->row_typeid == RECORDOID)
	{
		ListCell   *nc;

		if (list_length(row->colnames) != list_length(row->args))
			return false;
		forboth(lc, row->args, nc, row->colnames)
		{
			rc->names = lappend(rc->names, makeString(pstrdup(strVal(lfirst(nc)))));
			rc->exprs = lappend(rc->exprs, lfirst(lc));
		}
	}
	else
	{
		TupleDesc	desc = lookup_rowtype_tupdesc(row->row_typeid, -1);
		bool		ok = list_length(row->args) <= desc->natts;

		for (int a = 0; a < desc->natts && ok; a++)
		{
			Form_pg_attribute attr = TupleDescAttr(desc, a);

			if (attr->attisdropped)
				continue;
			rc->names = lappend(rc->names, makeString(pstrdup(NameStr(attr->attname))));
			if (a < list_length(row->args))
			{
				Node	   *e = list_nth(row->args, a);

				if (exprType(e) != attr->atttypid)
					ok = false;
				rc->exprs = lappend(rc->exprs, e);
			}
			else
				rc->exprs = lappend(rc->exprs,
									makeNullConst(attr->atttypid, attr->atttypmod, attr->attcollation));
		}
		ReleaseTupleDesc(desc);
		if (!ok)
			return false;
	}
	return true;
}

/*
 * Tell whether a name is given twice (a subquery's columns may repeat one:
 * the row value then reads the first, predict_columns refuses them)
 */
static bool
RepeatedName(List *names)
{
	ListCell   *a;
	ListCell   *b;

	foreach(a, names)
	{
		for_each_from(b, names, foreach_current_index(a) + 1)
			if (strcmp(strVal(lfirst(a)), strVal(lfirst(b))) == 0)
				return true;
	}
	return false;
}

/* Make a text[] constant of a list of String names */
static Const *
NamesConst(List *names)
{
	int			n = list_length(names);
	Datum	   *d = palloc(sizeof(Datum) * n);
	int			i = 0;
	ListCell   *lc;

	foreach(lc, names)
		d[i++] = CStringGetTextDatum(strVal(lfirst(lc)));
	return makeConst(TEXTARRAYOID, -1, InvalidOid, -1,
					 PointerGetDatum(construct_array(d, n, TEXTOID, -1, false, TYPALIGN_INT)),
					 false, false);
}

/*
 * Rewrite a predict(model, row, ...) call into predict_columns (or
 * predict_task_columns) of the row's columns; NULL where it does not apply
 */
static Node *
RowCallAsColumns(PlannerInfo *root, FuncExpr *call)
{
	int			nargs = list_length(call->args);
	Node	   *row;
	RowColumns	rc = {InvalidOid, NIL, NIL};
	bool		ok;
	List	   *target;
	Oid			types[FUNC_MAX_ARGS];
	int			nfixed;
	List	   *args;
	Oid			fn;
	FuncExpr   *result;

	if (nargs != ROW_NARGS && nargs != ROW_TASK_NARGS)
		return NULL;
	row = lsecond(call->args);
	if (IsA(row, Var))
		ok = VarColumns(root, (Var *) row, &rc);
	else if (IsA(row, RowExpr))
		ok = RowExprColumns((RowExpr *) row, &rc);
	else
		return NULL;

	/* model, row_type, columns, [task,] context, display_position, version, values */
	nfixed = nargs + 1;
	if (!ok || rc.names == NIL || nfixed + list_length(rc.names) > FUNC_MAX_ARGS ||
		RepeatedName(rc.names))
		return NULL;

	types[0] = TEXTOID;
	types[1] = REGTYPEOID;
	types[2] = TEXTARRAYOID;
	for (int i = 2; i < nargs; i++)
		types[i + 1] = exprType(list_nth(call->args, i));
	types[nfixed] = ANYOID;
	target = list_make2(makeString(get_namespace_name(get_func_namespace(call->funcid))),
						makeString(nargs == ROW_NARGS ? "predict_columns" : "predict_task_columns"));
	fn = LookupFuncName(target, nfixed + 1, types, true);
	if (!OidIsValid(fn))
		return NULL;

	args = list_make3(linitial(call->args),
					  makeConst(REGTYPEOID, -1, InvalidOid, sizeof(Oid),
								ObjectIdGetDatum(rc.row_type), false, true),
					  NamesConst(rc.names));
	for (int i = 2; i < nargs; i++)
		args = lappend(args, list_nth(call->args, i));
	args = list_concat(args, rc.exprs);
	result = makeFuncExpr(fn, call->funcresulttype, args, call->funccollid, call->inputcollid,
						  COERCE_EXPLICIT_CALL);
	result->location = call->location;
	return (Node *) result;
}

PG_FUNCTION_INFO_V1(mmoe_predict_row_support);
/* Planner support of predict(model, row): see the file comment */
Datum
mmoe_predict_row_support(PG_FUNCTION_ARGS)
{
	Node	   *req = (Node *) PG_GETARG_POINTER(0);

	if (IsA(req, SupportRequestSimplify))
	{
		SupportRequestSimplify *simplify = (SupportRequestSimplify *) req;

		PG_RETURN_POINTER(RowCallAsColumns(simplify->root, simplify->fcall));
	}
	PG_RETURN_POINTER(NULL);
}
