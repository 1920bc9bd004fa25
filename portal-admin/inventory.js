// Shared parts of the infrastructure pages (topology, servers, tasks, enrollment tokens):
// state badges, capacity meters, units, relative times, a live poller and the clipboard.
import { h, icon, toast, setText } from '/common/ui.js';
import { formatNumber, lang, has } from '/common/i18n.js';

// ---- badges ------------------------------------------------------------------------------

const SERVER_STATE = {
  online: 'badge-success',
  offline: 'badge-danger',
  enrolling: 'badge-neutral',
};

export function serverStateBadge(state) {
  const known = state in SERVER_STATE;
  return h('span', {
    class: ['badge', 'badge-dot', known ? SERVER_STATE[state] : 'badge-neutral'],
    'data-state': state,
    i18n: known ? 'server.state.' + state : undefined,
    text: known ? undefined : state,
  });
}

export function maintenanceBadge() {
  return h('span', { class: 'badge badge-warning badge-maint', 'data-role': 'maintenance-badge' },
    icon('wrench'), h('span', { i18n: 'server.maintenance' }));
}

// State and, when set, the maintenance flag.
export function serverBadges(s) {
  return h('span', { class: 'badges' }, serverStateBadge(s.state), s.maintenance ? maintenanceBadge() : null);
}

// A server's health as one word for colouring: ok, bad, idle or maint.
export function serverHealth(s) {
  if (s.state === 'offline') return 'bad';
  if (s.maintenance) return 'maint';
  if (s.state === 'online') return 'ok';
  return 'idle';
}

export function statusDot(health) {
  return h('span', { class: ['status-dot', 'status-' + health], 'aria-hidden': 'true' });
}

const DESKTOP_STATE = {
  running: 'badge-success',
  paused: 'badge-warning',
  pmsuspended: 'badge-warning',
  blocked: 'badge-warning',
  crashed: 'badge-danger',
  shutoff: 'badge-neutral',
  shutdown: 'badge-neutral',
  nostate: 'badge-neutral',
};

export function desktopStateBadge(state) {
  const known = state in DESKTOP_STATE;
  return h('span', {
    class: ['badge', 'badge-dot', known ? DESKTOP_STATE[state] : 'badge-neutral'],
    'data-state': state,
    i18n: known ? 'desktop.state.' + state : undefined,
    text: known ? undefined : state,
  });
}

const TASK_STATE = {
  queued: 'badge-neutral',
  sent: 'badge-info',
  running: 'badge-info',
  succeeded: 'badge-success',
  failed: 'badge-danger',
};

export function taskFinished(t) {
  return t.state === 'succeeded' || t.state === 'failed';
}

export function taskStateBadge(state) {
  const known = state in TASK_STATE;
  const live = state === 'queued' || state === 'sent' || state === 'running';
  return h('span', {
    class: ['badge', known ? TASK_STATE[state] : 'badge-neutral', live ? 'badge-live' : 'badge-dot'],
    'data-task-state': state,
    i18n: known ? 'task.state.' + state : undefined,
    text: known ? undefined : state,
  });
}

export const TASK_TYPES = ['domain.start', 'domain.shutdown', 'domain.reboot', 'domain.destroy', 'inventory.refresh',
  'image.fetch', 'desktop.create', 'desktop.refresh', 'desktop.delete', 'desktop.set_spec', 'desktop.capture'];

export function taskTypeLabel(type) {
  return TASK_TYPES.includes(type) ? h('span', { i18n: 'task.type.' + type }) : h('span', { text: type });
}

// "1 module" / "3 modules": key.one is used for one when the language has it.
export function countKey(key, n) {
  return n === 1 && has(key + '.one') ? key + '.one' : key;
}

export function count(key, n, cls) {
  return h('span', { class: cls || null, i18n: countKey(key, n), i18nArgs: { n: formatNumber(n) } });
}

// ---- units -------------------------------------------------------------------------------

function fixed(n, digits) {
  return new Intl.NumberFormat(lang() === 'ko' ? 'ko-KR' : 'en-US', { maximumFractionDigits: digits }).format(n);
}

export function fmtMiB(mib) {
  const v = Number(mib) || 0;
  if (v >= 1024 * 1024) return fixed(v / (1024 * 1024), 1) + ' TiB';
  if (v >= 1024) return fixed(v / 1024, 1) + ' GiB';
  return fixed(v, 0) + ' MiB';
}

export function fmtGiB(gib) {
  const v = Number(gib) || 0;
  return v >= 1024 ? fixed(v / 1024, 1) + ' TiB' : fixed(v, 0) + ' GiB';
}

export function fmtMbps(mbps) {
  const v = Number(mbps) || 0;
  return v >= 1000 ? fixed(v / 1000, 1) + ' Gbps' : fixed(v, 0) + ' Mbps';
}

export function fmtRate(bytesPerSecond) {
  const v = Number(bytesPerSecond) || 0;
  if (v >= 1e9) return fixed(v / 1e9, 1) + ' GB/s';
  if (v >= 1e6) return fixed(v / 1e6, 1) + ' MB/s';
  if (v >= 1e3) return fixed(v / 1e3, 1) + ' kB/s';
  return fixed(v, 0) + ' B/s';
}

export function pct(used, total) {
  if (!total) return 0;
  return Math.max(0, Math.min(100, Math.round((used / total) * 100)));
}

// ---- time ----------------------------------------------------------------------------------

// "12 s ago" and the like, as an element that follows the language; absolute time as a title.
export function ago(iso) {
  if (!iso) return h('span', { class: 'muted', i18n: 'common.never' });
  const d = new Date(iso);
  if (isNaN(d.getTime())) return h('span', { text: String(iso) });
  const s = Math.max(0, Math.round((Date.now() - d.getTime()) / 1000));
  let key;
  let n;
  if (s < 5) key = 'time.just_now';
  else if (s < 60) [key, n] = ['time.seconds_ago', s];
  else if (s < 3600) [key, n] = ['time.minutes_ago', Math.floor(s / 60)];
  else if (s < 86400) [key, n] = ['time.hours_ago', Math.floor(s / 3600)];
  else return h('span', { date: iso });
  return h('time', { datetime: iso, title: d.toLocaleString(), i18n: key, i18nArgs: n === undefined ? undefined : { n: formatNumber(n) } });
}

export function clockTime(d) {
  const p = (x) => String(x).padStart(2, '0');
  return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

// ---- capacity ------------------------------------------------------------------------------

// The capacity object names three limits; the smallest binds. Servers answer `by_server`,
// the topology's modules `by_servers`: both are read.
export function capacityLimits(cap) {
  const c = cap || {};
  const limits = [
    ['servers', c.by_servers !== undefined ? c.by_servers : c.by_server],
    ['cores', c.by_cores],
    ['nics', c.by_nics],
  ].filter(([, v]) => v !== undefined && v !== null);
  let binding = null;
  for (const [k, v] of limits) if (binding === null || v < binding[1]) binding = [k, v];
  return { limits, binding: binding ? binding[0] : null, desktops: c.desktops || 0 };
}

/*
 * A meter of desktops used against capacity: "12 / 48 desktops  25%", the bar, and (unless
 * opts.noLimit) which limit binds. opts.compact leaves the words off.
 */
export function capacityMeter(used, cap, opts = {}) {
  const info = capacityLimits(cap);
  const total = info.desktops;
  const p = pct(used, total);
  const over = total > 0 && used > total;
  const meter = h('meter', {
    class: 'cap-meter', min: '0', max: String(Math.max(total, 1)), value: String(Math.min(used, Math.max(total, 1))),
    low: String(Math.max(total, 1) * 0.7), high: String(Math.max(total, 1) * 0.9), optimum: '0',
    i18nLabel: 'cap.label', i18nArgs: { used: formatNumber(used), total: formatNumber(total) },
  });
  const head = h('div', { class: 'cap-head' },
    h('span', { class: 'cap-value' },
      h('strong', { text: formatNumber(used) }), h('span', { class: 'cap-of', text: ' / ' + formatNumber(total) }),
      opts.compact ? null : h('span', { class: 'cap-unit', i18n: 'cap.desktops' })),
    h('span', { class: ['cap-pct', over ? 'is-over' : null], text: total ? p + '%' : '—' }));
  let limit = null;
  if (!opts.noLimit && info.binding) {
    const args = {};
    for (const [k, v] of info.limits) args[k] = formatNumber(v);
    limit = h('div', { class: 'cap-limit', 'data-binding': info.binding },
      h('span', {
        class: 'cap-limit-label', i18n: total ? 'cap.bound.' + info.binding : 'cap.none',
        i18nTitle: info.limits.length === 3 ? 'cap.limits_title' : undefined, i18nArgs: args,
      }),
      opts.limits ? limitList(info) : null);
  } else if (!opts.noLimit && !total) {
    limit = h('div', { class: 'cap-limit' }, h('span', { class: 'cap-limit-label', i18n: 'cap.none' }));
  }
  return h('div', { class: ['cap', opts.compact ? 'cap-compact' : null], 'data-role': 'capacity', 'data-used': String(used), 'data-capacity': String(total) },
    head, meter, limit);
}

// "servers 200 · cores 96 · NICs 100", the binding one marked.
export function limitList(info) {
  return h('span', { class: 'cap-limits' }, info.limits.map(([k, v]) =>
    h('span', { class: ['cap-lim', k === info.binding ? 'is-binding' : null], 'data-limit': k },
      h('span', { i18n: 'cap.limit.' + k }), ' ', h('strong', { text: formatNumber(v) }))));
}

// A small horizontal meter for a percentage (CPU, memory).
export function loadMeter(value, max, labelKey, args) {
  const m = Math.max(Number(max) || 0, 1);
  return h('meter', {
    class: 'load-meter', min: '0', max: String(m), value: String(Math.min(Number(value) || 0, m)),
    low: String(m * 0.7), high: String(m * 0.9), optimum: '0', i18nLabel: labelKey, i18nArgs: args,
  });
}

// ---- live refresh ------------------------------------------------------------------------

/*
 * Calls fn() now and then again `interval` ms after each call has finished (interval may be
 * a function, asked each time), so calls never overlap. Pauses while the browser tab is
 * hidden and catches up when it is shown again; stops for good with stop() or once el has
 * left the document (the page was replaced).
 */
export class Poller {
  constructor(el, fn, interval) {
    this.el = el;
    this.fn = fn;
    this.interval = interval;
    this.timer = null;
    this.busy = false;
    this.again = false;
    this.stopped = false;
    this.waiting = false;
    this.onVisible = () => {
      if (!document.hidden && this.waiting) this.now();
    };
    document.addEventListener('visibilitychange', this.onVisible);
  }

  // Runs now (after the call in flight, if any).
  now() {
    clearTimeout(this.timer);
    this.timer = null;
    return this.tick();
  }

  async tick() {
    if (this.stopped) return;
    if (!this.el.isConnected) {
      this.stop();
      return;
    }
    if (document.hidden) {
      this.waiting = true;
      return;
    }
    this.waiting = false;
    if (this.busy) {
      this.again = true;
      return;
    }
    this.busy = true;
    try {
      await this.fn();
    } catch (e) {
      // the page shows its own errors; the next round tries again
    } finally {
      this.busy = false;
    }
    if (this.again) {
      this.again = false;
      this.tick();
      return;
    }
    this.schedule();
  }

  schedule() {
    if (this.stopped) return;
    clearTimeout(this.timer);
    const ms = typeof this.interval === 'function' ? this.interval() : this.interval;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.tick();
    }, ms);
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    document.removeEventListener('visibilitychange', this.onVisible);
  }
}

// "● Live · updated 12:00:03": call mark() after every good refresh.
export function liveBadge() {
  const text = h('span', { i18n: 'live.waiting' });
  const el = h('span', { class: 'live', 'data-role': 'live' }, h('span', { class: 'live-dot', 'aria-hidden': 'true' }), text);
  return {
    el,
    mark() {
      setText(text, 'live.updated', { time: clockTime(new Date()) });
      el.classList.remove('is-stale');
    },
    stale() {
      el.classList.add('is-stale');
    },
  };
}

// ---- clipboard -----------------------------------------------------------------------------

export async function copyText(text, doneKey) {
  let ok = false;
  try {
    if (navigator.clipboard && window.isSecureContext) {
      await navigator.clipboard.writeText(text);
      ok = true;
    }
  } catch (e) {
    ok = false;
  }
  if (!ok) {
    // older browsers: a hidden textarea and execCommand
    const ta = h('textarea', { class: 'visually-hidden', readonly: true });
    ta.value = text;
    document.body.append(ta);
    ta.select();
    try {
      ok = document.execCommand('copy');
    } catch (e) {
      ok = false;
    }
    ta.remove();
  }
  toast(ok ? doneKey || 'common.copied' : 'common.copy_failed', null, ok ? 'success' : 'error');
  return ok;
}

// The hash route's query: #/servers?module=3 -> URLSearchParams.
export function hashQuery() {
  const i = window.location.hash.indexOf('?');
  return new URLSearchParams(i < 0 ? '' : window.location.hash.slice(i + 1));
}

// Rewrites the hash's query without a hashchange (so the page is not rebuilt).
export function setHashQuery(params) {
  const base = window.location.hash.split('?')[0] || '#/';
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== '' && v !== null && v !== undefined) q.set(k, v);
  const s = q.toString();
  window.history.replaceState(null, '', base + (s ? '?' + s : ''));
}
