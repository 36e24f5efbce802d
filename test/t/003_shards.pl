# The shard option: n slots with shard k/n (k = 0 .. n-1) together give
# exactly the records of one unsharded slot.  A record of the unsharded
# slot with shapes [a, b, ...] is split between the shards by shape_id % n,
# so the comparison is per (record without "shapes", shape id) pair, per
# transaction; S records go to the shard of their shape; B/C appear in a
# shard's stream exactly for the transactions it has records of; and the
# order of the changes is kept.
use strict;
use warnings;

use File::Basename;
use lib dirname(__FILE__);

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use SrTap;
use Test::More;

my %opts = ('include-xid' => '1', 'include-lsn' => '1');
my $node = sr_node('shards');

$node->safe_psql('postgres', q{
CREATE TABLE todos (id int PRIMARY KEY, user_id int, title text,
                    done bool NOT NULL DEFAULT false, tags text[]);
ALTER TABLE todos REPLICA IDENTITY FULL;
CREATE TABLE notes (id int PRIMARY KEY, user_id int, body text, extra text);
ALTER TABLE notes REPLICA IDENTITY FULL;
CREATE TABLE plain (id int PRIMARY KEY, v text);
SELECT shape_router.add_shape('todos', 'user_id = 42');                          -- 1
SELECT shape_router.add_shape('todos', 'user_id = 42', ARRAY['title']);          -- 2
SELECT shape_router.add_shape('todos', 'user_id IN (42, 7)');                    -- 3
SELECT shape_router.add_shape('todos', 'done');                                  -- 4
SELECT shape_router.add_shape('todos', 'title LIKE ''a%''', ARRAY['done']);      -- 5
SELECT shape_router.add_shape('notes');                                          -- 6
SELECT shape_router.add_shape('notes', 'user_id > 10', ARRAY['user_id']);        -- 7
SELECT shape_router.add_shape('notes', 'body LIKE ''x%''');                      -- 8
});

my @shards = ([ 0, 2 ], [ 1, 2 ], [ 0, 3 ], [ 1, 3 ], [ 2, 3 ]);
my @slots = ('unsharded', map { "shard_$_->[0]_$_->[1]" } @shards);
$node->safe_psql('postgres',
	"SELECT pg_create_logical_replication_slot('$_', 'shape_router')")
  for @slots;

# ---- the workload ----------------------------------------------------------
$node->safe_psql('postgres', q{
INSERT INTO todos VALUES (1, 42, 'apple', false), (2, 7, 'banana', true),
                         (3, 5, 'avocado', false), (4, 42, 'x', true);
UPDATE todos SET user_id = 7 WHERE id = 1;
UPDATE todos SET done = true WHERE id = 3;
UPDATE todos SET id = 10 WHERE id = 4;
INSERT INTO notes VALUES (1, 42, 'xylophone'), (2, 3, 'hello'), (3, 11, 'xx');
INSERT INTO plain VALUES (1, 'never routed');
BEGIN;
SELECT shape_router.add_shape('todos', 'user_id = 7');                           -- 9
SELECT shape_router.add_shape('notes', 'user_id = 3');                           -- 10
INSERT INTO todos VALUES (11, 7, 'same transaction as shape 9');
COMMIT;
INSERT INTO todos VALUES (20, 7, 'after shape 9');
INSERT INTO todos VALUES (21, 7, 'b');
SELECT shape_router.add_shapes('todos',
  ARRAY(SELECT format('user_id = %s', k) FROM generate_series(0, 29) k));       -- 11..40
SELECT shape_router.add_shape('todos', 'tags && ARRAY[''red'', ''blue'']');      -- 41
SELECT shape_router.add_shape('todos', 'user_id BETWEEN 10 AND 20 AND NOT done', ARRAY['user_id']); -- 42
INSERT INTO todos SELECT g, g % 50, CASE WHEN g % 3 = 0 THEN 'a' ELSE 'b' END || g,
                         g % 4 = 0, CASE WHEN g % 5 = 0 THEN ARRAY['red'] END
  FROM generate_series(100, 1099) g;
UPDATE todos SET user_id = user_id + 1 WHERE id BETWEEN 100 AND 399;
UPDATE todos SET done = NOT done, tags = ARRAY['blue'] WHERE id BETWEEN 350 AND 450;
UPDATE todos SET id = id + 10000 WHERE id BETWEEN 500 AND 549;
DELETE FROM todos WHERE id BETWEEN 600 AND 699;
SELECT shape_router.remove_shape(3);
SELECT shape_router.remove_shape(20);
DELETE FROM todos WHERE id = 2;
BEGIN;
UPDATE todos SET title = 'multi' WHERE id = 20;
INSERT INTO notes VALUES (4, 3, 'x4'), (5, 12, 'five');
UPDATE notes SET user_id = 9 WHERE id = 5;
DELETE FROM todos WHERE id = 21;
COMMIT;
ALTER TABLE notes DROP COLUMN body;
INSERT INTO notes (id, user_id, extra) VALUES (6, 20, 'e6'), (7, 3, 'e7');
UPDATE notes SET extra = 'changed' WHERE id = 6;
TRUNCATE notes;
TRUNCATE todos, plain;
INSERT INTO todos VALUES (1, 42, 'after truncate', false);
});

# ---- compare ---------------------------------------------------------------
my %lines;
for my $slot (@slots)
{
	my %o = %opts;
	$o{shard} = "$1/$2" if $slot =~ /^shard_(\d+)_(\d+)$/;
	$lines{$slot} = [ map { $_->[1] } @{ sr_get($node, $slot, %o) } ];
	sr_save("003_$slot", $lines{$slot});
}

# A record as (body without its shape list, [shape ids], order key)
sub split_record
{
	my ($l) = @_;
	if ($l =~ /^(\{"action":"[IUDT]"(?:,"move":"(?:in|out)")?),"shapes":\[([0-9,]+)\](.*)$/)
	{
		my ($head, $body, @ids) = ($1, $1 . $3, split /,/, $2);
		my ($lsn) = $l =~ /.*,"lsn":"([0-9A-F]+\/[0-9A-F]+)"/;
		return ($body, \@ids, "$head " . ($lsn // '?'));
	}
	if ($l =~ /^\{"action":"S","event":"\w+","shape":(\d+),/)
	{
		return ($l, [$1], $l);
	}
	die "unknown record: $l";
}

sub parse_stream
{
	my ($slot) = @_;
	my $txns = eval { sr_txns($lines{$slot}) };
	BAIL_OUT("stream of slot $slot is malformed: $@") unless $txns;
	for my $t (@$txns)
	{
		$t->{pairs} = [];
		$t->{order} = [];
		for my $l (@{ $t->{records} })
		{
			my ($body, $ids, $key) = split_record($l);
			my @sorted = sort { $a <=> $b } @$ids;
			fail("shapes ascending in $slot: $l") if "@sorted" ne "@$ids";
			push @{ $t->{pairs} }, map { [ $body, $_ ] } @$ids;
			push @{ $t->{order} }, [ $key, $ids ];
		}
	}
	return $txns;
}

my $all = parse_stream('unsharded');
cmp_ok(scalar @$all, '>', 20, 'the unsharded slot has transactions');
my $npairs = 0;
$npairs += @{ $_->{pairs} } for @$all;
note "unsharded: " . scalar(@$all) . " transactions, $npairs (record, shape) pairs";

# Coverage of the workload, so the comparisons below mean something
my $all_text = join("\n", @{ $lines{unsharded} });
like($all_text, qr/"event":"invalidated","shape":8,/, 'a shape is invalidated');
like($all_text, qr/"action":"T"/, 'a TRUNCATE is routed');
like($all_text, qr/"move":"in"/, 'a move-in is routed');
like($all_text, qr/"move":"out"/, 'a move-out is routed');
like($all_text, qr/"shapes":\[\d+(,\d+)+\]/, 'records with several shapes');

for my $s (@shards)
{
	my ($k, $n) = @$s;
	my $slot = "shard_${k}_$n";
	my $mine = sub { $_[0] % $n == $k };
	my $got = parse_stream($slot);
	my %got = map { $_->{xid} => $_ } @$got;
	my (@errors, $empty_elsewhere);

	for my $t (@$got)
	{
		for my $p (@{ $t->{pairs} })
		{
			push @errors, "xid $t->{xid}: shape $p->[1] is not in shard $k/$n: $p->[0]"
			  unless $mine->($p->[1]);
		}
	}

	my %seen;
	for my $t (@$all)
	{
		my @want = grep { $mine->($_->[1]) } @{ $t->{pairs} };
		my $g = $got{ $t->{xid} };
		$seen{ $t->{xid} } = 1;
		if (!@want)
		{
			$empty_elsewhere++ if @{ $t->{pairs} };
			push @errors, "xid $t->{xid}: shard has B/C but no records are expected"
			  if $g;
			next;
		}
		if (!$g)
		{
			push @errors, "xid $t->{xid}: missing from the shard; expected "
			  . scalar(@want) . " pairs, first: $want[0][0] -> $want[0][1]";
			next;
		}
		push @errors, "xid $t->{xid}: B differs: $g->{begin} vs $t->{begin}"
		  if $g->{begin} ne $t->{begin};
		push @errors, "xid $t->{xid}: C differs: $g->{commit} vs $t->{commit}"
		  if $g->{commit} ne $t->{commit};

		# the multiset of (record, shape) pairs
		my (%count);
		$count{"$_->[1]\t$_->[0]"}++ for @want;
		$count{"$_->[1]\t$_->[0]"}-- for @{ $g->{pairs} };
		for my $key (sort keys %count)
		{
			next unless $count{$key};
			my ($id, $body) = split /\t/, $key, 2;
			push @errors, sprintf("xid %s: %s shape %s: %s", $t->{xid},
				$count{$key} > 0 ? 'missing' : 'extra', $id, sr_short($body));
		}

		# the order of the changes: (action, move, lsn) groups, or S records
		my (@want_order, @got_order);
		for my $o (@{ $t->{order} })
		{
			next unless grep { $mine->($_) } @{ $o->[1] };
			push @want_order, $o->[0]
			  unless @want_order && $want_order[-1] eq $o->[0];
		}
		for my $o (@{ $g->{order} })
		{
			push @got_order, $o->[0]
			  unless @got_order && $got_order[-1] eq $o->[0];
		}
		push @errors, "xid $t->{xid}: order of changes differs:\n  got      "
		  . join(' | ', map { sr_short($_) } @got_order) . "\n  expected "
		  . join(' | ', map { sr_short($_) } @want_order)
		  if "@got_order" ne "@want_order";
	}
	for my $t (@$got)
	{
		push @errors, "xid $t->{xid}: in the shard but not in the unsharded stream"
		  unless $seen{ $t->{xid} };
	}

	ok(!@errors, "shard $k/$n has exactly its part of the unsharded records")
	  or diag(join("\n", scalar(@errors) . " differences:",
			@errors[ 0 .. (@errors > 25 ? 24 : $#errors) ]));
	ok($empty_elsewhere, "some transaction has no records for shard $k/$n (no B/C expected)")
	  if $n == 2;
}

# Every pair of the unsharded stream is in exactly one shard of each n,
# which the per-shard checks imply; count them as a last cross-check.
for my $n (2, 3)
{
	my $sum = 0;
	for my $s (grep { $_->[1] == $n } @shards)
	{
		my $t = parse_stream("shard_$s->[0]_$n");
		$sum += @{ $_->{pairs} } for @$t;
	}
	is($sum, $npairs, "the shards k/$n together have as many (record, shape) pairs as the unsharded slot");
}

$node->stop;
done_testing();
