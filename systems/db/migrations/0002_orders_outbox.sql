-- The unit of work of POST /orders: an order, its lines and one outbox row, written in the
-- transaction that takes the stock. The outbox row's commit time is read back by the relay with
-- pg_xact_commit_timestamp(xmin) (track_commit_timestamp = on): the lag it reports runs from the
-- order's commit to its publication.
CREATE TABLE orders (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer_id text   NOT NULL,
    total_cents bigint NOT NULL CHECK (total_cents >= 0),
    created_at  timestamptz NOT NULL DEFAULT clock_timestamp()
);

CREATE TABLE order_lines (
    order_id    bigint  NOT NULL REFERENCES orders (id),
    item_id     bigint  NOT NULL REFERENCES items (id),
    quantity    integer NOT NULL CHECK (quantity > 0),
    price_cents integer NOT NULL CHECK (price_cents >= 0),
    PRIMARY KEY (order_id, item_id)
);

CREATE TABLE outbox (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    order_id   bigint NOT NULL REFERENCES orders (id),
    topic      text   NOT NULL,
    payload    jsonb  NOT NULL,
    created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    sent_at    timestamptz
);

-- What the relay polls: the unsent rows, oldest first.
CREATE INDEX outbox_unsent ON outbox (id) WHERE sent_at IS NULL;
