/** The embedded SIP stack (UAS, and notifier for SIP events): public surface. */
export { SipParseError, type SipParseErrorOptions } from './errors.js';
export {
  DEFAULT_MAX_FORWARDS,
  parseMessage,
  SipMessage,
  SipRequest,
  SipResponse,
  type SipHeader,
} from './message.js';
export { parseUri, formatUri, decodePercent, uriScheme, type SipUri, type UriScheme } from './uri.js';
export { parseVia, formatVia, BRANCH_MAGIC_COOKIE, type Via } from './via.js';
export { parseNameAddr, formatNameAddr, type NameAddr } from './name-addr.js';
export { parseCSeq, parseMaxForwards, type CSeq } from './header-values.js';
export { splitList, quote, type Params } from './grammar.js';
export { headerKey, canonicalHeaderName } from './header-names.js';
export { createResponse, createLocalResponse, isLocalResponse, type MessageBody, type ResponseOptions } from './response.js';
export { newBranch, newCallId, newTag } from './ids.js';
export { DEFAULT_TIMERS, resolveTimers, type SipTimers } from './timers.js';
export {
  isKeepalive,
  normalizeAddress,
  type MessageCallback,
  type ReceiveInfo,
  type SipTransport,
  type TransportAddress,
  type TransportProtocol,
} from './transport.js';
export { SipUdpTransport } from './transport-udp.js';
export { SipTcpTransport, type TcpTransportOptions } from './transport-tcp.js';
export { TcpFramer, type Frame } from './tcp-framer.js';
export { TransactionState, type TransactionEnvironment } from './transactions/transaction.js';
export { InviteServerTransaction, type InviteServerTransactionUser } from './transactions/invite-server-transaction.js';
export { NonInviteServerTransaction } from './transactions/non-invite-server-transaction.js';
export { NonInviteClientTransaction, type ClientTransactionUser } from './transactions/non-invite-client-transaction.js';
export { serverTransactionKey, clientTransactionKey } from './transactions/matching.js';
export { Dialog, type DialogState, type DialogTerminationReason, type DialogRequestOptions, type RespondFn } from './dialog.js';
export { IncomingInvite, DEFAULT_ANSWER_TIMEOUT_MS, PROVISIONAL_REPEAT_MS, type IncomingInviteOptions } from './incoming-invite.js';
export { IncomingSubscribe, parseEventHeader, type EventHeader, type IncomingSubscribeOptions } from './incoming-subscribe.js';
export { Invite2xxRetransmitter, type Invite2xxRetransmitterOptions } from './invite-2xx-retransmitter.js';
export { checkRequest, KNOWN_METHODS, type Rejection, type RequestPolicy } from './request-checks.js';
export { annotateTopVia, responseDestination } from './response-routing.js';
export {
  SipEndpoint,
  DEFAULT_ALLOWED_METHODS,
  type OutOfDialogNotify,
  type SipEndpointOptions,
  type SipEndpointStats,
} from './user-agent.js';
