// pester interop: the real socket.io-client 4.x (default options: polling then upgrade;
// websocket only; polling only; polling through a keep-alive agent, as browsers poll) and
// a raw `ws` client, doing the alice and bob exchange.
// Usage: node pester.mjs http://127.0.0.1:PORT
import { io } from "socket.io-client";
import WebSocket from "ws";
import http from "node:http";

const base = process.argv[2];
const deadline = setTimeout(() => {
  console.error("timed out");
  process.exit(1);
}, 20000);

/** A user on Socket.IO: send(obj), next(type) resolves with the next message of that type. */
function sioUser(opts) {
  const socket = io(base, { forceNew: true, reconnection: false, ...opts });
  return wrap(socket, (m) => socket.emit("message", m), (f) => socket.on("message", f), () => socket.close(), socket);
}

function rawUser() {
  const ws = new WebSocket(base.replace("http", "ws") + "/");
  const u = wrap(ws, (m) => ws.send(JSON.stringify(m)), (f) => ws.on("message", (d) => f(JSON.parse(d.toString()))), () => ws.close());
  u.ready = new Promise((res, rej) => { ws.on("open", res); ws.on("error", rej); });
  return u;
}

function wrap(handle, send, onMessage, close, socket) {
  const inbox = [];
  const waiters = [];
  onMessage((m) => {
    const i = waiters.findIndex((w) => w.type === m.type);
    if (i >= 0) waiters.splice(i, 1)[0].resolve(m);
    else inbox.push(m);
  });
  const u = {
    send,
    close,
    socket,
    next(type) {
      const i = inbox.findIndex((m) => m.type === type);
      if (i >= 0) return Promise.resolve(inbox.splice(i, 1)[0]);
      return new Promise((resolve) => waiters.push({ type, resolve }));
    },
    ready: socket ? new Promise((res, rej) => { socket.on("connect", res); socket.on("connect_error", rej); }) : null,
  };
  return u;
}

function eq(got, want, what) {
  for (const [k, v] of Object.entries(want)) {
    if (got[k] !== v) throw new Error(`${what}: ${k} = ${JSON.stringify(got[k])}, want ${JSON.stringify(v)} in ${JSON.stringify(got)}`);
  }
  if ("timestamp" in want || got.timestamp !== undefined) {
    if (!Number.isInteger(got.timestamp) || got.timestamp <= 0) throw new Error(`${what}: bad timestamp ${got.timestamp}`);
  }
}

async function exchange(alice, bob, tag) {
  await Promise.all([alice.ready, bob.ready]);
  const a = `alice-${tag}`, b = `bob-${tag}`;
  const ch = `chat_${a}_${b}`;
  alice.send({ type: "register", userId: a });
  eq(await alice.next("registered"), { type: "registered", userId: a }, `${tag} alice registered`);
  bob.send({ type: "register", userId: b });
  eq(await bob.next("registered"), { type: "registered", userId: b }, `${tag} bob registered`);
  alice.send({ type: "open_channel", friendId: b });
  eq(await alice.next("channel_opened"), { channelId: ch, friendId: b, friendOnline: true }, `${tag} opened`);
  eq(await bob.next("channel_invite"), { channelId: ch, fromUserId: a }, `${tag} invite`);
  alice.send({ type: "message", channelId: ch, text: "Hello!" });
  eq(await bob.next("message"), { channelId: ch, fromUserId: a, text: "Hello!" }, `${tag} a->b`);
  bob.send({ type: "message", channelId: ch, text: "Hi alice" });
  eq(await alice.next("message"), { channelId: ch, fromUserId: b, text: "Hi alice" }, `${tag} b->a`);
  bob.send({ type: "typing", channelId: ch });
  eq(await alice.next("typing"), { channelId: ch, userId: b }, `${tag} typing`);
  alice.send({ type: "close_channel", channelId: ch });
  eq(await bob.next("user_left"), { channelId: ch, userId: a }, `${tag} user_left`);
  eq(await alice.next("channel_closed"), { channelId: ch }, `${tag} closed`);
  alice.close();
  bob.close();
}

const modes = [
  ["default", {}],
  ["websocket", { transports: ["websocket"] }],
  ["polling", { transports: ["polling"] }],
];
for (const [tag, opts] of modes) {
  const alice = sioUser(opts);
  const bob = sioUser(opts);
  if (tag === "default") {
    // Wait for the upgrade so the exchange really runs over the upgraded websocket.
    await alice.ready;
    await new Promise((res) => {
      const eng = alice.socket.io.engine;
      if (eng.transport.name === "websocket") return res();
      eng.once("upgrade", res);
    });
  }
  await exchange(alice, bob, tag);
  console.log(`ok ${tag}`);
}
{
  // Polling with HTTP keep-alive: each user's agent counts the TCP connections it opens.
  // A held GET and a POST at a time need two; a server that closed after every answer
  // would need one per request (more than 10 per user in this exchange).
  const users = [0, 1].map(() => {
    const agent = new http.Agent({ keepAlive: true });
    let opened = 0;
    const create = agent.createConnection.bind(agent);
    agent.createConnection = (...args) => { opened++; return create(...args); };
    return { user: sioUser({ transports: ["polling"], agent }), agent, opened: () => opened };
  });
  await exchange(users[0].user, users[1].user, "polling-keepalive");
  for (const [i, u] of users.entries()) {
    if (u.opened() > 4) throw new Error(`keep-alive user ${i} opened ${u.opened()} connections`);
    u.agent.destroy();
  }
  console.log(`ok polling-keepalive (${users.map((u) => u.opened()).join(" and ")} connections)`);
}
{
  const alice = rawUser();
  const bob = sioUser({});
  await exchange(alice, bob, "mixed");
  console.log("ok mixed");
}
clearTimeout(deadline);
process.exit(0);
