-- Training MMoE models in the database (src/mmoe/train.c, src/kernel/mmoe_backward.c)

CREATE FUNCTION recsys.train_mmoe(model text, source regclass, features_column name,
	label_columns name[], config jsonb, epochs int DEFAULT 10, batch_size int DEFAULT 256,
	learning_rate double precision DEFAULT 0.001, loss_weighting text DEFAULT 'uncertainty',
	categorical_column name DEFAULT NULL, context_column name DEFAULT NULL,
	display_position_column name DEFAULT NULL, validation regclass DEFAULT NULL,
	options jsonb DEFAULT '{}', seed bigint DEFAULT 0)
	RETURNS TABLE(epoch int, loss double precision, task_losses double precision[],
		log_vars double precision[], validation jsonb, seconds double precision)
	AS 'MODULE_PATHNAME', 'mmoe_train' LANGUAGE C VOLATILE SECURITY INVOKER
	SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION recsys.train_mmoe(text, regclass, name, name[], jsonb, int, int,
	double precision, text, name, name, name, regclass, jsonb, bigint) IS
	'train an MMoE model (minibatch Adam, uncertainty-weighted or fixed multi-task loss) on the rows of source and store it as the next version of model; one row per epoch with the training loss, per-task losses, log variances and validation metrics';
