-- recsys 0.1.0 -> 0.2.0: migration of the store tables, then (appended by the
-- build) every function, aggregate, type and rule of 0.2.0.
--
-- 0.2.0 renames arguments (model, version, *_column, display_position), so
-- every 0.1.0 routine is dropped here and created anew by the parts that
-- follow; stored models, versions, vectors and their data are kept.
\echo Use "ALTER EXTENSION recsys UPDATE TO '0.2.0'" to load this file. \quit

DROP AGGREGATE recsys.als_solve(double precision[],double precision,double precision[],double precision,double precision);
DROP AGGREGATE recsys.als_solve(real[],double precision,double precision[],double precision,double precision);
DROP AGGREGATE recsys.als_solve_objective(real[],double precision,double precision[],double precision,double precision);
DROP AGGREGATE recsys.auc(double precision,boolean);
DROP AGGREGATE recsys.gramian(double precision[]);
DROP AGGREGATE recsys.gramian(double precision[],double precision);
DROP AGGREGATE recsys.gramian(real[]);
DROP AGGREGATE recsys.gramian(real[],double precision);
DROP AGGREGATE recsys.log_loss(double precision,boolean);
DROP AGGREGATE recsys.predictive_variance(double precision,double precision);
DROP AGGREGATE recsys.uncertainty_weighted_loss(double precision[]);
DROP AGGREGATE recsys.uncertainty_weighted_loss(double precision[],text[]);
DROP AGGREGATE recsys.uncertainty_weights(double precision[]);
DROP AGGREGATE recsys.uncertainty_weights(double precision[],text[]);
DROP FUNCTION recsys.als_solve_accum(bytea,double precision[],double precision,double precision[],double precision,double precision);
DROP FUNCTION recsys.als_solve_accum(bytea,real[],double precision,double precision[],double precision,double precision);
DROP FUNCTION recsys.als_solve_combine(bytea,bytea);
DROP FUNCTION recsys.als_solve_final(bytea);
DROP FUNCTION recsys.als_solve_objective_final(bytea);
DROP FUNCTION recsys.auc_accum(bytea,double precision,boolean);
DROP FUNCTION recsys.auc_combine(bytea,bytea);
DROP FUNCTION recsys.auc_final(bytea);
DROP FUNCTION recsys.dot(double precision[],double precision[]);
DROP FUNCTION recsys.dot(real[],real[]);
DROP FUNCTION recsys.drop_model(text,integer);
DROP FUNCTION recsys.embedding_check_column(regclass,name,text,regtype[]);
DROP FUNCTION recsys.embedding_init(bigint,integer,bigint,double precision);
DROP FUNCTION recsys.embedding_model_version(text);
DROP FUNCTION recsys.embedding_options(text,jsonb);
DROP FUNCTION recsys.export_model(text,integer);
DROP FUNCTION recsys.frobenius(double precision[],double precision[]);
DROP FUNCTION recsys.gate_weights(text,double precision[],text,integer[],integer);
DROP FUNCTION recsys.gate_weights(text,real[],text,integer[],integer);
DROP FUNCTION recsys.gaussian_nll(double precision,double precision,double precision);
DROP FUNCTION recsys.gramian_accum(bytea,double precision[]);
DROP FUNCTION recsys.gramian_accum(bytea,double precision[],double precision);
DROP FUNCTION recsys.gramian_accum(bytea,real[]);
DROP FUNCTION recsys.gramian_accum(bytea,real[],double precision);
DROP FUNCTION recsys.gramian_combine(bytea,bytea);
DROP FUNCTION recsys.gramian_final(bytea);
DROP FUNCTION recsys.import_model(text,bytea,jsonb);
DROP FUNCTION recsys.item_embeddings(text);
DROP FUNCTION recsys.log_loss_accum(bytea,double precision,boolean);
DROP FUNCTION recsys.log_loss_combine(bytea,bytea);
DROP FUNCTION recsys.log_loss_final(bytea);
DROP FUNCTION recsys.mmoe_validate(bytea,jsonb);
DROP FUNCTION recsys.model_cache();
DROP FUNCTION recsys.ndcg_at_k(bigint[],bigint[],integer);
DROP FUNCTION recsys.next_model_version(text);
DROP FUNCTION recsys.predict(text,double precision[],integer[],double precision[],integer,integer);
DROP FUNCTION recsys.predict(text,double precision[],text,integer[],double precision[],integer,integer);
DROP FUNCTION recsys.predict(text,real[],integer[],real[],integer,integer);
DROP FUNCTION recsys.predict(text,real[],text,integer[],real[],integer,integer);
DROP FUNCTION recsys.predict_batch(text,double precision[],integer[],double precision[],integer[],integer);
DROP FUNCTION recsys.predict_batch(text,real[],integer[],real[],integer[],integer);
DROP FUNCTION recsys.predict_mc(text,double precision[],integer,integer,integer[],double precision[],integer,integer);
DROP FUNCTION recsys.predict_mc(text,real[],integer,integer,integer[],real[],integer,integer);
DROP FUNCTION recsys.predictive_variance_accum(bytea,double precision,double precision);
DROP FUNCTION recsys.predictive_variance_combine(bytea,bytea);
DROP FUNCTION recsys.predictive_variance_final(bytea);
DROP FUNCTION recsys.recall_at_k(bigint[],bigint[],integer);
DROP FUNCTION recsys.recommend(text,bigint,integer,boolean);
DROP FUNCTION recsys.resolve_model_version(text,integer);
DROP FUNCTION recsys.sampled_softmax_nll(double precision[],double precision[],integer,integer,integer);
DROP FUNCTION recsys.sgd_train(text,integer,integer,double precision,jsonb,regclass,regclass,regclass,regclass,regclass);
DROP FUNCTION recsys.train_embeddings(text,regclass,name,name,name,integer,text,integer,double precision,double precision,jsonb);
DROP FUNCTION recsys.uncertainty_loss(double precision[],double precision[],text[]);
DROP FUNCTION recsys.uncertainty_weighted_loss_final(bytea);
DROP FUNCTION recsys.uncertainty_weights_accum(bytea,double precision[]);
DROP FUNCTION recsys.uncertainty_weights_accum(bytea,double precision[],text[]);
DROP FUNCTION recsys.uncertainty_weights_combine(bytea,bytea);
DROP FUNCTION recsys.uncertainty_weights_final(bytea);
DROP FUNCTION recsys.user_embeddings(text);

-- Owners: each existing name belongs to the role that created its first
-- version, or to the extension's owner when that role no longer exists.
CREATE TABLE recsys.model_names (
	name		text PRIMARY KEY CHECK (name ~ '\S' AND octet_length(name) <= 63),
	owner		regrole NOT NULL DEFAULT current_user::regrole,
	created_at	timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE recsys.model_names IS
	'model names and their owner roles: only members of the owner add versions to or drop a model';
SELECT pg_catalog.pg_extension_config_dump('recsys.model_names', '');
INSERT INTO recsys.model_names (name, owner, created_at)
SELECT DISTINCT ON (m.name) m.name,
	coalesce((SELECT r.oid FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) m.created_by),
		(SELECT e.extowner FROM pg_catalog.pg_extension e WHERE e.extname OPERATOR(pg_catalog.=) 'recsys'))::regrole,
	m.created_at
FROM recsys.models m
ORDER BY m.name, m.version;
ALTER TABLE recsys.models DROP CONSTRAINT IF EXISTS models_name_check;
ALTER TABLE recsys.models ADD FOREIGN KEY (name) REFERENCES recsys.model_names (name) ON DELETE CASCADE;
ALTER TABLE recsys.models ADD COLUMN revision bigint NOT NULL DEFAULT 0;

ALTER TABLE recsys.user_vectors RENAME COLUMN model_name TO model;
ALTER TABLE recsys.user_vectors RENAME COLUMN model_version TO version;
ALTER TABLE recsys.item_vectors RENAME COLUMN model_name TO model;
ALTER TABLE recsys.item_vectors RENAME COLUMN model_version TO version;

ALTER TABLE recsys.user_vectors RENAME CONSTRAINT user_vectors_model_name_model_version_fkey TO user_vectors_model_version_fkey;
ALTER TABLE recsys.item_vectors RENAME CONSTRAINT item_vectors_model_name_model_version_fkey TO item_vectors_model_version_fkey;

