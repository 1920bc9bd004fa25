// "Your desktop is being moved": while failure recovery restarts a dedicated desktop on another
// server (docs/automation.md), the broker answers connect with 202 and progress.step
// 'recovering'. This adds the words for that step; console.js shows steps it knows.
import { addMessages } from './i18n.js';

export const RECOVERY_STEP = 'recovering';

addMessages({
  en: { 'connect.step.recovering': 'Your desktop is being moved to another server…' },
  ko: { 'connect.step.recovering': '데스크톱을 다른 서버로 옮기는 중입니다…' },
});
