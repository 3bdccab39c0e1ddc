/**
 * The notification payloads: Alertmanager's webhook payload (version 4) and a fixed, readable
 * email (subject, plain text, HTML). No template language: the format is documented in
 * docs/notifications.md.
 */

/** One alert of a notification, as Alertmanager's template data and webhook payload carry it. */
export interface PayloadAlert {
  status: 'firing' | 'resolved';
  labels: Record<string, string>;
  annotations: Record<string, string>;
  startsAt: string;
  /** The resolution time, or Go's zero time (`0001-01-01T00:00:00Z`) while firing, as Alertmanager writes it. */
  endsAt: string;
  generatorURL: string;
  fingerprint: string;
}

/** Alertmanager's webhook payload, version 4 (https://prometheus.io/docs/alerting/latest/configuration/#webhook_config). */
export interface WebhookPayload {
  receiver: string;
  status: 'firing' | 'resolved';
  alerts: PayloadAlert[];
  groupLabels: Record<string, string>;
  commonLabels: Record<string, string>;
  commonAnnotations: Record<string, string>;
  externalURL: string;
  version: '4';
  groupKey: string;
  truncatedAlerts: number;
}

/** The data every integration renders from: one group's alerts at one flush. */
export interface NotificationData {
  receiver: string;
  groupKey: string;
  groupLabels: Record<string, string>;
  alerts: PayloadAlert[];
  externalURL: string;
}

function common(maps: Array<Record<string, string>>): Record<string, string> {
  if (maps.length === 0) return {};
  const first = maps[0] as Record<string, string>;
  const out: Record<string, string> = {};
  for (const k of Object.keys(first).sort()) if (maps.every((m) => m[k] === first[k])) out[k] = first[k] as string;
  return out;
}

/** Labels (or annotations) shared by every alert, as Alertmanager's `commonLabels`. */
export function commonOf(alerts: PayloadAlert[], field: 'labels' | 'annotations'): Record<string, string> {
  return common(alerts.map((a) => a[field]));
}

/** `firing` when any alert fires, else `resolved`. */
export function groupStatus(alerts: PayloadAlert[]): 'firing' | 'resolved' {
  return alerts.some((a) => a.status === 'firing') ? 'firing' : 'resolved';
}

/**
 * Builds Alertmanager's webhook payload. `commonLabels`/`commonAnnotations` and `status` are
 * computed over all alerts; with `maxAlerts` > 0 only the first `maxAlerts` are included and
 * the rest counted in `truncatedAlerts`, as Alertmanager does.
 */
export function webhookPayload(d: NotificationData, maxAlerts: number): WebhookPayload {
  const truncated = maxAlerts > 0 && d.alerts.length > maxAlerts ? d.alerts.length - maxAlerts : 0;
  return {
    receiver: d.receiver,
    status: groupStatus(d.alerts),
    alerts: truncated > 0 ? d.alerts.slice(0, maxAlerts) : d.alerts,
    groupLabels: d.groupLabels,
    commonLabels: commonOf(d.alerts, 'labels'),
    commonAnnotations: commonOf(d.alerts, 'annotations'),
    externalURL: d.externalURL,
    version: '4',
    groupKey: d.groupKey,
    truncatedAlerts: truncated,
  };
}

/** Label names in Alertmanager's `SortedPairs` order: `alertname` first, then the rest sorted. */
function sortedNames(m: Record<string, string>): string[] {
  const names = Object.keys(m)
    .filter((k) => k !== 'alertname')
    .sort();
  return 'alertname' in m ? ['alertname', ...names] : names;
}

function sortedValues(m: Record<string, string>): string[] {
  return sortedNames(m).map((k) => m[k] as string);
}

/**
 * The email subject in Alertmanager's default form (its `__subject` template, checked against a
 * real Alertmanager), `[FIRING:2] HighLatency api (critical)`: the status (with the firing
 * count), the group labels' values, then in parentheses the values of the common labels that
 * are not group labels; values in `alertname`-first, then name order.
 */
export function emailSubject(d: NotificationData): string {
  const status = groupStatus(d.alerts);
  const firing = d.alerts.filter((a) => a.status === 'firing').length;
  const head = status === 'firing' ? `[FIRING:${firing}]` : '[RESOLVED]';
  const cl = commonOf(d.alerts, 'labels');
  for (const k of Object.keys(d.groupLabels)) delete cl[k];
  const extra = sortedValues(cl);
  const parts = [head, ...sortedValues(d.groupLabels)];
  if (extra.length > 0) parts.push(`(${extra.join(' ')})`);
  return parts.join(' ');
}

function pairs(m: Record<string, string>): Array<[string, string]> {
  return sortedNames(m).map((k) => [k, m[k] as string]);
}

/** A payload time as people read it in an email: `2026-12-06 15:40:00 UTC`. */
function readableTime(t: string): string {
  const ms = Date.parse(t);
  return Number.isNaN(ms) ? t : `${new Date(ms).toISOString().slice(0, 19).replace('T', ' ')} UTC`;
}

function alertName(a: PayloadAlert): string {
  return a.labels.alertname ?? '(no alertname)';
}

/** The plain-text email body: a summary line, then each alert's name, state, times, labels and annotations. */
export function emailText(d: NotificationData): string {
  const firing = d.alerts.filter((a) => a.status === 'firing');
  const resolved = d.alerts.filter((a) => a.status === 'resolved');
  const lines: string[] = [];
  lines.push(`${firing.length} firing, ${resolved.length} resolved alert(s) for ${pairs(d.groupLabels).map(([k, v]) => `${k}=${v}`).join(', ') || 'all alerts'} (receiver ${d.receiver}).`);
  const section = (title: string, list: PayloadAlert[]): void => {
    if (list.length === 0) return;
    lines.push('', `== ${title} ==`);
    for (const a of list) {
      const summary = a.annotations.summary;
      lines.push('', `* ${alertName(a)} [${a.status.toUpperCase()}]${summary === undefined ? '' : `: ${summary}`}`);
      lines.push(`  Started: ${readableTime(a.startsAt)}`);
      if (a.status === 'resolved') lines.push(`  Resolved: ${readableTime(a.endsAt)}`);
      lines.push('  Labels:');
      for (const [k, v] of pairs(a.labels)) lines.push(`    ${k} = ${v}`);
      const ann = pairs(a.annotations);
      if (ann.length > 0) {
        lines.push('  Annotations:');
        for (const [k, v] of ann) lines.push(`    ${k} = ${v}`);
      }
      if (a.generatorURL !== '') lines.push(`  Source: ${a.generatorURL}`);
    }
  };
  section('Firing', firing);
  section('Resolved', resolved);
  if (d.externalURL !== '') lines.push('', `Sent by Beacon (${d.externalURL})`);
  else lines.push('', 'Sent by Beacon');
  return `${lines.join('\n')}\n`;
}

/** Escapes text for HTML element content and attribute values. */
export function escapeHtml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');
}

/** The HTML email body: the same content as {@link emailText}, one table per alert, everything escaped. */
export function emailHtml(d: NotificationData): string {
  const e = escapeHtml;
  const firing = d.alerts.filter((a) => a.status === 'firing');
  const resolved = d.alerts.filter((a) => a.status === 'resolved');
  const color = firing.length > 0 ? '#c0392b' : '#27ae60';
  const out: string[] = [];
  out.push('<!DOCTYPE html><html><head><meta charset="utf-8"><title>', e(emailSubject(d)), '</title></head>');
  out.push('<body style="font-family:Helvetica,Arial,sans-serif;font-size:14px;color:#222">');
  out.push(`<h2 style="color:${color};margin:0 0 8px 0">${firing.length} firing, ${resolved.length} resolved</h2>`);
  const gl = pairs(d.groupLabels);
  out.push(`<p>Group: ${gl.length === 0 ? 'all alerts' : gl.map(([k, v]) => `<code>${e(k)}="${e(v)}"</code>`).join(' ')} &middot; receiver <code>${e(d.receiver)}</code></p>`);
  const section = (title: string, list: PayloadAlert[], c: string): void => {
    if (list.length === 0) return;
    out.push(`<h3 style="color:${c}">${e(title)}</h3>`);
    for (const a of list) {
      out.push('<table style="border-collapse:collapse;margin:0 0 16px 0;border:1px solid #ddd">');
      out.push(`<tr><th colspan="2" style="text-align:left;background:${c};color:#fff;padding:4px 8px">${e(alertName(a))} &mdash; ${e(a.status.toUpperCase())}</th></tr>`);
      if (a.annotations.summary !== undefined) out.push(`<tr><td colspan="2" style="padding:6px 8px;font-size:15px">${e(a.annotations.summary)}</td></tr>`);
      const row = (k: string, v: string): void => {
        out.push(`<tr><td style="padding:2px 8px;color:#666;vertical-align:top">${e(k)}</td><td style="padding:2px 8px">${e(v)}</td></tr>`);
      };
      row('Started', readableTime(a.startsAt));
      if (a.status === 'resolved') row('Resolved', readableTime(a.endsAt));
      out.push('<tr><td colspan="2" style="padding:4px 8px;font-weight:bold">Labels</td></tr>');
      for (const [k, v] of pairs(a.labels)) row(k, v);
      const ann = pairs(a.annotations);
      if (ann.length > 0) {
        out.push('<tr><td colspan="2" style="padding:4px 8px;font-weight:bold">Annotations</td></tr>');
        for (const [k, v] of ann) row(k, v);
      }
      if (a.generatorURL !== '') out.push(`<tr><td style="padding:2px 8px;color:#666">Source</td><td style="padding:2px 8px"><a href="${e(a.generatorURL)}">${e(a.generatorURL)}</a></td></tr>`);
      out.push('</table>');
    }
  };
  section('Firing', firing, '#c0392b');
  section('Resolved', resolved, '#27ae60');
  out.push(`<p style="color:#888;font-size:12px">Sent by Beacon${d.externalURL === '' ? '' : ` (<a href="${e(d.externalURL)}">${e(d.externalURL)}</a>)`}</p>`);
  out.push('</body></html>');
  return out.join('');
}
