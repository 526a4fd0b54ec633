// Nodemailer's pooled SMTP transport on the work of bench/compare.py: one message per
// row of the CSV, the same subject, text and HTML templates and the same
// substitutions as blast's campaign ({{name}}, HTML-escaped in the HTML part).
//
//   node nodemailer-send.js --port P --connections N --csv list.csv --text body.txt
//        --html body.html --subject "Hi {{first_name}}" [--host 127.0.0.1] [--window W]
//        [--size]
//
// pool: true, maxConnections: N, maxMessages: Infinity (one session per connection,
// as blast's messages_per_connection: 0 and smtp-source -d); at most 4 x N messages
// are handed to the transport at a time (--window), so memory does not hold the whole
// list; --window 0 hands it every message at once.
// Prints one JSON line: {"sent": S, "failed": F, "first_error": ...}.
// --size prints the size in bytes of the first row's message instead of sending.
"use strict";

const fs = require("fs");
const path = require("path");
// nodemailer is installed in bench/node/ (package.json and its lock file pin it)
const local = require("module").createRequire(path.join(__dirname, "node", "package.json"));
const nodemailer = local("nodemailer");
const MailComposer = local("nodemailer/lib/mail-composer");

function args() {
    const a = { host: "127.0.0.1", connections: 1, size: false };
    const argv = process.argv.slice(2);
    for (let i = 0; i < argv.length; i++) {
        const k = argv[i].replace(/^--/, "");
        if (k === "size") a.size = true;
        else a[k] = argv[++i];
    }
    a.port = Number(a.port);
    a.connections = Number(a.connections);
    a.window = a.window === undefined ? 4 * a.connections : Number(a.window);
    return a;
}

// A template is split once into literal parts and names, as blast compiles its own.
function compile(text) {
    const parts = [];
    const re = /\{\{\s*([A-Za-z0-9_.-]+)\s*\}\}/g;
    let last = 0;
    let m;
    while ((m = re.exec(text)) !== null) {
        parts.push(text.slice(last, m.index), m[1]);
        last = re.lastIndex;
    }
    parts.push(text.slice(last));
    return parts;
}

const ESC = { "&": "&amp;", "<": "&lt;", ">": "&gt;", "\"": "&quot;", "'": "&#39;" };
const escapeHtml = (s) => s.replace(/[&<>"']/g, (c) => ESC[c]);

function render(parts, row, html) {
    let out = parts[0];
    for (let i = 1; i < parts.length; i += 2) {
        const v = row[parts[i]] ?? "";
        out += (html ? escapeHtml(v) : v) + parts[i + 1];
    }
    return out;
}

// The benchmark's list: a header row, then plain fields (no quotes, no commas inside).
function readRows(file) {
    const lines = fs.readFileSync(file, "utf8").split(/\r?\n/).filter((l) => l !== "");
    const header = lines[0].split(",");
    return lines.slice(1).map((l) => {
        const f = l.split(",");
        const row = {};
        header.forEach((h, i) => { row[h] = f[i]; });
        return row;
    });
}

async function main() {
    const a = args();
    const rows = readRows(a.csv);
    const text = compile(fs.readFileSync(a.text, "utf8"));
    const html = a.html ? compile(fs.readFileSync(a.html, "utf8")) : null;
    const subject = compile(a.subject);
    const message = (row) => ({
        from: "Acme News <news@acme.example>",
        to: { name: row.name, address: row.email },
        subject: render(subject, row, false),
        text: render(text, row, false),
        html: html ? render(html, row, true) : undefined,
    });

    if (a.size) {
        const buf = await new MailComposer(message(rows[0])).compile().build();
        console.log(JSON.stringify({ size: buf.length }));
        return;
    }

    const transport = nodemailer.createTransport({
        host: a.host, port: a.port, secure: false, ignoreTLS: true,
        pool: true, maxConnections: a.connections, maxMessages: Infinity,
    });
    let sent = 0, failed = 0, firstError = null, next = 0;
    const window = a.window > 0 ? a.window : Infinity;
    await new Promise((resolve) => {
        let inFlight = 0;
        const pump = () => {
            while (inFlight < window && next < rows.length) {
                const row = rows[next++];
                inFlight++;
                transport.sendMail(message(row)).then(() => { sent++; }, (e) => {
                    failed++;
                    if (!firstError) firstError = String(e && e.message);
                }).finally(() => {
                    inFlight--;
                    if (next >= rows.length && inFlight === 0) resolve();
                    else pump();
                });
            }
        };
        pump();
        if (rows.length === 0) resolve();
    });
    transport.close();
    console.log(JSON.stringify({ sent, failed, first_error: firstError }));
    process.exitCode = failed ? 1 : 0;
}

main().catch((e) => { console.error(e); process.exit(2); });
