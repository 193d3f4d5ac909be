-- The model store's tables (install script only; upgrades alter them in
-- src/sql/upgrade/).  Every other part of the install script holds only
-- functions, aggregates and types, so that an upgrade can recreate them.

-- Each model name is backed by a sequence recsys_names.<name> owned by the
-- name's owner role (created by the trigger on model_names, 90_store_rules.sql):
-- PostgreSQL then refuses DROP ROLE while the role owns models, REASSIGN
-- OWNED moves them, DROP OWNED drops them (an sql_drop event trigger deletes
-- the name).  Any role may create sequences there (an event trigger refuses
-- every other object and roles without INSERT on model_names); nothing in it
-- is on anybody's search_path.
CREATE SCHEMA recsys_names;
COMMENT ON SCHEMA recsys_names IS
	'recsys: one sequence per model name, owned by the name''s owner role (see recsys.model_names)';
GRANT USAGE, CREATE ON SCHEMA recsys_names TO PUBLIC;

-- One row per model name: who owns it.  Versions of a name may be added or
-- dropped only by members of the owner role (row-level security in
-- 90_store_rules.sql); writers lock this row to number versions.
CREATE TABLE recsys.model_names (
	name		text PRIMARY KEY CHECK (name ~ '\S' AND octet_length(name) <= 63),
	owner		regrole NOT NULL DEFAULT current_user::regrole,
	created_at	timestamptz NOT NULL DEFAULT now(),
	-- the highest version number ever given to the name: numbers are never
	-- reused, also after a drop (recsys.next_model_version)
	last_version int NOT NULL DEFAULT 0 CHECK (last_version >= 0)
);
COMMENT ON TABLE recsys.model_names IS
	'model names and their owner roles: only members of the owner add versions to or drop a model';
SELECT pg_catalog.pg_extension_config_dump('recsys.model_names', '');

CREATE TABLE recsys.models (
	name		text NOT NULL,
	version		int NOT NULL CHECK (version >= 1),
	kind		text NOT NULL CHECK (kind IN ('embeddings', 'mmoe')),
	config		jsonb NOT NULL DEFAULT '{}',
	weights		bytea,
	metrics		jsonb NOT NULL DEFAULT '{}',
	created_by	name NOT NULL DEFAULT current_user,
	created_at	timestamptz NOT NULL DEFAULT now(),
	-- bumped by every write to the model's vectors, so that the row's
	-- identity (xmin, ctid), which keys every cache, changes with them
	revision	bigint NOT NULL DEFAULT 0,
	PRIMARY KEY (name, version)
);
COMMENT ON TABLE recsys.models IS
	'stored models, one row per (name, version): kind, config, weights (safetensors for mmoe), training log and metrics, provenance';
SELECT pg_catalog.pg_extension_config_dump('recsys.models', '');

-- Vectors of trained models, one row per entity and model version.
CREATE TABLE recsys.user_vectors (
	model		text NOT NULL,
	version		int NOT NULL,
	id			bigint NOT NULL,
	embedding	real[] NOT NULL,
	seen		bigint[] NOT NULL,
	PRIMARY KEY (model, version, id)
);
COMMENT ON TABLE recsys.user_vectors IS
	'user vectors of trained embeddings models, with the items each user had in the training table (sorted, for recommend''s exclude_seen)';
SELECT pg_catalog.pg_extension_config_dump('recsys.user_vectors', '');

CREATE TABLE recsys.item_vectors (
	model		text NOT NULL,
	version		int NOT NULL,
	id			bigint NOT NULL,
	embedding	real[] NOT NULL,
	PRIMARY KEY (model, version, id)
);
COMMENT ON TABLE recsys.item_vectors IS 'item vectors of trained embeddings models';
SELECT pg_catalog.pg_extension_config_dump('recsys.item_vectors', '');

-- Named pointers to versions (serving, canary, ...): a call without a
-- version serves the version under the alias serving, else the newest.
-- Written by recsys.set_alias, promote and rollback (06_lifecycle.sql).
CREATE TABLE recsys.model_aliases (
	model		text NOT NULL,
	alias		text NOT NULL CHECK (alias ~ '^[A-Za-z0-9_.-]+$' AND octet_length(alias) <= 63),
	version		int NOT NULL,
	PRIMARY KEY (model, alias)
);
COMMENT ON TABLE recsys.model_aliases IS
	'aliases of model versions (serving, canary, ...): calls without a version serve the version under serving, else the newest';
SELECT pg_catalog.pg_extension_config_dump('recsys.model_aliases', '');

-- The store's history: every version stored, alias moved and version
-- dropped, with who, when and from which source.  Kept after the versions
-- it names are dropped (numbering and rollback read it).
CREATE TABLE recsys.model_events (
	model		text NOT NULL,
	seq			int NOT NULL CHECK (seq >= 1),
	event		text NOT NULL CHECK (event IN ('trained', 'imported', 'promoted', 'alias_set',
		'alias_dropped', 'rolled_back', 'dropped')),
	version		int,
	alias		text,
	actor		name NOT NULL DEFAULT current_user,
	at			timestamptz NOT NULL DEFAULT now(),
	detail		jsonb NOT NULL DEFAULT '{}',
	PRIMARY KEY (model, seq)
);
COMMENT ON TABLE recsys.model_events IS
	'history of the model store, one row per event of a model name in order (seq): trained, imported, promoted, alias_set, alias_dropped, rolled_back, dropped; who (actor), when (at) and details (source, previous version)';
SELECT pg_catalog.pg_extension_config_dump('recsys.model_events', '');

-- The foreign keys (names as PostgreSQL would choose them; the vectors'
-- belong to their models rows by statement-level triggers instead,
-- recsys.vectors_touch_models and recsys.models_vectors_rules), except on a
-- Citus worker: there the tables are the shells of the coordinator's
-- reference tables, which get their foreign keys from the coordinator when
-- it converts the store (recsys.citus_attach_store); one of the worker's own
-- would collide with them.
DO $$
DECLARE
	g int := 0;
BEGIN
	IF EXISTS (SELECT FROM pg_catalog.pg_extension WHERE extname OPERATOR(pg_catalog.=) 'citus') THEN
		EXECUTE 'SELECT groupid FROM pg_catalog.pg_dist_local_group' INTO g;
	END IF;
	IF g OPERATOR(pg_catalog.=) 0 THEN
		ALTER TABLE recsys.models ADD CONSTRAINT models_name_fkey
			FOREIGN KEY (name) REFERENCES recsys.model_names (name) ON DELETE CASCADE;
		ALTER TABLE recsys.model_aliases ADD CONSTRAINT model_aliases_model_version_fkey
			FOREIGN KEY (model, version) REFERENCES recsys.models (name, version) ON DELETE CASCADE;
	END IF;
END
$$;
