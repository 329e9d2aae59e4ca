-- Full-text search over the hot messages (docs/SEARCH.md).
--
-- chat_unaccent(text): letters with diacritics -> their base letter, one character for one (so
-- offsets in the folded text are offsets in the original: the headline is mapped back by
-- position). Decompose (NFD), drop the combining marks, recompose (NFC: Hangul and the like come
-- back whole), then fold the few stroked letters that have no decomposition. Pure ASCII, most
-- chat text, is returned as it is without any of that.
-- The unaccent extension would be the usual tool, but the embedded PostgreSQL (the pgserver
-- wheel, also our test server) ships no contrib extensions; one function everywhere keeps a
-- query matching the same messages in every deployment, and needs no extension rights. It
-- needs a UTF8 database (normalize()). Not folded: ligatures that expand (ß, æ, œ), which a
-- one-for-one mapping cannot express. A translate() over every accented letter was measured
-- first: 0.5 ms a message (translate scans its whole list for each character), this 0.07 ms.
CREATE FUNCTION chat_unaccent(t text) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN CASE WHEN octet_length(t) = length(t) THEN t
        ELSE translate(normalize(regexp_replace(normalize(t, NFD),
                 E'[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]', '', 'g'), NFC),
             'ØøĐđŁłĦħıŦŧÐð', 'OoDdLlHhiTtDd') END;

-- chat_search: the configuration every search expression names. Created as a copy of simple;
-- chat-server re-points its mappings at start to SEARCH_LANGUAGE (storage/search.py) and
-- recomputes the stored vectors when that changes. search_settings records what it holds now.
CREATE TEXT SEARCH CONFIGURATION chat_search (COPY = pg_catalog.simple);

CREATE TABLE search_settings (
    id        boolean PRIMARY KEY DEFAULT true CHECK (id),
    language  text NOT NULL
);
INSERT INTO search_settings (language) VALUES ('simple');

-- Stored, not an expression index: ranking (ts_rank_cd) reads the vector of every match, and
-- recomputing to_tsvector per match at query time costs more than the disk it saves. Edits
-- recompute it (a generated column follows body); deletes blank body, so they match nothing.
ALTER TABLE messages ADD COLUMN search_doc tsvector
    GENERATED ALWAYS AS (to_tsvector('chat_search'::regconfig, chat_unaccent(body))) STORED;
CREATE INDEX messages_search ON messages USING gin (search_doc);
