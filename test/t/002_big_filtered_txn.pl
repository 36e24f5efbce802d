# A huge transaction that shape_router filters out entirely (1,000,000
# changes, none matching any shape) streamed through a walsender with a short
# wal_sender_timeout: the plugin must report progress while it writes
# nothing, so the walsender neither times out nor loses the connection, and
# a matching change committed afterwards arrives.  The walsender's memory is
# sampled meanwhile and must stay bounded.
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

my $rows_shaped = 600_000;
my $rows_plain  = 400_000;
my $timeout     = $PostgreSQL::Test::Utils::timeout_default;

my $node = sr_node('big', q{
wal_sender_timeout = '2s'
shared_buffers = '128MB'
max_wal_size = '1GB'
logical_decoding_work_mem = '64MB'
});

$node->safe_psql('postgres', q{
CREATE TABLE items (id int PRIMARY KEY, user_id int NOT NULL, title text);
ALTER TABLE items REPLICA IDENTITY FULL;
CREATE TABLE other (id int PRIMARY KEY, v text);
SELECT shape_router.add_shape('items', 'user_id = 42');
SELECT shape_router.add_shape('items', 'user_id IN (7, 8, 9)');
SELECT shape_router.add_shape('items', 'title LIKE ''match%''');
SELECT shape_router.add_shape('items', 'user_id < 0 AND title IS NOT NULL');
SELECT pg_create_logical_replication_slot('s', 'shape_router');
});

# A consumer that only answers the walsender's keepalive requests (-s 0: no
# status messages of its own), so that only the walsender's own keepalives
# keep the connection alive; --no-loop: a lost connection ends it.
my $out_file = "${PostgreSQL::Test::Utils::tmp_check}/002_recv.out";
my ($recv_out, $recv_err) = ('', '');
my $recv = IPC::Run::start(
	[
		'pg_recvlogical', '-d', $node->connstr('postgres'),
		'-S', 's', '--start', '--no-loop', '-s', '0', '-F', '0',
		'-f', $out_file, '-o', 'include-xid=1'
	],
	'>', \$recv_out, '2>', \$recv_err,
	IPC::Run::timeout(4 * $timeout));

$node->poll_query_until('postgres',
	"SELECT count(*) = 1 FROM pg_stat_replication r JOIN pg_replication_slots s ON s.active_pid = r.pid WHERE s.slot_name = 's' AND r.state = 'streaming'")
  or die "pg_recvlogical does not connect: $recv_err";
my $wal_pid = $node->safe_psql('postgres',
	"SELECT active_pid FROM pg_replication_slots WHERE slot_name = 's'");
note "walsender pid $wal_pid";

sub rss_anon_kb
{
	open my $fh, '<', "/proc/$wal_pid/status" or return undef;
	my ($anon, $hwm);
	while (<$fh>)
	{
		$anon = $1 if /^RssAnon:\s+(\d+)/;
		$hwm  = $1 if /^VmHWM:\s+(\d+)/;
	}
	return ($anon, $hwm);
}
my ($anon0) = rss_anon_kb();
my $anon_max = $anon0 // 0;

# The big transaction, in the background, and the walsender watched
# while it is inserted and decoded.
my ($psql_out, $psql_err) = ('', '');
my $big_sql = qq{
BEGIN;
INSERT INTO items SELECT g, 1000 + g % 5000, 'filtered ' || g
  FROM generate_series(1, $rows_shaped) g;
INSERT INTO other SELECT g, 'plain ' || g FROM generate_series(1, $rows_plain) g;
COMMIT;
SELECT pg_current_wal_lsn();
};
my $t_start = time;
my $psql = IPC::Run::start(
	[ 'psql', '-XAtq', '-v', 'ON_ERROR_STOP=1', '-d', $node->connstr('postgres'), '-c', $big_sql ],
	'>', \$psql_out, '2>', \$psql_err,
	IPC::Run::timeout(4 * $timeout));

my ($committed_at, $match_at, $after_lsn);
my $deadline = time + 3 * $timeout;
while (time < $deadline)
{
	my ($anon) = rss_anon_kb();
	$anon_max = $anon if defined $anon && $anon > $anon_max;

	# IPC::Run notices ended children only while pumping
	$psql->pump_nb if !defined $committed_at && $psql->pumpable;
	$recv->pump_nb if $recv->pumpable;
	if (!defined $committed_at && !$psql->pumpable)
	{
		$psql->finish;
		die "big transaction failed: $psql_err" if $?;
		$committed_at = time;
		note sprintf("big transaction committed after %.1fs", $committed_at - $t_start);
		# A matching change right after the big transaction
		$after_lsn = $node->safe_psql('postgres',
			"INSERT INTO items VALUES (0, 42, 'after the big one'); SELECT pg_current_wal_lsn()");
	}
	if (defined $committed_at && -e $out_file
		&& slurp_file($out_file) =~ /after the big one/)
	{
		$match_at = time;
		last;
	}
	last unless $recv->pumpable;
	usleep(100_000);
}
ok(defined $match_at, 'the matching row committed after the big transaction arrives')
  or diag("pg_recvlogical stderr: $recv_err");
note sprintf("decoding the big transaction and the next one took %.1fs",
	$match_at - $committed_at)
  if defined $match_at;

ok($recv->pumpable, 'pg_recvlogical is still connected')
  or diag("pg_recvlogical stderr: $recv_err");
my $pid_now = $node->safe_psql('postgres',
	"SELECT active_pid FROM pg_replication_slots WHERE slot_name = 's'");
is($pid_now, $wal_pid, 'the same walsender is still streaming');
ok(!$node->log_contains('terminating walsender process due to replication timeout'),
	'no walsender timed out')
  or diag(join("\n", grep { /timeout|walsender/i } split /\n/, slurp_file($node->logfile)));

# Exactly the matching transaction arrived: nothing of the filtered one.
my @got = -e $out_file ? split(/\n/, slurp_file($out_file)) : ();
my @recs = grep { !/^\{"action":"[BC]"/ } @got;
my $txns = eval { sr_txns(\@got) };
ok($txns, 'the stream is well formed') or diag($@);
sr_compare_records(
	\@recs,
	[ q({"action":"I","shapes":[1],"schema":"public","table":"items","new":{"id":0,"user_id":42,"title":"after the big one"},"xid":)
		  . ($txns && @$txns ? $txns->[-1]{xid} : '?') . '}' ],
	'only the matching change is written');

# The slot's confirmed position moves past the big transaction.
ok(defined $after_lsn && $recv->pumpable
	  && $node->poll_query_until('postgres',
		"SELECT confirmed_flush_lsn >= '$after_lsn' FROM pg_replication_slots WHERE slot_name = 's'"),
	'the slot\'s confirmed position moves past both transactions');

# Memory: the reorder buffer spills beyond logical_decoding_work_mem (64MB);
# the plugin must not keep anything per filtered change.
my ($anon_end, $hwm) = rss_anon_kb();
note "walsender RssAnon: start ${anon0}kB, max sampled ${anon_max}kB, end "
  . ($anon_end // '?') . "kB; VmHWM " . ($hwm // '?') . "kB";
SKIP:
{
	skip 'walsender memory not readable', 1 unless defined $anon0;
	cmp_ok($anon_max, '<', 256 * 1024,
		'walsender private memory stays under 256MB while decoding 1,000,000 filtered changes');
}

$recv->kill_kill;
$node->stop;
done_testing();
