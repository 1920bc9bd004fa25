// Automation > Recovery tab (docs/automation.md, "Failure recovery"): the module's recovery
// settings, its servers with their recovery state (suspect, fencing, fenced, unfenceable), each
// server's BMC (the password is write-only), and the admin's two decisions: "confirm it is off"
// (its desktops are then recovered) and "clear" (a repaired server back to normal).
// Exported for portal-admin/automation.js: recoveryTab(moduleId, { can }) -> HTMLElement.
import * as api from '/common/api.js';
import { h, icon, clear, field, dialog, confirmDialog, toast, button, alertBox, busy } from '/common/ui.js';
import { dataTable } from './lists.js';
import { addMessages } from '/common/i18n.js';

const REFRESH_MS = 5000;
const STATE_BADGE = {
  none: 'badge-neutral', suspect: 'badge-warning', fencing: 'badge-warning',
  fenced: 'badge-danger', unfenceable: 'badge-danger',
};

// can: a function (role or action name -> bool) or an object ({admin: true}); admin may change.
function mayChange(can) {
  if (typeof can === 'function') return !!(can('admin') || can('recovery.change'));
  return !!(can && (can.admin || can.edit || can.change));
}

export function recoveryTab(moduleId, { can } = {}) {
  const admin = mayChange(can);
  const base = '/modules/' + encodeURIComponent(moduleId) + '/automation/recovery';
  const alert = alertBox();
  const form = h('form', { class: 'card form-card', 'data-role': 'recovery-settings', novalidate: true });
  const table = dataTable([
    { key: 'recovery.col.server', class: 'col-name', noLabel: true },
    { key: 'recovery.col.state', class: 'col-state' },
    { key: 'recovery.col.reason', class: 'col-desc' },
    { key: 'recovery.col.bmc', class: 'col-desc' },
    { key: 'recovery.col.desktops', class: 'col-num' },
    { key: 'list.actions', class: 'col-actions', noLabel: true },
  ], 'recovery-servers');
  const root = h('div', { class: 'automation-recovery', 'data-role': 'recovery-tab' },
    alert.el,
    h('section', null, h('h2', { class: 'section-title', i18n: 'recovery.settings' }), form),
    h('section', { class: 'card list-card' },
      h('h2', { class: 'section-title', i18n: 'recovery.servers' }),
      h('p', { class: 'muted', i18n: 'recovery.servers_hint' }),
      table.el));

  let timer = null;
  let current = null;

  async function load(withForm) {
    let s;
    try {
      s = await api.get(base);
    } catch (e) {
      alert.showError(e);
      return;
    }
    alert.hide();
    current = s;
    if (withForm) renderForm(s);
    renderServers(s.servers || []);
  }

  function renderForm(s) {
    const num = (name, v, min, max) => h('input', { type: 'number', name, min: String(min), max: String(max), value: String(v), disabled: !admin });
    const check = (name, v) => h('input', { type: 'checkbox', name, checked: !!v, disabled: !admin });
    const fallback = h('select', { name: 'fence_fallback', disabled: !admin },
      ['admin', 'retry'].map((v) => h('option', { value: v, selected: s.fence_fallback === v, i18n: 'recovery.fallback.' + v })));
    const save = admin ? button('common.save', { type: 'submit', variant: 'primary', action: 'save-recovery' }) : null;
    clear(form).append(
      h('div', { class: 'form-grid' },
        h('label', { class: 'check' }, check('enabled', s.enabled), h('span', { i18n: 'recovery.field.enabled' })),
        h('label', { class: 'check' }, check('dry_run', s.dry_run), h('span', { i18n: 'recovery.field.dry_run' })),
        h('label', { class: 'check' }, check('shared_storage', s.shared_storage), h('span', { i18n: 'recovery.field.shared_storage' })),
        field('recovery.field.suspect_grace_s', num('suspect_grace_s', s.suspect_grace_s, 1, 86400), { hint: 'recovery.hint.suspect_grace_s' }),
        field('recovery.field.fence_timeout_s', num('fence_timeout_s', s.fence_timeout_s, 1, 3600), { hint: 'recovery.hint.fence_timeout_s' }),
        field('recovery.field.fence_fallback', fallback, { hint: 'recovery.hint.fence_fallback' }),
        field('recovery.field.fence_retry_s', num('fence_retry_s', s.fence_retry_s, 10, 86400)),
        field('recovery.field.batch', num('batch', s.batch, 1, 1000))),
      s.defaults ? h('p', { class: 'field-hint', i18n: 'recovery.defaults' }) : null,
      save ? h('div', { class: 'form-actions' }, save) : null);
    form.onsubmit = async (ev) => {
      ev.preventDefault();
      const f = form.elements;
      const body = {
        enabled: f.enabled.checked, dry_run: f.dry_run.checked, shared_storage: f.shared_storage.checked,
        suspect_grace_s: Number(f.suspect_grace_s.value), fence_timeout_s: Number(f.fence_timeout_s.value),
        fence_fallback: f.fence_fallback.value, fence_retry_s: Number(f.fence_retry_s.value), batch: Number(f.batch.value),
      };
      const done = busy(save, 'common.saving');
      try {
        const r = await api.put(base, body);
        renderForm(r);
        renderServers(r.servers || []);
        toast('recovery.saved');
      } catch (e) {
        alert.showError(e);
      } finally {
        done();
      }
    };
  }

  function renderServers(items) {
    table.setRows(items.map(row));
    if (!items.length) table.empty('recovery.no_servers', 'server');
  }

  function row(s) {
    const st = s.recovery_state;
    const acts = [];
    if (admin && ['none', 'suspect', 'fencing', 'unfenceable'].includes(st) && s.state !== 'online') {
      acts.push(h('button', { type: 'button', class: 'btn btn-danger btn-sm', 'data-action': 'confirm-fenced', onclick: () => confirmOff(s) },
        icon('power'), h('span', { i18n: st === 'unfenceable' || st === 'fencing' ? 'recovery.confirm' : 'recovery.mark_fenced' })));
    }
    if (admin && st !== 'none' && !(st === 'fenced' && s.state !== 'online')) {
      acts.push(h('button', { type: 'button', class: 'btn btn-secondary btn-sm', 'data-action': 'clear', onclick: () => clearServer(s) },
        icon('check'), h('span', { i18n: 'recovery.clear' })));
    }
    if (admin) {
      acts.push(h('button', { type: 'button', class: 'icon-btn', 'data-action': 'bmc', i18nLabel: 'recovery.bmc.edit', i18nTitle: 'recovery.bmc.edit', onclick: () => bmcDialog(s) }, icon('edit')));
    }
    const bmc = s.bmc && s.bmc.type !== 'none'
      ? h('span', { class: 'muted-strong', text: s.bmc.type + ' · ' + s.bmc.address })
      : h('span', { class: 'muted', i18n: 'recovery.bmc.none' });
    return table.row([
      h('div', { class: 'user-cell-text' },
        h('span', { class: 'user-cell-name', text: s.hostname }),
        h('span', { class: 'user-cell-sub', i18n: 'recovery.server_state.' + s.state })),
      h('span', { class: ['badge', STATE_BADGE[st] || 'badge-neutral'], 'data-role': 'recovery-state', i18n: 'recovery.state.' + st }),
      h('span', { class: 'muted-strong', text: s.recovery_reason || '' }),
      bmc,
      h('span', { class: 'num', text: String(s.desktops) + (s.desktops_recovering ? ' → ' + s.desktops_recovering : '') }),
      h('div', { class: 'row-actions' }, acts),
    ], { 'data-server-id': String(s.id), 'data-recovery-state': st });
  }

  async function confirmOff(s) {
    const note = h('input', { type: 'text', name: 'note', maxlength: '255', autocomplete: 'off' });
    dialog({
      name: 'confirm-fenced', title: 'recovery.confirm.title', titleArgs: { name: s.hostname },
      intro: 'recovery.confirm.text', introArgs: { name: s.hostname }, submitKey: 'recovery.confirm.submit', danger: true,
      body: [field('recovery.confirm.note', note, { optional: true })],
      onSubmit: async () => {
        await api.post('/servers/' + s.id + '/fence/confirm', { confirm: true, note: note.value });
        toast('recovery.confirmed', { name: s.hostname });
        load(false);
        return true;
      },
    });
  }

  async function clearServer(s) {
    const ok = await confirmDialog({
      title: 'recovery.clear.title', titleArgs: { name: s.hostname }, text: 'recovery.clear.text', textArgs: { name: s.hostname },
      confirmKey: 'recovery.clear',
      action: () => api.post('/servers/' + s.id + '/recovery/clear'),
    });
    if (ok) {
      toast('recovery.cleared', { name: s.hostname });
      load(false);
    }
  }

  function bmcDialog(s) {
    const b = s.bmc || { type: 'none', address: '', user: '', password_set: false };
    const type = h('select', { name: 'type' }, ['none', 'redfish', 'ipmi'].map((v) => h('option', { value: v, selected: b.type === v, i18n: 'recovery.bmc.type.' + v })));
    const address = h('input', { type: 'text', name: 'address', value: b.address || '', maxlength: '255', autocomplete: 'off', spellcheck: 'false', placeholder: 'https://10.0.0.5' });
    const user = h('input', { type: 'text', name: 'user', value: b.user || '', maxlength: '128', autocomplete: 'off' });
    const password = h('input', { type: 'password', name: 'password', maxlength: '256', autocomplete: 'new-password', i18nPlaceholder: b.password_set ? 'recovery.bmc.password_keep' : undefined });
    dialog({
      name: 'bmc', title: 'recovery.bmc.title', titleArgs: { name: s.hostname }, submitKey: 'common.save',
      body: [field('recovery.bmc.type', type), field('recovery.bmc.address', address, { hint: 'recovery.bmc.address_hint' }),
        field('recovery.bmc.user', user), field('recovery.bmc.password', password, { hint: 'recovery.bmc.password_hint' })],
      onSubmit: async () => {
        const body = { type: type.value };
        if (type.value !== 'none') {
          body.address = address.value.trim();
          body.user = user.value;
          if (password.value) body.password = password.value;
        }
        await api.put('/servers/' + s.id + '/bmc', body);
        password.value = '';
        toast('recovery.bmc.saved', { name: s.hostname });
        load(false);
        return true;
      },
    });
  }

  load(true);
  timer = setInterval(() => {
    if (!root.isConnected && current) {
      clearInterval(timer);
      return;
    }
    load(false);
  }, REFRESH_MS);
  return root;
}

addMessages({
  en: {
    'recovery.settings': 'Failure recovery',
    'recovery.servers': 'Servers',
    'recovery.servers_hint': 'A server that stops heartbeating is suspected, then powered off through its BMC. Only once that is confirmed — by the BMC or by you — are its desktops started elsewhere.',
    'recovery.col.server': 'Server',
    'recovery.col.state': 'Recovery',
    'recovery.col.reason': 'Why',
    'recovery.col.bmc': 'BMC',
    'recovery.col.desktops': 'Desktops',
    'recovery.field.enabled': 'Recover failed servers in this module',
    'recovery.field.dry_run': 'Dry run: only record what would be done',
    'recovery.field.shared_storage': 'Desktop disks are on shared storage (dedicated desktops can restart on another server)',
    'recovery.field.suspect_grace_s': 'Grace before fencing (s)',
    'recovery.hint.suspect_grace_s': 'Seconds since the last heartbeat; a server back within it is left alone.',
    'recovery.field.fence_timeout_s': 'Fencing timeout (s)',
    'recovery.hint.fence_timeout_s': 'How long the BMC has to confirm the server is off.',
    'recovery.field.fence_fallback': 'When fencing fails',
    'recovery.hint.fence_fallback': 'Its desktops are never started elsewhere until the server is confirmed off.',
    'recovery.fallback.admin': 'Wait for an administrator',
    'recovery.fallback.retry': 'Retry, and wait for an administrator',
    'recovery.field.fence_retry_s': 'Retry every (s)',
    'recovery.field.batch': 'Desktops per pass',
    'recovery.defaults': 'This module uses the default settings.',
    'recovery.saved': 'Recovery settings saved',
    'recovery.no_servers': 'No server in this module.',
    'recovery.state.none': 'Normal',
    'recovery.state.suspect': 'Suspect',
    'recovery.state.fencing': 'Fencing',
    'recovery.state.fenced': 'Fenced',
    'recovery.state.unfenceable': 'Cannot fence',
    'recovery.server_state.online': 'online',
    'recovery.server_state.offline': 'offline',
    'recovery.server_state.enrolling': 'enrolling',
    'recovery.confirm': 'Confirm it is off',
    'recovery.mark_fenced': 'Mark as off',
    'recovery.confirm.title': 'Is {name} powered off?',
    'recovery.confirm.text': 'Confirm only if {name} is really off (or unplugged). Its desktops will be started on other servers; if it were still running, they would run twice.',
    'recovery.confirm.note': 'Note for the log',
    'recovery.confirm.submit': 'It is off: recover its desktops',
    'recovery.confirmed': '{name} is fenced; its desktops are being recovered',
    'recovery.clear': 'Clear',
    'recovery.clear.title': 'Return {name} to normal?',
    'recovery.clear.text': '{name} leaves recovery and maintenance. Clear a fenced server only once it is repaired.',
    'recovery.cleared': '{name} is back to normal',
    'recovery.bmc.none': 'none',
    'recovery.bmc.edit': 'Edit BMC',
    'recovery.bmc.title': 'BMC of {name}',
    'recovery.bmc.type': 'Type',
    'recovery.bmc.type.none': 'None (an administrator confirms)',
    'recovery.bmc.type.redfish': 'Redfish',
    'recovery.bmc.type.ipmi': 'IPMI (ipmitool)',
    'recovery.bmc.address': 'Address',
    'recovery.bmc.address_hint': 'Redfish: https://host[:port]. IPMI: host or host:port.',
    'recovery.bmc.user': 'User',
    'recovery.bmc.password': 'Password',
    'recovery.bmc.password_hint': 'Stored encrypted and never shown again. Leave empty to keep it.',
    'recovery.bmc.password_keep': '(unchanged)',
    'recovery.bmc.saved': 'BMC of {name} saved',
  },
  ko: {
    'recovery.settings': '장애 복구',
    'recovery.servers': '서버',
    'recovery.servers_hint': '하트비트가 끊긴 서버는 의심 상태가 된 뒤 BMC로 전원이 차단됩니다. BMC나 관리자가 꺼진 것을 확인한 뒤에만 데스크톱을 다른 서버에서 시작합니다.',
    'recovery.col.server': '서버',
    'recovery.col.state': '복구 상태',
    'recovery.col.reason': '사유',
    'recovery.col.bmc': 'BMC',
    'recovery.col.desktops': '데스크톱',
    'recovery.field.enabled': '이 모듈에서 장애 서버 복구',
    'recovery.field.dry_run': '시험 실행: 할 일을 기록만 함',
    'recovery.field.shared_storage': '데스크톱 디스크가 공유 스토리지에 있음 (전용 데스크톱을 다른 서버에서 다시 시작)',
    'recovery.field.suspect_grace_s': '펜싱 전 유예 시간(초)',
    'recovery.hint.suspect_grace_s': '마지막 하트비트 이후 초. 그 안에 돌아온 서버는 그대로 둡니다.',
    'recovery.field.fence_timeout_s': '펜싱 제한 시간(초)',
    'recovery.hint.fence_timeout_s': 'BMC가 전원 차단을 확인해야 하는 시간입니다.',
    'recovery.field.fence_fallback': '펜싱 실패 시',
    'recovery.hint.fence_fallback': '서버가 꺼진 것이 확인될 때까지 데스크톱을 다른 곳에서 시작하지 않습니다.',
    'recovery.fallback.admin': '관리자 확인 대기',
    'recovery.fallback.retry': '재시도하며 관리자 확인 대기',
    'recovery.field.fence_retry_s': '재시도 간격(초)',
    'recovery.field.batch': '회당 데스크톱 수',
    'recovery.defaults': '이 모듈은 기본 설정을 사용합니다.',
    'recovery.saved': '복구 설정을 저장했습니다',
    'recovery.no_servers': '이 모듈에 서버가 없습니다.',
    'recovery.state.none': '정상',
    'recovery.state.suspect': '의심',
    'recovery.state.fencing': '펜싱 중',
    'recovery.state.fenced': '펜싱됨',
    'recovery.state.unfenceable': '펜싱 불가',
    'recovery.server_state.online': '온라인',
    'recovery.server_state.offline': '오프라인',
    'recovery.server_state.enrolling': '등록 중',
    'recovery.confirm': '꺼짐 확인',
    'recovery.mark_fenced': '꺼짐으로 표시',
    'recovery.confirm.title': '{name}의 전원이 꺼졌습니까?',
    'recovery.confirm.text': '{name}이(가) 실제로 꺼졌거나 분리된 경우에만 확인하십시오. 데스크톱이 다른 서버에서 시작되며, 서버가 아직 동작 중이면 두 번 실행됩니다.',
    'recovery.confirm.note': '기록용 메모',
    'recovery.confirm.submit': '꺼졌음: 데스크톱 복구',
    'recovery.confirmed': '{name}이(가) 펜싱되었습니다. 데스크톱을 복구하는 중입니다',
    'recovery.clear': '해제',
    'recovery.clear.title': '{name}을(를) 정상으로 되돌릴까요?',
    'recovery.clear.text': '{name}이(가) 복구 상태와 유지 보수에서 벗어납니다. 펜싱된 서버는 수리된 뒤에만 해제하십시오.',
    'recovery.cleared': '{name}이(가) 정상으로 돌아왔습니다',
    'recovery.bmc.none': '없음',
    'recovery.bmc.edit': 'BMC 편집',
    'recovery.bmc.title': '{name}의 BMC',
    'recovery.bmc.type': '종류',
    'recovery.bmc.type.none': '없음 (관리자가 확인)',
    'recovery.bmc.type.redfish': 'Redfish',
    'recovery.bmc.type.ipmi': 'IPMI (ipmitool)',
    'recovery.bmc.address': '주소',
    'recovery.bmc.address_hint': 'Redfish: https://호스트[:포트]. IPMI: 호스트 또는 호스트:포트.',
    'recovery.bmc.user': '사용자',
    'recovery.bmc.password': '비밀번호',
    'recovery.bmc.password_hint': '암호화되어 저장되며 다시 표시되지 않습니다. 비워 두면 유지됩니다.',
    'recovery.bmc.password_keep': '(변경 없음)',
    'recovery.bmc.saved': '{name}의 BMC를 저장했습니다',
  },
});
