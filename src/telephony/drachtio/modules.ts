/**
 * Loads the drachtio packages (CommonJS) with the narrow types of drachtio-types.ts.
 *
 * The MediaServer class is taken from drachtio-fsmrf's lib/ directly (fsmrf 4.1.2 is pinned
 * exactly): `Mrf.connect()` creates its ESL connection where we cannot reach it, and that
 * connection keeps reconnecting by itself after a failed first attempt (a wrong password, a
 * FreeSWITCH without the drachtio_mrf profile) with no way to stop it. Building the MediaServer on
 * an ESL connection we own lets the engine stop every attempt it gives up on.
 */
import { createRequire } from 'node:module';
import type { EslModule, MediaServerModule, MrfModule, SrfModule } from './drachtio-types.js';

const require = createRequire(import.meta.url);

export const Srf = require('drachtio-srf') as SrfModule;
export const Mrf = require('drachtio-fsmrf') as MrfModule;
export const MediaServer = require('drachtio-fsmrf/lib/mediaserver.js') as MediaServerModule;
export const esl = require('drachtio-modesl') as EslModule;
