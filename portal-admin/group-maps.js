// The group-mappings dialog that directories and sign-in providers share: the source's own group
// names (a directory group's DN, a value of a provider's groups claim) mapped to BIC groups; a
// list with Remove, and a row to add one. The text comes from the caller's keys under
// `keys` (title, add_title, group, add, added, removed, choose, current, empty, remove,
// error.missing), and the API is at `path` (GET, POST, DELETE path/{id}).
import * as api from '/common/api.js';
import { h, icon, clear, field, dialog, toast, button, alertBox, busy } from '/common/ui.js';

// opts: name (the dialog's), keys, title args, intro and introArgs, path, input (the name
// field: name, maxlength, placeholder, label, hint), label(m) (a mapping's name) and
// group(m) (its BIC group's name), errors (by error code, for the add), onClose.
export function groupMapsDialog(opts) {
  const k = (key) => opts.keys + '.' + key;
  const list = h('ul', { class: 'member-list', 'data-role': 'group-maps' });
  const alert = alertBox();
  const input = opts.input;
  const value = h('input', { type: 'text', name: input.name, maxlength: input.maxlength, autocomplete: 'off', spellcheck: 'false', placeholder: input.placeholder });
  const group = h('select', { name: 'group_id' });
  const add = button(k('add'), { variant: 'primary', icon: 'plus', action: 'add-map' });
  // not a <form>: the dialog's own form holds it
  const form = h('div', { class: 'members-add' },
    h('h3', { class: 'section-title', i18n: k('add_title') }),
    h('div', { class: 'field-row' }, field(input.label, value, { hint: input.hint }), field(k('group'), group)),
    add);
  dialog({
    name: opts.name, wide: true,
    title: k('title'), titleArgs: opts.titleArgs,
    intro: opts.intro, introArgs: opts.introArgs,
    body: [alert.el, form, h('div', { class: 'members-current' }, h('h3', { class: 'section-title', i18n: k('current') }), list)],
    onClose: opts.onClose,
  });

  async function load() {
    try {
      const [maps, groups] = await Promise.all([api.get(opts.path), api.get('/groups', { limit: 500 })]);
      // no group is chosen for the admin: a mapping to the first group in the list by accident is a grant
      clear(group).append(h('option', { value: '', i18n: k('choose') }),
        ...(groups.items || []).map((g) => h('option', { value: String(g.id), text: g.name })));
      clear(list);
      for (const m of maps.items || []) list.append(item(m));
      if (!(maps.items || []).length) list.append(h('li', { class: 'member-empty', i18n: k('empty') }));
    } catch (e) {
      alert.showError(e);
    }
  }

  function item(m) {
    const rm = h('button', { type: 'button', class: 'btn btn-danger-ghost btn-sm', 'data-action': 'remove-map' },
      icon('x'), h('span', { i18n: k('remove') }));
    rm.addEventListener('click', async () => {
      alert.hide();
      const done = busy(rm);
      try {
        await api.del(opts.path + '/' + m.id);
      } catch (e) {
        done();
        alert.showError(e);
        return;
      }
      toast(k('removed'));
      load();
    });
    return h('li', { class: 'member-item', 'data-map': opts.label(m) },
      h('span', { class: 'user-cell-text' },
        h('span', { class: 'user-cell-name', text: opts.label(m) }),
        h('span', { class: 'user-cell-sub' }, icon('arrowRight'), ' ', h('span', { text: opts.group(m) }))),
      rm);
  }

  value.addEventListener('keydown', (ev) => {
    if (ev.key !== 'Enter') return;
    ev.preventDefault();
    add.click();
  });
  add.addEventListener('click', async () => {
    alert.hide();
    if (!value.value.trim() || !group.value) {
      alert.show(k('error.missing'));
      value.focus();
      return;
    }
    const done = busy(add);
    try {
      await api.post(opts.path, { [input.name]: value.value.trim(), group_id: Number(group.value) });
    } catch (e) {
      alert.showError(e, opts.errors);
      return;
    } finally {
      done();
    }
    value.value = '';
    toast(k('added'));
    load();
  });
  load();
  value.focus();
}
