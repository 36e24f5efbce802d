# CALL shape_router.add_shape_concurrently() when its session dies
# (docs/concurrent.md): the shape stays pending, streams write nothing for
# it (they only track it), and the next call removes it with a NOTICE,
# which streams report as S removed with its reason.  Checked twice:
#
#   1. the calling backend is terminated while it waits for a writer;
#   2. the server crashes (immediate stop) while a call waits; after the
#      restart the slot still streams exactly, and the next call cleans up.
#
# Between the two, a shape added through the call on a table busy with
# writers routes exactly: its records equal those of a shape added by
# add_shape() (which locks) with the same clause, from the later S added.
use strict;
use warnings;

use File::Basename;
use lib dirname(__FILE__);

use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use SrTap;
use Test::More;

my $timeout = $PostgreSQL::Test::Utils::timeout_default;
my $node    = sr_node('conc');

sub q1 { return $node->safe_psql('postgres', $_[0]); }

q1(q{
CREATE TABLE t (id int PRIMARY KEY, k int NOT NULL, note text);
INSERT INTO t SELECT g, g % 5, 'n' FROM generate_series(1, 50) g;
SELECT pg_create_logical_replication_slot('s', 'shape_router');
});

# A call in a psql of its own, left running; its backend pid.
sub start_call
{
	my ($clause) = @_;
	my ($in, $out, $err) = ('', '', '');
	my $h = IPC::Run::start(
		[
			'psql', '-X', '-d', $node->connstr('postgres'), '-c',
			"CALL shape_router.add_shape_concurrently('t', '$clause')"
		],
		'<', \$in, '>', \$out, '2>', \$err);
	$node->poll_query_until('postgres', qq{
SELECT count(*) > 0 FROM shape_router.shapes WHERE pending
})
	  or die "the call did not register its shape";
	my $pid = q1(q{
SELECT pid FROM pg_stat_activity
 WHERE query LIKE 'CALL shape_router.add_shape_concurrently%'});
	return ($h, $pid, \$err);
}

sub pending_ids
{
	return q1("SELECT string_agg(shape_id::text, ',' ORDER BY shape_id) FROM shape_router.shapes WHERE pending");
}

sub changes
{
	return [ map { $_->[1] } @{ sr_get($node, 's') } ];
}

# ---- 1. the calling backend is terminated ----------------------------------

my $writer = $node->background_psql('postgres');
$writer->query_safe("BEGIN; INSERT INTO t VALUES (100, 1, 'in flight');");
my ($h, $pid, $err) = start_call('k = 1');
my $left = pending_ids();
like($left, qr/^\d+$/, "the call waits for the writer with shape $left pending");
q1("UPDATE t SET k = 1 WHERE id = 2");
q1("SELECT pg_terminate_backend($pid)");
$h->finish;
like($$err, qr/terminat/, 'the caller saw its session end');
is(pending_ids(), $left, 'the shape stays pending after the session died');
$writer->query_safe("COMMIT;");
q1("UPDATE t SET note = 'later' WHERE id = 1");
is_deeply(changes(), [], 'streams write nothing for a pending shape');

my ($out, $notice) = ('', '');
$node->psql('postgres',
	"CALL shape_router.add_shape_concurrently('t', 'k = 2')",
	stdout => \$out, stderr => \$notice);
like($notice, qr/NOTICE:  removed shape $left, which an add_shape_concurrently\(\) that did not finish left pending/,
	'the next call removes the abandoned shape, with a NOTICE');
my $s2 = $out;
is(pending_ids(), '', 'no pending shape is left');
my $rows = changes();
ok( (grep { /"event":"removed","shape":$left,.*"reason":"add_shape_concurrently\(\) did not finish"/ } @$rows),
	'S removed, with the reason');
ok((grep { /"event":"added","shape":$s2,/ } @$rows), "S added for shape $s2");

# ---- the call on a busy table routes what add_shape routes ------------------

# writers in a loop while the call runs; then a shape through add_shape
# (SHARE lock) with the same clause; from its S added on both have the
# same records
my $busy = $node->background_psql('postgres');
$busy->query_until(qr/started/, q{
\echo started
DO $$ BEGIN
  FOR i IN 1..400 LOOP
    UPDATE t SET k = (k + 1) % 5 WHERE id = 1 + (i * 7) % 50;
    IF i % 10 = 0 THEN DELETE FROM t WHERE id = 1 + (i * 3) % 50;
      INSERT INTO t VALUES (1 + (i * 3) % 50, i % 5, 'again') ON CONFLICT DO NOTHING;
    END IF;
    COMMIT;
  END LOOP;
END $$;
});
my $sc = q1("CALL shape_router.add_shape_concurrently('t', 'k = 3')");
my $sl = q1("SELECT shape_router.add_shape('t', 'k = 3')");
$busy->quit;
q1("UPDATE t SET note = note || '+'");    # every row: one U per member
$rows = changes();
my (@conc, @lock);
my $from = 0;
for my $r (@$rows)
{
	$from = 1 if $r =~ /"event":"added","shape":$sl,/;
	next unless $from && $r =~ /"shapes":\[([0-9,]+)\]/;
	my %in = map { $_ => 1 } split /,/, $1;
	(my $body = $r) =~ s/"shapes":\[[0-9,]+\]/"shapes":[X]/;
	push @conc, $body if $in{$sc};
	push @lock, $body if $in{$sl};
}
ok(@lock > 0, 'the locked shape has records');
sr_compare_records(\@conc, \@lock,
	"shape $sc (concurrently) routes exactly what shape $sl (add_shape) routes");

# ---- calls side by side remove nothing of each other's ---------------------

# each finished call releases its lock a moment after its shape stops being
# pending: another call's clean-up must not take that for a dead session
q1(q{
CREATE TABLE many (id bigint PRIMARY KEY, v int NOT NULL);
INSERT INTO many SELECT g, g % 400 FROM generate_series(1, 20000) g;
CREATE INDEX ON many (v);
});
my @h;
my $per = 150;
for my $k (0 .. 3)
{
	my $sql = join('', map {
		"CALL shape_router.add_shape_concurrently('many', 'v = "
		  . (($k * $per + $_) % 400) . "');\n"
	} 1 .. $per);
	my ($o, $e) = ('', '');
	push @h, [ IPC::Run::start(
		[ 'psql', '-X', '-At', '-v', 'ON_ERROR_STOP=0', '-d', $node->connstr('postgres') ],
		'<', \$sql, '>', \$o, '2>', \$e), \$o, \$e ];
}
my (@ids, $errs);
for my $x (@h)
{
	$x->[0]->finish;
	push @ids, grep { /^\d+$/ } split /\n/, ${ $x->[1] };
	$errs .= ${ $x->[2] };
}
is(scalar @ids, 4 * $per, 'every call side by side returned an id');
is($errs, '', 'no error and no NOTICE of a removed shape');
my $present = q1("SELECT count(*) FROM shape_router.shapes WHERE shape_id IN ("
	  . join(',', @ids) . ") AND NOT pending");
is($present, 4 * $per, 'every returned shape is in the catalog');
q1("SELECT shape_router.remove_shape(shape_id) FROM shape_router.shapes WHERE shape_id IN ("
	  . join(',', @ids) . "); DROP TABLE many");
changes();

# ---- 2. a crash while a call waits -------------------------------------------

$writer = $node->background_psql('postgres');
$writer->query_safe("BEGIN; INSERT INTO t VALUES (200, 4, 'in flight');");
($h, $pid, $err) = start_call('k = 4');
$left = pending_ids();
q1("UPDATE t SET k = 4 WHERE id = 3");
$node->stop('immediate');
$h->finish;
$writer->{run}->kill_kill;
$node->start;
is(pending_ids(), $left, "after the crash shape $left is still pending");
q1("UPDATE t SET note = 'after' WHERE id = 3");
$rows = changes();
ok(!(grep { /"shapes":\[[0-9,]*\b$left\b/ } @$rows),
	'no record for the pending shape after the restart');
ok((grep { /"key":\{"id":3\}/ && /"shapes":\[/ } @$rows),
	'the other shapes still route');
$node->psql('postgres',
	"CALL shape_router.add_shape_concurrently('t', 'k = 4')",
	stdout => \$out, stderr => \$notice);
like($notice, qr/removed shape $left,/, 'the next call removes it');
is(pending_ids(), '', 'no pending shape is left');
$rows = changes();
ok( (grep { /"event":"removed","shape":$left,.*"reason"/ } @$rows),
	'S removed after the crash, with the reason');

$node->stop;
done_testing();
