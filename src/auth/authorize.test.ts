import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BUILTIN_ROLES, authorize, canReadKey, rangeWithinPrefix, type Principal, type Role } from './authorize.js';

const team: Role = { name: 'team-a', permissions: [{ prefix: 'team-a/', access: 'write' }, { prefix: 'shared/', access: 'read' }] };
const teamAdmin: Role = { name: 'team-a-admin', permissions: [{ prefix: 'team-a/', access: 'admin' }] };
const secrets: Role = { name: 'team-a-secrets', permissions: [{ prefix: 'team-a/', access: 'read' }], secrets: true };
const roles = new Map<string, Role>([...BUILTIN_ROLES, team, teamAdmin, secrets].map((r) => [r.name, r]));

const who = (...r: string[]): Principal => ({ name: 'p', roles: r, via: 'token' });
const end = (p: string): string => p.slice(0, -1) + String.fromCharCode(p.charCodeAt(p.length - 1) + 1);

describe('authorize()', () => {
  it('built-in admin may do everything, including cluster administration', () => {
    const p = who('admin');
    for (const a of ['read', 'write', 'read_secret', 'admin'] as const) assert.equal(authorize(p, a, { key: 'x' }, roles), true);
    assert.equal(authorize(p, 'admin', undefined, roles), true);
  });

  it('developer reads, writes and reads secrets but administers nothing', () => {
    const p = who('developer');
    assert.equal(authorize(p, 'read', { key: 'x' }, roles), true);
    assert.equal(authorize(p, 'write', { key: 'x', rangeEnd: null }, roles), true);
    assert.equal(authorize(p, 'read_secret', { key: 'x' }, roles), true);
    assert.equal(authorize(p, 'admin', { key: 'x' }, roles), false);
    assert.equal(authorize(p, 'admin', undefined, roles), false);
  });

  it('viewer reads but neither writes nor reads secrets', () => {
    const p = who('viewer');
    assert.equal(authorize(p, 'read', { key: 'a', rangeEnd: null }, roles), true);
    assert.equal(authorize(p, 'write', { key: 'a' }, roles), false);
    assert.equal(authorize(p, 'read_secret', { key: 'a' }, roles), false);
    assert.equal(authorize(p, 'admin', undefined, roles), false);
  });

  it('a custom role reaches only its prefixes, and a range only when one grant covers all of it', () => {
    const p = who('team-a');
    assert.equal(authorize(p, 'write', { key: 'team-a/x' }, roles), true);
    assert.equal(authorize(p, 'read', { key: 'team-a/', rangeEnd: end('team-a/') }, roles), true);
    assert.equal(authorize(p, 'read', { key: 'team-a/x', rangeEnd: 'team-a/y' }, roles), true);
    assert.equal(authorize(p, 'read', { key: 'team-a/', rangeEnd: 'team-b/' }, roles), false, 'range reaching past the prefix');
    assert.equal(authorize(p, 'read', { key: 'team-a/', rangeEnd: null }, roles), false, 'unbounded range');
    assert.equal(authorize(p, 'read', { key: 'team-', rangeEnd: end('team-') }, roles), false, 'wider prefix');
    assert.equal(authorize(p, 'read', { key: 'shared/x' }, roles), true);
    assert.equal(authorize(p, 'write', { key: 'shared/x' }, roles), false);
    assert.equal(authorize(p, 'read', { key: 'team-b/x' }, roles), false);
    assert.equal(authorize(p, 'read_secret', { key: 'team-a/x' }, roles), false);
    assert.equal(authorize(p, 'admin', undefined, roles), false);
  });

  it('keys are opaque strings: path tricks do not escape a prefix', () => {
    const p = who('team-a');
    // These keys start with "team-a/", so they are team-a's keys — but they are not team-b's keys.
    assert.equal(authorize(p, 'write', { key: 'team-a/../team-b/x' }, roles), true);
    for (const k of ['team-b/x', '/team-a/x', 'team-a', 'Team-a/x', 'team-a\u2215x', 'team-a%2Fx', './team-a/x', 'team-a\\x']) {
      assert.equal(authorize(p, 'write', { key: k }, roles), false, k);
    }
  });

  it('admin access on a prefix includes secrets and namespace administration there, not elsewhere', () => {
    const p = who('team-a-admin');
    assert.equal(authorize(p, 'read_secret', { key: 'team-a/db' }, roles), true);
    assert.equal(authorize(p, 'admin', { key: 'team-a/', rangeEnd: end('team-a/') }, roles), true);
    assert.equal(authorize(p, 'admin', { key: 'team-b/' }, roles), false);
    assert.equal(authorize(p, 'admin', undefined, roles), false);
  });

  it('a role with secrets reads secrets under its own prefixes only', () => {
    const p = who('team-a-secrets');
    assert.equal(authorize(p, 'read_secret', { key: 'team-a/db' }, roles), true);
    assert.equal(authorize(p, 'read_secret', { key: 'team-b/db' }, roles), false);
    assert.equal(authorize(p, 'write', { key: 'team-a/db' }, roles), false);
  });

  it('unknown roles and no roles grant nothing', () => {
    assert.equal(authorize(who('ghost'), 'read', { key: 'a' }, roles), false);
    assert.equal(authorize(who(), 'read', { key: 'a' }, roles), false);
  });

  it('dev mode may do everything except reach system keys', () => {
    const dev: Principal = { name: 'dev', roles: [], via: 'dev' };
    assert.equal(authorize(dev, 'admin', undefined, roles), true);
    assert.equal(authorize(dev, 'write', { key: 'a' }, roles), true);
    assert.equal(authorize(dev, 'read', { key: '\u0000auth/users/admin' }, roles), false);
    assert.equal(authorize(who('admin'), 'read', { key: '\u0000ns/x' }, roles), false);
  });

  it('canReadKey and rangeWithinPrefix', () => {
    assert.equal(canReadKey(who('team-a'), 'team-a/k', roles), true);
    assert.equal(canReadKey(who('team-a'), 'team-b/k', roles), false);
    assert.equal(rangeWithinPrefix({ key: 'a/b' }, 'a/'), true);
    assert.equal(rangeWithinPrefix({ key: 'a/b', rangeEnd: 'a0' }, 'a/'), true);
    assert.equal(rangeWithinPrefix({ key: 'a/b', rangeEnd: 'a1' }, 'a/'), false);
    assert.equal(rangeWithinPrefix({ key: 'anything', rangeEnd: null }, ''), true);
  });
});

it('authorize refuses ranges not in canonical form (rangeEnd "" or "\\0" reached past the grant, issue 9)', () => {
  const roles = new Map([['r', { name: 'r', permissions: [{ prefix: 'team/', access: 'read' as const }] }]]);
  const p = { name: 'u', roles: ['r'], via: 'password' as const };
  assert.equal(authorize(p, 'read', { key: 'team/', rangeEnd: '' }, roles), false);
  assert.equal(authorize(p, 'read', { key: 'team/', rangeEnd: '\u0000' }, roles), false);
  assert.equal(authorize(p, 'read', { key: 'team/x', rangeEnd: 'a' }, roles), false);
  assert.equal(authorize(p, 'read', { key: 'team/', rangeEnd: 'team0' }, roles), true);
});
