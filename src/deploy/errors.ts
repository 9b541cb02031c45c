/** Errors of the deploy module and the CLI; each carries the process exit code the CLI uses. */
import { formatIssue, type StackIssue } from './label-stack.js';

export const EXIT = {
  ok: 0,
  /** The operation failed: Docker unreachable, deploy or wake did not converge, timeout. */
  failed: 1,
  /** Invalid input: the stack file, a flag or an argument. Nothing was changed. */
  invalid: 2,
} as const;

export class DeployError extends Error {
  override readonly name: string = 'DeployError';
  readonly exitCode: number = EXIT.failed;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** Invalid input; `details` are the individual problems (each names file, service and key). */
export class InvalidInputError extends DeployError {
  override readonly name: string = 'InvalidInputError';
  override readonly exitCode: number = EXIT.invalid;
  constructor(
    message: string,
    readonly details: string[] = [],
  ) {
    super(message);
  }
}

export class StackValidationError extends InvalidInputError {
  override readonly name = 'StackValidationError';
  constructor(
    readonly file: string,
    readonly issues: StackIssue[],
    consequence = 'nothing was deployed',
  ) {
    super(`${file}: ${issues.length} problem${issues.length === 1 ? '' : 's'} found; ${consequence}`, issues.map(formatIssue));
  }
}

export class TimeoutError extends DeployError {
  override readonly name = 'TimeoutError';
}
