-- Included by the decoding_* files (\i, from the repository root, where
-- pg_regress runs).  show(data) prints a record with xids and LSNs
-- replaced, and shape ids relative to the base in the file's own id_base
-- table (found through search_path when called), so a file's output does
-- not depend on what ran before it.  With
-- sr_regress.hide_reason = on, the free-form reason of S invalidated
-- records is shown as "...".
CREATE FUNCTION show(data text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  base bigint := (SELECT b.base FROM id_base b);
  m text[];
BEGIN
  data := regexp_replace(data,
    '^\{"action":"([BC])","xid":[0-9]+,"lsn":"[0-9A-F]+/[0-9A-F]+"\}$',
    '{"action":"\1","xid":XID,"lsn":"LSN"}');
  m := regexp_match(data, '^(\{"action":"[IUDT]"(?:,"move":"(?:in|out)")?,"shapes":\[)([0-9,]+)(\].*)$');
  IF m IS NOT NULL THEN
    data := m[1] || (SELECT string_agg((x::bigint - base)::text, ',' ORDER BY o)
                       FROM unnest(string_to_array(m[2], ',')) WITH ORDINALITY AS u(x, o))
                 || m[3];
  END IF;
  m := regexp_match(data, '^(\{"action":"S","event":"[a-z]+","shape":)([0-9]+)(.*)$');
  IF m IS NOT NULL THEN
    data := m[1] || (m[2]::bigint - base)::text || m[3];
  END IF;
  data := regexp_replace(data, ',"lsn":"[0-9A-F]+/[0-9A-F]+"', ',"lsn":"LSN"');
  data := regexp_replace(data, ',"xid":[0-9]+', ',"xid":XID');
  IF current_setting('sr_regress.hide_reason', true) = 'on' THEN
    data := regexp_replace(data,
      '^(\{"action":"S","event":"invalidated",.*,"reason":)"(?:[^"\\]|\\.)+"\}$', '\1"..."}');
  END IF;
  RETURN data;
END $$;
