// The admin portal: sign-in, then Users, Groups and the Audit log (hash routes).
import './admin-i18n.js';
import { startPortal } from '/common/app.js';
import { h, icon, clear } from '/common/ui.js';
import { usersPage } from './users.js';
import { groupsPage } from './groups.js';
import { auditPage } from './audit.js';

const PAGES = {
  users: { key: 'nav.users', icon: 'users', render: usersPage },
  groups: { key: 'nav.groups', icon: 'group', render: groupsPage },
  audit: { key: 'nav.audit', icon: 'audit', render: auditPage },
};

function routeName() {
  const m = /^#\/?([a-z]+)/.exec(window.location.hash || '');
  return m && PAGES[m[1]] ? m[1] : 'users';
}

let hashListener = null;

function mount(main, ctx) {
  if (hashListener) window.removeEventListener('hashchange', hashListener);
  hashListener = null;
  if (ctx.user.role !== 'admin') {
    forbidden(main, ctx);
    return;
  }
  const links = {};
  const nav = h('nav', { class: 'side-nav', i18nLabel: 'nav.label' },
    h('ul', null, Object.entries(PAGES).map(([name, p]) =>
      h('li', null, links[name] = h('a', { href: '#/' + name, class: 'side-link', 'data-nav': name },
        icon(p.icon), h('span', { i18n: p.key }))))));
  const content = h('div', { class: 'admin-content' });
  main.append(h('div', { class: 'admin-layout' }, nav, content));

  const show = () => {
    const name = routeName();
    for (const [n, a] of Object.entries(links)) {
      if (n === name) a.setAttribute('aria-current', 'page');
      else a.removeAttribute('aria-current');
    }
    clear(content);
    const page = h('div', { class: 'page', 'data-page': name });
    content.append(page);
    PAGES[name].render(page, ctx);
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
