/** The poll loop shared by sources that sample something every interval (never overlapping polls). */
import type { ActivityListener, ActivitySource } from '../activity-source.js';

export abstract class PollingSource implements ActivitySource {
  abstract readonly name: string;
  protected onActivity: ActivityListener | undefined;
  private timer: NodeJS.Timeout | undefined;
  private running = false;

  constructor(private readonly intervalMs: number) {}

  /** One round; returns the apps it reported as active (tests call it directly). */
  abstract poll(): Promise<string[]>;

  start(onActivity: ActivityListener): void {
    this.onActivity = onActivity;
    this.running = true;
    const loop = () => {
      if (!this.running) return;
      this.poll()
        .catch(() => undefined)
        .finally(() => {
          if (this.running) this.timer = setTimeout(loop, this.intervalMs).unref();
        });
    };
    loop();
  }

  stop(): void {
    this.running = false;
    clearTimeout(this.timer);
  }
}
