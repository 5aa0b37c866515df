/**
 * A new INVITE outside any dialog, as the application sees it: ring, reject or accept it
 * (RFC 3261 §13.3.1). Cancellation (§9.2) and the 2xx/ACK handshake (§13.3.1.4) are handled here.
 */
import { EventEmitter } from 'node:events';
import { Dialog } from './dialog.js';
import { newTag } from './ids.js';
import type { SipRequest, SipResponse } from './message.js';
import { createResponse, type MessageBody } from './response.js';
import type { InviteServerTransaction } from './transactions/invite-server-transaction.js';
import type { TransportAddress } from './transport.js';
import type { UasCore } from './uas-core.js';

type InviteState = 'pending' | 'accepted' | 'rejected' | 'cancelled' | 'closed';

/**
 * "the UAS MUST send a non-100 provisional response at every minute, to handle the possibility of
 * lost provisional responses" (§13.3.1.1).
 */
export const PROVISIONAL_REPEAT_MS = 60_000;
/** Default wait for the application to answer before we reject with 480 ourselves. */
export const DEFAULT_ANSWER_TIMEOUT_MS = 180_000;

export interface IncomingInviteOptions {
  answerTimeoutMs?: number;
  /** Called once when the INVITE is answered, cancelled or dropped. */
  onSettled?(invite: IncomingInvite): void;
}

export class IncomingInvite extends EventEmitter {
  /** Our To tag for every response to this INVITE and for the dialog (§8.2.6.2, §12.1.1). */
  readonly localTag = newTag();
  private state: InviteState = 'pending';
  private lastProvisional: SipResponse | undefined;
  private repeatTimer: NodeJS.Timeout | undefined;
  private answerTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly core: UasCore,
    private readonly transaction: InviteServerTransaction,
    readonly request: SipRequest,
    readonly source: TransportAddress,
    private readonly options: IncomingInviteOptions = {},
  ) {
    super();
    transaction.localTag = this.localTag;
    transaction.cancelHandler = () => this.cancel();
    this.answerTimer = setTimeout(() => {
      this.answerTimer = undefined;
      this.core.logger.warn({ callId: request.callId }, 'INVITE not answered by the application: 480');
      this.reject(480, 'Temporarily Unavailable');
    }, options.answerTimeoutMs ?? DEFAULT_ANSWER_TIMEOUT_MS);
  }

  /** True once a CANCEL won the race against our final response (487 was sent). */
  get cancelled(): boolean {
    return this.state === 'cancelled';
  }

  /** True while no final response was sent and no CANCEL came. */
  get pending(): boolean {
    return this.state === 'pending';
  }

  /**
   * Sends a provisional response, e.g. 180 Ringing or 183 Session Progress with early media.
   * It carries our To tag and Contact, creating an early dialog on the caller's side (§12.1.1).
   */
  provisional(status: number, reason: string, body?: MessageBody): void {
    if (!Number.isInteger(status) || status <= 100 || status > 199) throw new RangeError(`not a provisional status: ${status}`);
    if (this.state !== 'pending') return;
    const response = createResponse(this.request, status, reason, {
      toTag: this.localTag,
      copyRecordRoute: true,
      headers: { Contact: this.core.contactHeader(this.source.transport), Server: this.core.userAgent },
      body: body ?? null,
    });
    this.lastProvisional = response;
    this.transaction.respond(response);
    if (this.repeatTimer === undefined) {
      this.repeatTimer = setInterval(() => {
        if (this.lastProvisional && this.state === 'pending') this.transaction.respond(this.lastProvisional);
      }, PROVISIONAL_REPEAT_MS);
    }
  }

  /** Sends a final non-2xx response (300–699). Ignored once answered or cancelled. */
  reject(status: number, reason: string, headers: Record<string, string> = {}): void {
    if (!Number.isInteger(status) || status < 300 || status > 699) throw new RangeError(`not a rejection status: ${status}`);
    if (this.state !== 'pending') return;
    this.settle('rejected');
    this.transaction.respond(
      createResponse(this.request, status, reason, {
        toTag: this.localTag,
        headers: { Server: this.core.userAgent, ...headers },
      }),
    );
  }

  /**
   * Sends 200 OK (Contact, To tag, Allow, Supported, the body as answer or offer) and retransmits
   * it until the ACK (§13.3.1.4). Resolves with the confirmed dialog when the ACK arrives; rejects
   * if a CANCEL won the race, the caller hung up first, or no ACK came within 64*T1 (we then send
   * BYE).
   */
  accept(body: MessageBody | null, headers: Record<string, string> = {}): Promise<Dialog> {
    if (this.state !== 'pending') {
      return Promise.reject(new Error(this.state === 'cancelled' ? 'INVITE was cancelled' : 'INVITE already answered'));
    }
    this.settle('accepted');
    const dialog = new Dialog(this.core, this.request, this.localTag);
    // "When a UAS responds to a request with a response that establishes a dialog (such as a 2xx
    // to INVITE), the UAS MUST copy all Record-Route header field values from the request into
    // the response ... and MUST add a Contact header field to the response." (§12.1.1)
    const response = createResponse(this.request, 200, 'OK', {
      toTag: this.localTag,
      copyRecordRoute: true,
      headers: { ...dialog.acceptHeaders(), ...headers },
      body,
    });
    this.core.registerDialog(dialog);
    this.transaction.respond(response);
    return dialog.awaitAck(response, this.transaction).then(() => dialog);
  }

  /** A CANCEL matched our transaction before the final response (§9.2). @internal */
  cancel(): void {
    if (this.state !== 'pending') return;
    this.settle('cancelled');
    // "the UAS SHOULD respond to the INVITE with a 487 (Request Terminated)." (§9.2)
    this.transaction.respond(
      createResponse(this.request, 487, 'Request Terminated', {
        toTag: this.localTag,
        headers: { Server: this.core.userAgent },
      }),
    );
    try {
      this.emit('cancel');
    } catch (err) {
      this.core.logger.error({ err, callId: this.request.callId }, 'cancel listener threw');
    }
  }

  /** Endpoint shutdown: stop timers without answering. @internal */
  dispose(): void {
    if (this.state === 'pending') this.settle('closed');
    this.clearTimers();
  }

  private settle(state: InviteState): void {
    this.state = state;
    this.clearTimers();
    this.options.onSettled?.(this);
  }

  private clearTimers(): void {
    if (this.repeatTimer !== undefined) clearInterval(this.repeatTimer);
    if (this.answerTimer !== undefined) clearTimeout(this.answerTimer);
    this.repeatTimer = undefined;
    this.answerTimer = undefined;
  }
}
