/*-------------------------------------------------------------------------
 *
 * catalog.c
 *		  The table kinds of ethwhale_fdw and their fields, as data: which
 *		  column reads which part of the node's answer, with which role;
 *		  the resolution of a foreign table's columns to fields; and IMPORT
 *		  FOREIGN SCHEMA, which creates the tables of SPEC.md from the same
 *		  lists.
 *
 * Each field names where GraphQL's answer holds it (key, subkey) and where
 * JSON-RPC's does (rpc_key: eth_getBlockByNumber's block and transaction
 * objects, the receipt fields jsonrpc.c merges into each transaction, and
 * eth_getLogs' log objects).
 *
 * A field's role in planning (the block number, the hash, a pushed address,
 * an amount the wrapper filters) is a flag of the field, so no code decides
 * by comparing column names.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "commands/defrem.h"
#include "ethwhale_fdw.h"
#include "foreign/fdwapi.h"
#include "utils/builtins.h"
#include "utils/rel.h"

#define F_KEY	EW_FIELD_BLOCK_KEY
#define F_HASH	EW_FIELD_HASH_KEY
#define F_AMT	EW_FIELD_AMOUNT
#define F_ADDR	EW_FIELD_ADDRESS
#define F_ALW	EW_FIELD_ALWAYS
#define F_RCPT	EW_FIELD_RECEIPT
#define NO		EW_ADDR_NONE

/* Columns of eth_block.  Order matches IMPORT FOREIGN SCHEMA. */
static const EwField block_fields[] = {
	{"number", "number", "bigint", "number", "number", NULL, "number", EW_SRC_BLOCK, EW_KIND_INT, F_KEY | F_ALW, 0, NO},
	{"hash", "hash", "text", "hash", "hash", NULL, "hash", EW_SRC_BLOCK, EW_KIND_TEXT, 0, 0, NO},
	{"parent_hash", "parent", "text", "parent{hash}", "parent", "hash", "parentHash", EW_SRC_BLOCK, EW_KIND_TEXT, 0, 0, NO},
	{"timestamp", "timestamp", "timestamptz", "timestamp", "timestamp", NULL, "timestamp", EW_SRC_BLOCK, EW_KIND_TIME, 0, 0, NO},
	{"miner", "miner", "text", "miner{address}", "miner", "address", "miner", EW_SRC_BLOCK, EW_KIND_TEXT, F_ADDR, 0, NO},
	{"gas_used", "gasUsed", "bigint", "gasUsed", "gasUsed", NULL, "gasUsed", EW_SRC_BLOCK, EW_KIND_INT, 0, 0, NO},
	{"gas_limit", "gasLimit", "bigint", "gasLimit", "gasLimit", NULL, "gasLimit", EW_SRC_BLOCK, EW_KIND_INT, 0, 0, NO},
	{"base_fee_per_gas", "baseFeePerGas", "numeric", "baseFeePerGas", "baseFeePerGas", NULL, "baseFeePerGas", EW_SRC_BLOCK, EW_KIND_BIGNUM, 0, 0, NO},
	{"tx_count", "transactionCount", "int", "transactionCount", "transactionCount", NULL, "transactionCount", EW_SRC_BLOCK, EW_KIND_INT, 0, 0, NO},
};

/* Columns of eth_tx.  Order matches IMPORT FOREIGN SCHEMA. */
static const EwField tx_fields[] = {
	{"block", "number", "bigint", NULL, "number", NULL, "number", EW_SRC_BLOCK_NUMBER, EW_KIND_INT, F_KEY, 0, NO},
	{"tx_index", "index", "int", "index", "index", NULL, "transactionIndex", EW_SRC_ROW, EW_KIND_INT, F_ALW, 0, NO},
	{"hash", "hash", "text", "hash", "hash", NULL, "hash", EW_SRC_ROW, EW_KIND_TEXT, F_HASH, 0, NO},
	{"from_address", "from", "text", "from{address}", "from", "address", "from", EW_SRC_ROW, EW_KIND_TEXT, F_ADDR, 0, NO},
	{"to_address", "to", "text", "to{address}", "to", "address", "to", EW_SRC_ROW, EW_KIND_TEXT, F_ADDR, 0, NO},
	{"value", "value", "numeric", "value", "value", NULL, "value", EW_SRC_ROW, EW_KIND_BIGNUM, F_AMT, 0, NO},
	{"value_eth", NULL, "numeric", "value", "value", NULL, "value", EW_SRC_VALUE_ETH, EW_KIND_BIGNUM, F_AMT, 0, NO},
	{"value_usd", NULL, "numeric", "value", "value", NULL, "value", EW_SRC_VALUE_USD, EW_KIND_BIGNUM, F_AMT, 0, NO},
	{"gas", "gas", "bigint", "gas", "gas", NULL, "gas", EW_SRC_ROW, EW_KIND_INT, 0, 0, NO},
	{"gas_price", "gasPrice", "numeric", "gasPrice", "gasPrice", NULL, "gasPrice", EW_SRC_ROW, EW_KIND_BIGNUM, 0, 0, NO},
	{"nonce", "nonce", "bigint", "nonce", "nonce", NULL, "nonce", EW_SRC_ROW, EW_KIND_INT, 0, 0, NO},
	{"input_selector", "inputData", "text", "inputData", "inputData", NULL, "input", EW_SRC_SELECTOR, EW_KIND_TEXT, 0, 0, NO},
	{"status", "status", "int", "status", "status", NULL, "status", EW_SRC_ROW, EW_KIND_INT, F_RCPT, 0, NO},
	{"gas_used", "gasUsed", "bigint", "gasUsed", "gasUsed", NULL, "gasUsed", EW_SRC_ROW, EW_KIND_INT, F_RCPT, 0, NO},
	{"created_contract", "createdContract", "text", "createdContract{address}", "createdContract", "address", "contractAddress", EW_SRC_ROW, EW_KIND_TEXT, F_RCPT | F_ADDR, 0, NO},
	{"block_time", "timestamp", "timestamptz", NULL, "timestamp", NULL, "timestamp", EW_SRC_BLOCK_TIME, EW_KIND_TIME, 0, 0, NO},
};

/*
 * Columns of eth_token_transfer: one row per ERC-20 Transfer log.  The row
 * object is the Log; index, topics and data are always requested (they
 * decide whether a log is an ERC-20 transfer), the derived columns read
 * them.
 */
static const EwField transfer_fields[] = {
	{"block", "number", "bigint", NULL, "number", NULL, "number", EW_SRC_BLOCK_NUMBER, EW_KIND_INT, F_KEY, 0, NO},
	{"tx_hash", "transaction", "text", "transaction{hash}", "transaction", "hash", "transactionHash", EW_SRC_ROW, EW_KIND_TEXT, EW_FIELD_TX_KEY, 0, NO},
	{"log_index", "index", "int", "index", "index", NULL, "logIndex", EW_SRC_ROW, EW_KIND_INT, F_ALW, 0, NO},
	{"token", "account", "text", "account{address}", "account", "address", "address", EW_SRC_ROW, EW_KIND_TEXT, F_ADDR, 0, EW_ADDR_TOKEN},
	{"from_address", NULL, "text", "topics", "topics", NULL, "topics", EW_SRC_TOPIC_ADDRESS, EW_KIND_TEXT, F_ALW | F_ADDR, 1, EW_ADDR_FROM},
	{"to_address", NULL, "text", "topics", "topics", NULL, "topics", EW_SRC_TOPIC_ADDRESS, EW_KIND_TEXT, F_ALW | F_ADDR, 2, EW_ADDR_TO},
	{"amount", "data", "numeric", "data", "data", NULL, "data", EW_SRC_AMOUNT, EW_KIND_BIGNUM, F_ALW | F_AMT, 0, NO},
	{"amount_usd", NULL, "numeric", "data", "data", NULL, "data", EW_SRC_AMOUNT_USD, EW_KIND_BIGNUM, F_ALW | F_AMT, 0, NO},
	{"block_time", "timestamp", "timestamptz", NULL, "timestamp", NULL, "timestamp", EW_SRC_BLOCK_TIME, EW_KIND_TIME, 0, 0, NO},
};

/*
 * Columns of eth_account.  The row object is an Account fetched under an
 * alias; "address" is always requested.
 */
static const EwField account_fields[] = {
	{"address", "address", "text", "address", "address", NULL, "address", EW_SRC_ROW, EW_KIND_TEXT, F_ALW | F_ADDR, 0, EW_ADDR_ACCOUNT},
	{"block", NULL, "bigint", NULL, "number", NULL, "number", EW_SRC_ACCOUNT_BLOCK, EW_KIND_INT, F_KEY, 0, NO},
	{"balance", "balance", "numeric", "balance", "balance", NULL, "balance", EW_SRC_ROW, EW_KIND_BIGNUM, F_AMT, 0, NO},
	{"balance_eth", NULL, "numeric", "balance", "balance", NULL, "balance", EW_SRC_VALUE_ETH, EW_KIND_BIGNUM, F_AMT, 0, NO},
	{"nonce", "transactionCount", "bigint", "transactionCount", "transactionCount", NULL, "transactionCount", EW_SRC_ROW, EW_KIND_INT, 0, 0, NO},
	{"code_size", "code", "int", "code", "code", NULL, "code", EW_SRC_CODE_SIZE, EW_KIND_INT, 0, 0, NO},
	{"is_contract", NULL, "bool", "code", "code", NULL, "code", EW_SRC_IS_CONTRACT, EW_KIND_BOOL, 0, 0, NO},
};

/* The one list of table kinds, in EwTableKind order. */
static const EwTableKindInfo table_kinds[EW_NUM_TABLE_KINDS] = {
	{EW_TABLE_BLOCK, "block", "eth_block", block_fields, lengthof(block_fields)},
	{EW_TABLE_TX, "tx", "eth_tx", tx_fields, lengthof(tx_fields)},
	{EW_TABLE_TOKEN_TRANSFER, "token_transfer", "eth_token_transfer", transfer_fields, lengthof(transfer_fields)},
	{EW_TABLE_ACCOUNT, "account", "eth_account", account_fields, lengthof(account_fields)},
};

/*
 * EwTableKindInfoOf
 *		The description of a table kind.
 */
const EwTableKindInfo *
EwTableKindInfoOf(EwTableKind kind)
{
	Assert(kind >= 0 && kind < EW_NUM_TABLE_KINDS);
	return &table_kinds[kind];
}

/*
 * EwTableFields
 *		The logical fields of a table kind.
 */
const EwField *
EwTableFields(EwTableKind kind, int *nfields)
{
	const EwTableKindInfo *k = EwTableKindInfoOf(kind);

	*nfields = k->nfields;
	return k->fields;
}

/*
 * EwTableKindName
 *		The value of the table option for a kind.
 */
const char *
EwTableKindName(EwTableKind kind)
{
	return EwTableKindInfoOf(kind)->option;
}

/*
 * EwTableKindList
 *		"block, tx, token_transfer, account", for hints.
 */
const char *
EwTableKindList(void)
{
	static char list[128];

	if (list[0] == '\0')
	{
		int			i;

		for (i = 0; i < EW_NUM_TABLE_KINDS; i++)
		{
			if (i > 0)
				strlcat(list, ", ", sizeof(list));
			strlcat(list, table_kinds[i].option, sizeof(list));
		}
	}
	return list;
}

/*
 * EwFieldCode
 *		A field as an integer that travels in a plan: its kind and index.
 */
int
EwFieldCode(const EwField *f)
{
	int			k;

	for (k = 0; k < EW_NUM_TABLE_KINDS; k++)
		if (f >= table_kinds[k].fields && f < table_kinds[k].fields + table_kinds[k].nfields)
			return k * 100 + (int) (f - table_kinds[k].fields);
	elog(ERROR, "ethwhale_fdw: unknown field");
	return -1;
}

/*
 * EwFieldByCode
 *		The field of an EwFieldCode.
 */
const EwField *
EwFieldByCode(int code)
{
	int			k = code / 100;
	int			i = code % 100;

	if (k < 0 || k >= EW_NUM_TABLE_KINDS || i < 0 || i >= table_kinds[k].nfields)
		elog(ERROR, "ethwhale_fdw: malformed plan (field %d)", code);
	return &table_kinds[k].fields[i];
}

/*
 * EwFieldInLogTransaction
 *		Whether a field of eth_tx, in a scan of eth_token_transfer (a pushed
 *		join), is read from each log's transaction (all but the block's
 *		number and time, which come from the block).
 */
bool
EwFieldInLogTransaction(EwTableKind scan_kind, const EwField *f)
{
	return scan_kind == EW_TABLE_TOKEN_TRANSFER &&
		EwFieldCode(f) / 100 == EW_TABLE_TX &&
		f->source != EW_SRC_BLOCK_NUMBER && f->source != EW_SRC_BLOCK_TIME;
}

/*
 * EwParseTableKind
 *		Map the "table" option to a table kind.
 */
EwTableKind
EwParseTableKind(const char *value)
{
	int			i;

	for (i = 0; i < EW_NUM_TABLE_KINDS; i++)
		if (strcmp(value, table_kinds[i].option) == 0)
			return table_kinds[i].kind;
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("invalid value for option \"table\": \"%s\"", value),
			 errhint("Valid values are: %s.", EwTableKindList())));
	return EW_TABLE_BLOCK;		/* keep compiler quiet */
}

/*
 * EwLookupField
 *		Find a field by its column name or by its GraphQL name; NULL if the
 *		table kind has no such field.  The GraphQL names of the enclosing
 *		block's number and time are not accepted for the row tables: they
 *		would be ambiguous with the row's own fields.
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
 * column_field
 *		The field a column reads: its "field" option if set, else the field
 *		named like the column.  Unknown names are an error naming the valid
 *		fields.
 */
static const EwField *
column_field(Relation rel, EwTableKind kind, AttrNumber attno)
{
	Form_pg_attribute attr = TupleDescAttr(RelationGetDescr(rel), attno - 1);
	const char *name = NameStr(attr->attname);
	const EwField *f;
	ListCell   *lc;

	foreach(lc, GetForeignColumnOptions(RelationGetRelid(rel), attno))
	{
		DefElem    *def = (DefElem *) lfirst(lc);

		if (strcmp(def->defname, "field") == 0)
			name = defGetString(def);
	}
	f = EwLookupField(kind, name);
	if (f == NULL)
	{
		StringInfoData valid;
		int			n,
					i;
		const EwField *all = EwTableFields(kind, &n);

		initStringInfo(&valid);
		for (i = 0; i < n; i++)
			appendStringInfo(&valid, "%s%s", i ? ", " : "", all[i].name);
		ereport(ERROR,
				(errcode(ERRCODE_FDW_COLUMN_NAME_NOT_FOUND),
				 errmsg("column \"%s\" of foreign table \"%s\" does not match any field of table kind \"%s\"",
						NameStr(attr->attname), RelationGetRelationName(rel),
						EwTableKindName(kind)),
				 errhint("Name the column after a field, or set its option \"field\"; valid fields are: %s.",
						 valid.data)));
	}
	return f;
}

/*
 * EwResolveColumns
 *		The field of every column, indexed by attribute number - 1 (NULL for
 *		dropped columns).  Every column is checked, so a bad definition is
 *		reported whatever the query uses.
 */
const EwField **
EwResolveColumns(Relation rel, EwTableKind kind)
{
	TupleDesc	desc = RelationGetDescr(rel);
	const EwField **fields = palloc0(sizeof(EwField *) * Max(1, desc->natts));
	int			i;

	for (i = 0; i < desc->natts; i++)
		if (!TupleDescAttr(desc, i)->attisdropped)
			fields[i] = column_field(rel, kind, i + 1);
	return fields;
}

/*
 * EwFindColumn
 *		Attribute number of the first column whose field has the role flag
 *		(or, when flag is 0, is pushed as address slot), or InvalidAttrNumber.
 */
AttrNumber
EwFindColumn(const EwField **colfields, int natts, int flag, EwAddrSlot slot)
{
	int			i;

	for (i = 0; i < natts; i++)
	{
		const EwField *f = colfields[i];

		if (f == NULL)
			continue;
		if (flag != 0 ? (f->flags & flag) != 0 : f->addr_slot == slot)
			return i + 1;
	}
	return InvalidAttrNumber;
}

/*
 * EwColumnName
 *		The name of column attno of rel, or fallback when there is none: for
 *		hints that name the column a user should bound.
 */
const char *
EwColumnName(Relation rel, AttrNumber attno, const char *fallback)
{
	if (attno == InvalidAttrNumber)
		return fallback;
	return NameStr(TupleDescAttr(RelationGetDescr(rel), attno - 1)->attname);
}

/*
 * EwImportForeignSchema
 *		IMPORT FOREIGN SCHEMA ethereum: one foreign table per table kind,
 *		with the columns of the contract (SPEC.md).
 */
List *
EwImportForeignSchema(ImportForeignSchemaStmt *stmt, Oid serverOid)
{
	ForeignServer *server = GetForeignServer(serverOid);
	List	   *commands = NIL;
	int			t;

	if (strcmp(stmt->remote_schema, "ethereum") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_SCHEMA_NOT_FOUND),
				 errmsg("remote schema \"%s\" does not exist on server \"%s\"",
						stmt->remote_schema, server->servername),
				 errhint("ethwhale_fdw serves one remote schema: IMPORT FOREIGN SCHEMA ethereum FROM SERVER %s INTO ...",
						 quote_identifier(server->servername))));

	for (t = 0; t < EW_NUM_TABLE_KINDS; t++)
	{
		const EwTableKindInfo *k = &table_kinds[t];
		bool		listed = false;
		ListCell   *lc;
		StringInfoData buf;
		int			i;

		foreach(lc, stmt->table_list)
			if (strcmp(((RangeVar *) lfirst(lc))->relname, k->import_name) == 0)
				listed = true;
		if ((stmt->list_type == FDW_IMPORT_SCHEMA_LIMIT_TO && !listed) ||
			(stmt->list_type == FDW_IMPORT_SCHEMA_EXCEPT && listed))
			continue;

		initStringInfo(&buf);
		appendStringInfo(&buf, "CREATE FOREIGN TABLE %s (",
						 quote_identifier(k->import_name));
		for (i = 0; i < k->nfields; i++)
			appendStringInfo(&buf, "%s%s %s", i ? ", " : "",
							 quote_identifier(k->fields[i].name), k->fields[i].sqltype);
		appendStringInfo(&buf, ") SERVER %s OPTIONS (\"table\" %s)",
						 quote_identifier(server->servername),
						 quote_literal_cstr(k->option));
		commands = lappend(commands, buf.data);
	}
	return commands;
}
