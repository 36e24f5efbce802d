# Helpers shared by the shape_router TAP tests (test/t/*.pl).
#
# A cluster set up for logical decoding with shape_router allowed, reading
# a slot's records as text lines, splitting a stream into transactions, and
# comparing record lists with a readable diagnostic.
package SrTap;

use strict;
use warnings;

use Exporter 'import';
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

our @EXPORT = qw(sr_node sr_peek sr_get sr_last_lsn sr_lsn_cmp sr_txns
  sr_txns_from sr_compare_records sr_short sr_save);

# Whether the server has PostgreSQL 15.20's output_plugin_libraries (a patch
# of some builds; a server without it refuses to start with it set, and
# allows every plugin).
my $has_plugin_list;

sub _has_plugin_list
{
	$has_plugin_list //=
	  (grep { /^output_plugin_libraries\t/ } `postgres --describe-config`) ? 1 : 0;
	return $has_plugin_list;
}

# A started cluster with wal_level = logical and shape_router allowed as an
# output plugin (output_plugin_libraries, where the server has it), UTF8 in
# the locale test/tap.sh chose (SR_LOCALE), the extension created in
# database postgres.
sub sr_node
{
	my ($name, $extra_conf) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init(
		allows_streaming => 'logical',
		extra => [ '--locale=' . ($ENV{SR_LOCALE} // 'C.UTF-8'), '--encoding=UTF8' ]);
	$node->append_conf('postgresql.conf', qq{
wal_level = logical
max_replication_slots = 10
max_wal_senders = 10
log_min_messages = info
});
	$node->append_conf('postgresql.conf',
		"output_plugin_libraries = 'pgoutput, test_decoding, wal2json, shape_router'\n")
	  if _has_plugin_list();
	$node->append_conf('postgresql.conf', $extra_conf) if defined $extra_conf;
	$node->start;
	$node->safe_psql('postgres', 'CREATE EXTENSION shape_router');
	return $node;
}

sub _opts_sql
{
	my (%opts) = @_;
	return join('', map { ", '$_', '$opts{$_}'" } sort keys %opts);
}

# The slot's pending records as (lsn, data) pairs, without consuming them.
sub _changes
{
	my ($node, $fn, $slot, %opts) = @_;
	my $out = $node->safe_psql('postgres',
		    "SELECT lsn || ' ' || data FROM $fn('$slot', NULL, NULL"
		  . _opts_sql(%opts)
		  . ")");
	my @rows;
	for my $line (split /\n/, $out)
	{
		my ($lsn, $data) = split / /, $line, 2;
		push @rows, [ $lsn, $data ];
	}
	return \@rows;
}

# Records (text) and the write LSN of each, via the SQL interface.
sub sr_peek { return _changes($_[0], 'pg_logical_slot_peek_changes', @_[ 1 .. $#_ ]); }
sub sr_get  { return _changes($_[0], 'pg_logical_slot_get_changes',  @_[ 1 .. $#_ ]); }

# The write LSN of the last record (the end of the last transaction with
# records: a C record's row carries the commit's end LSN).
sub sr_last_lsn
{
	my ($rows) = @_;
	return @$rows ? $rows->[-1][0] : undef;
}

# Compare two pg_lsn strings: -1, 0, 1.
sub sr_lsn_cmp
{
	my ($x, $y) = @_;
	my @x = map { hex } split m{/}, $x;
	my @y = map { hex } split m{/}, $y;
	return ($x[0] <=> $y[0]) || ($x[1] <=> $y[1]);
}

# Split a list of record lines into transactions: [{xid, lsn (commit
# LSN of B/C), begin, commit, records => [lines]}].  Dies on records outside
# B/C or on unbalanced B/C, which is itself a protocol failure.
sub sr_txns
{
	my ($lines) = @_;
	my (@txns, $cur);
	for my $l (@$lines)
	{
		if ($l =~ /^\{"action":"B","xid":(\d+),"lsn":"([0-9A-F]+\/[0-9A-F]+)"\}$/)
		{
			die "B inside a transaction: $l" if $cur;
			$cur = { xid => $1, lsn => $2, begin => $l, records => [] };
		}
		elsif ($l =~ /^\{"action":"C","xid":(\d+),"lsn":"([0-9A-F]+\/[0-9A-F]+)"\}$/)
		{
			die "C outside a transaction: $l" unless $cur;
			die "C does not match B ($cur->{begin}): $l"
			  unless $1 eq $cur->{xid} && $2 eq $cur->{lsn};
			$cur->{commit} = $l;
			push @txns, $cur;
			undef $cur;
		}
		else
		{
			die "record outside B/C: $l" unless $cur;
			push @{ $cur->{records} }, $l;
		}
	}
	die "unterminated transaction $cur->{begin}" if $cur;
	return \@txns;
}

# The lines of the transactions whose commit LSN is at or after $from: what
# a decoding session starting at confirmed position $from must send.
sub sr_txns_from
{
	my ($lines, $from) = @_;
	my @out;
	for my $t (@{ sr_txns($lines) })
	{
		next if sr_lsn_cmp($t->{lsn}, $from) < 0;
		push @out, $t->{begin}, @{ $t->{records} }, $t->{commit};
	}
	return \@out;
}

# Keep a list of records next to the logs (tmp_check/log/NAME.out), for
# diagnosis.
sub sr_save
{
	my ($name, $lines) = @_;
	PostgreSQL::Test::Utils::append_to_file(
		"${PostgreSQL::Test::Utils::log_path}/$name.out",
		join('', map { "$_\n" } @$lines));
	return;
}

sub sr_short
{
	my ($s) = @_;
	return length($s) > 300 ? substr($s, 0, 300) . '...' : $s;
}

# ok() if the two lists of lines are identical; otherwise diag the first
# difference with some context on both sides.
sub sr_compare_records
{
	my ($got, $expected, $name) = @_;
	my $n = @$got > @$expected ? scalar @$got : scalar @$expected;
	my $first;
	for my $i (0 .. $n - 1)
	{
		if (!defined $got->[$i] || !defined $expected->[$i]
			|| $got->[$i] ne $expected->[$i])
		{
			$first = $i;
			last;
		}
	}
	my $ok = ok(!defined $first, $name);
	if (!$ok)
	{
		diag(sprintf("got %d records, expected %d; first difference at record %d",
				scalar @$got, scalar @$expected, $first));
		my $lo = $first > 3 ? $first - 3 : 0;
		for my $i ($lo .. $first + 6)
		{
			last if $i >= $n;
			my $g = defined $got->[$i] ? sr_short($got->[$i]) : '(none)';
			my $e = defined $expected->[$i] ? sr_short($expected->[$i]) : '(none)';
			my $mark = $g eq $e ? ' ' : '!';
			diag("$mark [$i] got:      $g");
			diag("$mark [$i] expected: $e") if $g ne $e;
		}
	}
	return $ok;
}

1;
