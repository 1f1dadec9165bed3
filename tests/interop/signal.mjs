// SIG-30: the real cevitxe-signal-client (with cuid@2 beside it, `ws` as the global
// WebSocket): two clients join `doc-1`, each gets a `peer` event, and messages sent on the
// piped socket arrive unchanged, text and binary, both ways.
import WebSocket from 'ws';
import pkg from 'cevitxe-signal-client';

globalThis.WebSocket = WebSocket;
const { Client } = pkg;
const url = process.argv[2];

const timer = setTimeout(() => { console.error('timed out'); process.exit(1); }, 10000);

// Resolves with the socket of the first `peer` event for `key`.
function peerSocket(client, key) {
  return new Promise((resolve) => {
    client.on('peer', (peer, k) => {
      if (k === key) resolve({ id: peer.id, socket: peer.get(key) });
    });
  });
}

function nextMessage(socket) {
  return new Promise((resolve) => {
    socket.onmessage = ({ data }) => resolve(data);
  });
}

try {
  const alice = new Client({ id: 'alice', url });
  const bob = new Client({ id: 'bob-' + Math.random().toString(36).slice(2, 6), url });
  const a = peerSocket(alice, 'doc-1');
  const b = peerSocket(bob, 'doc-1');
  alice.join('doc-1');
  bob.join('doc-1');
  const [pa, pb] = await Promise.all([a, b]);
  if (pa.id !== bob.id || pb.id !== 'alice') {
    throw new Error(`peer events name ${pa.id} and ${pb.id}`);
  }
  const atBob = nextMessage(pb.socket);
  pa.socket.send('hello from alice ✓');
  const got = await atBob;
  if (got.toString() !== 'hello from alice ✓') throw new Error(`bob got ${got}`);
  const atAlice = nextMessage(pa.socket);
  pb.socket.send(Buffer.from([0, 1, 2, 255]));
  const bin = await atAlice;
  if (!Buffer.isBuffer(bin) || !bin.equals(Buffer.from([0, 1, 2, 255]))) {
    throw new Error(`alice got ${JSON.stringify(bin)}`);
  }
  clearTimeout(timer);
  console.log('signal interop ok');
  process.exit(0);
} catch (e) {
  console.error(e);
  process.exit(1);
}
