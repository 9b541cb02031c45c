/** Where activity comes from. One implementation per file under sources/. */

/** `at` is epoch ms; `app` is the Swarm service name (the app's identity everywhere). */
export type ActivityListener = (app: string, at: number) => void;

export interface ActivitySource {
  /** Short name for logs: "own-traffic", "traefik-metrics", "network-bytes". */
  readonly name: string;
  start(onActivity: ActivityListener): void;
  stop(): void | Promise<void>;
  /** Requests/connections open right now for the app, if the source can know (blocks scale-down). */
  open?(app: string): number;
}
