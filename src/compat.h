/*
 * compat.h
 *		Every use of an API that differs between PostgreSQL major versions.
 *
 * recsys supports PostgreSQL 15 (the version it is built and tested on);
 * the guards below keep the few version-specific spots compiling on 16 and
 * 17 as well.
 */
#ifndef RECSYS_COMPAT_H
#define RECSYS_COMPAT_H

#include "postgres.h"

#include "storage/proc.h"

/* The local transaction id of this backend's current transaction */
#if PG_VERSION_NUM >= 170000
#define RecsysLocalXid() (MyProc->vxid.lxid)
#else
#define RecsysLocalXid() (MyProc->lxid)
#endif

/* This backend's index among the MaxBackends backends (-1: none) */
#if PG_VERSION_NUM >= 170000
#define RecsysBackendIndex() ((int) MyProcNumber)
#else
#define RecsysBackendIndex() (MyBackendId - 1)
#endif

#endif
