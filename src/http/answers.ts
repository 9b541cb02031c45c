/**
 * The chain's answers as bytes for either transport: a problem through the error table (and one
 * bounded log line, problem-log.ts), a response of the activator's own as it is.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { Logger } from 'pino';
import type { Answer } from './chain.js';
import { renderProblem, toProblem, wantsHtml, type RenderedAnswer } from './error-page.js';
import type { ProblemLog } from './problem-log.js';

interface RequestLine {
  headers: IncomingHttpHeaders;
  method: string;
  url: string;
}

export class Answers {
  constructor(
    private readonly problemLog: ProblemLog,
    private readonly retryAfterSeconds: number,
  ) {}

  /** An error as the client's answer: its row of the table, JSON or HTML as the client accepts. */
  problem(err: unknown, req: RequestLine, log: Logger, upgrade: boolean): RenderedAnswer {
    const problem = toProblem(err, this.retryAfterSeconds);
    // Bounded: one error line per app and code per 10 s, one info line per unknown host per minute
    // (problem-log.ts); scanners and backoffs were a flood of lines, and the line most of a 404's cost.
    this.problemLog.write(log, problem, { err: problem.status >= 500 ? err : undefined, host: req.headers.host, method: req.method, url: req.url, ...(upgrade ? { upgrade } : {}) });
    return renderProblem(problem, wantsHtml(req.headers));
  }

  async render(answer: Answer, req: RequestLine, log: Logger, upgrade: boolean): Promise<RenderedAnswer> {
    if (answer.kind === 'problem') return this.problem(answer.error, req, log, upgrade);
    return { status: answer.status, headers: answer.headers, body: await answer.body };
  }
}
