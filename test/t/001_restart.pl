# shape_router across a crash: what a consumer receives after the server
# restarts, from its slot's confirmed position, is exactly what an
# uninterrupted decoding gives from that position.
#
# Three slots are created at the same point:
#   a  consumed by pg_recvlogical: up to a known LSN, then live while the
#      server is killed (immediate stop), then again after the restart;
#   b  advanced (pg_replication_slot_advance) to the end of a transaction
#      that added and removed shapes while another transaction was open,
#      and read only after the restart: a fresh decoding session starting
#      between a catalog change and the commit of a transaction that began
#      before it;
#   c  read once at the end, in one decoding session: the reference.
use strict;
use warnings;

use File::Basename;
use lib dirname(__FILE__);

use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use SrTap;
use Test::More;
use Time::HiRes qw(usleep);

my %opts = ('include-xid' => '1');
my $node = sr_node('restart');

$node->safe_psql('postgres', q{
CREATE TABLE todos (id int PRIMARY KEY, user_id int, title text,
                    done bool NOT NULL DEFAULT false);
ALTER TABLE todos REPLICA IDENTITY FULL;
CREATE TABLE notes (id int PRIMARY KEY, user_id int, body text);
ALTER TABLE notes REPLICA IDENTITY FULL;
CREATE TABLE plain (id int PRIMARY KEY, v text);
});
my $s_42 = $node->safe_psql('postgres',
	"SELECT shape_router.add_shape('todos', 'user_id = 42')");

for my $slot (qw(a b c))
{
	$node->safe_psql('postgres',
		"SELECT pg_create_logical_replication_slot('$slot', 'shape_router')");
}

sub slot_field
{
	my ($slot, $field) = @_;
	return $node->safe_psql('postgres',
		"SELECT $field FROM pg_replication_slots WHERE slot_name = '$slot'");
}

sub wait_inactive
{
	my ($slot) = @_;
	$node->poll_query_until('postgres',
		"SELECT NOT active FROM pg_replication_slots WHERE slot_name = '$slot'")
	  or die "slot $slot stays active";
}

sub lines_of
{
	my ($rows) = @_;
	return [ map { $_->[1] } @$rows ];
}

# ---- Phase 1: changes before any consumer ---------------------------------
$node->safe_psql('postgres', q{
INSERT INTO todos VALUES (1, 42, 'one'), (2, 7, 'two'), (3, 42, 'three');
INSERT INTO plain VALUES (1, 'x');
UPDATE todos SET title = 'one!' WHERE id = 1;
});
my $s_7 = $node->safe_psql('postgres',
	"SELECT shape_router.add_shape('todos', 'user_id = 7')");
my $s_notes = $node->safe_psql('postgres',
	"SELECT shape_router.add_shape('notes', 'user_id IN (42, 7)', ARRAY['user_id'])");
$node->safe_psql('postgres', q{
BEGIN;
UPDATE todos SET user_id = 7 WHERE id = 1;
INSERT INTO notes VALUES (1, 42, 'n1'), (2, 5, 'n2');
COMMIT;
DELETE FROM todos WHERE id = 3;
});

# T2 starts (its first change fixes its base snapshot), then T1 adds a shape
# and removes another and commits, then T2 goes on and commits.  T2 commits
# after T1, so T2's changes are routed with T1's shapes.
my $t2 = $node->background_psql('postgres');
$t2->query_safe(
	"BEGIN; INSERT INTO todos VALUES (10, 99, 'early99'), (11, 7, 'early7');");
my $s_99 = $node->safe_psql('postgres', qq{
BEGIN;
SELECT shape_router.add_shape('todos', 'user_id = 99');
SELECT shape_router.remove_shape($s_7);
COMMIT;
});
like($s_99, qr/^\d+\nt$/, "T1 adds a shape and removes shape $s_7");
$s_99 =~ s/\n.*//s;
my $t1_end = sr_last_lsn(sr_peek($node, 'c', %opts));
note "T1 (add shape $s_99, remove shape $s_7) ends at $t1_end";
$t2->query_safe(
	"INSERT INTO todos VALUES (12, 99, 'late99'), (13, 7, 'late7'); COMMIT;");
$t2->quit;

$node->safe_psql('postgres', q{
UPDATE todos SET title = 'two!' WHERE id = 2;
INSERT INTO todos VALUES (14, 42, 'fourteen');
});

# Slot a: pg_recvlogical up to a known position, the end of the last
# transaction with records.
my $c_rows = sr_peek($node, 'c', %opts);
my $e0 = sr_last_lsn($c_rows);
my $phase1 = $node->pg_recvlogical_upto('postgres', 'a', $e0,
	$PostgreSQL::Test::Utils::timeout_default, %opts);
my @phase1 = split /\n/, $phase1;
sr_compare_records(\@phase1, lines_of($c_rows),
	'pg_recvlogical up to a known LSN gets what one decoding session gets');

# Persist the confirmed positions (pg_replication_slot_advance marks the
# slot dirty; a checkpoint writes it), then crash later.
wait_inactive('a');
$node->safe_psql('postgres', qq{
SELECT pg_replication_slot_advance('a', '$e0');
SELECT pg_replication_slot_advance('b', '$t1_end');
CHECKPOINT;
});

# ---- Phase 2: a live consumer while the server is killed ------------------
my $live_file = "${PostgreSQL::Test::Utils::tmp_check}/001_live.out";
my ($live_out, $live_err) = ('', '');
my $live = IPC::Run::start(
	[
		'pg_recvlogical', '-d', $node->connstr('postgres'),
		'-S', 'a', '--start', '--no-loop', '-s', '1', '-F', '0',
		'-f', $live_file, map { ('-o', "$_=$opts{$_}") } sort keys %opts
	],
	'>', \$live_out, '2>', \$live_err,
	IPC::Run::timeout($PostgreSQL::Test::Utils::timeout_default));

my $s_done = $node->safe_psql('postgres',
	"SELECT shape_router.add_shape('todos', 'done', ARRAY['title'])");
$node->safe_psql('postgres', q{
UPDATE todos SET done = true WHERE user_id = 99;
UPDATE todos SET done = true WHERE id = 2;
UPDATE todos SET id = 20 WHERE id = 10;
INSERT INTO notes VALUES (3, 7, 'n3');
DELETE FROM notes WHERE id = 1;
INSERT INTO plain VALUES (2, 'y');
INSERT INTO todos VALUES (100, 42, 'marker');
});

my $received = 0;
for (1 .. 10 * $PostgreSQL::Test::Utils::timeout_default)
{
	if (-e $live_file && slurp_file($live_file) =~ /"id":100,"user_id":42,"title":"marker"/)
	{
		$received = 1;
		last;
	}
	usleep(100_000);
}
ok($received, 'the live consumer receives changes before the crash')
  or diag("pg_recvlogical stderr: $live_err");

# An open transaction, a committed burst, and the server killed at once.
my $inflight = $node->background_psql('postgres');
$inflight->query_safe(
	"BEGIN; INSERT INTO todos VALUES (200, 42, 'never committed');");
$node->safe_psql('postgres', q{
INSERT INTO todos SELECT g, 42, 'burst' FROM generate_series(300, 399) g;
UPDATE todos SET user_id = 99 WHERE id BETWEEN 300 AND 309;
});
$node->stop('immediate');

eval { $live->finish; };
note "live pg_recvlogical exit: " . ($? >> 8) . ", stderr: $live_err";
eval { $inflight->quit; };

my @live = -e $live_file ? split(/\n/, slurp_file($live_file)) : ();
my @before = (@phase1, @live);

$node->start;

# The confirmed positions that survived the crash
my $a_pos = slot_field('a', 'confirmed_flush_lsn');
my $b_pos = slot_field('b', 'confirmed_flush_lsn');
note "after the crash: slot a at $a_pos, slot b at $b_pos";
ok(sr_lsn_cmp($a_pos, $e0) >= 0,
	"slot a's confirmed position ($a_pos) survived the crash (>= $e0)");
is($b_pos, $t1_end, "slot b's confirmed position survived the crash");

# ---- Phase 3: after the restart --------------------------------------------
my $s_notes_all = $node->safe_psql('postgres',
	"SELECT shape_router.add_shape('notes')");
$node->safe_psql('postgres', qq{
INSERT INTO todos VALUES (400, 42, 'after restart'), (401, 99, 'after restart 99');
SELECT shape_router.remove_shape($s_42);
UPDATE todos SET user_id = 42 WHERE id = 401;
INSERT INTO notes VALUES (4, 1, 'n4');
BEGIN;
INSERT INTO todos VALUES (500, 500, 'before its shape');
SELECT shape_router.add_shape('todos', 'user_id = 500');
INSERT INTO todos VALUES (501, 500, 'same transaction as its shape');
COMMIT;
INSERT INTO todos VALUES (502, 500, 'after its shape');
DELETE FROM todos WHERE id = 20;
TRUNCATE notes;
INSERT INTO plain VALUES (3, 'z');
});

# The reference: one decoding session over everything.
$c_rows = sr_peek($node, 'c', %opts);
my $end = sr_last_lsn($c_rows);
my $c_lines = lines_of($c_rows);
sr_save('001_c_reference', $c_lines);
sr_save('001_a_before_crash', \@before);

# Sanity of the reference, so that the comparisons below mean something.
my $c_text = join("\n", @$c_lines);
like($c_text, qr/"move":"in","shapes":\[$s_done\]/, 'reference has a move-in');
like($c_text, qr/"event":"removed","shape":$s_42,/, 'reference has a removal after the restart');
like($c_text, qr/"action":"T","shapes":\[$s_notes,$s_notes_all\]|"action":"T","shapes":\[$s_notes_all\]/,
	'reference has a TRUNCATE');
unlike($c_text, qr/never committed/, 'reference lacks the transaction open at the crash');

# What a received before the crash is a prefix of the reference.
my @c_prefix = @$c_lines[ 0 .. (@before < @$c_lines ? $#before : $#$c_lines) ];
sr_compare_records(\@before, \@c_prefix,
	'records received before the crash are a prefix of the reference');

# Slot a after the restart, from its confirmed position.
my $after = $node->pg_recvlogical_upto('postgres', 'a', $end,
	$PostgreSQL::Test::Utils::timeout_default, %opts);
my @after = split /\n/, $after;
sr_save('001_a_after_crash', \@after);
my $expected_a = sr_txns_from($c_lines, $a_pos);
ok(@$expected_a > 0, 'there are transactions after slot a\'s confirmed position');
sr_compare_records(\@after, $expected_a,
	"slot a after the crash, from $a_pos, gets exactly what an uninterrupted decoding gives");

# Slot b: a session starting between T1's commit and T2's commit.
my $b_lines = lines_of(sr_get($node, 'b', %opts));
sr_save('001_b', $b_lines);
my $expected_b = sr_txns_from($c_lines, $t1_end);
like(join("\n", @$expected_b), qr/"shapes":\[$s_99\].*"title":"early99"/,
	"the reference routes T2's first change to the shape T1 added");
sr_compare_records($b_lines, $expected_b,
	"slot b, from $t1_end (after T1, before T2's commit), gets exactly what an uninterrupted decoding gives");

$node->stop;
done_testing();
