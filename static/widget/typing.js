/* The typing indicator's rule, without the DOM. It is derived from the session's messages
 * (which every tab has, replayed after a reload) rather than from one tab's memory of a
 * send: the bot is "typing" while the conversation's last message is the person's, younger
 * than the timeout, and not marked as failed; or while this tab has a send or pick of its
 * own on the way (not yet a message of the session). */

export const DEFAULT_TYPING_TIMEOUT_MS = 20000;

/** `data-typing-timeout` in seconds ("20", "7.5"); 0 turns the indicator off. */
export function typingTimeoutMs(value) {
  if (value === undefined || value === null || value === "") return DEFAULT_TYPING_TIMEOUT_MS;
  const seconds = Number(value);
  return Number.isFinite(seconds) && seconds >= 0 ? seconds * 1000 : DEFAULT_TYPING_TIMEOUT_MS;
}

/**
 * When the indicator goes away (ms since the epoch), or null when it is not shown now.
 * messages: Map seq -> message (ts in seconds); statuses: Map seq -> {status};
 * pending: the local sends and picks ({since} in ms); now: ms; timeoutMs: the option.
 */
export function typingUntil({ messages, statuses, pending = [], now, timeoutMs }) {
  if (!(timeoutMs > 0)) return null;
  let until = null;
  for (const p of pending) {
    // Waiting for a connection is not the bot thinking: only what went out counts.
    if (p.state === "unsent" || typeof p.since !== "number") continue;
    until = Math.max(until ?? 0, Math.min(p.since, now) + timeoutMs);
  }
  let last = null;
  for (const m of messages.values()) if (!last || m.seq > last.seq) last = m;
  if (last && last.from === "user" && statuses?.get(last.seq)?.status !== "failed") {
    // A clock ahead of the server's would start it in the future: never later than now.
    const since = Math.min(Number(last.ts) * 1000, now);
    if (Number.isFinite(since)) until = Math.max(until ?? 0, since + timeoutMs);
  } else if (last && pending.length === 0) {
    return null; // the bot (or the system) had the last word
  }
  return until !== null && until > now ? until : null;
}
