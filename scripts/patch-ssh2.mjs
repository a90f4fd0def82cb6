#!/usr/bin/env node
/**
 * The one patch capstan carries on ssh2 (run as the package's postinstall).
 *
 * Why: ssh2's SFTP server answers INIT with a fixed VERSION packet
 * (SERVER_VERSION_BUFFER: version 3, no extensions) and has no way to send an
 * SSH_FXP_EXTENDED_REPLY, so a server built on it cannot offer the OpenSSH
 * extensions (posix-rename, statvfs, hardlink, fsync, limits) that sftp,
 * sshfs and rsync rely on. It also gives no way to see how much output is
 * queued waiting for the client's window, which the gateway needs to bound
 * memory when a client pipelines READs but does not read the replies.
 *
 * What, in node_modules/ssh2/lib/protocol/SFTP.js:
 *  1. the INIT handler sends `sftp._capstanVersion || SERVER_VERSION_BUFFER`,
 *     so the frontend can set its own VERSION packet right after accept();
 *  2. SFTP gains `_capstanSendRaw(packet)`: a complete length-prefixed SFTP
 *     packet sent through the existing sendOrBuffer (window handling kept);
 *  3. SFTP gains `_capstanBacklog()`: bytes buffered for window space;
 *  4. SFTP gains `_capstanExit(code)`: the exit-status request sshd sends
 *     when its sftp-server ends; OpenSSH's scp (SFTP mode) fails without it.
 * Nothing else changes; an unpatched server behaves exactly as before.
 *
 * Idempotent: an already patched file is recognized by its marker and left
 * alone. Fails loudly (exit 1) if an anchor is missing, i.e. ssh2 changed and
 * the patch must be revisited; src/sftp checks at startup that it is applied.
 */
import { createRequire } from 'node:module';
import { readFileSync, writeFileSync } from 'node:fs';

const MARKER = '// capstan-patch-ssh2 v2';

const EDITS = [
  {
    what: 'INIT handler sends a replaceable VERSION packet',
    anchor: '    sendOrBuffer(sftp, SERVER_VERSION_BUFFER);\n',
    replacement: '    sendOrBuffer(sftp, sftp._capstanVersion || SERVER_VERSION_BUFFER);\n',
  },
  {
    what: 'raw packet and backlog methods',
    anchor: '  handle(reqid, handle) {\n',
    replacement:
      '  ' +
      MARKER +
      ': send a complete SFTP packet (uint32 length first) built by the caller.\n' +
      '  _capstanSendRaw(packet) {\n' +
      '    return sendOrBuffer(this, packet);\n' +
      '  }\n' +
      '  // capstan: bytes of outgoing packets waiting for the client to open its window.\n' +
      '  _capstanBacklog() {\n' +
      '    let n = 0;\n' +
      '    for (const b of this._buffer) n += b.length;\n' +
      '    return n;\n' +
      '  }\n' +
      '  // capstan: exit-status before the channel closes, as sshd sends when sftp-server exits (scp checks it).\n' +
      '  _capstanExit(code) {\n' +
      "    if (this.outgoing.state === 'open') this._protocol.exitStatus(this.outgoing.id, code);\n" +
      '  }\n' +
      '  handle(reqid, handle) {\n',
  },
];

function fail(message) {
  console.error(`patch-ssh2: ${message}`);
  process.exit(1);
}

let file;
try {
  file = createRequire(import.meta.url).resolve('ssh2/lib/protocol/SFTP.js');
} catch (err) {
  fail(`cannot locate ssh2/lib/protocol/SFTP.js (${err.message})`);
}

let text = readFileSync(file, 'utf8');

if (text.includes('// capstan-patch-ssh2 v') && !text.includes(MARKER)) {
  fail(`${file} carries an older capstan patch: reinstall ssh2 (rm -rf node_modules/ssh2 && npm install)`);
}
if (text.includes(MARKER)) {
  for (const edit of EDITS) {
    if (!text.includes(edit.replacement)) fail(`${file} carries the marker but not the edit "${edit.what}": reinstall ssh2`);
  }
  console.log(`patch-ssh2: already applied to ${file}`);
  process.exit(0);
}

for (const edit of EDITS) {
  const first = text.indexOf(edit.anchor);
  if (first === -1) fail(`anchor for "${edit.what}" not found in ${file}: ssh2 changed, revisit scripts/patch-ssh2.mjs`);
  if (text.indexOf(edit.anchor, first + 1) !== -1) fail(`anchor for "${edit.what}" is not unique in ${file}`);
  text = text.slice(0, first) + edit.replacement + text.slice(first + edit.anchor.length);
}

writeFileSync(file, text);
console.log(`patch-ssh2: patched ${file}`);
