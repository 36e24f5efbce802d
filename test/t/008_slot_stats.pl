# A slot's statistics file (docs/monitoring.md) under a streaming
# walsender (pg_recvlogical --start):
#
#   1. the figures are visible while the stream runs, and the file is
#      rewritten at most once a second;
#   2. they add up over a stream restart and survive a server restart;
#   3. a corrupt file (a flipped byte, a cut, another version) is an error
#      for slot_stats() (data_corrupted, with a hint), and the next stream
#      counts from zero and writes a good one.
use strict;
use warnings;

use File::Basename;
use lib dirname(__FILE__);

use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use SrTap;
use Test::More;
use Time::HiRes qw(usleep time);

my $timeout = $PostgreSQL::Test::Utils::timeout_default;
my $tmp     = $PostgreSQL::Test::Utils::tmp_check;

my $node = sr_node('stats');
my $file = $node->data_dir . '/pg_replslot/s/shape_router.stats';
$node->safe_psql('postgres', q{
CREATE TABLE t (id int PRIMARY KEY, k int);
ALTER TABLE t REPLICA IDENTITY FULL;
SELECT shape_router.add_shape('t', 'k = 1');
SELECT 'init' FROM pg_create_logical_replication_slot('s', 'shape_router');
-- slot_stats() as text, or its error's SQLSTATE and message
CREATE FUNCTION try_stats(slot name) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  r record;
BEGIN
  SELECT * INTO r FROM shape_router.slot_stats(slot);
  RETURN r.changes_decoded || ' ' || r.changes_routed || ' ' || r.streams;
EXCEPTION WHEN OTHERS THEN
  DECLARE
    hint text;
  BEGIN
    GET STACKED DIAGNOSTICS hint = PG_EXCEPTION_HINT;
    RETURN SQLSTATE || ' ' || SQLERRM || ' / ' || hint;
  END;
END $$;
});

sub stats
{
	return $node->safe_psql('postgres', "SELECT try_stats('s')");
}

# pg_recvlogical --start in the background; streaming once it returns
sub start_recv
{
	my ($out) = @_;
	my $h = { err => '' };
	$h->{run} = IPC::Run::start(
		[
			'pg_recvlogical', '-d', $node->connstr('postgres'),
			'-S', 's', '--start', '--no-loop', '-s', '1', '-F', '1',
			'-f', $out
		],
		'>', \my $stdout, '2>', \$h->{err},
		IPC::Run::timeout(10 * $timeout));
	$node->poll_query_until('postgres',
		"SELECT count(*) = 1 FROM pg_stat_replication r JOIN pg_replication_slots s ON s.active_pid = r.pid WHERE s.slot_name = 's' AND r.state = 'streaming'")
	  or die "pg_recvlogical does not stream: $h->{err}";
	return $h;
}

# the stream has confirmed everything written so far
sub caught_up
{
	my $lsn = $node->safe_psql('postgres', 'SELECT pg_current_wal_lsn()');
	$node->poll_query_until('postgres',
		"SELECT confirmed_flush_lsn >= '$lsn' FROM pg_replication_slots WHERE slot_name = 's'")
	  or die "slot s does not catch up";
	return;
}

# SIGINT: pg_recvlogical (15) closes the connection and the walsender
# exits, without the plugin's shutdown: its exit callback writes the file
# a last time
sub stop_recv
{
	my ($h) = @_;
	$h->{run}->signal('INT');
	$h->{run}->finish;
	$node->poll_query_until('postgres',
		"SELECT NOT active FROM pg_replication_slots WHERE slot_name = 's'")
	  or die "slot s stays active";
	return;
}

# ---- 1. while streaming ----------------------------------------------------

is(stats(), '0 0 0', 'no file before the first stream: zeros');
my $recv = start_recv("$tmp/stats_1.out");

# a routed and an unrouted INSERT every 100 ms for 4 seconds; the file's
# time of writing, as seen by slot_stats(), at each step
my (%seen, @writes);
my $n     = 0;
my $until = time + 4;
while (time < $until)
{
	$n++;
	$node->safe_psql('postgres', "INSERT INTO t VALUES ($n, 1)");
	$n++;
	$node->safe_psql('postgres', "INSERT INTO t VALUES ($n, 2)");
	my $at = $node->safe_psql('postgres',
		"SELECT extract(epoch FROM updated_at) FROM shape_router.slot_stats('s')");
	push @writes, $at if $at ne '' && !$seen{$at}++;
	usleep(100_000);
}
cmp_ok(scalar @writes, '>=', 2, 'the file is rewritten while the stream runs');
my @gaps = map { $writes[$_] - $writes[ $_ - 1 ] } 1 .. $#writes;
ok(!(grep { $_ < 0.999 } @gaps), 'at most once a second')
  or diag "seconds between writes: @gaps";
my ($decoded) = split / /, stats();
cmp_ok($decoded, '>', 0, 'changes are counted while the stream runs');

# idle for over a second: the next transaction decoded writes the file
caught_up();
sleep 1.2;
$n++;
$node->safe_psql('postgres', "INSERT INTO t VALUES ($n, 2)");
ok($node->poll_query_until('postgres',
	"SELECT changes_decoded = $n FROM shape_router.slot_stats('s')"),
	'after an idle second, the next transaction brings the figures up to date');

caught_up();
stop_recv($recv);
is(stats(), "$n " . (($n - 1) / 2) . ' 1', 'the stream\'s end writes the exact totals');
my ($d1, $r1) = ($n, ($n - 1) / 2);

# ---- 2. a stream restart and a server restart --------------------------------

$recv = start_recv("$tmp/stats_2.out");
for my $i (1 .. 10)
{
	$node->safe_psql('postgres', "INSERT INTO t VALUES (" . ($n + $i) . ", 1)");
}
caught_up();
stop_recv($recv);
# the restarted stream may decode again what the first one had not had
# confirmed: at least, never less
my ($d2, $r2, $s2) = split / /, stats();
cmp_ok($d2, '>=', $d1 + 10, 'decoded: the first stream\'s and the second\'s');
cmp_ok($r2, '>=', $r1 + 10, 'routed: the same');
is($s2, 2, 'two streams');

my $before = stats();
$node->restart;
is(stats(), $before, 'the figures survive a server restart');

# ---- 3. a corrupt file --------------------------------------------------------

sub rewrite
{
	my ($edit) = @_;
	open my $fh, '+<:raw', $file or die "open $file: $!";
	local $/;
	my $bytes = <$fh>;
	$bytes = $edit->($bytes);
	seek $fh, 0, 0;
	truncate $fh, 0;
	print $fh $bytes;
	close $fh;
	return;
}

my $good = slurp_file($file);
my $hint = 'The slot\'s next stream writes a new one.';
rewrite(sub { my $b = shift; substr($b, 40, 1) = chr(ord(substr($b, 40, 1)) ^ 1); $b });
like(stats(), qr/^XX001 statistics file of replication slot "s" is corrupt \/ \Q$hint\E$/,
	'a flipped byte: data_corrupted, with a hint');
rewrite(sub { substr(shift, 0, 30) });
like(stats(), qr/^XX001 /, 'a cut file: data_corrupted');
rewrite(sub { my $b = $good; substr($b, 4, 1) = chr(99); $b });
like(stats(), qr/^XX001 /, 'another version: data_corrupted');
rewrite(sub { $good . 'x' });
like(stats(), qr/^XX001 /, 'a longer file: data_corrupted');

my $offset = -s $node->logfile;
$node->safe_psql('postgres', "INSERT INTO t VALUES (-1, 1)");
$node->safe_psql('postgres',
	"SELECT count(*) FROM pg_logical_slot_get_changes('s', NULL, NULL)");
ok($node->log_contains('statistics file .* is corrupt, counting starts from zero', $offset),
	'the next stream says it counts from zero');
like(stats(), qr/^\d+ \d+ 1$/, 'and writes a good file');

done_testing();
