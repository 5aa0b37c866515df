/**
 * SDP offer/answer (RFC 3264), parsed and written with sdp-transform: the embedded engine's
 * answers, and the codec check both engines make before they answer (488 otherwise).
 * We take one audio stream with G.711 (PCMU or PCMA, in the offerer's order of preference) and
 * RFC 4733 telephone-event when offered; everything else is refused in the answer (port 0).
 */
import { isIP } from 'node:net';
import * as sdpTransform from 'sdp-transform';
import type { AudioCodec } from './embedded/rtp/g711.js';

export interface NegotiatedMedia {
  readonly codec: { readonly name: AudioCodec; readonly payloadType: number };
  /** Offered telephone-event payload type with an 8000 Hz clock (RFC 4733 §7.1.1), or null. */
  readonly telephoneEventPayloadType: number | null;
  /** Where to send RTP; null when the offer holds the stream (RFC 3264 §8.4: 0.0.0.0 or sendonly/inactive). */
  readonly remote: { readonly address: string; readonly port: number } | null;
  /** Index of the accepted audio m= line; other m= lines are refused with port 0. */
  readonly mediaIndex: number;
  readonly offer: sdpTransform.SessionDescription;
}

export type NegotiationResult =
  | { readonly ok: true; readonly media: NegotiatedMedia }
  | { readonly ok: false; readonly reason: 'malformed' | 'noAudio' | 'noCommonCodec' };

const STATIC_CODECS: Readonly<Record<number, AudioCodec>> = { 0: 'PCMU', 8: 'PCMA' };

function codecOf(payload: number, rtpmap: sdpTransform.MediaAttributes['rtp']): AudioCodec | null {
  const map = rtpmap.find((r) => r.payload === payload);
  if (map !== undefined) {
    // sdp-transform turns an all-digit encoding name ("a=rtpmap:0 1234/8000") into a number.
    const name = String(map.codec).toUpperCase();
    if ((name === 'PCMU' || name === 'PCMA') && map.rate === 8000) return name;
    return null;
  }
  // RFC 3551 §6: static payload types need no rtpmap.
  return STATIC_CODECS[payload] ?? null;
}

/** Chooses the media for an SDP offer, or says why the offer cannot be accepted (→ 488). */
export function negotiate(offerText: string): NegotiationResult {
  let offer: sdpTransform.SessionDescription;
  try {
    offer = sdpTransform.parse(offerText);
  } catch {
    return { ok: false, reason: 'malformed' };
  }
  if (offer.version !== 0 || !Array.isArray(offer.media)) return { ok: false, reason: 'malformed' };
  let sawAudio = false;
  for (const [index, m] of offer.media.entries()) {
    if (m.type !== 'audio' || m.port === 0) continue;
    sawAudio = true;
    // Plain RTP only: SRTP/AVPF profiles need keys and feedback we do not do.
    if (m.protocol !== 'RTP/AVP') continue;
    const payloads = String(m.payloads ?? '').trim().split(/\s+/).filter((p) => /^\d+$/.test(p)).map(Number);
    const rtp = m.rtp ?? [];
    let codec: NegotiatedMedia['codec'] | null = null;
    for (const pt of payloads) {
      const name = codecOf(pt, rtp);
      if (name !== null) {
        codec = { name, payloadType: pt };
        break;
      }
    }
    if (codec === null) continue;
    const te = rtp.find((r) => String(r.codec).toLowerCase() === 'telephone-event' && r.rate === 8000 && payloads.includes(r.payload));
    const address = m.connection?.ip ?? offer.connection?.ip;
    if (address === undefined || isIP(address) === 0) return { ok: false, reason: 'malformed' };
    const direction = m.direction ?? offer.direction ?? 'sendrecv';
    const held = address === '0.0.0.0' || address === '::' || direction === 'sendonly' || direction === 'inactive';
    return {
      ok: true,
      media: {
        codec,
        telephoneEventPayloadType: te?.payload ?? null,
        remote: held ? null : { address, port: m.port },
        mediaIndex: index,
        offer,
      },
    };
  }
  return { ok: false, reason: sawAudio ? 'noCommonCodec' : 'noAudio' };
}

export interface LocalMedia {
  readonly address: string;
  readonly port: number;
  /** RFC 4566 §5.2 o= values; the version goes up with every new description of the session. */
  readonly sessionId: number;
  readonly sessionVersion: number;
}

function origin(local: LocalMedia): string {
  const ipVer = isIP(local.address) === 6 ? 'IP6' : 'IP4';
  return `o=vmaccess ${local.sessionId} ${local.sessionVersion} IN ${ipVer} ${local.address}`;
}

function direction(media: NegotiatedMedia): string {
  // RFC 3264 §6.1: answer sendonly with recvonly, inactive with inactive.
  const offered = media.offer.media[media.mediaIndex]?.direction ?? media.offer.direction ?? 'sendrecv';
  if (offered === 'sendonly') return 'recvonly';
  if (offered === 'inactive') return 'inactive';
  return 'sendrecv';
}

/** The answer to an offer accepted by `negotiate` (RFC 3264 §6). */
export function buildAnswer(local: LocalMedia, media: NegotiatedMedia): string {
  const ipVer = isIP(local.address) === 6 ? 'IP6' : 'IP4';
  const lines = ['v=0', origin(local), 's=vmaccess', `c=IN ${ipVer} ${local.address}`, 't=0 0'];
  for (const [index, m] of media.offer.media.entries()) {
    if (index !== media.mediaIndex) {
      // RFC 3264 §6: every offered stream gets an m= line; port 0 refuses it.
      lines.push(`m=${m.type} 0 ${m.protocol} ${String(m.payloads ?? '0').split(/\s+/)[0] ?? '0'}`);
      continue;
    }
    const { codec } = media;
    const te = media.telephoneEventPayloadType;
    lines.push(`m=audio ${local.port} RTP/AVP ${codec.payloadType}${te === null ? '' : ` ${te}`}`);
    lines.push(`a=rtpmap:${codec.payloadType} ${codec.name}/8000`);
    if (te !== null) {
      lines.push(`a=rtpmap:${te} telephone-event/8000`, `a=fmtp:${te} 0-15`);
    }
    lines.push('a=ptime:20', `a=${direction(media)}`);
  }
  return lines.join('\r\n') + '\r\n';
}

/** Our offer in a 200 OK when the INVITE had none (RFC 3261 §13.2.1 delayed offer). */
export function buildOffer(local: LocalMedia): string {
  const ipVer = isIP(local.address) === 6 ? 'IP6' : 'IP4';
  return [
    'v=0', origin(local), 's=vmaccess', `c=IN ${ipVer} ${local.address}`, 't=0 0',
    `m=audio ${local.port} RTP/AVP 0 8 101`,
    'a=rtpmap:0 PCMU/8000', 'a=rtpmap:8 PCMA/8000', 'a=rtpmap:101 telephone-event/8000', 'a=fmtp:101 0-15',
    'a=ptime:20', 'a=sendrecv',
  ].join('\r\n') + '\r\n';
}

/**
 * Reads the answer to our own offer (delayed offer: the answer comes in the ACK). Only the
 * codecs we offered are acceptable.
 */
export function negotiateAnswer(answerText: string): NegotiationResult {
  const result = negotiate(answerText);
  if (!result.ok) return result;
  const { codec, telephoneEventPayloadType } = result.media;
  const offered = (codec.name === 'PCMU' && codec.payloadType === 0) || (codec.name === 'PCMA' && codec.payloadType === 8);
  if (!offered) return { ok: false, reason: 'noCommonCodec' };
  return telephoneEventPayloadType === null || telephoneEventPayloadType === 101
    ? result
    : { ok: true, media: { ...result.media, telephoneEventPayloadType: null } };
}
