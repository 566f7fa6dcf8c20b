// The page's URL options (all optional): `?provider=webgpu|wasm`, `?threads=N`, `?tabTrain=N&tabTest=M`.

/** The execution providers the page chooses between. */
export type PageProvider = 'webgpu' | 'wasm';

/** What the page's URL asks for; a missing field means the page's default. */
export interface PageOptions {
  /** The provider to use instead of the default choice (WebGPU where a usable adapter is found, else WASM). */
  provider?: PageProvider;
  /** ORT's WASM threads instead of the default (one per core up to 4, on a cross-origin isolated page). */
  threads?: number;
  /** How many of the tab's 320 training images to extract and train on (default: all). */
  tabTrain?: number;
  /** How many of the tab's 160 held-out images to extract and score (default: all). */
  tabTest?: number;
}

const COUNTS = ['threads', 'tabTrain', 'tabTest'] as const;

/**
 * Reads the page's URL options.
 *
 * @param search - `location.search`
 * @throws RangeError for a provider other than `webgpu` or `wasm`, or a count that is not a positive integer
 */
export function pageOptions(search: string): PageOptions {
  const parameters = new URLSearchParams(search);
  const options: PageOptions = {};
  const provider = parameters.get('provider');
  if (provider !== null) {
    if (provider !== 'webgpu' && provider !== 'wasm') throw new RangeError(`?provider=: expected 'webgpu' or 'wasm'; found '${provider}'`);
    options.provider = provider;
  }
  for (const name of COUNTS) {
    const value = parameters.get(name);
    if (value === null) continue;
    if (!/^[1-9][0-9]*$/.test(value)) throw new RangeError(`?${name}=: expected a positive integer; found '${value}'`);
    options[name] = Number(value);
  }
  return options;
}
