/** Credentials never reach a log line: `redis://:secret@redis:6379` is logged as `redis://:***@redis:6379`. */
export function redactUrl(text: string): string {
  // scheme://user:password@host → scheme://user:***@host; scheme://token@host → scheme://***@host
  return text.replace(/^([a-z][a-z0-9+.-]*:\/\/)([^/@\s]*)@/i, (_m, scheme: string, userinfo: string) => {
    const colon = userinfo.indexOf(':');
    return `${scheme}${colon >= 0 ? `${userinfo.slice(0, colon)}:***` : '***'}@`;
  });
}
