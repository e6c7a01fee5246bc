// The WebSocket half: connects with the bearer subprotocol, reports its state honestly,
// keeps alive with application pings, reconnects with backoff, re-authenticates the live
// socket when the token is refreshed.
import { encodeClientFrame, parseServerFrame } from './frames';
import { BEARER_SUBPROTOCOL_PREFIX, CloseCode, SUBPROTOCOL, type ClientFrame, type ServerFrame } from './types';
import { realClock, type Clock } from './rest';

export type ConnState = 'connecting' | 'online' | 'reconnecting' | 'offline' | 'stopped';

/** Delay before reconnect attempt `attempt` (0-based): 0.5 s doubling to 15 s, ±20% jitter. */
export function backoffMs(attempt: number, random: () => number = Math.random): number {
  const base = Math.min(15_000, 500 * 2 ** Math.min(attempt, 10));
  return Math.round(base * (0.8 + 0.4 * random()));
}

export interface WebSocketLike {
  readonly readyState: number;
  onopen: ((ev: unknown) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}

export interface HubSocketOptions {
  url: string;
  /** A fresh access token (refreshing first if needed); null when logged out. */
  getToken: () => Promise<string | null>;
  /** Forces a refresh (after a 4401 close); null when the session is gone. */
  forceRefresh: () => Promise<string | null>;
  onFrame: (frame: ServerFrame) => void;
  onState: (state: ConnState) => void;
  /** The connection is authenticated and ready for join_room (once per connection). */
  onReady: () => void;
  /** The connection went away (rooms must be re-joined on the next ready). */
  onDown?: () => void;
  createSocket?: (url: string, protocols: string[]) => WebSocketLike;
  clock?: Clock;
  pingIntervalMs?: number;
  pongTimeoutMs?: number;
}

const OPEN = 1;

export class HubSocket {
  private ws: WebSocketLike | null = null;
  private state: ConnState = 'stopped';
  private attempt = 0;
  private retryTimer: unknown = null;
  private pingTimer: unknown = null;
  private pongTimer: unknown = null;
  private ready = false;
  private generation = 0;
  private readonly clock: Clock;
  private readonly create: (url: string, protocols: string[]) => WebSocketLike;

  constructor(private readonly opts: HubSocketOptions) {
    this.clock = opts.clock ?? realClock;
    this.create = opts.createSocket ?? ((url, protocols) => new WebSocket(url, protocols) as unknown as WebSocketLike);
  }

  get connState(): ConnState {
    return this.state;
  }

  get isReady(): boolean {
    return this.ready && this.ws?.readyState === OPEN;
  }

  start(): void {
    if (this.state !== 'stopped') return;
    this.setState('connecting');
    void this.connect();
  }

  stop(): void {
    this.generation++;
    this.clearTimers();
    this.dropSocket(1000, 'bye');
    this.setState('stopped');
  }

  /** Sends when the connection is ready; false otherwise (caller keeps it for later). */
  send(frame: ClientFrame): boolean {
    if (!this.isReady || !this.ws) return false;
    try {
      this.ws.send(encodeClientFrame(frame));
      return true;
    } catch {
      return false;
    }
  }

  /** A new access token: re-authenticate the live socket (the server answers `ready`). */
  reauth(token: string): void {
    if (this.ws && this.ws.readyState === OPEN && this.ready) {
      try {
        this.ws.send(encodeClientFrame({ type: 'auth', token }));
      } catch {
        /* the close handler reconnects */
      }
    }
  }

  /** The browser says the network is gone: do not wait for a timeout. */
  networkLost(): void {
    if (this.state === 'stopped') return;
    this.generation++;
    this.clearTimers();
    this.dropSocket(4000, 'offline');
    this.setState('offline');
  }

  /** The network is back (or the user asked): reconnect now. */
  reconnectNow(): void {
    if (this.state === 'stopped' || this.state === 'online') return;
    this.generation++;
    this.clearTimers();
    this.dropSocket(4000, 'reconnect');
    this.attempt = 0;
    this.setState('reconnecting');
    void this.connect();
  }

  private async connect(): Promise<void> {
    const gen = ++this.generation;
    let token: string | null;
    try {
      token = await this.opts.getToken();
    } catch {
      // Token refresh failed on the network: retry like any other failure.
      if (gen === this.generation) this.scheduleReconnect();
      return;
    }
    if (gen !== this.generation) return;
    if (!token) {
      this.stop();
      return;
    }
    let ws: WebSocketLike;
    try {
      ws = this.create(this.opts.url, [SUBPROTOCOL, BEARER_SUBPROTOCOL_PREFIX + token]);
    } catch {
      this.scheduleReconnect();
      return;
    }
    this.ws = ws;
    this.ready = false;
    // Opening and authenticating must finish in time too (a half-dead network can
    // leave a socket CONNECTING for minutes).
    this.armDeadline(gen, 12_000);
    ws.onopen = () => {
      if (gen !== this.generation) return;
      this.startPinging(gen);
    };
    ws.onmessage = (ev) => {
      if (gen !== this.generation || typeof ev.data !== 'string') return;
      this.heardFromServer();
      const frame = parseServerFrame(ev.data);
      if (!frame) return;
      if (frame.type === 'ready' && !this.ready) {
        this.ready = true;
        this.attempt = 0;
        this.setState('online');
        this.opts.onFrame(frame);
        this.opts.onReady();
        return;
      }
      this.opts.onFrame(frame);
    };
    ws.onerror = () => {
      /* a close event follows */
    };
    ws.onclose = (ev) => {
      if (gen !== this.generation) return;
      this.ws = null;
      this.handleClose(ev.code);
    };
  }

  private handleClose(code: number): void {
    const wasReady = this.ready;
    this.ready = false;
    this.clearTimers();
    if (wasReady) this.opts.onDown?.();
    if (this.state === 'stopped') return;
    if (code === CloseCode.UNAUTHORIZED) {
      this.setState('reconnecting');
      const gen = ++this.generation;
      this.opts
        .forceRefresh()
        .then((token) => {
          if (gen !== this.generation) return;
          if (!token) this.stop();
          else void this.connect();
        })
        .catch(() => gen === this.generation && this.scheduleReconnect());
      return;
    }
    if (typeof navigator !== 'undefined' && navigator.onLine === false) {
      this.setState('offline');
      return; // the `online` event reconnects
    }
    this.scheduleReconnect(code === CloseCode.POLICY_VIOLATION || code === CloseCode.TOO_BIG ? 3 : 0);
  }

  private scheduleReconnect(extraAttempts = 0): void {
    this.clearTimers();
    this.setState('reconnecting');
    const delay = backoffMs(this.attempt + extraAttempts);
    this.attempt++;
    const gen = ++this.generation;
    this.retryTimer = this.clock.setTimeout(() => {
      this.retryTimer = null;
      if (gen === this.generation) void this.connect();
    }, delay);
  }

  private startPinging(gen: number): void {
    const interval = this.opts.pingIntervalMs ?? 15_000;
    const tick = () => {
      if (gen !== this.generation || !this.ws) return;
      try {
        this.ws.send(encodeClientFrame({ type: 'ping' }));
      } catch {
        /* close handler */
      }
      this.armDeadline(gen, this.opts.pongTimeoutMs ?? 8_000);
      this.pingTimer = this.clock.setTimeout(tick, interval);
    };
    this.pingTimer = this.clock.setTimeout(tick, interval);
  }

  /** Unless the server says something within `ms`, the link is dead: reconnect. */
  private armDeadline(gen: number, ms: number): void {
    if (this.pongTimer !== null) return;
    this.pongTimer = this.clock.setTimeout(() => {
      this.pongTimer = null;
      if (gen !== this.generation) return;
      this.generation++;
      const wasReady = this.ready;
      this.ready = false;
      this.dropSocket(4000, 'timeout');
      if (wasReady) this.opts.onDown?.();
      this.scheduleReconnect();
    }, ms);
  }

  private heardFromServer(): void {
    if (this.pongTimer !== null) {
      this.clock.clearTimeout(this.pongTimer);
      this.pongTimer = null;
    }
  }

  private dropSocket(code: number, reason: string): void {
    const ws = this.ws;
    this.ws = null;
    const wasReady = this.ready;
    this.ready = false;
    if (ws) {
      ws.onopen = ws.onmessage = ws.onerror = ws.onclose = null;
      try {
        ws.close(code, reason);
      } catch {
        /* already closed */
      }
      if (wasReady) this.opts.onDown?.();
    }
  }

  private clearTimers(): void {
    for (const t of [this.retryTimer, this.pingTimer, this.pongTimer]) if (t !== null) this.clock.clearTimeout(t);
    this.retryTimer = this.pingTimer = this.pongTimer = null;
  }

  private setState(s: ConnState): void {
    if (this.state === s) return;
    this.state = s;
    this.opts.onState(s);
  }
}

/** ws:// or wss:// URL of `/ws` on the page's own origin. */
export function defaultSocketUrl(loc: { protocol: string; host: string } = globalThis.location): string {
  return `${loc.protocol === 'https:' ? 'wss:' : 'ws:'}//${loc.host}/ws`;
}
