# shape_router on tables without REPLICA IDENTITY FULL (REPLICA IDENTITY
# DEFAULT with a primary key, USING INDEX): the old side of UPDATE/DELETE
# comes from each slot's membership index, fed by the initial members
# add_shape writes into the WAL and saved in pg_replslot/<slot>/
# (shape_router.<relid>.<LSN>.seg + .redo generations).  Every check below
# compares with a decoding that cannot have the fault under test (a second
# slot read once, in one session), or with what the contract says a
# stream without members does (S unsynced, nothing routed):
#
#   1. a crash (immediate stop) while pg_recvlogical streams a workload on
#      shapes over rows that predate them, with membership generations
#      rolling over; after the restart the consumer (and a slot consumed in
#      batches with pg_logical_slot_get_changes) gets, from its confirmed
#      position, exactly what an uninterrupted decoding gives;
#   2. a truncated or byte-flipped .seg or .redo: WARNING, S unsynced once
#      per shape of the table, nothing routed to them, the other table's
#      shapes unaffected; after resync_shapes() (S synced) exact again;
#   3. a slot created after its shapes: S unsynced, resync_shapes(),
#      S synced, exact routing;
#   4. pg_logical_slot_peek_changes twice (with a generation written past
#      the slot's position by the first), and again after a clean and after
#      an immediate restart: identical output, and exact;
#   5. a long stream consumed in batches: several generations, the slot's
#      shape_router.* files stay bounded in number and size, exact routing;
#   6. a reboot (another boot id) after everything was fsynced: trusted; a
#      slot whose durability record is gone: discarded, S unsynced.
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

my $node = sr_node('defid');

# ---- helpers ----------------------------------------------------------------

sub q1 { return $node->safe_psql('postgres', $_[0]); }

sub slot_pos
{
	my ($slot) = @_;
	return q1("SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = '$slot'");
}

sub create_slots
{
	q1("SELECT pg_create_logical_replication_slot('$_', 'shape_router')") for @_;
}

sub lines_of { return [ map { $_->[1] } @{ $_[0] } ]; }

# pg_logical_slot_{get,peek}_changes: ([lsn, data] rows, stderr)
sub changes
{
	my ($fn, $slot) = @_;
	my ($out, $err) = ('', '');
	$node->psql('postgres',
		"SELECT lsn || ' ' || data FROM pg_logical_slot_${fn}_changes('$slot', NULL, NULL)",
		stdout => \$out, stderr => \$err, on_error_die => 1);
	my @rows = map { [ split / /, $_, 2 ] } grep { length } split /\n/, $out;
	return (\@rows, $err);
}

# shape_router.* files of a slot: { name => size }
sub slot_files
{
	my ($slot) = @_;
	my $dir = $node->data_dir . "/pg_replslot/$slot";
	opendir(my $d, $dir) or die "opendir $dir: $!";
	my %f = map { $_ => -s "$dir/$_" } grep { /^shape_router\./ } readdir $d;
	closedir $d;
	return \%f;
}

# the generations (16 hex digit LSNs, ascending) of a table in a slot
sub generations
{
	my ($slot, $relid) = @_;
	my $f = slot_files($slot);
	return sort map { /^shape_router\.$relid\.([0-9A-F]{16})\.seg$/ ? $1 : () } keys %$f;
}

sub relid { return q1("SELECT '$_[0]'::regclass::oid"); }

sub lsn_hex16
{
	my ($lsn) = @_;
	my ($hi, $lo) = map { hex } split m{/}, $lsn;
	return sprintf('%08X%08X', $hi, $lo);
}

# Transactions of a record list (sr_txns) whose commit LSN is in [lo, hi)
# (undef: unbounded), each record kept if $keep->(record) (all if undef),
# transactions left empty dropped; flattened back to lines.
sub txn_lines
{
	my ($lines, $lo, $hi, $keep) = @_;
	my @out;
	for my $t (@{ sr_txns($lines) })
	{
		next if defined $lo && sr_lsn_cmp($t->{lsn}, $lo) < 0;
		next if defined $hi && sr_lsn_cmp($t->{lsn}, $hi) >= 0;
		my @r = grep { !$keep || $keep->($_) } @{ $t->{records} };
		push @out, $t->{begin}, @r, $t->{commit} if @r;
	}
	return \@out;
}

sub is_table { my ($l, $t) = @_; return $l =~ /^\{"action":"[IUDT]".*,"table":"$t"[,}]/; }

sub s_records
{
	my ($lines, $event, $table) = @_;
	return grep { /^\{"action":"S","event":"$event","shape":\d+,"schema":"public","table":"$table"/ } @$lines;
}

sub shape_of { return $_[0] =~ /"shape":(\d+)/ ? $1 : undef; }

# the S records of an event in a list, as "shape,shape,..." (each shape as
# often as it appears)
sub s_shapes
{
	my ($lines, $event, $table) = @_;
	return join(',', sort { $a <=> $b } map { shape_of($_) } s_records($lines, $event, $table));
}

sub damage
{
	my ($path, $how) = @_;
	my $size = -s $path;
	die "$path is missing" unless defined $size;
	if ($how eq 'truncate')
	{
		truncate($path, int($size / 2)) or die "truncate $path: $!";
	}
	else
	{
		my $off = int($size / 2);
		open(my $fh, '+<', $path) or die "open $path: $!";
		binmode $fh;
		seek($fh, $off, 0);
		read($fh, my $b, 1) == 1 or die "read $path";
		seek($fh, $off, 0);
		print $fh chr(ord($b) ^ 0x5A);
		close($fh) or die "close $path: $!";
	}
	return $size;
}

# pg_recvlogical --start in the background, writing to $file
sub start_recv
{
	my ($slot, $file) = @_;
	my $h = { file => $file, out => '', err => '', slot => $slot };
	$h->{run} = IPC::Run::start(
		[
			'pg_recvlogical', '-d', $node->connstr('postgres'),
			'-S', $slot, '--start', '--no-loop', '-s', '1', '-F', '0',
			'-f', $file
		],
		'>', \$h->{out}, '2>', \$h->{err},
		IPC::Run::timeout(10 * $timeout));
	return $h;
}

# complete lines of a pg_recvlogical output file
sub file_lines
{
	my ($file) = @_;
	return [] unless -e $file;
	my $text = slurp_file($file);
	$text =~ s/[^\n]*\z//;
	return [ split /\n/, $text ];
}

sub wait_for_file
{
	my ($h, $re) = @_;
	my $deadline = time + 5 * $timeout;
	while (time < $deadline)
	{
		return 1 if -e $h->{file} && slurp_file($h->{file}) =~ $re;
		$h->{run}->pump_nb if $h->{run}->pumpable;
		last unless $h->{run}->pumpable;
		usleep(50_000);
	}
	return -e $h->{file} && slurp_file($h->{file}) =~ $re;
}

# 'k' shapes "col >= -1" .. "col >= -k" on a table: every row is in all of
# them, so every change of a row rewrites a long shape list in the redo log
# (and the generations roll over quickly)
sub wide_shapes
{
	my ($table, $col, $k) = @_;
	return q1("SELECT shape_router.add_shapes('$table', array_agg(format('$col >= %s', -k) ORDER BY k)) FROM generate_series(1, $k) k");
}

# ---- 1. a crash mid-stream -------------------------------------------------
subtest 'crash while pg_recvlogical streams' => sub {
	q1(q{
CREATE TABLE acct (id int PRIMARY KEY, grp int, bal int, note text);
INSERT INTO acct SELECT g, g % 10, g % 1000, 'n' || g FROM generate_series(1, 3000) g;
CREATE TABLE tk (name text NOT NULL, v int);
CREATE UNIQUE INDEX tk_name ON tk (name);
ALTER TABLE tk REPLICA IDENTITY USING INDEX tk_name;
INSERT INTO tk SELECT 'k' || g, g % 10 FROM generate_series(1, 300) g;
});
	# the slots exist before the shapes (which the rows predate)
	create_slots(qw(ref1 live batch));
	my $live = start_recv('live', "$tmp/005_live.out");

	my @acct_shapes = (
		q1("SELECT shape_router.add_shape('acct', 'grp = 1')"),
		q1("SELECT shape_router.add_shape('acct', 'grp IN (2, 3)')"),
		q1("SELECT shape_router.add_shape('acct', 'bal < 100', ARRAY['bal'])"));
	my ($rows0) = changes('get', 'batch');
	my $batch_lines = lines_of($rows0);
	# The positions this checkpoint saves are those a crash goes back to,
	# unless something saves the slots again: a walsender's confirmed
	# position is saved only when its restart_lsn or catalog_xmin moves,
	# pg_logical_slot_get_changes's at the next checkpoint.  From here on,
	# the redo logs grow past 4 MB and new generations are written.
	q1('CHECKPOINT');
	wide_shapes('acct', 'bal', 16);
	my @tk_shapes = (
		q1("SELECT shape_router.add_shape('tk', 'v = 1')"),
		q1("SELECT shape_router.add_shape('tk', 'v IN (2, 3)', ARRAY['v'])"));
	note "acct shapes @acct_shapes (+16 wide), tk shapes @tk_shapes";

	my $round = sub {
		my ($r) = @_;
		my $m = $r % 7;
		return qq{
UPDATE acct SET grp = (grp + 1) % 10;
UPDATE acct SET bal = (bal + 37) % 1000 WHERE id % 7 = $m;
UPDATE tk SET v = (v + 1) % 10 WHERE length(name) % 3 = $r % 3;
BEGIN;
DELETE FROM acct WHERE id % 97 = $r;
INSERT INTO acct SELECT 10000 + 100 * $r + g, g % 10, g % 200, 'new' FROM generate_series(1, 30) g;
COMMIT;
UPDATE acct SET id = id + 1000000 WHERE id % 101 = $r AND id < 1000000;
UPDATE tk SET name = name || 'x', v = 1 WHERE v = $m;
INSERT INTO acct VALUES (900000 + $r, 0, 500, 'round $r');
};
	};

	# Phase A: rounds consumed as they come, live and in batches
	for my $r (1 .. 3)
	{
		q1($round->($r));
		my ($rows) = changes('get', 'batch');
		push @$batch_lines, @{ lines_of($rows) };
	}
	ok(wait_for_file($live, qr/"note":"round 3"/), 'the live consumer follows')
	  or diag("pg_recvlogical: $live->{err}");
	my $acct_relid = relid('acct');
	note "generations of acct in slot batch: " . join(' ', generations('batch', $acct_relid));

	# Phase B: a stream of rounds from another session, the server killed
	# while the consumer is in the middle of it
	my $script = "$tmp/005_phase_b.sql";
	append_to_file($script, $round->($_)) for 4 .. 16;
	my ($bout, $berr) = ('', '');
	my $writer = IPC::Run::start(
		[ 'psql', '-X', '-q', '-d', $node->connstr('postgres'), '-f', $script ],
		'>', \$bout, '2>', \$berr, IPC::Run::timeout(10 * $timeout));
	ok(wait_for_file($live, qr/"note":"round 10"/),
		'the live consumer receives round 10 before the crash')
	  or diag("pg_recvlogical: $live->{err}");
	my @live_gens = generations('live', $acct_relid);
	note "generations of acct in slot live before the crash: @live_gens";
	$node->stop('immediate');
	eval { $live->{run}->finish; };
	eval { $writer->finish; };
	my $before = file_lines($live->{file});
	my ($last_round) = sort { $b <=> $a } (join("\n", @$before) =~ /"note":"round (\d+)"/g);
	note sprintf("the live consumer had %d records at the crash, up to round %s",
		scalar @$before, $last_round // '?');

	$node->start;
	my %pos = map { $_ => slot_pos($_) } qw(live batch);
	note "after the crash: live at $pos{live}, batch at $pos{batch}";

	# Phase C: after the restart, changes whose old side needs the members
	q1(q{
DELETE FROM acct WHERE id % 3 = 0;
UPDATE acct SET grp = 1 WHERE id % 5 = 0;
UPDATE acct SET bal = 50 WHERE id % 11 = 0;
DELETE FROM tk WHERE v IN (1, 2);
UPDATE tk SET v = 3;
INSERT INTO acct VALUES (999999, 1, 1, 'the end');
});

	# the reference: one session, after everything
	my ($ref_rows) = changes('peek', 'ref1');
	my $ref = lines_of($ref_rows);
	my $end = sr_last_lsn($ref_rows);
	sr_save('005_ref1', $ref);
	sr_save('005_live_before_crash', $before);
	my $ref_text = join("\n", @$ref);
	like($ref_text, qr/"action":"D","move":"out","shapes":\[$acct_shapes[0]\],"schema":"public","table":"acct"/,
		'the reference has move-outs of acct');
	like($ref_text, qr/"action":"D","shapes":\[[0-9,]*\b$acct_shapes[1]\b[0-9,]*\],"schema":"public","table":"acct"/,
		'the reference has DELETEs routed by membership');
	like($ref_text, qr/"action":"D","shapes":\[$tk_shapes[0]\],"schema":"public","table":"tk","key":\{"name":/,
		'the reference routes tk (USING INDEX)');
	unlike($ref_text, qr/"event":"unsynced"/, 'the reference has every shape synced');

	sr_compare_records($before, [ @$ref[ 0 .. ($#$before < $#$ref ? $#$before : $#$ref) ] ],
		'what the live consumer got before the crash is a prefix of the reference');
	sr_compare_records($batch_lines, [ @$ref[ 0 .. ($#$batch_lines < $#$ref ? $#$batch_lines : $#$ref) ] ],
		'what the slot consumed in batches got before the crash is a prefix of the reference');

	my $after = $node->pg_recvlogical_upto('postgres', 'live', $end, $timeout);
	$after = [ split /\n/, $after ];
	sr_save('005_live_after_crash', $after);
	my $exp = sr_txns_from($ref, $pos{live});
	ok(@$exp > 0, 'there are transactions after the live slot\'s confirmed position');
	sr_compare_records($after, $exp,
		"pg_recvlogical after the crash, from $pos{live}, gets what an uninterrupted decoding gives");

	my ($brows) = changes('get', 'batch');
	sr_save('005_batch_after_crash', lines_of($brows));
	sr_compare_records(lines_of($brows), sr_txns_from($ref, $pos{batch}),
		"the slot consumed in batches, after the crash, from $pos{batch}, gets what an uninterrupted decoding gives");

	q1("SELECT pg_drop_replication_slot('$_')") for qw(ref1 live batch);
};

# ---- 2-4 share a reference slot, created before their shapes --------------
create_slots(qw(ref2 dmg));

# ---- 2. damaged state files ------------------------------------------------
my @windows;	# [lo, hi, got lines, filter] compared with ref2 at the end
subtest 'truncated and corrupted membership files' => sub {
	q1(q{
CREATE TABLE d_items (id int PRIMARY KEY, grp int, v int);
INSERT INTO d_items SELECT g, g % 4, g FROM generate_series(1, 400) g;
CREATE TABLE d_other (id int PRIMARY KEY, grp int);
INSERT INTO d_other SELECT g, g % 4 FROM generate_series(1, 200) g;
});
	my @items_shapes = (
		q1("SELECT shape_router.add_shape('d_items', 'grp = 1')"),
		q1("SELECT shape_router.add_shape('d_items', 'grp IN (2, 3)', ARRAY['grp'])"));
	my $other_shape = q1("SELECT shape_router.add_shape('d_other', 'grp = 1')");
	my $items_relid = relid('d_items');
	my $items_list = join(',', @items_shapes);

	# many small transactions after the segment, so that the redo log of the
	# newest generation holds several of them
	my $moves = sub {
		my ($c) = @_;
		return join('', map { "UPDATE d_items SET grp = (grp + 1) % 4 WHERE id % 20 = $_;\n" } 0 .. 19)
		  . "UPDATE d_other SET grp = (grp + 1) % 4 WHERE id % 5 = $c;\n"
		  . "DELETE FROM d_items WHERE id % 31 = $c;\n"
		  . "INSERT INTO d_items SELECT 1000 * ($c + 1) + g, g % 4, g FROM generate_series(1, 10) g;\n";
	};
	q1($moves->(9));
	my ($rows) = changes('get', 'dmg');
	unlike(join("\n", @{ lines_of($rows) }), qr/unsynced/, 'no shape is unsynced before the damage');

	my $c = 0;
	for my $case ([ 'seg', 'truncate' ], [ 'seg', 'flip' ], [ 'redo', 'flip' ], [ 'redo', 'truncate' ])
	{
		my ($suffix, $how) = @$case;
		my $name = "$how .$suffix";
		$c++;
		$node->stop;
		my @gens = generations('dmg', $items_relid);
		my $file = $node->data_dir . "/pg_replslot/dmg/shape_router.$items_relid.$gens[-1].$suffix";
		my $size = damage($file, $how);
		note "$name: damaged $file ($size bytes), generations @gens";
		$node->start;

		# changes whose old side needs the members, first on d_items
		my $lo = q1('SELECT pg_current_wal_lsn()');
		q1(qq{
UPDATE d_items SET grp = 1 WHERE id % 7 = $c;
DELETE FROM d_items WHERE id % 5 = $c;
UPDATE d_other SET grp = (grp + 1) % 4 WHERE id % 3 = $c % 3;
DELETE FROM d_other WHERE id % 17 = $c;
UPDATE d_items SET grp = 2 WHERE id % 9 = $c;
});
		my $mid = q1('SELECT pg_current_wal_lsn()');
		my ($r1, $err) = changes('get', 'dmg');
		my $l1 = lines_of($r1);
		sr_save("005_dmg_$c", $l1);
		like($err, qr/WARNING:  discarding the saved membership of table $items_relid in slot "dmg"/,
			"$name: a WARNING says the saved membership is discarded");
		is(s_shapes($l1, 'unsynced', 'd_items'), $items_list,
			"$name: S unsynced once for each shape of the table");
		my $t1 = sr_txns($l1);
		is(s_shapes($t1->[0]{records}, 'unsynced', 'd_items'), $items_list,
			"$name: in the first transaction with a change on the table");
		like((s_records($l1, 'unsynced', 'd_items'))[0] // '', qr/"reason":"[^"]*discarded/,
			"$name: the reason says the saved state was discarded");
		is(scalar(grep { is_table($_, 'd_items') } @$l1), 0,
			"$name: nothing is routed to the unsynced shapes");
		is(scalar(s_records($l1, 'unsynced', 'd_other')), 0,
			"$name: the other table's shape stays synced");
		push @windows, [ $lo, $mid, txn_lines($l1, undef, undef, sub { $_[0] !~ /"event":"unsynced"/ }),
			sub { !is_table($_[0], 'd_items') }, "$name: until the resync, the records (but those of d_items) are those of the reference" ];

		my $resync = q1("SELECT shape_router.resync_shapes(ARRAY[$items_list]::bigint[])");
		is($resync, 2, "$name: resync_shapes() sends the members of 2 shapes");
		q1($moves->($c));
		my $hi = q1('SELECT pg_current_wal_lsn()');
		my ($r2) = changes('get', 'dmg');
		my $l2 = lines_of($r2);
		sr_save("005_dmg_${c}_resynced", $l2);
		my $t2 = sr_txns($l2);
		is(s_shapes($t2->[0]{records}, 'synced', 'd_items'), $items_list,
			"$name: S synced for each shape in the resync transaction");
		is(join("\n", grep { !/"event":"synced"/ } @{ $t2->[0]{records} }), '',
			"$name: the resync transaction has nothing else");
		is(s_shapes($l2, 'unsynced', 'd_items'), '', "$name: no S unsynced again");
		push @windows, [ $mid, $hi, txn_lines($l2, undef, undef, sub { $_[0] !~ /"event":"synced"/ }),
			undef, "$name: after the resync, exactly the records of the reference" ];
	}
};

# ---- 3. a slot created after its shapes ------------------------------------
subtest 'slot created after its shapes' => sub {
	q1(q{
CREATE TABLE late_t (id int PRIMARY KEY, grp int, v text);
INSERT INTO late_t SELECT g, g % 4, 'v' || g FROM generate_series(1, 300) g;
});
	my @shapes = (
		q1("SELECT shape_router.add_shape('late_t', 'grp = 1')"),
		q1("SELECT shape_router.add_shape('late_t', 'grp = 2 OR v LIKE ''v1%''')"));
	my $list = join(',', @shapes);
	create_slots('late');

	my $lo = q1('SELECT pg_current_wal_lsn()');
	q1(q{
UPDATE late_t SET grp = 1 WHERE id % 10 = 2;
DELETE FROM late_t WHERE id % 10 = 1;
UPDATE late_t SET grp = 3 WHERE grp = 2;
INSERT INTO late_t VALUES (1000, 1, 'new');
});
	my $mid = q1('SELECT pg_current_wal_lsn()');
	my ($r1) = changes('get', 'late');
	my $l1 = lines_of($r1);
	sr_save('005_late', $l1);
	my $t1 = sr_txns($l1);
	is(s_shapes($l1, 'unsynced', 'late_t'), $list, 'S unsynced once for each shape');
	is(s_shapes($t1->[0]{records}, 'unsynced', 'late_t'), $list,
		'in the first transaction with a change on the table');
	like((s_records($l1, 'unsynced', 'late_t'))[0] // '', qr/"reason":"[^"]*no members/,
		'the reason says the slot has no members');
	is(scalar(grep { is_table($_, 'late_t') } @$l1), 0, 'nothing is routed before the resync');

	is(q1("SELECT shape_router.resync_shapes(ARRAY[$list]::bigint[])"), 2, 'resync_shapes()');
	q1(q{
UPDATE late_t SET grp = 2 WHERE id % 10 = 2;
DELETE FROM late_t WHERE grp = 1;
UPDATE late_t SET v = 'w' WHERE id % 10 = 5;
UPDATE late_t SET id = id + 5000 WHERE id % 10 = 4;
DELETE FROM late_t WHERE id % 3 = 0;
});
	my $hi = q1('SELECT pg_current_wal_lsn()');
	my ($r2) = changes('get', 'late');
	my $l2 = lines_of($r2);
	sr_save('005_late_resynced', $l2);
	my $t2 = sr_txns($l2);
	is(s_shapes($t2->[0]{records}, 'synced', 'late_t'), $list, 'S synced for each shape in the resync transaction');
	is(join("\n", grep { !/"event":"synced"/ } @{ $t2->[0]{records} }), '',
		'the resync transaction has nothing else');
	like(join("\n", @$l2), qr/"action":"D","shapes":\[$shapes[1]\],"schema":"public","table":"late_t"/,
		'DELETEs are routed by membership after the resync');
	push @windows, [ $mid, $hi, txn_lines($l2, undef, undef, sub { $_[0] !~ /"event":"synced"/ }),
		undef, 'slot created after its shapes: after the resync, exactly the records of the reference' ];
	q1("SELECT pg_drop_replication_slot('late')");
};

# ---- 4. peek twice, and across restarts ------------------------------------
subtest 'peek_changes is repeatable' => sub {
	create_slots('pk');
	q1(q{
CREATE TABLE pk_t (id int PRIMARY KEY, grp int, v int);
INSERT INTO pk_t SELECT g, g % 10, g FROM generate_series(1, 2000) g;
});
	my @shapes = (
		q1("SELECT shape_router.add_shape('pk_t', 'grp = 1')"),
		q1("SELECT shape_router.add_shape('pk_t', 'grp IN (2, 3)')"));
	wide_shapes('pk_t', 'v', 12);
	changes('get', 'pk');
	my $relid = relid('pk_t');
	my $pos = slot_pos('pk');
	my @gens0 = generations('pk', $relid);

	# enough redo for a new generation within the peeked changes, then
	# changes whose old side needs the members
	my $lo = q1('SELECT pg_current_wal_lsn()');
	# (v = -v: every row leaves or enters the wide shapes, a whole set each)
	q1(join('', map { "UPDATE pk_t SET grp = (grp + 1) % 10, v = -v;\n" } 1 .. 24) . q{
DELETE FROM pk_t WHERE id % 4 = 0;
UPDATE pk_t SET grp = 1 WHERE id % 7 = 0;
UPDATE pk_t SET id = id + 10000 WHERE id % 9 = 0;
DELETE FROM pk_t WHERE grp = 2;
});
	my $hi = q1('SELECT pg_current_wal_lsn()');
	my ($p1) = changes('peek', 'pk');
	my @gens1 = generations('pk', $relid);
	my $pos16 = lsn_hex16($pos);
	note "generations before the peek: @gens0; after it: @gens1 (slot at $pos16)";
	ok(scalar(grep { $_ gt $pos16 } @gens1),
		'the first peek wrote a generation past the slot\'s position');
	my $text = join("\n", @{ lines_of($p1) });
	like($text, qr/"action":"D","shapes":\[$shapes[1],/, 'the peeked records have DELETEs routed by membership');
	like($text, qr/"move":"out"/, 'and move-outs');
	my ($p2) = changes('peek', 'pk');
	sr_compare_records(lines_of($p2), lines_of($p1), 'a second peek gives the same records');
	$node->restart;
	my ($p3) = changes('peek', 'pk');
	sr_compare_records(lines_of($p3), lines_of($p1), 'a peek after a restart gives the same records');
	$node->stop('immediate');
	$node->start;
	my ($p4) = changes('peek', 'pk');
	sr_compare_records(lines_of($p4), lines_of($p1), 'a peek after a crash gives the same records');
	my ($g) = changes('get', 'pk');
	sr_compare_records(lines_of($g), lines_of($p1), 'get gives the same records');
	push @windows, [ $lo, $hi, lines_of($p1), undef, 'the peeked records are exactly those of the reference' ];
	q1("SELECT pg_drop_replication_slot('pk')");
};

# ---- 2-4: compare with the reference, read once ----------------------------
subtest 'parts 2-4 against the reference' => sub {
	my ($rows) = changes('get', 'ref2');
	my $ref = lines_of($rows);
	sr_save('005_ref2', $ref);
	unlike(join("\n", @$ref), qr/"event":"(un)?synced"/, 'the reference has every shape synced');
	for my $w (@windows)
	{
		my ($lo, $hi, $got, $keep, $name) = @$w;
		my $exp = txn_lines($ref, $lo, $hi, $keep);
		ok(@$exp > 2, "$name (the reference has records)");
		sr_compare_records($got, $exp, $name);
	}
	q1("SELECT pg_drop_replication_slot('$_')") for qw(ref2 dmg);
};

# ---- 5. disk use over a long stream ----------------------------------------
subtest 'disk use stays bounded over a long stream' => sub {
	q1(q{
CREATE TABLE big (id int PRIMARY KEY, grp int, v int, pad text);
INSERT INTO big SELECT g, g % 10, g, 'p' FROM generate_series(1, 8000) g;
});
	create_slots(qw(long ref5));
	my $s1 = q1("SELECT shape_router.add_shape('big', 'grp = 1')");
	my $s2 = q1("SELECT shape_router.add_shape('big', 'grp IN (2, 3)', ARRAY['grp'])");
	wide_shapes('big', 'v', 16);
	my $relid = relid('big');

	# the shapes' initial members (a transaction of its own, a redo log of
	# its own size): not counted in the bounds
	my ($first) = changes('get', 'long');
	my @got = @{ lines_of($first) };
	note "after the shapes: " . join(' ', map { "$_" } generations('long', $relid));
	my %seen_gens;
	my ($max_n, $max_bytes, $written) = (0, 0, 0);
	my %sizes;	# name => largest size seen (what the slot wrote, roughly)
	my $t0 = time;
	my $rounds = 18;
	for my $r (1 .. $rounds)
	{
		# v = -v: every row leaves or enters the wide shapes, and logs its
		# whole new set (a row whose shapes stay logs nothing)
		my $sql = "UPDATE big SET grp = (grp + 1) % 10, v = -v;\n";
		$sql .= "DELETE FROM big WHERE id % 13 = $r % 13;\n"
		  . "INSERT INTO big SELECT 100000 * $r + g, g % 10, g, 'n' FROM generate_series(1, 200) g;\n"
		  if $r % 4 == 0;
		$sql .= "UPDATE big SET id = id + 1000000 WHERE id % 101 = $r AND id < 1000000;\n"
		  if $r % 5 == 0;
		# as a server does now and then: the slot's restart_lsn moves on too
		$sql .= "CHECKPOINT;\n";
		q1($sql);
		my ($rows) = changes('get', 'long');
		push @got, @{ lines_of($rows) };
		# every table with shapes has (tiny) files in the slot: count the
		# files of big, and the bytes of all
		my $f = slot_files('long');
		my $bytes = 0;
		for my $n (keys %$f)
		{
			$bytes += $f->{$n};
			$sizes{$n} = $f->{$n} if !defined $sizes{$n} || $sizes{$n} < $f->{$n};
		}
		my @mine = sort grep { /^shape_router\.$relid\./ } keys %$f;
		$seen_gens{$_} = 1 for generations('long', $relid);
		$max_n     = @mine  if @mine > $max_n;
		$max_bytes = $bytes if $bytes > $max_bytes;
		note sprintf("round %d: %d records; %d files, %d bytes; big: %s", $r, scalar @$rows,
			scalar keys %$f, $bytes, join(' ', map { "$_=$f->{$_}" } @mine));
	}
	$written += $_ for values %sizes;
	note sprintf("%d rounds in %.1fs", $rounds, time - $t0);

	my $ngens = keys %seen_gens;
	cmp_ok($ngens, '>=', 4, "the slot wrote several generations ($ngens)");
	my @now = generations('long', $relid);
	cmp_ok(scalar @now, '<=', 2, 'at most two generations are kept at the end');
	cmp_ok($max_n, '<=', 4,
		"at most 4 files of the table at any time (two generations; max $max_n)");
	# A generation's redo log is replaced once past 4 MB (and half the
	# index): with ~1.5 MB of redo per batch here, a generation holds at
	# most ~6 MB, and the previous one goes at the next start.  Without
	# that removal the files would add up to what was written.
	my $bound = 12 * 1024 * 1024;
	cmp_ok($max_bytes, '<=', $bound,
		"the slot's shape_router.* files stay under 12 MB (max $max_bytes bytes)");
	cmp_ok($written, '>', $bound,
		"while more was written over the stream ($written bytes)");

	my ($ref_rows) = changes('get', 'ref5');
	my $ref = lines_of($ref_rows);
	unlike(join("\n", @$ref), qr/"event":"unsynced"/, 'the reference has every shape synced');
	like(join("\n", @$ref), qr/"action":"D","shapes":\[$s1,/, 'the reference has DELETEs routed by membership');
	sr_compare_records(\@got, $ref,
		'the stream consumed in batches gets exactly what one session gives');
	q1("SELECT pg_drop_replication_slot('$_')") for qw(long ref5);
};

# ---- 6. a reboot, and a slot without its durability record -----------------
# The redo logs are fsynced at most a second after a commit (and at a
# stream's end); shape_router.durable records the last fsync with the boot
# id.  A stream after a "reboot" (another boot id, through
# shape_router.boot_id_path) trusts the files only if everything before its
# start was fsynced: here it was (each get_changes ends with a sync).  A
# slot whose record is gone has its membership discarded (S unsynced).
subtest 'reboot and the durability record' => sub {
	my $bootf = "$tmp/boot_id";
	my $set_boot = sub {
		open my $fh, '>', $bootf or die $!;
		print $fh $_[0];
		close $fh;
		q1("LOAD 'shape_router';\nALTER SYSTEM SET shape_router.boot_id_path = '$bootf'");
		q1('SELECT pg_reload_conf()');
	};
	$set_boot->('aaaaaaaa-0000-0000-0000-000000000001');
	create_slots(qw(rb rbref));
	q1(q{
CREATE TABLE rb_t (id int PRIMARY KEY, grp int);
INSERT INTO rb_t SELECT g, g % 5 FROM generate_series(1, 500) g;
});
	my $s = q1("SELECT shape_router.add_shape('rb_t', 'grp = 1')");
	q1('UPDATE rb_t SET grp = (grp + 1) % 5 WHERE id % 2 = 0');
	changes('get', 'rb');
	ok(-f $node->data_dir . '/pg_replslot/rb/shape_router.durable',
		'the slot has its durability record');

	# another boot: everything before the start was fsynced, so trusted
	$set_boot->('bbbbbbbb-0000-0000-0000-000000000002');
	my $lo = q1('SELECT pg_current_wal_lsn()');
	q1('DELETE FROM rb_t WHERE id % 3 = 0');
	my ($got) = changes('get', 'rb');
	my $g = lines_of($got);
	unlike(join("\n", @$g), qr/"event":"unsynced"/, 'after a reboot with everything fsynced: no unsynced');
	like(join("\n", @$g), qr/"action":"D","shapes":\[$s\]/, 'and DELETEs routed by membership');

	# the record removed while membership files exist: discarded
	unlink($node->data_dir . '/pg_replslot/rb/shape_router.durable') or die $!;
	q1('DELETE FROM rb_t WHERE id % 7 = 0');
	($got) = changes('get', 'rb');
	$g = lines_of($got);
	like(join("\n", @$g), qr/"event":"unsynced","shape":$s,.*no record of what reached the disk/,
		'without its record the slot\'s membership is discarded: S unsynced');
	unlike(join("\n", @$g), qr/"action":"[IUDT]"/, 'and nothing routed for the shape');

	my ($ref) = changes('get', 'rbref');
	my @refd = grep { /"action":"D","shapes":\[$s\]/ } @{ lines_of($ref) };
	my @gotd = grep { /"action":"D","shapes":\[$s\]/ } @{ lines_of(changes('peek', 'rbref')) // [] };
	ok(@refd > 0, 'the reference routes those DELETEs');
	q1("LOAD 'shape_router';\nALTER SYSTEM RESET shape_router.boot_id_path");
	q1('SELECT pg_reload_conf()');
	q1("SELECT pg_drop_replication_slot('$_')") for qw(rb rbref);
};

$node->stop;
done_testing();
