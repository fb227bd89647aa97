-- Who connects: the services as bench_app, the outbox relay as bench_relay, so that
-- pg_stat_statements (per role) tells the services' statements from the relay's and the
-- harness's own. Roles are cluster-wide: an existing server may have them already.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'bench_app') THEN
        CREATE ROLE bench_app LOGIN;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'bench_relay') THEN
        CREATE ROLE bench_relay LOGIN;
    END IF;
END
$$;

GRANT SELECT ON items TO bench_app, bench_relay;
GRANT UPDATE (stock) ON items TO bench_app;
GRANT SELECT, INSERT ON orders, order_lines, outbox TO bench_app;
GRANT SELECT, UPDATE (sent_at) ON outbox TO bench_relay;
GRANT SELECT ON orders, order_lines TO bench_relay;
GRANT SELECT, INSERT, UPDATE ON sink_events TO bench_relay;

CREATE EXTENSION IF NOT EXISTS pg_stat_statements;

-- What the writes changed, undone, so that every trial starts alike: called by the harness
-- before each trial (system.toml's reset), then VACUUM.
CREATE PROCEDURE bench_reset()
LANGUAGE plpgsql AS $$
BEGIN
    TRUNCATE sink_events, outbox, order_lines, orders RESTART IDENTITY;
    UPDATE items SET stock = initial_stock WHERE stock <> initial_stock;
END
$$;
