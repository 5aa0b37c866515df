/** The IVR settings of one call: the operator's timeouts and the domain's access-code lengths. */
import type { Config } from '../config.js';
import { DEFAULT_IVR_SETTINGS, type IvrSettings } from '../ivr/types.js';
import type { RoutedCall } from './router.js';

export function ivrSettingsFor(config: Config, domain: RoutedCall['domain']): IvrSettings {
  return {
    ...DEFAULT_IVR_SETTINGS,
    noInputTimeoutMs: config.ivr.noInputTimeoutMs,
    interDigitTimeoutMs: config.ivr.interDigitTimeoutMs,
    accessCodeLength: { minLength: domain.accessCodeMinLength, maxLength: domain.accessCodeMaxLength },
  };
}
