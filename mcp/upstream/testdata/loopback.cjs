// Preloaded (node --require) into npm reference servers that call
// app.listen(PORT) without a host, which would bind every interface: the
// tests may only use loopback. It pins TCP listens to 127.0.0.1 and reports
// the port it got (PORT=0 picks a free one) on stderr as
// "LOOPBACK_LISTENING <port>".
"use strict";
const net = require("node:net");
const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  const cb = typeof args[args.length - 1] === "function" ? args.pop() : undefined;
  const first = args[0];
  let opts;
  if (first !== null && typeof first === "object") {
    opts = { ...first };
    if (opts.path !== undefined) return listen.call(this, ...args, ...(cb ? [cb] : [])); // a unix socket
  } else if (first === undefined || typeof first === "number" || /^\d+$/.test(String(first))) {
    opts = { port: Number(first ?? 0) };
  } else {
    return listen.call(this, ...args, ...(cb ? [cb] : [])); // a unix socket path
  }
  opts.host = "127.0.0.1";
  this.once("listening", () => {
    const a = this.address();
    if (a && typeof a === "object") process.stderr.write(`LOOPBACK_LISTENING ${a.port}\n`);
  });
  return cb ? listen.call(this, opts, cb) : listen.call(this, opts);
};
