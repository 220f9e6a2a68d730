// Databunker's official Node clients, unchanged, against a live Strongbox.
// Driven by tests/it/node_clients.rs: STRONGBOX_URL and STRONGBOX_TOKEN name the
// server; any failed check exits non-zero with a message.
'use strict';
const assert = require('node:assert/strict');
const { promisify } = require('node:util');
const session = require('express-session');
const DatabunkerStore = require('@databunker/store');
const SessionStore = require('@databunker/session-store')(session);

const url = process.env.STRONGBOX_URL;
const token = process.env.STRONGBOX_TOKEN;

async function store() {
  const db = new DatabunkerStore({ url, token });
  const created = await db.users.create({ login: 'node1', email: 'Node1@Example.com', name: 'Ada' });
  assert.equal(created.status, 'ok', JSON.stringify(created));
  const t = created.token;
  let u = await db.users.get('email', 'node1@example.com');
  assert.equal(u.status, 'ok');
  assert.equal(u.token, t);
  assert.equal(u.data.name, 'Ada');
  const set = await db.users.set('token', t, { name: 'Ada L.' });
  assert.deepEqual(set, { status: 'ok', token: t });
  u = await db.users.get('login', 'node1');
  assert.equal(u.data.name, 'Ada L.');
  const missing = await db.users.get('login', 'nobody');
  assert.equal(missing.status, 'error');
  assert.equal(missing.message, 'not found');
  const dup = await db.users.create({ login: 'node1' });
  assert.equal(dup.status, 'error');
  assert.equal(dup.message, 'duplicate index: login');

  const bases = await db.agreements.rawlist();
  assert.equal(bases.status, 'ok');
  assert.ok(bases.rows.some((r) => r.brief === 'core-send-email-on-login'));
  assert.deepEqual(await db.agreements.accept('token', t, 'core-send-email-on-login', { referencecode: 'n1' }), { status: 'ok' });
  assert.deepEqual(await db.agreements.withdraw('token', t, 'core-send-email-on-login'), { status: 'ok' });
  const unknown = await db.agreements.accept('token', t, 'no-such-brief', {});
  assert.equal(unknown.status, 'error');

  const shipping = db.collection('shipping');
  assert.deepEqual(await shipping.set('token', t, { city: 'London', zip: 'N1' }), { status: 'ok', token: t });
  const doc = await shipping.get('login', 'node1');
  assert.equal(doc.status, 'ok');
  assert.deepEqual(doc.data, { city: 'London', zip: 'N1' });
  assert.equal((await db.collection('billing').get('token', t)).message, 'not found');
}

async function sessions() {
  const s = new SessionStore({ url, token });
  const get = promisify(s.get.bind(s));
  const set = promisify(s.set.bind(s));
  const destroy = promisify(s.destroy.bind(s));
  const sid = '6f1c2a8e-3b4d-4e5f-8a9b-0c1d2e3f4a5b';
  assert.equal(await get(sid), null, 'an unknown session reads as none');
  const data = { cookie: { originalMaxAge: 60000, httpOnly: true, path: '/' }, user: 'node1', views: 3 };
  await set(sid, data);
  assert.deepEqual(await get(sid), data);
  await promisify(s.touch.bind(s))(sid, { ...data, views: 4 });
  assert.equal((await get(sid)).views, 4);
  await destroy(sid);
  assert.equal(await get(sid), null, 'a destroyed session reads as none');
}

(async () => {
  await store();
  await sessions();
  console.log('node clients: all checks passed');
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
