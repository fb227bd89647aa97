-- The catalogue the reads hit: one row per item, its price and its stock. The seed
-- (systems/db/postgres.py, COPY) fills it; initial_stock is what bench_reset() restores.
CREATE TABLE items (
    id            bigint  PRIMARY KEY,
    name          text    NOT NULL,
    description   text    NOT NULL,
    price_cents   integer NOT NULL CHECK (price_cents >= 0),
    stock         integer NOT NULL CHECK (stock >= 0),
    initial_stock integer NOT NULL CHECK (initial_stock >= 0)
);
