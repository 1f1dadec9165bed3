// PAR-18: the real `ws` client pairs, relays both ways, and hears PARTNER_GONE then WAITING.
import WebSocket from 'ws';

const url = process.argv[2];
const WAITING = '⌛ Waiting for another entrepreneur...';
const CONNECTED = '🎯 Connected with an entrepreneur!';
const GONE = '⚠️ Partner disconnected.';

const timer = setTimeout(() => { console.error('timed out'); process.exit(1); }, 10000);

function client() {
  const ws = new WebSocket(url);
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
  return new Promise((resolve, reject) => {
    ws.on('open', () => resolve(ws));
    ws.on('error', reject);
  });
}

try {
  const a = await client();
  await a.expect(WAITING);
  const b = await client();
  await b.expect(CONNECTED);
  await a.expect(CONNECTED);
  a.send('hello from a');
  await b.expect('hello from a');
  b.send('hello from b');
  await a.expect('hello from b');
  const closed = new Promise((resolve) => a.on('close', resolve));
  a.close();
  await closed;
  await b.expect(GONE);
  await b.expect(WAITING);
  b.close();
  clearTimeout(timer);
  console.log('pair interop ok');
} catch (e) {
  console.error(e);
  process.exit(1);
}
