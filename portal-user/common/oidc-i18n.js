// Korean and English text of OpenID Connect sign-in (the provider buttons and the reasons a
// provider sign-in came back refused), and of a password sign-in refused because the directory
// (LDAP / AD) that holds the account cannot be reached. Shared by both portals (oidc.js imports it).
import { addMessages } from './i18n.js';

addMessages({
  en: {
    'oidc.or': 'Or sign in with your organisation’s account',
    'oidc.continue_with': 'Sign in with {name}',
    'oidc.error.state': 'The sign-in took too long, was already used or was started in another browser. Start again.',
    'oidc.error.denied': 'The sign-in was cancelled at the identity provider, or it did not allow it.',
    'oidc.error.provider': 'The identity provider could not be reached or refused the sign-in. Try again later, or ask your administrator.',
    'oidc.error.token': 'The identity provider’s answer could not be verified, so you were not signed in. Ask your administrator.',
    'oidc.error.account': 'Your account at the identity provider cannot be used here: its user name is not accepted, or a different account already has it. Ask your administrator.',
    'oidc.error.disabled': 'Your account is disabled. Ask your administrator.',
    'oidc.error.locked': 'Your account is locked for a while after failed sign-ins. Try again later.',
    'oidc.error.unavailable': 'This sign-in option is not available right now. Try again later, or use another one.',
    'oidc.error.rate_limited': 'Too many sign-ins were started from here. Wait a few minutes and try again.',
    'login.error.directory_unavailable': 'The sign-in directory cannot be reached right now. Try again in a moment; administrators can still sign in with their BIC password.',
  },
  ko: {
    'oidc.or': '또는 소속 기관 계정으로 로그인',
    'oidc.continue_with': '{name}(으)로 로그인',
    'oidc.error.state': '로그인 시간이 지났거나, 이미 사용되었거나, 다른 브라우저에서 시작되었습니다. 다시 시작하세요.',
    'oidc.error.denied': '인증 제공자에서 로그인이 취소되었거나 허용되지 않았습니다.',
    'oidc.error.provider': '인증 제공자에 연결할 수 없거나 로그인을 거부했습니다. 나중에 다시 시도하거나 관리자에게 문의하세요.',
    'oidc.error.token': '인증 제공자의 응답을 검증할 수 없어 로그인하지 않았습니다. 관리자에게 문의하세요.',
    'oidc.error.account': '인증 제공자의 계정을 여기서 사용할 수 없습니다. 사용자 이름이 허용되지 않거나 다른 계정이 이미 사용 중입니다. 관리자에게 문의하세요.',
    'oidc.error.disabled': '계정이 비활성화되었습니다. 관리자에게 문의하세요.',
    'oidc.error.locked': '로그인 실패가 반복되어 계정이 잠시 잠겼습니다. 나중에 다시 시도하세요.',
    'oidc.error.unavailable': '지금은 이 로그인 방법을 사용할 수 없습니다. 나중에 다시 시도하거나 다른 방법을 사용하세요.',
    'oidc.error.rate_limited': '이곳에서 시작된 로그인이 너무 많습니다. 몇 분 뒤에 다시 시도하세요.',
    'login.error.directory_unavailable': '지금은 로그인 디렉터리에 연결할 수 없습니다. 잠시 후 다시 시도하세요. 관리자는 BIC 비밀번호로 로그인할 수 있습니다.',
  },
});
