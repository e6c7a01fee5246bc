-- The readiness probe's table: `/readyz` writes a row through the same writer path as
-- every other write, proving the database can take writes now.
CREATE TABLE store_probe (
    id  BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at  BIGINT NOT NULL,
    pad BYTEA  NOT NULL
);
