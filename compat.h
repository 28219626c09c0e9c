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
