-- Smaller job rows and fewer index bytes a job (a pending no-op job: about 410 bytes of
-- tables and indexes before, about 290 after):
--
-- * One primary key, (id, queue), serves both lookups: by queue and id (every transition)
--   and by id alone (get without a queue), so jobs_id goes.
-- * A blob written from this release on leaves out the job's id and queue (the row's columns
--   hold them; the reader puts them back). Blobs written before keep them and read as
--   before. Workers of the previous release claim through 0005's claim, which puts them
--   back into the blobs it returns (full_blob).
-- * errors and fence are NULL until there is one (an empty array took 16 bytes a row, an
--   unclaimed job's fence 8); rows written before keep '{}' and 0, read the same.
-- * jobs_ready fills its pages (fillfactor 100): its entries come in seq order, at its right
--   end, where a split would otherwise leave a tenth of each page empty.
--
-- Rows stored before are not rewritten (an UPDATE of every row would double the table until
-- vacuum): they stay readable as they are.

ALTER TABLE jobs DROP CONSTRAINT jobs_pkey;
ALTER TABLE jobs ADD CONSTRAINT jobs_pkey PRIMARY KEY (id, queue);
DROP INDEX jobs_id;

ALTER TABLE jobs ALTER COLUMN errors DROP NOT NULL, ALTER COLUMN errors DROP DEFAULT,
                 ALTER COLUMN fence DROP NOT NULL, ALTER COLUMN fence DROP DEFAULT;

ALTER INDEX jobs_ready SET (fillfactor = 100);

-- full_blob: the blob with the job's id and queue in front, as releases before 0008 wrote
-- it and read it. Bytes are joined, never decoded (a corrupt blob stays as corrupt); a blob
-- that has them already gets them twice, with the same values, which JSON readers take.
CREATE FUNCTION full_blob(p_blob bytea, p_id text, p_queue text) RETURNS bytea
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN substring(p_blob FROM 1 FOR 1) = '\x7b'::bytea
                THEN convert_to('{"id":' || to_json(p_id)::text || ',"queue":'
                                || to_json(p_queue)::text || ',', 'UTF8')
                     || substring(p_blob FROM 2)
                ELSE p_blob END
$$;

-- 0007's wrapper of the claim for workers of the previous release, with whole blobs.
CREATE OR REPLACE FUNCTION claim(
    p_queues text[], p_limit integer, p_lease interval, p_token text, p_worker text,
    p_now timestamptz, p_remember boolean
) RETURNS TABLE (n bigint, queue text, id text, blob bytea, lease_token text, attempts integer,
                 deadline timestamptz, fence bigint)
LANGUAGE sql SET search_path FROM CURRENT AS $$
    SELECT c.n, c.queue, c.id, full_blob(c.blob, c.id, c.queue), c.lease_token, c.attempts,
           c.deadline, c.fence
      FROM claim(p_queues, p_limit, p_lease, p_token, p_worker, p_now, p_remember, 0,
                 '{}', '{}', '{}') c
$$;
