/*
 * store/lookup_memory.c
 *		Memory for tables read at random positions (see lookup_memory.h).
 *
 * A table of a few megabytes read at a random row for every scored row
 * misses the TLB as well as the caches when it lies on 4 kB pages: perf of
 * per-row predict showed the prefetch of a slot in the 4 MB index of a
 * 50,000-value vocabulary stalled on its page walk, 70 % of the probe.  So
 * a table of at least LOOKUP_HUGE_PAGE bytes is aligned to a 2 MB boundary
 * and advised onto transparent huge pages before it is first written; the
 * kernel uses them where it has them ("madvise" or "always" in
 * /sys/kernel/mm/transparent_hugepage/enabled), and without them the table
 * works the same.  The padding before the aligned start is never touched,
 * so it is address space, not memory.
 */
#include "postgres.h"

#include <sys/mman.h>

#include "utils/memutils.h"

#include "store/lookup_memory.h"

/* The size of a huge page on x86-64 and arm64 (4 kB granule) */
#define LOOKUP_HUGE_PAGE ((Size) 2 * 1024 * 1024)

/*
 * Allocate a lookup table of size bytes in cxt.  The pointer may not be the
 * start of its chunk: the table is freed with its context, never by pfree.
 */
void *
LookupTableAlloc(MemoryContext cxt, Size size)
{
#ifdef MADV_HUGEPAGE
	if (size >= LOOKUP_HUGE_PAGE)
	{
		char	   *p = (char *) TYPEALIGN(LOOKUP_HUGE_PAGE,
										   MemoryContextAllocHuge(cxt, size + LOOKUP_HUGE_PAGE));

		/* advice only: a kernel without huge pages leaves the table on small ones */
		(void) madvise(p, TYPEALIGN_DOWN(LOOKUP_HUGE_PAGE, size), MADV_HUGEPAGE);
		return p;
	}
#endif
	return MemoryContextAllocHuge(cxt, size);
}
