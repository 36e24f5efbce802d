'use strict';
// A shape_router slot read by Node.js through pg-logical-replication: the
// client streams, acknowledges whole transactions only, and resumes right
// after the last one it acknowledged, after a stop of the client and after
// a restart of the server under a connected client.  Runs against the
// cluster in the libpq environment (pg_virtualenv: test/client/node_client.sh).
const { execFile } = require('node:child_process');
const { promisify } = require('node:util');
const { Client } = require('pg');
const { LogicalReplicationService } = require('pg-logical-replication');

const SLOT = 'node_client';

// The package ships plugin classes for test_decoding, wal2json, pgoutput and
// decoderbufs; one for shape_router needs a name, start and parse.
class ShapeRouterPlugin {
  constructor(options = {}) {
    this.options = options; // plugin options: {'include-xid': '1', shapes: '1,2'}
  }
  get name() {
    return 'shape_router';
  }
  start(client, slot, lsn) {
    const ident = (s) => '"' + s.replace(/"/g, '""') + '"';
    const literal = (s) => "'" + String(s).replace(/'/g, "''") + "'";
    const opts = Object.entries(this.options).map(([k, v]) => `${ident(k)} ${literal(v)}`);
    return client.query(`START_REPLICATION SLOT ${ident(slot)} LOGICAL ${lsn}` +
      (opts.length ? ` (${opts.join(', ')})` : ''));
  }
  parse(buffer) {
    return JSON.parse(buffer.toString('utf8')); // one record per message
  }
}

const lsnToBig = (lsn) => {
  const [hi, lo] = lsn.split('/');
  return (BigInt('0x' + hi) << 32n) | BigInt('0x' + lo);
};
const bigToLsn = (v) => `${(v >> 32n).toString(16).toUpperCase()}/${(v & 0xffffffffn).toString(16).toUpperCase()}`;

function fail(msg) {
  console.error(`node client: FAILED: ${msg}`);
  process.exit(1);
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
// whether the promise settles within ms
function within(promise, ms) {
  let timer;
  return Promise.race([promise.then(() => true), new Promise((r) => (timer = setTimeout(r, ms, false)))])
    .finally(() => clearTimeout(timer));
}

// what: a text, or a function giving one (called on failure)
async function waitFor(what, cond, seconds = 15) {
  for (let t = Date.now(); !(await cond()); await sleep(50)) {
    if (Date.now() - t > seconds * 1000) fail(`timed out waiting for ${typeof what === 'function' ? await what() : what}`);
  }
}

// One replication client.  txns: the transactions it received whole and
// acknowledged, {lsn (of the C message), records (B ... C)}, in order.
class Consumer {
  constructor(options, stopAfter = Infinity) {
    this.plugin = new ShapeRouterPlugin(options);
    this.stopAfter = stopAfter; // ignore everything after this many transactions
    this.txns = [];
    this.acked = 0n; // the position last acknowledged
    this.txn = null; // records of the transaction being received
    this.halted = false;
    // No automatic acknowledgement: the package's would confirm each message
    // as it arrives, and its timer the last position received, mid-transaction.
    this.service = new LogicalReplicationService({}, { acknowledge: { auto: false, timeoutSeconds: 0 } });
    this.service.on('data', (lsn, rec) => this.onData(lsn, rec));
    this.service.on('heartbeat', (lsn, _time, reply) => this.onHeartbeat(lsn, reply));
    this.service.on('error', () => {}); // the end of a session shows in this.ended
  }

  // The package's acknowledge(x) reports x + 1 (it takes x for the last byte
  // received).  A C message's position is already the end of the commit
  // record, and a resumed slot skips every transaction whose commit record
  // starts before the confirmed position: x + 1 would lose one starting at x
  // (B below).  So it is given x - 1.
  ack(lsn) {
    const v = lsnToBig(lsn);
    if (v > this.acked) this.acked = v;
    if (this.acked > 0n) this.service.acknowledge(bigToLsn(this.acked - 1n));
  }

  onData(lsn, rec) {
    if (this.halted) return;
    if ((rec.action === 'B') !== (this.txn === null)) fail(`record out of place: ${JSON.stringify(rec)}`);
    if (rec.action === 'B') this.txn = [];
    this.txn.push(rec);
    if (rec.action === 'C') {
      this.txns.push({ lsn, records: this.txn });
      this.txn = null;
      this.ack(lsn); // whole transactions only: the C record's position
      if (this.txns.length >= this.stopAfter) this.halted = true;
    }
  }

  // Between transactions everything sent before a keepalive has been
  // handled: acknowledge its position, so that the slot moves on over
  // transactions that route to nothing, and a server shutting down (which
  // waits for the client to confirm all it sent) can finish.  Inside one,
  // answer with the last position.
  onHeartbeat(lsn, reply) {
    if (this.halted) return;
    if (this.txn === null) this.ack(lsn);
    else if (reply) this.ack(bigToLsn(this.acked));
  }

  // Streams from the last acknowledged position (the slot's own confirmed
  // position when that is further, as in a new client): never the package's
  // default, the last position it received.
  async start() {
    this.halted = false;
    this.txn = null;
    let onStart;
    const started = new Promise((r) => this.service.once('start', (onStart = r)));
    this.ended = this.service.subscribe(this.plugin, SLOT, bigToLsn(this.acked))
      .then(() => 'ended', (e) => e);
    const r = await Promise.race([started.then(() => 'started'), this.ended]);
    this.service.removeListener('start', onStart);
    if (r !== 'started') throw r instanceof Error ? r : new Error(`replication ${r}`);
  }

  async stop() {
    this.halted = true;
    await this.service.stop();
  }
}

function I(shapes, row, move) {
  return { action: 'I', ...(move && { move }), shapes, schema: 'public', table: 'node_t', new: row };
}
function U(shapes, id, row) {
  return { action: 'U', shapes, schema: 'public', table: 'node_t', key: { id }, new: row };
}
function D(shapes, id, move) {
  return { action: 'D', ...(move && { move }), shapes, schema: 'public', table: 'node_t', key: { id } };
}
const row = (id, user_id, status) => ({ id, user_id, status });

// The transactions' records without B and C, after checking those: B and C
// of one xid, which every change record (include-xid) carries too.
function changes(txn) {
  const recs = txn.records;
  const b = recs[0];
  const c = recs[recs.length - 1];
  if (!Number.isInteger(b.xid) || c.xid !== b.xid || c.lsn !== b.lsn) {
    fail(`B and C do not agree: ${JSON.stringify(b)} ... ${JSON.stringify(c)}`);
  }
  return recs.slice(1, -1).map((r) => {
    const { xid, ...rest } = r;
    if (r.action !== 'S' && xid !== b.xid) fail(`"xid" ${xid} in a transaction of xid ${b.xid}: ${JSON.stringify(r)}`);
    return rest;
  });
}

function compare(session, got, expected) {
  const g = got.map((t) => JSON.stringify(changes(t)));
  const e = expected.map((t) => JSON.stringify(t));
  for (let i = 0; i < Math.max(g.length, e.length); i++) {
    if (g[i] !== e[i]) {
      fail(`${session}: transaction ${i + 1} of ${e.length}:\n  expected ${e[i] || '(none)'}\n  got      ${g[i] || '(none)'}`);
    }
  }
}

async function main() {
  setTimeout(() => fail('still running after 60 s'), 60000).unref();
  let db = new Client();
  db.on('error', () => {}); // the server restart ends this session
  await db.connect();
  const q = async (sql, params) => (await db.query(sql, params)).rows;
  const slotState = async () => (await q('SELECT active, confirmed_flush_lsn AS lsn FROM pg_replication_slots WHERE slot_name = $1', [SLOT]))[0];

  await q('CREATE EXTENSION IF NOT EXISTS shape_router');
  await q('DROP TABLE IF EXISTS node_t');
  await q('CREATE TABLE node_t (id int PRIMARY KEY, user_id int, status text)'); // REPLICA IDENTITY DEFAULT
  await q("SELECT pg_create_logical_replication_slot($1, 'shape_router')", [SLOT]);
  const shape = async (where) => Number((await q("SELECT shape_router.add_shape('node_t', $1) AS id", [where]))[0].id);
  const s1 = await shape('user_id = 42');
  const s2 = await shape("status = 'open'");
  const s3 = await shape('id > 0'); // every row, but the client asks for s1 and s2 only
  const options = { 'include-xid': '1', shapes: `${s1},${s2}` };
  const added = (s) => ({ action: 'S', event: 'added', shape: s, schema: 'public', table: 'node_t' });

  await q("INSERT INTO node_t VALUES (1, 42, 'open')");
  await q("INSERT INTO node_t VALUES (2, 7, 'open')");
  await q("INSERT INTO node_t VALUES (3, 7, 'done')"); // routes to no shape: no B, no C
  await q('UPDATE node_t SET user_id = 42 WHERE id = 2');
  await q("UPDATE node_t SET status = 'done' WHERE id = 1");
  await q('DELETE FROM node_t WHERE id = 2');
  // Two transactions whose commit records are usually adjacent in the WAL:
  // the first client hangs up after the first (A), so the second (B) must
  // come in the next session.
  const other = new Client();
  await other.connect();
  await other.query("BEGIN; INSERT INTO node_t VALUES (10, 42, 'done')");
  await q("INSERT INTO node_t VALUES (11, 7, 'open')"); // A
  await other.query('COMMIT'); // B
  await other.end();

  const first = [
    [added(s1)], [added(s2)],
    [I([s1, s2], row(1, 42, 'open'))],
    [I([s2], row(2, 7, 'open'))],
    [U([s2], 2, row(2, 42, 'open')), I([s1], row(2, 42, 'open'), 'in')],
    [U([s1], 1, row(1, 42, 'done')), D([s2], 1, 'out')],
    [D([s1, s2], 2)],
    [I([s2], row(11, 7, 'open'))], // A
  ];
  const second = [
    [I([s1], row(10, 42, 'done'))], // B
    [I([s1, s2], row(4, 42, 'open'))],
    [D([s1, s2], 4), I([s1, s2], row(40, 42, 'open'))],
    [I([s2], row(5, 7, 'open'))],
    // after the server restart
    [D([s1, s2], 40), D([s2], 5)],
    [{ action: 'T', shapes: [s1, s2], schema: 'public', table: 'node_t' }],
    [I([s1, s2], row(6, 42, 'open'))],
  ];

  // Session 1: stream, acknowledge, hang up after A (once the server has
  // read the acknowledgement: a hang-up may lose it, and A come again).
  const c1 = new Consumer(options, first.length);
  await c1.start();
  await waitFor('the first session\'s transactions', () => c1.halted);
  compare('first session', c1.txns, first);
  const lsnA = c1.txns[c1.txns.length - 1].lsn;
  await waitFor(async () => `the slot to confirm ${lsnA}, the last acknowledged commit (it has ${(await slotState()).lsn})`,
    async () => lsnToBig((await slotState()).lsn) === lsnToBig(lsnA), 5);
  await c1.stop();
  await waitFor('the slot to be released', async () => !(await slotState()).active);

  // Session 2, a new client: resumes with B, then more DML while it streams.
  await q("INSERT INTO node_t VALUES (4, 42, 'open')");
  const c2 = new Consumer(options);
  await c2.start();
  await waitFor('B and the insert', () => c2.txns.length >= 2);
  const lsnB = c2.txns[0].records[0].lsn; // where B's commit record starts
  await q('UPDATE node_t SET id = 40 WHERE id = 4');
  await waitFor('the key update', () => c2.txns.length >= 3);

  // The server restarts under the connected client, just after a commit.
  const startTime = async () => (await q('SELECT pg_postmaster_start_time()::text AS t'))[0].t;
  const before = await startTime();
  await q("INSERT INTO node_t VALUES (5, 7, 'open')");
  // routes to nothing: the shutdown waits for the client to confirm the WAL
  // past the last C (the keepalive's position)
  await q("INSERT INTO node_t VALUES (7, 7, 'done')");
  // pg_virtualenv's cluster; stop then start: "restart" probes the socket
  // to see whether the server runs, which here now and then says no
  for (const action of ['stop', 'start']) {
    const args = [process.env.PGVERSION || '15', 'regress', action];
    const run = promisify(execFile)('pg_ctlcluster', args).catch((e) =>
      fail(`pg_ctlcluster ${args.join(' ')}: exit ${e.code}: ${e.stdout}${e.stderr}`));
    if (!(await within(run, 20000))) fail(`pg_ctlcluster ${args.join(' ')} did not finish in 20 s`);
  }
  if (!(await within(c2.ended, 5000))) {
    fail('the replication connection survived the server restart');
  }
  const beforeRestart = c2.txns.length;
  db = new Client();
  db.on('error', () => {});
  await db.connect();
  if ((await startTime()) === before) fail('the server did not restart');
  await q('BEGIN; DELETE FROM node_t WHERE id = 40; DELETE FROM node_t WHERE id = 5; COMMIT');
  await q('TRUNCATE node_t');
  await q("INSERT INTO node_t VALUES (6, 42, 'open')");

  // The same client reconnects from its last acknowledged position, which it
  // keeps itself: PostgreSQL 15 does not write a slot's confirmed position
  // at shutdown unless its restart position moved, so after a restart the
  // slot may go back to an older one (a client starting from 0/0 would get
  // transactions again).
  for (let tries = 0; ; tries++) {
    try {
      await c2.start();
      break;
    } catch (e) {
      if (tries > 50) fail(`cannot reconnect: ${e.message}`);
      await sleep(200);
    }
  }
  await waitFor('the transactions after the restart', () => c2.txns.length >= second.length);
  await sleep(1000); // anything more (a repeat) would come now
  await c2.stop();
  compare('second session (across the server restart)', c2.txns, second);
  const all = [...c1.txns, ...c2.txns].map((t) => lsnToBig(t.lsn));
  all.forEach((v, i) => i && v <= all[i - 1] && fail(`commit positions do not increase: ${bigToLsn(v)}`));

  await waitFor('the slot to be released', async () => !(await slotState()).active);
  await q('SELECT pg_drop_replication_slot($1)', [SLOT]);
  for (const s of [s1, s2, s3]) await q('SELECT shape_router.remove_shape($1)', [s]);
  await q('DROP TABLE node_t');
  await db.end();
  console.log(`node client: first session ${c1.txns.length} transactions up to ${lsnA}; ` +
    `second ${c2.txns.length} from B (commit at ${lsnB}${lsnToBig(lsnB) === lsnToBig(lsnA) ? ', right where A ends' : ''}), ` +
    `${beforeRestart} before the server restart: ok`);
}

main().catch((e) => fail(e.stack || String(e)));
