/**
 * Stable machine-readable error codes of DiffSSL.
 *
 * @public
 */
export type DiffSSLErrorCode = 'ERR_SHAPE' | 'ERR_DTYPE' | 'ERR_CONFIG' | 'ERR_PROVIDER_UNAVAILABLE' | 'ERR_NON_FINITE' | 'ERR_FORMAT' | 'ERR_UNSUPPORTED';

/**
 * Base class of every error DiffSSL throws on purpose. Catch it to handle all of
 * them; switch on {@link DiffSSLError.code} for the kind.
 *
 * @public
 */
export class DiffSSLError extends Error {
  /** A stable code that does not change between releases. */
  readonly code: DiffSSLErrorCode;

  /**
   * @param code - the stable error code
   * @param message - what was expected and what was found
   * @param options - standard error options (`cause`)
   */
  constructor(code: DiffSSLErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/**
 * A tensor has a shape that the operation cannot accept.
 *
 * @public
 */
export class ShapeError extends DiffSSLError {
  /** @param message - what shape was expected and what was found */
  constructor(message: string) {
    super('ERR_SHAPE', message);
  }
}

/**
 * A tensor has a data type that the operation cannot accept.
 *
 * @public
 */
export class DTypeError extends DiffSSLError {
  /** @param message - what dtype was expected and what was found */
  constructor(message: string) {
    super('ERR_DTYPE', message);
  }
}

/**
 * An option or configuration value is invalid.
 *
 * @public
 */
export class ConfigError extends DiffSSLError {
  /** @param message - what value was expected and what was found */
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_CONFIG', message, options);
  }
}

/**
 * A requested ONNX Runtime execution provider could not be loaded (and the
 * caller asked for `strict`, or no provider in the list worked).
 *
 * @public
 */
export class ProviderUnavailableError extends DiffSSLError {
  /** @param message - which providers were tried and why each failed */
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_PROVIDER_UNAVAILABLE', message, options);
  }
}

/**
 * A computation produced NaN or an infinite value where a finite one is
 * required (for example the loss of a train step). Nothing was updated.
 *
 * @public
 */
export class NonFiniteError extends DiffSSLError {
  /** @param message - which value was not finite */
  constructor(message: string) {
    super('ERR_NON_FINITE', message);
  }
}

/**
 * A file or byte buffer does not follow the format it claims (safetensors,
 * checkpoint, ONNX).
 *
 * @public
 */
export class FormatError extends DiffSSLError {
  /** @param message - what was expected in the file and what was found */
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_FORMAT', message, options);
  }
}

/**
 * The request is well-formed but not supported (yet).
 *
 * @public
 */
export class UnsupportedError extends DiffSSLError {
  /** @param message - what is not supported and what is */
  constructor(message: string) {
    super('ERR_UNSUPPORTED', message);
  }
}

/**
 * Named tensors do not fit what a model expects: the missing, unexpected and
 * mis-shaped names, all listed (as PyTorch's `load_state_dict` reports them).
 *
 * @public
 */
export class StateDictMismatchError extends DiffSSLError {
  /** Names the model needs that were not given. */
  readonly missing: readonly string[];
  /** Names given that the model does not have. */
  readonly unexpected: readonly string[];
  /** Names given with another dtype or shape: `name: expected float32[10, 32], found float32[10, 64]`. */
  readonly misshaped: readonly string[];

  /**
   * @param what - what was being loaded (for example `DifFormer.loadStateDict`)
   * @param details - the three lists
   */
  constructor(what: string, details: { missing: readonly string[]; unexpected: readonly string[]; misshaped: readonly string[] }) {
    const preview = (names: readonly string[]) => (names.length <= 6 ? names.join(', ') : `${names.slice(0, 6).join(', ')}, ... (${names.length - 6} more)`);
    const parts = [
      details.missing.length ? `${details.missing.length} missing (${preview(details.missing)})` : '',
      details.unexpected.length ? `${details.unexpected.length} unexpected (${preview(details.unexpected)})` : '',
      details.misshaped.length ? `${details.misshaped.length} mis-shaped (${preview(details.misshaped)})` : '',
    ].filter(Boolean);
    super('ERR_CONFIG', `${what}: the tensors do not fit: ${parts.join('; ')}`);
    this.missing = details.missing;
    this.unexpected = details.unexpected;
    this.misshaped = details.misshaped;
  }
}
