/**
 * Progress on stderr. Every line is written once, as is, where stderr is not a terminal (CI logs,
 * files, pipes). On a terminal the latest line also carries a spinner and the seconds it has been
 * waiting, redrawn in place, so a long wait (convergence, a wake) visibly moves; it is frozen as a
 * plain line when the next one comes or the command ends. stdout is never touched.
 */
export interface ProgressStream {
  write(chunk: string): unknown;
  isTTY?: boolean;
}

export interface Progress {
  line(text: string): void;
  /** Freezes the live line (if any); call before the result or an error is printed. */
  end(): void;
}

const FRAMES = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
const CLEAR_LINE = '\r\x1b[2K';

/** A terminal that can redraw a line: a TTY, not TERM=dumb. */
export function isInteractive(stream: ProgressStream, env: NodeJS.ProcessEnv = process.env): boolean {
  return stream.isTTY === true && env.TERM !== 'dumb';
}

export function createProgress(stream: ProgressStream, options: { interactive: boolean; intervalMs?: number; now?: () => number }): Progress {
  if (!options.interactive) {
    return { line: (text) => void stream.write(`  ${text}\n`), end: () => undefined };
  }
  const now = options.now ?? Date.now;
  let current: string | undefined;
  let since = 0;
  let frame = 0;
  let timer: NodeJS.Timeout | undefined;
  const draw = () => {
    if (current === undefined) return;
    const seconds = ((now() - since) / 1000).toFixed(1);
    stream.write(`${CLEAR_LINE}${FRAMES[frame++ % FRAMES.length]} ${current} (${seconds}s)`);
  };
  const freeze = () => {
    if (current !== undefined) stream.write(`${CLEAR_LINE}  ${current}\n`);
    current = undefined;
  };
  return {
    line(text) {
      freeze();
      current = text;
      since = now();
      draw();
      if (!timer) {
        timer = setInterval(draw, options.intervalMs ?? 100);
        timer.unref(); // never keeps the CLI alive on its own
      }
    },
    end() {
      if (timer) clearInterval(timer);
      timer = undefined;
      freeze();
    },
  };
}
