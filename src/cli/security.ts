/**
 * Identity and governance commands: `beacon user …`, `role …`, `apikey …`, `audit`,
 * `namespace …` and `secrets reencrypt` (docs/security.md). Every command talks to a node over
 * HTTP through the SDK's transport, with the caller's `--token` / `BEACON_TOKEN`.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import { InvalidArgumentError } from '../errors.js';
import { contextOf, note, out, outJson, readStdin } from './context.js';

// The server's JSON answers, read loosely: the shapes are documented in docs/api.md and docs/security.md.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = Record<string, any>;

async function call(cmd: Command, method: string, path: string, body?: unknown): Promise<Json> {
  const { client } = contextOf(cmd);
  const res = await client.transport.request<Json>(method, path, body === undefined ? {} : { body });
  return res.body;
}

/** Reads a password: from stdin when piped, otherwise from BEACON_NEW_PASSWORD. @throws InvalidArgumentError when neither. */
async function readPassword(): Promise<string> {
  if (!process.stdin.isTTY) return (await readStdin('the password')).toString('utf8').replace(/\r?\n$/, '');
  const env = process.env.BEACON_NEW_PASSWORD;
  if (env !== undefined && env !== '') return env;
  throw new InvalidArgumentError('pipe the password on stdin (echo … | beacon user add …) or set BEACON_NEW_PASSWORD');
}

/** Parses `prefix=access` grants, e.g. `team-a/=write`. @throws InvalidArgumentError for a bad grant. */
export function parseGrant(text: string): { prefix: string; access: string } {
  const i = text.lastIndexOf('=');
  const access = i < 0 ? '' : text.slice(i + 1);
  if (i < 0 || !['read', 'write', 'admin'].includes(access)) {
    throw new InvalidArgumentError(`grant '${text}' must be PREFIX=read|write|admin (e.g. team-a/=write; an empty prefix is every key)`);
  }
  return { prefix: text.slice(0, i), access };
}

const collect = (v: string, prev: string[] = []): string[] => [...prev, v];
const enc = encodeURIComponent;

function table(rows: string[][]): void {
  const widths = rows[0]?.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length))) ?? [];
  for (const r of rows) out(r.map((cell, c) => cell.padEnd(widths[c] ?? 0)).join('  ').trimEnd());
}

/** Adds the `user`, `role`, `apikey`, `audit`, `namespace`, `secrets` and `signing-key` command groups. */
export function registerSecurityCommands(program: Command): void {
  const user = program.command('user').description('manage users (administrators only)');
  user
    .command('add <name>')
    .description('create a user; the password is read from stdin (or BEACON_NEW_PASSWORD)')
    .option('--role <role>', 'a role to grant (repeatable)', collect, [])
    .action(async (name: string, o: { role: string[] }, cmd: Command) => {
      const res = await call(cmd, 'POST', '/v1/users', { name, password: await readPassword(), roles: o.role });
      if (contextOf(cmd).json) outJson(res);
      else out(`created user ${res.name ?? name} (${(res.roles ?? o.role).join(', ') || 'no roles'})`);
    });
  user
    .command('ls')
    .description('list users')
    .action(async (_o: unknown, cmd: Command) => {
      const res = await call(cmd, 'GET', '/v1/users');
      if (contextOf(cmd).json) return outJson(res);
      table([['NAME', 'ROLES', 'DISABLED'], ...(res.users as Json[]).map((u) => [u.name, (u.roles ?? []).join(','), u.disabled ? 'yes' : ''])]);
    });
  user
    .command('rm <name>')
    .description('delete a user (its tokens stop working at once)')
    .action(async (name: string, _o: unknown, cmd: Command) => {
      const res = await call(cmd, 'DELETE', `/v1/users/${enc(name)}`);
      if (contextOf(cmd).json) outJson(res);
      else out(`deleted user ${name}`);
    });
  user
    .command('passwd <name>')
    .description("set a user's password (read from stdin or BEACON_NEW_PASSWORD)")
    .action(async (name: string, _o: unknown, cmd: Command) => {
      const res = await call(cmd, 'PUT', `/v1/users/${enc(name)}/password`, { password: await readPassword() });
      if (contextOf(cmd).json) outJson(res);
      else out(`password of ${name} changed`);
    });
  user
    .command('set-roles <name> [roles...]')
    .description("replace a user's roles")
    .action(async (name: string, roles: string[], _o: unknown, cmd: Command) => {
      const res = await call(cmd, 'PATCH', `/v1/users/${enc(name)}`, { roles });
      if (contextOf(cmd).json) outJson(res);
      else out(`${name}: ${roles.join(', ') || 'no roles'}`);
    });
  user
    .command('disable <name>')
    .description('disable a user without deleting it')
    .action(async (name: string, _o: unknown, cmd: Command) => {
      const res = await call(cmd, 'PATCH', `/v1/users/${enc(name)}`, { disabled: true });
      if (contextOf(cmd).json) outJson(res);
      else out(`disabled ${name}`);
    });

  const role = program.command('role').description('manage roles that grant read / write / admin on key prefixes');
  role
    .command('put <name>')
    .description('create or replace a role, e.g. beacon role put team-a --grant team-a/=write --grant shared/=read')
    .option('--grant <prefix=access>', 'a grant (repeatable)', collect, [])
    .option('--secrets', 'may read secret values under its prefixes', false)
    .action(async (name: string, o: { grant: string[]; secrets: boolean }, cmd: Command) => {
      const res = await call(cmd, 'PUT', `/v1/roles/${enc(name)}`, { permissions: o.grant.map(parseGrant), secrets: o.secrets });
      if (contextOf(cmd).json) outJson(res);
      else out(`role ${name}: ${o.grant.join(' ') || 'no grants'}`);
    });
  role
    .command('ls')
    .description('list roles')
    .action(async (_o: unknown, cmd: Command) => {
      const res = await call(cmd, 'GET', '/v1/roles');
      if (contextOf(cmd).json) return outJson(res);
      table([
        ['NAME', 'GRANTS', 'SECRETS', 'BUILT-IN'],
        ...(res.roles as Json[]).map((r) => [
          r.name,
          (r.permissions as Json[]).map((p) => `${p.prefix === '' ? '*' : p.prefix}=${p.access}`).join(' '),
          r.secrets ? 'yes' : '',
          r.builtin ? 'yes' : '',
        ]),
      ]);
    });
  role
    .command('rm <name>')
    .description('delete a custom role')
    .action(async (name: string, _o: unknown, cmd: Command) => {
      const res = await call(cmd, 'DELETE', `/v1/roles/${enc(name)}`);
      if (contextOf(cmd).json) outJson(res);
      else out(`deleted role ${name}`);
    });

  const apikey = program.command('apikey').description('manage API keys for services');
  apikey
    .command('create <name>')
    .description('create an API key; the key is printed once and never again')
    .option('--role <role>', 'a role to grant (repeatable)', collect, [])
    .option('--expires-at <time>', 'ISO 8601 expiry time')
    .action(async (name: string, o: { role: string[]; expiresAt?: string }, cmd: Command) => {
      const res = await call(cmd, 'POST', '/v1/apikeys', { name, roles: o.role, ...(o.expiresAt ? { expiresAt: o.expiresAt } : {}) });
      if (contextOf(cmd).json) return outJson(res);
      out(res.key);
      note(`API key ${res.id} for ${name} (${o.role.join(', ') || 'no roles'}): store it now, it is not shown again`);
    });
  apikey
    .command('ls')
    .description('list API keys (never their secrets)')
    .action(async (_o: unknown, cmd: Command) => {
      const res = await call(cmd, 'GET', '/v1/apikeys');
      if (contextOf(cmd).json) return outJson(res);
      table([['ID', 'NAME', 'ROLES', 'EXPIRES'], ...(res.apiKeys as Json[]).map((k) => [k.id, k.name, (k.roles ?? []).join(','), k.expiresAt ?? ''])]);
    });
  apikey
    .command('revoke <id>')
    .description('revoke an API key')
    .action(async (id: string, _o: unknown, cmd: Command) => {
      const res = await call(cmd, 'DELETE', `/v1/apikeys/${enc(id)}`);
      if (contextOf(cmd).json) outJson(res);
      else out(`revoked API key ${id}`);
    });

  program
    .command('audit')
    .description('read the audit log, newest first: who changed what, when, from where')
    .option('--from <time>', 'ISO 8601 time or ms since the epoch')
    .option('--to <time>', 'ISO 8601 time or ms since the epoch')
    .option('--principal <name>', 'only this principal')
    .option('--action <action>', 'only this action, e.g. kv.put, config.rollback, auth.login')
    .option('--key <prefix>', 'only keys with this prefix')
    .option('--outcome <outcome>', 'ok, denied or failed')
    .option('--limit <n>', 'at most this many records, the newest', '100')
    .option('--export <file>', 'write every matching record as JSON lines to FILE (- for stdout)')
    .action(async (o: Record<string, string | undefined>, cmd: Command) => {
      const q = new URLSearchParams();
      for (const k of ['from', 'to', 'principal', 'action', 'key', 'outcome'] as const) if (o[k] !== undefined) q.set(k, o[k] as string);
      const { client, json } = contextOf(cmd);
      if (o.export !== undefined) {
        // Every matching record, page by page (1,000 at a time), one JSON object per line.
        const lines: string[] = [];
        let after: number | undefined;
        for (;;) {
          const page = new URLSearchParams(q);
          page.set('limit', '1000');
          if (after !== undefined) page.set('after', String(after));
          const res = (await client.transport.request<Json>('GET', `/v1/audit?${page}`, {})).body;
          for (const r of res.records as Json[]) lines.push(`${JSON.stringify(r)}\n`);
          if (!res.more || res.next === undefined) break;
          after = Number(res.next);
        }
        if (o.export === '-') process.stdout.write(lines.join(''));
        else {
          writeFileSync(o.export, lines.join(''));
          note(`wrote ${lines.length} records to ${o.export}`);
        }
        return;
      }
      // Newest first, as people read a log: the node pages oldest first, so read every matching
      // page and keep the newest `limit` records (narrow with --from/--to on a large log).
      const limit = Number(o.limit ?? '100');
      if (!Number.isSafeInteger(limit) || limit < 1) throw new InvalidArgumentError(`--limit must be a positive integer, not '${o.limit}'`);
      let records: Json[] = [];
      let total = 0;
      let after: number | undefined;
      for (;;) {
        const page = new URLSearchParams(q);
        page.set('limit', '1000');
        if (after !== undefined) page.set('after', String(after));
        const res = (await client.transport.request<Json>('GET', `/v1/audit?${page}`, {})).body;
        total += (res.records as Json[]).length;
        records.push(...(res.records as Json[]));
        if (records.length > limit) records = records.slice(records.length - limit);
        if (!res.more || res.next === undefined) break;
        after = Number(res.next);
      }
      records.reverse();
      const more = total > records.length;
      if (json) return outJson({ records, more });
      table([
        ['TIME', 'PRINCIPAL', 'ACTION', 'KEY', 'VERSION', 'OUTCOME', 'SOURCE'],
        ...records.map((r) => [
          String(r.time ?? r.ts ?? ''),
          r.principal,
          r.action,
          r.key ?? '',
          r.oldVersion != null || r.newVersion != null ? `${r.oldVersion ?? '-'}→${r.newVersion ?? '-'}` : '',
          r.outcome,
          r.source ?? '',
        ]),
      ]);
      if (more) note(`showing the newest ${records.length} of ${total} records: raise --limit, add --from/--to or filters, or use --export`);
    });

  const ns = program.command('namespace').description('namespace policies: format, JSON Schema, secrets, default TTL, history retention');
  ns
    .command('put <prefix>')
    .description('create or replace the policy of a key prefix (fields not given are removed; `namespace set` changes some and keeps the rest)')
    .option('--format <format>', 'text or json')
    .option('--schema <file>', 'a JSON Schema file every value must match')
    .option('--secret', 'encrypt values at rest and redact them for readers without secret access', false)
    .option('--default-ttl <seconds>', 'a lease of this TTL for writes that name none')
    .option('--keep-versions <n>', "history retention: keep each key's newest N versions")
    .option('--keep-days <days>', 'history retention: keep versions replaced less than DAYS days ago')
    // cache tier (issue 11): docs/cache.md
    .option('--storage <storage>', 'memory (a cache namespace: TTL, eviction, AOF) or durable (the default)')
    .option('--ttl <seconds>', 'with --storage memory: the TTL of keys written without one (same as --default-ttl)')
    .option('--origin <url>', 'with --storage memory: read-through origin URL template, {key} or {id} replaced, e.g. http://db-api/users/{id}')
    .option('--origin-timeout <ms>', 'origin fetch timeout in ms (default 1000)')
    .option('--origin-ttl <seconds>', 'TTL of values fetched from the origin (default: the namespace TTL)')
    .option('--replication-factor <n>', 'with --storage memory, in a cache cluster: copies of each key, the primary included (1-3, default 1)')
    .option('--replication <mode>', 'with --replication-factor 2 or 3: async (default) or sync (a write is answered once every live replica has it)')
    .action(
      async (
        prefix: string,
        o: {
          format?: string;
          schema?: string;
          secret: boolean;
          defaultTtl?: string;
          keepVersions?: string;
          keepDays?: string;
          storage?: string;
          ttl?: string;
          origin?: string;
          originTimeout?: string;
          originTtl?: string;
          replicationFactor?: string;
          replication?: string;
        },
        cmd: Command,
      ) => {
        const body: Json = {};
        // cache tier (issue 11): non-numbers go through as strings so the node's error names the field
        const n = (v: string): number | string => (/^\d+$/.test(v) ? Number(v) : v);
        if (o.storage !== undefined) body.storage = o.storage;
        if (o.ttl !== undefined) body.defaultTtl = n(o.ttl);
        if (o.origin !== undefined || o.originTimeout !== undefined || o.originTtl !== undefined) {
          body.origin = {
            ...(o.origin !== undefined ? { url: o.origin } : {}),
            ...(o.originTimeout !== undefined ? { timeoutMs: n(o.originTimeout) } : {}),
            ...(o.originTtl !== undefined ? { ttlSeconds: n(o.originTtl) } : {}),
          };
        }
        if (o.replicationFactor !== undefined) body.replicationFactor = n(o.replicationFactor);
        if (o.replication !== undefined) body.replication = o.replication;
        if (o.format !== undefined) body.format = o.format;
        if (o.schema !== undefined) body.schema = JSON.parse(readFileSync(o.schema, 'utf8'));
        if (o.secret) body.secret = true;
        if (o.defaultTtl !== undefined) body.defaultTtl = Number(o.defaultTtl);
        if (o.keepVersions !== undefined || o.keepDays !== undefined) {
          // Non-numbers go through as strings so the node's error names the field.
          const num = (v: string): number | string => (/^\d+$/.test(v) ? Number(v) : v);
          body.historyRetention = {
            ...(o.keepVersions !== undefined ? { versions: num(o.keepVersions) } : {}),
            ...(o.keepDays !== undefined ? { days: num(o.keepDays) } : {}),
          };
        }
        const res = await call(cmd, 'PUT', `/v1/namespaces/${prefix.split('/').map(enc).join('/')}`, body);
        if (contextOf(cmd).json) outJson(res);
        else {
          out(`namespace ${prefix}: ${JSON.stringify(policySummary(res))}`);
        }
      },
    );
  ns
    .command('set <prefix>')
    .description('change some fields of an existing policy, keeping the others (PATCH); put replaces the whole policy')
    .option('--format <format>', 'text or json')
    .option('--schema <file>', 'a JSON Schema file every value must match')
    .option('--secret', 'encrypt values at rest and redact them for readers without secret access')
    .option('--no-secret', 'stop encrypting: the live values are decrypted')
    .option('--default-ttl <seconds>', 'a lease of this TTL for writes that name none')
    .option('--keep-versions <n>', "history retention: keep each key's newest N versions")
    .option('--keep-days <days>', 'history retention: keep versions replaced less than DAYS days ago')
    .option('--description <text>', 'what the namespace is for')
    .option('--unset <field>', 'remove a field: format, schema, defaultTtl, historyRetention, description (repeatable)', (v: string, prev: string[]) => [...prev, v], [])
    .action(
      async (
        prefix: string,
        o: { format?: string; schema?: string; secret?: boolean; defaultTtl?: string; keepVersions?: string; keepDays?: string; description?: string; unset: string[] },
        cmd: Command,
      ) => {
        const body: Json = {};
        for (const f of o.unset) body[f] = null;
        if (o.format !== undefined) body.format = o.format;
        if (o.schema !== undefined) body.schema = JSON.parse(readFileSync(o.schema, 'utf8'));
        if (o.secret !== undefined) body.secret = o.secret;
        if (o.defaultTtl !== undefined) body.defaultTtl = Number(o.defaultTtl);
        if (o.description !== undefined) body.description = o.description;
        if (o.keepVersions !== undefined || o.keepDays !== undefined) {
          const num = (v: string): number | string => (/^\d+$/.test(v) ? Number(v) : v);
          body.historyRetention = {
            ...(o.keepVersions !== undefined ? { versions: num(o.keepVersions) } : {}),
            ...(o.keepDays !== undefined ? { days: num(o.keepDays) } : {}),
          };
        }
        const res = await call(cmd, 'PATCH', `/v1/namespaces/${prefix.split('/').map(enc).join('/')}`, body);
        if (contextOf(cmd).json) outJson(res);
        else out(`namespace ${prefix}: ${JSON.stringify(policySummary(res))}`);
      },
    );
  ns
    .command('get <prefix>')
    .description('show the policy of a prefix')
    .action(async (prefix: string, _o: unknown, cmd: Command) => {
      outJson(await call(cmd, 'GET', `/v1/namespaces/${prefix.split('/').map(enc).join('/')}`));
    });
  ns
    .command('ls')
    .description('list namespace policies')
    .action(async (_o: unknown, cmd: Command) => {
      const res = await call(cmd, 'GET', '/v1/namespaces');
      if (contextOf(cmd).json) return outJson(res);
      table([
        ['PREFIX', 'FORMAT', 'SCHEMA', 'SECRET', 'DEFAULT TTL', 'HISTORY'],
        ...(res.namespaces as Json[]).map((n) => [
          n.prefix,
          n.format ?? '',
          n.schema ? 'yes' : '',
          n.secret ? 'yes' : '',
          n.defaultTtl ? String(n.defaultTtl) : '',
          retentionText(n.historyRetention as Json | undefined),
        ]),
      ]);
    });
  ns
    .command('rm <prefix>')
    .description('delete the policy of a prefix (secret values are decrypted)')
    .action(async (prefix: string, _o: unknown, cmd: Command) => {
      const res = await call(cmd, 'DELETE', `/v1/namespaces/${prefix.split('/').map(enc).join('/')}`);
      if (contextOf(cmd).json) outJson(res);
      else out(`deleted namespace ${prefix}`);
    });

  program
    .command('secrets')
    .description('secret maintenance')
    .command('reencrypt')
    .description('re-encrypt every secret under the newest key-encryption key (online)')
    .option('--prefix <prefix>', 'only under this prefix')
    .action(async (o: { prefix?: string }, cmd: Command) => {
      const res = await call(cmd, 'POST', '/v1/secrets/reencrypt', o.prefix === undefined ? {} : { prefix: o.prefix });
      if (contextOf(cmd).json) outJson(res);
      else out(`re-encrypted: ${JSON.stringify(res)}`);
    });

  const sk = program.command('signing-key').description('the token signing keyring (key ids only; keys never leave the node)');
  sk.command('show')
    .description('the id of the key that signs tokens, and of every key that verifies them')
    .action(async (_o: unknown, cmd: Command) => {
      const res = await call(cmd, 'GET', '/v1/auth/signing-key');
      if (contextOf(cmd).json) outJson(res);
      else out(`signing: ${String(res.kid)}\nverifying: ${(res.kids as string[]).join(', ')}`);
    });
  sk.command('rotate')
    .description('sign tokens with a new key; tokens of the current key stay valid until they expire')
    .option('--revoke-tokens', 'drop the current key too: every issued token is refused at once', false)
    .action(async (o: { revokeTokens: boolean }, cmd: Command) => {
      const res = await call(cmd, 'POST', '/v1/auth/signing-key/rotate', { keepPrevious: !o.revokeTokens });
      if (contextOf(cmd).json) outJson(res);
      else if (res.previousKid === null) out(`signing with ${String(res.kid)}; every token issued before is now refused`);
      else out(`signing with ${String(res.kid)}; tokens signed by ${String(res.previousKid)} stay valid until they expire`);
    });
}

/** What `namespace put` and `set` print of the stored policy. */
function policySummary(res: Json): Json {
  const summary: Json = { format: res.format, secret: res.secret === true, schema: res.schema !== undefined };
  for (const k of ['storage', 'origin', 'defaultTtl', 'historyRetention', 'description']) if (res[k] !== undefined) summary[k] = res[k];
  return summary;
}

/** A namespace's history retention for `namespace ls`: "5 versions", "30 days", "5 versions / 30 days" or "". */
function retentionText(h: Json | undefined): string {
  if (h === undefined || h === null) return '';
  const parts: string[] = [];
  if (h.versions !== undefined) parts.push(`${String(h.versions)} versions`);
  if (h.days !== undefined) parts.push(`${String(h.days)} days`);
  return parts.join(' / ');
}
