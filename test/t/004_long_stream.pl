# shape_router under a long-lived streaming walsender (pg_recvlogical
# --start), the way a consumer runs it:
#
#   1. memory stays flat across many relcache invalidations of a routed
#      table (ALTER TABLE ... SET (fillfactor), each followed by a routed
#      INSERT), measured with pg_log_backend_memory_contexts() and RssAnon;
#   2. schema and table renames mid-stream show up in the records' "schema"
#      and "table";
#   3. DROP EXTENSION under a live, caught-up stream ends every shape with
#      S removed, later changes give nothing (and no error), a re-created
#      extension's shapes (ids starting at 1 again) route, also after a
#      server restart, and nothing the stream knew of the old shapes (an
#      invalidated old shape 2) applies to the new shape with the same id.
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

# ---- helpers ----------------------------------------------------------------

# pg_recvlogical --start on $slot in the background, writing to $file.
sub start_recv
{
	my ($node, $slot, $file) = @_;
	my $h = { file => $file, out => '', err => '', slot => $slot };
	$h->{run} = IPC::Run::start(
		[
			'pg_recvlogical', '-d', $node->connstr('postgres'),
			'-S', $slot, '--start', '--no-loop', '-s', '1', '-F', '1',
			'-f', $file, '-o', 'include-transaction=1'
		],
		'>', \$h->{out}, '2>', \$h->{err},
		IPC::Run::timeout(10 * $timeout));
	# streaming, or pg_recvlogical gone (an error at start: say it now)
	my $deadline = time + 3 * $timeout;
	while (1)
	{
		last if $node->safe_psql('postgres',
			"SELECT count(*) = 1 FROM pg_stat_replication r JOIN pg_replication_slots s ON s.active_pid = r.pid WHERE s.slot_name = '$slot' AND r.state = 'streaming'") eq 't';
		$h->{run}->pump_nb if $h->{run}->pumpable;
		die "pg_recvlogical on slot $slot exited: $h->{err}" unless $h->{run}->pumpable;
		die "pg_recvlogical does not connect to slot $slot: $h->{err}" if time > $deadline;
		usleep(50_000);
	}
	$h->{pid} = $node->safe_psql('postgres',
		"SELECT r.pid FROM pg_stat_replication r JOIN pg_replication_slots s ON s.active_pid = r.pid WHERE s.slot_name = '$slot'");
	return $h;
}

sub stop_recv
{
	my ($node, $h) = @_;
	$h->{run}->kill_kill;
	$node->poll_query_until('postgres',
		"SELECT NOT active FROM pg_replication_slots WHERE slot_name = '$h->{slot}'")
	  or die "slot $h->{slot} stays active";
	return;
}

sub recv_lines
{
	my ($h) = @_;
	return [] unless -e $h->{file};
	my $text = slurp_file($h->{file});
	# only complete lines
	$text =~ s/[^\n]*\z//;
	return [ split /\n/, $text ];
}

# Wait until the stream's file has a line matching $re; true if it came.
sub wait_for_record
{
	my ($h, $re) = @_;
	my $deadline = time + 3 * $timeout;
	while (time < $deadline)
	{
		return 1 if -e $h->{file} && slurp_file($h->{file}) =~ $re;
		$h->{run}->pump_nb if $h->{run}->pumpable;
		last unless $h->{run}->pumpable;
		usleep(50_000);
	}
	return -e $h->{file} && slurp_file($h->{file}) =~ $re;
}

sub slot_field
{
	my ($node, $slot, $field) = @_;
	return $node->safe_psql('postgres',
		"SELECT $field FROM pg_replication_slots WHERE slot_name = '$slot'");
}

# The log lines written since byte offset $from (a log's size) containing
# ERROR, FATAL or PANIC.
sub log_errors_since
{
	my ($node, $from) = @_;
	my $log = slurp_file($node->logfile, $from);
	return grep { /\b(ERROR|FATAL|PANIC):/ } split /\n/, $log;
}

# The walsender's memory: pg_log_backend_memory_contexts()'s dump (logged
# at LOG level, which log_min_messages = info lets through): its grand total
# (bytes allocated), the bytes used in it (allocated minus free), the total
# of each context (summed over contexts of the same level and name), and
# RssAnon (kB) from /proc.
sub walsender_memory
{
	my ($node, $pid) = @_;
	my $from = -s $node->logfile;
	$node->safe_psql('postgres', "SELECT pg_log_backend_memory_contexts($pid)") eq 't'
	  or die "pg_log_backend_memory_contexts($pid) failed";
	my %m;
	my $deadline = time + $timeout;
	while (time < $deadline)
	{
		my @lines = grep { /\[$pid\]/ } split /\n/, slurp_file($node->logfile, $from);
		my ($end) = grep { $lines[$_] =~ /Grand total: \d+ bytes/ } reverse 0 .. $#lines;
		if (defined $end)
		{
			($m{total}, $m{free}) =
			  $lines[$end] =~ /Grand total: (\d+) bytes in \d+ blocks; (\d+) free/;
			$m{used} = $m{total} - $m{free};
			my ($start) = grep { $lines[$_] =~ /logging memory contexts of PID/ }
			  reverse 0 .. $end;
			for my $l (@lines[ ($start // 0) .. $end ])
			{
				$m{contexts}{"$1 $2"} += $3
				  if $l =~ /(level: \d+); ([^:]+): (\d+) total/;
			}
			last;
		}
		usleep(50_000);
	}
	die "no memory context dump of pid $pid in the server log" unless defined $m{total};
	if (open my $fh, '<', "/proc/$pid/status")
	{
		while (<$fh>) { $m{anon} = $1 if /^RssAnon:\s+(\d+)/; }
		close $fh;
	}
	$m{anon} //= '?';
	return \%m;
}

my $node = sr_node('long');

# ---- 1. memory across relcache invalidations --------------------------------
subtest 'walsender memory stays flat across relcache invalidations' => sub {
	$node->safe_psql('postgres', q{
CREATE TABLE t (id int PRIMARY KEY, v int);
ALTER TABLE t REPLICA IDENTITY FULL;
SELECT pg_create_logical_replication_slot('mem', 'shape_router');
SELECT shape_router.add_shape('t', 'v > 0');
-- one relcache invalidation of t and one routed INSERT per transaction
CREATE PROCEDURE churn(a int, b int) LANGUAGE plpgsql AS $$
BEGIN
  FOR i IN a .. b LOOP
    EXECUTE format('ALTER TABLE t SET (fillfactor = %s)', 90 + i % 2);
    INSERT INTO t VALUES (i, i);
    COMMIT;
  END LOOP;
END $$;
});
	my $recv = start_recv($node, 'mem', "$tmp/004_mem.out");
	note "walsender pid $recv->{pid}";

	my $t0 = time;
	my $churn = sub {
		my ($a, $b) = @_;
		$node->safe_psql('postgres', "CALL churn($a, $b)");
		ok(wait_for_record($recv, qr/"new":\{"id":$b,"v":$b\}/),
			"the stream catches up to INSERT $b")
		  or diag("pg_recvlogical stderr: $recv->{err}");
	};

	my $warm = 2000;
	my $last = 12000;
	$churn->(1, $warm);
	my $m1 = walsender_memory($node, $recv->{pid});
	note "after $warm invalidations: grand total $m1->{total} bytes ($m1->{used} used), RssAnon $m1->{anon} kB";
	for (my $a = $warm + 1; $a <= $last; $a += 2000)
	{
		$churn->($a, $a + 1999);
	}
	my $m2 = walsender_memory($node, $recv->{pid});
	note "after $last invalidations: grand total $m2->{total} bytes ($m2->{used} used), RssAnon $m2->{anon} kB";
	my $n = $last - $warm;
	diag sprintf("walsender memory over %d invalidations: grand total %d -> %d bytes (%+d, %.1f bytes each), used %d -> %d bytes (%+d); RssAnon %s -> %s kB",
		$n, $m1->{total}, $m2->{total}, $m2->{total} - $m1->{total},
		($m2->{total} - $m1->{total}) / $n, $m1->{used}, $m2->{used},
		$m2->{used} - $m1->{used}, $m1->{anon}, $m2->{anon});
	note sprintf("%d transactions streamed in %.1fs", $last, time - $t0);

	# The leak being guarded against is ~4-9 kB per invalidation (40-90 MB
	# here).  The bytes in use must stay flat.  The grand total also counts
	# free space: an AllocSet's blocks double in size, so a core context
	# (CacheMemoryContext, whose used bytes stay flat while relcache entries
	# are rebuilt) may take a new 512 kB or 1 MB block now and then.
	my $growth = sub {
		for my $k (sort keys %{ $m2->{contexts} })
		{
			my $d = $m2->{contexts}{$k} - ($m1->{contexts}{$k} // 0);
			diag "  $k: " . ($m1->{contexts}{$k} // 0) . " -> $m2->{contexts}{$k}" if $d;
		}
	};
	cmp_ok($m2->{used} - $m1->{used}, '<', 1024 * 1024,
		"memory in use (grand total minus free) grows by less than 1 MB over $n invalidations")
	  or $growth->();
	cmp_ok($m2->{total} - $m1->{total}, '<', 4 * 1024 * 1024,
		"memory context grand total grows by less than 4 MB over $n invalidations")
	  or $growth->();
	note "grand total grew by less than 1 MB: "
	  . ($m2->{total} - $m1->{total} < 1024 * 1024 ? 'yes' : 'no');

	# Every transaction routed exactly its INSERT.
	my $lines = recv_lines($recv);
	my $txns = eval { sr_txns($lines) };
	ok($txns, 'the stream is well formed') or diag($@);
	my @i = grep { /^\{"action":"I"/ } @$lines;
	is(scalar @i, $last, "$last I records");
	is(scalar(grep { !/^\{"action":"I","shapes":\[1\],"schema":"public","table":"t","new":\{"id":\d+,"v":\d+\}\}$/ } @i),
		0, 'every I record is routed to shape 1');
	ok(!$node->log_contains("\\[$recv->{pid}\\].*(ERROR|FATAL)"), 'the walsender logged no error');

	stop_recv($node, $recv);
	$node->safe_psql('postgres', "SELECT pg_drop_replication_slot('mem')");
};

# ---- 2. renames mid-stream ----------------------------------------------------
subtest 'schema and table renames mid-stream' => sub {
	$node->safe_psql('postgres', q{
CREATE SCHEMA s;
CREATE TABLE s.t (id int PRIMARY KEY, v int);
ALTER TABLE s.t REPLICA IDENTITY FULL;
SELECT pg_create_logical_replication_slot('ren', 'shape_router');
});
	my $recv = start_recv($node, 'ren', "$tmp/004_ren.out");
	my $shape = $node->safe_psql('postgres', "SELECT shape_router.add_shape('s.t', 'v > 0')");
	$node->safe_psql('postgres', 'INSERT INTO s.t VALUES (1, 1)');
	$node->safe_psql('postgres', 'ALTER SCHEMA s RENAME TO s2');
	$node->safe_psql('postgres', 'INSERT INTO s2.t VALUES (2, 2)');
	$node->safe_psql('postgres', 'ALTER TABLE s2.t RENAME TO t2');
	$node->safe_psql('postgres', 'INSERT INTO s2.t2 VALUES (3, 3)');
	# Renames inside a transaction, between its changes
	$node->safe_psql('postgres', q{
BEGIN;
INSERT INTO s2.t2 VALUES (4, 4);
ALTER TABLE s2.t2 RENAME TO t3;
INSERT INTO s2.t3 VALUES (5, 5);
ALTER SCHEMA s2 RENAME TO s3;
INSERT INTO s3.t3 VALUES (6, 6);
COMMIT;
});
	ok(wait_for_record($recv, qr/"new":\{"id":6,"v":6\}/), 'the stream receives the last INSERT')
	  or diag("pg_recvlogical stderr: $recv->{err}");
	my $lines = recv_lines($recv);
	sr_save('004_ren', $lines);
	my @recs = grep { !/^\{"action":"[BC]"/ } @$lines;
	my $i = sub {
		my ($schema, $table, $id) = @_;
		return qq({"action":"I","shapes":[$shape],"schema":"$schema","table":"$table","new":{"id":$id,"v":$id}});
	};
	sr_compare_records(
		[ @recs[ 0 .. 3 ] ],
		[
			qq({"action":"S","event":"added","shape":$shape,"schema":"s","table":"t"}),
			$i->('s', 't', 1), $i->('s2', 't', 2), $i->('s2', 't2', 3),
		],
		'records after ALTER SCHEMA / ALTER TABLE RENAME carry the new names');
	sr_compare_records(
		[ @recs[ 4 .. $#recs ] ],
		[ $i->('s2', 't2', 4), $i->('s2', 't3', 5), $i->('s3', 't3', 6) ],
		'renames inside a transaction apply to the changes after them');
	ok(!$node->log_contains("\\[$recv->{pid}\\].*(ERROR|FATAL)"), 'the walsender logged no error');
	stop_recv($node, $recv);
	$node->safe_psql('postgres', "SELECT pg_drop_replication_slot('ren')");
};
$node->stop;

# ---- 3. DROP EXTENSION under a live stream -----------------------------------
my $dnode = sr_node('drop');
subtest 'DROP EXTENSION under a live, caught-up stream' => sub {
	my $node = $dnode;
	$node->safe_psql('postgres', q{
CREATE TABLE u (id int PRIMARY KEY, v int);
ALTER TABLE u REPLICA IDENTITY FULL;
SELECT pg_create_logical_replication_slot('d', 'shape_router');
});
	my $log_start = -s $node->logfile;
	my $recv = start_recv($node, 'd', "$tmp/004_drop_1.out");
	my $ids = $node->safe_psql('postgres', q{
SELECT shape_router.add_shape('u', 'v > 0');
SELECT shape_router.add_shape('u', '10 / v > 0');
});
	is($ids, "1\n2", 'shapes 1 and 2');

	$node->safe_psql('postgres', 'INSERT INTO u VALUES (1, 5)');
	# v = 0: shape 2's predicate raises (division by zero): invalidated
	$node->safe_psql('postgres', 'INSERT INTO u VALUES (2, 0)');
	$node->safe_psql('postgres', 'INSERT INTO u VALUES (3, 7)');
	ok(wait_for_record($recv, qr/"new":\{"id":3,"v":7\}/), 'the stream is caught up before the DROP')
	  or diag("pg_recvlogical stderr: $recv->{err}");
	my $before = recv_lines($recv);
	my @recs = grep { !/^\{"action":"[BC]"/ } @$before;
	is(scalar @recs, 5, 'five records before the DROP') or diag(join("\n", @recs));
	is($recs[2], '{"action":"I","shapes":[1,2],"schema":"public","table":"u","new":{"id":1,"v":5}}',
		'INSERT 1 goes to shapes 1 and 2');
	like($recs[3] // '',
		qr/^\{"action":"S","event":"invalidated","shape":2,"schema":"public","table":"u","reason":"[^"]+"\}$/,
		'shape 2 is invalidated by the INSERT whose v = 0 makes its predicate raise');
	is($recs[4], '{"action":"I","shapes":[1],"schema":"public","table":"u","new":{"id":3,"v":7}}',
		'INSERT 3 goes to shape 1 only');
	note "shape 2's invalidation: " . ($recs[3] // '(none)');

	# The DROP, between two INSERTs of one transaction
	my ($drop_xid, $drop_end) = split /\n/, $node->safe_psql('postgres', q{
BEGIN;
INSERT INTO u VALUES (4, 8);
SELECT pg_current_xact_id();
DROP EXTENSION shape_router;
INSERT INTO u VALUES (5, 9);
COMMIT;
SELECT pg_current_wal_lsn();
});
	note "DROP EXTENSION in transaction $drop_xid, WAL at $drop_end after it";
	ok(wait_for_record($recv, qr/"event":"removed","shape":2,/), 'the stream writes the removals')
	  or diag("pg_recvlogical stderr: $recv->{err}");
	my $txns = eval { sr_txns(recv_lines($recv)) } or diag($@);
	my ($drop_txn) = grep { $_->{xid} eq $drop_xid } @{ $txns || [] };
	my $reason = 'extension shape_router was dropped';
	sr_compare_records(
		$drop_txn ? $drop_txn->{records} : [],
		[
			qq({"action":"S","event":"removed","shape":1,"schema":"public","table":"u","reason":"$reason"}),
			qq({"action":"S","event":"removed","shape":2,"schema":"public","table":"u","reason":"$reason"}),
		],
		'the DROP transaction writes S removed for shapes 1 and 2, and none of its INSERTs');
	ok($drop_txn && $node->poll_query_until('postgres',
			"SELECT confirmed_flush_lsn >= '$drop_txn->{lsn}' FROM pg_replication_slots WHERE slot_name = 'd'"),
		"the slot's confirmed position passes the DROP's commit");

	# No extension: changes give nothing, and the walsender stays up.
	$node->safe_psql('postgres', 'INSERT INTO u VALUES (6, 10)');
	$node->safe_psql('postgres', 'UPDATE u SET v = 11 WHERE id = 6');

	# Re-created: ids start at 1 again
	my $new1 = $node->safe_psql('postgres', q{
CREATE EXTENSION shape_router;
SELECT shape_router.add_shape('u', 'v > 0');
});
	is($new1, '1', 'the re-created extension\'s first shape is 1');
	$node->safe_psql('postgres', 'INSERT INTO u VALUES (7, 12)');
	my $new2 = $node->safe_psql('postgres', "SELECT shape_router.add_shape('u', 'v > 100')");
	is($new2, '2', 'its second shape is 2');
	$node->safe_psql('postgres', 'INSERT INTO u VALUES (8, 200)');
	ok(wait_for_record($recv, qr/"new":\{"id":8,"v":200\}/), 'the stream receives the new shapes\' records')
	  or diag("pg_recvlogical stderr: $recv->{err}");
	ok($recv->{run}->pumpable, 'pg_recvlogical is still connected')
	  or diag("pg_recvlogical stderr: $recv->{err}");
	is($node->safe_psql('postgres',
			"SELECT active_pid FROM pg_replication_slots WHERE slot_name = 'd'"),
		$recv->{pid}, 'the same walsender streams throughout');

	my $lines = recv_lines($recv);
	sr_save('004_drop_1', $lines);
	$txns = eval { sr_txns($lines) } or diag($@);
	my @after;
	my $seen = 0;
	for my $t (@{ $txns || [] })
	{
		push @after, @{ $t->{records} } if $seen;
		$seen = 1 if $t->{xid} eq $drop_xid;
	}
	sr_compare_records(
		\@after,
		[
			'{"action":"S","event":"added","shape":1,"schema":"public","table":"u"}',
			'{"action":"I","shapes":[1],"schema":"public","table":"u","new":{"id":7,"v":12}}',
			'{"action":"S","event":"added","shape":2,"schema":"public","table":"u"}',
			'{"action":"I","shapes":[1,2],"schema":"public","table":"u","new":{"id":8,"v":200}}',
		],
		'after the DROP: nothing until CREATE EXTENSION, then S added and the new shapes\' records (new shape 2 routes)');
	my $last_c = $txns && @$txns ? $txns->[-1]{lsn} : '0/0';
	ok($node->poll_query_until('postgres',
			"SELECT confirmed_flush_lsn >= '$last_c' FROM pg_replication_slots WHERE slot_name = 'd'"),
		'the slot confirms everything received');
	my @errors = log_errors_since($node, $log_start);
	is(scalar @errors, 0, 'no error in the server log while streaming')
	  or diag(join("\n", @errors));

	# A walsender's confirmed position is written to disk only when the slot
	# is otherwise dirty (PostgreSQL 15 keeps it in memory); persist it, so
	# that the restarted stream starts where this consumer stopped.
	stop_recv($node, $recv);
	my $confirmed = slot_field($node, 'd', 'confirmed_flush_lsn');
	$node->safe_psql('postgres', "SELECT pg_replication_slot_advance('d', '$confirmed')");
	note "slot d confirmed at $confirmed before the restart";

	$node->restart;
	is(slot_field($node, 'd', 'confirmed_flush_lsn'), $confirmed,
		'the confirmed position survives the restart');
	$log_start = -s $node->logfile;
	$recv = start_recv($node, 'd', "$tmp/004_drop_2.out");
	$node->safe_psql('postgres', 'INSERT INTO u VALUES (9, 300)');
	$node->safe_psql('postgres', 'INSERT INTO u VALUES (10, 50)');
	$node->safe_psql('postgres', 'INSERT INTO u VALUES (11, 0)');
	$node->safe_psql('postgres', 'INSERT INTO u VALUES (12, 400)');
	ok(wait_for_record($recv, qr/"new":\{"id":12,"v":400\}/), 'the stream resumes after the restart')
	  or diag("pg_recvlogical stderr: $recv->{err}");
	$lines = recv_lines($recv);
	sr_save('004_drop_2', $lines);
	ok(eval { sr_txns($lines) }, 'the resumed stream is well formed') or diag($@);
	sr_compare_records(
		[ grep { !/^\{"action":"[BC]"/ } @$lines ],
		[
			'{"action":"I","shapes":[1,2],"schema":"public","table":"u","new":{"id":9,"v":300}}',
			'{"action":"I","shapes":[1],"schema":"public","table":"u","new":{"id":10,"v":50}}',
			'{"action":"I","shapes":[1,2],"schema":"public","table":"u","new":{"id":12,"v":400}}',
		],
		'after the restart the stream routes to the new shapes 1 and 2 (old shape 2\'s invalidation does not apply)');
	ok($recv->{run}->pumpable, 'pg_recvlogical is still connected after the restart')
	  or diag("pg_recvlogical stderr: $recv->{err}");
	@errors = log_errors_since($node, $log_start);
	is(scalar @errors, 0, 'no error in the server log after the restart')
	  or diag(join("\n", @errors));
	stop_recv($node, $recv);
};
$dnode->stop;

done_testing();
