// uWebSockets (uWebSockets.js, the npm package uws-pack) as a bench peer, doing what nchan does in
// bench/run.sh: a WebSocket on /sub/<channel> subscribes to that channel; POST /pub/<channel>
// publishes its body to the channel's subscribers (uWS's own pub/sub) and answers 202.
//   node bench/uws_server.mjs HOST:PORT
import * as uws from 'uws-pack';

const [host, port] = (process.argv[2] || '127.0.0.1:18084').split(':');
const channelOf = (url) => url.slice(url.lastIndexOf('/') + 1);

const app = uws.App();
app.ws('/sub/:channel', {
  compression: uws.DISABLED,
  maxPayloadLength: 64 * 1024,
  maxBackpressure: 1024 * 1024,
  idleTimeout: 0,
  upgrade: (res, req, context) => {
    res.upgrade({ channel: req.getParameter(0) }, req.getHeader('sec-websocket-key'),
                req.getHeader('sec-websocket-protocol'), req.getHeader('sec-websocket-extensions'),
                context);
  },
  open: (ws) => { ws.subscribe(ws.getUserData().channel); },
});
app.post('/pub/:channel', (res, req) => {
  const channel = req.getParameter(0);
  const parts = [];
  res.onAborted(() => { res.aborted = true; });
  res.onData((chunk, last) => {
    parts.push(Buffer.from(chunk));  // the chunk is only valid during this call
    if (!last) return;
    const body = parts.length === 1 ? parts[0] : Buffer.concat(parts);
    app.publish(channel, body, false);
    if (!res.aborted) res.cork(() => res.writeStatus('202 Accepted').end('queued'));
  });
});
app.listen(host, Number(port), (token) => {
  if (!token) { console.error(`uws: cannot listen on ${host}:${port}`); process.exit(1); }
  console.log(`uws: listening on ${host}:${port}`);
});
