-- The sink the relay publishes to, and its idempotent consumer in one: a delivery of an event
-- already there counts as a duplicate (deliveries > 1) instead of a second event. It is written
-- in its own transaction, before the outbox row is marked sent, so a relay that dies (or a
-- database that restarts) between the two delivers that event again: at least once, never lost.
CREATE TABLE sink_events (
    event_id           bigint  PRIMARY KEY,  -- the outbox row's id
    order_id           bigint  NOT NULL,
    deliveries         integer NOT NULL DEFAULT 1 CHECK (deliveries >= 1),
    first_delivered_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
