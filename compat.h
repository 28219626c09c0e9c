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

#include "executor/executor.h"
#include "miscadmin.h"
#include "nodes/plannodes.h"
#include "optimizer/pathnode.h"

/*
 * create_foreignscan_path() took fdw_restrictinfo in PostgreSQL 17 (the
 * clauses a pushed-down join must see again in EvalPlanQual).
 */
#if PG_VERSION_NUM >= 170000
#define ew_create_foreignscan_path(root, rel, target, rows, startup, total, \
								   pathkeys, required_outer, fdw_outerpath, \
								   fdw_private) \
	create_foreignscan_path((root), (rel), (target), (rows), (startup), \
							(total), (pathkeys), (required_outer), \
							(fdw_outerpath), NIL, (fdw_private))
#else
#define ew_create_foreignscan_path(root, rel, target, rows, startup, total, \
								   pathkeys, required_outer, fdw_outerpath, \
								   fdw_private) \
	create_foreignscan_path((root), (rel), (target), (rows), (startup), \
							(total), (pathkeys), (required_outer), \
							(fdw_outerpath), (fdw_private))
#endif

/* create_foreign_join_path(): fdw_restrictinfo from PostgreSQL 17 too */
#if PG_VERSION_NUM >= 170000
#define ew_create_foreign_join_path(root, rel, target, rows, startup, total, \
									pathkeys, required_outer, fdw_outerpath, \
									fdw_private) \
	create_foreign_join_path((root), (rel), (target), (rows), (startup), \
							 (total), (pathkeys), (required_outer), \
							 (fdw_outerpath), NIL, (fdw_private))
#else
#define ew_create_foreign_join_path(root, rel, target, rows, startup, total, \
									pathkeys, required_outer, fdw_outerpath, \
									fdw_private) \
	create_foreign_join_path((root), (rel), (target), (rows), (startup), \
							 (total), (pathkeys), (required_outer), \
							 (fdw_outerpath), (fdw_private))
#endif

/*
 * The role a foreign scan reads as: PostgreSQL 16 put it in the plan
 * (checkAsUser); before, it is the range table entry's (for a join, that
 * of its first relation).
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
 * A PathKey's direction: pk_strategy (a btree strategy) until PostgreSQL
 * 17, pk_cmptype (a CompareType) from 18.
 */
#if PG_VERSION_NUM >= 180000
#define EW_PATHKEY_DESCENDING(pk) ((pk)->pk_cmptype == COMPARE_GT)
#else
#define EW_PATHKEY_DESCENDING(pk) ((pk)->pk_strategy == BTGreaterStrategyNumber)
#endif

#endif							/* EW_COMPAT_H */
