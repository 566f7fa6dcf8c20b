import { DiffSSLError, FormatError } from '@diffssl/core';

/**
 * A pickle asked for something a tensor state dict never needs (a global
 * outside the allow-list, an opcode that builds arbitrary objects). Nothing
 * was executed.
 *
 * @public
 */
export class UnsafePickleError extends FormatError {
  /** @param message - what was refused and what is allowed */
  constructor(message: string) {
    super(message);
  }
}

/**
 * The weights do not fit the model configuration: missing, unexpected and
 * mis-shaped keys, all listed.
 *
 * @public
 */
export class CheckpointMismatchError extends DiffSSLError {
  /** Keys the configuration needs that the checkpoint lacks. */
  readonly missing: readonly string[];
  /** Keys the checkpoint has that the configuration does not use. */
  readonly unexpected: readonly string[];
  /** Keys present with another shape: `key: expected [..], found [..]`. */
  readonly misshaped: readonly string[];

  /** @param details - the three lists, and optionally what to change */
  constructor(details: { missing: string[]; unexpected: string[]; misshaped: string[]; hint?: string | undefined }) {
    const parts = [
      details.missing.length ? `${details.missing.length} missing (${preview(details.missing)})` : '',
      details.unexpected.length ? `${details.unexpected.length} unexpected (${preview(details.unexpected)})` : '',
      details.misshaped.length ? `${details.misshaped.length} mis-shaped (${preview(details.misshaped)})` : '',
    ].filter(Boolean);
    super('ERR_CONFIG', `checkpoint does not fit the U-Net configuration: ${parts.join('; ')}${details.hint ? `; ${details.hint}` : ''}`);
    this.missing = details.missing;
    this.unexpected = details.unexpected;
    this.misshaped = details.misshaped;
  }
}

function preview(keys: readonly string[]): string {
  return keys.length <= 6 ? keys.join(', ') : `${keys.slice(0, 6).join(', ')}, ...`;
}
