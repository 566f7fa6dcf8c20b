// A loss curve drawn as SVG (no chart library: one polyline and its axes).

/** The SVG markup of a loss curve over steps, fitted into width x height. */
export function lossCurveSvg(losses: readonly number[], width: number, height: number, totalSteps = losses.length): string {
  const left = 44;
  const bottom = 24;
  const top = 10;
  const right = 10;
  const plotWidth = width - left - right;
  const plotHeight = height - top - bottom;
  const finite = losses.filter(Number.isFinite);
  const high = finite.length > 0 ? Math.max(...finite) : 1;
  const low = 0;
  const span = Math.max(1, totalSteps - 1);
  const xOf = (i: number) => left + (plotWidth * i) / span;
  const yOf = (v: number) => top + plotHeight * (1 - (v - low) / (high - low || 1));
  const points = losses.map((v, i) => `${xOf(i).toFixed(1)},${yOf(Number.isFinite(v) ? v : high).toFixed(1)}`).join(' ');
  const ticks = [0, 0.5, 1].map((f) => low + f * (high - low));
  return [
    `<line x1="${left}" y1="${top}" x2="${left}" y2="${top + plotHeight}" stroke="#8a93a3"/>`,
    `<line x1="${left}" y1="${top + plotHeight}" x2="${left + plotWidth}" y2="${top + plotHeight}" stroke="#8a93a3"/>`,
    ...ticks.map((t) => `<text x="${left - 6}" y="${yOf(t) + 4}" font-size="11" text-anchor="end" fill="#4a5366">${t.toFixed(2)}</text>`),
    `<text x="${left + plotWidth}" y="${height - 6}" font-size="11" text-anchor="end" fill="#4a5366">step ${totalSteps}</text>`,
    `<text x="${left}" y="${height - 6}" font-size="11" fill="#4a5366">loss per step</text>`,
    losses.length > 0 ? `<polyline fill="none" stroke="#2f6fed" stroke-width="1.5" points="${points}"/>` : '',
  ].join('');
}
