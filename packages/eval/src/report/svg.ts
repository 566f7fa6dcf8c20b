/** Escapes text for XML content and attribute values. */
export function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&apos;');
}

/** An attribute value: numbers are written with at most 2 decimals; undefined attributes are left out. */
export type AttributeValue = string | number | undefined;

function formatAttribute(value: string | number): string {
  if (typeof value === 'number') return String(Math.round(value * 100) / 100);
  return escapeXml(value);
}

/**
 * One XML element as text. Children are already-built element strings; use
 * {@link text} for character data.
 */
export function element(name: string, attributes: Record<string, AttributeValue> = {}, children: readonly string[] = []): string {
  const attributeText = Object.entries(attributes)
    .filter((entry): entry is [string, string | number] => entry[1] !== undefined)
    .map(([key, value]) => ` ${key}="${formatAttribute(value)}"`)
    .join('');
  return children.length === 0 ? `<${name}${attributeText}/>` : `<${name}${attributeText}>${children.join('')}</${name}>`;
}

/** Escaped character data. */
export function text(content: string | number): string {
  return escapeXml(String(content));
}

/** A complete standalone SVG document. */
export function svgDocument(width: number, height: number, children: readonly string[], title: string): string {
  const body = [element('title', {}, [text(title)]), element('rect', { width, height, fill: '#ffffff' }), ...children];
  return `<?xml version="1.0" encoding="UTF-8"?>\n${element('svg', { xmlns: 'http://www.w3.org/2000/svg', width, height, viewBox: `0 0 ${width} ${height}`, 'font-family': 'Helvetica, Arial, sans-serif', 'font-size': 12 }, body)}\n`;
}

/** Viridis at a few stops, linearly interpolated: perceptually ordered and readable in grayscale. */
const VIRIDIS = [
  [0x44, 0x01, 0x54],
  [0x3b, 0x52, 0x8b],
  [0x21, 0x91, 0x8c],
  [0x5e, 0xc9, 0x62],
  [0xfd, 0xe7, 0x25],
] as const;

/** The colour of a value in [0, 1] (clamped), as `#rrggbb`, and whether dark text reads on it. */
export function colorOf(fraction: number): { fill: string; darkText: boolean } {
  const f = Math.min(1, Math.max(0, Number.isFinite(fraction) ? fraction : 0)) * (VIRIDIS.length - 1);
  const i = Math.min(VIRIDIS.length - 2, Math.floor(f));
  const t = f - i;
  const rgb = VIRIDIS[i]!.map((c, k) => Math.round(c + (VIRIDIS[i + 1]![k]! - c) * t));
  const luminance = (0.2126 * rgb[0]! + 0.7152 * rgb[1]! + 0.0722 * rgb[2]!) / 255;
  return { fill: `#${rgb.map((c) => c.toString(16).padStart(2, '0')).join('')}`, darkText: luminance > 0.45 };
}

/** Round tick values covering [low, high], about `count` of them. */
export function niceTicks(low: number, high: number, count = 5): number[] {
  if (!(high > low)) return [low];
  const rough = (high - low) / Math.max(1, count);
  const power = 10 ** Math.floor(Math.log10(rough));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * power).find((s) => s >= rough) ?? 10 * power;
  const ticks: number[] = [];
  for (let v = Math.ceil(low / step - 1e-9) * step; v <= high + step * 1e-9; v += step) ticks.push(Math.round(v / step) * step);
  return ticks;
}

/** A number for a label: integers as such, others with up to `digits` decimals. */
export function formatNumber(value: number, digits = 2): string {
  if (Number.isInteger(value)) return String(value);
  return String(Number(value.toFixed(digits)));
}
