// The user portal: sign-in, then the person's desktops.
import { startPortal } from '/common/app.js';
import { h, icon } from '/common/ui.js';

function mount(main, ctx) {
  const name = ctx.user.display_name || ctx.user.username;
  main.append(h('div', { class: 'page', 'data-page': 'desktops' },
    h('div', { class: 'page-head' },
      h('div', null,
        h('p', { class: 'greeting', i18n: 'user.greeting', i18nArgs: { name } }),
        h('h1', { class: 'page-title', i18n: 'user.desktops.title' }),
        h('p', { class: 'page-subtitle', i18n: 'user.desktops.subtitle' }))),
    // The broker API that lists a person's desktops does not exist yet: say so honestly.
    h('section', { class: 'card', 'aria-labelledby': 'desktops-empty-title', 'data-role': 'desktops' },
      h('div', { class: 'empty' },
        h('span', { class: 'empty-icon' }, icon('monitor')),
        h('h2', { class: 'empty-title', id: 'desktops-empty-title', i18n: 'user.desktops.empty' }),
        h('p', { class: 'empty-text', i18n: 'user.desktops.empty_hint' })))));
}

startPortal({ kind: 'user', mount });
