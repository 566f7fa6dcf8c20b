import { FormatError } from '@diffssl/core';
import { UnsafePickleError } from './errors.js';

/** A reference to a storage record of the checkpoint zip (`data/<key>`). */
export interface StorageReference {
  readonly kind: 'storage';
  /** The storage class name, e.g. `FloatStorage`. */
  readonly storageType: string;
  /** The record key (`data/<key>` in the zip). */
  readonly key: string;
  /** Number of elements in the storage. */
  readonly numel: number;
}

/** What `torch._utils._rebuild_tensor_v2` describes: a strided view of a storage. */
export interface TensorReference {
  readonly kind: 'tensor';
  readonly storage: StorageReference;
  readonly offset: number;
  readonly shape: readonly number[];
  readonly strides: readonly number[];
}

/** Values the restricted unpickler can produce. */
export type PickleValue =
  | null
  | boolean
  | number
  | bigint
  | string
  | Uint8Array
  | PickleValue[]
  | PickleTuple
  | PickleDict
  | TensorReference
  | StorageReference
  | AllowedGlobal;

/** A Python tuple. */
export class PickleTuple {
  constructor(readonly items: PickleValue[]) {}
}

/** A Python dict or OrderedDict (string or numeric keys). */
export class PickleDict {
  readonly entries = new Map<string | number | bigint, PickleValue>();
  /** Attributes set by BUILD (OrderedDict `_metadata`); kept, never interpreted. */
  readonly attributes = new Map<string, PickleValue>();
}

/** A global from the allow-list. */
export class AllowedGlobal {
  constructor(readonly name: string) {}
}

/** The storage classes a tensor state dict may reference. */
export const STORAGE_TYPES = [
  'FloatStorage',
  'HalfStorage',
  'BFloat16Storage',
  'DoubleStorage',
  'LongStorage',
  'IntStorage',
  'ShortStorage',
  'CharStorage',
  'ByteStorage',
  'BoolStorage',
] as const;

const ALLOWED_GLOBALS = new Set([
  'collections.OrderedDict',
  'torch._utils._rebuild_tensor_v2',
  'torch._utils._rebuild_parameter',
  ...STORAGE_TYPES.map((t) => `torch.${t}`),
]);

/**
 * Bounds on what a pickle may make this reader hold: a hostile pickle of a few
 * MB must not become GBs of objects. A state dict needs a handful of memo
 * entries and containers per tensor, so these allow hundreds of thousands of
 * tensors.
 */
const LIMITS = { memo: 2_000_000, stack: 2_000_000, containers: 1_000_000, dimensions: 32, string: 100_000_000 };

/** A name as errors quote it: at most 100 characters. */
function quoted(text: string): string {
  return text.length <= 100 ? text : `${text.slice(0, 100)}... (${text.length} characters)`;
}

/**
 * A pickle reader that understands exactly what a PyTorch tensor state dict
 * needs and nothing more: the data-structure opcodes, `collections.OrderedDict`,
 * `torch._utils._rebuild_tensor_v2`, `torch._utils._rebuild_parameter` and the
 * storage classes. Any other global, and the opcodes that build arbitrary
 * objects (INST, OBJ, NEWOBJ, EXT*), raise {@link UnsafePickleError}. Nothing is
 * ever executed: REDUCE on an allowed global is interpreted by this reader.
 *
 * @param bytes - the pickle (`data.pkl` of a torch zip checkpoint)
 * @returns the unpickled value
 * @throws {@link UnsafePickleError} for anything outside the allow-list; `FormatError` for malformed input
 * @public
 */
export function restrictedUnpickle(bytes: Uint8Array): PickleValue {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const decoder = new TextDecoder('utf-8', { fatal: false });
  let position = 0;
  const stack: PickleValue[] = [];
  const marks: number[] = [];
  const memo = new Map<number, PickleValue>();

  const need = (count: number) => {
    if (position + count > bytes.byteLength) throw new FormatError(`pickle: truncated at byte ${position} (needed ${count} more bytes)`);
  };
  /** Checks that `count` bytes remain, advances past them and returns where they start. */
  const advance = (count: number) => {
    need(count);
    position += count;
    return position - count;
  };
  const u8 = () => bytes[advance(1)]!;
  const u16 = () => view.getUint16(advance(2), true);
  const u32 = () => view.getUint32(advance(4), true);
  const i32 = () => view.getInt32(advance(4), true);
  const take = (count: number | bigint) => {
    if (typeof count === 'bigint' || count < 0 || count > LIMITS.string)
      throw new FormatError(`pickle: a string of ${count} bytes is negative or exceeds the limit`);
    need(count);
    position += count;
    return bytes.subarray(position - count, position);
  };
  const line = () => {
    const end = bytes.indexOf(0x0a, position);
    if (end < 0) throw new FormatError('pickle: unterminated text line');
    const text = decoder.decode(bytes.subarray(position, end));
    position = end + 1;
    return text;
  };
  const push = (value: PickleValue) => {
    if (stack.length >= LIMITS.stack) throw new FormatError(`pickle: stack limit of ${LIMITS.stack} values exceeded`);
    stack.push(value);
  };
  let containers = 0;
  /** Counts a new dict, list or tuple against the limit. */
  const created = <T extends PickleValue>(value: T): T => {
    if (++containers > LIMITS.containers) throw new FormatError(`pickle: more than the limit of ${LIMITS.containers} dicts, lists and tuples`);
    return value;
  };
  const pop = (): PickleValue => {
    if (stack.length === 0 || (marks.length > 0 && stack.length <= marks[marks.length - 1]!))
      throw new FormatError(`pickle: stack underflow at byte ${position}`);
    return stack.pop()!;
  };
  const popMark = (): PickleValue[] => {
    const mark = marks.pop();
    if (mark === undefined) throw new FormatError(`pickle: no MARK for the opcode at byte ${position - 1}`);
    return stack.splice(mark);
  };
  const top = (): PickleValue => {
    if (stack.length === 0) throw new FormatError(`pickle: empty stack at byte ${position}`);
    return stack[stack.length - 1]!;
  };
  const memoize = (index: number) => {
    if (memo.size >= LIMITS.memo) throw new FormatError(`pickle: memo limit of ${LIMITS.memo} entries exceeded`);
    memo.set(index, top());
  };
  const recall = (index: number) => {
    if (!memo.has(index)) throw new FormatError(`pickle: memo entry ${index} is not defined`);
    push(memo.get(index)!);
  };
  const global = (module: string, name: string) => {
    const full = `${module}.${name}`;
    if (!ALLOWED_GLOBALS.has(full)) {
      throw new UnsafePickleError(
        `pickle: refusing global '${quoted(full)}'; a tensor state dict only needs ${[...ALLOWED_GLOBALS].slice(0, 4).join(', ')} and the torch storage classes`,
      );
    }
    push(new AllowedGlobal(full));
  };
  const setItems = (target: PickleValue, items: PickleValue[]) => {
    if (!(target instanceof PickleDict)) throw new FormatError('pickle: SETITEM(S) on something that is not a dict');
    if (items.length % 2 !== 0) throw new FormatError('pickle: SETITEMS with an odd number of items');
    for (let i = 0; i < items.length; i += 2) target.entries.set(dictKey(items[i]!), items[i + 1]!);
  };

  for (;;) {
    const opcode = u8();
    switch (opcode) {
      case 0x80: // PROTO
        if (u8() > 5) throw new FormatError('pickle: protocol above 5');
        break;
      case 0x95: // FRAME
        need(8);
        position += 8;
        break;
      case 0x2e: // STOP
        if (stack.length !== 1) throw new FormatError(`pickle: STOP with ${stack.length} values on the stack`);
        return stack[0]!;
      case 0x28: // MARK
        marks.push(stack.length);
        break;
      case 0x7d: // EMPTY_DICT
        push(created(new PickleDict()));
        break;
      case 0x64: {
        // DICT
        const items = popMark();
        const dict = created(new PickleDict());
        setItems(dict, items);
        push(dict);
        break;
      }
      case 0x5d: // EMPTY_LIST
        push(created([]));
        break;
      case 0x6c: // LIST
        push(created(popMark()));
        break;
      case 0x29: // EMPTY_TUPLE
        push(created(new PickleTuple([])));
        break;
      case 0x74: // TUPLE
        push(created(new PickleTuple(popMark())));
        break;
      case 0x85: // TUPLE1
        push(created(new PickleTuple([pop()])));
        break;
      case 0x86: {
        const b = pop();
        push(created(new PickleTuple([pop(), b])));
        break;
      }
      case 0x87: {
        const c = pop();
        const b = pop();
        push(created(new PickleTuple([pop(), b, c])));
        break;
      }
      case 0x58: // BINUNICODE
        push(decoder.decode(take(u32())));
        break;
      case 0x8c: // SHORT_BINUNICODE
        push(decoder.decode(take(u8())));
        break;
      case 0x8d: // BINUNICODE8
        push(decoder.decode(take(view.getBigUint64(advance(8), true))));
        break;
      case 0x54: // BINSTRING
        push(decoder.decode(take(i32())));
        break;
      case 0x55: // SHORT_BINSTRING
        push(decoder.decode(take(u8())));
        break;
      case 0x42: // BINBYTES
        push(take(u32()).slice());
        break;
      case 0x43: // SHORT_BINBYTES
        push(take(u8()).slice());
        break;
      case 0x4a: // BININT
        push(i32());
        break;
      case 0x4b: // BININT1
        push(u8());
        break;
      case 0x4d: // BININT2
        push(u16());
        break;
      case 0x8a: {
        // LONG1: little-endian two's complement
        const digits = take(u8());
        let value = 0n;
        for (let i = digits.length - 1; i >= 0; i--) value = (value << 8n) | BigInt(digits[i]!);
        if (digits.length > 0 && digits[digits.length - 1]! & 0x80) value -= 1n << BigInt(8 * digits.length);
        push(value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : value);
        break;
      }
      case 0x4e: // NONE
        push(null);
        break;
      case 0x88:
        push(true);
        break;
      case 0x89:
        push(false);
        break;
      case 0x47: // BINFLOAT (big-endian)
        push(view.getFloat64(advance(8), false));
        break;
      case 0x71: // BINPUT
        memoize(u8());
        break;
      case 0x72: // LONG_BINPUT
        memoize(u32());
        break;
      case 0x94: // MEMOIZE
        memoize(memo.size);
        break;
      case 0x68: // BINGET
        recall(u8());
        break;
      case 0x6a: // LONG_BINGET
        recall(u32());
        break;
      case 0x30: // POP
        pop();
        break;
      case 0x31: // POP_MARK
        popMark();
        break;
      case 0x32: // DUP
        push(top());
        break;
      case 0x63: // GLOBAL
        global(line(), line());
        break;
      case 0x93: {
        // STACK_GLOBAL
        const name = pop();
        const module = pop();
        if (typeof module !== 'string' || typeof name !== 'string') throw new FormatError('pickle: STACK_GLOBAL needs two strings');
        global(module, name);
        break;
      }
      case 0x51: {
        // BINPERSID
        push(persistentLoad(pop()));
        break;
      }
      case 0x52: {
        // REDUCE
        const args = pop();
        const callable = pop();
        push(reduce(callable, args));
        break;
      }
      case 0x62: {
        // BUILD: only setting attributes on a dict (OrderedDict._metadata) is allowed.
        const state = pop();
        const target = top();
        if (!(target instanceof PickleDict)) throw new UnsafePickleError('pickle: BUILD is only allowed on OrderedDict');
        if (state instanceof PickleDict) for (const [key, value] of state.entries) target.attributes.set(String(key), value);
        break;
      }
      case 0x73: {
        // SETITEM
        const value = pop();
        const key = pop();
        setItems(top(), [key, value]);
        break;
      }
      case 0x75: {
        // SETITEMS
        const items = popMark();
        setItems(top(), items);
        break;
      }
      case 0x61: {
        // APPEND
        const value = pop();
        const list = top();
        if (!Array.isArray(list)) throw new FormatError('pickle: APPEND on something that is not a list');
        list.push(value);
        break;
      }
      case 0x65: {
        // APPENDS
        const items = popMark();
        const list = top();
        if (!Array.isArray(list)) throw new FormatError('pickle: APPENDS on something that is not a list');
        for (const item of items) list.push(item); // not push(...items): a long batch would overflow the call stack
        break;
      }
      case 0x69: // INST
      case 0x6f: // OBJ
      case 0x81: // NEWOBJ
      case 0x92: // NEWOBJ_EX
      case 0x82: // EXT1
      case 0x83: // EXT2
      case 0x84: // EXT4
      case 0x50: // PERSID (text)
        throw new UnsafePickleError(
          `pickle: opcode 0x${opcode.toString(16)} at byte ${position - 1} builds arbitrary objects and is not allowed in a tensor state dict`,
        );
      default:
        throw new FormatError(`pickle: unknown or unsupported opcode 0x${opcode.toString(16)} at byte ${position - 1}`);
    }
  }
}

function dictKey(key: PickleValue): string | number | bigint {
  if (typeof key === 'string' || typeof key === 'number' || typeof key === 'bigint') return key;
  throw new FormatError(`pickle: dict keys must be strings or integers; found ${describe(key)}`);
}

function describe(value: PickleValue): string {
  if (value === null) return 'None';
  if (value instanceof AllowedGlobal) return value.name;
  if (value instanceof PickleTuple) return 'a tuple';
  if (value instanceof PickleDict) return 'a dict';
  if (Array.isArray(value)) return 'a list';
  return typeof value;
}

function integer(value: PickleValue, what: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0)
    throw new FormatError(`pickle: ${what} must be a non-negative integer; found ${String(value)}`);
  return value;
}

function integerTuple(value: PickleValue, what: string): number[] {
  if (!(value instanceof PickleTuple) || value.items.length > LIMITS.dimensions)
    throw new FormatError(`pickle: ${what} must be a tuple of at most ${LIMITS.dimensions} integers`);
  return value.items.map((item) => integer(item, what));
}

/** torch's persistent id for storages: ('storage', StorageClass, key, location, numel). */
function persistentLoad(pid: PickleValue): StorageReference {
  if (!(pid instanceof PickleTuple) || pid.items[0] !== 'storage' || pid.items.length < 5) {
    throw new UnsafePickleError(`pickle: unsupported persistent id ${describe(pid)}; expected ('storage', StorageClass, key, location, numel)`);
  }
  const [, storageClass, key, , numel] = pid.items;
  if (!(storageClass instanceof AllowedGlobal) || !storageClass.name.endsWith('Storage'))
    throw new UnsafePickleError('pickle: persistent id without a torch storage class');
  if (typeof key !== 'string' || !/^[A-Za-z0-9_]+$/.test(key))
    throw new FormatError(`pickle: storage key must be an alphanumeric string; found ${String(key)}`);
  return { kind: 'storage', storageType: storageClass.name.slice('torch.'.length), key, numel: integer(numel!, 'storage numel') };
}

function reduce(callable: PickleValue, args: PickleValue): PickleValue {
  if (!(callable instanceof AllowedGlobal)) throw new UnsafePickleError(`pickle: REDUCE on ${describe(callable)} is not allowed`);
  if (!(args instanceof PickleTuple)) throw new FormatError('pickle: REDUCE arguments must be a tuple');
  switch (callable.name) {
    case 'collections.OrderedDict':
      if (args.items.length !== 0) throw new UnsafePickleError('pickle: OrderedDict is only built empty');
      return new PickleDict();
    case 'torch._utils._rebuild_tensor_v2': {
      const [storage, offset, shape, strides] = args.items;
      if (!storage || typeof storage !== 'object' || (storage as StorageReference).kind !== 'storage')
        throw new FormatError('pickle: _rebuild_tensor_v2 without a storage');
      return {
        kind: 'tensor',
        storage: storage as StorageReference,
        offset: integer(offset!, 'storage offset'),
        shape: integerTuple(shape!, 'size'),
        strides: integerTuple(strides!, 'stride'),
      };
    }
    case 'torch._utils._rebuild_parameter': {
      const data = args.items[0];
      if (!data || typeof data !== 'object' || (data as TensorReference).kind !== 'tensor')
        throw new FormatError('pickle: _rebuild_parameter without a tensor');
      return data;
    }
    default:
      throw new UnsafePickleError(`pickle: calling '${callable.name}' is not allowed`);
  }
}
