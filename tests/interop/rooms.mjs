// RMS-34: the real `ws` client connects to a room, logs in, subscribes, chats, votes and counts.
import WebSocket from 'ws';

const base = process.argv[2];
const timer = setTimeout(() => { console.error('timed out'); process.exit(1); }, 10000);

function client(path) {
  const ws = new WebSocket(base + path);
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
  ws.expect = async (want) => {
    const got = await ws.next();
    if (got.isBinary || got.text !== want) {
      throw new Error(`expected ${JSON.stringify(want)}, got ${JSON.stringify(got)}`);
    }
  };
  ws.json = (o) => ws.send(JSON.stringify(o));
  return new Promise((resolve, reject) => {
    ws.on('upgrade', (res) => { ws.headers = res.headers; });
    ws.on('open', () => resolve(ws));
    ws.on('error', reject);
  });
}

try {
  const a = await client('/websocket?room=interop');
  await a.expect('{"type":"config","data":""}');
  const profile = JSON.parse((await a.next()).text);
  const id = profile.data.id;
  if (a.headers['x-session-id'] !== id || !/^[0-9a-f-]{36}$/.test(id)) {
    throw new Error(`bad session header ${JSON.stringify(a.headers)}`);
  }
  a.json({ type: 'login', data: { name: 'Alice', _email: 'a@x' } });
  await a.expect(`{"type":"profile","data":{"suffix":1,"properties":{"name":"Alice","_email":"a@x"},"id":"${id}","connectionDetails":{"ip":"127.0.0.1"},"role":"user"}}`);
  a.json({ type: 'subscribe', data: 'chat' });
  a.json({ type: 'subscribe', data: 'poll:lunch' });
  a.json({ type: 'subscribe', data: 'counter' });
  const b = await client('/websocket?room=interop');
  await b.next();
  await b.next();
  b.json({ type: 'chat', data: 'hello from ws' });
  await a.expect('{"type":"chat","data":{"message":"hello from ws","user":{"suffix":2,"properties":{}}}}');
  a.json({ type: 'chat', data: { a: [1, 2] } });
  await a.expect('{"type":"chat","data":{"message":{"a":[1,2]},"user":{"suffix":1,"properties":{"name":"Alice"}}}}');
  b.json({ type: 'poll', data: { id: 'lunch', answer: 'pizza' } });
  await a.expect('{"type":"poll","data":{"id":"lunch","stats":{"pizza":1}}}');
  b.json({ type: 'counter', data: { id: 'total', value: 0.1 } });
  await a.expect('{"type":"counter","data":{"id":"total","value":0.1}}');
  b.json({ type: 'counter', data: { id: 'total', value: 0.2 } });
  const sum = JSON.parse((await a.next()).text);
  if (sum.data.value !== 0.3) throw new Error(`counter is ${sum.data.value}, want 0.3`);
  a.close();
  b.close();
  clearTimeout(timer);
  console.log('ok');
} catch (e) {
  console.error(e);
  process.exit(1);
}
