// Event batching with the rules of frontend/static/tailored/tracker.js, so a headless frontend
// reports exactly as the server-rendered pages do:
// - a batch goes after 2 s, or at once when 20 events wait;
// - a batch holds at most 100 events and under 60,000 bytes of JSON (split in halves until it
//   does; a single event over the limit is dropped);
// - batches go one at a time, in order;
// - a batch refused with 429 or 5xx, or lost to the network, waits in a retry queue of at most
//   200 events (the oldest dropped first and counted) and is retried after 5 s, doubling up to
//   5 minutes, the delay reset by a success; a 400 or 403 (invalid, no consent) is never retried;
// - without consent nothing is queued or sent, and withdrawing consent forgets what waits.

export const FLUSH_SIZE = 20;
export const FLUSH_DELAY_MS = 2_000;
export const MAX_BATCH_EVENTS = 100;
export const MAX_BATCH_BYTES = 60_000;
export const QUEUE_LIMIT = 200;
export const FIRST_BACKOFF_MS = 5_000;
export const MAX_BACKOFF_MS = 300_000;

/** An event as POST /api/events and trackEvents take it: type, id, ts (epoch ms) and its fields. */
export interface TrackedEvent {
  type: string;
  id: string;
  ts: number;
  url?: string;
  category?: string;
  [field: string]: unknown;
}

/** What became of one batch: stored (or refused for good), or worth a retry. */
export type Outcome = "sent" | "retry" | "drop";

/** Where waiting events are kept between retries: memory by default, localStorage in a browser. */
export interface QueueStorage {
  load(): TrackedEvent[];
  save(events: TrackedEvent[]): void;
  dropped(): number;
  addDropped(count: number): void;
  clear(): void;
}

export function memoryQueue(): QueueStorage {
  let waiting: TrackedEvent[] = [];
  let dropped = 0;
  return {
    load: () => waiting.slice(),
    save: (events) => { waiting = events.slice(); },
    dropped: () => dropped,
    addDropped: (count) => { dropped += count; },
    clear: () => { waiting = []; dropped = 0; },
  };
}

/** tracker.js's own keys (tl_queue, tl_dropped), so a page that has both shares one queue. */
export function localStorageQueue(storage: Storage = globalThis.localStorage): QueueStorage {
  const read = (key: string): unknown => { try { return JSON.parse(storage.getItem(key) ?? "null"); } catch { return null; } };
  const write = (key: string, value: unknown) => {
    try { value ? storage.setItem(key, JSON.stringify(value)) : storage.removeItem(key); } catch { /* off or full */ }
  };
  return {
    load: () => (read("tl_queue") as TrackedEvent[] | null) ?? [],
    save: (events) => write("tl_queue", events.length ? events : null),
    dropped: () => (read("tl_dropped") as number | null) ?? 0,
    addDropped: (count) => write("tl_dropped", ((read("tl_dropped") as number | null) ?? 0) + count),
    clear: () => { write("tl_queue", null); write("tl_dropped", null); },
  };
}

export interface TrackerOptions {
  send(batch: TrackedEvent[], leaving: boolean): Promise<Outcome>;
  allowed(): boolean;
  storage?: QueueStorage;
  flushSize?: number;
  flushDelayMs?: number;
  firstBackoffMs?: number;
  maxBackoffMs?: number;
  /** Whether the network is up (navigator.onLine in a browser); offline batches wait. */
  online?: () => boolean;
}

export interface TrackerStats {
  queued: number;
  dropped: number;
  sent: number;
}

const encoder = new TextEncoder();
const jsonBytes = (events: TrackedEvent[]) => encoder.encode(JSON.stringify({ events })).length;

/** Batches within the limits, split in halves as tracker.js splits them. */
export function batches(events: TrackedEvent[]): TrackedEvent[][] {
  if (events.length <= MAX_BATCH_EVENTS && jsonBytes(events) < MAX_BATCH_BYTES) return [events];
  if (events.length < 2) return [];
  const half = Math.ceil(events.length / 2);
  return [...batches(events.slice(0, half)), ...batches(events.slice(half))];
}

function newId(at: number): string {
  const crypto = globalThis.crypto;
  return crypto?.randomUUID ? crypto.randomUUID() : Math.random().toString(36).slice(2) + at;
}

export class Tracker {
  private queue: TrackedEvent[] = [];
  private timer: ReturnType<typeof setTimeout> | null = null;
  private retryTimer: ReturnType<typeof setTimeout> | null = null;
  private backoff: number;
  private sent = 0;
  private chain: Promise<void> = Promise.resolve();
  private readonly storage: QueueStorage;

  constructor(private readonly options: TrackerOptions) {
    this.storage = options.storage ?? memoryQueue();
    this.backoff = options.firstBackoffMs ?? FIRST_BACKOFF_MS;
  }

  /** Queue one event (with its id and timestamp); null without consent, and nothing is kept. */
  track(type: string, fields: Record<string, unknown> = {}): TrackedEvent | null {
    if (!this.options.allowed()) return null;
    const ts = Date.now();
    const event: TrackedEvent = { type, id: newId(ts), ts };
    for (const [name, value] of Object.entries(fields)) if (value !== undefined && value !== null) event[name] = value;
    this.queue.push(event);
    if (this.queue.length >= (this.options.flushSize ?? FLUSH_SIZE)) void this.flush();
    else this.timer ??= unref(setTimeout(() => void this.flush(), this.options.flushDelayMs ?? FLUSH_DELAY_MS));
    return event;
  }

  /** Send what waits (the retry queue first, then new events); resolves when every batch is answered. */
  flush(options: { leaving?: boolean } = {}): Promise<void> {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    if (!this.options.allowed()) {
      this.queue = [];
      this.storage.clear(); // withdrawn or declined: nothing of theirs waits
      return this.chain;
    }
    const events = [...this.storage.load(), ...this.queue];
    this.queue = [];
    this.storage.save([]);
    if (!events.length) return this.chain;
    if (this.options.online && !this.options.online()) {
      this.stash(events);
      return this.chain;
    }
    // One batch at a time, in order (and within keepalive's 64 KiB).
    this.chain = this.chain.then(async () => {
      for (const batch of batches(events)) {
        let outcome: Outcome;
        try {
          outcome = await this.options.send(batch, options.leaving === true);
        } catch {
          outcome = "retry";
        }
        if (outcome === "sent") {
          this.sent += batch.length;
          this.backoff = this.options.firstBackoffMs ?? FIRST_BACKOFF_MS;
        } else if (outcome === "retry") {
          this.stash(batch);
        }
      }
    });
    return this.chain;
  }

  stats(): TrackerStats {
    return { queued: this.queue.length + this.storage.load().length, dropped: this.storage.dropped(), sent: this.sent };
  }

  /** Stop the timers (a server process finishing a request; tests). */
  close(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    if (this.retryTimer !== null) clearTimeout(this.retryTimer);
    this.timer = this.retryTimer = null;
  }

  private stash(events: TrackedEvent[]): void {
    if (!this.options.allowed()) return; // withdrawn meanwhile
    let stored = [...this.storage.load(), ...events];
    const over = stored.length - QUEUE_LIMIT;
    if (over > 0) {
      stored = stored.slice(over);
      this.storage.addDropped(over);
    }
    this.storage.save(stored);
    this.retryTimer ??= unref(setTimeout(() => {
      this.retryTimer = null;
      this.backoff = Math.min(this.backoff * 2, this.options.maxBackoffMs ?? MAX_BACKOFF_MS);
      void this.flush();
    }, this.backoff));
  }
}

function unref<T>(timer: T): T {
  // A waiting batch must not keep a Node server process alive on its own.
  (timer as { unref?: () => void }).unref?.();
  return timer;
}
