-- recsys: recommender training and scoring in SQL
-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "CREATE EXTENSION recsys" to load this file. \quit

COMMENT ON SCHEMA recsys IS 'recsys: Gramian embeddings, stored MMoE models, uncertainty-weighted losses';
