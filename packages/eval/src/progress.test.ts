import { describe, expect, it } from 'vitest';
import { createProgress, formatDuration, formatRate, type ProgressStream } from './progress.js';

function stub(isTTY: boolean, columns = 100): ProgressStream & { output: string[] } {
  const output: string[] = [];
  return { isTTY, columns, output, write: (text: string) => output.push(text) };
}

describe('progress formatting', () => {
  it('formats durations as m:ss and h:mm:ss', () => {
    expect(formatDuration(0)).toBe('0:00');
    expect(formatDuration(59.6)).toBe('1:00');
    expect(formatDuration(125)).toBe('2:05');
    expect(formatDuration(3 * 3600 + 7 * 60 + 9)).toBe('3:07:09');
    expect(formatDuration(Number.POSITIVE_INFINITY)).toBe('--:--');
    expect(formatDuration(-1)).toBe('--:--');
  });

  it('formats rates per second, and seconds per unit below one per second', () => {
    expect(formatRate(12_345, 'img')).toBe('12k img/s');
    expect(formatRate(1234, 'img')).toBe('1.2k img/s');
    expect(formatRate(345.4, 'img')).toBe('345 img/s');
    expect(formatRate(12.46, 'img')).toBe('12.5 img/s');
    expect(formatRate(0.25, 'step')).toBe('4.0 s/step');
    expect(formatRate(0, 'img')).toBe('? img/s');
  });
});

describe('progress display', () => {
  it('prints only a plain line every 30 s and 10 % (and a closing line) when the stream is not a terminal', () => {
    const stream = stub(false);
    let clock = 0;
    const progress = createProgress({ label: 'extract', total: 100, unit: 'img', stream, now: () => clock });
    for (let done = 1; done <= 100; done++) {
      clock = done * 1000; // one image per second
      progress.update(done);
    }
    progress.finish('cache written');
    expect(stream.output).toEqual([
      'extract: 30/100 img (30%), 1.0 img/s, ETA 1:10\n',
      'extract: 60/100 img (60%), 1.0 img/s, ETA 0:40\n',
      'extract: 90/100 img (90%), 1.0 img/s, ETA 0:10\n',
      'extract: done, 100/100 img in 1:40 (1.0 img/s), cache written\n',
    ]);
    // biome-ignore lint/suspicious/noControlCharactersInRegex: the test looks for carriage returns and ANSI escapes on purpose
    expect(stream.output.join('')).not.toMatch(/[\r\x1b]/);
  });

  it('waits for 10 % even when 30 s have passed, and prints just the closing line for short work', () => {
    const slow = stub(false);
    let clock = 0;
    const progress = createProgress({ label: 'train', total: 1000, unit: 'step', stream: slow, now: () => clock });
    clock = 60_000;
    progress.update(50); // 5 % after a minute: not yet
    clock = 120_000;
    progress.update(100); // 10 %: due
    expect(slow.output).toEqual(['train: 100/1000 step (10%), 1.2 s/step, ETA 18:00\n']);
    const quick = stub(false);
    clock = 0;
    const short = createProgress({ label: 'probe', total: 3, stream: quick, now: () => clock });
    clock = 500;
    short.increment(3);
    short.finish();
    expect(quick.output).toEqual(['probe: done, 3/3 it in 0:01 (6.0 it/s)\n']);
  });

  it('redraws one bar line in place on a terminal, throttled, and ends it with a newline', () => {
    const stream = stub(true, 100);
    let clock = 0;
    const progress = createProgress({ label: 'epoch 1', total: 10, unit: 'batch', stream, now: () => clock });
    clock = 2000;
    progress.update(5, 'loss 0.52');
    clock = 2050;
    progress.update(6); // within 100 ms of the last redraw: skipped
    clock = 4000;
    progress.update(10);
    progress.finish();
    expect(stream.output).toHaveLength(3);
    expect(stream.output[0]).toBe('\repoch 1 [###############---------------] 5/10 batch (50%), 2.5 batch/s, ETA 0:02 loss 0.52\x1b[K');
    expect(stream.output[1]).toContain('[##############################] 10/10 batch (100%)');
    expect(stream.output[2]).toBe('\repoch 1: done, 10/10 batch in 0:04 (2.5 batch/s)\x1b[K\n');
  });

  it('says nothing in off mode, and counts without a total', () => {
    const off = stub(true);
    const quiet = createProgress({ label: 'x', total: 5, stream: off, mode: 'off' });
    quiet.update(5);
    quiet.finish();
    expect(off.output).toEqual([]);
    const stream = stub(false);
    let clock = 0;
    const open = createProgress({ label: 'read', unit: 'file', stream, now: () => clock, lineIntervalSeconds: 1 });
    clock = 2000;
    open.update(8);
    expect(stream.output).toEqual(['read: 8 file, 4.0 file/s\n']);
    expect(() => createProgress({ label: 'bad', total: -1 })).toThrow(/total must be a number >= 0/);
  });
});
