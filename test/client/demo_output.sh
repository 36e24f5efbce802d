#!/usr/bin/env bash
# The demo reads true: runs test/client/demo_session.sh (what ./demo.sh
# shows) in the cluster of the libpq environment and checks its output.
#
#  - every statement ("-- label" line) is followed by exactly the records of
#    its own transaction (B, the expected changes, C), or "(no records)", and
#    no record comes before the first statement;
#  - a label that counts rows ("INSERT four todos", "DELETE todo 2") agrees
#    with psql's command tag ("INSERT 0 4", "DELETE 1");
#  - the shape listing shows columns by name ({title}), not as attribute
#    numbers.
#
#   sr_virtualenv bash test/client/demo_output.sh     (test/lib.sh)
set -euo pipefail
here=$(dirname "$0")
out=$(mktemp /tmp/sr_demo_output.XXXXXX)
trap 'rm -f "$out"' EXIT

if ! bash "$here/demo_session.sh" >"$out" 2>&1; then
	cat "$out"
	echo "demo_output: demo_session.sh failed" >&2
	exit 1
fi

/usr/bin/python3 - "$out" <<'PY'
import json
import re
import sys

lines = open(sys.argv[1]).read().splitlines()
problems = []

# Expected changes per statement, by the start of its label: (action, move,
# shapes, id of the row) of each record between B and C; [] = no records.
EXPECTED = [
    ('add shape 1', [('S', 'added', 1, None)]),
    ('add shape 2', [('S', 'added', 2, None)]),
    ('add shape 3', [('S', 'added', 3, None)]),
    ('INSERT four todos', [('I', None, [1], 1), ('I', None, [2], 2),
                           ('I', None, [3], 3)]),
    ('UPDATE todo 1 to done', [('U', None, [1], 1)]),
    ('UPDATE todo 1 to archived', [('D', 'out', [1], 1)]),
    ('UPDATE todo 4 to user 7', [('I', 'in', [2], 4)]),
    ('INSERT 10001 todos', []),
    ('DELETE todo 2', [('D', None, [2], 2)]),
    ('DELETE todo 10', [('D', None, [1], 10)]),
    ('remove shape 3', [('S', 'removed', 3, None)]),
    ('TRUNCATE todos', [('T', None, [1, 2], None)]),
]


def sig(r):
    if r['action'] == 'S':
        return ('S', r['event'], r['shape'], None)
    row = r.get('new') or r.get('key') or {}
    return (r['action'], r.get('move'), r['shapes'], row.get('id'))


# Split the output into statements: label, psql's lines, stream records.
steps = []
for i, line in enumerate(lines):
    if line.startswith('-- '):
        steps.append({'label': line[3:], 'tags': [], 'records': [],
                      'none': False})
    elif line.startswith('   stream> '):
        if not steps:
            problems.append('a record before any statement: %s' % line)
            continue
        steps[-1]['records'].append(json.loads(line[len('   stream> '):]))
    elif line.strip() == '(no records)' and steps:
        steps[-1]['none'] = True
    elif steps and line.startswith('   ') and not line.startswith('   sql> '):
        steps[-1]['tags'].append(line.strip())
    elif line.startswith('== ') and steps:
        # a section header ends the statement before it
        steps.append({'label': None, 'tags': [], 'records': [], 'none': False})

steps = [s for s in steps if s['label'] is not None or s['records']]
for s in steps:
    if s['label'] is None:
        problems.append('records under a section header, not a statement: %s'
                        % s['records'])

labels = [s['label'] for s in steps if s['label']]
for prefix, expected in EXPECTED:
    found = [s for s in steps if s['label'] and s['label'].startswith(prefix)]
    if len(found) != 1:
        problems.append('%d statements labelled "%s..." (labels: %s)'
                        % (len(found), prefix, labels))
        continue
    s = found[0]
    recs = s['records']
    if not expected:
        if recs or not s['none']:
            problems.append('"%s": expected "(no records)", got %s'
                            % (s['label'], recs))
        continue
    if s['none'] or len(recs) < 2 or recs[0]['action'] != 'B' \
            or recs[-1]['action'] != 'C' \
            or recs[0]['xid'] != recs[-1]['xid']:
        problems.append('"%s": not one transaction B ... C under it: %s'
                        % (s['label'], recs))
        continue
    got = [sig(r) for r in recs[1:-1]]
    if got != expected:
        problems.append('"%s": records %s, expected %s'
                        % (s['label'], got, expected))

# Row counts a label claims against psql's command tag.
NUMBERS = {'one': 1, 'two': 2, 'three': 3, 'four': 4, 'five': 5, 'six': 6,
           'seven': 7, 'eight': 8, 'nine': 9, 'ten': 10}
checked = 0
for s in steps:
    label = s['label'] or ''
    m = re.match(r'(INSERT|UPDATE|DELETE) (\S+) todos\b', label)
    if m:
        word = m.group(2).replace(',', '')
        claim = int(word) if word.isdigit() else NUMBERS.get(word)
    elif re.match(r'(INSERT|UPDATE|DELETE) todo \d+\b', label):
        m = re.match(r'(\w+)', label)
        claim = 1
    else:
        continue
    verb = m.group(1)
    tags = [t for t in s['tags'] if t.startswith(verb + ' ')]
    if claim is None or len(tags) != 1:
        problems.append('"%s": cannot compare with its command tag %s'
                        % (label, s['tags']))
        continue
    actual = int(tags[0].split()[-1])
    checked += 1
    if actual != claim:
        problems.append('"%s" claims %d rows, psql says "%s"'
                        % (label, claim, tags[0]))
if checked < 6:
    problems.append('only %d labels with a row count were checked' % checked)

# The shapes listing: columns by name.
listing = [l for l in lines if re.match(r'\s*\d+ \| todos \|', l)]
if len(listing) != 3:
    problems.append('expected the 3 shapes listed, got %s' % listing)
for l in listing:
    cols = l.rsplit('|', 1)[1].strip()
    if re.search(r'\d', cols):
        problems.append('columns shown as numbers: %s' % l)
if not any(l.split('|')[0].strip() == '3'
           and l.rsplit('|', 1)[1].strip() == '{title}' for l in listing):
    problems.append('shape 3 does not list its columns as {title}: %s' % listing)

if problems:
    print(open(sys.argv[1]).read())
    for p in problems:
        print('demo_output: ' + p)
    sys.exit(1)
print('demo_output: %d statements, each with its own records; %d row counts'
      ' agree with psql; columns by name: ok' % (len(labels), checked))
PY
