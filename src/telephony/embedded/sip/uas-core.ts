/** What dialogs, incoming INVITEs and incoming SUBSCRIBEs need from the endpoint that owns them. */
import type { Logger } from '../../../log.js';
import type { Dialog } from './dialog.js';
import type { SipRequest, SipResponse } from './message.js';
import type { SipTimers } from './timers.js';
import type { TransportAddress, TransportProtocol } from './transport.js';

export interface UasCore {
  readonly timers: SipTimers;
  readonly logger: Logger;
  readonly userAgent: string;
  /** Allow header value (§20.5). */
  allowHeader(): string;
  /** Supported header value (§20.37); may be empty. */
  supportedHeader(): string;
  /** Allow-Events header value (RFC 6665 §8.2.2): the event packages we notify for; may be empty. */
  allowEventsHeader(): string;
  /** Our Contact for a dialog created over `transport` (§8.1.1.8, §12.1.1). */
  contactHeader(transport: TransportProtocol): string;
  /** Sends a response outside any transaction (2xx retransmissions, §13.3.1.4). */
  sendResponse(response: SipResponse, dest: TransportAddress): void;
  /**
   * Sends a non-INVITE request to `nextHop` through a new client transaction and resolves with
   * its final response; a timeout resolves with a local 408, a transport failure with a local 503
   * (§8.1.3.1).
   */
  sendRequest(request: SipRequest, nextHop: string): Promise<SipResponse>;
  /** Adds a dialog to the dialog table, before the response that creates it is sent. */
  registerDialog(dialog: Dialog): void;
  /** Drops a dialog from the dialog table. */
  forgetDialog(dialogId: string): void;
}

/**
 * Headers of a 200 to OPTIONS: "Allow, Accept, Accept-Encoding, Accept-Language, and Supported
 * header fields SHOULD be present" (§11.2). A node that implements event packages SHOULD list
 * them in Allow-Events in OPTIONS responses and in dialog-creating requests and their responses
 * (RFC 6665 §4.4.4); there is none until a notifier is attached.
 */
export function capabilityHeaders(core: UasCore): Record<string, string> {
  return {
    Allow: core.allowHeader(),
    Accept: 'application/sdp',
    'Accept-Encoding': 'identity',
    'Accept-Language': 'en',
    Supported: core.supportedHeader(),
    ...allowEventsHeaders(core),
  };
}

/** `{ 'Allow-Events': ... }` when we notify for some event package, else nothing (RFC 6665 §4.4.4). */
export function allowEventsHeaders(core: UasCore): Record<string, string> {
  const events = core.allowEventsHeader();
  return events === '' ? {} : { 'Allow-Events': events };
}
