/*-------------------------------------------------------------------------
 *
 * deparse.c
 *		  Clause classification and every GraphQL document of ethwhale_fdw.
 *
 * A clause is pushed to the node only when the node can apply it exactly:
 * block-number comparisons become the from/to of blocks(), equality on a
 * transaction hash becomes transaction(hash:), address equality goes into
 * logs(filter:) or account(address:).  Numeric comparisons on amounts are
 * applied by the wrapper while decoding.  Every clause also stays a local
 * filter (but the wrapper's own), so nothing the node answers can widen
 * the result.  Projection is pushed by requesting only the fields of the
 * columns the query uses.
 *
 * The documents are built here and nowhere else: the scan document (the
 * text EXPLAIN VERBOSE shows), the account and head documents, and the
 * variables of logs(filter:).  Values always travel as variables, so the
 * document of a plan is the document sent.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/stratnum.h"
#include "catalog/pg_am.h"
#include "catalog/pg_operator.h"
#include "catalog/pg_opfamily.h"
#include "catalog/pg_type.h"
#include "commands/defrem.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/clauses.h"
#include "optimizer/optimizer.h"
#include "scan.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"

/* ---------------------------------------------------------------------
 * Clause shapes
 * ---------------------------------------------------------------------
 */


/*
 * EwRelVarAttno
 *		The attribute number if node (stripped of relabelling) is a user
 *		column of rel at this query level, else InvalidAttrNumber.
 */
AttrNumber
EwRelVarAttno(Node *node, Index relid)
{
	while (node && IsA(node, RelabelType))
		node = (Node *) ((RelabelType *) node)->arg;
	if (node && IsA(node, Var) &&
		((Var *) node)->varno == relid &&
		((Var *) node)->varlevelsup == 0 &&
		((Var *) node)->varattno > 0)
		return ((Var *) node)->varattno;
	return InvalidAttrNumber;
}

/*
 * is_rel_var
 *		True if node (stripped of relabelling) is the given column of rel.
 */
static bool
is_rel_var(Node *node, Index relid, AttrNumber attno)
{
	return EwRelVarAttno(node, relid) == attno;
}

/*
 * is_scan_constant
 *		True if expr can be evaluated once when the scan starts: no column
 *		of this relation, nothing volatile, no sub-plans.  Constants,
 *		parameters and stable expressions such as now() qualify, and so do
 *		the columns of other relations in a parameterized path's join
 *		clauses: the planner turns them into parameters of a nested loop,
 *		and each rescan evaluates them afresh.
 */
static bool
rel_var_walker(Node *node, void *context)
{
	if (node == NULL)
		return false;
	if (IsA(node, Var))
		return ((Var *) node)->varno == *(Index *) context &&
			((Var *) node)->varlevelsup == 0;
	/* a PlaceHolderVar may stand for this relation's columns */
	if (IsA(node, PlaceHolderVar))
		return true;
	return expression_tree_walker(node, rel_var_walker, context);
}

static bool
is_scan_constant(Node *expr, Index relid)
{
	return !rel_var_walker(expr, &relid) &&
		!contain_volatile_functions(expr) &&
		!contain_subplans(expr);
}

/*
 * classify_bound
 *		If clause compares the block column of rel with a scan constant using
 *		an integer btree operator, return the comparison's strategy as seen
 *		from the column (BTLessStrategyNumber … BTGreaterStrategyNumber, or
 *		EW_STRATEGY_IN for "= ANY(array)") and set *value to the other side.
 *		Otherwise return 0.
 */
static int
classify_bound(Expr *clause, Index relid, AttrNumber attno, Expr **value)
{
	if (IsA(clause, OpExpr))
	{
		OpExpr	   *op = (OpExpr *) clause;
		Node	   *left,
				   *right;
		int			strategy;

		if (list_length(op->args) != 2)
			return 0;
		strategy = get_op_opfamily_strategy(op->opno, INTEGER_BTREE_FAM_OID);
		if (strategy == 0)
			return 0;
		left = linitial(op->args);
		right = lsecond(op->args);
		if (is_rel_var(left, relid, attno) && is_scan_constant(right, relid))
		{
			*value = (Expr *) right;
			return strategy;
		}
		if (is_rel_var(right, relid, attno) && is_scan_constant(left, relid))
		{
			*value = (Expr *) left;
			/* commute: c < block is block > c */
			return BTMaxStrategyNumber + 1 - strategy;
		}
		return 0;
	}
	if (IsA(clause, ScalarArrayOpExpr))
	{
		ScalarArrayOpExpr *saop = (ScalarArrayOpExpr *) clause;

		if (!saop->useOr ||
			get_op_opfamily_strategy(saop->opno, INTEGER_BTREE_FAM_OID) !=
			BTEqualStrategyNumber)
			return 0;
		if (is_rel_var(linitial(saop->args), relid, attno) &&
			is_scan_constant(lsecond(saop->args), relid))
		{
			*value = (Expr *) lsecond(saop->args);
			return EW_STRATEGY_IN;
		}
	}
	return 0;
}

/*
 * classify_text_eq
 *		If clause is "hash = <scan constant>" on text, return the constant
 *		side, else NULL.
 */
static Expr *
classify_text_eq(Expr *clause, Index relid, AttrNumber attno)
{
	OpExpr	   *op;
	Node	   *left,
			   *right;

	if (!IsA(clause, OpExpr))
		return NULL;
	op = (OpExpr *) clause;
	if (op->opno != TextEqualOperator || list_length(op->args) != 2)
		return NULL;
	/* under a case-insensitive collation '0xAB…' would match too */
	if (OidIsValid(op->inputcollid) &&
		!get_collation_isdeterministic(op->inputcollid))
		return NULL;
	left = linitial(op->args);
	right = lsecond(op->args);
	if (is_rel_var(left, relid, attno) && is_scan_constant(right, relid))
		return (Expr *) right;
	if (is_rel_var(right, relid, attno) && is_scan_constant(left, relid))
		return (Expr *) left;
	return NULL;
}

/*
 * classify_text_in
 *		If clause is "col = <scan constant>" or "col = ANY(<scan constant
 *		array>)" on a text column of rel under a deterministic collation,
 *		return the constant side and set *is_array; else NULL.  Used for the
 *		address columns that go into logs(filter:) and account(address:).
 */
static Expr *
classify_text_in(Expr *clause, Index relid, AttrNumber attno, bool *is_array)
{
	ScalarArrayOpExpr *saop;

	*is_array = false;
	if (IsA(clause, OpExpr))
		return classify_text_eq(clause, relid, attno);
	if (!IsA(clause, ScalarArrayOpExpr))
		return NULL;
	saop = (ScalarArrayOpExpr *) clause;
	if (!saop->useOr || saop->opno != TextEqualOperator ||
		list_length(saop->args) != 2)
		return NULL;
	if (OidIsValid(saop->inputcollid) &&
		!get_collation_isdeterministic(saop->inputcollid))
		return NULL;
	if (!is_rel_var(linitial(saop->args), relid, attno) ||
		!is_scan_constant(lsecond(saop->args), relid))
		return NULL;
	*is_array = true;
	return (Expr *) lsecond(saop->args);
}

/*
 * numeric_btree_family
 *		The btree operator family of numeric (PostgreSQL 15 has no OID
 *		symbol for it).
 */
static Oid
numeric_btree_family(void)
{
	static Oid	family = InvalidOid;

	if (!OidIsValid(family))
		family = get_opclass_family(GetDefaultOpClass(NUMERICOID, BTREE_AM_OID));
	return family;
}

/*
 * classify_value_op
 *		If clause compares a numeric column of rel with a numeric scan
 *		constant using an operator of the numeric btree family, set *attno,
 *		*opno (commuted so that the column is on the left) and *value, and
 *		return true.  Such a comparison can be evaluated by the wrapper on
 *		the decoded value, with the same operator, before the row is built.
 */
static bool
classify_value_op(Expr *clause, Index relid, AttrNumber *attno, Oid *opno,
					  Expr **value)
{
	OpExpr	   *op;
	Node	   *left,
			   *right;
	Oid			o;
	Oid			lefttype,
				righttype;
	AttrNumber	a;

	if (!IsA(clause, OpExpr))
		return false;
	op = (OpExpr *) clause;
	if (list_length(op->args) != 2)
		return false;
	left = linitial(op->args);
	right = lsecond(op->args);
	o = op->opno;
	if ((a = EwRelVarAttno(left, relid)) != InvalidAttrNumber &&
		is_scan_constant(right, relid))
		*value = (Expr *) right;
	else if ((a = EwRelVarAttno(right, relid)) != InvalidAttrNumber &&
			 is_scan_constant(left, relid))
	{
		*value = (Expr *) left;
		o = get_commutator(o);
		if (!OidIsValid(o))
			return false;
	}
	else
		return false;
	if (get_op_opfamily_strategy(o, numeric_btree_family()) == 0)
		return false;
	op_input_types(o, &lefttype, &righttype);
	if (lefttype != NUMERICOID || righttype != NUMERICOID)
		return false;
	*attno = a;
	*opno = o;
	return true;
}

/* ---------------------------------------------------------------------
 * Classification
 * ---------------------------------------------------------------------
 */

/*
 * classify_value_filter
 *		If ri compares an amount column (numeric) with a scan constant, the
 *		wrapper applies it while decoding: the column is decoded first and
 *		a row that fails is dropped before the rest of the row is decoded,
 *		and the executor does not test it again.
 */
static void
classify_value_filter(EwRelInfo *info, Relation rel, const EwField **colfields,
					  Index relid, RestrictInfo *ri)
{
	AttrNumber	attno;
	Oid			opno;
	Expr	   *value;
	Form_pg_attribute attr;

	if (!classify_value_op(ri->clause, relid, &attno, &opno, &value))
		return;
	attr = TupleDescAttr(RelationGetDescr(rel), attno - 1);
	if (attr->atttypid != NUMERICOID ||
		!(colfields[attno - 1]->flags & EW_FIELD_AMOUNT))
		return;
	info->filter_rinfos = lappend(info->filter_rinfos, ri);
	info->plan.filter_attnos = lappend_int(info->plan.filter_attnos, attno);
	info->plan.filter_ops = lappend_oid(info->plan.filter_ops, opno);
	info->plan.filter_exprs = lappend(info->plan.filter_exprs, value);
	/* the constant side is deparsed by EXPLAIN, in its own context */
	info->plan.filter_texts = lappend(info->plan.filter_texts,
									  makeString(psprintf("%s %s",
														  quote_identifier(NameStr(attr->attname)),
														  get_opname(opno))));
}

/*
 * push_address
 *		If ri is "col = constant" or "col = ANY(array)" on one of the
 *		address columns whose slot is still free, record it for the request
 *		and return true.  The clause also stays a local filter: it costs
 *		little and keeps the result right whatever the node does.
 */
static bool
push_address(EwRelInfo *info, Index relid, RestrictInfo *ri)
{
	int			slot;

	for (slot = 0; slot < EW_NUM_ADDR_SLOTS; slot++)
	{
		bool		is_array;
		Expr	   *value;

		if (info->addr_attnos[slot] == InvalidAttrNumber || info->addr_taken[slot])
			continue;
		value = classify_text_in(ri->clause, relid, info->addr_attnos[slot], &is_array);
		if (value == NULL)
			continue;
		info->addr_taken[slot] = true;
		info->plan.addr_exprs = lappend(info->plan.addr_exprs, value);
		info->plan.addr_slots = lappend_int(info->plan.addr_slots, slot);
		info->plan.addr_arrays = lappend_int(info->plan.addr_arrays, is_array);
		return true;
	}
	return false;
}

/*
 * EwFindKeyColumns
 *		The columns that can bound a scan: the block number, the hash and
 *		the pushed addresses.
 */
void
EwFindKeyColumns(Relation rel, const EwField **colfields, EwRelInfo *info)
{
	int			natts = RelationGetDescr(rel)->natts;
	int			slot;

	info->block_attno = EwFindColumn(colfields, natts, EW_FIELD_BLOCK_KEY, EW_ADDR_NONE);
	info->hash_attno = EwFindColumn(colfields, natts, EW_FIELD_HASH_KEY, EW_ADDR_NONE);
	info->txkey_attno = EwFindColumn(colfields, natts, EW_FIELD_TX_KEY, EW_ADDR_NONE);
	for (slot = 0; slot < EW_NUM_ADDR_SLOTS; slot++)
		info->addr_attnos[slot] = EwFindColumn(colfields, natts, 0, (EwAddrSlot) slot);
}

/*
 * EwClassifyClauses
 *		One pass over restriction clauses of a foreign table (its own, or a
 *		parameterized path's join clauses): block bounds, the hash lookup,
 *		pushed addresses, the wrapper's filters, and what stays for the
 *		executor alone (other_conds).  Pseudoconstant clauses are left to
 *		the gating Result node the planner puts above the scan, as
 *		postgres_fdw does.
 */
void
EwClassifyClauses(Index relid, Relation rel, const EwField **colfields,
				  EwRelInfo *info, List *clauses)
{
	ListCell   *lc;

	foreach(lc, clauses)
	{
		RestrictInfo *ri = (RestrictInfo *) lfirst(lc);
		Expr	   *value;
		int			s = 0;

		if (ri->pseudoconstant)
		{
			info->other_conds = lappend(info->other_conds, ri);
			continue;
		}
		if (info->block_attno != InvalidAttrNumber)
			s = classify_bound(ri->clause, relid, info->block_attno, &value);
		if (s != 0)
		{
			info->plan.bound_exprs = lappend(info->plan.bound_exprs, value);
			info->plan.bound_strategies = lappend_int(info->plan.bound_strategies, s);
			if (s == BTEqualStrategyNumber || s == EW_STRATEGY_IN ||
				s == BTGreaterStrategyNumber || s == BTGreaterEqualStrategyNumber)
				info->has_lower = true;
			continue;
		}
		if (info->hash_attno != InvalidAttrNumber && info->plan.hash_expr == NULL)
		{
			info->plan.hash_expr = classify_text_eq(ri->clause, relid, info->hash_attno);
			if (info->plan.hash_expr != NULL)
				continue;
		}
		if (push_address(info, relid, ri))
			continue;
		info->other_conds = lappend(info->other_conds, ri);
		classify_value_filter(info, rel, colfields, relid, ri);
	}
}

/*
 * EwIsParamClause
 *		Whether a join clause can bound a parameterized scan: the block
 *		number equal to (or in) an outer value, the hash of a transaction,
 *		or an address pushed into the request.
 */
bool
EwIsParamClause(Index relid, EwRelInfo *info, RestrictInfo *ri)
{
	Expr	   *value;
	bool		is_array;
	int			slot;
	int			s = 0;

	if (info->block_attno != InvalidAttrNumber)
		s = classify_bound(ri->clause, relid, info->block_attno, &value);
	if (s == BTEqualStrategyNumber || s == EW_STRATEGY_IN)
		return true;
	if (info->hash_attno != InvalidAttrNumber &&
		classify_text_eq(ri->clause, relid, info->hash_attno) != NULL)
		return true;
	for (slot = 0; slot < EW_NUM_ADDR_SLOTS; slot++)
		if (info->addr_attnos[slot] != InvalidAttrNumber &&
			classify_text_in(ri->clause, relid, info->addr_attnos[slot], &is_array) != NULL)
			return true;
	return false;
}

/* ---------------------------------------------------------------------
 * Documents
 * ---------------------------------------------------------------------
 */

/*
 * append_unique
 *		Append a selection to buf unless an earlier field already selected
 *		the same text (value, value_eth and value_usd share "value"), or the
 *		field is always selected by the document's fixed part.
 */
static void
append_unique(StringInfo buf, const EwField **fields, int upto)
{
	const char *sel = fields[upto]->selection;
	int			i;

	bool		block_level = fields[upto]->source == EW_SRC_BLOCK;

	if (sel == NULL || (fields[upto]->flags & EW_FIELD_ALWAYS))
		return;
	/* a pushed join selects block fields in the block, the rest in rows */
	for (i = 0; i < upto; i++)
		if (fields[i]->selection && strcmp(fields[i]->selection, sel) == 0 &&
			(fields[i]->source == EW_SRC_BLOCK) == block_level)
			return;
	appendStringInfo(buf, " %s", sel);
}

/*
 * append_block_fields
 *		The fields of eth_block that a pushed join eth_tx JOIN eth_block
 *		reads from each transaction's block, beside its number and time.
 */
static void
append_block_fields(StringInfo buf, const EwField **fields, int nfields)
{
	int			i;

	for (i = 0; i < nfields; i++)
	{
		const EwField *f = fields[i];

		/* "number" and "timestamp" are in the fixed part already */
		if (f->source != EW_SRC_BLOCK || strcmp(f->key, "number") == 0 ||
			strcmp(f->key, "timestamp") == 0)
			continue;
		append_unique(buf, fields, i);
	}
}

/* Whether a log's transaction is read for some field (a pushed join). */
static bool
any_in_log_transaction(EwTableKind kind, const EwField **fields, int nfields)
{
	int			i;

	for (i = 0; i < nfields; i++)
		if (EwFieldInLogTransaction(kind, fields[i]))
			return true;
	return false;
}

/*
 * append_log_transaction
 *		transaction{hash …} of each log, with the eth_tx fields of a pushed
 *		eth_token_transfer JOIN eth_tx (its hash is the log's tx_hash too).
 */
static void
append_log_transaction(StringInfo buf, EwTableKind kind, const EwField **fields,
					   int nfields)
{
	int			i,
				k;

	appendStringInfoString(buf, " transaction{hash");
	for (i = 0; i < nfields; i++)
	{
		const char *sel = fields[i]->selection;
		bool		seen = sel == NULL || strcmp(sel, "hash") == 0;

		if (!EwFieldInLogTransaction(kind, fields[i]))
			continue;
		for (k = 0; k < i && !seen; k++)
			seen = EwFieldInLogTransaction(kind, fields[k]) && fields[k]->selection &&
				strcmp(fields[k]->selection, sel) == 0;
		if (!seen)
			appendStringInfo(buf, " %s", sel);
	}
	appendStringInfoChar(buf, '}');
}

/*
 * append_selection
 *		The selection set of one block (range and backward scans), one
 *		transaction (hash mode) or one account, with only the needed fields.
 *
 * Blocks always carry "number" and "timestamp": the first to check that the
 * node answered the range asked for, the second for block_time and the
 * day's price.  count_only asks for transactionCount instead of the
 * transaction list, which is all that counting rows needs.  A log always
 * carries index, topics and data, which decide whether it is an ERC-20
 * transfer, and its token when amount_usd prices it.
 */
static void
append_selection(StringInfo buf, EwTableKind kind, const EwField **fields,
				 int nfields, bool count_only, bool by_hash)
{
	int			i;
	const char *close;

	switch (kind)
	{
		case EW_TABLE_TOKEN_TRANSFER:
			appendStringInfoString(buf, "{number timestamp logs(filter: {addresses: $addresses, topics: $topics}) {index topics data");
			close = "}}";
			break;
		case EW_TABLE_ACCOUNT:
			appendStringInfoString(buf, "{address");
			close = "}";
			break;
		case EW_TABLE_BLOCK:
			appendStringInfoString(buf, "{number");
			close = "}";
			break;
		default:
			if (count_only && !by_hash)
			{
				appendStringInfoString(buf, "{number timestamp");
				append_block_fields(buf, fields, nfields);
				appendStringInfoString(buf, " transactionCount}");
				return;
			}
			/* index keeps the row order stable and names the row in errors */
			appendStringInfoString(buf, by_hash ? "{block{number timestamp" :
								   "{number timestamp");
			append_block_fields(buf, fields, nfields);
			appendStringInfoString(buf, by_hash ? "} index" : " transactions{index");
			close = by_hash ? "}" : "}}";
			break;
	}
	for (i = 0; i < nfields; i++)
		if ((fields[i]->source != EW_SRC_BLOCK || kind == EW_TABLE_BLOCK) &&
			!EwFieldInLogTransaction(kind, fields[i]) &&
			!((fields[i]->flags & EW_FIELD_TX_KEY) && any_in_log_transaction(kind, fields, nfields)))
			append_unique(buf, fields, i);
	if (any_in_log_transaction(kind, fields, nfields))
		append_log_transaction(buf, kind, fields, nfields);
	if (kind == EW_TABLE_TOKEN_TRANSFER)
	{
		bool		need_token = false;
		bool		have_token = false;

		for (i = 0; i < nfields; i++)
		{
			need_token |= fields[i]->source == EW_SRC_AMOUNT_USD;
			have_token |= fields[i]->addr_slot == EW_ADDR_TOKEN;
		}
		if (need_token && !have_token)
			appendStringInfoString(buf, " account{address}");
	}
	appendStringInfoString(buf, close);
}

/*
 * EwDeparseDocument
 *		The GraphQL document of a scan; in account mode, the selection each
 *		account alias gets (EwDeparseAccountDocument repeats it).  Block
 *		numbers and hashes are variables: Geth parses integer literals in
 *		query text as 32 bits.
 */
char *
EwDeparseDocument(EwTableKind kind, EwScanMode mode, bool count_only,
				  const EwField **fields, int nfields)
{
	StringInfoData buf;

	initStringInfo(&buf);
	if (mode == EW_MODE_ACCOUNT)
	{
		append_selection(&buf, kind, fields, nfields, false, false);
		return buf.data;
	}
	if (mode == EW_MODE_HASH)
		appendStringInfoString(&buf, "query($hash: Bytes32!) { transaction(hash: $hash) ");
	else if (kind == EW_TABLE_TOKEN_TRANSFER)
		appendStringInfoString(&buf, "query($from: Long!, $to: Long!, $addresses: [Address!], $topics: [[Bytes32!]!]) { blocks(from: $from, to: $to) ");
	else
		appendStringInfoString(&buf, "query($from: Long!, $to: Long!) { blocks(from: $from, to: $to) ");
	append_selection(&buf, kind, fields, nfields, count_only, mode == EW_MODE_HASH);
	appendStringInfoString(&buf, " }");
	return buf.data;
}

/*
 * EwDeparseAccountDocument
 *		The document that reads n accounts at one block (or the head): each
 *		under an alias a0 … a(n-1), its address a variable $a0 … .
 */
char *
EwDeparseAccountDocument(const char *selection, int n)
{
	StringInfoData buf;
	int			i;

	initStringInfo(&buf);
	appendStringInfoString(&buf, "query($block: Long");
	for (i = 0; i < n; i++)
		appendStringInfo(&buf, ", $a%d: Address!", i);
	appendStringInfoString(&buf, ") { block(number: $block) { number");
	for (i = 0; i < n; i++)
		appendStringInfo(&buf, " a%d: account(address: $a%d) %s", i, i, selection);
	appendStringInfoString(&buf, " } }");
	return buf.data;
}

/*
 * EwDeparseHeadDocument
 *		The document that reads the node's newest block number.
 */
char *
EwDeparseHeadDocument(void)
{
	return pstrdup("{ block { number } }");
}

/*
 * EwDeparseChainDocument
 *		The document that reads the node's chain id (Geth's schema:
 *		chainID: BigInt!, a hex string).
 */
char *
EwDeparseChainDocument(void)
{
	return pstrdup("{ chainID }");
}

/* Append a JSON array of addresses, each as prefix + its 40 digits. */
static void
append_address_list(StringInfo buf, char **v, int n, const char *prefix)
{
	int			i;

	appendStringInfoChar(buf, '[');
	for (i = 0; i < n; i++)
		appendStringInfo(buf, "%s\"%s%s\"", i ? "," : "", prefix, v[i] + 2);
	appendStringInfoChar(buf, ']');
}

/*
 * EwDeparseLogVariables
 *		The variables of logs(filter:) for the evaluated address sets (NULL:
 *		no list for that position), as ,"addresses":…,"topics":… to append
 *		to a chunk's variables.  Topic 0 is the Transfer event; topics 1
 *		and 2 are the sender and receiver padded to 32 bytes; a position
 *		without a list matches anything.
 */
char *
EwDeparseLogVariables(char **sets[], const int nsets[], bool rpc)
{
	static const char pad[] = "0x000000000000000000000000";
	StringInfoData buf;

	initStringInfo(&buf);
	if (rpc && sets[EW_ADDR_TOKEN])
	{
		/* eth_getLogs' filter: "address", left out for any */
		appendStringInfoString(&buf, ",\"address\":");
		append_address_list(&buf, sets[EW_ADDR_TOKEN], nsets[EW_ADDR_TOKEN], "0x");
	}
	else if (!rpc)
	{
		appendStringInfoString(&buf, ",\"addresses\":");
		if (sets[EW_ADDR_TOKEN])
			append_address_list(&buf, sets[EW_ADDR_TOKEN], nsets[EW_ADDR_TOKEN], "0x");
		else
			appendStringInfoString(&buf, "null");
	}
	appendStringInfoString(&buf, ",\"topics\":[[\"" EW_TRANSFER_TOPIC "\"]");
	if (sets[EW_ADDR_FROM] || sets[EW_ADDR_TO])
	{
		appendStringInfoChar(&buf, ',');
		append_address_list(&buf, sets[EW_ADDR_FROM], nsets[EW_ADDR_FROM], pad);
	}
	if (sets[EW_ADDR_TO])
	{
		appendStringInfoChar(&buf, ',');
		append_address_list(&buf, sets[EW_ADDR_TO], nsets[EW_ADDR_TO], pad);
	}
	appendStringInfoChar(&buf, ']');
	return buf.data;
}

/*
 * EwJsonQuote
 *		text as a JSON string literal, palloc'd: a document goes into the
 *		request body as the value of "query".
 */
char *
EwJsonQuote(const char *text)
{
	json_t	   *js = json_string(text);
	char	   *s;
	char	   *out;

	s = js ? json_dumps(js, JSON_ENCODE_ANY) : NULL;
	if (js)
		json_decref(js);
	if (s == NULL)
		elog(ERROR, "ethwhale_fdw: could not encode a GraphQL document as JSON");
	/* jansson allocates with palloc (decode.c), in the current context */
	out = s;
	return out;
}
