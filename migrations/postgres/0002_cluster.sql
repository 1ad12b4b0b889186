-- What the proxies of a cluster know of each other: who is up, which calls each one holds,
-- the registrations relayed through each, and the recordings each keeps on its disk.

-- One row per proxy, refreshed by its heartbeat.
CREATE TABLE mfp_nodes (
    id         text        PRIMARY KEY,
    sip_addr   text        NOT NULL,
    api_addr   text        NOT NULL,
    started_at timestamptz NOT NULL DEFAULT now(),
    heartbeat  timestamptz NOT NULL DEFAULT now()
);

-- The calls in progress, written off the call path by the node that holds each.
CREATE TABLE mfp_live_calls (
    call_id  text        PRIMARY KEY,
    node_id  text        NOT NULL,
    account  text        NOT NULL,
    channel  text        NOT NULL,
    updated  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX mfp_live_calls_by_account ON mfp_live_calls (account);
CREATE INDEX mfp_live_calls_by_node ON mfp_live_calls (node_id);

-- Registration bindings relayed through a node, so that they survive its restart.
CREATE TABLE mfp_registrations (
    node_id  text        NOT NULL,
    aor      text        NOT NULL,
    contact  text        NOT NULL,
    binding  text        NOT NULL,
    expires  timestamptz NOT NULL,
    PRIMARY KEY (node_id, aor, contact)
);

-- Recordings: the file stays on the node that made it; the row says which node that is.
CREATE TABLE mfp_recordings (
    id       text        PRIMARY KEY,
    node_id  text        NOT NULL,
    account  text        NOT NULL,
    meta     text        NOT NULL,
    created  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX mfp_recordings_by_account ON mfp_recordings (account);

-- Values the proxies of a cluster agree on, such as the secret one proxy shows another when it
-- forwards an API request for a call or a recording the other one holds.
CREATE TABLE mfp_settings (
    name  text PRIMARY KEY,
    value text NOT NULL
);
