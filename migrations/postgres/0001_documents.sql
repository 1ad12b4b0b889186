-- The /v2 documents (accounts, users, devices, callflows, metaflows), one row each.
-- `doc` is the JSON text exactly as the API stored it (key order kept, which jsonb would not);
-- a NULL `doc` is a removal, kept so that every proxy learns of it. `seq` grows with every
-- write: a proxy asks for the rows past the last `seq` it has seen.
CREATE TABLE mfp_documents (
    collection text   NOT NULL,
    account    text   NOT NULL,
    id         text   NOT NULL,
    rev        text,
    doc        text,
    seq        bigint NOT NULL,
    PRIMARY KEY (collection, account, id)
);
CREATE INDEX mfp_documents_by_seq ON mfp_documents (seq);
CREATE SEQUENCE mfp_documents_seq;
