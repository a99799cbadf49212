// An SMTP server for Passlink's fault tests and benchmarks, built on
// nodemailer's smtp-server. Unlike maildev it can refuse chosen mailboxes
// with a permanent 5xx reply, keeps what it accepted in a file that
// survives its own restarts, and has a count-only mode fast enough to
// measure throughput.
//
//   node smtp-sink.mjs --smtp 2525 --http 2580 [--store mail.jsonl] [--count-only]
//                      [--no-smtputf8]   (do not offer SMTPUTF8)
//                      [--delay-ms N]    (answer each message N ms late, as a slow server)
//
// HTTP API (loopback only):
//   GET  /emails          accepted messages: [{id, to, subject, text, messageId, at}]
//   GET  /stats           {accepted, refused, bytes}
//   PUT  /refuse          body: JSON array of addresses refused from now on
//   GET  /healthz
import { createServer } from 'node:http';
import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import { SMTPServer } from 'smtp-server';
import { simpleParser } from 'mailparser';

const args = process.argv.slice(2);
const option = (name, fallback) => {
  const at = args.indexOf(`--${name}`);
  return at >= 0 ? args[at + 1] : fallback;
};
const smtpPort = Number(option('smtp', 2525));
const httpPort = Number(option('http', 2580));
const store = option('store', null);
const countOnly = args.includes('--count-only');
const noSmtpUtf8 = args.includes('--no-smtputf8');
const delayMs = Number(option('delay-ms', 0));

let refused = new Set();
const stats = { accepted: 0, refused: 0, bytes: 0 };
const emails = [];
if (store && existsSync(store)) {
  for (const line of readFileSync(store, 'utf8').split('\n')) {
    if (line.trim()) emails.push(JSON.parse(line));
  }
  stats.accepted = emails.length;
}

const smtp = new SMTPServer({
  authOptional: true,
  disabledCommands: ['STARTTLS', 'AUTH'],
  hideSMTPUTF8: noSmtpUtf8,
  logger: false,
  size: 10 * 1024 * 1024,
  onRcptTo(address, _session, callback) {
    if (refused.has(address.address.toLowerCase())) {
      stats.refused += 1;
      const err = new Error('5.1.1 Mailbox unavailable');
      err.responseCode = 550;
      return callback(err);
    }
    callback();
  },
  onData(stream, session, callback) {
    if (countOnly) {
      stream.on('data', (chunk) => { stats.bytes += chunk.length; });
      stream.on('end', () => { stats.accepted += 1; callback(); });
      return;
    }
    simpleParser(stream)
      .then((mail) => {
        const record = {
          id: String(stats.accepted + 1),
          to: session.envelope.rcptTo.map((r) => ({ address: r.address })),
          subject: mail.subject ?? '',
          text: mail.text ?? '',
          messageId: mail.messageId ?? '',
          at: new Date().toISOString(),
        };
        // Written before the 250 reply: what the client saw accepted is on disk.
        if (store) appendFileSync(store, JSON.stringify(record) + '\n');
        emails.push(record);
        stats.accepted += 1;
        if (delayMs > 0) setTimeout(callback, delayMs);
        else callback();
      })
      .catch((err) => callback(err));
  },
});
smtp.on('error', (err) => console.error('smtp error:', err.message));
smtp.listen(smtpPort, '127.0.0.1');

const http = createServer((req, res) => {
  const reply = (status, body) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  };
  if (req.method === 'GET' && req.url === '/emails') return reply(200, emails);
  if (req.method === 'GET' && req.url === '/stats') return reply(200, stats);
  if (req.method === 'GET' && req.url === '/healthz') return reply(200, { status: 'ok' });
  if (req.method === 'PUT' && req.url === '/refuse') {
    let body = '';
    req.on('data', (chunk) => { body += chunk; });
    req.on('end', () => {
      try {
        refused = new Set(JSON.parse(body).map((a) => String(a).toLowerCase()));
        reply(200, { refused: [...refused] });
      } catch (err) {
        reply(400, { error: err.message });
      }
    });
    return;
  }
  reply(404, { error: 'not found' });
});
http.listen(httpPort, '127.0.0.1');

const stop = () => { smtp.close(() => process.exit(0)); http.close(); };
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
