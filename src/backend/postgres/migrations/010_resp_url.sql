-- Each node's RESP listener as other nodes and clients reach it (issue 15, the cache tier across
-- nodes): `redis://host:port`, `rediss://…` with TLS, '' for a node without one (`--resp-port off`)
-- or of a version before this column. Written with every heartbeat, like `url`.
ALTER TABLE beacon_nodes ADD COLUMN resp_url text NOT NULL DEFAULT '';
