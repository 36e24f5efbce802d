
# Copyright (c) shape_router developers
#
# ALTER EXTENSION shape_router UPDATE from 0.1, with shapes in the catalog
# and a slot streaming across the update; then pg_dump and pg_restore of a
# database with shapes into fresh databases.
#
# The oracles are shape_router's own: a stream across the update must send
# what a stream of a fresh 0.2 database sends for the same statements, an
# updated catalog must be a fresh one, and a restored database must route
# what the dumped one routes.

use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;

use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use SrTap;
use Test::More;
use Time::HiRes qw(usleep);

# Records without what differs between two databases: B and C (a database's
# own transactions), xids and LSNs.
sub records_only
{
	my ($lines) = @_;
	return [ grep { !/^\{"action":"[BC]"/ } @$lines ];
}

sub data_of
{
	my ($rows) = @_;
	return [ map { $_->[1] } @$rows ];
}

# ---- The update from 0.1 ----------------------------------------------------
my $setup = q{
CREATE TABLE todos (id int PRIMARY KEY, user_id int, done bool, title text);
ALTER TABLE todos REPLICA IDENTITY FULL;
CREATE TABLE notes (id int PRIMARY KEY, user_id int, body text);
INSERT INTO todos VALUES (1, 42, false, 'a'), (2, 7, false, 'b');
SELECT shape_router.add_shape('todos', 'user_id = 42');
SELECT shape_router.add_shape('todos', 'done', ARRAY['title']);
};
my $before = q{
INSERT INTO todos VALUES (3, 42, false, 'c');
UPDATE todos SET done = true WHERE id = 1;
};
my $after = q{
UPDATE todos SET user_id = 7 WHERE id = 3;
INSERT INTO todos VALUES (4, 42, true, 'd');
CALL shape_router.add_shape_concurrently('notes', 'user_id = 42');
SELECT shape_router.add_shape('todos', 'user_id = 7', ARRAY['title']);
INSERT INTO notes VALUES (1, 42, 'n1'), (2, 7, 'n2');
UPDATE notes SET body = 'm1' WHERE id = 1;
UPDATE notes SET user_id = 42 WHERE id = 2;
DELETE FROM notes WHERE id = 1;
UPDATE todos SET title = 'cc' WHERE id = 3;
SELECT shape_router.resync_shapes(ARRAY[1]::bigint[]);
INSERT INTO todos VALUES (100, 42, false, 'marker');
};

my $old = sr_node('from01');
$old->safe_psql('postgres', q{
DROP EXTENSION shape_router;
CREATE EXTENSION shape_router VERSION '0.1';
});
is($old->safe_psql('postgres',
		"SELECT extversion FROM pg_extension WHERE extname = 'shape_router'"),
	'0.1', 'CREATE EXTENSION ... VERSION 0.1 installs the old catalog');
ok(!$old->safe_psql('postgres', q{
SELECT count(*) FROM pg_attribute
 WHERE attrelid = 'shape_router.shapes'::regclass AND attname = 'pending'}),
	'the 0.1 catalog has no pending column');
$old->safe_psql('postgres', $setup);
$old->safe_psql('postgres', q{
SELECT 'init' FROM pg_create_logical_replication_slot('live', 'shape_router');
SELECT 'init' FROM pg_create_logical_replication_slot('replay', 'shape_router');
});

# slot live: a walsender streaming while the extension is updated
my $live_file = "${PostgreSQL::Test::Utils::tmp_check}/009_live.out";
my ($live_out, $live_err) = ('', '');
my $live = IPC::Run::start(
	[
		'pg_recvlogical', '-d', $old->connstr('postgres'),
		'-S', 'live', '--start', '--no-loop', '-s', '1', '-F', '0',
		'-f', $live_file
	],
	'>', \$live_out, '2>', \$live_err,
	IPC::Run::timeout($PostgreSQL::Test::Utils::timeout_default));

$old->safe_psql('postgres', $before);
$old->safe_psql('postgres', 'ALTER EXTENSION shape_router UPDATE');
is($old->safe_psql('postgres',
		"SELECT extversion FROM pg_extension WHERE extname = 'shape_router'"),
	'0.2', 'ALTER EXTENSION shape_router UPDATE goes to 0.2');
$old->safe_psql('postgres', $after);

my $received = 0;
for (1 .. 10 * $PostgreSQL::Test::Utils::timeout_default)
{
	if (-e $live_file && slurp_file($live_file) =~ /"id":100,"user_id":42/)
	{
		$received = 1;
		last;
	}
	usleep(100_000);
}
ok($received, 'the stream goes on across the update')
  or diag("pg_recvlogical stderr: $live_err");
$live->kill_kill;
my @live_lines = grep { length } split /\n/, slurp_file($live_file);
sr_save('009_live', \@live_lines);

# slot replay: a stream that starts before the update, decoded afterwards
my $replay = data_of(sr_get($old, 'replay'));
sr_compare_records(\@live_lines, $replay,
	'a stream that starts before the update, decoded after it, sends the same');

# the oracle: the same statements on a fresh 0.2 database
my $new = sr_node('fresh02');
$new->safe_psql('postgres', $setup);
$new->safe_psql('postgres',
	"SELECT 'init' FROM pg_create_logical_replication_slot('live', 'shape_router')");
$new->safe_psql('postgres', $before);
$new->safe_psql('postgres', $after);
my $fresh = data_of(sr_get($new, 'live'));
sr_save('009_fresh', $fresh);
sr_compare_records(records_only(\@live_lines), records_only($fresh),
	'across the update the stream sends what a fresh 0.2 database sends');
ok(!grep({ /"event":"(removed|invalidated)"/ } @live_lines),
	'the update removes and invalidates no shape');

# an updated catalog is a fresh one
my $describe = q{
SELECT string_agg(attname || ' ' || format_type(atttypid, atttypmod)
				  || CASE WHEN attnotnull THEN ' not null' ELSE '' END, ', '
				  ORDER BY attnum)
  FROM pg_attribute
 WHERE attrelid = 'shape_router.shapes'::regclass AND attnum > 0
   AND NOT attisdropped
UNION ALL
SELECT string_agg(pg_describe_object(classid, objid, 0), ', '
				  ORDER BY pg_describe_object(classid, objid, 0))
  FROM pg_depend
 WHERE refobjid = (SELECT oid FROM pg_extension WHERE extname = 'shape_router')
   AND deptype = 'e'
UNION ALL
SELECT string_agg(indexrelid::regclass || ' ' || pg_get_indexdef(indexrelid), ', '
				  ORDER BY indexrelid::regclass::text)
  FROM pg_index WHERE indrelid = 'shape_router.shapes'::regclass
UNION ALL
SELECT array_to_string(ARRAY(SELECT unnest(extconfig)::regclass::text), ', ')
	   || ' / ' || array_to_string(extcondition, ', ')
  FROM pg_extension WHERE extname = 'shape_router'
};
is($old->safe_psql('postgres', $describe), $new->safe_psql('postgres', $describe),
	'the updated catalog, members, indexes and dump configuration are a fresh install\'s');
$old->stop;

# ---- pg_dump and pg_restore --------------------------------------------------
my $node = $new;
$node->safe_psql('postgres', q{
CREATE ROLE alice LOGIN;
CREATE SCHEMA app;
CREATE TABLE app."Items" (id int PRIMARY KEY, gone int, price int, name text,
						  color text);
GRANT USAGE ON SCHEMA app TO alice;
GRANT SELECT ON app."Items" TO alice;
ALTER TABLE app."Items" DROP COLUMN gone;
INSERT INTO app."Items" VALUES (1, 20, 'apple', 'red'), (2, 5, 'beet', 'red');
SELECT shape_router.add_shape('app."Items"', 'price > 10', ARRAY['name']);
SELECT shape_router.add_shape('app."Items"', 'color = ''red''');
SELECT shape_router.add_shape('app."Items"', 'price < 0');
SELECT shape_router.remove_shape(currval('shape_router.shapes_shape_id_seq'));
ALTER TABLE app."Items" RENAME COLUMN color TO colour;
});
$node->safe_psql('postgres', q{
SET ROLE alice;
SELECT shape_router.add_shape('app."Items"', 'name LIKE ''a%''', ARRAY['price']);
});
my $next_src = $node->safe_psql('postgres',
	"SELECT last_value + 1 FROM shape_router.shapes_shape_id_seq");

# what a shape is, with names instead of numbers
my $shapes_sql = q{
SELECT shape_id, relid::regclass, pg_get_expr(qual, relid),
	   (SELECT array_agg(attname ORDER BY attnum) FROM pg_attribute
		 WHERE attrelid = relid AND attnum = ANY (columns)),
	   pg_get_userbyid(owner), created_at
  FROM shape_router.shapes ORDER BY shape_id
};
my $matching_sql = q{
SELECT shape_router.matching_shapes('app."Items"', r)
  FROM (VALUES ('{"id": 9, "price": 30, "name": "avocado", "colour": "red"}'::jsonb),
			   ('{"id": 9, "price": 1, "name": "kiwi", "colour": "red"}'),
			   ('{"id": 9, "price": 11, "name": "fig", "colour": "green"}')) v(r)
};
my $src_shapes = $node->safe_psql('postgres', $shapes_sql);
my $src_matching = $node->safe_psql('postgres', $matching_sql);
like($src_shapes, qr/colour/, 'the catalog knows the renamed column');

my $dump = "${PostgreSQL::Test::Utils::tmp_check}/009.dump";
$node->command_ok([ 'pg_dump', '-Fc', '-f', $dump, '-d', $node->connstr('postgres') ],
	'pg_dump of a database with shapes');

sub restore_into
{
	my ($db, @args) = @_;
	$node->safe_psql('postgres', "CREATE DATABASE $db");
	my ($stdout, $stderr);
	IPC::Run::run([ 'pg_restore', '-d', $node->connstr($db), @args, $dump ],
		'>', \$stdout, '2>', \$stderr);
	return ($? >> 8, $stderr);
}

my ($rc, $err) = restore_into('restored');
is($rc, 0, 'pg_restore into a fresh database succeeds');
is($err, '', 'pg_restore reports nothing');
is($node->safe_psql('restored', $shapes_sql), $src_shapes,
	'the restored shapes have their ids, tables, predicates, columns, owners and times');
is($node->safe_psql('restored', $matching_sql), $src_matching,
	'the restored shapes match what the dumped ones match');
is($node->safe_psql('restored', 'SELECT count(*) FROM shape_router.shapes_dump'), '0',
	'shapes_dump stays empty');
is($node->safe_psql('restored',
		"SELECT shape_router.add_shape('app.\"Items\"', 'price = 1')"),
	$next_src, 'add_shape continues after the dumped sequence');

# a stream of the restored database routes as one of the dumped database
$node->safe_psql('restored', "SELECT shape_router.remove_shape($next_src)");
my $dml = q{
INSERT INTO app."Items" VALUES (3, 30, 'avocado', 'red');
UPDATE app."Items" SET price = 1 WHERE id = 3;
DELETE FROM app."Items" WHERE id = 1;
};
my %stream;
for my $db ('postgres', 'restored')
{
	$node->safe_psql($db, qq{
SELECT 'init' FROM pg_create_logical_replication_slot('dumped_$db', 'shape_router');
SELECT shape_router.resync_shapes();
});
	$node->safe_psql($db, $dml);
	my $rows = $node->safe_psql($db,
		"SELECT data FROM pg_logical_slot_get_changes('dumped_$db', NULL, NULL)");
	# resync_shapes() reports in catalog order, which a restore changes
	my @r = @{ records_only([ split /\n/, $rows ]) };
	$stream{$db} = [ (sort grep { /"event":"synced"/ } @r),
					 grep { !/"event":"synced"/ } @r ];
}
ok(grep({ /"action":"I","shapes":\[5,6,8\]|"shapes":\[5\]/ } @{ $stream{postgres} }),
	'the dumped database streams the insert');
sr_compare_records($stream{restored}, $stream{postgres},
	'the restored database streams what the dumped one streams');

# a plain-format dump, through psql
my $plain = "${PostgreSQL::Test::Utils::tmp_check}/009.sql";
$node->command_ok([ 'pg_dump', '-f', $plain, '-d', $node->connstr('postgres') ],
	'pg_dump in plain format');
$node->safe_psql('postgres', 'CREATE DATABASE plain');
$node->command_ok(
	[ 'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', $node->connstr('plain'), '-f', $plain ],
	'psql restores the plain dump');
is($node->safe_psql('plain', $shapes_sql), $src_shapes,
	'the plain dump restores the same shapes');

# the owner's role is not there: the restoring role owns the shape, and says so
$node->safe_psql('postgres', 'ALTER ROLE alice RENAME TO bob');
# (pg_restore shows the server's warnings with --verbose only)
($rc, $err) = restore_into('noalice', '--verbose');
like($err, qr/role "alice" of shape 8 does not exist; its owner is now/,
	'a missing owner role is reported');
is($node->safe_psql('noalice',
		'SELECT pg_get_userbyid(owner) FROM shape_router.shapes WHERE shape_id = 8'),
	$node->safe_psql('noalice', 'SELECT current_user'),
	'and the restoring role owns the shape');
is($node->safe_psql('noalice', 'SELECT count(*) FROM shape_router.shapes'), '7',
	'every shape is restored');

# rows that no longer fit are reported and skipped; the others are restored
my ($ret, $out, $stderr) = $node->psql('restored', q{
INSERT INTO shape_router.shapes_dump VALUES
	(100, 'public.nope', NULL, NULL, 'postgres', now()),
	(101, 'app."Items"', 'nosuch > 1', NULL, 'postgres', now()),
	(102, 'app."Items"', 'price > 1', '{nosuch}', 'postgres', now()),
	(103, 'app."Items"', 'price > 2', '{name}', 'postgres', now());
SELECT shape_id, pg_get_expr(qual, relid), columns FROM shape_router.shapes
 WHERE shape_id >= 100;
});
is($ret, 0, 'restoring rows that do not fit is no error');
like($stderr, qr/shape 100 was not restored: relation "public.nope" does not exist/,
	'a missing table is reported');
like($stderr, qr/shape 101 on table app."Items" was not restored: column "nosuch" does not exist/,
	'a WHERE clause that no longer fits is reported');
like($stderr, qr/shape 102 on table app."Items" was not restored: column "nosuch" of relation "Items" does not exist/,
	'a missing column is reported');
is($out, "103|(price > 2)|{3}", 'the row that fits is restored');
is($node->safe_psql('restored',
		'SELECT shape_id, error FROM shape_router.shapes_dump ORDER BY 1'),
	qq{100|relation "public.nope" does not exist
101|column "nosuch" does not exist
102|column "nosuch" of relation "Items" does not exist},
	'the rows that do not fit stay in shapes_dump, with the reason');
($ret, $out, $stderr) = $node->psql('restored', q{
INSERT INTO shape_router.shapes_dump (shape_id, table_name) VALUES (NULL, 'app."Items"');
});
like($stderr, qr/ERROR:  a dumped shape must have an id and a table/,
	'a dumped row without an id is an error');
my $again = "${PostgreSQL::Test::Utils::tmp_check}/009_again.sql";
$node->command_ok([ 'pg_dump', '-f', $again, '-d', $node->connstr('restored') ],
	'pg_dump of the restored database');
like(slurp_file($again), qr/^101\tapp."Items"\tnosuch > 1\t/m,
	'its dump carries the shapes that could not be restored');

done_testing();
