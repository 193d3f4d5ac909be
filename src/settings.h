/*
 * settings.h
 *		Settings shared by every recsys module.
 */
#ifndef RECSYS_SETTINGS_H
#define RECSYS_SETTINGS_H

/* Largest vector length accepted anywhere (GUC recsys.max_dim). */
extern int	recsys_max_dim;

/* Threads OpenBLAS may use inside a backend (GUC recsys.blas_threads). */
extern int	recsys_blas_threads;

/* Memory budget of in-memory training in kB (GUC recsys.training_memory). */
extern int	recsys_training_memory;

/* Threads per call (GUC recsys.max_workers; -1: derived, RecsysWorkers()). */
extern int	recsys_max_workers;
extern int	RecsysWorkers(void);

/* Report the memory of SPI loops into recsys.debug_memory_report (tests only). */
extern bool recsys_debug_memory;

/* Seconds between progress NOTICEs of a training, 0: none (recsys.progress_interval). */
extern int	recsys_progress_interval;

/* Test hook: record each training phase in recsys.debug_progress_report. */
extern bool recsys_debug_progress;

/* Hard ceiling for recsys.max_dim: a k x k float64 state must fit in 1 GB. */
#define RECSYS_MAX_DIM_LIMIT 8192

#endif
