/**
 * The live stream of a run: server-sent events from `/api/v1/runs/{id}/stream`.
 *
 * Events: `status` (first on connect, then on every change), `epoch` `{step, metrics}`,
 * `system` `{step, metrics}` (system metrics; the step is seconds since the run started),
 * `run_event` (a row of the run's log), `end` (the run finished: the server closes the
 * stream and we must not reconnect) and `reconnect` (the stream's lifetime is over: the
 * browser reconnects by itself, sending `Last-Event-ID`, and the server resumes after it),
 * and `revoked` (the token this page signed in with was revoked: we stop and ask to sign in).
 * Message ids are cursors "<step>:<event id>[:<n>][~<write>[.<step>]][/<second>]" (`~`: a logged run's
 * updates of steps already sent, by write number). When the browser gives up (an HTTP error
 * while reconnecting), we open a new stream from the last cursor, backing off.
 */

import { get, signIn, url } from "./api.js";

/**
 * @typedef {object} StreamHandlers
 * @property {(status: object) => void} onStatus
 * @property {(step: number, metrics: Record<string, number>) => void} onEpoch
 * @property {(second: number, metrics: Record<string, number>) => void} [onSystem]
 * @property {(event: object) => void} onEvent
 * @property {(final: {status: string}) => void} onEnd
 * @property {(state: "live" | "reconnecting" | "ended") => void} onState
 */

/** A message id: step, event id, write number (a logged run), second of the system metrics. */
const ID = /^(-1|\d+):(\d+)(?::\d+)?(?:~(\d+)(?:\.\d+)?)?(?:\/(\d+))?$/;

/**
 * Follow run `runId` from the cursor `(sinceStep, afterEvent)` (the history already loaded).
 * @param {number} runId
 * @param {{sinceStep: number | null, afterEvent: number | null, sinceSystem?: number | null}} from
 * @param {StreamHandlers} handlers
 * @returns {{close: () => void}}
 */
export function followRun(runId, from, handlers) {
  let cursor = { ...from };
  let source = null;
  let retryMs = 1000;
  let ended = false;

  const remember = (message) => {
    const parts = ID.exec(message.lastEventId || "");
    if (!parts) return;
    const [, step, eventId, write, system] = parts;
    cursor = {
      sinceStep: Number(step),
      afterEvent: Number(eventId),
      afterWrite: write !== undefined ? Number(write) : cursor.afterWrite,
      sinceSystem: system !== undefined ? Number(system) : cursor.sinceSystem,
    };
  };
  const on = (name, handle) => source.addEventListener(name, (message) => {
    remember(message);
    handle(JSON.parse(message.data));
  });

  const connect = () => {
    const target = new URL(url(`/api/v1/runs/${runId}/stream`), location.origin);
    if (cursor.sinceStep !== null && cursor.sinceStep !== undefined) target.searchParams.set("since_step", String(cursor.sinceStep));
    if (cursor.afterEvent !== null && cursor.afterEvent !== undefined) target.searchParams.set("after_event", String(cursor.afterEvent));
    if (cursor.sinceSystem !== null && cursor.sinceSystem !== undefined) target.searchParams.set("since_system", String(cursor.sinceSystem));
    if (cursor.afterWrite !== null && cursor.afterWrite !== undefined) target.searchParams.set("after_write", String(cursor.afterWrite));
    source = new EventSource(target);
    source.addEventListener("open", () => {
      retryMs = 1000;
      handlers.onState("live");
    });
    on("status", handlers.onStatus);
    on("epoch", (data) => handlers.onEpoch(data.step, data.metrics));
    on("system", (data) => handlers.onSystem?.(data.step, data.metrics));
    on("run_event", handlers.onEvent);
    on("reconnect", () => handlers.onState("reconnecting"));
    on("end", (data) => {
      ended = true;
      source.close();
      handlers.onState("ended");
      handlers.onEnd(data);
    });
    on("revoked", () => {
      ended = true;
      source.close();
      signIn();
    });
    source.addEventListener("error", () => {
      if (ended) return;
      handlers.onState("reconnecting");
      if (source.readyState === EventSource.CLOSED) {
        // The browser will not retry (the server answered with an error): a run deleted meanwhile has
        // ended; otherwise start afresh from our cursor.
        get(`/runs/${runId}`).then(() => true, (error) => error.status !== 404).then((exists) => {
          if (ended) return;
          if (!exists) {
            ended = true;
            handlers.onState("ended");
            handlers.onEnd({ status: "deleted" });
            return;
          }
          setTimeout(() => { if (!ended) connect(); }, retryMs);
          retryMs = Math.min(retryMs * 2, 30_000);
        });
      }
    });
  };

  connect();
  return {
    close() {
      ended = true;
      source?.close();
    },
  };
}
