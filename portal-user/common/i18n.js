// Korean and English text of the BIC portals.
//
// Elements carry the key of their text instead of the text itself:
//   data-i18n="key"              textContent
//   data-i18n-placeholder="key"  placeholder attribute
//   data-i18n-label="key"        aria-label attribute
//   data-i18n-title="key"        title attribute
//   data-i18n-args='{"n":3}'     values for {n} in any of the above
//   data-date="ISO time"         textContent: that time in the current language
// so switching the language re-labels the page in place (applyI18n) and keeps what the
// person typed. Portals add their own keys with addMessages().

const STORAGE_KEY = 'bic.lang';
export const LANGS = ['ko', 'en'];

const messages = {
  en: {
    'product.name': 'BIC',
    'product.tagline': 'Virtual desktops for your whole organisation',
    'product.pitch': 'Sign in to reach your work desktop from any browser, on any device.',
    'product.pitch.admin': 'Manage who can sign in, their groups and every change, in one place.',
    'portal.user': 'Desktop portal',
    'portal.admin': 'Administration',
    'lang.switch': 'Language',
    'common.loading': 'Loading…',
    'common.cancel': 'Cancel',
    'common.close': 'Close',
    'common.save': 'Save',
    'common.saving': 'Saving…',
    'common.retry': 'Try again',
    'common.optional': 'optional',
    'common.never': 'Never',
    'role.admin': 'Administrator',
    'role.user': 'User',
    'role.operator': 'Operator',
    'login.title': 'Sign in',
    'login.subtitle.user': 'Use your BIC account to reach your desktops.',
    'login.subtitle.admin': 'Administrators sign in here to manage BIC.',
    'login.username': 'Username',
    'login.password': 'Password',
    'login.submit': 'Sign in',
    'login.submitting': 'Signing in…',
    'login.show_password': 'Show password',
    'login.hide_password': 'Hide password',
    'login.error.missing': 'Enter your username and password.',
    'login.error.bad_credentials': 'The username or password is incorrect.',
    'login.error.locked_seconds': 'This account is locked after too many failed sign-ins. Try again in {n} seconds.',
    'login.error.locked_minutes': 'This account is locked after too many failed sign-ins. Try again in {n} minutes.',
    'login.error.locked': 'This account is locked after too many failed sign-ins. Try again later.',
    'login.error.rate_limited_seconds': 'Too many sign-in attempts. Wait {n} seconds and try again.',
    'login.error.rate_limited': 'Too many sign-in attempts. Wait a moment and try again.',
    'login.error.csrf': 'The security check of this page failed. Reload the page and try again.',
    'login.error.disabled': 'This account is disabled. Contact your administrator.',
    'login.notice.password_changed': 'Password changed; sign in again.',
    'login.notice.session_expired': 'Your session has ended. Sign in again.',
    'login.notice.signed_out': 'You have signed out.',
    'login.footer': 'Contact your administrator if you cannot sign in.',
    'error.unavailable': 'The server is not available right now. Try again in a moment.',
    'error.network': 'Cannot reach the server. Check your connection and try again.',
    'error.forbidden': 'You are not allowed to do this.',
    'error.not_found': 'It no longer exists. Reload the list.',
    'error.conflict': 'That already exists or was changed by someone else.',
    'error.validation_failed': 'Some values are not valid: {detail}',
    'error.generic': 'Something went wrong: {detail}',
    'frame.signed_in_as': 'Signed in as',
    'frame.change_password': 'Change password',
    'frame.logout': 'Log out',
    'frame.logging_out': 'Logging out…',
    'frame.to_admin': 'Administration',
    'frame.to_user': 'Desktop portal',
    'frame.menu': 'Account menu',
    'password.title': 'Change password',
    'password.intro': 'After the change you are signed out everywhere and sign in again with the new password.',
    'password.current': 'Current password',
    'password.new': 'New password',
    'password.confirm': 'New password again',
    'password.hint': 'At least 12 characters.',
    'password.submit': 'Change password',
    'password.error.missing_current': 'Enter your current password.',
    'password.error.too_short': 'The new password must have at least 12 characters.',
    'password.error.mismatch': 'The two new passwords differ.',
    'password.error.same': 'The new password must differ from the current one.',
    'password.error.bad_current': 'The current password is incorrect.',
    'user.desktops.title': 'My desktops',
    'user.desktops.subtitle': 'Desktops assigned to you appear here.',
    'user.desktops.empty': 'No desktops are assigned to you yet',
    'user.desktops.empty_hint': 'When an administrator assigns a desktop to you, it appears here and you can connect to it from this page.',
    'user.greeting': 'Hello, {name}',
  },
  ko: {
    'product.name': 'BIC',
    'product.tagline': '조직 전체를 위한 가상 데스크톱',
    'product.pitch': '로그인하면 어떤 기기에서든 브라우저로 업무용 데스크톱에 접속할 수 있습니다.',
    'product.pitch.admin': '로그인할 수 있는 사람과 그룹, 모든 변경 기록을 한곳에서 관리합니다.',
    'portal.user': '데스크톱 포털',
    'portal.admin': '관리',
    'lang.switch': '언어',
    'common.loading': '불러오는 중…',
    'common.cancel': '취소',
    'common.close': '닫기',
    'common.save': '저장',
    'common.saving': '저장하는 중…',
    'common.retry': '다시 시도',
    'common.optional': '선택',
    'common.never': '없음',
    'role.admin': '관리자',
    'role.user': '사용자',
    'role.operator': '운영자',
    'login.title': '로그인',
    'login.subtitle.user': 'BIC 계정으로 로그인하여 데스크톱에 접속하세요.',
    'login.subtitle.admin': '관리자는 여기에서 로그인하여 BIC를 관리합니다.',
    'login.username': '사용자 이름',
    'login.password': '비밀번호',
    'login.submit': '로그인',
    'login.submitting': '로그인하는 중…',
    'login.show_password': '비밀번호 표시',
    'login.hide_password': '비밀번호 숨기기',
    'login.error.missing': '사용자 이름과 비밀번호를 입력하세요.',
    'login.error.bad_credentials': '사용자 이름 또는 비밀번호가 올바르지 않습니다.',
    'login.error.locked_seconds': '로그인 실패가 많아 계정이 잠겼습니다. {n}초 후에 다시 시도하세요.',
    'login.error.locked_minutes': '로그인 실패가 많아 계정이 잠겼습니다. {n}분 후에 다시 시도하세요.',
    'login.error.locked': '로그인 실패가 많아 계정이 잠겼습니다. 나중에 다시 시도하세요.',
    'login.error.rate_limited_seconds': '로그인 시도가 너무 많습니다. {n}초 후에 다시 시도하세요.',
    'login.error.rate_limited': '로그인 시도가 너무 많습니다. 잠시 후에 다시 시도하세요.',
    'login.error.csrf': '이 페이지의 보안 확인에 실패했습니다. 페이지를 새로 고친 후 다시 시도하세요.',
    'login.error.disabled': '비활성화된 계정입니다. 관리자에게 문의하세요.',
    'login.notice.password_changed': '비밀번호가 변경되었습니다. 다시 로그인하세요.',
    'login.notice.session_expired': '세션이 만료되었습니다. 다시 로그인하세요.',
    'login.notice.signed_out': '로그아웃되었습니다.',
    'login.footer': '로그인할 수 없으면 관리자에게 문의하세요.',
    'error.unavailable': '지금은 서버를 사용할 수 없습니다. 잠시 후에 다시 시도하세요.',
    'error.network': '서버에 연결할 수 없습니다. 네트워크 연결을 확인한 후 다시 시도하세요.',
    'error.forbidden': '이 작업을 할 권한이 없습니다.',
    'error.not_found': '더 이상 존재하지 않습니다. 목록을 새로 고치세요.',
    'error.conflict': '이미 존재하거나 다른 사람이 변경했습니다.',
    'error.validation_failed': '올바르지 않은 값이 있습니다: {detail}',
    'error.generic': '문제가 발생했습니다: {detail}',
    'frame.signed_in_as': '로그인 계정',
    'frame.change_password': '비밀번호 변경',
    'frame.logout': '로그아웃',
    'frame.logging_out': '로그아웃하는 중…',
    'frame.to_admin': '관리',
    'frame.to_user': '데스크톱 포털',
    'frame.menu': '계정 메뉴',
    'password.title': '비밀번호 변경',
    'password.intro': '변경하면 모든 기기에서 로그아웃되며 새 비밀번호로 다시 로그인해야 합니다.',
    'password.current': '현재 비밀번호',
    'password.new': '새 비밀번호',
    'password.confirm': '새 비밀번호 확인',
    'password.hint': '12자 이상이어야 합니다.',
    'password.submit': '비밀번호 변경',
    'password.error.missing_current': '현재 비밀번호를 입력하세요.',
    'password.error.too_short': '새 비밀번호는 12자 이상이어야 합니다.',
    'password.error.mismatch': '두 새 비밀번호가 다릅니다.',
    'password.error.same': '새 비밀번호는 현재 비밀번호와 달라야 합니다.',
    'password.error.bad_current': '현재 비밀번호가 올바르지 않습니다.',
    'user.desktops.title': '내 데스크톱',
    'user.desktops.subtitle': '나에게 할당된 데스크톱이 여기에 표시됩니다.',
    'user.desktops.empty': '아직 할당된 데스크톱이 없습니다',
    'user.desktops.empty_hint': '관리자가 데스크톱을 할당하면 여기에 표시되며, 이 페이지에서 바로 접속할 수 있습니다.',
    'user.greeting': '안녕하세요, {name}님',
  },
};

let current = pickInitial();
const listeners = new Set();

function pickInitial() {
  let saved = null;
  try {
    saved = window.localStorage.getItem(STORAGE_KEY);
  } catch (e) {
    saved = null; // storage may be disabled; fall back to the browser's language
  }
  if (LANGS.includes(saved)) return saved;
  const nav = (navigator.languages && navigator.languages[0]) || navigator.language || 'en';
  return nav.toLowerCase().startsWith('ko') ? 'ko' : 'en';
}

export function lang() {
  return current;
}

export function addMessages(more) {
  for (const l of Object.keys(more)) Object.assign(messages[l] || (messages[l] = {}), more[l]);
}

// t('key', {n: 3}) -> the text in the current language with {n} filled in.
export function t(key, args) {
  let s = messages[current][key];
  if (s === undefined) s = messages.en[key];
  if (s === undefined) return key;
  if (args) s = s.replace(/\{(\w+)\}/g, (m, k) => (args[k] !== undefined && args[k] !== null ? String(args[k]) : m));
  return s;
}

export function has(key) {
  return messages.en[key] !== undefined;
}

export function setLang(l) {
  if (!LANGS.includes(l) || l === current) return;
  current = l;
  try {
    window.localStorage.setItem(STORAGE_KEY, l);
  } catch (e) {
    // not remembered across visits; still switched for this page
  }
  applyI18n(document);
  for (const fn of listeners) fn(l);
}

export function onLangChange(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

function argsOf(el) {
  const a = el.getAttribute('data-i18n-args');
  if (!a) return undefined;
  try {
    return JSON.parse(a);
  } catch (e) {
    return undefined;
  }
}

const ATTRS = [
  ['data-i18n-placeholder', 'placeholder'],
  ['data-i18n-label', 'aria-label'],
  ['data-i18n-title', 'title'],
];

export function applyI18n(root) {
  const doc = root.ownerDocument || root;
  if (root === doc) {
    doc.documentElement.lang = current;
    const tk = doc.documentElement.getAttribute('data-title-key');
    if (tk) doc.title = t(tk) + ' · BIC';
  }
  const all = [root, ...root.querySelectorAll('[data-i18n],[data-i18n-placeholder],[data-i18n-label],[data-i18n-title],[data-date]')];
  for (const el of all) {
    if (!el.getAttribute) continue;
    const args = argsOf(el);
    const k = el.getAttribute('data-i18n');
    if (k) el.textContent = t(k, args);
    for (const [src, dst] of ATTRS) {
      const key = el.getAttribute(src);
      if (key) el.setAttribute(dst, t(key, args));
    }
    const d = el.getAttribute('data-date');
    if (d !== null) el.textContent = formatDate(d);
  }
}

// Times from the API are ISO 8601 (or "YYYY-MM-DD HH:MM:SS", taken as UTC).
export function parseTime(s) {
  if (s === null || s === undefined || s === '') return null;
  if (typeof s === 'number') return new Date(s * 1000);
  let str = String(s);
  if (/^\d{4}-\d\d-\d\d \d\d:\d\d(:\d\d(\.\d+)?)?$/.test(str)) str = str.replace(' ', 'T') + 'Z';
  const d = new Date(str);
  return isNaN(d.getTime()) ? null : d;
}

export function formatDate(s) {
  if (s === '' || s === 'null') return t('common.never');
  const d = parseTime(s);
  if (!d) return String(s);
  return new Intl.DateTimeFormat(current === 'ko' ? 'ko-KR' : 'en-GB', {
    year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit',
  }).format(d);
}

export function formatNumber(n) {
  return new Intl.NumberFormat(current === 'ko' ? 'ko-KR' : 'en-US').format(n);
}
