-- Files in the database (issue 15, `[cluster] file_store = "database"`): blobs by
-- content key (SHA-256, hex) in 1 MiB chunks, so every node sharing the database can
-- read attachments, recordings and plugin components. A `blob` row is written in the
-- transaction that writes its chunks: it exists only when the file is whole.
CREATE TABLE blob (
    key        TEXT PRIMARY KEY,
    size       BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE TABLE blob_chunk (
    key   TEXT NOT NULL REFERENCES blob(key) ON DELETE CASCADE,
    n     BIGINT NOT NULL,
    bytes BLOB NOT NULL,
    PRIMARY KEY (key, n)
);
-- The blob key of an installed plugin's component, when it was installed in
-- database mode; a node without the component materialises it from there.
ALTER TABLE plugin ADD COLUMN component_blob TEXT;
-- The blob key of a call's recording once the node that recorded it kept it in the
-- database; other nodes serve it from there.
ALTER TABLE call_record ADD COLUMN recording_blob TEXT;
