-- Facts about the database itself, e.g. a check value sealed with the
-- secret key, so a host started with another key is refused at once.
CREATE TABLE settings (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
