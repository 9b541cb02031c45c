import pino, { type Logger } from 'pino';

/** JSON lines in production; pipe through pino-pretty in development (`npm run dev`). */
export function createLogger(level: string): Logger {
  return pino({
    level,
    base: { svc: 'swarm-activator' },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
  });
}
export type { Logger };
