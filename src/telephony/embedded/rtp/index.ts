/** Embedded RTP media: packet format, G.711, prompts, the shared send clock, RFC 4733, ports, sessions. */
export * from './rtp-packet.js';
export * from './g711.js';
export * from './prompt-library.js';
export * from './media-clock.js';
export * from './telephone-event.js';
export * from './port-allocator.js';
export * from './rtp-session.js';
