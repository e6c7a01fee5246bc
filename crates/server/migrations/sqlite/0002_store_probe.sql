-- The readiness probe's table: `/readyz` writes a row (more than a page) through the
-- same writer path as every other write, proving the database can take writes now.
CREATE TABLE store_probe (
    id  INTEGER PRIMARY KEY AUTOINCREMENT,
    at  INTEGER NOT NULL,
    pad BLOB    NOT NULL
);
