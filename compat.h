/*-------------------------------------------------------------------------
 *
 * compat.h
 *		  The PostgreSQL API differences between the majors ethwhale_fdw
 *		  builds for, in one place: code elsewhere uses these names and no
 *		  PG_VERSION_NUM test of its own.
 *
 *-------------------------------------------------------------------------
 */
#ifndef EW_COMPAT_H
#define EW_COMPAT_H

#include "catalog/pg_foreign_server.h"
#include "commands/explain.h"
#include "executor/executor.h"
#include "miscadmin.h"
#include "nodes/plannodes.h"
#include "optimizer/pathnode.h"
#include "utils/acl.h"

/*
 * PostgreSQL 16 moved the varlena macros (VARDATA, SET_VARSIZE) out of
 * postgres.h into varatt.h.
 */
#if PG_VERSION_NUM >= 160000
#include "varatt.h"
#endif

/*
 * PostgreSQL 18 split ExplainState and the ExplainProperty*() functions out
 * of commands/explain.h.
 */
#if PG_VERSION_NUM >= 180000
#include "commands/explain_format.h"
#include "commands/explain_state.h"
#endif

/*
 * create_foreignscan_path() and create_foreign_join_path() took
 * fdw_restrictinfo in PostgreSQL 17 (the clauses a pushed-down join must see
 * again in EvalPlanQual), and disabled_nodes in 18 (the count of disabled
 * plan nodes that replaced disable_cost; a foreign path is never disabled: 0).
 */
#if PG_VERSION_NUM >= 180000
#define EW_PATH_ARGS(rows, startup, total, pathkeys, required_outer, \
					 fdw_outerpath, fdw_private) \
	(rows), 0, (startup), (total), (pathkeys), (required_outer), \
	(fdw_outerpath), NIL, (fdw_private)
#elif PG_VERSION_NUM >= 170000
#define EW_PATH_ARGS(rows, startup, total, pathkeys, required_outer, \
					 fdw_outerpath, fdw_private) \
	(rows), (startup), (total), (pathkeys), (required_outer), \
	(fdw_outerpath), NIL, (fdw_private)
#else
#define EW_PATH_ARGS(rows, startup, total, pathkeys, required_outer, \
					 fdw_outerpath, fdw_private) \
	(rows), (startup), (total), (pathkeys), (required_outer), \
	(fdw_outerpath), (fdw_private)
#endif

#define ew_create_foreignscan_path(root, rel, target, rows, startup, total, \
								   pathkeys, required_outer, fdw_outerpath, \
								   fdw_private) \
	create_foreignscan_path((root), (rel), (target), \
							EW_PATH_ARGS(rows, startup, total, pathkeys, \
										 required_outer, fdw_outerpath, \
										 fdw_private))

#define ew_create_foreign_join_path(root, rel, target, rows, startup, total, \
									pathkeys, required_outer, fdw_outerpath, \
									fdw_private) \
	create_foreign_join_path((root), (rel), (target), \
							 EW_PATH_ARGS(rows, startup, total, pathkeys, \
										  required_outer, fdw_outerpath, \
										  fdw_private))

/*
 * The role a foreign scan reads as: PostgreSQL 16 put it in the plan
 * (checkAsUser; RTEPermissionInfo); before, it is the range table entry's
 * (for a join, that of its first relation).
 */
static inline Oid
ew_scan_userid(ForeignScan *fsplan, EState *estate)
{
#if PG_VERSION_NUM >= 160000
	return OidIsValid(fsplan->checkAsUser) ? fsplan->checkAsUser : GetUserId();
#else
	Index		rti = fsplan->scan.scanrelid > 0 ? fsplan->scan.scanrelid :
		(Index) bms_next_member(fsplan->fs_relids, -1);
	RangeTblEntry *rte = exec_rt_fetch(rti, estate);

	return OidIsValid(rte->checkAsUser) ? rte->checkAsUser : GetUserId();
#endif
}

/*
 * The USAGE check on a foreign server: pg_foreign_server_aclcheck() until
 * PostgreSQL 15, the generic object_aclcheck() from 16 (which removed the
 * per-catalog functions).
 */
#if PG_VERSION_NUM >= 160000
#define ew_foreign_server_aclcheck(srvid, roleid, mode) \
	object_aclcheck(ForeignServerRelationId, (srvid), (roleid), (mode))
#else
#define ew_foreign_server_aclcheck(srvid, roleid, mode) \
	pg_foreign_server_aclcheck((srvid), (roleid), (mode))
#endif

/*
 * A PathKey's direction: pk_strategy (a btree strategy) until PostgreSQL
 * 17, pk_cmptype (a CompareType) from 18.
 */
#if PG_VERSION_NUM >= 180000
#define EW_PATHKEY_DESCENDING(pk) ((pk)->pk_cmptype == COMPARE_GT)
#else
#define EW_PATHKEY_DESCENDING(pk) ((pk)->pk_strategy == BTGreaterStrategyNumber)
#endif

#endif							/* EW_COMPAT_H */
