-- The model store's tables (install script only; upgrades alter them in
-- src/sql/upgrade/).  Every other part of the install script holds only
-- functions, aggregates and types, so that an upgrade can recreate them.

CREATE TABLE recsys.models (
	name		text NOT NULL CHECK (name <> ''),
	version		int NOT NULL CHECK (version >= 1),
	kind		text NOT NULL CHECK (kind IN ('embeddings', 'mmoe')),
	config		jsonb NOT NULL DEFAULT '{}',
	weights		bytea,
	metrics		jsonb NOT NULL DEFAULT '{}',
	created_by	name NOT NULL DEFAULT current_user,
	created_at	timestamptz NOT NULL DEFAULT now(),
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
	PRIMARY KEY (model, version, id),
	FOREIGN KEY (model, version) REFERENCES recsys.models (name, version) ON DELETE CASCADE
);
COMMENT ON TABLE recsys.user_vectors IS
	'user vectors of trained embeddings models, with the items each user had in the training table (sorted, for recommend''s exclude_seen)';
SELECT pg_catalog.pg_extension_config_dump('recsys.user_vectors', '');

CREATE TABLE recsys.item_vectors (
	model		text NOT NULL,
	version		int NOT NULL,
	id			bigint NOT NULL,
	embedding	real[] NOT NULL,
	PRIMARY KEY (model, version, id),
	FOREIGN KEY (model, version) REFERENCES recsys.models (name, version) ON DELETE CASCADE
);
COMMENT ON TABLE recsys.item_vectors IS 'item vectors of trained embeddings models';
SELECT pg_catalog.pg_extension_config_dump('recsys.item_vectors', '');
