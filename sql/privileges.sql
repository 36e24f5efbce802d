--
-- privileges: SELECT on the table or on every referenced and projected
-- column, row level security, and who may remove a shape
--
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS shape_router;
DROP SCHEMA IF EXISTS sr_priv CASCADE;
DROP ROLE IF EXISTS regress_sr_owner;
DROP ROLE IF EXISTS regress_sr_reader;
DROP ROLE IF EXISTS regress_sr_member;
DROP ROLE IF EXISTS regress_sr_nosel;
DROP ROLE IF EXISTS regress_sr_cols;
DROP ROLE IF EXISTS regress_sr_nokey;
DROP ROLE IF EXISTS regress_sr_bypass;
RESET client_min_messages;

CREATE FUNCTION pg_temp.try_shape(rel regclass, clause text, cols text[] DEFAULT NULL)
RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    PERFORM shape_router.add_shape(rel, clause, cols);
    RETURN 'accepted';
EXCEPTION WHEN OTHERS THEN
    DECLARE
        s text; m text; d text; h text;
    BEGIN
        GET STACKED DIAGNOSTICS s = RETURNED_SQLSTATE, m = MESSAGE_TEXT,
                                d = PG_EXCEPTION_DETAIL, h = PG_EXCEPTION_HINT;
        RETURN s || ': ' || m || coalesce(' | ' || nullif(d, ''), '')
                 || coalesce(' | hint: ' || nullif(h, ''), '');
    END;
END $$;
CREATE FUNCTION pg_temp.try_remove(id bigint)
RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    RETURN shape_router.remove_shape(id)::text;
EXCEPTION WHEN OTHERS THEN
    DECLARE
        s text; m text; d text; h text;
    BEGIN
        GET STACKED DIAGNOSTICS s = RETURNED_SQLSTATE, m = MESSAGE_TEXT,
                                d = PG_EXCEPTION_DETAIL, h = PG_EXCEPTION_HINT;
        -- shape ids vary with the tests run before: hide them
        RETURN s || ': ' || regexp_replace(m, '\m' || id || '\M', 'N')
                 || coalesce(' | ' || nullif(d, ''), '')
                 || coalesce(' | hint: ' || nullif(h, ''), '');
    END;
END $$;

CREATE ROLE regress_sr_owner;
CREATE ROLE regress_sr_reader;
CREATE ROLE regress_sr_member IN ROLE regress_sr_reader;
CREATE ROLE regress_sr_nosel;
CREATE ROLE regress_sr_cols;
CREATE ROLE regress_sr_nokey;
CREATE ROLE regress_sr_bypass BYPASSRLS;

CREATE SCHEMA sr_priv;
GRANT USAGE ON SCHEMA sr_priv TO PUBLIC;
SET search_path = sr_priv, public;

CREATE TABLE t (id int PRIMARY KEY, a int, secret text);
ALTER TABLE t REPLICA IDENTITY FULL;
ALTER TABLE t OWNER TO regress_sr_owner;
GRANT SELECT ON t TO regress_sr_reader;
GRANT INSERT, UPDATE, DELETE ON t TO regress_sr_nosel;
GRANT SELECT (id, a) ON t TO regress_sr_cols;
GRANT SELECT (a, secret) ON t TO regress_sr_nokey;

-- record the shapes made here, by label
CREATE TABLE priv_shapes (label text PRIMARY KEY, id bigint);
GRANT ALL ON priv_shapes TO PUBLIC;
CREATE FUNCTION pg_temp.add(label text, rel regclass, clause text, cols text[] DEFAULT NULL)
RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO sr_priv.priv_shapes VALUES (label, shape_router.add_shape(rel, clause, cols));
    RETURN 'accepted';
EXCEPTION WHEN OTHERS THEN
    DECLARE
        s text; m text; d text; h text;
    BEGIN
        GET STACKED DIAGNOSTICS s = RETURNED_SQLSTATE, m = MESSAGE_TEXT,
                                d = PG_EXCEPTION_DETAIL, h = PG_EXCEPTION_HINT;
        RETURN s || ': ' || m || coalesce(' | ' || nullif(d, ''), '')
                 || coalesce(' | hint: ' || nullif(h, ''), '');
    END;
END $$;

-- no SELECT at all (only INSERT, UPDATE, DELETE): 42501
SET ROLE regress_sr_nosel;
SELECT pg_temp.try_shape('t', 'a = 1') AS nosel_clause;
SELECT pg_temp.try_shape('t', NULL) AS nosel_every_row;
SELECT pg_temp.try_shape('t', 'a = 1', '{id,a}') AS nosel_columns;
SELECT pg_temp.try_shape('t', 'true') AS nosel_true;
RESET ROLE;

-- SELECT on the table
SET ROLE regress_sr_reader;
SELECT pg_temp.add('reader', 't', 'a = 1') AS reader;
SELECT pg_temp.add('reader_cols', 't', 'secret = ''x''', '{id,secret}') AS reader_cols;
RESET ROLE;
-- SELECT through membership in a role that has it
SET ROLE regress_sr_member;
SELECT pg_temp.add('member', 't', 'a = 2') AS member;
RESET ROLE;
-- the owner of the table
SET ROLE regress_sr_owner;
SELECT pg_temp.add('owner', 't', 'a = 3') AS owner;
RESET ROLE;

-- SELECT on columns id and a only
SET ROLE regress_sr_cols;
SELECT pg_temp.add('cols_id_a', 't', 'a = 4', '{id,a}') AS referenced_and_projected_granted;
SELECT pg_temp.add('cols_a', 't', 'a = 5', '{a}') AS projected_a_key_id_granted;
SELECT pg_temp.add('cols_null_clause', 't', NULL, '{id,a}') AS every_row_granted_columns;
SELECT pg_temp.try_shape('t', 'a = 6') AS projects_every_column;
SELECT pg_temp.try_shape('t', NULL) AS every_row_every_column;
SELECT pg_temp.try_shape('t', 'secret = ''x''', '{id,a}') AS references_secret;
SELECT pg_temp.try_shape('t', 'a = 7 OR secret IS NULL', '{a}') AS references_secret_in_or;
SELECT pg_temp.try_shape('t', 'a = 8', '{id,secret}') AS projects_secret;
SELECT pg_temp.try_shape('t', 'a = 9', '{secret}') AS projects_only_secret;
RESET ROLE;

-- SELECT on a and secret, but not on the key column id, which every record
-- of the shape would carry
SET ROLE regress_sr_nokey;
SELECT pg_temp.try_shape('t', 'a = 10', '{a}') AS key_not_granted;
SELECT pg_temp.try_shape('t', 'a = 11', '{a,secret}') AS key_not_granted_2;
RESET ROLE;

SELECT p.label, pg_get_userbyid(s.owner) AS owner, s.where_clause,
       (SELECT array_agg(attname ORDER BY attnum) FROM pg_attribute
         WHERE attrelid = s.relid AND attnum = ANY(s.columns)) AS columns
  FROM priv_shapes p JOIN shape_router.shapes s ON s.shape_id = p.id
 ORDER BY s.shape_id;

-- row level security
CREATE TABLE rls (id int PRIMARY KEY, tenant text, a int);
ALTER TABLE rls REPLICA IDENTITY FULL;
ALTER TABLE rls OWNER TO regress_sr_owner;
GRANT SELECT ON rls TO regress_sr_reader, regress_sr_bypass;
ALTER TABLE rls ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_policy ON rls USING (tenant = current_user);

-- the policy applies to a reader: refused rather than leaked
SET ROLE regress_sr_reader;
SELECT pg_temp.try_shape('rls', 'a = 1') AS rls_reader;
SELECT pg_temp.try_shape('rls', 'tenant = ''regress_sr_reader''') AS rls_reader_own_tenant;
SELECT pg_temp.try_shape('rls', NULL) AS rls_reader_every_row;
SET row_security = off;
SELECT pg_temp.try_shape('rls', 'a = 1') AS rls_reader_row_security_off;
RESET row_security;
RESET ROLE;
-- the table owner is not subject to the policy unless it is forced
SET ROLE regress_sr_owner;
SELECT pg_temp.add('rls_owner', 'rls', 'a = 1') AS rls_owner;
RESET ROLE;
-- a role with BYPASSRLS
SET ROLE regress_sr_bypass;
SELECT pg_temp.add('rls_bypass', 'rls', 'a = 2') AS rls_bypass;
RESET ROLE;
-- a superuser bypasses row level security
SELECT pg_temp.add('rls_superuser', 'rls', 'a = 3') AS rls_superuser;

-- forced: now it applies to the owner too
ALTER TABLE rls FORCE ROW LEVEL SECURITY;
SET ROLE regress_sr_owner;
SELECT pg_temp.try_shape('rls', 'a = 4') AS rls_forced_owner;
RESET ROLE;
SET ROLE regress_sr_bypass;
SELECT pg_temp.add('rls_forced_bypass', 'rls', 'a = 5') AS rls_forced_bypass;
RESET ROLE;
SELECT pg_temp.add('rls_forced_superuser', 'rls', 'a = 6') AS rls_forced_superuser;

-- enabled without any policy: default deny still applies to a reader
CREATE TABLE rls_nopolicy (id int PRIMARY KEY, a int);
ALTER TABLE rls_nopolicy REPLICA IDENTITY FULL;
ALTER TABLE rls_nopolicy OWNER TO regress_sr_owner;
GRANT SELECT ON rls_nopolicy TO regress_sr_reader;
ALTER TABLE rls_nopolicy ENABLE ROW LEVEL SECURITY;
SET ROLE regress_sr_reader;
SELECT pg_temp.try_shape('rls_nopolicy', 'a = 1') AS rls_no_policy_reader;
RESET ROLE;
-- disabled again: accepted
ALTER TABLE rls_nopolicy DISABLE ROW LEVEL SECURITY;
SET ROLE regress_sr_reader;
SELECT pg_temp.add('rls_disabled_reader', 'rls_nopolicy', 'a = 1') AS rls_disabled_reader;
RESET ROLE;

SELECT p.label, pg_get_userbyid(s.owner) AS owner, s.relid::regclass AS rel, s.where_clause
  FROM priv_shapes p JOIN shape_router.shapes s ON s.shape_id = p.id
 WHERE s.relid IN ('rls'::regclass, 'rls_nopolicy'::regclass)
 ORDER BY s.shape_id;

-- remove_shape: only the shape's owner or a superuser
-- a role without any privilege
SET ROLE regress_sr_nosel;
SELECT pg_temp.try_remove(id) AS nosel_removes_readers FROM priv_shapes WHERE label = 'reader';
-- another role with SELECT on the table
SET ROLE regress_sr_cols;
SELECT pg_temp.try_remove(id) AS cols_removes_readers FROM priv_shapes WHERE label = 'reader';
-- the table's owner does not own the reader's shape
SET ROLE regress_sr_owner;
SELECT pg_temp.try_remove(id) AS table_owner_removes_readers FROM priv_shapes WHERE label = 'reader';
-- the reader does not own the member's shape
SET ROLE regress_sr_reader;
SELECT pg_temp.try_remove(id) AS reader_removes_members FROM priv_shapes WHERE label = 'member';
-- a shape that does not exist: false, whoever asks
SET ROLE regress_sr_nosel;
SELECT pg_temp.try_remove(-1) AS nosel_removes_nothing;
RESET ROLE;
SELECT count(*) AS still_there FROM priv_shapes p JOIN shape_router.shapes s ON s.shape_id = p.id
 WHERE p.label IN ('reader', 'member');
-- the owner removes its own shape
SET ROLE regress_sr_reader;
SELECT pg_temp.try_remove(id) AS reader_removes_own FROM priv_shapes WHERE label = 'reader';
SELECT pg_temp.try_remove(id) AS reader_removes_own_again FROM priv_shapes WHERE label = 'reader';
RESET ROLE;
SET ROLE regress_sr_cols;
SELECT pg_temp.try_remove(id) AS cols_removes_own FROM priv_shapes WHERE label = 'cols_a';
RESET ROLE;
-- a member of the owning role acts as the owner, as for any object
SET ROLE regress_sr_member;
SELECT pg_temp.try_remove(id) AS member_removes_readers FROM priv_shapes WHERE label = 'reader_cols';
RESET ROLE;
-- a superuser removes anybody's shape
SELECT pg_temp.try_remove(id) AS superuser_removes_members FROM priv_shapes WHERE label = 'member';
SELECT pg_temp.try_remove(id) AS superuser_removes_owners FROM priv_shapes WHERE label = 'owner';
SELECT p.label FROM priv_shapes p JOIN shape_router.shapes s ON s.shape_id = p.id ORDER BY s.shape_id;

-- clean up
SELECT count(*) FILTER (WHERE NOT shape_router.remove_shape(s.shape_id)) AS not_removed
  FROM shape_router.shapes s
 WHERE s.relid IN ('t'::regclass, 'rls'::regclass, 'rls_nopolicy'::regclass);
SET client_min_messages = warning;
DROP SCHEMA sr_priv CASCADE;
DROP ROLE regress_sr_owner;
DROP ROLE regress_sr_member;
DROP ROLE regress_sr_reader;
DROP ROLE regress_sr_nosel;
DROP ROLE regress_sr_cols;
DROP ROLE regress_sr_nokey;
DROP ROLE regress_sr_bypass;
RESET client_min_messages;
RESET search_path;
