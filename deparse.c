/*-------------------------------------------------------------------------
 *
 * deparse.c
 *		  Field catalogue, clause classification and GraphQL query building
 *		  for ethwhale_fdw.
 *
 * A clause is pushed to the node only when the node can apply it exactly:
 * block-number comparisons become the from/to of blocks(), equality on a
 * transaction hash becomes transaction(hash:).  Everything else stays a
 * local filter.  Projection is pushed by requesting only the fields of the
 * columns the query uses.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/stratnum.h"
#include "catalog/pg_am.h"
#include "commands/defrem.h"
#include "catalog/pg_operator.h"
#include "catalog/pg_opfamily.h"
#include "catalog/pg_type.h"
#include "ethwhale_fdw.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/clauses.h"
#include "optimizer/optimizer.h"
#include "utils/lsyscache.h"

/* Columns of eth_block.  Order matches IMPORT FOREIGN SCHEMA. */
static const EwField block_fields[] = {
	{"number", "number", "bigint", "number", "number", NULL, EW_SRC_BLOCK, EW_KIND_INT, false, 0},
	{"hash", "hash", "text", "hash", "hash", NULL, EW_SRC_BLOCK, EW_KIND_TEXT, false, 0},
	{"parent_hash", "parent", "text", "parent{hash}", "parent", "hash", EW_SRC_BLOCK, EW_KIND_TEXT, false, 0},
	{"timestamp", "timestamp", "timestamptz", "timestamp", "timestamp", NULL, EW_SRC_BLOCK, EW_KIND_TIME, false, 0},
	{"miner", "miner", "text", "miner{address}", "miner", "address", EW_SRC_BLOCK, EW_KIND_TEXT, false, 0},
	{"gas_used", "gasUsed", "bigint", "gasUsed", "gasUsed", NULL, EW_SRC_BLOCK, EW_KIND_INT, false, 0},
	{"gas_limit", "gasLimit", "bigint", "gasLimit", "gasLimit", NULL, EW_SRC_BLOCK, EW_KIND_INT, false, 0},
	{"base_fee_per_gas", "baseFeePerGas", "numeric", "baseFeePerGas", "baseFeePerGas", NULL, EW_SRC_BLOCK, EW_KIND_BIGNUM, false, 0},
	{"tx_count", "transactionCount", "int", "transactionCount", "transactionCount", NULL, EW_SRC_BLOCK, EW_KIND_INT, false, 0},
};

/* Columns of eth_tx.  Order matches IMPORT FOREIGN SCHEMA. */
static const EwField tx_fields[] = {
	{"block", "number", "bigint", NULL, "number", NULL, EW_SRC_BLOCK_NUMBER, EW_KIND_INT, false, 0},
	{"tx_index", "index", "int", "index", "index", NULL, EW_SRC_TX, EW_KIND_INT, false, 0},
	{"hash", "hash", "text", "hash", "hash", NULL, EW_SRC_TX, EW_KIND_TEXT, false, 0},
	{"from_address", "from", "text", "from{address}", "from", "address", EW_SRC_TX, EW_KIND_TEXT, false, 0},
	{"to_address", "to", "text", "to{address}", "to", "address", EW_SRC_TX, EW_KIND_TEXT, false, 0},
	{"value", "value", "numeric", "value", "value", NULL, EW_SRC_TX, EW_KIND_BIGNUM, false, 0},
	{"value_eth", NULL, "numeric", "value", "value", NULL, EW_SRC_VALUE_ETH, EW_KIND_BIGNUM, false, 0},
	{"value_usd", NULL, "numeric", "value", "value", NULL, EW_SRC_VALUE_USD, EW_KIND_BIGNUM, false, 0},
	{"gas", "gas", "bigint", "gas", "gas", NULL, EW_SRC_TX, EW_KIND_INT, false, 0},
	{"gas_price", "gasPrice", "numeric", "gasPrice", "gasPrice", NULL, EW_SRC_TX, EW_KIND_BIGNUM, false, 0},
	{"nonce", "nonce", "bigint", "nonce", "nonce", NULL, EW_SRC_TX, EW_KIND_INT, false, 0},
	{"input_selector", "inputData", "text", "inputData", "inputData", NULL, EW_SRC_SELECTOR, EW_KIND_TEXT, false, 0},
	{"status", "status", "int", "status", "status", NULL, EW_SRC_TX, EW_KIND_INT, true, 0},
	{"gas_used", "gasUsed", "bigint", "gasUsed", "gasUsed", NULL, EW_SRC_TX, EW_KIND_INT, true, 0},
	{"created_contract", "createdContract", "text", "createdContract{address}", "createdContract", "address", EW_SRC_TX, EW_KIND_TEXT, true, 0},
	{"block_time", "timestamp", "timestamptz", NULL, "timestamp", NULL, EW_SRC_BLOCK_TIME, EW_KIND_TIME, false, 0},
};

/*
 * Columns of eth_token_transfer: one row per ERC-20 Transfer log.  The row
 * object is the Log; topics and data are always requested (see
 * EwAppendSelection), the derived columns read them.
 */
static const EwField transfer_fields[] = {
	{"block", "number", "bigint", NULL, "number", NULL, EW_SRC_BLOCK_NUMBER, EW_KIND_INT, false, 0},
	{"tx_hash", "transaction", "text", "transaction{hash}", "transaction", "hash", EW_SRC_TX, EW_KIND_TEXT, false, 0},
	{"log_index", "index", "int", "index", "index", NULL, EW_SRC_TX, EW_KIND_INT, false, 0},
	{"token", "account", "text", "account{address}", "account", "address", EW_SRC_TX, EW_KIND_TEXT, false, 0},
	{"from_address", NULL, "text", "topics", "topics", NULL, EW_SRC_TOPIC_ADDRESS, EW_KIND_TEXT, false, 1},
	{"to_address", NULL, "text", "topics", "topics", NULL, EW_SRC_TOPIC_ADDRESS, EW_KIND_TEXT, false, 2},
	{"amount", "data", "numeric", "data", "data", NULL, EW_SRC_AMOUNT, EW_KIND_BIGNUM, false, 0},
	{"amount_usd", NULL, "numeric", "data", "data", NULL, EW_SRC_AMOUNT_USD, EW_KIND_BIGNUM, false, 0},
	{"block_time", "timestamp", "timestamptz", NULL, "timestamp", NULL, EW_SRC_BLOCK_TIME, EW_KIND_TIME, false, 0},
};

/*
 * Columns of eth_account.  The row object is an Account fetched under an
 * alias; "address" is always requested.
 */
static const EwField account_fields[] = {
	{"address", "address", "text", "address", "address", NULL, EW_SRC_TX, EW_KIND_TEXT, false, 0},
	{"block", NULL, "bigint", NULL, "number", NULL, EW_SRC_ACCOUNT_BLOCK, EW_KIND_INT, false, 0},
	{"balance", "balance", "numeric", "balance", "balance", NULL, EW_SRC_TX, EW_KIND_BIGNUM, false, 0},
	{"balance_eth", NULL, "numeric", "balance", "balance", NULL, EW_SRC_VALUE_ETH, EW_KIND_BIGNUM, false, 0},
	{"nonce", "transactionCount", "bigint", "transactionCount", "transactionCount", NULL, EW_SRC_TX, EW_KIND_INT, false, 0},
	{"code_size", "code", "int", "code", "code", NULL, EW_SRC_CODE_SIZE, EW_KIND_INT, false, 0},
	{"is_contract", NULL, "bool", "code", "code", NULL, EW_SRC_IS_CONTRACT, EW_KIND_BOOL, false, 0},
};

/*
 * EwTableFields
 *		The logical fields of a table kind.
 */
const EwField *
EwTableFields(EwTableKind kind, int *nfields)
{
	switch (kind)
	{
		case EW_TABLE_BLOCK:
			*nfields = lengthof(block_fields);
			return block_fields;
		case EW_TABLE_TX:
			*nfields = lengthof(tx_fields);
			return tx_fields;
		case EW_TABLE_TOKEN_TRANSFER:
			*nfields = lengthof(transfer_fields);
			return transfer_fields;
		case EW_TABLE_ACCOUNT:
			*nfields = lengthof(account_fields);
			return account_fields;
	}
	*nfields = 0;
	return NULL;
}

/*
 * EwLookupField
 *		Find a field by its column name or by its GraphQL name; NULL if the
 *		table kind has no such field.
 */
const EwField *
EwLookupField(EwTableKind kind, const char *name)
{
	int			n;
	const EwField *fields = EwTableFields(kind, &n);
	int			i;

	for (i = 0; i < n; i++)
		if (strcmp(fields[i].name, name) == 0)
			return &fields[i];
	for (i = 0; i < n; i++)
		if (fields[i].gql_name && strcmp(fields[i].gql_name, name) == 0 &&
			fields[i].source != EW_SRC_BLOCK_NUMBER &&
			fields[i].source != EW_SRC_BLOCK_TIME)
			return &fields[i];
	return NULL;
}

/*
 * append_unique
 *		Append a selection to buf unless an earlier field already selected
 *		the same text (value, value_eth and value_usd share "value").
 */
static void
append_unique(StringInfo buf, const EwField **fields, int upto, const char *sel)
{
	int			i;

	for (i = 0; i < upto; i++)
		if (fields[i]->selection && strcmp(fields[i]->selection, sel) == 0)
			return;
	appendStringInfo(buf, " %s", sel);
}

/*
 * EwFieldsSelect
 *		Whether one of the fields requests selection sel.
 */
static bool
EwFieldsSelect(const EwField **fields, int nfields, const char *sel)
{
	int			i;

	for (i = 0; i < nfields; i++)
		if (fields[i]->selection && strcmp(fields[i]->selection, sel) == 0)
			return true;
	return false;
}

/*
 * EwAppendSelection
 *		Append the selection set for one block (range and backward scans) or
 *		one transaction (by_hash) with only the needed fields.
 *
 * Block-level fields "number" and "timestamp" are always requested for the
 * transaction table: the first to check that the node answered the range we
 * asked for, the second for block_time and the day's price.  count_only asks
 * for transactionCount instead of the transaction list, which is all that
 * counting rows needs.
 */
void
EwAppendSelection(StringInfo buf, EwTableKind kind,
				  const EwField **fields, int nfields,
				  bool count_only, bool by_hash)
{
	int			i;

	if (kind == EW_TABLE_TOKEN_TRANSFER)
	{
		/* topics and data decide whether a log is an ERC-20 transfer */
		appendStringInfoString(buf, "{number timestamp logs(filter: {addresses: $addresses, topics: $topics}) {index topics data");
		for (i = 0; i < nfields; i++)
		{
			const char *sel = fields[i]->selection;

			if (sel == NULL || strcmp(sel, "index") == 0 ||
				strcmp(sel, "topics") == 0 || strcmp(sel, "data") == 0)
				continue;
			append_unique(buf, fields, i, sel);
		}
		/* amount_usd looks the token up */
		for (i = 0; i < nfields; i++)
			if (fields[i]->source == EW_SRC_AMOUNT_USD &&
				!EwFieldsSelect(fields, nfields, "account{address}"))
				appendStringInfoString(buf, " account{address}");
		appendStringInfoString(buf, "}}");
		return;
	}
	if (kind == EW_TABLE_ACCOUNT)
	{
		appendStringInfoString(buf, "{address");
		for (i = 0; i < nfields; i++)
		{
			const char *sel = fields[i]->selection;

			if (sel == NULL || strcmp(sel, "address") == 0)
				continue;
			append_unique(buf, fields, i, sel);
		}
		appendStringInfoChar(buf, '}');
		return;
	}
	if (kind == EW_TABLE_BLOCK)
	{
		appendStringInfoString(buf, "{number");
		for (i = 0; i < nfields; i++)
			if (strcmp(fields[i]->name, "number") != 0)
				append_unique(buf, fields, i, fields[i]->selection);
		appendStringInfoChar(buf, '}');
		return;
	}

	if (by_hash)
		appendStringInfoString(buf, "{block{number timestamp}");
	else if (count_only)
	{
		appendStringInfoString(buf, "{number timestamp transactionCount}");
		return;
	}
	else
		appendStringInfoString(buf, "{number timestamp transactions{");

	/* index keeps the row order stable and identifies the row in errors */
	appendStringInfoString(buf, by_hash ? " index" : "index");
	for (i = 0; i < nfields; i++)
	{
		const char *sel = fields[i]->selection;

		if (sel == NULL || strcmp(sel, "index") == 0)
			continue;
		append_unique(buf, fields, i, sel);
	}
	appendStringInfoString(buf, by_hash ? "}" : "}}");
}

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
 *		True if expr can be evaluated once when the scan starts: no columns,
 *		nothing volatile, no sub-plans.  Constants, parameters and stable
 *		expressions such as now() qualify.
 */
static bool
is_scan_constant(Node *expr)
{
	return !contain_var_clause(expr) &&
		!contain_volatile_functions(expr) &&
		!contain_subplans(expr);
}

/*
 * EwClassifyBound
 *		If clause compares the block column of rel with a scan constant using
 *		an integer btree operator, return the comparison's strategy as seen
 *		from the column (BTLessStrategyNumber … BTGreaterStrategyNumber, or
 *		EW_STRATEGY_IN for "= ANY(array)") and set *value to the other side.
 *		Otherwise return 0.
 */
int
EwClassifyBound(Expr *clause, Index relid, AttrNumber attno, Expr **value)
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
		if (is_rel_var(left, relid, attno) && is_scan_constant(right))
		{
			*value = (Expr *) right;
			return strategy;
		}
		if (is_rel_var(right, relid, attno) && is_scan_constant(left))
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
			is_scan_constant(lsecond(saop->args)))
		{
			*value = (Expr *) lsecond(saop->args);
			return EW_STRATEGY_IN;
		}
	}
	return 0;
}

/*
 * EwClassifyHashEq
 *		If clause is "hash = <scan constant>" on text, return the constant
 *		side, else NULL.
 */
Expr *
EwClassifyHashEq(Expr *clause, Index relid, AttrNumber attno)
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
	if (is_rel_var(left, relid, attno) && is_scan_constant(right))
		return (Expr *) right;
	if (is_rel_var(right, relid, attno) && is_scan_constant(left))
		return (Expr *) left;
	return NULL;
}

/*
 * EwClassifyTextIn
 *		If clause is "col = <scan constant>" or "col = ANY(<scan constant
 *		array>)" on a text column of rel under a deterministic collation,
 *		return the constant side and set *is_array; else NULL.  Used for the
 *		address columns that go into logs(filter:) and account(address:).
 */
Expr *
EwClassifyTextIn(Expr *clause, Index relid, AttrNumber attno, bool *is_array)
{
	ScalarArrayOpExpr *saop;

	*is_array = false;
	if (IsA(clause, OpExpr))
		return EwClassifyHashEq(clause, relid, attno);
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
		!is_scan_constant(lsecond(saop->args)))
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
 * EwClassifyValueFilter
 *		If clause compares a numeric column of rel with a numeric scan
 *		constant using an operator of the numeric btree family, set *attno,
 *		*opno (commuted so that the column is on the left) and *value, and
 *		return true.  Such a comparison can be evaluated by the wrapper on
 *		the decoded value, with the same operator, before the row is built.
 */
bool
EwClassifyValueFilter(Expr *clause, Index relid, AttrNumber *attno, Oid *opno,
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
		is_scan_constant(right))
		*value = (Expr *) right;
	else if ((a = EwRelVarAttno(right, relid)) != InvalidAttrNumber &&
			 is_scan_constant(left))
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
