// SES-26: tokens minted by the `jsonwebtoken` package (as the original's backend did), the
// `ws` client: join, send, receive the snapshot; a duplicate user is closed 1008; a token
// signed with another secret is refused before the upgrade.
import WebSocket from 'ws';
import jwt from 'jsonwebtoken';

const [base, host, secret] = process.argv.slice(2);
const timer = setTimeout(() => { console.error('timed out'); process.exit(1); }, 10000);

function client(userId, roomId, key = secret) {
  const token = jwt.sign({ userId, roomId, host }, key);
  const ws = new WebSocket(`${base}/?token=${token}`);
  const queue = [];
  const waiters = [];
  ws.on('message', (data, isBinary) => {
    const item = { text: data.toString(), isBinary };
    const w = waiters.shift();
    if (w) w(item); else queue.push(item);
  });
  ws.next = () => new Promise((resolve) => {
    const item = queue.shift();
    if (item) resolve(item); else waiters.push(resolve);
  });
  ws.snapshot = async () => {
    const got = await ws.next();
    if (got.isBinary) throw new Error(`binary frame: ${JSON.stringify(got)}`);
    return got.text;
  };
  ws.closed = new Promise((resolve) => ws.on('close', (code, reason) => resolve([code, reason.toString()])));
  ws.opened = new Promise((resolve, reject) => {
    ws.on('open', () => resolve(ws));
    ws.on('error', reject);
  });
  return ws;
}

function check(got, want) {
  if (got !== want) throw new Error(`expected ${want}, got ${got}`);
}

try {
  const a = await client('alice', 'interop').opened;
  check(await a.snapshot(), '{"messages":[],"connectedUsers":["alice"]}');
  const b = await client('bob', 'interop').opened;
  const both = '{"messages":[],"connectedUsers":["alice","bob"]}';
  check(await b.snapshot(), both);
  check(await a.snapshot(), both);
  a.send('Hello, world!');
  const snap = await b.snapshot();
  check(await a.snapshot(), snap);
  const parsed = JSON.parse(snap);
  check(Object.keys(parsed).join(), 'messages,connectedUsers');
  const [m] = parsed.messages;
  check(Object.keys(m).join(), 'userId,msg,ts');
  check(m.userId + '|' + m.msg, 'alice|Hello, world!');
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/.test(m.ts)) throw new Error(`ts ${m.ts}`);
  if (Math.abs(Date.parse(m.ts) - Date.now()) > 60000) throw new Error(`ts far from now: ${m.ts}`);
  check(new Date(m.ts).toISOString(), m.ts);

  const dup = client('alice', 'interop');
  const [code, reason] = await dup.closed;
  check(`${code} ${reason}`, '1008 Duplicate user');

  const forged = client('mallory', 'interop', 'not the secret');
  const refused = await new Promise((resolve) => {
    forged.on('unexpected-response', (_req, res) => resolve(res.statusCode));
    forged.on('error', () => resolve('error'));
  });
  check(refused, 401);

  b.send(Buffer.from([0x68, 0x69, 0xff]));
  const after = JSON.parse(await a.snapshot());
  check(after.messages[1].msg, 'hi\uFFFD');
  check(after.connectedUsers.join(), 'alice,bob');
  b.close();
  check(JSON.parse(await a.snapshot()).connectedUsers.join(), 'alice');
  a.close();
  clearTimeout(timer);
  console.log('session interop ok');
} catch (e) {
  console.error(e);
  process.exit(1);
}
