-- One schema for PostgreSQL and SQLite: TEXT ids, BIGINT numbers (times are
-- milliseconds since the Unix epoch, flags are 0/1), JSON documents as TEXT.

CREATE TABLE providers (
    id                   TEXT PRIMARY KEY,
    name                 TEXT NOT NULL UNIQUE,
    system_type          TEXT NOT NULL,
    host                 TEXT NOT NULL,
    port                 BIGINT NOT NULL,
    username             TEXT NOT NULL,
    password_sealed      TEXT NOT NULL,
    use_ssl              BIGINT NOT NULL,
    ca_certificate_pem   TEXT,
    insecure             BIGINT NOT NULL,
    connection_status    TEXT NOT NULL,
    compatibility        TEXT NOT NULL,
    version              TEXT NOT NULL,
    manufacturer         TEXT NOT NULL,
    scan_status          TEXT NOT NULL,
    last_scan_at         BIGINT,
    last_scan_success_at BIGINT,
    next_scan_at         BIGINT,
    last_scan_error      TEXT,
    created_at           BIGINT NOT NULL,
    UNIQUE (system_type, host, port)
);

CREATE TABLE systems (
    id                        TEXT PRIMARY KEY,
    native_guid               TEXT NOT NULL UNIQUE,
    provider_id               TEXT REFERENCES providers (id) ON DELETE SET NULL,
    system_type               TEXT NOT NULL,
    native_id                 TEXT NOT NULL,
    name                      TEXT NOT NULL,
    serial_number             TEXT NOT NULL,
    model                     TEXT NOT NULL,
    firmware_version          TEXT NOT NULL,
    compatibility             TEXT NOT NULL,
    reachable                 BIGINT NOT NULL,
    discovery_status          TEXT NOT NULL,
    last_discovery_at         BIGINT,
    last_discovery_success_at BIGINT,
    next_discovery_at         BIGINT,
    last_discovery_error      TEXT,
    data                      TEXT NOT NULL,
    created_at                BIGINT NOT NULL
);
CREATE INDEX systems_provider ON systems (provider_id);

CREATE TABLE pools (
    id          TEXT PRIMARY KEY,
    system_id   TEXT NOT NULL REFERENCES systems (id) ON DELETE CASCADE,
    native_guid TEXT NOT NULL UNIQUE,
    native_id   TEXT NOT NULL,
    name        TEXT NOT NULL,
    visible     BIGINT NOT NULL,
    data        TEXT NOT NULL,
    updated_at  BIGINT NOT NULL
);
CREATE INDEX pools_system ON pools (system_id);

CREATE TABLE ports (
    id          TEXT PRIMARY KEY,
    system_id   TEXT NOT NULL REFERENCES systems (id) ON DELETE CASCADE,
    native_guid TEXT NOT NULL UNIQUE,
    native_id   TEXT NOT NULL,
    name        TEXT NOT NULL,
    visible     BIGINT NOT NULL,
    data        TEXT NOT NULL,
    updated_at  BIGINT NOT NULL
);
CREATE INDEX ports_system ON ports (system_id);

-- Hosts are global, keyed by their own identity, linked to every system
-- that reports them.
CREATE TABLE hosts (
    id         TEXT PRIMARY KEY,
    native_id  TEXT NOT NULL UNIQUE,
    host_name  TEXT NOT NULL,
    data       TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE system_hosts (
    system_id TEXT NOT NULL REFERENCES systems (id) ON DELETE CASCADE,
    host_id   TEXT NOT NULL REFERENCES hosts (id) ON DELETE CASCADE,
    visible   BIGINT NOT NULL,
    PRIMARY KEY (system_id, host_id)
);
CREATE INDEX system_hosts_host ON system_hosts (host_id);

CREATE TABLE capability_definitions (
    system_id TEXT NOT NULL REFERENCES systems (id) ON DELETE CASCADE,
    uid       TEXT NOT NULL,
    data      TEXT NOT NULL,
    PRIMARY KEY (system_id, uid)
);

CREATE TABLE tasks (
    id          TEXT PRIMARY KEY,
    operation   TEXT NOT NULL,
    target_kind TEXT NOT NULL,
    target_id   TEXT NOT NULL,
    target_name TEXT NOT NULL,
    status      TEXT NOT NULL,
    progress    BIGINT NOT NULL,
    message     TEXT NOT NULL,
    origin      TEXT NOT NULL,
    node        TEXT,
    created_at  BIGINT NOT NULL,
    started_at  BIGINT,
    ended_at    BIGINT
);
CREATE INDEX tasks_created ON tasks (created_at);
CREATE INDEX tasks_target ON tasks (target_id);

-- At most one job per (kind, target): never two discoveries of one system
-- at a time, and a request while one is pending joins it.
CREATE TABLE jobs (
    id               TEXT PRIMARY KEY,
    kind             TEXT NOT NULL,
    target_id        TEXT NOT NULL,
    task_id          TEXT NOT NULL,
    origin           TEXT NOT NULL,
    due_at           BIGINT NOT NULL,
    lease_owner      TEXT,
    lease_expires_at BIGINT,
    attempts         BIGINT NOT NULL,
    UNIQUE (kind, target_id)
);
CREATE INDEX jobs_due ON jobs (due_at);
