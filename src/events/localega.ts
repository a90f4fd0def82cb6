import type { CapstanEvent, StoredEvent } from './api.js';

/**
 * The message format of the LocalEGA inbox (`[events] format = localega`,
 * docs/spec/events.md, LocalEGA format): what an OpenSSH- or sda-inbox-based
 * LocalEGA inbox publishes to CentralEGA's `files.inbox`, so a deployment
 * that puts capstan in its place changes nothing downstream. The shapes
 * follow the federated EGA inbox schemas (inbox-upload.json,
 * inbox-rename.json, inbox-remove.json; docs/spec/localega-inbox.schema.json):
 *
 *   upload  {"operation":"upload","user","filepath","filesize","file_last_modified","encrypted_checksums":[sha256, md5]}
 *   rename  {"operation":"rename","user","filepath","oldpath"}
 *   remove  {"operation":"remove","user","filepath"}
 *
 * `encrypted_checksums` are the digests of the bytes the user uploaded
 * (LocalEGA users upload Crypt4GH files, hence "encrypted"); the schema
 * admits only sha256 and md5 items, so capstan's sha1 is left out.
 * `file_last_modified` is the entry's mtime in whole UNIX seconds.
 * mkdir, rmdir, symlink and snapshots have no LocalEGA message: they are confirmed
 * without sending anything.
 */

export const EVENT_FORMATS = ['capstan', 'localega'] as const;
export type EventFormat = (typeof EVENT_FORMATS)[number];

export interface LocalEgaMessage {
  operation: 'upload' | 'rename' | 'remove';
  user: string;
  filepath: string;
  oldpath?: string;
  filesize?: number;
  file_last_modified?: number;
  encrypted_checksums?: { type: 'sha256' | 'md5'; value: string }[];
}

export function localEgaMessage(event: CapstanEvent): LocalEgaMessage | undefined {
  const { operation, user, path } = event;
  if (operation === 'upload') {
    const message: LocalEgaMessage = { operation, user, filepath: path };
    if (event.size !== undefined) message.filesize = event.size;
    if (event.mtime !== undefined) message.file_last_modified = Math.floor(Date.parse(event.mtime) / 1000);
    const sums = event.checksums ?? [];
    message.encrypted_checksums = (['sha256', 'md5'] as const).flatMap((type) =>
      sums.filter((c) => c.type === type).map((c) => ({ type, value: c.value })),
    );
    return message;
  }
  if (operation === 'rename') return { operation, user, filepath: path, oldpath: event.fromPath ?? '' };
  if (operation === 'remove') return { operation, user, filepath: path };
  return undefined;
}

/** The body a sink sends for `stored` in `format`; undefined: nothing to send (confirmed as delivered). */
export function bodyOf(stored: StoredEvent, format: EventFormat): string | undefined {
  if (format === 'capstan') return stored.body;
  const message = localEgaMessage(stored.event);
  return message === undefined ? undefined : JSON.stringify(message);
}
