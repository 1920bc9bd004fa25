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
    // user portal: desktops, power, sessions (portal-user/user.js)
    'user.refresh': 'Refresh',
    'user.updated': 'Updated {time}',
    'user.pool.type.dedicated': 'Personal desktop',
    'user.pool.type.floating': 'Shared pool',
    'user.pool.unavailable': 'Unavailable for now',
    'user.card.desktop': 'Desktop',
    'user.card.session': 'Session',
    'user.power': 'Power',
    'user.desktop.none': 'Not assigned yet',
    'user.desktop.on_connect': 'Assigned when you connect',
    'user.desktop.running': 'Running',
    'user.desktop.shutoff': 'Shut down',
    'user.desktop.shutdown': 'Shutting down',
    'user.desktop.paused': 'Paused',
    'user.desktop.pmsuspended': 'Suspended',
    'user.desktop.blocked': 'Not responding',
    'user.desktop.crashed': 'Stopped unexpectedly',
    'user.desktop.nostate': 'Unknown',
    'user.phase.pending': 'Waiting to be prepared',
    'user.phase.provisioning': 'Being prepared',
    'user.phase.refreshing': 'Being refreshed',
    'user.phase.resizing': 'Being resized',
    'user.phase.deleting': 'Being removed',
    'user.phase.error': 'Has a problem',
    'user.session.none': 'Not connected',
    'user.session.starting': 'Starting',
    'user.session.connecting': 'Connecting',
    'user.session.connected': 'Connected',
    'user.session.disconnected': 'Disconnected, still running',
    'user.session.since': 'since',
    'user.session.disconnected_at': 'at',
    'user.action.connect': 'Connect',
    'user.action.resume': 'Reconnect',
    'user.action.logoff': 'Log off',
    'user.action.start': 'Start',
    'user.action.restart': 'Restart',
    'user.action.shutdown': 'Shut down',
    'user.busy.logoff': 'Logging off…',
    'user.busy.start': 'Starting…',
    'user.busy.restart': 'Restarting…',
    'user.busy.shutdown': 'Shutting down…',
    'user.confirm.start.title': 'Start {name}?',
    'user.confirm.start.text': 'The desktop starts up; that takes about a minute. Connect when it is running.',
    'user.confirm.restart.title': 'Restart {name}?',
    'user.confirm.restart.text': 'Programs on the desktop are closed and unsaved work is lost. An open screen reconnects by itself when the desktop is back.',
    'user.confirm.shutdown.title': 'Shut down {name}?',
    'user.confirm.shutdown.text': 'Programs on the desktop are closed and unsaved work is lost. You can start it again from this page.',
    'user.confirm.logoff.title': 'Log off from {name}?',
    'user.confirm.logoff.text': 'Your session ends: programs are closed and unsaved work is lost. The desktop stays yours.',
    'user.confirm.logoff.text_floating': 'Your session ends: programs are closed and unsaved work is lost. The desktop goes back to the pool and is reset for the next person.',
    'user.done.start': '{name} is starting',
    'user.done.restart': '{name} is restarting',
    'user.done.shutdown': '{name} is shutting down',
    'user.done.logoff': 'Logged off from {name}',
    'user.error.power_forbidden': 'This pool does not let you start, shut down or restart your desktop.',
    'user.error.desktop_busy': 'The desktop is busy (being prepared or refreshed). Try again when it is ready.',
    // user portal: connecting (portal-user/console.js)
    'connect.requesting': 'Connecting to {name}…',
    'connect.opening': 'Opening the screen…',
    'connect.step.starting': 'Starting your desktop…',
    'connect.step.provisioning': 'Preparing a desktop for you…',
    'connect.step.refreshing': 'Refreshing your desktop…',
    'connect.step.waiting': 'Waiting for your desktop…',
    'connect.step.hint': 'This can take a minute. The screen opens by itself when the desktop is ready.',
    'connect.refused': 'Cannot connect',
    'connect.reason.not_entitled': 'You are not allowed to use this pool (any more). Ask your administrator.',
    'connect.reason.network_forbidden': 'This pool cannot be used from the network you are on. Connect from your organisation\'s network or VPN.',
    'connect.reason.pool_exhausted': 'Every desktop of this pool is in use right now.',
    'connect.reason.module_full': 'There is no room for another desktop right now.',
    'connect.reason.pool_unavailable': 'This pool is not available right now (it may be paused or being changed).',
    'connect.reason.session_limit': 'You already have as many open desktop sessions as you are allowed. Log off from another desktop first.',
    'connect.reason.console_unavailable': 'The desktop\'s screen cannot be reached right now.',
    'connect.reason.desktop_unavailable': 'Your desktop is not available: it failed or is being removed. Ask your administrator.',
    'connect.reason.desktop_taken': 'That desktop was just given to someone else.',
    'connect.reason.session_elsewhere': 'You already have a session on another desktop of this pool. Log it off first.',
    'connect.error.no_pool': 'This pool is no longer available to you. Reload the list.',
    'connect.error.forbidden': 'You are not allowed to connect to this pool.',
    'connect.error.conflict': 'The pool cannot give you a desktop right now.',
    // user portal: the console (portal-user/console.js)
    'console.label': 'Desktop screen',
    'console.toolbar': 'Desktop controls',
    'console.keys_hint': 'The keyboard goes to the desktop. Press Ctrl+Alt+Shift to reach the toolbar.',
    'console.fullscreen': 'Full screen',
    'console.exit_fullscreen': 'Exit full screen',
    'console.cad': 'Ctrl+Alt+Del',
    'console.disconnect': 'Disconnect',
    'console.logoff': 'Log off',
    'console.view_only': 'View only',
    'console.clipboard': 'Clipboard',
    'console.clipboard.send': 'Paste into desktop',
    'console.clipboard.both': 'Type or paste text here and send it to the desktop. Text copied on the desktop appears here.',
    'console.clipboard.in': 'Type or paste text here and send it to the desktop.',
    'console.clipboard.out': 'Text copied on the desktop appears here.',
    'console.back': 'Back to my desktops',
    'console.retry': 'Try again',
    'console.connect_again': 'Connect again',
    'console.reconnect_now': 'Reconnect now',
    'console.reconnecting': 'Connection lost. Reconnecting…',
    'console.retrying': 'Trying again…',
    'console.reconnecting_now': 'Reconnecting…',
    'console.next_try': 'Next try in {n} s',
    'console.lost': 'The connection to the desktop was interrupted.',
    'console.auth_failed': 'The desktop refused the connection.',
    'console.gave_up': 'The connection could not be restored',
    'console.admin_disconnected': 'An administrator disconnected this session',
    'console.admin_disconnected_hint': 'Your desktop is still yours and keeps running. Connect again when you are ready.',
    'console.ended': 'Your session has ended',
    'console.ended_hint': 'You were logged off from this desktop. Connect again to start a new session.',
    'console.no_viewer': 'The screen viewer could not be loaded',
    'console.no_viewer_hint': 'The server is missing noVNC, or the connection dropped while loading it.',
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
    // user portal: desktops, power, sessions (portal-user/user.js)
    'user.refresh': '새로 고침',
    'user.updated': '{time} 업데이트됨',
    'user.pool.type.dedicated': '개인 전용 데스크톱',
    'user.pool.type.floating': '공용 풀',
    'user.pool.unavailable': '지금은 사용할 수 없음',
    'user.card.desktop': '데스크톱',
    'user.card.session': '세션',
    'user.power': '전원',
    'user.desktop.none': '아직 할당되지 않음',
    'user.desktop.on_connect': '접속하면 할당됨',
    'user.desktop.running': '실행 중',
    'user.desktop.shutoff': '꺼짐',
    'user.desktop.shutdown': '종료하는 중',
    'user.desktop.paused': '일시 중지됨',
    'user.desktop.pmsuspended': '절전 상태',
    'user.desktop.blocked': '응답 없음',
    'user.desktop.crashed': '비정상 종료됨',
    'user.desktop.nostate': '알 수 없음',
    'user.phase.pending': '준비 대기 중',
    'user.phase.provisioning': '준비하는 중',
    'user.phase.refreshing': '초기화하는 중',
    'user.phase.resizing': '사양 변경 중',
    'user.phase.deleting': '삭제하는 중',
    'user.phase.error': '문제 있음',
    'user.session.none': '접속 안 함',
    'user.session.starting': '시작하는 중',
    'user.session.connecting': '접속하는 중',
    'user.session.connected': '접속됨',
    'user.session.disconnected': '연결 끊김, 계속 실행 중',
    'user.session.since': '시작',
    'user.session.disconnected_at': '끊긴 시각',
    'user.action.connect': '접속',
    'user.action.resume': '다시 접속',
    'user.action.logoff': '로그오프',
    'user.action.start': '시작',
    'user.action.restart': '다시 시작',
    'user.action.shutdown': '종료',
    'user.busy.logoff': '로그오프하는 중…',
    'user.busy.start': '시작하는 중…',
    'user.busy.restart': '다시 시작하는 중…',
    'user.busy.shutdown': '종료하는 중…',
    'user.confirm.start.title': '{name}을(를) 시작할까요?',
    'user.confirm.start.text': '데스크톱이 켜지는 데 1분 정도 걸립니다. 실행 중이 되면 접속하세요.',
    'user.confirm.restart.title': '{name}을(를) 다시 시작할까요?',
    'user.confirm.restart.text': '데스크톱의 프로그램이 모두 닫히고 저장하지 않은 작업은 사라집니다. 열려 있는 화면은 데스크톱이 다시 켜지면 자동으로 다시 연결됩니다.',
    'user.confirm.shutdown.title': '{name}을(를) 종료할까요?',
    'user.confirm.shutdown.text': '데스크톱의 프로그램이 모두 닫히고 저장하지 않은 작업은 사라집니다. 이 페이지에서 다시 시작할 수 있습니다.',
    'user.confirm.logoff.title': '{name}에서 로그오프할까요?',
    'user.confirm.logoff.text': '세션이 끝나고 프로그램이 모두 닫히며 저장하지 않은 작업은 사라집니다. 데스크톱은 계속 내 것으로 남습니다.',
    'user.confirm.logoff.text_floating': '세션이 끝나고 프로그램이 모두 닫히며 저장하지 않은 작업은 사라집니다. 데스크톱은 풀로 돌아가 다음 사람을 위해 초기화됩니다.',
    'user.done.start': '{name}을(를) 시작하고 있습니다',
    'user.done.restart': '{name}을(를) 다시 시작하고 있습니다',
    'user.done.shutdown': '{name}을(를) 종료하고 있습니다',
    'user.done.logoff': '{name}에서 로그오프했습니다',
    'user.error.power_forbidden': '이 풀에서는 데스크톱을 직접 시작, 종료하거나 다시 시작할 수 없습니다.',
    'user.error.desktop_busy': '데스크톱이 준비 또는 초기화 중입니다. 준비가 끝나면 다시 시도하세요.',
    // user portal: connecting (portal-user/console.js)
    'connect.requesting': '{name}에 접속하는 중…',
    'connect.opening': '화면을 여는 중…',
    'connect.step.starting': '데스크톱을 시작하는 중…',
    'connect.step.provisioning': '데스크톱을 준비하는 중…',
    'connect.step.refreshing': '데스크톱을 초기화하는 중…',
    'connect.step.waiting': '데스크톱을 기다리는 중…',
    'connect.step.hint': '1분 정도 걸릴 수 있습니다. 데스크톱이 준비되면 화면이 자동으로 열립니다.',
    'connect.refused': '접속할 수 없습니다',
    'connect.reason.not_entitled': '이 풀을 사용할 권한이 없습니다. 관리자에게 문의하세요.',
    'connect.reason.network_forbidden': '지금 사용 중인 네트워크에서는 이 풀을 사용할 수 없습니다. 회사 네트워크나 VPN으로 접속하세요.',
    'connect.reason.pool_exhausted': '이 풀의 데스크톱이 모두 사용 중입니다.',
    'connect.reason.module_full': '지금은 데스크톱을 더 만들 자리가 없습니다.',
    'connect.reason.pool_unavailable': '지금은 이 풀을 사용할 수 없습니다(일시 중지되었거나 변경 중일 수 있습니다).',
    'connect.reason.session_limit': '허용된 최대 세션 수만큼 이미 접속해 있습니다. 다른 데스크톱에서 먼저 로그오프하세요.',
    'connect.reason.console_unavailable': '지금은 데스크톱 화면에 연결할 수 없습니다.',
    'connect.reason.desktop_unavailable': '데스크톱을 사용할 수 없습니다. 오류가 났거나 삭제되는 중입니다. 관리자에게 문의하세요.',
    'connect.reason.desktop_taken': '그 데스크톱은 방금 다른 사람에게 할당되었습니다.',
    'connect.reason.session_elsewhere': '이 풀의 다른 데스크톱에 이미 세션이 있습니다. 먼저 그 세션에서 로그오프하세요.',
    'connect.error.no_pool': '이 풀은 더 이상 사용할 수 없습니다. 목록을 새로 고치세요.',
    'connect.error.forbidden': '이 풀에 접속할 권한이 없습니다.',
    'connect.error.conflict': '지금은 이 풀에서 데스크톱을 받을 수 없습니다.',
    // user portal: the console (portal-user/console.js)
    'console.label': '데스크톱 화면',
    'console.toolbar': '데스크톱 제어',
    'console.keys_hint': '키보드 입력은 데스크톱으로 전달됩니다. 도구 모음으로 가려면 Ctrl+Alt+Shift를 누르세요.',
    'console.fullscreen': '전체 화면',
    'console.exit_fullscreen': '전체 화면 종료',
    'console.cad': 'Ctrl+Alt+Del',
    'console.disconnect': '연결 끊기',
    'console.logoff': '로그오프',
    'console.view_only': '보기 전용',
    'console.clipboard': '클립보드',
    'console.clipboard.send': '데스크톱에 붙여넣기',
    'console.clipboard.both': '여기에 텍스트를 입력하거나 붙여넣어 데스크톱으로 보내세요. 데스크톱에서 복사한 텍스트도 여기에 나타납니다.',
    'console.clipboard.in': '여기에 텍스트를 입력하거나 붙여넣어 데스크톱으로 보내세요.',
    'console.clipboard.out': '데스크톱에서 복사한 텍스트가 여기에 나타납니다.',
    'console.back': '내 데스크톱으로 돌아가기',
    'console.retry': '다시 시도',
    'console.connect_again': '다시 접속',
    'console.reconnect_now': '지금 다시 연결',
    'console.reconnecting': '연결이 끊겼습니다. 다시 연결하는 중…',
    'console.retrying': '다시 시도하는 중…',
    'console.reconnecting_now': '다시 연결하는 중…',
    'console.next_try': '{n}초 후 다시 시도',
    'console.lost': '데스크톱과의 연결이 끊겼습니다.',
    'console.auth_failed': '데스크톱이 연결을 거부했습니다.',
    'console.gave_up': '연결을 복구하지 못했습니다',
    'console.admin_disconnected': '관리자가 이 세션의 연결을 끊었습니다',
    'console.admin_disconnected_hint': '데스크톱은 그대로 실행 중입니다. 준비되면 다시 접속하세요.',
    'console.ended': '세션이 끝났습니다',
    'console.ended_hint': '이 데스크톱에서 로그오프되었습니다. 새 세션을 시작하려면 다시 접속하세요.',
    'console.no_viewer': '화면 뷰어를 불러오지 못했습니다',
    'console.no_viewer_hint': '서버에 noVNC가 없거나 불러오는 중에 연결이 끊겼습니다.',
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
