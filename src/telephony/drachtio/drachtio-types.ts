/**
 * The parts of drachtio-srf 5, drachtio-fsmrf 4 and drachtio-modesl 1 (all CommonJS) this engine
 * uses, typed narrowly here: drachtio-srf's bundled typings miss several of them (the
 * `reconnecting` event, `Srf.SipMessage`, dialog `modify`), fsmrf and modesl ship none. The
 * versions are pinned exactly in package.json; these shapes were read from their sources.
 */
import type { EventEmitter } from 'node:events';

/** A parsed SIP URI (Srf.parseUri); undefined for text that is not one. */
export interface ParsedSipUri {
  readonly scheme?: string;
  readonly user?: string;
  readonly host?: string;
  readonly port?: number | null;
}

/** A name-addr header as Srf parses it (`getParsedHeader('from')`). */
export interface ParsedNameAddr {
  readonly uri: string;
  readonly name?: string;
  readonly params: Record<string, string | undefined>;
}

/** drachtio-srf's SipMessage (requests and responses share it). */
export interface SrfSipMessage {
  readonly type?: 'request' | 'response';
  readonly method?: string;
  readonly uri?: string;
  readonly status?: number;
  readonly body: string;
  get(name: string): string | undefined;
  has(name: string): boolean;
  getParsedHeader(name: 'from' | 'to' | 'p-asserted-identity'): ParsedNameAddr;
  toString(): string;
}

/** An incoming request (srf `Request`): the message plus where drachtio-server got it from. */
export interface SrfRequest extends SrfSipMessage, EventEmitter {
  readonly method: string;
  readonly uri: string;
  /** Network source of the request as drachtio-server saw it: the only basis of trust. */
  readonly source_address: string;
  readonly source_port: number;
  readonly protocol: string;
  canceled?: boolean;
}

export interface SrfResponse {
  readonly finalResponseSent: boolean;
  send(status: number, reason?: string, opts?: { headers?: Record<string, string>; body?: string }): void;
  send(status: number, opts: { headers?: Record<string, string>; body?: string }): void;
}

/** A SIP dialog (srf `Dialog`), UAS towards the caller or UAC towards FreeSWITCH. */
export interface SrfDialog extends EventEmitter {
  readonly id: string;
  readonly connected: boolean;
  readonly sip: { readonly callId: string; readonly localTag: string; readonly remoteTag: string };
  readonly local: { readonly sdp: string };
  readonly remote: { readonly sdp: string };
  destroy(opts?: { headers?: Record<string, string> }): Promise<unknown>;
  request(opts: { method: string; headers?: Record<string, string>; body?: string }): Promise<SrfSipMessage & { status: number }>;
}

export interface SrfConnectOptions {
  readonly host: string;
  readonly port: number;
  readonly secret: string;
  /** drachtio-srf's keepalive: a `ping` on the control connection every pingInterval ms. */
  readonly enablePing?: boolean;
  readonly pingInterval?: number;
  /** Caps the reconnect backoff (drachtio-srf grows the delay by 1.7× from 150 ms otherwise unbounded). */
  readonly reconnect?: { readonly retryMaxDelay: number };
}

/** The Srf application object. */
export interface SrfApp extends EventEmitter {
  connect(opts: SrfConnectOptions): void;
  disconnect(): void;
  invite(handler: (req: SrfRequest, res: SrfResponse) => void): void;
  /** New SUBSCRIBEs (`route|subscribe`); in-dialog ones go to their dialog's `subscribe` / `unsubscribe` events. */
  subscribe(handler: (req: SrfRequest, res: SrfResponse) => void): void;
  /** For an INVITE a 200 with `localSdp`; for a SUBSCRIBE a 202 (lib/srf.js) with `headers`. */
  createUAS(req: SrfRequest, res: SrfResponse, opts: { localSdp?: string; headers?: Record<string, string> }): Promise<SrfDialog>;
  /** A request outside any dialog; resolves with the request as sent, whose `response` event brings the answer. */
  request(uri: string, opts: { method: string; headers?: Record<string, string>; body?: string }): Promise<SrfRequest>;
  /** `remove_route|<verb>`: drachtio-server stops offering new requests of that method. */
  unregisterForMessages(verb: string): void;
  /** Forgets a dialog (in-dialog requests for it then reach the method handlers as new requests). */
  removeDialog(dialog: SrfDialog): void;
  /** Test hook: drachtio-srf's request/response layer is reached through `srf.app`. */
  readonly app: EventEmitter;
}

export interface SrfModule {
  new (tags?: string | string[]): SrfApp;
  parseUri(uri: string): ParsedSipUri | undefined;
  SipMessage: new (text: string) => SrfSipMessage;
}

/** A drachtio-modesl event (ESL `text/event-*`, `command/reply` or `api/response`). */
export interface EslEvent {
  getHeader(name: string): string | undefined;
  getBody(): string;
}

/** drachtio-modesl's ESL connection (inbound when given host, port and password). */
export interface EslConnection extends EventEmitter {
  /** Set before a deliberate disconnect so modesl does not reconnect by itself. */
  closing?: boolean;
  readonly socket: { readonly remoteAddress?: string } | null;
  connected(): boolean;
  api(command: string, callback: (response: EslEvent) => void): void;
  disconnect(): void;
}

export interface EslModule {
  Connection: new (host: string, port: number, password: string, onReady: () => void) => EslConnection;
}

/** The fsmrf `Mrf` (it only carries the Srf and options for its MediaServers here). */
export type MrfInstance = object;
export type MrfModule = new (srf: SrfApp, opts?: { customEvents?: string[] }) => MrfInstance;

export interface DtmfEvent {
  readonly dtmf: string;
  readonly duration?: string;
  /** FreeSWITCH's DTMF-Source: `RTP` (RFC 2833/4733), `INBAND_AUDIO` (start_dtmf), `ENDPOINT` (SIP INFO), … */
  readonly source?: string;
}

/** An fsmrf Endpoint: one FreeSWITCH channel, controlled over its outbound ESL connection. */
export interface MediaEndpoint extends EventEmitter {
  readonly uuid: string;
  readonly connected: boolean;
  readonly local: { readonly sdp: string };
  readonly dialog: SrfDialog;
  play(files: string | string[]): Promise<{ playbackSeconds?: string; playbackMilliseconds?: string }>;
  api(command: string, args?: string | string[]): Promise<unknown>;
  execute(app: string, arg?: string): Promise<EslEvent>;
  modify(sdp: string): Promise<string>;
  destroy(): Promise<void>;
}

/** An fsmrf MediaServer: one FreeSWITCH, reached over an inbound ESL connection. */
export interface MediaServer extends EventEmitter {
  closing?: boolean;
  readonly listenAddress?: string;
  readonly listenPort?: number;
  connected(): boolean;
  createEndpoint(opts: { remoteSdp: string; codecs?: string[]; headers?: Record<string, string> }): Promise<MediaEndpoint>;
  disconnect(): void;
}

export type MediaServerModule = new (
  conn: EslConnection, mrf: MrfInstance, listenAddress: string, listenPort: number,
  advertisedAddress: string | undefined, advertisedPort: number | undefined, profile: string,
) => MediaServer;
