// The admin portal: sign-in, then the infrastructure (Topology, Servers, Tasks, Enrollment
// tokens), desktops (Pools, Sessions, Images, Specs) and access (Users, Groups, Audit log)
// pages, on hash routes such as #/servers/12 or #/pools/3.
// A page's render() may return a function that stops what it started (live refreshes); it
// is called when the page is left.
import './admin-i18n.js';
import './mfa-i18n.js';
import { startPortal } from '/common/app.js';
import { h, icon, clear } from '/common/ui.js';
import { topologyPage } from './topology.js';
import { serversRoute } from './servers.js';
import { tasksPage } from './tasks.js';
import { tokensPage } from './tokens.js';
import { usersPage } from './users.js';
import { groupsPage } from './groups.js';
import { auditPage } from './audit.js';
import { poolsRoute } from './pools.js';
import { imagesRoute } from './images.js';
import { specsPage } from './specs.js';
import { sessionsPage } from './sessions.js';
import { automationPage } from './automation.js';
import { oidcPage } from './oidc.js';
import { directoriesPage } from './directories.js';

const PAGES = {
  topology: { key: 'nav.topology', icon: 'topology', render: topologyPage },
  servers: { key: 'nav.servers', icon: 'server', render: serversRoute },
  tasks: { key: 'nav.tasks', icon: 'tasks', render: tasksPage },
  tokens: { key: 'nav.tokens', icon: 'ticket', render: tokensPage },
  pools: { key: 'nav.pools', icon: 'monitor', render: poolsRoute },
  sessions: { key: 'nav.sessions', icon: 'activity', render: sessionsPage },
  automation: { key: 'nav.automation', icon: 'activity', render: automationPage },
  images: { key: 'nav.images', icon: 'layers', render: imagesRoute },
  specs: { key: 'nav.specs', icon: 'cpu', render: specsPage },
  users: { key: 'nav.users', icon: 'users', render: usersPage },
  groups: { key: 'nav.groups', icon: 'group', render: groupsPage },
  audit: { key: 'nav.audit', icon: 'audit', render: auditPage },
  oidc: { key: 'nav.oidc', icon: 'key', render: oidcPage },
  directories: { key: 'nav.directories', icon: 'shield', render: directoriesPage },
};
const SECTIONS = [
  ['nav.section.infra', ['topology', 'servers', 'tasks', 'tokens', 'automation']],
  ['nav.section.desktops', ['pools', 'sessions', 'images', 'specs']],
  ['nav.section.access', ['users', 'groups', 'directories', 'oidc', 'audit']],
];
const DEFAULT = 'topology';

// #/servers/12?x=1 -> {name: 'servers', rest: '12'}
function route() {
  const m = /^#\/?([a-z]+)(?:\/([^?]*))?/.exec(window.location.hash || '');
  if (m && PAGES[m[1]]) return { name: m[1], rest: m[2] || '' };
  return { name: DEFAULT, rest: '' };
}

let hashListener = null;
let leave = null;

function stopPage() {
  if (typeof leave === 'function') {
    try {
      leave();
    } catch (e) {
      // a page that fails to clean up must not keep the next one from showing
    }
  }
  leave = null;
}

function mount(main, ctx) {
  if (hashListener) window.removeEventListener('hashchange', hashListener);
  hashListener = null;
  stopPage();
  if (ctx.user.role !== 'admin') {
    forbidden(main, ctx);
    return;
  }
  const links = {};
  const nav = h('nav', { class: 'side-nav', i18nLabel: 'nav.label' },
    h('div', { class: 'side-nav-inner' }, SECTIONS.map(([key, names]) => [
      h('p', { class: 'side-caption', 'aria-hidden': 'true', i18n: key }),
      h('ul', null, names.map((name) =>
        h('li', null, links[name] = h('a', { href: '#/' + name, class: 'side-link', 'data-nav': name },
          icon(PAGES[name].icon), h('span', { i18n: PAGES[name].key }))))),
    ])));
  const content = h('div', { class: 'admin-content' });
  main.append(h('div', { class: 'admin-layout' }, nav, content));

  const show = () => {
    const { name, rest } = route();
    for (const [n, a] of Object.entries(links)) {
      if (n === name) a.setAttribute('aria-current', 'page');
      else a.removeAttribute('aria-current');
    }
    stopPage();
    clear(content);
    const page = h('div', { class: 'page', 'data-page': name + (rest ? '-detail' : '') });
    content.append(page);
    leave = PAGES[name].render(page, ctx, rest);
    window.scrollTo(0, 0);
  };
  hashListener = show;
  window.addEventListener('hashchange', hashListener);
  show();
}

function forbidden(main, ctx) {
  const name = ctx.user.display_name || ctx.user.username;
  main.append(h('div', { class: 'notice-page', 'data-page': 'forbidden' },
    h('div', { class: 'card notice-card' },
      h('span', { class: 'empty-icon' }, icon('lock')),
      h('h1', { class: 'notice-title', i18n: 'forbidden.title' }),
      h('p', { class: 'notice-text', i18n: 'forbidden.text', i18nArgs: { name } }),
      h('div', { class: 'notice-actions' },
        h('a', { class: 'btn btn-primary', href: '/' }, icon('monitor'), h('span', { i18n: 'forbidden.to_user' })),
        h('button', { type: 'button', class: 'btn btn-secondary', 'data-action': 'logout-forbidden', onclick: () => ctx.logout() },
          icon('logout'), h('span', { i18n: 'frame.logout' }))))));
}

startPortal({ kind: 'admin', mount });
