#!/usr/bin/env bash
# Mutation check of test_membership.c: proves the unit test catches broken
# membership code.  For each mutation below, src/membership is copied to a
# fresh temporary directory, ONE small exact text substitution is applied,
# test_membership is built against the copy and run with `--quick 1`; the run
# must fail (non-zero exit, crash or timeout all count as caught).
#
#   bash test/unit/mutate.sh             every mutation (3-4 minutes)
#   bash test/unit/mutate.sh NAME...     only these
#   bash test/unit/mutate.sh --list      the names
#
# SR_MUTATE_VERBOSE=1 adds, after each result, how the run ended and its
# first failing TAP lines.  SR_MUTATE_TIMEOUT (seconds, default 120) bounds
# each run.
#
# Exit status: 0 if every mutation is caught, 1 if any is MISSED, 2 for a
# script error: a mutation's target text not found exactly once (the
# mutation went stale: fix its text), a mutated copy that does not build, or
# the unmutated code failing the test.
set -euo pipefail

cd "$(dirname "$0")/../.."
SRC=src/membership
TEST=test/unit/test_membership.c
MODULES=(crc32c keycanon mpart memb membfile)
TIMEOUT=${SR_MUTATE_TIMEOUT:-120}
VERBOSE=${SR_MUTATE_VERBOSE:-0}

die()
{
	echo "mutate.sh: error: $*" >&2
	exit 2
}

if [ ! -f "$TEST" ] || [ ! -d "$SRC" ]; then
	die "run from the repository (no $TEST or $SRC)"
fi
command -v python3 >/dev/null || die "python3 is needed"
command -v timeout >/dev/null || die "timeout (coreutils) is needed"

work=$(mktemp -d "${TMPDIR:-/tmp}/sr_mutate.XXXXXX")
trap 'rm -rf "$work"' EXIT

# ---- the mutations: name, file (in src/membership), exact old text, new ----
NAMES=()
FILES=()
OLDS=()
NEWS=()
mut()
{
	NAMES+=("$1")
	FILES+=("$2")
	OLDS+=("$3")
	NEWS+=("$4")
}

# 1. LoadPart: a partition blob's CRC is never checked
mut part-crc-skipped membfile.c \
	'if (Get32(e + 32) != SrCrc32c(f + off, len))' \
	'if (0 && Get32(e + 32) != SrCrc32c(f + off, len))'
# 2. CheckRegions: the segment header's CRC is never checked
mut header-crc-skipped membfile.c \
	'if (Get32(f + SEG_HEADER - 4) != SrCrc32c(f, SEG_HEADER - 4))' \
	'if (0 && Get32(f + SEG_HEADER - 4) != SrCrc32c(f, SEG_HEADER - 4))'
# 3. MPartEncode stores a pool offset one too far / DecodeValue reads one too far
mut pool-offset-encode-plus-one mpart.c \
	'(rel < escape ? (uint32_t) rel : escape)' \
	'(rel < escape ? (uint32_t) rel + 1 : escape)'
mut pool-offset-decode-plus-one mpart.c \
	'at += rel;' \
	'at += rel + 1;'
# 4. DecodeValue: the escape value (offset too far for the entry) is taken
#    as a direct offset instead of scanning the bucket's earlier sets
mut pool-escape-as-offset mpart.c \
	'if (rel != escape)' \
	'if (1)'
# 5. MPartLookup: the overlay is skipped, only the base answers
mut overlay-ignored mpart.c \
	$'if (e)\n\t\treturn OvlValue(p, e, locals, max);' \
	$'if (0 && e)\n\t\treturn OvlValue(p, e, locals, max);'
# 6. membint.h MLocalDropped: no shape is ever dropped
mut dropped-not-filtered membint.h \
	'return local >= m->nlocal || (m->dropped[local / 64] >> (local % 64)) & 1;' \
	'return false;'
# 7. RedoWalk: a transaction committed after `upto` is applied too
mut redo-applies-after-upto membfile.c \
	'else if (lsn > after && m)' \
	'if (lsn > after && m)'
# 8. MPartLookupBase: the remainder compared with one bit less
#    (`if (er > rem) return 0;` -> continue is equivalent: entries are sorted)
mut remainder-mask-one-bit-short mpart.c \
	'rmask = (((MId) 1) << rbits) - 1;' \
	'rmask = (((MId) 1) << (rbits - 1)) - 1;'
# 9. RedoWalk: damage before committed changes taken for a torn tail
mut redo-corrupt-as-torn membfile.c \
	'if (CommitAfter(f, flen, off) && FinalTxnStart(f, flen) != group)' \
	'if (0 && CommitAfter(f, flen, off) && FinalTxnStart(f, flen) != group)'
# 10. SrKeyAddNumeric: trailing zeros kept (1.50 != 1.5)
mut numeric-trailing-zeros-kept keycanon.c \
	"for (last = nd; last > first && DIGIT(last - 1) == '0'; last--)" \
	"for (last = nd; 0 && last > first && DIGIT(last - 1) == '0'; last--)"
# 11. SrCrc32cUpdateSoftware: slice-by-8 uses the wrong table for byte 0
mut crc-table-wrong-index crc32c.c \
	'crc = table[7][w & 0xFF]' \
	'crc = table[6][w & 0xFF]'
# 12. EncodeRange: a split on the wrong bit (one below the next prefix bit)
mut split-bit-off-by-one memb.c \
	'bit = SR_MEMB_ID_BITS - depth - 1;' \
	'bit = SR_MEMB_ID_BITS - depth - 2;'
# 13. EncodeRange: an oversized partition is never split
mut never-split memb.c \
	'if (to - from <= SR_MEMB_PART_MAX || depth >= MPART_MAX_DEPTH)' \
	'if (1 || to - from <= SR_MEMB_PART_MAX || depth >= MPART_MAX_DEPTH)'
# 14. Change: the rebuild threshold never triggers (overlays only grow)
mut rebuild-threshold-never memb.c \
	'++p->changes >= MRebuildAt(p->nkeys)' \
	'(++p->changes, false)'
# 15. OvlDelete: the backward-shift condition inverted (probe chains break)
mut ovl-delete-shift-inverted mpart.c \
	'if (OvlDist(p, j, home) >= OvlDist(p, j, i))' \
	'if (OvlDist(p, j, home) < OvlDist(p, j, i))'
# 16. ReclaimDrops: a dropped shape's local is reused at once, while
#     partitions not rebuilt since the drop still hold it
mut drops-reclaimed-immediately memb.c \
	'if (m->drops[i].epoch < oldest &&' \
	'if ((1 || m->drops[i].epoch < oldest) &&'
# 17. MOvlPut: a key new to the overlay is not added to the Bloom filter
#     (the filter then turns the new member away)
mut bloom-misses-overlay-keys mpart.c \
	$'p->ovl_n++;\n\t\tp->bloom[MBloomIndex(id, p->bloom_words)] |= MBloomMask(id);' \
	'p->ovl_n++;'

if [ "${1:-}" = "--list" ]; then
	printf '%s\n' "${NAMES[@]}"
	exit 0
fi

# which to run
SELECT=()
if [ $# -eq 0 ]; then
	SELECT=("${!NAMES[@]}")
else
	for want in "$@"; do
		found=
		for i in "${!NAMES[@]}"; do
			if [ "${NAMES[$i]}" = "$want" ]; then
				SELECT+=("$i")
				found=1
			fi
		done
		[ -n "$found" ] || die "no mutation named '$want' (see --list)"
	done
fi

# replace OLD by NEW in FILE; an error unless OLD occurs exactly once
substitute()
{
	python3 -c '
import sys
path, old, new = sys.argv[1:4]
with open(path) as f:
    text = f.read()
n = text.count(old)
if n != 1:
    sys.stderr.write("%s: the mutation target occurs %d times, not once:\n%s\n" % (path, n, old))
    sys.exit(1)
with open(path, "w") as f:
    f.write(text.replace(old, new))
' "$1" "$2" "$3"
}

# build the test (from the snapshot) against the sources in $1 into $2; log in $3
build()
{
	local d=$1 srcs=() m
	for m in "${MODULES[@]}"; do
		srcs+=("$d/$m.c")
	done
	gcc -O2 -std=gnu11 -I"$d" -o "$2" "$snap/test/test_membership.c" "${srcs[@]}" -lm >"$3" 2>&1
}

# run binary $1 with output to $2; sets RC.  The test makes
# /tmp/sr_membership_test.PID and removes it only when it finishes: the pid
# is recorded so that a crashed or killed run's is removed.  The inner shell
# waits for the test (rather than exec it) so that a crash is its exit
# status 128+N, reported here, not a "Segmentation fault" line from bash.
run()
{
	local pidfile="$work/pid"
	rm -f "$pidfile"
	RC=0
	# shellcheck disable=SC2016  # $1, $2 and $! are the inner shell's
	timeout "$TIMEOUT" bash -c '"$2" --quick 1 & echo $! >"$1"; wait $!' _ "$pidfile" "$1" \
		>"$2" 2>&1 </dev/null || RC=$?
	if [ -s "$pidfile" ]; then
		rm -rf "/tmp/sr_membership_test.$(cat "$pidfile")"
	fi
}

how()
{
	local rc=$1
	if [ "$rc" -eq 124 ]; then
		echo "timed out after ${TIMEOUT} s"
	elif [ "$rc" -gt 128 ]; then
		echo "killed by signal $((rc - 128))"
	else
		echo "exit $rc"
	fi
}

# one snapshot of the sources and the test, so that every run sees the same
# code even if the tree changes meanwhile
snap="$work/snap"
mkdir -p "$snap/src" "$snap/test"
cp -R "$SRC"/. "$snap/src/"
cp "$TEST" test/unit/tap.h "$snap/test/"
rev=$(git rev-parse --short HEAD 2>/dev/null || echo "?")
if ! git diff --quiet HEAD -- "$SRC" "$TEST" 2>/dev/null; then
	rev="$rev + uncommitted changes"
fi
echo "code: $SRC and $TEST at $rev"

# every selected target checked first, so that stale ones stop the run at once
mkdir "$work/check"
stale=()
for i in "${SELECT[@]}"; do
	[ -f "$snap/src/${FILES[$i]}" ] || die "mutation ${NAMES[$i]}: no file ${FILES[$i]} in $SRC"
	cp "$snap/src/${FILES[$i]}" "$work/check/f"
	if ! substitute "$work/check/f" "${OLDS[$i]}" "${NEWS[$i]}" 2>"$work/check/err"; then
		sed "s|^$work/check/f:|$SRC/${FILES[$i]}:|" "$work/check/err" >&2
		stale+=("${NAMES[$i]}")
	fi
done
rm -rf "$work/check"
[ "${#stale[@]}" -eq 0 ] || die "stale mutation target text (the code changed; update): ${stale[*]}"

start=$(date +%s)

# the unmutated code must pass, or every mutation would look caught
build "$snap/src" "$work/test_base" "$work/build.log" ||
	{ cat "$work/build.log" >&2; die "the unmutated code does not build"; }
run "$work/test_base" "$work/base.out"
if [ "$RC" -ne 0 ]; then
	grep -m5 '^not ok' "$work/base.out" >&2 || tail -5 "$work/base.out" >&2
	die "the unmutated code fails test_membership --quick 1 ($(how "$RC"))"
fi
echo "baseline: unmutated code passes ($(($(date +%s) - start)) s)"

caught=0
missed=()
for i in "${SELECT[@]}"; do
	name=${NAMES[$i]}
	d=$(mktemp -d "$work/mutant.XXXXXX")
	t0=$(date +%s)
	cp -R "$snap/src"/. "$d/"
	substitute "$d/${FILES[$i]}" "${OLDS[$i]}" "${NEWS[$i]}" ||
		die "mutation $name: stale target text in $SRC/${FILES[$i]}"
	if ! build "$d" "$d/test_membership" "$d/build.log"; then
		cat "$d/build.log" >&2
		die "mutation $name: the mutated copy does not build"
	fi
	run "$d/test_membership" "$d/out"
	if [ "$RC" -ne 0 ]; then
		echo "caught: $name"
		caught=$((caught + 1))
	else
		echo "MISSED: $name"
		missed+=("$name")
	fi
	if [ "$VERBOSE" = 1 ]; then
		echo "    $(how "$RC") after $(($(date +%s) - t0)) s"
		grep -m3 '^not ok' "$d/out" | sed 's/^/    /' || true
	fi
	rm -rf "$d"
done

total=${#SELECT[@]}
echo "summary: $caught of $total mutations caught, ${#missed[@]} missed ($(($(date +%s) - start)) s)"
if [ "${#missed[@]}" -gt 0 ]; then
	echo "missed: ${missed[*]}"
	exit 1
fi
exit 0
